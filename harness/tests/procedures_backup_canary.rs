//! Backup and restore, and the canary rollout, end to end with their sabotaged twins: the
//! real binary against real etcd clusters (behind HAProxy for the canary). Each verdict is
//! checked from the exit code and summary.json (read through its typed schema), and every
//! run must leave nothing on the Docker daemon (`drill` checks the objects labelled with its
//! process id).

mod common;

use common::{check, drill, node, reason, recount, SERIAL};
use firedrill::summary::{GateOutcome, RolloutOutcome, Verdict};

/// The canary runbooks' gate on HAProxy's connection errors, asked of Prometheus.
const PROMQL_GATE: &str = "HAProxy connects to the canary";

#[test]
fn backup_restore_passes_and_reports_its_timeline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/backup-restore.md", 21);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let data = &s.data;
    assert_eq!(data.lost, 0, "{data:?}");
    assert!(data.acked > 500, "{data:?}");
    // The load wrote on after the backup: some of that is gone, and allowed.
    assert!(
        data.after_recovery_point > 0,
        "no write after the recovery point was counted: {data:?}"
    );
    let b = s
        .backup
        .as_ref()
        .expect("summary.json has the backup timeline");
    assert!(
        b.backup_start > 0 && b.backup_end >= b.backup_start,
        "{b:?}"
    );
    assert!(b.disaster_start > b.backup_end, "{b:?}");
    assert!(b.disaster_end >= b.disaster_start, "{b:?}");
    let first_ok = b
        .first_ok_after
        .expect("an operation succeeded after the restore");
    assert!(first_ok > b.disaster_end, "{b:?}");
    let rto = b.rto_ms.expect("an RTO was measured");
    assert!(rto > 0.0 && rto <= 60_000.0, "{b:?}");
    assert_eq!(b.rto_limit_ms, Some(60_000.0), "{b:?}");
    assert!(b.rpo_ms.expect("an RPO was measured") > 1000.0, "{b:?}");
    assert!(b.writes_after_backup > 0, "{b:?}");
    assert!(b.pass, "{b:?}");
    let rto_check = check(&s, "restore time (RTO) within 60.0 s");
    assert!(rto_check.pass, "{rto_check:?}");
    // Backup mode has its own loss rule; the load and the phases recount as always.
    recount::load_and_phases(out.path(), &s);
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("## Backup and restore"), "{report}");
}

#[test]
fn restoring_a_stale_snapshot_names_the_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/backup-restore-stale-snapshot.yaml", 22);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    let data = &s.data;
    assert!(data.lost > 0, "{data:?}");
    assert!(!data.pass);
    let example = data.lost_examples.first().expect("a lost write is named");
    assert!(
        example.contains("acknowledged before the backup began"),
        "{example}"
    );
    reason(&s, "lost writes");
}

#[test]
fn a_healthy_canary_is_promoted_to_all_traffic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/canary-rollout.md", 23);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let r = s.rollout.as_ref().expect("summary.json has the rollout");
    assert_eq!(r.outcome, Some(RolloutOutcome::Promoted), "{r:?}");
    assert_eq!(r.expected, RolloutOutcome::Promoted);
    assert_eq!(r.canary, "etcd3");
    assert_eq!(r.baseline, ["etcd1", "etcd2"]);
    let percents: Vec<f64> = r.stages.iter().map(|x| x.percent).collect();
    assert_eq!(percents, [1.0, 5.0, 10.0, 50.0, 100.0]);
    assert_eq!(
        (r.stages[0].canary_weight, r.stages[0].baseline_weight),
        (2, 99)
    );
    // The history tells canary from baseline: at 100 % the canary served (nearly) all.
    let last = r.stages.last().unwrap();
    let share = |i: usize| {
        r.stages[i]
            .observed_share
            .unwrap_or_else(|| panic!("stage {} has no observed share: {:?}", i + 1, r.stages[i]))
    };
    assert!(share(r.stages.len() - 1) > 0.95, "{last:?}");
    assert!(share(1) < 0.2, "{:?}", r.stages[1]);
    assert!(r.kill_switch.is_none(), "no rollback ran: {r:?}");
    assert!(r.failure.is_none(), "{r:?}");
    // The PromQL gate was asked of Prometheus at every stage and had an answer each time.
    for stage in &r.stages {
        let asked: Vec<_> = stage
            .evaluations
            .iter()
            .filter(|e| e.gate == PROMQL_GATE)
            .collect();
        assert!(!asked.is_empty(), "stage {}: {stage:?}", stage.index);
        assert!(
            asked.iter().all(|e| e.outcome == GateOutcome::Pass
                && e.samples == 1
                && e.canary.is_some_and(|v| v <= 0.05)),
            "{asked:?}"
        );
    }
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("stage 5 (100 %)"),
        "junit has a case per stage"
    );
}

#[test]
fn a_bad_canary_is_rolled_back_early_and_in_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/canary-rollout-bad.md", 24);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let r = s.rollout.as_ref().expect("summary.json has the rollout");
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:?}");
    assert!(
        !r.stages.is_empty() && r.stages.len() <= 2,
        "rolled back at stage {}",
        r.stages.len()
    );
    let failure = r.failure.as_deref().expect("the rollback says why");
    assert!(
        failure.contains("gate `canary error rate` (error_rate)") && failure.starts_with("stage "),
        "{failure}"
    );
    let k = r.kill_switch.as_ref().expect("the kill switch ran");
    assert!(k.pass, "{k:?}");
    let effect = k.time_to_effect_ms.expect("the kill switch took effect");
    assert!(effect <= 60_000.0 && effect <= k.limit_ms, "{k:?}");
    assert_eq!(k.canary_requests_in_recovery, 0, "{k:?}");
    let ks_check = check(&s, "kill switch takes effect within 60 s");
    assert!(ks_check.pass, "{ks_check:?}");
    let canary = node(&s, "etcd3");
    assert_eq!(canary.image_at_end, "firedrill/etcd:3.4.23", "reverted");
    assert!(canary.running && canary.healthy, "{canary:?}");
}

#[test]
fn loose_gates_that_promote_a_bad_canary_fail_the_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/canary-gates-too-loose.yaml", 25);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = s.rollout.as_ref().expect("summary.json has the rollout");
    assert_eq!(r.outcome, Some(RolloutOutcome::Promoted), "{r:?}");
    assert_eq!(r.expected, RolloutOutcome::RolledBack, "{r:?}");
    reason(
        &s,
        "the rollout ended promoted, but the scenario expects rolled_back",
    );
}

#[test]
fn a_promql_gate_alone_rolls_back_a_canary_that_refuses_connections() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(
        "scenarios/sabotage/canary-caught-by-haproxy-metrics.yaml",
        26,
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = s.rollout.as_ref().expect("summary.json has the rollout");
    assert_eq!(r.outcome, Some(RolloutOutcome::RolledBack), "{r:?}");
    let failure = r.failure.as_deref().expect("the rollback says why");
    assert!(
        failure.contains(&format!("gate `{PROMQL_GATE}`"))
            && failure.contains("must be at most 0.05"),
        "{failure}"
    );
    // The gate failed on Prometheus's answer (a value over the bound), not for want of one.
    let failed: Vec<_> = r
        .stages
        .iter()
        .flat_map(|x| &x.evaluations)
        .filter(|e| e.outcome == GateOutcome::Fail)
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|e| e.canary.is_some_and(|v| v > 0.05)),
        "{failed:?}"
    );
    reason(
        &s,
        "the rollout ended rolled_back, but the scenario expects promoted",
    );
    let k = r.kill_switch.as_ref().expect("the kill switch ran");
    assert!(k.pass, "{k:?}");
    let canary = node(&s, "etcd3");
    assert_eq!(canary.image_at_end, "firedrill/etcd:3.4.23", "reverted");
}
