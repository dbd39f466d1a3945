//! The cluster/zone test of Gibbons & Korach (1997): a complete check, in O(n log n), of a
//! register whose writes each write a value of their own, so every read names its write.
//!
//! A cluster is a write and the reads of its value; a linearization puts each cluster in
//! one run (its write, then its reads) before the next write. The run must start before the
//! cluster's earliest return `f` and end after its latest call `s`. If `f < s` the cluster
//! holds the register over all of `[f, s]` (a forward zone); otherwise it fits at any one
//! instant of `[s, f]` (a backward zone). The history is linearizable iff no two forward
//! zones overlap and no backward zone lies inside a forward one. Precedence is strict
//! (`a` precedes `b` iff `a` returned before `b` was called), so zones that only touch
//! at an end do not conflict.
//!
//! [`super::anomalies`] runs first: every read here has a write called before it returned.

use firedrill_types::summary::{KeyViolation, LinearizabilityViolationKind as Kind};

use super::history::{Effect, KeyHistory, Time, ABSENT, BEFORE_ALL};

/// An operation of a cluster: an index into the key's operations, or `None` for the virtual
/// write of the initial absent value, done before everything.
type Member = Option<usize>;

struct Cluster {
    write: Member,
    /// The member that returned first, and the one called last.
    first_return: Member,
    last_call: Member,
    /// The read called last, if any.
    last_read: Option<usize>,
}

impl Cluster {
    fn of(write: Member) -> Self {
        Cluster {
            write,
            first_return: write,
            last_call: write,
            last_read: None,
        }
    }
}

/// A cluster's zone: `[lo, hi]` is `[f, s]` for a forward zone, `[s, f]` for a backward one.
#[derive(Clone, Copy)]
struct Zone {
    lo: Time,
    hi: Time,
    cluster: usize,
}

/// The earliest pair of clusters that each must come before the other, explained; `None`
/// if the key is linearizable.
pub(super) fn check(h: &KeyHistory) -> Option<KeyViolation> {
    let clusters = clusters(h);
    let (forward, backward): (Vec<_>, Vec<_>) = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (i, ret(h, c.first_return), call(h, c.last_call)))
        .partition(|&(_, f, s)| f < s);
    let mut forward: Vec<Zone> = forward
        .into_iter()
        .map(|(cluster, f, s)| Zone {
            lo: f,
            hi: s,
            cluster,
        })
        .collect();
    forward.sort_by_key(|z| (z.lo, z.hi));

    // Each conflict is keyed by when it starts, so the earliest one is reported.
    let mut conflict: Option<(Time, usize, usize)> = None;
    let mut keep = |at: Time, a: usize, b: usize| {
        if conflict.is_none_or(|(t, _, _)| at < t) {
            conflict = Some((at, a, b));
        }
    };

    // `reach[i]`: of the forward zones up to `i`, the one that ends last.
    let mut reach: Vec<Zone> = Vec::with_capacity(forward.len());
    for z in &forward {
        if let Some(last) = reach.last() {
            if z.lo < last.hi {
                keep(z.lo, last.cluster, z.cluster);
            }
        }
        let last = reach.last().filter(|l| l.hi >= z.hi).copied();
        reach.push(last.unwrap_or(*z));
    }
    for (cluster, f, s) in backward {
        let before = forward.partition_point(|z| z.lo < s);
        if let Some(outer) = before.checked_sub(1).map(|i| reach[i]) {
            if outer.hi > f {
                keep(s, outer.cluster, cluster);
            }
        }
    }
    conflict.map(|(_, a, b)| explain(h, &clusters[a], &clusters[b]))
}

fn clusters(h: &KeyHistory) -> Vec<Cluster> {
    let mut of_value: Vec<Option<usize>> = vec![None; h.values.len()];
    let mut clusters = Vec::new();
    for (i, o) in h.ops.iter().enumerate() {
        if let Effect::Write(v) = o.effect {
            of_value[v as usize] = Some(clusters.len());
            clusters.push(Cluster::of(Some(i)));
        }
    }
    for (i, o) in h.ops.iter().enumerate() {
        let Effect::Read(v) = o.effect else { continue };
        let c = match of_value[v as usize] {
            Some(c) => c,
            None if v == ABSENT => {
                clusters.push(Cluster::of(None));
                *of_value[v as usize].insert(clusters.len() - 1)
            }
            None => unreachable!("anomalies::find reports reads of values never written"),
        };
        let c = &mut clusters[c];
        if o.ret < ret(h, c.first_return) {
            c.first_return = Some(i);
        }
        if o.call > call(h, c.last_call) {
            c.last_call = Some(i);
        }
        if c.last_read.is_none_or(|r| o.call > h.ops[r].call) {
            c.last_read = Some(i);
        }
    }
    clusters
}

fn call(h: &KeyHistory, m: Member) -> Time {
    m.map_or(BEFORE_ALL, |i| h.ops[i].call)
}

fn ret(h: &KeyHistory, m: Member) -> Time {
    m.map_or(BEFORE_ALL, |i| h.ops[i].ret)
}

/// Names the operations that force `a` and `b` each before the other.
///
/// It looks for the pattern "`A` cannot be read again after `B` replaced it": some member
/// of `A` returned before some member of `B` began (so `A` came first), and some member of
/// `B` returned before a read of `A` began. Clusters in conflict always show it one way
/// round or the other, once no read returned before its write began.
fn explain(h: &KeyHistory, a: &Cluster, b: &Cluster) -> KeyViolation {
    let Some((a, b, [x_a, y_b, x_b, y_a])) = oriented(h, a, b).or_else(|| oriented(h, b, a)) else {
        // Not reached: the pattern exists. Still name both values rather than panic.
        return h.violation(
            Kind::Order,
            format!(
                "the reads and writes of {} and {} each must come before the other",
                value_of(h, a),
                value_of(h, b)
            ),
            [a.write, b.write]
                .into_iter()
                .flatten()
                .map(|i| h.ops[i].op.id),
        );
    };
    let text = |m: Member| match m {
        Some(i) => h.describe(&h.ops[i]),
        None => "the initial absent value".to_owned(),
    };
    let (value_a, value_b) = (value_of(h, a), value_of(h, b));
    let first = match x_a {
        None => format!("the key starts {value_a}"),
        Some(_) if x_b == y_b && x_b == b.write => {
            format!("{} returned before that write began", text(x_a))
        }
        Some(_) => format!("{} returned before {} began", text(x_a), text(y_b)),
    };
    let (kind, explanation) = if x_b.is_some() && x_b == b.write {
        let newer = format!(
            "{}, older than {value_b}: {} had completed before the read began",
            text(y_a),
            text(x_b)
        );
        let explanation = match x_a {
            None => newer,
            Some(_) => format!("{newer}, and {value_a} came before {value_b}: {first}"),
        };
        (Kind::Stale, explanation)
    } else {
        let then = if x_b == y_b {
            format!("and that returned before {} began", text(y_a))
        } else {
            format!("and {} returned before {} began", text(x_b), text(y_a))
        };
        (
            Kind::Order,
            format!("{value_a} cannot be read again after {value_b} replaced it: {first}, {then}"),
        )
    };
    let mut ops: Vec<u64> = Vec::with_capacity(4);
    for i in [x_a, y_b, x_b, y_a].into_iter().flatten() {
        let id = h.ops[i].op.id;
        if !ops.contains(&id) {
            ops.push(id);
        }
    }
    h.violation(kind, explanation, ops)
}

/// `a` and `b` with the operations that show "`a` cannot be read again after `b` replaced
/// it": `[x_a, y_b, x_b, y_a]` where each `x` returned before the next `y` began and `y_a`
/// is a read of `a`.
fn oriented<'c>(
    h: &KeyHistory,
    a: &'c Cluster,
    b: &'c Cluster,
) -> Option<(&'c Cluster, &'c Cluster, [Member; 4])> {
    let y_a = a.last_read?;
    let (x_a, y_b) = before(h, a, &[b.write, b.last_call])?;
    let (x_b, _) = before(h, b, &[Some(y_a)])?;
    Some((a, b, [x_a, y_b, x_b, Some(y_a)]))
}

/// A member of `from` that returned before one of `to` began. Writes come first, so the
/// words say "the write had completed" when they can.
fn before(h: &KeyHistory, from: &Cluster, to: &[Member]) -> Option<(Member, Member)> {
    [from.write, from.first_return]
        .into_iter()
        .flat_map(|x| to.iter().map(move |&y| (x, y)))
        .find(|&(x, y)| ret(h, x) < call(h, y))
}

fn value_of(h: &KeyHistory, c: &Cluster) -> String {
    match c.write.map(|i| h.ops[i].effect) {
        Some(Effect::Write(v)) => h.value_text(v),
        _ => h.value_text(ABSENT),
    }
}
