//! Running one planned step: its action, its expectation (retried for wait steps), its
//! captures, and the record and transcript the reports show.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::background;
use crate::cluster::{self, Cluster, ExecOutput};
use crate::events::{emit, EventSink, RunEvent};
use crate::fault::{Faults, Partition};
use crate::prometheus::Prometheus;
use crate::stall;
use firedrill_judge::canary::{self, Backends, Conclusion, FailureCounter, Window};
use firedrill_judge::{effect, levers};
use firedrill_spec::gate::{GateKind, MetricGate, ValueSource};
use firedrill_spec::plan::{
    substitute, Action, BackgroundPlan, Capture, Expectation, Fallback, LineMatch, LogPlan,
    PartitionPlan, PlannedStep, RollbackPlan, RolloutPlan, StagePlan, TrafficPlan, When,
};
use firedrill_types::facts::{KillSwitchRun, MarkTime, RecoveryMark};
use firedrill_types::history::{Micros, Op};
use firedrill_types::summary::{
    EffectResult, GateOutcome, LeverOutcome, LeverResult, RolloutOutcome, RolloutResult,
    RolloutTrigger, StageResult, StepOutput, StepRecord, StepStatus,
};

/// The operations recorded so far, as they return: steps read it (a rollout's gates)
/// while the load goes on.
pub type LiveHistory = Arc<Mutex<Vec<Op>>>;

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
    pub history: LiveHistory,
    pub events: EventSink,
    /// Where marked spans began and ended, in order.
    pub marks: Vec<MarkTime>,
    /// Records of steps run inside a step (a rollout's kill switch and rollback), in order.
    pub nested: Vec<StepRecord>,
    pub rollout: Option<RolloutResult>,
    /// When the rollout's kill switch ran, if it did.
    pub kill_switch: Option<KillSwitchRun>,
    /// What each `log` step saw, in order.
    pub effects: Vec<EffectResult>,
    /// When each step that ran began, by id (`log` steps count from one).
    pub started: BTreeMap<String, Micros>,
    /// Where `background` steps start their tasks and `stop_background` steps stop them;
    /// `None` inside a background.
    pub background: Option<background::Handle>,
    /// Inside a background: says when it is being stopped (`sleep` and `stall` then end).
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// The scenario's Prometheus, for `promql` steps.
    pub prometheus: Option<Prometheus>,
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

/// Runs the step and returns its record; captured values are added to `ctx.vars`. A step
/// whose `when` does not hold is skipped, with the reason.
pub async fn execute(step: &PlannedStep, ctx: &mut StepContext<'_>) -> StepRecord {
    if let Some(why) = unmet(&step.when, ctx) {
        let mut r = skipped(step, &why);
        r.started = ctx.now();
        return r;
    }
    let started = ctx.now();
    ctx.started.insert(step.id.clone(), started);
    for e in &step.begins {
        ctx.marks.push(MarkTime {
            mark: e.mark,
            step: e.step.clone(),
            begin: true,
            at: started,
        });
    }
    let record = match &step.action {
        Action::Rollout(r) => rollout(step, r, ctx).await,
        Action::Background(b) => start_background(step, b, ctx),
        Action::StopBackground(name) => stop_background(step, name, ctx).await,
        Action::Log(l) => log_step(step, l, ctx).await,
        _ => execute_action(step, ctx).await,
    };
    let ended = ctx.now();
    for e in &step.ends {
        ctx.marks.push(MarkTime {
            mark: e.mark,
            step: e.step.clone(),
            begin: false,
            at: ended,
        });
    }
    write_transcript(&record, ctx.transcripts);
    record
}

async fn execute_action(step: &PlannedStep, ctx: &mut StepContext<'_>) -> StepRecord {
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
                    None => check(&step.expect, &last.output, ctx)
                        .and_then(|()| expected_output(step, &last.output))
                        .err(),
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
                    within: r.within.map(|w| w.as_micros() as Micros),
                });
            }
        }
    }
    StepRecord {
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
    }
}

/// A runbook step's output block is part of its expectation: the command must print what
/// the page says it prints (wildcards allowed).
fn expected_output(step: &PlannedStep, output: &StepOutput) -> Result<(), String> {
    let Some(expected) = step.source.as_ref().and_then(|s| s.output.as_ref()) else {
        return Ok(());
    };
    expected.check(&output.stdout).map_err(|m| {
        format!(
            "the output differs from the runbook's expected output at {}:{}:\n{m}",
            expected.file.display(),
            expected.line
        )
    })
}

/// Why the step's condition does not hold now, if it does not.
fn unmet(when: &[When], ctx: &StepContext) -> Option<String> {
    for w in when {
        match w {
            When::Set(text) => match ctx.render(text) {
                Err(_) => return Some(format!("when `{text}`: it has no value")),
                Ok(v) if v.trim().is_empty() => return Some(format!("when `{text}`: it is empty")),
                Ok(_) => {}
            },
            When::Equals { value, equals } => match (ctx.render(value), ctx.render(equals)) {
                (Ok(v), Ok(e)) if v == e => {}
                (Ok(v), Ok(e)) => return Some(format!("when `{value}` equals `{e}`: it is `{v}`")),
                (Err(_), _) => {
                    return Some(format!(
                        "when `{value}` equals `{equals}`: `{value}` has no value"
                    ))
                }
                (_, Err(_)) => {
                    return Some(format!(
                        "when `{value}` equals `{equals}`: `{equals}` has no value"
                    ))
                }
            },
        }
    }
    None
}

/// Starts a background task; it runs until a `stop_background` step or the end of the
/// procedure.
fn start_background(
    step: &PlannedStep,
    b: &BackgroundPlan,
    ctx: &mut StepContext<'_>,
) -> StepRecord {
    let started = ctx.now();
    let (status, stdout, error) = match &ctx.background {
        Some(handle) => {
            handle.start(b.clone(), &step.id, ctx.vars.clone());
            let line = format!(
                "started background `{}`: {} step{}{}",
                b.name,
                b.steps.len(),
                if b.steps.len() == 1 { "" } else { "s" },
                if b.repeat {
                    ", repeated until stopped"
                } else {
                    ", once"
                }
            );
            emit(&ctx.events, RunEvent::Note(line.clone()));
            (StepStatus::Passed, line, None)
        }
        None => (
            StepStatus::Failed,
            String::new(),
            Some("a background cannot start another background".to_string()),
        ),
    };
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: describe(&step.action),
        status,
        started,
        duration_ms: 0,
        attempts: 1,
        output: StepOutput {
            stdout,
            ..StepOutput::default()
        },
        error,
        transcript: transcript_name(step),
    }
}

/// Stops a background and waits (up to the step's timeout) until its current pass has
/// ended; its records follow this step's in the report.
async fn stop_background(step: &PlannedStep, name: &str, ctx: &mut StepContext<'_>) -> StepRecord {
    let started_at = Instant::now();
    let started = ctx.now();
    let stopped = match &ctx.background {
        None => Err("`stop_background` cannot run in a background".to_string()),
        Some(handle) => tokio::time::timeout(step.timeout, handle.stop(name))
            .await
            .map_err(|_| {
                format!(
                    "background `{name}` did not stop within {:?} (a step of it is still running); it is stopped again at the end of the procedure",
                    step.timeout
                )
            }),
    };
    let (stdout, error) = match stopped {
        Ok(None) => (
            format!("background `{name}` was not running: it never started"),
            None,
        ),
        Ok(Some(records)) => {
            let failed = records
                .iter()
                .filter(|r| r.status == StepStatus::Failed)
                .count();
            let line = format!(
                "stopped background `{name}` after {} step{}{}",
                records.len(),
                if records.len() == 1 { "" } else { "s" },
                if failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                }
            );
            ctx.nested.extend(records);
            (line, None)
        }
        Err(e) => (String::new(), Some(e)),
    };
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: describe(&step.action),
        status: if error.is_none() {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        },
        started,
        duration_ms: started_at.elapsed().as_millis() as u64,
        attempts: 1,
        output: StepOutput {
            stdout,
            ..StepOutput::default()
        },
        error,
        transcript: transcript_name(step),
    }
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
        Action::Replace {
            node,
            image,
            env,
            command,
            entrypoint,
        } => Action::Replace {
            node: ctx.render(node)?,
            image: image.as_ref().map(|i| ctx.render(i)).transpose()?,
            env: env
                .iter()
                .map(|(k, v)| Ok((k.clone(), ctx.render(v)?)))
                .collect::<Result<_, String>>()?,
            command: render_argv(ctx, command)?,
            entrypoint: render_argv(ctx, entrypoint)?,
        },
        Action::Destroy { node, volumes } => Action::Destroy {
            node: ctx.render(node)?,
            volumes: volumes
                .iter()
                .map(|v| ctx.render(v))
                .collect::<Result<_, String>>()?,
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
        Action::Rollout(r) => Action::Rollout(r.clone()),
        Action::Stall {
            node,
            on,
            period,
            duration,
        } => Action::Stall {
            node: ctx.render(node)?,
            on: *on,
            period: *period,
            duration: *duration,
        },
        Action::Background(b) => Action::Background(b.clone()),
        Action::StopBackground(n) => Action::StopBackground(n.clone()),
        Action::Promql(q) => Action::Promql(ctx.render(q)?),
        Action::Log(l) => Action::Log(l.clone()),
    };
    Ok((describe(&a), a))
}

fn render_argv(
    ctx: &StepContext,
    argv: &Option<Vec<String>>,
) -> Result<Option<Vec<String>>, String> {
    argv.as_ref()
        .map(|a| a.iter().map(|x| ctx.render(x)).collect())
        .transpose()
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
        Action::Replace {
            node,
            image,
            env,
            command,
            entrypoint,
        } => {
            let mut changes: Vec<String> = image.iter().map(|i| format!("image {i}")).collect();
            changes.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
            changes.extend(
                entrypoint
                    .iter()
                    .map(|e| format!("entrypoint `{}`", e.join(" "))),
            );
            changes.extend(command.iter().map(|c| format!("command `{}`", c.join(" "))));
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
        Action::Stall {
            node,
            on,
            period,
            duration,
        } => format!(
            "stall {node}: frozen (docker pause) for {} every {}, {}",
            humantime::format_duration(*on),
            humantime::format_duration(*period),
            match duration {
                Some(d) => format!("for {}", humantime::format_duration(*d)),
                None => "until stopped".to_string(),
            }
        ),
        Action::Background(b) => format!(
            "start background `{}`: {}{}",
            b.name,
            b.steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if b.repeat {
                " (repeated until stopped)"
            } else {
                ""
            }
        ),
        Action::StopBackground(n) => format!("stop background `{n}`"),
        Action::Promql(q) => format!("promql {q}"),
        Action::Log(l) => {
            let matcher = l
                .line
                .contains
                .iter()
                .map(|c| format!("`{c}`"))
                .chain(l.line.json.iter().map(|(p, v)| format!("{p} = {v}")))
                .collect::<Vec<_>>()
                .join(", ");
            let place = match &l.file {
                Some(f) => format!("{f} on {}", l.node),
                None => format!("the output of {}", l.node),
            };
            let how = if l.stops { "lines with" } else { "a line with" };
            let until = if l.stops { " stop" } else { "" };
            format!(
                "wait until {how} {matcher}{until} in {place}, within {} of step {}",
                humantime::format_duration(l.within),
                l.after.0
            )
        }
        Action::Rollout(r) => {
            let stages = r
                .stages
                .iter()
                .map(StagePlan::label)
                .collect::<Vec<_>>()
                .join(" → ");
            let gates = r
                .gates
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            match &r.traffic {
                Some(t) => format!(
                    "roll out {} in stages of the traffic ({stages}), gated by {gates}",
                    t.canary
                ),
                None => format!("roll out in stages ({stages}), gated by {gates}"),
            }
        }
    }
}

impl From<ExecOutput> for StepOutput {
    fn from(o: ExecOutput) -> StepOutput {
        StepOutput {
            exit_code: Some(o.exit_code),
            stdout: o.stdout,
            stderr: o.stderr,
            ..StepOutput::default()
        }
    }
}

async fn attempt(action: &Action, ctx: &StepContext<'_>, limit: Duration) -> Attempt {
    let mut output = StepOutput::default();
    let result: Result<(), String> = match action {
        Action::Exec { node, command } => match ctx.cluster.exec(node, command, limit).await {
            Ok(o) => {
                output = o.into();
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
                    output = o.into();
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
                let url = format!("{}{path}", cluster::published_url(host_port));
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
        Action::Replace {
            node,
            image,
            env,
            command,
            entrypoint,
        } => {
            let replace = ctx.cluster.replace(
                node,
                image.as_deref(),
                env,
                command.as_deref(),
                entrypoint.as_deref(),
            );
            bounded(limit, replace).await
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
            // In a background being stopped, a sleep ends at once.
            stall::sleep_until_or_stop(Instant::now() + *d, &mut ctx.stop.clone()).await;
            Ok(())
        }
        Action::Stall {
            node,
            on,
            period,
            duration,
        } => {
            let schedule = stall::Schedule {
                on: *on,
                period: *period,
            };
            match stall::run(ctx.cluster, node, schedule, *duration, ctx.stop.clone()).await {
                Ok(done) => {
                    output.stdout = done.describe(node, schedule);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Action::Promql(query) => match &ctx.prometheus {
            None => Err("no Prometheus: the scenario has no `monitoring:` block".into()),
            Some(p) => match tokio::time::timeout(limit, p.query(query, None)).await {
                Err(_) => Err(format!("Prometheus did not answer within {limit:?}")),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(samples)) => {
                    output.stdout = samples.iter().map(show_sample).collect();
                    match samples.is_empty() {
                        true => {
                            Err("the query returned no sample: the condition does not hold".into())
                        }
                        false => Ok(()),
                    }
                }
            },
        },
        Action::Rollout(_) | Action::Background(_) | Action::StopBackground(_) | Action::Log(_) => {
            Err("this step runs through `execute`, not as one attempt".into())
        }
    };
    Attempt {
        output,
        error: result.err(),
    }
}

/// A sample as Prometheus's console shows it: `name{label="value"} 3`, one per line.
fn show_sample(s: &crate::prometheus::Sample) -> String {
    let name = s.labels.get("__name__").map_or("", String::as_str);
    let labels: Vec<String> = s
        .labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    match labels.is_empty() {
        true => format!("{name} {}\n", s.value),
        false => format!("{name}{{{}}} {}\n", labels.join(","), s.value),
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
    for (name, c, fallback) in &step.captures {
        let found = match c {
            Capture::Regex(r) => r
                .captures(&out.stdout)
                .map(|caps| {
                    caps.get(1)
                        .or_else(|| caps.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                })
                .ok_or_else(|| format!("capture `{name}`: output does not match /{r}/")),
            Capture::Json(p) => {
                json_text(&out.stdout, p).map_err(|e| format!("capture `{name}`: {e}"))
            }
        };
        match (found, fallback) {
            (Ok(value), _) => {
                vars.insert(name.clone(), value);
            }
            (Err(e), None) => return Err(e),
            // An optional capture that finds nothing never keeps a value from an earlier
            // step (or loop item): it gets the default, or no value.
            (Err(_), Some(Fallback::Clear)) => {
                vars.remove(name);
            }
            (Err(_), Some(Fallback::Default(d))) => {
                let (value, unresolved) = substitute(d, |n| vars.get(n).cloned());
                match unresolved.first() {
                    None => vars.insert(name.clone(), value),
                    Some(n) => {
                        return Err(format!(
                            "capture `{name}`: its default needs `${{{n}}}`, which has no value"
                        ))
                    }
                };
            }
        }
    }
    Ok(())
}

/// How often a `log` step reads the lines again.
const LOG_POLL: Duration = Duration::from_millis(500);
/// The most of a file a `log` step reads at each poll: its end.
const LOG_TAIL_BYTES: usize = 4 << 20;

/// Waits until the line a `log` step expects shows, or until its time to effect has run
/// out (plus the quiet period under `stops`): the step passes when the change showed within
/// `within` of the start of the step it waits on.
async fn log_step(step: &PlannedStep, l: &LogPlan, ctx: &mut StepContext<'_>) -> StepRecord {
    let started_at = Instant::now();
    let started = ctx.now();
    let (after_id, after_name) = &l.after;
    let mut polls = 0u32;
    let mut read = 0usize;
    let mut seen = None;
    let rendered = (|| {
        let from = *ctx.started.get(after_id).ok_or_else(|| {
            format!("step {after_id} `{after_name}` did not run: there is no change to wait for")
        })?;
        let node = ctx.render(&l.node)?;
        let file = l.file.as_ref().map(|f| ctx.render(f)).transpose()?;
        let line = LineMatch {
            contains: l
                .line
                .contains
                .as_ref()
                .map(|c| ctx.render(c))
                .transpose()?,
            json: l
                .line
                .json
                .iter()
                .map(|(p, v)| Ok((p.clone(), ctx.render(v)?)))
                .collect::<Result<_, String>>()?,
        };
        Ok::<_, String>((from, node, file, line))
    })();
    let error = match &rendered {
        Err(e) => Some(e.clone()),
        Ok((from, node, file, line)) => {
            let mut error: Option<String>;
            let within = l.within.as_micros() as Micros;
            let quiet = l.quiet.as_micros() as Micros;
            let give_up = from
                + within
                + if l.stops { quiet } else { 0 }
                + LOG_POLL.as_micros() as Micros * 4;
            loop {
                polls += 1;
                match read_lines(ctx, node, file.as_deref(), l.time.as_deref(), *from).await {
                    Ok(lines) => {
                        read = lines.len();
                        seen = if l.stops {
                            effect::stopped(&lines, line, *from, quiet)
                        } else {
                            effect::first(&lines, line, *from)
                        };
                        error = None;
                    }
                    Err(e) => error = Some(e),
                }
                if seen.is_some() || ctx.now() > give_up {
                    break error;
                }
                tokio::time::sleep(LOG_POLL).await;
            }
        }
    };
    let what = if l.stops { "stopped" } else { "showed" };
    let mut out = String::new();
    let mut failure = error.clone();
    if let Ok((from, ..)) = &rendered {
        let limit_ms = l.within.as_secs_f64() * 1000.0;
        let ms = seen
            .as_ref()
            .map(|s| s.at.saturating_sub(*from) as f64 / 1000.0);
        let pass = ms.is_some_and(|m| m <= limit_ms);
        out.push_str(&format!(
            "after step {after_id} `{after_name}` (began at {:.3}s): {read} lines read in {polls} polls\n",
            *from as f64 / 1e6
        ));
        match (&seen, ms) {
            (Some(s), Some(m)) => {
                out.push_str(&format!(
                    "the change {what} at {:.3}s: time to effect {:.1} s (limit {:.0} s)\n",
                    s.at as f64 / 1e6,
                    m / 1000.0,
                    limit_ms / 1000.0
                ));
                if let Some(line) = &s.line {
                    out.push_str(&format!("line: {line}\n"));
                }
                if !pass {
                    failure = Some(format!(
                        "the change {what} {:.1} s after step {after_id}, later than the {:.0} s allowed",
                        m / 1000.0,
                        limit_ms / 1000.0
                    ));
                }
            }
            _ => {
                failure =
                    Some(format!(
                    "the change never {what} within {:.0} s of step {after_id} `{after_name}`{}",
                    limit_ms / 1000.0,
                    error.map(|e| format!(" (last read: {e})")).unwrap_or_default()
                ));
            }
        }
        ctx.effects.push(EffectResult {
            step: step.id.clone(),
            after: after_id.clone(),
            from: *from,
            at: seen.as_ref().map(|s| s.at),
            time_to_effect_ms: ms,
            limit_ms,
            line: seen.and_then(|s| s.line),
            pass,
        });
    }
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: describe(&step.action),
        status: if failure.is_none() {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        },
        started,
        duration_ms: started_at.elapsed().as_millis() as u64,
        attempts: polls,
        output: StepOutput {
            stdout: out,
            ..StepOutput::default()
        },
        error: failure,
        transcript: transcript_name(step),
    }
}

/// The node's output, or the end of a file in it, as lines dated on the run clock; only
/// lines from `from` on. A file's lines are JSON with their time at the pointer `time`.
async fn read_lines(
    ctx: &StepContext<'_>,
    node: &str,
    file: Option<&str>,
    time: Option<&str>,
    from: Micros,
) -> Result<Vec<effect::Line>, String> {
    // Run clock = wall clock - offset; the containers share the machine's clock.
    let now_unix = chrono::Utc::now().timestamp_micros();
    let offset = now_unix - ctx.now() as i64;
    let on_run_clock = |unix_us: i64| (unix_us - offset).max(0) as Micros;
    let mut lines = Vec::new();
    match (file, time) {
        (Some(file), Some(time)) => {
            let command = format!("tail -c {LOG_TAIL_BYTES} '{}'", file.replace('\'', r"'\''"));
            let out = ctx
                .cluster
                .exec(node, &command, Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            if out.exit_code != 0 {
                return Err(format!(
                    "`{command}` exited with {}{}",
                    out.exit_code,
                    tail(&out.stderr, &out.stdout)
                ));
            }
            for text in out.stdout.lines() {
                let Some(unix_us) = line_time(text, time) else {
                    continue;
                };
                lines.push(effect::Line {
                    at: on_run_clock(unix_us),
                    text: text.to_string(),
                });
            }
        }
        _ => {
            let since = ((from as i64 + offset) / 1_000_000 - 1) as i32;
            for (unix_us, text) in ctx
                .cluster
                .log_lines_since(node, since)
                .await
                .map_err(|e| e.to_string())?
            {
                lines.push(effect::Line {
                    at: on_run_clock(unix_us),
                    text,
                });
            }
        }
    }
    lines.retain(|l| l.at >= from);
    Ok(lines)
}

/// A JSON line's time at `pointer`: seconds since the epoch (a number), or RFC 3339.
fn line_time(text: &str, pointer: &str) -> Option<i64> {
    let doc: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    match doc.pointer(pointer)? {
        serde_json::Value::Number(n) => n.as_f64().map(|s| (s * 1e6) as i64),
        serde_json::Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_micros()),
        _ => None,
    }
}

/// Runs a canary rollout: at each stage, set the weights, then evaluate the gates every
/// interval over a window of the live history until the stage has its conclusive
/// evaluations (promote) or a gate reaches a failure limit (roll back: the kill switch, then
/// the rollback steps). The step fails when the outcome is not the one the scenario
/// expects, or when the rollout or its rollback could not be carried out.
async fn rollout(step: &PlannedStep, r: &RolloutPlan, ctx: &mut StepContext<'_>) -> StepRecord {
    let started_at = Instant::now();
    let started = ctx.now();
    let mut result = RolloutResult {
        step: step.id.clone(),
        canary: r
            .traffic
            .as_ref()
            .map(|t| t.canary.clone())
            .unwrap_or_default(),
        baseline: r
            .traffic
            .as_ref()
            .map(|t| t.baseline.clone())
            .unwrap_or_default(),
        expected: r.expect,
        outcome: None,
        stages: Vec::new(),
        failure: None,
        kill_switch: None,
        trigger: None,
        levers: Vec::new(),
        expected_lever: match &r.rollback {
            RollbackPlan::Levers {
                levers,
                restored_by,
            } => Some(levers[*restored_by].name.clone()),
            RollbackPlan::KillSwitch { .. } => None,
        },
        incident: None,
    };
    let mut log = String::new();
    let mut first: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for g in r
        .gates
        .iter()
        .chain(r.stages.iter().flat_map(StagePlan::gates))
    {
        if let GateKind::Metric(m) = &g.kind {
            let v = scrape(ctx, m).await;
            log.push_str(&format!(
                "{} when the rollout began: {}\n",
                m.metric,
                v.as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e.clone())
            ));
            first.insert(g.name.clone(), v.ok());
        }
    }
    let who = Backends {
        canary: r.traffic.as_ref().map(|t| t.canary.as_str()),
        baseline: r.traffic.as_ref().map_or(&[], |t| t.baseline.as_slice()),
    };
    let mut counter = FailureCounter::new(r.limits);
    let mut error: Option<String> = None;
    'stages: for (i, plan) in r.stages.iter().enumerate() {
        let label = plan.label();
        let mut stage = StageResult {
            index: i + 1,
            name: None,
            percent: 0.0,
            canary_weight: 0,
            baseline_weight: 0,
            share: 0.0,
            start: ctx.now(),
            end: ctx.now(),
            observed_share: None,
            evaluations: Vec::new(),
            decision: String::new(),
        };
        let mut hold = Duration::ZERO;
        match (plan, &r.traffic) {
            (StagePlan::Traffic(percent), Some(t)) => {
                let percent = *percent;
                let (canary_weight, baseline_weight, share) =
                    canary::weights(percent, t.baseline.len(), t.weight_total);
                let stage_vars = [
                    ("canary_weight", canary_weight.to_string()),
                    ("baseline_weight", baseline_weight.to_string()),
                    ("canary_percent", percent.to_string()),
                ];
                if let Err(e) = set_traffic(t, &stage_vars, ctx).await {
                    error = Some(format!("stage {} ({percent} %): {e}", i + 1));
                    break;
                }
                stage.start = ctx.now();
                let line = format!(
                    "stage {} at {:.3}s: {percent} % to {} (weight {canary_weight}, each baseline {baseline_weight}: {:.2} %)",
                    i + 1,
                    stage.start as f64 / 1e6,
                    t.canary,
                    share * 100.0
                );
                emit(&ctx.events, RunEvent::Note(line.clone()));
                log.push_str(&line);
                log.push('\n');
                (
                    stage.percent,
                    stage.canary_weight,
                    stage.baseline_weight,
                    stage.share,
                ) = (percent, canary_weight, baseline_weight, share);
            }
            (
                StagePlan::Config {
                    name,
                    steps,
                    hold: h,
                    ..
                },
                _,
            ) => {
                hold = *h;
                stage.name = Some(name.clone());
                // A step of the stage that fails (a smoke test, a partial deployment) is a
                // failed stage: it rolls back, as a gate does.
                if let Err(failed) =
                    run_nested(steps, ctx, "an earlier step of the stage failed").await
                {
                    let why = format!("stage {} ({name}): {}", i + 1, failed.why);
                    stage.end = ctx.now();
                    stage.decision = format!("rolled back: {why}");
                    result.stages.push(stage);
                    result.failure = Some(why);
                    result.trigger = Some(RolloutTrigger::Step {
                        stage: i + 1,
                        step: failed.step,
                    });
                    break;
                }
                stage.start = ctx.now();
                let line = format!(
                    "stage {} at {:.3}s: `{name}` applied; held at least {}",
                    i + 1,
                    stage.start as f64 / 1e6,
                    humantime::format_duration(hold)
                );
                emit(&ctx.events, RunEvent::Note(line.clone()));
                log.push_str(&line);
                log.push('\n');
            }
            (StagePlan::Traffic(_), None) => {
                unreachable!("traffic stages are planned with their traffic")
            }
        }
        let start = stage.start;
        let (mut conclusive, mut inconclusive) = (0u32, 0u32);
        // Windows never reach back before the stage nor into the last conclusive window: each
        // evaluation judges fresh operations, so one slow or failed operation is counted once,
        // and "in a row" means in a row of independent samples.
        let mut fresh = start;
        let held = |now: Micros| now.saturating_sub(start) >= hold.as_micros() as Micros;
        while conclusive < r.evaluations || !held(ctx.now()) {
            tokio::time::sleep(r.interval).await;
            let now = ctx.now();
            // Under `extend`, each inconclusive evaluation lengthens the window by one interval.
            let len = (r.window + r.interval * inconclusive).as_micros() as Micros;
            let window = Window {
                start: now.saturating_sub(len).max(fresh),
                end: now,
            };
            let ops = ops_since(&ctx.history, window.start);
            let mut evaluations = Vec::new();
            let mut answers: Vec<(&ValueSource, Result<String, String>)> = Vec::new();
            for g in r.gates.iter().chain(plan.gates()) {
                evaluations.push(match &g.kind {
                    GateKind::Metric(m) => {
                        let now = scrape(ctx, m).await;
                        let first = first.get(&g.name).copied().flatten();
                        canary::metric_gate(g, m, first, now, window)
                    }
                    GateKind::Promql { query, bound } => {
                        let answer = ask(ctx, query).await;
                        canary::promql_gate(g, query, *bound, answer, window)
                    }
                    GateKind::Value {
                        source,
                        pointer,
                        bound,
                        fail_beyond,
                    } => {
                        // Gates reading the same analyzer or endpoint share one answer per
                        // evaluation: the same numbers, and one run of the command, not one
                        // per gate.
                        let known = answers.iter().find(|(s, _)| *s == source);
                        let answer = match known {
                            Some((_, a)) => a.clone(),
                            None => {
                                let a = measure(ctx, source).await;
                                answers.push((source, a.clone()));
                                a
                            }
                        };
                        canary::value_gate(
                            g,
                            &source.describe(),
                            pointer,
                            *bound,
                            *fail_beyond,
                            answer,
                            window,
                        )
                    }
                    _ => canary::history_gate(g, &ops, window, who, r.min_samples),
                });
            }
            let conclusion = canary::conclude(
                &mut evaluations,
                r.no_data,
                inconclusive < r.max_extensions,
                &mut counter,
            );
            for e in &evaluations {
                log.push_str(&format!(
                    "  {:.3}s {}: {} ({})\n",
                    now as f64 / 1e6,
                    e.gate,
                    outcome_word(e.outcome),
                    e.detail
                ));
            }
            let failed: Option<String> = evaluations
                .iter()
                .find(|e| e.outcome != GateOutcome::Pass)
                .map(|e| format!("gate `{}` ({}): {}", e.gate, e.metric, e.detail));
            stage.evaluations.extend(evaluations);
            stage.end = now;
            match conclusion {
                Conclusion::Inconclusive => inconclusive += 1,
                Conclusion::Errored => {}
                Conclusion::Passed | Conclusion::Failed => {
                    conclusive += 1;
                    inconclusive = 0;
                    fresh = now;
                }
                Conclusion::Breached(b) => {
                    let why = format!(
                        "stage {} ({label}): {}; {} reached the limit",
                        i + 1,
                        failed.unwrap_or_else(|| format!("gate `{}` failed", b.gate)),
                        b.describe()
                    );
                    stage.decision = format!("rolled back: {why}");
                    stage.observed_share = observed_share(&ctx.history, who, start, stage.end);
                    result.stages.push(stage);
                    result.failure = Some(why);
                    result.trigger = Some(RolloutTrigger::Gate {
                        stage: i + 1,
                        gate: b.gate.clone(),
                        limit: b.describe(),
                    });
                    break 'stages;
                }
            }
        }
        stage.observed_share = observed_share(&ctx.history, who, start, stage.end);
        stage.decision = if i + 1 == r.stages.len() {
            "promoted: every stage passed".into()
        } else {
            format!("promoted to stage {} ({})", i + 2, r.stages[i + 1].label())
        };
        result.stages.push(stage);
    }
    result.outcome = match (&error, &result.failure) {
        (Some(_), _) => None,
        (None, Some(_)) => Some(RolloutOutcome::RolledBack),
        (None, None) => Some(RolloutOutcome::Promoted),
    };
    let decision = match (&error, &result.failure) {
        (Some(e), _) => format!("rollout could not go on: {e}; rolling back"),
        (None, Some(f)) => format!("rolling back: {f}"),
        (None, None) => match (&r.traffic, r.stages.last()) {
            (Some(t), Some(last)) => format!("{} promoted to {}", t.canary, last.label()),
            (_, last) => format!(
                "promoted through the last stage, {}",
                last.map(StagePlan::label).unwrap_or_default()
            ),
        },
    };
    emit(&ctx.events, RunEvent::Note(decision.clone()));
    log.push_str(&decision);
    log.push('\n');
    let rollback_error = if result.outcome == Some(RolloutOutcome::Promoted) {
        for s in r.rollback.steps() {
            ctx.nested
                .push(skipped(s, "the canary was promoted: no rollback"));
        }
        None
    } else {
        roll_back(r, &mut result, ctx).await
    };
    let outcome_name = result.outcome.map(RolloutOutcome::name);
    let failure = match (error, rollback_error, outcome_name) {
        (Some(e), _, _) => Some(format!("the rollout could not be carried out: {e}")),
        (None, Some(e), _) => Some(e),
        (None, None, Some(got)) if result.outcome != Some(r.expect) => Some(format!(
            "the rollout ended {got}, but the scenario expects {}{}",
            r.expect.name(),
            result
                .failure
                .as_ref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        )),
        _ => None,
    };
    ctx.rollout = Some(result);
    StepRecord {
        id: step.id.clone(),
        name: step.name.clone(),
        prose: step.prose.clone(),
        action: describe(&step.action),
        status: if failure.is_none() {
            StepStatus::Passed
        } else {
            StepStatus::Failed
        },
        started,
        duration_ms: started_at.elapsed().as_millis() as u64,
        attempts: 1,
        output: StepOutput {
            stdout: log,
            ..StepOutput::default()
        },
        error: failure,
        transcript: transcript_name(step),
    }
}

/// Runs the rollback: the kill switch and its steps, or the levers in order until one
/// restores service. Says why the rollback did not do what the procedure says, if it did not.
async fn roll_back(
    r: &RolloutPlan,
    result: &mut RolloutResult,
    ctx: &mut StepContext<'_>,
) -> Option<String> {
    let (plan, restored_by) = match &r.rollback {
        RollbackPlan::KillSwitch {
            kill_switch,
            within,
            ..
        } => {
            let failed = run_nested(r.rollback.steps(), ctx, "an earlier rollback step failed")
                .await
                .err();
            // A configuration rollout's kill switch is judged by the `log` step that waits
            // for its effect; a traffic rollout's by the canary's last request.
            let ran = ctx.nested.iter().find(|rec| rec.id == kill_switch.id);
            if let (Some(rec), Some(_)) = (ran, &r.traffic) {
                ctx.kill_switch = Some(KillSwitchRun {
                    step: rec.id.clone(),
                    at: rec.started,
                    limit_ms: within.as_secs_f64() * 1000.0,
                });
            }
            return failed.map(|f| format!("rollback {}", f.why));
        }
        RollbackPlan::Levers {
            levers,
            restored_by,
        } => (levers, *restored_by),
    };
    let mut restored: Option<usize> = None;
    for (k, lever) in plan.iter().enumerate() {
        let mut res = LeverResult {
            index: k + 1,
            name: lever.name.clone(),
            outcome: LeverOutcome::NotTried,
            start: None,
            end: None,
            detail: None,
        };
        if let Some(done) = restored {
            let why = format!("lever {} restored service", done + 1);
            for s in lever.steps.iter().chain(&lever.verify) {
                ctx.nested.push(skipped(s, &why));
            }
            result.levers.push(res);
            continue;
        }
        let note = format!("rollback lever {}: {}", k + 1, lever.name);
        emit(&ctx.events, RunEvent::Note(note));
        res.start = Some(ctx.now());
        (res.outcome, res.detail) =
            match run_nested(&lever.steps, ctx, "an earlier step of the lever failed").await {
                Err(f) => {
                    for s in &lever.verify {
                        ctx.nested.push(skipped(s, "the lever's own step failed"));
                    }
                    (LeverOutcome::Failed, Some(f.why))
                }
                Ok(()) => {
                    match run_nested(&lever.verify, ctx, "an earlier verification failed").await {
                        Err(f) => (LeverOutcome::NotRestored, Some(f.why)),
                        Ok(()) => {
                            restored = Some(k);
                            (LeverOutcome::Restored, None)
                        }
                    }
                }
            };
        res.end = Some(ctx.now());
        result.levers.push(res);
    }
    levers::verdict(&result.levers, restored_by)
}

/// A nested step that failed: its id, and why in words.
struct NestedFailure {
    step: String,
    why: String,
}

/// Runs steps in order as nested records of the rollout; after a failed one the rest are
/// skipped (saying `skip`), and the error names it.
async fn run_nested<'p>(
    steps: impl IntoIterator<Item = &'p PlannedStep>,
    ctx: &mut StepContext<'_>,
    skip: &str,
) -> Result<(), NestedFailure> {
    let mut failed: Option<NestedFailure> = None;
    for s in steps {
        if failed.is_some() {
            ctx.nested.push(skipped(s, skip));
            continue;
        }
        emit(
            &ctx.events,
            RunEvent::StepStarted {
                id: s.id.clone(),
                name: s.name.clone(),
            },
        );
        // A step may stop a background: its records go after the step's own.
        let at = ctx.nested.len();
        let rec = Box::pin(execute(s, ctx)).await;
        if rec.status == StepStatus::Failed {
            failed = Some(NestedFailure {
                step: rec.id.clone(),
                why: format!(
                    "step {} `{}` failed: {}",
                    rec.id,
                    rec.name,
                    rec.error.as_deref().unwrap_or("no detail")
                ),
            });
        }
        emit(&ctx.events, RunEvent::StepFinished(Box::new(rec.clone())));
        ctx.nested.insert(at, rec);
    }
    failed.map_or(Ok(()), Err)
}

/// Asks a value gate's source: the command's stdout (it must exit 0), or the body of the
/// endpoint's 2xx answer.
async fn measure(ctx: &StepContext<'_>, source: &ValueSource) -> Result<String, String> {
    match source {
        ValueSource::Command { node, command } => {
            let node = ctx.render(node)?;
            let command = ctx.render(command)?;
            let out = ctx
                .cluster
                .exec(&node, &command, Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            match out.exit_code {
                0 => Ok(out.stdout),
                code => Err(format!(
                    "`{command}` exited with {code}{}",
                    tail(&out.stderr, &out.stdout)
                )),
            }
        }
        ValueSource::Http {
            node,
            port,
            method,
            path,
            body,
        } => {
            let node = ctx.render(node)?;
            let host_port = ctx.cluster.host_port(&node, *port).ok_or_else(|| {
                format!("node `{node}` does not publish port {port}; add `127.0.0.1::{port}` to its ports")
            })?;
            let url = format!("{}{}", cluster::published_url(host_port), ctx.render(path)?);
            let method =
                reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
            let mut request = ctx
                .http
                .request(method, &url)
                .timeout(Duration::from_secs(5));
            if let Some(b) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(ctx.render(b)?);
            }
            let answer = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = answer.status();
            let text = answer.text().await.map_err(|e| format!("{url}: {e}"))?;
            match status.is_success() {
                true => Ok(text),
                false => Err(format!("{url} answered {status}")),
            }
        }
    }
}

/// Runs the rollout's traffic command with the stage's weights.
async fn set_traffic(
    r: &TrafficPlan,
    stage_vars: &[(&str, String)],
    ctx: &StepContext<'_>,
) -> Result<(), String> {
    let lookup = |n: &str| {
        stage_vars
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| ctx.vars.get(n).cloned())
    };
    let render = |text: &str| match substitute(text, lookup) {
        (out, unresolved) if unresolved.is_empty() => Ok(out),
        (_, unresolved) => Err(format!("`${{{}}}` has no value", unresolved[0])),
    };
    let node = render(&r.node)?;
    let command = render(&r.command)?;
    let out = ctx
        .cluster
        .exec(&node, &command, Duration::from_secs(20))
        .await
        .map_err(|e| format!("the traffic command failed: {e}"))?;
    if out.exit_code != 0 {
        return Err(format!(
            "the traffic command `{command}` exited with {}{}",
            out.exit_code,
            tail(&out.stderr, &out.stdout)
        ));
    }
    Ok(())
}

/// Reads one metric from a node's Prometheus endpoint through the port it publishes.
async fn scrape(ctx: &StepContext<'_>, m: &MetricGate) -> Result<f64, String> {
    let port = ctx.cluster.host_port(&m.node, m.port).ok_or_else(|| {
        format!(
            "node `{}` does not publish port {}; add `127.0.0.1::{}` to its ports",
            m.node, m.port, m.port
        )
    })?;
    let url = format!("{}{}", cluster::published_url(port), m.path);
    let text = ctx
        .http
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    canary::metric_value(&text, &m.metric, &m.labels)
}

/// A promql gate's query asked of the monitoring Prometheus now: each series' value.
async fn ask(ctx: &StepContext<'_>, query: &str) -> Result<Vec<f64>, String> {
    let p = ctx
        .prometheus
        .as_ref()
        .ok_or("no Prometheus: the scenario has no `monitoring:` block")?;
    match tokio::time::timeout(Duration::from_secs(2), p.query(query, None)).await {
        Err(_) => Err(format!("Prometheus did not answer `{query}` within 2s")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(samples)) => Ok(samples.iter().map(|s| s.value).collect()),
    }
}

/// The operations invoked at or after `from` that have returned so far.
fn ops_since(history: &LiveHistory, from: Micros) -> Vec<Op> {
    let ops = history.lock().unwrap_or_else(PoisonError::into_inner);
    ops.iter().filter(|op| op.t_call >= from).cloned().collect()
}

/// The canary's share of the operations a backend served, invoked in `[start, end)`.
fn observed_share(history: &LiveHistory, who: Backends, start: Micros, end: Micros) -> Option<f64> {
    // A configuration rollout has no canary to share traffic with.
    let canary_name = who.canary?;
    let ops = history.lock().unwrap_or_else(PoisonError::into_inner);
    let (mut canary, mut all) = (0u64, 0u64);
    for op in ops
        .iter()
        .filter(|op| op.t_call >= start && op.t_call < end)
    {
        match op.backend.as_deref() {
            Some(b) if b == canary_name => {
                canary += 1;
                all += 1;
            }
            Some(b) if who.baseline.iter().any(|x| x == b) => all += 1,
            _ => {}
        }
    }
    (all > 0).then(|| canary as f64 / all as f64)
}

fn outcome_word(o: GateOutcome) -> &'static str {
    match o {
        GateOutcome::Pass => "pass",
        GateOutcome::Fail => "FAIL",
        GateOutcome::NoData => "no data",
        GateOutcome::Inconclusive => "inconclusive",
        GateOutcome::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn planned(id: &str, name: &str, action: Action) -> PlannedStep {
        PlannedStep {
            id: id.into(),
            name: name.into(),
            prose: String::new(),
            action,
            expect: Expectation::default(),
            captures: Vec::new(),
            when: Vec::new(),
            wait: None,
            timeout: Duration::from_secs(30),
            recovers: None,
            begins: Vec::new(),
            ends: Vec::new(),
            source: None,
        }
    }

    fn exec(node: &str, command: &str) -> Action {
        Action::Exec {
            node: node.into(),
            command: command.into(),
        }
    }

    fn stdout(text: &str) -> StepOutput {
        StepOutput {
            exit_code: Some(0),
            stdout: text.into(),
            ..StepOutput::default()
        }
    }

    #[test]
    fn transcript_names_are_slugs_under_steps() {
        let s = planned("4.2", "Stop kv2 (gracefully!)", exec("kv2", "true"));
        assert_eq!(transcript_name(&s), "steps/4_2-stop-kv2-gracefully.txt");
        let long = planned("1", &"x".repeat(60), exec("kv1", "true"));
        assert_eq!(
            transcript_name(&long),
            format!("steps/1-{}.txt", "x".repeat(48))
        );
    }

    #[test]
    fn actions_are_described_as_a_runbook_would_print_them() {
        assert_eq!(describe(&exec("kv1", "kvctl get a")), "[kv1] kvctl get a");
        assert_eq!(
            describe(&Action::Partition(PartitionPlan::Groups(vec![
                vec!["kv1".into()],
                vec!["kv2".into(), "kv3".into()]
            ]))),
            "partition into [kv1] | [kv2, kv3]"
        );
        assert_eq!(
            describe(&Action::Reject {
                node: "kv1".into(),
                port: 2379,
                share: 0.25,
                connections_only: true
            }),
            "reject 25% of the connections to kv1:2379 (TCP reset)"
        );
        assert_eq!(
            describe(&Action::Netem {
                node: "kv2".into(),
                delay: Some(Duration::from_millis(200)),
                loss: None
            }),
            "netem on kv2: delay 200ms"
        );
        assert_eq!(describe(&Action::Heal(None)), "heal every fault");
        assert_eq!(
            describe(&Action::Destroy {
                node: "kv3".into(),
                volumes: vec!["data".into()]
            }),
            "destroy kv3 and its volumes data"
        );
    }

    #[test]
    fn a_skipped_step_keeps_its_action_and_why() {
        let r = skipped(
            &planned("5", "Compact", exec("kv1", "kvctl compact")),
            "step 4 failed",
        );
        assert_eq!(r.status, StepStatus::Skipped);
        assert_eq!(r.action, "[kv1] kvctl compact");
        assert_eq!(r.error.as_deref(), Some("step 4 failed"));
        assert_eq!((r.attempts, r.duration_ms), (0, 0));
    }

    #[test]
    fn a_failed_command_quotes_the_last_lines_of_stderr_else_stdout() {
        assert_eq!(tail("a\nb\nc\nd\n", "ignored"), ": b | c | d");
        assert_eq!(tail("  \n", "only stdout"), ": only stdout");
        assert_eq!(tail("", ""), "");
    }

    #[test]
    fn json_pointers_give_strings_bare_and_everything_else_as_json() {
        let text = r#" {"version": {"server": "1.5.0", "members": [1, 2]}} "#;
        assert_eq!(json_text(text, "/version/server").as_deref(), Ok("1.5.0"));
        assert_eq!(json_text(text, "/version/members").as_deref(), Ok("[1,2]"));
        let missing = json_text(text, "/nope").expect_err("nothing there");
        assert!(missing.contains("nothing at /nope"), "{missing}");
        let not_json = json_text("ok", "/a").expect_err("not JSON");
        assert!(not_json.starts_with("output is not JSON"), "{not_json}");
    }

    #[test]
    fn captures_take_the_first_group_and_optional_ones_fall_back() {
        let mut step = planned("1", "Find the leader", exec("kv1", "kvctl status"));
        let leader = Capture::Regex(Regex::new(r"leader=(\w+)").expect("regex"));
        step.captures = vec![("leader".into(), leader.clone(), None)];
        let mut vars = BTreeMap::new();
        capture(&step, &stdout("id=1 leader=kv2\n"), &mut vars).expect("found");
        assert_eq!(vars["leader"], "kv2");

        let err = capture(&step, &stdout("no leader\n"), &mut vars).expect_err("required");
        assert!(
            err.starts_with("capture `leader`: output does not match"),
            "{err}"
        );

        // An optional capture that finds nothing clears the earlier value, or sets its default.
        step.captures = vec![("leader".into(), leader.clone(), Some(Fallback::Clear))];
        capture(&step, &stdout("no leader\n"), &mut vars).expect("optional");
        assert!(!vars.contains_key("leader"));
        vars.insert("first".into(), "kv1".into());
        step.captures = vec![(
            "leader".into(),
            leader,
            Some(Fallback::Default("${first}".into())),
        )];
        capture(&step, &stdout("no leader\n"), &mut vars).expect("default");
        assert_eq!(vars["leader"], "kv1");
    }

    #[test]
    fn the_observed_share_counts_only_backends_of_the_rollout() {
        let op = |t_call: Micros, backend: Option<&str>| Op {
            id: t_call,
            client: 0,
            node: "lb".into(),
            kind: firedrill_types::history::OpKind::Read,
            key: "k".into(),
            value: None,
            expected: None,
            t_intended: t_call,
            t_call,
            t_return: t_call + 1,
            outcome: firedrill_types::history::Outcome::Ok,
            error: None,
            backend: backend.map(Arc::from),
        };
        let history: LiveHistory = Arc::new(Mutex::new(vec![
            op(0, Some("canary")),
            op(1, Some("stable")),
            op(2, Some("stable")),
            op(3, Some("stable")),
            op(4, Some("elsewhere")),
            op(5, None),
            op(10, Some("canary")),
        ]));
        let baseline = vec!["stable".to_string()];
        let who = Backends {
            canary: Some("canary"),
            baseline: &baseline,
        };
        assert_eq!(observed_share(&history, who, 0, 10), Some(0.25));
        assert_eq!(
            observed_share(&history, who, 4, 10),
            None,
            "no backend of ours"
        );
        assert_eq!(ops_since(&history, 4).len(), 3);
    }
}
