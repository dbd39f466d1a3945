//! What every reporter shows, built once from the summary: rows of plain text that each
//! reporter only formats (escapes, marks up), so two reports of one run cannot drift apart.

use firedrill_types::summary::RecoveryResult;

use crate::{millis, run_clock};

/// The recovery table's columns: (heading, numeric).
pub const RECOVERY_COLUMNS: [(&str, bool); 7] = [
    ("Step", false),
    ("Node", false),
    ("Step ended", true),
    ("Node's first ok", true),
    ("Load back within SLO", true),
    ("Limit", true),
    ("Result", false),
];

pub const RECOVERY_NOTE: &str = "Measured from the end of the step: until the node's first \
successful operation, and until the whole load was back within the recovery phase's \
error-rate limit.";

/// One row per step after which a node had to serve again; the last cell is the pass flag.
pub struct RecoveryRow {
    pub cells: [String; 6],
    pub pass: bool,
}

pub fn recoveries(recoveries: &[RecoveryResult]) -> Vec<RecoveryRow> {
    recoveries
        .iter()
        .map(|r| RecoveryRow {
            cells: [
                r.step.clone(),
                r.node.clone(),
                format!("{} s", run_clock(r.from)),
                r.to_first_ok_ms.map_or_else(|| "never".to_string(), millis),
                r.to_slo_ms.map_or_else(|| "never".to_string(), millis),
                r.limit_ms.map_or_else(|| "none".to_string(), millis),
            ],
            pass: r.pass,
        })
        .collect()
}
