//! The terminal reporter: one timestamped line per event, readable live and in CI logs.

use std::io::Write;
use std::time::Instant;

use crate::events::RunEvent;
use crate::summary::{StepStatus, Verdict};

/// Prints events until the sender side closes.
pub async fn print_events(mut events: tokio::sync::mpsc::UnboundedReceiver<RunEvent>) {
    let start = Instant::now();
    while let Some(e) = events.recv().await {
        let t = start.elapsed().as_secs_f64();
        let line = match e {
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
        };
        let mut out = std::io::stdout().lock();
        for (i, l) in line.lines().enumerate() {
            let _ = if i == 0 {
                writeln!(out, "[{t:7.1}s] {l}")
            } else {
                writeln!(out, "           {l}")
            };
        }
    }
}
