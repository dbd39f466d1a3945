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
//!
//! Plain, it would try every order of concurrent operations, so it prunes orders that
//! cannot matter, each pruning complete because any linearization can be rearranged to
//! avoid what it prunes: a read that fits goes at once; [`roles`] has some writes wait
//! until they matter and some operations go before their twins; an unknown cas must be
//! followed by an operation that sees its value.

mod memo;
mod roles;
mod timeline;

use std::time::{Duration, Instant};

use firedrill_types::summary::{KeyViolation, LinearizabilityViolationKind};

use super::history::{Effect, KeyHistory, KeyOp, Value, ABSENT};
use memo::{Bounds, Linearized, Seen};
use roles::{took_effect_before_seen, Role, Roles};
use timeline::{Entry, Node, Timeline, END};

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
        // What it saw or expected is in its description; else the state was a dead end.
        let fits = step(self.value, blocked).is_some();
        let later = if fits {
            ": every order that places it there fails later"
        } else {
            ""
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
            "no order of the key's {} operations explains what they returned: the longest consistent order found places {placed}; the key then holds {}, and {} cannot be placed before it returned{later}",
            h.ops.len(),
            h.value_text(self.value),
            h.describe(blocked)
        );
        let ops = self
            .recent
            .iter()
            .chain([&self.blocked])
            .map(|&i| h.ops[i].op.id);
        h.violation(LinearizabilityViolationKind::NoLinearization, text, ops)
    }
}

/// How many of the dead end's operations the explanation names.
const RECENT: usize = 3;

/// How many steps go between looks at the clock.
const CLOCK_EVERY: u64 = 1024;

pub(super) fn search(h: &KeyHistory, budget: Duration) -> Search {
    let started = Instant::now();
    let mut dfs = Dfs::new(h);
    let (answer, deepest) = dfs.run(|| started.elapsed() >= budget);
    Search {
        answer,
        states: dfs.seen.len() as u64,
        linearized_max: deepest,
        spent: started.elapsed(),
    }
}

/// What one step of the walk did.
enum Move {
    Linearized,
    /// Not now: the walk goes on to the next call.
    Skipped,
    /// Nothing from this state works: backtrack.
    Stuck,
}

/// What undoing one linearized operation restores.
struct Frame {
    op: usize,
    value: Value,
    bounds: Bounds,
    /// The silent writes absorbed before `op` are `absorbed[absorbed_from..]`.
    absorbed_from: usize,
    /// Where the walk goes on once this is undone.
    resume: Resume,
}

#[derive(Clone, Copy)]
enum Resume {
    /// After the node where the operation was linearized.
    After(Node),
    /// At the node again, for the operation there on its own, once it went after a
    /// just-in-time write.
    Alone(Node),
    /// Nowhere: the operation was the only one that could go there, so undoing it is to
    /// backtrack further.
    Backtrack,
}

struct Dfs<'h> {
    /// The key's operations, with the deadlines [`roles::took_effect_before_seen`] infers.
    ops: Vec<KeyOp<'h>>,
    roles: Roles,
    list: Timeline,
    done: Linearized,
    seen: Seen,
    stack: Vec<Frame>,
    absorbed: Vec<usize>,
    value: Value,
    linearized: usize,
    returns_left: usize,
}

impl<'h> Dfs<'h> {
    fn new(h: &KeyHistory<'h>) -> Self {
        let mut ops = h.ops.clone();
        took_effect_before_seen(&mut ops, h.values.len());
        Dfs {
            roles: Roles::new(&ops, h.values.len()),
            list: Timeline::new(&ops),
            done: Linearized::new(ops.len()),
            seen: Seen::default(),
            stack: Vec::new(),
            absorbed: Vec::new(),
            value: ABSENT,
            linearized: 0,
            returns_left: ops.iter().filter(|o| o.definite()).count(),
            ops,
        }
    }

    /// The answer, and the most operations linearized at once.
    fn run(&mut self, out_of_time: impl Fn() -> bool) -> (Answer, usize) {
        let mut dead_end: Option<DeadEnd> = None;
        let mut deepest = 0;
        let mut record = true;
        let mut steps = 0u64;
        let mut cur = self.list.first();
        let mut alone: Option<Node> = None;
        loop {
            if self.returns_left == 0 {
                return (Answer::Linearizable, deepest);
            }
            steps += 1;
            if steps.is_multiple_of(CLOCK_EVERY) && out_of_time() {
                return (Answer::Unknown, deepest);
            }
            // Some operation with a return is not linearized, so its return lies ahead.
            let Entry { op, is_return } = self.list.entry(cur);
            let moved = match is_return {
                false => self.at_call(op, cur, alone.take() == Some(cur)),
                // Its deadline: a waiting write goes now; anything else is too late.
                true if self.roles.of[op] != Role::Free && self.must_see().is_none() => {
                    match self.push(op, self.written(op), Resume::Backtrack, true) {
                        true => Move::Linearized,
                        false => Move::Stuck,
                    }
                }
                true => Move::Stuck,
            };
            match moved {
                Move::Linearized => {
                    if self.linearized > deepest {
                        deepest = self.linearized;
                        record = true;
                    }
                    cur = self.list.first();
                    continue;
                }
                Move::Skipped => {
                    cur = self.list.next(cur);
                    continue;
                }
                Move::Stuck => {}
            }
            if record {
                record = false;
                dead_end = Some(DeadEnd {
                    linearized: self.linearized,
                    recent: self
                        .stack
                        .iter()
                        .rev()
                        .take(RECENT)
                        .rev()
                        .map(|f| f.op)
                        .collect(),
                    value: self.value,
                    blocked: op,
                });
            }
            cur = loop {
                let Some(frame) = self.pop() else {
                    let dead_end = dead_end.take().expect("recorded at the first dead end");
                    return (Answer::Violation(dead_end), deepest);
                };
                match frame.resume {
                    Resume::After(node) => break self.list.next(node),
                    Resume::Alone(node) => {
                        alone = Some(node);
                        break node;
                    }
                    Resume::Backtrack => {}
                }
            };
        }
    }

    /// Tries to linearize the free operation called at `node` next, or (unless `alone`) a
    /// just-in-time write of the value it needs and then it.
    ///
    /// The pair is tried when the operation does not fit, and also before a cas that fits
    /// if a silent write waits: the write would absorb it, and the cas cannot.
    ///
    /// A read that fits is linearized at once and never put off: it changes nothing, so if
    /// any order works from here, one with the read next does. Its undoing backtracks.
    fn at_call(&mut self, op: usize, node: Node, alone: bool) -> Move {
        if self.roles.of[op] != Role::Free {
            return Move::Skipped;
        }
        let o = self.ops[op];
        if self.must_see().is_some_and(|v| o.needs() != Some(v)) {
            return Move::Skipped;
        }
        // Only operations called before the first return may go next.
        let limit = || self.list.first_return_from(node);
        let mut twins = self.roles.twins[op]
            .iter()
            .filter(|&&t| !self.done.contains(t));
        if let Some(&first) = twins.next() {
            let limit = limit();
            if self.list.call_of(first) < limit || twins.any(|&t| self.list.call_of(t) < limit) {
                return Move::Skipped;
            }
        }
        let fits = step(self.value, &o);
        let read = matches!(o.effect, Effect::Read(_));
        let pair = match fits {
            _ if alone || self.must_see().is_some() => None,
            None => o.needs(),
            Some(_) if read => None,
            Some(_) => o.needs().filter(|_| self.silent_waiting()),
        };
        let writer = pair.and_then(|v| {
            let writers = &self.roles.jit_writers[v as usize];
            writers.iter().copied().find(|&w| !self.done.contains(w))
        });
        if let Some(w) = writer.filter(|&w| self.list.call_of(w) < limit()) {
            // The pair is one step: the state between is not remembered, since it is
            // explored here only with `op` next, and undoing `op` undoes the write too.
            self.push(w, self.written(w), Resume::Alone(node), false);
            let next = step(self.value, &o).expect("it observes what the write wrote");
            if self.push(op, next, Resume::Backtrack, true) {
                return Move::Linearized;
            }
            self.pop();
        }
        let Some(next) = fits else {
            return Move::Skipped;
        };
        let resume = match read {
            true => Resume::Backtrack,
            false => Resume::After(node),
        };
        match self.push(op, next, resume, true) {
            true => Move::Linearized,
            false if read => Move::Stuck,
            false => Move::Skipped,
        }
    }

    /// Whether a silent write may be linearized now: it is called before the first return.
    fn silent_waiting(&self) -> bool {
        let mut node = self.list.first();
        while node != END && !self.list.entry(node).is_return {
            if self.roles.of[self.list.entry(node).op] == Role::Silent {
                return true;
            }
            node = self.list.next(node);
        }
        false
    }

    /// The value the next operation must see, when the last one is an unknown cas: had
    /// it been followed by anything else, it could as well not have happened.
    fn must_see(&self) -> Option<Value> {
        let last = &self.ops[self.stack.last()?.op];
        match last.effect {
            Effect::Cas { new, .. } if !last.definite() => Some(new),
            _ => None,
        }
    }

    fn written(&self, op: usize) -> Value {
        self.ops[op].written().expect("only writes wait")
    }

    /// Linearizes `op` next, leaving `next` in the register, unless that state was explored
    /// (or, with `remember`, is to be: then it is remembered).
    fn push(&mut self, op: usize, next: Value, resume: Resume, remember: bool) -> bool {
        let frame = Frame {
            op,
            value: self.value,
            bounds: self.done.bounds(),
            absorbed_from: self.absorbed.len(),
            resume,
        };
        if let Effect::Write(_) = self.ops[op].effect {
            let mut node = self.list.first();
            while node != END && !self.list.entry(node).is_return {
                let u = self.list.entry(node).op;
                if u != op && self.roles.of[u] == Role::Silent {
                    self.absorbed.push(u);
                }
                node = self.list.next(node);
            }
        }
        let absorbed = &self.absorbed[frame.absorbed_from..];
        for &u in absorbed {
            self.done.insert(u);
        }
        self.done.insert(op);
        if remember && !self.seen.insert(&self.done, next) {
            for &u in absorbed.iter().chain([&op]) {
                self.done.remove(u, frame.bounds);
            }
            self.absorbed.truncate(frame.absorbed_from);
            return false;
        }
        for &u in absorbed {
            self.list.lift(u);
        }
        self.list.lift(op);
        self.linearized += 1 + absorbed.len();
        self.returns_left -= absorbed.len() + usize::from(self.ops[op].definite());
        self.value = next;
        self.stack.push(frame);
        true
    }

    fn pop(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        let absorbed = &self.absorbed[frame.absorbed_from..];
        self.list.unlift(frame.op);
        for &u in absorbed.iter().rev() {
            self.list.unlift(u);
        }
        for &u in absorbed.iter().chain([&frame.op]) {
            self.done.remove(u, frame.bounds);
        }
        self.linearized -= 1 + absorbed.len();
        self.returns_left += absorbed.len() + usize::from(self.ops[frame.op].definite());
        self.absorbed.truncate(frame.absorbed_from);
        self.value = frame.value;
        Some(frame)
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
