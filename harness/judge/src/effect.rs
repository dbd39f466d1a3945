//! Time to effect, read in log lines: when a change made by a step shows in what the system
//! writes. A `log` step polls a node's output or a file inside it; each poll's lines, dated
//! on the run clock, are judged here: either the first line like the expected one, or the
//! moment lines of the old behaviour stopped (none for a quiet period while others go on).

use firedrill_spec::plan::LineMatch;
use firedrill_types::history::Micros;

/// One line as read, dated on the run clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub at: Micros,
    pub text: String,
}

/// When the effect showed, and the line that shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub at: Micros,
    /// The first line like the expected one; under `stops`, the last line of the old
    /// behaviour (`None`: there was none after the step).
    pub line: Option<String>,
}

/// Whether `text` holds everything `m` asks: the text, and each JSON value (compared as
/// text, a string by its contents).
pub fn matches(m: &LineMatch, text: &str) -> bool {
    if let Some(c) = &m.contains {
        if !text.contains(c.as_str()) {
            return false;
        }
    }
    if m.json.is_empty() {
        return true;
    }
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        return false;
    };
    m.json
        .iter()
        .all(|(pointer, want)| match doc.pointer(pointer) {
            Some(serde_json::Value::String(s)) => s == want,
            Some(v) => serde_json::to_string(v).is_ok_and(|t| t == *want),
            None => false,
        })
}

/// The first line at or after `after` that matches.
pub fn first(lines: &[Line], m: &LineMatch, after: Micros) -> Option<Seen> {
    lines
        .iter()
        .filter(|l| l.at >= after)
        .find(|l| matches(m, &l.text))
        .map(|l| Seen {
            at: l.at,
            line: Some(l.text.clone()),
        })
}

/// Whether lines that match stopped after `after`: the last of them (or `after`, when none
/// came) must be followed by other lines spanning at least `quiet`, so that silence is not
/// taken for an effect: the service must go on writing, in the new way.
pub fn stopped(lines: &[Line], m: &LineMatch, after: Micros, quiet: Micros) -> Option<Seen> {
    let since: Vec<&Line> = lines.iter().filter(|l| l.at >= after).collect();
    let last = since.iter().rev().find(|l| matches(m, &l.text));
    let at = last.map_or(after, |l| l.at);
    let newest_other = since
        .iter()
        .filter(|l| l.at > at && !matches(m, &l.text))
        .map(|l| l.at)
        .max()?;
    (newest_other.saturating_sub(at) >= quiet).then(|| Seen {
        at,
        line: last.map(|l| l.text.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str) -> LineMatch {
        LineMatch {
            contains: None,
            json: vec![("/status".into(), s.into())],
        }
    }

    fn log(entries: &[(Micros, &str)]) -> Vec<Line> {
        entries
            .iter()
            .map(|(at, s)| Line {
                at: *at,
                text: format!(r#"{{"ts": {at}, "status": "{s}", "rate": 0.5}}"#),
            })
            .collect()
    }

    #[test]
    fn lines_match_by_text_and_by_json_values() {
        let line = r#"{"status": "skipped", "feature_enabled": false, "sample_rate": 0.05}"#;
        assert!(matches(&status("skipped"), line));
        assert!(!matches(&status("applied"), line));
        let both = LineMatch {
            contains: Some("sample".into()),
            json: vec![
                ("/feature_enabled".into(), "false".into()),
                ("/sample_rate".into(), "0.05".into()),
            ],
        };
        assert!(matches(&both, line));
        assert!(!matches(&status("skipped"), "not json: skipped"));
        assert!(matches(
            &LineMatch {
                contains: Some("listening".into()),
                json: vec![]
            },
            "ranker 1.0 listening on :8080"
        ));
    }

    #[test]
    fn the_first_matching_line_after_the_step() {
        let lines = log(&[
            (1, "skipped"),
            (5, "applied"),
            (7, "skipped"),
            (9, "skipped"),
        ]);
        let seen = first(&lines, &status("skipped"), 3).unwrap();
        assert_eq!(seen.at, 7);
        assert_eq!(first(&lines, &status("error"), 0), None);
    }

    #[test]
    fn old_lines_stopped_only_once_new_ones_span_the_quiet_period() {
        // Sampling at 50 %: "skipped" lines come before and after the switch; the effect
        // is the last "applied" one, confirmed by other lines 10 later.
        let lines = log(&[
            (0, "applied"),
            (10, "skipped"),
            (20, "applied"),
            (25, "skipped"),
            (30, "skipped"),
            (35, "skipped"),
        ]);
        assert_eq!(
            stopped(&lines, &status("applied"), 5, 20),
            None,
            "not quiet long enough yet"
        );
        let seen = stopped(&lines, &status("applied"), 5, 15).unwrap();
        assert_eq!(seen.at, 20);
        assert!(seen.line.unwrap().contains("applied"));
        // None after the step at all: the effect was there from the step's start.
        let seen = stopped(&lines, &status("applied"), 22, 10).unwrap();
        assert_eq!((seen.at, seen.line), (22, None));
    }

    #[test]
    fn silence_is_no_effect() {
        // The service stopped writing (it is down, or nobody calls it): nothing shows that
        // the old behaviour ended.
        let lines = log(&[(0, "applied"), (20, "applied")]);
        assert_eq!(stopped(&lines, &status("applied"), 5, 1), None);
        assert_eq!(stopped(&[], &status("applied"), 5, 1), None);
    }
}
