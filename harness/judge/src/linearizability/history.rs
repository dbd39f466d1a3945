//! One key's history, reduced to the operations that constrain its order.
//!
//! Failed operations never happened and unknown reads saw nothing we know, so both drop out.
//! An unknown write (or cas) whose value no read saw and no cas expected drops out too: if it
//! took effect, nothing could tell, so "it never happened" explains the rest as well.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// The value this operation needs in the register to take effect: a read's, or a cas's
    /// compare value.
    pub fn needs(&self) -> Option<Value> {
        match self.effect {
            Effect::Read(v) | Effect::Cas { expected: v, .. } => Some(v),
            Effect::Write(_) => None,
        }
    }

    /// The value this operation proves was in the register: an ok read's, or an ok cas's
    /// compare value.
    pub fn observed(&self) -> Option<Value> {
        self.needs().filter(|_| self.op.outcome == Outcome::Ok)
    }

    /// Whether it must have taken effect (by its return).
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
    pub fn new(key: &'a str, ops: &[&'a Op]) -> Self {
        let mut values = Interner::default();
        let mut kept = Vec::with_capacity(ops.len());
        let mut failed = Vec::new();
        for &op in ops {
            match (op.outcome, op.kind) {
                (Outcome::Ok, _) => {}
                (_, OpKind::Read) => continue,
                (Outcome::Fail, _) => {
                    failed.push(op);
                    continue;
                }
                (Outcome::Unknown, _) => {}
            }
            let effect = match op.kind {
                OpKind::Read => Effect::Read(values.intern(&op.value)),
                OpKind::Write => Effect::Write(values.intern(&op.value)),
                OpKind::Cas => Effect::Cas {
                    expected: values.intern(&op.expected),
                    new: values.intern(&op.value),
                },
            };
            kept.push(KeyOp {
                op,
                call: shift(op.t_call),
                ret: match op.outcome {
                    Outcome::Unknown => NEVER,
                    _ => shift(op.t_return.max(op.t_call)),
                },
                effect,
            });
        }
        let values = values.texts;

        let mut seen = vec![false; values.len()];
        for v in kept.iter().filter_map(KeyOp::needs) {
            seen[v as usize] = true;
        }
        kept.retain(|o| o.definite() || o.written().is_some_and(|v| seen[v as usize]));
        kept.sort_unstable_by_key(|o| (o.call, o.ret, o.op.id));
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

/// Numbers the key's values in order of appearance, after [`ABSENT`].
struct Interner<'a> {
    ids: TextMap<&'a str, Value>,
    texts: Vec<Option<&'a str>>,
}

impl Default for Interner<'_> {
    fn default() -> Self {
        Interner {
            ids: TextMap::default(),
            texts: vec![None],
        }
    }
}

impl<'a> Interner<'a> {
    fn intern(&mut self, value: &'a Option<Box<str>>) -> Value {
        let Some(text) = value.as_deref() else {
            return ABSENT;
        };
        *self.ids.entry(text).or_insert_with(|| {
            self.texts.push(Some(text));
            (self.texts.len() - 1) as Value
        })
    }
}

fn shift(t: Micros) -> Time {
    t.saturating_add(1).min(NEVER - 1)
}

/// A hash map keyed by the short texts keys and values are, hashed fast (FxHash's
/// rotate-multiply, then a final mix): a million operations intern a million values. The
/// texts come from firedrill's own load, so hash flooding is no concern.
pub(super) type TextMap<K, V> = HashMap<K, V, BuildHasherDefault<TextHasher>>;

#[derive(Default)]
pub(super) struct TextHasher(u64);

impl TextHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for TextHasher {
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (h >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
}
