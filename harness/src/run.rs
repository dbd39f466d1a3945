//! One run of a plan: cluster up, load on, steps through the phases, checks, verdict,
//! artifacts, cluster down. Everything it learns flows out as events and one `Summary`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use firedrill_judge::check::{self, BackupWindow};
use crate::cluster::{self, Cluster, ClusterError};
use crate::events::{emit, EventSink, RunEvent};
use crate::fault::Faults;
use firedrill_types::history::{Micros, Op, OpKind, Outcome, Phase, PhaseWindow, TextPool};
use crate::load::{self, LoadRun, Target};
use firedrill_spec::plan::{BackupPlan, Converge, Plan};
use firedrill_spec::scenario::Mark;
use firedrill_judge::slo;
use crate::step::{self, LiveHistory, MarkTime, StepContext};
use firedrill_types::summary::{
    BackupResult, CheckResult, DataResult, LoadStats, NodeRecord, ReadResult, RecoveryResult,
    RolloutResult, StepRecord, StepStatus, Summary, Timings, SCHEMA,
};
use firedrill_judge::verdict;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where artifacts go; `reports/<scenario>/<timestamp>/` when absent.
    pub out_dir: Option<PathBuf>,
    pub seed: Option<u64>,
    /// Leave the cluster running for a post-mortem.
    pub keep: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot write artifacts to {path}: {source}")]
    Artifacts {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the load generator failed: {0}")]
    Load(String),
    #[error("the run panicked: {0}; the cluster was removed")]
    Panicked(String),
    #[error("interrupted; the cluster was removed")]
    Interrupted,
}

/// Runs the plan and removes what it created (unless `keep`), whatever happens.
pub async fn run(
    plan: &Plan,
    opts: &RunOptions,
    docker: &Docker,
    events: &EventSink,
    interrupt: watch::Receiver<bool>,
) -> Result<Summary, RunError> {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let seed = opts.seed.unwrap_or_else(rand::random::<u64>);
    let out_dir = match &opts.out_dir {
        Some(d) => d.clone(),
        None => default_out_dir(&plan.name),
    };
    for dir in [out_dir.clone(), out_dir.join("logs"), out_dir.join("steps")] {
        std::fs::create_dir_all(&dir).map_err(|source| RunError::Artifacts {
            path: dir.clone(),
            source,
        })?;
    }
    emit(
        events,
        RunEvent::Started {
            scenario: plan.name.clone(),
            run_id: run_id.clone(),
            seed,
            out_dir: out_dir.clone(),
        },
    );
    let creating = Instant::now();
    let reaped = cluster::reap_stale(docker).await?;
    if reaped.total() > 0 {
        emit(
            events,
            RunEvent::Note(format!(
                "removed what killed runs left behind: {} containers, {} volumes, {} networks",
                reaped.containers, reaped.volumes, reaped.networks
            )),
        );
    }
    let epoch = Instant::now();
    let started_at = chrono::Utc::now();
    let created = Cluster::create(
        docker,
        &plan.compose,
        &run_id,
        opts.keep,
        &out_dir.join("logs"),
    )
    .await;
    let cluster_create_ms = creating.elapsed().as_millis() as u64;
    let cluster = match created {
        Ok(c) => c,
        Err(e) => {
            // A half-created cluster is found by its label.
            let _ = cluster::reap(docker, Some(&run_id)).await;
            return Err(e.into());
        }
    };
    let ctx = Drive {
        plan,
        cluster: &cluster,
        events,
        epoch,
        seed,
        run_id: &run_id,
        out_dir: &out_dir,
        interrupt,
    };
    let outcome = std::panic::AssertUnwindSafe(ctx.drive())
        .catch_unwind()
        .await;
    let outcome = match outcome {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(RunError::Panicked(what))
        }
    };
    if opts.keep {
        let nodes: Vec<String> = plan
            .compose
            .services
            .iter()
            .filter_map(|s| {
                let c = cluster.container_name(&s.name)?;
                let ports: Vec<String> = s
                    .ports
                    .iter()
                    .filter_map(|p| {
                        cluster
                            .host_port(&s.name, p.container_port)
                            .map(|h| format!("{}→127.0.0.1:{h}", p.container_port))
                    })
                    .collect();
                Some(format!(
                    "  {}: docker exec -it {c} sh   (ports {})",
                    s.name,
                    ports.join(", ")
                ))
            })
            .collect();
        emit(
            events,
            RunEvent::Note(format!(
                "--keep: the cluster stays up (network {}).\n{}\nremove it with `firedrill clean`",
                cluster.network(),
                nodes.join("\n")
            )),
        );
    }
    let tearing_down = Instant::now();
    if !opts.keep {
        cluster.teardown().await?;
        emit(
            events,
            RunEvent::Note(format!(
                "cluster removed in {:.1}s",
                tearing_down.elapsed().as_secs_f64()
            )),
        );
    }
    let teardown_ms = tearing_down.elapsed().as_millis() as u64;
    let (mut summary, ops) = outcome?;
    summary.timings.cluster_create_ms = cluster_create_ms;
    summary.timings.teardown_ms = teardown_ms;
    summary.timings.peak_rss_mib = peak_rss_mib();
    summary.started_at = started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    summary.run_id = run_id;
    firedrill_report::write_all(&summary, &ops, &out_dir).map_err(|e| RunError::Artifacts {
        path: out_dir.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    emit(
        events,
        RunEvent::Finished {
            verdict: summary.verdict,
            reasons: summary.reasons.clone(),
            out_dir,
        },
    );
    Ok(summary)
}

fn default_out_dir(scenario: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = Path::new("reports").join(scenario);
    let mut dir = base.join(&stamp);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{n}"));
        n += 1;
    }
    dir
}

struct Drive<'a> {
    plan: &'a Plan,
    cluster: &'a Cluster,
    events: &'a EventSink,
    epoch: Instant,
    seed: u64,
    run_id: &'a str,
    out_dir: &'a Path,
    interrupt: watch::Receiver<bool>,
}

impl Drive<'_> {
    fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }

    fn interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    /// Sleeps, waking early on Ctrl-C; says whether it was interrupted.
    async fn pause(&mut self, d: Duration) -> bool {
        let mut rx = self.interrupt.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = rx.wait_for(|v| *v) => true,
        }
    }

    async fn drive(mut self) -> Result<(Summary, Vec<Op>), RunError> {
        let plan = self.plan;
        let t = Instant::now();
        let starting: Vec<String> = plan
            .compose
            .services
            .iter()
            .filter(|s| s.starts_with_cluster())
            .map(|s| s.name.clone())
            .collect();
        self.cluster
            .wait_healthy(&starting, plan.ready_timeout)
            .await?;
        let cluster_ready_ms = t.elapsed().as_millis() as u64;
        emit(
            self.events,
            RunEvent::ClusterReady {
                nodes: starting.clone(),
                took: t.elapsed(),
            },
        );
        let images_at_start: BTreeMap<String, String> = starting
            .iter()
            .filter_map(|n| Some((n.clone(), self.cluster.image(n)?)))
            .collect();

        let targets: Vec<Target> = plan
            .load_nodes
            .iter()
            .filter_map(|n| {
                let port = self.cluster.host_port(n, plan.profile.port)?;
                Some(Target {
                    node: n.clone(),
                    base_url: format!("http://127.0.0.1:{port}"),
                })
            })
            .collect();
        let (history, recorder, live) = Recorder::start(self.out_dir.join("history.jsonl"))
            .map_err(|source| RunError::Artifacts {
                path: self.out_dir.join("history.jsonl"),
                source,
            })?;
        let profile = Arc::new(plan.profile.clone());
        let load = LoadRun::start(
            profile.clone(),
            targets.clone(),
            self.seed,
            self.epoch,
            history,
        )
        .map_err(|e| RunError::Load(e.to_string()))?;
        let ticker = recorder.ticker(self.events.clone());

        let steady_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Steady));
        let mut interrupted = self.pause(plan.steady).await;

        let procedure_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Procedure));
        let mut records: Vec<StepRecord> = Vec::new();
        let faults = Faults::new(self.cluster, plan.fault_image.clone());
        let mut ctx = StepContext {
            cluster: self.cluster,
            faults: &faults,
            recoveries: Vec::new(),
            http: reqwest::Client::new(),
            vars: BTreeMap::from([
                ("run_id".to_string(), self.run_id.to_string()),
                ("seed".to_string(), self.seed.to_string()),
            ]),
            epoch: self.epoch,
            transcripts: &self.out_dir.join("steps"),
            history: live,
            events: self.events.clone(),
            marks: Vec::new(),
            nested: Vec::new(),
            rollout: None,
        };
        let mut failed = false;
        for s in &plan.steps {
            interrupted |= self.interrupted();
            if failed || interrupted {
                let why = if interrupted {
                    "the run was interrupted"
                } else {
                    "an earlier step failed"
                };
                records.push(step::skipped(s, why));
                continue;
            }
            emit(
                self.events,
                RunEvent::StepStarted {
                    id: s.id.clone(),
                    name: s.name.clone(),
                },
            );
            let r = step::execute(s, &mut ctx).await;
            failed = r.status == StepStatus::Failed;
            emit(self.events, RunEvent::StepFinished(Box::new(r.clone())));
            records.push(r);
            records.append(&mut ctx.nested);
        }

        let recovery_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Recovery));
        if !interrupted {
            interrupted = self.pause(plan.recovery).await;
        }
        let recovery_end = self.now();
        let stopping = Instant::now();
        let goose_requests = load
            .stop()
            .await
            .map_err(|e| RunError::Load(e.to_string()))?
            .requests;
        ticker.abort();
        let ops = recorder
            .finish()
            .await
            .map_err(|source| RunError::Artifacts {
                path: self.out_dir.join("history.jsonl"),
                source,
            })?;
        if interrupted {
            return Err(RunError::Interrupted);
        }
        let load_stop_ms = stopping.elapsed().as_millis() as u64;

        let checking = Instant::now();
        let mut checks = Vec::new();
        let window = match &plan.backup {
            Some(_) => {
                let w = backup_window(&ctx.marks);
                if w.is_none() {
                    checks.push(CheckResult {
                        name: "backup and disaster marked".into(),
                        pass: false,
                        detail: "the steps marked `backup` and `disaster` did not both run to their end, so the data cannot be judged against a recovery point".into(),
                    });
                }
                w
            }
            None => None,
        };
        let data = if plan.checks.data {
            self.read_back(&targets, &ops, window.as_ref(), &mut checks)
                .await
        } else {
            DataResult {
                pass: true,
                ..Default::default()
            }
        };
        for c in &plan.checks.converge {
            checks.push(self.converge(c).await);
        }
        let recovery_limit = plan.slos[&Phase::Recovery].max_error_rate.unwrap_or(0.01);
        let recoveries: Vec<RecoveryResult> = ctx
            .recoveries
            .iter()
            .map(|m| {
                let first_ok = slo::time_to_recover(&ops, m.from, Some(&m.node));
                let to_slo = slo::time_to_slo(&ops, m.from, recovery_end, recovery_limit);
                let limit = m.within.map(|w| w.as_micros() as Micros);
                RecoveryResult {
                    step: m.step.clone(),
                    node: m.node.clone(),
                    from: m.from,
                    to_first_ok_ms: first_ok.map(ms),
                    to_slo_ms: to_slo.map(ms),
                    limit_ms: limit.map(ms),
                    pass: match (limit, first_ok) {
                        (None, _) => true,
                        (Some(l), Some(t)) => t <= l,
                        (Some(_), None) => false,
                    },
                }
            })
            .collect();
        for r in recoveries.iter().filter(|r| r.limit_ms.is_some()) {
            let shown = |v: Option<f64>| {
                v.map(|v| format!("{v:.0} ms"))
                    .unwrap_or_else(|| "never".into())
            };
            checks.push(CheckResult {
                name: format!("{} serves again within {} after step {}", r.node, shown(r.limit_ms), r.step),
                pass: r.pass,
                detail: format!(
                    "first successful operation on {} after {}; load back within the recovery error rate after {}",
                    r.node,
                    shown(r.to_first_ok_ms),
                    shown(r.to_slo_ms)
                ),
            });
        }
        let backup = plan
            .backup
            .as_ref()
            .zip(window.as_ref())
            .map(|(b, w)| backup_result(b, w, &ctx.marks, &ops));
        if let Some(b) = &backup {
            checks.extend(backup_checks(b));
        }
        let rollout = ctx.rollout.take().map(|mut r| {
            kill_switch_effect(&mut r, &ops, recovery_start, recovery_end, &mut checks);
            r
        });
        let reads = if plan.checks.reads {
            match &window {
                // After the disaster the keys hold what the backup held: reads are judged
                // up to the disaster, the restored data by the backup-mode data check.
                Some(w) => {
                    let before: Vec<Op> = ops
                        .iter()
                        .filter(|o| o.kind == OpKind::Write || o.t_return < w.disaster_start)
                        .cloned()
                        .collect();
                    check::read_check(&before)
                }
                None => check::read_check(&ops),
            }
        } else {
            ReadResult {
                pass: true,
                ..Default::default()
            }
        };
        let windows = [
            PhaseWindow {
                phase: Phase::Steady,
                start: steady_start,
                end: procedure_start,
            },
            PhaseWindow {
                phase: Phase::Procedure,
                start: procedure_start,
                end: recovery_start,
            },
            PhaseWindow {
                phase: Phase::Recovery,
                start: recovery_start,
                end: recovery_end,
            },
        ];
        let phases: Vec<_> = windows
            .iter()
            .map(|w| slo::evaluate_phase(&ops, *w, &plan.slos[&w.phase]))
            .collect();
        let (verdict, reasons) = verdict::judge(&records, &phases, &data, &reads, &checks);
        // Nodes the run had: those started with the cluster and any a step created (a spare
        // that joined); a spare never started is not part of the story.
        let mut had: BTreeSet<String> = images_at_start.keys().cloned().collect();
        had.extend(self.cluster.created_nodes());
        let nodes = had
            .into_iter()
            .map(|name| NodeRecord {
                image_at_start: images_at_start.get(&name).cloned().unwrap_or_default(),
                image_at_end: self.cluster.image(&name).unwrap_or_default(),
                name,
            })
            .collect();
        let summary = Summary {
            schema: SCHEMA.to_string(),
            scenario: plan.name.clone(),
            description: plan.description.clone(),
            runbook: plan.runbook.clone(),
            file: plan.file.display().to_string(),
            run_id: String::new(),
            seed: self.seed,
            started_at: String::new(),
            duration_ms: self.epoch.elapsed().as_millis() as u64,
            verdict,
            reasons,
            steps: records,
            phases,
            data,
            reads,
            checks,
            recoveries,
            load: load_stats(
                &ops,
                recovery_end.saturating_sub(steady_start),
                goose_requests,
            ),
            nodes,
            backup,
            rollout,
            timings: Timings {
                cluster_ready_ms,
                load_stop_ms,
                checks_ms: checking.elapsed().as_millis() as u64,
                ..Timings::default()
            },
        };
        Ok((summary, ops))
    }

    /// After a health gate, reads every key the load wrote and judges what is there.
    async fn read_back(
        &self,
        targets: &[Target],
        ops: &[Op],
        backup: Option<&BackupWindow>,
        checks: &mut Vec<CheckResult>,
    ) -> DataResult {
        let plan = self.plan;
        let running = self.cluster.running_nodes().await;
        let health = self
            .cluster
            .wait_healthy(&running, plan.checks.health_timeout)
            .await;
        checks.push(CheckResult {
            name: "cluster healthy after recovery".into(),
            pass: health.is_ok(),
            detail: match &health {
                Ok(()) => format!("{} running nodes pass their health check", running.len()),
                Err(e) => e.to_string(),
            },
        });
        let keys: Vec<String> = ops
            .iter()
            .filter(|o| o.kind == firedrill_types::history::OpKind::Write)
            .map(|o| o.key.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The read-back gets its own time, whatever the health gate took.
        let deadline = Instant::now() + plan.checks.health_timeout;
        match load::read_back(&plan.profile, targets, &keys, deadline).await {
            Ok(values) => match backup {
                Some(w) => check::backup_data_check(ops, &values, w),
                None => check::data_check(ops, &values),
            },
            Err(e) => {
                checks.push(CheckResult {
                    name: "read back every key".into(),
                    pass: false,
                    detail: e.to_string(),
                });
                DataResult::default()
            }
        }
    }
}

impl Drive<'_> {
    /// Runs the command on every node until the answers agree or the check times out.
    async fn converge(&self, c: &Converge) -> CheckResult {
        let deadline = Instant::now() + c.timeout;
        loop {
            let nodes = if c.nodes.is_empty() {
                self.cluster.running_nodes().await
            } else {
                c.nodes.clone()
            };
            let mut answers: BTreeMap<String, String> = BTreeMap::new();
            for n in &nodes {
                let answer = match self
                    .cluster
                    .exec(n, &c.command, Duration::from_secs(10))
                    .await
                {
                    Ok(out) if out.exit_code == 0 => {
                        let text = out.stdout.trim();
                        match &c.compare {
                            None => text.to_string(),
                            Some(r) => r
                                .captures(text)
                                .and_then(|caps| caps.get(1).or_else(|| caps.get(0)))
                                .map(|m| m.as_str().to_string())
                                .unwrap_or_else(|| format!("(no match for /{r}/ in `{text}`)")),
                        }
                    }
                    Ok(out) => format!("(exit {}: {})", out.exit_code, out.stderr.trim()),
                    Err(e) => format!("({e})"),
                };
                answers.insert(n.clone(), answer);
            }
            let distinct: BTreeSet<&String> = answers.values().collect();
            let agreed = distinct.len() == 1 && !distinct.iter().any(|a| a.starts_with('('));
            if agreed || Instant::now() + Duration::from_secs(1) > deadline {
                let detail = answers
                    .iter()
                    .map(|(n, a)| format!("{n}: {a}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                return CheckResult {
                    name: c.name.clone(),
                    pass: agreed,
                    detail: if agreed {
                        format!("all agree: {detail}")
                    } else {
                        format!("answers differ after {:?}: {detail}", c.timeout)
                    },
                };
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

fn load_stats(ops: &[Op], span: Micros, goose_requests: u64) -> LoadStats {
    let count = |f: &dyn Fn(&Op) -> bool| ops.iter().filter(|o| f(o)).count() as u64;
    LoadStats {
        ops: ops.len() as u64,
        reads: count(&|o| o.kind == firedrill_types::history::OpKind::Read),
        writes: count(&|o| o.kind == firedrill_types::history::OpKind::Write),
        ok: count(&|o| o.outcome == Outcome::Ok),
        fail: count(&|o| o.outcome == Outcome::Fail),
        unknown: count(&|o| o.outcome == Outcome::Unknown),
        ops_per_s: if span == 0 {
            0.0
        } else {
            ops.len() as f64 / (span as f64 / 1e6)
        },
        goose_requests,
        max_behind_schedule_ms: ops
            .iter()
            .map(|o| ms(o.t_call.saturating_sub(o.t_intended)))
            .fold(0.0, f64::max),
    }
}

/// The process's peak resident memory (Linux `VmHWM`), where /proc tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Streams operations into `history.jsonl` as they return and keeps them, readable by the
/// steps while the load goes on, for the checks.
struct Recorder {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    live: LiveHistory,
    ops: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Recorder {
    fn start(path: PathBuf) -> std::io::Result<(mpsc::UnboundedSender<Op>, Recorder, LiveHistory)> {
        let file = std::fs::File::create(&path)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
        let ops = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let live: LiveHistory = Arc::new(Mutex::new(Vec::new()));
        let (count, errs, all) = (ops.clone(), errors.clone(), live.clone());
        let task = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::new(file);
            let mut texts = TextPool::default();
            while let Some(mut op) = rx.blocking_recv() {
                texts.share(&mut op);
                serde_json::to_writer(&mut out, &op)?;
                out.write_all(b"\n")?;
                count.fetch_add(1, Ordering::Relaxed);
                if op.outcome != Outcome::Ok {
                    errs.fetch_add(1, Ordering::Relaxed);
                }
                all.lock().unwrap_or_else(PoisonError::into_inner).push(op);
            }
            out.flush()
        });
        let recorder = Recorder {
            task,
            live: live.clone(),
            ops,
            errors,
        };
        Ok((tx, recorder, live))
    }

    /// Reports the load's progress every few seconds.
    fn ticker(&self, events: EventSink) -> tokio::task::JoinHandle<()> {
        let (ops, errors) = (self.ops.clone(), self.errors.clone());
        tokio::spawn(async move {
            let mut last = (0u64, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = ops.load(Ordering::Relaxed);
                let rate = (n - last.0) as f64 / last.1.elapsed().as_secs_f64();
                last = (n, Instant::now());
                emit(
                    &events,
                    RunEvent::Load {
                        ops: n,
                        errors: errors.load(Ordering::Relaxed),
                        ops_per_s: rate,
                    },
                );
            }
        })
    }

    /// Waits until every sender is gone (the load stopped) and returns the history.
    async fn finish(self) -> std::io::Result<Vec<Op>> {
        self.task.await.map_err(std::io::Error::other)??;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *live))
    }
}

/// The backup window and the disaster, from the marks the steps reached; `None` unless all
/// four edges were reached.
fn backup_window(marks: &[MarkTime]) -> Option<BackupWindow> {
    let at = |mark: Mark, begin: bool| {
        marks
            .iter()
            .find(|m| m.mark == mark && m.begin == begin)
            .map(|m| m.at)
    };
    Some(BackupWindow {
        start: at(Mark::Backup, true)?,
        end: at(Mark::Backup, false)?,
        disaster_start: at(Mark::Disaster, true)?,
        disaster_end: at(Mark::Disaster, false)?,
    })
}

/// The restore's timeline: recovery point seen (RPO) and recovery time (RTO).
fn backup_result(
    plan: &BackupPlan,
    w: &BackupWindow,
    marks: &[MarkTime],
    ops: &[Op],
) -> BackupResult {
    let step = |mark: Mark| {
        marks
            .iter()
            .find(|m| m.mark == mark)
            .map(|m| m.step.clone())
            .unwrap_or_default()
    };
    let acked_writes = || {
        ops.iter()
            .filter(|o| o.kind == OpKind::Write && o.outcome == Outcome::Ok)
    };
    let last_ack = acked_writes()
        .filter(|o| o.t_return < w.disaster_start)
        .map(|o| o.t_return)
        .max();
    let writes_after_backup = acked_writes()
        .filter(|o| o.t_call > w.end && o.t_return < w.disaster_start)
        .count() as u64;
    let restore = slo::time_to_recover(ops, w.disaster_end, None);
    let rto = restore.map(|r| r + (w.disaster_end - w.disaster_start));
    let rpo = last_ack.map(|l| l.saturating_sub(w.start));
    let limit = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let (rto_limit_ms, rpo_limit_ms) = (limit(plan.rto), limit(plan.rpo));
    let within = |v: Option<Micros>, l: Option<f64>| match (v, l) {
        (_, None) => true,
        (Some(v), Some(l)) => ms(v) <= l,
        (None, Some(_)) => false,
    };
    BackupResult {
        backup_step: step(Mark::Backup),
        backup_start: w.start,
        backup_end: w.end,
        disaster_step: step(Mark::Disaster),
        disaster_start: w.disaster_start,
        disaster_end: w.disaster_end,
        last_ack_before_disaster: last_ack,
        rpo_ms: rpo.map(ms),
        writes_after_backup,
        first_ok_after: restore.map(|r| w.disaster_end + r),
        restore_ms: restore.map(ms),
        rto_ms: rto.map(ms),
        rto_limit_ms,
        rpo_limit_ms,
        // A restore never seen serving has no recovery time: that fails even without a limit.
        pass: rto.is_some() && within(rto, rto_limit_ms) && within(rpo, rpo_limit_ms),
    }
}

fn backup_checks(b: &BackupResult) -> Vec<CheckResult> {
    let shown = |v: Option<f64>| {
        v.map(|v| format!("{:.1} s", v / 1000.0))
            .unwrap_or_else(|| "never".into())
    };
    let mut checks = vec![CheckResult {
        name: match b.rto_limit_ms {
            Some(l) => format!("restore time (RTO) within {}", shown(Some(l))),
            None => "the restored cluster serves".into(),
        },
        pass: b.rto_ms.is_some() && b.rto_limit_ms.is_none_or(|l| b.rto_ms.is_some_and(|r| r <= l)),
        detail: format!(
            "first successful operation {} after the disaster began ({} after the last node was lost)",
            shown(b.rto_ms),
            shown(b.restore_ms)
        ),
    }];
    if let Some(l) = b.rpo_limit_ms {
        checks.push(CheckResult {
            name: format!("recovery point (RPO) within {}", shown(Some(l))),
            pass: b.rpo_ms.is_some_and(|r| r <= l),
            detail: format!(
                "{} acknowledged writes in the {} from the backup's start to the disaster",
                b.writes_after_backup,
                shown(b.rpo_ms)
            ),
        });
    }
    checks
}

/// When the kill switch ran: how long until the canary served its last request, and
/// whether it served none in the recovery phase (it held).
fn kill_switch_effect(
    r: &mut RolloutResult,
    ops: &[Op],
    recovery_start: Micros,
    recovery_end: Micros,
    checks: &mut Vec<CheckResult>,
) {
    let Some(k) = &mut r.kill_switch else {
        return;
    };
    let canary = |o: &&Op| o.backend.as_deref() == Some(r.canary.as_str());
    k.last_canary_request = ops.iter().filter(canary).map(|o| o.t_return).max();
    k.time_to_effect_ms = Some(ms(k
        .last_canary_request
        .map_or(0, |l| l.saturating_sub(k.at))));
    k.canary_requests_in_recovery = ops
        .iter()
        .filter(canary)
        .filter(|o| o.t_call >= recovery_start && o.t_call < recovery_end)
        .count() as u64;
    let in_time = k.time_to_effect_ms.is_some_and(|t| t <= k.limit_ms);
    k.pass = in_time && k.canary_requests_in_recovery == 0;
    checks.push(CheckResult {
        name: format!(
            "kill switch takes effect within {:.0} s",
            k.limit_ms / 1000.0
        ),
        pass: k.pass,
        detail: format!(
            "{} served its last request {:.1} s after the kill switch (step {}); {} requests to it in the recovery phase",
            r.canary,
            k.time_to_effect_ms.unwrap_or(0.0) / 1000.0,
            k.step,
            k.canary_requests_in_recovery
        ),
    });
}
