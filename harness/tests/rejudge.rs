//! `firedrill check` re-judges archived histories offline: crafted histories that must fail
//! and pass, the checked-in report examples, and a history that is not one.

mod common;

use common::firedrill;

fn op(id: u64, kind: &str, value: Option<&str>, call: u64, ret: u64, outcome: &str) -> String {
    let value = value
        .map(|v| format!(r#","value":"{v}""#))
        .unwrap_or_default();
    format!(
        r#"{{"id":{id},"client":{id},"node":"n1","kind":"{kind}","key":"k"{value},"t_intended":{call},"t_call":{call},"t_return":{ret},"outcome":"{outcome}"}}"#
    )
}

fn check_lines(lines: &[String]) -> common::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    firedrill(&["check", file.to_str().unwrap()])
}

#[test]
fn new_old_new_reads_fail_although_no_single_read_is_stale() {
    // Two concurrent writes; A cannot come back after B replaced it.
    let out = check_lines(&[
        op(1, "write", Some("A"), 0, 100, "ok"),
        op(2, "write", Some("B"), 0, 100, "ok"),
        op(3, "read", Some("A"), 10, 11, "ok"),
        op(4, "read", Some("B"), 20, 21, "ok"),
        op(5, "read", Some("A"), 30, 31, "ok"),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("linearizable: false"), "{}", out.stdout);
    assert!(
        out.stdout.contains("0 stale"),
        "the pattern check alone passes it: {}",
        out.stdout
    );
}

#[test]
fn concurrent_writes_read_in_either_order_pass() {
    let out = check_lines(&[
        op(1, "write", Some("A"), 0, 100, "ok"),
        op(2, "write", Some("B"), 0, 100, "ok"),
        op(3, "read", Some("B"), 10, 11, "ok"),
        op(4, "read", Some("A"), 20, 21, "ok"),
        op(5, "write", Some("C"), 150, 160, "unknown"),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("linearizable: true"), "{}", out.stdout);
}

#[test]
fn the_checked_in_examples_rejudge_to_their_verdict() {
    for example in [
        "reports/examples/partition-recovery",
        "reports/examples/canary-rollout",
    ] {
        let out = firedrill(&["check", example]);
        assert_eq!(out.code, 0, "{example}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("linearizable: true"), "{}", out.stdout);
        assert!(out.stdout.contains(" 0 unknown"), "{}", out.stdout);
    }
}

#[test]
fn a_line_that_is_no_operation_is_invalid_input_with_its_line() {
    let out = check_lines(&[
        op(1, "write", Some("A"), 0, 1, "ok"),
        "{\"id\": 2}".to_string(),
    ]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("history.jsonl:2:"), "{}", out.stderr);
}
