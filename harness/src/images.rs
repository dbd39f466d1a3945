//! Container images built offline from a recipes file.
//!
//! No registry is reachable, so every image a compose file names must be built on the machine:
//! either a root file system made by debootstrap (the machine's, or one [`crate::debootstrap`]
//! fetches) and imported (`docker import`), or a Dockerfile context built `FROM` such an image.
//! This module knows recipes and the Docker engine, nothing about what the images contain.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bollard::{body_full, body_try_stream, Docker};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::io::AsyncReadExt;

use crate::debootstrap::{Debootstrap, DebootstrapError};

/// Label put on every image firedrill builds, so they can be told apart from the user's.
pub const MANAGED_LABEL: &str = "firedrill.managed";

/// Names the Debian mirror for debootstrap, before (or without) the apt configuration.
pub const MIRROR_VARIABLE: &str = "FIREDRILL_DEBIAN_MIRROR";

/// An imported root file system has no environment at all; shells and `docker exec` need PATH.
const ROOTFS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where debootstrap unpacks: root-owned files of a few hundred MB, too big for a tmpfs /tmp.
const ROOTFS_WORK_DIR: &str = "/var/tmp";

/// Lines of build or command output kept for error messages.
const TAIL_LINES: usize = 20;
/// Terminal colour and cursor sequences in a build's output.
static ANSI: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("a valid pattern")
});

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image recipes {file}: {source}")]
    ReadRecipes { file: PathBuf, source: io::Error },
    #[error("invalid image recipes {file}:{line}:{column}: {message}")]
    ParseRecipes {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("invalid image recipe {tag} at {file}:{line}:{column}: {problem}")]
    InvalidRecipe {
        file: PathBuf,
        line: u64,
        column: u64,
        tag: String,
        problem: String,
    },
    #[error("image {tag} is not on the Docker engine and no recipe in {file} builds it: add a recipe, or build or load the image yourself")]
    NoRecipe { tag: String, file: PathBuf },
    #[error("image {base}, which {dockerfile} builds FROM, is not on the Docker engine and no recipe in {file} builds it: add a recipe, or build or load the image yourself")]
    NoBaseRecipe {
        base: String,
        dockerfile: PathBuf,
        file: PathBuf,
    },
    #[error("the recipes in {file} build {tag} FROM itself (directly or through other recipes): change a Dockerfile's FROM to break the cycle")]
    Cycle { tag: String, file: PathBuf },
    #[error("cannot read Dockerfile {path}: {source}")]
    ReadDockerfile { path: PathBuf, source: io::Error },
    #[error("cannot ask the Docker engine about image {tag}: {source}")]
    Inspect {
        tag: String,
        source: bollard::errors::Error,
    },
    #[error("building {tag}: {source}")]
    Debootstrap {
        tag: String,
        source: DebootstrapError,
    },
    #[error("building {tag} with debootstrap needs root: run as root, or build the images once as root with `firedrill images build`")]
    NotRoot { tag: String },
    #[error("no Debian mirror for suite {suite}: set {variable} to the URL of a Debian mirror (http://…/debian), or add an apt source for {suite} (there is none in {searched})", variable = MIRROR_VARIABLE)]
    NoMirror { suite: String, searched: String },
    #[error("{variable}={value} names no mirror debootstrap can use: give an http://, https:// or file:/ URL", variable = MIRROR_VARIABLE)]
    BadMirror { value: String },
    #[error("debootstrap for {tag} failed ({status}); its output ends with:\n{output_tail}")]
    DebootstrapFailed {
        tag: String,
        status: String,
        output_tail: String,
    },
    #[error("cannot run the prepare command `{command}` of {tag} in {dir}: {source}")]
    PrepareSpawn {
        tag: String,
        command: String,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("the prepare command `{command}` of {tag} failed ({status}); its stderr ends with:\n{stderr_tail}")]
    PrepareFailed {
        tag: String,
        command: String,
        status: String,
        stderr_tail: String,
    },
    #[error("docker build of {tag} failed: {message}; the build log ends with:\n{log_tail}")]
    BuildFailed {
        tag: String,
        message: String,
        log_tail: String,
    },
    #[error("docker import of {tag} failed: {source}")]
    ImportFailed {
        tag: String,
        source: bollard::errors::Error,
    },
    #[error("failed to {action}: {source}")]
    Io { action: String, source: io::Error },
}

impl ImageError {
    /// A mistake in the user's recipes is invalid input; everything else is the machine's.
    pub fn exit_code(&self) -> u8 {
        use firedrill_types::exit;
        match self {
            ImageError::ParseRecipes { .. }
            | ImageError::InvalidRecipe { .. }
            | ImageError::NoBaseRecipe { .. }
            | ImageError::Cycle { .. }
            | ImageError::ReadDockerfile { .. }
            | ImageError::ReadRecipes { .. } => exit::INVALID_INPUT,
            ImageError::NoRecipe { .. }
            | ImageError::Inspect { .. }
            | ImageError::Debootstrap { .. }
            | ImageError::NotRoot { .. }
            | ImageError::NoMirror { .. }
            | ImageError::BadMirror { .. }
            | ImageError::DebootstrapFailed { .. }
            | ImageError::PrepareSpawn { .. }
            | ImageError::PrepareFailed { .. }
            | ImageError::BuildFailed { .. }
            | ImageError::ImportFailed { .. }
            | ImageError::Io { .. } => exit::INFRASTRUCTURE,
        }
    }
}

/// The recipes of one file, in file order.
#[derive(Debug, Clone)]
pub struct Recipes {
    file: PathBuf,
    recipes: Vec<Recipe>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub tag: String,
    pub source: RecipeSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecipeSource {
    /// A Debian root file system from debootstrap, imported as an image.
    Debootstrap {
        suite: String,
        /// debootstrap's `--variant`; `None` uses debootstrap's default.
        variant: Option<String>,
        include: Vec<String>,
    },
    /// A Dockerfile build; `context` is resolved against the recipes file's directory.
    Dockerfile {
        context: PathBuf,
        /// Command run in `context` before the build (argv, no shell).
        prepare: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub tag: String,
    pub seconds: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipesFile {
    images: Vec<RecipeEntry>,
}

// Flat rather than an enum: `context` and `prepare` are sibling keys, and serde's internally
// tagged or untagged enums would lose the precise error locations.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeEntry {
    tag: Spanned<String>,
    #[serde(default)]
    debootstrap: Option<DebootstrapEntry>,
    #[serde(default)]
    context: Option<PathBuf>,
    #[serde(default)]
    prepare: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DebootstrapEntry {
    suite: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    include: Vec<String>,
}

impl Recipes {
    /// Parses the recipes file. Context paths are relative to the file.
    pub fn load(path: &Path) -> Result<Recipes, ImageError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImageError::ReadRecipes {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Recipes, ImageError> {
        let parsed: RecipesFile = serde_saphyr::from_str(text).map_err(|error| {
            let (line, column) = error
                .location()
                .map_or((0, 0), |at| (at.line(), at.column()));
            let message = error.without_snippet().to_string();
            // The location leads the message already; drop serde-saphyr's trailing copy.
            let suffix = format!(" at line {line}, column {column}");
            let message = message
                .strip_suffix(&suffix)
                .unwrap_or(&message)
                .to_string();
            ImageError::ParseRecipes {
                file: path.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut seen = HashSet::new();
        let mut recipes = Vec::with_capacity(parsed.images.len());
        for entry in parsed.images {
            let at = entry.tag.referenced;
            let tag = entry.tag.value;
            let invalid = |problem: &str| ImageError::InvalidRecipe {
                file: path.to_path_buf(),
                line: at.line(),
                column: at.column(),
                tag: tag.clone(),
                problem: problem.to_string(),
            };
            // Presence is checked by exact name, so `repo` must not silently mean `repo:latest`.
            let name = tag.rsplit('/').next().unwrap_or(&tag);
            if !name.contains(':') || name.ends_with(':') || name.starts_with(':') {
                return Err(invalid("the tag must be written in full as repository:tag"));
            }
            if !seen.insert(tag.clone()) {
                return Err(invalid("another recipe above builds the same tag"));
            }
            let source = match (entry.debootstrap, entry.context, entry.prepare) {
                (Some(_), _, Some(_)) => {
                    return Err(invalid("`prepare` only goes with a Dockerfile `context`"))
                }
                (Some(_), Some(_), None) => {
                    return Err(invalid("give either `debootstrap` or `context`, not both"))
                }
                (None, None, _) => {
                    return Err(invalid("say how to build it: `debootstrap` or `context`"))
                }
                (Some(d), None, None) => {
                    if d.suite.is_empty() {
                        return Err(invalid("`debootstrap.suite` is empty"));
                    }
                    RecipeSource::Debootstrap {
                        suite: d.suite,
                        variant: d.variant,
                        include: d.include,
                    }
                }
                (None, Some(context), prepare) => {
                    if prepare.as_ref().is_some_and(|argv| argv.is_empty()) {
                        return Err(invalid("`prepare` is empty: give a command, or drop it"));
                    }
                    RecipeSource::Dockerfile {
                        context: base.join(context),
                        prepare,
                    }
                }
            };
            recipes.push(Recipe { tag, source });
        }
        Ok(Recipes {
            file: path.to_path_buf(),
            recipes,
        })
    }

    pub fn find(&self, tag: &str) -> Option<&Recipe> {
        self.recipes.iter().find(|recipe| recipe.tag == tag)
    }

    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.recipes.iter().map(|recipe| recipe.tag.as_str())
    }

    /// How a recipe builds, for progress lines: paths relative to the recipes file.
    fn describe(&self, recipe: &Recipe) -> String {
        match &recipe.source {
            RecipeSource::Debootstrap {
                suite,
                variant,
                include,
            } => {
                let variant = variant.as_deref().unwrap_or("default variant");
                format!(
                    "debootstrap {suite}, {variant}, {} extra packages",
                    include.len()
                )
            }
            RecipeSource::Dockerfile { context, .. } => {
                let base = self.file.parent().unwrap_or(Path::new(""));
                let shown = context.strip_prefix(base).unwrap_or(context);
                format!("Dockerfile {}", shown.display())
            }
        }
    }
}

/// Makes sure every tag in `wanted` exists on the engine, building missing ones (and, first, the
/// missing images their Dockerfile's FROM names, when a recipe builds those). With `force`,
/// rebuilds the wanted tags. Returns what it built, with how long each took.
pub async fn ensure(
    docker: &Docker,
    recipes: &Recipes,
    wanted: &[String],
    force: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<Built>, ImageError> {
    let order = plan(docker, recipes, wanted, force, progress).await?;
    let mut built = Vec::with_capacity(order.len());
    for recipe in order {
        progress(&format!(
            "building {} ({})…",
            recipe.tag,
            recipes.describe(recipe)
        ));
        let started = Instant::now();
        match &recipe.source {
            RecipeSource::Debootstrap {
                suite,
                variant,
                include,
            } => {
                build_rootfs(
                    docker,
                    &recipe.tag,
                    suite,
                    variant.as_deref(),
                    include,
                    progress,
                )
                .await?
            }
            RecipeSource::Dockerfile { context, prepare } => {
                let dockerfile = DockerfileBuild {
                    tag: &recipe.tag,
                    context,
                    prepare: prepare.as_deref(),
                    // A forced rebuild must not come back from the layer cache unchanged.
                    no_cache: force,
                };
                build_dockerfile(docker, dockerfile, progress).await?
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        progress(&format!("built {} in {seconds:.1} s", recipe.tag));
        built.push(Built {
            tag: recipe.tag.clone(),
            seconds,
        });
    }
    Ok(built)
}

#[derive(Clone, Copy)]
enum Mark {
    /// On the current path of the depth-first walk; meeting it again means a cycle.
    Visiting,
    Done,
}

/// Orders the recipes to run so that every missing FROM image is built before its users.
/// An iterative depth-first walk: every entry above a tag's `expanded` marker on the stack is
/// one of its bases, so meeting a `Visiting` tag again is a cycle.
async fn plan<'r>(
    docker: &Docker,
    recipes: &'r Recipes,
    wanted: &[String],
    force: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<&'r Recipe>, ImageError> {
    let mut marks: HashMap<String, Mark> = HashMap::new();
    let mut order = Vec::new();
    for root in wanted {
        // (tag, expanded, the Dockerfile that names it as FROM)
        let mut stack: Vec<(String, bool, Option<PathBuf>)> = vec![(root.clone(), false, None)];
        while let Some((tag, expanded, needed_by)) = stack.pop() {
            if expanded {
                marks.insert(tag.clone(), Mark::Done);
                if let Some(recipe) = recipes.find(&tag) {
                    order.push(recipe);
                }
                continue;
            }
            match marks.get(&tag) {
                Some(Mark::Done) => continue,
                Some(Mark::Visiting) => {
                    return Err(ImageError::Cycle {
                        tag,
                        file: recipes.file.clone(),
                    })
                }
                None => {}
            }
            let rebuild = force && wanted.contains(&tag);
            if !rebuild && is_present(docker, &tag).await? {
                progress(&format!("{tag} present"));
                marks.insert(tag, Mark::Done);
                continue;
            }
            let Some(recipe) = recipes.find(&tag) else {
                return Err(match needed_by {
                    Some(dockerfile) => ImageError::NoBaseRecipe {
                        base: tag,
                        dockerfile,
                        file: recipes.file.clone(),
                    },
                    None => ImageError::NoRecipe {
                        tag,
                        file: recipes.file.clone(),
                    },
                });
            };
            marks.insert(tag.clone(), Mark::Visiting);
            stack.push((tag, true, None));
            if let RecipeSource::Dockerfile { context, .. } = &recipe.source {
                let dockerfile = context.join("Dockerfile");
                let text = std::fs::read_to_string(&dockerfile).map_err(|source| {
                    ImageError::ReadDockerfile {
                        path: dockerfile.clone(),
                        source,
                    }
                })?;
                for base in dockerfile_bases(&text).into_iter().rev() {
                    stack.push((base, false, Some(dockerfile.clone())));
                }
            }
        }
    }
    Ok(order)
}

async fn is_present(docker: &Docker, tag: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(ImageError::Inspect {
            tag: tag.to_string(),
            source,
        }),
    }
}

/// The images a Dockerfile builds FROM, leaving out its own stage names, `scratch`, and names
/// built from build arguments (which only the build can resolve).
fn dockerfile_bases(text: &str) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut bases = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("FROM"))
        {
            continue;
        }
        let mut words = words.skip_while(|word| word.starts_with("--"));
        let Some(image) = words.next() else { continue };
        let is_stage = stages.iter().any(|stage| stage.eq_ignore_ascii_case(image));
        if !is_stage
            && image != "scratch"
            && !image.contains('$')
            && !bases.iter().any(|b| b == image)
        {
            bases.push(image.to_string());
        }
        if words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("AS"))
        {
            if let Some(stage) = words.next() {
                stages.push(stage.to_string());
            }
        }
    }
    bases
}

struct DockerfileBuild<'a> {
    tag: &'a str,
    context: &'a Path,
    prepare: Option<&'a [String]>,
    no_cache: bool,
}

async fn build_dockerfile(
    docker: &Docker,
    build: DockerfileBuild<'_>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    let DockerfileBuild {
        tag,
        context,
        prepare,
        no_cache,
    } = build;
    if let Some(argv) = prepare {
        progress(&format!("preparing {tag}: {}", argv.join(" ")));
        run_prepare(tag, context, argv).await?;
    }
    let dir = context.to_path_buf();
    let archive = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &dir)?;
        builder.into_inner()
    })
    .await
    .map_err(io::Error::other)
    .and_then(|archived| archived)
    .map_err(|source| ImageError::Io {
        action: format!("pack the build context {} of {tag}", context.display()),
        source,
    })?;
    let labels = HashMap::from([(MANAGED_LABEL, "true")]);
    // No `pull`: the FROM image is local and nothing can be fetched.
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .nocache(no_cache)
        .labels(&labels)
        .build();
    let mut log: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut stream = docker.build_image(options, None, Some(body_full(archive.into())));
    while let Some(item) = stream.next().await {
        let message = match item {
            Ok(info) => {
                // The engine colours a RUN's stderr; the message goes to logs and CI too.
                let plain = info
                    .stream
                    .as_deref()
                    .map(|text| ANSI.replace_all(text, ""));
                for line in plain.iter().flat_map(|text| text.lines()) {
                    tracing::debug!(image = tag, "{line}");
                    if line.trim().is_empty() {
                        continue;
                    }
                    if log.len() == TAIL_LINES {
                        log.pop_front();
                    }
                    log.push_back(line.to_string());
                }
                continue;
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => error,
            Err(other) => other.to_string(),
        };
        return Err(ImageError::BuildFailed {
            tag: tag.to_string(),
            message: message.trim_end().to_string(),
            log_tail: Vec::from(log).join("\n"),
        });
    }
    Ok(())
}

async fn run_prepare(tag: &str, context: &Path, argv: &[String]) -> Result<(), ImageError> {
    let command = argv.join(" ");
    let output = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(context)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ImageError::PrepareSpawn {
            tag: tag.to_string(),
            command: command.clone(),
            dir: context.to_path_buf(),
            source,
        })?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        tracing::debug!(image = tag, "prepare: {line}");
    }
    if !output.status.success() {
        return Err(ImageError::PrepareFailed {
            tag: tag.to_string(),
            command,
            status: output.status.to_string(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(())
}

async fn build_rootfs(
    docker: &Docker,
    tag: &str,
    suite: &str,
    variant: Option<&str>,
    include: &[String],
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    if !is_root() {
        return Err(ImageError::NotRoot {
            tag: tag.to_string(),
        });
    }
    let variable = std::env::var(MIRROR_VARIABLE).ok();
    let mirror = mirror_for(suite, variable.as_deref(), Path::new("/etc/apt"))?;
    let debootstrap = Debootstrap::obtain(&mirror, suite, progress)
        .await
        .map_err(|source| ImageError::Debootstrap {
            tag: tag.to_string(),
            source,
        })?;
    // Dropped on every path out of here, so the root file system never outlives the build.
    let work = RootfsWork::create()?;
    let rootfs = work.path().join("rootfs");
    let mut command = debootstrap.command();
    if let Some(variant) = variant {
        command.arg(format!("--variant={variant}"));
    }
    if !include.is_empty() {
        command.arg(format!("--include={}", include.join(",")));
    }
    command
        .arg(suite)
        .arg(&rootfs)
        .arg(&mirror)
        .kill_on_drop(true);
    progress(&format!("running debootstrap {suite} from {mirror}"));
    let output = command.output().await.map_err(|source| ImageError::Io {
        action: format!("run {}", debootstrap.program().display()),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines() {
        tracing::debug!(image = tag, "debootstrap: {line}");
    }
    if !output.status.success() {
        // debootstrap's own log says why a package failed; its stdout only that one did.
        let log =
            std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let combined = format!("{stdout}{}{log}", String::from_utf8_lossy(&output.stderr));
        return Err(ImageError::DebootstrapFailed {
            tag: tag.to_string(),
            status: output.status.to_string(),
            output_tail: tail(&combined),
        });
    }
    let archive = work.path().join("rootfs.tar");
    let (source, target) = (rootfs.clone(), archive.clone());
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut builder = tar::Builder::new(io::BufWriter::new(std::fs::File::create(&target)?));
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &source)?;
        builder
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        Ok(())
    })
    .await
    .map_err(io::Error::other)
    .and_then(|archived| archived)
    .map_err(|source| ImageError::Io {
        action: format!("pack {} into {}", rootfs.display(), archive.display()),
        source,
    })?;
    import(docker, tag, &archive, suite).await
}

/// debootstrap's work directory. debootstrap mounts proc, sys and devpts (and, inside LXC,
/// the host's /dev) into its target and cannot unmount them when it is killed; removing the
/// directory with those still mounted would reach into the host's. So dropping this unmounts
/// whatever is still mounted below it first, and keeps the directory if that fails.
struct RootfsWork {
    dir: Option<tempfile::TempDir>,
}

impl RootfsWork {
    fn create() -> Result<RootfsWork, ImageError> {
        let dir = tempfile::Builder::new()
            .prefix("firedrill-rootfs-")
            .tempdir_in(ROOTFS_WORK_DIR)
            .map_err(|source| ImageError::Io {
                action: format!("create a work directory in {ROOTFS_WORK_DIR}"),
                source,
            })?;
        Ok(RootfsWork { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new(ROOTFS_WORK_DIR), |dir| dir.path())
    }
}

impl Drop for RootfsWork {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        // Deepest first, so nested mounts come off before their parents.
        for mount in mounts_under(dir.path()).iter().rev() {
            let _ = std::process::Command::new("umount")
                .arg("--lazy")
                .arg(mount)
                .status();
        }
        if !mounts_under(dir.path()).is_empty() {
            let kept = dir.keep();
            tracing::warn!(
                "{} still has mounts inside; left in place: unmount them, then remove it",
                kept.display()
            );
        }
    }
}

/// Mount points at or below `dir`, in mount order, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        // The fifth field is the mount point; the names firedrill creates need no unescaping.
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|mount| mount.starts_with(&dir))
        .collect()
}

/// `docker import` of a root file system tar, streamed from disk in 1 MiB chunks.
async fn import(docker: &Docker, tag: &str, archive: &Path, suite: &str) -> Result<(), ImageError> {
    let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|source| ImageError::Io {
            action: format!("open {}", archive.display()),
            source,
        })?;
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut chunk = vec![0; 1 << 20];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        Ok(Some((chunk.into(), file)))
    });
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .message(&format!("firedrill: debootstrap {suite}"))
        .changes(vec![
            format!("ENV PATH={ROOTFS_PATH}"),
            format!("LABEL {MANAGED_LABEL}=true"),
        ])
        .build();
    let mut stream = docker.create_image(Some(options), Some(body_try_stream(chunks)), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|source| ImageError::ImportFailed {
            tag: tag.to_string(),
            source,
        })?;
        if let Some(status) = info.status {
            tracing::debug!(image = tag, "import: {status}");
        }
    }
    Ok(())
}

/// The effective uid from /proc, to avoid a libc dependency for one call.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The mirror for `suite`: the one `variable` (the value of [`MIRROR_VARIABLE`]) names, else
/// the apt configuration's. The variable comes first so that it can replace the configuration.
pub(crate) fn mirror_for(
    suite: &str,
    variable: Option<&str>,
    apt_dir: &Path,
) -> Result<String, ImageError> {
    match variable.map(str::trim).filter(|value| !value.is_empty()) {
        Some(uri) if is_fetchable(uri) => Ok(uri.trim_end_matches('/').to_string()),
        Some(value) => Err(ImageError::BadMirror {
            value: value.to_string(),
        }),
        None => find_mirror(apt_dir, suite),
    }
}

/// The first mirror the machine's apt configuration uses for `suite`: deb822 `.sources` files
/// first, then one-line `sources.list` entries. Only the configuration is read, so no host name
/// ever lives in firedrill's files.
fn find_mirror(apt_dir: &Path, suite: &str) -> Result<String, ImageError> {
    let list_dir = apt_dir.join("sources.list.d");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&list_dir)
        .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let has_ext = |path: &Path, ext: &str| path.extension().is_some_and(|e| e == ext);
    for path in entries.iter().filter(|path| has_ext(path, "sources")) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(uri) = deb822_mirror(&text, suite) {
            return Ok(uri);
        }
    }
    let one_line = std::iter::once(apt_dir.join("sources.list"))
        .chain(entries.iter().filter(|path| has_ext(path, "list")).cloned());
    for path in one_line {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(uri) = one_line_mirror(&text, suite) {
            return Ok(uri);
        }
    }
    Err(ImageError::NoMirror {
        suite: suite.to_string(),
        searched: format!(
            "{dir}/*.sources, {apt}/sources.list, {dir}/*.list",
            dir = list_dir.display(),
            apt = apt_dir.display()
        ),
    })
}

/// debootstrap fetches over http(s) or from a local directory; other apt methods do not apply.
fn is_fetchable(uri: &str) -> bool {
    ["http://", "https://", "file:/"]
        .iter()
        .any(|scheme| uri.starts_with(scheme))
}

fn deb822_mirror(text: &str, suite: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line extends the field above it.
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let words = |name: &str| field(name).unwrap_or("").split_whitespace();
        if field("enabled").is_some_and(|value| value.eq_ignore_ascii_case("no"))
            || !words("types").any(|kind| kind == "deb")
            || !words("suites").any(|listed| listed == suite)
        {
            continue;
        }
        if let Some(uri) = words("uris").find(|uri| is_fetchable(uri)) {
            return Some(uri.to_string());
        }
    }
    None
}

fn one_line_mirror(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let rest = line.trim().strip_prefix("deb ")?.trim_start();
        // Drop the `[arch=… signed-by=…]` options.
        let rest = match rest.strip_prefix('[') {
            Some(options) => options.split_once(']')?.1,
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let uri = words.next()?;
        (words.next() == Some(suite) && is_fetchable(uri)).then(|| uri.to_string())
    })
}

/// The last lines of a command's output, for error messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bollard::query_parameters::RemoveImageOptionsBuilder;
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;
    use std::sync::Mutex;

    const REAL_RECIPES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compose/images/recipes.yaml"
    );
    /// Built by hand on this machine; tests use it as a FROM but never remove it.
    const BASE: &str = "firedrill/debian-etcd:bookworm";

    fn real_recipes_path() -> PathBuf {
        PathBuf::from(REAL_RECIPES)
    }

    #[test]
    fn parses_the_bundled_recipes() {
        let path = real_recipes_path();
        let recipes = Recipes::load(&path).unwrap();
        let tags: Vec<&str> = recipes.tags().collect();
        assert_eq!(
            tags,
            [
                "firedrill/debian-etcd:bookworm",
                "firedrill/etcd:3.4.23",
                "firedrill/etcd:3.5.1",
                "firedrill/prometheus:2.42.0"
            ]
        );
        let RecipeSource::Debootstrap {
            suite,
            variant,
            include,
        } = &recipes.find(tags[0]).unwrap().source
        else {
            panic!("the base image should come from debootstrap");
        };
        assert_eq!(suite, "bookworm");
        assert_eq!(variant.as_deref(), Some("minbase"));
        assert!(include.iter().any(|package| package == "etcd-server"));
        let RecipeSource::Dockerfile { context, prepare } = &recipes.find(tags[2]).unwrap().source
        else {
            panic!("etcd 3.5.1 should come from a Dockerfile");
        };
        assert_eq!(context, &path.parent().unwrap().join("etcd-3.5.1"));
        assert!(context.join("Dockerfile").is_file());
        assert_eq!(
            prepare.as_deref(),
            Some(&["sh".to_string(), "prepare.sh".to_string()][..])
        );
        // Every Dockerfile's FROM is an image some recipe builds, so a bare engine can start.
        for recipe in &recipes.recipes {
            if let RecipeSource::Dockerfile { context, .. } = &recipe.source {
                let text = std::fs::read_to_string(context.join("Dockerfile")).unwrap();
                for base in dockerfile_bases(&text) {
                    assert!(
                        recipes.find(&base).is_some(),
                        "{} builds FROM {base}",
                        recipe.tag
                    );
                }
            }
        }
        assert!(recipes.find("firedrill/etcd:9.9.9").is_none());
        assert_eq!(
            recipes.describe(recipes.find(tags[2]).unwrap()),
            "Dockerfile etcd-3.5.1"
        );
    }

    #[test]
    fn an_unknown_key_names_file_and_line() {
        let text = "images:\n  - tag: a/b:1\n    contxt: somewhere\n";
        let err = Recipes::parse(Path::new("dir/recipes.yaml"), text).unwrap_err();
        let ImageError::ParseRecipes { line, .. } = &err else {
            panic!("expected a parse error, got {err}");
        };
        assert_eq!(*line, 3);
        let message = err.to_string();
        assert!(message.contains("dir/recipes.yaml:3:"), "{message}");
        assert!(message.contains("contxt"), "{message}");
        assert!(
            !message.contains("at line"),
            "location given twice: {message}"
        );
    }

    #[test]
    fn a_recipe_with_two_sources_or_a_bare_repository_is_refused_at_its_line() {
        let both = "images:\n  - tag: a/b:1\n    context: x\n  - tag: a/c:1\n    context: y\n    debootstrap: {suite: bookworm}\n";
        let err = Recipes::parse(Path::new("r.yaml"), both).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("a/c:1 at r.yaml:4:"), "{message}");
        assert!(message.contains("not both"), "{message}");

        let bare = "images:\n  - tag: localhost:5000/etcd\n    context: x\n";
        let message = Recipes::parse(Path::new("r.yaml"), bare)
            .unwrap_err()
            .to_string();
        assert!(message.contains("repository:tag"), "{message}");

        let twice = "images:\n  - tag: a/b:1\n    context: x\n  - tag: a/b:1\n    context: y\n";
        let message = Recipes::parse(Path::new("r.yaml"), twice)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("r.yaml:4:") && message.contains("same tag"),
            "{message}"
        );
    }

    #[test]
    fn dockerfile_bases_skip_stages_scratch_and_arguments() {
        let text = "# FROM commented:out\nARG V=1\nFROM --platform=linux/amd64 base/one:1 AS build\nRUN make\nfrom build\nFROM scratch\nFROM other/img:${V}\nFROM base/two:2\nCOPY --from=build /a /a\n";
        assert_eq!(dockerfile_bases(text), ["base/one:1", "base/two:2"]);
    }

    #[test]
    fn the_mirror_comes_from_the_apt_configuration() {
        let apt = tempfile::tempdir().unwrap();
        std::fs::create_dir(apt.path().join("sources.list.d")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(apt.path().join(name), text).unwrap();
        write(
            "sources.list.d/a.sources",
            "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\n\
             Types: deb-src deb\n# URIs: http://commented.example/debian\nURIs: cdrom:/x\n  http://mirror.example/debian\nSuites: bookworm-updates\n  bookworm\nComponents: main\n",
        );
        assert_eq!(
            find_mirror(apt.path(), "bookworm").unwrap(),
            "http://mirror.example/debian"
        );
        write(
            "sources.list",
            "# deb http://old.example/debian trixie main\ndeb [arch=amd64 signed-by=/k.gpg] http://oneline.example/debian trixie main\n",
        );
        assert_eq!(
            find_mirror(apt.path(), "trixie").unwrap(),
            "http://oneline.example/debian"
        );
        let err = find_mirror(apt.path(), "sid").unwrap_err();
        assert!(matches!(err, ImageError::NoMirror { .. }));
        assert!(err.to_string().contains("suite sid"), "{err}");
    }

    #[test]
    fn the_variable_names_the_mirror_before_the_apt_configuration() {
        let apt = tempfile::tempdir().unwrap();
        std::fs::write(
            apt.path().join("sources.list"),
            "deb http://apt.example/debian bookworm main\n",
        )
        .unwrap();
        let mirror = |variable| mirror_for("bookworm", variable, apt.path());
        assert_eq!(
            mirror(Some("http://variable.example/debian/")).unwrap(),
            "http://variable.example/debian"
        );
        assert_eq!(mirror(Some(" ")).unwrap(), "http://apt.example/debian");
        assert_eq!(mirror(None).unwrap(), "http://apt.example/debian");
        let bad = mirror(Some("cdrom:/media")).unwrap_err();
        assert!(matches!(bad, ImageError::BadMirror { .. }), "{bad}");
        assert!(bad.to_string().contains(MIRROR_VARIABLE), "{bad}");

        let none = mirror_for("bookworm", None, &apt.path().join("absent")).unwrap_err();
        let message = none.to_string();
        assert!(matches!(none, ImageError::NoMirror { .. }), "{message}");
        assert!(
            message.contains(&format!(
                "set {MIRROR_VARIABLE} to the URL of a Debian mirror"
            )),
            "{message}"
        );
    }

    #[test]
    fn the_work_directory_is_unmounted_before_it_is_removed() {
        // Stands in for the host's /dev that debootstrap bind-mounts inside LXC.
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("null"), "host file").unwrap();
        let work = RootfsWork::create().unwrap();
        let dev = work.path().join("rootfs/dev");
        std::fs::create_dir_all(&dev).unwrap();
        let mounted = std::process::Command::new("mount")
            .arg("--bind")
            .arg(host.path())
            .arg(&dev)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: cannot bind-mount here (needs root)");
            return;
        }
        assert_eq!(mounts_under(work.path()), std::slice::from_ref(&dev));
        let dir = work.path().to_path_buf();
        drop(work);
        assert!(!dir.exists(), "{} was not removed", dir.display());
        assert!(mounts_under(&dir).is_empty());
        assert!(
            host.path().join("null").is_file(),
            "removal reached into the mount"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let kept = tail(&text);
        assert!(
            kept.starts_with("line 11\n") && kept.ends_with("line 30"),
            "{kept}"
        );
    }

    /// The Docker engine: these tests need one, as the whole suite does.
    async fn engine() -> Docker {
        let docker = Docker::connect_with_local_defaults()
            .expect("the tests need a Docker engine")
            .negotiate_version()
            .await
            .expect("the tests need a reachable Docker engine");
        docker
            .ping()
            .await
            .expect("the tests need a reachable Docker engine");
        docker
    }

    /// Builds the bundled base image from the real recipes when a fresh machine lacks it.
    async fn ensure_base(docker: &Docker) {
        ensure_bundled(docker, BASE).await;
    }

    /// Builds a bundled image (and what it is built from) from the real recipes when a fresh
    /// machine lacks it, one build at a time for all tests of this binary.
    pub(crate) async fn ensure_bundled(docker: &Docker, tag: &str) {
        static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = BUILDING.lock().await;
        if is_present(docker, tag).await.unwrap() {
            return;
        }
        let recipes = Recipes::load(&real_recipes_path()).unwrap();
        ensure(docker, &recipes, &[tag.to_string()], false, &|line| {
            eprintln!("{line}")
        })
        .await
        .expect("the bundled image builds");
    }

    fn unique_tag(name: &str) -> String {
        format!("firedrill-test/{name}:{}", std::process::id())
    }

    /// A throwaway recipes file with one Dockerfile recipe.
    fn recipes_with(dir: &Path, tag: &str, dockerfile: &str, prepare: Option<&str>) -> Recipes {
        std::fs::create_dir(dir.join("ctx")).unwrap();
        std::fs::write(dir.join("ctx/Dockerfile"), dockerfile).unwrap();
        let prepare = prepare
            .map(|script| format!("    prepare: [sh, -c, {script:?}]\n"))
            .unwrap_or_default();
        let file = dir.join("recipes.yaml");
        std::fs::write(
            &file,
            format!("images:\n  - tag: {tag}\n    context: ctx\n{prepare}"),
        )
        .unwrap();
        Recipes::load(&file).unwrap()
    }

    /// Runs `body`, then removes `tag` from the engine even when `body` panicked.
    async fn with_cleanup<F: std::future::Future<Output = ()>>(
        docker: &Docker,
        tag: &str,
        body: F,
    ) {
        let outcome = AssertUnwindSafe(body).catch_unwind().await;
        let _ = docker
            .remove_image(
                tag,
                Some(RemoveImageOptionsBuilder::new().force(true).build()),
                None,
            )
            .await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    fn quiet(_: &str) {}

    #[tokio::test]
    async fn a_tag_without_recipe_is_named_with_the_file() {
        let docker = engine().await;
        let recipes = Recipes::load(&real_recipes_path()).unwrap();
        let wanted = vec!["firedrill-test/never-built:0".to_string()];
        let err = ensure(&docker, &recipes, &wanted, false, &quiet)
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::NoRecipe { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("firedrill-test/never-built:0"),
            "{message}"
        );
        assert!(message.contains("recipes.yaml"), "{message}");
        assert!(message.contains("add a recipe"), "{message}");
    }

    #[tokio::test]
    async fn a_missing_base_without_recipe_and_a_cycle_stop_before_building() {
        let docker = engine().await;
        let dir = tempfile::tempdir().unwrap();
        let tag = unique_tag("orphan");
        let recipes = recipes_with(
            dir.path(),
            &tag,
            "FROM firedrill-test/absent-base:0\n",
            None,
        );
        let err = ensure(&docker, &recipes, std::slice::from_ref(&tag), false, &quiet)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ImageError::NoBaseRecipe { .. }), "{message}");
        assert!(
            message.contains("firedrill-test/absent-base:0") && message.contains("ctx/Dockerfile"),
            "{message}"
        );

        let cycle = tempfile::tempdir().unwrap();
        for (name, from) in [("a", "b"), ("b", "a")] {
            std::fs::create_dir(cycle.path().join(name)).unwrap();
            std::fs::write(
                cycle.path().join(name).join("Dockerfile"),
                format!("FROM firedrill-test/cycle-{from}:0\n"),
            )
            .unwrap();
        }
        let file = cycle.path().join("recipes.yaml");
        std::fs::write(&file, "images:\n  - tag: firedrill-test/cycle-a:0\n    context: a\n  - tag: firedrill-test/cycle-b:0\n    context: b\n").unwrap();
        let recipes = Recipes::load(&file).unwrap();
        let wanted = vec!["firedrill-test/cycle-a:0".to_string()];
        let err = ensure(&docker, &recipes, &wanted, false, &quiet)
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::Cycle { .. }), "{err}");
    }

    #[tokio::test]
    async fn builds_a_prepared_context_once_and_then_skips_it() {
        let docker = engine().await;
        ensure_base(&docker).await;
        let dir = tempfile::tempdir().unwrap();
        let tag = unique_tag("prepared");
        // The RUN fails the build unless prepare's file reached the image.
        let dockerfile = format!(
            "FROM {BASE}\nCOPY made-by-prepare.txt /made-by-prepare.txt\nRUN grep -qx prepared /made-by-prepare.txt\n"
        );
        let recipes = recipes_with(
            dir.path(),
            &tag,
            &dockerfile,
            Some("echo prepared > made-by-prepare.txt"),
        );
        with_cleanup(&docker, &tag, async {
            let lines = Mutex::new(Vec::<String>::new());
            let record = |line: &str| lines.lock().unwrap().push(line.to_string());
            let built = ensure(
                &docker,
                &recipes,
                std::slice::from_ref(&tag),
                false,
                &record,
            )
            .await
            .unwrap();
            assert_eq!(built.len(), 1);
            assert_eq!(built[0].tag, tag);
            assert!(built[0].seconds > 0.0);
            assert!(dir.path().join("ctx/made-by-prepare.txt").is_file());
            let image = docker.inspect_image(&tag).await.unwrap();
            let labels = image
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default();
            assert_eq!(labels.get(MANAGED_LABEL).map(String::as_str), Some("true"));
            let log = lines.lock().unwrap().clone();
            assert!(log.contains(&format!("{BASE} present")), "{log:?}");
            assert!(
                log.contains(&format!("building {tag} (Dockerfile ctx)…")),
                "{log:?}"
            );

            lines.lock().unwrap().clear();
            let again = ensure(
                &docker,
                &recipes,
                std::slice::from_ref(&tag),
                false,
                &record,
            )
            .await
            .unwrap();
            assert!(again.is_empty(), "{again:?}");
            assert_eq!(*lines.lock().unwrap(), [format!("{tag} present")]);
        })
        .await;
    }

    #[tokio::test]
    async fn a_failing_run_reports_the_command_output() {
        let docker = engine().await;
        ensure_base(&docker).await;
        let dir = tempfile::tempdir().unwrap();
        let tag = unique_tag("failing");
        let dockerfile = format!("FROM {BASE}\nRUN echo marker-before-failure && exit 3\n");
        let recipes = recipes_with(dir.path(), &tag, &dockerfile, None);
        with_cleanup(&docker, &tag, async {
            let err = ensure(&docker, &recipes, std::slice::from_ref(&tag), false, &quiet)
                .await
                .unwrap_err();
            let ImageError::BuildFailed {
                message, log_tail, ..
            } = &err
            else {
                panic!("expected a build failure, got {err}");
            };
            assert!(message.contains("non-zero code: 3"), "{message}");
            assert!(log_tail.contains("marker-before-failure"), "{log_tail}");
            assert!(!is_present(&docker, &tag).await.unwrap());
        })
        .await;
    }

    #[tokio::test]
    async fn a_failing_prepare_reports_its_exit_and_stderr() {
        let docker = engine().await;
        let dir = tempfile::tempdir().unwrap();
        let tag = unique_tag("unprepared");
        let recipes = recipes_with(
            dir.path(),
            &tag,
            "FROM scratch\n",
            Some("echo wheel not found >&2; exit 7"),
        );
        with_cleanup(&docker, &tag, async {
            let err = ensure(&docker, &recipes, std::slice::from_ref(&tag), false, &quiet)
                .await
                .unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, ImageError::PrepareFailed { .. }), "{message}");
            assert!(message.contains("exit status: 7"), "{message}");
            assert!(message.contains("wheel not found"), "{message}");
        })
        .await;
    }
}
