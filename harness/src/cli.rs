//! The `firedrill` command line: parses arguments, wires the library together, and maps
//! every outcome to a documented exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::cluster;
use crate::console::Console;
use crate::events;
use crate::images::{self, Recipes};
use crate::jobs;
use crate::partition::Partition;
use crate::run::{self, RunError, RunOptions};
use firedrill_report::Artifacts;
use firedrill_spec::plan::Plan;
use firedrill_spec::yaml::Diagnostic;
use firedrill_types::summary::{Summary, Verdict};

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
    /// Run scenarios (files, or directories of *.yaml files and runbooks), one after another (--jobs: several at once).
    #[command(
        after_help = "Examples:\n  firedrill run scenarios/rolling-upgrade.md --seed 7 --out /tmp/drill\n  firedrill run scenarios/rolling-upgrade.md --rollback-at 4   drill the Rollback section\n  firedrill run scenarios/ --partition 2/3 --out reports/shard-2   one CI shard of three"
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
        /// Only the share of shard K of N that `run --partition K/N` would run.
        #[arg(long, value_name = "K/N")]
        partition: Option<Partition>,
    },
    /// Merge the artifacts of several runs (CI shards) into one junit.xml, one index
    /// (summary.json, schema firedrill.index/v1) and index.md / index.html.
    #[command(
        after_help = "Exit codes: 0 every run passed · 1 a run failed · 2 a directory holds no run, or a summary.json cannot be read.\n\nExample:\n  firedrill merge reports/shard-1 reports/shard-2 reports/shard-3 --out reports"
    )]
    Merge {
        /// Artifact directories: a run's, or any directory with runs below it.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged files go (created if missing); links to the runs' reports are
        /// relative to it.
        #[arg(long)]
        out: PathBuf,
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
    /// Run only shard K of N: the scenarios whose name hashes to K (FNV-1a mod N); every
    /// scenario is in exactly one shard. Merge the shards' artifacts with `firedrill merge`.
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
    /// Run up to N scenarios at once, each in a child process (default 1: one after
    /// another in this process). Concurrent clusters share the CPU and disturb each other's
    /// latency SLOs: see docs/scaling.md.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
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
        Command::List { paths, partition } => list(&paths, partition),
        Command::Merge { dirs, out } => merge(&dirs, &out),
        Command::Run(args) => run_all(args, cli.verbose).await,
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

fn list(paths: &[PathBuf], partition: Option<Partition>) -> u8 {
    match load_plans(paths) {
        Ok(plans) => {
            let Some(plans) = shard(plans, partition) else {
                return exit::PASS;
            };
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

/// The plans of shard K/N (all of them without a partition); `None`, after saying so, when
/// the shard has none.
fn shard(plans: Vec<Plan>, partition: Option<Partition>) -> Option<Vec<Plan>> {
    let Some(part) = partition else {
        return Some(plans);
    };
    let found = plans.len();
    let mine: Vec<Plan> = plans
        .into_iter()
        .filter(|p| part.contains(&p.name))
        .collect();
    if mine.is_empty() {
        println!(
            "shard {part}: none of the {found} scenarios found falls in this shard; nothing to run"
        );
        return None;
    }
    Some(mine)
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

async fn run_all(args: RunArgs, verbose: u8) -> u8 {
    let RunArgs {
        paths,
        out,
        seed,
        keep,
        rollback_at,
        bless,
        partition,
        jobs,
    } = args;
    let plans = match load_plans(&paths) {
        Ok(p) => p,
        Err(problems) => return report_invalid(&problems),
    };
    // A shard of several scenarios lays its artifacts out as the whole suite would, one
    // subdirectory per scenario, even when its share is one.
    let several = plans.len() > 1;
    let Some(plans) = shard(plans, partition) else {
        return exit::PASS;
    };
    if let Some(part) = partition {
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        println!("shard {part}: {}", names.join(", "));
    }
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
    let out_dir = |plan: &Plan| {
        out.as_ref().map(|o| {
            if several {
                o.join(&plan.name)
            } else {
                o.clone()
            }
        })
    };
    if jobs > 1 && plans.len() > 1 {
        let jobs = jobs.min(plans.len() as u32);
        let children = plans
            .iter()
            .map(|plan| jobs::ChildRun {
                name: plan.name.clone(),
                args: jobs::ChildArgs {
                    file: &plan.file,
                    out: out_dir(plan),
                    seed,
                    keep,
                    rollback_at: rollback_at.as_deref(),
                    bless,
                    verbose,
                }
                .to_args(),
            })
            .collect();
        println!("running {} scenarios, {jobs} at a time", plans.len());
        let mut code = jobs::run_children(children, jobs, interrupt.clone()).await;
        if *interrupt.borrow() {
            code = code.max(exit::INTERRUPTED);
        }
        println!("{} scenarios run; exit code {code}", plans.len());
        return code;
    }
    let jobs = jobs::inherited();
    let mut code = exit::PASS;
    for plan in &plans {
        if *interrupt.borrow() {
            break;
        }
        let opts = RunOptions {
            out_dir: out_dir(plan),
            seed,
            keep,
            rollback_at: rollback_at.clone(),
            jobs,
        };
        let result = run_and_report(plan, &opts, &docker, interrupt.clone()).await;
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

/// One scenario: run it, judge its facts, and hand the events and the summary to the
/// reporters.
async fn run_and_report(
    plan: &Plan,
    opts: &RunOptions,
    docker: &bollard::Docker,
    interrupt: watch::Receiver<bool>,
) -> Result<Summary, RunError> {
    let mut reporters: events::Reporters =
        firedrill_report::artifact_writers(crate::runbook::report_page(plan));
    // Last: its verdict line says the artifacts are written.
    reporters.push(Box::new(Console::new()));
    let (sink, subscribers) = events::subscribe(reporters);
    let ran = run::run(plan, opts, docker, &sink, interrupt).await;
    drop(sink);
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            subscribers.close().await;
            return Err(e);
        }
    };
    let summary = firedrill_judge::summarize(plan, &ran.facts);
    let artifacts = Artifacts {
        dir: &ran.out_dir,
        ops: &ran.facts.ops,
        panels: ran
            .facts
            .monitoring
            .as_ref()
            .map_or(&[], |m| m.panel_series.as_slice()),
    };
    subscribers
        .finish(&summary, &artifacts)
        .await
        .map_err(|e| RunError::Artifacts {
            path: ran.out_dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(summary)
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

/// The run directories at or below `dir`: those holding a run's summary.json (an index's,
/// as `merge` writes, is not a run). A run's own subdirectories are not searched.
fn run_dirs(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let summary = dir.join(firedrill_report::SUMMARY_FILE);
    if summary.is_file() {
        let schema = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("schema")?.as_str().map(String::from));
        if schema.as_deref() != Some(firedrill_types::index::SCHEMA) {
            found.push(dir.to_path_buf());
            return;
        }
    }
    if depth == 0 {
        return;
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    for d in subdirs {
        run_dirs(&d, depth - 1, found);
    }
}

/// `firedrill merge`: reads the runs' summaries, writes what `firedrill_report::merge` makes.
fn merge(dirs: &[PathBuf], out: &Path) -> u8 {
    use firedrill_report::merge;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for d in dirs {
        let before = found.len();
        // A shard's directory, a CI download of several, or one run's.
        run_dirs(d, 4, &mut found);
        if !d.is_dir() {
            problems.push(Diagnostic::whole_file(
                d,
                "does not exist or is not a directory: name the --out directory of a run or shard",
            ));
        } else if found.len() == before {
            problems.push(Diagnostic::whole_file(
                d,
                "holds no run: no summary.json in it or below it (is it a shard's --out directory?)",
            ));
        }
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        return failed(
            exit::INFRASTRUCTURE,
            format!("cannot create {}: {e}", out.display()),
        );
    }
    let base = match std::fs::canonicalize(out) {
        Ok(b) => b,
        Err(e) => return failed(exit::INFRASTRUCTURE, format!("{}: {e}", out.display())),
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut runs = Vec::new();
    for dir in found {
        let Ok(canonical) = std::fs::canonicalize(&dir) else {
            continue;
        };
        if !seen.insert(canonical.clone()) {
            continue; // named twice
        }
        let file = dir.join(firedrill_report::SUMMARY_FILE);
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                serde_json::from_str::<firedrill_types::summary::Summary>(&t)
                    .map_err(|e| format!("not a firedrill.summary/v1 summary ({e})"))
            });
        match parsed {
            Ok(summary) => runs.push(merge::Run {
                summary,
                path: merge::relative_path(&base, &canonical),
            }),
            Err(e) => problems.push(Diagnostic::whole_file(&file, e)),
        }
    }
    if !problems.is_empty() {
        for d in &problems {
            eprintln!("error: {d}");
        }
        eprintln!("nothing was merged");
        return exit::INVALID_INPUT;
    }
    let sources: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let merged = match merge::merge(&runs, &sources, &now) {
        Ok(m) => m,
        Err(e) => return failed(exit::INTERNAL, e),
    };
    for (name, text) in &merged.files {
        let path = out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return failed(
                exit::INFRASTRUCTURE,
                format!("cannot write {}: {e}", path.display()),
            );
        }
    }
    let index = &merged.index;
    for e in &index.scenarios {
        let verdict = if e.verdict == Verdict::Pass {
            "PASS"
        } else {
            "FAIL"
        };
        println!(
            "{verdict}  {:<28} {:>7.1}s  {}",
            e.suite,
            e.duration_ms as f64 / 1000.0,
            if e.path.is_empty() { "." } else { &e.path }
        );
    }
    println!(
        "merged {} runs from {} directories into {}: {}",
        index.scenarios.len(),
        dirs.len(),
        out.display(),
        merged
            .files
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if index.verdict == Verdict::Pass {
        exit::PASS
    } else {
        exit::VERDICT_FAILED
    }
}
