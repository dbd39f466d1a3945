//! Reading the YAML inputs (scenarios, compose files, load profiles) with errors that name
//! the file, line and column, and say what to do.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

/// A problem in an input file, located where the user can fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The offending lines with a caret, when known.
    pub snippet: Option<String>,
}

impl Diagnostic {
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            snippet: None,
        }
    }

    pub fn at(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            snippet: None,
        }
    }

    pub fn at_location(
        file: &Path,
        location: &serde_saphyr::Location,
        message: impl Into<String>,
    ) -> Self {
        Self::at(file, location.line(), location.column(), message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// What kind of input file is read, for the messages of [`read_text_file`].
pub struct TextFile {
    /// "YAML", "a Markdown runbook"…: what the file should hold.
    pub holds: &'static str,
    /// The extension to name, e.g. ".yaml".
    pub extension: &'static str,
    /// What to write into an empty file.
    pub empty_hint: &'static str,
}

/// Reads a file as UTF-8 text, refusing directories, empty and binary files with a clear
/// message.
pub fn read_text_file(path: &Path, kind: &TextFile) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if path.is_dir() {
            format!("is a directory, not a file: name a {} file", kind.extension)
        } else {
            format!("cannot be read ({e}): check the path and its permissions")
        };
        Diagnostic::whole_file(path, what)
    })?;
    if bytes.contains(&0) {
        return Err(Diagnostic::whole_file(
            path,
            format!(
                "is a binary file, not {}: point firedrill at the {} file",
                kind.holds, kind.extension
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::whole_file(path, format!("is not UTF-8 text ({e}): save it as UTF-8"))
    })?;
    if text.trim().is_empty() {
        return Err(Diagnostic::whole_file(
            path,
            format!("is empty: {}; fill it in or remove it", kind.empty_hint),
        ));
    }
    Ok(text)
}

/// Reads a YAML file as UTF-8 text, refusing empty and binary files with a clear message.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let text = read_text_file(
        path,
        &TextFile {
            holds: "YAML",
            extension: ".yaml",
            empty_hint: "a YAML document was expected",
        },
    )?;
    // Checked here because the parser only says "unexpected end of input" at the last comment.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Diagnostic::whole_file(
            path,
            "holds only comments: a YAML document was expected; uncomment it or remove the file",
        ));
    }
    Ok(text)
}

/// Parses `text` (the contents of `path`) into `T`, locating any error.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    // Syntax first: the typed pass stops at the first key it misses, which would blame a
    // "missing field" on a map whose real problem is the badly indented line below it.
    serde_saphyr::from_str::<de::IgnoredAny>(text).map_err(|e| from_saphyr(path, text, &e))?;
    serde_saphyr::from_str::<T>(text).map_err(|e| from_saphyr(path, text, &e))
}

/// Reads and parses a YAML file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, Diagnostic> {
    let text = read_text(path)?;
    parse(path, &text)
}

fn from_saphyr(path: &Path, text: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let cause = original(error);
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // A top-level key has no line of its own to point at: the parser reports wherever the
    // document's map ended, which would only mislead.
    if let serde_saphyr::Error::SerdeMissingField { field, .. } = cause {
        if column == 1 {
            return Diagnostic::whole_file(
                path,
                format!("has no `{field}`: add `{field}: …` at the top level"),
            );
        }
    }
    let message = explain(text, cause)
        .map(|w| w.message)
        .unwrap_or_else(|| DefaultMessageFormatter.format_message(cause).into_owned());
    let shown = path.display().to_string();
    let label = CaretLabel(text);
    let mut options = serde_saphyr::RenderOptions::new(&label);
    options.source_name = Some(&shown);
    let rendered = error.render_with_options(options);
    // The first line repeats the message; the rest is the snippet with its caret.
    let snippet = rendered.lines().skip(1).collect::<Vec<_>>().join("\n");
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        message,
        snippet: (!snippet.trim().is_empty()).then_some(snippet),
    }
}

/// The error itself, without the snippet and alias wrappers serde-saphyr puts around it.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    use serde_saphyr::Error;
    while let Error::WithSnippet { error: inner, .. } | Error::AliasError { error: inner, .. } =
        error
    {
        error = inner;
    }
    error
}

/// A message in the words of the person who wrote the file, and the short form of it shown
/// under the snippet's caret.
struct Explained {
    message: String,
    label: String,
}

/// serde-saphyr's messages are written for the Rust developer ("invalid u16", "expected
/// mapping start", "set DuplicateKeyPolicy in Options"); this says the same to the user,
/// with what to do. `None`: serde-saphyr's own message is clear enough.
fn explain(text: &str, error: &serde_saphyr::Error) -> Option<Explained> {
    use serde_saphyr::Error;
    let explained = |message: String, label: &str| {
        Some(Explained {
            message,
            label: label.to_string(),
        })
    };
    match error {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let allowed = expected.join(", ");
            let message = match closest(field, expected) {
                Some(near) => format!(
                    "unknown key `{field}`: did you mean `{near}`? (allowed here: {allowed})"
                ),
                None => format!("unknown key `{field}`: remove it, or use one of {allowed}"),
            };
            explained(message, "unknown key")
        }
        Error::SerdeMissingField { field, .. } => explained(
            format!("missing key `{field}`: add `{field}: …` to this map"),
            &format!("`{field}` is missing here"),
        ),
        Error::InvalidScalar { ty, location } => {
            let wanted = scalar_kind(ty);
            let message = match token_at(text, location) {
                Some(t) => format!("`{t}` is not {wanted}"),
                None => format!("this value is not {wanted}"),
            };
            explained(message, &format!("not {wanted}"))
        }
        Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } if expected == "a duration" => {
            let value = unexpected
                .strip_prefix("string \"")
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(unexpected);
            explained(
                format!("`{value}` is not a duration: write a length of time such as 500ms, 30s or 2m (never negative)"),
                "not a duration",
            )
        }
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => explained(
            format!(
                "`{variant}` is not allowed here: use one of {}",
                expected.join(", ")
            ),
            "not allowed here",
        ),
        Error::Unexpected { expected, .. } => match *expected {
            "mapping start" => explained(
                "a map of `key: value` entries is expected here, not a single value or a list"
                    .into(),
                "a map is expected here",
            ),
            "sequence start" => explained(
                "a list is expected here: write `- item` lines below it, or `[a, b]`".into(),
                "a list is expected here",
            ),
            "string scalar" => explained(
                "a single value is expected here, not a list or a map".into(),
                "a single value is expected here",
            ),
            _ => None,
        },
        Error::NullIntoString { .. } => explained(
            "the value is missing: write it after the `:`, or remove the key".into(),
            "value missing",
        ),
        Error::DuplicateMappingKey { key: Some(key), .. } => explained(
            format!("`{key}` is given twice in this map: keep one"),
            "given again here",
        ),
        Error::ExternalMessage { msg, .. } => {
            let hint = if msg.contains("tab") {
                "indent with spaces; YAML does not allow tabs there"
            } else if msg.starts_with("unclosed bracket") {
                "close it with the matching `]` or `}`"
            } else if msg.starts_with("unclosed quote") {
                "close the quote at the end of the value"
            } else if msg.contains("mapping values are not allowed") {
                // Most often a plain value with `: ` in it (a sentence, a command).
                "if the value itself contains `: `, quote it (\"…\"); otherwise check the indentation: the keys of one map start in the same column"
            } else if msg.contains("indicator")
                || msg.contains("expected key")
                || msg.contains("not allowed in this context")
                || msg.contains("indentation")
            {
                "check the indentation: the keys of one map, and the items of one list, start in the same column"
            } else {
                "fix the YAML syntax here"
            };
            explained(format!("YAML syntax error, {msg}: {hint}"), msg)
        }
        _ => None,
    }
}

/// Renders the snippet with the short label under its caret: the full message is already
/// on the line above it.
struct CaretLabel<'a>(&'a str);

impl MessageFormatter for CaretLabel<'_> {
    fn format_message<'e>(&self, error: &'e serde_saphyr::Error) -> Cow<'e, str> {
        match explain(self.0, error) {
            Some(w) => Cow::Owned(w.label),
            None => DefaultMessageFormatter.format_message(error),
        }
    }
}

/// What a scalar of the type serde-saphyr names must look like, in a user's words.
fn scalar_kind(ty: &str) -> String {
    match ty {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" | "usize" | "u128" => "a whole number of 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "a whole number".into(),
        "floating point" => "a number (such as 0.5)".into(),
        "boolean" => "true or false".into(),
        other => format!("a valid {other}"),
    }
}

/// The plain scalar that starts at `location`, as the user wrote it.
fn token_at(text: &str, location: &serde_saphyr::Location) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(location.line()).ok()?.checked_sub(1)?)?;
    let rest: String = line
        .chars()
        .skip(usize::try_from(location.column()).ok()?.saturating_sub(1))
        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
        .collect();
    let token = rest.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// The allowed key closest to a mistyped one, when it is close enough to be a typo.
fn closest<'k>(typed: &str, allowed: &[&'k str]) -> Option<&'k str> {
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for key in allowed {
        let d = edit_distance(typed, key);
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tie = true,
            _ => {
                best = Some((d, key));
                tie = false;
            }
        }
    }
    match best {
        Some((d, key)) if !tie && d <= 2 && d < typed.len() => Some(key),
        _ => None,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The 1-based line of the first top-level mapping key `key` in `text`, for validation errors
/// about top-level keys that serde cannot locate.
pub fn top_level_key_line(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i as u64 + 1)
}

/// A scalar of any YAML type, kept as its text (compose allows `RETRIES: 3`).
#[derive(Debug, Clone)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        command: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn error(text: &str) -> Diagnostic {
        parse::<Doc>(Path::new("s.yaml"), text).expect_err("the document must be refused")
    }

    #[test]
    fn unknown_key_is_located() {
        let d = error("name: a\nbogus: 1\n");
        assert_eq!((d.line, d.column), (2, 1));
        assert!(
            d.to_string()
                .starts_with("s.yaml:2:1: unknown key `bogus`: remove it, or use one of name"),
            "{d}"
        );
        let snippet = d.snippet.unwrap();
        assert!(snippet.contains("s.yaml:2:1"), "{snippet}");
        // The caret carries a short label; the full message is already above it.
        assert!(
            snippet.contains("^ unknown key\n") || snippet.ends_with("^ unknown key"),
            "{snippet}"
        );
    }

    #[test]
    fn a_near_miss_key_gets_a_suggestion() {
        let d = error("nmae: a\n");
        assert!(d.message.contains("did you mean `name`?"), "{d}");
        let d = error("name: a\ninner: { comand: x }\n");
        assert!(d.message.contains("did you mean `command`?"), "{d}");
        // Far from every allowed key: no guess.
        let d = error("name: a\nthreads: 4\n");
        assert!(!d.message.contains("did you mean"), "{d}");
    }

    #[test]
    fn a_missing_top_level_key_names_the_file_only() {
        let d = error("port: 1\n");
        assert_eq!(d.line, 0, "{d}");
        assert_eq!(d.message, "has no `name`: add `name: …` at the top level");
        let d = error("name: a\ninner:\n  tags: []\n");
        assert_eq!(d.line, 3, "{d}");
        assert!(d.message.starts_with("missing key `command`"), "{d}");
    }

    #[test]
    fn wrong_types_are_said_in_the_users_words() {
        let d = error("name: a\nport: http\n");
        assert_eq!((d.line, d.column), (2, 7));
        assert_eq!(d.message, "`http` is not a whole number from 0 to 65535");
        let d = error("name: a\ninner: [x]\n");
        assert!(
            d.message
                .starts_with("a map of `key: value` entries is expected"),
            "{d}"
        );
        let d = error("name: a\ninner: { command: x, tags: x }\n");
        assert!(d.message.starts_with("a list is expected here"), "{d}");
        let d = error("name: a\nname: b\n");
        assert_eq!(d.message, "`name` is given twice in this map: keep one");
    }

    #[test]
    fn syntax_errors_come_before_type_errors_and_say_what_to_do() {
        // The typed pass alone would blame the missing `command` of `inner`.
        let d = error("name: a\ninner:\n  tags: []\n command: x\n");
        assert_eq!(d.line, 4, "{d}");
        assert!(d.message.starts_with("YAML syntax error"), "{d}");
        assert!(d.message.contains("check the indentation"), "{d}");
        let d = error("name: a\ninner:\n  command: echo it: works\n");
        assert!(d.message.contains("quote it"), "{d}");
        let d = error("name: a\ninner:\n\tcommand: x\n");
        assert!(d.message.contains("indent with spaces"), "{d}");
        let d = error("name: [a\n");
        assert!(d.message.contains("close it with the matching"), "{d}");
    }

    #[test]
    fn closest_key_needs_one_clear_winner() {
        assert_eq!(
            closest("max_p95", &["max_p50", "max_p99", "min_ops"]),
            Some("max_p99")
        );
        assert_eq!(closest("ab", &["ac", "ad"]), None);
        assert_eq!(closest("x", &["y"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn empty_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("e.yaml");
        std::fs::write(&empty, "  \n").unwrap();
        assert!(read_text(&empty).unwrap_err().message.contains("empty"));
        let bin = dir.path().join("b.yaml");
        std::fs::write(&bin, [0x7f, b'E', b'L', b'F', 0, 1]).unwrap();
        assert!(read_text(&bin).unwrap_err().message.contains("binary"));
        let comments = dir.path().join("c.yaml");
        std::fs::write(&comments, "# name: x\n\n  # more\n").unwrap();
        assert!(read_text(&comments)
            .unwrap_err()
            .message
            .contains("only comments"));
        std::fs::write(&comments, "# a comment\nname: x\n").unwrap();
        assert!(read_text(&comments).is_ok());
    }

    #[test]
    fn top_level_key_lines() {
        assert_eq!(
            top_level_key_line("a: 1\nnetworks:\n  x: {}\n", "networks"),
            Some(2)
        );
        assert_eq!(top_level_key_line("a: 1\n", "networks"), None);
    }
}
