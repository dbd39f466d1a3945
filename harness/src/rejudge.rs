//! `firedrill check`: re-judges an archived history offline with the checks that need no
//! plan (per-key linearizability and the read check), for post-mortems, for old nightly
//! artifacts judged by a newer checker, and for histories from other tools.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use firedrill_judge::{check, linearizability};
use firedrill_spec::yaml::Diagnostic;
use firedrill_types::history::Op;
use firedrill_types::summary::LinearizableVerdict;

/// What `check` read and found.
pub struct Rejudged {
    pub history: PathBuf,
    pub ops: usize,
    pub linearizability: firedrill_types::summary::LinearizabilityResult,
    pub reads: firedrill_types::summary::ReadResult,
}

impl Rejudged {
    /// Passes when every key is linearizable and no read is bad; an unknown key fails unless
    /// `allow_unknown`.
    pub fn pass(&self, allow_unknown: bool) -> bool {
        let lin = match self.linearizability.linearizable {
            LinearizableVerdict::True => true,
            LinearizableVerdict::Unknown => allow_unknown,
            LinearizableVerdict::False => false,
        };
        lin && self.reads.pass
    }
}

/// A run's artifacts directory (its `history.jsonl`) or a history file.
pub fn rejudge(path: &Path, budget: std::time::Duration) -> Result<Rejudged, Diagnostic> {
    let history = if path.is_dir() {
        path.join("history.jsonl")
    } else {
        path.to_path_buf()
    };
    let file = std::fs::File::open(&history).map_err(|e| {
        Diagnostic::whole_file(
            &history,
            format!("cannot read the history: {e}; name a run's artifacts directory or a history.jsonl file"),
        )
    })?;
    let mut ops: Vec<Op> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Diagnostic::whole_file(&history, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let op = serde_json::from_str(&line).map_err(|e| {
            Diagnostic::at(
                &history,
                i as u64 + 1,
                e.column() as u64,
                format!("not an operation of the history format (docs/artifacts.md): {e}"),
            )
        })?;
        ops.push(op);
    }
    let options = linearizability::Options {
        budget_per_key: budget,
        ..linearizability::Options::default()
    };
    Ok(Rejudged {
        history,
        ops: ops.len(),
        linearizability: linearizability::check(&ops, &options),
        reads: check::read_check(&ops),
    })
}
