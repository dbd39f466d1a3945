//! The scenario file: a runbook procedure as YAML, exactly as the user wrote it.
//!
//! These types mirror the file one to one (unknown keys are errors); `plan` checks them
//! against the compose file and the load profile and turns them into something runnable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::slo::SloSpec;
use crate::yaml::Scalar;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Spanned<String>,
    /// One line, shown by `firedrill list` and at the top of reports.
    pub description: String,
    /// Where the runbook lives, for the report.
    pub runbook: Option<String>,
    pub cluster: ClusterSpec,
    pub load: LoadSpec,
    /// Values substituted for `${name}` in steps.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub phases: PhasesSpec,
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub checks: ChecksSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The compose file, relative to the scenario file.
    pub compose: Spanned<String>,
    /// How long the cluster may take to become healthy.
    #[serde(default, with = "humantime_serde")]
    pub ready_timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// The load profile, relative to the scenario file.
    pub profile: Spanned<String>,
    /// The nodes the clients talk to; every started node that publishes the profile's port
    /// when absent.
    pub nodes: Option<Spanned<Vec<String>>>,
    /// Overrides the profile's rate cap (operations per second).
    pub rate: Option<f64>,
    /// Overrides the profile's number of clients.
    pub clients: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasesSpec {
    #[serde(default)]
    pub steady: PhaseSpec,
    #[serde(default)]
    pub procedure: PhaseSpec,
    #[serde(default)]
    pub recovery: PhaseSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Only steady and recovery have a length; the procedure lasts as long as its steps.
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub slo: SloSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Spanned<String>,
    /// The runbook's own words for the step.
    #[serde(default)]
    pub prose: String,

    // The action: exactly one of these.
    pub exec: Option<ExecSpec>,
    pub http: Option<HttpSpec>,
    pub run: Option<RunSpec>,
    pub stop: Option<String>,
    pub start: Option<String>,
    pub restart: Option<String>,
    pub kill: Option<String>,
    pub pause: Option<String>,
    pub unpause: Option<String>,
    pub replace: Option<ReplaceSpec>,
    #[serde(default, with = "humantime_serde")]
    pub sleep: Option<Duration>,
    pub for_each: Option<ForEachSpec>,

    pub expect: Option<ExpectSpec>,
    /// Values taken from the output for later steps, as `${name}`.
    #[serde(default)]
    pub capture: BTreeMap<String, CaptureSpec>,
    /// Repeat the action until its expectation holds.
    pub wait: Option<WaitSpec>,
    /// Limit for one attempt of the action.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// A command run inside a node's container, through `sh -c`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    pub node: String,
    pub command: String,
}

/// A request from the harness to a port a node publishes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub node: String,
    pub port: u16,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

/// A one-off container with a (stopped) node's volumes and network, e.g. to restore a
/// snapshot into its data directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub node: String,
    pub command: String,
    /// The node's current image when absent.
    pub image: Option<String>,
}

/// Replace a node's container with one of another image, keeping its volumes, network
/// name and published ports: the container-level equivalent of swapping the binary.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    pub node: String,
    pub image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEachSpec {
    /// The variable that holds the current item, as `${var}`.
    pub var: String,
    #[serde(rename = "in")]
    pub items: Vec<String>,
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Default for `exec` and `run`: 0.
    pub exit_code: Option<i64>,
    /// Default for `http`: any 2xx.
    pub status: Option<u16>,
    /// Strings stdout (or the HTTP body) must contain.
    #[serde(default)]
    pub stdout_contains: Vec<String>,
    /// A regular expression stdout (or the HTTP body) must match.
    pub stdout_regex: Option<String>,
    /// A value in stdout (or the body) parsed as JSON.
    pub json: Option<JsonExpectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpectSpec {
    /// A JSON pointer, e.g. `/health`.
    pub pointer: String,
    /// Compared as text with the value found (a JSON string's contents, otherwise its JSON).
    pub equals: Scalar,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// A regular expression on stdout; its first group (or the whole match) is the value.
    pub regex: Option<String>,
    /// A JSON pointer into stdout (or the body).
    pub json: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksSpec {
    /// Read back every key after recovery and count lost writes.
    #[serde(default = "yes")]
    pub data: bool,
    /// Check every successful read against the writes (phantom, future, stale reads).
    #[serde(default = "yes")]
    pub reads: bool,
    /// How long the health gate before the read-back may wait.
    #[serde(default, with = "humantime_serde")]
    pub health_timeout: Option<Duration>,
}

impl Default for ChecksSpec {
    fn default() -> Self {
        ChecksSpec {
            data: true,
            reads: true,
            health_timeout: None,
        }
    }
}

fn yes() -> bool {
    true
}
