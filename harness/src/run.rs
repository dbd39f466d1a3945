//! One run of a plan: cluster up, load on, steps through the phases, the end state read,
//! cluster down. Everything it learns flows out as events and one `RunFacts`; the caller
//! judges them and hands the summary to the reporters.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use crate::background;
use crate::cluster::{self, Cluster, ClusterError};
use crate::events::{emit, EventSink, RunEvent};
use crate::fault::Faults;
use crate::load::{self, LoadRun, Target};
use crate::monitoring::{Monitor, MonitoringError};
use crate::step::{self, LiveHistory, StepContext};
use firedrill_spec::monitoring::MonitoringPlan;
use firedrill_spec::plan::{substitute, Converge, Plan, PlannedStep};
use firedrill_types::facts::{
    ConvergeRun, KillSwitchRun, MarkTime, PhaseTimes, ReadBack, RecoveryMark, RunFacts,
};
use firedrill_types::history::{Micros, Op, OpKind, Outcome, Phase, TextPool};
use firedrill_types::monitoring::MonitoringFacts;
use firedrill_types::summary::{
    EffectResult, NodeRecord, RolloutResult, StepRecord, StepStatus, Timings,
};

/// Lines of a failed node's log kept in the verdict.
const LOG_TAIL_LINES: usize = 20;
/// The archived final read-back (docs/artifacts.md).
pub const FINAL_STATE_FILE: &str = "final-state.jsonl";

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where artifacts go; `reports/<scenario>/<timestamp>/` when absent.
    pub out_dir: Option<PathBuf>,
    pub seed: Option<u64>,
    /// Leave the cluster running for a post-mortem.
    pub keep: bool,
    /// Stop the procedure after this step and drill the runbook's Rollback section.
    pub rollback_at: Option<String>,
    /// How many scenarios run at once on the engine (`--jobs`), recorded in the summary's
    /// timings; 0 counts as 1.
    pub jobs: u32,
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
    #[error(transparent)]
    Monitoring(#[from] MonitoringError),
    #[error("the run panicked: {0}; the cluster was removed")]
    Panicked(String),
    #[error("interrupted; the cluster was removed")]
    Interrupted,
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        use firedrill_types::exit;
        match self {
            RunError::Cluster(_) | RunError::Artifacts { .. } | RunError::Load(_) => {
                exit::INFRASTRUCTURE
            }
            RunError::Monitoring(e) if e.is_input() => exit::INVALID_INPUT,
            RunError::Monitoring(_) => exit::INFRASTRUCTURE,
            RunError::Panicked(_) => exit::INTERNAL,
            RunError::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// What a run recorded, and where its artifacts are.
pub struct Ran {
    pub facts: RunFacts,
    pub out_dir: PathBuf,
}

/// Runs the plan and removes what it created (unless `keep`), whatever happens.
pub async fn run(
    plan: &Plan,
    opts: &RunOptions,
    docker: &Docker,
    events: &EventSink,
    interrupt: watch::Receiver<bool>,
) -> Result<Ran, RunError> {
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
        rollback_at: opts
            .rollback_at
            .as_deref()
            .and_then(|n| crate::runbook::rollback_after(plan, n)),
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
        emit(events, RunEvent::Note(keep_note(plan, &cluster)));
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
    let recorded = outcome?;
    let facts = RunFacts {
        run_id,
        seed,
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: recorded.duration_ms,
        phases: recorded.phases,
        steps: recorded.steps,
        ops: recorded.ops,
        goose_requests: recorded.goose_requests,
        marks: recorded.marks,
        recoveries: recorded.recoveries,
        rollout: recorded.rollout,
        kill_switch: recorded.kill_switch,
        effects: recorded.effects,
        nodes: recorded.nodes,
        read_back: recorded.read_back,
        converge: recorded.converge,
        monitoring: recorded.monitoring,
        timings: Timings {
            cluster_create_ms,
            teardown_ms,
            peak_rss_mib: peak_rss_mib(),
            jobs: opts.jobs.max(1),
            ..recorded.timings
        },
    };
    archive_final_state(&facts.read_back, &out_dir).map_err(|source| RunError::Artifacts {
        path: out_dir.clone(),
        source,
    })?;
    Ok(Ran { facts, out_dir })
}

/// How to reach each node of a kept cluster, and how to remove it.
fn keep_note(plan: &Plan, cluster: &Cluster) -> String {
    let created: BTreeSet<String> = cluster.created_nodes().into_iter().collect();
    let nodes: Vec<String> = plan
        .compose
        .services
        .iter()
        .filter(|s| created.contains(&s.name))
        .filter_map(|s| {
            let c = cluster.container_name(&s.name)?;
            let ports: Vec<String> = s
                .ports
                .iter()
                .filter_map(|p| {
                    cluster
                        .host_port(&s.name, p.container_port)
                        .map(|h| format!("{}→{}:{h}", p.container_port, cluster::published_host()))
                })
                .collect();
            Some(format!(
                "  {}: docker exec -it {c} sh   (ports {})",
                s.name,
                ports.join(", ")
            ))
        })
        .collect();
    format!(
        "--keep: the cluster stays up (network {}).\n{}\nremove it with `firedrill clean --run {}`",
        cluster.network(),
        nodes.join("\n"),
        cluster.run_id()
    )
}

/// Writes `final-state.jsonl`: one line per key read back, so the data check can be
/// recounted from the artifacts.
fn archive_final_state(read_back: &ReadBack, out_dir: &Path) -> std::io::Result<()> {
    let ReadBack::Done(values) = read_back else {
        return Ok(());
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(out_dir.join(FINAL_STATE_FILE))?);
    for v in values {
        serde_json::to_writer(&mut out, v)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn default_out_dir(scenario: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    unused_dir(&Path::new("reports").join(scenario), &stamp)
}

/// `base/stamp`, or `base/stamp-2`, `-3`… when two runs start within the same second.
fn unused_dir(base: &Path, stamp: &str) -> PathBuf {
    let mut dir = base.join(stamp);
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
    rollback_at: Option<&'a str>,
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

    async fn drive(mut self) -> Result<Recorded, RunError> {
        let plan = self.plan;
        let t = Instant::now();
        let starting: Vec<String> = plan
            .compose
            .services
            .iter()
            .filter(|s| s.starts_with_cluster())
            .map(|s| s.name.clone())
            .collect();
        // Prometheus first: one that rejects its rules exits at once, and says why.
        let monitor = match &plan.monitoring {
            Some(m) => {
                Some(Monitor::connect(m, self.cluster, self.epoch, plan.ready_timeout).await?)
            }
            None => None,
        };
        self.cluster
            .wait_healthy(&starting, plan.ready_timeout)
            .await?;
        let mut monitoring = match (&monitor, &plan.monitoring) {
            (Some(monitor), Some(m)) => Some(self.monitoring_start(monitor, m).await?),
            _ => None,
        };
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
                let port = self.cluster.host_port(n, plan.profile.source.port)?;
                Some(Target {
                    node: n.clone(),
                    base_url: cluster::published_url(port),
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
        let alerts = monitor.as_ref().map(Monitor::watch);

        let steady_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Steady));
        let mut interrupted = self.pause(plan.steady).await;

        let procedure_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Procedure));
        let faults = Faults::new(self.cluster, plan.fault_image.clone());
        let transcripts = self.out_dir.join("steps");
        let http = reqwest::Client::new();
        // Background steps run next to the procedure, driven on this task.
        let (background, background_driver) = background::start(background::Shared {
            cluster: self.cluster,
            faults: &faults,
            http: http.clone(),
            epoch: self.epoch,
            transcripts: &transcripts,
            history: live.clone(),
            events: self.events.clone(),
            prometheus: monitor.as_ref().map(|m| m.prometheus.clone()),
        });
        let mut ctx = StepContext {
            cluster: self.cluster,
            faults: &faults,
            recoveries: Vec::new(),
            http,
            vars: BTreeMap::from([
                ("run_id".to_string(), self.run_id.to_string()),
                ("seed".to_string(), self.seed.to_string()),
            ]),
            epoch: self.epoch,
            transcripts: &transcripts,
            history: live,
            events: self.events.clone(),
            marks: Vec::new(),
            nested: Vec::new(),
            rollout: None,
            kill_switch: None,
            effects: Vec::new(),
            started: BTreeMap::new(),
            background: Some(background),
            stop: None,
            prometheus: monitor.as_ref().map(|m| m.prometheus.clone()),
        };
        let ((steps, steps_interrupted), ()) =
            futures_util::future::join(self.steps(&mut ctx), background_driver).await;
        interrupted |= steps_interrupted;

        let recovery_start = self.now();
        emit(self.events, RunEvent::PhaseStarted(Phase::Recovery));
        if !interrupted {
            interrupted = self.pause(plan.recovery).await;
        }
        let recovery_end = self.now();
        if let (Some(watch), Some(facts), Some(monitor)) = (alerts, &mut monitoring, &monitor) {
            let watched = watch.stop(&self.out_dir.join("alerts.jsonl")).await?;
            facts.polls = watched.polls;
            facts.poll_errors = watched.errors;
            facts.first_poll_error = watched.first_error;
            facts.observations = watched.observations;
            (facts.panels, facts.panel_series) = monitor
                .panels(steady_start, recovery_end, self.out_dir)
                .await?;
            let windows = BTreeMap::from([
                (Phase::Steady, (steady_start, procedure_start)),
                (Phase::Procedure, (procedure_start, recovery_start)),
                (Phase::Recovery, (recovery_start, recovery_end)),
            ]);
            facts.slo_samples = monitor.slo_samples(&windows, self.out_dir).await?;
            facts.expected_labels = self.expected_labels(&ctx.vars);
            if let Some((_, exposed)) = &mut facts.hygiene {
                *exposed = monitor.exposed_since(steady_start).await?;
            }
        }
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
        let nodes = self.end_state(&images_at_start).await;
        // The read-back goes over HTTP and the convergence commands through docker exec:
        // neither waits for the other.
        let read_back = async {
            if plan.checks.data {
                self.read_back(&targets, &ops).await
            } else {
                ReadBack::Skipped
            }
        };
        let converge = async {
            let mut converge = Vec::new();
            for c in &plan.checks.converge {
                converge.push(self.converge(c, &nodes).await);
            }
            converge
        };
        let (read_back, converge) = tokio::join!(read_back, converge);
        Ok(Recorded {
            duration_ms: self.epoch.elapsed().as_millis() as u64,
            phases: PhaseTimes {
                steady_start,
                procedure_start,
                recovery_start,
                recovery_end,
            },
            steps,
            ops,
            goose_requests,
            marks: ctx.marks,
            recoveries: ctx.recoveries,
            rollout: ctx.rollout,
            kill_switch: ctx.kill_switch,
            effects: ctx.effects,
            nodes,
            read_back,
            converge,
            monitoring,
            timings: Timings {
                cluster_ready_ms,
                load_stop_ms,
                checks_ms: checking.elapsed().as_millis() as u64,
                ..Timings::default()
            },
        })
    }

    /// Checks the rules against the scenario's alert names and, with rule hygiene, takes
    /// the metric names the targets expose.
    async fn monitoring_start(
        &self,
        monitor: &Monitor<'_>,
        plan: &MonitoringPlan,
    ) -> Result<MonitoringFacts, MonitoringError> {
        let rules = monitor.rules().await?;
        monitor.first_scrape(plan.poll * 20).await?;
        if plan.rule_hygiene {
            let exposed = monitor.exposed_now().await?;
            let absent: BTreeSet<&str> = rules
                .iter()
                .flat_map(|r| &r.metrics)
                .filter(|m| !exposed.contains(*m))
                .map(String::as_str)
                .collect();
            if !absent.is_empty() {
                emit(
                    self.events,
                    RunEvent::Note(format!(
                        "rule hygiene: no target exposes {} yet; judged again over the whole run at its end",
                        absent.into_iter().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
        emit(
            self.events,
            RunEvent::Note(format!(
                "Prometheus of `{}` at {}: {} rules loaded; watching its alerts every {:?}",
                plan.node,
                monitor.prometheus.base_url(),
                rules.len(),
                plan.poll
            )),
        );
        Ok(MonitoringFacts {
            prometheus: format!("{} ({})", plan.node, monitor.prometheus.base_url()),
            hygiene: plan.rule_hygiene.then(|| (rules, BTreeSet::new())),
            ..MonitoringFacts::default()
        })
    }

    /// Each alert expectation's labels with the run's variables (captures included).
    fn expected_labels(&self, vars: &BTreeMap<String, String>) -> Vec<BTreeMap<String, String>> {
        let Some(m) = &self.plan.monitoring else {
            return Vec::new();
        };
        m.alerts
            .iter()
            .map(|a| {
                a.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), substitute(v, |n| vars.get(n).cloned()).0))
                    .collect()
            })
            .collect()
    }

    /// Runs the procedure's steps in order; after a failure or Ctrl-C the rest are skipped.
    async fn steps(&self, ctx: &mut StepContext<'_>) -> (Vec<StepRecord>, bool) {
        let mut records = Vec::new();
        let mut interrupted = false;
        // Why the rest of the procedure is skipped, once something stopped it.
        let mut stopped: Option<String> = None;
        for s in &self.plan.steps {
            interrupted |= self.interrupted();
            if stopped.is_none() {
                if let Some(f) = ctx.background.as_ref().and_then(|b| b.failure()) {
                    stopped = Some(format!("a background step failed ({f})"));
                }
            }
            let why = if interrupted {
                Some("the run was interrupted")
            } else {
                stopped.as_deref()
            };
            if let Some(why) = why {
                records.push(step::skipped(s, why));
                continue;
            }
            let r = self.step(s, ctx, &mut records).await;
            if r == StepStatus::Failed {
                stopped = Some("an earlier step failed".into());
            } else if self.rollback_at == Some(s.id.as_str()) {
                stopped = Some(format!("the rollback is drilled after step {}", s.id));
            }
        }
        // A runbook's Rollback section runs when the procedure stopped: after a failure
        // (the run still fails) or when drilled on purpose.
        let rollback = self.plan.page.as_ref().map_or(&[][..], |p| &p.rollback[..]);
        if stopped.is_some() && !interrupted {
            let mut failed = false;
            for s in rollback {
                interrupted |= self.interrupted();
                if failed || interrupted {
                    records.push(step::skipped(
                        s,
                        "an earlier rollback step failed or the run was interrupted",
                    ));
                    continue;
                }
                failed = self.step(s, ctx, &mut records).await == StepStatus::Failed;
            }
        }
        // Whatever ended the procedure, every background still running stops now, before
        // the recovery phase; the records it has not handed to a stop step go last.
        if let Some(background) = ctx.background.take() {
            let rest = background.stop_all().await;
            if !rest.is_empty() {
                emit(
                    self.events,
                    RunEvent::Note(format!(
                        "end of the procedure: backgrounds stopped ({} steps recorded)",
                        rest.len()
                    )),
                );
            }
            records.extend(rest);
        }
        (records, interrupted)
    }

    /// Runs one step, records it (and the steps it ran inside), and says how it ended.
    async fn step(
        &self,
        s: &PlannedStep,
        ctx: &mut StepContext<'_>,
        records: &mut Vec<StepRecord>,
    ) -> StepStatus {
        emit(
            self.events,
            RunEvent::StepStarted {
                id: s.id.clone(),
                name: s.name.clone(),
            },
        );
        let r = step::execute(s, ctx).await;
        let status = r.status;
        emit(self.events, RunEvent::StepFinished(Box::new(r.clone())));
        records.push(r);
        records.append(&mut ctx.nested);
        status
    }

    /// Every node the run had, at the end: the expected ones (still created, not declared
    /// removed) get the health gate; a node that is not running is not waited for, its
    /// state and log are recorded instead.
    async fn end_state(&self, images_at_start: &BTreeMap<String, String>) -> Vec<NodeRecord> {
        let plan = self.plan;
        let mut had: BTreeMap<String, bool> =
            images_at_start.keys().map(|n| (n.clone(), false)).collect();
        had.extend(self.cluster.nodes_had());
        let mut nodes = Vec::new();
        for (name, exists) in had {
            let declared_removed = plan.checks.removed.contains(&name);
            let not_expected_because = if declared_removed {
                Some("declared removed in checks.removed".to_string())
            } else if !exists {
                Some("destroyed by a step and not started again".to_string())
            } else {
                None
            };
            let state = self.cluster.container_state(&name).await;
            nodes.push(NodeRecord {
                image_at_start: images_at_start.get(&name).cloned().unwrap_or_default(),
                image_at_end: self.cluster.image(&name).unwrap_or_default(),
                expected: not_expected_because.is_none(),
                not_expected_because,
                running: state.as_ref().is_some_and(|s| s.running),
                healthy: false,
                state: state
                    .as_ref()
                    .map_or_else(|| "removed".to_string(), |s| s.status.clone()),
                exit_code: state.as_ref().and_then(|s| s.exit_code),
                health_detail: String::new(),
                log_tail: Vec::new(),
                name,
            });
        }
        let gate: Vec<String> = nodes
            .iter()
            .filter(|n| n.expected && n.running)
            .map(|n| n.name.clone())
            .collect();
        // One deadline for the whole gate, so a slow node does not stretch it per node.
        let healthy = self
            .cluster
            .wait_healthy(&gate, plan.checks.health_timeout)
            .await;
        for n in &mut nodes {
            if !n.expected {
                n.health_detail = "not checked: not expected".into();
                continue;
            }
            if !n.running {
                n.health_detail = format!("not checked: the container is {}", n.state);
            } else if healthy.is_ok() {
                n.healthy = true;
                n.health_detail = "passes its health check".into();
            } else {
                match self.cluster.health(&n.name).await {
                    Ok(()) => {
                        n.healthy = true;
                        n.health_detail = "passes its health check".into();
                    }
                    Err(e) => n.health_detail = e,
                }
            }
            if !n.healthy {
                n.log_tail = self.cluster.log_tail(&n.name, LOG_TAIL_LINES).await;
            }
        }
        nodes
    }

    /// Reads every key the load wrote, after the health gate.
    async fn read_back(&self, targets: &[Target], ops: &[Op]) -> ReadBack {
        let keys: Vec<String> = ops
            .iter()
            .filter(|o| o.kind != OpKind::Read)
            .map(|o| o.key.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The read-back gets its own time, whatever the health gate took.
        let deadline = Instant::now() + self.plan.checks.health_timeout;
        match load::read_back(&self.plan.profile, targets, &keys, deadline, self.epoch).await {
            Ok(values) => ReadBack::Done(values),
            Err(e) => ReadBack::Failed(e.to_string()),
        }
    }

    /// Runs the command on every node it covers until the answers agree or the check times
    /// out. It covers the nodes it names, or every expected node; one that is not running
    /// is skipped, and the skip is recorded.
    async fn converge(&self, c: &Converge, nodes: &[NodeRecord]) -> ConvergeRun {
        let deadline = Instant::now() + c.timeout;
        let wanted: Vec<&NodeRecord> = if c.nodes.is_empty() {
            nodes.iter().filter(|n| n.expected).collect()
        } else {
            nodes.iter().filter(|n| c.nodes.contains(&n.name)).collect()
        };
        let mut skipped: BTreeMap<String, String> = wanted
            .iter()
            .filter(|n| !n.running)
            .map(|n| (n.name.clone(), format!("not running: {}", n.state)))
            .collect();
        for n in c
            .nodes
            .iter()
            .filter(|n| !nodes.iter().any(|r| &r.name == *n))
        {
            skipped.insert(n.clone(), "never started".into());
        }
        let covered: Vec<&str> = wanted
            .iter()
            .filter(|n| n.running)
            .map(|n| n.name.as_str())
            .collect();
        loop {
            // Every node at once: each answer is a docker exec of about 0.1 s.
            let asked = covered.iter().map(|n| async move {
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
                (n.to_string(), answer)
            });
            let answers: BTreeMap<String, String> = futures_util::future::join_all(asked)
                .await
                .into_iter()
                .collect();
            let distinct: BTreeSet<&String> = answers.values().collect();
            let agreed = distinct.len() == 1 && !distinct.iter().any(|a| a.starts_with('('));
            if agreed || Instant::now() + CONVERGE_RETRY > deadline {
                return ConvergeRun {
                    name: c.name.clone(),
                    answers,
                    skipped,
                    timeout_ms: c.timeout.as_millis() as u64,
                };
            }
            tokio::time::sleep(CONVERGE_RETRY).await;
        }
    }
}

/// How long a convergence check waits before asking the nodes again: replicas that still
/// apply the last writes agree a moment later.
const CONVERGE_RETRY: Duration = Duration::from_millis(250);

/// What `drive` recorded; `run` adds what happened around it (creation, teardown).
struct Recorded {
    duration_ms: u64,
    phases: PhaseTimes,
    steps: Vec<StepRecord>,
    ops: Vec<Op>,
    goose_requests: u64,
    marks: Vec<MarkTime>,
    recoveries: Vec<RecoveryMark>,
    rollout: Option<RolloutResult>,
    kill_switch: Option<KillSwitchRun>,
    effects: Vec<EffectResult>,
    nodes: Vec<NodeRecord>,
    read_back: ReadBack,
    converge: Vec<ConvergeRun>,
    monitoring: Option<MonitoringFacts>,
    timings: Timings,
}

/// The process's peak resident memory (Linux `VmHWM`), where /proc tells it.
fn peak_rss_mib() -> Option<f64> {
    vm_hwm_mib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM:   42496 kB` of a /proc status file, in MiB.
fn vm_hwm_mib(status: &str) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_types::exit;
    use firedrill_types::facts::FinalValue;

    #[test]
    fn each_run_error_has_its_documented_exit_code() {
        let io = || std::io::Error::other("disk full");
        let cases = [
            (
                RunError::Artifacts {
                    path: "reports/x".into(),
                    source: io(),
                },
                exit::INFRASTRUCTURE,
            ),
            (RunError::Load("goose".into()), exit::INFRASTRUCTURE),
            (
                RunError::Cluster(ClusterError::UnknownNode("kv9".into())),
                exit::INFRASTRUCTURE,
            ),
            (RunError::Panicked("oops".into()), exit::INTERNAL),
            (RunError::Interrupted, exit::INTERRUPTED),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn a_second_run_in_the_same_second_gets_its_own_directory() {
        let base = tempfile::tempdir().expect("tempdir");
        let first = unused_dir(base.path(), "20250314T092653Z");
        assert_eq!(first, base.path().join("20250314T092653Z"));
        std::fs::create_dir(&first).expect("mkdir");
        let second = unused_dir(base.path(), "20250314T092653Z");
        assert_eq!(second, base.path().join("20250314T092653Z-2"));
        std::fs::create_dir(&second).expect("mkdir");
        assert!(unused_dir(base.path(), "20250314T092653Z").ends_with("20250314T092653Z-3"));
    }

    #[test]
    fn the_final_state_is_one_json_line_per_key_and_nothing_when_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        archive_final_state(&ReadBack::Skipped, dir.path()).expect("skipped");
        assert!(!dir.path().join(FINAL_STATE_FILE).exists());
        let values = vec![
            FinalValue {
                key: "k1".into(),
                value: Some("c1-w7".into()),
                read_at: 12,
                node: "kv1".into(),
            },
            FinalValue {
                key: "k2".into(),
                value: None,
                read_at: 13,
                node: "kv2".into(),
            },
        ];
        archive_final_state(&ReadBack::Done(values.clone()), dir.path()).expect("written");
        let text = std::fs::read_to_string(dir.path().join(FINAL_STATE_FILE)).expect("read");
        let back: Vec<FinalValue> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a line is a FinalValue"))
            .collect();
        assert_eq!(back, values);
    }

    #[test]
    fn peak_memory_is_read_from_vm_hwm() {
        let status = "Name:\tfiredrill\nVmPeak:\t  90000 kB\nVmHWM:\t   43520 kB\n";
        assert_eq!(vm_hwm_mib(status), Some(42.5));
        assert_eq!(vm_hwm_mib("Name:\tfiredrill\n"), None);
        assert_eq!(vm_hwm_mib("VmHWM: lots"), None);
    }
}
