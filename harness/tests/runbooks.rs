//! Markdown runbooks run as written against a real cluster: the page's own commands and
//! expected outputs, a twin whose documented output drifted, `--bless` on an unchanged
//! cluster, and `--rollback-at` on a step that does not exist.

mod common;

use common::{check, drill, firedrill, reason, step, SERIAL};
use firedrill::summary::{StepStatus, Verdict};

const RUNBOOK: &str = "examples/runbooks/etcd-rolling-upgrade.md";

#[test]
fn the_runbook_passes_with_its_expected_outputs_checked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(RUNBOOK, 5);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:?}", s.reasons);
    let health = step(&s, "Check that every member is healthy");
    assert_eq!(health.status, StepStatus::Passed);
    assert!(health.output.stdout.contains("etcd2:2379 is healthy"));
    assert!(check(&s, "every expected node running and healthy at the end").pass);
    // The Rollback section did not run: nothing failed.
    assert!(
        !s.steps.iter().any(|r| r.id.starts_with('R')),
        "{:?}",
        s.steps
    );
}

#[test]
fn a_drifted_expected_output_fails_the_step_with_the_diff_and_the_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("examples/runbooks/sabotage/output-drifted.md", 5);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let why = reason(&s, "step 1 `Check that every member is healthy` failed");
    assert!(
        why.contains("examples/runbooks/sabotage/output-drifted.md:64"),
        "{why}"
    );
    assert!(why.contains("-[..]etcd2:2379 is alive"), "{why}");
    assert!(why.contains("+http://etcd2:2379 is healthy"), "{why}");
    // The procedure stopped there, and the page's Rollback section ran.
    assert_eq!(
        step(&s, "Check the running versions").status,
        StepStatus::Skipped
    );
    assert!(
        s.steps.iter().any(|r| r.id.starts_with("R1")),
        "{:?}",
        s.steps
    );
}

#[test]
fn blessing_an_unchanged_cluster_changes_only_the_results_region() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A copy beside the original, so the relative compose and profile paths still hold.
    let copy = common::repo().join("examples/runbooks/.bless-test.md");
    std::fs::copy(common::repo().join(RUNBOOK), &copy).unwrap();
    let before = std::fs::read_to_string(&copy).unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let run = firedrill(&[
        "run",
        copy.to_str().unwrap(),
        "--seed",
        "6",
        "--bless",
        "--out",
        &out,
    ]);
    let after = std::fs::read_to_string(&copy).unwrap();
    std::fs::remove_file(&copy).unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("blessed"), "{}", run.stdout);
    let outside = |page: &str| {
        let start = page.find("<!-- firedrill:results -->").unwrap();
        let end = page.find("<!-- /firedrill:results -->").unwrap();
        format!("{}{}", &page[..start], &page[end..])
    };
    assert_eq!(
        outside(&before),
        outside(&after),
        "only the results region may change"
    );
    assert!(after.contains("**Last drill: PASS**"), "{after}");
    assert!(after.contains("seed 6"), "{after}");
}

#[test]
fn rollback_at_a_step_that_does_not_exist_is_invalid_input() {
    let out = firedrill(&["run", RUNBOOK, "--rollback-at", "99"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("--rollback-at 99: no step 99"),
        "{}",
        out.stderr
    );
    let yaml = firedrill(&[
        "run",
        "scenarios/rolling-upgrade.yaml",
        "--rollback-at",
        "1",
    ]);
    assert_eq!(yaml.code, 2, "{}", yaml.stderr);
    assert!(
        yaml.stderr.contains("not a Markdown runbook"),
        "{}",
        yaml.stderr
    );
}
