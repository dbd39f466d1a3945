//! The run as a time series, for the charts: operations per second, errors, latency
//! quantiles, per backend. Cut by due time and measured with the same HDR quantiles as the
//! per-phase SLO table, so a chart never tells a different story from the table.

use std::collections::HashMap;

use firedrill_types::history::{Micros, Op};

use crate::slo;

pub const BUCKET_US: Micros = 1_000_000;
/// Lines per backend beyond this many would be unreadable; the busiest are drawn.
pub const MAX_BACKENDS: usize = 8;

/// What happened to the operations due in one bucket (all of them, or one backend's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub ops: u64,
    pub ok: u64,
    /// Failed or unknown, as the SLOs count them.
    pub errors: u64,
    /// Latency of the successful operations, as the SLOs measure it; `None` without one.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Stats {
    pub fn error_rate(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.errors as f64 / self.ops as f64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// `[start, end)` on the run clock; the last bucket may be shorter than a second.
    pub start: Micros,
    pub end: Micros,
    pub all: Stats,
    /// One per [`Timeline::backends`], in that order.
    pub backends: Vec<Stats>,
}

impl Bucket {
    pub fn ok_per_s(&self) -> f64 {
        self.all.ok as f64 / self.seconds()
    }

    pub fn errors_per_s(&self) -> f64 {
        self.all.errors as f64 / self.seconds()
    }

    /// Rates divide by the time the bucket covers, so a short last bucket is no dip.
    fn seconds(&self) -> f64 {
        (self.end - self.start).max(1) as f64 / 1e6
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The first operation's due time.
    pub start: Micros,
    /// The last operation's return.
    pub end: Micros,
    pub buckets: Vec<Bucket>,
    /// The backends with the most operations, most first, at most [`MAX_BACKENDS`].
    pub backends: Vec<String>,
    /// Backends seen but not in `backends`.
    pub hidden_backends: usize,
}

/// Counts and latencies of one bucket while the history is read.
#[derive(Debug, Clone, Default)]
struct Tally {
    ops: u64,
    ok: u64,
    latencies: Vec<Micros>,
}

impl Tally {
    fn add(&mut self, op: &Op) {
        self.ops += 1;
        if op.answered() {
            self.ok += 1;
            self.latencies.push(op.latency_us());
        }
    }

    /// The same quantiles as the SLO table: an HDR histogram of the open-loop latencies.
    fn finish(self) -> Stats {
        let h = slo::latency_histogram(&self.latencies);
        let at = |q: f64| h.as_ref().map(|h| h.value_at_quantile(q) as f64 / 1000.0);
        Stats {
            ops: self.ops,
            ok: self.ok,
            errors: self.ops - self.ok,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        }
    }
}

impl Timeline {
    /// Buckets the history by due time, as the phases are cut, so the chart and the SLO
    /// table count the same operations in the same span; `None` when it is empty.
    /// Linear in the history: one pass for its extent and backends, one to fill buckets.
    pub fn new(ops: &[Op]) -> Option<Timeline> {
        let start = ops.iter().map(|op| op.t_intended).min()?;
        let end = ops
            .iter()
            .map(|op| op.t_return.max(op.t_intended))
            .max()?
            .max(start + 1);
        let (backends, hidden_backends) = busiest_backends(ops);
        let count = (end - start).div_ceil(BUCKET_US) as usize;
        let mut tallies = vec![(Tally::default(), vec![Tally::default(); backends.len()]); count];
        for op in ops {
            // An op due exactly at `end` (zero latency, last of all) joins the last bucket.
            let i = (((op.t_intended - start) / BUCKET_US) as usize).min(count - 1);
            let (all, per_backend) = &mut tallies[i];
            all.add(op);
            let backend = op.backend.as_deref();
            if let Some(b) = backends
                .iter()
                .position(|name| Some(name.as_str()) == backend)
            {
                per_backend[b].add(op);
            }
        }
        let buckets = tallies
            .into_iter()
            .enumerate()
            .map(|(i, (all, per_backend))| {
                let bucket_start = start + i as Micros * BUCKET_US;
                Bucket {
                    start: bucket_start,
                    end: (bucket_start + BUCKET_US).min(end),
                    all: all.finish(),
                    backends: per_backend.into_iter().map(Tally::finish).collect(),
                }
            })
            .collect();
        Some(Timeline {
            start,
            end,
            buckets,
            backends,
            hidden_backends,
        })
    }
}

/// The backends that served the most operations (ties by name), and how many more there are.
fn busiest_backends(ops: &[Op]) -> (Vec<String>, usize) {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for backend in ops.iter().filter_map(|op| op.backend.as_deref()) {
        *counts.entry(backend).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let hidden = ranked.len().saturating_sub(MAX_BACKENDS);
    let shown = ranked
        .into_iter()
        .take(MAX_BACKENDS)
        .map(|(name, _)| name.to_string())
        .collect();
    (shown, hidden)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use firedrill_types::history::{OpKind, Outcome};

    use super::*;

    fn op(t_call: Micros, latency: Micros, outcome: Outcome, backend: Option<&str>) -> Op {
        Op {
            id: t_call,
            client: 0,
            node: "kv1".into(),
            kind: OpKind::Read,
            key: "k".into(),
            value: None,
            expected: None,
            t_intended: t_call,
            t_call,
            t_return: t_call + latency,
            outcome,
            error: None,
            backend: backend.map(Arc::from),
        }
    }

    #[test]
    fn a_bucket_that_is_a_whole_phase_has_the_phase_tables_quantiles() {
        use firedrill_types::history::{Phase, PhaseWindow};
        // A stall: operations due in the first second wait until it ends.
        let mut ops: Vec<Op> = (0..50)
            .map(|i| op(i * 20_000, 2_000, Outcome::Ok, None))
            .collect();
        for o in ops.iter_mut().take(10) {
            o.t_call = 900_000;
            o.t_return = 905_000;
        }
        let t = Timeline::new(&ops).expect("a timeline");
        let window = PhaseWindow {
            phase: Phase::Steady,
            start: 0,
            end: 1_000_000,
        };
        let phase = slo::evaluate_phase(&ops, window, &Default::default());
        assert_eq!(t.buckets[0].all.ops, phase.ops);
        assert_eq!(t.buckets[0].all.p99_ms, Some(phase.p99_ms));
        assert!(phase.p99_ms > 800.0, "the stall shows: {}", phase.p99_ms);
    }

    #[test]
    fn buckets_count_ops_by_the_second_they_were_due() {
        // Out of order, as a history is written (by return time).
        let ops = vec![
            op(5_200_000, 20_000, Outcome::Ok, None),
            op(6_500_000, 500_000, Outcome::Unknown, None),
            op(5_000_000, 10_000, Outcome::Ok, None),
            // Returns in second 1, but was due in second 0.
            op(5_400_000, 700_000, Outcome::Ok, None),
        ];
        let t = Timeline::new(&ops).expect("a timeline");
        assert_eq!((t.start, t.end), (5_000_000, 7_000_000));
        assert_eq!(t.buckets.len(), 2);
        let (first, second) = (&t.buckets[0], &t.buckets[1]);
        assert_eq!((first.start, first.end), (5_000_000, 6_000_000));
        assert_eq!((first.all.ops, first.all.ok, first.all.errors), (3, 3, 0));
        // HDR with 3 significant digits, as the SLO table measures.
        let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() <= want * 1e-3);
        assert!(near(first.all.p50_ms, 20.0), "{:?}", first.all);
        assert!(near(first.all.p99_ms, 700.0), "{:?}", first.all);
        assert_eq!(first.ok_per_s(), 3.0);
        assert_eq!(first.all.error_rate(), Some(0.0));
        assert_eq!(
            second.all,
            Stats {
                ops: 1,
                ok: 0,
                errors: 1,
                p50_ms: None,
                p99_ms: None,
            }
        );
        assert_eq!(second.errors_per_s(), 1.0);
        assert_eq!(second.all.error_rate(), Some(1.0));
    }

    #[test]
    fn a_short_last_bucket_is_not_a_dip_and_an_empty_one_is_zero() {
        let ops = vec![
            op(0, 1_000, Outcome::Ok, None),
            op(500_000, 1_000, Outcome::Ok, None),
            // Nothing in [1 s, 2 s): the system was down.
            op(2_000_000, 1_000, Outcome::Ok, None),
            op(2_200_000, 300_000, Outcome::Fail, None),
        ];
        let t = Timeline::new(&ops).expect("a timeline");
        assert_eq!(t.buckets.len(), 3);
        assert_eq!(t.buckets[0].ok_per_s(), 2.0);
        assert_eq!(t.buckets[1].ok_per_s(), 0.0);
        assert_eq!(t.buckets[1].all.error_rate(), None);
        // The last bucket covers [2 s, 2.5 s): 1 ok in half a second.
        assert_eq!(
            (t.buckets[2].start, t.buckets[2].end),
            (2_000_000, 2_500_000)
        );
        assert_eq!(t.buckets[2].ok_per_s(), 2.0);
        assert_eq!(t.buckets[2].errors_per_s(), 2.0);
    }

    #[test]
    fn an_op_due_at_the_very_end_joins_the_last_bucket() {
        let ops = vec![
            op(0, 0, Outcome::Ok, None),
            op(2_000_000, 0, Outcome::Ok, None),
        ];
        let t = Timeline::new(&ops).expect("a timeline");
        assert_eq!(t.buckets.len(), 2);
        assert_eq!(t.buckets[1].all.ops, 1);
        assert!(Timeline::new(&[]).is_none());
    }
}
