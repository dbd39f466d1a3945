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
pub use firedrill_types::facts::Mark;

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
    /// Limits for a backup and restore: the steps mark the backup and the disaster
    /// (`marks: backup`, `marks: disaster`).
    pub backup: Option<BackupSpec>,
    /// The Prometheus beside the cluster, the alerts it must raise, the panels to archive.
    pub monitoring: Option<MonitoringSpec>,
}

/// What the cluster's Prometheus must see (docs/monitoring.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSpec {
    /// The compose service that runs Prometheus and the port of its HTTP API.
    pub prometheus: PrometheusSpec,
    /// How often the active alerts are read (default 500ms).
    #[serde(default, with = "humantime_serde")]
    pub poll: Option<Duration>,
    /// Check at the start that every metric a rule selects is exposed by a scraped target.
    #[serde(default = "yes")]
    pub rule_hygiene: bool,
    /// Metrics the rules may select though no target exposes them during this drill (a
    /// labelled counter that only its first event creates, and this drill causes none).
    #[serde(default)]
    pub absent_ok: Vec<String>,
    #[serde(default)]
    pub alerts: Vec<AlertSpec>,
    /// Panels fetched over the whole run, archived under metrics/ and drawn in the report.
    #[serde(default)]
    pub dashboards: Vec<PanelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    pub node: Spanned<String>,
    pub port: u16,
}

/// An alert that must go pending, fire and/or resolve within a bound after a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// The alerting rule's name.
    pub alert: Spanned<String>,
    /// Labels the alert must carry (a subset); `${var}` takes a captured value.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The step whose start the bounds count from (the fault).
    pub after: Spanned<String>,
    #[serde(default, with = "humantime_serde")]
    pub pending_within: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub fires_within: Option<Duration>,
    /// The step whose start the resolution counts from (the fix).
    pub resolve_after: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    pub resolves_within: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    pub title: String,
    pub query: Spanned<String>,
    /// Shown on the axis, e.g. `ops/s`.
    #[serde(default)]
    pub unit: String,
}

/// Gates on a restore from a backup.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    /// Largest allowed recovery time: from the start of the step marked `disaster` to the
    /// first successful operation after it.
    #[serde(default, with = "humantime_serde")]
    pub rto: Option<Duration>,
    /// Largest allowed recovery point seen: from the start of the step marked `backup` to
    /// the last write acknowledged before the disaster.
    #[serde(default, with = "humantime_serde")]
    pub rpo: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The compose file, relative to the scenario file.
    pub compose: Spanned<String>,
    /// How long the cluster may take to become healthy.
    #[serde(default, with = "humantime_serde")]
    pub ready_timeout: Option<Duration>,
    /// The image fault sidecars run (it needs iptables and iproute2); only fault steps use it.
    pub fault_image: Option<String>,
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
    /// No alert may be pending or firing during the phase, except those in `ignore`.
    #[serde(default)]
    pub quiet: bool,
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Service levels on the value of a PromQL query over the phase.
    #[serde(default)]
    pub promql: Vec<PromqlSloSpec>,
}

/// A phase SLO on a query: every sample of every series the query returns during the phase
/// is at most `max` (or at least `min`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlSloSpec {
    pub name: Spanned<String>,
    pub query: Spanned<String>,
    pub max: Option<f64>,
    pub min: Option<f64>,
    /// Judge the samples from this long after the phase begins (default 0): Prometheus
    /// sees a change only at its next scrape.
    #[serde(default, with = "humantime_serde")]
    pub settle: Option<Duration>,
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
    pub destroy: Option<DestroySpec>,
    pub partition: Option<PartitionSpec>,
    /// `all`, or a node: removes the faults injected so far.
    pub heal: Option<String>,
    pub reject: Option<RejectSpec>,
    pub netem: Option<NetemSpec>,
    pub disconnect: Option<String>,
    pub connect: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub sleep: Option<Duration>,
    pub for_each: Option<ForEachSpec>,
    pub rollout: Option<Box<RolloutSpec>>,
    /// Starts steps that run alongside the procedure, until a `stop_background` step or
    /// the end of the procedure stops them.
    pub background: Option<Box<BackgroundSpec>>,
    /// Stops the background started under this name and waits until it has stopped.
    pub stop_background: Option<String>,
    /// Freezes a node for `on` every `period` (docker pause, then unpause).
    pub stall: Option<StallSpec>,
    /// A PromQL condition asked of the monitoring Prometheus: it holds when the result
    /// has a sample (as an alert's expression does).
    pub promql: Option<Spanned<String>>,
    /// Waits for a line in a node's output or in a file inside it, written after an
    /// earlier step: the time from that step to the line is the step's time to effect.
    pub log: Option<LogSpec>,

    /// Run the step only when this holds; otherwise it is skipped, with the reason.
    pub when: Option<WhenSpec>,

    /// What the step's span stands for: `backup` or `disaster`.
    pub marks: Option<Mark>,

    /// After this step a node should serve again: firedrill measures how long it takes
    /// (time to recover) and, with `within`, gates it.
    pub recovers: Option<RecoversSpec>,

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

/// Replace a node's container with one of another image and/or environment, keeping its
/// volumes, network name and published ports: the container-level equivalent of swapping
/// the binary or changing a flag. On a node not created yet, it creates it that way.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    pub node: String,
    pub image: Option<String>,
    /// Variables set over the compose file's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The container's command instead of the compose file's (a string is split on
    /// whitespace, as in a compose file).
    pub command: Option<Argv>,
    /// The container's entrypoint instead of the compose file's (or the image's).
    pub entrypoint: Option<Argv>,
}

/// A command line written as one string (split on whitespace, as compose does) or as a
/// list of arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Argv, E> {
                Ok(Argv(v.split_whitespace().map(String::from).collect()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut out = Vec::new();
                while let Some(Scalar(item)) = seq.next_element()? {
                    out.push(item);
                }
                Ok(Argv(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Steps run alongside the procedure, once or over and over, until stopped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackgroundSpec {
    /// What `stop_background` calls it; unique in the scenario.
    pub name: String,
    pub steps: Vec<StepSpec>,
    /// Run the steps again and again until stopped (default: once).
    #[serde(default)]
    pub repeat: bool,
}

/// A node frozen for `on` at the start of every `period` (docker pause and unpause): a
/// stalling process (GC pauses, a slow disk) without a kernel module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallSpec {
    pub node: String,
    #[serde(with = "humantime_serde")]
    pub on: Duration,
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// How long to go on; without it the stall runs until its background is stopped.
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
}

/// `when: ${var}` (runs when the text has a value and is not empty) or
/// `when: { var: x, equals: y }`.
#[derive(Debug)]
pub enum WhenSpec {
    Set(String),
    Equals(WhenEqualsSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenEqualsSpec {
    /// A variable name, without `${}`.
    pub var: String,
    pub equals: Scalar,
}

impl<'de> Deserialize<'de> for WhenSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = WhenSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`${name}` or a map `{ var: name, equals: value }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WhenSpec, E> {
                Ok(WhenSpec::Set(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<WhenSpec, A::Error> {
                WhenEqualsSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(WhenSpec::Equals)
            }
        }
        d.deserialize_any(V)
    }
}

/// A node lost for good: its container goes, and the named volumes listed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestroySpec {
    pub node: String,
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// Exactly one of: `isolate`, `groups`, or `from` + `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Cut one node off from all its peers, both ways.
    pub isolate: Option<String>,
    /// No traffic between nodes of different groups.
    pub groups: Option<Vec<Vec<String>>>,
    /// One way: packets from `from` no longer reach `to`.
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
}

/// Reset a random share of what arrives at a node's port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectSpec {
    pub node: String,
    pub port: u16,
    /// From 0 to 1.
    pub share: f64,
    /// `packets` (default: requests on kept-alive connections fail too) or `connections`.
    pub per: Option<String>,
}

/// Delay and/or loss with tc netem, where the kernel supports it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetemSpec {
    pub node: String,
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    /// From 0 to 1.
    pub loss: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoversSpec {
    /// The node that should serve again; the step's own node when absent.
    pub node: Option<String>,
    /// Fail the run when the node's first successful operation comes later than this.
    #[serde(default, with = "humantime_serde")]
    pub within: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEachSpec {
    /// The variable that holds the current item, as `${var}`.
    pub var: String,
    #[serde(rename = "in", default)]
    pub items: Vec<String>,
    /// Instead of `in`: a CSV file (a header line, then one row per line) or a JSONL file
    /// (one object per line) beside the scenario; each row's fields are `${var.field}`, and
    /// `${var}` is the row's number.
    pub rows: Option<String>,
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Default for `exec` and `run`: 0.
    pub exit_code: Option<i64>,
    /// Default for `http`: any 2xx. May be a variable known when the plan is made (a row
    /// of `for_each.rows`).
    pub status: Option<Scalar>,
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
    /// No match is no failure: the variable gets `default`, or no value at all.
    #[serde(default)]
    pub optional: bool,
    /// The value of an optional capture that finds nothing.
    pub default: Option<String>,
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
    /// Commands that must give the same answer on every node once the load has stopped.
    #[serde(default)]
    pub converge: Vec<ConvergeSpec>,
    /// Nodes the procedure takes out of the cluster on purpose (a member removed from the
    /// membership whose container stays): they need not be running at the end. A node a
    /// `destroy` step removed is known to be gone without this.
    #[serde(default)]
    pub removed: Vec<Spanned<String>>,
    /// The linearizability check's budget, and whether an undecided key fails the run.
    #[serde(default)]
    pub linearizability: LinearizabilitySpec,
}

/// `checks.linearizability`: part of `reads`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearizabilitySpec {
    /// The most time the search may spend on one key before its answer is unknown.
    #[serde(default, with = "humantime_serde")]
    pub budget_per_key: Option<Duration>,
    /// `fail` (the default): an unknown answer fails the run; `pass`: it is reported and
    /// the run may still pass.
    #[serde(default)]
    pub unknown: UnknownPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    #[default]
    Fail,
    Pass,
}

/// Replica convergence: `command` run in every node gives the same answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvergeSpec {
    pub name: String,
    pub command: String,
    /// Every running node when absent.
    pub nodes: Option<Vec<String>>,
    /// Compare only the first group (or the match) of this regular expression.
    pub compare: Option<String>,
    /// Retried until the answers agree or this passes.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl Default for ChecksSpec {
    fn default() -> Self {
        ChecksSpec {
            data: true,
            reads: true,
            health_timeout: None,
            converge: Vec::new(),
            removed: Vec::new(),
            linearizability: LinearizabilitySpec::default(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A canary rollout: traffic shifted to the canary in stages, each judged by gates over the
/// live history; a failing gate runs the rollback.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// The canary's backend name, as the load's `served_by_header` reports it (traffic
    /// stages only).
    pub canary: Option<String>,
    /// The other backends' names (traffic stages only).
    #[serde(default)]
    pub baseline: Vec<String>,
    /// Either the canary's share of the traffic at each stage, in percent, e.g. [1, 5, 10,
    /// 50, 100], or configuration stages: steps that apply the stage, and a hold.
    pub stages: Vec<StageSpec>,
    /// Weight points shared by the backends (default: 100 per baseline backend).
    pub weight_total: Option<u32>,
    /// The command that sets the weights, run at each stage with `${canary_weight}`,
    /// `${baseline_weight}` (each baseline's) and `${canary_percent}` (traffic stages only).
    pub traffic: Option<ExecSpec>,
    #[serde(default)]
    pub analysis: AnalysisSpec,
    pub gates: Vec<GateSpec>,
    pub rollback: RollbackSpec,
    /// The outcome the procedure must end in: `promoted` or `rolled_back`.
    pub expect: firedrill_types::summary::RolloutOutcome,
}

/// A stage of a rollout: a share of traffic in percent, or a configuration stage.
#[derive(Debug)]
pub enum StageSpec {
    Traffic(f64),
    Config(ConfigStageSpec),
}

/// A stage that changes the system's configuration (a flag set and a restart, an admin
/// call), then holds while the gates judge it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigStageSpec {
    pub name: String,
    /// Apply the stage; run before its first evaluation.
    pub steps: Vec<StepSpec>,
    /// The stage's minimum observation: it is promoted no sooner, however many
    /// evaluations have passed (default 0).
    #[serde(default, with = "humantime_serde")]
    pub hold: Option<Duration>,
    /// Gates judged in this stage only, beside the rollout's: thresholds that tighten
    /// from stage to stage.
    #[serde(default)]
    pub gates: Vec<GateSpec>,
}

impl<'de> Deserialize<'de> for StageSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StageSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a share of traffic in percent, or a stage `{ name, steps, hold }`")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StageSpec, E> {
                Ok(StageSpec::Traffic(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StageSpec, E> {
                Ok(StageSpec::Traffic(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StageSpec, E> {
                Ok(StageSpec::Traffic(v as f64))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StageSpec, A::Error> {
                ConfigStageSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(StageSpec::Config)
            }
        }
        d.deserialize_any(V)
    }
}

/// How the gates of each stage are evaluated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Between evaluations (default 1s).
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// The history each evaluation looks back on, never before the stage began nor into the
    /// previous conclusive evaluation's window (default 3s).
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    /// Conclusive evaluations a stage needs to pass (default 3).
    pub evaluations: Option<u32>,
    /// Canary operations a window needs (default 10).
    pub min_samples: Option<u64>,
    /// With fewer: `fail` (default) or `extend` the window by one interval.
    pub no_data: Option<crate::gate::NoDataPolicy>,
    /// `extend` only: inconclusive evaluations in a row before no data fails (default 5).
    pub max_extensions: Option<u32>,
    /// Roll back at this many failed evaluations of one gate over the rollout (default 3).
    pub failure_limit: Option<u32>,
    /// Roll back at this many failed evaluations of one gate in a row (default 2).
    pub consecutive_failure_limit: Option<u32>,
    /// Roll back when one gate's source could not be read this many evaluations in a row
    /// (default 4, as Argo Rollouts' consecutiveErrorLimit).
    pub consecutive_error_limit: Option<u32>,
}

/// One gate: a name and exactly one of `error_rate`, `latency`, `metric`, `promql`,
/// `command`, `http`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    pub name: String,
    pub error_rate: Option<ErrorRateGateSpec>,
    pub latency: Option<LatencyGateSpec>,
    pub metric: Option<MetricGateSpec>,
    pub promql: Option<PromqlGateSpec>,
    /// A command run inside a node whose output is JSON (an analyzer script)...
    pub command: Option<ExecSpec>,
    /// ...or a request to a node's endpoint that answers JSON (a config or stats endpoint),
    /// asked at each evaluation.
    pub http: Option<HttpSpec>,
    /// `command` and `http`: a JSON pointer to the value, a number (or a string holding
    /// one); `null` or nothing there is no data.
    pub value: Option<String>,
    /// `command` and `http`: passes at most / at least this (Argo Rollouts' success
    /// condition)...
    pub max: Option<f64>,
    pub min: Option<f64>,
    /// ...and with these fails only beyond them (its failure condition): a value between
    /// the two is inconclusive.
    pub fail_above: Option<f64>,
    pub fail_below: Option<f64>,
}

/// A query asked of the monitoring Prometheus at each evaluation, as Argo Rollouts'
/// prometheus provider does: every sample of the answer at most `max` (or at least `min`);
/// an empty answer is no data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlGateSpec {
    pub query: Spanned<String>,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateGateSpec {
    /// From 0 to 1.
    pub max: Option<f64>,
    /// At most the baseline's error rate over the same window plus this (0.01: one point).
    pub max_over_baseline: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyGateSpec {
    /// From 0 to 1 (default 0.95).
    pub quantile: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub max: Option<Duration>,
    /// At most the baseline's quantile times this...
    pub max_ratio: Option<f64>,
    /// ...but never less than this (default 0).
    #[serde(default, with = "humantime_serde")]
    pub floor: Option<Duration>,
}

/// A value from a node's Prometheus endpoint, read through a port it publishes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricGateSpec {
    pub node: String,
    pub port: u16,
    /// Default `/metrics`.
    pub path: Option<String>,
    pub name: String,
    /// Only the samples with these labels (summed).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Largest allowed rise since the rollout began (0: must not increase).
    pub max_increase: Option<f64>,
    pub max: Option<f64>,
}

/// What a failing gate sets off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackSpec {
    /// The step that stops traffic to the canary; its time to effect is measured (to the
    /// last request the canary served) and gated by `within`.
    pub kill_switch: Option<Box<StepSpec>>,
    /// Default 60s.
    #[serde(default, with = "humantime_serde")]
    pub within: Option<Duration>,
    /// Run after the kill switch, e.g. revert the canary's version.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Instead of a kill switch: levers tried in order, fastest first, each applied and
    /// then verified, until one restores service (configuration rollouts).
    #[serde(default)]
    pub levers: Vec<LeverSpec>,
    /// The lever that must restore service (default the first): one restored by a later
    /// lever fails the procedure, since its faster levers do not work.
    pub restored_by: Option<String>,
}

/// A rollback lever: steps that apply it, and steps that prove service is restored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeverSpec {
    pub name: String,
    pub steps: Vec<StepSpec>,
    /// Must all pass for the lever to count as restoring service (waits with timeouts,
    /// expectations on the config endpoint, the decision log).
    pub verify: Vec<StepSpec>,
}

/// A wait for a line written after an earlier step, in a node's output (Docker's own
/// timestamps date each line) or in a file inside the node (JSON lines dated by `time`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    pub node: String,
    /// A file inside the node; its lines must be JSON objects with a time.
    pub file: Option<String>,
    /// A file's lines: the JSON pointer to each line's time, in seconds since the epoch
    /// (a number) or RFC 3339 (a string).
    pub time: Option<String>,
    /// The step the line must come after (its start is where the time to effect begins);
    /// default the step before this one.
    pub after: Option<String>,
    /// Wait for the first line like this...
    pub line: Option<LineSpec>,
    /// ...or until lines like this stop: none for `quiet` while other lines go on. The
    /// time to effect is then the last such line's.
    pub stops: Option<LineSpec>,
    /// With `stops`: how long no such line may come, while others do (default 5s).
    #[serde(default, with = "humantime_serde")]
    pub quiet: Option<Duration>,
    /// The time to effect the step allows; it fails beyond it.
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

/// What a line must hold: text, and/or JSON values by pointer (all must equal).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    pub contains: Option<String>,
    #[serde(default)]
    pub json: BTreeMap<String, Scalar>,
}
