//! The cluster's end state against the membership the run expects: every node started
//! during the run is running and healthy at the end, unless a step destroyed it or the
//! scenario declared it removed. Two of three members passing a health check is not a
//! healthy three-member cluster.

use firedrill_types::facts::ConvergeRun;
use firedrill_types::summary::{CheckResult, NodeRecord};

/// Log lines of a failed node shown in the verdict (the full log is in `logs/`).
const LOG_LINES_SHOWN: usize = 5;

pub fn membership_check(nodes: &[NodeRecord]) -> CheckResult {
    let expected: Vec<&NodeRecord> = nodes.iter().filter(|n| n.expected).collect();
    let bad: Vec<&&NodeRecord> = expected
        .iter()
        .filter(|n| !(n.running && n.healthy))
        .collect();
    let not_expected: Vec<String> = nodes
        .iter()
        .filter(|n| !n.expected)
        .map(|n| {
            format!(
                "{} ({})",
                n.name,
                n.not_expected_because.as_deref().unwrap_or("not expected")
            )
        })
        .collect();
    let mut detail = if bad.is_empty() {
        format!(
            "{} of {} expected nodes running and healthy: {}",
            expected.len(),
            expected.len(),
            names(&expected)
        )
    } else {
        let each: Vec<String> = bad.iter().map(|n| describe(n)).collect();
        format!(
            "{} of {} expected nodes running and healthy; {}",
            expected.len() - bad.len(),
            expected.len(),
            each.join("; ")
        )
    };
    if !not_expected.is_empty() {
        detail.push_str(&format!("; not judged: {}", not_expected.join(", ")));
    }
    CheckResult {
        name: "every expected node running and healthy at the end".into(),
        pass: bad.is_empty() && !expected.is_empty(),
        detail,
    }
}

/// A convergence check passes when every node it should cover answered, and all the same.
pub fn converge_check(c: &ConvergeRun) -> CheckResult {
    let mut distinct: Vec<&String> = c.answers.values().collect();
    distinct.sort();
    distinct.dedup();
    let agreed = distinct.len() == 1 && !distinct[0].starts_with('(');
    let answers = c
        .answers
        .iter()
        .map(|(n, a)| format!("{n}: {a}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut detail = if agreed {
        format!("all {} covered nodes agree: {answers}", c.answers.len())
    } else if c.answers.is_empty() {
        "no node could be asked".to_string()
    } else {
        format!("answers differ after {} ms: {answers}", c.timeout_ms)
    };
    if !c.skipped.is_empty() {
        let skipped = c
            .skipped
            .iter()
            .map(|(n, why)| format!("{n} ({why})"))
            .collect::<Vec<_>>()
            .join(", ");
        detail.push_str(&format!(
            "; not covered, so convergence is not shown: {skipped}"
        ));
    }
    CheckResult {
        name: c.name.clone(),
        pass: agreed && c.skipped.is_empty(),
        detail,
    }
}

fn names(nodes: &[&NodeRecord]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(n: &NodeRecord) -> String {
    let mut text = if n.running {
        format!(
            "{} is running but not healthy ({})",
            n.name, n.health_detail
        )
    } else {
        match n.exit_code {
            Some(code) => format!("{} is {} (exit code {code})", n.name, n.state),
            None => format!("{} is {}", n.name, n.state),
        }
    };
    let tail: Vec<&str> = n
        .log_tail
        .iter()
        .rev()
        .take(LOG_LINES_SHOWN)
        .rev()
        .map(String::as_str)
        .collect();
    if !tail.is_empty() {
        text.push_str(&format!(", its log ends: {}", tail.join(" ⏎ ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn node(name: &str, expected: bool, running: bool, healthy: bool) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            expected,
            running,
            healthy,
            state: if running { "running" } else { "exited" }.into(),
            exit_code: (!running).then_some(1),
            log_tail: if running {
                vec![]
            } else {
                vec!["member 8e9e05c52164694d has already been bootstrapped".into()]
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_dead_expected_member_fails_with_its_exit_code_and_log() {
        let c = membership_check(&[
            node("n1", true, true, true),
            node("n2", true, true, true),
            node("n3", true, false, false),
        ]);
        assert!(!c.pass);
        assert!(
            c.detail.starts_with("2 of 3 expected nodes"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("n3 is exited (exit code 1)"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("already been bootstrapped"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_destroyed_node_is_not_judged_but_named() {
        let mut gone = node("n3", false, false, false);
        gone.not_expected_because = Some("destroyed by step 2".into());
        let c = membership_check(&[
            node("n1", true, true, true),
            node("n2", true, true, true),
            gone,
        ]);
        assert!(c.pass, "{}", c.detail);
        assert!(
            c.detail.contains("not judged: n3 (destroyed by step 2)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_running_but_unhealthy_node_fails() {
        let mut sick = node("n2", true, true, false);
        sick.health_detail = "exit 1: unhealthy".into();
        let c = membership_check(&[node("n1", true, true, true), sick]);
        assert!(!c.pass);
        assert!(
            c.detail
                .contains("n2 is running but not healthy (exit 1: unhealthy)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn agreement_over_a_subset_is_not_convergence() {
        let run = ConvergeRun {
            name: "hash".into(),
            answers: BTreeMap::from([("n1".into(), "7".into()), ("n2".into(), "7".into())]),
            skipped: BTreeMap::from([("n3".into(), "not running (exited)".into())]),
            timeout_ms: 1000,
        };
        let c = converge_check(&run);
        assert!(!c.pass);
        assert!(
            c.detail
                .contains("not covered, so convergence is not shown: n3"),
            "{}",
            c.detail
        );
        let whole = ConvergeRun {
            skipped: BTreeMap::new(),
            ..run
        };
        assert!(converge_check(&whole).pass);
    }

    #[test]
    fn differing_or_failed_answers_fail() {
        let run = ConvergeRun {
            name: "hash".into(),
            answers: BTreeMap::from([("n1".into(), "7".into()), ("n2".into(), "8".into())]),
            skipped: BTreeMap::new(),
            timeout_ms: 1000,
        };
        assert!(!converge_check(&run).pass);
        let errors = ConvergeRun {
            answers: BTreeMap::from([
                ("n1".into(), "(exit 1)".into()),
                ("n2".into(), "(exit 1)".into()),
            ]),
            ..run
        };
        assert!(!converge_check(&errors).pass);
    }
}
