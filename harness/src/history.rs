//! The operation history: every operation the load issued, timed on one monotonic clock.
//!
//! Times are microseconds since the run's epoch (an `Instant` taken when the run starts),
//! so phases, steps and operations can be compared without wall-clock jumps.

use serde::{Deserialize, Serialize};

/// Microseconds since the run epoch.
pub type Micros = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Write,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: u32,
    /// The node the client sent the operation to.
    pub node: String,
    pub kind: OpKind,
    pub key: String,
    /// For a write, the (unique) value written; for an ok read, the value seen
    /// (`None`: the key was absent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    /// Just before the request was sent.
    pub t_call: Micros,
    /// Just after the response (or error) arrived.
    pub t_return: Micros,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The backend that served it, when the response names one (e.g. `X-Served-By`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backend: Option<String>,
}

impl Op {
    pub fn latency_us(&self) -> Micros {
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
    /// An operation belongs to the phase in which it was invoked.
    pub fn contains(&self, op: &Op) -> bool {
        op.t_call >= self.start && op.t_call < self.end
    }
}
