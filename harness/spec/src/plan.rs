//! A validated, runnable plan: the scenario checked against its compose file and load
//! profile, loops unrolled, static variables substituted.
//!
//! Everything a user can get wrong in the files is found here, before anything starts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::compose::{Compose, MountSource};
use crate::gate::{FailureLimits, Gate, GateKind, MetricGate, NoDataPolicy, ValueSource};
use crate::loadprofile::{CompiledProfile, LoadProfile};
use crate::monitoring::{self, MonitoringPlan};
use crate::promql::{self, Bound};
use crate::runbook::{self, RunbookPlan, SourceRef};
use crate::scenario::{
    CaptureSpec, ExpectSpec, GateSpec, LogSpec, Mark, RolloutSpec, ScenarioFile, StageSpec,
    StepSpec, UnknownPolicy, WhenSpec,
};
use crate::slo::SloSpec;
use crate::yaml::{self, Diagnostic};
use firedrill_types::history::Phase;
use firedrill_types::summary::RolloutOutcome;
use serde_saphyr::Spanned;

const DEFAULT_STEADY: Duration = Duration::from_secs(5);
const DEFAULT_RECOVERY: Duration = Duration::from_secs(10);
const DEFAULT_READY: Duration = Duration::from_secs(60);
const DEFAULT_HEALTH: Duration = Duration::from_secs(60);
/// Enough for firedrill's own histories (unique values) by a wide margin; see
/// docs/performance.md.
const DEFAULT_LINEARIZABILITY_BUDGET: Duration = Duration::from_secs(1);
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_WAIT_INTERVAL: Duration = Duration::from_millis(500);
const DEFAULT_CONVERGE: Duration = Duration::from_secs(30);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_WINDOW: Duration = Duration::from_secs(3);
const DEFAULT_EVALUATIONS: u32 = 3;
const DEFAULT_MIN_SAMPLES: u64 = 10;
const DEFAULT_MAX_EXTENSIONS: u32 = 5;
const DEFAULT_FAILURE_LIMIT: u32 = 3;
const DEFAULT_CONSECUTIVE_FAILURE_LIMIT: u32 = 2;
const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 4;
const DEFAULT_KILL_SWITCH_WITHIN: Duration = Duration::from_secs(60);
/// A `log` step's `stops`: how long no matching line may come.
const DEFAULT_QUIET: Duration = Duration::from_secs(5);
/// The error rate under which "the load is back" after a recovering step, when the
/// recovery phase sets no `max_error_rate` of its own.
const DEFAULT_RECOVERED_ERROR_RATE: f64 = 0.01;
/// Variables a rollout's traffic command gets at each stage.
pub const STAGE_VARS: [&str; 3] = ["canary_weight", "baseline_weight", "canary_percent"];

/// Variables the harness itself provides at run time.
pub const BUILTIN_VARS: [&str; 2] = ["run_id", "seed"];

#[derive(Debug)]
pub struct Plan {
    pub file: PathBuf,
    pub name: String,
    pub description: String,
    pub runbook: Option<String>,
    pub compose: Compose,
    /// Compiled once here; the load and the read-back render its requests.
    pub profile: CompiledProfile,
    pub load_nodes: Vec<String>,
    pub ready_timeout: Duration,
    pub steady: Duration,
    pub recovery: Duration,
    pub slos: BTreeMap<Phase, SloSpec>,
    pub steps: Vec<PlannedStep>,
    pub checks: ChecksPlan,
    pub fault_image: Option<String>,
    /// Set when steps mark a backup and a disaster: the data check runs in backup mode.
    pub backup: Option<BackupPlan>,
    /// Set when the scenario is a Markdown runbook: what its page has beyond the steps.
    pub page: Option<RunbookPlan>,
    /// The Prometheus beside the cluster and what it must see.
    pub monitoring: Option<MonitoringPlan>,
}

/// Gates on a restore from a backup.
#[derive(Debug, Clone, Default)]
pub struct BackupPlan {
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
}

/// A mark's span begins or ends at a step: `step` names the step (or loop) marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEdge {
    pub mark: Mark,
    pub step: String,
}

#[derive(Debug, Clone)]
pub struct ChecksPlan {
    pub data: bool,
    pub reads: bool,
    pub health_timeout: Duration,
    pub converge: Vec<Converge>,
    /// Nodes declared out of the cluster on purpose: not expected at the end.
    pub removed: Vec<String>,
    /// The recovery phase's error rate that counts as "the load is back" for `recovers`.
    pub recovered_error_rate: f64,
    /// The linearizability search's budget per key.
    pub linearizability_budget: Duration,
    /// Whether a key the search could not decide in its budget fails the run.
    pub unknown_fails: bool,
}

/// A command that must give the same answer on every node.
#[derive(Debug, Clone)]
pub struct Converge {
    pub name: String,
    pub command: String,
    /// Every running node when empty.
    pub nodes: Vec<String>,
    pub compare: Option<Regex>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// "3", or "4.2" for the 2nd step of the loop's 4th item... see `plan_steps`.
    pub id: String,
    pub name: String,
    pub prose: String,
    pub action: Action,
    pub expect: Expectation,
    /// Name, where to find the value, and for an optional capture what to do without one.
    pub captures: Vec<(String, Capture, Option<Fallback>)>,
    /// Conditions that must all hold when the step comes to run; otherwise it is skipped.
    pub when: Vec<When>,
    pub wait: Option<Wait>,
    pub timeout: Duration,
    pub recovers: Option<Recovers>,
    /// Marks whose span begins when this step starts, and ends when it ends.
    pub begins: Vec<MarkEdge>,
    pub ends: Vec<MarkEdge>,
    /// Where a runbook's step sits in its page; `None` in a YAML scenario.
    pub source: Option<SourceRef>,
}

/// A staged rollout, planned: traffic shifted to a canary, or configuration changed, stage
/// by stage, each judged by the gates.
#[derive(Debug, Clone)]
pub struct RolloutPlan {
    /// Traffic stages only: the backends and the command that sets their weights.
    pub traffic: Option<TrafficPlan>,
    pub stages: Vec<StagePlan>,
    pub interval: Duration,
    pub window: Duration,
    pub evaluations: u32,
    pub min_samples: u64,
    pub no_data: NoDataPolicy,
    pub max_extensions: u32,
    pub limits: FailureLimits,
    /// Judged at every stage; a configuration stage may add its own.
    pub gates: Vec<Gate>,
    pub rollback: RollbackPlan,
    pub expect: RolloutOutcome,
}

/// What a failing stage sets off.
#[derive(Debug, Clone)]
pub enum RollbackPlan {
    /// The kill switch, the limit on its time to effect (measured for traffic rollouts),
    /// then the other steps.
    KillSwitch {
        kill_switch: Box<PlannedStep>,
        within: Duration,
        steps: Vec<PlannedStep>,
    },
    /// Levers tried in order until one's verification passes; `restored_by` is the index of
    /// the one that must.
    Levers {
        levers: Vec<LeverPlan>,
        restored_by: usize,
    },
}

impl RollbackPlan {
    /// Every step of the rollback, in the order they would run.
    pub fn steps(&self) -> Vec<&PlannedStep> {
        match self {
            RollbackPlan::KillSwitch {
                kill_switch, steps, ..
            } => std::iter::once(kill_switch.as_ref()).chain(steps).collect(),
            RollbackPlan::Levers { levers, .. } => levers
                .iter()
                .flat_map(|l| l.steps.iter().chain(&l.verify))
                .collect(),
        }
    }
}

/// A rollback lever: its steps (numbered `<rollout>.<lever>.<n>`), then its verification,
/// numbered on after them.
#[derive(Debug, Clone)]
pub struct LeverPlan {
    pub name: String,
    pub steps: Vec<PlannedStep>,
    pub verify: Vec<PlannedStep>,
}

/// How a traffic rollout moves the load between the canary and the baseline.
#[derive(Debug, Clone)]
pub struct TrafficPlan {
    pub canary: String,
    pub baseline: Vec<String>,
    pub weight_total: u32,
    /// Node and command that set the weights; the command holds [`STAGE_VARS`].
    pub node: Text,
    pub command: Text,
}

#[derive(Debug, Clone)]
pub enum StagePlan {
    /// The canary's share of the traffic, in percent.
    Traffic(f64),
    /// Steps that apply the stage (numbered `<rollout>.<stage>.<n>`), and its minimum
    /// observation.
    Config {
        name: String,
        steps: Vec<PlannedStep>,
        hold: Duration,
        /// Judged in this stage only, beside the rollout's gates.
        gates: Vec<Gate>,
    },
}

impl StagePlan {
    /// The stage's own gates (judged beside the rollout's).
    pub fn gates(&self) -> &[Gate] {
        match self {
            StagePlan::Config { gates, .. } => gates,
            StagePlan::Traffic(_) => &[],
        }
    }

    /// "5 %", or the stage's name.
    pub fn label(&self) -> String {
        match self {
            StagePlan::Traffic(p) => format!("{p} %"),
            StagePlan::Config { name, .. } => name.clone(),
        }
    }
}

/// A wait for a line in a node's output or a file inside it, written after an earlier step.
#[derive(Debug, Clone)]
pub struct LogPlan {
    pub node: Text,
    /// `None`: the node's output, dated by Docker.
    pub file: Option<Text>,
    /// A file's lines: the JSON pointer to each line's time.
    pub time: Option<String>,
    /// The earlier step (its id and name) whose start the time to effect is counted from.
    pub after: (String, String),
    pub line: LineMatch,
    /// `false`: wait for the first line that matches. `true`: wait until matching lines stop
    /// (none for `quiet` while other lines go on); the effect is the last one's time.
    pub stops: bool,
    pub quiet: Duration,
    pub within: Duration,
}

/// What a line must hold: all of these.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineMatch {
    pub contains: Option<Text>,
    /// JSON pointer and the value there, compared as text (a string by its contents).
    pub json: Vec<(String, Text)>,
}

/// Steps that run alongside the procedure: started by a `background` step, stopped by
/// `stop_background` or at the end of the procedure.
#[derive(Debug, Clone)]
pub struct BackgroundPlan {
    pub name: String,
    /// Numbered under the starting step: `6.1`, `6.2`…
    pub steps: Vec<PlannedStep>,
    /// Run them again and again until stopped.
    pub repeat: bool,
}

/// What an optional capture that finds nothing does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Set the variable to this.
    Default(Text),
    /// Leave the variable without a value (also clearing one an earlier step gave it).
    Clear,
}

/// A step's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Holds when the text has a value (every `${…}` in it does) and is not blank.
    Set(Text),
    /// Holds when `value` has a value equal to `equals`.
    Equals { value: Text, equals: Text },
}

/// The node that should serve again after the step, and how soon.
#[derive(Debug, Clone)]
pub struct Recovers {
    pub node: Text,
    pub within: Option<Duration>,
}

/// Text that may still hold `${var}` references to values captured at run time.
pub type Text = String;

#[derive(Debug, Clone)]
pub enum Action {
    Exec {
        node: Text,
        command: Text,
    },
    Http {
        node: Text,
        port: u16,
        method: String,
        path: Text,
        body: Option<Text>,
    },
    Run {
        node: Text,
        command: Text,
        image: Option<Text>,
    },
    Container {
        op: ContainerOp,
        node: Text,
    },
    Replace {
        node: Text,
        image: Option<Text>,
        env: Vec<(String, Text)>,
        /// The compose file's command (and entrypoint) when `None`.
        command: Option<Vec<Text>>,
        entrypoint: Option<Vec<Text>>,
    },
    Destroy {
        node: Text,
        volumes: Vec<String>,
    },
    Partition(PartitionPlan),
    /// `None`: every fault.
    Heal(Option<Text>),
    Reject {
        node: Text,
        port: u16,
        share: f64,
        connections_only: bool,
    },
    Netem {
        node: Text,
        delay: Option<Duration>,
        loss: Option<f64>,
    },
    Network {
        node: Text,
        connected: bool,
    },
    Sleep(Duration),
    Rollout(Box<RolloutPlan>),
    /// Freeze the node for `on` at the start of every `period`, for `duration` or until
    /// the background it runs in is stopped.
    Stall {
        node: Text,
        on: Duration,
        period: Duration,
        duration: Option<Duration>,
    },
    Background(Box<BackgroundPlan>),
    StopBackground(String),
    /// Wait for a line written after an earlier step (the time to effect).
    Log(Box<LogPlan>),
    /// Ask the monitoring Prometheus; the condition holds when the result has a sample.
    Promql(Text),
}

#[derive(Debug, Clone)]
pub enum PartitionPlan {
    Isolate(Text),
    Groups(Vec<Vec<Text>>),
    OneWay { from: Text, to: Vec<Text> },
}

impl Action {
    /// The node the action is about, if one.
    pub fn node(&self) -> Option<&Text> {
        match self {
            Action::Exec { node, .. }
            | Action::Http { node, .. }
            | Action::Run { node, .. }
            | Action::Container { node, .. }
            | Action::Replace { node, .. }
            | Action::Destroy { node, .. }
            | Action::Reject { node, .. }
            | Action::Netem { node, .. }
            | Action::Network { node, .. }
            | Action::Stall { node, .. } => Some(node),
            Action::Partition(PartitionPlan::Isolate(node)) => Some(node),
            Action::Log(l) => Some(&l.node),
            Action::Heal(node) => node.as_ref(),
            Action::Partition(_)
            | Action::Sleep(_)
            | Action::Rollout(_)
            | Action::Background(_)
            | Action::StopBackground(_)
            | Action::Promql(_) => None,
        }
    }

    fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::Partition(_) | Action::Heal(_) | Action::Reject { .. } | Action::Netem { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Stop,
    Start,
    Restart,
    Kill,
    Pause,
    Unpause,
}

impl ContainerOp {
    pub fn verb(self) -> &'static str {
        match self {
            ContainerOp::Stop => "stop",
            ContainerOp::Start => "start",
            ContainerOp::Restart => "restart",
            ContainerOp::Kill => "kill",
            ContainerOp::Pause => "pause",
            ContainerOp::Unpause => "unpause",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Expectation {
    pub exit_code: Option<i64>,
    /// `None`: any 2xx for HTTP steps.
    pub status: Option<u16>,
    pub stdout_contains: Vec<Text>,
    pub stdout_regex: Option<Regex>,
    pub json: Option<(String, Text)>,
}

#[derive(Debug, Clone)]
pub enum Capture {
    Regex(Regex),
    Json(String),
}

#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Plan {
    /// Reads and checks a scenario file (YAML, or a Markdown runbook) with everything it
    /// refers to.
    pub fn load(path: &Path) -> Result<Plan, Vec<Diagnostic>> {
        let (file, markdown): (ScenarioFile, _) = if runbook::is_runbook(path) {
            let (file, rest) = runbook::read(path)?;
            (file, Some(rest))
        } else {
            (yaml::load(path).map_err(|d| vec![d])?, None)
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();

        let compose_path = base.join(&file.cluster.compose.value);
        let compose = if compose_path.is_file() {
            Compose::load(&compose_path).map_err(|mut d| {
                problems.append(&mut d);
            })
        } else {
            problems.push(Diagnostic::at_location(
                path,
                &file.cluster.compose.referenced,
                format!(
                    "compose file `{}` does not exist (paths are relative to the scenario file)",
                    compose_path.display()
                ),
            ));
            Err(())
        };

        let profile_path = base.join(&file.load.profile.value);
        let profile = if profile_path.is_file() {
            match yaml::load::<LoadProfile>(&profile_path) {
                Ok(mut p) => {
                    if let Some(rate) = file.load.rate {
                        p.rate = rate;
                    }
                    if let Some(clients) = file.load.clients {
                        p.clients = clients;
                    }
                    match p.compile() {
                        Ok(compiled) => Ok(compiled),
                        Err(messages) => {
                            problems.extend(
                                messages
                                    .into_iter()
                                    .map(|m| Diagnostic::whole_file(&profile_path, m)),
                            );
                            Err(())
                        }
                    }
                }
                Err(d) => {
                    problems.push(d);
                    Err(())
                }
            }
        } else {
            problems.push(Diagnostic::at_location(
                path,
                &file.load.profile.referenced,
                format!(
                    "load profile `{}` does not exist (paths are relative to the scenario file)",
                    profile_path.display()
                ),
            ));
            Err(())
        };

        for (phase, spec) in [
            ("steady", &file.phases.steady),
            ("procedure", &file.phases.procedure),
            ("recovery", &file.phases.recovery),
        ] {
            if let Err(m) = spec.slo.validate() {
                problems.push(Diagnostic::whole_file(
                    path,
                    format!("phases.{phase}.slo: {m}"),
                ));
            }
        }
        if file.phases.procedure.duration.is_some() {
            problems.push(Diagnostic::whole_file(
                path,
                "phases.procedure.duration: the procedure lasts as long as its steps; remove `duration`",
            ));
        }
        if file.steps.is_empty() {
            problems.push(Diagnostic::whole_file(
                path,
                "`steps` is empty: a procedure needs at least one step",
            ));
        }

        let nodes: Vec<String> = match &compose {
            Ok(c) => c.service_names().map(String::from).collect(),
            Err(()) => Vec::new(),
        };
        let mut planner = Planner {
            file: path,
            compose: compose.as_ref().ok(),
            nodes: &nodes,
            know_nodes: compose.is_ok(),
            captured: BUILTIN_VARS.iter().map(|s| s.to_string()).collect(),
            problems: Vec::new(),
            rollouts: 0,
            in_background: false,
            backgrounds: BTreeSet::new(),
            monitored: file.monitoring.is_some(),
            planned: Vec::new(),
        };
        let mut steps = Vec::new();
        planner.plan_steps(&file.steps, "", 1, &file.vars, &mut steps);
        let mut rollback = Vec::new();
        if let Some(markdown) = &markdown {
            let prefix = runbook::ROLLBACK_PREFIX;
            planner.plan_steps(&markdown.rollback, prefix, 1, &file.vars, &mut rollback);
        }
        problems.append(&mut planner.problems);
        let backup = check_marks(path, &steps, file.backup.as_ref(), &mut problems);
        let faults = all_steps(&steps)
            .into_iter()
            .chain(all_steps(&rollback))
            .any(|s| s.action.is_fault());
        if file.cluster.fault_image.is_none() && faults {
            problems.push(Diagnostic::whole_file(
                path,
                "fault steps need a sidecar image: add `fault_image: <an image with iptables and iproute2>` under `cluster:`",
            ));
        }
        let page = markdown.map(|m| m.into_plan(path, &mut steps, rollback, &mut problems));
        let monitoring = monitoring::plan(
            monitoring::Inputs {
                file: path,
                spec: file.monitoring.as_ref(),
                phases: &file.phases,
                steps: &steps,
                compose: compose.as_ref().ok(),
                vars: &file.vars,
            },
            &mut problems,
        );
        let mut converge = Vec::new();
        for c in &file.checks.converge {
            for n in c.nodes.iter().flatten() {
                if !nodes.is_empty() && !nodes.contains(n) {
                    problems.push(Diagnostic::whole_file(
                        path,
                        format!(
                            "checks.converge `{}`: node `{n}` is not a service of the compose file",
                            c.name
                        ),
                    ));
                }
            }
            let compare = match c.compare.as_deref().map(Regex::new).transpose() {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Diagnostic::whole_file(
                        path,
                        format!("checks.converge `{}`: `compare` is not a valid regular expression: {e}", c.name),
                    ));
                    None
                }
            };
            converge.push(Converge {
                name: c.name.clone(),
                command: substitute(&c.command, |n| file.vars.get(n).cloned()).0,
                nodes: c.nodes.clone().unwrap_or_default(),
                compare,
                timeout: c.timeout.unwrap_or(DEFAULT_CONVERGE),
            });
        }

        for n in &file.checks.removed {
            if !nodes.is_empty() && !nodes.contains(&n.value) {
                problems.push(Diagnostic::at(
                    path,
                    n.referenced.line(),
                    n.referenced.column(),
                    format!(
                        "checks.removed: node `{}` is not a service of the compose file",
                        n.value
                    ),
                ));
            }
        }

        if file.checks.linearizability.budget_per_key == Some(Duration::ZERO) {
            problems.push(Diagnostic::whole_file(
                path,
                "checks.linearizability.budget_per_key: must be above 0 (default 1s): with no time the search decides nothing",
            ));
        }

        let (Ok(compose), Ok(profile)) = (compose, profile) else {
            return Err(problems);
        };

        let load_nodes = match &file.load.nodes {
            Some(list) => {
                for n in &list.value {
                    match compose.service(n) {
                        None => problems.push(Diagnostic::at_location(
                            path,
                            &list.referenced,
                            format!("load.nodes: `{n}` is not a service of {}", compose.file.display()),
                        )),
                        Some(s) if !s.ports.iter().any(|p| p.container_port == profile.source.port) => {
                            problems.push(Diagnostic::at_location(
                                path,
                                &list.referenced,
                                format!(
                                    "load.nodes: `{n}` does not publish port {} that the load profile uses; add `127.0.0.1::{}` to its ports",
                                    profile.source.port, profile.source.port
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                }
                list.value.clone()
            }
            None => compose
                .services
                .iter()
                .filter(|s| s.starts_with_cluster())
                .filter(|s| {
                    s.ports
                        .iter()
                        .any(|p| p.container_port == profile.source.port)
                })
                .map(|s| s.name.clone())
                .collect(),
        };
        if load_nodes.is_empty() {
            problems.push(Diagnostic::whole_file(
                path,
                format!(
                    "no node publishes port {} that the load profile uses: the load has nowhere to go",
                    profile.source.port
                ),
            ));
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        let slos = BTreeMap::from([
            (Phase::Steady, file.phases.steady.slo),
            (Phase::Procedure, file.phases.procedure.slo),
            (Phase::Recovery, file.phases.recovery.slo),
        ]);
        let recovered_error_rate = slos[&Phase::Recovery]
            .max_error_rate
            .unwrap_or(DEFAULT_RECOVERED_ERROR_RATE);
        Ok(Plan {
            file: path.to_path_buf(),
            name: file.name.value,
            description: file.description,
            runbook: file.runbook,
            compose,
            profile,
            load_nodes,
            ready_timeout: file.cluster.ready_timeout.unwrap_or(DEFAULT_READY),
            steady: file.phases.steady.duration.unwrap_or(DEFAULT_STEADY),
            recovery: file.phases.recovery.duration.unwrap_or(DEFAULT_RECOVERY),
            slos,
            steps,
            checks: ChecksPlan {
                data: file.checks.data,
                reads: file.checks.reads,
                health_timeout: file.checks.health_timeout.unwrap_or(DEFAULT_HEALTH),
                converge,
                removed: file
                    .checks
                    .removed
                    .iter()
                    .map(|n| n.value.clone())
                    .collect(),
                recovered_error_rate,
                linearizability_budget: file
                    .checks
                    .linearizability
                    .budget_per_key
                    .unwrap_or(DEFAULT_LINEARIZABILITY_BUDGET),
                unknown_fails: file.checks.linearizability.unknown == UnknownPolicy::Fail,
            },
            fault_image: file.cluster.fault_image,
            backup,
            page,
            monitoring,
        })
    }
}

impl Plan {
    /// Every image the run needs: the topology's and those that steps switch nodes to.
    pub fn images(&self) -> Vec<String> {
        let mut images = self.compose.images();
        let rollback = self.page.iter().flat_map(|r| all_steps(&r.rollback));
        for s in all_steps(&self.steps).into_iter().chain(rollback) {
            match &s.action {
                Action::Replace {
                    image: Some(image), ..
                }
                | Action::Run {
                    image: Some(image), ..
                } if !image.contains("${") => images.push(image.clone()),
                _ => {}
            }
        }
        images.extend(self.fault_image.iter().cloned());
        images.sort();
        images.dedup();
        images
    }
}

struct Planner<'a> {
    file: &'a Path,
    compose: Option<&'a Compose>,
    nodes: &'a [String],
    know_nodes: bool,
    /// Names that will have a value at run time: built-ins and earlier captures.
    captured: BTreeSet<String>,
    problems: Vec<Diagnostic>,
    rollouts: usize,
    /// Planning the steps of a background.
    in_background: bool,
    /// Backgrounds started by the steps planned so far.
    backgrounds: BTreeSet<String>,
    /// The scenario names a Prometheus (`promql` steps need one).
    monitored: bool,
    /// Name and id of every step planned so far, in order (`log` steps refer to them).
    planned: Vec<(String, String)>,
}

impl Planner<'_> {
    /// Plans `specs` into `out`, numbering them from `first` after `prefix`.
    fn plan_steps(
        &mut self,
        specs: &[StepSpec],
        prefix: &str,
        first: usize,
        vars: &BTreeMap<String, String>,
        out: &mut Vec<PlannedStep>,
    ) {
        let mut seen = BTreeSet::new();
        for (i, spec) in specs.iter().enumerate() {
            let id = format!("{prefix}{}", i + first);
            if !seen.insert(spec.name.value.clone()) {
                self.problem(
                    spec,
                    format!(
                        "step name `{}` is used twice; names must be unique",
                        spec.name.value
                    ),
                );
            }
            if let Some(each) = &spec.for_each {
                if count_actions(spec) != 1 {
                    self.problem(
                        spec,
                        "a `for_each` step has no other action: move it into its `steps`".into(),
                    );
                }
                let items: Vec<BTreeMap<String, String>> = match &each.rows {
                    None => each
                        .items
                        .iter()
                        .map(|item| BTreeMap::from([(each.var.clone(), item.clone())]))
                        .collect(),
                    Some(file) => {
                        if !each.items.is_empty() {
                            self.problem(spec, "for_each: give `in` (the items) or `rows` (a file of rows), not both".into());
                        }
                        self.rows(spec, &each.var, file)
                    }
                };
                if items.is_empty() && each.rows.is_none() {
                    self.problem(
                        spec,
                        "for_each.in is empty: list the items to loop over".into(),
                    );
                }
                if spec.expect.is_some() || spec.wait.is_some() || !spec.capture.is_empty() {
                    self.problem(
                        spec,
                        "`expect`, `wait` and `capture` go on the steps inside `for_each`".into(),
                    );
                }
                if self.in_background && spec.marks.is_some() {
                    self.problem(
                        spec,
                        "`marks` cannot be used in a background: put them on a step of the procedure".into(),
                    );
                }
                let when = self.when(spec, vars);
                let before = out.len();
                for (j, item) in items.into_iter().enumerate() {
                    let mut inner = vars.clone();
                    inner.extend(item);
                    self.plan_steps(&each.steps, &format!("{id}.{}.", j + 1), 1, &inner, out);
                }
                // The loop's condition is checked by each of its steps when it comes to run.
                for s in &mut out[before..] {
                    s.when.splice(0..0, when.iter().cloned());
                }
                // A marked loop spans from its first step's start to its last step's end.
                if let (Some(mark), true) = (spec.marks, out.len() > before) {
                    let edge = MarkEdge {
                        mark,
                        step: format!("{id} {}", spec.name.value),
                    };
                    out[before].begins.push(edge.clone());
                    if let Some(last) = out.last_mut() {
                        last.ends.push(edge);
                    }
                }
                continue;
            }
            if let Some(step) = self.plan_step(spec, id, vars) {
                for name in spec.capture.keys() {
                    self.captured.insert(name.clone());
                }
                if let Action::Background(b) = &step.action {
                    self.backgrounds.insert(b.name.clone());
                }
                out.push(step);
            }
        }
    }

    fn plan_step(
        &mut self,
        spec: &StepSpec,
        id: String,
        vars: &BTreeMap<String, String>,
    ) -> Option<PlannedStep> {
        let n = count_actions(spec);
        if n != 1 {
            let what = if n == 0 {
                "has no action"
            } else {
                "has more than one action"
            };
            self.problem(
                spec,
                format!(
                    "step `{}` {what}: give exactly one of exec, http, run, stop, start, restart, kill, pause, unpause, replace, destroy, partition, heal, reject, netem, disconnect, connect, sleep, stall, promql, log, for_each, rollout, background, stop_background",
                    spec.name.value
                ),
            );
            return None;
        }
        let name = self.text(spec, &spec.name.value, vars);
        let node = |this: &mut Self, raw: &str| this.node(spec, raw, vars);
        let action = if let Some(e) = &spec.exec {
            Action::Exec {
                node: node(self, &e.node),
                command: self.text(spec, &e.command, vars),
            }
        } else if let Some(h) = &spec.http {
            Action::Http {
                node: node(self, &h.node),
                port: h.port,
                method: self.method(spec, &h.method, vars),
                path: self.text(spec, &h.path, vars),
                body: h.body.as_ref().map(|b| self.text(spec, b, vars)),
            }
        } else if let Some(r) = &spec.run {
            Action::Run {
                node: node(self, &r.node),
                command: self.text(spec, &r.command, vars),
                image: r.image.as_ref().map(|i| self.text(spec, i, vars)),
            }
        } else if let Some(r) = &spec.replace {
            if r.image.is_none()
                && r.env.is_empty()
                && r.command.is_none()
                && r.entrypoint.is_none()
            {
                self.problem(
                    spec,
                    "replace: give a new `image`, `env`, `command` or `entrypoint`".into(),
                );
            }
            if r.command.as_ref().is_some_and(|c| c.0.is_empty()) {
                self.problem(spec, "replace.command is empty: give the command to run, or leave `command` out to keep the compose file's".into());
            }
            let argv = |this: &mut Self, a: &Option<crate::scenario::Argv>| {
                a.as_ref()
                    .map(|a| a.0.iter().map(|x| this.text(spec, x, vars)).collect())
            };
            Action::Replace {
                node: node(self, &r.node),
                image: r.image.as_ref().map(|i| self.text(spec, i, vars)),
                env: r
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), self.text(spec, v, vars)))
                    .collect(),
                command: argv(self, &r.command),
                entrypoint: argv(self, &r.entrypoint),
            }
        } else if let Some(d) = &spec.destroy {
            let n = node(self, &d.node);
            let volumes: Vec<Text> = d.volumes.iter().map(|v| self.text(spec, v, vars)).collect();
            if let Some(service) = self.compose.and_then(|c| c.service(&n)) {
                for v in volumes.iter().filter(|v| !v.contains("${")) {
                    let mounted = service
                        .mounts
                        .iter()
                        .any(|m| m.source == MountSource::Volume(v.clone()));
                    if !mounted {
                        self.problem(spec, format!("destroy: `{n}` has no volume `{v}` mounted"));
                    }
                }
            }
            Action::Destroy { node: n, volumes }
        } else if let Some(p) = &spec.partition {
            let plan = match (&p.isolate, &p.groups, &p.from, &p.to) {
                (Some(n), None, None, None) => PartitionPlan::Isolate(node(self, n)),
                (None, Some(groups), None, None) => {
                    if groups.len() < 2 {
                        self.problem(spec, "partition.groups needs at least two groups".into());
                    }
                    PartitionPlan::Groups(
                        groups
                            .iter()
                            .map(|g| g.iter().map(|n| node(self, n)).collect())
                            .collect(),
                    )
                }
                (None, None, Some(from), Some(to)) => PartitionPlan::OneWay {
                    from: node(self, from),
                    to: to.iter().map(|n| node(self, n)).collect(),
                },
                _ => {
                    self.problem(
                        spec,
                        "partition: give exactly one of `isolate: NODE`, `groups: [[…], […]]`, or `from: NODE` with `to: [NODES]`".into(),
                    );
                    return None;
                }
            };
            Action::Partition(plan)
        } else if let Some(h) = &spec.heal {
            Action::Heal((h != "all").then(|| node(self, h)))
        } else if let Some(r) = &spec.reject {
            if !(0.0..=1.0).contains(&r.share) {
                self.problem(
                    spec,
                    format!("reject.share must be between 0 and 1, got {}", r.share),
                );
            }
            let connections_only = match r.per.as_deref() {
                None | Some("packets") => false,
                Some("connections") => true,
                Some(other) => {
                    self.problem(
                        spec,
                        format!("reject.per is `packets` or `connections`, not `{other}`"),
                    );
                    false
                }
            };
            Action::Reject {
                node: node(self, &r.node),
                port: r.port,
                share: r.share,
                connections_only,
            }
        } else if let Some(n) = &spec.netem {
            if n.delay.is_none() && n.loss.is_none() {
                self.problem(spec, "netem: give `delay`, `loss`, or both".into());
            }
            if n.loss.is_some_and(|l| !(0.0..=1.0).contains(&l)) {
                self.problem(spec, "netem.loss must be between 0 and 1".into());
            }
            Action::Netem {
                node: node(self, &n.node),
                delay: n.delay,
                loss: n.loss,
            }
        } else if let Some(n) = &spec.disconnect {
            Action::Network {
                node: node(self, n),
                connected: false,
            }
        } else if let Some(n) = &spec.connect {
            Action::Network {
                node: node(self, n),
                connected: true,
            }
        } else if let Some(d) = spec.sleep {
            Action::Sleep(d)
        } else if let Some(q) = &spec.promql {
            self.promql(spec, q, vars)
        } else if let Some(l) = &spec.log {
            if self.in_background {
                // Its time to effect belongs to the procedure's record, as a rollout's does.
                self.problem(
                    spec,
                    "a `log` step cannot run in a background: wait for the change in the procedure"
                        .into(),
                );
            }
            Action::Log(Box::new(self.log(spec, l, vars)?))
        } else if let Some(r) = &spec.rollout {
            if self.in_background {
                self.problem(spec, "a `rollout` cannot run in a background".into());
            }
            Action::Rollout(Box::new(self.rollout(spec, &id, r, vars)?))
        } else if let Some(st) = &spec.stall {
            if st.on.is_zero() || st.on >= st.period {
                self.problem(
                    spec,
                    format!(
                        "stall.on ({}) must be above 0 and shorter than stall.period ({}): the node has to run in between",
                        humantime::format_duration(st.on),
                        humantime::format_duration(st.period)
                    ),
                );
            }
            if st.duration.is_some_and(|d| d.is_zero()) {
                self.problem(spec, "stall.duration must be above 0".into());
            }
            if st.duration.is_none() && !self.in_background {
                self.problem(spec, "stall: without `duration` it runs until stopped: give `duration`, or run it in a `background` and stop it with `stop_background`".into());
            }
            Action::Stall {
                node: node(self, &st.node),
                on: st.on,
                period: st.period,
                duration: st.duration,
            }
        } else if let Some(b) = &spec.background {
            Action::Background(Box::new(self.background(spec, &id, b, vars)?))
        } else if let Some(name) = &spec.stop_background {
            let name = self.text(spec, name, vars);
            if self.in_background {
                self.problem(
                    spec,
                    "`stop_background` cannot run in a background: stop it from the procedure"
                        .into(),
                );
            } else if !self.backgrounds.contains(&name) {
                let known: Vec<&str> = self.backgrounds.iter().map(String::as_str).collect();
                self.problem(
                    spec,
                    format!(
                        "stop_background: no earlier step starts a background named `{name}` (started so far: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                );
            }
            Action::StopBackground(name)
        } else {
            let (op, raw) = [
                (ContainerOp::Stop, &spec.stop),
                (ContainerOp::Start, &spec.start),
                (ContainerOp::Restart, &spec.restart),
                (ContainerOp::Kill, &spec.kill),
                (ContainerOp::Pause, &spec.pause),
                (ContainerOp::Unpause, &spec.unpause),
            ]
            .into_iter()
            .find_map(|(op, raw)| raw.as_ref().map(|r| (op, r)))?;
            Action::Container {
                op,
                node: node(self, raw),
            }
        };
        let expect = self.expectation(spec, &action, vars);
        let recovers = match &spec.recovers {
            None => None,
            Some(r) => match r
                .node
                .as_ref()
                .map(|n| node(self, n))
                .or_else(|| action.node().cloned())
            {
                Some(n) => Some(Recovers {
                    node: n,
                    within: r.within,
                }),
                None => {
                    self.problem(
                        spec,
                        "recovers: this step has no node of its own: give `recovers.node`".into(),
                    );
                    None
                }
            },
        };
        let captures = spec
            .capture
            .iter()
            .filter_map(|(name, c)| self.capture(spec, name, c, vars))
            .collect();
        if matches!(action, Action::Background(_))
            && (spec.wait.is_some() || !spec.capture.is_empty())
        {
            self.problem(
                spec,
                "`wait` and `capture` go on the steps inside `background`".into(),
            );
        }
        if self.in_background && (spec.marks.is_some() || spec.recovers.is_some()) {
            self.problem(
                spec,
                "`marks` and `recovers` cannot be used in a background: put them on a step of the procedure".into(),
            );
        }
        let when = self.when(spec, vars);
        self.planned.push((name.clone(), id.clone()));
        let marked = spec.marks.map(|mark| MarkEdge {
            mark,
            step: format!("{id} {name}"),
        });
        Some(PlannedStep {
            begins: marked.iter().cloned().collect(),
            ends: marked.into_iter().collect(),
            id,
            name,
            prose: self.text(spec, &spec.prose, vars),
            action,
            expect,
            captures,
            when,
            wait: spec.wait.as_ref().map(|w| Wait {
                timeout: w.timeout,
                interval: w.interval.unwrap_or(DEFAULT_WAIT_INTERVAL),
            }),
            timeout: spec.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT),
            recovers,
            source: None,
        })
    }

    /// A node reference, checked against the compose file when it is known now.
    fn node(&mut self, spec: &StepSpec, raw: &str, vars: &BTreeMap<String, String>) -> Text {
        let node = self.text(spec, raw, vars);
        if self.know_nodes && !node.contains("${") && !self.nodes.contains(&node) {
            self.problem(
                spec,
                format!(
                    "node `{node}` is not a service of the compose file (known: {})",
                    self.nodes.join(", ")
                ),
            );
        }
        node
    }

    fn rollout(
        &mut self,
        spec: &StepSpec,
        id: &str,
        r: &RolloutSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<RolloutPlan> {
        self.rollouts += 1;
        if self.rollouts == 2 {
            self.problem(
                spec,
                "only one `rollout` per scenario (a rollout inside `for_each` runs once per item)"
                    .into(),
            );
        }
        if spec.marks.is_some() {
            self.problem(spec, "a `rollout` step cannot carry `marks`".into());
        }
        if r.stages.is_empty() {
            self.problem(spec, "rollout.stages is empty: list the canary's share at each stage, e.g. [1, 5, 10, 50, 100], or the configuration stages".into());
        }
        let a = &r.analysis;
        let interval = a.interval.unwrap_or(DEFAULT_INTERVAL);
        let window = a.window.unwrap_or(DEFAULT_WINDOW);
        if interval.is_zero() || window.is_zero() {
            self.problem(
                spec,
                "rollout.analysis: `interval` and `window` must be above 0".into(),
            );
        }
        let evaluations = a.evaluations.unwrap_or(DEFAULT_EVALUATIONS);
        let limits = FailureLimits {
            cumulative: a.failure_limit.unwrap_or(DEFAULT_FAILURE_LIMIT),
            consecutive: a
                .consecutive_failure_limit
                .unwrap_or(DEFAULT_CONSECUTIVE_FAILURE_LIMIT),
            consecutive_errors: a
                .consecutive_error_limit
                .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
        };
        if evaluations == 0
            || limits.cumulative == 0
            || limits.consecutive == 0
            || limits.consecutive_errors == 0
        {
            self.problem(spec, "rollout.analysis: `evaluations`, `failure_limit`, `consecutive_failure_limit` and `consecutive_error_limit` must be at least 1".into());
        }
        let ungated = r.stages.iter().any(|st| match st {
            StageSpec::Config(c) => c.gates.is_empty(),
            StageSpec::Traffic(_) => true,
        });
        if r.gates.is_empty() && ungated {
            self.problem(
                spec,
                "rollout.gates is empty and a stage has no `gates` of its own: a stage without gates promotes anything".into(),
            );
        }
        let gates: Vec<Gate> = r
            .gates
            .iter()
            .filter_map(|g| self.gate(spec, g, vars))
            .collect();
        let percents: Vec<f64> = r
            .stages
            .iter()
            .filter_map(|st| match st {
                StageSpec::Traffic(p) => Some(*p),
                StageSpec::Config(_) => None,
            })
            .collect();
        let (traffic, stages) = if percents.len() == r.stages.len() {
            let traffic = self.traffic(spec, r, &percents, vars);
            (
                traffic,
                percents.into_iter().map(StagePlan::Traffic).collect(),
            )
        } else if percents.is_empty() {
            let stages = self.config_stages(spec, id, r, vars);
            (None, stages)
        } else {
            self.problem(spec, "rollout.stages: give every stage as a share of traffic, or every stage as `{ name, steps, hold }`, not both".into());
            (None, Vec::new())
        };
        if traffic.is_none() {
            for g in gates.iter().chain(stages.iter().flat_map(StagePlan::gates)) {
                let relative = match g.kind {
                    GateKind::ErrorRate {
                        max_over_baseline, ..
                    } => max_over_baseline.is_some(),
                    GateKind::Latency { max_ratio, .. } => max_ratio.is_some(),
                    _ => false,
                };
                if relative {
                    self.problem(spec, format!("gate `{}`: a configuration rollout has no baseline to compare with: give an absolute limit (`max`)", g.name));
                }
            }
        }
        // Configuration stages take `<id>.<stage>.<n>`; the rollback's steps come after them.
        let first = match &traffic {
            Some(_) => 1,
            None => stages.len() + 1,
        };
        let rollback = self.rollback(spec, id, first, traffic.is_some(), r, vars)?;
        let stage_steps = stages.iter().flat_map(|st| match st {
            StagePlan::Config { steps, .. } => steps.as_slice(),
            StagePlan::Traffic(_) => &[],
        });
        if rollback
            .steps()
            .into_iter()
            .chain(stage_steps)
            .any(|s| !s.begins.is_empty() || !s.ends.is_empty())
        {
            self.problem(spec, "`marks` cannot be used inside a rollback".into());
        }
        Some(RolloutPlan {
            traffic,
            stages,
            interval,
            window,
            evaluations,
            min_samples: a.min_samples.unwrap_or(DEFAULT_MIN_SAMPLES),
            no_data: a.no_data.unwrap_or(NoDataPolicy::Fail),
            max_extensions: a.max_extensions.unwrap_or(DEFAULT_MAX_EXTENSIONS),
            limits,
            gates,
            rollback,
            expect: r.expect,
        })
    }

    /// The rollback: a kill switch and steps, numbered `<id>.<first>` on, or levers, each
    /// `<id>.<first + k>` with its steps and then its verification under it.
    fn rollback(
        &mut self,
        spec: &StepSpec,
        id: &str,
        first: usize,
        traffic: bool,
        r: &RolloutSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<RollbackPlan> {
        let rb = &r.rollback;
        let Some(ks) = &rb.kill_switch else {
            return self.levers(spec, id, first, traffic, r, vars);
        };
        if !rb.levers.is_empty() || rb.restored_by.is_some() {
            self.problem(spec, "rollout.rollback: give a `kill_switch` (and `steps`), or `levers` tried in order, not both".into());
        }
        if ks.for_each.is_some() || ks.rollout.is_some() {
            self.problem(
                ks,
                "the kill switch is one action: not a `for_each` or a `rollout`".into(),
            );
            return None;
        }
        let kill_switch = self.plan_step(ks, format!("{id}.{first}"), vars)?;
        let mut steps = Vec::new();
        self.plan_steps(&rb.steps, &format!("{id}."), first + 1, vars, &mut steps);
        Some(RollbackPlan::KillSwitch {
            kill_switch: Box::new(kill_switch),
            within: rb.within.unwrap_or(DEFAULT_KILL_SWITCH_WITHIN),
            steps,
        })
    }

    fn levers(
        &mut self,
        spec: &StepSpec,
        id: &str,
        first: usize,
        traffic: bool,
        r: &RolloutSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<RollbackPlan> {
        let rb = &r.rollback;
        if rb.levers.is_empty() {
            self.problem(spec, "rollout.rollback needs a `kill_switch`, or `levers` tried in order (each `{ name, steps, verify }`)".into());
            return None;
        }
        if traffic {
            self.problem(spec, "rollout.rollback: a traffic rollout needs a `kill_switch` (its time to effect is the canary's last request); `levers` are for configuration stages".into());
        }
        if !rb.steps.is_empty() || rb.within.is_some() {
            self.problem(spec, "rollout.rollback: `steps` and `within` go with a `kill_switch`; with `levers`, each lever has its own `steps` and `verify`".into());
        }
        let mut names = BTreeSet::new();
        let mut levers = Vec::new();
        for (k, l) in rb.levers.iter().enumerate() {
            if !names.insert(l.name.as_str()) {
                self.problem(
                    spec,
                    format!("rollout.rollback: two levers are named `{}`", l.name),
                );
            }
            if l.steps.is_empty() || l.verify.is_empty() {
                self.problem(spec, format!("rollback lever `{}` needs `steps` that apply it and `verify` steps that prove service is back", l.name));
            }
            let prefix = format!("{id}.{}.", first + k);
            let (mut steps, mut verify) = (Vec::new(), Vec::new());
            self.plan_steps(&l.steps, &prefix, 1, vars, &mut steps);
            self.plan_steps(&l.verify, &prefix, l.steps.len() + 1, vars, &mut verify);
            levers.push(LeverPlan {
                name: l.name.clone(),
                steps,
                verify,
            });
        }
        let restored_by = match &rb.restored_by {
            None => 0,
            Some(name) => {
                match rb.levers.iter().position(|l| &l.name == name) {
                    Some(i) => i,
                    None => {
                        self.problem(spec, format!("rollout.rollback.restored_by: no lever is named `{name}` (levers: {})", rb.levers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")));
                        0
                    }
                }
            }
        };
        Some(RollbackPlan::Levers {
            levers,
            restored_by,
        })
    }

    /// A traffic rollout's backends and weights; `None` (with the problems said) when the
    /// rollout lacks them.
    fn traffic(
        &mut self,
        spec: &StepSpec,
        r: &RolloutSpec,
        percents: &[f64],
        vars: &BTreeMap<String, String>,
    ) -> Option<TrafficPlan> {
        for (i, p) in percents.iter().enumerate() {
            if !(*p > 0.0 && *p <= 100.0) {
                self.problem(spec, format!("rollout.stages: {p} is not a share of traffic in percent (above 0, at most 100)"));
            }
            if i > 0 && *p <= percents[i - 1] {
                self.problem(
                    spec,
                    format!(
                        "rollout.stages must grow: {p} comes after {}",
                        percents[i - 1]
                    ),
                );
            }
        }
        let (Some(canary), Some(t)) = (&r.canary, &r.traffic) else {
            self.problem(spec, "rollout: traffic stages need `canary`, `baseline` and `traffic` (the command that sets the weights)".into());
            return None;
        };
        if r.baseline.is_empty() {
            self.problem(
                spec,
                "rollout.baseline is empty: name the backends the canary is compared with".into(),
            );
        }
        if r.baseline.contains(canary) {
            self.problem(
                spec,
                format!("rollout: `{canary}` is both the canary and a baseline backend"),
            );
        }
        let weight_total = r.weight_total.unwrap_or(100 * r.baseline.len() as u32);
        if weight_total == 0 {
            self.problem(spec, "rollout.weight_total must be at least 1".into());
        }
        let node = self.node(spec, &t.node, vars);
        // The stage variables exist only while the traffic command runs.
        let fresh: Vec<&str> = STAGE_VARS
            .into_iter()
            .filter(|v| self.captured.insert(v.to_string()))
            .collect();
        let command = self.text(spec, &t.command, vars);
        for v in fresh {
            self.captured.remove(v);
        }
        Some(TrafficPlan {
            canary: canary.clone(),
            baseline: r.baseline.clone(),
            weight_total,
            node,
            command,
        })
    }

    /// Configuration stages: their steps planned as `<id>.<stage>.<n>`. The traffic keys
    /// have no meaning here.
    fn config_stages(
        &mut self,
        spec: &StepSpec,
        id: &str,
        r: &RolloutSpec,
        vars: &BTreeMap<String, String>,
    ) -> Vec<StagePlan> {
        if r.canary.is_some()
            || !r.baseline.is_empty()
            || r.traffic.is_some()
            || r.weight_total.is_some()
        {
            self.problem(spec, "rollout: `canary`, `baseline`, `traffic` and `weight_total` are for traffic stages; configuration stages apply themselves with their `steps`".into());
        }
        let mut names = BTreeSet::new();
        let mut out = Vec::new();
        for (i, st) in r.stages.iter().enumerate() {
            let StageSpec::Config(c) = st else { continue };
            if !names.insert(c.name.clone()) {
                self.problem(
                    spec,
                    format!("rollout.stages: two stages are named `{}`", c.name),
                );
            }
            if c.steps.is_empty() {
                self.problem(
                    spec,
                    format!(
                        "rollout stage `{}` has no steps: a stage applies a change",
                        c.name
                    ),
                );
            }
            let mut steps = Vec::new();
            self.plan_steps(&c.steps, &format!("{id}.{}.", i + 1), 1, vars, &mut steps);
            let gates: Vec<Gate> = c
                .gates
                .iter()
                .filter_map(|g| self.gate(spec, g, vars))
                .collect();
            for g in &gates {
                if r.gates.iter().any(|rg| rg.name == g.name) {
                    self.problem(spec, format!("rollout stage `{}`: gate `{}` is already a gate of every stage; give the stage's its own name", c.name, g.name));
                }
            }
            out.push(StagePlan::Config {
                name: c.name.clone(),
                steps,
                hold: c.hold.unwrap_or_default(),
                gates,
            });
        }
        out
    }

    fn gate(
        &mut self,
        spec: &StepSpec,
        g: &GateSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<Gate> {
        let kinds = [
            g.error_rate.is_some(),
            g.latency.is_some(),
            g.metric.is_some(),
            g.promql.is_some(),
            g.command.is_some(),
            g.http.is_some(),
        ];
        let valued = g.command.is_some() || g.http.is_some();
        let value_keys = g.value.is_some()
            || g.max.is_some()
            || g.min.is_some()
            || g.fail_above.is_some()
            || g.fail_below.is_some();
        if kinds.iter().filter(|k| **k).count() == 1 && !valued && value_keys {
            self.problem(
                spec,
                format!("gate `{}`: `value`, `max`, `min`, `fail_above` and `fail_below` are for `command` and `http` gates", g.name),
            );
        }
        if kinds.iter().filter(|k| **k).count() == 1 && valued {
            return Some(Gate {
                name: g.name.clone(),
                kind: self.value_gate(spec, g, vars)?,
            });
        }
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.problem(
                spec,
                format!(
                    "gate `{}`: give exactly one of `error_rate`, `latency`, `metric`, `promql`, `command`, `http`",
                    g.name
                ),
            );
            return None;
        }
        let kind = match (&g.error_rate, &g.latency, &g.metric, &g.promql) {
            (Some(e), None, None, None) => {
                if e.max.is_none() && e.max_over_baseline.is_none() {
                    self.problem(
                        spec,
                        format!(
                            "gate `{}`: give `max`, `max_over_baseline`, or both",
                            g.name
                        ),
                    );
                }
                for v in [e.max, e.max_over_baseline].into_iter().flatten() {
                    if !(0.0..=1.0).contains(&v) {
                        self.problem(spec, format!("gate `{}`: error rates are ratios from 0 to 1 (0.01 means 1 %), got {v}", g.name));
                    }
                }
                GateKind::ErrorRate {
                    max: e.max,
                    max_over_baseline: e.max_over_baseline,
                }
            }
            (None, Some(l), None, None) => {
                let quantile = l.quantile.unwrap_or(0.95);
                if !(quantile > 0.0 && quantile <= 1.0) {
                    self.problem(spec, format!("gate `{}`: latency.quantile is from 0 to 1 (0.95 for p95), got {quantile}", g.name));
                }
                if l.max.is_none() && l.max_ratio.is_none() {
                    self.problem(
                        spec,
                        format!(
                            "gate `{}`: give latency `max`, `max_ratio`, or both",
                            g.name
                        ),
                    );
                }
                GateKind::Latency {
                    quantile,
                    max: l.max.map(|d| d.as_micros() as u64),
                    max_ratio: l.max_ratio,
                    floor: l.floor.unwrap_or_default().as_micros() as u64,
                }
            }
            (None, None, Some(m), None) => {
                if m.max.is_none() && m.max_increase.is_none() {
                    self.problem(
                        spec,
                        format!(
                            "gate `{}`: give metric `max`, `max_increase`, or both",
                            g.name
                        ),
                    );
                }
                GateKind::Metric(MetricGate {
                    node: self.node(spec, &m.node, vars),
                    port: m.port,
                    path: m.path.clone().unwrap_or_else(|| "/metrics".into()),
                    metric: m.name.clone(),
                    labels: m.labels.clone(),
                    max_increase: m.max_increase,
                    max: m.max,
                })
            }
            (None, None, None, Some(p)) => {
                if !self.monitored {
                    self.problem(
                        spec,
                        format!("gate `{}`: a `promql` gate asks the Prometheus of `monitoring.prometheus`: add a `monitoring:` block (docs/monitoring.md)", g.name),
                    );
                }
                let query = self.text(spec, &p.query.value, vars);
                if let Err(e) = promql::check(&query) {
                    self.problems.push(Diagnostic::at_location(
                        self.file,
                        &p.query.referenced,
                        format!("gate `{}`: promql `{query}` does not parse: {e}", g.name),
                    ));
                }
                let bound = match Bound::from_spec(p.max, p.min) {
                    Ok(b) => b,
                    Err(m) => {
                        self.problem(spec, format!("gate `{}`: promql: {m}", g.name));
                        return None;
                    }
                };
                GateKind::Promql { query, bound }
            }
            _ => unreachable!("exactly one kind of gate is given, checked above"),
        };
        Some(Gate {
            name: g.name.clone(),
            kind,
        })
    }

    /// A `command` or `http` gate: where its JSON comes from, the pointer, and Argo Rollouts'
    /// success condition (`max`/`min`) with an optional failure condition beyond it.
    fn value_gate(
        &mut self,
        spec: &StepSpec,
        g: &GateSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<GateKind> {
        let source = match (&g.command, &g.http) {
            (Some(c), _) => ValueSource::Command {
                node: self.node(spec, &c.node, vars),
                command: self.text(spec, &c.command, vars),
            },
            (None, Some(h)) => ValueSource::Http {
                node: self.node(spec, &h.node, vars),
                port: h.port,
                method: self.method(spec, &h.method, vars),
                path: self.text(spec, &h.path, vars),
                body: h.body.as_ref().map(|b| self.text(spec, b, vars)),
            },
            (None, None) => unreachable!("a value gate has a command or an endpoint"),
        };
        let Some(pointer) = &g.value else {
            self.problem(
                spec,
                format!("gate `{}`: give `value`, the JSON pointer to the number to judge (e.g. /error_rate)", g.name),
            );
            return None;
        };
        self.pointer(spec, &format!("gate `{}`: value", g.name), pointer);
        let bound = match Bound::from_spec(g.max, g.min) {
            Ok(b) => b,
            Err(m) => {
                self.problem(spec, format!("gate `{}`: {m}", g.name));
                return None;
            }
        };
        let fail_beyond = match (bound, g.fail_above, g.fail_below) {
            (_, None, None) => None,
            (Bound::Max(m), Some(f), None) if f >= m => Some(f),
            (Bound::Min(m), None, Some(f)) if f <= m => Some(f),
            _ => {
                self.problem(
                    spec,
                    format!("gate `{}`: `fail_above` goes with `max` and is at least it; `fail_below` goes with `min` and is at most it", g.name),
                );
                return None;
            }
        };
        Some(GateKind::Value {
            source,
            pointer: pointer.clone(),
            bound,
            fail_beyond,
        })
    }

    fn expectation(
        &mut self,
        spec: &StepSpec,
        action: &Action,
        vars: &BTreeMap<String, String>,
    ) -> Expectation {
        let default = ExpectSpec::default();
        let e = spec.expect.as_ref().unwrap_or(&default);
        let runs_command = matches!(action, Action::Exec { .. } | Action::Run { .. });
        let has_output = runs_command || matches!(action, Action::Http { .. } | Action::Promql(_));
        if !has_output && spec.expect.is_some() {
            self.problem(
                spec,
                "`expect` needs an exec, run or http step: this action has no output".into(),
            );
        }
        if !matches!(action, Action::Http { .. }) && e.status.is_some() {
            self.problem(
                spec,
                "expect.status is for http steps; use expect.exit_code for commands".into(),
            );
        }
        if !runs_command && e.exit_code.is_some() {
            self.problem(spec, "expect.exit_code is for exec and run steps".into());
        }
        let stdout_regex = e
            .stdout_regex
            .as_ref()
            .and_then(|r| self.regex(spec, "expect.stdout_regex", r));
        Expectation {
            exit_code: e.exit_code.or(runs_command.then_some(0)),
            status: e.status.as_ref().and_then(|raw| {
                let text = self.text(spec, &raw.0, vars);
                let code = text.parse::<u16>().ok().filter(|c| (100..600).contains(c));
                if code.is_none() {
                    self.problem(
                        spec,
                        format!("expect.status `{text}` is not an HTTP status (100 to 599)"),
                    );
                }
                code
            }),
            stdout_contains: e
                .stdout_contains
                .iter()
                .map(|s| self.text(spec, s, vars))
                .collect(),
            stdout_regex,
            json: e.json.as_ref().map(|j| {
                self.pointer(spec, "expect.json.pointer", &j.pointer);
                (j.pointer.clone(), self.text(spec, &j.equals.0, vars))
            }),
        }
    }

    fn capture(
        &mut self,
        spec: &StepSpec,
        name: &str,
        c: &CaptureSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<(String, Capture, Option<Fallback>)> {
        let fallback = match (c.optional, &c.default) {
            (false, None) => None,
            (true, None) => Some(Fallback::Clear),
            (true, Some(d)) => Some(Fallback::Default(self.text(spec, d, vars))),
            (false, Some(_)) => {
                self.problem(
                    spec,
                    format!(
                        "capture.{name}: `default` is for optional captures: add `optional: true`"
                    ),
                );
                None
            }
        };
        let capture = match (&c.regex, &c.json) {
            (Some(r), None) => {
                Capture::Regex(self.regex(spec, &format!("capture.{name}.regex"), r)?)
            }
            (None, Some(p)) => {
                self.pointer(spec, &format!("capture.{name}.json"), p);
                Capture::Json(p.clone())
            }
            _ => {
                self.problem(
                    spec,
                    format!("capture.{name}: give exactly one of `regex` or `json`"),
                );
                return None;
            }
        };
        Some((name.to_string(), capture, fallback))
    }

    /// The step's condition; the variables it names must be defined before it.
    fn when(&mut self, spec: &StepSpec, vars: &BTreeMap<String, String>) -> Vec<When> {
        let Some(w) = &spec.when else {
            return Vec::new();
        };
        let when = match w {
            WhenSpec::Set(text) => {
                if !text.contains("${") {
                    self.problem(spec, format!("when: `{text}` names no variable: write `when: ${{name}}` (runs when it has a value) or `when: {{ var: name, equals: value }}`"));
                }
                When::Set(self.text(spec, text, vars))
            }
            WhenSpec::Equals(e) => When::Equals {
                value: self.text(spec, &format!("${{{}}}", e.var), vars),
                equals: self.text(spec, &e.equals.0, vars),
            },
        };
        vec![when]
    }

    /// A background's steps, numbered under the starting step. What they capture stays
    /// theirs: the procedure cannot rely on a value a concurrent task may not have set yet.
    fn background(
        &mut self,
        spec: &StepSpec,
        id: &str,
        b: &crate::scenario::BackgroundSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<BackgroundPlan> {
        if self.in_background {
            self.problem(
                spec,
                "a background cannot start another background: put the steps in this one".into(),
            );
            return None;
        }
        let name = self.text(spec, &b.name, vars);
        if name.contains("${") || name.trim().is_empty() {
            self.problem(spec, format!("background.name `{name}` must be known before the run: use text, `vars` and loop variables only"));
        }
        if self.backgrounds.contains(&name) {
            self.problem(
                spec,
                format!("background `{name}` is started twice; names must be unique"),
            );
        }
        if b.steps.is_empty() {
            self.problem(
                spec,
                "background.steps is empty: list the steps to run alongside the procedure".into(),
            );
        }
        if spec.marks.is_some() {
            self.problem(spec, "a `background` step cannot carry `marks`".into());
        }
        let captured = self.captured.clone();
        self.in_background = true;
        let mut steps = Vec::new();
        self.plan_steps(&b.steps, &format!("{id}."), 1, vars, &mut steps);
        self.in_background = false;
        self.captured = captured;
        Some(BackgroundPlan {
            name,
            steps,
            repeat: b.repeat,
        })
    }

    fn regex(&mut self, spec: &StepSpec, field: &str, r: &str) -> Option<Regex> {
        Regex::new(r)
            .map_err(|e| {
                self.problem(
                    spec,
                    format!("{field} is not a valid regular expression: {e}"),
                )
            })
            .ok()
    }

    fn log(
        &mut self,
        spec: &StepSpec,
        l: &LogSpec,
        vars: &BTreeMap<String, String>,
    ) -> Option<LogPlan> {
        let after = match &l.after {
            None => self.planned.last().cloned(),
            Some(a) => {
                let a = self.text(spec, a, vars);
                self.planned
                    .iter()
                    .rev()
                    .find(|(name, _)| *name == a)
                    .cloned()
            }
        };
        let Some((after_name, after_id)) = after else {
            let why = match &l.after {
                None => "log: there is no step before this one: name the step the line must come after with `after`".to_string(),
                Some(a) => format!("log.after: no step before this one is named `{a}`"),
            };
            self.problem(spec, why);
            return None;
        };
        if l.file.is_some() != l.time.is_some() {
            self.problem(spec, "log: a `file` needs `time`, the JSON pointer to each line's time (its lines are dated by it); the node's output is dated by Docker and takes neither".into());
        }
        if let Some(t) = &l.time {
            self.pointer(spec, "log.time", t);
        }
        let (m, stops) = match (&l.line, &l.stops) {
            (Some(m), None) => (m, false),
            (None, Some(m)) => (m, true),
            _ => {
                self.problem(spec, "log: give exactly one of `line` (wait for the first line like it) and `stops` (wait until lines like it stop)".into());
                return None;
            }
        };
        if m.contains.is_none() && m.json.is_empty() {
            self.problem(
                spec,
                "log: say what the line holds: `contains` and/or `json`".into(),
            );
        }
        if !stops && l.quiet.is_some() {
            self.problem(spec, "log.quiet goes with `stops`".into());
        }
        for p in m.json.keys() {
            self.pointer(spec, "log json", p);
        }
        if !m.json.is_empty() && l.file.is_none() {
            self.problem(spec, "log: `json` reads a file's JSON lines; the node's output is matched with `contains`".into());
        }
        Some(LogPlan {
            node: self.node(spec, &l.node, vars),
            file: l.file.as_ref().map(|f| self.text(spec, f, vars)),
            time: l.time.clone(),
            after: (after_id, after_name),
            line: LineMatch {
                contains: m.contains.as_ref().map(|c| self.text(spec, c, vars)),
                json: m
                    .json
                    .iter()
                    .map(|(k, v)| (k.clone(), self.text(spec, &v.0, vars)))
                    .collect(),
            },
            stops,
            quiet: l.quiet.unwrap_or(DEFAULT_QUIET),
            within: l.within,
        })
    }

    /// The rows of a `for_each.rows` file (relative to the scenario) as variables: each
    /// field as `var.field`, and `var` as the row's number from 1. CSV has a header line;
    /// JSONL one object per line, its values as text (a string by its contents).
    fn rows(&mut self, spec: &StepSpec, var: &str, file: &str) -> Vec<BTreeMap<String, String>> {
        let path = self.file.parent().unwrap_or(Path::new(".")).join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    spec,
                    format!("for_each.rows: cannot read {}: {e}", path.display()),
                );
                return Vec::new();
            }
        };
        let mut rows = Vec::new();
        if file.ends_with(".jsonl") {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
                    Ok(object) => rows.push(
                        object
                            .into_iter()
                            .map(|(k, v)| match v {
                                serde_json::Value::String(s) => (k, s),
                                other => (k, other.to_string()),
                            })
                            .collect::<Vec<_>>(),
                    ),
                    Err(e) => self.problems.push(Diagnostic::at(
                        &path,
                        i as u64 + 1,
                        1,
                        format!("a row of for_each.rows is not a JSON object: {e}"),
                    )),
                }
            }
        } else if file.ends_with(".csv") {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header = match reader.headers() {
                Ok(h) => h.clone(),
                Err(e) => {
                    self.problems
                        .push(Diagnostic::at(&path, 1, 1, format!("for_each.rows: {e}")));
                    return Vec::new();
                }
            };
            for record in reader.records() {
                match record {
                    Ok(r) => rows.push(
                        header
                            .iter()
                            .map(String::from)
                            .zip(r.iter().map(String::from))
                            .collect(),
                    ),
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        self.problems.push(Diagnostic::at(
                            &path,
                            line,
                            1,
                            format!("for_each.rows: {e}"),
                        ));
                    }
                }
            }
        } else {
            self.problem(
                spec,
                format!("for_each.rows: `{file}` is neither .csv nor .jsonl"),
            );
        }
        if rows.is_empty() {
            self.problem(
                spec,
                format!("for_each.rows: {} has no rows", path.display()),
            );
        }
        rows.into_iter()
            .enumerate()
            .map(|(i, fields)| {
                let mut vars: BTreeMap<String, String> = fields
                    .into_iter()
                    .map(|(k, v)| (format!("{var}.{k}"), v))
                    .collect();
                vars.insert(var.to_string(), (i + 1).to_string());
                vars
            })
            .collect()
    }

    /// The method in capitals (it may be a variable known now, as a row's); one that is not
    /// HTTP's is a problem.
    fn method(&mut self, spec: &StepSpec, raw: &str, vars: &BTreeMap<String, String>) -> String {
        let method = self.text(spec, raw, vars).to_ascii_uppercase();
        if !["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"].contains(&method.as_str()) {
            self.problem(spec, format!("http.method `{raw}` is not an HTTP method"));
        }
        method
    }

    fn pointer(&mut self, spec: &StepSpec, field: &str, p: &str) {
        if !p.is_empty() && !p.starts_with('/') {
            self.problem(
                spec,
                format!("{field} `{p}` is not a JSON pointer: it starts with `/`, e.g. `/health`"),
            );
        }
    }

    /// Substitutes the variables known now; a reference to a name that no variable, loop
    /// or earlier capture defines is an error.
    fn text(&mut self, spec: &StepSpec, raw: &str, vars: &BTreeMap<String, String>) -> Text {
        let (out, unknown) = substitute(raw, |name| vars.get(name).cloned());
        for name in unknown {
            if !self.captured.contains(&name) {
                self.problem(
                    spec,
                    format!(
                        "`${{{name}}}` is not defined: define it under `vars:`, as a `for_each` variable, or capture it in an earlier step"
                    ),
                );
            }
        }
        out
    }

    /// A `promql` step: checked now when no run-time variable is left in it.
    fn promql(
        &mut self,
        spec: &StepSpec,
        query: &Spanned<String>,
        vars: &BTreeMap<String, String>,
    ) -> Action {
        if !self.monitored {
            self.problem(
                spec,
                "a `promql` step asks the Prometheus of `monitoring.prometheus`: add a `monitoring:` block (docs/monitoring.md)".into(),
            );
        }
        let text = self.text(spec, &query.value, vars);
        if !text.contains("${") {
            if let Err(e) = promql::check(&text) {
                self.problems.push(Diagnostic::at_location(
                    self.file,
                    &query.referenced,
                    format!("promql `{text}` does not parse: {e} (Prometheus's grammar, as `promtool` reads it)"),
                ));
            }
        }
        Action::Promql(text)
    }

    fn problem(&mut self, spec: &StepSpec, message: String) {
        self.problems.push(Diagnostic::at_location(
            self.file,
            &spec.name.referenced,
            message,
        ));
    }
}

/// Every planned step, with the kill switch and rollback steps of a rollout.
pub fn all_steps(steps: &[PlannedStep]) -> Vec<&PlannedStep> {
    let mut all = Vec::new();
    for s in steps {
        all.push(s);
        if let Action::Rollout(r) = &s.action {
            for st in &r.stages {
                if let StagePlan::Config { steps, .. } = st {
                    all.extend(all_steps(steps));
                }
            }
            for st in r.rollback.steps() {
                all.extend(all_steps(std::slice::from_ref(st)));
            }
        }
        if let Action::Background(b) = &s.action {
            all.extend(all_steps(&b.steps));
        }
    }
    all
}

/// Backup mode needs exactly one span marked `backup` and one marked `disaster` after it; a
/// `backup:` block without them has nothing to judge.
fn check_marks(
    path: &Path,
    steps: &[PlannedStep],
    spec: Option<&crate::scenario::BackupSpec>,
    problems: &mut Vec<Diagnostic>,
) -> Option<BackupPlan> {
    let edges = |mark: Mark| -> (Vec<usize>, Vec<String>) {
        let at: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.begins.iter().any(|e| e.mark == mark))
            .map(|(i, _)| i)
            .collect();
        let names = steps
            .iter()
            .flat_map(|s| &s.begins)
            .filter(|e| e.mark == mark)
            .map(|e| e.step.clone())
            .collect();
        (at, names)
    };
    let (backups, backup_names) = edges(Mark::Backup);
    let (disasters, disaster_names) = edges(Mark::Disaster);
    if backups.is_empty() && disasters.is_empty() {
        if spec.is_some() {
            problems.push(Diagnostic::whole_file(
                path,
                "`backup:` needs the steps to mark the backup and the disaster: add `marks: backup` to the step that takes the backup and `marks: disaster` to the one that loses the cluster",
            ));
        }
        return None;
    }
    let mut ok = true;
    for (names, mark) in [(&backup_names, "backup"), (&disaster_names, "disaster")] {
        if names.len() != 1 {
            ok = false;
            problems.push(Diagnostic::whole_file(
                path,
                if names.is_empty() {
                    format!("a backup and restore needs one step marked `{mark}` (mark a whole loop by putting `marks` on its `for_each` step)")
                } else {
                    format!(
                        "`marks: {mark}` is on {} steps ({}): mark one step, or a whole loop by putting `marks` on its `for_each` step",
                        names.len(),
                        names.join(", ")
                    )
                },
            ));
        }
    }
    if ok && disasters[0] <= backups[0] {
        ok = false;
        problems.push(Diagnostic::whole_file(
            path,
            "the step marked `disaster` must come after the one marked `backup`",
        ));
    }
    ok.then(|| BackupPlan {
        rto: spec.and_then(|b| b.rto),
        rpo: spec.and_then(|b| b.rpo),
    })
}

fn count_actions(s: &StepSpec) -> usize {
    [
        s.exec.is_some(),
        s.http.is_some(),
        s.run.is_some(),
        s.stop.is_some(),
        s.start.is_some(),
        s.restart.is_some(),
        s.kill.is_some(),
        s.pause.is_some(),
        s.unpause.is_some(),
        s.replace.is_some(),
        s.destroy.is_some(),
        s.partition.is_some(),
        s.heal.is_some(),
        s.reject.is_some(),
        s.netem.is_some(),
        s.disconnect.is_some(),
        s.connect.is_some(),
        s.sleep.is_some(),
        s.for_each.is_some(),
        s.rollout.is_some(),
        s.background.is_some(),
        s.stop_background.is_some(),
        s.stall.is_some(),
        s.promql.is_some(),
        s.log.is_some(),
    ]
    .into_iter()
    .filter(|x| *x)
    .count()
}

/// Replaces each `${name}` for which `lookup` has a value; returns the text and the names
/// left unresolved (which stay in the text as written).
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unresolved = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        unresolved.push(name.to_string());
                        out.push_str(&rest[start..start + 3 + end]);
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    (out, unresolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_keeps_unknown_names() {
        let (out, unknown) = substitute("a ${x} b ${y} c ${", |n| (n == "x").then(|| "1".into()));
        assert_eq!(out, "a 1 b ${y} c ${");
        assert_eq!(unknown, ["y"]);
    }

    #[test]
    fn bundled_scenarios_plan() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") {
                if let Err(errs) = Plan::load(&p) {
                    panic!("{}: {:?}", p.display(), errs);
                }
            }
        }
    }

    /// Plans a scenario on the bundled etcd cluster with these steps (YAML, indented as
    /// the items of `steps:`).
    fn plan_steps_of(steps: &str) -> Result<Plan, Vec<String>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        let text = format!(
            "name: t\ndescription: t\ncluster:\n  compose: {}\nload:\n  profile: {}\nsteps:\n{steps}",
            root.join("compose/etcd-3.yaml").display(),
            root.join("loadprofiles/etcd-kv.yaml").display()
        );
        std::fs::write(&file, text).unwrap();
        Plan::load(&file).map_err(|d| d.into_iter().map(|d| d.message).collect())
    }

    fn problems_of(steps: &str) -> Vec<String> {
        match plan_steps_of(steps) {
            Ok(_) => panic!("expected problems, the plan is valid:\n{steps}"),
            Err(p) => p,
        }
    }

    #[test]
    fn an_undecided_key_fails_by_default_and_the_budget_must_be_above_zero() {
        let step = "  - name: Wait\n    sleep: 1s\n";
        let plan = plan_steps_of(step).unwrap();
        assert!(plan.checks.unknown_fails);
        assert_eq!(
            plan.checks.linearizability_budget,
            DEFAULT_LINEARIZABILITY_BUDGET
        );
        let lenient = format!(
            "{step}checks:\n  linearizability: {{ budget_per_key: 250ms, unknown: pass }}\n"
        );
        let plan = plan_steps_of(&lenient).unwrap();
        assert!(!plan.checks.unknown_fails);
        assert_eq!(
            plan.checks.linearizability_budget,
            Duration::from_millis(250)
        );
        let zero = format!("{step}checks:\n  linearizability: {{ budget_per_key: 0s }}\n");
        let problems = problems_of(&zero);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("checks.linearizability.budget_per_key: must be above 0")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_background_plans_its_steps_under_the_starting_step() {
        let plan = plan_steps_of(
            r#"
  - name: Check
    exec: { node: etcd1, command: "true" }
  - name: Flap etcd3
    background:
      name: flap
      repeat: true
      steps:
        - name: Stall etcd3
          stall: { node: etcd3, on: 400ms, period: 1s }
        - name: Find something
          exec: { node: etcd1, command: echo x }
          capture: { inner: { regex: x } }
  - name: Stop the flapping
    stop_background: flap
"#,
        )
        .unwrap();
        let Action::Background(b) = &plan.steps[1].action else {
            panic!("{:?}", plan.steps[1].action)
        };
        assert_eq!(b.name, "flap");
        assert!(b.repeat);
        let ids: Vec<&str> = b.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["2.1", "2.2"]);
        assert!(matches!(
            b.steps[0].action,
            Action::Stall { on, period, duration: None, .. }
                if on == Duration::from_millis(400) && period == Duration::from_secs(1)
        ));
        assert!(matches!(&plan.steps[2].action, Action::StopBackground(n) if n == "flap"));
        // What a background captures is not the procedure's.
        let problems = problems_of(
            r#"
  - name: Start
    background:
      name: bg
      steps:
        - name: Find something
          exec: { node: etcd1, command: echo x }
          capture: { inner: { regex: x } }
  - name: Use it
    exec: { node: etcd1, command: "echo ${inner}" }
"#,
        );
        assert!(
            problems[0].contains("`${inner}` is not defined"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_backgrounds_and_stalls_are_refused() {
        let p = problems_of(
            r#"
  - name: Stall too long
    background:
      name: s
      steps:
        - name: Stall
          stall: { node: etcd3, on: 1s, period: 1s }
"#,
        );
        assert!(
            p[0].contains("stall.on (1s) must be above 0 and shorter than stall.period (1s)"),
            "{p:?}"
        );
        let p = problems_of(
            "  - name: Stall
    stall: { node: etcd3, on: 100ms, period: 1s }
",
        );
        assert!(
            p[0].contains("without `duration` it runs until stopped"),
            "{p:?}"
        );
        assert!(plan_steps_of(
            "  - name: Stall
    stall: { node: etcd3, on: 100ms, period: 1s, duration: 3s }
"
        )
        .is_ok());
        let p = problems_of(
            "  - name: Stop
    stop_background: nope
",
        );
        assert!(
            p[0].contains(
                "no earlier step starts a background named `nope` (started so far: none)"
            ),
            "{p:?}"
        );
        let p = problems_of(
            r#"
  - name: One
    background: { name: x, steps: [{ name: s, sleep: 1s }] }
  - name: Two
    background: { name: x, steps: [{ name: s, sleep: 1s }] }
"#,
        );
        assert!(p[0].contains("background `x` is started twice"), "{p:?}");
        let p = problems_of(
            r#"
  - name: One
    background:
      name: x
      steps:
        - name: Inner
          background: { name: y, steps: [{ name: s, sleep: 1s }] }
        - name: Stop it
          stop_background: x
        - name: Marked
          marks: backup
          sleep: 1s
"#,
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("cannot start another background"), "{p:?}");
        assert!(
            p[1].contains("`stop_background` cannot run in a background"),
            "{p:?}"
        );
        assert!(
            p[2].contains("`marks` and `recovers` cannot be used in a background"),
            "{p:?}"
        );
        let p = problems_of(
            "  - name: Empty
    background: { name: e, steps: [] }
",
        );
        assert!(p[0].contains("background.steps is empty"), "{p:?}");
    }

    #[test]
    fn optional_captures_and_conditions() {
        let plan = plan_steps_of(
            r#"
  - name: Each member
    for_each:
      var: member
      in: [etcd1, etcd2]
      steps:
        - name: Ask ${member}
          http: { node: "${member}", port: 2379, path: /metrics }
          capture:
            is_leader: { regex: '(?m)^etcd_server_is_leader 1$', optional: true }
            role: { regex: 'role=(\w+)', optional: true, default: "follower of ${member}" }
        - name: Note ${member}
          when: ${is_leader}
          exec: { node: "${member}", command: "echo ${member}" }
        - name: Compare
          when: { var: role, equals: leader }
          sleep: 1ms
  - name: Only when a var says so
    when: { var: member_count, equals: 3 }
    for_each:
      var: m
      in: [etcd1]
      steps:
        - name: Inner
          when: ${is_leader}
          sleep: 1ms
"#
            .replace("member_count", "run_id")
            .as_str(),
        )
        .unwrap();
        let ask = &plan.steps[0];
        assert_eq!(ask.captures[0].0, "is_leader");
        assert_eq!(ask.captures[0].2, Some(Fallback::Clear));
        assert_eq!(
            ask.captures[1].2,
            Some(Fallback::Default("follower of etcd1".into()))
        );
        assert_eq!(plan.steps[1].when, [When::Set("${is_leader}".into())]);
        assert_eq!(
            plan.steps[2].when,
            [When::Equals {
                value: "${role}".into(),
                equals: "leader".into()
            }]
        );
        // A loop's condition goes first on each of its steps.
        assert_eq!(
            plan.steps.last().unwrap().when,
            [
                When::Equals {
                    value: "${run_id}".into(),
                    equals: "3".into()
                },
                When::Set("${is_leader}".into())
            ]
        );

        let p = problems_of(
            "  - name: Guarded
    when: ${leader}
    sleep: 1s
",
        );
        assert!(p[0].contains("`${leader}` is not defined"), "{p:?}");
        let p = problems_of(
            "  - name: Guarded
    when: { var: leader, equals: etcd1 }
    sleep: 1s
",
        );
        assert!(p[0].contains("`${leader}` is not defined"), "{p:?}");
        let p = problems_of(
            "  - name: Guarded
    when: leader
    sleep: 1s
",
        );
        assert!(p[0].contains("names no variable"), "{p:?}");
        let p = problems_of(
            "  - name: Ask
    exec: { node: etcd1, command: echo }
    capture: { x: { regex: x, default: y } }
",
        );
        assert!(p[0].contains("`default` is for optional captures"), "{p:?}");
    }

    #[test]
    fn replace_sets_the_command_with_variables() {
        let plan = plan_steps_of(
            r#"
  - name: Restore etcd1
    replace:
      node: etcd1
      command: [etcd, "--name=m-${run_id}", --initial-cluster-token, "t-${seed}"]
      entrypoint: /usr/bin/env
"#,
        )
        .unwrap();
        let Action::Replace {
            command,
            entrypoint,
            image,
            ..
        } = &plan.steps[0].action
        else {
            panic!()
        };
        assert_eq!(image, &None);
        assert_eq!(
            command.as_deref().unwrap(),
            [
                "etcd",
                "--name=m-${run_id}",
                "--initial-cluster-token",
                "t-${seed}"
            ]
        );
        assert_eq!(entrypoint.as_deref().unwrap(), ["/usr/bin/env"]);
        let p = problems_of(
            "  - name: Nothing
    replace: { node: etcd1 }
",
        );
        assert!(
            p[0].contains("give a new `image`, `env`, `command` or `entrypoint`"),
            "{p:?}"
        );
    }

    const CONFIG_ROLLOUT: &str = "  - name: Raise the sample rate
    rollout:
      stages:
        - name: 1 %
          steps:
            - { name: Set 0.01, exec: { node: etcd1, command: 'echo 0.01' } }
            - { name: Restart, restart: etcd1 }
          hold: 20s
        - name: 5 %
          steps:
            - { name: Set 0.05, exec: { node: etcd1, command: 'echo 0.05' } }
      gates:
        - name: analyzer error rate
          command: { node: etcd1, command: analyze --window 10 }
          value: /error_rate
          max: 0.05
          fail_above: 0.1
        - { name: served errors, error_rate: { max: 0.02 } }
      rollback:
        kill_switch: { name: Turn it off, exec: { node: etcd1, command: 'echo off' } }
        steps:
          - name: Skipped from now on
            log: { node: etcd1, file: /log.jsonl, time: /ts, stops: { json: { /status: applied } }, within: 60s }
      expect: promoted
";

    #[test]
    fn configuration_stages_number_their_steps_before_the_rollback() {
        let plan = plan_steps_of(CONFIG_ROLLOUT).unwrap();
        let Action::Rollout(r) = &plan.steps[0].action else {
            panic!()
        };
        assert!(r.traffic.is_none());
        let ids: Vec<Vec<&str>> = r
            .stages
            .iter()
            .map(|st| match st {
                StagePlan::Config { steps, .. } => steps.iter().map(|s| s.id.as_str()).collect(),
                StagePlan::Traffic(_) => panic!(),
            })
            .collect();
        assert_eq!(ids, [vec!["1.1.1", "1.1.2"], vec!["1.2.1"]]);
        assert!(
            matches!(&r.stages[0], StagePlan::Config { hold, .. } if *hold == Duration::from_secs(20))
        );
        let RollbackPlan::KillSwitch {
            kill_switch, steps, ..
        } = &r.rollback
        else {
            panic!()
        };
        assert_eq!(kill_switch.id, "1.3");
        assert_eq!(steps[0].id, "1.4");
        let Action::Log(l) = &steps[0].action else {
            panic!()
        };
        // By default the line is awaited after the step before: the kill switch.
        assert_eq!(l.after, ("1.3".to_string(), "Turn it off".to_string()));
        assert!(l.stops && l.quiet == DEFAULT_QUIET);
        assert_eq!(
            r.gates[0].kind,
            GateKind::Value {
                source: ValueSource::Command {
                    node: "etcd1".into(),
                    command: "analyze --window 10".into()
                },
                pointer: "/error_rate".into(),
                bound: Bound::Max(0.05),
                fail_beyond: Some(0.1),
            }
        );
    }

    /// CONFIG_ROLLOUT with per-stage gates and a rollback of levers.
    fn levers_rollout() -> String {
        let ks = "      rollback:\n        kill_switch: { name: Turn it off, exec: { node: etcd1, command: 'echo off' } }\n        steps:\n          - name: Skipped from now on\n            log: { node: etcd1, file: /log.jsonl, time: /ts, stops: { json: { /status: applied } }, within: 60s }\n";
        assert!(CONFIG_ROLLOUT.contains(ks));
        let levers = "      rollback:
        levers:
          - name: Flag off
            steps: [{ name: Post the flag, exec: { node: etcd1, command: 'echo off' } }]
            verify:
              - { name: Config without it, exec: { node: etcd1, command: 'echo ok' } }
              - { name: Analyzer is clean, exec: { node: etcd1, command: 'echo ok' } }
          - name: Safe mode
            steps: [{ name: Post safe mode, exec: { node: etcd1, command: 'echo safe' } }]
            verify: [{ name: Config is safe, exec: { node: etcd1, command: 'echo ok' } }]
";
        CONFIG_ROLLOUT.replace(ks, levers).replace(
            "          hold: 20s\n",
            "          hold: 20s\n          gates:\n            - { name: mismatch (1 %), command: { node: etcd1, command: analyze }, value: /mismatch_rate, max: 0.15 }\n",
        )
    }

    #[test]
    fn levers_are_numbered_after_the_stages_with_their_verification_under_each() {
        let plan = plan_steps_of(&levers_rollout()).unwrap();
        let Action::Rollout(r) = &plan.steps[0].action else {
            panic!()
        };
        let RollbackPlan::Levers {
            levers,
            restored_by,
        } = &r.rollback
        else {
            panic!("{:?}", r.rollback)
        };
        assert_eq!(*restored_by, 0);
        let ids = |l: &LeverPlan| -> (Vec<String>, Vec<String>) {
            (
                l.steps.iter().map(|s| s.id.clone()).collect(),
                l.verify.iter().map(|s| s.id.clone()).collect(),
            )
        };
        assert_eq!(
            ids(&levers[0]),
            (vec!["1.3.1".into()], vec!["1.3.2".into(), "1.3.3".into()])
        );
        assert_eq!(
            ids(&levers[1]),
            (vec!["1.4.1".into()], vec!["1.4.2".into()])
        );
        // The first stage judges its own gate beside the rollout's; the second only those.
        assert_eq!(r.stages[0].gates().len(), 1);
        assert_eq!(r.stages[0].gates()[0].name, "mismatch (1 %)");
        assert!(r.stages[1].gates().is_empty());
        // Every step, stages' and levers' too, is visible to validation and images.
        assert!(all_steps(&plan.steps).iter().any(|s| s.id == "1.4.2"));
        assert!(all_steps(&plan.steps).iter().any(|s| s.id == "1.2.1"));
        let named = levers_rollout().replace(
            "        levers:\n",
            "        restored_by: Safe mode\n        levers:\n",
        );
        let plan = plan_steps_of(&named).unwrap();
        let Action::Rollout(r) = &plan.steps[0].action else {
            panic!()
        };
        assert!(matches!(
            r.rollback,
            RollbackPlan::Levers { restored_by: 1, .. }
        ));
    }

    #[test]
    fn levers_and_stage_gates_say_what_is_wrong() {
        let text = levers_rollout();
        let bad = |from: &str, to: &str| {
            assert!(text.contains(from), "{from}");
            problems_of(&text.replace(from, to)).join("\n")
        };
        let p = bad("        levers:\n", "        kill_switch: { name: Off, exec: { node: etcd1, command: 'echo off' } }\n        levers:\n");
        assert!(
            p.contains("a `kill_switch` (and `steps`), or `levers` tried in order, not both"),
            "{p}"
        );
        let p = bad(
            "        levers:\n",
            "        restored_by: Redeploy\n        levers:\n",
        );
        assert!(
            p.contains("no lever is named `Redeploy` (levers: Flag off, Safe mode)"),
            "{p}"
        );
        let p = bad("            verify: [{ name: Config is safe, exec: { node: etcd1, command: 'echo ok' } }]\n", "            verify: []\n");
        assert!(
            p.contains("rollback lever `Safe mode` needs `steps` that apply it and `verify` steps"),
            "{p}"
        );
        let p = bad("name: Safe mode", "name: Flag off");
        assert!(p.contains("two levers are named `Flag off`"), "{p}");
        let p = bad("name: mismatch (1 %)", "name: served errors");
        assert!(
            p.contains("gate `served errors` is already a gate of every stage"),
            "{p}"
        );
        let p = bad(
            "/mismatch_rate, max: 0.15",
            "/mismatch_rate, max: 0.15, fail_below: 1",
        );
        assert!(p.contains("fail_below"), "{p}");
        let p = bad(
            "    rollout:\n",
            "    rollout:\n      analysis: { consecutive_error_limit: 0 }\n",
        );
        assert!(
            p.contains("`consecutive_error_limit` must be at least 1"),
            "{p}"
        );
        // Gates only in some stages leave the others ungated.
        let ungated = text.replace(
            "      gates:\n        - name: analyzer error rate\n          command: { node: etcd1, command: analyze --window 10 }\n          value: /error_rate\n          max: 0.05\n          fail_above: 0.1\n        - { name: served errors, error_rate: { max: 0.02 } }\n",
            "      gates: []\n",
        );
        assert_ne!(ungated, text);
        let p = problems_of(&ungated).join("\n");
        assert!(p.contains("a stage has no `gates` of its own"), "{p}");
    }

    #[test]
    fn configuration_rollouts_and_value_gates_say_what_is_wrong() {
        let bad = |from: &str, to: &str| {
            assert!(CONFIG_ROLLOUT.contains(from), "{from}");
            problems_of(&CONFIG_ROLLOUT.replace(from, to)).join("\n")
        };
        let p = bad("        - name: 5 %\n          steps:\n            - { name: Set 0.05, exec: { node: etcd1, command: 'echo 0.05' } }\n", "        - 5\n");
        assert!(p.contains("every stage as a share of traffic, or every stage as `{ name, steps, hold }`, not both"), "{p}");
        let p = bad("{ max: 0.02 }", "{ max: 0.02, max_over_baseline: 0.01 }");
        assert!(
            p.contains("a configuration rollout has no baseline to compare with"),
            "{p}"
        );
        let p = bad("      stages:\n", "      canary: etcd3\n      stages:\n");
        assert!(
            p.contains("`canary`, `baseline`, `traffic` and `weight_total` are for traffic stages"),
            "{p}"
        );
        let p = bad("          value: /error_rate\n", "");
        assert!(p.contains("give `value`, the JSON pointer"), "{p}");
        let p = bad(
            "          fail_above: 0.1\n",
            "          fail_above: 0.01\n",
        );
        assert!(
            p.contains("`fail_above` goes with `max` and is at least it"),
            "{p}"
        );
        let p = bad(
            "          max: 0.05\n",
            "          max: 0.05\n          min: 0.01\n",
        );
        assert!(p.contains("give exactly one of `max` and `min`"), "{p}");
        let p = bad("{ max: 0.02 }", "{ max: 0.02 }, value: /x");
        assert!(p.contains("are for `command` and `http` gates"), "{p}");
        let p = bad("file: /log.jsonl, time: /ts,", "file: /log.jsonl,");
        assert!(p.contains("a `file` needs `time`"), "{p}");
        let p = bad(
            "log: { node: etcd1,",
            "log: { node: etcd1, after: Nothing like it,",
        );
        assert!(
            p.contains("log.after: no step before this one is named `Nothing like it`"),
            "{p}"
        );
        let p = bad(
            "stops: { json: { /status: applied } }",
            "stops: { json: { /status: applied } }, line: { contains: x }",
        );
        assert!(p.contains("exactly one of `line`"), "{p}");
        let p = problems_of(
            "  - name: Watch in the background
    background:
      name: watch
      steps:
        - { name: Poke, exec: { node: etcd1, command: 'true' } }
        - name: See it
          log: { node: etcd1, line: { contains: poked }, within: 5s }
",
        )
        .join("\n");
        assert!(p.contains("a `log` step cannot run in a background"), "{p}");
    }

    #[test]
    fn for_each_rows_unrolls_a_smoke_pack_of_csv_or_jsonl_rows() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("smoke.csv"),
            "name,path,contains\nconfig,/api/config,\"classic\"\nhealth,/healthz,ok\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("smoke.jsonl"),
            "{\"name\": \"v\", \"status\": 200}\n\n{\"name\": \"w\", \"status\": 404}\n",
        )
        .unwrap();
        let scenario = |rows: &str| {
            let file = dir.path().join("s.yaml");
            std::fs::write(
                &file,
                format!(
                    "name: t\ndescription: t\ncluster:\n  compose: {}\nload:\n  profile: {}\nsteps:
  - name: Smoke
    for_each:
      var: row
      rows: {rows}
      steps:
        - name: Smoke ${{row}} ${{row.name}}
          http: {{ node: etcd1, port: 2379, path: '/${{row.name}}' }}
",
                    root.join("compose/etcd-3.yaml").display(),
                    root.join("loadprofiles/etcd-kv.yaml").display()
                ),
            )
            .unwrap();
            Plan::load(&file).map_err(|d| d.into_iter().map(|d| d.to_string()).collect::<Vec<_>>())
        };
        let plan = scenario("smoke.csv").unwrap();
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Smoke 1 config", "Smoke 2 health"]);
        assert_eq!(plan.steps[1].id, "1.2.1");
        let plan = scenario("smoke.jsonl").unwrap();
        let Action::Http { path, .. } = &plan.steps[1].action else {
            panic!()
        };
        assert_eq!(path, "/w");
        let e = scenario("missing.csv").unwrap_err().join("\n");
        assert!(e.contains("for_each.rows: cannot read"), "{e}");
        std::fs::write(dir.path().join("bad.jsonl"), "{\"name\": 1}\n[1]\n").unwrap();
        let e = scenario("bad.jsonl").unwrap_err().join("\n");
        assert!(
            e.contains("bad.jsonl:2:1: a row of for_each.rows is not a JSON object"),
            "{e}"
        );
        std::fs::write(dir.path().join("ragged.csv"), "a,b\n1,2\n3\n").unwrap();
        let e = scenario("ragged.csv").unwrap_err().join("\n");
        assert!(e.contains("ragged.csv:3:1: for_each.rows:"), "{e}");
    }
}
