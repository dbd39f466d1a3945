//! incident.md: the note of a rolled-back rollout, for the on-call engineer to paste into the
//! incident tracker: what set the rollback off and when, what was done, how fast service came
//! back and what the load saw meanwhile.
//!
//! Every fact comes from `summary.rollout.incident` (the judge recounts it from the run) and
//! the rollout's levers; the note judges nothing of its own.

use firedrill_types::history::Micros;
use firedrill_types::summary::{
    IncidentAction, IncidentResult, LeverOutcome, RolloutResult, RolloutTrigger, Summary, Unit,
};

use crate::markdown::{self, code, table};
use crate::page;
use crate::view::{self, Align, Cell, Column, Table};
use crate::{percent, run_clock, seconds_tenths, slo_value, wall_clock_at, MARKDOWN_FILE};

/// incident.md; `None` when no rollback made an incident.
pub fn render(summary: &Summary) -> Option<String> {
    let r = summary.rollout.as_ref()?;
    let i = r.incident.as_ref()?;
    let mut out = format!(
        "# Incident: {} rolled back at stage {}\n\n",
        summary.scenario, i.stage_name
    );
    out.push_str(&format!(
        "Run {}, seed {}, verdict **{}**, started {} · [report]({MARKDOWN_FILE})\n\n",
        code(&summary.run_id),
        summary.seed,
        view::verdict_word(summary.verdict),
        summary.started_at,
    ));
    facts(&mut out, summary, r, i);
    actions(&mut out, r, i);
    impact(&mut out, i);
    follow_up(&mut out, r, i);
    out.push_str(&format!(
        "---\n\n<sub>Written by firedrill from summary.json ({}).</sub>\n",
        summary.schema
    ));
    Some(out)
}

fn facts(out: &mut String, s: &Summary, r: &RolloutResult, i: &IncidentResult) {
    const COLUMNS: &[Column] = &[("Field", Align::Left), ("Value", Align::Wrap)];
    let at = |t: Micros| when(&s.started_at, t);
    let mut rows = vec![
        (
            "Stage",
            format!(
                "{} ({}), began {}",
                i.stage,
                i.stage_name,
                at(i.stage_start)
            ),
        ),
        ("Trigger", trigger(r, i)),
        ("Value", value(r, i)),
        ("Detail", i.detail.trim().to_string()),
        ("First observed", at(i.first_observed)),
        ("Rollback decided", at(i.decided)),
        (
            "Service restored",
            i.restored.map_or_else(|| "not restored".to_string(), at),
        ),
        (
            "Time to restore",
            i.time_to_restore_ms
                .map_or_else(|| "not restored".to_string(), seconds_tenths),
        ),
    ];
    rows.extend(i.effects.iter().map(|e| {
        let pass = Some(e.pass);
        (
            "Time to effect",
            format!(
                "{}: {} (limit {}), {} {}",
                view::step_title(&s.steps, &e.step),
                e.time_to_effect_ms
                    .map_or_else(|| "never".to_string(), seconds_tenths),
                seconds_tenths(e.limit_ms),
                markdown::mark(pass),
                if e.pass { "met" } else { "missed" },
            ),
        )
    }));
    out.push_str("## Summary\n\n");
    table(
        out,
        &Table {
            columns: COLUMNS,
            rows: rows
                .into_iter()
                .map(|(field, value)| vec![Cell::Text(field.to_string()), Cell::Text(value)])
                .collect(),
        },
    );
}

/// `28.000 s on the run clock, 2025-03-14T09:27:21.000Z`: both, so the note lines up with
/// the report and with the logs and dashboards outside the run.
fn when(started_at: &str, t: Micros) -> String {
    match wall_clock_at(started_at, t) {
        Some(utc) => format!("{} s on the run clock, {utc}", run_clock(t)),
        None => format!("{} s on the run clock", run_clock(t)),
    }
}

/// `gate `x` on `metric`: 2 failed evaluations in a row`, or `step 5.2.3 `name``: the
/// judge's words for the trigger, with the metric and the limit the gate reached.
fn trigger(r: &RolloutResult, i: &IncidentResult) -> String {
    let mut words = i.trigger.trim().to_string();
    if let Some(metric) = &i.metric {
        words.push_str(&format!(" on {}", code(metric)));
    }
    if let Some(RolloutTrigger::Gate { limit, .. }) = &r.trigger {
        words.push_str(&format!(": {limit}"));
    }
    words
}

/// The trigger gate's last value against its limit, in the unit it judged in (the unit its
/// evaluations in the stage carry); `—` without a value.
fn value(r: &RolloutResult, i: &IncidentResult) -> String {
    let unit = match &r.trigger {
        Some(RolloutTrigger::Gate { stage, gate, .. }) => r
            .stages
            .iter()
            .filter(|s| s.index == *stage)
            .flat_map(|s| &s.evaluations)
            .rfind(|e| &e.gate == gate)
            .map(|e| e.unit),
        _ => None,
    };
    let shown = |v: f64| unit.map_or_else(|| v.to_string(), |u: Unit| slo_value(v, u));
    let value = i.value.map_or_else(|| "—".to_string(), shown);
    match i.limit {
        Some(limit) => format!("{value} (limit {})", shown(limit)),
        None => value,
    }
}

/// The rollback's steps in order, numbered on across the levers they belong to; the levers
/// never tried close the list.
fn actions(out: &mut String, r: &RolloutResult, i: &IncidentResult) {
    out.push_str("## Actions taken\n\n");
    if i.actions.is_empty() {
        out.push_str("_No rollback step ran._\n\n");
    }
    let mut n = 0;
    for group in i.actions.chunk_by(|a, b| a.lever == b.lever) {
        if !r.levers.is_empty() {
            match &group[0].lever {
                Some(name) => lever_heading(out, r, name),
                None => out.push_str("**Other steps**\n\n"),
            }
        }
        for a in group {
            n += 1;
            out.push_str(&format!("{n}. {}\n", action(r, a)));
        }
        out.push('\n');
    }
    for l in &r.levers {
        if !i.actions.iter().any(|a| a.lever.as_ref() == Some(&l.name)) {
            lever_heading(out, r, &l.name);
        }
    }
}

/// `**Lever 1 `Flag off`**: ❌ not restored — why`.
fn lever_heading(out: &mut String, r: &RolloutResult, name: &str) {
    let Some(l) = r.levers.iter().find(|l| l.name == name) else {
        out.push_str(&format!("**Lever {}**\n\n", code(name)));
        return;
    };
    out.push_str(&format!(
        "**Lever {} {}**: {} {}",
        l.index,
        code(&l.name),
        markdown::mark(view::lever_pass(l.outcome)),
        l.outcome.name()
    ));
    if let Some(detail) = &l.detail {
        out.push_str(&format!(" — {}", detail.trim()));
    }
    out.push_str("\n\n");
}

/// `` `5.3.1` Turn the feature flag off: ✅ passed ``, naming its lever when no heading does.
fn action(r: &RolloutResult, a: &IncidentAction) -> String {
    let mut line = format!(
        "{} {}: {} {}",
        code(&a.step),
        a.name.trim(),
        page::mark(a.status),
        page::status_word(a.status)
    );
    if let (Some(lever), true) = (&a.lever, r.levers.is_empty()) {
        line.push_str(&format!(" (lever {})", code(lever)));
    }
    line
}

fn impact(out: &mut String, i: &IncidentResult) {
    const COLUMNS: &[Column] = &[
        ("Window (s)", Align::Left),
        ("Ops", Align::Right),
        ("Errors", Align::Right),
        ("Error rate", Align::Right),
    ];
    let m = &i.impact;
    out.push_str("## Impact on the load\n\n");
    table(
        out,
        &Table {
            columns: COLUMNS,
            rows: vec![vec![
                Cell::Text(format!("{} – {}", run_clock(m.from), run_clock(m.to))),
                Cell::Text(m.ops.to_string()),
                Cell::Text(m.errors.to_string()),
                Cell::Text(percent(m.error_rate)),
            ]],
        },
    );
    out.push_str(&format!(
        "Operations that returned (`t_return`) from the start of stage {} until {}; errors: \
         those that failed or whose outcome is unknown.\n\n",
        i.stage,
        if i.restored.is_some() {
            "service was restored"
        } else {
            "the end of the procedure"
        },
    ));
}

fn follow_up(out: &mut String, r: &RolloutResult, i: &IncidentResult) {
    out.push_str("## Follow-up\n\n");
    out.push_str(&format!(
        "- [ ] Find the root cause of the trigger at stage {} ({}): {}.\n",
        i.stage,
        i.stage_name,
        trigger(r, i),
    ));
    out.push_str(&rollback_item(r, i));
    out.push_str(&format!(
        "- [ ] Update the runbook with what this drill showed ([report]({MARKDOWN_FILE})).\n\n"
    ));
}

/// Whether the first lever restored service, as the procedure expects; without levers,
/// whether the rollback did.
fn rollback_item(r: &RolloutResult, i: &IncidentResult) -> String {
    let Some(first) = r.levers.first() else {
        return match i.time_to_restore_ms {
            Some(ms) => format!(
                "- [ ] Check the rollback: service was restored {} after it was decided.\n",
                seconds_tenths(ms)
            ),
            None => "- [ ] Check the rollback: it did not restore service.\n".to_string(),
        };
    };
    let lever = format!("lever {} {}", first.index, code(&first.name));
    let unexpected = view::unexpected_lever(r).map(|u| u.sentence(code));
    let did = match first.outcome {
        LeverOutcome::Restored => {
            return match unexpected {
                None => format!("- [x] The first lever tried, {lever}, restored service.\n"),
                Some(sentence) => format!("- [ ] {sentence}\n"),
            }
        }
        LeverOutcome::NotRestored => "did not restore service",
        LeverOutcome::Failed => "failed: one of its own steps failed",
        LeverOutcome::NotTried => "was not tried",
    };
    let mut item = format!("- [ ] Find out why the first lever tried, {lever}, {did}.");
    if let Some(sentence) = unexpected {
        item.push_str(&format!(" {sentence}"));
    }
    item.push('\n');
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn incident_note() {
        insta::assert_snapshot!("levers", render(&fixtures::levers()).expect("an incident"));
    }

    #[test]
    fn no_incident_no_note() {
        assert_eq!(render(&fixtures::passing()), None);
        // A rollback the judge made no incident of (summaries before the field).
        assert_eq!(render(&fixtures::staged()), None);
    }

    #[test]
    fn a_rollback_whose_first_lever_worked_is_checked_off() {
        let mut s = fixtures::levers();
        let r = s.rollout.as_mut().expect("a rollout");
        r.levers[0].outcome = LeverOutcome::Restored;
        r.levers[1].outcome = LeverOutcome::NotTried;
        let note = render(&s).expect("an incident");
        assert!(
            note.contains("- [x] The first lever tried, lever 1 `Flag off`, restored service.\n"),
            "{note}"
        );
        // Without levers (a kill switch), the rollback's own restore time.
        let r = s.rollout.as_mut().expect("a rollout");
        r.levers.clear();
        r.expected_lever = None;
        let note = render(&s).expect("an incident");
        assert!(
            note.contains(
                "- [ ] Check the rollback: service was restored 64.0 s after it was decided.\n"
            ),
            "{note}"
        );
        assert!(
            note.contains("1. `5.3.1` Turn the feature flag off: ✅ passed (lever `Flag off`)\n"),
            "{note}"
        );
    }

    #[test]
    fn times_are_on_the_run_clock_and_the_wall_clock() {
        let mut s = fixtures::levers();
        assert_eq!(
            when(&s.started_at, 28_000_000),
            "28.000 s on the run clock, 2025-03-14T09:27:21.000Z"
        );
        s.started_at = "unknown".to_string();
        let note = render(&s).expect("an incident");
        assert!(
            note.contains("| First observed | 28.000 s on the run clock |"),
            "{note}"
        );
    }
}
