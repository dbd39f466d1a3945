//! Application rollouts: the ranker example under examples/ranker/, a small web service with
//! feature flags, a JSONL decision log and an analyzer script, rolled out by configuration
//! stages (flag, restart, hold), gated by the analyzer's numbers, with a kill switch whose
//! time to effect the decision log shows. The first run builds the example's image from
//! Debian packages; later runs find it on the Docker engine.

mod common;

use common::{drill, reason, step, SERIAL};
use firedrill::summary::{GateOutcome, RolloutOutcome, StepStatus, Verdict};

const RUNBOOK: &str = "examples/ranker/runbooks/sample-rate-rollout.md";
const ANALYZER_GATE: &str = "sampled requests do not fail";
const EFFECT_STEP: &str = "New requests are no longer sampled";

#[test]
fn a_healthy_new_path_is_promoted_stage_by_stage_after_each_hold() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(RUNBOOK, 7);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("examples/ranker/scenarios/sabotage/new-path-errors.yaml", 7);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
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
}

#[test]
fn a_kill_switch_that_is_never_applied_fails_its_time_to_effect() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(
        "examples/ranker/scenarios/sabotage/kill-switch-without-restart.yaml",
        7,
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(
        "examples/ranker/scenarios/sabotage/smoke-pack-row-fails.yaml",
        7,
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
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
