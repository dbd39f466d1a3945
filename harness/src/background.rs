//! Steps that run alongside the procedure: a `background` step starts them (once, or over
//! and over with `repeat`), a `stop_background` step or the end of the procedure stops
//! them — also after a failure and on Ctrl-C, before the recovery phase.
//!
//! The tasks are futures driven next to the procedure on the same task ([`start`] returns
//! the driver, which the run joins with the procedure), so they borrow the cluster like any
//! step. Stopping one is cooperative: the watch channel it gets wakes `sleep` and `stall`
//! at once, the current pass's other steps still run (so a `pause` is followed by its
//! `unpause`), and no new pass begins. A background step that fails ends its background
//! and stops the procedure, as a failed step would; its record fails the run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::Cluster;
use crate::events::{emit, EventSink, RunEvent};
use crate::fault::Faults;
use crate::prometheus::Prometheus;
use crate::stall;
use crate::step::{self, LiveHistory, StepContext};
use firedrill_spec::plan::{BackgroundPlan, PlannedStep};
use firedrill_types::summary::{StepRecord, StepStatus};

/// The shortest pass of a repeating background: one whose steps take no time (a pause and
/// an unpause) would otherwise spin on the Docker API.
const MIN_PASS: Duration = Duration::from_millis(100);

/// What the background tasks share with the procedure.
#[derive(Clone)]
pub struct Shared<'a> {
    pub cluster: &'a Cluster,
    pub faults: &'a Faults<'a>,
    pub http: reqwest::Client,
    pub epoch: Instant,
    pub transcripts: &'a Path,
    pub history: LiveHistory,
    pub events: EventSink,
    pub prometheus: Option<Prometheus>,
}

enum Command {
    Start {
        plan: Box<BackgroundPlan>,
        /// The id of the step that starts it: repeated passes are numbered under it.
        id: String,
        vars: BTreeMap<String, String>,
    },
    /// The records of the background, once stopped; `None` when it was never started (or
    /// its records were taken already).
    Stop {
        name: String,
        reply: oneshot::Sender<Option<Vec<StepRecord>>>,
    },
    /// Every background stopped, and every record not taken yet, in the order they started.
    StopAll {
        reply: oneshot::Sender<Vec<StepRecord>>,
    },
}

/// The procedure's end of the channel.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Handle {
    pub fn start(&self, plan: BackgroundPlan, id: &str, vars: BTreeMap<String, String>) {
        let _ = self.tx.send(Command::Start {
            plan: Box::new(plan),
            id: id.to_string(),
            vars,
        });
    }

    /// Stops the background and waits for it; its records, or `None` if it never started.
    pub async fn stop(&self, name: &str) -> Option<Vec<StepRecord>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Stop {
            name: name.to_string(),
            reply,
        });
        rx.await.ok().flatten()
    }

    /// Stops every background and waits for them: their records not taken yet.
    pub async fn stop_all(&self) -> Vec<StepRecord> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Command::StopAll { reply });
        rx.await.unwrap_or_default()
    }

    /// The first background step that failed, in words.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The handle for the steps, and the driver to run next to them until `stop_all` (or until
/// every handle is gone).
pub fn start<'a>(shared: Shared<'a>) -> (Handle, BoxFuture<'a, ()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let failure = Arc::new(Mutex::new(None));
    let handle = Handle {
        tx,
        failure: failure.clone(),
    };
    (handle, drive(shared, rx, failure).boxed())
}

async fn drive<'a>(
    shared: Shared<'a>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let mut running: FuturesUnordered<BoxFuture<'a, (String, Vec<StepRecord>)>> =
        FuturesUnordered::new();
    let mut stops: BTreeMap<String, watch::Sender<bool>> = BTreeMap::new();
    // Finished, records not taken yet, in the order they finished.
    let mut done: Vec<(String, Vec<StepRecord>)> = Vec::new();
    let mut waiting: Vec<(String, oneshot::Sender<Option<Vec<StepRecord>>>)> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    // Set once everything is to stop: the reply to send when the last task has ended.
    let mut closing: Option<Option<oneshot::Sender<Vec<StepRecord>>>> = None;
    loop {
        if running.is_empty() {
            if let Some(reply) = closing.take() {
                let mut all = Vec::new();
                for name in &order {
                    if let Some(i) = done.iter().position(|(n, _)| n == name) {
                        all.extend(done.remove(i).1);
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(all);
                }
                return;
            }
        }
        tokio::select! {
            cmd = rx.recv(), if closing.is_none() => match cmd {
                Some(Command::Start { plan, id, vars }) => {
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let name = plan.name.clone();
                    stops.insert(name.clone(), stop_tx);
                    order.push(name.clone());
                    let task = run_task(shared.clone(), plan, id, vars, stop_rx, failure.clone());
                    running.push(task.map(move |records| (name, records)).boxed());
                }
                Some(Command::Stop { name, reply }) => {
                    if let Some(i) = done.iter().position(|(n, _)| *n == name) {
                        let _ = reply.send(Some(done.remove(i).1));
                    } else if let Some(stop) = stops.get(&name) {
                        let _ = stop.send(true);
                        waiting.push((name, reply));
                    } else {
                        let _ = reply.send(None);
                    }
                }
                Some(Command::StopAll { reply }) => {
                    stops.values().for_each(|s| { let _ = s.send(true); });
                    closing = Some(Some(reply));
                }
                None => {
                    stops.values().for_each(|s| { let _ = s.send(true); });
                    closing = Some(None);
                }
            },
            Some((name, records)) = running.next(), if !running.is_empty() => {
                stops.remove(&name);
                let records = match waiting.iter().position(|(n, _)| *n == name) {
                    // A stop step that gave up waiting leaves the records to `stop_all`.
                    Some(i) => waiting.remove(i).1.send(Some(records)).err().flatten(),
                    None => Some(records),
                };
                if let Some(records) = records {
                    done.push((name, records));
                }
            }
        }
    }
}

/// One background: its steps, pass after pass with `repeat`, until stopped or failed.
async fn run_task(
    shared: Shared<'_>,
    plan: Box<BackgroundPlan>,
    id: String,
    vars: BTreeMap<String, String>,
    stop: watch::Receiver<bool>,
    failure: Arc<Mutex<Option<String>>>,
) -> Vec<StepRecord> {
    let mut ctx = StepContext {
        cluster: shared.cluster,
        faults: shared.faults,
        http: shared.http.clone(),
        vars,
        epoch: shared.epoch,
        transcripts: shared.transcripts,
        recoveries: Vec::new(),
        history: shared.history.clone(),
        events: shared.events.clone(),
        marks: Vec::new(),
        nested: Vec::new(),
        rollout: None,
        kill_switch: None,
        effects: Vec::new(),
        started: BTreeMap::new(),
        background: None,
        stop: Some(stop.clone()),
        prometheus: shared.prometheus.clone(),
    };
    let mut records = Vec::new();
    let mut pass = 0u32;
    'passes: loop {
        pass += 1;
        let began = Instant::now();
        for (i, s) in plan.steps.iter().enumerate() {
            let s = numbered(s, &id, plan.repeat.then_some(pass));
            let r = step::execute(&s, &mut ctx).await;
            let failed = r.status == StepStatus::Failed;
            if failed {
                let why = format!(
                    "background `{}`: step {} `{}` failed: {}",
                    plan.name,
                    r.id,
                    r.name,
                    r.error.as_deref().unwrap_or("no detail")
                );
                emit(&shared.events, RunEvent::Note(why.clone()));
                failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(why);
            }
            records.push(r);
            records.append(&mut ctx.nested);
            if failed {
                for rest in &plan.steps[i + 1..] {
                    let rest = numbered(rest, &id, plan.repeat.then_some(pass));
                    records.push(step::skipped(
                        &rest,
                        "an earlier step of its background failed",
                    ));
                }
                break 'passes;
            }
        }
        if !plan.repeat || *stop.borrow() {
            break;
        }
        let mut wake = Some(stop.clone());
        if stall::sleep_until_or_stop(began + MIN_PASS, &mut wake).await {
            break;
        }
    }
    let failed = records
        .iter()
        .filter(|r| r.status == StepStatus::Failed)
        .count();
    emit(
        &shared.events,
        RunEvent::Note(format!(
            "background `{}` ended after {} step{}{}{}",
            plan.name,
            records.len(),
            if records.len() == 1 { "" } else { "s" },
            if plan.repeat {
                format!(" ({pass} pass{})", if pass == 1 { "" } else { "es" })
            } else {
                String::new()
            },
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        )),
    );
    records
}

/// A repeating background's steps are numbered by pass, as a loop's are by item: step 2 of
/// pass 3 of the background started by step 6 is `6.3.2`.
fn numbered(s: &PlannedStep, id: &str, pass: Option<u32>) -> PlannedStep {
    let mut s = s.clone();
    if let (Some(pass), Some(rest)) = (pass, s.id.strip_prefix(&format!("{id}."))) {
        s.id = format!("{id}.{pass}.{rest}");
    }
    s
}
