//! Per-phase service-level objectives: what the load saw during one phase, judged against
//! the limits a scenario sets for that phase.
//!
//! Everything is computed from the recorded history, not from goose's own metrics, because
//! goose only knows whole-run totals and a procedure is judged phase by phase.

use std::time::Duration;

use hdrhistogram::Histogram;

use firedrill_spec::slo::SloSpec;
use firedrill_types::history::{Micros, Op, PhaseWindow};
use firedrill_types::summary::{PhaseResult, SloResult, Unit};

/// Judges the operations invoked inside `window` against `spec`.
pub fn evaluate_phase(ops: &[Op], window: PhaseWindow, spec: &SloSpec) -> PhaseResult {
    let phase_ms = us_to_ms(window.end.saturating_sub(window.start));

    let mut total = 0u64;
    let mut ok_latencies = Vec::new();
    for op in ops.iter().filter(|op| window.contains(op)) {
        total += 1;
        // A cas whose compare failed was served: its latency counts, it is no error.
        if op.answered() {
            ok_latencies.push(op.latency_us());
        }
    }
    let ok = ok_latencies.len() as u64;
    let errors = total - ok;
    let error_rate = if total == 0 {
        0.0
    } else {
        errors as f64 / total as f64
    };
    // With no successful operation there is no latency to measure; infinity would not
    // survive JSON, and 0 would read as "fast". The phase length is what a client waited
    // at least without getting an answer inside the phase, so it stands in for both
    // percentiles, and the latency SLOs fail outright (see `latency_slo`).
    let (p50_ms, p99_ms) = match latency_histogram(&ok_latencies) {
        None => (phase_ms, phase_ms),
        Some(h) => (
            us_to_ms(h.value_at_quantile(0.50)),
            us_to_ms(h.value_at_quantile(0.99)),
        ),
    };
    let longest_unavailable_ms = us_to_ms(longest_unavailable(ops, window));

    let mut slos = Vec::new();
    if let Some(limit) = spec.max_error_rate {
        slos.push(SloResult {
            name: "error_rate".into(),
            limit,
            observed: error_rate,
            unit: Unit::Ratio,
            pass: error_rate <= limit,
            detail: None,
        });
    }
    if let Some(limit) = spec.max_p50 {
        slos.push(latency_slo("p50", limit, p50_ms, ok));
    }
    if let Some(limit) = spec.max_p99 {
        slos.push(latency_slo("p99", limit, p99_ms, ok));
    }
    if let Some(limit) = spec.max_unavailable {
        let limit = duration_ms(limit);
        slos.push(SloResult {
            name: "max_unavailable".into(),
            limit,
            observed: longest_unavailable_ms,
            unit: Unit::Ms,
            pass: longest_unavailable_ms <= limit,
            detail: None,
        });
    }
    if let Some(limit) = spec.min_ops {
        slos.push(SloResult {
            name: "min_ops".into(),
            limit: limit as f64,
            observed: total as f64,
            unit: Unit::Ops,
            pass: total >= limit,
            detail: None,
        });
    }

    PhaseResult {
        phase: window.phase,
        start: window.start,
        end: window.end,
        ops: total,
        ok,
        errors,
        error_rate,
        p50_ms,
        p99_ms,
        longest_unavailable_ms,
        slos,
    }
}

/// The time from `from` until the first successful operation invoked at or after `from`
/// completed (only operations sent to `node`, when given); `None` if none succeeded.
pub fn time_to_recover(ops: &[Op], from: Micros, node: Option<&str>) -> Option<Micros> {
    ops.iter()
        .filter(|op| op.answered() && op.t_call >= from)
        .filter(|op| node.is_none_or(|node| &*op.node == node))
        .map(|op| op.t_return.saturating_sub(from))
        .min()
}

/// The time from `from` until the load is back within `max_error_rate`: the start of the
/// first one-second window (windows step by a quarter second) that has a successful
/// operation and an error rate at most the limit. `None` if that never happens before `end`.
pub fn time_to_slo(ops: &[Op], from: Micros, end: Micros, max_error_rate: f64) -> Option<Micros> {
    const WINDOW: Micros = 1_000_000;
    const STEP: Micros = 250_000;
    let mut calls: Vec<(Micros, bool)> = ops
        .iter()
        .filter(|op| op.t_call >= from && op.t_call < end)
        .map(|op| (op.t_call, op.answered()))
        .collect();
    calls.sort_unstable_by_key(|c| c.0);
    let mut start = from;
    while start + WINDOW <= end {
        let lo = calls.partition_point(|c| c.0 < start);
        let hi = calls.partition_point(|c| c.0 < start + WINDOW);
        let window = &calls[lo..hi];
        let ok = window.iter().filter(|c| c.1).count();
        if ok > 0 && (window.len() - ok) as f64 <= max_error_rate * window.len() as f64 {
            return Some(start - from);
        }
        start += STEP;
    }
    None
}

/// Microsecond resolution, 3 significant digits; `None` without a sample.
pub(crate) fn latency_histogram(latencies_us: &[Micros]) -> Option<Histogram<u64>> {
    let highest = *latencies_us.iter().max()?;
    // Sized to the largest sample, so `saturating_record` never clamps one (an
    // auto-resizing histogram would clamp instead of growing there).
    let mut h = Histogram::new_with_bounds(1, highest.max(2), 3)
        .expect("bounds 1..=max(2, n) with 3 significant digits are always valid");
    for &l in latencies_us {
        h.saturating_record(l);
    }
    Some(h)
}

/// `ok == 0` means there was no latency sample: the limit cannot be shown to hold.
fn latency_slo(name: &str, limit: Duration, observed_ms: f64, ok: u64) -> SloResult {
    let limit = duration_ms(limit);
    SloResult {
        name: name.into(),
        limit,
        observed: observed_ms,
        unit: Unit::Ms,
        pass: ok > 0 && observed_ms <= limit,
        detail: None,
    }
}

/// The longest gap, in microseconds, between consecutive successful completions inside
/// `[start, end)`, with the window's bounds as the outer points.
///
/// Any successful completion inside the window counts, even of an operation invoked in an
/// earlier phase: it shows the system answering at that moment. A completion after `end`
/// is clamped to `end`, where it adds nothing: the system was not seen answering inside
/// the window.
fn longest_unavailable(ops: &[Op], window: PhaseWindow) -> Micros {
    let mut points: Vec<Micros> = ops
        .iter()
        .filter(|op| op.answered() && op.t_return >= window.start)
        .map(|op| op.t_return.min(window.end))
        .collect();
    points.push(window.start);
    points.push(window.end.max(window.start));
    points.sort_unstable();
    points.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

fn us_to_ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_types::history::{OpKind, Outcome, Phase};

    const MS: Micros = 1000;
    const S: Micros = 1_000_000;

    fn op(id: u64, t_call: Micros, t_return: Micros, outcome: Outcome) -> Op {
        Op {
            id,
            client: (id % 4) as u32,
            node: format!("node{}", id % 3).into(),
            kind: OpKind::Read,
            key: "k".into(),
            value: None,
            expected: None,
            t_intended: t_call,
            t_call,
            t_return,
            outcome,
            error: None,
            backend: None,
        }
    }

    /// One op every 100 ms in `[start, end)`, each taking `latency`.
    fn steady(start: Micros, end: Micros, latency: Micros) -> Vec<Op> {
        (start..end)
            .step_by((100 * MS) as usize)
            .enumerate()
            .map(|(i, t)| op(i as u64, t, t + latency, Outcome::Ok))
            .collect()
    }

    fn window(start: Micros, end: Micros) -> PhaseWindow {
        PhaseWindow {
            phase: Phase::Procedure,
            start,
            end,
        }
    }

    fn slo<'a>(result: &'a PhaseResult, name: &str) -> &'a SloResult {
        result
            .slos
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no SLO named {name} in {:?}", result.slos))
    }

    #[test]
    fn a_cas_whose_compare_failed_was_served_but_a_failed_one_was_not() {
        let limits = SloSpec {
            max_error_rate: Some(0.0),
            ..SloSpec::default()
        };
        let mut ops = steady(0, S, 5 * MS);
        ops[3].kind = OpKind::Cas;
        ops[3].outcome = Outcome::Fail;
        let r = evaluate_phase(&ops, window(0, S), &limits);
        assert_eq!(r.errors, 0, "a failed compare is an answer: {r:?}");
        assert!(slo(&r, "error_rate").pass);
        ops[3].error = Some("timed out".into());
        let r = evaluate_phase(&ops, window(0, S), &limits);
        assert_eq!(r.errors, 1, "{r:?}");
        assert!(!slo(&r, "error_rate").pass);
    }

    #[test]
    fn healthy_phase_passes_every_limit() {
        let ops = steady(0, 10 * S, 5 * MS);
        let spec = SloSpec {
            max_error_rate: Some(0.01),
            max_p50: Some(Duration::from_millis(10)),
            max_p99: Some(Duration::from_millis(10)),
            max_unavailable: Some(Duration::from_millis(200)),
            min_ops: Some(100),
        };
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        assert_eq!(r.ops, 100);
        assert_eq!(r.ok, 100);
        assert_eq!(r.errors, 0);
        assert!((r.p50_ms - 5.0).abs() < 0.01, "p50 {}", r.p50_ms);
        assert!((r.p99_ms - 5.0).abs() < 0.01, "p99 {}", r.p99_ms);
        // Completions at 5 ms, 105 ms, ...; the last gap runs from 9.905 s to the end.
        assert!((r.longest_unavailable_ms - 100.0).abs() < 1e-9);
        let names: Vec<_> = r.slos.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["error_rate", "p50", "p99", "max_unavailable", "min_ops"]
        );
        assert!(r.slos.iter().all(|s| s.pass), "{:?}", r.slos);
        assert_eq!(slo(&r, "min_ops").unit, Unit::Ops);
    }

    #[test]
    fn unset_limits_are_not_judged() {
        let r = evaluate_phase(&[], window(0, S), &SloSpec::default());
        assert!(r.slos.is_empty());
        assert_eq!(r.error_rate, 0.0);
    }

    #[test]
    fn only_ops_invoked_in_the_window_count() {
        let mut ops = steady(0, 3 * S, 5 * MS);
        ops.push(op(999, 3 * S - 1, 3 * S + 500 * MS, Outcome::Fail));
        let r = evaluate_phase(&ops, window(S, 2 * S), &SloSpec::default());
        assert_eq!(r.ops, 10);
        let r = evaluate_phase(&ops, window(2 * S, 3 * S), &SloSpec::default());
        assert_eq!((r.ops, r.errors), (11, 1));
    }

    #[test]
    fn error_rate_breach_fails() {
        let mut ops = steady(0, 10 * S, 5 * MS);
        for o in ops.iter_mut().take(10) {
            o.outcome = Outcome::Unknown;
        }
        for o in ops.iter_mut().skip(10).take(5) {
            o.outcome = Outcome::Fail;
        }
        let spec = SloSpec {
            max_error_rate: Some(0.1),
            ..SloSpec::default()
        };
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        assert_eq!(r.errors, 15);
        assert!((r.error_rate - 0.15).abs() < 1e-12);
        let s = slo(&r, "error_rate");
        assert!(!s.pass);
        assert_eq!((s.limit, s.unit), (0.1, Unit::Ratio));

        // The healthy twin: the same load, fewer errors than the limit.
        for o in ops.iter_mut().take(10) {
            o.outcome = Outcome::Ok;
        }
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        assert!(slo(&r, "error_rate").pass);
    }

    #[test]
    fn p99_breach_fails_while_p50_holds() {
        let mut ops = steady(0, 10 * S, 5 * MS);
        // 2 of 100 operations take 800 ms: the p99 sees them, the median does not.
        for o in ops.iter_mut().take(2) {
            o.t_return = o.t_call + 800 * MS;
        }
        let spec = SloSpec {
            max_p50: Some(Duration::from_millis(50)),
            max_p99: Some(Duration::from_millis(250)),
            ..SloSpec::default()
        };
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        assert!((r.p99_ms - 800.0).abs() < 1.0, "p99 {}", r.p99_ms);
        assert!(slo(&r, "p50").pass);
        let p99 = slo(&r, "p99");
        assert!(!p99.pass);
        assert_eq!(p99.limit, 250.0);

        let healthy = steady(0, 10 * S, 5 * MS);
        assert!(evaluate_phase(&healthy, window(0, 10 * S), &spec)
            .slos
            .iter()
            .all(|s| s.pass));
    }

    #[test]
    fn unavailability_gap_in_the_middle_is_measured() {
        // Successes until 4 s, then every operation fails until 7 s, then successes again.
        let mut ops = steady(0, 10 * S, 5 * MS);
        for o in ops
            .iter_mut()
            .filter(|o| o.t_call >= 4 * S && o.t_call < 7 * S)
        {
            o.outcome = Outcome::Fail;
        }
        let spec = SloSpec {
            max_unavailable: Some(Duration::from_secs(1)),
            ..SloSpec::default()
        };
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        // Last success completes at 3.905 s, the next at 7.005 s.
        assert!((r.longest_unavailable_ms - 3100.0).abs() < 1e-9);
        assert!(!slo(&r, "max_unavailable").pass);

        let healthy = steady(0, 10 * S, 5 * MS);
        assert!(
            slo(
                &evaluate_phase(&healthy, window(0, 10 * S), &spec),
                "max_unavailable"
            )
            .pass
        );
    }

    #[test]
    fn units_keep_the_names_summary_json_had_as_strings() {
        for (unit, name) in [
            (Unit::Ratio, "ratio"),
            (Unit::Ms, "ms"),
            (Unit::Ops, "ops"),
            (Unit::Value, "value"),
        ] {
            assert_eq!(unit.name(), name);
            let json = serde_json::to_value(unit).expect("encode");
            assert_eq!(json, name);
            assert_eq!(serde_json::from_value::<Unit>(json).expect("decode"), unit);
        }
    }

    #[test]
    fn whole_phase_unavailable_fails_every_latency_limit() {
        let mut ops = steady(0, 10 * S, 5 * MS);
        for o in &mut ops {
            o.outcome = Outcome::Unknown;
        }
        let spec = SloSpec {
            max_p50: Some(Duration::from_secs(60)),
            max_p99: Some(Duration::from_secs(60)),
            max_unavailable: Some(Duration::from_secs(1)),
            ..SloSpec::default()
        };
        let r = evaluate_phase(&ops, window(0, 10 * S), &spec);
        assert_eq!(r.ok, 0);
        assert_eq!(r.longest_unavailable_ms, 10_000.0);
        // Even a limit longer than the phase fails: there is no latency to hold it.
        for name in ["p50", "p99"] {
            let s = slo(&r, name);
            assert!(!s.pass, "{name} passed with no successful operation");
            assert_eq!(s.observed, 10_000.0);
        }
        assert!(!slo(&r, "max_unavailable").pass);
        // Every number stays finite so summary.json can carry it.
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn min_ops_unmet_fails() {
        let ops = steady(0, S, 5 * MS);
        let spec = SloSpec {
            min_ops: Some(50),
            ..SloSpec::default()
        };
        let r = evaluate_phase(&ops, window(0, S), &spec);
        let s = slo(&r, "min_ops");
        assert_eq!((s.observed, s.limit, s.pass), (10.0, 50.0, false));
        // An empty phase is "no data", which fails too.
        assert!(!slo(&evaluate_phase(&[], window(0, S), &spec), "min_ops").pass);

        let busy = steady(0, 5 * S, 5 * MS);
        assert!(slo(&evaluate_phase(&busy, window(0, 5 * S), &spec), "min_ops").pass);
    }

    #[test]
    fn op_returning_after_window_end_is_clamped() {
        // One success at 100 ms, then one invoked at 500 ms that returns long after the end.
        let ops = vec![
            op(1, 0, 100 * MS, Outcome::Ok),
            op(2, 500 * MS, 5 * S, Outcome::Ok),
        ];
        let r = evaluate_phase(&ops, window(0, S), &SloSpec::default());
        assert_eq!(r.ok, 2);
        // Its completion lies outside the window, so the window is unanswered from
        // 100 ms to its end; it is not stretched to 5 s either.
        assert_eq!(r.longest_unavailable_ms, 900.0);
        // Its latency still counts: it was invoked in this phase.
        assert!((r.p99_ms - 4500.0).abs() < 10.0, "p99 {}", r.p99_ms);
    }

    #[test]
    fn completion_of_an_earlier_op_counts_as_availability() {
        let ops = vec![
            op(1, 0, S + 500 * MS, Outcome::Ok),
            op(2, S + 100 * MS, S + 200 * MS, Outcome::Ok),
        ];
        let r = evaluate_phase(&ops, window(S, 2 * S), &SloSpec::default());
        assert_eq!(r.ops, 1);
        // Points: 1.0, 1.2, 1.5, 2.0 s.
        assert_eq!(r.longest_unavailable_ms, 500.0);
    }

    #[test]
    fn spec_from_yaml_parses_durations() {
        let spec: SloSpec = serde_saphyr::from_str(
            "max_error_rate: 0.02\nmax_p50: 250ms\nmax_p99: 1s 500ms\nmax_unavailable: 3s\nmin_ops: 20\n",
        )
        .expect("valid spec");
        assert_eq!(
            spec,
            SloSpec {
                max_error_rate: Some(0.02),
                max_p50: Some(Duration::from_millis(250)),
                max_p99: Some(Duration::from_millis(1500)),
                max_unavailable: Some(Duration::from_secs(3)),
                min_ops: Some(20),
            }
        );
        assert_eq!(spec.validate(), Ok(()));
        let partial: SloSpec = serde_saphyr::from_str("max_p99: 250ms\n").expect("valid spec");
        assert_eq!(partial.max_p50, None);
        assert_eq!(partial.max_p99, Some(Duration::from_millis(250)));
    }

    #[test]
    fn spec_from_yaml_rejects_unknown_key() {
        let err = serde_saphyr::from_str::<SloSpec>("max_p95: 250ms\n")
            .expect_err("max_p95 is not a field");
        assert!(err.to_string().contains("max_p95"), "{err}");
    }

    #[test]
    fn spec_from_yaml_rejects_bad_duration() {
        assert!(serde_saphyr::from_str::<SloSpec>("max_p99: fast\n").is_err());
    }

    #[test]
    fn validate_names_the_field() {
        for bad in [1.5, -0.1, f64::NAN] {
            let spec = SloSpec {
                max_error_rate: Some(bad),
                ..SloSpec::default()
            };
            let err = spec.validate().expect_err("out of range");
            assert!(err.contains("max_error_rate"), "{err}");
        }
        for good in [0.0, 1.0, 0.05] {
            let spec = SloSpec {
                max_error_rate: Some(good),
                ..SloSpec::default()
            };
            assert_eq!(spec.validate(), Ok(()));
        }
    }

    #[test]
    fn time_to_recover_finds_first_success_after_from() {
        let mut ops = vec![
            op(1, 0, 10 * MS, Outcome::Ok),
            op(2, 2 * S, 2 * S + 10 * MS, Outcome::Fail),
            // Invoked before `from`: does not count even though it succeeds later.
            op(3, S - 1, 4 * S, Outcome::Ok),
            op(4, 3 * S, 3 * S + 20 * MS, Outcome::Ok),
            op(5, 2 * S + 500 * MS, 3 * S + 100 * MS, Outcome::Ok),
        ];
        ops[3].node = "b".into();
        ops[4].node = "a".into();
        assert_eq!(time_to_recover(&ops, S, None), Some(2 * S + 20 * MS));
        assert_eq!(time_to_recover(&ops, S, Some("a")), Some(2 * S + 100 * MS));
        assert_eq!(time_to_recover(&ops, S, Some("c")), None);
        assert_eq!(time_to_recover(&ops, 10 * S, None), None);
    }

    #[test]
    fn time_to_slo_finds_the_first_clean_window() {
        let op = |t: Micros, outcome| Op {
            id: t,
            client: 0,
            node: "a".into(),
            kind: firedrill_types::history::OpKind::Read,
            key: "k".into(),
            value: None,
            expected: None,
            t_intended: t,
            t_call: t,
            t_return: t + 1_000,
            outcome,
            error: None,
            backend: None,
        };
        // Errors for 2 s after the heal at t=10 s, then clean.
        let mut ops: Vec<Op> = (0..40)
            .map(|i| op(10_000_000 + i * 50_000, Outcome::Fail))
            .collect();
        ops.extend((0..40).map(|i| op(12_000_000 + i * 50_000, Outcome::Ok)));
        assert_eq!(
            time_to_slo(&ops, 10_000_000, 14_000_000, 0.01),
            Some(2_000_000)
        );
        // A 30 % tolerance accepts the window that starts while errors still trickle in
        // (5 errors, 15 successes).
        assert_eq!(
            time_to_slo(&ops, 10_000_000, 14_000_000, 0.3),
            Some(1_750_000)
        );
        // Never clean before the end.
        assert_eq!(time_to_slo(&ops[..40], 10_000_000, 12_000_000, 0.01), None);
    }
}
