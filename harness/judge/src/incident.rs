//! The incident note of a rollback: what set it off, when it was first seen, what was done,
//! how fast service came back and what the load saw meanwhile, all recounted from the run's
//! records (the rollout's evaluations, the step records, the history).

use firedrill_spec::plan::{all_steps, Action, PlannedStep, RollbackPlan, RolloutPlan};
use firedrill_types::history::{Micros, Op};
use firedrill_types::summary::{
    EffectResult, GateOutcome, IncidentAction, IncidentEffect, IncidentImpact, IncidentResult,
    LeverOutcome, RolloutOutcome, RolloutResult, RolloutTrigger, StepRecord, StepStatus,
};

/// The rollout planned among `steps`, with its step's id, if any (a scenario has at most
/// one).
pub fn rollout_plan(steps: &[PlannedStep]) -> Option<(&str, &RolloutPlan)> {
    all_steps(steps).into_iter().find_map(|s| match &s.action {
        Action::Rollout(r) => Some((s.id.as_str(), r.as_ref())),
        _ => None,
    })
}

/// The incident of a rolled-back rollout; `None` when it was promoted or did not finish.
/// `planned_id` is the rollout step's id in the plan (the record's may differ inside a
/// loop); `end` bounds the impact when service never came back.
pub fn incident(
    r: &RolloutResult,
    plan: &RolloutPlan,
    planned_id: &str,
    steps: &[StepRecord],
    effects: &[EffectResult],
    ops: &[Op],
    end: Micros,
) -> Option<IncidentResult> {
    if r.outcome != Some(RolloutOutcome::RolledBack) {
        return None;
    }
    let trigger = r.trigger.as_ref()?;
    let stage_index = match trigger {
        RolloutTrigger::Gate { stage, .. } | RolloutTrigger::Step { stage, .. } => *stage,
    };
    let stage = r.stages.iter().find(|s| s.index == stage_index)?;
    let mut note = IncidentResult {
        stage: stage.index,
        stage_name: stage
            .name
            .clone()
            .unwrap_or_else(|| format!("{} %", stage.percent)),
        stage_start: stage.start,
        trigger: String::new(),
        metric: None,
        value: None,
        limit: None,
        detail: r.failure.clone().unwrap_or_default(),
        first_observed: stage.end,
        decided: stage.end,
        actions: Vec::new(),
        restored: None,
        time_to_restore_ms: None,
        effects: Vec::new(),
        impact: IncidentImpact {
            from: stage.start,
            to: end,
            ops: 0,
            errors: 0,
            error_rate: 0.0,
        },
    };
    match trigger {
        RolloutTrigger::Gate { gate, .. } => {
            let judged: Vec<_> = stage
                .evaluations
                .iter()
                .filter(|e| &e.gate == gate)
                .collect();
            note.trigger = format!("gate `{gate}`");
            if let Some(first) = judged.iter().find(|e| e.outcome != GateOutcome::Pass) {
                note.first_observed = first.at;
            }
            if let Some(last) = judged.last() {
                note.metric = Some(last.metric.clone());
                (note.value, note.limit) = (last.canary, last.limit);
                note.detail = last.detail.clone();
            }
        }
        RolloutTrigger::Step { step, .. } => {
            note.trigger = format!("step {step}");
            if let Some(rec) = steps.iter().find(|s| &s.id == step) {
                note.trigger = format!("step {} `{}`", rec.id, rec.name);
                note.first_observed = rec.started;
                note.detail = rec.error.clone().unwrap_or_default();
            }
        }
    }
    // The rollback's planned steps, by their id in the run, with the lever of each.
    let run_id = |s: &PlannedStep| match s.id.strip_prefix(planned_id) {
        Some(rest) => format!("{}{rest}", r.step),
        None => s.id.clone(),
    };
    let planned: Vec<(String, Option<&str>)> = match &plan.rollback {
        RollbackPlan::KillSwitch { .. } => plan
            .rollback
            .steps()
            .into_iter()
            .map(|s| (run_id(s), None))
            .collect(),
        RollbackPlan::Levers { levers, .. } => levers
            .iter()
            .flat_map(|l| {
                l.steps
                    .iter()
                    .chain(&l.verify)
                    .map(|s| (run_id(s), Some(l.name.as_str())))
            })
            .collect(),
    };
    let ran: Vec<(&StepRecord, Option<&str>)> = planned
        .iter()
        .filter_map(|(id, lever)| {
            let rec = steps.iter().find(|s| &s.id == id)?;
            (rec.status != StepStatus::Skipped).then_some((rec, *lever))
        })
        .collect();
    note.actions = ran
        .iter()
        .map(|(rec, lever)| IncidentAction {
            step: rec.id.clone(),
            name: rec.name.clone(),
            status: rec.status,
            lever: lever.map(str::to_string),
        })
        .collect();
    note.restored = if r.levers.is_empty() {
        let all_passed = !ran.is_empty() && ran.iter().all(|(s, _)| s.status == StepStatus::Passed);
        all_passed
            .then(|| {
                ran.iter()
                    .map(|(s, _)| s.started + s.duration_ms * 1000)
                    .max()
            })
            .flatten()
    } else {
        r.levers
            .iter()
            .find(|l| l.outcome == LeverOutcome::Restored)
            .and_then(|l| l.end)
    };
    note.time_to_restore_ms = note
        .restored
        .map(|t| t.saturating_sub(note.decided) as f64 / 1000.0);
    // Counted once service's end is known: a pass over the whole history.
    note.impact = impact(ops, stage.start, note.restored.unwrap_or(end));
    note.effects = effects
        .iter()
        .filter(|e| planned.iter().any(|(id, _)| id == &e.step))
        .map(|e| IncidentEffect {
            step: e.step.clone(),
            time_to_effect_ms: e.time_to_effect_ms,
            limit_ms: e.limit_ms,
            pass: e.pass,
        })
        .chain(r.kill_switch.iter().map(|k| IncidentEffect {
            step: k.step.clone(),
            time_to_effect_ms: k.time_to_effect_ms,
            limit_ms: k.limit_ms,
            pass: k.pass,
        }))
        .collect();
    Some(note)
}

/// The operations that returned in `[from, to)`, and those of them the system did not
/// answer (as the phases count errors: a cas whose compare failed was answered).
fn impact(ops: &[Op], from: Micros, to: Micros) -> IncidentImpact {
    let within: Vec<&Op> = ops
        .iter()
        .filter(|o| o.t_return >= from && o.t_return < to)
        .collect();
    let errors = within.iter().filter(|o| !o.answered()).count() as u64;
    let n = within.len() as u64;
    IncidentImpact {
        from,
        to,
        ops: n,
        errors,
        error_rate: if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        },
    }
}
