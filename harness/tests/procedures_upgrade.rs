//! The rolling upgrade and its sabotaged twins, end to end: the real binary against a real
//! etcd cluster in containers. Each verdict is checked from the exit code and summary.json,
//! and the run must leave nothing on the Docker daemon.

mod common;

use common::{drill, firedrill, repo, SERIAL};

#[test]
fn rolling_upgrade_passes_with_no_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/rolling-upgrade.yaml", 11);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "pass", "{:?}", s["reasons"]);
    assert_eq!(s["seed"], 11);
    assert!(
        s["data"]["acked"].as_u64().unwrap() > 1000,
        "too few acknowledged writes: {}",
        s["data"]
    );
    assert_eq!(s["data"]["lost"], 0);
    assert!(s["data"]["keys"].as_u64().unwrap() > 0);
    // Every member ended on the new version with its data.
    for n in s["nodes"].as_array().unwrap() {
        assert_eq!(n["image_at_start"], "firedrill/etcd:3.4.23");
        assert_eq!(n["image_at_end"], "firedrill/etcd:3.5.1");
    }
    let phases: Vec<&str> = s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["steady", "procedure", "recovery"]);
    for f in [
        "report.md",
        "junit.xml",
        "history.jsonl",
        "logs/etcd1.log",
        "logs/etcd3.log",
    ] {
        assert!(out.path().join(f).is_file(), "{f} is missing");
    }
    let history = std::fs::read_to_string(out.path().join("history.jsonl")).unwrap();
    assert_eq!(
        history.lines().count() as u64,
        s["load"]["ops"].as_u64().unwrap()
    );
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        report.contains("Snapshot saved"),
        "the transcript shows the real etcdctl output"
    );
    assert!(run.stdout.contains("verdict: PASS"));
}

#[test]
fn restoring_the_pre_upgrade_snapshot_is_caught_as_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/sabotage/upgrade-restores-snapshot.yaml", 12);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s["verdict"], "fail");
    assert!(s["data"]["lost"].as_u64().unwrap() > 0, "{}", s["data"]);
    let reasons = s["reasons"].to_string();
    assert!(reasons.contains("lost writes"), "{reasons}");
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "junit names the failure");
}

#[test]
fn upgrading_two_members_at_once_is_caught_as_an_slo_breach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/upgrade-stops-two-members.yaml", 13);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let procedure = &s["phases"][1];
    assert_eq!(procedure["phase"], "procedure");
    let unavailable = procedure["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "max_unavailable")
        .unwrap();
    assert_eq!(unavailable["pass"], false, "{procedure}");
    assert!(
        s["reasons"]
            .to_string()
            .contains("procedure phase: max_unavailable"),
        "{}",
        s["reasons"]
    );
    // Quorum came back: nothing acknowledged was lost, only availability failed.
    assert_eq!(s["data"]["lost"], 0);
}

#[test]
fn the_main_job_runs_every_scenario_of_a_directory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let list = firedrill(&["list", "scenarios"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("rolling-upgrade"));
    assert!(
        !list.stdout.contains("upgrade-stops-two-members"),
        "sabotaged twins stay out of the main job"
    );
    let validate = firedrill(&["validate", "scenarios", "scenarios/sabotage"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    assert!(repo().join("scenarios/sabotage").is_dir());
}
