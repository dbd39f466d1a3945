//! Load generator fidelity: firedrill's load against a reference HTTP load tool (oha, built
//! from crates.io) on the same endpoint in the same run: one member of the bundled etcd
//! cluster, the load profile's read request on one key, the same concurrency.
//!
//! 1. Throughput, unthrottled: firedrill's operations per second over oha's (target ≥ 0.7).
//! 2. Latency at a fixed rate: firedrill's open-loop p50/p99 next to oha's with its
//!    coordinated-omission correction, and firedrill's closed-loop (service time) figures.
//!
//! `cargo bench -p firedrill --bench fidelity`. oha is taken from `OHA`, else from PATH,
//! else installed once with `cargo install oha --locked --root target/bench-tools`.
//! `FIREDRILL_BENCH_SECS` sets each measurement's length (15).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firedrill::cluster::{self, Cluster};
use firedrill::history::{Micros, Op, Outcome};
use firedrill::load::{reqwest_method, LoadRun, Target};
use firedrill_spec::loadprofile::{Fields, LoadProfile};

mod support;

const CLIENTS: u32 = 6;
const RATE: f64 = 200.0;

#[tokio::main]
async fn main() {
    // goose logs through `log`: a subscriber first keeps it off stdout.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,goose=error"))
        .init();
    let secs: u64 = std::env::var("FIREDRILL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let length = Duration::from_secs(secs);
    let oha = oha_binary();
    let root = support::repo_root();

    let (compose, members) = support::bundled_cluster();
    let docker = cluster::connect().await.expect("a Docker engine");
    let logs = tempfile::tempdir().expect("a temporary directory");
    let run_id = format!("fidelity{:04x}", rand::random::<u16>());
    let c = Cluster::create(&docker, &compose, &run_id, false, logs.path())
        .await
        .expect("the cluster starts");
    c.wait_healthy(&members, Duration::from_secs(60))
        .await
        .expect("the members become healthy");

    let mut profile: LoadProfile = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("loadprofiles/etcd-kv.yaml")).expect("the profile"),
    )
    .expect("the profile parses");
    profile.clients = CLIENTS;
    profile.read_ratio = 1.0;
    profile.cas_ratio = 0.0;
    profile.keys.count = 1;
    profile.failover = false;
    // Both tools load the first member.
    let node = &members[0];
    let port = c
        .host_port(node, profile.port)
        .expect("the member's client port");
    let base_url = format!("http://127.0.0.1:{port}");
    let target = Target {
        node: node.clone(),
        base_url: base_url.clone(),
    };
    let request = profile
        .clone()
        .compile()
        .expect("the profile compiles")
        .read
        .render(&Fields::key(&profile.key_names()[0]));
    let mut oha_args: Vec<String> = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "-c".into(),
        CLIENTS.to_string(),
        "-z".into(),
        format!("{secs}s"),
        "-m".into(),
        reqwest_method(request.method).as_str().into(),
    ];
    if let Some(body) = &request.body {
        oha_args.extend(["-d".into(), body.clone()]);
    }
    for (k, v) in &request.headers {
        oha_args.extend(["-H".into(), format!("{k}: {v}")]);
    }
    let url = format!("{base_url}{}", request.path);

    // Unthrottled: each tool as fast as its clients go, in turns, the order swapped every
    // round so that a noisy neighbour favours neither; the median round counts.
    let mut ratios = Vec::new();
    profile.rate = 1e6;
    for round in 0..support::rounds(4) {
        let (o, (f, f_cpu)) = if round % 2 == 0 {
            let o = run_oha(&oha, &oha_args, &[], &url);
            (o, unthrottled(&profile, &target, length).await)
        } else {
            let f = unthrottled(&profile, &target, length).await;
            (run_oha(&oha, &oha_args, &[], &url), f)
        };
        println!(
            "round {round}, unthrottled, {CLIENTS} clients: oha {:.0} req/s ({:.0} µs CPU each), firedrill {f:.0} ops/s ({f_cpu:.0} µs CPU each), ratio {:.2}",
            o.per_s,
            o.cpu_us_per_request,
            f / o.per_s
        );
        ratios.push(f / o.per_s);
    }

    // A fixed rate: open loop in both tools.
    let o = run_oha(
        &oha,
        &oha_args,
        &["-q".into(), RATE.to_string(), "--latency-correction".into()],
        &url,
    );
    profile.rate = RATE;
    let ops = run_firedrill(&profile, &target, length).await;
    let open = percentiles(&ops, Op::latency_us);
    let closed = percentiles(&ops, Op::service_us);

    c.teardown().await.expect("the cluster is removed");

    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    println!(
        "\nthroughput ratio firedrill/oha: median {ratio:.2} (min {:.2}, max {:.2}); target ≥ 0.70: {}",
        ratios[0],
        ratios[ratios.len() - 1],
        if ratio >= 0.7 { "met" } else { "MISSED" }
    );
    println!(
        "at {RATE} ops/s for {secs} s: oha p50 {:.2} ms, p99 {:.2} ms ({:.0} req/s); firedrill open loop p50 {:.2} ms, p99 {:.2} ms ({:.0} ops/s); firedrill closed loop p50 {:.2} ms, p99 {:.2} ms",
        o.p50_ms,
        o.p99_ms,
        o.per_s,
        open.0,
        open.1,
        ok_per_s(&ops),
        closed.0,
        closed.1
    );
}

/// firedrill's operations per second and CPU time per operation, unthrottled.
async fn unthrottled(profile: &LoadProfile, target: &Target, length: Duration) -> (f64, f64) {
    let before = cpu_seconds(CpuOf::Myself);
    let ops = run_firedrill(profile, target, length).await;
    let cpu = cpu_seconds(CpuOf::Myself) - before;
    (ok_per_s(&ops), cpu * 1e6 / ops.len() as f64)
}

enum CpuOf {
    Myself,
    /// Children already waited for.
    Children,
}

/// User and system CPU seconds from /proc/self/stat.
fn cpu_seconds(of: CpuOf) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 2..]
        .split(' ')
        .collect();
    // utime, stime, cutime, cstime are fields 14–17 of the line, 12–15 here.
    let at = match of {
        CpuOf::Myself => 11,
        CpuOf::Children => 13,
    };
    let ticks: f64 = fields[at..at + 2]
        .iter()
        .map(|f| f.parse::<f64>().expect("a tick count"))
        .sum();
    // USER_HZ is 100 on every Linux architecture a Docker engine runs on.
    ticks / 100.0
}

struct OhaResult {
    per_s: f64,
    cpu_us_per_request: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn run_oha(oha: &PathBuf, args: &[String], extra: &[String], url: &str) -> OhaResult {
    let before = cpu_seconds(CpuOf::Children);
    let out = Command::new(oha)
        .args(args)
        .args(extra)
        .arg(url)
        .output()
        .expect("oha runs");
    assert!(
        out.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oha's JSON");
    let secs = |pointer: &str| {
        json.pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("oha's JSON has no {pointer}: {json}"))
    };
    let success = secs("/summary/successRate");
    assert!(success > 0.99, "oha's requests failed: {json}");
    let requests = secs("/summary/requestsPerSec") * secs("/summary/total");
    OhaResult {
        cpu_us_per_request: (cpu_seconds(CpuOf::Children) - before) * 1e6 / requests,
        per_s: secs("/summary/requestsPerSec"),
        p50_ms: secs("/latencyPercentiles/p50") * 1000.0,
        p99_ms: secs("/latencyPercentiles/p99") * 1000.0,
    }
}

async fn run_firedrill(profile: &LoadProfile, target: &Target, length: Duration) -> Vec<Op> {
    let (sink, mut history) = tokio::sync::mpsc::unbounded_channel();
    let load = LoadRun::start(
        Arc::new(profile.clone().compile().expect("the profile compiles")),
        vec![target.clone()],
        1,
        Instant::now(),
        sink,
    )
    .expect("the load starts");
    tokio::time::sleep(length).await;
    load.stop().await.expect("the load stops");
    let mut ops = Vec::new();
    while let Some(op) = history.recv().await {
        ops.push(op);
    }
    let failed = ops.iter().filter(|o| o.outcome != Outcome::Ok).count();
    assert!(
        failed * 100 < ops.len(),
        "{failed} of {} operations failed",
        ops.len()
    );
    ops
}

/// Acknowledged operations per second between the first send and the last answer.
fn ok_per_s(ops: &[Op]) -> f64 {
    let first = ops.iter().map(|o| o.t_call).min().unwrap_or(0);
    let last = ops.iter().map(|o| o.t_return).max().unwrap_or(0);
    let ok = ops.iter().filter(|o| o.outcome == Outcome::Ok).count();
    ok as f64 / ((last - first) as f64 / 1e6)
}

/// p50 and p99 in ms.
fn percentiles(ops: &[Op], latency: fn(&Op) -> Micros) -> (f64, f64) {
    let mut v: Vec<Micros> = ops.iter().map(latency).collect();
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

/// oha from `OHA`, PATH, or a one-time `cargo install` under target/.
fn oha_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OHA") {
        return PathBuf::from(p);
    }
    if Command::new("oha").arg("--version").output().is_ok() {
        return PathBuf::from("oha");
    }
    let tools = support::repo_root().join("target/bench-tools");
    let bin = tools.join("bin/oha");
    if !bin.exists() {
        println!(
            "installing oha into {} (once; a few minutes)",
            tools.display()
        );
        let status = Command::new(env!("CARGO"))
            .args(["install", "oha", "--locked", "--root"])
            .arg(&tools)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo install oha failed");
    }
    bin
}
