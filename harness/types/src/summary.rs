//! The outcome of one run, as every reporter reads it.
//!
//! This is the schema of `summary.json`; it is versioned by [`SCHEMA`]. Add fields freely;
//! renaming or removing one needs a new schema version.

use serde::{Deserialize, Serialize};

use crate::history::{Micros, Phase};
use crate::monitoring::MonitoringResult;

pub const SCHEMA: &str = "firedrill.summary/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub scenario: String,
    pub description: String,
    /// Where the runbook this scenario drills lives (the scenario's `runbook:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The scenario file, as given on the command line.
    pub file: String,
    pub run_id: String,
    pub seed: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub verdict: Verdict,
    /// One human-readable sentence per failed verdict; empty when the verdict is `pass`.
    pub reasons: Vec<String>,
    pub steps: Vec<StepRecord>,
    pub phases: Vec<PhaseResult>,
    pub data: DataResult,
    pub reads: ReadResult,
    pub checks: Vec<CheckResult>,
    /// Time to recover after the steps that said a node should serve again.
    #[serde(default)]
    pub recoveries: Vec<RecoveryResult>,
    pub load: LoadStats,
    /// Every node the run had (a spare never started is not listed): its images at the
    /// start and the end, and whether it was running and healthy at the end.
    pub nodes: Vec<NodeRecord>,
    /// The backup and restore timeline, when steps marked a backup and a disaster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupResult>,
    /// The staged rollout, when a step ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutResult>,
    /// The time to effect of every `log` step that ran, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectResult>,
    /// The per-key linearizability verdict of the history (absent when `checks.reads` is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<LinearizabilityResult>,
    /// Alerts, quiet phases, rule hygiene and panels, when the scenario watched a
    /// Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringResult>,
    /// Where the run's wall time went, and the harness's memory.
    #[serde(default)]
    pub timings: Timings,
}

/// Where a run's wall time went outside its phases (those are in `phases`), for the
/// suite's time budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reaping stale runs and creating and starting the containers.
    pub cluster_create_ms: u64,
    /// From the containers' start to every node passing its health check.
    pub cluster_ready_ms: u64,
    /// Stopping the load and waiting for the operations in flight.
    pub load_stop_ms: u64,
    /// Health gate, read-back, convergence and the history checks.
    pub checks_ms: u64,
    pub teardown_ms: u64,
    /// The harness process's peak resident memory so far (Linux `VmHWM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
    /// How many scenarios `firedrill run --jobs` ran at once on the engine while this one
    /// ran (1: alone); concurrent clusters share the CPU and move each other's latencies.
    /// 0: not recorded (summaries written before the field).
    #[serde(default)]
    pub jobs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    /// Not run because an earlier step failed or the run was interrupted.
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Position in the procedure, e.g. "3" or "4.2" for the 2nd step of an iteration of step 4.
    pub id: String,
    pub name: String,
    /// The runbook's own words for this step.
    pub prose: String,
    /// What was done, rendered for a human: a command line, `GET http://…`, `stop etcd1`.
    pub action: String,
    pub status: StepStatus,
    /// Start, on the run clock.
    pub started: Micros,
    pub duration_ms: u64,
    /// How many times the action ran (more than one for wait-until steps).
    pub attempts: u32,
    /// The last attempt's output, as the runbook's "expected output".
    pub output: StepOutput,
    /// Why the step failed, in words.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The transcript file, relative to the output directory.
    pub transcript: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepOutput {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SloResult {
    /// `error_rate`, `p50`, `p99`, `max_unavailable`, `min_ops`, or a query SLO's name.
    pub name: String,
    /// The limit, in the unit of `observed`.
    pub limit: f64,
    pub observed: f64,
    pub unit: Unit,
    pub pass: bool,
    /// For an SLO on a query: the query, its bound and what Prometheus answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What an SLO's or a gate's numbers count; serialized as its name (`"ratio"`, `"ms"`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A share from 0 to 1 (an error rate, a canary's share of the traffic).
    Ratio,
    /// Milliseconds.
    Ms,
    /// A count of operations.
    Ops,
    /// A metric's value, in whatever unit the metric has.
    Value,
}

impl Unit {
    /// The name `summary.json` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Ms => "ms",
            Unit::Ops => "ops",
            Unit::Value => "value",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    pub phase: Phase,
    pub start: Micros,
    pub end: Micros,
    pub ops: u64,
    /// Answered: acknowledged, or a cas whose compare failed.
    pub ok: u64,
    /// Failed or unknown (not a cas whose compare failed: the system answered it).
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The longest span inside the phase with no successful operation.
    pub longest_unavailable_ms: f64,
    pub slos: Vec<SloResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DataResult {
    /// Keys read back after recovery.
    pub keys: u64,
    /// Acknowledged writes.
    pub acked: u64,
    /// Acknowledged writes whose effect is gone.
    pub lost: u64,
    /// Keys holding a value no write produced, or one whose write definitely failed.
    pub unexpected: u64,
    /// Writes with an unknown outcome whose value is present (allowed).
    pub recovered: u64,
    /// Backup mode: acknowledged writes invoked after the backup ended and gone after the
    /// restore (allowed: after the recovery point).
    #[serde(default)]
    pub after_recovery_point: u64,
    /// Backup mode: acknowledged writes that overlapped the backup and are gone (allowed:
    /// the backup may or may not hold them).
    #[serde(default)]
    pub indeterminate: u64,
    /// A few of the lost writes, for the report.
    pub lost_examples: Vec<String>,
    pub unexpected_examples: Vec<String>,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadResult {
    /// Successful reads checked.
    pub checked: u64,
    /// Reads of a value no write produced, or one whose write definitely failed.
    pub phantom: u64,
    /// Reads that returned a value before its write was invoked.
    pub future: u64,
    /// Reads older than a write that completed before the read began.
    pub stale: u64,
    /// The first few offending reads, in words.
    pub examples: Vec<String>,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub pass: bool,
    /// What was observed, in words.
    pub detail: String,
}

/// How long a node took to serve again after a step (a heal, a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryResult {
    pub step: String,
    pub node: String,
    /// When the step ended, on the run clock.
    pub from: Micros,
    /// Until the node's first successful operation; `None`: it never served again.
    pub to_first_ok_ms: Option<f64>,
    /// Until the whole load was back within the recovery phase's error-rate limit.
    pub to_slo_ms: Option<f64>,
    /// The gate (`recovers.within`), if any.
    pub limit_ms: Option<f64>,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadStats {
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    /// Compare-and-set operations.
    #[serde(default)]
    pub cas: u64,
    pub ok: u64,
    /// Includes `cas_compare_failed`.
    pub fail: u64,
    pub unknown: u64,
    /// Cas operations the system answered with "the compare failed": no-ops, not errors.
    #[serde(default)]
    pub cas_compare_failed: u64,
    pub ops_per_s: f64,
    /// Requests goose itself counted: a cross-check of the history.
    pub goose_requests: u64,
    /// How far the load fell behind its schedule at worst (an operation sent this long after
    /// it was due, because every client was busy); that wait counts in the latencies.
    #[serde(default)]
    pub max_behind_schedule_ms: f64,
}

/// One node of the topology at the end of the run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeRecord {
    pub name: String,
    pub image_at_start: String,
    pub image_at_end: String,
    /// The node must be running and healthy at the end: it was started during the run and
    /// neither destroyed by a step nor declared `removed`.
    pub expected: bool,
    /// Why it is not expected, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_expected_because: Option<String>,
    /// Its container exists and runs (not paused).
    pub running: bool,
    /// It passed its health check after the recovery phase (`false` when it has none and
    /// is not running).
    pub healthy: bool,
    /// Docker's state of the container (`running`, `exited`, `paused`, `removed`…).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// What the health check said last, or why it was not run.
    pub health_detail: String,
    /// The last lines of its log, when it is expected and not healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// A backup, the loss of the cluster and the restore, on the run clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupResult {
    /// The step (or loop) that took the backup: the recovery point lies in its span.
    pub backup_step: String,
    pub backup_start: Micros,
    pub backup_end: Micros,
    /// The step (or loop) that lost the cluster.
    pub disaster_step: String,
    pub disaster_start: Micros,
    pub disaster_end: Micros,
    /// The last write acknowledged before the disaster began.
    pub last_ack_before_disaster: Option<Micros>,
    /// Recovery point seen: from the backup's start to the last write acknowledged before
    /// the disaster, the span of acknowledged writes the backup may not hold.
    pub rpo_ms: Option<f64>,
    /// Acknowledged writes invoked after the backup ended and before the disaster: at risk.
    pub writes_after_backup: u64,
    /// The first successful operation invoked after the disaster ended.
    pub first_ok_after: Option<Micros>,
    /// Restore time: from the disaster's end (every node lost) to that operation.
    pub restore_ms: Option<f64>,
    /// Recovery time: from the disaster's start to that operation.
    pub rto_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_limit_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_limit_ms: Option<f64>,
    pub pass: bool,
}

/// What a rollout ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutOutcome {
    /// Every stage passed: the canary takes the traffic of the last stage.
    Promoted,
    /// A gate failed: the rollback ran.
    RolledBack,
}

impl RolloutOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RolloutOutcome::Promoted => "promoted",
            RolloutOutcome::RolledBack => "rolled_back",
        }
    }
}

/// A canary rollout through stages of traffic, each judged by gates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutResult {
    pub step: String,
    pub canary: String,
    pub baseline: Vec<String>,
    pub expected: RolloutOutcome,
    /// `None`: the rollout did not finish (a traffic command failed, the run was cut short).
    pub outcome: Option<RolloutOutcome>,
    pub stages: Vec<StageResult>,
    /// Why it was rolled back: the gate, its metric and stage, and the limit it reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_switch: Option<KillSwitchResult>,
    /// What set the rollback off: the gate that reached its limit, or the stage step that
    /// failed (`None` when promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RolloutTrigger>,
    /// A rollback of levers: each lever tried, fastest first, until one's verification
    /// passed; the ones after it are `not_tried`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levers: Vec<LeverResult>,
    /// The lever the procedure says restores service (the first, unless `restored_by`
    /// names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_lever: Option<String>,
    /// The incident a rollback makes, filled by the judge from the run (incident.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentResult>,
}

/// Why a rollout rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RolloutTrigger {
    /// A gate reached a failure or error limit.
    Gate {
        /// 1-based index of the stage.
        stage: usize,
        gate: String,
        /// The limit it reached, in words ("2 failed evaluations in a row").
        limit: String,
    },
    /// A step of a configuration stage failed (a smoke-test row, a partial deployment).
    Step { stage: usize, step: String },
}

/// One rollback lever: applied by its steps, then proven by its verification steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeverResult {
    /// 1-based, in the order they are tried.
    pub index: usize,
    pub name: String,
    pub outcome: LeverOutcome,
    /// When its first step began and its last verification step ended (run clock); `None`
    /// when not tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Micros>,
    /// Why it did not restore service: the step that failed and its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeverOutcome {
    /// Applied, and its verification passed: service restored.
    Restored,
    /// Applied, but its verification failed: the next lever was tried.
    NotRestored,
    /// One of its own steps failed: the next lever was tried.
    Failed,
    /// An earlier lever restored service.
    NotTried,
}

impl LeverOutcome {
    pub fn name(self) -> &'static str {
        match self {
            LeverOutcome::Restored => "restored",
            LeverOutcome::NotRestored => "not restored",
            LeverOutcome::Failed => "failed",
            LeverOutcome::NotTried => "not tried",
        }
    }
}

/// The incident note of a rollback, every field recounted from the run's artifacts: the
/// stage, the trigger, when it was first seen, what was done, how fast it took effect and
/// what the load saw meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResult {
    /// 1-based stage index and its label ("sample 5 %", "25 %").
    pub stage: usize,
    pub stage_name: String,
    pub stage_start: Micros,
    /// The gate (or step) that set the rollback off, and what it judged.
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The trigger gate's value at its last evaluation, and its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    pub detail: String,
    /// The first evaluation of the trigger gate in the stage that did not pass (for a step,
    /// the step's start).
    pub first_observed: Micros,
    /// When the rollback was decided: the stage's end.
    pub decided: Micros,
    /// The rollback's steps that ran, by id and name, with their status, in order (the
    /// kill switch first, or each lever's steps).
    pub actions: Vec<IncidentAction>,
    /// When service was back: the restoring lever's end, else the rollback's last step's end.
    pub restored: Option<Micros>,
    /// From the decision to `restored`.
    pub time_to_restore_ms: Option<f64>,
    /// The rollback's measured times to effect: its `log` steps, or the kill switch's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<IncidentEffect>,
    /// The load from the stage's start to `restored` (the end of the procedure without one).
    pub impact: IncidentImpact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentAction {
    pub step: String,
    pub name: String,
    pub status: StepStatus,
    /// The lever it belongs to, for a rollback of levers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lever: Option<String>,
}

/// One time to effect of a rollback: the step that measured it (the `log` step, or the
/// kill switch of a traffic rollout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEffect {
    pub step: String,
    /// `None`: the change never showed.
    pub time_to_effect_ms: Option<f64>,
    pub limit_ms: f64,
    pub pass: bool,
}

/// Operations returned in `[from, to)`: how many, how many failed or are unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentImpact {
    pub from: Micros,
    pub to: Micros,
    pub ops: u64,
    pub errors: u64,
    pub error_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// 1-based.
    pub index: usize,
    /// A configuration stage's name (its traffic fields are then 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The share of traffic the stage asks for, in percent.
    pub percent: f64,
    pub canary_weight: u32,
    /// The weight of each baseline backend.
    pub baseline_weight: u32,
    /// The canary's share the weights give, from 0 to 1.
    pub share: f64,
    pub start: Micros,
    pub end: Micros,
    /// The canary's share of the operations attributed to a backend during the stage.
    pub observed_share: Option<f64>,
    pub evaluations: Vec<GateEvaluation>,
    /// `promoted`, `rolled_back` or `not finished`, with the reason.
    pub decision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    Pass,
    Fail,
    /// Too few samples, or the metric could not be read.
    NoData,
    /// A value between a gate's success and failure conditions (Argo Rollouts'
    /// inconclusive): the analysis's `no_data` policy decides, as for no data.
    Inconclusive,
    /// The gate's source could not be read (the analyzer exited non-zero, the endpoint or
    /// Prometheus did not answer): counts toward `consecutive_error_limit`, not as a
    /// failure (Argo Rollouts' error).
    Error,
}

/// One gate judged over one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateEvaluation {
    /// The window's end, on the run clock.
    pub at: Micros,
    pub window_start: Micros,
    pub gate: String,
    /// `error_rate`, `p95`, or a metric's name.
    pub metric: String,
    pub canary: Option<f64>,
    /// The baseline over the same window; for a metric gate, its value when the rollout began.
    pub baseline: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Unit,
    pub samples: u64,
    pub baseline_samples: u64,
    pub outcome: GateOutcome,
    pub detail: String,
}

/// A `log` step's time to effect: from the start of the step it waits on to the line that
/// shows the change (under `stops`, the last line of the old behaviour).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectResult {
    /// The `log` step.
    pub step: String,
    /// The step whose change it waits for, and when that step began (run clock).
    pub after: String,
    pub from: Micros,
    /// The line's time; `None`: the change never showed.
    pub at: Option<Micros>,
    pub time_to_effect_ms: Option<f64>,
    pub limit_ms: f64,
    /// The line that shows it (`None` under `stops` when no old line came after the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    pub pass: bool,
}

/// How fast the kill switch stopped traffic to the canary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KillSwitchResult {
    pub step: String,
    /// When the kill-switch step began.
    pub at: Micros,
    /// When the last request the canary served returned.
    pub last_canary_request: Option<Micros>,
    /// From `at` to that request (0 when it came before).
    pub time_to_effect_ms: Option<f64>,
    pub limit_ms: f64,
    /// Requests the canary served in the recovery phase, after the procedure: 0 if the
    /// kill switch held.
    pub canary_requests_in_recovery: u64,
    pub pass: bool,
}

// ── Linearizability (written by the judge's linearizability module) ──

/// Whether a history is linearizable: `unknown` when a key's search ran out of time
/// before it could decide (never read as a pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinearizableVerdict {
    /// Every key is linearizable.
    #[serde(rename = "true")]
    True,
    /// Some key is not.
    #[serde(rename = "false")]
    False,
    /// No key is proven wrong, but some could not be decided in time.
    #[serde(rename = "unknown")]
    Unknown,
}

/// The per-key linearizability check of a whole history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearizabilityResult {
    /// `false` if any key is violated, else `unknown` if any key is undecided, else `true`.
    pub linearizable: LinearizableVerdict,
    /// Keys with at least one operation in the history.
    pub keys_checked: u64,
    /// Keys proven linearizable.
    pub keys_linearizable: u64,
    /// Keys proven not linearizable.
    pub keys_violated: u64,
    /// Keys whose search ran out of its time budget.
    pub keys_unknown: u64,
    /// Keys decided by the O(n log n) cluster/zone check (unique values, no cas).
    pub keys_by_zones: u64,
    /// Keys given to the Wing–Gong/Lowe search (repeated values or cas).
    pub keys_by_search: u64,
    /// Operations that constrain the order: ok reads, and writes and cas that did or may
    /// have taken effect (failed operations and unknown reads carry no information).
    pub ops_checked: u64,
    /// Search states explored over all keys (distinct linearized-set and value pairs).
    pub states_explored: u64,
    /// One violation per violated key, for the first `max_reported` keys by name.
    pub violations: Vec<KeyViolation>,
    /// The undecided keys, for the first `max_reported` keys by name.
    pub unknown: Vec<KeyUnknown>,
}

/// What kind of impossibility a key's history shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearizabilityViolationKind {
    /// A read (or a successful cas) saw a value no write produced, or one whose write failed.
    Phantom,
    /// A read (or a successful cas) returned before every write of its value began.
    Future,
    /// A read older than a write that completed before the read began.
    Stale,
    /// Two successful cas replaced the same value, which was there only once.
    LostUpdate,
    /// Two values' reads and writes need each before the other (e.g. new-old-new reads).
    Order,
    /// The search found no order of the key's operations that explains their results.
    NoLinearization,
}

/// Why one key is not linearizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyViolation {
    /// The key whose history is violated.
    pub key: String,
    /// What kind of impossibility its history shows.
    pub kind: LinearizabilityViolationKind,
    /// In words: which operations, and which order among them is impossible.
    pub explanation: String,
    /// The ids of the operations the explanation names.
    pub ops: Vec<u64>,
}

/// A key the search could not decide within its budget: how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyUnknown {
    /// The key left undecided.
    pub key: String,
    /// The key's time budget, in milliseconds.
    pub budget_ms: u64,
    /// Time the search spent on the key, in milliseconds.
    pub spent_ms: u64,
    /// Distinct (linearized set, value) states the search visited.
    pub states_explored: u64,
    /// Operations the search had to order.
    pub ops: u64,
    /// The most operations it managed to put in one consistent order.
    pub linearized_max: u64,
}
