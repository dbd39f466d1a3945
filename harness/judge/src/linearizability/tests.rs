//! Crafted histories that must pass or fail, and differential tests on random ones: the
//! zone check against the search, and the search against brute force.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use firedrill_types::history::{Micros, Op, OpKind, Outcome};
use firedrill_types::summary::{
    KeyViolation, LinearizabilityResult, LinearizabilityViolationKind as Kind, LinearizableVerdict,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::history::KeyHistory;
use super::search::{search, Answer};
use super::{anomalies, check, zones, Options};

fn op(id: u64, kind: OpKind, value: Option<&str>, call: Micros, ret: Micros) -> Op {
    Op {
        id,
        client: id as u32,
        node: Arc::from("n1"),
        kind,
        key: Arc::from("k"),
        value: value.map(Into::into),
        expected: None,
        t_intended: call,
        t_call: call,
        t_return: ret,
        outcome: Outcome::Ok,
        error: None,
        backend: None,
    }
}

fn write(id: u64, value: &str, call: Micros, ret: Micros) -> Op {
    op(id, OpKind::Write, Some(value), call, ret)
}

fn read(id: u64, value: Option<&str>, call: Micros, ret: Micros) -> Op {
    op(id, OpKind::Read, value, call, ret)
}

fn cas(id: u64, expected: Option<&str>, new: &str, call: Micros, ret: Micros) -> Op {
    Op {
        expected: expected.map(Into::into),
        ..op(id, OpKind::Cas, Some(new), call, ret)
    }
}

fn unknown(o: Op) -> Op {
    Op {
        outcome: Outcome::Unknown,
        ..o
    }
}

fn failed(o: Op) -> Op {
    Op {
        outcome: Outcome::Fail,
        ..o
    }
}

fn on(key: &str, o: Op) -> Op {
    Op {
        key: Arc::from(key),
        ..o
    }
}

fn verdict(ops: &[Op]) -> LinearizabilityResult {
    check(ops, &Options::default())
}

fn violation(ops: &[Op]) -> KeyViolation {
    let r = verdict(ops);
    assert_eq!(r.linearizable, LinearizableVerdict::False, "{r:#?}");
    assert_eq!(r.keys_violated, 1, "{r:#?}");
    r.violations[0].clone()
}

fn assert_linearizable(ops: &[Op]) {
    let r = verdict(ops);
    assert_eq!(r.linearizable, LinearizableVerdict::True, "{r:#?}");
}

/// The search's own answer on a one-key history, without the anomalies or the zone check.
fn search_says_linearizable(ops: &[Op]) -> bool {
    let h = KeyHistory::new("k", &ops.iter().collect::<Vec<_>>());
    match search(&h, Duration::from_secs(60)).answer {
        Answer::Linearizable => true,
        Answer::Violation(_) => false,
        Answer::Unknown => panic!("search ran out of time on:\n{}", show(ops)),
    }
}

fn zones_say_linearizable(ops: &[Op]) -> bool {
    let h = KeyHistory::new("k", &ops.iter().collect::<Vec<_>>());
    assert!(h.has_unique_writes(), "not a zone history:\n{}", show(ops));
    anomalies::find(&h).or_else(|| zones::check(&h)).is_none()
}

fn show(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| {
            format!(
                "#{} {:?} {:?} value={:?} expected={:?} [{}, {}]\n",
                o.id, o.kind, o.outcome, o.value, o.expected, o.t_call, o.t_return
            )
        })
        .collect()
}

// ── Histories that must fail ──

#[test]
fn new_old_new_reads_are_an_order_violation() {
    let ops = [
        write(1, "A", 0, 100),
        write(2, "B", 0, 100),
        read(3, Some("A"), 10, 11),
        read(4, Some("B"), 20, 21),
        read(5, Some("A"), 30, 31),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Order);
    assert_eq!(v.ops, [3, 4, 5]);
    assert!(
        v.explanation
            .starts_with(r#""A" cannot be read again after "B" replaced it: read #3 (client 3, 0.000010–0.000011s) saw "A" returned before read #4"#),
        "{}",
        v.explanation
    );
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn values_read_in_turn_twice_are_an_order_violation() {
    // Both clusters span the register over overlapping times (two forward zones).
    let ops = [
        write(1, "A", 0, 100),
        write(2, "B", 0, 100),
        read(3, Some("A"), 10, 11),
        read(4, Some("B"), 20, 21),
        read(5, Some("A"), 30, 31),
        read(6, Some("B"), 40, 41),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Order);
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn two_cas_from_the_same_read_value_lose_an_update() {
    let ops = [
        write(1, "v0", 0, 1),
        read(2, Some("v0"), 2, 3),
        read(3, Some("v0"), 2, 3),
        cas(4, Some("v0"), "a", 4, 5),
        cas(5, Some("v0"), "b", 4, 5),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::LostUpdate);
    assert_eq!(v.ops, [4, 5, 1]);
    assert!(
        v.explanation.contains("one update was lost"),
        "{}",
        v.explanation
    );
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn two_cas_on_the_initial_absent_value_lose_an_update() {
    let ops = [cas(1, None, "a", 0, 10), cas(2, None, "b", 0, 10)];
    assert_eq!(violation(&ops).kind, Kind::LostUpdate);
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn an_unknown_write_cannot_take_effect_twice() {
    // A took effect before the read at 5, which was before B; a read after B sees A again.
    let ops = [
        unknown(write(1, "A", 0, 1)),
        read(2, Some("A"), 5, 6),
        write(3, "B", 10, 20),
        read(4, Some("A"), 30, 31),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Stale);
    assert_eq!(v.ops, [2, 3, 4]);
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn reading_absent_after_a_completed_write_is_stale() {
    let ops = [write(1, "A", 0, 10), read(2, None, 20, 21)];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Stale);
    assert_eq!(
        v.explanation,
        r#"read #2 (client 2, 0.000020–0.000021s) saw absent, older than "A": write #1 (client 1, 0.000000–0.000010s) wrote "A" had completed before the read began"#
    );
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn a_read_of_a_value_never_written_is_a_phantom() {
    let ops = [write(1, "A", 0, 10), read(2, Some("X"), 20, 21)];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Phantom);
    assert!(
        v.explanation
            .ends_with("which no write of the key produced"),
        "{}",
        v.explanation
    );
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn a_read_of_a_failed_write_is_a_phantom() {
    let ops = [failed(write(1, "A", 0, 10)), read(2, Some("A"), 20, 21)];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Phantom);
    assert_eq!(v.ops, [2, 1]);
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn a_read_that_returned_before_its_write_began_is_from_the_future() {
    let ops = [read(1, Some("A"), 0, 5), write(2, "A", 10, 20)];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Future);
    assert_eq!(v.ops, [1, 2]);
    assert!(!search_says_linearizable(&ops));
}

#[test]
fn a_read_older_than_a_completed_overwrite_is_stale() {
    let ops = [
        write(1, "A", 0, 10),
        write(2, "B", 20, 30),
        read(3, Some("A"), 40, 41),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::Stale);
    assert_eq!(v.ops, [1, 2, 3]);
    assert_eq!(
        v.explanation,
        r#"read #3 (client 3, 0.000040–0.000041s) saw "A", older than "B": write #2 (client 2, 0.000020–0.000030s) wrote "B" had completed before the read began, and "A" came before "B": write #1 (client 1, 0.000000–0.000010s) wrote "A" returned before that write began"#
    );
}

#[test]
fn a_cas_chain_that_skips_a_link_has_no_linearization() {
    // "1" was replaced by "2" before "3" was expected to replace "1".
    let ops = [
        cas(1, None, "1", 0, 1),
        cas(2, Some("1"), "2", 2, 3),
        write(3, "1", 4, 5),
        cas(4, Some("2"), "3", 6, 7),
    ];
    let v = violation(&ops);
    assert_eq!(v.kind, Kind::NoLinearization);
    assert_eq!(v.ops, [1, 2, 3, 4]);
    assert!(
        v.explanation
            .contains(r#"the key then holds "1", and cas #4"#),
        "{}",
        v.explanation
    );
}

#[test]
fn repeated_values_read_out_of_order_have_no_linearization() {
    let ops = [
        write(1, "x", 0, 1),
        write(2, "y", 2, 3),
        write(3, "x", 4, 5),
        read(4, Some("y"), 6, 7),
    ];
    assert_eq!(violation(&ops).kind, Kind::NoLinearization);
}

// ── Histories that must pass ──

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    for last in ["A", "B"] {
        let ops = [
            write(1, "A", 0, 100),
            write(2, "B", 0, 100),
            read(3, Some(last), 110, 111),
        ];
        assert_linearizable(&ops);
        assert!(search_says_linearizable(&ops));
    }
}

#[test]
fn an_unknown_write_may_take_effect_late() {
    let ops = [
        unknown(write(1, "A", 0, 1)),
        read(2, None, 5, 6),
        write(3, "B", 10, 20),
        read(4, Some("A"), 30, 31),
    ];
    assert_linearizable(&ops);
    assert!(search_says_linearizable(&ops));
}

#[test]
fn an_unknown_write_may_never_take_effect() {
    let ops = [
        unknown(write(1, "A", 0, 1)),
        read(2, None, 50, 51),
        unknown(cas(3, None, "B", 60, 61)),
        read(4, None, 70, 71),
    ];
    assert_linearizable(&ops);
    assert!(search_says_linearizable(&ops));
}

#[test]
fn reads_of_absent_before_any_write_pass() {
    let ops = [
        read(1, None, 0, 1),
        read(2, None, 3, 9),
        write(3, "A", 5, 6),
        read(4, Some("A"), 7, 8),
    ];
    assert_linearizable(&ops);
}

#[test]
fn cas_chains_pass() {
    let ops = [
        cas(1, None, "0", 0, 1),
        cas(2, Some("0"), "1", 2, 10),
        cas(3, Some("1"), "2", 3, 11),
        read(4, Some("2"), 12, 13),
        unknown(cas(5, Some("2"), "3", 14, 15)),
        read(6, Some("3"), 20, 21),
        unknown(cas(7, Some("3"), "4", 22, 23)),
        failed(cas(8, Some("9"), "5", 22, 23)),
        read(9, Some("3"), 24, 25),
    ];
    let r = verdict(&ops);
    assert_eq!(r.linearizable, LinearizableVerdict::True, "{r:#?}");
    assert_eq!((r.keys_by_search, r.keys_by_zones), (1, 0));
}

#[test]
fn repeated_values_in_order_pass() {
    let ops = [
        write(1, "x", 0, 1),
        write(2, "y", 2, 3),
        write(3, "x", 4, 5),
        read(4, Some("x"), 6, 7),
    ];
    let r = verdict(&ops);
    assert_eq!(r.linearizable, LinearizableVerdict::True, "{r:#?}");
    assert_eq!(r.keys_by_search, 1);
}

/// Found by the differential test: the writes of "b" must vanish behind the unknown
/// rewrite of "a" before the cas that needs "a", though the key already held "a".
#[test]
fn silent_writes_may_hide_behind_an_unknown_rewrite_before_a_cas() {
    let ops = [
        write(0, "a", 0, 7),
        write(1, "b", 2, 33),
        unknown(write(2, "a", 22, 42)),
        cas(3, Some("a"), "c", 19, 43),
        write(4, "b", 22, 43),
        write(5, "b", 28, 46),
        write(6, "b", 49, 55),
        read(7, Some("c"), 52, 80),
        cas(8, Some("c"), "c", 0, 155),
        cas(9, Some("c"), "a", 65, 108),
        read(10, Some("a"), 0, 139),
        unknown(write(11, "c", 89, 119)),
    ];
    assert!(brute_force(&ops));
    assert!(search_says_linearizable(&ops));
}

// ── The whole history ──

#[test]
fn keys_are_judged_apart_and_listed_by_name() {
    let ops = [
        on("b", write(1, "A", 0, 10)),
        on("b", read(2, None, 20, 21)),
        on("a", write(3, "A", 0, 10)),
        on("a", read(4, Some("A"), 20, 21)),
        on("c", read(5, Some("nope"), 0, 1)),
        on("c", failed(read(6, Some("ignored"), 0, 1))),
    ];
    let r = check(
        &ops,
        &Options {
            max_reported: 1,
            ..Options::default()
        },
    );
    assert_eq!(r.linearizable, LinearizableVerdict::False);
    assert_eq!(
        (
            r.keys_checked,
            r.keys_linearizable,
            r.keys_violated,
            r.ops_checked
        ),
        (3, 1, 2, 5)
    );
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].key, "b");
}

#[test]
fn a_search_out_of_time_is_unknown_never_a_pass() {
    // Twelve concurrent writes of six values, each twice, then reads of all six in turn:
    // no order explains them, but the search must try every subset of the writes to know.
    let mut ops: Vec<Op> = (0..12)
        .map(|i| write(i, &(i % 6).to_string(), 0, 100))
        .collect();
    for i in 0..6 {
        ops.push(read(12 + i, Some(&i.to_string()), 200 + 2 * i, 201 + 2 * i));
    }
    let r = check(
        &ops,
        &Options {
            budget_per_key: Duration::ZERO,
            max_reported: 10,
        },
    );
    assert_eq!(r.linearizable, LinearizableVerdict::Unknown, "{r:#?}");
    assert_eq!((r.keys_unknown, r.keys_by_search), (1, 1));
    let u = &r.unknown[0];
    assert_eq!((u.key.as_str(), u.ops, u.budget_ms), ("k", 18, 0));
    assert!(u.states_explored > 0 && u.linearized_max > 0, "{u:?}");
}

#[test]
fn verdicts_serialize_as_true_false_unknown() {
    let names = [
        LinearizableVerdict::True,
        LinearizableVerdict::False,
        LinearizableVerdict::Unknown,
    ]
    .map(|v| serde_json::to_string(&v).unwrap());
    assert_eq!(names, [r#""true""#, r#""false""#, r#""unknown""#]);
    assert_eq!(
        serde_json::to_string(&Kind::LostUpdate).unwrap(),
        r#""lost_update""#
    );
}

// ── Differential tests ──

/// A random one-key history: each operation takes effect at a point of its own, and its
/// interval is drawn around that point. With `lag` 0 it is linearizable by construction;
/// otherwise reads may return any of the last `lag` values before the current one, like a
/// replica that lags by a varying amount.
fn generate(rng: &mut StdRng, n: usize, unique: bool, with_cas: bool, lag: usize) -> Vec<Op> {
    let shared = ["a", "b", "c"];
    let value = |rng: &mut StdRng, id: u64| match unique {
        true => format!("v{id}"),
        false => shared[rng.random_range(0..shared.len())].to_owned(),
    };
    let mut state: Option<String> = None;
    let mut past: Vec<Option<String>> = Vec::new();
    let mut at: Micros = 0;
    let mut ops = Vec::with_capacity(n);
    for id in 0..n as u64 {
        at += rng.random_range(1..=20);
        // Mostly short operations, some long ones that overlap many.
        let spread = if rng.random_bool(0.2) { 150 } else { 25 };
        let call = at.saturating_sub(rng.random_range(0..=spread));
        let ret = at + rng.random_range(0..=spread);
        let mut outcome = match rng.random_range(0..100) {
            0..10 => Outcome::Unknown,
            10..15 => Outcome::Fail,
            _ => Outcome::Ok,
        };
        let takes_effect = match outcome {
            Outcome::Ok => true,
            Outcome::Unknown => rng.random_bool(0.5),
            Outcome::Fail => false,
        };
        let roll = rng.random_range(0..100);
        let mut o = if with_cas && roll < 30 {
            let expected = match rng.random_bool(0.7) {
                true => state.clone(),
                false => Some(value(rng, id)).filter(|_| rng.random_bool(0.8)),
            };
            let new = value(rng, id);
            let o = cas(id, expected.as_deref(), &new, call, ret);
            if expected != state && outcome == Outcome::Ok {
                // The compare failed: the store answers with a definite no-op.
                outcome = Outcome::Fail;
            } else if expected == state && takes_effect {
                past.push(state.replace(new));
            }
            o
        } else if roll < 65 {
            let new = value(rng, id);
            let o = write(id, &new, call, ret);
            if takes_effect {
                past.push(state.replace(new));
            }
            o
        } else {
            let back = rng.random_range(0..=lag.min(past.len()));
            let seen = match back {
                0 => &state,
                back => &past[past.len() - back],
            };
            read(id, seen.as_deref(), call, ret)
        };
        o.outcome = outcome;
        ops.push(o);
    }
    ops
}

/// Breaks (or happens to keep) a history: a read sees another value, a cas expects
/// another, or an operation moves or stretches.
fn mutate(rng: &mut StdRng, ops: &mut [Op]) {
    for _ in 0..rng.random_range(1..=2) {
        let pick = |rng: &mut StdRng, kind: Option<OpKind>| {
            let of_kind: Vec<usize> = (0..ops.len())
                .filter(|&i| kind.is_none_or(|k| ops[i].kind == k))
                .collect();
            (!of_kind.is_empty()).then(|| of_kind[rng.random_range(0..of_kind.len())])
        };
        match rng.random_range(0..3) {
            0 => {
                if let Some(i) = pick(rng, Some(OpKind::Read)) {
                    ops[i].value = nearby_value(rng, ops, i);
                }
            }
            1 => {
                if let Some(i) = pick(rng, Some(OpKind::Cas)) {
                    ops[i].expected = nearby_value(rng, ops, i);
                }
            }
            _ => {
                if let Some(i) = pick(rng, None) {
                    let o = &mut ops[i];
                    o.t_call = (o.t_call + rng.random_range(0..=100)).saturating_sub(50);
                    o.t_return = o.t_call + rng.random_range(0..=50);
                }
            }
        }
    }
}

/// The value of an operation close to `i` in the history (or absent, now and then): the
/// likeliest to make a subtle violation rather than an obvious one.
fn nearby_value(rng: &mut StdRng, ops: &[Op], i: usize) -> Option<Box<str>> {
    let j = (i + rng.random_range(0..=8))
        .saturating_sub(4)
        .min(ops.len() - 1);
    ops[j].value.clone().filter(|_| rng.random_bool(0.9))
}

/// Every order of every subset that keeps all the operations with a known outcome, tried
/// the obvious way. Which (placed set, value) pairs failed is remembered, as what can follow
/// depends on nothing else; that keeps histories of a dozen operations fast.
fn brute_force(ops: &[Op]) -> bool {
    let live: Vec<&Op> = ops
        .iter()
        .filter(|o| match o.kind {
            OpKind::Read => o.outcome == Outcome::Ok,
            _ => o.outcome != Outcome::Fail,
        })
        .collect();
    assert!(live.len() <= 64);
    extend(&live, 0, None, &mut HashSet::new())
}

fn extend<'a>(
    live: &[&'a Op],
    placed: u64,
    state: Option<&'a str>,
    failed: &mut HashSet<(u64, Option<&'a str>)>,
) -> bool {
    let is_placed = |j: usize| placed >> j & 1 == 1;
    let unplaced = |j: usize| !is_placed(j) && live[j].outcome == Outcome::Ok;
    if !(0..live.len()).any(unplaced) {
        return true;
    }
    if failed.contains(&(placed, state)) {
        return false;
    }
    for (i, o) in live.iter().enumerate() {
        let must_wait = (0..live.len()).any(|j| unplaced(j) && live[j].t_return < o.t_call);
        if is_placed(i) || must_wait {
            continue;
        }
        let next = match o.kind {
            OpKind::Read if o.value.as_deref() == state => state,
            OpKind::Read => continue,
            OpKind::Write => o.value.as_deref(),
            OpKind::Cas if o.expected.as_deref() == state => o.value.as_deref(),
            OpKind::Cas if o.outcome == Outcome::Unknown => state,
            OpKind::Cas => continue,
        };
        if extend(live, placed | 1 << i, next, failed) {
            return true;
        }
    }
    failed.insert((placed, state));
    false
}

#[test]
fn zones_and_search_agree_on_unique_value_histories() {
    let (mut yes, mut no) = (0, 0);
    for seed in 0..3000 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(1..=30);
        let lag = if rng.random_bool(0.5) { 4 } else { 0 };
        let mut ops = generate(&mut rng, n, true, false, lag);
        let mutated = rng.random_bool(0.7);
        if mutated {
            mutate(&mut rng, &mut ops);
        }
        let zones = zones_say_linearizable(&ops);
        let search = search_says_linearizable(&ops);
        assert_eq!(
            zones,
            search,
            "seed {seed}: zones {zones}, search {search}:\n{}",
            show(&ops)
        );
        assert!(
            lag > 0 || mutated || zones,
            "seed {seed}: generated linearizable:\n{}",
            show(&ops)
        );
        *if zones { &mut yes } else { &mut no } += 1;
    }
    assert!(yes > 1500 && no > 600, "{yes} linearizable, {no} not");
}

#[test]
fn search_agrees_with_brute_force_on_tiny_histories() {
    let (yes, no) = search_agrees_with_brute_force(0..4000, 2..=7);
    assert!(yes > 2500 && no > 400, "{yes} linearizable, {no} not");
}

#[test]
fn search_agrees_with_brute_force_on_small_histories() {
    let (yes, no) = search_agrees_with_brute_force(10_000..11_000, 8..=16);
    assert!(yes > 200 && no > 200, "{yes} linearizable, {no} not");
}

/// Random histories of `sizes` operations, with and without cas, unique and repeated
/// values; returns how many were linearizable, and how many not.
fn search_agrees_with_brute_force(
    seeds: std::ops::Range<u64>,
    sizes: std::ops::RangeInclusive<usize>,
) -> (u32, u32) {
    let (mut yes, mut no) = (0, 0);
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(sizes.clone());
        let (unique, with_cas) = (rng.random_bool(0.3), rng.random_bool(0.7));
        let lag = if rng.random_bool(0.5) { 3 } else { 0 };
        let mut ops = generate(&mut rng, n, unique, with_cas, lag);
        let mutated = rng.random_bool(0.7);
        if mutated {
            mutate(&mut rng, &mut ops);
        }
        let expected = brute_force(&ops);
        assert!(
            lag > 0 || mutated || expected,
            "seed {seed}: generated linearizable:\n{}",
            show(&ops)
        );
        let search = search_says_linearizable(&ops);
        assert_eq!(
            search,
            expected,
            "seed {seed}: search {search}, brute force {expected}:\n{}",
            show(&ops)
        );
        let checked = verdict(&ops).linearizable;
        let want = match expected {
            true => LinearizableVerdict::True,
            false => LinearizableVerdict::False,
        };
        assert_eq!(
            checked,
            want,
            "seed {seed}: check() says {checked:?}:\n{}",
            show(&ops)
        );
        *if expected { &mut yes } else { &mut no } += 1;
    }
    (yes, no)
}
