//! Helpers shared by the integration tests: run the binary, read a summary through its
//! typed schema, find its checks, steps, phases and nodes by name, look for leftovers on the
//! Docker daemon. `recount` recomputes a summary's numbers from the artifacts alone.
#![allow(dead_code)]

pub mod recount;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use firedrill::history::Phase;
use firedrill::summary::{
    CheckResult, NodeRecord, PhaseResult, SloResult, StepRecord, Summary, SCHEMA,
};

/// Tests that start clusters run one at a time: the machine has two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the firedrill binary from the repository root.
pub fn firedrill(args: &[&str]) -> Output {
    firedrill_env(args, &[])
}

pub fn firedrill_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    cmd.args(args).current_dir(repo()).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the firedrill binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs one scenario with a seed into a fresh output directory, and checks that the run
/// left nothing on the Docker daemon. Returns the output, summary.json and the directory.
pub fn drill(scenario: &str, seed: u64) -> (Output, Summary, tempfile::TempDir) {
    drill_with(scenario, seed, &[])
}

/// [`drill`] with more arguments for `firedrill run` (`--rollback-at 4`, `--bless`).
pub fn drill_with(
    scenario: &str,
    seed: u64,
    extra: &[&str],
) -> (Output, Summary, tempfile::TempDir) {
    let out = tempfile::tempdir().expect("a temporary directory");
    let seed = seed.to_string();
    let dir = out.path().to_str().expect("a UTF-8 path").to_string();
    let mut args = vec!["run", scenario, "--seed", &seed, "--out", &dir];
    args.extend_from_slice(extra);
    let (run, pid) = firedrill_pid(&args, &[]);
    assert_eq!(
        leftovers_of(pid),
        "",
        "{scenario} left objects on the Docker daemon"
    );
    if !out.path().join("summary.json").is_file() {
        panic!(
            "{scenario} wrote no summary.json (exit code {}):\n{}\n{}",
            run.code, run.stdout, run.stderr
        );
    }
    let s = summary(out.path());
    (run, s, out)
}

/// summary.json read through its schema: a field renamed, removed or of another type fails
/// here, not as a `null` that an assertion happens to accept.
pub fn summary(out_dir: &Path) -> Summary {
    let text =
        std::fs::read_to_string(out_dir.join("summary.json")).expect("summary.json was written");
    let s: Summary = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("summary.json does not fit the Summary schema: {e}\n{text}"));
    assert_eq!(s.schema, SCHEMA);
    s
}

/// The check named exactly `name`, or a panic that lists the checks there are.
pub fn check<'a>(s: &'a Summary, name: &str) -> &'a CheckResult {
    s.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check named {name:?}; the checks are {:#?}", s.checks))
}

/// The end-state check every run has.
pub const END_STATE: &str = "every expected node running and healthy at the end";

/// Whether one of the verdict's reasons contains `text`.
pub fn reasons_contain(s: &Summary, text: &str) -> bool {
    s.reasons.iter().any(|r| r.contains(text))
}

/// The reason that contains `text`, or a panic that lists the reasons there are.
pub fn reason<'a>(s: &'a Summary, text: &str) -> &'a str {
    s.reasons
        .iter()
        .find(|r| r.contains(text))
        .unwrap_or_else(|| {
            panic!(
                "no reason contains {text:?}; the reasons are {:#?}",
                s.reasons
            )
        })
}

/// The step named exactly `name`.
pub fn step<'a>(s: &'a Summary, name: &str) -> &'a StepRecord {
    s.steps
        .iter()
        .find(|st| st.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
            panic!("no step named {name:?}; the steps are {names:?}")
        })
}

/// The node named exactly `name` in `summary.nodes`.
pub fn node<'a>(s: &'a Summary, name: &str) -> &'a NodeRecord {
    s.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        panic!("no node named {name:?}; the nodes are {names:?}")
    })
}

/// The result of one phase.
pub fn phase(s: &Summary, which: Phase) -> &PhaseResult {
    s.phases
        .iter()
        .find(|p| p.phase == which)
        .unwrap_or_else(|| panic!("no {} phase in {:#?}", which.name(), s.phases))
}

/// The SLO named exactly `name` of a phase.
pub fn slo<'a>(p: &'a PhaseResult, name: &str) -> &'a SloResult {
    p.slos.iter().find(|x| x.name == name).unwrap_or_else(|| {
        panic!(
            "no SLO {name:?} in the {} phase: {:#?}",
            p.phase.name(),
            p.slos
        )
    })
}

/// Everything of firedrill's still on the daemon, one object per line.
pub fn leftovers() -> String {
    let mut found = String::new();
    for what in [
        vec!["ps", "-a"],
        vec!["volume", "ls"],
        vec!["network", "ls"],
    ] {
        let mut args = what.clone();
        args.extend(["-q", "--filter", "label=firedrill.managed=true"]);
        let out = Command::new("docker")
            .args(&args)
            .output()
            .expect("docker CLI");
        found.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    found
}

/// Runs the binary like `firedrill_env` and also returns its process id, which labels
/// everything that process creates on the daemon (`firedrill.pid`).
pub fn firedrill_pid(args: &[&str], env: &[(&str, &str)]) -> (Output, u32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    cmd.args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("the firedrill binary starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("the firedrill binary runs");
    let output = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (output, pid)
}

/// What the firedrill process `pid` left on the daemon. Unlike `leftovers`, blind to other
/// runs going on at the same time (another test binary, a developer's run).
pub fn leftovers_of(pid: u32) -> String {
    let mut found = String::new();
    for what in [
        vec!["ps", "-a"],
        vec!["volume", "ls"],
        vec!["network", "ls"],
    ] {
        let mut args = what.clone();
        let label = format!("label=firedrill.pid={pid}");
        args.extend([
            "-q",
            "--filter",
            "label=firedrill.managed=true",
            "--filter",
            &label,
        ]);
        let out = Command::new("docker")
            .args(&args)
            .output()
            .expect("docker CLI");
        found.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    found
}
