//! What every reporter shows, built once from the summary: sections of plain text and
//! tables of typed cells that each reporter only formats (escapes, marks up), so two reports
//! of one run cannot drift apart.

use firedrill_types::monitoring::MonitoringResult;
use firedrill_types::summary::{
    BackupResult, CheckResult, DataResult, EffectResult, GateOutcome, KillSwitchResult,
    LeverOutcome, LeverResult, LoadStats, NodeRecord, PhaseResult, ReadResult, RecoveryResult,
    RolloutResult, StageResult, StepOutput, StepRecord, StepStatus, Summary, Verdict,
};

use crate::{
    capitalized, data_sentence, first_line, millis, percent, plural, reads_sentence, run_clock,
    seconds_from_ms, seconds_tenths, slo_value, tally, wall_clock, FOLD_LINES, INCIDENT_FILE,
};

/// How much of a log line the time to effect quotes: enough to recognise it.
const LINE_CHARS: usize = 100;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers: right-aligned.
    Right,
    /// Free text that may span lines.
    Wrap,
}

pub type Column = (&'static str, Align);

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Shown as code: an image, a path.
    Code(String),
    /// A judgement: `Some(pass)`, or `None` when there was nothing to judge.
    Mark {
        pass: Option<bool>,
        word: &'static str,
    },
}

impl Cell {
    fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }

    fn mark(pass: bool, good: &'static str, bad: &'static str) -> Cell {
        Cell::Mark {
            pass: Some(pass),
            word: if pass { good } else { bad },
        }
    }
}

pub struct Table {
    pub columns: &'static [Column],
    pub rows: Vec<Vec<Cell>>,
}

/// A few of the offending items of a check, under a heading that says how many there were.
pub struct Examples {
    /// `Lost writes (3 of 12)`.
    pub heading: String,
    /// One example a line.
    pub text: String,
}

/// The run at the top of a report.
pub struct Header {
    pub scenario: String,
    pub verdict: Verdict,
    /// How each part of the judgement came out, in one sentence.
    pub tally: String,
    /// Why the run failed, one line each; `None` for a pass without reasons.
    pub failure: Option<Vec<String>>,
    pub description: Option<String>,
    pub runbook: Option<String>,
    /// (term, value, shown as code).
    pub facts: Vec<(&'static str, String, bool)>,
}

pub fn header(s: &Summary) -> Header {
    let failure = (s.verdict == Verdict::Fail || !s.reasons.is_empty()).then(|| {
        if s.reasons.is_empty() {
            vec!["the run recorded no reason".to_string()]
        } else {
            s.reasons.iter().map(|r| r.trim().to_string()).collect()
        }
    });
    let description = s.description.trim();
    Header {
        scenario: s.scenario.clone(),
        verdict: s.verdict,
        tally: tally(s),
        failure,
        description: (!description.is_empty()).then(|| description.to_string()),
        runbook: s.runbook.as_ref().map(|r| r.trim().to_string()),
        facts: vec![
            ("Scenario file", s.file.clone(), true),
            ("Seed", s.seed.to_string(), true),
            ("Run id", s.run_id.clone(), true),
            ("Started", wall_clock(&s.started_at), false),
            ("Duration", seconds_from_ms(s.duration_ms), false),
        ],
    }
}

pub fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    }
}

/// One step of the procedure as it ran.
pub struct Step {
    pub status: StepStatus,
    pub id: String,
    pub name: String,
    pub prose: Option<String>,
    pub action: String,
    pub ran: Option<Ran>,
}

/// What a step that was not skipped did.
pub struct Ran {
    /// Why it failed: one line, or a block of several.
    pub error: Option<Error>,
    pub output: Output,
    /// `Started at 10.012 s on the run clock, took 0.412 s, 1 attempt`.
    pub timing: String,
    pub transcript: String,
}

pub enum Error {
    Line(String),
    Block(String),
}

/// A step's output: `label` names it with its exit code or HTTP status.
pub struct Output {
    pub label: String,
    pub stdout: Option<Stream>,
    pub stderr: Option<Stream>,
}

pub struct Stream {
    pub label: String,
    pub text: String,
    pub lines: usize,
    /// Long enough to be folded away.
    pub folded: bool,
}

pub fn steps(steps: &[StepRecord]) -> Vec<Step> {
    steps.iter().map(step).collect()
}

fn step(s: &StepRecord) -> Step {
    let prose = s.prose.trim();
    let ran = (s.status != StepStatus::Skipped).then(|| {
        let failed = s.status == StepStatus::Failed;
        let error = failed.then(|| {
            let error = s.error.as_deref().unwrap_or("the run recorded no error");
            if error.contains('\n') {
                Error::Block(error.to_string())
            } else {
                Error::Line(error.trim().to_string())
            }
        });
        Ran {
            error,
            output: output(if failed { "Output" } else { "Expected output" }, &s.output),
            timing: format!(
                "Started at {} s on the run clock, took {}, {}",
                run_clock(s.started),
                seconds_from_ms(s.duration_ms),
                plural(s.attempts as usize, "attempt", "attempts"),
            ),
            transcript: s.transcript.clone(),
        }
    });
    Step {
        status: s.status,
        id: s.id.clone(),
        name: s.name.clone(),
        prose: (!prose.is_empty()).then(|| prose.to_string()),
        action: s.action.clone(),
        ran,
    }
}

fn output(label: &str, output: &StepOutput) -> Output {
    let status: Vec<String> = output
        .exit_code
        .map(|c| format!("exit code {c}"))
        .into_iter()
        .chain(output.http_status.map(|s| format!("HTTP {s}")))
        .collect();
    let label = if status.is_empty() {
        label.to_string()
    } else {
        format!("{label} ({})", status.join(", "))
    };
    Output {
        stdout: stream(&label, &output.stdout),
        stderr: stream("stderr", &output.stderr),
        label,
    }
}

pub(crate) fn stream(label: &str, text: &str) -> Option<Stream> {
    let lines = text.lines().count();
    (!text.is_empty()).then(|| Stream {
        label: label.to_string(),
        text: text.to_string(),
        lines,
        folded: lines > FOLD_LINES,
    })
}

/// The phases' numbers and their SLOs; either table may have no rows.
pub struct ServiceLevels {
    pub phases: Table,
    pub slos: Table,
}

pub fn service_levels(phases: &[PhaseResult]) -> ServiceLevels {
    const PHASES: &[Column] = &[
        ("Phase", Align::Left),
        ("Window (s)", Align::Left),
        ("Ops", Align::Right),
        ("Errors", Align::Right),
        ("Error rate", Align::Right),
        ("p50", Align::Right),
        ("p99", Align::Right),
        ("Longest unavailability", Align::Right),
    ];
    const SLOS: &[Column] = &[
        ("Phase", Align::Left),
        ("SLO", Align::Left),
        ("Limit", Align::Right),
        ("Observed", Align::Right),
        ("Result", Align::Left),
    ];
    ServiceLevels {
        phases: Table {
            columns: PHASES,
            rows: phases
                .iter()
                .map(|p| {
                    [
                        p.phase.name().to_string(),
                        format!("{} – {}", run_clock(p.start), run_clock(p.end)),
                        p.ops.to_string(),
                        p.errors.to_string(),
                        percent(p.error_rate),
                        millis(p.p50_ms),
                        millis(p.p99_ms),
                        millis(p.longest_unavailable_ms),
                    ]
                    .map(Cell::Text)
                    .to_vec()
                })
                .collect(),
        },
        slos: Table {
            columns: SLOS,
            rows: phases
                .iter()
                .flat_map(|p| p.slos.iter().map(move |slo| (p, slo)))
                .map(|(p, slo)| {
                    vec![
                        Cell::text(p.phase.name()),
                        Cell::text(&slo.name),
                        Cell::Text(slo_value(slo.limit, slo.unit)),
                        Cell::Text(slo_value(slo.observed, slo.unit)),
                        Cell::mark(slo.pass, "met", "breached"),
                    ]
                })
                .collect(),
        },
    }
}

/// A check of the whole history (data, reads): the sentence, the counts, what they mean,
/// and a few examples.
pub struct HistoryCheck {
    pub pass: bool,
    /// `No lost writes.`
    pub sentence: String,
    pub counts: Table,
    pub note: &'static str,
    pub examples: Vec<Examples>,
}

pub fn data(d: &DataResult) -> HistoryCheck {
    const COUNTS: &[Column] = &[
        ("Keys read back", Align::Right),
        ("Acked writes", Align::Right),
        ("Lost", Align::Right),
        ("Unexpected", Align::Right),
        ("Recovered", Align::Right),
    ];
    HistoryCheck {
        pass: d.pass,
        sentence: capitalized(&data_sentence(d)) + ".",
        counts: counts(
            COUNTS,
            &[d.keys, d.acked, d.lost, d.unexpected, d.recovered],
        ),
        note: "Lost: acknowledged, but gone after recovery. Unexpected: a value no write \
               produced, or one whose write failed. Recovered: an unknown outcome whose value \
               is present (allowed).",
        examples: [
            examples("Lost writes", d.lost, &d.lost_examples),
            examples("Unexpected values", d.unexpected, &d.unexpected_examples),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

pub fn reads(r: &ReadResult) -> HistoryCheck {
    const COUNTS: &[Column] = &[
        ("Checked", Align::Right),
        ("Phantom", Align::Right),
        ("Future", Align::Right),
        ("Stale", Align::Right),
    ];
    HistoryCheck {
        pass: r.pass,
        sentence: capitalized(&reads_sentence(r)) + ".",
        counts: counts(COUNTS, &[r.checked, r.phantom, r.future, r.stale]),
        note: "Phantom: a value no write produced, or one whose write failed. Future: \
               returned before its write began. Stale: older than a write that completed \
               before the read began.",
        examples: examples(
            "Offending reads",
            r.phantom + r.future + r.stale,
            &r.examples,
        )
        .into_iter()
        .collect(),
    }
}

/// A table of one row of counts.
fn counts(columns: &'static [Column], counts: &[u64]) -> Table {
    Table {
        columns,
        rows: vec![counts.iter().map(|n| Cell::Text(n.to_string())).collect()],
    }
}

fn examples(label: &str, total: u64, examples: &[String]) -> Option<Examples> {
    (!examples.is_empty()).then(|| Examples {
        heading: format!(
            "{label} ({} of {})",
            examples.len(),
            total.max(examples.len() as u64)
        ),
        text: examples.join("\n"),
    })
}

/// The backup, the disaster and the restore: a timeline, then the recovery time and point.
pub struct Backup {
    pub pass: bool,
    pub timeline: Table,
    /// The recovery time (RTO), `never served again` when the cluster never answered.
    pub rto: String,
    /// ` (limit 60.000 s)`, or nothing.
    pub rto_limit: String,
    pub rpo: String,
    pub rpo_limit: String,
    /// ` at 12.480 s`, or nothing.
    pub last_ack: String,
    pub writes_after_backup: u64,
    pub after_recovery_point: u64,
    pub indeterminate: u64,
}

pub fn backup(b: &BackupResult, d: &DataResult) -> Backup {
    const TIMELINE: &[Column] = &[
        ("Event", Align::Left),
        ("Run clock (s)", Align::Left),
        ("Took", Align::Right),
    ];
    let span = |what: &str, step: &str, from: u64, to: u64| {
        vec![
            Cell::Text(format!("{what}: {step}")),
            Cell::Text(format!("{} – {}", run_clock(from), run_clock(to))),
            Cell::Text(seconds_from_ms((to - from) / 1000)),
        ]
    };
    let seconds = |ms: f64| seconds_from_ms(ms as u64);
    let limit = |l: Option<f64>| {
        l.map(|l| format!(" (limit {})", seconds(l)))
            .unwrap_or_default()
    };
    let never = || "never".to_string();
    Backup {
        pass: b.pass,
        timeline: Table {
            columns: TIMELINE,
            rows: vec![
                span("Backup", &b.backup_step, b.backup_start, b.backup_end),
                span(
                    "Disaster",
                    &b.disaster_step,
                    b.disaster_start,
                    b.disaster_end,
                ),
                vec![
                    Cell::text("Restored cluster's first answer"),
                    Cell::Text(b.first_ok_after.map_or_else(never, run_clock)),
                    Cell::Text(format!(
                        "{} after the last node was lost",
                        b.restore_ms.map_or_else(never, seconds)
                    )),
                ],
            ],
        },
        rto: b
            .rto_ms
            .map_or_else(|| "never served again".to_string(), seconds),
        rto_limit: limit(b.rto_limit_ms),
        rpo: b.rpo_ms.map_or_else(|| "none".to_string(), seconds),
        rpo_limit: limit(b.rpo_limit_ms),
        last_ack: b
            .last_ack_before_disaster
            .map(|t| format!(" at {} s", run_clock(t)))
            .unwrap_or_default(),
        writes_after_backup: b.writes_after_backup,
        after_recovery_point: d.after_recovery_point,
        indeterminate: d.indeterminate,
    }
}

/// A rollout: how it ended against what was expected, its stages and gates.
pub struct Rollout {
    /// `Canary rollout`, or `Staged rollout` for one by configuration.
    pub title: &'static str,
    /// The step that ran it.
    pub step: String,
    /// `None`: a rollout by configuration, which moves no traffic.
    pub traffic: Option<Traffic>,
    /// `promoted`, `rolled_back`, or `not finished`.
    pub outcome: &'static str,
    /// `None`: it ended as expected.
    pub expected: Option<&'static str>,
    pub failure: Option<String>,
    pub stages: Table,
    pub evaluations: Table,
    pub kill_switch: Option<KillSwitch>,
    /// A rollback of levers; `None` for a kill switch.
    pub levers: Option<Levers>,
    /// The incident note beside the report, when the rollback made one.
    pub incident: Option<&'static str>,
}

/// Where a canary rollout shifts the traffic.
pub struct Traffic {
    pub canary: String,
    pub baseline: Vec<String>,
}

pub struct KillSwitch {
    pub pass: bool,
    /// `(step 7.1) at 27.100 s: the canary served its last request …`.
    pub sentence: String,
}

/// The levers a rollback tried, fastest first, and whether the one that restored service is
/// the one the procedure expects.
pub struct Levers {
    /// Set when the expected lever did not restore service.
    pub unexpected: Option<UnexpectedLever>,
    pub table: Table,
    pub note: &'static str,
}

/// The lever the procedure expects to restore service, and the one that did.
pub struct UnexpectedLever {
    pub expected: LeverName,
    /// `None`: no lever restored service.
    pub restored_by: Option<LeverName>,
}

pub struct LeverName {
    /// `None`: the summary lists no lever of that name.
    pub index: Option<usize>,
    pub name: String,
}

impl LeverName {
    /// `lever 2 `Safe mode``, the name through `code` (each report marks code its own way).
    fn words(&self, code: &impl Fn(&str) -> String) -> String {
        match self.index {
            Some(i) => format!("lever {i} {}", code(&self.name)),
            None => format!("lever {}", code(&self.name)),
        }
    }
}

impl UnexpectedLever {
    /// `Lever 1 `Flag off` was expected to restore service; lever 2 `Safe mode` did.`
    pub fn sentence(&self, code: impl Fn(&str) -> String) -> String {
        let did = match &self.restored_by {
            Some(l) => format!("{} did", l.words(&code)),
            None => "no lever did".to_string(),
        };
        capitalized(&format!(
            "{} was expected to restore service; {did}.",
            self.expected.words(&code)
        ))
    }
}

/// The lever whose verification passed, if one did.
pub fn restoring_lever(r: &RolloutResult) -> Option<&LeverResult> {
    r.levers
        .iter()
        .find(|l| l.outcome == LeverOutcome::Restored)
}

/// `Some(lever)` when `expected_lever` is set and did not restore service.
pub fn unexpected_lever(r: &RolloutResult) -> Option<UnexpectedLever> {
    let expected = r.expected_lever.as_ref()?;
    let restored = restoring_lever(r);
    if restored.is_some_and(|l| &l.name == expected) {
        return None;
    }
    let name = |l: &LeverResult| LeverName {
        index: Some(l.index),
        name: l.name.clone(),
    };
    Some(UnexpectedLever {
        expected: r.levers.iter().find(|l| &l.name == expected).map_or_else(
            || LeverName {
                index: None,
                name: expected.clone(),
            },
            name,
        ),
        restored_by: restored.map(name),
    })
}

/// A lever's outcome as a judgement: restored passes, one tried in vain fails, and one never
/// tried was not judged.
pub fn lever_pass(outcome: LeverOutcome) -> Option<bool> {
    match outcome {
        LeverOutcome::Restored => Some(true),
        LeverOutcome::NotRestored | LeverOutcome::Failed => Some(false),
        LeverOutcome::NotTried => None,
    }
}

/// From the lever's first step to the end of its last verification step, in milliseconds;
/// `None` when it was not tried.
pub fn lever_took_ms(l: &LeverResult) -> Option<f64> {
    Some(l.end?.saturating_sub(l.start?) as f64 / 1000.0)
}

fn levers(r: &RolloutResult) -> Option<Levers> {
    const COLUMNS: &[Column] = &[
        ("#", Align::Right),
        ("Lever", Align::Left),
        ("Outcome", Align::Left),
        ("Took", Align::Right),
        ("Detail", Align::Wrap),
    ];
    let rows = r
        .levers
        .iter()
        .map(|l| {
            vec![
                Cell::Text(l.index.to_string()),
                Cell::text(&l.name),
                Cell::Mark {
                    pass: lever_pass(l.outcome),
                    word: l.outcome.name(),
                },
                Cell::Text(lever_took_ms(l).map_or_else(|| "—".to_string(), seconds_tenths)),
                Cell::text(l.detail.as_deref().map_or("—", str::trim)),
            ]
        })
        .collect();
    (!r.levers.is_empty()).then(|| Levers {
        unexpected: unexpected_lever(r),
        table: Table {
            columns: COLUMNS,
            rows,
        },
        note: "Tried in order, fastest first, until one's verification passed; took: from the \
               lever's first step to the end of its last verification step.",
    })
}

/// A rollout by configuration: its stages run steps (set a flag, restart) and hold, so there
/// is no canary, no traffic share and no baseline to compare with.
pub fn by_configuration(r: &RolloutResult) -> bool {
    r.canary.is_empty()
}

/// A stage as its rollout names it: `sample 1 %` by configuration, `5 %` of the traffic.
pub fn stage_label(s: &StageResult) -> String {
    s.name.clone().unwrap_or_else(|| format!("{} %", s.percent))
}

pub fn rollout(r: &RolloutResult) -> Rollout {
    const STAGES: &[Column] = &[
        ("Stage", Align::Right),
        ("Share", Align::Right),
        ("Weights (canary / each baseline)", Align::Right),
        ("Run clock (s)", Align::Left),
        ("Observed share", Align::Right),
        ("Decision", Align::Left),
    ];
    const CONFIGURATION_STAGES: &[Column] = &[
        ("Stage", Align::Right),
        ("Name", Align::Left),
        ("Run clock (s)", Align::Left),
        ("Decision", Align::Left),
    ];
    const EVALUATIONS: &[Column] = &[
        ("Stage", Align::Right),
        ("At (s)", Align::Right),
        ("Gate", Align::Left),
        ("Metric", Align::Left),
        ("Canary", Align::Right),
        ("Baseline", Align::Right),
        ("Limit", Align::Right),
        ("Samples", Align::Right),
        ("Result", Align::Left),
    ];
    // The gates judge the value itself: there is no baseline.
    const CONFIGURATION_EVALUATIONS: &[Column] = &[
        ("Stage", Align::Right),
        ("At (s)", Align::Right),
        ("Gate", Align::Left),
        ("Metric", Align::Left),
        ("Value", Align::Right),
        ("Limit", Align::Right),
        ("Samples", Align::Right),
        ("Result", Align::Left),
    ];
    let configuration = by_configuration(r);
    let stages = r
        .stages
        .iter()
        .map(|s| {
            let clock = format!("{} – {}", run_clock(s.start), run_clock(s.end));
            let row = if configuration {
                vec![
                    s.index.to_string(),
                    s.name.clone().unwrap_or_else(|| "—".to_string()),
                    clock,
                    s.decision.clone(),
                ]
            } else {
                vec![
                    s.index.to_string(),
                    format!("{} %", s.percent),
                    format!("{} / {}", s.canary_weight, s.baseline_weight),
                    clock,
                    s.observed_share.map_or_else(|| "n/a".to_string(), percent),
                    s.decision.clone(),
                ]
            };
            row.into_iter().map(Cell::Text).collect()
        })
        .collect();
    let evaluations = r
        .stages
        .iter()
        .flat_map(|s| s.evaluations.iter().map(move |e| (s.index, e)))
        .map(|(stage, e)| {
            let value = |v: Option<f64>| {
                Cell::Text(v.map_or_else(|| "n/a".to_string(), |v| slo_value(v, e.unit)))
            };
            let mut row = vec![
                Cell::Text(stage.to_string()),
                Cell::Text(run_clock(e.at)),
                Cell::text(&e.gate),
                Cell::text(&e.metric),
                value(e.canary),
            ];
            if !configuration {
                row.push(value(e.baseline));
            }
            row.extend([
                value(e.limit),
                Cell::Text(e.samples.to_string()),
                Cell::Mark {
                    pass: match e.outcome {
                        GateOutcome::Pass => Some(true),
                        GateOutcome::Fail => Some(false),
                        GateOutcome::NoData | GateOutcome::Inconclusive | GateOutcome::Error => {
                            None
                        }
                    },
                    word: gate_outcome(e.outcome),
                },
            ]);
            row
        })
        .collect();
    Rollout {
        title: if configuration {
            "Staged rollout"
        } else {
            "Canary rollout"
        },
        step: r.step.clone(),
        traffic: (!configuration).then(|| Traffic {
            canary: r.canary.clone(),
            baseline: r.baseline.clone(),
        }),
        outcome: rollout_outcome(r),
        expected: (r.outcome != Some(r.expected)).then(|| r.expected.name()),
        failure: r.failure.clone(),
        stages: Table {
            columns: if configuration {
                CONFIGURATION_STAGES
            } else {
                STAGES
            },
            rows: stages,
        },
        evaluations: Table {
            columns: if configuration {
                CONFIGURATION_EVALUATIONS
            } else {
                EVALUATIONS
            },
            rows: evaluations,
        },
        kill_switch: r.kill_switch.as_ref().map(kill_switch),
        levers: levers(r),
        incident: r.incident.is_some().then_some(INCIDENT_FILE),
    }
}

fn kill_switch(k: &KillSwitchResult) -> KillSwitch {
    KillSwitch {
        pass: k.pass,
        sentence: format!(
            "(step {}) at {} s: the canary served its last request {} later (limit {}); {} requests to it in the recovery phase.",
            k.step,
            run_clock(k.at),
            k.time_to_effect_ms
                .map_or_else(|| "n/a".to_string(), |m| seconds_from_ms(m as u64)),
            seconds_from_ms(k.limit_ms as u64),
            k.canary_requests_in_recovery,
        ),
    }
}

/// `promoted`, `rolled_back`, or `not finished` when the rollout did not end.
pub fn rollout_outcome(r: &RolloutResult) -> &'static str {
    r.outcome.map_or("not finished", |o| o.name())
}

pub fn gate_outcome(outcome: GateOutcome) -> &'static str {
    match outcome {
        GateOutcome::Pass => "pass",
        GateOutcome::Fail => "fail",
        GateOutcome::NoData => "no data",
        GateOutcome::Inconclusive => "inconclusive",
        GateOutcome::Error => "error",
    }
}

/// A section that is one table.
pub struct TableSection {
    /// The anchor of the section (report.html).
    pub id: &'static str,
    pub title: &'static str,
    pub table: Table,
    /// What to say instead of a table without rows.
    pub empty: &'static str,
    /// What the numbers mean, under the table.
    pub note: Option<&'static str>,
}

/// One row per step after which a node had to serve again; `None` when there is none
/// (most scenarios mark no such step).
pub fn recoveries(recoveries: &[RecoveryResult]) -> Option<TableSection> {
    const COLUMNS: &[Column] = &[
        ("Step", Align::Left),
        ("Node", Align::Left),
        ("Step ended", Align::Right),
        ("Node's first ok", Align::Right),
        ("Load back within SLO", Align::Right),
        ("Limit", Align::Right),
        ("Result", Align::Left),
    ];
    let rows = recoveries
        .iter()
        .map(|r| {
            vec![
                Cell::text(&r.step),
                Cell::text(&r.node),
                Cell::Text(format!("{} s", run_clock(r.from))),
                Cell::Text(r.to_first_ok_ms.map_or_else(|| "never".to_string(), millis)),
                Cell::Text(r.to_slo_ms.map_or_else(|| "never".to_string(), millis)),
                Cell::Text(r.limit_ms.map_or_else(|| "none".to_string(), millis)),
                Cell::mark(r.pass, "recovered", "not recovered"),
            ]
        })
        .collect();
    (!recoveries.is_empty()).then_some(TableSection {
        id: "recovery",
        title: "Recovery after steps",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "",
        note: Some(
            "Measured from the end of the step: until the node's first successful operation, \
             and until the whole load was back within the recovery phase's error-rate limit.",
        ),
    })
}

/// The name of the step `id` names, when the summary has it.
pub fn step_name<'a>(steps: &'a [StepRecord], id: &str) -> Option<&'a str> {
    steps.iter().find(|s| s.id == id).map(|s| s.name.as_str())
}

/// `5.4 New requests are no longer sampled`, or the bare id of a step the summary lacks.
pub(crate) fn step_title(steps: &[StepRecord], id: &str) -> String {
    match step_name(steps, id) {
        Some(name) => format!("{id} {name}"),
        None => id.to_string(),
    }
}

/// One row per `log` step: how long the change it waits for took to show; `None` when the
/// scenario has no `log` step.
pub fn effects(effects: &[EffectResult], steps: &[StepRecord]) -> Option<TableSection> {
    const COLUMNS: &[Column] = &[
        ("Step", Align::Left),
        ("After step", Align::Left),
        ("Time to effect", Align::Right),
        ("Limit", Align::Right),
        ("Result", Align::Left),
        ("Line", Align::Wrap),
    ];
    let rows = effects
        .iter()
        .map(|e| {
            vec![
                Cell::Text(step_title(steps, &e.step)),
                Cell::Text(step_title(steps, &e.after)),
                Cell::Text(
                    e.time_to_effect_ms
                        .map_or_else(|| "never".to_string(), seconds_tenths),
                ),
                Cell::Text(seconds_tenths(e.limit_ms)),
                Cell::mark(e.pass, "met", "missed"),
                e.line.as_deref().map_or_else(
                    || Cell::text("—"),
                    |line| Cell::Code(first_line(line, LINE_CHARS)),
                ),
            ]
        })
        .collect();
    (!effects.is_empty()).then_some(TableSection {
        id: "effects",
        title: "Time to effect",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "",
        note: Some(
            "From the start of the step waited on to the log line that shows its change (for a \
             change that stops lines, the last line of the old behaviour); never: the change \
             did not show.",
        ),
    })
}

/// Every alert that was active during the run, on the run clock; `None` when the scenario
/// watched no Prometheus.
pub fn alerts(m: Option<&MonitoringResult>) -> Option<TableSection> {
    const COLUMNS: &[Column] = &[
        ("Alert", Align::Left),
        ("Labels", Align::Wrap),
        ("Pending at", Align::Right),
        ("Firing at", Align::Right),
        ("Resolved at", Align::Right),
    ];
    let at = |t: Option<u64>, none: &str| {
        Cell::Text(t.map_or_else(|| none.to_string(), |t| format!("{} s", run_clock(t))))
    };
    let m = m?;
    let rows = m
        .episodes
        .iter()
        .map(|e| {
            let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                Cell::text(&e.alert),
                Cell::Text(labels.join(", ")),
                at(e.pending_at, "—"),
                at(e.firing_at, "—"),
                at(e.resolved_at, "still active"),
            ]
        })
        .collect();
    Some(TableSection {
        id: "alerts",
        title: "Alerts",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "No alert was pending or firing during the run.",
        note: Some(
            "As the polls of Prometheus's active alerts saw them (alerts.jsonl): each time is late \
             by up to one poll interval. The expectations and quiet phases are among the checks.",
        ),
    })
}

/// The dashboards' panels, archived under metrics/.
pub fn panels(m: Option<&MonitoringResult>) -> Option<TableSection> {
    const COLUMNS: &[Column] = &[
        ("Panel", Align::Left),
        ("Query", Align::Wrap),
        ("Series", Align::Right),
        ("File", Align::Left),
    ];
    let m = m.filter(|m| !m.panels.is_empty())?;
    let rows = m
        .panels
        .iter()
        .map(|p| {
            vec![
                Cell::text(&p.title),
                Cell::text(&p.query),
                Cell::Text(match &p.error {
                    Some(e) => format!("error: {e}"),
                    None => p.series.to_string(),
                }),
                Cell::text(&p.file),
            ]
        })
        .collect();
    Some(TableSection {
        id: "panels",
        title: "Dashboards",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "",
        note: Some(
            "Each file holds the panel's series over the whole run, as Prometheus answered them.",
        ),
    })
}

/// The checks of the end state, convergence, linearizability and the rest.
pub fn checks(checks: &[CheckResult]) -> TableSection {
    const COLUMNS: &[Column] = &[
        ("Check", Align::Left),
        ("Result", Align::Left),
        ("Detail", Align::Wrap),
    ];
    let rows = checks
        .iter()
        .map(|c| {
            vec![
                Cell::text(&c.name),
                Cell::mark(c.pass, "pass", "fail"),
                Cell::text(c.detail.trim()),
            ]
        })
        .collect();
    TableSection {
        id: "checks",
        title: "Checks",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "No checks.",
        note: None,
    }
}

pub fn load(l: &LoadStats) -> TableSection {
    const COLUMNS: &[Column] = &[
        ("Ops", Align::Right),
        ("Reads", Align::Right),
        ("Writes", Align::Right),
        ("Ok", Align::Right),
        ("Failed", Align::Right),
        ("Unknown", Align::Right),
        ("Ops/s", Align::Right),
        ("Goose requests", Align::Right),
    ];
    let mut row: Vec<Cell> = [l.ops, l.reads, l.writes, l.ok, l.fail, l.unknown]
        .map(|n| Cell::Text(n.to_string()))
        .to_vec();
    row.push(Cell::Text(format!("{:.1}", l.ops_per_s)));
    row.push(Cell::Text(l.goose_requests.to_string()));
    TableSection {
        id: "load",
        title: "Load",
        table: Table {
            columns: COLUMNS,
            rows: vec![row],
        },
        empty: "",
        note: None,
    }
}

/// The nodes' images at the start and the end.
pub fn versions(nodes: &[NodeRecord]) -> TableSection {
    const COLUMNS: &[Column] = &[
        ("Node", Align::Left),
        ("Image at start", Align::Left),
        ("Image at end", Align::Left),
        ("Changed", Align::Left),
    ];
    let rows = nodes
        .iter()
        .map(|n| {
            vec![
                Cell::text(&n.name),
                Cell::Code(n.image_at_start.clone()),
                Cell::Code(n.image_at_end.clone()),
                Cell::text(if n.image_at_start == n.image_at_end {
                    "no"
                } else {
                    "yes"
                }),
            ]
        })
        .collect();
    TableSection {
        id: "versions",
        title: "Versions seen",
        table: Table {
            columns: COLUMNS,
            rows,
        },
        empty: "No nodes recorded.",
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn a_failed_run_without_reasons_still_says_why_not() {
        let mut s = fixtures::failing();
        s.reasons.clear();
        assert_eq!(
            header(&s).failure,
            Some(vec!["the run recorded no reason".to_string()])
        );
        assert_eq!(header(&fixtures::passing()).failure, None);
    }

    #[test]
    fn each_slo_row_names_its_phase_and_judgement() {
        let levels = service_levels(&fixtures::failing().phases);
        assert_eq!(levels.phases.rows.len(), 3);
        let breached: Vec<&Vec<Cell>> = levels
            .slos
            .rows
            .iter()
            .filter(|r| r[4] == Cell::mark(false, "met", "breached"))
            .collect();
        assert_eq!(breached.len(), 2);
        assert_eq!(breached[0][0], Cell::text("procedure"));
        assert_eq!(breached[0][3], Cell::text("1840.2 ms"));
    }

    #[test]
    fn skipped_steps_did_not_run_and_long_output_folds() {
        let view = steps(&fixtures::failing().steps);
        assert!(view[3].ran.is_none(), "step 4 was skipped");
        let failed = view[2].ran.as_ref().expect("step 3 ran");
        assert!(matches!(failed.error, Some(Error::Block(_))));
        assert_eq!(failed.output.label, "Output (exit code 1)");
        let passed = steps(&fixtures::passing().steps);
        let long = passed[2].ran.as_ref().expect("ran").output.stdout.as_ref();
        assert!(long.is_some_and(|s| s.folded && s.lines == 24));
        let http = &passed[3].ran.as_ref().expect("ran").output;
        assert_eq!(http.label, "Expected output (HTTP 200)");
    }

    #[test]
    fn a_rollout_by_configuration_shows_its_stage_names_and_no_traffic() {
        let r = fixtures::staged().rollout.expect("a rollout");
        let view = rollout(&r);
        assert_eq!((view.title, view.step.as_str()), ("Staged rollout", "5"));
        assert!(view.traffic.is_none());
        let headings = |t: &Table| t.columns.iter().map(|(h, _)| *h).collect::<Vec<_>>();
        assert_eq!(
            headings(&view.stages),
            ["Stage", "Name", "Run clock (s)", "Decision"]
        );
        assert_eq!(view.stages.rows[1][1], Cell::text("sample 5 %"));
        assert_eq!(
            headings(&view.evaluations),
            ["Stage", "At (s)", "Gate", "Metric", "Value", "Limit", "Samples", "Result"]
        );
        // A value between the gate's conditions is neither pass nor fail, and says so.
        assert_eq!(
            view.evaluations.rows[2][4..],
            [
                Cell::text("0.03 value"),
                Cell::text("0.01 value"),
                Cell::text("12"),
                Cell::Mark {
                    pass: None,
                    word: "inconclusive"
                },
            ]
        );
        // A canary rollout keeps its traffic columns.
        let canary = rollout(&fixtures::procedures().rollout.expect("a rollout"));
        assert_eq!(canary.title, "Canary rollout");
        assert_eq!(headings(&canary.stages)[1], "Share");
        assert_eq!(headings(&canary.evaluations)[5], "Baseline");
    }

    #[test]
    fn each_effect_names_its_steps_and_whether_it_was_in_time() {
        let s = fixtures::staged();
        let section = effects(&s.effects, &s.steps).expect("a time to effect section");
        let [met, missed] = &section.table.rows[..] else {
            panic!("two effects");
        };
        assert_eq!(
            met[..5],
            [
                Cell::text("5.1.2 Ranker samples 1 %"),
                Cell::text("5.1.1 Set the sample rate to 0.01"),
                Cell::text("1.3 s"),
                Cell::text("30.0 s"),
                Cell::mark(true, "met", "missed"),
            ]
        );
        let Cell::Code(line) = &met[5] else {
            panic!("the line is code: {:?}", met[5]);
        };
        assert_eq!(line.chars().count(), LINE_CHARS);
        assert!(line.starts_with("{\"ts\": 1733095141.34,") && line.ends_with('…'));
        assert_eq!(
            missed[..],
            [
                Cell::text("5.4 New requests are no longer sampled"),
                Cell::text("5.3 Kill switch - turn the feature off"),
                Cell::text("never"),
                Cell::text("60.0 s"),
                Cell::mark(false, "met", "missed"),
                Cell::text("—"),
            ]
        );
        assert!(effects(&[], &s.steps).is_none());
    }

    #[test]
    fn the_levers_say_which_restored_service_and_which_was_expected() {
        let mut r = fixtures::levers().rollout.expect("a rollout");
        let levers = levers_of(&r);
        let code = |name: &str| format!("`{name}`");
        let sentence = |l: &Levers| l.unexpected.as_ref().map(|u| u.sentence(code));
        assert_eq!(
            sentence(&levers).as_deref(),
            Some("Lever 1 `Flag off` was expected to restore service; lever 2 `Safe mode` did.")
        );
        assert_eq!(
            levers.table.rows[0][2..4],
            [
                Cell::mark(false, "restored", "not restored"),
                Cell::text("60.1 s"),
            ]
        );
        assert_eq!(
            levers.table.rows[2][2..4],
            [
                Cell::Mark {
                    pass: None,
                    word: "not tried"
                },
                Cell::text("—")
            ]
        );
        // The expected lever restored service: nothing to say.
        r.expected_lever = Some("Safe mode".to_string());
        assert!(sentence(&levers_of(&r)).is_none());
        // None did, or the expected one is not among them.
        r.levers[1].outcome = LeverOutcome::NotRestored;
        r.expected_lever = Some("Restart".to_string());
        assert_eq!(
            sentence(&levers_of(&r)).as_deref(),
            Some("Lever `Restart` was expected to restore service; no lever did.")
        );
        r.levers.clear();
        assert!(rollout(&r).levers.is_none());
    }

    fn levers_of(r: &RolloutResult) -> Levers {
        rollout(r).levers.expect("levers")
    }

    #[test]
    fn a_gate_whose_source_failed_is_an_error_not_a_failure() {
        let mut r = fixtures::staged().rollout.expect("a rollout");
        r.stages[1].evaluations[0].outcome = GateOutcome::Error;
        assert_eq!(
            rollout(&r).evaluations.rows[2][7],
            Cell::Mark {
                pass: None,
                word: "error"
            }
        );
    }

    #[test]
    fn a_gate_without_data_is_neither_pass_nor_fail() {
        let mut r = fixtures::procedures().rollout.expect("a rollout");
        r.stages[0].evaluations[0].outcome = GateOutcome::NoData;
        let view = rollout(&r);
        assert_eq!(
            view.evaluations.rows[0][8],
            Cell::Mark {
                pass: None,
                word: "no data"
            }
        );
        assert_eq!(view.expected, None);
        r.outcome = None;
        let view = rollout(&r);
        assert_eq!(
            (view.outcome, view.expected),
            ("not finished", Some("rolled_back"))
        );
    }
}
