//! junit.xml: the run as a test suite, for the test report views of CI systems.
//!
//! One suite named after the scenario. Test cases: one per step, one per SLO row, one for the
//! data check, one for the read check, one per rollout stage and rollback lever, one per time
//! to effect and one per extra check. A failure carries a short
//! message and, as its text, what someone needs to act on it: the step's error and output, the
//! observed value against its limit, the offending writes and reads.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use firedrill_types::summary::{
    BackupResult, CheckResult, DataResult, EffectResult, LeverOutcome, LeverResult, PhaseResult,
    ReadResult, RolloutResult, SloResult, StageResult, StepRecord, StepStatus, Summary, Verdict,
};

use crate::{first_line, millis, percent, run_clock, seconds_tenths, slo_value, view, ReportError};

/// The name of the `<testsuites>` element.
pub const REPORT_NAME: &str = "firedrill";
/// CI views show the message on one line; the full text goes in the failure's body.
const MESSAGE_CHARS: usize = 200;
/// How much of a failed step's output its failure text quotes (system-out has all of stdout).
const TAIL_LINES: usize = 40;

pub fn render(summary: &Summary) -> Result<String, ReportError> {
    let mut report = Report::new(REPORT_NAME);
    report.add_test_suite(suite(summary, &summary.scenario));
    Ok(report.to_string()?)
}

/// The run as one `<testsuite>` named `name` (the scenario's name; `firedrill merge` makes
/// it unique when a scenario appears twice).
pub fn suite(summary: &Summary, name: &str) -> TestSuite {
    let scenario = summary.scenario.as_str();
    let mut suite = TestSuite::new(name);
    if let Ok(started) = chrono::DateTime::parse_from_rfc3339(&summary.started_at) {
        suite.set_timestamp(started);
    }
    suite.set_time(Duration::from_millis(summary.duration_ms));
    let verdict = match summary.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    };
    suite.add_properties([
        ("file", summary.file.as_str()),
        ("run_id", summary.run_id.as_str()),
        ("seed", summary.seed.to_string().as_str()),
        ("verdict", verdict),
    ]);

    suite.add_test_cases(summary.steps.iter().map(|s| step_case(scenario, s)));
    for phase in &summary.phases {
        suite.add_test_cases(phase.slos.iter().map(|slo| slo_case(scenario, phase, slo)));
    }
    suite.add_test_case(data_case(scenario, &summary.data));
    suite.add_test_case(reads_case(scenario, &summary.reads));
    if let Some(b) = &summary.backup {
        suite.add_test_case(backup_case(scenario, b, &summary.data));
    }
    if let Some(r) = &summary.rollout {
        suite.add_test_cases(r.stages.iter().map(|s| stage_case(scenario, r, s)));
        suite.add_test_cases(r.levers.iter().map(|l| lever_case(scenario, r, l)));
        suite.add_test_case(rollout_case(scenario, r));
    }
    suite.add_test_cases(
        summary
            .effects
            .iter()
            .map(|e| effect_case(scenario, e, &summary.steps)),
    );
    suite.add_test_cases(summary.checks.iter().map(|c| check_case(scenario, c)));
    suite
}

fn step_case(scenario: &str, step: &StepRecord) -> TestCase {
    let status = match step.status {
        StepStatus::Passed => TestCaseStatus::success(),
        StepStatus::Failed => {
            let error = step.error.as_deref().unwrap_or("the run recorded no error");
            failure(error, &step_failure_text(step, error))
        }
        StepStatus::Skipped => {
            let mut status = TestCaseStatus::skipped();
            status.set_message("not run: an earlier step failed or the run was interrupted");
            status
        }
    };
    let mut case = TestCase::new(format!("step {}: {}", step.id, step.name), status);
    case.set_classname(format!("{scenario}.steps"));
    if step.status != StepStatus::Skipped {
        case.set_time(Duration::from_millis(step.duration_ms));
    }
    if !step.output.stdout.is_empty() {
        case.set_system_out(&step.output.stdout);
    }
    if !step.output.stderr.is_empty() {
        case.set_system_err(&step.output.stderr);
    }
    case
}

fn step_failure_text(step: &StepRecord, error: &str) -> String {
    let out = &step.output;
    let mut text = format!("{}\n\naction: {}\n", error.trim_end(), step.action);
    if let Some(code) = out.exit_code {
        text.push_str(&format!("exit code: {code}\n"));
    }
    if let Some(status) = out.http_status {
        text.push_str(&format!("HTTP status: {status}\n"));
    }
    text.push_str(&format!(
        "attempts: {}\ntranscript: {}\n",
        step.attempts, step.transcript
    ));
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !stream.is_empty() {
            text.push_str(&format!(
                "\n--- {} ---\n{}",
                tail_heading(name, stream),
                tail(stream)
            ));
        }
    }
    text
}

fn tail_heading(name: &str, text: &str) -> String {
    let lines = text.lines().count();
    if lines > TAIL_LINES {
        format!("{name}, last {TAIL_LINES} of {lines} lines")
    } else {
        name.to_string()
    }
}

/// The last [`TAIL_LINES`] lines of `text`, ending in a newline.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].iter().map(|l| format!("{l}\n")).collect()
}

fn slo_case(scenario: &str, phase: &PhaseResult, slo: &SloResult) -> TestCase {
    let observed = slo_value(slo.observed, slo.unit);
    let limit = slo_value(slo.limit, slo.unit);
    let text = format!(
        "{} in phase {} ({} – {} s on the run clock): observed {observed}, limit {limit}\n\
         phase: {} ops, {} errors ({}), p50 {}, p99 {}, longest unavailability {}\n",
        slo.name,
        phase.phase.name(),
        run_clock(phase.start),
        run_clock(phase.end),
        phase.ops,
        phase.errors,
        percent(phase.error_rate),
        millis(phase.p50_ms),
        millis(phase.p99_ms),
        millis(phase.longest_unavailable_ms),
    );
    let message = format!(
        "{} {}: observed {observed}, limit {limit}",
        phase.phase.name(),
        slo.name
    );
    let case = TestCase::new(
        format!("slo {} {}", phase.phase.name(), slo.name),
        TestCaseStatus::success(),
    );
    verdict_case(case, scenario, "slo", slo.pass, &message, text)
}

fn data_case(scenario: &str, data: &DataResult) -> TestCase {
    let mut text = format!(
        "keys read back: {}\nacked writes: {}\nlost: {}\nunexpected: {}\nrecovered (unknown outcome, present): {}\n",
        data.keys, data.acked, data.lost, data.unexpected, data.recovered
    );
    push_examples(&mut text, "lost writes", data.lost, &data.lost_examples);
    push_examples(
        &mut text,
        "unexpected values",
        data.unexpected,
        &data.unexpected_examples,
    );
    let message = counts(&[
        (data.lost, "lost write", "lost writes"),
        (data.unexpected, "unexpected value", "unexpected values"),
    ])
    .unwrap_or_else(|| "data check failed".to_string());
    let case = TestCase::new("data: no lost writes", TestCaseStatus::success());
    verdict_case(case, scenario, "data", data.pass, &message, text)
}

fn reads_case(scenario: &str, reads: &ReadResult) -> TestCase {
    let offending = reads.phantom + reads.future + reads.stale;
    let mut text = format!(
        "reads checked: {}\nphantom: {}\nfuture: {}\nstale: {}\n",
        reads.checked, reads.phantom, reads.future, reads.stale
    );
    push_examples(&mut text, "offending reads", offending, &reads.examples);
    let message = counts(&[
        (reads.phantom, "phantom read", "phantom reads"),
        (reads.future, "future read", "future reads"),
        (reads.stale, "stale read", "stale reads"),
    ])
    .unwrap_or_else(|| "read check failed".to_string());
    let case = TestCase::new(
        "reads: no phantom, future or stale reads",
        TestCaseStatus::success(),
    );
    verdict_case(case, scenario, "reads", reads.pass, &message, text)
}

fn backup_case(scenario: &str, b: &BackupResult, d: &DataResult) -> TestCase {
    let shown = |v: Option<f64>| v.map_or_else(|| "never".to_string(), millis);
    let text = format!(
        "backup ({}): {} – {} s\ndisaster ({}): {} – {} s\nrestored cluster's first answer: {}\n\
         restore time (after the last node was lost): {}\nrecovery time (RTO): {}{}\n\
         recovery point (RPO) seen: {}{}\nacknowledged writes after the backup: {}, gone (allowed): {}\n\
         indeterminate (overlapped the backup), gone: {}\n",
        b.backup_step,
        run_clock(b.backup_start),
        run_clock(b.backup_end),
        b.disaster_step,
        run_clock(b.disaster_start),
        run_clock(b.disaster_end),
        b.first_ok_after.map_or_else(|| "never".to_string(), |t| format!("{} s", run_clock(t))),
        shown(b.restore_ms),
        shown(b.rto_ms),
        b.rto_limit_ms.map(|l| format!(" (limit {})", millis(l))).unwrap_or_default(),
        shown(b.rpo_ms),
        b.rpo_limit_ms.map(|l| format!(" (limit {})", millis(l))).unwrap_or_default(),
        b.writes_after_backup,
        d.after_recovery_point,
        d.indeterminate,
    );
    let message = format!(
        "restore: RTO {}, RPO seen {}",
        shown(b.rto_ms),
        shown(b.rpo_ms)
    );
    let case = TestCase::new(
        "backup: restore time and recovery point",
        TestCaseStatus::success(),
    );
    verdict_case(case, scenario, "backup", b.pass, &message, text)
}

/// One case per stage: its weights (a rollout by configuration has none), every gate
/// evaluation, and its decision.
fn stage_case(scenario: &str, r: &RolloutResult, s: &StageResult) -> TestCase {
    let mut text = if view::by_configuration(r) {
        format!(
            "{} from {} to {} s\n",
            view::stage_label(s),
            run_clock(s.start),
            run_clock(s.end),
        )
    } else {
        format!(
            "{} % to {} (weight {}, each baseline {}) from {} to {} s; observed share {}\n",
            s.percent,
            r.canary,
            s.canary_weight,
            s.baseline_weight,
            run_clock(s.start),
            run_clock(s.end),
            s.observed_share.map_or_else(|| "n/a".to_string(), percent),
        )
    };
    for e in &s.evaluations {
        text.push_str(&format!(
            "  {} s {} ({}): {} — {}\n",
            run_clock(e.at),
            e.gate,
            e.metric,
            view::gate_outcome(e.outcome),
            e.detail
        ));
    }
    text.push_str(&format!("decision: {}\n", s.decision));
    let rolled_back = s.decision.starts_with("rolled back");
    let case = TestCase::new(
        format!("rollout stage {} ({})", s.index, view::stage_label(s)),
        TestCaseStatus::success(),
    );
    verdict_case(case, scenario, "rollout", !rolled_back, &s.decision, text)
}

/// One case per rollback lever: one tried that did not restore service fails with why, one
/// never tried is skipped.
fn lever_case(scenario: &str, r: &RolloutResult, l: &LeverResult) -> TestCase {
    let name = format!("rollback lever {}: {}", l.index, l.name);
    if l.outcome == LeverOutcome::NotTried {
        let mut status = TestCaseStatus::skipped();
        status.set_message(match view::restoring_lever(r) {
            Some(by) => format!(
                "not tried: lever {} ({}) restored service",
                by.index, by.name
            ),
            None => "not tried".to_string(),
        });
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("{scenario}.rollout"));
        return case;
    }
    let at = |t: Option<u64>| t.map_or_else(|| "n/a".to_string(), run_clock);
    let took = view::lever_took_ms(l);
    let mut text = format!(
        "{}: from {} to {} s on the run clock (took {})\n",
        l.outcome.name(),
        at(l.start),
        at(l.end),
        took.map_or_else(|| "n/a".to_string(), seconds_tenths),
    );
    if let Some(detail) = &l.detail {
        text.push_str(&format!("{}\n", detail.trim_end()));
    }
    if r.expected_lever.as_ref() == Some(&l.name) {
        text.push_str("the procedure expects this lever to restore service\n");
    }
    let message = l
        .detail
        .clone()
        .unwrap_or_else(|| format!("lever {}: {}", l.name, l.outcome.name()));
    let mut case = TestCase::new(name, TestCaseStatus::success());
    if let (Some(start), Some(end)) = (l.start, l.end) {
        case.set_time(Duration::from_micros(end.saturating_sub(start)));
    }
    let pass = view::lever_pass(l.outcome) != Some(false);
    verdict_case(case, scenario, "rollout", pass, &message, text)
}

fn rollout_case(scenario: &str, r: &RolloutResult) -> TestCase {
    let message = format!(
        "rollout {}, expected {}",
        view::rollout_outcome(r),
        r.expected.name()
    );
    let mut text = format!("{message}\n");
    if let Some(f) = &r.failure {
        text.push_str(&format!("why: {f}\n"));
    }
    let case = TestCase::new("rollout: outcome as expected", TestCaseStatus::success());
    verdict_case(
        case,
        scenario,
        "rollout",
        r.outcome == Some(r.expected),
        &message,
        text,
    )
}

/// One case per `log` step: the time its change took to show, against its limit.
fn effect_case(scenario: &str, e: &EffectResult, steps: &[StepRecord]) -> TestCase {
    let limit = seconds_tenths(e.limit_ms);
    let message = match e.time_to_effect_ms {
        Some(ms) => format!(
            "took {} from the start of step {} (limit {limit})",
            seconds_tenths(ms),
            e.after
        ),
        None => format!(
            "never showed within {limit} of the start of step {}",
            e.after
        ),
    };
    let mut text = format!(
        "{message}\nfrom: {} s\nat: {}\n",
        run_clock(e.from),
        e.at.map_or_else(|| "never".to_string(), |t| format!("{} s", run_clock(t)))
    );
    if let Some(line) = &e.line {
        text.push_str(&format!("line: {line}\n"));
    }
    let name = match view::step_name(steps, &e.step) {
        Some(name) => format!("time to effect of step {}: {name}", e.step),
        None => format!("time to effect of step {}", e.step),
    };
    let case = TestCase::new(name, TestCaseStatus::success());
    verdict_case(case, scenario, "effects", e.pass, &message, text)
}

fn check_case(scenario: &str, check: &CheckResult) -> TestCase {
    let case = TestCase::new(format!("check: {}", check.name), TestCaseStatus::success());
    verdict_case(
        case,
        scenario,
        "checks",
        check.pass,
        &check.detail,
        check.detail.clone(),
    )
}

/// Finishes the case of a judgement: a failure shows `text` as its body, a pass as its output.
fn verdict_case(
    mut case: TestCase,
    scenario: &str,
    group: &str,
    pass: bool,
    message: &str,
    text: String,
) -> TestCase {
    case.set_classname(format!("{scenario}.{group}"));
    if pass {
        if !text.is_empty() {
            case.set_system_out(text);
        }
    } else {
        case.status = failure(message, &text);
    }
    case
}

/// A failure whose message is the first line of `message` and whose body is `text`.
fn failure(message: &str, text: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(first_line(message, MESSAGE_CHARS));
    status.set_description(text);
    status
}

fn push_examples(text: &mut String, label: &str, total: u64, examples: &[String]) {
    if examples.is_empty() {
        return;
    }
    text.push_str(&format!(
        "\n{label} ({} of {}):\n",
        examples.len(),
        total.max(examples.len() as u64)
    ));
    for example in examples {
        text.push_str(&format!("  {example}\n"));
    }
}

/// "3 lost writes, 1 unexpected value" from the non-zero counts; `None` when all are zero.
fn counts(items: &[(u64, &str, &str)]) -> Option<String> {
    let parts: Vec<String> = items
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn parse(xml: &str) -> TestSuite {
        let mut report = Report::deserialize_from_str(xml).expect("junit.xml parses as XML");
        assert_eq!(report.test_suites.len(), 1, "one suite");
        report.test_suites.remove(0)
    }

    fn case<'a>(suite: &'a TestSuite, name: &str) -> &'a TestCase {
        suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no test case {name}"))
    }

    /// (message, text) of a failed case.
    fn failure_of(case: &TestCase) -> (String, String) {
        match &case.status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                description,
                ..
            } => (
                message
                    .as_ref()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
                description
                    .as_ref()
                    .map(|d| d.as_str().to_string())
                    .unwrap_or_default(),
            ),
            other => panic!("{} did not fail: {other:?}", case.name.as_str()),
        }
    }

    #[test]
    fn rollout_stages_and_the_restore_are_cases() {
        let summary = fixtures::procedures();
        let suite = parse(&render(&summary).expect("junit"));
        let first = case(&suite, "rollout stage 1 (1 %)");
        assert!(matches!(first.status, TestCaseStatus::Success { .. }));
        let second = case(&suite, "rollout stage 2 (5 %)");
        let (message, text) = failure_of(second);
        assert!(
            message.starts_with("rolled back: stage 2 (5 %)"),
            "{message}"
        );
        assert!(
            text.contains("canary error rate (error_rate): fail"),
            "{text}"
        );
        // Rolled back as the scenario expects: the outcome case passes.
        assert!(matches!(
            case(&suite, "rollout: outcome as expected").status,
            TestCaseStatus::Success { .. }
        ));
        let restore = case(&suite, "backup: restore time and recovery point");
        assert!(matches!(restore.status, TestCaseStatus::Success { .. }));
        assert!(!render(&fixtures::passing())
            .expect("junit")
            .contains("rollout"));
    }

    #[test]
    fn a_rollout_by_configuration_names_its_stages_and_each_effect_is_a_case() {
        let suite = parse(&render(&fixtures::staged()).expect("junit"));
        let first = case(&suite, "rollout stage 1 (sample 1 %)");
        let out = first
            .system_out
            .as_ref()
            .map(|o| o.as_str())
            .expect("a passing stage's text");
        assert!(
            out.starts_with("sample 1 % from 20.000 to 26.000 s\n"),
            "{out}"
        );
        assert!(!out.contains("weight"), "{out}");
        let (_, text) = failure_of(case(&suite, "rollout stage 2 (sample 5 %)"));
        assert!(
            text.contains("sampled requests do not fail (/error_rate of `ranker-analyze --window 5` on app): inconclusive"),
            "{text}"
        );

        let met = case(&suite, "time to effect of step 5.1.2: Ranker samples 1 %");
        assert!(matches!(met.status, TestCaseStatus::Success { .. }));
        assert_eq!(
            met.classname.as_ref().map(|c| c.as_str()),
            Some("sample-rate-rollout.effects")
        );
        let (message, text) = failure_of(case(
            &suite,
            "time to effect of step 5.4: New requests are no longer sampled",
        ));
        assert_eq!(
            message,
            "never showed within 60.0 s of the start of step 5.3"
        );
        assert!(text.contains("from: 31.200 s\nat: never"), "{text}");
    }

    #[test]
    fn each_rollback_lever_is_a_case() {
        let xml = render(&fixtures::levers()).expect("junit");
        let from = xml
            .find("<testcase name=\"rollback lever 1")
            .expect("lever cases");
        let to = xml
            .find("<testcase name=\"rollout: outcome as expected\"")
            .expect("the outcome case");
        insta::assert_snapshot!("levers", &xml[from..to]);

        let suite = parse(&xml);
        let (message, text) = failure_of(case(&suite, "rollback lever 1: Flag off"));
        assert!(message.starts_with("step 5.3.2 `New requests are no longer sampled` failed"));
        assert!(
            text.contains("the procedure expects this lever to restore service"),
            "{text}"
        );
        let restored = case(&suite, "rollback lever 2: Safe mode");
        assert!(matches!(restored.status, TestCaseStatus::Success { .. }));
        assert_eq!(restored.time, Some(Duration::from_millis(3_600)));
        assert!(matches!(
            case(&suite, "rollback lever 3: Redeploy").status,
            TestCaseStatus::Skipped { .. }
        ));
    }

    #[test]
    fn passing_junit() {
        insta::assert_snapshot!("passing", render(&fixtures::passing()).expect("junit"));
    }

    #[test]
    fn failing_junit() {
        insta::assert_snapshot!("failing", render(&fixtures::failing()).expect("junit"));
    }

    #[test]
    fn failing_run_parses_back_with_one_case_per_item() {
        let summary = fixtures::failing();
        let suite = parse(&render(&summary).expect("junit"));
        assert_eq!(suite.name.as_str(), "rolling-upgrade");

        let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "step 1: Check cluster health",
                "step 2: Read the release notes",
                "step 3: Dump the configuration",
                "step 4: Wait for the cluster version",
                "slo steady error_rate",
                "slo steady p99",
                "slo steady max_unavailable",
                "slo procedure error_rate",
                "slo procedure p99",
                "slo procedure max_unavailable",
                "slo recovery error_rate",
                "slo recovery p99",
                "slo recovery max_unavailable",
                "data: no lost writes",
                "reads: no phantom, future or stale reads",
                "check: hash equal on all nodes",
            ]
        );
        let failed: Vec<&str> = suite
            .test_cases
            .iter()
            .filter(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "step 3: Dump the configuration",
                "slo procedure p99",
                "slo procedure max_unavailable",
                "data: no lost writes",
                "reads: no phantom, future or stale reads",
                "check: hash equal on all nodes",
            ]
        );
        assert!(matches!(
            case(&suite, "step 4: Wait for the cluster version").status,
            TestCaseStatus::Skipped { .. }
        ));
        // The counts CI shows come from the attributes, so they must agree with the cases.
        assert_eq!(
            (suite.tests, suite.failures, suite.skipped, suite.errors),
            (16, 6, 1, 0)
        );
        assert_eq!(
            case(&suite, "slo procedure p99")
                .classname
                .as_ref()
                .map(|c| c.as_str()),
            Some("rolling-upgrade.slo")
        );
    }

    #[test]
    fn failed_step_carries_its_error_and_output() {
        let summary = fixtures::failing();
        let suite = parse(&render(&summary).expect("junit"));
        let step = case(&suite, "step 3: Dump the configuration");
        let (message, text) = failure_of(step);
        assert_eq!(message, "exit code 1, expected 0");
        assert!(
            text.starts_with("exit code 1, expected 0\ncommand: docker exec"),
            "{text}"
        );
        // XML-special characters in the output survive the round trip.
        assert!(
            text.contains("/config/feature-02 = <unset> & ]]>\n"),
            "{text}"
        );
        // The parser trims the text's final newline.
        assert!(
            text.ends_with("--- stderr ---\nError: context deadline exceeded"),
            "{text}"
        );
        assert_eq!(
            step.system_out.as_ref().map(|s| s.as_str()),
            Some(summary.steps[2].output.stdout.trim_end())
        );
        assert_eq!(
            step.classname.as_ref().map(|c| c.as_str()),
            Some("rolling-upgrade.steps")
        );
        assert_eq!(step.time, Some(Duration::from_millis(5_003)));
        assert_eq!(
            case(&suite, "step 4: Wait for the cluster version").time,
            None
        );
    }

    #[test]
    fn failed_verdicts_say_observed_against_limit_and_show_examples() {
        let suite = parse(&render(&fixtures::failing()).expect("junit"));
        let (message, _) = failure_of(case(&suite, "slo procedure p99"));
        assert_eq!(message, "procedure p99: observed 1840.2 ms, limit 250.0 ms");

        let (message, text) = failure_of(case(&suite, "data: no lost writes"));
        assert_eq!(message, "3 lost writes");
        assert!(
            text.contains("lost writes (3 of 3):\n  key k-0017"),
            "{text}"
        );

        let (message, text) = failure_of(case(&suite, "reads: no phantom, future or stale reads"));
        assert_eq!(message, "1 stale read");
        assert!(text.contains("read of k-0042 at 15.100 s"), "{text}");

        let (message, text) = failure_of(case(&suite, "check: hash equal on all nodes"));
        assert_eq!(
            message,
            "kv1: 3719238741 | kv2: 3719238741 | kv3: 1025597466"
        );
        assert!(text.ends_with("kv3 diverged at revision 5803"), "{text}");
    }

    #[test]
    fn passing_run_has_no_failures() {
        let suite = parse(&render(&fixtures::passing()).expect("junit"));
        assert_eq!((suite.tests, suite.failures, suite.skipped), (16, 0, 0));
        assert!(suite
            .test_cases
            .iter()
            .all(|c| matches!(c.status, TestCaseStatus::Success { .. })));
    }

    #[test]
    fn long_step_output_is_cut_to_its_tail_in_the_failure_text() {
        let mut summary = fixtures::failing();
        summary.steps[2].output.stdout = (1..=100).map(|i| format!("line {i}\n")).collect();
        let suite = parse(&render(&summary).expect("junit"));
        let step = case(&suite, "step 3: Dump the configuration");
        let (_, text) = failure_of(step);
        assert!(
            text.contains("--- stdout, last 40 of 100 lines ---\nline 61\n"),
            "{text}"
        );
        assert!(!text.contains("line 60\n"), "{text}");
        assert!(step
            .system_out
            .as_ref()
            .is_some_and(|s| s.as_str().starts_with("line 1\n")));
    }
}
