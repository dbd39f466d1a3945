//! Memory: the harness's peak resident memory over a long run at 1k operations per second
//! against the bundled etcd cluster (the history streams to disk; the checks run at the end).
//!
//! `cargo bench -p firedrill --bench memory` (10 minutes; `FIREDRILL_BENCH_SOAK=2m` for a
//! shorter look). Target: peak RSS ≤ 200 MB.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill::summary::Summary;

mod support;

fn main() {
    let firedrill = support::firedrill_binary();
    let root = support::repo_root();
    let hold = std::env::var("FIREDRILL_BENCH_SOAK").unwrap_or_else(|_| "10m".into());
    let work = tempfile::tempdir().expect("a temporary directory");
    let scenario = work.path().join("soak.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: soak-1k\n\
             description: Holds the bundled cluster under 1k operations per second for {hold}.\n\
             cluster:\n  compose: {root}/compose/etcd-3.yaml\n\
             load:\n  profile: {root}/harness/benches/fixtures/etcd-kv-1k.yaml\n\
             phases:\n  steady: {{ duration: 5s }}\n  recovery: {{ duration: 5s }}\n\
             steps:\n  - name: Hold\n    sleep: {hold}\n",
            root = root.display()
        ),
    )
    .expect("the scenario is written");
    let out = work.path().join("out");

    let started = Instant::now();
    let mut child = Command::new(&firedrill)
        .arg("run")
        .arg(&scenario)
        .args(["--seed", "1", "--out"])
        .arg(&out)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("firedrill runs");
    // Sampled from outside as well, in case the run fails before it writes its summary.
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak_kib = peak_kib.max(rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = started.elapsed();
    assert!(status.success(), "the soak run failed ({status})");

    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses");
    let history = std::fs::metadata(out.join("history.jsonl")).map_or(0, |m| m.len());
    let peak = summary
        .timings
        .peak_rss_mib
        .unwrap_or(peak_kib as f64 / 1024.0);
    println!(
        "\nsoak {hold}: wall {:.0} s; {} operations at {:.0} ops/s ({} ok); history on disk {:.1} MB",
        wall.as_secs_f64(),
        summary.load.ops,
        summary.load.ops_per_s,
        summary.load.ok,
        history as f64 / 1e6
    );
    println!(
        "harness peak RSS {peak:.1} MiB (VmHWM; sampled every 0.5 s: {:.1} MiB); target ≤ 200 MB: {}",
        peak_kib as f64 / 1024.0,
        if peak * 1.048_576 <= 200.0 { "met" } else { "MISSED" }
    );
}

/// The process's current resident memory in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
