//! A recount of a run's numbers from its artifacts alone, written independently of the judge:
//! `history.jsonl` and `final-state.jsonl` are read as plain JSON (not through firedrill's
//! types), and every count is recomputed here from the rules docs/scenario-format.md and
//! harness/judge/src/check.rs document, then compared with summary.json.
//!
//! - load: every line of the history is one operation, counted by kind and outcome;
//! - phases: an operation belongs to the phase in which it was due, `t_intended` in
//!   `[start, end)`; its errors are the operations that did not end `ok`;
//! - data (not in backup mode): `keys` are the lines of the final state; `acked` the `ok`
//!   writes; for each key read back, absent: each of its acked writes is lost; holding a value
//!   no write of the key produced, or one of a failed write: unexpected; holding an unknown
//!   write's value: recovered; holding acked write W's value: each acked write of the key
//!   invoked after W was acknowledged is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use firedrill::summary::Summary;

/// One line of `history.jsonl`, as plain values.
#[derive(Debug, Clone)]
pub struct RawOp {
    pub id: u64,
    pub node: String,
    pub kind: String,
    pub key: String,
    pub value: Option<String>,
    pub t_intended: u64,
    pub t_call: u64,
    pub t_return: u64,
    pub outcome: String,
    pub error: Option<String>,
}

impl RawOp {
    /// The documented rule: answered = `ok`, or a cas that failed with no error (its
    /// compare failed).
    pub fn answered(&self) -> bool {
        self.outcome == "ok"
            || (self.kind == "cas" && self.outcome == "fail" && self.error.is_none())
    }
}

fn field<'a>(line: &'a Value, name: &str, n: usize) -> &'a Value {
    line.get(name)
        .unwrap_or_else(|| panic!("history.jsonl line {n} has no `{name}`: {line}"))
}

fn int(line: &Value, name: &str, n: usize) -> u64 {
    field(line, name, n)
        .as_u64()
        .unwrap_or_else(|| panic!("history.jsonl line {n}: `{name}` is not a count: {line}"))
}

fn text(line: &Value, name: &str, n: usize) -> String {
    field(line, name, n)
        .as_str()
        .unwrap_or_else(|| panic!("history.jsonl line {n}: `{name}` is not a string: {line}"))
        .to_string()
}

/// Every operation of the run, in file order.
pub fn history(dir: &Path) -> Vec<RawOp> {
    let text_of = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    text_of
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let n = i + 1;
            let line: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("history.jsonl line {n} is not JSON ({e}): {l}"));
            let op = RawOp {
                id: int(&line, "id", n),
                node: text(&line, "node", n),
                kind: text(&line, "kind", n),
                key: text(&line, "key", n),
                value: line.get("value").map(|v| {
                    v.as_str()
                        .unwrap_or_else(|| {
                            panic!("history.jsonl line {n}: `value` is not a string")
                        })
                        .to_string()
                }),
                t_intended: int(&line, "t_intended", n),
                t_call: int(&line, "t_call", n),
                t_return: int(&line, "t_return", n),
                outcome: text(&line, "outcome", n),
                error: line.get("error").map(|e| {
                    e.as_str()
                        .unwrap_or_else(|| {
                            panic!("history.jsonl line {n}: `error` is not a string")
                        })
                        .to_string()
                }),
            };
            assert!(
                ["read", "write", "cas"].contains(&op.kind.as_str()),
                "history.jsonl line {n}: kind {:?}",
                op.kind
            );
            assert!(
                ["ok", "fail", "unknown"].contains(&op.outcome.as_str()),
                "history.jsonl line {n}: outcome {:?}",
                op.outcome
            );
            assert!(
                op.t_call <= op.t_return,
                "history.jsonl line {n}: returned before it was sent: {l}"
            );
            op
        })
        .collect()
}

/// `final-state.jsonl`: each key read back and its value (`None`: absent).
pub fn final_state(dir: &Path) -> BTreeMap<String, Option<String>> {
    let text_of =
        std::fs::read_to_string(dir.join("final-state.jsonl")).expect("final-state.jsonl");
    let mut finals = BTreeMap::new();
    for (i, l) in text_of.lines().enumerate() {
        let n = i + 1;
        let line: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("final-state.jsonl line {n} is not JSON ({e}): {l}"));
        let key = line["key"]
            .as_str()
            .unwrap_or_else(|| panic!("final-state.jsonl line {n}: no key: {l}"))
            .to_string();
        let value = match &line["value"] {
            Value::Null => None,
            Value::String(v) => Some(v.clone()),
            other => panic!("final-state.jsonl line {n}: value {other}"),
        };
        assert!(
            line["read_at"].is_u64() && line["node"].is_string(),
            "final-state.jsonl line {n}: read_at and node: {l}"
        );
        assert!(
            finals.insert(key.clone(), value).is_none(),
            "final-state.jsonl reads {key} twice"
        );
    }
    finals
}

/// `summary.load` and each phase's counts, recounted from `history.jsonl`.
pub fn load_and_phases(dir: &Path, s: &Summary) {
    let ops = history(dir);
    let count = |f: &dyn Fn(&RawOp) -> bool| ops.iter().filter(|o| f(o)).count() as u64;
    let l = &s.load;
    let recounted = (
        ops.len() as u64,
        count(&|o| o.kind == "read"),
        count(&|o| o.kind == "write"),
        count(&|o| o.kind == "cas"),
        count(&|o| o.outcome == "ok"),
        count(&|o| o.outcome == "fail"),
        count(&|o| o.outcome == "unknown"),
        count(&|o| o.kind == "cas" && o.outcome == "fail" && o.error.is_none()),
    );
    assert_eq!(
        (
            l.ops,
            l.reads,
            l.writes,
            l.cas,
            l.ok,
            l.fail,
            l.unknown,
            l.cas_compare_failed
        ),
        recounted,
        "summary.load (ops, reads, writes, cas, ok, fail, unknown, cas_compare_failed) against history.jsonl"
    );
    let ids: BTreeSet<u64> = ops.iter().map(|o| o.id).collect();
    assert_eq!(
        ids.len(),
        ops.len(),
        "operation ids repeat in history.jsonl"
    );
    let behind = ops
        .iter()
        .map(|o| o.t_call.saturating_sub(o.t_intended))
        .max()
        .unwrap_or(0) as f64
        / 1000.0;
    assert!(
        (l.max_behind_schedule_ms - behind).abs() < 0.001,
        "max_behind_schedule_ms {} against {behind}",
        l.max_behind_schedule_ms
    );

    let names: Vec<&str> = s.phases.iter().map(|p| p.phase.name()).collect();
    assert_eq!(names, ["steady", "procedure", "recovery"]);
    for pair in s.phases.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "phases follow each other");
    }
    let span = s.phases[2].end - s.phases[0].start;
    let per_s = ops.len() as f64 / (span as f64 / 1e6);
    assert!(
        (l.ops_per_s - per_s).abs() < 1e-6 * per_s.max(1.0),
        "ops_per_s {} against {per_s}",
        l.ops_per_s
    );
    for p in &s.phases {
        let inside: Vec<&RawOp> = ops
            .iter()
            .filter(|o| o.t_intended >= p.start && o.t_intended < p.end)
            .collect();
        let ok = inside.iter().filter(|o| o.answered()).count() as u64;
        let total = inside.len() as u64;
        assert_eq!(
            (p.ops, p.ok, p.errors),
            (total, ok, total - ok),
            "{} phase (ops, ok, errors) against history.jsonl in [{}, {})",
            p.phase.name(),
            p.start,
            p.end
        );
        let rate = if total == 0 {
            0.0
        } else {
            (total - ok) as f64 / total as f64
        };
        assert!(
            (p.error_rate - rate).abs() < 1e-9,
            "{} phase error rate",
            p.phase.name()
        );
    }
}

/// What the data check should have found, counted here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DataCount {
    pub keys: u64,
    pub acked: u64,
    pub lost: u64,
    pub unexpected: u64,
    pub recovered: u64,
}

pub fn count_data(ops: &[RawOp], finals: &BTreeMap<String, Option<String>>) -> DataCount {
    // A cas writes its new value; one whose compare failed is a failed write.
    let writes: Vec<&RawOp> = ops
        .iter()
        .filter(|o| o.kind == "write" || o.kind == "cas")
        .collect();
    let mut c = DataCount {
        keys: finals.len() as u64,
        acked: writes.iter().filter(|w| w.outcome == "ok").count() as u64,
        ..DataCount::default()
    };
    for (key, value) in finals {
        let acked: Vec<&&RawOp> = writes
            .iter()
            .filter(|w| &w.key == key && w.outcome == "ok")
            .collect();
        let Some(value) = value else {
            c.lost += acked.len() as u64;
            continue;
        };
        let producers: Vec<&&RawOp> = writes
            .iter()
            .filter(|w| &w.key == key && w.value.as_ref() == Some(value))
            .collect();
        assert!(
            producers.len() <= 1,
            "key {key}: value {value:?} was written {} times; write values are unique",
            producers.len()
        );
        match producers.first().map(|w| (w.outcome.as_str(), w.t_return)) {
            None | Some(("fail", _)) => c.unexpected += 1,
            Some(("unknown", _)) => c.recovered += 1,
            Some((_, acknowledged)) => {
                c.lost += acked.iter().filter(|w2| w2.t_call > acknowledged).count() as u64;
            }
        }
    }
    c
}

/// `summary.data`, recounted from `history.jsonl` and `final-state.jsonl` (not for a backup
/// and restore, whose loss rule is another).
pub fn data(dir: &Path, s: &Summary) -> DataCount {
    assert!(
        s.backup.is_none(),
        "the backup-mode data check has its own rule"
    );
    let ops = history(dir);
    let finals = final_state(dir);
    // The read-back reads every key the load wrote to, and only those.
    let written: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.kind != "read")
        .map(|o| o.key.as_str())
        .collect();
    let read_back: BTreeSet<&str> = finals.keys().map(String::as_str).collect();
    assert_eq!(
        read_back, written,
        "the keys read back are the keys written"
    );
    let c = count_data(&ops, &finals);
    let d = &s.data;
    assert_eq!(
        DataCount {
            keys: d.keys,
            acked: d.acked,
            lost: d.lost,
            unexpected: d.unexpected,
            recovered: d.recovered,
        },
        c,
        "summary.data against history.jsonl and final-state.jsonl"
    );
    assert_eq!((d.after_recovery_point, d.indeterminate), (0, 0));
    assert_eq!(d.lost_examples.len() as u64, d.lost.min(5));
    assert_eq!(d.unexpected_examples.len() as u64, d.unexpected.min(5));
    assert_eq!(d.pass, c.lost == 0 && c.unexpected == 0);
    c
}
