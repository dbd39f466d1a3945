//! What a run did, before anything is judged: the runtime records these facts and the
//! judge turns them into a [`Summary`](crate::summary::Summary).
//!
//! Everything the judge needs is here, so a verdict can be recomputed from a run's
//! artifacts: `history.jsonl` holds [`RunFacts::ops`], `final-state.jsonl` the
//! [`ReadBack`], `summary.json` the rest (docs/artifacts.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{Micros, Op};
use crate::monitoring::MonitoringFacts;
use crate::summary::{EffectResult, NodeRecord, RolloutResult, StepRecord, Timings};

/// A span of the run clock that a scenario marks on a step, for the backup-mode checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// The backup is taken: its recovery point lies between the step's start and end.
    Backup,
    /// The cluster is lost: from the step's start nothing acknowledged after the backup is
    /// safe; writes invoked after its end go to the restored cluster.
    Disaster,
}

/// A marked span's begin or end on the run clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkTime {
    pub mark: Mark,
    /// The step or loop marked.
    pub step: String,
    pub begin: bool,
    pub at: Micros,
}

/// A passed step after which `node` should serve again.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryMark {
    pub step: String,
    pub node: String,
    /// When the step ended, on the run clock.
    pub from: Micros,
    /// The scenario's `recovers.within`, in microseconds.
    pub within: Option<Micros>,
}

/// When the phases began, on the run clock; the recovery phase ends at `recovery_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhaseTimes {
    pub steady_start: Micros,
    pub procedure_start: Micros,
    pub recovery_start: Micros,
    pub recovery_end: Micros,
}

/// A rollout's kill switch as it ran: the judge measures its effect in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct KillSwitchRun {
    pub step: String,
    /// When the kill-switch step began.
    pub at: Micros,
    pub limit_ms: f64,
}

/// One key as the final read-back found it: a line of `final-state.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalValue {
    pub key: String,
    /// `None`: the key was absent.
    pub value: Option<String>,
    /// When the successful read returned, on the run clock.
    pub read_at: Micros,
    /// The node that answered.
    pub node: String,
}

/// The final read-back of every key the load wrote, after the health gate.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadBack {
    /// The data check is off for this scenario.
    Skipped,
    Done(Vec<FinalValue>),
    /// Some key could not be read before the deadline.
    Failed(String),
}

/// A convergence command's answers after its last attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergeRun {
    pub name: String,
    /// Each covered node's answer; an answer in parentheses is an error.
    pub answers: BTreeMap<String, String>,
    /// Nodes the check should have covered but could not, with the reason.
    pub skipped: BTreeMap<String, String>,
    pub timeout_ms: u64,
}

/// Everything a run recorded.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub seed: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// From the run clock's epoch to the end of the checks.
    pub duration_ms: u64,
    pub phases: PhaseTimes,
    /// Every step in order, those nested in a rollout right after it.
    pub steps: Vec<StepRecord>,
    pub ops: Vec<Op>,
    /// Requests goose itself counted, as a cross-check of the history.
    pub goose_requests: u64,
    pub marks: Vec<MarkTime>,
    pub recoveries: Vec<RecoveryMark>,
    pub rollout: Option<RolloutResult>,
    pub kill_switch: Option<KillSwitchRun>,
    /// What each `log` step saw, in order.
    pub effects: Vec<EffectResult>,
    pub nodes: Vec<NodeRecord>,
    pub read_back: ReadBack,
    pub converge: Vec<ConvergeRun>,
    /// What the cluster's Prometheus saw, when the scenario has a `monitoring:` block.
    pub monitoring: Option<MonitoringFacts>,
    pub timings: Timings,
}
