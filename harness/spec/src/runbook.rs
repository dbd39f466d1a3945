//! A Markdown runbook as a scenario: the page's front matter holds what is not a step, its
//! marked fenced blocks are the steps, and the output blocks beside them are what the
//! commands must print. `Plan::load` reads a `.md` file through [`read`] into the same
//! [`ScenarioFile`] a YAML scenario gives, so both go through the same checks; what only a
//! runbook has (where each step sits in the page, expected outputs, rollback steps, the
//! blocks that never run) ends up in [`RunbookPlan`] and [`SourceRef`].
//!
//! The format is described in docs/runbook-format.md.

mod attrs;
mod bless;
mod expect_output;
mod parse;
mod read;

use std::ops::Range;
use std::path::Path;

pub use bless::bless;
pub use expect_output::{match_output, MatchOptions, Mismatch};

use crate::plan::PlannedStep;
use crate::scenario::{ScenarioFile, StepSpec};
use crate::yaml::Diagnostic;

/// Rollback steps are numbered R1, R2…, apart from the procedure's 1, 2…
pub const ROLLBACK_PREFIX: &str = "R";

/// Whether `path` is read as a Markdown runbook rather than a YAML scenario.
pub fn is_runbook(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"))
}

/// Where a heading puts the blocks below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Any heading not named below: the steps of the procedure.
    Procedure,
    /// Under `Verification`: ordinary steps, run after the procedure's.
    Verification,
    /// Under `Rollback`: run only when a procedure step fails, or on request.
    Rollback,
    /// Under `When to use`, `Prerequisites`, `Troubleshooting` or `Success metrics`:
    /// nothing there runs.
    Documentation,
}

/// Where a runbook's step comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRef {
    /// 1-based line and column of the step's opening fence in the `.md` file.
    pub line: u64,
    pub column: u64,
    /// The whole fenced block, in bytes of the file.
    pub block: Range<usize>,
    /// The heading the block sits under (as written, without a leading "3.").
    pub heading: Option<String>,
    pub section: Section,
    /// The output block right after the command, if any: part of the step's expectation.
    pub output: Option<ExpectedOutput>,
}

/// An output block: what the command before it must print on stdout (an HTTP step: the
/// body), line by line, with `[..]` and `...` wildcards.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedOutput {
    /// The block's contents as written, without the page's indentation.
    pub text: String,
    /// The runbook, for messages that point into it.
    pub file: std::path::PathBuf,
    /// 1-based line of the output block's opening fence.
    pub line: u64,
    /// The contents in bytes of the file: what [`bless`] rewrites.
    pub range: Range<usize>,
    pub options: MatchOptions,
}

impl ExpectedOutput {
    /// Whether `actual` (the step's stdout) is what the block says; on a mismatch, the diff
    /// for the report.
    pub fn check(&self, actual: &str) -> Result<(), Mismatch> {
        match_output(&self.text, actual, self.options)
    }
}

/// A fenced block that never runs: what the drill does not cover.
#[derive(Debug, Clone, PartialEq)]
pub struct DocBlock {
    /// 1-based line of the opening fence (an indented block: its first line).
    pub line: u64,
    /// The info string's first word (`sh`, `yaml`…), empty when there is none.
    pub lang: String,
    pub text: String,
    pub heading: Option<String>,
    pub section: Section,
}

/// What a plan read from a runbook has beyond a YAML scenario's.
#[derive(Debug, Clone)]
pub struct RunbookPlan {
    /// The steps under `Rollback`, planned like the procedure's, numbered R1, R2…
    pub rollback: Vec<PlannedStep>,
    /// Every block that does not run, in page order.
    pub documentation: Vec<DocBlock>,
}

/// A runbook read from its page, before planning: the part of it `ScenarioFile` has no
/// room for.
#[derive(Debug)]
pub(crate) struct Runbook {
    pub(crate) rollback: Vec<StepSpec>,
    /// One per step of the scenario, in order; then one per rollback step.
    sources: Vec<SourceRef>,
    rollback_sources: Vec<SourceRef>,
    documentation: Vec<DocBlock>,
}

/// Reads a runbook page into a scenario (checked by `Plan::load` like a YAML one) and the
/// rest of the runbook.
pub(crate) fn read(path: &Path) -> Result<(ScenarioFile, Runbook), Vec<Diagnostic>> {
    let text = read::text(path).map_err(|d| vec![d])?;
    read_str(path, &text)
}

/// [`read`] on text already in memory; `path` names it in diagnostics.
pub(crate) fn read_str(
    path: &Path,
    text: &str,
) -> Result<(ScenarioFile, Runbook), Vec<Diagnostic>> {
    read::runbook(path, text)
}

impl Runbook {
    /// Gives each planned step its place in the page, and finishes the runbook's part of
    /// the plan. `steps` and `rollback` are the planned forms of the scenario's steps and
    /// of [`Runbook::rollback`].
    pub(crate) fn into_plan(
        self,
        path: &Path,
        steps: &mut [PlannedStep],
        mut rollback: Vec<PlannedStep>,
        problems: &mut Vec<Diagnostic>,
    ) -> RunbookPlan {
        attach(steps, &self.sources);
        attach(&mut rollback, &self.rollback_sources);
        for step in &rollback {
            if !step.begins.is_empty() || !step.ends.is_empty() {
                let (line, column) = step.source.as_ref().map_or((0, 0), |s| (s.line, s.column));
                problems.push(Diagnostic::at(
                    path,
                    line,
                    column,
                    format!(
                        "step `{}`: `marks` cannot be used in a rollback step: mark the procedure's steps",
                        step.name
                    ),
                ));
            }
        }
        RunbookPlan {
            rollback,
            documentation: self.documentation,
        }
    }
}

/// Steps unrolled from one loop share their block: the id's first number says which.
fn attach(steps: &mut [PlannedStep], sources: &[SourceRef]) {
    for step in steps {
        let top = step
            .id
            .trim_start_matches(ROLLBACK_PREFIX)
            .split('.')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1));
        step.source = top.and_then(|i| sources.get(i)).cloned();
    }
}
