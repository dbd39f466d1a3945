//! Whether the operation history is linearizable: could every key's operations have taken
//! effect one at a time, each at some instant between its call and its return?
//!
//! Linearizability is local (P-compositional), so each key is checked on its own, by the
//! cheapest complete method that applies:
//! - keys whose writes each write a value of their own, with no cas, by the cluster/zone
//!   test of Gibbons & Korach, in O(n log n) ([`zones`]);
//! - the others (cas, repeated values) by a memoized Wing–Gong/Lowe search ([`search`]),
//!   which may run out of its time budget: the key's answer is then unknown, never a pass.
//!
//! Both see the key's history as [`history`] reduces it, and both let [`anomalies`] report
//! the violations that need no ordering first.

mod anomalies;
mod explain;
mod history;
mod search;
#[cfg(test)]
mod tests;
mod zones;

use std::time::Duration;

use firedrill_types::history::Op;
use firedrill_types::summary::{
    KeyUnknown, KeyViolation, LinearizabilityResult, LinearizableVerdict,
};

use history::{KeyHistory, TextMap};
use search::Answer;

#[derive(Debug, Clone)]
pub struct Options {
    /// The most time the search may spend on one key before its answer is unknown.
    pub budget_per_key: Duration,
    /// How many violations, and how many unknown keys, the result lists (all are counted).
    pub max_reported: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget_per_key: Duration::from_secs(1),
            max_reported: 10,
        }
    }
}

/// Checks every key of `ops` (in any order); the result lists keys by name.
pub fn check(ops: &[Op], options: &Options) -> LinearizabilityResult {
    let mut by_key: TextMap<&str, Vec<&Op>> = TextMap::default();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut keys: Vec<_> = by_key.into_iter().collect();
    keys.sort_unstable_by_key(|&(key, _)| key);

    let mut result = LinearizabilityResult {
        linearizable: LinearizableVerdict::True,
        keys_checked: 0,
        keys_linearizable: 0,
        keys_violated: 0,
        keys_unknown: 0,
        keys_by_zones: 0,
        keys_by_search: 0,
        ops_checked: 0,
        states_explored: 0,
        violations: Vec::new(),
        unknown: Vec::new(),
    };
    for (key, ops) in keys {
        let h = KeyHistory::new(key, &ops);
        result.keys_checked += 1;
        result.ops_checked += h.ops.len() as u64;
        let by_zones = h.has_unique_writes();
        *if by_zones {
            &mut result.keys_by_zones
        } else {
            &mut result.keys_by_search
        } += 1;
        let answer = match anomalies::find(&h) {
            Some(v) => KeyAnswer::Violated(v),
            None if by_zones => {
                zones::check(&h).map_or(KeyAnswer::Linearizable, KeyAnswer::Violated)
            }
            None => searched(&h, options, &mut result.states_explored),
        };
        match answer {
            KeyAnswer::Linearizable => result.keys_linearizable += 1,
            KeyAnswer::Violated(v) => {
                result.keys_violated += 1;
                if result.violations.len() < options.max_reported {
                    result.violations.push(v);
                }
            }
            KeyAnswer::Unknown(u) => {
                result.keys_unknown += 1;
                if result.unknown.len() < options.max_reported {
                    result.unknown.push(u);
                }
            }
        }
    }
    result.linearizable = if result.keys_violated > 0 {
        LinearizableVerdict::False
    } else if result.keys_unknown > 0 {
        LinearizableVerdict::Unknown
    } else {
        LinearizableVerdict::True
    };
    result
}

enum KeyAnswer {
    Linearizable,
    Violated(KeyViolation),
    Unknown(KeyUnknown),
}

fn searched(h: &KeyHistory, options: &Options, states: &mut u64) -> KeyAnswer {
    let s = search::search(h, options.budget_per_key);
    *states += s.states;
    match s.answer {
        Answer::Linearizable => KeyAnswer::Linearizable,
        Answer::Violation(dead_end) => KeyAnswer::Violated(dead_end.explain(h)),
        Answer::Unknown => KeyAnswer::Unknown(KeyUnknown {
            key: h.key.to_owned(),
            budget_ms: options.budget_per_key.as_millis() as u64,
            spent_ms: s.spent.as_millis() as u64,
            states_explored: s.states,
            ops: h.ops.len() as u64,
            linearized_max: s.linearized_max as u64,
        }),
    }
}
