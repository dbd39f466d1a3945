//! Application rollouts: the ranker example under examples/ranker/, a small web service with
//! feature flags, a JSONL decision log and an analyzer script, rolled out by configuration
//! stages (flag, restart, hold), gated by the analyzer's numbers, with a kill switch whose
//! time to effect the decision log shows. The first run builds the example's image from
//! Debian packages; later runs find it on the Docker engine.

mod common;

use common::{drill, reason, recount, step, SERIAL};
use firedrill::summary::{
    GateOutcome, IncidentResult, LeverOutcome, RolloutOutcome, RolloutResult, StepStatus, Summary,
    Verdict,
};

const RUNBOOK: &str = "examples/ranker/runbooks/sample-rate-rollout.md";
const ANALYZER_GATE: &str = "sampled requests do not fail";
const EFFECT_STEP: &str = "New requests are no longer sampled";

/// Drills one of the ranker example's pages (seed 7), one at a time: the run must exit with
/// `code` and its verdict say so (0: pass, 1: fail).
fn drill_ranker(page: &str, code: i32) -> (Summary, tempfile::TempDir) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill(page, 7);
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    let verdict = if code == 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    assert_eq!(s.verdict, verdict, "{:#?}", s.reasons);
    (s, out)
}

#[test]
fn a_healthy_new_path_is_promoted_stage_by_stage_after_each_hold() {
    let (s, _out) = drill_ranker(RUNBOOK, 0);
    let r = s.rollout.as_ref().expect("the rollout's record");
    assert_eq!(r.outcome, Some(RolloutOutcome::Promoted), "{r:#?}");
    let names: Vec<&str> = r
        .stages
        .iter()
        .filter_map(|st| st.name.as_deref())
        .collect();
    assert_eq!(names, ["sample 1 %", "sample 5 %", "sample 10 %"]);
    for st in &r.stages {
        // Held at least 10 s, however early its evaluations passed.
        assert!(st.end - st.start >= 10_000_000, "{st:#?}");
        // The analyzer was read: its gate passed on a number, not on the lack of one.
        let read: Vec<f64> = st
            .evaluations
            .iter()
            .filter(|e| e.gate == ANALYZER_GATE && e.outcome == GateOutcome::Pass)
            .filter_map(|e| e.canary)
            .collect();
        assert!(read.len() >= 3, "{st:#?}");
        assert!(read.iter().all(|v| *v <= 0.01), "{read:?}");
    }
    // The smoke pack ran one step per row of its CSV, each passing.
    let smoke: Vec<_> = s
        .steps
        .iter()
        .filter(|st| st.name.starts_with("Smoke "))
        .collect();
    assert_eq!(smoke.len(), 5, "{smoke:?}");
    assert!(
        smoke.iter().all(|st| st.status == StepStatus::Passed),
        "{smoke:?}"
    );
    // Each stage's steps ran, numbered under the rollout; the kill switch did not.
    assert_eq!(step(&s, "Restart ranker at 5 %").id, "2.2.2");
    assert_eq!(step(&s, "Restart ranker at 5 %").status, StepStatus::Passed);
    assert_eq!(
        step(&s, "Kill switch - turn the feature off").status,
        StepStatus::Skipped
    );
    assert!(s.effects.is_empty(), "{:?}", s.effects);
    assert_eq!((s.data.lost, s.data.unexpected), (0, 0), "{:?}", s.data);
}

#[test]
fn a_new_path_that_fails_is_stopped_at_the_first_stage_and_the_kill_switch_takes_effect() {
    let (s, _out) = drill_ranker("examples/ranker/scenarios/sabotage/new-path-errors.yaml", 1);
    reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack));
    assert_eq!(r.stages.len(), 1, "stopped at its first stage: {r:#?}");
    let failure = r.failure.as_deref().unwrap();
    assert!(failure.contains(ANALYZER_GATE), "{failure}");
    // Every sampled request failed, and the analyzer said so.
    assert!(
        r.stages[0]
            .evaluations
            .iter()
            .any(|e| e.gate == ANALYZER_GATE
                && e.outcome == GateOutcome::Fail
                && e.canary == Some(1.0)),
        "{:#?}",
        r.stages[0].evaluations
    );
    // The kill switch took effect, and the decision log dates it.
    let effect = &s.effects[..];
    assert_eq!(effect.len(), 1, "{effect:?}");
    let e = &effect[0];
    assert!(e.pass, "{e:?}");
    assert!(e.time_to_effect_ms.unwrap() < 60_000.0, "{e:?}");
    assert_eq!(e.after, step(&s, "Kill switch - turn the feature off").id);
    // The old process sampled until the restart: no line of it can come after the restart
    // (at 1 % there may be none after the switch at all).
    let restart = step(&s, "Restart ranker without the feature");
    let restarted = restart.started + restart.duration_ms * 1000;
    assert!(e.at.unwrap() <= restarted, "{e:?} {restart:?}");
    if let Some(line) = &e.line {
        assert!(line.contains("reranker-v2"), "{e:?}");
    }
    assert_eq!(step(&s, EFFECT_STEP).status, StepStatus::Passed);
    // The incident note: the stage, the analyzer's reading, the kill switch and its effect.
    let i = incident(r, &s, _out.path());
    assert_eq!((i.stage, i.stage_name.as_str()), (1, "sample 1 %"));
    assert_eq!(i.trigger, format!("gate `{ANALYZER_GATE}`"));
    assert_eq!(i.value, Some(1.0), "{i:#?}");
    assert_eq!(i.actions[0].name, "Kill switch - turn the feature off");
    assert_eq!(i.effects.len(), 1, "{i:#?}");
    assert_eq!(i.effects[0].step, step(&s, EFFECT_STEP).id);
}

#[test]
fn a_kill_switch_that_is_never_applied_fails_its_time_to_effect() {
    let (s, _out) = drill_ranker(
        "examples/ranker/scenarios/sabotage/kill-switch-without-restart.yaml",
        1,
    );
    // The gates did their part: this scenario expects the rollback.
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack));
    let proof = step(&s, EFFECT_STEP);
    assert_eq!(proof.status, StepStatus::Failed, "{proof:?}");
    let why = proof.error.as_deref().unwrap();
    assert!(
        why.contains("the change never stopped within 60 s"),
        "{why}"
    );
    reason(&s, EFFECT_STEP);
    let e = &s.effects[0];
    assert!(
        !e.pass && e.at.is_none() && e.time_to_effect_ms.is_none(),
        "{e:?}"
    );
}

#[test]
fn a_failing_row_of_the_smoke_pack_fails_its_stage_and_rolls_back() {
    let (s, _out) = drill_ranker(
        "examples/ranker/scenarios/sabotage/smoke-pack-row-fails.yaml",
        1,
    );
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:#?}");
    assert_eq!(r.stages.len(), 1, "{r:#?}");
    // One step per row of the CSV: the first five passed, the sixth failed the stage.
    for n in 1..=5 {
        let row = s
            .steps
            .iter()
            .find(|st| st.name.starts_with(&format!("Smoke {n}: ")))
            .unwrap();
        assert_eq!(row.status, StepStatus::Passed, "{row:?}");
    }
    let bad = step(&s, "Smoke 6: config offers reranker-v2");
    assert_eq!(bad.status, StepStatus::Failed, "{bad:?}");
    let failure = r.failure.as_deref().unwrap();
    assert!(
        failure.contains(
            "`Smoke 6: config offers reranker-v2` failed: output does not contain `reranker-v2`"
        ),
        "{failure}"
    );
    // Nothing after the failing row ran: the flag was never set.
    assert_eq!(
        step(&s, "Set the sample rate to 0.01").status,
        StepStatus::Skipped
    );
    reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
}

/// The rollout's incident note, checked against the run: its times in order, its impact
/// recounted from history.jsonl, and incident.md written and naming the stage.
fn incident<'a>(r: &'a RolloutResult, s: &Summary, dir: &std::path::Path) -> &'a IncidentResult {
    let i = r
        .incident
        .as_ref()
        .expect("a rollback writes an incident note");
    assert!(i.stage_start <= i.first_observed, "{i:#?}");
    assert!(i.first_observed <= i.decided, "{i:#?}");
    if let Some(restored) = i.restored {
        assert!(i.decided <= restored, "{i:#?}");
        assert_eq!(i.impact.to, restored);
    }
    let within: Vec<_> = recount::history(dir)
        .into_iter()
        .filter(|o| o.t_return >= i.impact.from && o.t_return < i.impact.to)
        .collect();
    let errors = within.iter().filter(|o| !o.answered()).count() as u64;
    assert_eq!(
        (i.impact.ops, i.impact.errors),
        (within.len() as u64, errors)
    );
    assert!(i.impact.ops > 0, "{i:#?}");
    let note = std::fs::read_to_string(dir.join("incident.md")).expect("incident.md");
    assert!(note.contains(&i.stage_name), "{note}");
    assert!(note.contains(&s.run_id), "{note}");
    i
}

#[test]
fn the_strategy_is_promoted_through_stages_whose_thresholds_tighten() {
    let (s, out) = drill_ranker("examples/ranker/runbooks/strategy-promotion.md", 0);
    let r = s.rollout.as_ref().expect("the rollout's record");
    assert_eq!(r.outcome, Some(RolloutOutcome::Promoted), "{r:#?}");
    let names: Vec<&str> = r
        .stages
        .iter()
        .filter_map(|st| st.name.as_deref())
        .collect();
    assert_eq!(names, ["shadow", "internal", "public"]);
    for st in &r.stages {
        let name = st.name.as_deref().unwrap();
        // Each stage judged its own thresholds, and only its own, on numbers it read.
        let own = format!("{name} - sampled requests do not fail");
        let limits: Vec<Option<f64>> = st
            .evaluations
            .iter()
            .filter(|e| e.gate.ends_with(" - sampled requests do not fail"))
            .map(|e| {
                assert_eq!(e.gate, own, "{st:#?}");
                e.limit
            })
            .collect();
        let expected = match name {
            "shadow" => 0.05,
            "internal" => 0.02,
            _ => 0.01,
        };
        assert!(
            !limits.is_empty() && limits.iter().all(|l| *l == Some(expected)),
            "{limits:?}"
        );
        assert!(st.end - st.start >= 10_000_000, "{st:#?}");
    }
    // In shadow the strategies were compared, and they disagree now and then (~10 %): the
    // gate read a real rate, not an empty one.
    let mismatch: Vec<f64> = r.stages[0]
        .evaluations
        .iter()
        .filter(|e| {
            e.gate == "shadow - reranker-v2 agrees with classic" && e.outcome == GateOutcome::Pass
        })
        .filter_map(|e| e.canary)
        .collect();
    assert!(
        mismatch.len() >= 3 && mismatch.iter().all(|m| *m > 0.0 && *m <= 0.2),
        "{mismatch:?}"
    );
    assert!(r.incident.is_none() && !out.path().join("incident.md").exists());
    assert_eq!((s.data.lost, s.data.unexpected), (0, 0), "{:?}", s.data);
}

#[test]
fn a_first_deploy_runs_its_smoke_pack_at_every_stage_and_is_promoted() {
    let (s, _out) = drill_ranker("examples/ranker/runbooks/first-deploy.md", 0);
    let r = s.rollout.as_ref().expect("the rollout's record");
    assert_eq!(r.outcome, Some(RolloutOutcome::Promoted), "{r:#?}");
    let names: Vec<&str> = r
        .stages
        .iter()
        .filter_map(|st| st.name.as_deref())
        .collect();
    assert_eq!(names, ["routing only", "10 %", "50 %"]);
    // Routing only: every request went through the decision, none took the new path.
    let sampled: Vec<f64> = r.stages[0]
        .evaluations
        .iter()
        .filter(|e| e.gate == "routing only - nothing takes the new path")
        .filter_map(|e| e.canary)
        .collect();
    assert!(
        sampled.len() >= 3 && sampled.iter().all(|v| *v == 0.0),
        "{sampled:?}"
    );
    // The smoke pack ran at each stage, a step per row, all passing.
    for prefix in ["Routing-only smoke ", "10 % smoke ", "50 % smoke "] {
        let rows: Vec<_> = s
            .steps
            .iter()
            .filter(|st| st.name.starts_with(prefix))
            .collect();
        assert_eq!(rows.len(), 5, "{prefix}: {rows:?}");
        assert!(
            rows.iter().all(|st| st.status == StepStatus::Passed),
            "{rows:?}"
        );
    }
    // Promoted: no lever was pulled.
    assert!(r.levers.is_empty(), "{:?}", r.levers);
    assert_eq!(r.expected_lever.as_deref(), Some("Flag off"));
    assert_eq!(
        step(&s, "Turn the feature off through the admin endpoint").status,
        StepStatus::Skipped
    );
    assert_eq!((s.data.lost, s.data.unexpected), (0, 0), "{:?}", s.data);
}

#[test]
fn a_broken_build_is_rolled_back_by_its_first_lever_and_the_incident_note_says_so() {
    let (s, out) = drill_ranker("examples/ranker/scenarios/rollback-by-first-lever.yaml", 0);
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:#?}");
    assert_eq!(r.stages.len(), 2, "stopped at 10 %: {r:#?}");
    let outcomes: Vec<LeverOutcome> = r.levers.iter().map(|l| l.outcome).collect();
    assert_eq!(outcomes, [LeverOutcome::Restored, LeverOutcome::NotTried]);
    assert_eq!(
        step(&s, "Turn safe mode on through the admin endpoint").status,
        StepStatus::Skipped
    );
    let i = incident(r, &s, out.path());
    assert_eq!((i.stage, i.stage_name.as_str()), (2, "10 %"));
    // The load saw the broken path: its failures are the incident's impact.
    assert!(i.impact.errors > 0, "{i:#?}");
    let flag_off = &r.levers[0];
    assert_eq!(i.restored, flag_off.end);
    // The decision log dates the flag's effect: at once, no restart needed.
    let effect = &i.effects[..];
    assert_eq!(effect.len(), 1, "{effect:?}");
    assert!(
        effect[0].pass && effect[0].time_to_effect_ms.unwrap() < 30_000.0,
        "{effect:?}"
    );
    assert!(
        i.actions
            .iter()
            .all(|a| a.lever.as_deref() == Some("Flag off")),
        "{i:#?}"
    );
}

#[test]
fn a_first_lever_that_does_not_restore_service_fails_and_the_report_shows_the_second_did() {
    let (s, out) = drill_ranker(
        "examples/ranker/scenarios/sabotage/first-lever-does-not-restore.yaml",
        1,
    );
    let r = s.rollout.as_ref().unwrap();
    // The gates did their part: the procedure expects the rollback.
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:#?}");
    let outcomes: Vec<LeverOutcome> = r.levers.iter().map(|l| l.outcome).collect();
    assert_eq!(
        outcomes,
        [LeverOutcome::NotRestored, LeverOutcome::Restored]
    );
    let detail = r.levers[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("`Flag off - the config endpoint no longer offers reranker-v2` failed"),
        "{detail}"
    );
    reason(&s, "lever 1 `Flag off` did not restore service");
    reason(&s, "lever 2 `Safe mode` did");
    // The report and the incident note show which lever restored service.
    let i = incident(r, &s, out.path());
    assert_eq!(i.restored, r.levers[1].end);
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        report.contains("Safe mode") && report.contains("incident.md"),
        "{report}"
    );
}

#[test]
fn an_analyzer_that_cannot_run_rolls_the_stage_back_at_its_error_limit() {
    let (s, _out) = drill_ranker(
        "examples/ranker/scenarios/sabotage/analyzer-cannot-run.yaml",
        1,
    );
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:#?}");
    // Every evaluation of the analyzer gate was an error, never a pass nor a failure.
    let judged: Vec<_> = r.stages[0]
        .evaluations
        .iter()
        .filter(|e| e.gate == ANALYZER_GATE)
        .collect();
    assert_eq!(judged.len(), 3, "{judged:#?}");
    assert!(
        judged
            .iter()
            .all(|e| e.outcome == GateOutcome::Error && e.canary.is_none()),
        "{judged:#?}"
    );
    assert!(judged[0].detail.contains("exited with 127"), "{judged:#?}");
    let failure = r.failure.as_deref().unwrap();
    assert!(
        failure.contains("3 evaluations in a row whose source could not be read"),
        "{failure}"
    );
    reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
}

#[test]
fn a_build_within_shadow_thresholds_is_stopped_where_they_tighten_and_the_kill_switch_shows_on_the_config_endpoint(
) {
    let (s, out) = drill_ranker(
        "examples/ranker/scenarios/sabotage/strategy-promotion-too-slow.yaml",
        1,
    );
    let r = s.rollout.as_ref().unwrap();
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:#?}");
    // Shadow's 100 ms let the 60 ms path through, on numbers it read...
    let shadow: Vec<f64> = r.stages[0]
        .evaluations
        .iter()
        .filter(|e| {
            e.gate == "shadow - sampled requests stay fast" && e.outcome == GateOutcome::Pass
        })
        .filter_map(|e| e.canary)
        .collect();
    assert!(
        shadow.len() >= 3 && shadow.iter().all(|v| *v > 50.0 && *v <= 100.0),
        "{shadow:?}"
    );
    // ...internal's 50 ms stopped it.
    assert_eq!(r.stages.len(), 2, "{r:#?}");
    let i = incident(r, &s, out.path());
    assert_eq!((i.stage, i.stage_name.as_str()), (2, "internal"));
    assert_eq!(i.trigger, "gate `internal - sampled requests stay fast`");
    assert!(i.value.unwrap() > 50.0 && i.limit == Some(50.0), "{i:#?}");
    // The kill switch took effect on the config endpoint.
    for name in [
        "Kill switch - turn the feature off now",
        "The config endpoint no longer offers reranker-v2",
    ] {
        assert_eq!(step(&s, name).status, StepStatus::Passed, "{name}");
    }
    assert!(i.restored.is_some(), "{i:#?}");
    reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
}
