//! A complete search for a linearization of one key's register history (Wing & Gong, with
//! Lowe's memoization, as porcupine does), for what the zone check cannot decide: cas and
//! repeated values.
//!
//! The calls and returns sit in one time-ordered list. The search walks it, tries to
//! linearize each pending call next, and backtracks when it reaches the return of an
//! operation it has not linearized: that one had to take effect by then. A state is the
//! set of linearized operations and the register's value; a state seen before failed
//! before, so it is never explored twice.
//!
//! An operation whose outcome is unknown has no return: it may take effect any time after
//! its call, or never (which is the same as last, once every operation that returned has
//! been ordered). So the search succeeds as soon as every operation with a return is
//! linearized, and an unknown cas whose compare fails is simply left for later.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use firedrill_types::summary::{KeyViolation, LinearizabilityViolationKind};

use super::history::{Effect, KeyHistory, KeyOp, Value, ABSENT};

pub(super) struct Search {
    pub answer: Answer,
    /// Distinct states visited.
    pub states: u64,
    /// The most operations put in one consistent order.
    pub linearized_max: usize,
    pub spent: Duration,
}

pub(super) enum Answer {
    Linearizable,
    /// No order exists; where the longest consistent order got stuck.
    Violation(DeadEnd),
    /// The budget ran out first.
    Unknown,
}

/// The end of the longest consistent order the search found.
pub(super) struct DeadEnd {
    /// How many operations it orders.
    pub linearized: usize,
    /// Its last few operations (indices into the key's operations), latest last.
    pub recent: Vec<usize>,
    /// The register's value after them.
    pub value: Value,
    /// The first operation not in it whose return came: it had to be ordered by then.
    pub blocked: usize,
}

impl DeadEnd {
    pub fn explain(&self, h: &KeyHistory) -> KeyViolation {
        let blocked = &h.ops[self.blocked];
        let reason = match blocked.effect {
            Effect::Read(v) if v != self.value => format!("it saw {}", h.value_text(v)),
            Effect::Cas { expected, .. } if expected != self.value => {
                format!("it expected {}", h.value_text(expected))
            }
            _ => "every order that places it there fails later".to_owned(),
        };
        let placed = match self.recent.as_slice() {
            [] => "none of them".to_owned(),
            recent => format!(
                "{} of them, the last {} being {}",
                self.linearized,
                recent.len(),
                recent
                    .iter()
                    .map(|&i| h.describe(&h.ops[i]))
                    .collect::<Vec<_>>()
                    .join(", then ")
            ),
        };
        let text = format!(
            "no order of the key's {} operations explains what they returned: the longest consistent order found places {placed}; the key then holds {}, and {} cannot be placed before it returned ({reason})",
            h.ops.len(),
            h.value_text(self.value),
            h.describe(blocked)
        );
        let ops = self.recent.iter().chain([&self.blocked]).map(|&i| h.ops[i].op.id);
        h.violation(LinearizabilityViolationKind::NoLinearization, text, ops)
    }
}

/// How many of the dead end's operations the explanation names.
const RECENT: usize = 3;

/// How many steps go between looks at the clock.
const CLOCK_EVERY: u64 = 1024;

pub(super) fn search(h: &KeyHistory, budget: Duration) -> Search {
    let started = Instant::now();
    let mut list = Timeline::new(&h.ops);
    let mut done = Linearized::new(h.ops.len());
    let mut seen = Seen::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut value = ABSENT;
    let mut returns_left = h.ops.iter().filter(|o| o.definite()).count();
    let mut dead_end: Option<DeadEnd> = None;
    let mut deepest = 0;
    let mut record = true;
    let mut steps = 0u64;
    let mut cur = list.first();

    let answer = loop {
        if returns_left == 0 {
            break Answer::Linearizable;
        }
        steps += 1;
        if steps % CLOCK_EVERY == 0 && started.elapsed() >= budget {
            break Answer::Unknown;
        }
        // Some operation with a return is unordered, so its return lies ahead.
        let Entry { op, is_return } = list.entry(cur);
        if !is_return {
            if let Some(next) = step(value, &h.ops[op]) {
                let frame = Frame {
                    op,
                    value,
                    prefix: done.prefix,
                    end: done.end,
                };
                done.insert(op);
                if seen.insert(&done, next) {
                    stack.push(frame);
                    value = next;
                    list.lift(op);
                    returns_left -= usize::from(h.ops[op].definite());
                    if stack.len() > deepest {
                        deepest = stack.len();
                        record = true;
                    }
                    cur = list.first();
                    continue;
                }
                done.remove(&frame);
            }
            cur = list.next(cur);
        } else {
            if record {
                record = false;
                dead_end = Some(DeadEnd {
                    linearized: stack.len(),
                    recent: stack.iter().rev().take(RECENT).rev().map(|f| f.op).collect(),
                    value,
                    blocked: op,
                });
            }
            let Some(frame) = stack.pop() else {
                break Answer::Violation(dead_end.take().expect("recorded at the first return"));
            };
            list.unlift(frame.op);
            done.remove(&frame);
            value = frame.value;
            returns_left += usize::from(h.ops[frame.op].definite());
            cur = list.next(list.call_of(frame.op));
        }
    };
    Search {
        answer,
        states: seen.entries.len() as u64,
        linearized_max: deepest,
        spent: started.elapsed(),
    }
}

/// The register's value after `o`, if `o` can take effect on `value`. An unknown cas whose
/// compare fails is not taken: it is no different from one that never happened.
fn step(value: Value, o: &KeyOp) -> Option<Value> {
    match o.effect {
        Effect::Read(v) => (v == value).then_some(value),
        Effect::Write(v) => Some(v),
        Effect::Cas { expected, new } => (expected == value).then_some(new),
    }
}

/// What undoing one linearized operation restores.
struct Frame {
    op: usize,
    value: Value,
    prefix: usize,
    end: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_return: bool,
}

/// The calls and returns not yet linearized, in time order: a doubly linked list over the
/// entries, so linearizing an operation unlinks its two entries and undoing it (always in
/// reverse order) relinks them.
struct Timeline {
    entries: Vec<Entry>,
    /// Links between entry indices; index 0 is the list's head, not an entry.
    next: Vec<u32>,
    prev: Vec<u32>,
    call: Vec<u32>,
    ret: Vec<Option<u32>>,
}

const HEAD: u32 = 0;
const END: u32 = u32::MAX;

impl Timeline {
    fn new(ops: &[KeyOp]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = ops
            .iter()
            .enumerate()
            .flat_map(|(i, o)| {
                let ret = o.definite().then_some((o.ret, true, i));
                [Some((o.call, false, i)), ret]
            })
            .flatten()
            .collect();
        // At equal times calls come first: an operation that returns when another is called
        // does not precede it.
        order.sort_unstable();
        let mut entries = vec![Entry {
            op: usize::MAX,
            is_return: false,
        }];
        let mut call = vec![0; ops.len()];
        let mut ret = vec![None; ops.len()];
        for (i, &(_, is_return, op)) in order.iter().enumerate() {
            let node = (i + 1) as u32;
            if is_return {
                ret[op] = Some(node);
            } else {
                call[op] = node;
            }
            entries.push(Entry { op, is_return });
        }
        let n = entries.len() as u32;
        Timeline {
            next: (1..n).chain([END]).collect(),
            prev: [END].into_iter().chain(0..n - 1).collect(),
            entries,
            call,
            ret,
        }
    }

    fn first(&self) -> u32 {
        self.next[HEAD as usize]
    }

    fn next(&self, node: u32) -> u32 {
        self.next[node as usize]
    }

    fn entry(&self, node: u32) -> Entry {
        self.entries[node as usize]
    }

    fn call_of(&self, op: usize) -> u32 {
        self.call[op]
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        if let Some(r) = self.ret[op] {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret[op] {
            self.relink(r);
        }
        self.relink(self.call[op]);
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != END {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != END {
            self.prev[n as usize] = node;
        }
    }
}

/// The set of linearized operations: a bitset over the key's operations (in call order),
/// with what makes it cheap to remember.
///
/// Operations are linearized roughly in call order, so the set is nearly always a run of
/// ones, then a window of mixed bits, then zeros. Only the window is stored per state, and
/// the set's hash is kept up to date by XOR (Zobrist hashing).
struct Linearized {
    bits: Vec<u64>,
    hash: u64,
    /// Every operation before this one is in the set.
    prefix: usize,
    /// No operation from this one on is in the set.
    end: usize,
}

impl Linearized {
    fn new(ops: usize) -> Self {
        Linearized {
            bits: vec![0; ops.div_ceil(64)],
            hash: 0,
            prefix: 0,
            end: 0,
        }
    }

    fn insert(&mut self, op: usize) {
        self.bits[op / 64] |= 1 << (op % 64);
        self.hash ^= mix(op as u64);
        self.end = self.end.max(op + 1);
        // Bits from `end` on are clear, so the run of ones stops there at the latest.
        while self.prefix < self.end {
            // The shift fills with zeros, so this counts at most to the word's end.
            let ones = (!(self.bits[self.prefix / 64] >> (self.prefix % 64))).trailing_zeros();
            let room = 64 - self.prefix % 64;
            self.prefix += ones as usize;
            if (ones as usize) < room {
                break;
            }
        }
    }

    /// Takes out `frame.op`, which was the last operation inserted after `frame` was taken.
    fn remove(&mut self, frame: &Frame) {
        self.bits[frame.op / 64] &= !(1 << (frame.op % 64));
        self.hash ^= mix(frame.op as u64);
        self.prefix = frame.prefix;
        self.end = frame.end;
    }

    /// The words from the one holding the first missing operation to the last non-zero one.
    fn window(&self) -> (usize, &[u64]) {
        let start = self.prefix / 64;
        (start, &self.bits[start..self.end.div_ceil(64).max(start)])
    }
}

/// The states already explored, each one's window stored once in an arena.
#[derive(Default)]
struct Seen {
    /// From a state's hash to its latest entry; entries of equal hash chain through `next`.
    heads: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    entries: Vec<SeenEntry>,
    words: Vec<u64>,
}

struct SeenEntry {
    value: Value,
    start: u32,
    offset: usize,
    len: u32,
    next: u32,
}

impl Seen {
    /// Remembers the state; false if it was already there.
    fn insert(&mut self, set: &Linearized, value: Value) -> bool {
        let hash = set.hash ^ mix(u64::from(value) | 1 << 63);
        let (start, window) = set.window();
        let head = self.heads.get(&hash).copied().unwrap_or(END);
        let mut e = head;
        while e != END {
            let entry = &self.entries[e as usize];
            let stored = &self.words[entry.offset..entry.offset + entry.len as usize];
            if entry.value == value && entry.start as usize == start && stored == window {
                return false;
            }
            e = entry.next;
        }
        self.entries.push(SeenEntry {
            value,
            start: start as u32,
            offset: self.words.len(),
            len: window.len() as u32,
            next: head,
        });
        self.words.extend_from_slice(window);
        self.heads.insert(hash, (self.entries.len() - 1) as u32);
        true
    }
}

/// SplitMix64's finalizer: a well-spread 64-bit key for each operation and value.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The keys are already hashes.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
