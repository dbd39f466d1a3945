//! The artifacts of one real run, read without the judge: the partition recovery's
//! `history.jsonl` and `final-state.jsonl` recount to the numbers of its summary.json (an
//! independent implementation, common/recount.rs), and summary.json's shape — every JSON path
//! with its type — is an insta snapshot, so a field renamed, removed, retyped or added shows
//! up in review.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;

use common::recount::{self, count_data, DataCount, RawOp};
use common::{drill, phase, Output, SERIAL};
use firedrill::history::Phase;
use firedrill::summary::{Summary, Verdict};

/// One run of the partition recovery, shared by the tests of this file.
fn run() -> &'static (Output, Summary, tempfile::TempDir) {
    static RUN: OnceLock<(Output, Summary, tempfile::TempDir)> = OnceLock::new();
    RUN.get_or_init(|| {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drill("scenarios/partition-recovery.md", 31)
    })
}

#[test]
fn the_history_and_the_final_state_recount_to_the_summary() {
    let (out, s, dir) = run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    recount::load_and_phases(dir.path(), s);
    let data = recount::data(dir.path(), s);
    // Not a recount of nothing: the load wrote, and the partition made the isolated leader's
    // clients fail during the procedure.
    assert!(data.acked > 1000 && data.keys > 500, "{data:?}");
    let procedure = phase(s, Phase::Procedure);
    assert!(procedure.errors > 0, "{procedure:#?}");
    assert!(s.load.fail + s.load.unknown > 0, "{:#?}", s.load);
}

/// Every reporter finished: each artifact writer its file, and the console the verdict
/// (last, so after the files).
#[test]
fn every_reporter_wrote_its_artifact_and_the_console_the_verdict() {
    let (out, s, dir) = run();
    for file in ["summary.json", "report.md", "report.html", "junit.xml"] {
        let len = std::fs::metadata(dir.path().join(file))
            .map(|m| m.len())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(len > 0, "{file} is empty");
    }
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let verdict = out
        .stdout
        .find("verdict: PASS")
        .unwrap_or_else(|| panic!("no verdict line:\n{}", out.stdout));
    let artifacts = format!("artifacts: {}", dir.path().display());
    assert!(
        out.stdout[verdict..].contains(&artifacts),
        "{artifacts} does not follow the verdict:\n{}",
        out.stdout
    );
}

fn op(id: u64, key: &str, value: &str, (t_call, t_return): (u64, u64), outcome: &str) -> RawOp {
    RawOp {
        id,
        node: "n1".into(),
        kind: "write".into(),
        key: key.into(),
        value: Some(value.into()),
        t_intended: t_call,
        t_call,
        t_return,
        outcome: outcome.into(),
        error: None,
    }
}

/// The recount itself can find every kind of damage, so agreeing with the summary means
/// something.
#[test]
fn the_recount_finds_lost_unexpected_and_recovered_writes() {
    let ops = vec![
        // "absent": two acknowledged writes, both gone.
        op(1, "absent", "a1", (0, 10), "ok"),
        op(2, "absent", "a2", (20, 30), "ok"),
        // "old": holds b1, but b2 began after b1 was acknowledged: b2 is lost; b3 overlapped
        // b1 and may be ordered before it.
        op(3, "old", "b1", (0, 10), "ok"),
        op(4, "old", "b3", (5, 15), "ok"),
        op(5, "old", "b2", (20, 30), "ok"),
        // "failed": holds the value of a failed write.
        op(6, "failed", "c1", (0, 10), "fail"),
        // "unknown": holds a timed-out write's value, after an acknowledged one.
        op(7, "unknown", "d1", (0, 10), "ok"),
        op(8, "unknown", "d2", (20, 30), "unknown"),
        // "fine": holds its last write.
        op(9, "fine", "e1", (0, 10), "ok"),
        op(10, "fine", "e2", (20, 30), "ok"),
    ];
    let finals: BTreeMap<String, Option<String>> = [
        ("absent", None),
        ("old", Some("b1")),
        ("failed", Some("c1")),
        ("unknown", Some("d2")),
        ("fine", Some("e2")),
        ("phantom", Some("nobody-wrote-this")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
    .collect();
    assert_eq!(
        count_data(&ops, &finals),
        DataCount {
            keys: 6,
            acked: 8,
            lost: 3,
            unexpected: 2,
            recovered: 1,
        }
    );
}

/// Every path of a JSON document with the types found there; array elements are merged under
/// `[]`. Values are left out, so nothing that varies from run to run is in it. Below the
/// `monitoring` block's own keys only their types are kept: which alerts a run saw, with
/// which labels and states, varies from run to run (its fields are read through the typed
/// summary by tests/monitoring.rs).
fn key_tree(v: &Value) -> String {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
        if path.starts_with(".monitoring.") {
            let kind = match v {
                Value::Array(_) => "array",
                Value::Object(_) => "object",
                _ => "value",
            };
            out.entry(path).or_default().insert(kind);
            return;
        }
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), out);
                }
                "array"
            }
            Value::Object(fields) => {
                for (k, x) in fields {
                    walk(x, format!("{path}.{k}"), out);
                }
                "object"
            }
        };
        out.entry(path).or_default().insert(kind);
    }
    let mut paths = BTreeMap::new();
    walk(v, String::new(), &mut paths);
    paths
        .into_iter()
        .map(|(path, kinds)| {
            let path = if path.is_empty() { ".".into() } else { path };
            let kinds: Vec<&str> = kinds.into_iter().collect();
            format!("{path}: {}\n", kinds.join(" | "))
        })
        .collect()
}

#[test]
fn summary_json_keeps_its_shape() {
    let (out, s, dir) = run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json is JSON");
    let typed = serde_json::to_value(s).expect("a Summary serializes");
    let shape = key_tree(&typed);
    // The file holds nothing the schema does not know, and the schema reads all of it.
    assert_eq!(
        key_tree(&raw),
        shape,
        "summary.json against the Summary type"
    );
    insta::assert_snapshot!("summary_json_shape", shape);
}
