//! One key's history, reduced to the operations that constrain its order.
//!
//! Failed operations never happened and unknown reads saw nothing we know, so both drop out.
//! An unknown write (or cas) whose value no read saw and no cas expected drops out too: if it
//! took effect, nothing could tell, so "it never happened" explains the rest as well.

use std::collections::HashMap;

use firedrill_types::history::{Micros, Op, OpKind, Outcome};

/// A time on the checker's clock: the run clock shifted by one, so that [`BEFORE_ALL`] is
/// earlier than every operation (the initial value's virtual write) and [`NEVER`] is the
/// return of an operation whose outcome is unknown.
pub(super) type Time = u64;

pub(super) const BEFORE_ALL: Time = 0;
pub(super) const NEVER: Time = Time::MAX;

/// A value of the key, interned: [`ABSENT`] or an index into [`KeyHistory::values`].
pub(super) type Value = u32;

pub(super) const ABSENT: Value = 0;

/// What an operation did to the register, or saw in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Read(Value),
    Write(Value),
    Cas { expected: Value, new: Value },
}

/// An operation that constrains the key's order.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyOp<'a> {
    pub op: &'a Op,
    pub call: Time,
    /// [`NEVER`] when the outcome is unknown: it may take effect any time after its call.
    pub ret: Time,
    pub effect: Effect,
}

impl KeyOp<'_> {
    /// The value this operation leaves in the register, if it writes.
    pub fn written(&self) -> Option<Value> {
        match self.effect {
            Effect::Read(_) => None,
            Effect::Write(v) | Effect::Cas { new: v, .. } => Some(v),
        }
    }

    /// The value this operation proves was in the register: an ok read's, or an ok cas's
    /// compare value.
    pub fn observed(&self) -> Option<Value> {
        match self.effect {
            Effect::Read(v) => Some(v),
            Effect::Cas { expected, .. } if self.op.outcome == Outcome::Ok => Some(expected),
            _ => None,
        }
    }

    /// Whether it must have taken effect (its outcome is known).
    pub fn definite(&self) -> bool {
        self.ret != NEVER
    }
}

pub(super) struct KeyHistory<'a> {
    pub key: &'a str,
    /// Sorted by call, then return, then id.
    pub ops: Vec<KeyOp<'a>>,
    /// The text of each interned value; `values[ABSENT]` is `None`.
    pub values: Vec<Option<&'a str>>,
    /// Writes and cas that definitely failed, to name when a read saw their value.
    pub failed: Vec<&'a Op>,
}

impl<'a> KeyHistory<'a> {
    /// `ops` are the key's operations, in any order.
    pub fn new(key: &'a str, ops: impl IntoIterator<Item = &'a Op>) -> Self {
        let mut values = vec![None];
        let mut ids: HashMap<&str, Value> = HashMap::new();
        let mut intern = |v: &'a Option<Box<str>>| match v.as_deref() {
            None => ABSENT,
            Some(text) => *ids.entry(text).or_insert_with(|| {
                values.push(Some(text));
                (values.len() - 1) as Value
            }),
        };
        let mut kept = Vec::new();
        let mut failed = Vec::new();
        for op in ops {
            let effect = match op.kind {
                OpKind::Read => Effect::Read(intern(&op.value)),
                OpKind::Write => Effect::Write(intern(&op.value)),
                OpKind::Cas => Effect::Cas {
                    expected: intern(&op.expected),
                    new: intern(&op.value),
                },
            };
            match (op.outcome, op.kind) {
                (Outcome::Ok, _) => {}
                (_, OpKind::Read) => continue,
                (Outcome::Fail, _) => {
                    failed.push(op);
                    continue;
                }
                (Outcome::Unknown, _) => {}
            }
            kept.push(KeyOp {
                op,
                call: shift(op.t_call),
                ret: match op.outcome {
                    Outcome::Unknown => NEVER,
                    _ => shift(op.t_return),
                },
                effect,
            });
        }
        drop(intern);

        let mut seen = vec![false; values.len()];
        for o in &kept {
            match o.effect {
                Effect::Read(v) | Effect::Cas { expected: v, .. } => seen[v as usize] = true,
                Effect::Write(_) => {}
            }
        }
        kept.retain(|o| o.definite() || o.written().is_some_and(|v| seen[v as usize]));
        kept.sort_by_key(|o| (o.call, o.ret, o.op.id));
        KeyHistory {
            key,
            ops: kept,
            values,
            failed,
        }
    }

    /// Whether the cluster/zone check decides this key: no cas, and every write's value is
    /// its own (never written twice, never the initial absent value).
    pub fn has_unique_writes(&self) -> bool {
        let mut written = vec![false; self.values.len()];
        written[ABSENT as usize] = true;
        self.ops.iter().all(|o| match o.effect {
            Effect::Read(_) => true,
            Effect::Cas { .. } => false,
            Effect::Write(v) => !std::mem::replace(&mut written[v as usize], true),
        })
    }
}

fn shift(t: Micros) -> Time {
    t.saturating_add(1).min(NEVER - 1)
}
