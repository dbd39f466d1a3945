//! When the search may linearize an operation. Each rule keeps the search complete: any
//! linearization can be rearranged into one that obeys it.

use std::collections::HashMap;

use super::super::history::{Effect, KeyOp, ABSENT, NEVER};

/// When the search linearizes an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Whenever it may come next: reads, cas, and writes of values other writes write too.
    Free,
    /// An acknowledged write of a value nothing observes. Whatever follows it directly
    /// must be another write, so it is placed right before the first write linearized
    /// once it may be (absorbed: no one can tell), or else at its return.
    Silent,
    /// A write that must be followed directly by an operation that sees its value: the
    /// only write of a value an acknowledged operation saw, or a write whose outcome is
    /// unknown (placed elsewhere it changes nothing anyone sees, as if it never
    /// happened). It is placed together with such an operation, or else at its return.
    JustInTime,
}

pub(super) struct Roles {
    /// Each operation's role.
    pub of: Vec<Role>,
    /// For each value, its just-in-time writes in call order. Those of unknown outcome are
    /// interchangeable, so the first not yet linearized stands for all.
    pub jit_writers: Vec<Vec<usize>>,
    /// For each operation, the ones with the same effect that go first when both may: of
    /// two acknowledged ones the one that returns first (its deadline is nearer), of two
    /// unknown cas the one called first (neither has a deadline). Any order that uses the
    /// other first works with the two swapped.
    pub twins: Vec<Vec<usize>>,
}

impl Roles {
    /// `values`: how many values the key's history interned.
    pub fn new(ops: &[KeyOp], values: usize) -> Self {
        let mut writers = vec![0usize; values];
        // The initial value counts as written, so absent never waits for a write.
        writers[ABSENT as usize] = 1;
        let mut observed = vec![false; values];
        let mut seen_by_acked = vec![false; values];
        for o in ops {
            if let Some(v) = o.written() {
                writers[v as usize] += 1;
            }
            if let Some(v) = o.needs() {
                observed[v as usize] = true;
            }
            if let Some(v) = o.observed() {
                seen_by_acked[v as usize] = true;
            }
        }
        let mut jit_writers = vec![Vec::new(); values];
        let of: Vec<Role> = (ops.iter().enumerate())
            .map(|(i, o)| match o.effect {
                Effect::Write(v) if !observed[v as usize] && o.definite() => Role::Silent,
                Effect::Write(v)
                    if !o.definite() || writers[v as usize] == 1 && seen_by_acked[v as usize] =>
                {
                    jit_writers[v as usize].push(i);
                    Role::JustInTime
                }
                _ => Role::Free,
            })
            .collect();
        Roles {
            twins: twins(ops, &of),
            of,
            jit_writers,
        }
    }
}

/// An unknown write (or cas) of a value no other op writes, once an acknowledged operation
/// saw that value, took effect before that one returned: the earliest such return becomes
/// its own, and the search must place it.
pub(super) fn took_effect_before_seen(ops: &mut [KeyOp], values: usize) {
    let mut writers = vec![0u32; values];
    let mut first_seen = vec![NEVER; values];
    for o in ops.iter() {
        if let Some(v) = o.written() {
            writers[v as usize] += 1;
        }
        if let Some(v) = o.observed() {
            first_seen[v as usize] = first_seen[v as usize].min(o.ret);
        }
    }
    for o in ops.iter_mut().filter(|o| !o.definite()) {
        match o.written() {
            Some(v) if v != ABSENT && writers[v as usize] == 1 => o.ret = first_seen[v as usize],
            _ => {}
        }
    }
}

/// [`Roles::twins`]: for each free write or cas, the others with the same effect that go
/// first. Acknowledged ones compete only while both are pending, so only overlapping ones
/// are listed.
fn twins(ops: &[KeyOp], roles: &[Role]) -> Vec<Vec<usize>> {
    let mut by_effect: HashMap<(Effect, bool), Vec<usize>> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        if roles[i] == Role::Free && o.written().is_some() {
            by_effect
                .entry((o.effect, o.definite()))
                .or_default()
                .push(i);
        }
    }
    let mut twins = vec![Vec::new(); ops.len()];
    for ((_, definite), group) in by_effect {
        // `group` is in call order, as the operations are.
        for (n, &i) in group.iter().enumerate() {
            if !definite {
                twins[i].extend(n.checked_sub(1).map(|p| group[p]));
                continue;
            }
            for &j in group[n + 1..]
                .iter()
                .take_while(|&&j| ops[j].call <= ops[i].ret)
            {
                let (first, second) = match (ops[j].ret, j) < (ops[i].ret, i) {
                    true => (j, i),
                    false => (i, j),
                };
                twins[second].push(first);
            }
        }
    }
    twins
}
