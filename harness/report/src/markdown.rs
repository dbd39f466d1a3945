//! report.md: the run written up like the runbook it drilled, for pasting into that runbook.
//!
//! Layout: verdict and the reasons for a failure first, then the procedure step by step with
//! each step's real output as its "expected output", then service levels, data, reads,
//! checks, load and the versions seen.

use firedrill_types::summary::{StepStatus, Summary, Verdict};

use crate::view::{self, Align, Cell, Table};
use crate::{html_escape, seconds_from_ms};

pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, &view::header(summary));
    procedure(&mut out, &view::steps(&summary.steps));
    service_levels(&mut out, &view::service_levels(&summary.phases));
    details(&mut out, summary);
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
        view::verdict_word(summary.verdict),
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
    service_levels(&mut out, &view::service_levels(&summary.phases));
    if let Some(alerts) = view::alerts(summary.monitoring.as_ref()) {
        table_section(&mut out, &alerts);
    }
    out.push_str(&format!(
        "Load: {} operations, {} acknowledged writes, {} lost.\n",
        summary.load.ops, summary.data.acked, summary.data.lost
    ));
    out
}

fn header(out: &mut String, h: &view::Header) {
    let mark = match h.verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
    };
    out.push_str(&format!(
        "# {}: {mark} {}\n\n",
        h.scenario,
        view::verdict_word(h.verdict)
    ));
    out.push_str(&format!("**{}**\n\n", h.tally));
    if let Some(reasons) = &h.failure {
        out.push_str("## Why it failed\n\n");
        for reason in reasons {
            out.push_str(&format!("- {reason}\n"));
        }
        out.push('\n');
    }
    if let Some(d) = &h.description {
        out.push_str(&format!("{d}\n\n"));
    }
    if let Some(runbook) = &h.runbook {
        out.push_str(&format!("- **Runbook:** <{runbook}>\n"));
    }
    for (term, value, is_code) in &h.facts {
        let value = if *is_code { code(value) } else { value.clone() };
        out.push_str(&format!("- **{term}:** {value}\n"));
    }
    out.push('\n');
}

fn procedure(out: &mut String, steps: &[view::Step]) {
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
        if let Some(prose) = &step.prose {
            out.push_str(&format!("{prose}\n\n"));
        }
        fenced(out, "sh", &step.action);
        let Some(ran) = &step.ran else {
            out.push_str("_Not run: an earlier step failed or the run was interrupted._\n\n");
            continue;
        };
        match &ran.error {
            Some(view::Error::Block(error)) => {
                out.push_str("**Failed:**\n\n");
                fenced(out, "text", error);
            }
            Some(view::Error::Line(error)) => out.push_str(&format!("**Failed:** {error}\n\n")),
            None => {}
        }
        step_output(out, &ran.output);
        out.push_str(&format!(
            "{}. Transcript: {}.\n\n",
            ran.timing,
            code(&ran.transcript),
        ));
    }
}

fn step_output(out: &mut String, output: &view::Output) {
    match &output.stdout {
        Some(stdout) => output_block(out, stdout),
        None => out.push_str(&format!("**{}:** nothing on stdout.\n\n", output.label)),
    }
    if let Some(stderr) = &output.stderr {
        output_block(out, stderr);
    }
}

/// The judgement's sections after the steps and service levels; a runbook's report ends
/// with them too.
pub(crate) fn details(out: &mut String, summary: &Summary) {
    history_check(out, "Data", &view::data(&summary.data));
    history_check(out, "Reads", &view::reads(&summary.reads));
    if let Some(b) = &summary.backup {
        backup(out, &view::backup(b, &summary.data));
    }
    if let Some(r) = &summary.rollout {
        rollout(out, &view::rollout(r));
    }
    let sections = [
        view::effects(&summary.effects, &summary.steps),
        view::recoveries(&summary.recoveries),
        view::alerts(summary.monitoring.as_ref()),
        Some(view::checks(&summary.checks)),
        view::panels(summary.monitoring.as_ref()),
        Some(view::load(&summary.load)),
        Some(view::versions(&summary.nodes)),
    ];
    for section in sections.iter().flatten() {
        table_section(out, section);
    }
}

/// One stream of a step's output; long ones are folded in `<details>`.
pub(crate) fn output_block(out: &mut String, s: &view::Stream) {
    if s.folded {
        out.push_str(&format!(
            "<details><summary>{}: {} lines</summary>\n\n",
            html_escape(&s.label),
            s.lines
        ));
        fenced(out, "text", &s.text);
        out.push_str("</details>\n\n");
    } else {
        out.push_str(&format!("**{}:**\n\n", s.label));
        fenced(out, "text", &s.text);
    }
}

fn service_levels(out: &mut String, levels: &view::ServiceLevels) {
    out.push_str("## Service levels\n\n");
    if levels.phases.rows.is_empty() {
        out.push_str("_No phases measured._\n\n");
        return;
    }
    table(out, &levels.phases);
    if levels.slos.rows.is_empty() {
        out.push_str("_No SLOs set._\n\n");
        return;
    }
    table(out, &levels.slos);
}

fn history_check(out: &mut String, title: &str, c: &view::HistoryCheck) {
    out.push_str(&format!("## {title}\n\n"));
    out.push_str(&format!("{} {}\n\n", pass_mark(c.pass), c.sentence));
    table(out, &c.counts);
    out.push_str(&format!("{}\n\n", c.note));
    for e in &c.examples {
        out.push_str(&format!("{}:\n\n", e.heading));
        fenced(out, "text", &e.text);
    }
}

fn backup(out: &mut String, b: &view::Backup) {
    out.push_str("## Backup and restore\n\n");
    table(out, &b.timeline);
    out.push_str(&format!(
        "{} **Recovery time (RTO):** {}{}.\n\n",
        pass_mark(b.pass),
        b.rto,
        b.rto_limit,
    ));
    out.push_str(&format!(
        "**Recovery point (RPO) seen:** {}{}: from the backup's start to the last write acknowledged before the disaster{}. \
         {} acknowledged writes came after the backup ended; {} of them are gone (after the recovery point, allowed), \
         and {} writes that overlapped the backup are gone (indeterminate, allowed).\n\n",
        b.rpo,
        b.rpo_limit,
        b.last_ack,
        b.writes_after_backup,
        b.after_recovery_point,
        b.indeterminate,
    ));
}

fn rollout(out: &mut String, r: &view::Rollout) {
    out.push_str(&format!("## {}\n\n", r.title));
    let subject = match &r.traffic {
        Some(t) => format!(
            "Canary {} against {}",
            code(&t.canary),
            t.baseline
                .iter()
                .map(|b| code(b))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => format!("Stages of step {}", code(&r.step)),
    };
    out.push_str(&format!(
        "{} {subject}: **{}**, {}.\n\n",
        pass_mark(r.expected.is_none()),
        r.outcome,
        match r.expected {
            None => "as expected".to_string(),
            Some(expected) => format!("expected {expected}"),
        },
    ));
    if let Some(f) = &r.failure {
        out.push_str(&format!("**Rolled back:** {}\n\n", f.trim()));
    }
    if let Some(file) = r.incident {
        out.push_str(&format!("Incident note: [{file}]({file})\n\n"));
    }
    table(out, &r.stages);
    if !r.evaluations.rows.is_empty() {
        out.push_str(&format!(
            "<details><summary>Gate evaluations: {}</summary>\n\n",
            r.evaluations.rows.len()
        ));
        table(out, &r.evaluations);
        out.push_str("</details>\n\n");
    }
    if let Some(k) = &r.kill_switch {
        out.push_str(&format!(
            "{} **Kill switch** {}\n\n",
            pass_mark(k.pass),
            k.sentence
        ));
    }
    if let Some(l) = &r.levers {
        out.push_str("### Rollback levers\n\n");
        if let Some(u) = &l.unexpected {
            out.push_str(&format!("❌ {}\n\n", u.sentence(code)));
        }
        table(out, &l.table);
        out.push_str(&format!("{}\n\n", l.note));
    }
}

fn table_section(out: &mut String, s: &view::TableSection) {
    out.push_str(&format!("## {}\n\n", s.title));
    if s.table.rows.is_empty() {
        out.push_str(&format!("_{}_\n\n", s.empty));
    } else {
        table(out, &s.table);
    }
    if let Some(note) = s.note {
        out.push_str(&format!("{note}\n\n"));
    }
}

/// A table and the blank line after it; every cell is escaped for its column.
pub(crate) fn table(out: &mut String, t: &Table) {
    out.push('|');
    for (heading, _) in t.columns {
        out.push_str(&format!(" {heading} |"));
    }
    out.push_str("\n|");
    for (_, align) in t.columns {
        out.push_str(match align {
            Align::Right => "--:|",
            Align::Left | Align::Wrap => "---|",
        });
    }
    out.push('\n');
    for row in &t.rows {
        out.push('|');
        for c in row {
            let text = match c {
                Cell::Text(t) => cell(t),
                Cell::Code(t) => cell(&code(t)),
                Cell::Mark { pass, word } => format!("{} {word}", mark(*pass)),
            };
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// A judgement's mark: `None` when there was nothing to judge.
pub(crate) fn mark(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "✅",
        Some(false) => "❌",
        None => "⚪",
    }
}

fn pass_mark(pass: bool) -> &'static str {
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
    use crate::{fixtures, FOLD_LINES};

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
    fn staged_rollout_and_time_to_effect() {
        let md = render(&fixtures::staged());
        let from = md
            .find("## Staged rollout")
            .expect("a staged rollout section");
        let to = md.find("## Checks").expect("a checks section");
        insta::assert_snapshot!("staged", &md[from..to]);
        assert!(!md.contains("## Canary rollout"));
        // Without a `log` step, no time to effect.
        assert!(!render(&fixtures::procedures()).contains("## Time to effect"));
    }

    #[test]
    fn rollback_levers_and_the_incident_note() {
        let md = render(&fixtures::levers());
        let from = md
            .find("## Staged rollout")
            .expect("a staged rollout section");
        let to = md
            .find("## Time to effect")
            .expect("a time to effect section");
        insta::assert_snapshot!("levers", &md[from..to]);
        // Without levers or an incident, neither appears.
        let staged = render(&fixtures::staged());
        assert!(!staged.contains("Rollback levers") && !staged.contains("incident.md"));
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x"), "`` `x ``");
    }
}
