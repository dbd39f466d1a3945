//! Running one planned step: its action, its expectation (retried for wait steps), its
//! captures, and the record and transcript the reports show.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::fault::{Faults, Partition};
use crate::history::Micros;
use crate::plan::{substitute, Action, Capture, Expectation, PartitionPlan, PlannedStep};
use crate::summary::{StepOutput, StepRecord, StepStatus};

/// What steps share: the cluster, the variables captured so far, the run clock.
pub struct StepContext<'a> {
    pub cluster: &'a Cluster,
    pub faults: &'a Faults<'a>,
    pub http: reqwest::Client,
    pub vars: BTreeMap<String, String>,
    pub epoch: Instant,
    /// Where transcripts go: `<out>/steps/`.
    pub transcripts: &'a Path,
    /// Steps that said a node should serve again, in order.
    pub recoveries: Vec<RecoveryMark>,
}

/// A passed step after which `node` should serve again.
#[derive(Debug, Clone)]
pub struct RecoveryMark {
    pub step: String,
    pub node: String,
    /// When the step ended, on the run clock.
    pub from: Micros,
    pub within: Option<Duration>,
}

impl StepContext<'_> {
    fn render(&self, text: &str) -> Result<String, String> {
        let (out, unresolved) = substitute(text, |n| self.vars.get(n).cloned());
        match unresolved.first() {
            None => Ok(out),
            Some(n) => Err(format!("`${{{n}}}` has no value: the step that captures it did not run or did not capture it")),
        }
    }

    fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }
}

/// The result of one attempt of an action.
struct Attempt {
    output: StepOutput,
    /// The action itself could not be carried out (not: its output was unexpected).
    error: Option<String>,
}

/// Runs the step and returns its record; captured values are added to `ctx.vars`.
pub async fn execute(step: &PlannedStep, ctx: &mut StepContext<'_>) -> StepRecord {
    let started_at = Instant::now();
    let started = ctx.now();
    let mut attempts = 0;
    let mut last = Attempt {
        output: StepOutput::default(),
        error: None,
    };
    let mut failure: Option<String>;
    let action_text = match render_action(step, ctx) {
        Err(e) => {
            failure = Some(e);
            describe(&step.action)
        }
        Ok((action_text, action)) => {
            let deadline = step.wait.map(|w| Instant::now() + w.timeout);
            loop {
                attempts += 1;
                let limit = match deadline {
                    Some(d) => step
                        .timeout
                        .min(d.saturating_duration_since(Instant::now()))
                        .max(Duration::from_millis(100)),
                    None => step.timeout,
                };
                last = attempt(&action, ctx, limit).await;
                failure = match &last.error {
                    Some(e) => Some(e.clone()),
                    None => check(&step.expect, &last.output, ctx).err(),
                };
                if failure.is_none() {
                    failure = capture(step, &last.output, &mut ctx.vars).err();
                }
                match (failure.is_some(), deadline, step.wait) {
                    (true, Some(d), Some(w)) if Instant::now() + w.interval < d => {
                        tokio::time::sleep(w.interval).await
                    }
                    _ => break,
                }
            }
            if let (Some(f), Some(w)) = (&failure, step.wait) {
                failure = Some(format!(
                    "still failing after {:?} ({attempts} attempts): {f}",
                    w.timeout
                ));
            }
            action_text
        }
    };
    if failure.is_none() {
        if let Some(r) = &step.recovers {
            if let Ok(node) = ctx.render(&r.node) {
                ctx.recoveries.push(RecoveryMark {
                    step: step.id.clone(),
                    node,
                    from: ctx.now(),
                    within: r.within,
                });
            }
        }
    }
    let record = StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: action_text,
        status: if failure.is_none() {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        },
        started,
        duration_ms: started_at.elapsed().as_millis() as u64,
        attempts,
        output: last.output,
        error: failure,
        transcript: transcript_name(step),
    };
    write_transcript(&record, ctx.transcripts);
    record
}

/// A step that never ran, for the report.
pub fn skipped(step: &PlannedStep, why: &str) -> StepRecord {
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: describe(&step.action),
        status: StepStatus::Skipped,
        started: 0,
        duration_ms: 0,
        attempts: 0,
        output: StepOutput::default(),
        error: Some(why.to_string()),
        transcript: String::new(),
    }
}

fn transcript_name(step: &PlannedStep) -> String {
    let slug: String = step
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!(
        "steps/{}-{}.txt",
        step.id.replace('.', "_"),
        slug.chars().take(48).collect::<String>()
    )
}

fn write_transcript(r: &StepRecord, dir: &Path) {
    let mut t = format!(
        "# step {}: {}\n\n{}\n\n$ {}\n",
        r.id, r.name, r.prose, r.action
    );
    if let Some(c) = r.output.exit_code {
        t.push_str(&format!("exit code: {c}\n"));
    }
    if let Some(s) = r.output.http_status {
        t.push_str(&format!("http status: {s}\n"));
    }
    t.push_str(&format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}\n",
        r.output.stdout, r.output.stderr
    ));
    t.push_str(&format!(
        "attempts: {}, duration: {} ms, status: {:?}\n",
        r.attempts, r.duration_ms, r.status
    ));
    if let Some(e) = &r.error {
        t.push_str(&format!("error: {e}\n"));
    }
    let name = r.transcript.trim_start_matches("steps/");
    // A transcript that cannot be written leaves the record (and the reports) intact.
    let _ = std::fs::write(dir.join(name), t);
}

/// The action with run-time variables substituted, and its one-line description.
fn render_action(step: &PlannedStep, ctx: &StepContext) -> Result<(String, Action), String> {
    let a = match &step.action {
        Action::Exec { node, command } => Action::Exec {
            node: ctx.render(node)?,
            command: ctx.render(command)?,
        },
        Action::Http {
            node,
            port,
            method,
            path,
            body,
        } => Action::Http {
            node: ctx.render(node)?,
            port: *port,
            method: method.clone(),
            path: ctx.render(path)?,
            body: body.as_ref().map(|b| ctx.render(b)).transpose()?,
        },
        Action::Run {
            node,
            command,
            image,
        } => Action::Run {
            node: ctx.render(node)?,
            command: ctx.render(command)?,
            image: image.as_ref().map(|i| ctx.render(i)).transpose()?,
        },
        Action::Container { op, node } => Action::Container {
            op: *op,
            node: ctx.render(node)?,
        },
        Action::Replace { node, image, env } => Action::Replace {
            node: ctx.render(node)?,
            image: image.as_ref().map(|i| ctx.render(i)).transpose()?,
            env: env
                .iter()
                .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
                .collect::<Result<_, String>>()?,
        },
        Action::Destroy { node, volumes } => Action::Destroy {
            node: ctx.render(node)?,
            volumes: volumes.clone(),
        },
        Action::Partition(p) => Action::Partition(match p {
            PartitionPlan::Isolate(n) => PartitionPlan::Isolate(ctx.render(n)?),
            PartitionPlan::Groups(gs) => PartitionPlan::Groups(
                gs.iter()
                    .map(|g| g.iter().map(|n| ctx.render(n)).collect())
                    .collect::<Result<_, String>>()?,
            ),
            PartitionPlan::OneWay { from, to } => PartitionPlan::OneWay {
                from: ctx.render(from)?,
                to: to
                    .iter()
                    .map(|n| ctx.render(n))
                    .collect::<Result<_, String>>()?,
            },
        }),
        Action::Heal(n) => Action::Heal(n.as_ref().map(|n| ctx.render(n)).transpose()?),
        Action::Reject {
            node,
            port,
            share,
            connections_only,
        } => Action::Reject {
            node: ctx.render(node)?,
            port: *port,
            share: *share,
            connections_only: *connections_only,
        },
        Action::Netem { node, delay, loss } => Action::Netem {
            node: ctx.render(node)?,
            delay: *delay,
            loss: *loss,
        },
        Action::Network { node, connected } => Action::Network {
            node: ctx.render(node)?,
            connected: *connected,
        },
        Action::Sleep(d) => Action::Sleep(*d),
    };
    Ok((describe(&a), a))
}

/// The action as a runbook would print it.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Exec { node, command } => format!("[{node}] {command}"),
        Action::Http {
            node,
            port,
            method,
            path,
            body,
        } => match body {
            Some(b) => format!("{method} {node}:{port}{path} {b}"),
            None => format!("{method} {node}:{port}{path}"),
        },
        Action::Run {
            node,
            command,
            image,
        } => match image {
            Some(i) => format!("[one-off {i} with {node}'s volumes] {command}"),
            None => format!("[one-off with {node}'s volumes] {command}"),
        },
        Action::Container { op, node } => format!("{} {node}", op.verb()),
        Action::Replace { node, image, env } => {
            let mut changes: Vec<String> = image.iter().map(|i| format!("image {i}")).collect();
            changes.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
            format!("replace {node} with {} (same volumes)", changes.join(", "))
        }
        Action::Destroy { node, volumes } if volumes.is_empty() => format!("destroy {node}"),
        Action::Destroy { node, volumes } => {
            format!("destroy {node} and its volumes {}", volumes.join(", "))
        }
        Action::Partition(PartitionPlan::Isolate(n)) => {
            format!("partition: isolate {n} from its peers")
        }
        Action::Partition(PartitionPlan::Groups(gs)) => {
            let gs: Vec<String> = gs.iter().map(|g| format!("[{}]", g.join(", "))).collect();
            format!("partition into {}", gs.join(" | "))
        }
        Action::Partition(PartitionPlan::OneWay { from, to }) => {
            format!("partition one way: {from} → {} cut", to.join(", "))
        }
        Action::Heal(None) => "heal every fault".to_string(),
        Action::Heal(Some(n)) => format!("heal the faults of {n}"),
        Action::Reject {
            node,
            port,
            share,
            connections_only,
        } => format!(
            "reject {:.0}% of the {} to {node}:{port} (TCP reset)",
            share * 100.0,
            if *connections_only {
                "connections"
            } else {
                "packets"
            }
        ),
        Action::Netem { node, delay, loss } => format!(
            "netem on {node}:{}{}",
            delay
                .map(|d| format!(" delay {}", humantime::format_duration(d)))
                .unwrap_or_default(),
            loss.map(|l| format!(" loss {:.1}%", l * 100.0))
                .unwrap_or_default()
        ),
        Action::Network {
            node,
            connected: true,
        } => format!("connect {node} to the network"),
        Action::Network {
            node,
            connected: false,
        } => format!("disconnect {node} from the network"),
        Action::Sleep(d) => format!("sleep {}", humantime::format_duration(*d)),
    }
}

async fn attempt(action: &Action, ctx: &StepContext<'_>, limit: Duration) -> Attempt {
    let mut output = StepOutput::default();
    let result: Result<(), String> = match action {
        Action::Exec { node, command } => match ctx.cluster.exec(node, command, limit).await {
            Ok(o) => {
                output.exit_code = Some(o.exit_code);
                output.stdout = o.stdout;
                output.stderr = o.stderr;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        Action::Run {
            node,
            command,
            image,
        } => {
            match ctx
                .cluster
                .run_oneoff(node, image.as_deref(), command, limit)
                .await
            {
                Ok(o) => {
                    output.exit_code = Some(o.exit_code);
                    output.stdout = o.stdout;
                    output.stderr = o.stderr;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Action::Http {
            node,
            port,
            method,
            path,
            body,
        } => match ctx.cluster.host_port(node, *port) {
            None => Err(format!(
                "node `{node}` does not publish port {port}; add `127.0.0.1::{port}` to its ports"
            )),
            Some(host_port) => {
                let url = format!("http://127.0.0.1:{host_port}{path}");
                let method =
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
                let mut req = ctx.http.request(method, &url).timeout(limit);
                if let Some(b) = body {
                    req = req
                        .header("content-type", "application/json")
                        .body(b.clone());
                }
                match req.send().await {
                    Ok(resp) => {
                        output.http_status = Some(resp.status().as_u16());
                        match resp.text().await {
                            Ok(t) => {
                                output.stdout = t;
                                Ok(())
                            }
                            Err(e) => Err(format!("reading the response of {url}: {e}")),
                        }
                    }
                    Err(e) => Err(format!("{url}: {e}")),
                }
            }
        },
        Action::Container { op, node } => bounded(limit, ctx.cluster.container_op(node, *op)).await,
        Action::Replace { node, image, env } => {
            bounded(limit, ctx.cluster.replace(node, image.as_deref(), env)).await
        }
        Action::Destroy { node, volumes } => {
            bounded(limit, ctx.cluster.destroy(node, volumes)).await
        }
        Action::Network { node, connected } => {
            bounded(limit, ctx.cluster.set_connected(node, *connected)).await
        }
        Action::Partition(p) => {
            let partition = match p {
                PartitionPlan::Isolate(n) => Partition::Isolate(n.clone()),
                PartitionPlan::Groups(gs) => Partition::Groups(gs.clone()),
                PartitionPlan::OneWay { from, to } => Partition::OneWay {
                    from: from.clone(),
                    to: to.clone(),
                },
            };
            fault_output(&mut output, limit, ctx.faults.partition(&partition)).await
        }
        Action::Heal(n) => fault_output(&mut output, limit, ctx.faults.heal(n.as_deref())).await,
        Action::Reject {
            node,
            port,
            share,
            connections_only,
        } => {
            fault_output(
                &mut output,
                limit,
                ctx.faults.reject(node, *port, *share, *connections_only),
            )
            .await
        }
        Action::Netem { node, delay, loss } => {
            fault_output(&mut output, limit, ctx.faults.netem(node, *delay, *loss)).await
        }
        Action::Sleep(d) => {
            tokio::time::sleep(*d).await;
            Ok(())
        }
    };
    Attempt {
        output,
        error: result.err(),
    }
}

/// Runs a fault action; what it did becomes the step's output.
async fn fault_output<E: std::fmt::Display>(
    output: &mut StepOutput,
    limit: Duration,
    f: impl std::future::Future<Output = Result<String, E>>,
) -> Result<(), String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(done)) => {
            output.stdout = done;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("did not finish within {limit:?}")),
    }
}

async fn bounded<E: std::fmt::Display>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("did not finish within {limit:?}")),
    }
}

/// Checks the output against the expectation; the error says what differed.
fn check(e: &Expectation, out: &StepOutput, ctx: &StepContext) -> Result<(), String> {
    if let (Some(want), Some(got)) = (e.exit_code, out.exit_code) {
        if want != got {
            return Err(format!(
                "exit code {got}, expected {want}{}",
                tail(&out.stderr, &out.stdout)
            ));
        }
    }
    if let Some(got) = out.http_status {
        match e.status {
            Some(want) if want != got => return Err(format!("HTTP status {got}, expected {want}")),
            None if !(200..300).contains(&got) => {
                return Err(format!("HTTP status {got}, expected 2xx"))
            }
            _ => {}
        }
    }
    for s in &e.stdout_contains {
        let s = ctx.render(s)?;
        if !out.stdout.contains(&s) {
            return Err(format!("output does not contain `{s}`"));
        }
    }
    if let Some(r) = &e.stdout_regex {
        if !r.is_match(&out.stdout) {
            return Err(format!("output does not match /{r}/"));
        }
    }
    if let Some((pointer, want)) = &e.json {
        let want = ctx.render(want)?;
        let got = json_text(&out.stdout, pointer)?;
        if got != want {
            return Err(format!("JSON {pointer} is `{got}`, expected `{want}`"));
        }
    }
    Ok(())
}

fn tail(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let last: Vec<&str> = text.trim().lines().rev().take(3).collect();
    if last.is_empty() {
        String::new()
    } else {
        format!(
            ": {}",
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }
}

/// The value at `pointer` in `text` parsed as JSON: a string's contents, otherwise its JSON.
fn json_text(text: &str, pointer: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("output is not JSON ({e})"))?;
    match v.pointer(pointer) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("JSON has nothing at {pointer}")),
    }
}

fn capture(
    step: &PlannedStep,
    out: &StepOutput,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, c) in &step.captures {
        let value = match c {
            Capture::Regex(r) => r
                .captures(&out.stdout)
                .map(|caps| {
                    caps.get(1)
                        .or_else(|| caps.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                })
                .ok_or_else(|| format!("capture `{name}`: output does not match /{r}/"))?,
            Capture::Json(p) => {
                json_text(&out.stdout, p).map_err(|e| format!("capture `{name}`: {e}"))?
            }
        };
        vars.insert(name.clone(), value);
    }
    Ok(())
}
