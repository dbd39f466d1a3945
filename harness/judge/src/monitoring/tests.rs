use std::time::Duration;

use super::*;
use firedrill_spec::monitoring::StepRef;
use firedrill_types::history::Phase;
use firedrill_types::monitoring::QuerySamples;
use firedrill_types::summary::{StepOutput, StepStatus};

const S: Micros = 1_000_000;
const POLL: Micros = 500_000;

fn obs(at: Micros, alert: &str, instance: &str, state: AlertState) -> AlertObservation {
    AlertObservation {
        at,
        alert: alert.into(),
        labels: BTreeMap::from([("instance".to_string(), instance.to_string())]),
        state,
    }
}

fn step(id: &str, name: &str, started: Micros) -> StepRecord {
    StepRecord {
        id: id.into(),
        name: name.into(),
        prose: String::new(),
        action: String::new(),
        status: StepStatus::Passed,
        started,
        duration_ms: 100,
        attempts: 1,
        output: StepOutput::default(),
        error: None,
        transcript: String::new(),
    }
}

fn at(id: &str, name: &str) -> StepRef {
    StepRef {
        id: id.into(),
        name: name.into(),
    }
}

/// No leader: pending 4 s after the cut (at 10 s), firing 60 s later, resolved 1 s after
/// the heal (at 80 s).
fn no_leader() -> Vec<AlertObservation> {
    use AlertState::*;
    vec![
        obs(14 * S, "NoLeader", "n1", Pending),
        obs(74 * S, "NoLeader", "n1", Firing),
        obs(81 * S, "NoLeader", "n1", Inactive),
    ]
}

fn steps() -> Vec<StepRecord> {
    vec![step("1", "cut", 10 * S), step("2", "heal", 80 * S)]
}

fn expect(fires: u64, resolves: u64) -> AlertExpectation {
    AlertExpectation {
        alert: "NoLeader".into(),
        labels: BTreeMap::new(),
        after: at("1", "cut"),
        pending_within: Some(Duration::from_secs(10)),
        fires_within: Some(Duration::from_secs(fires)),
        resolve: Some((at("2", "heal"), Duration::from_secs(resolves))),
    }
}

fn judged(
    e: &AlertExpectation,
    obs: &[AlertObservation],
    labels: &[(&str, &str)],
) -> AlertExpectationResult {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expectation(e, labels, &episodes(obs), &steps())
}

#[test]
fn an_alert_that_fires_and_resolves_in_time_passes_with_its_times() {
    let r = judged(&expect(90, 30), &no_leader(), &[("instance", "n1")]);
    assert!(r.pass, "{r:?}");
    assert_eq!(r.pending_after_ms, Some(4000.0));
    assert_eq!(r.fired_after_ms, Some(64000.0));
    assert_eq!(r.resolved_after_ms, Some(1000.0));
    assert_eq!(
        describe(&r),
        "NoLeader{instance=\"n1\"} is pending within 10.0 s and fires within 90.0 s of `cut`, resolves within 30.0 s of `heal`"
    );
}

#[test]
fn late_firing_late_resolution_and_other_labels_fail() {
    let r = judged(&expect(60, 30), &no_leader(), &[]);
    assert!(!r.pass);
    assert!(r.detail.contains("it fired 4.0 s late"), "{}", r.detail);

    let r = judged(&expect(90, 0), &no_leader(), &[]);
    assert!(!r.pass);
    assert!(r.detail.contains("it resolved 1.0 s late"), "{}", r.detail);

    // The alert fired for another member than the one cut off.
    let r = judged(&expect(90, 30), &no_leader(), &[("instance", "n2")]);
    assert!(!r.pass);
    assert!(r.detail.contains("never fired"), "{}", r.detail);
}

#[test]
fn an_alert_that_never_fires_fails_and_says_whether_it_went_pending() {
    use AlertState::*;
    let pending_only = [
        obs(14 * S, "NoLeader", "n1", Pending),
        obs(81 * S, "NoLeader", "n1", Inactive),
    ];
    let r = judged(&expect(90, 30), &pending_only, &[]);
    assert!(!r.pass);
    assert!(
        r.detail.contains(
            "never fired after `cut` began (it went pending 4.0 s after it, and never fired)"
        ),
        "{}",
        r.detail
    );
    let r = judged(&expect(90, 30), &[], &[]);
    assert!(!r.pass);
    assert!(r.detail.contains("never went pending"), "{}", r.detail);
    assert!(
        r.detail.contains("was not active after `cut` began"),
        "{}",
        r.detail
    );
}

#[test]
fn an_alert_still_firing_or_firing_again_after_the_fix_fails() {
    use AlertState::*;
    let mut still = no_leader();
    still.pop();
    let r = judged(&expect(90, 30), &still, &[]);
    assert!(!r.pass);
    assert!(
        r.detail
            .contains("still firing when the run stopped watching"),
        "{}",
        r.detail
    );

    let mut again = no_leader();
    again.push(obs(85 * S, "NoLeader", "n1", Pending));
    again.push(obs(86 * S, "NoLeader", "n1", Inactive));
    let r = judged(&expect(90, 30), &again, &[]);
    assert!(!r.pass);
    assert!(
        r.detail.contains("became active again 5.0 s after `heal`"),
        "{}",
        r.detail
    );
}

#[test]
fn a_fixing_step_that_was_skipped_resolves_nothing() {
    let mut steps = steps();
    steps[1].status = StepStatus::Skipped;
    let r = expectation(
        &expect(90, 30),
        BTreeMap::new(),
        &episodes(&no_leader()),
        &steps,
    );
    assert!(!r.pass);
    assert!(
        r.detail
            .contains("step `heal` did not run, so no resolution counts from it"),
        "{}",
        r.detail
    );
}

#[test]
fn an_alert_active_before_the_fault_is_said_so() {
    use AlertState::*;
    let early = [
        obs(5 * S, "NoLeader", "n1", Pending),
        obs(65 * S, "NoLeader", "n1", Firing),
        obs(81 * S, "NoLeader", "n1", Inactive),
    ];
    let r = judged(&expect(90, 30), &early, &[]);
    assert!(
        r.detail.contains("already active when `cut` began"),
        "{}",
        r.detail
    );
    assert_eq!(r.pending_after_ms, Some(0.0));
}

#[test]
fn a_quiet_phase_fails_on_any_alert_active_in_it_unless_ignored() {
    use AlertState::*;
    let e = episodes(&[
        obs(2 * S, "MembersDown", "n3", Pending),
        obs(3 * S, "MembersDown", "n3", Inactive),
        obs(20 * S, "NoLeader", "n1", Pending),
    ]);
    let steady = PhaseWindow {
        phase: Phase::Steady,
        start: 0,
        end: 5 * S,
    };
    let q = quiet(&steady, &[], &e, POLL);
    assert!(!q.pass);
    assert_eq!(
        q.noisy,
        ["MembersDown{instance=\"n3\"} was pending from 2.0 s into the phase"]
    );
    assert!(quiet(&steady, &["MembersDown".into()], &e, POLL).pass);
    let recovery = PhaseWindow {
        phase: Phase::Recovery,
        start: 30 * S,
        end: 40 * S,
    };
    let q = quiet(&recovery, &[], &e, POLL);
    assert_eq!(
        q.noisy,
        ["NoLeader{instance=\"n1\"} was pending since before the phase began"]
    );
    // Seen inactive by the first poll of the phase: the last poll that saw it active was
    // before the phase began.
    let after = |start| PhaseWindow {
        phase: Phase::Recovery,
        start,
        end: 10 * S,
    };
    assert!(quiet(&after(3 * S - POLL / 2), &[], &e[..1], POLL).pass);
    // Seen inactive two polls into the phase: a poll in the phase saw it active.
    assert!(!quiet(&after(3 * S - 2 * POLL), &[], &e[..1], POLL).pass);
}

#[test]
fn a_rule_selecting_a_metric_no_target_exposes_is_named() {
    let rules = vec![
        RuleMetrics {
            rule: "NoLeader".into(),
            kind: "alerting".into(),
            metrics: vec!["server_has_ledaer".into()],
        },
        RuleMetrics {
            rule: "job:up:sum".into(),
            kind: "recording".into(),
            metrics: vec!["up".into()],
        },
        RuleMetrics {
            rule: "Down".into(),
            kind: "alerting".into(),
            metrics: vec!["job:up:sum".into(), "ALERTS".into(), "up".into()],
        },
    ];
    let exposed = BTreeSet::from(["up".to_string(), "server_has_leader".to_string()]);
    let h = hygiene(&rules, &exposed, &[]);
    assert!(!h.pass);
    assert_eq!(
        h.absent,
        [AbsentMetric {
            rule: "NoLeader".into(),
            metric: "server_has_ledaer".into()
        }]
    );
    assert!(hygiene(&rules[1..], &exposed, &[]).pass);
    // Let be absent by the scenario, with its reason in a comment there.
    assert!(hygiene(&rules, &exposed, &["server_has_ledaer".into()]).pass);
}

fn slo_plan() -> MonitoringPlan {
    use firedrill_spec::monitoring::PromqlSlo;
    use firedrill_spec::promql::Bound;
    let slo = |phase, name: &str, bound| PromqlSlo {
        phase,
        name: name.into(),
        query: format!("q_{}", name.replace(' ', "_")),
        bound,
        settle: Duration::ZERO,
        file: format!("metrics/slo-{}.json", name.replace(' ', "-")),
    };
    MonitoringPlan {
        node: "prometheus".into(),
        port: 9090,
        poll: Duration::from_millis(500),
        rule_hygiene: false,
        absent_ok: Vec::new(),
        alerts: Vec::new(),
        dashboards: Vec::new(),
        quiet: BTreeMap::new(),
        slos: vec![
            slo(Phase::Steady, "every member up", Bound::Min(3.0)),
            slo(Phase::Recovery, "no failed proposals", Bound::Max(0.0)),
            slo(Phase::Recovery, "nothing", Bound::Max(0.0)),
            slo(Phase::Recovery, "unanswered", Bound::Max(0.0)),
        ],
        named: Vec::new(),
    }
}

fn samples(plan: &MonitoringPlan, answers: Vec<Result<Vec<f64>, String>>) -> MonitoringFacts {
    MonitoringFacts {
        slo_samples: plan
            .slos
            .iter()
            .zip(answers)
            .map(|(s, answer)| QuerySamples {
                phase: s.phase,
                name: s.name.clone(),
                file: s.file.clone(),
                answer,
            })
            .collect(),
        ..MonitoringFacts::default()
    }
}

#[test]
fn a_query_slo_holds_on_every_sample_of_its_phase_and_no_sample_is_no_pass() {
    let mut plan = slo_plan();
    plan.slos[1].settle = Duration::from_secs(2);
    let facts = samples(
        &plan,
        vec![
            Ok(vec![3.0, 3.0, 2.0, 3.0]),
            Ok(vec![0.0, 0.0]),
            Ok(vec![]),
            Err("connection refused".into()),
        ],
    );
    let steady = query_slos(&plan, &facts, Phase::Steady);
    assert_eq!(steady.len(), 1);
    let up = &steady[0];
    assert_eq!(
        (up.name.as_str(), up.observed, up.limit, up.pass),
        ("every member up", 2.0, 3.0, false),
        "{up:?}"
    );
    let detail = up.detail.as_deref().unwrap();
    assert!(
        detail.contains("at least 3") && detail.contains("worst of 4 samples: 2"),
        "{detail}"
    );
    assert!(
        detail.contains("metrics/slo-every-member-up.json"),
        "{detail}"
    );

    let recovery = query_slos(&plan, &facts, Phase::Recovery);
    let pass: Vec<(&str, bool)> = recovery.iter().map(|s| (s.name.as_str(), s.pass)).collect();
    assert_eq!(
        pass,
        [
            ("no failed proposals", true),
            ("nothing", false),
            ("unanswered", false)
        ]
    );
    let settled = recovery[0].detail.as_deref().unwrap();
    assert!(
        settled.contains("at most 0 from 2s into the phase"),
        "{settled}"
    );
    assert!(recovery[1]
        .detail
        .as_deref()
        .unwrap()
        .contains("no sample in the phase"));
    assert!(recovery[2]
        .detail
        .as_deref()
        .unwrap()
        .contains("connection refused"));
    assert!(query_slos(&plan, &facts, Phase::Procedure).is_empty());

    // Samples never fetched (the run was cut short) judge every SLO a failure.
    let none = query_slos(&plan, &MonitoringFacts::default(), Phase::Recovery);
    assert_eq!(none.len(), 3);
    assert!(none.iter().all(|s| !s.pass), "{none:?}");
}
