//! The monitoring part of a plan: which service runs Prometheus, the alert expectations
//! tied to the procedure's steps, the phases that must stay quiet, and the panels to
//! archive. Checked here against the compose file and the steps; the alert names are
//! checked at run start against the rules Prometheus loaded, as only Prometheus knows them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::compose::Compose;
use crate::plan::{all_steps, substitute, PlannedStep, Text};
use crate::promql::{self, Bound};
use crate::scenario::{MonitoringSpec, PhasesSpec};
use crate::yaml::Diagnostic;
use firedrill_types::history::Phase;

const DEFAULT_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct MonitoringPlan {
    /// The compose service that runs Prometheus.
    pub node: String,
    /// The container port of its HTTP API.
    pub port: u16,
    /// How often the active alerts are read: the resolution of every alert time.
    pub poll: Duration,
    pub rule_hygiene: bool,
    /// Metrics rule hygiene lets be absent.
    pub absent_ok: Vec<String>,
    pub alerts: Vec<AlertExpectation>,
    pub dashboards: Vec<Panel>,
    /// The phases that must stay quiet, each with the alerts it ignores.
    pub quiet: BTreeMap<Phase, Vec<String>>,
    /// Service levels on queries, judged over their phase.
    pub slos: Vec<PromqlSlo>,
    /// Every alert name the scenario mentions, with where (`file:line:column`).
    pub named: Vec<(String, String)>,
}

/// A step an expectation counts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct AlertExpectation {
    pub alert: String,
    /// A subset of the alert's labels; values may hold `${captured}` variables.
    pub labels: BTreeMap<String, Text>,
    pub after: StepRef,
    pub pending_within: Option<Duration>,
    pub fires_within: Option<Duration>,
    pub resolve: Option<(StepRef, Duration)>,
}

/// A phase SLO on a query: every sample of the phase keeps `bound`.
#[derive(Debug, Clone)]
pub struct PromqlSlo {
    pub phase: Phase,
    pub name: String,
    pub query: String,
    pub bound: Bound,
    /// The samples of the phase's first `settle` are not judged.
    pub settle: Duration,
    /// Where its samples are archived, relative to the output directory.
    pub file: String,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub query: String,
    pub unit: String,
    /// Where its series are archived, relative to the output directory.
    pub file: String,
}

pub(crate) struct Inputs<'a> {
    pub file: &'a Path,
    pub spec: Option<&'a MonitoringSpec>,
    pub phases: &'a PhasesSpec,
    pub steps: &'a [PlannedStep],
    pub compose: Option<&'a Compose>,
    pub vars: &'a BTreeMap<String, String>,
}

pub(crate) fn plan(i: Inputs, problems: &mut Vec<Diagnostic>) -> Option<MonitoringPlan> {
    let phases = [
        (Phase::Steady, &i.phases.steady),
        (Phase::Procedure, &i.phases.procedure),
        (Phase::Recovery, &i.phases.recovery),
    ];
    let Some(spec) = i.spec else {
        for (phase, p) in phases {
            if p.quiet || !p.ignore.is_empty() {
                problems.push(Diagnostic::whole_file(
                    i.file,
                    format!("phases.{}: `quiet` and `ignore` judge alerts: add a `monitoring:` block naming the Prometheus (docs/monitoring.md)", phase.name()),
                ));
            }
            for slo in &p.promql {
                problems.push(Diagnostic::at_location(
                    i.file,
                    &slo.name.referenced,
                    format!("phases.{}.promql: a query SLO asks the Prometheus of `monitoring.prometheus`: add a `monitoring:` block (docs/monitoring.md)", phase.name()),
                ));
            }
        }
        return None;
    };
    let at = |s: &Spanned<String>| {
        let l = &s.referenced;
        format!("{}:{}:{}", i.file.display(), l.line(), l.column())
    };
    let mut named = Vec::new();

    let node = &spec.prometheus.node;
    if let Some(compose) = i.compose {
        match compose.service(&node.value) {
            None => problems.push(Diagnostic::at_location(
                i.file,
                &node.referenced,
                format!(
                    "monitoring.prometheus.node: `{}` is not a service of {}",
                    node.value,
                    compose.file.display()
                ),
            )),
            Some(s) if !s.ports.iter().any(|p| p.container_port == spec.prometheus.port) => {
                problems.push(Diagnostic::at_location(
                    i.file,
                    &node.referenced,
                    format!(
                        "monitoring.prometheus: `{}` does not publish port {}; add `127.0.0.1::{}` to its ports",
                        node.value, spec.prometheus.port, spec.prometheus.port
                    ),
                ))
            }
            Some(_) => {}
        }
    }

    let steps = all_steps(i.steps);
    let mut alerts = Vec::new();
    for a in &spec.alerts {
        named.push((a.alert.value.clone(), at(&a.alert)));
        let problem = |m: &str| Diagnostic::at_location(i.file, &a.alert.referenced, m);
        if a.pending_within.is_none() && a.fires_within.is_none() && a.resolves_within.is_none() {
            problems.push(problem(&format!(
                "monitoring.alerts `{}`: give `pending_within`, `fires_within` and/or `resolves_within`",
                a.alert.value
            )));
        }
        let after = find_step(i.file, &steps, "`after`", &a.after, problems);
        let resolve = match (&a.resolve_after, a.resolves_within) {
            (Some(s), Some(within)) => {
                find_step(i.file, &steps, "`resolve_after`", s, problems).map(|s| (s, within))
            }
            (None, None) => None,
            _ => {
                problems.push(problem(&format!(
                    "monitoring.alerts `{}`: `resolve_after` (the fixing step) and `resolves_within` go together",
                    a.alert.value
                )));
                None
            }
        };
        let labels = a
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, |n| i.vars.get(n).cloned()).0))
            .collect();
        if let Some(after) = after {
            alerts.push(AlertExpectation {
                alert: a.alert.value.clone(),
                labels,
                after,
                pending_within: a.pending_within,
                fires_within: a.fires_within,
                resolve,
            });
        }
    }

    let mut quiet = BTreeMap::new();
    for (phase, p) in phases {
        for name in &p.ignore {
            named.push((name.value.clone(), at(name)));
        }
        if p.quiet {
            quiet.insert(phase, p.ignore.iter().map(|n| n.value.clone()).collect());
        } else if !p.ignore.is_empty() {
            problems.push(Diagnostic::whole_file(
                i.file,
                format!(
                    "phases.{}.ignore: alerts are ignored only in a `quiet: true` phase",
                    phase.name()
                ),
            ));
        }
    }

    let mut slos: Vec<PromqlSlo> = Vec::new();
    for (phase, p) in phases {
        for slo in &p.promql {
            let problem = |m: String| Diagnostic::at_location(i.file, &slo.name.referenced, m);
            let what = format!("phases.{}.promql `{}`", phase.name(), slo.name.value);
            if slos
                .iter()
                .any(|s| s.phase == phase && s.name == slo.name.value)
            {
                problems.push(problem(format!(
                    "{what}: the phase has another SLO of that name"
                )));
            }
            problems.extend(unparsable(i.file, &what, &slo.query));
            match Bound::from_spec(slo.max, slo.min) {
                Ok(bound) => slos.push(PromqlSlo {
                    phase,
                    name: slo.name.value.clone(),
                    query: slo.query.value.clone(),
                    bound,
                    settle: slo.settle.unwrap_or_default(),
                    file: format!(
                        "metrics/slo-{}-{}-{}.json",
                        phase.name(),
                        slos.len() + 1,
                        slug(&slo.name.value)
                    ),
                }),
                Err(m) => problems.push(problem(format!("{what}: {m}"))),
            }
        }
    }

    let mut dashboards: Vec<Panel> = Vec::new();
    for d in &spec.dashboards {
        let what = format!("dashboards `{}`", d.title);
        problems.extend(unparsable(i.file, &what, &d.query));
        let mut file = format!("metrics/{}.json", slug(&d.title));
        if dashboards.iter().any(|p| p.file == file) {
            file = format!("metrics/{}-{}.json", slug(&d.title), dashboards.len() + 1);
        }
        dashboards.push(Panel {
            title: d.title.clone(),
            query: d.query.value.clone(),
            unit: d.unit.clone(),
            file,
        });
    }

    Some(MonitoringPlan {
        node: node.value.clone(),
        port: spec.prometheus.port,
        poll: spec.poll.unwrap_or(DEFAULT_POLL),
        rule_hygiene: spec.rule_hygiene,
        absent_ok: spec.absent_ok.clone(),
        alerts,
        dashboards,
        quiet,
        slos,
        named,
    })
}

/// A problem at `query`'s line when it is not PromQL, in Prometheus's grammar.
fn unparsable(file: &Path, what: &str, query: &Spanned<String>) -> Option<Diagnostic> {
    let e = promql::check(&query.value).err()?;
    Some(Diagnostic::at_location(
        file,
        &query.referenced,
        format!("{what}: the query `{}` does not parse: {e}", query.value),
    ))
}

/// The one step named `name`.
fn find_step(
    file: &Path,
    steps: &[&PlannedStep],
    what: &str,
    name: &Spanned<String>,
    problems: &mut Vec<Diagnostic>,
) -> Option<StepRef> {
    let found: Vec<_> = steps.iter().filter(|s| s.name == name.value).collect();
    let message = match found.as_slice() {
        [s] => {
            return Some(StepRef {
                id: s.id.clone(),
                name: s.name.clone(),
            })
        }
        [] => {
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            format!(
                "monitoring.alerts: {what} names no step: `{}`; the steps are: {}",
                name.value,
                names.join(" · ")
            )
        }
        more => format!(
            "monitoring.alerts: {what} `{}` names {} steps (ids {}): give the step a name of its own",
            name.value,
            more.len(),
            more.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    problems.push(Diagnostic::at_location(file, &name.referenced, message));
    None
}

/// A file name from a panel title: lower case, words joined by `-`.
fn slug(title: &str) -> String {
    let words: Vec<String> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    match words.is_empty() {
        true => "panel".into(),
        false => words.join("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panel_file_is_named_after_its_title() {
        assert_eq!(
            slug("Members with a leader (of 3)"),
            "members-with-a-leader-of-3"
        );
        assert_eq!(slug("—"), "panel");
    }
}
