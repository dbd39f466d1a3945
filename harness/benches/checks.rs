//! The history checks on generated histories, healthy and adversarial.
//!
//! Targets: the lost-write check (`data_check`) at ≥ 1 M operations per second, and the
//! per-key read check (`read_check`) on 100k operations in ≤ 2 s. Criterion prints each
//! bench's throughput in operations per second.
//!
//! `cargo bench -p firedrill --bench checks`

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use firedrill::history::{Micros, Op, OpKind, Outcome};
use firedrill_judge::check::{data_check, read_check};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 42;
const MS: Micros = 1_000;
const SEC: Micros = 1_000_000;

/// What a generated run looks like.
#[derive(Clone, Copy)]
struct Shape {
    clients: u32,
    keys: usize,
    read_ratio: f64,
    /// An ordinary operation's latency range.
    latency: (Micros, Micros),
    /// Clients `0..slow_clients` take `slow_latency` for every operation.
    slow_clients: u32,
    slow_latency: (Micros, Micros),
    /// The share of operations that time out after `timeout` (outcome unknown).
    unknown: f64,
    timeout: (Micros, Micros),
    /// The share refused before sending (outcome fail).
    fail: f64,
    /// How far behind reads look: 0 for a linearizable store, more for a lagging replica.
    read_lag: Micros,
}

/// 16 clients over 1000 keys, half reads, a few ms each, a few timeouts and refusals.
const HEALTHY: Shape = Shape {
    clients: 16,
    keys: 1000,
    read_ratio: 0.5,
    latency: (MS, 5 * MS),
    slow_clients: 0,
    slow_latency: (0, 0),
    unknown: 0.005,
    timeout: (SEC, 2 * SEC),
    fail: 0.005,
    read_lag: 0,
};

/// 64 clients all on one key: one group holds the whole history, every op overlaps others.
const HOT_KEY: Shape = Shape {
    clients: 64,
    keys: 1,
    ..HEALTHY
};

/// 30% of operations time out after 0.5–2 s, so most clients are inside a timed-out
/// operation at any moment and half of those writes land late.
const UNKNOWN_WRITES: Shape = Shape {
    clients: 64,
    unknown: 0.3,
    timeout: (SEC / 2, 2 * SEC),
    ..HEALTHY
};

/// Half the clients take 0.5–5 s per operation, each overlapping thousands of the fast
/// clients' operations.
const LONG_OPS: Shape = Shape {
    clients: 64,
    slow_clients: 32,
    slow_latency: (SEC / 2, 5 * SEC),
    ..HEALTHY
};

/// Reads served 2 s behind, longer than a key usually goes between writes: most are stale.
const STALE_READS: Shape = Shape {
    read_lag: 2 * SEC,
    ..HEALTHY
};

struct History {
    ops: Vec<Op>,
    /// Per key, the writes that took effect as (time, index in `ops`), in time order.
    effects: Vec<Vec<(Micros, usize)>>,
    /// Keys some write targeted: the ones read back after the run.
    written: Vec<bool>,
}

impl History {
    /// Every written key read back at `t` (`Micros::MAX`: after the run).
    fn finals_at(&self, t: Micros) -> BTreeMap<String, Option<String>> {
        (0..self.effects.len())
            .filter(|&k| self.written[k])
            .map(|k| {
                (
                    key_name(k),
                    self.visible(&self.effects[k], t).map(str::to_owned),
                )
            })
            .collect()
    }

    /// The value of the last write to take effect at or before `t`.
    fn visible(&self, effects: &[(Micros, usize)], t: Micros) -> Option<&str> {
        let n = effects.partition_point(|&(at, _)| at <= t);
        let &(_, i) = effects[..n].last()?;
        self.ops[i].value.as_deref()
    }
}

fn key_name(k: usize) -> String {
    format!("fd/{k}")
}

/// A run of `n` operations: each client sends its next operation shortly after the last
/// returned, every operation takes effect at one instant (anywhere in its interval if
/// acknowledged; half the timed-out writes land, possibly after the client gave up), and
/// each ok read returns the value visible `read_lag` before its instant.
fn generate(shape: &Shape, n: usize, seed: u64) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys: Vec<Arc<str>> = (0..shape.keys).map(|k| key_name(k).into()).collect();
    let nodes: Vec<Arc<str>> = (1..=3).map(|i| format!("node{i}").into()).collect();
    let timed_out: Arc<str> = "timed out".into();
    let refused: Arc<str> = "connection refused".into();
    // The client free first sends next, so operations come out in call order.
    let mut free: BinaryHeap<Reverse<(Micros, u32)>> = (0..shape.clients)
        .map(|c| Reverse((rng.random_range(0..MS), c)))
        .collect();
    let mut writes_by = vec![0u64; shape.clients as usize];
    let mut effects = vec![Vec::new(); shape.keys];
    let mut written = vec![false; shape.keys];
    let mut reads = Vec::new();
    let mut ops = Vec::with_capacity(n);
    for id in 0..n {
        let Reverse((t_call, client)) = free.pop().expect("at least one client");
        let key = rng.random_range(0..shape.keys);
        let kind = if rng.random_bool(shape.read_ratio) {
            OpKind::Read
        } else {
            OpKind::Write
        };
        let roll: f64 = rng.random();
        let (outcome, (lo, hi)) = if roll < shape.unknown {
            (Outcome::Unknown, shape.timeout)
        } else if roll < shape.unknown + shape.fail {
            (Outcome::Fail, (50, 500))
        } else if client < shape.slow_clients {
            (Outcome::Ok, shape.slow_latency)
        } else {
            (Outcome::Ok, shape.latency)
        };
        let latency = rng.random_range(lo..=hi);
        let t_return = t_call + latency;
        let effect = match outcome {
            Outcome::Ok => Some(rng.random_range(t_call..=t_return)),
            Outcome::Unknown if kind == OpKind::Write && rng.random_bool(0.5) => {
                Some(rng.random_range(t_call..=t_call + 2 * latency))
            }
            _ => None,
        };
        let value = (kind == OpKind::Write).then(|| {
            writes_by[client as usize] += 1;
            format!("{seed}-{client}-{}", writes_by[client as usize]).into_boxed_str()
        });
        match (kind, effect) {
            (OpKind::Write, Some(t)) => effects[key].push((t, id)),
            (OpKind::Read, Some(t)) => reads.push((t, id, key)),
            _ => {}
        }
        written[key] |= kind == OpKind::Write;
        ops.push(Op {
            id: id as u64,
            client,
            node: Arc::clone(&nodes[rng.random_range(0..nodes.len())]),
            kind,
            key: Arc::clone(&keys[key]),
            value,
            expected: None,
            t_intended: t_call,
            t_call,
            t_return,
            outcome,
            error: match outcome {
                Outcome::Ok => None,
                Outcome::Fail => Some(Arc::clone(&refused)),
                Outcome::Unknown => Some(Arc::clone(&timed_out)),
            },
            backend: None,
        });
        free.push(Reverse((t_return + rng.random_range(0..200), client)));
    }
    for e in &mut effects {
        e.sort_unstable();
    }
    let mut history = History {
        ops,
        effects,
        written,
    };
    for (t, id, key) in reads {
        let seen = history.visible(&history.effects[key], t.saturating_sub(shape.read_lag));
        history.ops[id].value = seen.map(Box::from);
    }
    history
}

/// What a history must yield, checked once before timing so a broken generator cannot
/// pass for a fast check.
fn data_case(name: &str, n: usize) -> (History, BTreeMap<String, Option<String>>) {
    let (history, finals) = match name {
        "healthy" => {
            let h = generate(&HEALTHY, n, SEED);
            let finals = h.finals_at(Micros::MAX);
            assert!(read_check(&h.ops).pass, "healthy reads");
            (h, finals)
        }
        "one_key" => {
            let h = generate(&HOT_KEY, n, SEED);
            let finals = h.finals_at(Micros::MAX);
            (h, finals)
        }
        "lost_writes" => {
            // The cluster came back holding its state from a tenth into the run.
            let h = generate(&HEALTHY, n, SEED);
            let end = h.ops.iter().map(|op| op.t_return).max().unwrap_or_default();
            let finals = h.finals_at(end / 10);
            (h, finals)
        }
        "unknown_writes" => {
            let h = generate(&UNKNOWN_WRITES, n, SEED);
            let finals = h.finals_at(Micros::MAX);
            (h, finals)
        }
        _ => unreachable!("unknown case {name}"),
    };
    let r = data_check(&history.ops, &finals);
    match name {
        "lost_writes" => assert!(!r.pass && r.lost > r.acked / 2, "{name}: {r:?}"),
        "one_key" => assert!(r.pass && r.keys == 1, "{name}: {r:?}"),
        "unknown_writes" => assert!(r.pass && r.recovered > 0, "{name}: {r:?}"),
        _ => assert!(r.pass, "{name}: {r:?}"),
    }
    (history, finals)
}

fn bench_data_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_check");
    // One iteration of the 1M histories takes long enough that linear sampling would
    // overrun the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    for (size, n) in [("100k", 100_000), ("1M", 1_000_000)] {
        for name in ["healthy", "one_key", "lost_writes", "unknown_writes"] {
            // Generated per case and dropped after: a 1M history holds a few hundred MB.
            let (history, finals) = data_case(name, n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| data_check(black_box(&history.ops), black_box(&finals)))
            });
        }
    }
    group.finish();
}

fn bench_read_check(c: &mut Criterion) {
    const N: usize = 100_000;
    let mut group = c.benchmark_group("read_check");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(N as u64));
    for (name, shape) in [
        ("healthy", HEALTHY),
        ("hot_key", HOT_KEY),
        ("stale_reads", STALE_READS),
        ("long_ops", LONG_OPS),
    ] {
        let history = generate(&shape, N, SEED);
        let r = read_check(&history.ops);
        if name == "stale_reads" {
            assert!(!r.pass && r.stale > r.checked / 2, "{name}: {r:?}");
        } else {
            assert!(r.pass && r.checked > N as u64 / 3, "{name}: {r:?}");
        }
        group.bench_function(BenchmarkId::new(name, "100k"), |b| {
            b.iter(|| read_check(black_box(&history.ops)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the whole file finishes in a couple of minutes on two cores.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_data_check, bench_read_check
}
criterion_main!(benches);
