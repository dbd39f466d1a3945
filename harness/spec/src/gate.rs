//! The go/no-go conditions of a staged rollout, as a plan states them; the judge's canary
//! analysis evaluates them.

use std::collections::BTreeMap;

use firedrill_types::history::Micros;

use crate::promql::Bound;

/// One go/no-go condition of a rollout stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub name: String,
    pub kind: GateKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GateKind {
    /// Share of the canary's operations that failed or had an unknown outcome.
    ErrorRate {
        max: Option<f64>,
        /// At most the baseline's error rate over the same window plus this.
        max_over_baseline: Option<f64>,
    },
    /// A latency quantile of the canary's successful operations.
    Latency {
        /// From 0 to 1, e.g. 0.95.
        quantile: f64,
        max: Option<Micros>,
        /// At most the baseline's quantile over the same window times this...
        max_ratio: Option<f64>,
        /// ...but never less than this: a few milliseconds' difference is no regression.
        floor: Micros,
    },
    /// A value scraped from a node's Prometheus endpoint.
    Metric(MetricGate),
    /// A query asked of the monitoring Prometheus at each evaluation; every sample of the
    /// answer must keep `bound`, and an empty answer is no data.
    Promql { query: String, bound: Bound },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricGate {
    /// Where to scrape: a node, a port it publishes, a path.
    pub node: String,
    pub port: u16,
    pub path: String,
    /// The metric's name; its samples whose labels include `labels` are summed.
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    /// Largest allowed rise since the rollout began (0: must not increase).
    pub max_increase: Option<f64>,
    /// Largest allowed value.
    pub max: Option<f64>,
}

/// What a window without enough data counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// A failed evaluation, as Flagger and Kayenta do.
    Fail,
    /// Inconclusive: the stage waits another interval with a longer window, a limited
    /// number of times, after which no data counts as a failure.
    Extend,
}

/// When a rollout is rolled back: failures of one gate counted over the whole rollout,
/// in total and in a row, each against its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// Roll back at this many failed evaluations of one gate.
    pub cumulative: u32,
    /// Roll back at this many failed evaluations of one gate in a row.
    pub consecutive: u32,
}
