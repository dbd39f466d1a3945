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
    /// A value in the JSON a command prints or an endpoint answers, asked at each
    /// evaluation: `bound` passes; with `fail_beyond`, only a value past it fails and one
    /// between the two is inconclusive (Argo Rollouts' success and failure conditions).
    Value {
        source: ValueSource,
        pointer: String,
        bound: Bound,
        fail_beyond: Option<f64>,
    },
}

/// Where a value gate's JSON comes from; the texts may hold `${var}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    /// A command run inside a node, through `sh -c`: its stdout.
    Command { node: String, command: String },
    /// A request to a port the node publishes: the body of a 2xx answer.
    Http {
        node: String,
        port: u16,
        method: String,
        path: String,
        body: Option<String>,
    },
}

impl ValueSource {
    /// `ranker-analyze --window 10 on app`, `GET app:8080/api/config`.
    pub fn describe(&self) -> String {
        match self {
            ValueSource::Command { node, command } => format!("`{command}` on {node}"),
            ValueSource::Http {
                node,
                port,
                method,
                path,
                ..
            } => format!("{method} {node}:{port}{path}"),
        }
    }
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
    /// Roll back when one gate's source could not be read this many times in a row.
    pub consecutive_errors: u32,
}
