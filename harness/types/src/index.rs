//! The merged index of several runs: what `firedrill merge` writes as `summary.json` into
//! its `--out` directory, one entry per scenario run found in the shards' artifacts.
//!
//! Versioned by [`SCHEMA`], under the same rule as the run summary: fields may be added
//! within a version, never renamed or removed.

use serde::{Deserialize, Serialize};

use crate::summary::Verdict;

pub const SCHEMA: &str = "firedrill.index/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub schema: String,
    /// RFC 3339, UTC: when the merge ran.
    pub generated_at: String,
    /// `pass` when every entry passed.
    pub verdict: Verdict,
    pub passed: u32,
    pub failed: u32,
    /// The sum of the entries' `duration_ms` (run time, not wall time: shards run at once).
    pub duration_ms: u64,
    /// The artifact directories given to the merge, as given.
    pub sources: Vec<String>,
    /// One per run found, sorted by scenario name (then run id).
    pub scenarios: Vec<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The scenario's name (`summary.json`'s `scenario`).
    pub name: String,
    /// The name of its `<testsuite>` in the merged `junit.xml`: the scenario's name, or, when
    /// the same scenario was found more than once, the name and the run id.
    pub suite: String,
    pub verdict: Verdict,
    pub duration_ms: u64,
    /// The run's reasons (empty when it passed).
    pub reasons: Vec<String>,
    /// The run's artifact directory, relative to the index's directory (`/` separated).
    pub path: String,
    /// The scenario file, as the run was given it.
    pub file: String,
    pub run_id: String,
    pub seed: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// How many scenarios ran at once when this one ran (`timings.jobs`; 0: not recorded).
    #[serde(default)]
    pub jobs: u32,
}
