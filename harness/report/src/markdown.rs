//! report.md: the run written up like the runbook it drilled, for pasting into that runbook.
//!
//! Layout: verdict and the reasons for a failure first, then the procedure step by step with
//! each step's real output as its "expected output", then service levels, data, reads,
//! checks, load and the versions seen.

use firedrill_types::summary::{
    BackupResult, CheckResult, DataResult, GateOutcome, LoadStats, NodeRecord, PhaseResult,
    ReadResult, RecoveryResult, RolloutResult, StepOutput, StepRecord, StepStatus, Summary,
    Verdict,
};

use crate::{
    capitalized, data_sentence, html_escape, millis, percent, plural, reads_sentence, run_clock,
    seconds_from_ms, slo_value, tally, view, wall_clock, FOLD_LINES,
};

pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    procedure(&mut out, &summary.steps);
    service_levels(&mut out, &summary.phases);
    data(&mut out, &summary.data);
    reads(&mut out, &summary.reads);
    if let Some(b) = &summary.backup {
        backup(&mut out, b, &summary.data);
    }
    if let Some(r) = &summary.rollout {
        rollout(&mut out, r);
    }
    recoveries(&mut out, &summary.recoveries);
    checks(&mut out, &summary.checks);
    load(&mut out, &summary.load);
    versions(&mut out, &summary.nodes);
    out.push_str(&format!(
        "---\n\n<sub>Written by firedrill from summary.json ({}).</sub>\n",
        summary.schema
    ));
    out
}

/// The runbook's results region, as `--bless` writes it: the last run's verdict, date,
/// seed and the SLO table with the values observed.
pub fn results(summary: &Summary) -> String {
    let mut out = format!(
        "**Last drill: {}** on {} (run {}, seed {}, {}) — `firedrill run {} --seed {}`\n\n",
        match summary.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        },
        summary.started_at,
        summary.run_id,
        summary.seed,
        seconds_from_ms(summary.duration_ms),
        summary.file,
        summary.seed
    );
    for r in &summary.reasons {
        out.push_str(&format!("- {}\n", r.replace('\n', " ")));
    }
    if !summary.reasons.is_empty() {
        out.push('\n');
    }
    service_levels(&mut out, &summary.phases);
    out.push_str(&format!(
        "Load: {} operations, {} acknowledged writes, {} lost.\n",
        summary.load.ops, summary.data.acked, summary.data.lost
    ));
    out
}

pub(crate) fn header(out: &mut String, s: &Summary) {
    let verdict = match s.verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
    };
    out.push_str(&format!("# {}: {verdict}\n\n", s.scenario));
    out.push_str(&format!("**{}**\n\n", tally(s)));
    if s.verdict == Verdict::Fail || !s.reasons.is_empty() {
        out.push_str("## Why it failed\n\n");
        for reason in &s.reasons {
            out.push_str(&format!("- {}\n", reason.trim()));
        }
        if s.reasons.is_empty() {
            out.push_str("- the run recorded no reason\n");
        }
        out.push('\n');
    }
    if !s.description.trim().is_empty() {
        out.push_str(&format!("{}\n\n", s.description.trim()));
    }
    if let Some(runbook) = &s.runbook {
        out.push_str(&format!("- **Runbook:** <{}>\n", runbook.trim()));
    }
    out.push_str(&format!("- **Scenario file:** {}\n", code(&s.file)));
    out.push_str(&format!("- **Seed:** {}\n", code(&s.seed.to_string())));
    out.push_str(&format!("- **Run id:** {}\n", code(&s.run_id)));
    out.push_str(&format!("- **Started:** {}\n", wall_clock(&s.started_at)));
    out.push_str(&format!(
        "- **Duration:** {}\n\n",
        seconds_from_ms(s.duration_ms)
    ));
}

fn procedure(out: &mut String, steps: &[StepRecord]) {
    out.push_str("## Procedure\n\n");
    if steps.is_empty() {
        out.push_str("_No steps._\n\n");
    }
    for step in steps {
        let mark = match step.status {
            StepStatus::Passed => "✅",
            StepStatus::Failed => "❌",
            StepStatus::Skipped => "⏭",
        };
        out.push_str(&format!("### {mark} {}. {}\n\n", step.id, step.name));
        if !step.prose.trim().is_empty() {
            out.push_str(&format!("{}\n\n", step.prose.trim()));
        }
        fenced(out, "sh", &step.action);
        match step.status {
            StepStatus::Skipped => {
                out.push_str("_Not run: an earlier step failed or the run was interrupted._\n\n");
                continue;
            }
            StepStatus::Failed => {
                let error = step.error.as_deref().unwrap_or("the run recorded no error");
                if error.contains('\n') {
                    out.push_str("**Failed:**\n\n");
                    fenced(out, "text", error);
                } else {
                    out.push_str(&format!("**Failed:** {}\n\n", error.trim()));
                }
                step_output(out, "Output", &step.output);
            }
            StepStatus::Passed => step_output(out, "Expected output", &step.output),
        }
        out.push_str(&format!(
            "Started at {} s on the run clock, took {}, {}. Transcript: {}.\n\n",
            run_clock(step.started),
            seconds_from_ms(step.duration_ms),
            plural(step.attempts as usize, "attempt", "attempts"),
            code(&step.transcript),
        ));
    }
}

pub(crate) fn step_output(out: &mut String, label: &str, output: &StepOutput) {
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
    if output.stdout.is_empty() {
        out.push_str(&format!("**{label}:** nothing on stdout.\n\n"));
    } else {
        output_block(out, &label, &output.stdout);
    }
    if !output.stderr.is_empty() {
        output_block(out, "stderr", &output.stderr);
    }
}

/// One stream of a step's output; long ones are folded in `<details>`.
pub(crate) fn output_block(out: &mut String, label: &str, text: &str) {
    let lines = text.lines().count();
    if lines > FOLD_LINES {
        out.push_str(&format!(
            "<details><summary>{}: {lines} lines</summary>\n\n",
            html_escape(label)
        ));
        fenced(out, "text", text);
        out.push_str("</details>\n\n");
    } else {
        out.push_str(&format!("**{label}:**\n\n"));
        fenced(out, "text", text);
    }
}

pub(crate) fn service_levels(out: &mut String, phases: &[PhaseResult]) {
    out.push_str("## Service levels\n\n");
    if phases.is_empty() {
        out.push_str("_No phases measured._\n\n");
        return;
    }
    out.push_str(
        "| Phase | Window (s) | Ops | Errors | Error rate | p50 | p99 | Longest unavailability |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|\n");
    for p in phases {
        out.push_str(&format!(
            "| {} | {} – {} | {} | {} | {} | {} | {} | {} |\n",
            p.phase.name(),
            run_clock(p.start),
            run_clock(p.end),
            p.ops,
            p.errors,
            percent(p.error_rate),
            millis(p.p50_ms),
            millis(p.p99_ms),
            millis(p.longest_unavailable_ms),
        ));
    }
    out.push('\n');
    if phases.iter().all(|p| p.slos.is_empty()) {
        out.push_str("_No SLOs set._\n\n");
        return;
    }
    out.push_str("| Phase | SLO | Limit | Observed | Result |\n");
    out.push_str("|---|---|--:|--:|---|\n");
    for p in phases {
        for slo in &p.slos {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                p.phase.name(),
                cell(&slo.name),
                slo_value(slo.limit, &slo.unit),
                slo_value(slo.observed, &slo.unit),
                if slo.pass { "✅ met" } else { "❌ breached" },
            ));
        }
    }
    out.push('\n');
}

pub(crate) fn data(out: &mut String, d: &DataResult) {
    out.push_str("## Data\n\n");
    out.push_str(&format!(
        "{} {}.\n\n",
        pass_mark(d.pass),
        capitalized(&data_sentence(d))
    ));
    out.push_str("| Keys read back | Acked writes | Lost | Unexpected | Recovered |\n");
    out.push_str("|--:|--:|--:|--:|--:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} |\n\n",
        d.keys, d.acked, d.lost, d.unexpected, d.recovered
    ));
    out.push_str(
        "Lost: acknowledged, but gone after recovery. Unexpected: a value no write produced, or \
         one whose write failed. Recovered: an unknown outcome whose value is present (allowed).\n\n",
    );
    examples(out, "Lost writes", d.lost, &d.lost_examples);
    examples(
        out,
        "Unexpected values",
        d.unexpected,
        &d.unexpected_examples,
    );
}

pub(crate) fn reads(out: &mut String, r: &ReadResult) {
    out.push_str("## Reads\n\n");
    out.push_str(&format!(
        "{} {}.\n\n",
        pass_mark(r.pass),
        capitalized(&reads_sentence(r))
    ));
    out.push_str("| Checked | Phantom | Future | Stale |\n");
    out.push_str("|--:|--:|--:|--:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} |\n\n",
        r.checked, r.phantom, r.future, r.stale
    ));
    out.push_str(
        "Phantom: a value no write produced, or one whose write failed. Future: returned before \
         its write began. Stale: older than a write that completed before the read began.\n\n",
    );
    examples(
        out,
        "Offending reads",
        r.phantom + r.future + r.stale,
        &r.examples,
    );
}

fn examples(out: &mut String, label: &str, total: u64, examples: &[String]) {
    if examples.is_empty() {
        return;
    }
    out.push_str(&format!(
        "{label} ({} of {}):\n\n",
        examples.len(),
        total.max(examples.len() as u64)
    ));
    fenced(out, "text", &examples.join("\n"));
}

pub(crate) fn backup(out: &mut String, b: &BackupResult, d: &DataResult) {
    out.push_str("## Backup and restore\n\n");
    out.push_str("| Event | Run clock (s) | Took |\n|---|---|--:|\n");
    out.push_str(&format!(
        "| Backup: {} | {} – {} | {} |\n",
        cell(&b.backup_step),
        run_clock(b.backup_start),
        run_clock(b.backup_end),
        seconds_from_ms((b.backup_end - b.backup_start) / 1000),
    ));
    out.push_str(&format!(
        "| Disaster: {} | {} – {} | {} |\n",
        cell(&b.disaster_step),
        run_clock(b.disaster_start),
        run_clock(b.disaster_end),
        seconds_from_ms((b.disaster_end - b.disaster_start) / 1000),
    ));
    out.push_str(&format!(
        "| Restored cluster's first answer | {} | {} after the last node was lost |\n\n",
        b.first_ok_after
            .map_or_else(|| "never".to_string(), run_clock),
        b.restore_ms
            .map_or_else(|| "never".to_string(), |m| seconds_from_ms(m as u64)),
    ));
    out.push_str(&format!(
        "{} **Recovery time (RTO):** {}{}.\n\n",
        pass_mark(b.pass),
        b.rto_ms.map_or_else(
            || "never served again".to_string(),
            |m| seconds_from_ms(m as u64)
        ),
        b.rto_limit_ms
            .map(|l| format!(" (limit {})", seconds_from_ms(l as u64)))
            .unwrap_or_default(),
    ));
    out.push_str(&format!(
        "**Recovery point (RPO) seen:** {}{}: from the backup's start to the last write acknowledged before the disaster{}. \
         {} acknowledged writes came after the backup ended; {} of them are gone (after the recovery point, allowed), \
         and {} writes that overlapped the backup are gone (indeterminate, allowed).\n\n",
        b.rpo_ms.map_or_else(|| "none".to_string(), |m| seconds_from_ms(m as u64)),
        b.rpo_limit_ms
            .map(|l| format!(" (limit {})", seconds_from_ms(l as u64)))
            .unwrap_or_default(),
        b.last_ack_before_disaster
            .map(|t| format!(" at {} s", run_clock(t)))
            .unwrap_or_default(),
        b.writes_after_backup,
        d.after_recovery_point,
        d.indeterminate,
    ));
}

pub(crate) fn rollout(out: &mut String, r: &RolloutResult) {
    out.push_str("## Canary rollout\n\n");
    let outcome = r.outcome.map_or("not finished", |o| o.name());
    let matched = r.outcome == Some(r.expected);
    out.push_str(&format!(
        "{} Canary {} against {}: **{outcome}**, {}.\n\n",
        pass_mark(matched),
        code(&r.canary),
        r.baseline
            .iter()
            .map(|b| code(b))
            .collect::<Vec<_>>()
            .join(", "),
        if matched {
            "as expected".to_string()
        } else {
            format!("expected {}", r.expected.name())
        },
    ));
    if let Some(f) = &r.failure {
        out.push_str(&format!("**Rolled back:** {}\n\n", f.trim()));
    }
    out.push_str("| Stage | Share | Weights (canary / each baseline) | Run clock (s) | Observed share | Decision |\n");
    out.push_str("|--:|--:|--:|---|--:|---|\n");
    for s in &r.stages {
        out.push_str(&format!(
            "| {} | {} % | {} / {} | {} – {} | {} | {} |\n",
            s.index,
            s.percent,
            s.canary_weight,
            s.baseline_weight,
            run_clock(s.start),
            run_clock(s.end),
            s.observed_share.map_or_else(|| "n/a".to_string(), percent),
            cell(&s.decision),
        ));
    }
    out.push('\n');
    let evaluations: Vec<String> = r
        .stages
        .iter()
        .flat_map(|s| s.evaluations.iter().map(move |e| (s.index, e)))
        .map(|(stage, e)| {
            let value =
                |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| slo_value(v, &e.unit));
            format!(
                "| {stage} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                run_clock(e.at),
                cell(&e.gate),
                cell(&e.metric),
                value(e.canary),
                value(e.baseline),
                value(e.limit),
                e.samples,
                match e.outcome {
                    GateOutcome::Pass => "✅ pass",
                    GateOutcome::Fail => "❌ fail",
                    GateOutcome::NoData => "⚪ no data",
                },
            )
        })
        .collect();
    if !evaluations.is_empty() {
        out.push_str(&format!(
            "<details><summary>Gate evaluations: {}</summary>\n\n",
            evaluations.len()
        ));
        out.push_str(
            "| Stage | At (s) | Gate | Metric | Canary | Baseline | Limit | Samples | Result |\n",
        );
        out.push_str("|--:|--:|---|---|--:|--:|--:|--:|---|\n");
        evaluations.iter().for_each(|row| out.push_str(row));
        out.push_str("\n</details>\n\n");
    }
    if let Some(k) = &r.kill_switch {
        out.push_str(&format!(
            "{} **Kill switch** (step {}) at {} s: the canary served its last request {} later (limit {}); {} requests to it in the recovery phase.\n\n",
            pass_mark(k.pass),
            k.step,
            run_clock(k.at),
            k.time_to_effect_ms.map_or_else(|| "n/a".to_string(), |m| seconds_from_ms(m as u64)),
            seconds_from_ms(k.limit_ms as u64),
            k.canary_requests_in_recovery,
        ));
    }
}

pub(crate) fn recoveries(out: &mut String, recoveries: &[RecoveryResult]) {
    if recoveries.is_empty() {
        return;
    }
    out.push_str("## Recovery after steps\n\n|");
    for (heading, _) in view::RECOVERY_COLUMNS {
        out.push_str(&format!(" {heading} |"));
    }
    out.push_str("\n|");
    for (_, numeric) in view::RECOVERY_COLUMNS {
        out.push_str(if numeric { "---:|" } else { "---|" });
    }
    out.push('\n');
    for r in view::recoveries(recoveries) {
        out.push('|');
        for c in &r.cells {
            out.push_str(&format!(" {} |", cell(c)));
        }
        out.push_str(if r.pass {
            " ✅ recovered |\n"
        } else {
            " ❌ not recovered |\n"
        });
    }
    out.push_str(&format!("\n{}\n\n", view::RECOVERY_NOTE));
}

pub(crate) fn checks(out: &mut String, checks: &[CheckResult]) {
    out.push_str("## Checks\n\n");
    if checks.is_empty() {
        out.push_str("_No checks._\n\n");
        return;
    }
    out.push_str("| Check | Result | Detail |\n");
    out.push_str("|---|---|---|\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&c.name),
            if c.pass { "✅ pass" } else { "❌ fail" },
            cell(&c.detail),
        ));
    }
    out.push('\n');
}

pub(crate) fn load(out: &mut String, l: &LoadStats) {
    out.push_str("## Load\n\n");
    out.push_str("| Ops | Reads | Writes | Ok | Failed | Unknown | Ops/s | Goose requests |\n");
    out.push_str("|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} | {:.1} | {} |\n\n",
        l.ops, l.reads, l.writes, l.ok, l.fail, l.unknown, l.ops_per_s, l.goose_requests
    ));
}

pub(crate) fn versions(out: &mut String, nodes: &[NodeRecord]) {
    out.push_str("## Versions seen\n\n");
    if nodes.is_empty() {
        out.push_str("_No nodes recorded._\n\n");
        return;
    }
    out.push_str("| Node | Image at start | Image at end | Changed |\n");
    out.push_str("|---|---|---|---|\n");
    for n in nodes {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&n.name),
            cell(&code(&n.image_at_start)),
            cell(&code(&n.image_at_end)),
            if n.image_at_start == n.image_at_end {
                "no"
            } else {
                "yes"
            },
        ));
    }
    out.push('\n');
}

pub(crate) fn pass_mark(pass: bool) -> &'static str {
    if pass {
        "✅"
    } else {
        "❌"
    }
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// A fenced block whose fence is longer than any backtick run inside, so output that itself
/// contains ``` cannot close it early.
pub(crate) fn fenced(out: &mut String, info: &str, text: &str) {
    let fence = "`".repeat(3.max(longest_backtick_run(text) + 1));
    out.push_str(&format!("{fence}{info}\n{}", text));
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{fence}\n\n"));
}

/// An inline code span that survives backticks in `text`; pass it through [`cell`] in a table.
pub(crate) fn code(text: &str) -> String {
    let ticks = "`".repeat(longest_backtick_run(text) + 1);
    // A space keeps a leading or trailing backtick from merging with the delimiters.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// Text for a table cell: a `|` would start a new column and a newline would end the row.
pub(crate) fn cell(text: &str) -> String {
    text.trim()
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// The fenced code blocks of a markdown document, as CommonMark reads them: a block opens
    /// with a line of 3 or more backticks and closes only at a line of at least as many.
    fn fenced_blocks(md: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut open: Option<(usize, String)> = None;
        for line in md.split_inclusive('\n') {
            let ticks = line.len() - line.trim_start_matches('`').len();
            match &mut open {
                None if ticks >= 3 => open = Some((ticks, String::new())),
                None => {}
                Some((n, _)) if ticks >= *n && line.trim_end().len() == ticks => {
                    if let Some((_, body)) = open.take() {
                        blocks.push(body);
                    }
                }
                Some((_, body)) => body.push_str(line),
            }
        }
        assert!(open.is_none(), "a fenced block is never closed");
        blocks
    }

    #[test]
    fn passing_report() {
        insta::assert_snapshot!("passing", render(&fixtures::passing()));
    }

    #[test]
    fn failing_report() {
        insta::assert_snapshot!("failing", render(&fixtures::failing()));
    }

    #[test]
    fn failing_report_names_every_reason_before_the_procedure() {
        let summary = fixtures::failing();
        let md = render(&summary);
        assert!(md.starts_with("# rolling-upgrade: ❌ FAIL\n"), "{md}");
        let why = md
            .find("## Why it failed")
            .expect("a why-it-failed section");
        let procedure = md.find("## Procedure").expect("a procedure section");
        assert!(why < procedure);
        for reason in &summary.reasons {
            let at = md.find(&format!("- {reason}\n")).expect(reason);
            assert!(why < at && at < procedure, "{reason} is not at the top");
        }
    }

    #[test]
    fn passing_report_has_no_failure_section() {
        let md = render(&fixtures::passing());
        assert!(md.starts_with("# rolling-upgrade: ✅ PASS\n"), "{md}");
        assert!(!md.contains("Why it failed"));
        assert!(!md.contains("❌"), "{md}");
    }

    #[test]
    fn verdict_line_counts_each_part() {
        assert!(render(&fixtures::failing()).contains(
            "**1 of 4 steps failed, 1 skipped, 2 of 9 SLOs breached, 3 lost writes, 1 stale read, 1 check failed.**"
        ));
        assert!(render(&fixtures::passing()).contains(
            "**All 4 steps passed, all 9 SLOs met, no lost writes, reads consistent, 1 check passed.**"
        ));
    }

    #[test]
    fn long_output_is_folded_and_short_output_is_not() {
        let mut summary = fixtures::passing();
        let exactly: String = (1..=FOLD_LINES).map(|i| format!("line {i}\n")).collect();
        summary.steps[0].output.stdout = exactly.clone();
        let md = render(&summary);
        assert_eq!(md.matches("<details>").count(), 1, "only step 3 is long");

        let long = fixtures::passing().steps[2].output.stdout.clone();
        let folded = md
            .split("<details><summary>Expected output (exit code 0): 24 lines</summary>")
            .nth(1)
            .expect("step 3's output is folded");
        let body = folded.split("</details>").next().expect("details closes");
        assert_eq!(fenced_blocks(body), vec![long]);

        let before_details = md.split("<details>").next().expect("text");
        assert!(fenced_blocks(before_details).contains(&exactly));
    }

    #[test]
    fn stdout_with_a_fence_does_not_break_the_block() {
        let md = render(&fixtures::passing());
        assert!(fixtures::RELEASE_NOTES.contains("```"));
        let blocks = fenced_blocks(&md);
        let notes = format!("{}\n", fixtures::RELEASE_NOTES);
        assert!(blocks.contains(&notes), "{blocks:#?}");
        // Everything after the notes still parses as the report, not as code.
        assert!(md.contains("\n### ✅ 3. Dump the configuration\n"));
        assert!(!blocks.iter().any(|b| b.contains("## Service levels")));
    }

    #[test]
    fn failed_step_shows_error_and_both_streams() {
        let md = render(&fixtures::failing());
        let step = md
            .split("### ❌ 3. Dump the configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n### ").next())
            .expect("step 3");
        let blocks = fenced_blocks(step);
        assert!(blocks.contains(
            &"exit code 1, expected 0\ncommand: docker exec kv1 kvctl get --prefix /config\n"
                .to_string()
        ));
        assert!(blocks.contains(&"Error: context deadline exceeded\n".to_string()));
        assert!(step.contains("**Output (exit code 1):**"), "{step}");
        assert!(md.contains("### ⏭ 4. Wait for the cluster version"));
        assert!(md.contains("_Not run: an earlier step failed"));
    }

    #[test]
    fn table_cells_keep_their_columns() {
        let md = render(&fixtures::failing());
        let row = md
            .lines()
            .find(|l| l.starts_with("| hash equal on all nodes |"))
            .expect("check row");
        // 3 columns: 4 unescaped pipes.
        assert_eq!(row.replace("\\|", "").matches('|').count(), 4, "{row}");
        assert!(row.contains("<br>kv3 diverged"), "{row}");
    }

    #[test]
    fn backup_and_rollout_timelines_are_shown() {
        let md = render(&fixtures::procedures());
        let backup = md
            .split("## Backup and restore")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a backup section");
        assert!(
            backup.contains("| Backup: 2 Snapshot the keyspace | 10.100 – 10.350 | 0.250 s |"),
            "{backup}"
        );
        assert!(
            backup.contains("**Recovery time (RTO):** 3.700 s (limit 60.000 s)"),
            "{backup}"
        );
        assert!(
            backup.contains("**Recovery point (RPO) seen:** 2.380 s"),
            "{backup}"
        );
        assert!(backup.contains("212 of them are gone"), "{backup}");
        let rollout = md
            .split("## Canary rollout")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a rollout section");
        assert!(
            rollout.contains("**rolled_back**, as expected"),
            "{rollout}"
        );
        assert!(
            rollout.contains(
                "| 1 | 1 % | 2 / 99 | 20.000 – 25.000 | 1.10 % | promoted to stage 2 (5 %) |"
            ),
            "{rollout}"
        );
        assert!(rollout.contains("| 2 | 27.000 | canary error rate | error_rate | 21.00 % | 0.00 % | 1.00 % | 12 | ❌ fail |"), "{rollout}");
        assert!(
            rollout.contains("**Kill switch** (step 7.1) at 27.100 s"),
            "{rollout}"
        );
        // Without them, neither section appears.
        let plain = render(&fixtures::passing());
        assert!(!plain.contains("## Backup and restore") && !plain.contains("## Canary rollout"));
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x"), "`` `x ``");
    }
}
