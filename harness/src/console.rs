//! The terminal reporter. On a terminal: a live status line (phase, current step, elapsed,
//! operations per second, errors so far) under the event lines. Elsewhere (CI logs): plain
//! timestamped lines only.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::events::RunEvent;
use firedrill_types::summary::{StepStatus, Verdict};

/// Prints events until the sender side closes.
pub async fn print_events(mut events: tokio::sync::mpsc::UnboundedReceiver<RunEvent>) {
    let start = Instant::now();
    let mut status = Status::default();
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    while let Some(e) = events.recv().await {
        status.update(&e);
        let line = render(e);
        let t = start.elapsed().as_secs_f64();
        let mut text = String::new();
        for (i, l) in line.lines().enumerate() {
            if i == 0 {
                text.push_str(&format!("[{t:7.1}s] {l}\n"));
            } else {
                text.push_str(&format!("           {l}\n"));
            }
        }
        match &bar {
            Some(bar) => {
                bar.println(text.trim_end());
                bar.set_message(status.to_string());
            }
            None => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
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

fn render(e: RunEvent) -> String {
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
        RunEvent::Note(n) => n,
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
        RunEvent::Finished {
            verdict,
            reasons,
            out_dir,
        } => {
            let mut s = match verdict {
                Verdict::Pass => "verdict: PASS".to_string(),
                Verdict::Fail => "verdict: FAIL".to_string(),
            };
            for r in reasons {
                s.push_str(&format!("\n  - {r}"));
            }
            s.push_str(&format!("\nartifacts: {}", out_dir.display()));
            s
        }
    }
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
}
