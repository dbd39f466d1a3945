//! Monitoring in the drill, end to end against a real Prometheus beside a real etcd
//! cluster: the alert response runbook (an alert that must go pending, fire after its
//! production `for: 1m`, and resolve after the fix, with quiet phases around it), and its
//! sabotaged twins, each failing for its own reason: a rules file that misspells the
//! metric (the alert never fires; rule hygiene names the metric), and a cluster that
//! starts with a member down (the steady phase is not quiet). Bad monitoring input at run
//! time exits 2 (an alert no rule defines) or 3 (no Prometheus where the scenario says).

mod common;

use std::collections::BTreeMap;

use common::{check, drill, firedrill_pid, leftovers_of, reason, slo, step, SERIAL};
use firedrill::summary::{StepStatus, Verdict};
use firedrill_types::monitoring::{AlertEpisode, AlertObservation};

#[test]
fn the_alert_response_runbook_pages_resolves_and_stays_quiet() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/monitoring-alert-response.md", 3);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    let m = s.monitoring.as_ref().expect("a monitoring block");
    assert_eq!(m.poll_errors, 0);
    let scraped = slo(&s.phases[0], "every member is scraped");
    assert!(scraped.pass && scraped.observed == 3.0, "{scraped:?}");

    // The page came for the member cut off, after the rule's real minute.
    let found = &step(&s, "Find the leader and its followers").output.stdout;
    let leader = &regex::Regex::new(r"leader=(etcd\d)")
        .unwrap()
        .captures(found)
        .unwrap()[1];
    let e = &m.expectations[0];
    assert!(e.pass, "{e:?}");
    assert_eq!(
        e.labels,
        BTreeMap::from([("instance".to_string(), format!("{leader}:2379"))])
    );
    let pending = e.pending_after_ms.unwrap();
    let fired = e.fired_after_ms.unwrap();
    assert!(pending < 15_000.0, "{e:?}");
    // Each time is the poll that saw the change, late by up to one poll (500 ms).
    assert!(
        fired - pending >= 59_500.0,
        "fired before its `for: 1m`: {e:?}"
    );
    assert!(e.resolved_after_ms.unwrap() <= 15_000.0, "{e:?}");
    let page = step(&s, "Wait for the page");
    assert!(
        page.output
            .stdout
            .contains(&format!("instance=\"{leader}:2379\"")),
        "{page:?}"
    );
    assert_eq!(
        step(&s, "Check the member the alert names").status,
        StepStatus::Passed
    );

    // Quiet before and after; hygiene passed over the whole run.
    assert_eq!(m.quiet.len(), 2, "{:?}", m.quiet);
    assert!(m.quiet.iter().all(|q| q.pass), "{:?}", m.quiet);
    let hygiene = m.hygiene.as_ref().unwrap();
    assert!(hygiene.pass && hygiene.rules >= 8, "{hygiene:?}");
    assert!(check(&s, "every metric the rules select is exposed").pass);

    // alerts.jsonl is the record the episodes are folded from.
    let lines: Vec<AlertObservation> = std::fs::read_to_string(out.path().join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(firedrill_judge::monitoring::episodes(&lines), m.episodes);
    let no_leader: Vec<_> = m
        .episodes
        .iter()
        .filter(|x| x.alert == "etcdNoLeader")
        .collect();
    // It paged for the member cut off, once, and resolved. A follower may go pending for the
    // second of the election right after the cut, and resolve without firing.
    let (fired, brief): (Vec<&AlertEpisode>, Vec<&AlertEpisode>) =
        no_leader.iter().partition(|x| x.firing_at.is_some());
    assert_eq!(fired.len(), 1, "{no_leader:?}");
    assert_eq!(
        fired[0].labels["instance"],
        format!("{leader}:2379"),
        "{fired:?}"
    );
    assert!(fired[0].resolved_at.is_some(), "{fired:?}");
    assert!(
        brief.iter().all(|x| x.resolved_at.is_some()),
        "only the member cut off stays without a leader: {brief:?}"
    );

    // The panels were archived, and show the member without a leader.
    assert_eq!(m.panels.len(), 3, "{:?}", m.panels);
    for p in &m.panels {
        assert!(p.error.is_none() && p.series > 0, "{p:?}");
    }
    let leaders: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join(&m.panels[0].file)).unwrap())
            .unwrap();
    let values: Vec<f64> = leaders["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert!(values.contains(&2.0) && values.contains(&3.0), "{values:?}");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("etcdNoLeader"), "{report}");
}

#[test]
fn a_misspelt_alert_rule_never_fires_and_rule_hygiene_names_the_metric() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/alert-rule-misspelt.yaml", 5);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    let m = s.monitoring.as_ref().unwrap();
    let e = &m.expectations[0];
    assert!(!e.pass, "{e:?}");
    assert!(e.detail.contains("never went pending"), "{e:?}");
    let hygiene = m.hygiene.as_ref().unwrap();
    assert_eq!(hygiene.absent.len(), 1, "{hygiene:?}");
    assert_eq!(
        (
            hygiene.absent[0].rule.as_str(),
            hygiene.absent[0].metric.as_str()
        ),
        ("etcdNoLeader", "etcd_server_has_leadr")
    );
    reason(&s, "rule etcdNoLeader selects `etcd_server_has_leadr`");
    // Everything else about the drill was fine: the steps and the data.
    assert!(s.steps.iter().all(|r| r.status == StepStatus::Passed));
    assert_eq!(s.data.lost, 0);
}

#[test]
fn a_drill_that_starts_with_a_member_down_is_not_quiet() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/drill-starts-with-a-member-down.yaml", 6);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let m = s.monitoring.as_ref().unwrap();
    let steady = &m.quiet[0];
    assert!(!steady.pass, "{steady:?}");
    assert!(
        steady
            .noisy
            .iter()
            .any(|n| n.starts_with("etcdMembersDown")),
        "{steady:?}"
    );
    let why = reason(&s, "no alert in the steady phase");
    assert!(why.contains("etcdMembersDown"), "{why}");
    // Prometheus's own count says it too: two members of three answer their scrape.
    let scraped = slo(&s.phases[0], "every member is scraped");
    assert!(!scraped.pass && scraped.observed == 2.0, "{scraped:?}");
    reason(&s, "SLO breached in the steady phase: every member is scraped: `sum(up{job=\"etcd\"})` at least 3; worst of");
    // The procedure itself passed: only the monitoring saw the cluster was not whole.
    assert!(s.steps.iter().all(|r| r.status == StepStatus::Passed));
}

/// A run refused at the start, once the cluster is up: the exit code, the message, and
/// nothing left behind.
fn refused_at_start(scenario: &str, code: i32) -> String {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (run, pid) = firedrill_pid(&["run", scenario, "--out", dir], &[]);
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(leftovers_of(pid), "", "{scenario} left objects behind");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

#[test]
fn an_unknown_alert_a_missing_prometheus_and_rejected_rules_are_refused_at_the_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stderr = refused_at_start("harness/tests/fixtures/monitoring/unknown-alert.yaml", 2);
    assert!(
        stderr.contains("unknown-alert.yaml:10:14: alert `etcdNoLeadr` is defined by no rule"),
        "{stderr}"
    );
    assert!(
        stderr.contains("etcdNoLeader"),
        "it lists the rules there are: {stderr}"
    );

    let stderr = refused_at_start("harness/tests/fixtures/monitoring/not-prometheus.yaml", 3);
    assert!(
        stderr.contains("Prometheus (service `etcd1`, http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("is not ready after 5s"), "{stderr}");

    // A rules file Prometheus cannot parse: it exits, and its own words are the message.
    let stderr = refused_at_start("harness/tests/fixtures/monitoring/rules-rejected.yaml", 2);
    assert!(
        stderr.contains("Prometheus (service `prometheus`) rejected its configuration or rules:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/etc/prometheus/rules/etcd.rules.yml") && stderr.contains("etcdNoLeader"),
        "Prometheus names the file and the rule: {stderr}"
    );
}
