//! The whole judgement of a run: the plan's limits applied to the run's facts, folded into
//! one [`Summary`]. A pure function, so any run can be re-judged from its artifacts.

use firedrill_spec::plan::Plan;
use firedrill_types::facts::{ReadBack, RunFacts};
use firedrill_types::history::{Micros, Op, OpKind, Outcome, Phase, PhaseWindow};
use firedrill_types::summary::{
    CheckResult, DataResult, LinearizabilityResult, LinearizableVerdict, LoadStats, ReadResult,
    RecoveryResult, Summary, SCHEMA,
};

use crate::{
    backup, check, end_state, incident, kill_switch, linearizability, monitoring, slo, verdict,
};

pub fn summarize(plan: &Plan, facts: &RunFacts) -> Summary {
    let ops = &facts.ops;
    let mut checks = vec![end_state::membership_check(&facts.nodes)];

    let window = match &plan.backup {
        Some(_) => {
            let w = backup::window(&facts.marks);
            if w.is_none() {
                checks.push(CheckResult {
                    name: "backup and disaster marked".into(),
                    pass: false,
                    detail: "the steps marked `backup` and `disaster` did not both run to their end, so the data cannot be judged against a recovery point".into(),
                });
            }
            w
        }
        None => None,
    };
    let data = match &facts.read_back {
        ReadBack::Skipped => DataResult {
            pass: true,
            ..Default::default()
        },
        ReadBack::Done(values) => {
            let values = values
                .iter()
                .map(|v| (v.key.clone(), v.value.clone()))
                .collect();
            match &window {
                Some(w) => check::backup_data_check(ops, &values, w),
                None => check::data_check(ops, &values),
            }
        }
        ReadBack::Failed(why) => {
            checks.push(CheckResult {
                name: "read back every key".into(),
                pass: false,
                detail: why.clone(),
            });
            DataResult::default()
        }
    };
    checks.extend(facts.converge.iter().map(end_state::converge_check));

    let recoveries = recoveries(plan, facts);
    checks.extend(
        recoveries
            .iter()
            .filter(|r| r.limit_ms.is_some())
            .map(recovery_check),
    );
    let backup = plan
        .backup
        .as_ref()
        .zip(window.as_ref())
        .map(|(b, w)| backup::result(b, w, &facts.marks, ops));
    if let Some(b) = &backup {
        checks.extend(backup::checks(b));
    }
    let rollout = facts.rollout.clone().map(|mut r| {
        if let Some(k) = &facts.kill_switch {
            let judged = kill_switch::judge(k, &r.canary, ops, &facts.phases);
            checks.push(kill_switch::check(&judged, &r.canary));
            r.kill_switch = Some(judged);
        }
        r.incident = incident::rollout_plan(&plan.steps).and_then(|(id, rp)| {
            incident::incident(
                &r,
                rp,
                id,
                &facts.steps,
                &facts.effects,
                ops,
                facts.phases.recovery_start,
            )
        });
        r
    });
    // After the disaster the keys hold what the backup held: reads, and cas (which read
    // what they compare), are judged up to the disaster; the restored data by the
    // backup-mode data check.
    let judged_ops: Vec<Op>;
    let register_ops: &[Op] = match &window {
        Some(w) => {
            judged_ops = ops
                .iter()
                .filter(|o| o.kind == OpKind::Write || o.t_return < w.disaster_start)
                .cloned()
                .collect();
            &judged_ops
        }
        None => ops,
    };
    let (reads, linearizability) = if plan.checks.reads {
        let options = linearizability::Options {
            budget_per_key: plan.checks.linearizability_budget,
            ..linearizability::Options::default()
        };
        let lin = linearizability::check(register_ops, &options);
        checks.push(linearizability_check(
            &lin,
            window.is_some(),
            plan.checks.unknown_fails,
        ));
        (check::read_check(register_ops), Some(lin))
    } else {
        (
            ReadResult {
                pass: true,
                ..Default::default()
            },
            None,
        )
    };
    let windows = phase_windows(facts);
    let monitoring = plan
        .monitoring
        .as_ref()
        .zip(facts.monitoring.as_ref())
        .map(|(p, f)| {
            let judged = monitoring::judge(p, f, &facts.steps, &windows);
            checks.extend(monitoring::checks(&judged, f));
            judged
        });
    let phases: Vec<_> = windows
        .iter()
        .map(|w| {
            let mut judged = slo::evaluate_phase(ops, *w, &plan.slos[&w.phase]);
            if let Some((p, f)) = plan.monitoring.as_ref().zip(facts.monitoring.as_ref()) {
                judged.slos.extend(monitoring::query_slos(p, f, w.phase));
            }
            judged
        })
        .collect();
    let (verdict, reasons) = verdict::judge(&facts.steps, &phases, &data, &reads, &checks);
    Summary {
        schema: SCHEMA.to_string(),
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        runbook: plan.runbook.clone(),
        file: plan.file.display().to_string(),
        run_id: facts.run_id.clone(),
        seed: facts.seed,
        started_at: facts.started_at.clone(),
        duration_ms: facts.duration_ms,
        verdict,
        reasons,
        steps: facts.steps.clone(),
        phases,
        data,
        reads,
        checks,
        recoveries,
        effects: facts.effects.clone(),
        load: load_stats(
            ops,
            facts
                .phases
                .recovery_end
                .saturating_sub(facts.phases.steady_start),
            facts.goose_requests,
        ),
        nodes: facts.nodes.clone(),
        backup,
        rollout,
        linearizability,
        monitoring,
        timings: facts.timings.clone(),
    }
}

/// Linearizability as a check: unknown (the search ran out of budget) fails too, since
/// "not shown" is not "shown".
fn linearizability_check(
    l: &LinearizabilityResult,
    backup_mode: bool,
    unknown_fails: bool,
) -> CheckResult {
    let scope = if backup_mode {
        " (up to the disaster: the restore loses the writes after its recovery point by design)"
    } else {
        ""
    };
    let mut detail = format!(
        "{} keys: {} linearizable, {} violated, {} unknown{scope}",
        l.keys_checked, l.keys_linearizable, l.keys_violated, l.keys_unknown
    );
    for v in &l.violations {
        detail.push_str(&format!("; key {}: {}", v.key, v.explanation));
    }
    for u in &l.unknown {
        detail.push_str(&format!(
            "; key {}: no answer within {} ms ({} states explored, {} of {} operations placed)",
            u.key, u.budget_ms, u.states_explored, u.linearized_max, u.ops
        ));
    }
    let pass = match l.linearizable {
        LinearizableVerdict::True => true,
        LinearizableVerdict::False => false,
        LinearizableVerdict::Unknown => {
            if !unknown_fails {
                detail.push_str(" (unknown keys allowed: checks.linearizability.unknown is pass)");
            }
            !unknown_fails
        }
    };
    CheckResult {
        name: "every key's history is linearizable".into(),
        pass,
        detail,
    }
}

/// The three phases on the run clock.
pub fn phase_windows(facts: &RunFacts) -> [PhaseWindow; 3] {
    let p = &facts.phases;
    [
        PhaseWindow {
            phase: Phase::Steady,
            start: p.steady_start,
            end: p.procedure_start,
        },
        PhaseWindow {
            phase: Phase::Procedure,
            start: p.procedure_start,
            end: p.recovery_start,
        },
        PhaseWindow {
            phase: Phase::Recovery,
            start: p.recovery_start,
            end: p.recovery_end,
        },
    ]
}

fn recoveries(plan: &Plan, facts: &RunFacts) -> Vec<RecoveryResult> {
    facts
        .recoveries
        .iter()
        .map(|m| {
            let first_ok = slo::time_to_recover(&facts.ops, m.from, Some(&m.node));
            let to_slo = slo::time_to_slo(
                &facts.ops,
                m.from,
                facts.phases.recovery_end,
                plan.checks.recovered_error_rate,
            );
            RecoveryResult {
                step: m.step.clone(),
                node: m.node.clone(),
                from: m.from,
                to_first_ok_ms: first_ok.map(ms),
                to_slo_ms: to_slo.map(ms),
                limit_ms: m.within.map(ms),
                pass: match (m.within, first_ok) {
                    (None, _) => true,
                    (Some(l), Some(t)) => t <= l,
                    (Some(_), None) => false,
                },
            }
        })
        .collect()
}

fn recovery_check(r: &RecoveryResult) -> CheckResult {
    let shown = |v: Option<f64>| {
        v.map(|v| format!("{v:.0} ms"))
            .unwrap_or_else(|| "never".into())
    };
    CheckResult {
        name: format!(
            "{} serves again within {} after step {}",
            r.node,
            shown(r.limit_ms),
            r.step
        ),
        pass: r.pass,
        detail: format!(
            "first successful operation on {} after {}; load back within the recovery error rate after {}",
            r.node,
            shown(r.to_first_ok_ms),
            shown(r.to_slo_ms)
        ),
    }
}

fn load_stats(ops: &[Op], span: Micros, goose_requests: u64) -> LoadStats {
    let mut s = LoadStats {
        ops: ops.len() as u64,
        goose_requests,
        ..LoadStats::default()
    };
    for o in ops {
        match o.kind {
            OpKind::Read => s.reads += 1,
            OpKind::Write => s.writes += 1,
            OpKind::Cas => s.cas += 1,
        }
        match o.outcome {
            Outcome::Ok => s.ok += 1,
            Outcome::Fail => s.fail += 1,
            Outcome::Unknown => s.unknown += 1,
        }
        if o.compare_failed() {
            s.cas_compare_failed += 1;
        }
        s.max_behind_schedule_ms = s
            .max_behind_schedule_ms
            .max(ms(o.t_call.saturating_sub(o.t_intended)));
    }
    s.ops_per_s = if span == 0 {
        0.0
    } else {
        ops.len() as f64 / (span as f64 / 1e6)
    };
    s
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undecided() -> LinearizabilityResult {
        LinearizabilityResult {
            linearizable: LinearizableVerdict::Unknown,
            keys_checked: 2,
            keys_linearizable: 1,
            keys_violated: 0,
            keys_unknown: 1,
            keys_by_zones: 1,
            keys_by_search: 1,
            ops_checked: 10,
            states_explored: 100,
            violations: Vec::new(),
            unknown: Vec::new(),
        }
    }

    #[test]
    fn an_undecided_key_fails_the_check_unless_the_scenario_allows_it() {
        let l = undecided();
        let strict = linearizability_check(&l, false, true);
        assert!(!strict.pass, "{strict:?}");
        let lenient = linearizability_check(&l, false, false);
        assert!(lenient.pass, "{lenient:?}");
        assert!(
            lenient.detail.contains("unknown keys allowed"),
            "{lenient:?}"
        );
        let violated = LinearizabilityResult {
            linearizable: LinearizableVerdict::False,
            ..l
        };
        assert!(!linearizability_check(&violated, false, false).pass);
    }
}
