//! The verdict: every check of a run folded into pass or fail, with one sentence per failure.

use firedrill_types::summary::{
    CheckResult, DataResult, PhaseResult, ReadResult, StepRecord, StepStatus, Unit, Verdict,
};

pub fn judge(
    steps: &[StepRecord],
    phases: &[PhaseResult],
    data: &DataResult,
    reads: &ReadResult,
    checks: &[CheckResult],
) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    for s in steps.iter().filter(|s| s.status == StepStatus::Failed) {
        reasons.push(format!(
            "step {} `{}` failed: {}",
            s.id,
            s.name,
            s.error.as_deref().unwrap_or("no detail")
        ));
    }
    for p in phases {
        for slo in p.slos.iter().filter(|s| !s.pass) {
            // A query SLO's detail says its bound and what Prometheus answered.
            reasons.push(match &slo.detail {
                Some(detail) => format!(
                    "SLO breached in the {} phase: {}: {detail}",
                    p.phase.name(),
                    slo.name
                ),
                None => format!(
                    "SLO breached in the {} phase: {} was {} (limit {})",
                    p.phase.name(),
                    slo.name,
                    show(slo.observed, slo.unit),
                    show(slo.limit, slo.unit)
                ),
            });
        }
    }
    if data.lost > 0 {
        reasons.push(format!(
            "lost writes: {} of {} acknowledged writes are gone after recovery",
            data.lost, data.acked
        ));
    }
    if data.unexpected > 0 {
        reasons.push(format!(
            "unexpected data: {} keys hold a value that no successful write produced",
            data.unexpected
        ));
    }
    if !reads.pass {
        reasons.push(format!(
            "bad reads: {} stale, {} from the future, {} of values never written",
            reads.stale, reads.future, reads.phantom
        ));
    }
    for c in checks.iter().filter(|c| !c.pass) {
        reasons.push(format!("check `{}` failed: {}", c.name, c.detail));
    }
    let verdict = if reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (verdict, reasons)
}

fn show(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => format!("{:.2}%", v * 100.0),
        Unit::Ms => format!("{v:.0} ms"),
        Unit::Ops | Unit::Value => format!("{v} {}", unit.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_types::history::Phase;
    use firedrill_types::summary::SloResult;

    #[test]
    fn every_failure_kind_gives_a_reason() {
        let phases = vec![PhaseResult {
            phase: Phase::Procedure,
            start: 0,
            end: 1,
            ops: 10,
            ok: 5,
            errors: 5,
            error_rate: 0.5,
            p50_ms: 1.0,
            p99_ms: 2.0,
            longest_unavailable_ms: 9000.0,
            slos: vec![SloResult {
                name: "max_unavailable".into(),
                limit: 3000.0,
                observed: 9000.0,
                unit: Unit::Ms,
                pass: false,
                detail: None,
            }],
        }];
        let data = DataResult {
            acked: 10,
            lost: 2,
            ..Default::default()
        };
        let reads = ReadResult {
            stale: 1,
            pass: false,
            ..Default::default()
        };
        let checks = vec![CheckResult {
            name: "health".into(),
            pass: false,
            detail: "x".into(),
        }];
        let (v, reasons) = judge(&[], &phases, &data, &reads, &checks);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("procedure phase: max_unavailable was 9000 ms (limit 3000 ms)"));
        assert!(reasons[1].starts_with("lost writes: 2 of 10"));
    }

    #[test]
    fn a_clean_run_passes() {
        let reads = ReadResult {
            pass: true,
            ..Default::default()
        };
        let (v, reasons) = judge(&[], &[], &DataResult::default(), &reads, &[]);
        assert_eq!((v, reasons.len()), (Verdict::Pass, 0));
    }
}
