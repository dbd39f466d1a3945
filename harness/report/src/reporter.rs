//! The one interface every reporter implements, as nextest's reporters or ripgrep's `Sink`:
//! the runtime emits events while the run goes and, once the run is judged, hands over the
//! summary and the artifacts. A reporter only listens; it never reaches back into the runner.

use std::fs;
use std::path::Path;

use firedrill_types::events::RunEvent;
use firedrill_types::history::Op;
use firedrill_types::monitoring::PanelSeries;
use firedrill_types::summary::Summary;

use crate::page::{self, Page};
use crate::{html, incident, junit, markdown, ReportError};
use crate::{HTML_FILE, INCIDENT_FILE, JUNIT_FILE, MARKDOWN_FILE, SUMMARY_FILE};

/// What a run leaves behind besides its summary: where its files go and its operations.
#[derive(Debug, Clone, Copy)]
pub struct Artifacts<'a> {
    /// The run's output directory (it exists).
    pub dir: &'a Path,
    /// The operation history, drawn in report.html's charts.
    pub ops: &'a [Op],
    /// The dashboards' series on the run clock (`metrics/*.json`), drawn in report.html.
    pub panels: &'a [PanelSeries],
}

pub trait Reporter {
    /// A run event, as it happens; the artifact writers need none.
    fn on_event(&mut self, _event: &RunEvent) {}

    /// The run is over and judged: write the report, print the verdict.
    fn finish(&mut self, summary: &Summary, artifacts: &Artifacts<'_>) -> Result<(), ReportError>;
}

/// A file's text; `None`: the run has nothing for that file, which is then not written.
type Render = Box<dyn Fn(&Summary, &Artifacts<'_>) -> Result<Option<String>, ReportError> + Send>;

/// One file of the output directory, rendered from the summary (and the history).
struct ArtifactWriter {
    file: &'static str,
    render: Render,
}

impl Reporter for ArtifactWriter {
    fn finish(&mut self, summary: &Summary, artifacts: &Artifacts<'_>) -> Result<(), ReportError> {
        let Some(text) = (self.render)(summary, artifacts)? else {
            return Ok(());
        };
        let path = artifacts.dir.join(self.file);
        fs::write(&path, text).map_err(|source| ReportError::Write { path, source })
    }
}

/// The writers of summary.json, report.md, junit.xml, report.html and incident.md, in that
/// order; incident.md only when a rollback made an incident. For a Markdown runbook, `page`
/// makes report.md the runbook page itself ([`page::render`]).
pub fn artifact_writers(page: Option<Page>) -> Vec<Box<dyn Reporter + Send>> {
    let markdown: Render = match page {
        Some(page) => Box::new(move |s, _| Ok(Some(page::render(s, &page)))),
        None => Box::new(|s, _| Ok(Some(markdown::render(s)))),
    };
    let writers: [(&'static str, Render); 5] = [
        (SUMMARY_FILE, Box::new(|s, _| summary_json(s).map(Some))),
        (MARKDOWN_FILE, markdown),
        (JUNIT_FILE, Box::new(|s, _| junit::render(s).map(Some))),
        (
            HTML_FILE,
            Box::new(|s, a| Ok(Some(html::render(s, a.ops, a.panels)))),
        ),
        (INCIDENT_FILE, Box::new(|s, _| Ok(incident::render(s)))),
    ];
    writers
        .into_iter()
        .map(|(file, render)| Box::new(ArtifactWriter { file, render }) as Box<dyn Reporter + Send>)
        .collect()
}

/// summary.json: pretty, with a final newline.
fn summary_json(summary: &Summary) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(summary)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use firedrill_types::summary::RolloutOutcome;

    fn write_all(summary: &Summary, artifacts: &Artifacts<'_>) -> Result<(), ReportError> {
        artifact_writers(None)
            .iter_mut()
            .try_for_each(|w| w.finish(summary, artifacts))
    }

    #[test]
    fn the_incident_note_is_written_only_when_a_rollback_made_one() {
        let write = |summary: &Summary| {
            let dir = tempfile::tempdir().expect("tempdir");
            let artifacts = Artifacts {
                dir: dir.path(),
                ops: &[],
                panels: &[],
            };
            write_all(summary, &artifacts).expect("the writers");
            fs::read_to_string(dir.path().join(INCIDENT_FILE)).ok()
        };
        let rolled_back = fixtures::levers();
        let note = write(&rolled_back);
        assert!(note.is_some());
        assert_eq!(note, incident::render(&rolled_back));

        let mut promoted = fixtures::levers();
        let r = promoted.rollout.as_mut().expect("a rollout");
        r.outcome = Some(RolloutOutcome::Promoted);
        r.expected = RolloutOutcome::Promoted;
        r.failure = None;
        r.trigger = None;
        r.levers.clear();
        r.expected_lever = None;
        r.incident = None;
        assert_eq!(
            write(&promoted),
            None,
            "no incident.md for a promoted rollout"
        );
        assert_eq!(write(&fixtures::passing()), None, "nor without a rollout");
    }

    #[test]
    fn the_writers_write_the_four_files_and_the_summary_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = fixtures::failing();
        let ops = fixtures::history();
        let artifacts = Artifacts {
            dir: dir.path(),
            ops: &ops,
            panels: &[],
        };
        write_all(&summary, &artifacts).expect("the writers");

        let json = fs::read_to_string(dir.path().join(SUMMARY_FILE)).expect("summary.json");
        let back: Summary = serde_json::from_str(&json).expect("summary.json parses as Summary");
        // Summary has no PartialEq: compare through the JSON value instead.
        assert_eq!(
            serde_json::to_value(&back).expect("encode"),
            serde_json::to_value(&summary).expect("encode"),
        );
        assert!(
            json.contains("\n  \"scenario\": \"rolling-upgrade\""),
            "pretty JSON"
        );

        let md = fs::read_to_string(dir.path().join(MARKDOWN_FILE)).expect("report.md");
        assert_eq!(md, markdown::render(&summary));
        let xml = fs::read_to_string(dir.path().join(JUNIT_FILE)).expect("junit.xml");
        assert_eq!(xml, junit::render(&summary).expect("junit"));
        let page = fs::read_to_string(dir.path().join(HTML_FILE)).expect("report.html");
        assert_eq!(page, html::render(&summary, &ops, &[]));
    }

    #[test]
    fn a_writer_names_the_path_it_could_not_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("no-such-dir");
        let artifacts = Artifacts {
            dir: &missing,
            ops: &[],
            panels: &[],
        };
        let err = write_all(&fixtures::passing(), &artifacts).expect_err("must fail");
        assert!(matches!(err, ReportError::Write { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("no-such-dir/summary.json"), "{message}");
        assert!(message.contains("writable"), "{message}");
    }
}
