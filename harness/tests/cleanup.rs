//! Nothing is ever left behind: not after Ctrl-C, not after SIGKILL (the next run reaps it),
//! not after `--keep` (`firedrill clean` does).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{firedrill, leftovers_of, repo, summary, SERIAL};
use firedrill::summary::Verdict;

const PAUSE: &str = "harness/tests/fixtures/quick/pause.yaml";

/// A run under way: the process, its stdout lines, and its output directory.
struct Paused {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    out: tempfile::TempDir,
}

/// Starts a run of the pause scenario and returns once its procedure is under way.
/// Every caller waits for the child it gets.
#[allow(clippy::zombie_processes)]
fn start_paused_run(extra: &[&str]) -> Paused {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["run", PAUSE, "--out"])
        .arg(out.path())
        .args(extra)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("firedrill starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the run reaches its last step");
        if line.contains("step 3: Wait") {
            return Paused {
                child,
                lines: rx,
                out,
            };
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

#[test]
fn ctrl_c_stops_the_run_and_removes_everything() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Paused {
        mut child,
        lines: _lines,
        out: _out,
    } = start_paused_run(&["--seed", "1"]);
    // Long enough that the interrupt lands mid-step.
    assert_ne!(
        leftovers_of(child.id()),
        "",
        "the cluster runs while the step waits"
    );
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        leftovers_of(child.id()),
        "",
        "an interrupted run removes what it created"
    );
}

#[test]
fn a_killed_run_is_reaped_by_the_next_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Paused {
        mut child,
        lines: _lines,
        out: _out,
    } = start_paused_run(&["--seed", "2"]);
    signal(&child, "-KILL");
    child.wait().unwrap();
    let left = leftovers_of(child.id());
    assert_ne!(left, "", "SIGKILL leaves the cluster behind");
    let next = firedrill(&["run", PAUSE, "--seed", "3"]);
    assert!(
        next.stdout.contains("removed what killed runs left behind"),
        "{}",
        next.stdout
    );
    assert_eq!(
        leftovers_of(child.id()),
        "",
        "the next run reaped the killed one"
    );
}

#[test]
fn keep_leaves_the_cluster_and_clean_removes_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Paused {
        mut child,
        lines,
        out,
    } = start_paused_run(&["--seed", "4", "--keep"]);
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    // Judged as usual, with every node still up for the post-mortem.
    let s = summary(out.path());
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    assert_eq!(s.seed, 4);
    for n in &s.nodes {
        assert!(n.running && n.healthy, "{n:?}");
    }
    assert!(
        rest.iter().any(|l| l.contains("firedrill clean")),
        "{rest:?}"
    );
    assert_ne!(
        leftovers_of(child.id()),
        "",
        "--keep leaves the cluster running"
    );
    // A kept cluster is not reaped as stale: only `clean` removes it.
    let clean = firedrill(&["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(clean.stdout.contains("removed"), "{}", clean.stdout);
    assert_eq!(leftovers_of(child.id()), "");
}
