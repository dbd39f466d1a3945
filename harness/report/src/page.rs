//! report.md of a Markdown runbook: the runbook page itself, section by section, with the
//! outcome of each runnable block right below it (status, duration, attempts, the real
//! output, folded when long, and the diff or error of a failure), the page's results region
//! filled with this run's results, and the judgement's details after the page.
//!
//! The page is rendered as written: its headings, prose and blocks are copied byte for
//! byte; only its front matter is left out (the header says what it configured) and text is
//! inserted at line boundaries after each runnable block.

use firedrill_types::summary::{StepRecord, StepStatus, Summary, Verdict};

use crate::markdown::{cell, code, details, fenced, output_block};
use crate::view;
use crate::{plural, run_clock, seconds_from_ms, tally, wall_clock};

/// A runbook page and where its runnable blocks end, as the runtime found them in the plan.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The `.md` file as it was read for the run.
    pub text: String,
    /// One per runnable block, in page order.
    pub steps: Vec<PageStep>,
    /// The blocks that never run: what the drill does not cover.
    pub uncovered: Vec<Uncovered>,
}

/// One runnable block of the page.
#[derive(Debug, Clone)]
pub struct PageStep {
    /// The step's id in the summary: `3`, or `R1` for a rollback step. The steps a loop or
    /// a rollout ran inside it are `3.1`, `3.1.2`…
    pub id: String,
    /// 1-based line of the block's opening fence.
    pub line: u64,
    /// Byte offset in [`Page::text`] after the block (and after its output block, when it
    /// has one): the start of a line, where the step's outcome goes.
    pub after: usize,
}

/// A block of the page that never runs.
#[derive(Debug, Clone)]
pub struct Uncovered {
    pub line: u64,
    pub lang: String,
    pub heading: Option<String>,
}

const RESULTS_OPEN: &str = "<!-- firedrill:results -->";
const RESULTS_CLOSE: &str = "<!-- /firedrill:results -->";

/// The runbook's report: a header with the verdict, the page with each step's outcome, then
/// the details of the judgement.
pub fn render(summary: &Summary, page: &Page) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    body(&mut out, summary, page);
    out.push_str("\n***\n\n# Drill details\n\n");
    details(&mut out, summary);
    uncovered(&mut out, &page.uncovered);
    out.push_str(&format!(
        "***\n\n<sub>Written by firedrill from summary.json ({}) and {}.</sub>\n",
        summary.schema, summary.file
    ));
    out
}

fn header(out: &mut String, s: &Summary) {
    let verdict = match s.verdict {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
    };
    out.push_str(&format!(
        "> **Drill of {}: {verdict}** — {}\n>\n",
        code(&s.file),
        tally(s)
    ));
    for reason in &s.reasons {
        out.push_str(&format!("> - {}\n", reason.trim().replace('\n', "\n>   ")));
    }
    if !s.reasons.is_empty() {
        out.push_str(">\n");
    }
    out.push_str(&format!(
        "> Scenario {}, seed {}, run {}, started {}, {}. Reproduce: `firedrill run {} --seed {}`.\n\n",
        code(&s.scenario),
        s.seed,
        code(&s.run_id),
        wall_clock(&s.started_at),
        seconds_from_ms(s.duration_ms),
        s.file,
        s.seed
    ));
}

/// The page without its front matter, each step's outcome inserted after its block, and
/// the results region holding this run's results.
fn body(out: &mut String, summary: &Summary, page: &Page) {
    let text = page.text.as_str();
    let start = front_matter_end(text);
    let region = results_region(text);
    let mut steps: Vec<&PageStep> = page
        .steps
        .iter()
        .filter(|s| s.after >= start && s.after <= text.len() && text.is_char_boundary(s.after))
        .collect();
    steps.sort_by_key(|s| s.after);
    let mut pos = start;
    let mut region_done = false;
    for step in steps {
        if let Some((open, close)) = region {
            // Results come after the step: copy up to the region, fill it, go on.
            if !region_done && open < step.after {
                copy_with_results(out, text, pos, open, close, summary);
                pos = close;
                region_done = true;
            }
            if step.after > open && step.after < close {
                continue;
            }
        }
        out.push_str(&text[pos.max(start).min(step.after)..step.after]);
        pos = pos.max(step.after);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        outcome(out, summary, step);
    }
    match region {
        Some((open, close)) if !region_done => {
            copy_with_results(out, text, pos, open, close, summary);
            out.push_str(&text[close..]);
        }
        _ => out.push_str(&text[pos..]),
    }
    if region.is_none() {
        out.push_str("\n## Last drill\n\n");
        out.push_str(&crate::markdown::results(summary));
    }
}

/// Copies `text[pos..open]`, then the region's comments around this run's results.
fn copy_with_results(
    out: &mut String,
    text: &str,
    pos: usize,
    open: usize,
    close: usize,
    summary: &Summary,
) {
    out.push_str(&text[pos.min(open)..open]);
    out.push_str(RESULTS_OPEN);
    out.push_str("\n\n");
    out.push_str(&crate::markdown::results(summary));
    out.push('\n');
    out.push_str(&text[close - RESULTS_CLOSE.len()..close]);
}

/// Where the page's text starts after its front matter (`---` … `---` or `...`).
fn front_matter_end(text: &str) -> usize {
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if first.trim_end() == "---" => {}
        _ => return 0,
    }
    let mut pos = text.find('\n').map_or(text.len(), |i| i + 1);
    for line in lines {
        pos += line.len();
        let l = line.trim_end();
        if l == "---" || l == "..." {
            return pos;
        }
    }
    0
}

/// The results region: from the opening comment to the end of the closing one.
fn results_region(text: &str) -> Option<(usize, usize)> {
    let open = text.find(RESULTS_OPEN)?;
    let close = open + text[open..].find(RESULTS_CLOSE)? + RESULTS_CLOSE.len();
    Some((open, close))
}

/// The records of the step `id` and of the steps it ran inside it.
fn records<'a>(summary: &'a Summary, id: &str) -> Vec<&'a StepRecord> {
    let nested = format!("{id}.");
    summary
        .steps
        .iter()
        .filter(|r| r.id == id || r.id.starts_with(&nested))
        .collect()
}

pub(crate) fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "✅",
        StepStatus::Failed => "❌",
        StepStatus::Skipped => "⏭",
    }
}

pub(crate) fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

/// What happened to one runnable block, in a quote right below it.
fn outcome(out: &mut String, summary: &Summary, step: &PageStep) {
    let label = if step.id.starts_with('R') {
        format!("Rollback step {}", step.id)
    } else {
        format!("Step {}", step.id)
    };
    let all = records(summary, &step.id);
    let own = all.iter().find(|r| r.id == step.id).copied();
    let inside: Vec<&StepRecord> = all.iter().filter(|r| r.id != step.id).copied().collect();
    out.push('\n');
    if all.is_empty() {
        let why = if step.id.starts_with('R') {
            "the Rollback section runs only when a procedure step fails, or with `--rollback-at N`"
        } else {
            "the run did not reach it"
        };
        out.push_str(&format!(
            "> ⏭ **{label} not run** (line {}): {why}.\n",
            step.line
        ));
        return;
    }
    // A loop has no record of its own: its status is its steps'.
    let status = own.map_or_else(
        || {
            if inside.iter().any(|r| r.status == StepStatus::Failed) {
                StepStatus::Failed
            } else if inside.iter().all(|r| r.status == StepStatus::Skipped) {
                StepStatus::Skipped
            } else {
                StepStatus::Passed
            }
        },
        |r| r.status,
    );
    let took: u64 = own.map_or_else(
        || inside.iter().map(|r| r.duration_ms).sum(),
        |r| r.duration_ms,
    );
    let mut line = format!("> {} **{label} {}**", mark(status), status_word(status));
    if status != StepStatus::Skipped {
        line.push_str(&format!(" in {}", seconds_from_ms(took)));
        if let Some(r) = own {
            line.push_str(&format!(
                ", {} (at {} s on the run clock)",
                plural(r.attempts as usize, "attempt", "attempts"),
                run_clock(r.started)
            ));
            if !r.transcript.is_empty() {
                line.push_str(&format!(" · transcript {}", code(&r.transcript)));
            }
        } else {
            line.push_str(&format!(
                ", {} inside",
                plural(inside.len(), "step", "steps")
            ));
        }
    }
    out.push_str(&line);
    out.push_str("\n\n");
    if let Some(r) = own {
        record_details(out, r);
    }
    if !inside.is_empty() {
        out.push_str("| Step | Status | Took | Attempts |\n|---|---|--:|--:|\n");
        for r in &inside {
            out.push_str(&format!(
                "| {} {} | {} {} | {} | {} |\n",
                r.id,
                cell(&r.name),
                mark(r.status),
                status_word(r.status),
                seconds_from_ms(r.duration_ms),
                r.attempts
            ));
        }
        out.push('\n');
        for r in inside.iter().filter(|r| r.status == StepStatus::Failed) {
            out.push_str(&format!("**{} {}:**\n\n", r.id, r.name.trim()));
            record_details(out, r);
        }
    }
    // The page's own blank line follows.
    while out.ends_with("\n\n") {
        out.pop();
    }
}

/// A record's error (a mismatch shows its diff) and real output.
fn record_details(out: &mut String, r: &StepRecord) {
    match r.status {
        StepStatus::Skipped => {
            if let Some(why) = &r.error {
                out.push_str(&format!(
                    "Not run: {}.\n\n",
                    why.trim().trim_end_matches('.')
                ));
            }
            return;
        }
        StepStatus::Failed => {
            let error = r.error.as_deref().unwrap_or("the run recorded no error");
            if error.contains("\n--- expected") || error.contains("\n@@ ") {
                out.push_str("**Failed:**\n\n");
                fenced(out, "diff", error);
            } else if error.contains('\n') {
                out.push_str("**Failed:**\n\n");
                fenced(out, "text", error);
            } else {
                out.push_str(&format!("**Failed:** {}\n\n", error.trim()));
            }
        }
        StepStatus::Passed => {}
    }
    let o = &r.output;
    let status: Vec<String> = o
        .exit_code
        .map(|c| format!("exit code {c}"))
        .into_iter()
        .chain(o.http_status.map(|s| format!("HTTP {s}")))
        .collect();
    let label = if status.is_empty() {
        "Real output".to_string()
    } else {
        format!("Real output ({})", status.join(", "))
    };
    if let Some(stdout) = view::stream(&label, &o.stdout) {
        output_block(out, &stdout);
    } else if !status.is_empty() && r.status == StepStatus::Failed {
        out.push_str(&format!("**{label}:** nothing on stdout.\n\n"));
    }
    if let Some(stderr) = view::stream("stderr", &o.stderr) {
        output_block(out, &stderr);
    }
}

fn uncovered(out: &mut String, blocks: &[Uncovered]) {
    out.push_str("## Not covered by the drill\n\n");
    if blocks.is_empty() {
        out.push_str("Every block of the page ran.\n\n");
        return;
    }
    out.push_str("These blocks of the page are documentation: the drill never runs them.\n\n");
    out.push_str("| Line | Language | Under |\n|--:|---|---|\n");
    for b in blocks {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            b.line,
            if b.lang.is_empty() {
                "—".to_string()
            } else {
                cell(&b.lang)
            },
            b.heading.as_deref().map_or_else(|| "—".to_string(), cell)
        ));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{failing, levers, passing};

    const PAGE: &str = "---\nname: x\n---\n\n# Title\n\nIntro.\n\n## 1. First\n\n```sh {node=a}\necho hi\n```\n\n```text {output}\nhi\n```\n\n## Rollback\n\n```sh {node=a}\ntrue\n```\n\n## Last drill\n\n<!-- firedrill:results -->\nold\n<!-- /firedrill:results -->\n";

    fn page() -> Page {
        let output = "```text {output}\nhi\n```\n";
        let after_output = PAGE.find(output).unwrap() + output.len();
        let after_rollback = PAGE.find("true\n```\n").unwrap() + "true\n```\n".len();
        Page {
            text: PAGE.to_string(),
            steps: vec![
                PageStep {
                    id: "1".into(),
                    line: 11,
                    after: after_output,
                },
                PageStep {
                    id: "R1".into(),
                    line: 21,
                    after: after_rollback,
                },
            ],
            uncovered: vec![Uncovered {
                line: 3,
                lang: "sh".into(),
                heading: Some("Prerequisites".into()),
            }],
        }
    }

    #[test]
    fn the_page_is_copied_with_each_outcome_below_its_block() {
        let mut s = passing();
        s.steps.truncate(1);
        s.steps[0].id = "1".into();
        let md = render(&s, &page());
        assert!(
            !md.contains("name: x"),
            "the front matter is left out:\n{md}"
        );
        let block = md
            .find("```text {output}\nhi\n```\n")
            .expect("the page's own blocks");
        let verdict = md.find("**Step 1 passed**").expect("the step's outcome");
        assert!(block < verdict, "{md}");
        assert!(md.contains("Rollback step R1 not run"), "{md}");
        assert!(
            !md.contains("\nold\n"),
            "the results region holds this run's results:\n{md}"
        );
        assert!(md.contains("**Last drill: PASS**"), "{md}");
        assert!(md.contains("# Drill details"), "{md}");
        assert!(md.contains("| 3 | sh | Prerequisites |"), "{md}");
    }

    #[test]
    fn a_failed_step_shows_its_error() {
        let s = failing();
        let mut p = page();
        p.steps[0].id = s
            .steps
            .iter()
            .find(|r| r.status == StepStatus::Failed)
            .unwrap()
            .id
            .clone();
        let md = render(&s, &p);
        assert!(md.contains("❌ FAIL"), "{md}");
        assert!(md.contains("failed**"), "{md}");
        assert!(md.contains("**Failed:**"), "{md}");
    }

    #[test]
    fn the_drill_details_show_the_levers_and_link_the_incident_note() {
        let md = render(&levers(), &page());
        let details = md.split("# Drill details").nth(1).expect("the details");
        assert!(
            details.contains("Incident note: [incident.md](incident.md)\n"),
            "{details}"
        );
        assert!(
            details.contains("### Rollback levers\n\n❌ Lever 1 `Flag off` was expected"),
            "{details}"
        );
    }
}
