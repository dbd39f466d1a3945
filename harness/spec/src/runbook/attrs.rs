//! The attributes in a fenced block's info string, Runme-style:
//! ```` ```sh {node=etcd1 timeout=30s wait=20s/500ms} ````. They say what the block is (a
//! command to run, the expected output of the one before, a firedrill step, or
//! documentation) and carry a command's options.

use std::time::Duration;

use super::expect_output::MatchOptions;
use crate::scenario::Mark;

/// What a fenced block is, as its info string says.
#[derive(Debug, PartialEq)]
pub(crate) enum Role {
    /// Never runs.
    Documentation,
    /// ```` ```sh {node=…} ````: its text runs through `sh -c`.
    Command(Box<Command>),
    /// ```` ```text {output} ````: what the command before it prints.
    Output(MatchOptions),
    /// ```` ```firedrill ````: a step, or options for the command before it, in YAML.
    Firedrill,
}

/// Where a command block runs.
#[derive(Debug, PartialEq)]
pub(crate) enum Target {
    /// Inside the node's running container.
    Exec(String),
    /// In a one-off container with the (usually stopped) node's volumes and network.
    Run(String),
}

/// A command block's attributes, checked.
#[derive(Debug, PartialEq)]
pub(crate) struct Command {
    pub target: Target,
    pub image: Option<String>,
    pub name: Option<String>,
    pub timeout: Option<Duration>,
    /// Timeout, and interval when given.
    pub wait: Option<(Duration, Option<Duration>)>,
    pub exit_code: Option<i64>,
    pub contains: Vec<String>,
    pub regex: Option<String>,
    pub captures: Vec<(String, String)>,
    pub marks: Option<Mark>,
}

/// A problem `offset` bytes into the info string.
#[derive(Debug, PartialEq)]
pub(crate) struct AttrError {
    pub offset: usize,
    pub message: String,
}

/// Languages whose blocks can run: the text goes to `sh -c` whatever the tag says, so only
/// tags that promise sh are accepted.
const SHELLS: [&str; 2] = ["sh", "shell"];
const COMMAND_KEYS: &str =
    "node, run, image, name, timeout, wait, exit_code, contains, regex, capture.NAME, marks";

/// One `key` or `key=value` between the braces.
struct Attr {
    key: String,
    value: Option<String>,
    offset: usize,
}

/// What the block with this info string is.
pub(crate) fn role(info: &str) -> Result<Role, Vec<AttrError>> {
    let (lang, attrs) = split(info).map_err(|e| vec![e])?;
    let Some(attrs) = attrs else {
        return Ok(if lang == "firedrill" {
            Role::Firedrill
        } else {
            Role::Documentation
        });
    };
    let Some(first) = attrs.first() else {
        return Ok(Role::Documentation);
    };
    if lang == "firedrill" {
        return Err(vec![error(
            first.offset,
            "a firedrill block takes no attributes: write its options in the YAML",
        )]);
    }
    if attrs.iter().any(|a| a.key == "output") {
        return output(&attrs).map(Role::Output);
    }
    if attrs.iter().any(|a| a.key == "node" || a.key == "run") {
        if !SHELLS.contains(&lang) {
            return Err(vec![error(
                0,
                format!("only sh blocks run: their text goes to `sh -c` in the node; tag the block ```sh (not `{lang}`)"),
            )]);
        }
        return command(&attrs).map(|c| Role::Command(Box::new(c)));
    }
    let message = match first.key.as_str() {
        "unordered" => "`unordered` goes with `output`: write {output unordered}".to_string(),
        k if is_command_key(k) => format!(
            "`{k}` is an option of a command: add `node=NODE` (or `run=NODE`) to make this block a step"
        ),
        k => unknown(k),
    };
    Err(vec![error(first.offset, message)])
}

fn output(attrs: &[Attr]) -> Result<MatchOptions, Vec<AttrError>> {
    let mut options = MatchOptions::default();
    let mut errors = Vec::new();
    for a in attrs {
        match a.key.as_str() {
            "output" | "unordered" if a.value.is_some() => {
                errors.push(error(a.offset, format!("`{}` takes no value", a.key)))
            }
            "output" => {}
            "unordered" => options.unordered = true,
            k if is_command_key(k) => errors.push(error(
                a.offset,
                format!("`{k}` belongs on the command block, not on its output"),
            )),
            k => errors.push(error(a.offset, unknown(k))),
        }
    }
    errors.is_empty().then_some(options).ok_or(errors)
}

fn command(attrs: &[Attr]) -> Result<Command, Vec<AttrError>> {
    let mut errors = Vec::new();
    let mut target = None;
    let mut c = Command {
        target: Target::Exec(String::new()),
        image: None,
        name: None,
        timeout: None,
        wait: None,
        exit_code: None,
        contains: Vec::new(),
        regex: None,
        captures: Vec::new(),
        marks: None,
    };
    let mut seen = Vec::new();
    for a in attrs {
        let repeatable = a.key == "contains" || a.key.starts_with("capture.");
        if !repeatable && seen.contains(&a.key.as_str()) {
            errors.push(error(
                a.offset,
                format!("`{}` is given twice: keep one", a.key),
            ));
            continue;
        }
        seen.push(&a.key);
        let Some(value) = a.value.clone() else {
            let message = if is_command_key(&a.key) {
                format!("`{}` needs a value: `{}=…`", a.key, a.key)
            } else {
                unknown(&a.key)
            };
            errors.push(error(a.offset, message));
            continue;
        };
        let mut bad = |message: String| errors.push(error(a.offset, message));
        match a.key.as_str() {
            "node" | "run" => match target {
                Some(_) => bad(
                    "give one of `node=` (run in the node) or `run=` (a one-off container with its volumes), not both".into(),
                ),
                None if a.key == "node" => target = Some(Target::Exec(value)),
                None => target = Some(Target::Run(value)),
            },
            "image" => c.image = Some(value),
            "name" => c.name = Some(value),
            "timeout" => match duration(&value) {
                Ok(d) => c.timeout = Some(d),
                Err(m) => bad(format!("timeout: {m}")),
            },
            "wait" => {
                let (timeout, interval) = match value.split_once('/') {
                    Some((t, i)) => (t, Some(i)),
                    None => (value.as_str(), None),
                };
                match (duration(timeout), interval.map(duration).transpose()) {
                    (Ok(t), Ok(i)) => c.wait = Some((t, i)),
                    (Err(m), _) | (_, Err(m)) => bad(format!(
                        "wait: {m}, as `wait=TIMEOUT` or `wait=TIMEOUT/INTERVAL` (e.g. wait=30s/500ms)"
                    )),
                }
            }
            "exit_code" => match value.parse() {
                Ok(n) => c.exit_code = Some(n),
                Err(_) => bad(format!("exit_code: `{value}` is not a whole number")),
            },
            "contains" => c.contains.push(value),
            "regex" => c.regex = Some(value),
            "marks" => match value.as_str() {
                "backup" => c.marks = Some(Mark::Backup),
                "disaster" => c.marks = Some(Mark::Disaster),
                other => bad(format!("marks: `{other}` is not a mark: use `backup` or `disaster`")),
            },
            k => match k.strip_prefix("capture.") {
                Some(var) if is_identifier(var) => c.captures.push((var.to_string(), value)),
                Some(var) => bad(format!(
                    "`capture.{var}`: a variable name is letters, digits and `_`"
                )),
                None => bad(unknown(k)),
            },
        }
    }
    if c.image.is_some() && !matches!(target, Some(Target::Run(_))) {
        let at = attrs
            .iter()
            .find(|a| a.key == "image")
            .map_or(0, |a| a.offset);
        errors.push(error(
            at,
            "`image` goes with `run=NODE` (a one-off container); `node=` runs in the node's own container",
        ));
    }
    match target {
        Some(t) if errors.is_empty() => {
            c.target = t;
            Ok(c)
        }
        _ => Err(errors),
    }
}

fn is_command_key(key: &str) -> bool {
    matches!(
        key,
        "node"
            | "run"
            | "image"
            | "name"
            | "timeout"
            | "wait"
            | "exit_code"
            | "contains"
            | "regex"
            | "marks"
    ) || key.starts_with("capture.")
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown(key: &str) -> String {
    format!("unknown attribute `{key}`: a command block takes {COMMAND_KEYS}; an output block takes output, unordered")
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("`{text}` is not a duration: write a length of time such as 500ms, 30s or 2m")
    })
}

fn error(offset: usize, message: impl Into<String>) -> AttrError {
    AttrError {
        offset,
        message: message.into(),
    }
}

/// The language tag, and the attributes when the info string has braces.
fn split(info: &str) -> Result<(&str, Option<Vec<Attr>>), AttrError> {
    let lang_end = info
        .find(|c: char| c.is_whitespace() || c == '{')
        .unwrap_or(info.len());
    let lang = &info[..lang_end];
    let rest = &info[lang_end..];
    let open = lang_end + (rest.len() - rest.trim_start().len());
    // Without braces, words after the language are someone else's convention (```rust
    // ignore): the block is documentation.
    if !info[open..].starts_with('{') {
        return Ok((lang, None));
    }
    let mut attrs = Vec::new();
    let mut chars = info[open + 1..]
        .char_indices()
        .map(|(i, c)| (i + open + 1, c))
        .peekable();
    loop {
        while chars
            .next_if(|(_, c)| c.is_whitespace() || *c == ',')
            .is_some()
        {}
        let Some((at, c)) = chars.next() else {
            return Err(error(
                open,
                "`{` is never closed: end the attributes with `}`",
            ));
        };
        if c == '}' {
            let after = &info[at + 1..];
            if !after.trim().is_empty() {
                let trailing = at + 1 + (after.len() - after.trim_start().len());
                return Err(error(
                    trailing,
                    "nothing may follow the closing `}` of the attributes",
                ));
            }
            return Ok((lang, Some(attrs)));
        }
        if !is_key_char(c) {
            return Err(error(
                at,
                format!("unexpected `{c}`: attributes are written `key` or `key=value`, separated by spaces"),
            ));
        }
        let mut key = String::from(c);
        while let Some((_, c)) = chars.next_if(|(_, c)| is_key_char(*c)) {
            key.push(c);
        }
        let value = if chars.next_if(|(_, c)| *c == '=').is_some() {
            Some(value(info, at, &key, &mut chars)?)
        } else {
            None
        };
        attrs.push(Attr {
            key,
            value,
            offset: at,
        });
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// A value after `=`: bare up to a space, `,` or `}`; or quoted. In double quotes `\"` and
/// `\\` are escapes; single quotes take everything literally (regular expressions).
fn value(
    info: &str,
    key_at: usize,
    key: &str,
    chars: &mut std::iter::Peekable<impl Iterator<Item = (usize, char)>>,
) -> Result<String, AttrError> {
    let mut value = String::new();
    match chars.peek().copied() {
        Some((at, quote @ ('"' | '\''))) => {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        let message = format!(
                            "the quote opened here is never closed: end the value with `{quote}`"
                        );
                        return Err(error(at, message));
                    }
                    Some((_, c)) if c == quote => break,
                    Some((_, '\\')) if quote == '"' => {
                        match chars.next_if(|(_, c)| matches!(c, '"' | '\\')) {
                            Some((_, c)) => value.push(c),
                            None => value.push('\\'),
                        }
                    }
                    Some((_, c)) => value.push(c),
                }
            }
            if chars
                .peek()
                .is_some_and(|(_, c)| !c.is_whitespace() && !matches!(c, ',' | '}'))
            {
                let (at, _) = chars.peek().copied().unwrap_or((info.len(), ' '));
                return Err(error(
                    at,
                    "put a space between a quoted value and the next attribute",
                ));
            }
        }
        _ => {
            // `node=${member}`: a variable's braces are part of the value.
            let mut in_var = false;
            while let Some((_, c)) =
                chars.next_if(|(_, c)| !c.is_whitespace() && (in_var || !matches!(c, ',' | '}')))
            {
                in_var = match c {
                    '{' => value.ends_with('$'),
                    '}' => false,
                    _ => in_var,
                };
                value.push(c);
            }
            if value.is_empty() {
                return Err(error(
                    key_at,
                    format!("`{key}=` has no value: write `{key}=…`"),
                ));
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_of(info: &str) -> Command {
        match role(info) {
            Ok(Role::Command(c)) => *c,
            other => panic!("{info}: {other:?}"),
        }
    }

    fn refused(info: &str) -> AttrError {
        match role(info) {
            Err(mut e) => e.remove(0),
            Ok(r) => panic!("{info} was accepted as {r:?}"),
        }
    }

    #[test]
    fn plain_blocks_are_documentation() {
        assert_eq!(role("sh").unwrap(), Role::Documentation);
        assert_eq!(role("").unwrap(), Role::Documentation);
        assert_eq!(role("rust ignore").unwrap(), Role::Documentation);
        assert_eq!(role("sh {}").unwrap(), Role::Documentation);
        assert_eq!(role("firedrill").unwrap(), Role::Firedrill);
    }

    #[test]
    fn a_command_takes_every_option() {
        let c = command_of(
            r#"sh {node=etcd1 name="Check the leader" timeout=30s wait=20s/500ms exit_code=1 contains="is healthy" contains=ok regex='^etcd\d$' capture.leader='(etcd\d)' marks=backup}"#,
        );
        assert_eq!(c.target, Target::Exec("etcd1".into()));
        assert_eq!(c.name.as_deref(), Some("Check the leader"));
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            c.wait,
            Some((Duration::from_secs(20), Some(Duration::from_millis(500))))
        );
        assert_eq!(c.exit_code, Some(1));
        assert_eq!(c.contains, ["is healthy", "ok"]);
        assert_eq!(c.regex.as_deref(), Some(r"^etcd\d$"));
        assert_eq!(
            c.captures,
            [("leader".to_string(), r"(etcd\d)".to_string())]
        );
        assert_eq!(c.marks, Some(Mark::Backup));
        let c = command_of("sh {node=${leader},capture.x=${a}}");
        assert_eq!(c.target, Target::Exec("${leader}".into()));
        assert_eq!(c.captures, [("x".to_string(), "${a}".to_string())]);
        let c = command_of("shell {run=etcd1, image=firedrill/etcd:3.4.23, wait=1m}");
        assert_eq!(c.target, Target::Run("etcd1".into()));
        assert_eq!(c.image.as_deref(), Some("firedrill/etcd:3.4.23"));
        assert_eq!(c.wait, Some((Duration::from_secs(60), None)));
    }

    #[test]
    fn double_quotes_escape_and_single_quotes_do_not() {
        let c = command_of(r#"sh {node=a contains="say \"hi\" \d \\"}"#);
        assert_eq!(c.contains, [r#"say "hi" \d \"#]);
        let c = command_of(r#"sh {node=a regex='\\"'}"#);
        assert_eq!(c.regex.as_deref(), Some(r#"\\""#));
    }

    #[test]
    fn output_blocks() {
        assert_eq!(
            role("text {output}").unwrap(),
            Role::Output(MatchOptions { unordered: false })
        );
        assert_eq!(
            role("{output unordered}").unwrap(),
            Role::Output(MatchOptions { unordered: true })
        );
        let e = refused("text {output node=etcd1}");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("belongs on the command block"), "{e:?}");
        assert!(refused("text {output=yes}")
            .message
            .contains("takes no value"));
        assert!(refused("text {unordered}")
            .message
            .contains("goes with `output`"));
    }

    #[test]
    fn mistakes_are_located_in_the_info_string() {
        let e = refused("sh {node=etcd1 nod=etcd2}");
        assert_eq!(e.offset, 15);
        assert!(e.message.starts_with("unknown attribute `nod`"), "{e:?}");
        let e = refused("sh {node=etcd1 timeout=30x}");
        assert_eq!(e.offset, 15);
        assert!(e.message.contains("`30x` is not a duration"), "{e:?}");
        let e = refused("sh {node=etcd1 wait=30s/soon}");
        assert!(e.message.contains("`soon` is not a duration"), "{e:?}");
        let e = refused("sh {node=etcd1");
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("never closed"), "{e:?}");
        let e = refused(r#"sh {node=etcd1 name="Check}"#);
        assert_eq!(e.offset, 20);
        assert!(e.message.contains("quote opened here"), "{e:?}");
        let e = refused("sh {node=etcd1} trailing");
        assert_eq!(e.offset, 16);
        let e = refused("sh {node=}");
        assert!(e.message.contains("has no value"), "{e:?}");
        let e = refused("sh {node=a node=b}");
        assert!(e.message.contains("given twice"), "{e:?}");
        let e = refused("sh {node=a run=b}");
        assert!(e.message.contains("not both"), "{e:?}");
        let e = refused("sh {node=a image=x}");
        assert!(e.message.contains("goes with `run=NODE`"), "{e:?}");
        let e = refused("sh {node=a marks=restore}");
        assert!(e.message.contains("`restore` is not a mark"), "{e:?}");
        let e = refused("sh {node=a capture.lead-er=x}");
        assert!(e.message.contains("variable name"), "{e:?}");
        let e = refused("sh {node=a exit_code=one}");
        assert!(e.message.contains("not a whole number"), "{e:?}");
        let e = refused("sh {node=a #id}");
        assert!(e.message.starts_with("unexpected `#`"), "{e:?}");
        let e = refused("sh {timeout=30s}");
        assert!(e.message.contains("add `node=NODE`"), "{e:?}");
        let e = refused("bash {node=etcd1}");
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("only sh blocks run"), "{e:?}");
        let e = refused("firedrill {name=x}");
        assert!(e.message.contains("takes no attributes"), "{e:?}");
        let e = refused("sh {node=a timeout}");
        assert!(e.message.contains("needs a value"), "{e:?}");
    }
}
