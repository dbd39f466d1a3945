//! The operation history: every operation the load issued, timed on one monotonic clock.
//!
//! Times are microseconds since the run's epoch (an `Instant` taken when the run starts),
//! so phases, steps and operations can be compared without wall-clock jumps.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Microseconds since the run epoch.
pub type Micros = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Write,
    /// Compare-and-set: replace the value with `value` only if it is still `expected`
    /// (`None`: the key is absent). A cas whose compare failed is a definite no-op and is
    /// recorded with outcome `fail`.
    Cas,
}

/// What the client knows about an operation once it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged: the system said it happened.
    Ok,
    /// Definitely did not happen (e.g. the connection was refused before sending).
    Fail,
    /// May or may not have happened (timeout, reset, an error status after sending).
    Unknown,
}

/// One operation of the load.
///
/// A long run holds hundreds of thousands of these, so the texts every operation repeats (its
/// node, key, backend and error) are shared `Arc<str>`s, not a copy each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: u32,
    /// The node the client sent the operation to.
    pub node: Arc<str>,
    pub kind: OpKind,
    pub key: Arc<str>,
    /// For a write, the (unique) value written; for an ok read, the value seen
    /// (`None`: the key was absent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<Box<str>>,
    /// For a cas, the value it compared against (`None`: it expected the key absent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<Box<str>>,
    /// When the load's schedule meant to send it: with a rate set, operations are due at
    /// fixed intervals whether or not a client is free, so a stall that holds every client
    /// shows as latency of the operations it delayed (no coordinated omission).
    pub t_intended: Micros,
    /// Just before the request was sent.
    pub t_call: Micros,
    /// Just after the response (or error) arrived.
    pub t_return: Micros,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Arc<str>>,
    /// The backend that served it, when the response names one (e.g. `X-Served-By`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backend: Option<Arc<str>>,
}

impl Op {
    /// A cas the system answered with "the compare failed": a definite no-op, recorded as
    /// outcome `fail` with no error (every other failure carries its error).
    pub fn compare_failed(&self) -> bool {
        self.kind == OpKind::Cas && self.outcome == Outcome::Fail && self.error.is_none()
    }

    /// Whether the system served it: acknowledged, or a cas whose compare it said failed.
    /// Availability and error rates count these; a compare that fails is the system working.
    pub fn answered(&self) -> bool {
        self.outcome == Outcome::Ok || self.compare_failed()
    }

    /// Open-loop latency, what a user arriving on schedule waited: from the intended send
    /// time to the answer.
    pub fn latency_us(&self) -> Micros {
        self.t_return.saturating_sub(self.t_intended)
    }

    /// Closed-loop latency, the request alone: what a tool that waits for a free client
    /// before starting its clock reports.
    pub fn service_us(&self) -> Micros {
        self.t_return.saturating_sub(self.t_call)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the first step.
    Steady,
    /// While the steps run.
    Procedure,
    /// After the last step.
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Steady, Phase::Procedure, Phase::Recovery];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::Procedure => "procedure",
            Phase::Recovery => "recovery",
        }
    }
}

/// A phase's time span on the run clock: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseWindow {
    pub phase: Phase,
    pub start: Micros,
    pub end: Micros,
}

impl PhaseWindow {
    /// An operation belongs to the phase in which it was due, so the latency a stall adds to
    /// the operations queued behind it is charged to the phase that stalled.
    pub fn contains(&self, op: &Op) -> bool {
        op.t_intended >= self.start && op.t_intended < self.end
    }
}

/// Shares one copy of the texts operations repeat (an error message, a backend's name) among
/// all the operations that carry them.
#[derive(Debug, Default)]
pub struct TextPool {
    texts: HashSet<Arc<str>>,
}

impl TextPool {
    /// Distinct texts kept; texts beyond that (errors that name a varying detail) stay
    /// unshared rather than growing the pool for ever.
    const MAX: usize = 10_000;

    /// Moves the op's repeated texts into the pool.
    pub fn share(&mut self, op: &mut Op) {
        for text in [&mut op.error, &mut op.backend].into_iter().flatten() {
            if let Some(kept) = self.texts.get(&**text) {
                *text = Arc::clone(kept);
            } else if self.texts.len() < Self::MAX {
                self.texts.insert(Arc::clone(text));
            }
        }
    }
}
