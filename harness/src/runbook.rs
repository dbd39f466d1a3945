//! What only a Markdown runbook has at run time: the `--rollback-at` step must exist, and
//! `--bless` writes the run's real output back into the page.

use std::path::Path;

use firedrill_spec::plan::Plan;
use firedrill_spec::runbook;
use firedrill_spec::yaml::Diagnostic;
use firedrill_types::summary::{StepStatus, Summary};

/// Why `--rollback-at N` cannot be drilled on this plan, if it cannot.
pub fn rollback_problem(plan: &Plan, n: &str) -> Option<Diagnostic> {
    let Some(page) = &plan.page else {
        return Some(Diagnostic::whole_file(
            &plan.file,
            "--rollback-at drills a runbook's Rollback section; this is not a Markdown runbook",
        ));
    };
    if page.rollback.is_empty() {
        return Some(Diagnostic::whole_file(
            &plan.file,
            "--rollback-at: the runbook has no runnable block under a `Rollback` heading",
        ));
    }
    if rollback_after(plan, n).is_none() {
        // A loop's unrolled steps are named by the loop's own number.
        let mut ids: Vec<&str> = Vec::new();
        for s in &plan.steps {
            let top = s.id.split('.').next().unwrap_or(&s.id);
            if !ids.contains(&top) {
                ids.push(top);
            }
        }
        return Some(Diagnostic::whole_file(
            &plan.file,
            format!(
                "--rollback-at {n}: no step {n} in the procedure (its steps: {})",
                ids.join(", ")
            ),
        ));
    }
    None
}

/// The id of the step after which `--rollback-at n` stops the procedure: step `n` itself,
/// or the last step unrolled from it (`5` names a loop whose steps are `5.1.1`…`5.3.4`).
pub fn rollback_after<'p>(plan: &'p Plan, n: &str) -> Option<&'p str> {
    let nested = format!("{n}.");
    plan.steps
        .iter()
        .filter(|s| s.id == n || s.id.starts_with(&nested))
        .map(|s| s.id.as_str())
        .next_back()
}

/// Rewrites the runbook's output blocks with what the steps that ran printed, and its results
/// region with this run's; says whether the page changed.
pub fn bless(plan: &Plan, summary: &Summary) -> std::io::Result<bool> {
    let Some(page) = &plan.page else {
        return Ok(false);
    };
    let source = std::fs::read_to_string(&plan.file)?;
    let outputs: Vec<_> = plan
        .steps
        .iter()
        .chain(&page.rollback)
        .filter_map(|step| {
            let expected = step.source.as_ref()?.output.as_ref()?;
            let record = summary.steps.iter().find(|r| r.id == step.id)?;
            // A step that never ran printed nothing worth writing down.
            (record.status != StepStatus::Skipped)
                .then_some((expected, record.output.stdout.as_str()))
        })
        .collect();
    let results = firedrill_report::markdown::results(summary);
    let blessed = runbook::bless(&source, &outputs, Some(&results));
    if blessed == source {
        return Ok(false);
    }
    write_atomically(&plan.file, &blessed)?;
    Ok(true)
}

/// The runbook page for report.md: its text, where each runnable block ends (after its
/// output block, when it has one) and the blocks that never run. `None` for a YAML scenario,
/// or when the page cannot be read again.
pub fn report_page(plan: &Plan) -> Option<firedrill_report::page::Page> {
    let page = plan.page.as_ref()?;
    let text = std::fs::read_to_string(&plan.file).ok()?;
    let mut steps: Vec<firedrill_report::page::PageStep> = Vec::new();
    for step in plan.steps.iter().chain(&page.rollback) {
        let Some(source) = &step.source else { continue };
        // Steps unrolled from one block share it: the block's outcome is under its first id.
        let id = step.id.split('.').next().unwrap_or(&step.id).to_string();
        if steps.iter().any(|s| s.id == id) {
            continue;
        }
        let after = match &source.output {
            // The output block's contents end where its closing fence's line starts.
            Some(o) => next_line(&text, line_start_at_or_after(&text, o.range.end)),
            None => line_start_at_or_after(&text, source.block.end),
        };
        steps.push(firedrill_report::page::PageStep {
            id,
            line: source.line,
            after,
        });
    }
    let uncovered = page
        .documentation
        .iter()
        .map(|d| firedrill_report::page::Uncovered {
            line: d.line,
            lang: d.lang.clone(),
            heading: d.heading.clone(),
        })
        .collect();
    Some(firedrill_report::page::Page {
        text,
        steps,
        uncovered,
    })
}

/// `pos` if a line starts there, else the start of the next line.
fn line_start_at_or_after(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    if pos == 0 || text.as_bytes()[pos - 1] == b'\n' {
        pos
    } else {
        next_line(text, pos)
    }
}

/// The start of the line after the one `pos` is on.
fn next_line(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("md.firedrill-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade() -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/rolling-upgrade.md");
        Plan::load(&path).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    #[test]
    fn rollback_at_a_loop_stops_after_its_last_step() {
        let plan = upgrade();
        assert_eq!(rollback_after(&plan, "4"), Some("4"));
        assert_eq!(rollback_after(&plan, "5"), Some("5.3.4"));
        assert_eq!(rollback_after(&plan, "5.2.1"), Some("5.2.1"));
        assert_eq!(rollback_after(&plan, "7"), Some("7"));
        assert_eq!(rollback_after(&plan, "8"), None);
        assert!(rollback_problem(&plan, "5").is_none());
        let why = rollback_problem(&plan, "99").unwrap().to_string();
        assert!(why.contains("its steps: 1, 2, 3, 4, 5, 6, 7"), "{why}");
    }
}
