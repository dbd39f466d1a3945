//! Operations and values in words, for the violations' explanations.

use firedrill_types::history::{Micros, Op, OpKind, Outcome};
use firedrill_types::summary::{KeyViolation, LinearizabilityViolationKind};

use super::history::{Effect, KeyHistory, KeyOp, Value};

impl KeyHistory<'_> {
    /// `"v"`, or `absent`.
    pub fn value_text(&self, v: Value) -> String {
        match self.values[v as usize] {
            Some(text) => format!("{text:?}"),
            None => "absent".to_owned(),
        }
    }

    /// The operation, its client and times, and what it did or saw, e.g.
    /// `read #3 (client 1, 0.000010–0.000011s) saw "a"`.
    pub fn describe(&self, o: &KeyOp) -> String {
        let what = match o.effect {
            Effect::Read(v) => format!("saw {}", self.value_text(v)),
            Effect::Write(v) => format!("wrote {}", self.value_text(v)),
            Effect::Cas { expected, new } => format!(
                "{} {} by {}",
                match o.op.outcome {
                    Outcome::Ok => "replaced",
                    _ => "may have replaced",
                },
                self.value_text(expected),
                self.value_text(new)
            ),
        };
        format!("{} {what}", describe_op(o.op))
    }

    pub fn violation(
        &self,
        kind: LinearizabilityViolationKind,
        explanation: String,
        ops: impl IntoIterator<Item = u64>,
    ) -> KeyViolation {
        KeyViolation {
            key: self.key.to_owned(),
            kind,
            explanation,
            ops: ops.into_iter().collect(),
        }
    }
}

/// `write #7 (client 2, 0.100000–0.200000s)`; an unknown outcome shows only the call.
pub(super) fn describe_op(op: &Op) -> String {
    let kind = match op.kind {
        OpKind::Read => "read",
        OpKind::Write => "write",
        OpKind::Cas => "cas",
    };
    let when = match op.outcome {
        Outcome::Unknown => format!("called {}, outcome unknown", secs(op.t_call)),
        Outcome::Ok | Outcome::Fail => {
            format!("{}–{}", secs_bare(op.t_call), secs(op.t_return))
        }
    };
    format!("{kind} #{} (client {}, {when})", op.id, op.client)
}

/// A run-clock time in seconds, to the microsecond: operations a few µs apart stay apart.
pub(super) fn secs(t: Micros) -> String {
    format!("{}s", secs_bare(t))
}

fn secs_bare(t: Micros) -> String {
    format!("{}.{:06}", t / 1_000_000, t % 1_000_000)
}
