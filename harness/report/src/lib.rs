//! Reporters: the run's events and its [`Summary`] turned into what people read, through
//! one trait, [`Reporter`]; [`artifact_writers`] write the files of the output directory.
//!
//! Reporters only read the events and the summary (and, for the HTML charts, the operation
//! history and the dashboards' series), never the runner, so a report can be re-rendered
//! later from `summary.json`, `history.jsonl` and `metrics/*.json`.

pub mod html;
pub mod incident;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod page;
mod reporter;
pub mod view;

pub use reporter::{artifact_writers, Artifacts, Reporter};

use std::io;
use std::path::PathBuf;

use firedrill_types::history::Micros;
use firedrill_types::summary::{DataResult, ReadResult, StepRecord, StepStatus, Summary, Unit};

pub const SUMMARY_FILE: &str = "summary.json";
pub const MARKDOWN_FILE: &str = "report.md";
pub const JUNIT_FILE: &str = "junit.xml";
pub const HTML_FILE: &str = "report.html";
/// Written only when a rollout rolled back and the judge made its incident note.
pub const INCIDENT_FILE: &str = "incident.md";

/// Outputs longer than this many lines are folded so the page stays short.
pub const FOLD_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("failed to encode the summary as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("failed to encode the JUnit report: {0}")]
    Junit(#[from] quick_junit::SerializeError),
    #[error(
        "failed to write {}: {source}; check that the output directory exists, is writable and has free space",
        path.display()
    )]
    Write { path: PathBuf, source: io::Error },
}

/// The verdict in one sentence: how each part of the judgement came out.
fn tally(s: &Summary) -> String {
    let mut parts = Vec::new();

    let total = s.steps.len();
    let failed = count_steps(&s.steps, StepStatus::Failed);
    let skipped = count_steps(&s.steps, StepStatus::Skipped);
    let mut steps = if failed == 0 && skipped > 0 {
        format!("{skipped} of {} skipped", plural(total, "step", "steps"))
    } else {
        outcome(total, failed, ("step", "steps"), ("passed", "failed"))
            .unwrap_or_else(|| "no steps".to_string())
    };
    if failed > 0 && skipped > 0 {
        steps.push_str(&format!(", {skipped} skipped"));
    }
    parts.push(steps);

    let slos = s.phases.iter().flat_map(|p| &p.slos);
    let breached = slos.clone().filter(|slo| !slo.pass).count();
    parts.push(
        outcome(slos.count(), breached, ("SLO", "SLOs"), ("met", "breached"))
            .unwrap_or_else(|| "no SLOs".to_string()),
    );

    parts.push(data_sentence(&s.data));
    parts.push(reads_sentence(&s.reads));

    let failed = s.checks.iter().filter(|c| !c.pass).count();
    parts.extend(outcome(
        s.checks.len(),
        failed,
        ("check", "checks"),
        ("passed", "failed"),
    ));

    capitalized(&parts.join(", ")) + "."
}

/// "all 4 steps passed", "1 of 4 steps failed", "1 check failed"; `None` when there are none.
fn outcome(
    total: usize,
    bad: usize,
    (one, many): (&str, &str),
    (good_verb, bad_verb): (&str, &str),
) -> Option<String> {
    Some(match (total, bad) {
        (0, _) => return None,
        (1, 0) => format!("1 {one} {good_verb}"),
        (1, _) => format!("1 {one} {bad_verb}"),
        (_, 0) => format!("all {total} {many} {good_verb}"),
        _ => format!("{bad} of {total} {many} {bad_verb}"),
    })
}

fn data_sentence(d: &DataResult) -> String {
    let mut parts = Vec::new();
    if d.lost > 0 {
        parts.push(plural(d.lost as usize, "lost write", "lost writes"));
    }
    if d.unexpected > 0 {
        parts.push(plural(
            d.unexpected as usize,
            "unexpected value",
            "unexpected values",
        ));
    }
    match (d.pass, parts.is_empty()) {
        (true, true) => "no lost writes".to_string(),
        (false, true) => "data check failed".to_string(),
        _ => parts.join(", "),
    }
}

fn reads_sentence(r: &ReadResult) -> String {
    let parts: Vec<String> = [
        (r.phantom, "phantom"),
        (r.future, "future"),
        (r.stale, "stale"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, kind)| format!("{n} {kind}"))
    .collect();
    match (r.pass, parts.is_empty()) {
        (true, true) => "reads consistent".to_string(),
        (false, true) => "read check failed".to_string(),
        _ => {
            let total = r.phantom + r.future + r.stale;
            format!(
                "{} {}",
                parts.join(", "),
                if total == 1 { "read" } else { "reads" }
            )
        }
    }
}

fn count_steps(steps: &[StepRecord], status: StepStatus) -> usize {
    steps.iter().filter(|s| s.status == status).count()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// RFC 3339 as `2025-03-14 09:26:53 UTC`; anything unparsable as given.
fn wall_clock(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// A time on the run clock as the wall-clock time it was, `started_at` + `micros`, as RFC 3339
/// in UTC with milliseconds; `None` when `started_at` does not parse.
fn wall_clock_at(started_at: &str, micros: Micros) -> Option<String> {
    let start = chrono::DateTime::parse_from_rfc3339(started_at).ok()?;
    // Rounded to the millisecond as `run_clock` rounds, so the two forms agree.
    let ms = i64::try_from((micros + 500) / 1000).ok()?;
    let at = start + chrono::TimeDelta::milliseconds(ms);
    Some(
        at.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// Text safe inside an HTML element or a quoted attribute value.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first line of `text`, cut to `max` characters: for one-line messages and summaries.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim_end();
    if line.chars().count() <= max {
        return line.to_string();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A ratio as a percentage with 2 decimals: `0.01234` → `1.23 %`.
fn percent(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.2} %", ratio * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// Milliseconds with 1 decimal: `12.345` → `12.3 ms`.
fn millis(ms: f64) -> String {
    if ms.is_finite() {
        format!("{ms:.1} ms")
    } else {
        "n/a".to_string()
    }
}

/// A duration in whole milliseconds as seconds with 3 decimals: `1234` → `1.234 s`.
fn seconds_from_ms(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// Milliseconds as seconds with 1 decimal: `1234.0` → `1.2 s`.
fn seconds_tenths(ms: f64) -> String {
    if ms.is_finite() {
        format!("{:.1} s", ms / 1000.0)
    } else {
        "n/a".to_string()
    }
}

/// A time on the run clock (microseconds) as seconds with 3 decimals: `1_234_567` → `1.235`.
fn run_clock(micros: u64) -> String {
    // Round to the nearest millisecond rather than truncating.
    let ms = (micros + 500) / 1000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// An SLO value in its unit: ratios as percentages, `ms` with 1 decimal, anything else as is.
fn slo_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => percent(value),
        Unit::Ms => millis(value),
        Unit::Ops | Unit::Value => format!("{value} {}", unit.name()),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-built summaries of a realistic run, shared by the reporters' tests.

    use firedrill_types::history::{Micros, Op, OpKind, Outcome, Phase};
    use firedrill_types::monitoring::*;
    use firedrill_types::summary::*;

    pub const RELEASE_NOTES: &str = "# kv 1.5.0\n\nUpgrade one node at a time:\n\n```sh\nkvctl member list\n```\n\nThen check health.";

    fn step(id: &str, name: &str, prose: &str, action: &str, stdout: &str) -> StepRecord {
        StepRecord {
            id: id.to_string(),
            name: name.to_string(),
            prose: prose.to_string(),
            action: action.to_string(),
            status: StepStatus::Passed,
            started: 0,
            duration_ms: 0,
            attempts: 1,
            output: StepOutput {
                exit_code: Some(0),
                http_status: None,
                stdout: stdout.to_string(),
                stderr: String::new(),
            },
            error: None,
            transcript: format!("steps/{id}.log"),
        }
    }

    fn slo(name: &str, limit: f64, observed: f64, unit: Unit) -> SloResult {
        SloResult {
            name: name.to_string(),
            limit,
            observed,
            unit,
            pass: observed <= limit,
            detail: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn phase(
        phase: Phase,
        start_s: f64,
        end_s: f64,
        ops: u64,
        errors: u64,
        p50_ms: f64,
        p99_ms: f64,
        longest_unavailable_ms: f64,
    ) -> PhaseResult {
        let error_rate = errors as f64 / ops as f64;
        PhaseResult {
            phase,
            start: (start_s * 1e6) as u64,
            end: (end_s * 1e6) as u64,
            ops,
            ok: ops - errors,
            errors,
            error_rate,
            p50_ms,
            p99_ms,
            longest_unavailable_ms,
            slos: vec![
                slo("error_rate", 0.01, error_rate, Unit::Ratio),
                slo("p99", 250.0, p99_ms, Unit::Ms),
                slo("max_unavailable", 2000.0, longest_unavailable_ms, Unit::Ms),
            ],
        }
    }

    /// A short history for [`passing`]'s clock: one operation every 500 ms from 8 s to 19.5 s,
    /// slower while the procedure runs (10–17 s), and one timeout at 12 s.
    pub fn history() -> Vec<Op> {
        (0..24u64)
            .map(|i| {
                let t_call = 8_000_000 + i * 500_000;
                let slow = (10_000_000..17_250_000).contains(&t_call);
                let latency = if slow {
                    40_000 + i * 1_000
                } else {
                    3_000 + i * 100
                };
                let timeout = t_call == 12_000_000;
                let kind = if i % 2 == 0 {
                    OpKind::Write
                } else {
                    OpKind::Read
                };
                Op {
                    id: i,
                    client: (i % 2) as u32,
                    node: format!("kv{}", i % 3 + 1).into(),
                    kind,
                    key: format!("k-{:04}", i % 5).into(),
                    value: (kind == OpKind::Write).then(|| format!("c{}-w{i}", i % 2).into()),
                    expected: None,
                    t_intended: t_call,
                    t_call,
                    t_return: t_call + if timeout { 1_000_000 } else { latency },
                    outcome: if timeout {
                        Outcome::Unknown
                    } else {
                        Outcome::Ok
                    },
                    error: timeout.then(|| "timed out after 1s".into()),
                    backend: None,
                }
            })
            .collect()
    }

    /// A rolling upgrade of a 3-node key-value store that went well.
    pub fn passing() -> Summary {
        let members: String = (1..=24)
            .map(|i| format!("/config/feature-{i:02} = on\n"))
            .collect();
        let mut steps = vec![
            step(
                "1",
                "Check cluster health",
                "Before touching anything, make sure every member reports healthy.",
                "docker exec kv1 kvctl endpoint health --cluster",
                "kv1:2379 is healthy: took = 2.1ms\nkv2:2379 is healthy: took = 2.4ms\nkv3:2379 is healthy: took = 1.9ms\n",
            ),
            step(
                "2",
                "Read the release notes",
                "The release notes name the upgrade order; read them on the node.",
                "docker exec kv1 cat /usr/share/doc/kv/RELEASE.md",
                RELEASE_NOTES,
            ),
            step(
                "3",
                "Dump the configuration",
                "Save the configuration keys so they can be compared after the upgrade.",
                "docker exec kv1 kvctl get --prefix /config",
                &members,
            ),
            step(
                "4",
                "Wait for the cluster version",
                "The cluster version moves to 1.5 once the last member runs 1.5.",
                "GET http://127.0.0.1:32379/version",
                "{\"server\":\"1.5.0\",\"cluster\":\"1.5.0\"}",
            ),
        ];
        let starts = [10_012_345, 10_520_000, 10_600_000, 11_000_000];
        let durations = [412, 35, 80, 6_250];
        for ((s, start), duration) in steps.iter_mut().zip(starts).zip(durations) {
            s.started = start;
            s.duration_ms = duration;
        }
        steps[3].attempts = 7;
        steps[3].output.exit_code = None;
        steps[3].output.http_status = Some(200);
        Summary {
            schema: SCHEMA.to_string(),
            scenario: "rolling-upgrade".to_string(),
            description:
                "Upgrade every member from 1.4 to 1.5, one at a time, without losing a write."
                    .to_string(),
            runbook: Some("https://wiki.example.org/runbooks/kv-rolling-upgrade".to_string()),
            file: "scenarios/rolling-upgrade.yaml".to_string(),
            run_id: "20250314T092653Z-7f3a".to_string(),
            seed: 42,
            started_at: "2025-03-14T09:26:53Z".to_string(),
            duration_ms: 47_318,
            verdict: Verdict::Pass,
            reasons: vec![],
            steps,
            phases: vec![
                phase(Phase::Steady, 0.0, 10.012345, 2_480, 0, 3.42, 11.87, 12.0),
                phase(
                    Phase::Procedure,
                    10.012345,
                    17.25,
                    1_702,
                    3,
                    4.05,
                    48.61,
                    812.4,
                ),
                phase(Phase::Recovery, 17.25, 47.318, 7_391, 0, 3.51, 12.09, 9.8),
            ],
            data: DataResult {
                keys: 512,
                acked: 5_790,
                lost: 0,
                unexpected: 0,
                recovered: 2,
                after_recovery_point: 0,
                indeterminate: 0,
                lost_examples: vec![],
                unexpected_examples: vec![],
                pass: true,
            },
            reads: ReadResult {
                checked: 5_780,
                phantom: 0,
                future: 0,
                stale: 0,
                examples: vec![],
                pass: true,
            },
            checks: vec![CheckResult {
                name: "hash equal on all nodes".to_string(),
                pass: true,
                detail: "kv1, kv2, kv3: hash 3719238741 at revision 5803".to_string(),
            }],
            recoveries: vec![],
            load: LoadStats {
                ops: 11_573,
                reads: 5_783,
                writes: 5_790,
                cas: 0,
                ok: 11_570,
                fail: 1,
                unknown: 2,
                cas_compare_failed: 0,
                ops_per_s: 244.58,
                goose_requests: 11_573,
                max_behind_schedule_ms: 0.4,
            },
            nodes: ["kv1", "kv2", "kv3"]
                .into_iter()
                .map(|name| NodeRecord {
                    name: name.to_string(),
                    image_at_start: "firedrill/kv:1.4.23".to_string(),
                    image_at_end: "firedrill/kv:1.5.1".to_string(),
                    expected: true,
                    running: true,
                    healthy: true,
                    state: "running".to_string(),
                    health_detail: "passes its health check".to_string(),
                    ..NodeRecord::default()
                })
                .collect(),
            backup: None,
            rollout: None,
            effects: vec![],
            linearizability: None,
            monitoring: None,
            timings: Timings {
                cluster_create_ms: 1_210,
                cluster_ready_ms: 1_420,
                load_stop_ms: 40,
                checks_ms: 310,
                teardown_ms: 700,
                peak_rss_mib: Some(41.5),
                jobs: 1,
            },
        }
    }

    fn evaluation(
        at_s: f64,
        gate: &str,
        metric: &str,
        (canary, baseline, limit): (f64, Option<f64>, f64),
        unit: Unit,
        outcome: GateOutcome,
    ) -> GateEvaluation {
        GateEvaluation {
            at: (at_s * 1e6) as u64,
            window_start: ((at_s - 3.0) * 1e6) as u64,
            gate: gate.to_string(),
            metric: metric.to_string(),
            canary: Some(canary),
            baseline,
            limit: Some(limit),
            unit,
            samples: 12,
            baseline_samples: 880,
            outcome,
            detail: format!("{metric} {canary}"),
        }
    }

    /// A restore from a backup, then a canary rolled back at its second stage.
    pub fn procedures() -> Summary {
        let mut s = passing();
        s.scenario = "canary-and-restore".to_string();
        s.data.after_recovery_point = 212;
        s.data.indeterminate = 3;
        s.backup = Some(BackupResult {
            backup_step: "2 Snapshot the keyspace".to_string(),
            backup_start: 10_100_000,
            backup_end: 10_350_000,
            disaster_step: "5 Lose the whole cluster".to_string(),
            disaster_start: 12_500_000,
            disaster_end: 12_900_000,
            last_ack_before_disaster: Some(12_480_000),
            rpo_ms: Some(2_380.0),
            writes_after_backup: 215,
            first_ok_after: Some(16_200_000),
            restore_ms: Some(3_300.0),
            rto_ms: Some(3_700.0),
            rto_limit_ms: Some(60_000.0),
            rpo_limit_ms: None,
            pass: true,
        });
        let stage =
            |index: usize, percent: f64, weights: (u32, u32), from: f64, to: f64| StageResult {
                index,
                name: None,
                percent,
                canary_weight: weights.0,
                baseline_weight: weights.1,
                share: percent / 100.0,
                start: (from * 1e6) as u64,
                end: (to * 1e6) as u64,
                observed_share: Some(percent / 100.0 + 0.001),
                evaluations: Vec::new(),
                decision: format!("promoted to stage {} (5 %)", index + 1),
            };
        let mut first = stage(1, 1.0, (2, 99), 20.0, 25.0);
        first.evaluations = vec![
            evaluation(
                24.0,
                "canary error rate",
                "error_rate",
                (0.0, Some(0.0), 0.01),
                Unit::Ratio,
                GateOutcome::Pass,
            ),
            evaluation(
                24.0,
                "canary p95",
                "p95",
                (12.5, Some(10.1), 50.0),
                Unit::Ms,
                GateOutcome::Pass,
            ),
        ];
        let mut second = stage(2, 5.0, (10, 95), 25.0, 27.0);
        second.evaluations = vec![
            evaluation(
                26.0,
                "canary error rate",
                "error_rate",
                (0.19, Some(0.0), 0.01),
                Unit::Ratio,
                GateOutcome::Fail,
            ),
            evaluation(
                27.0,
                "canary error rate",
                "error_rate",
                (0.21, Some(0.0), 0.01),
                Unit::Ratio,
                GateOutcome::Fail,
            ),
        ];
        second.decision = "rolled back: stage 2 (5 %): gate `canary error rate` (error_rate): canary 21.00 %; 2 failed evaluations in a row reached the limit".to_string();
        s.rollout = Some(RolloutResult {
            step: "7".to_string(),
            canary: "kv3".to_string(),
            baseline: vec!["kv1".to_string(), "kv2".to_string()],
            expected: RolloutOutcome::RolledBack,
            outcome: Some(RolloutOutcome::RolledBack),
            failure: Some(
                second
                    .decision
                    .trim_start_matches("rolled back: ")
                    .to_string(),
            ),
            stages: vec![first, second],
            kill_switch: Some(KillSwitchResult {
                step: "7.1".to_string(),
                at: 27_100_000,
                last_canary_request: Some(27_104_000),
                time_to_effect_ms: Some(4.0),
                limit_ms: 60_000.0,
                canary_requests_in_recovery: 0,
                pass: true,
            }),
            trigger: None,
            levers: vec![],
            expected_lever: None,
            incident: None,
        });
        s
    }

    /// A rollout by configuration, after [`passing`]'s steps: the sample rate raised to 1 %
    /// (its change showed in the log in time), then to 5 %, where a value gate failed; the
    /// rollback's kill switch never showed in the log.
    pub fn staged() -> Summary {
        let mut s = passing();
        s.scenario = "sample-rate-rollout".to_string();
        s.verdict = Verdict::Fail;
        s.reasons = vec![
            "step 5.4 `New requests are no longer sampled` failed: the change never stopped within 60 s of step 5.3 `Kill switch - turn the feature off`".to_string(),
        ];
        let log = "log app /var/log/ranker/decisions.jsonl";
        s.steps.extend([
            step("5", "Raise the sample rate in stages", "", "rollout", ""),
            step(
                "5.1.1",
                "Set the sample rate to 0.01",
                "",
                "docker exec app set-flag RANKER_SAMPLE_RATE=0.01",
                "",
            ),
            step("5.1.2", "Ranker samples 1 %", "", log, ""),
            step(
                "5.2.1",
                "Set the sample rate to 0.05",
                "",
                "docker exec app set-flag RANKER_SAMPLE_RATE=0.05",
                "",
            ),
            step(
                "5.3",
                "Kill switch - turn the feature off",
                "",
                "docker exec app set-flag RANKER_FEATURE_ENABLED=false",
                "",
            ),
            step("5.4", "New requests are no longer sampled", "", log, ""),
        ]);
        let last = s.steps.last_mut().expect("step 5.4");
        last.status = StepStatus::Failed;
        last.error = Some(s.reasons[0].clone());
        let analyzer = "/error_rate of `ranker-analyze --window 5` on app";
        let stage = |index: usize, name: &str, from: f64, to: f64| StageResult {
            index,
            name: Some(name.to_string()),
            percent: 0.0,
            canary_weight: 0,
            baseline_weight: 0,
            share: 0.0,
            start: seconds(from),
            end: seconds(to),
            observed_share: None,
            evaluations: Vec::new(),
            decision: "promoted to stage 2 (sample 5 %)".to_string(),
        };
        let mut first = stage(1, "sample 1 %", 20.0, 26.0);
        first.evaluations = vec![
            evaluation(
                24.0,
                "sampled requests do not fail",
                analyzer,
                (0.0, None, 0.01),
                Unit::Value,
                GateOutcome::Pass,
            ),
            evaluation(
                24.0,
                "the load is served",
                "error_rate",
                (0.004, None, 0.02),
                Unit::Ratio,
                GateOutcome::Pass,
            ),
        ];
        let mut second = stage(2, "sample 5 %", 26.0, 31.0);
        second.evaluations = vec![
            evaluation(
                28.0,
                "sampled requests do not fail",
                analyzer,
                (0.03, None, 0.01),
                Unit::Value,
                GateOutcome::Inconclusive,
            ),
            evaluation(
                31.0,
                "sampled requests do not fail",
                analyzer,
                (1.0, None, 0.01),
                Unit::Value,
                GateOutcome::Fail,
            ),
        ];
        second.decision = format!(
            "rolled back: stage 2 (sample 5 %): gate `sampled requests do not fail` ({analyzer}): /error_rate is 1, must be at most 0.01 (fails above 0.05)"
        );
        s.rollout = Some(RolloutResult {
            step: "5".to_string(),
            canary: String::new(),
            baseline: vec![],
            expected: RolloutOutcome::RolledBack,
            outcome: Some(RolloutOutcome::RolledBack),
            failure: Some(
                second
                    .decision
                    .trim_start_matches("rolled back: ")
                    .to_string(),
            ),
            stages: vec![first, second],
            kill_switch: None,
            trigger: None,
            levers: vec![],
            expected_lever: None,
            incident: None,
        });
        s.effects = vec![
            EffectResult {
                step: "5.1.2".to_string(),
                after: "5.1.1".to_string(),
                from: seconds(20.0),
                at: Some(seconds(21.34)),
                time_to_effect_ms: Some(1_340.0),
                limit_ms: 30_000.0,
                line: Some(format!(
                    "{{\"ts\": 1733095141.34, \"strategy\": \"reranker-v2\", \"sampled\": true, \"latency_ms\": 4.08, \"request\": \"{}\"}}",
                    "r".repeat(60)
                )),
                pass: true,
            },
            EffectResult {
                step: "5.4".to_string(),
                after: "5.3".to_string(),
                from: seconds(31.2),
                at: None,
                time_to_effect_ms: None,
                limit_ms: 60_000.0,
                line: None,
                pass: false,
            },
        ];
        s
    }

    /// [`staged`] rolled back by levers, fastest first: turning the flag off (the lever the
    /// procedure expects to restore service) did not stop the sampling, safe mode did, and
    /// the redeploy was never tried; with the judge's incident note.
    pub fn levers() -> Summary {
        let mut s = staged();
        let unexpected =
            "rollback: lever 1 `Flag off` was expected to restore service; lever 2 `Safe mode` did";
        let never =
            "the change never stopped within 60 s of step 5.3.1 `Turn the feature flag off`";
        s.reasons = vec![unexpected.to_string()];
        s.steps.truncate(s.steps.len() - 2);
        let log = "log app /var/log/ranker/decisions.jsonl";
        let set = |flag: &str| format!("docker exec app set-flag {flag}");
        let mut rollback = [
            step(
                "5.3.1",
                "Turn the feature flag off",
                "",
                &set("RANKER_FEATURE_ENABLED=false"),
                "",
            ),
            step("5.3.2", "New requests are no longer sampled", "", log, ""),
            step(
                "5.4.1",
                "Switch the ranker to safe mode",
                "",
                &set("RANKER_SAFE_MODE=true"),
                "",
            ),
            step("5.4.2", "Sampled requests no longer fail", "", log, ""),
        ];
        for (r, (start, duration_ms)) in
            rollback
                .iter_mut()
                .zip([(31.2, 100), (31.3, 60_000), (91.4, 200), (91.6, 3_400)])
        {
            r.started = seconds(start);
            r.duration_ms = duration_ms;
        }
        rollback[1].status = StepStatus::Failed;
        rollback[1].error = Some(never.to_string());
        s.steps.extend(rollback);
        s.effects[1].step = "5.3.2".to_string();
        s.effects[1].after = "5.3.1".to_string();
        s.effects.push(EffectResult {
            step: "5.4.2".to_string(),
            after: "5.4.1".to_string(),
            from: seconds(91.4),
            at: Some(seconds(93.8)),
            time_to_effect_ms: Some(2_400.0),
            limit_ms: 30_000.0,
            line: Some(
                "{\"ts\": 1733095211.8, \"strategy\": \"safe\", \"sampled\": false}".to_string(),
            ),
            pass: true,
        });
        let lever = |index: usize, name: &str, outcome: LeverOutcome, span: Option<(f64, f64)>| {
            LeverResult {
                index,
                name: name.to_string(),
                outcome,
                start: span.map(|(from, _)| seconds(from)),
                end: span.map(|(_, to)| seconds(to)),
                detail: None,
            }
        };
        let mut flag_off = lever(1, "Flag off", LeverOutcome::NotRestored, Some((31.2, 91.3)));
        flag_off.detail = Some(format!(
            "step 5.3.2 `New requests are no longer sampled` failed: {never}"
        ));
        let action = |step: &str, name: &str, status: StepStatus, lever: &str| IncidentAction {
            step: step.to_string(),
            name: name.to_string(),
            status,
            lever: Some(lever.to_string()),
        };
        let r = s.rollout.as_mut().expect("staged rolls out");
        r.trigger = Some(RolloutTrigger::Gate {
            stage: 2,
            gate: "sampled requests do not fail".to_string(),
            limit: "1 failed evaluation".to_string(),
        });
        r.levers = vec![
            flag_off,
            lever(2, "Safe mode", LeverOutcome::Restored, Some((91.4, 95.0))),
            lever(3, "Redeploy", LeverOutcome::NotTried, None),
        ];
        r.expected_lever = Some("Flag off".to_string());
        r.incident = Some(IncidentResult {
            stage: 2,
            stage_name: "sample 5 %".to_string(),
            stage_start: seconds(26.0),
            trigger: "gate `sampled requests do not fail`".to_string(),
            metric: Some("/error_rate of `ranker-analyze --window 5` on app".to_string()),
            value: Some(1.0),
            limit: Some(0.01),
            detail: "/error_rate is 1, must be at most 0.01 (fails above 0.05)".to_string(),
            first_observed: seconds(28.0),
            decided: seconds(31.0),
            actions: vec![
                action(
                    "5.3.1",
                    "Turn the feature flag off",
                    StepStatus::Passed,
                    "Flag off",
                ),
                action(
                    "5.3.2",
                    "New requests are no longer sampled",
                    StepStatus::Failed,
                    "Flag off",
                ),
                action(
                    "5.4.1",
                    "Switch the ranker to safe mode",
                    StepStatus::Passed,
                    "Safe mode",
                ),
                action(
                    "5.4.2",
                    "Sampled requests no longer fail",
                    StepStatus::Passed,
                    "Safe mode",
                ),
            ],
            restored: Some(seconds(95.0)),
            time_to_restore_ms: Some(64_000.0),
            effects: vec![
                IncidentEffect {
                    step: "5.3.2".to_string(),
                    time_to_effect_ms: None,
                    limit_ms: 60_000.0,
                    pass: false,
                },
                IncidentEffect {
                    step: "5.4.2".to_string(),
                    time_to_effect_ms: Some(2_400.0),
                    limit_ms: 30_000.0,
                    pass: true,
                },
            ],
            impact: IncidentImpact {
                from: seconds(26.0),
                to: seconds(95.0),
                ops: 16_560,
                errors: 414,
                error_rate: 414.0 / 16_560.0,
            },
        });
        s
    }

    /// The same drill gone wrong: step 3 fails, step 4 is skipped, the procedure breaches its
    /// latency and availability SLOs, three acknowledged writes are lost, one read is stale and
    /// the hash check fails.
    pub fn failing() -> Summary {
        let mut s = passing();
        s.verdict = Verdict::Fail;
        s.duration_ms = 63_004;
        s.reasons = vec![
            "step 3 (Dump the configuration) failed: exit code 1".to_string(),
            "procedure: p99 latency 1840.2 ms is over the limit of 250.0 ms".to_string(),
            "procedure: the cluster was unavailable for 4210.0 ms, over the limit of 2000.0 ms"
                .to_string(),
            "3 acknowledged writes were lost".to_string(),
            "1 read returned stale data".to_string(),
            "check \"hash equal on all nodes\" failed".to_string(),
        ];
        let failed = &mut s.steps[2];
        failed.status = StepStatus::Failed;
        failed.duration_ms = 5_003;
        failed.output = StepOutput {
            exit_code: Some(1),
            http_status: None,
            stdout: "/config/feature-01 = on\n/config/feature-02 = <unset> & ]]>\n".to_string(),
            stderr: "Error: context deadline exceeded\n".to_string(),
        };
        failed.error = Some(
            "exit code 1, expected 0\ncommand: docker exec kv1 kvctl get --prefix /config"
                .to_string(),
        );
        let skipped = &mut s.steps[3];
        skipped.status = StepStatus::Skipped;
        skipped.started = 0;
        skipped.duration_ms = 0;
        skipped.attempts = 0;
        skipped.output = StepOutput::default();

        s.phases[2].end = 63_004_000;
        let procedure = &mut s.phases[1];
        procedure.p99_ms = 1840.24;
        procedure.longest_unavailable_ms = 4210.0;
        procedure.errors = 12;
        procedure.ok = procedure.ops - 12;
        procedure.error_rate = 12.0 / procedure.ops as f64;
        for slo in &mut procedure.slos {
            slo.observed = match slo.name.as_str() {
                "error_rate" => procedure.error_rate,
                "p99" => 1840.24,
                _ => 4210.0,
            };
            slo.pass = slo.observed <= slo.limit;
        }

        s.data.lost = 3;
        s.data.unexpected = 0;
        s.data.lost_examples = vec![
            "key k-0017 value c3-w811: acked at 14.202 s, absent after recovery".to_string(),
            "key k-0042 value c1-w790: acked at 14.388 s, absent after recovery".to_string(),
            "key k-0101 value c2-w802: acked at 14.391 s, absent after recovery".to_string(),
        ];
        s.data.pass = false;
        s.reads.stale = 1;
        s.reads.examples = vec![
            "read of k-0042 at 15.100 s by client 4 on kv2 returned c1-w700, but c1-w790 completed at 14.388 s"
                .to_string(),
        ];
        s.reads.pass = false;
        s.checks[0] = CheckResult {
            name: "hash equal on all nodes".to_string(),
            pass: false,
            detail:
                "kv1: 3719238741 | kv2: 3719238741 | kv3: 1025597466\nkv3 diverged at revision 5803"
                    .to_string(),
        };
        s.nodes[2].image_at_end = "firedrill/kv:1.4.23".to_string();
        s.recoveries = vec![
            RecoveryResult {
                step: "1".to_string(),
                node: "kv1".to_string(),
                from: 10_424_345,
                to_first_ok_ms: Some(12.5),
                to_slo_ms: Some(850.0),
                limit_ms: Some(5_000.0),
                pass: true,
            },
            RecoveryResult {
                step: "3".to_string(),
                node: "kv3".to_string(),
                from: 15_603_000,
                to_first_ok_ms: None,
                to_slo_ms: None,
                limit_ms: Some(5_000.0),
                pass: false,
            },
        ];
        s
    }

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn seconds(s: f64) -> Micros {
        (s * 1e6).round() as Micros
    }

    fn panel(title: &str, query: &str, unit: &str, series: usize) -> PanelRecord {
        PanelRecord {
            title: title.to_string(),
            query: query.to_string(),
            unit: unit.to_string(),
            file: format!("metrics/{}.json", title.to_lowercase().replace(' ', "-")),
            series,
            error: None,
        }
    }

    /// [`passing`] watched by Prometheus: kv2 was down for a while (its alert resolved), kv3
    /// went down late in the run and was still down when the run stopped watching; four
    /// panels, whose series are [`panel_series`]: one with three members, one with a single
    /// series, one whose query Prometheus refused and one that matched nothing.
    pub fn monitored() -> Summary {
        let mut s = passing();
        let down = |instance: &str, times: [Option<f64>; 3]| AlertEpisode {
            alert: "KvMemberDown".to_string(),
            labels: labels(&[("instance", instance), ("severity", "page")]),
            pending_at: times[0].map(seconds),
            firing_at: times[1].map(seconds),
            resolved_at: times[2].map(seconds),
        };
        let mut refused = panel(
            "Commit latency p99",
            "histogram_quantile(0.99, rate(kv_disk_commit_seconds_bucket[1m])",
            "s",
            0,
        );
        refused.error = Some(
            "bad_data: invalid parameter \"query\": 1:63: parse error: unclosed left parenthesis"
                .to_string(),
        );
        s.monitoring = Some(MonitoringResult {
            prometheus: "prometheus at http://127.0.0.1:39090".to_string(),
            polls: 24,
            poll_errors: 0,
            episodes: vec![
                down("kv2:2379", [Some(10.5), Some(11.5), Some(15.0)]),
                down("kv3:2379", [Some(16.0), Some(17.0), None]),
            ],
            expectations: vec![],
            quiet: vec![],
            hygiene: None,
            panels: vec![
                panel(
                    "Requests per member",
                    "sum by (instance) (rate(kv_requests_total[15s]))",
                    "req/s",
                    3,
                ),
                panel(
                    "Leader changes",
                    "kv_server_leader_changes_seen_total",
                    "",
                    1,
                ),
                refused,
                panel("Snapshots taken", "increase(kv_snapshots_total[1m])", "", 0),
            ],
        });
        s
    }

    /// [`monitored`]'s panels on the run clock, which fetched them from 7 s to 20 s: requests
    /// every second (kv2 answered none from 12 s to 14 s), leader changes every 2 s.
    pub fn panel_series() -> Vec<PanelSeries> {
        let requests = |instance: &str, base: f64| PanelLine {
            labels: labels(&[("instance", instance)]),
            points: (7..=20)
                .filter(|t| instance != "kv2:2379" || !(12..=14).contains(t))
                .map(|t| (seconds(t as f64), base + (t % 3) as f64))
                .collect(),
        };
        let series = |title: &str, unit: &str, lines: Vec<PanelLine>| PanelSeries {
            title: title.to_string(),
            unit: unit.to_string(),
            lines,
        };
        vec![
            series(
                "Requests per member",
                "req/s",
                vec![
                    requests("kv1:2379", 80.0),
                    requests("kv2:2379", 78.0),
                    requests("kv3:2379", 83.0),
                ],
            ),
            series(
                "Leader changes",
                "",
                vec![PanelLine {
                    labels: labels(&[
                        ("__name__", "kv_server_leader_changes_seen_total"),
                        ("instance", "kv1:2379"),
                        ("job", "kv"),
                    ]),
                    points: [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0]
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (seconds(7.0 + 2.0 * i as f64), v))
                        .collect(),
                }],
            ),
            series("Commit latency p99", "s", vec![]),
            series("Snapshots taken", "", vec![]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_pretty() {
        assert_eq!(percent(0.012345), "1.23 %");
        assert_eq!(percent(0.0), "0.00 %");
        assert_eq!(percent(f64::NAN), "n/a");
        assert_eq!(millis(12.345), "12.3 ms");
        assert_eq!(millis(f64::INFINITY), "n/a");
        assert_eq!(seconds_from_ms(47_318), "47.318 s");
        assert_eq!(seconds_from_ms(5), "0.005 s");
        assert_eq!(seconds_tenths(1_234.0), "1.2 s");
        assert_eq!(seconds_tenths(60_000.0), "60.0 s");
        assert_eq!(run_clock(10_012_345), "10.012");
        assert_eq!(run_clock(1_999_600), "2.000");
        assert_eq!(slo_value(0.5, Unit::Ratio), "50.00 %");
        assert_eq!(slo_value(12.34, Unit::Ms), "12.3 ms");
        assert_eq!(slo_value(3.0, Unit::Ops), "3 ops");
    }

    #[test]
    fn first_line_is_cut_to_length() {
        assert_eq!(first_line("one\ntwo", 10), "one");
        assert_eq!(first_line("abcdefghij", 5), "abcd…");
        assert_eq!(first_line("", 5), "");
    }

    #[test]
    fn html_escape_covers_markup_and_quotes() {
        assert_eq!(
            html_escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn unparsable_start_time_is_shown_as_given() {
        assert_eq!(
            wall_clock("2025-03-14T10:26:53+01:00"),
            "2025-03-14 09:26:53 UTC"
        );
        assert_eq!(wall_clock("yesterday"), "yesterday");
    }

    #[test]
    fn a_time_on_the_run_clock_is_dated_from_the_start() {
        assert_eq!(
            wall_clock_at("2025-03-14T10:26:53+01:00", 31_000_500).as_deref(),
            Some("2025-03-14T09:27:24.001Z")
        );
        assert_eq!(
            wall_clock_at("2025-03-14T09:26:53Z", 1_234_567).as_deref(),
            Some("2025-03-14T09:26:54.235Z")
        );
        assert_eq!(wall_clock_at("yesterday", 0), None);
    }
}
