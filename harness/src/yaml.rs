//! Reading the YAML inputs (scenarios, compose files, load profiles) with errors that name
//! the file, line and column, and say what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

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

/// Reads a file as UTF-8 text, refusing empty and binary files with a clear message.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if path.is_dir() {
            "is a directory, not a file".to_string()
        } else {
            format!("cannot be read: {e}")
        };
        Diagnostic::whole_file(path, what)
    })?;
    if bytes.contains(&0) {
        return Err(Diagnostic::whole_file(
            path,
            "is a binary file, not YAML: point firedrill at the .yaml file",
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Diagnostic::whole_file(path, format!("is not UTF-8 text ({e})")))?;
    if text.trim().is_empty() {
        return Err(Diagnostic::whole_file(
            path,
            "is empty: a YAML document was expected",
        ));
    }
    Ok(text)
}

/// Parses `text` (the contents of `path`) into `T`, locating any error.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str::<T>(text).map_err(|e| from_saphyr(path, &e))
}

/// Reads and parses a YAML file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, Diagnostic> {
    let text = read_text(path)?;
    parse(path, &text)
}

fn from_saphyr(path: &Path, error: &serde_saphyr::Error) -> Diagnostic {
    let rendered = error.render();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    // The first line reads "error: line L column C: <message>"; keep only the message.
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, rest)| rest)
        .unwrap_or(first)
        .to_string();
    let shown = path.display().to_string();
    let snippet: String = lines
        .map(|l| l.replace("<input>", &shown))
        .collect::<Vec<_>>()
        .join("\n");
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        message,
        snippet: (!snippet.trim().is_empty()).then_some(snippet),
    }
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

/// A scalar of any YAML type, kept as its text (compose allows `ETCDCTL_API: 3`).
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
    }

    #[test]
    fn unknown_key_is_located() {
        let d = parse::<Doc>(Path::new("s.yaml"), "name: a\nbogus: 1\n").unwrap_err();
        assert_eq!((d.line, d.column), (2, 1));
        assert!(d.message.contains("unknown field `bogus`"), "{d}");
        assert!(
            d.to_string().starts_with("s.yaml:2:1: unknown field"),
            "{d}"
        );
        assert!(d.snippet.unwrap().contains("s.yaml:2:1"));
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
