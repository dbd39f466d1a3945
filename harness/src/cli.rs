//! The `firedrill` command line: parses arguments, wires the library together, and maps
//! every outcome to a documented exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::cluster;
use crate::images::{self, Recipes};
use crate::run::{self, RunError, RunOptions};
use firedrill_spec::plan::Plan;
use firedrill_spec::yaml::Diagnostic;
use firedrill_types::summary::Verdict;

pub use firedrill_types::exit;

#[derive(Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Proves operator runbooks work: runs a procedure against a real cluster under load and judges it.",
    after_help = "Exit codes: 0 all verdicts passed · 1 a verdict failed · 2 invalid input (nothing started) · 3 infrastructure problem · 101 internal error (a bug in firedrill) · 130 interrupted.\n\nExamples:\n  firedrill run scenarios/                      every scenario in the directory\n  firedrill run scenarios/rolling-upgrade.yaml --seed 42 --keep\n  firedrill validate scenarios/ scenarios/sabotage/\n  firedrill clean --run 6d7dc96b"
)]
pub struct Cli {
    /// More detail on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (files, or directories of *.yaml files), one after another.
    #[command(
        after_help = "Example:\n  firedrill run scenarios/rolling-upgrade.yaml --seed 7 --out /tmp/drill"
    )]
    Run(RunArgs),
    /// Check scenario files (and the compose files and profiles they use) without starting anything.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List the scenarios found, with their descriptions.
    List {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
    /// Re-judge an archived history offline: per-key linearizability and the read check.
    #[command(
        after_help = "Exit codes: 0 every check passed · 1 a check failed (an unknown answer too, unless --allow-unknown) · 2 the history cannot be read (file:line).\n\nExample:\n  firedrill check reports/rolling-upgrade/20261123T031758Z"
    )]
    Check {
        /// A run's artifacts directory, or a history.jsonl file (docs/artifacts.md).
        path: PathBuf,
        /// The search's budget per key before its answer is unknown.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        budget: std::time::Duration,
        /// Let keys the search could not decide pass.
        #[arg(long)]
        allow_unknown: bool,
    },
    /// Build images offline from their recipes.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Remove every container, network and volume firedrill created, including kept clusters
    /// and what killed runs left behind; with --run, only that run's.
    Clean {
        /// The run id a run prints (and `--keep` names): remove only what that run created.
        #[arg(long)]
        run: Option<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario files (*.yaml) and runbooks (*.md), or directories of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Artifacts directory (default: reports/<scenario>/<timestamp>/); with several
    /// scenarios, one subdirectory per scenario.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed for the load's operation sequence; printed and stored in every report.
    #[arg(long)]
    seed: Option<u64>,
    /// Leave the cluster running afterwards for a post-mortem (`firedrill clean` removes it).
    #[arg(long)]
    keep: bool,
    /// Drill a runbook's Rollback section: run the procedure up to step N, then the
    /// rollback; passes only if the rollback passes and the cluster ends healthy.
    #[arg(long, value_name = "N")]
    rollback_at: Option<String>,
    /// Write this run's real output into each runbook's output blocks (wildcards kept
    /// where they still match) and its results region.
    #[arg(long)]
    bless: bool,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build every image of the recipes file that is missing (all of them with --force).
    Build {
        #[arg(long, default_value = "compose/images/recipes.yaml")]
        recipes: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

pub async fn main(cli: Cli) -> ExitCode {
    init_tracing(cli.verbose);
    let code = match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::List { paths } => list(&paths),
        Command::Run(args) => run_all(args).await,
        Command::Images {
            command: ImagesCommand::Build { recipes, force },
        } => build_images(&recipes, force).await,
        Command::Clean { run } => clean(run.as_deref()).await,
        Command::Check {
            path,
            budget,
            allow_unknown,
        } => check_history(&path, budget, allow_unknown),
    };
    ExitCode::from(code)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,goose=error",
        1 => "info,goose=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Installed before goose runs, so goose does not install a logger of its own.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// Files named on the command line, with directories expanded to their *.yaml files.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| {
                            f.is_file()
                                && (f.extension().is_some_and(|x| x == "yaml" || x == "yml")
                                    || is_runbook_page(f))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if found.is_empty() {
                problems.push(Diagnostic::whole_file(
                    p,
                    "holds no scenario files (*.yaml, *.yml) or runbooks (*.md): name one, or a directory that holds some",
                ));
            }
            found.sort();
            files.append(&mut found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            problems.push(Diagnostic::whole_file(
                p,
                "does not exist: check the path (a relative path starts from the current directory)",
            ));
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// A Markdown file of a directory is a runbook when it starts with front matter; a README
/// or notes beside the scenarios are not.
fn is_runbook_page(f: &Path) -> bool {
    firedrill_spec::runbook::is_runbook(f)
        && std::fs::read_to_string(f).is_ok_and(|t| t.starts_with("---"))
}

fn load_plans(paths: &[PathBuf]) -> Result<Vec<Plan>, Vec<Diagnostic>> {
    let files = scenario_files(paths)?;
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match Plan::load(&f) {
            Ok(p) => plans.push(p),
            Err(mut d) => problems.append(&mut d),
        }
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(problems)
    }
}

fn report_invalid(problems: &[Diagnostic]) -> u8 {
    for d in problems {
        eprintln!("error: {d}");
    }
    eprintln!(
        "{} problem{} found; nothing was started. Fix the files and check them with `firedrill validate`.",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    exit::INVALID_INPUT
}

fn validate(paths: &[PathBuf]) -> u8 {
    match load_plans(paths) {
        Ok(plans) => {
            for p in &plans {
                println!(
                    "{}: ok ({} steps, {})",
                    p.file.display(),
                    p.steps.len(),
                    p.name
                );
            }
            exit::PASS
        }
        Err(problems) => report_invalid(&problems),
    }
}

fn list(paths: &[PathBuf]) -> u8 {
    match load_plans(paths) {
        Ok(plans) => {
            for p in &plans {
                println!(
                    "{:<28} {}\n{:<28} {}",
                    p.name,
                    p.description,
                    "",
                    p.file.display()
                );
            }
            exit::PASS
        }
        Err(problems) => report_invalid(&problems),
    }
}

fn infrastructure(message: impl std::fmt::Display) -> u8 {
    failed(exit::INFRASTRUCTURE, message)
}

/// Prints why a command stopped and returns its exit code.
fn failed(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// The recipes that build a topology's images live beside its compose file.
fn recipes_for(compose_file: &Path) -> PathBuf {
    compose_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("images/recipes.yaml")
}

async fn ensure_images(docker: &bollard::Docker, plans: &[Plan]) -> Result<(), (u8, String)> {
    let mut by_recipes: std::collections::BTreeMap<PathBuf, Vec<String>> = Default::default();
    for p in plans {
        by_recipes
            .entry(recipes_for(&p.compose.file))
            .or_default()
            .extend(p.images());
    }
    for (path, mut wanted) in by_recipes {
        wanted.sort();
        wanted.dedup();
        if !path.is_file() {
            // No recipes beside the compose file: the images must already be there.
            for tag in &wanted {
                if docker.inspect_image(tag).await.is_err() {
                    return Err((exit::INFRASTRUCTURE, format!(
                        "image {tag} is not on the Docker engine and there is no recipes file at {} to build it: add one, or build or load the image yourself",
                        path.display()
                    )));
                }
            }
            continue;
        }
        let recipes = Recipes::load(&path).map_err(|e| (e.exit_code(), e.to_string()))?;
        let progress = |line: &str| println!("images: {line}");
        images::ensure(docker, &recipes, &wanted, false, &progress)
            .await
            .map_err(|e| (e.exit_code(), e.to_string()))?;
    }
    Ok(())
}

async fn run_all(args: RunArgs) -> u8 {
    let RunArgs {
        paths,
        out,
        seed,
        keep,
        rollback_at,
        bless,
    } = args;
    let plans = match load_plans(&paths) {
        Ok(p) => p,
        Err(problems) => return report_invalid(&problems),
    };
    if let Some(n) = &rollback_at {
        let problems: Vec<Diagnostic> = plans
            .iter()
            .filter_map(|p| crate::runbook::rollback_problem(p, n))
            .collect();
        if !problems.is_empty() {
            return report_invalid(&problems);
        }
    }
    let interrupt = listen_for_signals();
    let docker = match cluster::connect().await {
        Ok(d) => d,
        Err(e) => return infrastructure(e),
    };
    if let Err((code, message)) = ensure_images(&docker, &plans).await {
        return failed(code, message);
    }
    let several = plans.len() > 1;
    let mut code = exit::PASS;
    for plan in &plans {
        if *interrupt.borrow() {
            break;
        }
        let opts = RunOptions {
            out_dir: out.as_ref().map(|o| {
                if several {
                    o.join(&plan.name)
                } else {
                    o.clone()
                }
            }),
            seed,
            keep,
            rollback_at: rollback_at.clone(),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(crate::console::print_events(rx));
        let result = run::run(plan, &opts, &docker, &tx, interrupt.clone()).await;
        drop(tx);
        let _ = printer.await;
        if let (true, Ok(summary)) = (bless, &result) {
            match crate::runbook::bless(plan, summary) {
                Ok(true) => println!("blessed {}", plan.file.display()),
                Ok(false) => {}
                Err(e) => eprintln!("warning: cannot bless {}: {e}", plan.file.display()),
            }
        }
        let this = match result {
            Ok(s) if s.verdict == Verdict::Pass => exit::PASS,
            Ok(_) => exit::VERDICT_FAILED,
            Err(RunError::Interrupted) => failed(exit::INTERRUPTED, RunError::Interrupted),
            Err(e) => failed(e.exit_code(), format!("{}: {e}", plan.name)),
        };
        code = code.max(this);
        if several {
            println!();
        }
    }
    if *interrupt.borrow() {
        code = code.max(exit::INTERRUPTED);
    }
    if several {
        println!("{} scenarios run; exit code {code}", plans.len());
    }
    code
}

/// Ctrl-C and SIGTERM set the flag; the run then stops its steps and removes the cluster.
/// Installed through `ctrlc` before goose starts: goose installs its own handler (which
/// exits the process on a second Ctrl-C, leaking the cluster) only when none exists.
fn listen_for_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let installed = ctrlc::set_handler(move || {
        if !*tx.borrow() {
            eprintln!("interrupted: stopping and removing the cluster…");
        }
        let _ = tx.send(true);
    });
    if let Err(e) = installed {
        tracing::warn!("cannot catch Ctrl-C ({e}); an interrupted run may leave containers for `firedrill clean`");
    }
    rx
}

async fn build_images(recipes: &Path, force: bool) -> u8 {
    let recipes = match Recipes::load(recipes) {
        Ok(r) => r,
        Err(e) => return failed(e.exit_code(), e),
    };
    let docker = match cluster::connect().await {
        Ok(d) => d,
        Err(e) => return infrastructure(e),
    };
    let wanted: Vec<String> = recipes.tags().map(String::from).collect();
    let progress = |line: &str| println!("images: {line}");
    match images::ensure(&docker, &recipes, &wanted, force, &progress).await {
        Ok(built) => {
            for b in built {
                println!("built {} in {:.1}s", b.tag, b.seconds);
            }
            exit::PASS
        }
        Err(e) => failed(e.exit_code(), e),
    }
}

fn check_history(path: &Path, budget: std::time::Duration, allow_unknown: bool) -> u8 {
    let r = match crate::rejudge::rejudge(path, budget) {
        Ok(r) => r,
        Err(d) => return report_invalid(&[d]),
    };
    let l = &r.linearizability;
    println!("{}: {} operations", r.history.display(), r.ops);
    println!(
        "linearizable: {} ({} keys: {} linearizable, {} violated, {} unknown)",
        serde_json::to_value(l.linearizable)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        l.keys_checked,
        l.keys_linearizable,
        l.keys_violated,
        l.keys_unknown
    );
    for v in &l.violations {
        println!("  key {}: {}", v.key, v.explanation);
    }
    for u in &l.unknown {
        println!(
            "  key {}: unknown after {} ms ({} states, {} of {} operations placed)",
            u.key, u.spent_ms, u.states_explored, u.linearized_max, u.ops
        );
    }
    println!(
        "reads: {} checked, {} stale, {} from the future, {} of values never written",
        r.reads.checked, r.reads.stale, r.reads.future, r.reads.phantom
    );
    for e in &r.reads.examples {
        println!("  {e}");
    }
    if r.pass(allow_unknown) {
        println!("verdict: PASS");
        exit::PASS
    } else {
        println!("verdict: FAIL");
        exit::VERDICT_FAILED
    }
}

async fn clean(run: Option<&str>) -> u8 {
    let docker = match cluster::connect().await {
        Ok(d) => d,
        Err(e) => return infrastructure(e),
    };
    match cluster::reap(&docker, run).await {
        Ok(r) => {
            println!(
                "removed {} containers, {} volumes, {} networks",
                r.containers, r.volumes, r.networks
            );
            exit::PASS
        }
        Err(e) => infrastructure(e),
    }
}
