//! `firedrill run --jobs N`: up to N scenarios at once, each in a child process.
//!
//! goose keeps one attack per process, so concurrent scenarios cannot share one: the
//! parent starts `firedrill run <file> --out <dir>/<name> …` for each (this same binary),
//! prefixes every line a child prints with the scenario's name, forwards Ctrl-C and SIGTERM
//! as SIGINT (each child then removes its cluster, as a single run does) and exits with the
//! worst code. Each child records the setting (`FIREDRILL_JOBS`) in its summary's timings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{watch, Semaphore};

use firedrill_types::exit;

/// The variable a child reads the `--jobs` setting from, for its summary.
pub const JOBS_ENV: &str = "FIREDRILL_JOBS";

/// One scenario to run in a child.
#[derive(Debug, Clone)]
pub struct ChildRun {
    /// The scenario's name: the prefix of its lines.
    pub name: String,
    /// The arguments after the program: `run <file> --out … --seed …`.
    pub args: Vec<OsString>,
}

/// The arguments of a child's `firedrill run` for one scenario file.
pub struct ChildArgs<'a> {
    pub file: &'a std::path::Path,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub keep: bool,
    pub rollback_at: Option<&'a str>,
    pub bless: bool,
    pub verbose: u8,
}

impl ChildArgs<'_> {
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["run".into(), self.file.into()];
        if let Some(o) = &self.out {
            a.extend(["--out".into(), o.into()]);
        }
        if let Some(s) = self.seed {
            a.extend(["--seed".into(), s.to_string().into()]);
        }
        if self.keep {
            a.push("--keep".into());
        }
        if let Some(n) = self.rollback_at {
            a.extend(["--rollback-at".into(), n.into()]);
        }
        if self.bless {
            a.push("--bless".into());
        }
        if self.verbose > 0 {
            a.push(format!("-{}", "v".repeat(self.verbose as usize)).into());
        }
        a
    }
}

/// The `--jobs` setting this process runs under: `FIREDRILL_JOBS` (set by a parent), else 1.
pub fn inherited() -> u32 {
    std::env::var(JOBS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Runs the children, at most `jobs` at once, and returns the worst exit code. After an
/// interrupt no child starts and the running ones get SIGINT.
pub async fn run_children(
    children: Vec<ChildRun>,
    jobs: u32,
    interrupt: watch::Receiver<bool>,
) -> u8 {
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find firedrill's own executable to run the scenarios in: {e}");
            return exit::INTERNAL;
        }
    };
    let width = children.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let slots = Arc::new(Semaphore::new(jobs.max(1) as usize));
    let running: Arc<Mutex<Vec<u32>>> = Arc::default();
    let forward = {
        let (running, mut rx) = (running.clone(), interrupt.clone());
        tokio::spawn(async move {
            if rx.wait_for(|v| *v).await.is_ok() {
                for pid in running.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    interrupt_child(*pid);
                }
            }
        })
    };
    let tasks: Vec<_> = children
        .into_iter()
        .map(|c| {
            let (slots, running, interrupt) = (slots.clone(), running.clone(), interrupt.clone());
            let program = program.clone();
            tokio::spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return exit::INTERNAL;
                };
                if *interrupt.borrow() {
                    return exit::INTERRUPTED;
                }
                let prefix = format!("[{:<width$}] ", c.name);
                run_child(&program, &c, jobs, &prefix, &running, &interrupt).await
            })
        })
        .collect();
    let mut code = exit::PASS;
    for t in tasks {
        code = code.max(t.await.unwrap_or(exit::INTERNAL));
    }
    forward.abort();
    code
}

async fn run_child(
    program: &std::path::Path,
    c: &ChildRun,
    jobs: u32,
    prefix: &str,
    running: &Mutex<Vec<u32>>,
    interrupt: &watch::Receiver<bool>,
) -> u8 {
    let spawned = tokio::process::Command::new(program)
        .args(&c.args)
        .env(JOBS_ENV, jobs.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn();
    let mut child = match spawned {
        Ok(ch) => ch,
        Err(e) => {
            eprintln!("{prefix}error: cannot start {}: {e}", program.display());
            return exit::INTERNAL;
        }
    };
    let pid = child.id();
    if let Some(pid) = pid {
        running.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        // An interrupt that came between the check and the spawn.
        if *interrupt.borrow() {
            interrupt_child(pid);
        }
    }
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(prefixed(s, prefix.to_string(), false)));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(prefixed(s, prefix.to_string(), true)));
    let status = child.wait().await;
    for t in [out, err].into_iter().flatten() {
        let _ = t.await;
    }
    if let Some(pid) = pid {
        running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != pid);
    }
    let code = match status {
        Ok(s) => match s.code() {
            Some(code) => u8::try_from(code).unwrap_or(exit::INTERNAL),
            // Killed by a signal: interrupted if we were, else something went badly wrong.
            None if *interrupt.borrow() => exit::INTERRUPTED,
            None => exit::INTERNAL,
        },
        Err(e) => {
            eprintln!("{prefix}error: lost the child process: {e}");
            exit::INTERNAL
        }
    };
    println!("{prefix}exit code {code}");
    code
}

/// Copies a child's stream line by line, each line behind the scenario's name.
async fn prefixed(stream: impl AsyncRead + Unpin, prefix: String, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{prefix}{line}");
        } else {
            println!("{prefix}{line}");
        }
    }
}

/// SIGINT, as Ctrl-C would send it: the child stops its steps and removes its cluster.
fn interrupt_child(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (it is removed
    // from `running` only after `wait` returns) and a valid signal number; no memory is shared.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_the_run_options_it_needs() {
        let args = ChildArgs {
            file: std::path::Path::new("scenarios/rolling-upgrade.yaml"),
            out: Some(PathBuf::from("out/rolling-upgrade")),
            seed: Some(7),
            keep: true,
            rollback_at: Some("3"),
            bless: false,
            verbose: 2,
        }
        .to_args();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "run",
                "scenarios/rolling-upgrade.yaml",
                "--out",
                "out/rolling-upgrade",
                "--seed",
                "7",
                "--keep",
                "--rollback-at",
                "3",
                "-vv"
            ]
        );
        let bare = ChildArgs {
            file: std::path::Path::new("a.yaml"),
            out: None,
            seed: None,
            keep: false,
            rollback_at: None,
            bless: true,
            verbose: 0,
        }
        .to_args();
        assert_eq!(bare, ["run", "a.yaml", "--bless"].map(OsString::from));
    }
}
