//! Suite wall time: the main job (every scenario in `scenarios/`, release build, images
//! already built) as users run it, broken down by stage from each run's `summary.json`.
//!
//! `cargo bench -p firedrill --bench suite`. Target: the whole suite in 5 minutes or less.

use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::history::Phase;
use firedrill::summary::Summary;

mod support;

fn main() {
    let firedrill = support::firedrill_binary();
    let root = support::repo_root();

    // Every image present: what each run pays to find that out.
    let checking = Instant::now();
    let images = Command::new(&firedrill)
        .args(["images", "build"])
        .current_dir(&root)
        .output()
        .expect("firedrill runs");
    let image_check = checking.elapsed();
    assert!(
        images.status.success(),
        "firedrill images build failed:\n{}",
        String::from_utf8_lossy(&images.stderr)
    );

    let out = tempfile::tempdir().expect("a temporary directory");
    let starting = Instant::now();
    let run = Command::new(&firedrill)
        .args(["run", "scenarios/", "--seed", "1", "--out"])
        .arg(out.path())
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .output()
        .expect("firedrill runs");
    let wall = starting.elapsed();
    if run.status.code() != Some(0) {
        let kept = out.keep();
        panic!(
            "the main job failed ({}); its reports are kept in {}:\n{}\n{}",
            run.status,
            kept.display(),
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }

    let mut summaries: Vec<Summary> = std::fs::read_dir(out.path())
        .expect("the reports directory")
        .filter_map(|e| {
            let path = e.ok()?.path().join("summary.json");
            let text = std::fs::read_to_string(&path).ok()?;
            Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    summaries.sort_by(|a, b| a.scenario.cmp(&b.scenario));

    let columns = [
        "create", "ready", "steady", "proc.", "recov.", "stop", "checks", "teardown", "total",
    ];
    print!("\n{:<22}", "scenario (s)");
    for c in columns {
        print!("{c:>9}");
    }
    println!();
    let mut totals = [0u64; 9];
    for s in &summaries {
        let t = &s.timings;
        let phase = |p: Phase| {
            s.phases
                .iter()
                .find(|r| r.phase == p)
                .map_or(0, |r| (r.end - r.start) / 1000)
        };
        let stages = [
            t.cluster_create_ms,
            t.cluster_ready_ms,
            phase(Phase::Steady),
            phase(Phase::Procedure),
            phase(Phase::Recovery),
            t.load_stop_ms,
            t.checks_ms,
            t.teardown_ms,
            s.duration_ms + t.teardown_ms,
        ];
        print!("{:<22}", s.scenario);
        for (i, ms) in stages.iter().enumerate() {
            totals[i] += ms;
            print!("{:>9.1}", *ms as f64 / 1000.0);
        }
        println!();
    }
    print!("{:<22}", "sum");
    for ms in totals {
        print!("{:>9.1}", ms as f64 / 1000.0);
    }
    println!();
    let accounted = Duration::from_millis(totals[8]);
    println!(
        "\nimage check (all present): {:.2} s; {} scenarios: wall {:.1} s, of which runs {:.1} s and the rest (start-up, reports, between runs) {:.1} s",
        image_check.as_secs_f64(),
        summaries.len(),
        wall.as_secs_f64(),
        accounted.as_secs_f64(),
        wall.saturating_sub(accounted).as_secs_f64()
    );
    let target = Duration::from_secs(300);
    println!(
        "suite wall time {:.1} s; target ≤ {} s: {}",
        wall.as_secs_f64(),
        target.as_secs(),
        if wall <= target { "met" } else { "MISSED" }
    );
}
