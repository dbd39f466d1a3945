//! The page turned into a scenario: the front matter into the scenario's keys, the marked
//! blocks into steps (each knowing where it comes from), the other blocks into
//! documentation. Every mistake is located in the `.md` file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Location;

use super::attrs::{self, Command, Role, Target};
use super::expect_output::{lint, MatchOptions};
use super::parse::{self, Block, LineIndex, Page};
use super::{DocBlock, ExpectedOutput, Runbook, Section, SourceRef};
use crate::scenario::{
    CaptureSpec, ExecSpec, ExpectSpec, Mark, RecoversSpec, RunSpec, ScenarioFile, StepSpec,
    WaitSpec,
};
use crate::yaml::{self, Diagnostic};

/// Reads the file as UTF-8 text, refusing empty and binary files.
pub(super) fn text(path: &Path) -> Result<String, Diagnostic> {
    yaml::read_text_file(
        path,
        &yaml::TextFile {
            holds: "a Markdown runbook",
            extension: ".md",
            empty_hint:
                "a runbook starts with its front matter (`---`, the scenario's keys, `---`)",
        },
    )
}

pub(super) fn runbook(path: &Path, text: &str) -> Result<(ScenarioFile, Runbook), Vec<Diagnostic>> {
    let page = parse::page(text);
    let mut reader = Reader {
        path,
        text,
        lines: LineIndex::new(text),
        problems: Vec::new(),
        drafts: Vec::new(),
        documentation: Vec::new(),
        named: HashMap::new(),
        last: Last::Other,
        verification_line: None,
    };
    for p in &page.problems {
        reader.problem(p.offset, p.message.clone());
    }
    let scenario = reader.front_matter(&page);
    for block in &page.blocks {
        reader.block(block);
    }
    reader.finish(scenario, &page)
}

/// The keys a firedrill block may give a command block's step: a block of only these is
/// that step's options, not a step of its own.
const OPTION_KEYS: [&str; 8] = [
    "name", "prose", "expect", "capture", "wait", "timeout", "recovers", "marks",
];

/// A firedrill block of options for the command block before it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepOptions {
    name: Option<String>,
    prose: Option<String>,
    expect: Option<ExpectSpec>,
    #[serde(default)]
    capture: BTreeMap<String, CaptureSpec>,
    wait: Option<WaitSpec>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    recovers: Option<RecoversSpec>,
    marks: Option<Mark>,
}

/// A step read from the page, with what the blocks after it may still add.
struct Draft {
    spec: StepSpec,
    source: SourceRef,
    heading: Option<usize>,
    /// From a command block: a firedrill block of options may follow.
    from_command: bool,
    /// An output block may follow (a command, not a loop).
    takes_output: bool,
    /// Its name came from an attribute, not from the heading.
    named: bool,
}

/// The block before the current one, as far as output and options blocks care.
#[derive(Clone, Copy)]
enum Last {
    Other,
    Step(usize),
    /// A runnable block with a mistake: what follows it is not reported again.
    Broken,
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    lines: LineIndex<'a>,
    problems: Vec<Diagnostic>,
    drafts: Vec<Draft>,
    documentation: Vec<DocBlock>,
    /// Steps named after each heading so far, to number the next one.
    named: HashMap<usize, usize>,
    last: Last,
    /// Where the first verification step is: procedure steps go above it.
    verification_line: Option<u64>,
}

impl Reader<'_> {
    fn problem(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = self.lines.position(offset);
        self.problems
            .push(Diagnostic::at(self.path, line, column, message));
    }

    fn location(&self, offset: usize) -> Location {
        let (line, column) = self.lines.position(offset);
        // serde-saphyr keeps `Location::new` private; its Deserialize impl is the way in.
        Location::deserialize(serde_json::json!({ "line": line, "column": column }))
            .unwrap_or(Location::UNKNOWN)
    }

    fn front_matter(&mut self, page: &Page) -> Option<ScenarioFile> {
        let Some(fm) = &page.front_matter else {
            let message = if self.text.starts_with("---") {
                "the front matter is never closed, or starts with an empty line: put the scenario's keys right below the first `---` line and end them with a `---` line"
            } else {
                "the page has no front matter: start it with a `---` line, the scenario's `name`, `description`, `cluster` and `load`, and a closing `---` line"
            };
            self.problem(0, message);
            return None;
        };
        let (line, _) = self.lines.position(fm.offset);
        if let Some(at) = yaml::top_level_key_line(&fm.text, "steps") {
            self.problems.push(Diagnostic::at(
                self.path,
                line + at - 1,
                1,
                "`steps` does not belong in the front matter: the steps are the page's runnable blocks (```sh {node=…} and ```firedrill)",
            ));
            return None;
        }
        // Padded so that positions are the page's.
        let mut own = "\n".repeat(line as usize - 1) + &fm.text;
        if !own.ends_with('\n') {
            own.push('\n');
        }
        // Its own mistakes first: the scenario's `steps` is added below it.
        if let Err(d) = yaml::parse::<BTreeMap<String, IgnoredAny>>(self.path, &own) {
            self.problems.push(d);
            return None;
        }
        let end_line = own.lines().count() as u64;
        let whole = own + "steps: []\n";
        match yaml::parse::<ScenarioFile>(self.path, &whole) {
            Ok(file) => Some(file),
            Err(d) => {
                let d = match d.message.strip_prefix("has no ") {
                    _ if d.line > end_line => Diagnostic::at(
                        self.path,
                        line,
                        1,
                        "write the front matter as `key: value` lines, not as one `{…}` map",
                    ),
                    Some(rest) if d.line == 0 => Diagnostic::at(
                        self.path,
                        1,
                        1,
                        format!(
                            "the front matter has no {}",
                            rest.replace(" at the top level", " to it")
                        ),
                    ),
                    // `steps` is in the scenario's keys, not the front matter's.
                    _ => Diagnostic {
                        message: d.message.replace(", steps, ", ", "),
                        ..d
                    },
                };
                self.problems.push(d);
                None
            }
        }
    }

    fn block(&mut self, block: &Block) {
        let role = match &block.fence {
            None => Role::Documentation,
            Some(fence) => match attrs::role(&fence.info) {
                Ok(role) => role,
                Err(errors) => {
                    for e in errors {
                        self.problem(fence.info_offset + e.offset, e.message);
                    }
                    self.last = Last::Broken;
                    return;
                }
            },
        };
        let heading = block.heading.as_ref().map(|h| h.index);
        let last = match self.last {
            Last::Step(i) if self.drafts[i].heading != heading => Last::Other,
            last => last,
        };
        match role {
            Role::Documentation => {
                self.documentation.push(DocBlock {
                    line: self.lines.position(block.range.start).0,
                    lang: block
                        .fence
                        .as_ref()
                        .and_then(|f| f.info.split(|c: char| c.is_whitespace() || c == '{').next())
                        .unwrap_or_default()
                        .to_string(),
                    text: block.content.clone(),
                    heading: block.heading.as_ref().map(|h| h.text.clone()),
                    section: block.section,
                });
                self.last = Last::Other;
            }
            Role::Output(options) => self.output(block, last, options),
            Role::Command(command) => {
                self.last = match self.command(block, *command) {
                    Some(draft) => self.push(draft),
                    None => Last::Broken,
                }
            }
            Role::Firedrill => self.firedrill(block, last),
        }
    }

    fn push(&mut self, draft: Draft) -> Last {
        let line = draft.source.line;
        match (draft.source.section, self.verification_line) {
            (Section::Procedure, Some(v)) => self.problems.push(Diagnostic::at(
                self.path,
                line,
                draft.source.column,
                format!("a procedure step below the Verification section (line {v}): verification comes after the procedure; move this block above it"),
            )),
            (Section::Verification, None) => self.verification_line = Some(line),
            _ => {}
        }
        self.drafts.push(draft);
        Last::Step(self.drafts.len() - 1)
    }

    /// Whether a runnable block may be where it is; says why not.
    fn runnable_here(&mut self, block: &Block) -> bool {
        if block.section != Section::Documentation {
            return true;
        }
        self.problem(
            block.range.start,
            format!(
                "this block would run, but it sits under `{}`, which is documentation only: move it under a procedure heading, or unmark it (a plain ```sh or ```yaml block never runs)",
                block.section_title
            ),
        );
        false
    }

    /// The step's name: given, or the heading's, numbered from the second block on.
    fn name(&mut self, block: &Block, given: Option<String>) -> Option<String> {
        if given.is_some() {
            return given;
        }
        let Some(heading) = &block.heading else {
            self.problem(
                block.range.start,
                "this block has no heading above it to name its step: put it under a heading, or name it (`name=\"…\"`, or `name:` in a firedrill block)",
            );
            return None;
        };
        let n = self.named.entry(heading.index).or_insert(0);
        *n += 1;
        Some(match *n {
            1 => heading.text.clone(),
            n => format!("{} ({n})", heading.text),
        })
    }

    fn source(&self, block: &Block) -> SourceRef {
        let (line, column) = self.lines.position(block.range.start);
        SourceRef {
            line,
            column,
            block: block.range.clone(),
            heading: block.heading.as_ref().map(|h| h.text.clone()),
            section: block.section,
            output: None,
        }
    }

    fn command(&mut self, block: &Block, c: Command) -> Option<Draft> {
        if !self.runnable_here(block) {
            return None;
        }
        let command = block.content.trim_end().to_string();
        if command.is_empty() {
            self.problem(
                block.range.start,
                "this command block is empty: write the command to run in it",
            );
            return None;
        }
        let named = c.name.is_some();
        let name = self.name(block, c.name)?;
        let mut spec = blank_step(name, self.location(block.range.start));
        match c.target {
            Target::Exec(node) => spec.exec = Some(ExecSpec { node, command }),
            Target::Run(node) => {
                spec.run = Some(RunSpec {
                    node,
                    command,
                    image: c.image,
                })
            }
        }
        spec.prose = block.prose.clone();
        spec.timeout = c.timeout;
        spec.wait = c
            .wait
            .map(|(timeout, interval)| WaitSpec { timeout, interval });
        if c.exit_code.is_some() || !c.contains.is_empty() || c.regex.is_some() {
            spec.expect = Some(ExpectSpec {
                exit_code: c.exit_code,
                stdout_contains: c.contains,
                stdout_regex: c.regex,
                ..ExpectSpec::default()
            });
        }
        spec.capture = c
            .captures
            .into_iter()
            .map(|(var, regex)| {
                let capture = CaptureSpec {
                    regex: Some(regex),
                    json: None,
                    optional: false,
                    default: None,
                };
                (var, capture)
            })
            .collect();
        spec.marks = c.marks;
        Some(Draft {
            spec,
            source: self.source(block),
            heading: block.heading.as_ref().map(|h| h.index),
            from_command: true,
            takes_output: true,
            named,
        })
    }

    fn output(&mut self, block: &Block, last: Last, options: MatchOptions) {
        let i = match last {
            Last::Broken => return,
            Last::Step(i) if self.drafts[i].takes_output => i,
            _ => {
                self.problem(
                    block.range.start,
                    "an output block goes right after the command whose output it is (an sh block with `node=` or `run=`, or a firedrill exec, run or http step), under the same heading",
                );
                return;
            }
        };
        if let Some((at, column, message)) = lint(&block.content) {
            let (first, _) = self.lines.position(block.content_range.start);
            let indent = block.fence.as_ref().map_or(0, |f| f.prefix.chars().count());
            let (line, column) = (first + at as u64, (indent + column + 1) as u64);
            self.problems
                .push(Diagnostic::at(self.path, line, column, message));
            return;
        }
        let line = self.lines.position(block.range.start).0;
        if let Some(earlier) = &self.drafts[i].source.output {
            let message = format!(
                "step `{}` already has an output block (line {}): keep one",
                self.drafts[i].spec.name.value, earlier.line
            );
            self.problem(block.range.start, message);
            return;
        }
        self.drafts[i].source.output = Some(ExpectedOutput {
            text: block.content.clone(),
            file: self.path.to_path_buf(),
            line,
            range: block.content_range.clone(),
            options,
        });
    }

    fn firedrill(&mut self, block: &Block, last: Last) {
        if block.content.trim().is_empty() {
            self.problem(
                block.range.start,
                "this firedrill block is empty: write a step (or the options of the command above) in YAML",
            );
            self.last = Last::Broken;
            return;
        }
        let keys =
            match yaml::parse::<BTreeMap<String, IgnoredAny>>(self.path, &self.yaml(block, None)) {
                Ok(keys) => keys,
                Err(d) => {
                    self.problems.push(d);
                    self.last = Last::Broken;
                    return;
                }
            };
        if keys.keys().all(|k| OPTION_KEYS.contains(&k.as_str())) {
            match last {
                Last::Broken => {}
                Last::Step(i) if self.drafts[i].from_command => self.options(block, i),
                _ => self.problem(
                    block.range.start,
                    "this firedrill block has no action, and no command block right before it (under the same heading) to give options to: add an action such as `exec:` or `stop:`, or move it right below its command block",
                ),
            }
            return;
        }
        self.last = match self.step(block, keys.contains_key("name")) {
            Some(draft) => self.push(draft),
            None => Last::Broken,
        };
    }

    /// A firedrill block that is a step of its own.
    fn step(&mut self, block: &Block, has_name: bool) -> Option<Draft> {
        if !self.runnable_here(block) {
            return None;
        }
        let given = if has_name {
            None
        } else {
            Some(self.name(block, None)?)
        };
        // Read as written first, so that a mistake is shown in the page's own lines; only
        // the missing name, read last, means the block is otherwise fine.
        let spec = match yaml::parse::<StepSpec>(self.path, &self.yaml(block, None)) {
            Err(d) if given.is_some() && lacks_name(&d) => {
                yaml::parse(self.path, &self.yaml(block, given.as_deref()))
            }
            read => read,
        };
        let mut spec = spec.map_err(|d| self.problems.push(d)).ok()?;
        if given.is_some() {
            // The name was the heading's: its errors point at the block.
            let at = self.location(block.range.start);
            spec.name.referenced = at;
            spec.name.defined = at;
        }
        if spec.prose.is_empty() {
            spec.prose = block.prose.clone();
        }
        let takes_output = spec.for_each.is_none()
            && (spec.exec.is_some() || spec.run.is_some() || spec.http.is_some());
        Some(Draft {
            spec,
            source: self.source(block),
            heading: block.heading.as_ref().map(|h| h.index),
            from_command: false,
            takes_output,
            named: true,
        })
    }

    /// A firedrill block of options for the command block's step `i`.
    fn options(&mut self, block: &Block, i: usize) {
        let options: StepOptions = match yaml::parse(self.path, &self.yaml(block, None)) {
            Ok(o) => o,
            Err(d) => {
                self.problems.push(d);
                return;
            }
        };
        let draft = &mut self.drafts[i];
        let spec = &mut draft.spec;
        let mut twice = Vec::new();
        if let Some(name) = options.name {
            if draft.named {
                twice.push("name");
            }
            spec.name.value = name;
        }
        if let Some(prose) = options.prose {
            spec.prose = prose;
        }
        if options.expect.is_some() {
            if spec.expect.is_some() {
                twice.push("expect");
            }
            spec.expect = options.expect;
        }
        for (var, capture) in options.capture {
            if spec.capture.insert(var, capture).is_some() {
                twice.push("capture");
            }
        }
        if options.wait.is_some() {
            if spec.wait.is_some() {
                twice.push("wait");
            }
            spec.wait = options.wait;
        }
        if options.timeout.is_some() {
            if spec.timeout.is_some() {
                twice.push("timeout");
            }
            spec.timeout = options.timeout;
        }
        if options.marks.is_some() {
            if spec.marks.is_some() {
                twice.push("marks");
            }
            spec.marks = options.marks;
        }
        spec.recovers = options.recovers;
        for key in twice {
            self.problem(
                block.range.start,
                format!(
                    "`{key}` is given both as an attribute of the command block and here: keep one"
                ),
            );
        }
    }

    /// The block's YAML, padded so that positions in it are the page's; `name` goes on
    /// the fence's line, where nothing else is.
    fn yaml(&self, block: &Block, name: Option<&str>) -> String {
        let indent = block.fence.as_ref().map_or(0, |f| f.prefix.chars().count());
        let indent = " ".repeat(indent);
        let (first, _) = self.lines.position(block.content_range.start);
        let mut text = "\n".repeat(first.saturating_sub(2) as usize);
        if let Some(name) = name {
            let quoted = serde_json::Value::String(name.to_string());
            text.push_str(&format!("{indent}name: {quoted}"));
        }
        text.push('\n');
        for line in block.content.lines() {
            text.push_str(&indent);
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn finish(
        mut self,
        scenario: Option<ScenarioFile>,
        page: &Page,
    ) -> Result<(ScenarioFile, Runbook), Vec<Diagnostic>> {
        let runs = self
            .drafts
            .iter()
            .any(|d| d.source.section != Section::Rollback);
        if !runs && self.problems.is_empty() {
            let at = page.blocks.first().map_or(0, |b| b.range.start);
            self.problem(
                at,
                "the page has no runnable block: mark the procedure's commands with the node they run in (```sh {node=NODE}), or write steps in ```firedrill blocks",
            );
        }
        let Some(mut scenario) = scenario.filter(|_| self.problems.is_empty()) else {
            return Err(self.problems);
        };
        let (mut rollback, mut rollback_sources) = (Vec::new(), Vec::new());
        let (mut verification, mut verification_sources) = (Vec::new(), Vec::new());
        let mut sources = Vec::new();
        for d in self.drafts {
            match d.source.section {
                Section::Rollback => {
                    rollback.push(d.spec);
                    rollback_sources.push(d.source);
                }
                Section::Verification => {
                    verification.push(d.spec);
                    verification_sources.push(d.source);
                }
                _ => {
                    scenario.steps.push(d.spec);
                    sources.push(d.source);
                }
            }
        }
        scenario.steps.append(&mut verification);
        sources.append(&mut verification_sources);
        Ok((
            scenario,
            Runbook {
                rollback,
                sources,
                rollback_sources,
                documentation: self.documentation,
            },
        ))
    }
}

/// The error `yaml::parse` gives for a map without `name`, wherever it is indented.
fn lacks_name(d: &Diagnostic) -> bool {
    d.message.starts_with("has no `name`") || d.message.starts_with("missing key `name`")
}

/// A step with only its name, located at `at`; the caller adds the rest. Made through serde
/// so that options added to `StepSpec` start out absent here as in a YAML file.
fn blank_step(name: String, at: Location) -> StepSpec {
    let mut spec: StepSpec = serde_json::from_value(serde_json::json!({ "name": name }))
        .expect("a step needs nothing but a name to be read");
    spec.name.referenced = at;
    spec.name.defined = at;
    spec
}

#[cfg(test)]
mod tests;
