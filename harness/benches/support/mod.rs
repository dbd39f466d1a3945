//! What the benches share: where the repository is, how many rounds, and one way to print a
//! measurement next to its target.

// Each bench includes this module and uses a different part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use firedrill_spec::compose::Compose;

/// The repository root (the benches run from the crate's directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

/// The bundled topology, and the members that start with it.
pub fn bundled_cluster() -> (Compose, Vec<String>) {
    let path = repo_root().join("compose/etcd-3.yaml");
    let compose = Compose::load(&path).unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
    let members = compose
        .services
        .iter()
        .filter(|s| s.starts_with_cluster())
        .map(|s| s.name.clone())
        .collect();
    (compose, members)
}

/// Rounds to repeat a measurement: `FIREDRILL_BENCH_ROUNDS`, or `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("FIREDRILL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// `label: median (min–max, n) target … met/missed`.
pub fn row(label: &str, samples: &mut [Duration], target: Option<Duration>) {
    let m = median(samples);
    let (lo, hi) = (samples[0], samples[samples.len() - 1]);
    let verdict = match target {
        Some(t) if m <= t => format!("  target ≤ {:.1} s: met", t.as_secs_f64()),
        Some(t) => format!("  target ≤ {:.1} s: MISSED", t.as_secs_f64()),
        None => String::new(),
    };
    println!(
        "{label:<34} median {:>6.2} s  (min {:.2}, max {:.2}, n = {}){verdict}",
        m.as_secs_f64(),
        lo.as_secs_f64(),
        hi.as_secs_f64(),
        samples.len()
    );
}

/// The release binary, built if missing, so a bench measures what users run.
pub fn firedrill_binary() -> PathBuf {
    let root = repo_root();
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "firedrill",
            "--bin",
            "firedrill",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release failed");
    root.join("target/release/firedrill")
}
