//! What the monitoring saw, judged: alert episodes from the observations, each alert
//! expectation against the step it counts from, the quiet phases, and rule hygiene.
//!
//! Every alert time is the run clock of the poll that saw the change, so it is late by
//! up to one poll interval (`monitoring.poll`); the bounds a scenario gives are compared
//! with these times as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use firedrill_spec::monitoring::{AlertExpectation, MonitoringPlan};
use firedrill_types::history::{Micros, Phase, PhaseWindow};
use firedrill_types::monitoring::{
    AbsentMetric, AlertEpisode, AlertExpectationResult, AlertObservation, AlertState,
    HygieneResult, MonitoringFacts, MonitoringResult, QuietResult, RuleMetrics,
};
use firedrill_types::summary::{CheckResult, SloResult, StepRecord, StepStatus, Unit};

/// Each query SLO of `phase`, judged on its samples: the worst one against the bound. No
/// sample is no pass (as `min_ops`): a query that selects nothing proves nothing.
pub fn query_slos(plan: &MonitoringPlan, facts: &MonitoringFacts, phase: Phase) -> Vec<SloResult> {
    plan.slos
        .iter()
        .enumerate()
        .filter(|(_, slo)| slo.phase == phase)
        .map(|(i, slo)| {
            let mut asked = format!("`{}` {}", slo.query, slo.bound.describe());
            if !slo.settle.is_zero() {
                asked.push_str(&format!(" from {:?} into the phase", slo.settle));
            }
            // A run cut short before the samples were fetched has none: not a pass.
            let not_fetched = Err("the samples were not fetched".to_string());
            let answer = facts.slo_samples.get(i).map_or(&not_fetched, |s| &s.answer);
            let (observed, pass, seen) = match answer {
                Err(e) => (0.0, false, format!("Prometheus did not answer: {e}")),
                Ok(values) => match slo.bound.worst(values.iter().copied()) {
                    None => (0.0, false, "no sample in the phase".to_string()),
                    Some(w) => (
                        // NaN (0/0) has no JSON form; it fails the bound either way.
                        if w.is_finite() { w } else { 0.0 },
                        slo.bound.holds(w),
                        format!("worst of {} samples: {w}", values.len()),
                    ),
                },
            };
            SloResult {
                name: slo.name.clone(),
                limit: slo.bound.limit(),
                observed,
                unit: Unit::Value,
                pass,
                detail: Some(format!("{asked}; {seen} ({})", slo.file)),
            }
        })
        .collect()
}

/// Series Prometheus writes itself: a rule may select them though no target exposes them.
const SYNTHETIC: [&str; 2] = ["ALERTS", "ALERTS_FOR_STATE"];

pub fn judge(
    plan: &MonitoringPlan,
    facts: &MonitoringFacts,
    steps: &[StepRecord],
    phases: &[PhaseWindow],
) -> MonitoringResult {
    let episodes = episodes(&facts.observations);
    let expectations = plan
        .alerts
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let labels = facts.expected_labels.get(i).cloned().unwrap_or_default();
            expectation(e, labels, &episodes, steps)
        })
        .collect();
    let poll = plan.poll.as_micros() as Micros;
    let quiet = phases
        .iter()
        .filter_map(|w| {
            let ignored = plan.quiet.get(&w.phase)?;
            Some(quiet(w, ignored, &episodes, poll))
        })
        .collect();
    MonitoringResult {
        prometheus: facts.prometheus.clone(),
        polls: facts.polls,
        poll_errors: facts.poll_errors,
        episodes,
        expectations,
        quiet,
        hygiene: facts
            .hygiene
            .as_ref()
            .map(|(rules, exposed)| hygiene(rules, exposed, &plan.absent_ok)),
        panels: facts.panels.clone(),
    }
}

/// The verdict's checks: one per expectation and quiet phase, and rule hygiene.
pub fn checks(m: &MonitoringResult, facts: &MonitoringFacts) -> Vec<CheckResult> {
    let mut checks = Vec::new();
    if facts.poll_errors > 0 {
        // An alert is judged from the polls: a gap in them could hide one.
        checks.push(CheckResult {
            name: "the alerts were watched for the whole run".into(),
            pass: false,
            detail: format!(
                "{} of {} polls of {} got no answer (first: {})",
                facts.poll_errors,
                facts.polls,
                m.prometheus,
                facts.first_poll_error.as_deref().unwrap_or("no detail")
            ),
        });
    }
    if let Some(h) = &m.hygiene {
        let detail = match h.absent.is_empty() {
            true => format!(
                "the {} rules select only metrics the targets expose ({} names exposed)",
                h.rules, h.exposed
            ),
            false => {
                let absent: Vec<String> = h
                    .absent
                    .iter()
                    .map(|a| format!("rule {} selects `{}`", a.rule, a.metric))
                    .collect();
                format!(
                    "{}: no scraped target exposes it, so the rule can never see the condition it is for",
                    absent.join("; ")
                )
            }
        };
        checks.push(CheckResult {
            name: "every metric the rules select is exposed".into(),
            pass: h.pass,
            detail,
        });
    }
    for e in &m.expectations {
        checks.push(CheckResult {
            name: format!("alert {}", describe(e)),
            pass: e.pass,
            detail: e.detail.clone(),
        });
    }
    for q in &m.quiet {
        let ignoring = match q.ignored.is_empty() {
            true => String::new(),
            false => format!(" (ignoring {})", q.ignored.join(", ")),
        };
        checks.push(CheckResult {
            name: format!("no alert in the {} phase", q.phase.name()),
            pass: q.pass,
            detail: match q.pass {
                true => format!("no alert was pending or firing{ignoring}"),
                false => format!("{}{ignoring}", q.noisy.join("; ")),
            },
        });
    }
    checks
}

/// The expectation in words: `NoLeader{instance="n1:2379"} fires within 90s after
/// "Cut the leader off"`.
pub fn describe(e: &AlertExpectationResult) -> String {
    let mut bounds = Vec::new();
    if let Some(ms) = e.pending_within_ms {
        bounds.push(format!("is pending within {}", secs(ms as f64)));
    }
    if let Some(ms) = e.fires_within_ms {
        bounds.push(format!("fires within {}", secs(ms as f64)));
    }
    let mut text = format!("{}", Named(&e.alert, &e.labels));
    if !bounds.is_empty() {
        text.push_str(&format!(" {} of `{}`", bounds.join(" and "), e.after));
    }
    if let (Some(step), Some(ms)) = (&e.resolve_after, e.resolves_within_ms) {
        if !bounds.is_empty() {
            text.push(',');
        }
        text.push_str(&format!(" resolves within {} of `{step}`", secs(ms as f64)));
    }
    text
}

struct Named<'a>(&'a str, &'a BTreeMap<String, String>);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        if !self.1.is_empty() {
            let labels: Vec<String> = self.1.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

/// Folds the observations into one episode per activation of an alert.
pub fn episodes(observations: &[AlertObservation]) -> Vec<AlertEpisode> {
    let mut done = Vec::new();
    let mut open: BTreeMap<(String, BTreeMap<String, String>), AlertEpisode> = BTreeMap::new();
    for o in observations {
        let id = (o.alert.clone(), o.labels.clone());
        match o.state {
            AlertState::Inactive => {
                if let Some(mut e) = open.remove(&id) {
                    e.resolved_at = Some(o.at);
                    done.push(e);
                }
            }
            state => {
                let e = open.entry(id).or_insert_with(|| AlertEpisode {
                    alert: o.alert.clone(),
                    labels: o.labels.clone(),
                    pending_at: None,
                    firing_at: None,
                    resolved_at: None,
                });
                match state {
                    AlertState::Pending => {
                        e.pending_at.get_or_insert(o.at);
                    }
                    _ => {
                        e.firing_at.get_or_insert(o.at);
                    }
                }
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|e| (e.active_at(), e.alert.clone()));
    done
}

fn matches(e: &AlertEpisode, alert: &str, labels: &BTreeMap<String, String>) -> bool {
    e.alert == alert && labels.iter().all(|(k, v)| e.labels.get(k) == Some(v))
}

/// When the step began, if it ran.
fn step_start(steps: &[StepRecord], id: &str) -> Option<Micros> {
    steps
        .iter()
        .find(|s| s.id == id && s.status != StepStatus::Skipped)
        .map(|s| s.started)
}

fn ms(from: Micros, to: Micros) -> f64 {
    to.saturating_sub(from) as f64 / 1000.0
}

fn expectation(
    e: &AlertExpectation,
    labels: BTreeMap<String, String>,
    episodes: &[AlertEpisode],
    steps: &[StepRecord],
) -> AlertExpectationResult {
    let mut r = AlertExpectationResult {
        alert: e.alert.clone(),
        labels,
        after: e.after.name.clone(),
        pending_within_ms: e.pending_within.map(|d| d.as_millis() as u64),
        pending_after_ms: None,
        fires_within_ms: e.fires_within.map(|d| d.as_millis() as u64),
        fired_after_ms: None,
        resolve_after: e.resolve.as_ref().map(|(s, _)| s.name.clone()),
        resolves_within_ms: e.resolve.as_ref().map(|(_, d)| d.as_millis() as u64),
        resolved_after_ms: None,
        pass: false,
        detail: String::new(),
    };
    let name = Named(&e.alert, &r.labels).to_string();
    let Some(from) = step_start(steps, &e.after.id) else {
        r.detail = format!(
            "step `{}` did not run, so nothing counts from it",
            e.after.name
        );
        return r;
    };
    // The episodes active at or after the step's start, oldest first.
    let after: Vec<&AlertEpisode> = episodes
        .iter()
        .filter(|x| matches(x, &e.alert, &r.labels))
        .filter(|x| x.resolved_at.is_none_or(|t| t >= from))
        .collect();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    if after.first().is_some_and(|x| x.active_at() < from) {
        seen.push(format!(
            "{name} was already active when `{}` began",
            e.after.name
        ));
    }
    let first_active = after.first().map(|x| x.active_at().max(from));
    if let Some(bound) = e.pending_within {
        match first_active {
            Some(t) => {
                let took = ms(from, t);
                r.pending_after_ms = Some(took);
                let timing = Timing {
                    took,
                    bound,
                    step: &e.after.name,
                };
                timing.record(("active", "went pending"), &mut seen, &mut failures);
            }
            None => failures.push(format!(
                "{name} never went pending after `{}` began",
                e.after.name
            )),
        }
    }
    let first_firing = after.iter().find_map(|x| x.firing_at).map(|t| t.max(from));
    if let Some(bound) = e.fires_within {
        match first_firing {
            Some(t) => {
                let took = ms(from, t);
                r.fired_after_ms = Some(took);
                let timing = Timing {
                    took,
                    bound,
                    step: &e.after.name,
                };
                timing.record(("firing", "fired"), &mut seen, &mut failures);
            }
            None => {
                let pending = match first_active {
                    Some(t) => format!(
                        " (it went pending {} after it, and never fired)",
                        secs(ms(from, t))
                    ),
                    None => " (it never went pending either)".into(),
                };
                failures.push(format!(
                    "{name} never fired after `{}` began{pending}",
                    e.after.name
                ))
            }
        }
    }
    if let Some((step, bound)) = &e.resolve {
        match step_start(steps, &step.id) {
            None => failures.push(format!(
                "step `{}` did not run, so no resolution counts from it",
                step.name
            )),
            Some(fix) => {
                let active_at_fix: Vec<&&AlertEpisode> =
                    after.iter().filter(|x| x.overlaps(fix, fix + 1)).collect();
                let again: Vec<&&AlertEpisode> =
                    after.iter().filter(|x| x.active_at() > fix).collect();
                if active_at_fix.is_empty() {
                    match after.iter().filter_map(|x| x.resolved_at).filter(|t| *t <= fix).max() {
                        Some(t) => {
                            r.resolved_after_ms = Some(0.0);
                            seen.push(format!(
                                "it had resolved {} before `{}` began",
                                secs(ms(t, fix)),
                                step.name
                            ))
                        }
                        None => failures.push(format!(
                            "{name} was not active after `{}` began, so it cannot resolve after `{}`",
                            e.after.name, step.name
                        )),
                    }
                } else if let Some(unresolved) =
                    active_at_fix.iter().find(|x| x.resolved_at.is_none())
                {
                    failures.push(format!(
                        "{} was still {} when the run stopped watching",
                        Named(&unresolved.alert, &unresolved.labels),
                        if unresolved.firing_at.is_some() {
                            "firing"
                        } else {
                            "pending"
                        }
                    ));
                } else {
                    let t = active_at_fix
                        .iter()
                        .filter_map(|x| x.resolved_at)
                        .max()
                        .unwrap_or(fix);
                    let took = ms(fix, t);
                    r.resolved_after_ms = Some(took);
                    let timing = Timing {
                        took,
                        bound: *bound,
                        step: &step.name,
                    };
                    timing.record(("resolved", "resolved"), &mut seen, &mut failures);
                }
                if let Some(x) = again.first() {
                    failures.push(format!(
                        "{} became active again {} after `{}` began",
                        Named(&x.alert, &x.labels),
                        secs(ms(fix, x.active_at())),
                        step.name
                    ));
                }
            }
        }
    }
    r.pass = failures.is_empty();
    r.detail = seen
        .into_iter()
        .chain(failures)
        .collect::<Vec<_>>()
        .join("; ");
    r
}

/// An alert counts in a phase when a poll during the phase saw it active: the one that
/// saw it inactive comes a poll after the last that saw it active, so an alert resolved
/// just as the phase began (a step waited for exactly that) is not noise of the phase.
/// How long an alert took to reach a state after a step began, against its bound.
struct Timing<'a> {
    took: f64,
    bound: Duration,
    step: &'a str,
}

impl Timing<'_> {
    /// Says what was seen (`state`), and fails when it came late (`verb`: "fired").
    fn record(
        &self,
        (state, verb): (&str, &str),
        seen: &mut Vec<String>,
        failures: &mut Vec<String>,
    ) {
        seen.push(format!(
            "{state} {} after `{}` began",
            secs(self.took),
            self.step
        ));
        let limit = self.bound.as_millis() as f64;
        if self.took > limit {
            failures.push(format!("it {verb} {} late", secs(self.took - limit)));
        }
    }
}

fn quiet(
    w: &PhaseWindow,
    ignored: &[String],
    episodes: &[AlertEpisode],
    poll: Micros,
) -> QuietResult {
    let noisy: Vec<String> = episodes
        .iter()
        .filter(|e| !ignored.contains(&e.alert))
        .filter(|e| {
            e.active_at() < w.end
                && e.resolved_at
                    .is_none_or(|r| r.saturating_sub(poll) >= w.start)
        })
        .map(|e| {
            let state = match e.firing_at.is_some_and(|t| t < w.end) {
                true => "firing",
                false => "pending",
            };
            let since = e.active_at();
            let when = match since < w.start {
                true => "since before the phase began".to_string(),
                false => format!("from {} into the phase", secs(ms(w.start, since))),
            };
            format!("{} was {state} {when}", Named(&e.alert, &e.labels))
        })
        .collect();
    QuietResult {
        phase: w.phase,
        ignored: ignored.to_vec(),
        pass: noisy.is_empty(),
        noisy,
    }
}

fn hygiene(
    rules: &[RuleMetrics],
    exposed: &BTreeSet<String>,
    absent_ok: &[String],
) -> HygieneResult {
    let recorded: BTreeSet<&str> = rules
        .iter()
        .filter(|r| r.kind == "recording")
        .map(|r| r.rule.as_str())
        .collect();
    let absent: Vec<AbsentMetric> = rules
        .iter()
        .flat_map(|r| r.metrics.iter().map(move |m| (r, m)))
        .filter(|(_, m)| {
            !exposed.contains(*m)
                && !recorded.contains(m.as_str())
                && !SYNTHETIC.contains(&m.as_str())
                && !absent_ok.contains(m)
        })
        .map(|(r, m)| AbsentMetric {
            rule: r.rule.clone(),
            metric: m.clone(),
        })
        .collect();
    HygieneResult {
        pass: absent.is_empty(),
        rules: rules.len(),
        exposed: exposed.len(),
        absent,
    }
}

#[cfg(test)]
mod tests;
