//! Scaling out: `--partition K/N` splits a suite so that every scenario is in exactly one
//! shard (three shards here, one of them empty), `firedrill merge` puts the shards back together with the verdicts of an unsharded
//! run, and `--jobs 2` gives the same verdicts with the scenarios in child processes.
//!
//! The Docker tests run one at a time: `cargo test --release -p firedrill --test scaling --
//! --test-threads=1`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{firedrill, repo, summary, SERIAL};
use firedrill::summary::Verdict;

/// Two quick drills. On a kernel without sch_netem (this project's machines) the netem one
/// fails its first step, so the suite also shows that the worst verdict wins everywhere.
const QUICK: [&str; 2] = [
    "harness/tests/fixtures/quick/netem.yaml",
    "harness/tests/fixtures/quick/pause.yaml",
];
/// The sharded suite: the two quick drills and a third, so that three shards hold two, one
/// and none of them.
const SUITE: [&str; 3] = [
    QUICK[0],
    QUICK[1],
    "harness/tests/fixtures/quick/optional-capture.yaml",
];
/// Their names, sorted.
const SCENARIOS: [&str; 3] = ["quick-netem", "quick-optional-capture", "quick-pause"];
const SEED: &str = "16";

/// The scenario names `firedrill list` printed (the unindented lines).
fn listed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with("shard ") && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[test]
fn the_shards_of_scenarios_cover_every_scenario_exactly_once() {
    let all = firedrill(&["list", "scenarios"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let mut all = listed(&all.stdout);
    all.sort();
    assert!(all.len() >= 6, "the main job's scenarios: {all:?}");
    let mut seen = Vec::new();
    for k in 1..=3 {
        let part = format!("{k}/3");
        let shard = firedrill(&["list", "scenarios", "--partition", &part]);
        assert_eq!(shard.code, 0, "{part}: {}", shard.stderr);
        let names = listed(&shard.stdout);
        if names.is_empty() {
            assert!(
                shard.stdout.contains(&format!("shard {part}: none of the")),
                "{}",
                shard.stdout
            );
        }
        seen.extend(names);
    }
    seen.sort();
    assert_eq!(seen, all, "every scenario in exactly one of 3 shards");
    // The same split on every run.
    let again = firedrill(&["list", "scenarios", "--partition", "2/3"]);
    let first = firedrill(&["list", "scenarios", "--partition", "2/3"]);
    assert_eq!(listed(&again.stdout), listed(&first.stdout));
}

#[test]
fn a_bad_partition_is_invalid_input() {
    for bad in ["0/3", "4/3", "3", "1/0"] {
        let out = firedrill(&["list", "scenarios", "--partition", bad]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("K/N"), "{bad}: {}", out.stderr);
    }
}

#[test]
fn merge_of_a_directory_without_runs_exits_2() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dir = empty.path().to_str().expect("utf-8");
    let merged = firedrill(&["merge", dir, "--out", out.path().to_str().expect("utf-8")]);
    assert_eq!(merged.code, 2, "{}\n{}", merged.stdout, merged.stderr);
    assert!(merged.stderr.contains("holds no run"), "{}", merged.stderr);
    assert!(!out.path().join("summary.json").exists());
}

/// What the run with that run id left on the Docker daemon.
fn leftovers_of_run(run_id: &str) -> String {
    let label = format!("label=firedrill.run={run_id}");
    let mut found = String::new();
    for what in [
        ["ps", "-a"].as_slice(),
        &["volume", "ls"],
        &["network", "ls"],
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["-q", "--filter", &label])
            .output()
            .expect("docker CLI");
        found.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    found
}

/// scenario name → verdict, of the runs in `out/<name>/`, checking each left nothing behind.
fn verdicts(out: &Path) -> BTreeMap<String, (Verdict, u32)> {
    SCENARIOS
        .iter()
        .map(|name| {
            let s = summary(&out.join(name));
            assert_eq!(s.scenario, *name);
            assert_eq!(
                leftovers_of_run(&s.run_id),
                "",
                "{name} left objects behind"
            );
            (s.scenario.clone(), (s.verdict, s.timings.jobs))
        })
        .collect()
}

/// `firedrill run` of the whole [`SUITE`] with `extra` arguments, into `out`.
fn run_suite(extra: &[&str], out: &Path) -> common::Output {
    let mut args = vec!["run"];
    args.extend(SUITE);
    args.extend(extra);
    args.extend(["--out", path(out)]);
    firedrill(&args)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn sharded_merged_and_concurrent_runs_give_the_verdicts_of_one_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| tmp.path().join(name);

    // Unsharded, one after another.
    let whole = run_suite(&["--seed", SEED], &dir("all"));
    let expected = verdicts(&dir("all"));
    let worst = if expected.values().any(|(v, _)| *v == Verdict::Fail) {
        1
    } else {
        0
    };
    assert_eq!(whole.code, worst, "{}\n{}", whole.stdout, whole.stderr);
    assert!(
        expected.values().all(|(_, jobs)| *jobs == 1),
        "{expected:?}"
    );

    // Three shards, laid out as a CI merge job downloads them (`shards/shard-K`). By the
    // names' hashes quick-optional-capture falls in 2/3, quick-netem and quick-pause in 3/3,
    // and none in 1/3, which says so and exits 0, as a CI shard must.
    let mut shard_codes = Vec::new();
    let mut sharded: BTreeMap<String, Verdict> = BTreeMap::new();
    for k in 1..=3 {
        let part = format!("{k}/3");
        let out = dir(&format!("shards/shard-{k}"));
        let run = run_suite(&["--partition", &part, "--seed", SEED], &out);
        assert!(
            run.stdout.contains(&format!("shard {part}: ")),
            "{}",
            run.stdout
        );
        shard_codes.push(run.code);
        for name in SCENARIOS {
            if !out.join(name).exists() {
                continue;
            }
            let s = summary(&out.join(name));
            assert_eq!(
                leftovers_of_run(&s.run_id),
                "",
                "{} left objects behind",
                s.scenario
            );
            let twice = sharded.insert(s.scenario.clone(), s.verdict);
            assert!(twice.is_none(), "{name} ran in two shards");
        }
    }
    assert_eq!(shard_codes[0], 0, "the empty shard");
    let unsharded: BTreeMap<String, Verdict> =
        expected.iter().map(|(n, (v, _))| (n.clone(), *v)).collect();
    assert_eq!(sharded, unsharded, "the shards' verdicts");
    assert_eq!(shard_codes.iter().max().copied(), Some(worst));

    // The merge: one index, one junit.xml with a suite per scenario, links to every report.
    let merged_dir = dir("merged");
    let merged = firedrill(&["merge", path(&dir("shards")), "--out", path(&merged_dir)]);
    assert_eq!(merged.code, worst, "{}\n{}", merged.stdout, merged.stderr);
    let text = std::fs::read_to_string(merged_dir.join("summary.json")).expect("the index");
    let index: firedrill_types::index::Index = serde_json::from_str(&text).expect("index schema");
    assert_eq!(index.schema, firedrill_types::index::SCHEMA);
    let from_index: BTreeMap<String, Verdict> = index
        .scenarios
        .iter()
        .map(|e| (e.name.clone(), e.verdict))
        .collect();
    assert_eq!(from_index, unsharded, "the merged verdicts");
    for e in &index.scenarios {
        assert!(
            merged_dir.join(&e.path).join("report.html").is_file(),
            "{} links to {}",
            e.name,
            e.path
        );
    }
    let junit = std::fs::read_to_string(merged_dir.join("junit.xml")).expect("junit.xml");
    let mut suites: Vec<&str> = junit
        .split("<testsuite name=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or(""))
        .collect();
    suites.sort_unstable();
    assert_eq!(suites, SCENARIOS, "{junit}");
    let html = std::fs::read_to_string(merged_dir.join("index.html")).expect("index.html");
    assert!(
        html.contains("../shards/shard-3/quick-pause/report.html"),
        "{html}"
    );
    assert!(merged_dir.join("index.md").is_file());

    // --jobs 2: two at a time, in child processes, each line behind its scenario's name.
    let jobs = run_suite(&["--jobs", "2", "--seed", SEED], &dir("jobs"));
    assert_eq!(jobs.code, worst, "{}\n{}", jobs.stdout, jobs.stderr);
    let concurrent = verdicts(&dir("jobs"));
    let concurrent_verdicts: BTreeMap<String, Verdict> = concurrent
        .iter()
        .map(|(n, (v, _))| (n.clone(), *v))
        .collect();
    assert_eq!(concurrent_verdicts, unsharded, "the verdicts with --jobs 2");
    assert!(
        concurrent.values().all(|(_, jobs)| *jobs == 2),
        "{concurrent:?}"
    );
    for name in SCENARIOS {
        assert!(
            jobs.stdout
                .lines()
                .any(|l| l.starts_with(&format!("[{name}")) && l.contains("verdict:")),
            "{name}'s verdict line, prefixed:\n{}",
            jobs.stdout
        );
    }
}

#[test]
fn ctrl_c_reaches_every_child_of_a_jobs_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "run", QUICK[0], QUICK[1], "--jobs", "2", "--seed", SEED, "--out",
        ])
        .arg(out.path())
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("firedrill starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut run_id = None;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if let Some(rest) = line.split("scenario quick-pause: run ").nth(1) {
            run_id = rest.split(',').next().map(String::from);
        }
        seen.push(line.clone());
        // The pause drill's last step sleeps 8 s: interrupt it there.
        if line.starts_with("[quick-pause]") && line.contains("step 3: Wait") {
            break;
        }
    }
    let run_id = run_id.unwrap_or_else(|| panic!("no run id for quick-pause in {seen:#?}"));
    assert_ne!(
        leftovers_of_run(&run_id),
        "",
        "the cluster runs while the step waits"
    );
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("firedrill exits");
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(130), "{seen:#?}\n{rest:#?}");
    assert_eq!(
        leftovers_of_run(&run_id),
        "",
        "the interrupted child removed its cluster"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("[quick-pause]") && l.contains("exit code 130")),
        "{rest:#?}"
    );
}

/// The engine comes from the Docker CLI's current context when DOCKER_HOST is unset: a
/// context made by `docker context create` (here: this machine's socket, and a closed
/// loopback port) is read from its configuration directory.
#[test]
fn the_engine_comes_from_the_docker_context() {
    let config = tempfile::tempdir().expect("tempdir");
    let docker = |args: &[&str]| {
        let ok = Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("docker CLI")
            .status
            .success();
        assert!(ok, "docker {args:?}");
    };
    let socket = "host=unix:///var/run/docker.sock";
    docker(&["context", "create", "fd-local", "--docker", socket]);
    docker(&[
        "context",
        "create",
        "fd-closed",
        "--docker",
        "host=tcp://127.0.0.1:1",
    ]);
    docker(&["context", "use", "fd-local"]);
    let clean = |context: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        cmd.args(["clean", "--run", "00000000"])
            .current_dir(repo())
            .env("DOCKER_CONFIG", config.path())
            .env("NO_COLOR", "1")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        if let Some(c) = context {
            cmd.env("DOCKER_CONTEXT", c);
        }
        cmd.output().expect("firedrill runs")
    };
    let current = clean(None);
    assert_eq!(
        current.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&current.stderr)
    );
    let closed = clean(Some("fd-closed"));
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("tcp://127.0.0.1:1 of Docker context fd-closed"),
        "{stderr}"
    );
    let missing = clean(Some("fd-missing"));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Docker context `fd-missing`"), "{stderr}");
}
