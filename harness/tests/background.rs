//! Steps that run alongside the procedure (`background`, `stop_background`, `stall`), a
//! `replace` that sets the node's command, optional captures and `when`: the real binary
//! against real etcd clusters, one at a time. Each run must leave nothing on the Docker
//! daemon (`drill` checks the objects labelled with its process id).

mod common;

use common::{drill, reason, step, END_STATE, SERIAL};
use firedrill::summary::{RolloutOutcome, StepStatus, Verdict};

/// The sabotaged twin: a canary that freezes 400 ms every second, in a procedure that expects
/// it promoted. The p95 latency gate must roll it back, so the run fails for that reason; a
/// gate blind to the stalls would promote it and the run would pass.
#[test]
fn a_stalling_canary_is_rolled_back_by_the_latency_gate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/canary-stalls.yaml", 31);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    let rollout = s.rollout.as_ref().expect("summary.json has the rollout");
    assert_eq!(
        rollout.outcome,
        Some(RolloutOutcome::RolledBack),
        "{rollout:#?}"
    );
    let why = rollout.failure.as_deref().unwrap_or_default();
    assert!(why.contains("gate `canary p95 latency`"), "{why}");
    let r = reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
    assert!(r.contains("canary p95 latency"), "{r}");
    // The rollout is the only thing that failed: the stall left no error and no node behind.
    assert_eq!(s.reasons.len(), 1, "{:#?}", s.reasons);
    // The rollback stopped the stalls; their record follows the stop step's.
    let stop = step(&s, "The bad build goes, and its stalls with it");
    assert_eq!(stop.status, StepStatus::Passed, "{stop:#?}");
    let stall = step(&s, "Freeze etcd3 400 ms every second");
    assert_eq!(stall.status, StepStatus::Passed, "{stall:#?}");
    assert!(
        stall.output.stdout.contains("etcd3 is running"),
        "{}",
        stall.output.stdout
    );
    let at = |name: &str| s.steps.iter().position(|x| x.name == name).unwrap();
    assert_eq!(
        at("Freeze etcd3 400 ms every second"),
        at("The bad build goes, and its stalls with it") + 1
    );
    for n in &s.nodes {
        assert!(n.running && n.healthy, "{n:#?}");
    }
}

/// A stall stopped by a step, and a flapping pause/unpause loop stopped by the end of the
/// procedure: both leave their node running and the run passes.
#[test]
fn backgrounds_stop_and_leave_every_node_running() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("harness/tests/fixtures/quick/background-stall.yaml", 32);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    assert!(
        s.checks.iter().any(|c| c.name == END_STATE && c.pass),
        "{:#?}",
        s.checks
    );
    for n in &s.nodes {
        assert!(n.running && n.healthy, "{n:#?}");
        assert_eq!(n.state, "running", "{n:#?}");
    }
    // The stall's record comes right after the step that stopped it, with what it did.
    let ids: Vec<&str> = s.steps.iter().map(|x| x.id.as_str()).collect();
    let stop = ids.iter().position(|i| *i == "4").unwrap();
    assert_eq!(ids[stop + 1], "1.1", "{ids:?}");
    let stall = &s.steps[stop + 1];
    assert_eq!(stall.status, StepStatus::Passed, "{stall:#?}");
    let said = &stall.output.stdout;
    assert!(said.starts_with("froze etcd3 "), "{said}");
    let freezes: u32 = said["froze etcd3 ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // 3.5 s of stalling at one freeze a second.
    assert!((3..=5).contains(&freezes), "{said}");
    assert!(
        stall.duration_ms >= 3000 && stall.duration_ms < 5000,
        "{stall:#?}"
    );
    // The flapping loop ran pass after pass until the procedure ended: its records come last,
    // numbered by pass, every pass complete (a stop never leaves etcd2 paused).
    let flap: Vec<_> = s.steps.iter().filter(|x| x.id.starts_with("2.")).collect();
    assert!(flap.len() >= 8, "{ids:?}");
    assert_eq!(flap.len() % 4, 0, "a pass was cut short: {ids:?}");
    assert!(ids[ids.len() - flap.len()..]
        .iter()
        .all(|i| i.starts_with("2.")));
    assert_eq!(flap[0].id, "2.1.1");
    assert_eq!(flap[4].id, "2.2.1");
    assert!(flap.iter().all(|x| x.status == StepStatus::Passed));
    assert_eq!(flap.last().unwrap().name, "Let it run");
    // Each background step has its transcript.
    for x in [stall, flap[0]] {
        assert!(out.path().join(&x.transcript).is_file(), "{}", x.transcript);
    }
}

/// etcd's disaster recovery with a new membership: the restored members get new names and a
/// new cluster token through `replace` with `entrypoint` and `command`.
#[test]
fn a_restore_starts_members_under_a_new_membership() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(
        "harness/tests/fixtures/quick/restore-new-membership.yaml",
        33,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let started = step(&s, "Start m2 with the new membership");
    assert!(
        started.action.contains("entrypoint `sh -c`")
            && started.action.contains("--name m2")
            && started
                .action
                .contains(&format!("--initial-cluster-token restored-{}", s.run_id)),
        "{}",
        started.action
    );
    let names = step(&s, "The members have their new names");
    for m in ["m1", "m2", "m3"] {
        assert!(
            names.output.stdout.contains(&format!("started, {m},")),
            "{}",
            names.output.stdout
        );
    }
    assert_eq!(
        step(&s, "The cluster is a new one").status,
        StepStatus::Passed
    );
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
}

/// An optional capture inside a loop over the members finds the one whose /metrics says it
/// leads; the step guarded by `when` runs for it alone, the others are skipped with the reason.
#[test]
fn an_optional_capture_and_when_find_the_leader() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("harness/tests/fixtures/quick/optional-capture.yaml", 34);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let noted: Vec<_> = s
        .steps
        .iter()
        .filter(|x| x.name.ends_with("as the leader"))
        .collect();
    assert_eq!(noted.len(), 3);
    let ran: Vec<_> = noted
        .iter()
        .filter(|x| x.status == StepStatus::Passed)
        .collect();
    assert_eq!(ran.len(), 1, "{noted:#?}");
    for x in noted.iter().filter(|x| x.status == StepStatus::Skipped) {
        assert_eq!(
            x.error.as_deref(),
            Some("when `${is_leader}`: it has no value"),
            "{x:#?}"
        );
    }
    // `when: { var: role, equals: follower }` ran for the two others.
    let followers: Vec<_> = s
        .steps
        .iter()
        .filter(|x| x.name.ends_with("is a follower") && x.status == StepStatus::Passed)
        .collect();
    assert_eq!(followers.len(), 2, "{:#?}", s.steps);
    assert_eq!(
        step(&s, "The member found is the leader etcd names").status,
        StepStatus::Passed
    );
}
