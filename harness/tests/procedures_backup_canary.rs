//! Backup and restore, and the canary rollout, end to end with their sabotaged twins: the
//! real binary against real etcd clusters (behind HAProxy for the canary). Each verdict is
//! checked from the exit code and summary.json, and every run must leave nothing on the
//! Docker daemon (`drill` checks the objects labelled with its process id).

mod common;

use common::{drill, SERIAL};

fn reasons(s: &serde_json::Value) -> String {
    s["reasons"].to_string()
}

fn check<'a>(s: &'a serde_json::Value, starts_with: &str) -> &'a serde_json::Value {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(starts_with))
        .unwrap_or_else(|| panic!("no check `{starts_with}…` in {}", s["checks"]))
}

#[test]
fn backup_restore_passes_and_reports_its_timeline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/backup-restore.yaml", 21);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "pass", "{}", reasons(&s));
    let data = &s["data"];
    assert_eq!(data["lost"], 0, "{data}");
    assert!(data["acked"].as_u64().unwrap() > 500, "{data}");
    // The load wrote on after the backup: some of that is gone, and allowed.
    assert!(
        data["after_recovery_point"].as_u64().unwrap() > 0,
        "no write after the recovery point was counted: {data}"
    );
    let b = &s["backup"];
    assert!(
        b["backup_end"].as_u64() >= b["backup_start"].as_u64(),
        "{b}"
    );
    assert!(
        b["disaster_start"].as_u64() > b["backup_end"].as_u64(),
        "{b}"
    );
    let rto = b["rto_ms"].as_f64().expect("an RTO was measured");
    assert!(rto > 0.0 && rto <= 60_000.0, "{b}");
    assert!(b["rpo_ms"].as_f64().unwrap() > 1000.0, "{b}");
    assert_eq!(b["pass"], true);
    assert_eq!(check(&s, "restore time (RTO)")["pass"], true);
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("## Backup and restore"), "{report}");
}

#[test]
fn restoring_a_stale_snapshot_names_the_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/backup-restore-stale-snapshot.yaml", 22);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "fail");
    let data = &s["data"];
    assert!(data["lost"].as_u64().unwrap() > 0, "{data}");
    let example = data["lost_examples"][0].as_str().unwrap();
    assert!(
        example.contains("acknowledged before the backup began"),
        "{example}"
    );
    assert!(reasons(&s).contains("lost writes"), "{}", reasons(&s));
}

#[test]
fn a_healthy_canary_is_promoted_to_all_traffic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/canary-rollout.yaml", 23);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "pass", "{}", reasons(&s));
    let r = &s["rollout"];
    assert_eq!(r["outcome"], "promoted", "{r}");
    let stages = r["stages"].as_array().unwrap();
    let percents: Vec<f64> = stages
        .iter()
        .map(|x| x["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(percents, [1.0, 5.0, 10.0, 50.0, 100.0]);
    assert_eq!(
        (
            stages[0]["canary_weight"].as_u64(),
            stages[0]["baseline_weight"].as_u64()
        ),
        (Some(2), Some(99))
    );
    // The history tells canary from baseline: at 100 % the canary served (nearly) all.
    let last = stages.last().unwrap();
    assert!(last["observed_share"].as_f64().unwrap() > 0.95, "{last}");
    assert!(
        stages[1]["observed_share"].as_f64().unwrap() < 0.2,
        "{}",
        stages[1]
    );
    assert!(r["kill_switch"].is_null(), "no rollback ran: {r}");
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("stage 5 (100 %)"),
        "junit has a case per stage"
    );
}

#[test]
fn a_bad_canary_is_rolled_back_early_and_in_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/canary-rollout-bad.yaml", 24);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "pass", "{}", reasons(&s));
    let r = &s["rollout"];
    assert_eq!(r["outcome"], "rolled_back", "{r}");
    let stages = r["stages"].as_array().unwrap();
    assert!(stages.len() <= 2, "rolled back at stage {}", stages.len());
    let failure = r["failure"].as_str().unwrap();
    assert!(
        failure.contains("gate `canary error rate` (error_rate)") && failure.starts_with("stage "),
        "{failure}"
    );
    let k = &r["kill_switch"];
    assert_eq!(k["pass"], true, "{k}");
    assert!(k["time_to_effect_ms"].as_f64().unwrap() <= 60_000.0, "{k}");
    assert_eq!(k["canary_requests_in_recovery"], 0, "{k}");
    assert_eq!(check(&s, "kill switch takes effect")["pass"], true);
    let canary = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "etcd3")
        .unwrap();
    assert_eq!(canary["image_at_end"], "firedrill/etcd:3.4.23", "reverted");
}

#[test]
fn loose_gates_that_promote_a_bad_canary_fail_the_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/canary-gates-too-loose.yaml", 25);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["rollout"]["outcome"], "promoted");
    assert!(
        reasons(&s).contains("the rollout ended promoted, but the scenario expects rolled_back"),
        "{}",
        reasons(&s)
    );
}
