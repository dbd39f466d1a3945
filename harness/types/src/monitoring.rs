//! What the cluster's Prometheus saw during a run, and what the judge made of it: the
//! alert observations (`alerts.jsonl`, one line per change), the rules and the metrics
//! the targets expose (for rule hygiene), the archived panels, and the `monitoring` block
//! of `summary.json` (docs/monitoring.md, docs/artifacts.md).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::history::{Micros, Phase};

/// An alert's state, as `/api/v1/alerts` lists it; `inactive` once it is no longer listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

/// A line of `alerts.jsonl`: one alert (by its labels) changed state at `at`, the run
/// clock of the poll that first saw the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertObservation {
    pub at: Micros,
    pub alert: String,
    /// Every label but `alertname`.
    pub labels: BTreeMap<String, String>,
    pub state: AlertState,
}

/// A rule Prometheus loaded, with the metrics its expression selects by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMetrics {
    pub rule: String,
    /// `alerting` or `recording`.
    pub kind: String,
    pub metrics: Vec<String>,
}

/// A panel as archived: its series are in `file` (Prometheus's own matrix JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelRecord {
    pub title: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Relative to the output directory.
    pub file: String,
    pub series: usize,
    /// Why the panel could not be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One series of a panel on the run clock, for drawing (report.html): `labels` name it,
/// `points` are `(run clock µs, value)`. The archived file keeps Prometheus's own answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelLine {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(Micros, f64)>,
}

/// A panel's series, as fetched at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelSeries {
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    pub lines: Vec<PanelLine>,
}

/// What the monitoring recorded during a run, before anything is judged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitoringFacts {
    /// The service and the URL it was reached at.
    pub prometheus: String,
    pub polls: u64,
    /// Polls that got no answer, with the first error.
    pub poll_errors: u64,
    pub first_poll_error: Option<String>,
    /// Every change the polls saw, in order (`alerts.jsonl`).
    pub observations: Vec<AlertObservation>,
    /// The rules and the metric names the scraped targets exposed at any time of the run;
    /// `None` when `rule_hygiene` is off.
    pub hygiene: Option<(Vec<RuleMetrics>, BTreeSet<String>)>,
    /// Each alert expectation's labels, with the run's variables substituted.
    pub expected_labels: Vec<BTreeMap<String, String>>,
    pub panels: Vec<PanelRecord>,
    /// Each panel's series on the run clock, in the order of `panels`.
    pub panel_series: Vec<PanelSeries>,
    /// Each phase query SLO's samples, in the order of the plan's.
    pub slo_samples: Vec<QuerySamples>,
}

/// What Prometheus answered a query SLO's range query over its phase, archived in `file`
/// (the panel format): every sample of every series, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySamples {
    pub phase: Phase,
    pub name: String,
    pub file: String,
    pub answer: Result<Vec<f64>, String>,
}

/// One alert (by its labels) from the poll that first saw it active to the poll that no
/// longer did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEpisode {
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_at: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_at: Option<Micros>,
    /// `None`: still active when the run stopped watching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Micros>,
}

impl AlertEpisode {
    /// When the alert became active (pending, or firing at once).
    pub fn active_at(&self) -> Micros {
        self.pending_at.or(self.firing_at).unwrap_or_default()
    }

    /// Whether the alert was active at some instant of `[start, end)`.
    pub fn overlaps(&self, start: Micros, end: Micros) -> bool {
        self.active_at() < end && self.resolved_at.is_none_or(|r| r > start)
    }
}

/// An expectation of the scenario's `monitoring.alerts`, judged. Times are in ms from
/// the start of the step named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertExpectationResult {
    pub alert: String,
    pub labels: BTreeMap<String, String>,
    pub after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_within_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_after_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_within_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_after_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves_within_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_after_ms: Option<f64>,
    pub pass: bool,
    /// What was seen, in words.
    pub detail: String,
}

/// A `quiet: true` phase, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuietResult {
    pub phase: Phase,
    pub ignored: Vec<String>,
    pub pass: bool,
    /// The alerts active during the phase that it does not ignore, in words.
    pub noisy: Vec<String>,
}

/// A metric a rule selects that no scraped target exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsentMetric {
    pub rule: String,
    pub metric: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HygieneResult {
    pub pass: bool,
    pub rules: usize,
    /// Distinct metric names the targets exposed.
    pub exposed: usize,
    pub absent: Vec<AbsentMetric>,
}

/// The `monitoring` block of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringResult {
    pub prometheus: String,
    pub polls: u64,
    pub poll_errors: u64,
    /// Every alert that was active during the run, in the order it became active.
    pub episodes: Vec<AlertEpisode>,
    pub expectations: Vec<AlertExpectationResult>,
    pub quiet: Vec<QuietResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hygiene: Option<HygieneResult>,
    pub panels: Vec<PanelRecord>,
}
