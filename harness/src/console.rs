//! The terminal reporter. On a terminal: a live status line (phase, current step, elapsed,
//! operations per second, errors so far) under the event lines. Elsewhere (CI logs): plain
//! timestamped lines only. Once the run is judged: the verdict and its reasons.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::RunEvent;
use firedrill_report::{view, Artifacts, ReportError, Reporter};
use firedrill_types::summary::{StepStatus, Summary};

/// Prints each event as a line; on a terminal, the live status line under them.
pub struct Console {
    start: Instant,
    status: Status,
    bar: Option<ProgressBar>,
}

impl Console {
    pub fn new() -> Console {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Console {
            start: Instant::now(),
            status: Status::default(),
            bar,
        }
    }

    /// Prints `line` stamped with the time since the run started; later lines are indented.
    fn print(&self, line: &str) {
        let text = stamped(self.start.elapsed().as_secs_f64(), line);
        match &self.bar {
            Some(bar) => {
                bar.println(text.trim_end());
                bar.set_message(self.status.to_string());
            }
            None => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
        }
    }
}

impl Reporter for Console {
    fn on_event(&mut self, event: &RunEvent) {
        self.status.update(event);
        self.print(&render(event));
    }

    fn finish(&mut self, summary: &Summary, artifacts: &Artifacts<'_>) -> Result<(), ReportError> {
        self.print(&verdict(summary, artifacts.dir));
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn stamped(t: f64, line: &str) -> String {
    let mut text = String::new();
    for (i, l) in line.lines().enumerate() {
        if i == 0 {
            text.push_str(&format!("[{t:7.1}s] {l}\n"));
        } else {
            text.push_str(&format!("           {l}\n"));
        }
    }
    text
}

/// What the live line shows.
#[derive(Default)]
struct Status {
    phase: String,
    step: String,
    ops: u64,
    errors: u64,
    ops_per_s: f64,
}

impl Status {
    fn update(&mut self, e: &RunEvent) {
        match e {
            RunEvent::PhaseStarted(p) => {
                self.phase = p.name().to_string();
                self.step.clear();
            }
            RunEvent::StepStarted { id, name } => self.step = format!("step {id}: {name}"),
            RunEvent::StepFinished(_) => self.step.clear(),
            RunEvent::Load {
                ops,
                errors,
                ops_per_s,
            } => {
                (self.ops, self.errors, self.ops_per_s) = (*ops, *errors, *ops_per_s);
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.phase.is_empty() {
            return f.write_str("starting the cluster…");
        }
        write!(f, "phase {}", self.phase)?;
        if !self.step.is_empty() {
            write!(f, " · {}", self.step)?;
        }
        write!(
            f,
            " · {} ops ({:.0}/s) · {} errors",
            self.ops, self.ops_per_s, self.errors
        )
    }
}

fn render(e: &RunEvent) -> String {
    match e {
        RunEvent::Started {
            scenario,
            run_id,
            seed,
            out_dir,
        } => format!(
            "scenario {scenario}: run {run_id}, seed {seed}, artifacts in {}",
            out_dir.display()
        ),
        RunEvent::Note(n) => n.clone(),
        RunEvent::ClusterReady { nodes, took } => {
            format!(
                "cluster ready: {} healthy in {:.1}s",
                nodes.join(", "),
                took.as_secs_f64()
            )
        }
        RunEvent::PhaseStarted(p) => format!("── phase {} ──", p.name()),
        RunEvent::StepStarted { id, name } => format!("step {id}: {name} …"),
        RunEvent::StepFinished(r) => {
            let mark = match r.status {
                StepStatus::Passed => "ok",
                StepStatus::Failed => "FAILED",
                StepStatus::Skipped => "skipped",
            };
            let attempts = if r.attempts > 1 {
                format!(", {} attempts", r.attempts)
            } else {
                String::new()
            };
            let mut line = format!(
                "step {}: {} {mark} ({} ms{attempts})",
                r.id, r.name, r.duration_ms
            );
            if let Some(err) = &r.error {
                line.push_str(&format!("\n    {err}"));
            }
            line
        }
        RunEvent::Load {
            ops,
            errors,
            ops_per_s,
        } => {
            format!("load: {ops} operations, {errors} errors, {ops_per_s:.0} ops/s")
        }
    }
}

/// The run's last lines: the verdict, why it failed, where the artifacts are.
fn verdict(summary: &Summary, out_dir: &Path) -> String {
    let h = view::header(summary);
    let mut s = format!("verdict: {}", view::verdict_word(h.verdict));
    for r in h.failure.iter().flatten() {
        s.push_str(&format!("\n  - {r}"));
    }
    s.push_str(&format!("\nartifacts: {}", out_dir.display()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_types::history::Phase;

    #[test]
    fn the_live_line_follows_phase_step_and_load() {
        let mut s = Status::default();
        assert_eq!(s.to_string(), "starting the cluster…");
        s.update(&RunEvent::PhaseStarted(Phase::Procedure));
        s.update(&RunEvent::StepStarted {
            id: "4.2".into(),
            name: "Stop etcd2".into(),
        });
        s.update(&RunEvent::Load {
            ops: 1200,
            errors: 3,
            ops_per_s: 149.6,
        });
        assert_eq!(
            s.to_string(),
            "phase procedure · step 4.2: Stop etcd2 · 1200 ops (150/s) · 3 errors"
        );
    }

    #[test]
    fn the_last_lines_give_the_verdict_its_reasons_and_the_artifacts() {
        let mut summary = crate::testing::summary();
        let dir = Path::new("reports/x/1");
        assert_eq!(
            verdict(&summary, dir),
            "verdict: PASS\nartifacts: reports/x/1"
        );
        summary.verdict = firedrill_types::summary::Verdict::Fail;
        summary.reasons = vec!["3 acknowledged writes were lost\n".into()];
        assert_eq!(
            verdict(&summary, dir),
            "verdict: FAIL\n  - 3 acknowledged writes were lost\nartifacts: reports/x/1"
        );
        summary.reasons.clear();
        assert!(verdict(&summary, dir).contains("  - the run recorded no reason\n"));
    }

    #[test]
    fn later_lines_of_an_event_are_indented_under_the_stamp() {
        assert_eq!(
            stamped(1.3, "step 3: dump FAILED (5 ms)\n    exit code 1"),
            "[    1.3s] step 3: dump FAILED (5 ms)\n".to_string()
                + &" ".repeat(15)
                + "exit code 1\n"
        );
    }
}
