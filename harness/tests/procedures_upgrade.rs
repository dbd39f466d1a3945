//! The rolling upgrade and its sabotaged twins, end to end: the real binary against a real
//! etcd cluster in containers. Each verdict is checked from the exit code and summary.json
//! (read through its typed schema), and the run must leave nothing on the Docker daemon.

mod common;

use common::{check, drill, firedrill, phase, reason, recount, repo, slo, END_STATE, SERIAL};
use firedrill::history::Phase;
use firedrill::summary::Verdict;

#[test]
fn rolling_upgrade_passes_with_no_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/rolling-upgrade.md", 11);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    assert!(s.reasons.is_empty(), "{:#?}", s.reasons);
    assert_eq!(s.seed, 11);
    assert!(
        s.data.acked > 1000,
        "too few acknowledged writes: {:?}",
        s.data
    );
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    assert!(s.data.keys > 0, "{:?}", s.data);
    assert!(s.data.pass);
    // Every member ended on the new version with its data, running and healthy.
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["etcd1", "etcd2", "etcd3"]);
    for n in &s.nodes {
        assert_eq!(n.image_at_start, "firedrill/etcd:3.4.23", "{n:?}");
        assert_eq!(n.image_at_end, "firedrill/etcd:3.5.1", "{n:?}");
        assert!(n.expected && n.running && n.healthy, "{n:?}");
    }
    assert!(check(&s, END_STATE).pass, "{:?}", check(&s, END_STATE));
    let phases: Vec<Phase> = s.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, Phase::ALL);
    for f in [
        "report.md",
        "junit.xml",
        "history.jsonl",
        "final-state.jsonl",
        "logs/etcd1.log",
        "logs/etcd3.log",
    ] {
        assert!(out.path().join(f).is_file(), "{f} is missing");
    }
    recount::load_and_phases(out.path(), &s);
    recount::data(out.path(), &s);
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        report.contains("Snapshot saved"),
        "the transcript shows the real etcdctl output"
    );
    assert!(run.stdout.contains("verdict: PASS"));
    // The runbook's own expected outputs were checked, and its Rollback section did not run.
    let health = common::step(&s, "Check that every member is healthy");
    assert!(health.output.stdout.contains("etcd2:2379 is healthy"));
    assert!(
        !s.steps.iter().any(|r| r.id.starts_with('R')),
        "{:?}",
        s.steps
    );
    // report.md is the page: its sections, with the loop's steps under its block.
    assert!(report.contains("## When to use"), "{report}");
    assert!(report.contains("✅ **Step 5 passed**"), "{report}");
    assert!(
        report.contains("| 5.3.4 Verify etcd3 serves linearizable reads | ✅ passed |"),
        "{report}"
    );
}

#[test]
fn restoring_the_pre_upgrade_snapshot_is_caught_as_lost_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/sabotage/upgrade-restores-snapshot.yaml", 12);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    assert!(
        s.data.lost > 0,
        "{:?}\nreasons: {:#?}\nsteps: {:#?}",
        s.data,
        s.reasons,
        s.steps
    );
    assert!(!s.data.pass);
    assert!(!s.data.lost_examples.is_empty(), "{:?}", s.data);
    reason(&s, "lost writes");
    // The loss is in the artifacts, not only in the judge's word: recounted independently.
    let recounted = recount::data(out.path(), &s);
    assert!(recounted.lost > 0, "{recounted:?}");
    recount::load_and_phases(out.path(), &s);
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "junit names the failure");
}

#[test]
fn upgrading_two_members_at_once_is_caught_as_an_slo_breach() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/upgrade-stops-two-members.yaml", 13);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    let procedure = phase(&s, Phase::Procedure);
    let unavailable = slo(procedure, "max_unavailable");
    assert!(!unavailable.pass, "{procedure:#?}");
    assert!(unavailable.observed > unavailable.limit, "{unavailable:?}");
    reason(&s, "procedure phase: max_unavailable");
    // Quorum came back: nothing acknowledged was lost, only availability failed.
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    assert!(s.data.acked > 0, "{:?}", s.data);
}

/// The scenario names `firedrill list` prints: the first word of each unindented line.
fn listed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// The YAML files directly in a directory, relative to the repository root.
fn yaml_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "md"))
        .map(|p| format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// `list` shows the main job's scenarios and keeps the sabotaged twins out of it; `validate`
/// accepts every file of both directories. Nothing is run.
#[test]
fn list_shows_the_main_job_without_its_twins_and_every_scenario_validates() {
    let list = firedrill(&["list", "scenarios"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let main = listed(&list.stdout);
    // One entry per file of scenarios/, and nothing from scenarios/sabotage/.
    assert_eq!(main.len(), yaml_files("scenarios").len(), "{}", list.stdout);
    for name in [
        "rolling-upgrade",
        "partition-recovery",
        "node-replacement",
        "backup-restore",
        "canary-rollout",
        "canary-rollout-bad",
        "cluster-expansion",
    ] {
        assert!(
            main.iter().any(|n| n == name),
            "{name} is missing: {main:?}"
        );
    }
    let twins = firedrill(&["list", "scenarios/sabotage"]);
    assert_eq!(twins.code, 0, "{}", twins.stderr);
    let twins = listed(&twins.stdout);
    assert_eq!(
        twins.len(),
        yaml_files("scenarios/sabotage").len(),
        "{twins:?}"
    );
    for name in [
        "upgrade-stops-two-members",
        "member-rejoins-with-empty-disk",
        "member-never-restarted",
    ] {
        assert!(
            twins.iter().any(|n| n == name),
            "{name} is missing: {twins:?}"
        );
    }
    for twin in &twins {
        assert!(
            !main.contains(twin),
            "the sabotaged twin {twin} is in the main job: {main:?}"
        );
    }

    let validate = firedrill(&["validate", "scenarios", "scenarios/sabotage"]);
    assert_eq!(validate.code, 0, "{}\n{}", validate.stdout, validate.stderr);
    for file in yaml_files("scenarios")
        .into_iter()
        .chain(yaml_files("scenarios/sabotage"))
    {
        assert!(
            validate.stdout.contains(&format!("{file}: ok (")),
            "{file} was not validated:\n{}",
            validate.stdout
        );
    }
}
