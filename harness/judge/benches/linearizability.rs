//! The linearizability checker on generated histories: the zone check on 1 M operations
//! (target ≥ 1 M ops/s), and the search on one key's 10 k operations with cas, with a 1 s
//! budget (time to an answer, or to unknown): honest, and with one stale read in the
//! middle, for Jepsen's register (values 0–4) and for unique values.
//!
//! Histories are seeded. Each client is sequential, 1–5 ms per operation (a tenth of them
//! 20–50 ms, overlapping many), 0.5 % timeouts that may or may not apply. Every operation
//! takes effect at a random instant of its interval and reads return the value there, so
//! the honest histories are linearizable by construction; each is checked once before
//! timing, and its answer printed.
//!
//! `cargo bench -p firedrill-judge --bench linearizability` (about 3 minutes).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use firedrill_judge::linearizability::{check, Options};
use firedrill_types::history::{Micros, Op, OpKind, Outcome};
use firedrill_types::summary::{LinearizabilityResult, LinearizableVerdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Workload {
    ops: usize,
    clients: u32,
    keys: usize,
    /// Reads, writes and cas, in percent; the rest are writes.
    reads: u32,
    cas: u32,
    /// Writes and cas draw from this many values per key; 0: every value is new.
    values: u32,
}

/// A history as the load would record it, linearizable by construction.
fn generate(w: &Workload, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let node: Arc<str> = Arc::from("n1");
    let keys: Vec<Arc<str>> = (0..w.keys).map(|k| Arc::from(format!("key-{k}"))).collect();
    let mut clock: Vec<Micros> = vec![0; w.clients as usize];
    // (instant it takes effect, or None if it never does; the op)
    let mut ops: Vec<(Option<Micros>, Op)> = Vec::with_capacity(w.ops);
    for id in 0..w.ops as u64 {
        let client = rng.random_range(0..w.clients);
        let call = clock[client as usize] + rng.random_range(0..100);
        let latency = match rng.random_bool(0.1) {
            true => rng.random_range(20_000..50_000),
            false => rng.random_range(1_000..5_000),
        };
        let ret = call + latency;
        clock[client as usize] = ret;
        let roll = rng.random_range(0..100);
        let kind = match roll {
            r if r < w.reads => OpKind::Read,
            r if r < w.reads + w.cas => OpKind::Cas,
            _ => OpKind::Write,
        };
        let unknown = rng.random_bool(0.005);
        let effect = (!unknown || rng.random_bool(0.5)).then(|| rng.random_range(call..=ret));
        let value = |rng: &mut StdRng| match w.values {
            0 => format!("v{id}"),
            n => rng.random_range(0..n).to_string(),
        };
        let value = (kind != OpKind::Read).then(|| value(&mut rng).into());
        ops.push((
            effect,
            Op {
                id,
                client,
                node: node.clone(),
                kind,
                key: keys[rng.random_range(0..keys.len())].clone(),
                value,
                expected: None,
                t_intended: call,
                t_call: call,
                t_return: ret,
                outcome: if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok
                },
                error: None,
                backend: None,
            },
        ));
    }
    // Replay in the order the operations took effect: reads see the value then; a cas
    // expects it half the time, and otherwise the one before it (a client that lost a
    // race), or with shared values any of them; a cas that expects another fails.
    ops.sort_by_key(|(at, op)| (at.unwrap_or(Micros::MAX), op.id));
    let mut state: HashMap<Arc<str>, [Option<Box<str>>; 2]> = HashMap::new();
    for (at, op) in &mut ops {
        let [current, before] = state.entry(op.key.clone()).or_default();
        match op.kind {
            OpKind::Read => op.value = current.clone(),
            OpKind::Write => {}
            OpKind::Cas => {
                op.expected = match (rng.random_bool(0.5), w.values) {
                    (true, _) => current.clone(),
                    (false, 0) => before.clone(),
                    (false, n) => Some(rng.random_range(0..n).to_string().into()),
                };
                if op.expected != *current {
                    if op.outcome == Outcome::Ok {
                        op.outcome = Outcome::Fail;
                    }
                    continue;
                }
            }
        }
        if op.kind != OpKind::Read && at.is_some() {
            *before = std::mem::replace(current, op.value.clone());
        }
    }
    let mut ops: Vec<Op> = ops.into_iter().map(|(_, op)| op).collect();
    ops.sort_by_key(|op| op.id);
    ops
}

fn report(name: &str, r: &LinearizabilityResult) {
    eprintln!(
        "{name}: {:?}; {} keys ({} by zones, {} by search), {} ops checked, {} states; {:?} {:?}",
        r.linearizable,
        r.keys_checked,
        r.keys_by_zones,
        r.keys_by_search,
        r.ops_checked,
        r.states_explored,
        r.unknown.first(),
        r.violations.first().map(|v| &v.explanation),
    );
}

fn zones(c: &mut Criterion) {
    let mut group = c.benchmark_group("zones");
    let options = Options::default();
    for (name, keys, clients) in [("many_keys", 10_000, 64), ("one_key", 1, 64)] {
        let w = Workload {
            ops: 1_000_000,
            clients,
            keys,
            reads: 50,
            cas: 0,
            values: 0,
        };
        let ops = generate(&w, 1);
        let r = check(&ops, &options);
        report(&format!("zones/{name}/1M"), &r);
        assert_eq!(r.linearizable, LinearizableVerdict::True);
        assert_eq!(r.keys_by_search, 0);
        group.throughput(Throughput::Elements(ops.len() as u64));
        group.bench_function(BenchmarkId::new(name, "1M"), |b| {
            b.iter(|| check(black_box(&ops), &options))
        });
    }
    group.finish();
}

fn search(c: &mut Criterion) {
    let mut group = c.benchmark_group("search");
    let options = Options {
        budget_per_key: Duration::from_secs(1),
        max_reported: 1,
    };
    // Jepsen's register (values 0–4), and a cas workload like firedrill's own, where every
    // write and cas writes a value of its own.
    for (values, clients) in [(5, 5), (5, 16), (0, 16)] {
        let w = Workload {
            ops: 10_000,
            clients,
            keys: 1,
            reads: 40,
            cas: 30,
            values,
        };
        let honest = generate(&w, 2);
        let stale = with_stale_read(&honest, &options);
        let workload = match values {
            0 => format!("unique_values_{clients}_clients"),
            n => format!("{n}_values_{clients}_clients"),
        };
        for (history, ops) in [("honest", &honest), ("one_stale_read", &stale)] {
            let name = format!("cas_10k/{workload}/{history}");
            report(&format!("search/{name}"), &check(ops, &options));
            group.throughput(Throughput::Elements(ops.len() as u64));
            group.bench_function(name, |b| b.iter(|| check(black_box(ops), &options)));
        }
    }
    group.finish();
}

/// The history with one read from the middle on changed to see what the last read done
/// before it began saw, if that differs: the first such change the checker does not accept
/// (most are still explained by a concurrent write).
fn with_stale_read(ops: &[Op], options: &Options) -> Vec<Op> {
    let mut reads: Vec<&Op> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Read && o.outcome == Outcome::Ok)
        .collect();
    reads.sort_by_key(|r| r.t_return);
    let mut bad = ops.to_vec();
    for r in reads
        .iter()
        .filter(|r| r.id as usize >= ops.len() / 2)
        .take(200)
    {
        let done_before = reads.partition_point(|e| e.t_return < r.t_call);
        let Some(older) = reads[..done_before]
            .iter()
            .rev()
            .find(|e| e.value != r.value)
        else {
            continue;
        };
        let i = r.id as usize;
        bad[i].value = older.value.clone();
        if check(&bad, options).linearizable != LinearizableVerdict::True {
            return bad;
        }
        bad[i].value = r.value.clone();
    }
    panic!("no stale read made the history fail")
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = zones, search
}
criterion_main!(benches);
