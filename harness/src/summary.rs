//! The outcome of one run, as every reporter reads it.
//!
//! This is the schema of `summary.json`; it is versioned by [`SCHEMA`]. Add fields freely;
//! renaming or removing one needs a new schema version.

use serde::{Deserialize, Serialize};

use crate::history::{Micros, Phase};

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
    /// Each node's image when the cluster started and when the run ended.
    pub nodes: Vec<NodeRecord>,
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
    /// `error_rate`, `p50`, `p99`, `max_unavailable`.
    pub name: String,
    /// The limit, in the unit of `observed`.
    pub limit: f64,
    pub observed: f64,
    /// `ratio` or `ms`.
    pub unit: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    pub phase: Phase,
    pub start: Micros,
    pub end: Micros,
    pub ops: u64,
    pub ok: u64,
    /// Failed or unknown.
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
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    pub ops_per_s: f64,
    /// Requests goose itself counted: a cross-check of the history.
    pub goose_requests: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub image_at_start: String,
    pub image_at_end: String,
}
