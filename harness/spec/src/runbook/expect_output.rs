//! Expected output, trycmd/snapbox-style: the output block is compared with what the
//! command printed, line by line. `[..]` inside a line stands for any text on that line;
//! `...` alone on a line for any number of lines (none included). With `unordered` the
//! lines may come in any order.
//!
//! Both sides are normalized first: `\r\n` is `\n`, trailing spaces on a line and trailing
//! empty lines do not count (editors and terminals disagree about them).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

const ANY_LINES: &str = "...";
const ANY_TEXT: &str = "[..]";

/// Expectations written beyond this many lines × actual lines are not aligned for the diff
/// (the alignment is quadratic): the diff then compares the texts as they are.
const MAX_ALIGNMENT_CELLS: usize = 4_000_000;

/// How an output block is compared, from its attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// `{output unordered}`: every line must be there, in any order.
    pub unordered: bool,
}

/// The output is not what the block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// A unified diff from the block (`-`) to the output (`+`), where lines the block's
    /// wildcards cover are shown as the block writes them.
    pub diff: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diff)
    }
}

/// Compares `actual` with the output block `expected`.
pub fn match_output(expected: &str, actual: &str, options: MatchOptions) -> Result<(), Mismatch> {
    let e = lines(expected);
    let a = lines(actual);
    if options.unordered {
        let assigned = Assignment::new(&e, &a);
        if assigned.is_complete() {
            return Ok(());
        }
        return Err(Mismatch {
            diff: assigned.diff(&e, &a),
        });
    }
    if ordered(&e, &a) {
        return Ok(());
    }
    let rewritten = rewrite_ordered(&e, &a);
    let diff = similar::TextDiff::from_lines(&join(&e), &join(&rewritten))
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string();
    Err(Mismatch { diff })
}

/// A likely mistyped wildcard in an output block: the line (0-based), the column (in
/// characters, 0-based) and what to write instead. Such a line would only ever match
/// itself, which is never what was meant.
pub(crate) fn lint(expected: &str) -> Option<(usize, usize, String)> {
    static BRACKETED_DOTS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[ *\.+ *\]").expect("a valid regular expression"));
    for (i, line) in expected.lines().enumerate() {
        if line.trim() == ANY_LINES && line.trim_end() != ANY_LINES {
            let column = line.len() - line.trim_start().len();
            let message = "`...` stands for any lines only alone on its line, at its start: remove the spaces before it";
            return Some((i, column, message.into()));
        }
        if let Some(m) = BRACKETED_DOTS
            .find_iter(line)
            .find(|m| m.as_str() != ANY_TEXT)
        {
            let column = line[..m.start()].chars().count();
            let message = format!(
                "`{}` is not a wildcard: `[..]` stands for any text in a line",
                m.as_str()
            );
            return Some((i, column, message));
        }
    }
    None
}

/// `actual` written as the block `expected` would write it: normalized, with the block's
/// wildcard lines (and `...`) kept where they still match. What `bless` puts in the block.
pub(crate) fn rewrite(expected: &str, actual: &str, options: MatchOptions) -> String {
    let e = lines(expected);
    let a = lines(actual);
    let rewritten = if options.unordered {
        Assignment::new(&e, &a).rewrite(&e, &a)
    } else {
        rewrite_ordered(&e, &a)
    };
    join(&rewritten)
}

fn lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn join(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// One expected line against one actual line: `[..]` matches any text, the rest literally.
fn line_matches(pattern: &str, line: &str) -> bool {
    if !pattern.contains(ANY_TEXT) {
        return pattern == line;
    }
    let pieces: Vec<&str> = pattern.split(ANY_TEXT).collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Glob matching over lines, `...` being the star: greedy, backtracking to the last `...`.
fn ordered(e: &[&str], a: &[&str]) -> bool {
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < a.len() {
        if e.get(i) == Some(&ANY_LINES) {
            star = Some((i, j));
            i += 1;
        } else if i < e.len() && line_matches(e[i], a[j]) {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    e[i..].iter().all(|l| *l == ANY_LINES)
}

/// `a` aligned with `e` at the least cost, and written out the way `e` would write it. An
/// expected line that matches, and `...` taking any lines, cost nothing and are written as
/// expected; an actual line in place of an expected one, an extra actual line and a
/// missing expected line cost one each, and the actual lines are written as they are.
fn rewrite_ordered<'a>(e: &[&'a str], a: &[&'a str]) -> Vec<&'a str> {
    let (n, m) = (e.len(), a.len());
    if (n + 1).saturating_mul(m + 1) > MAX_ALIGNMENT_CELLS {
        return a.to_vec();
    }
    let width = m + 1;
    let at = |i: usize, j: usize| i * width + j;
    // cost[at(i, j)]: aligning e[i..] with a[j..].
    let mut cost = vec![0u32; (n + 1) * width];
    for j in 0..=m {
        cost[at(n, j)] = (m - j) as u32;
    }
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            let next = cost[at(i + 1, j)];
            cost[at(i, j)] = if e[i] == ANY_LINES {
                if j < m {
                    next.min(cost[at(i, j + 1)])
                } else {
                    next
                }
            } else {
                let mut best = next + 1;
                if j < m {
                    let diagonal = cost[at(i + 1, j + 1)];
                    best = best.min(cost[at(i, j + 1)] + 1).min(diagonal + 1);
                    if line_matches(e[i], a[j]) {
                        best = best.min(diagonal);
                    }
                }
                best
            };
        }
    }
    // Ties go to what keeps the page's own lines: leaving `...` early, then a match, then
    // an actual line in place of an expected one.
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        let here = cost[at(i, j)];
        if i == n {
            out.push(a[j]);
            j += 1;
        } else if e[i] == ANY_LINES {
            if cost[at(i + 1, j)] == here {
                out.push(ANY_LINES);
                i += 1;
            } else {
                j += 1;
            }
        } else if j < m && line_matches(e[i], a[j]) && cost[at(i + 1, j + 1)] == here {
            out.push(e[i]);
            i += 1;
            j += 1;
        } else if j < m && cost[at(i + 1, j + 1)] + 1 == here {
            out.push(a[j]);
            i += 1;
            j += 1;
        } else if j < m && cost[at(i, j + 1)] + 1 == here {
            out.push(a[j]);
            j += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Unordered: which expected line each actual line is, literal lines first so that a
/// wildcard line does not take a line a literal one needs.
struct Assignment {
    /// For each actual line, the expected line it matched.
    of_actual: Vec<Option<usize>>,
    /// Expected lines no actual line matched.
    missing: Vec<usize>,
    /// The block has `...`: actual lines no expected line matched are allowed.
    any_lines: bool,
}

impl Assignment {
    fn new(e: &[&str], a: &[&str]) -> Self {
        let mut of_actual = vec![None; a.len()];
        let mut missing = Vec::new();
        let units = || e.iter().enumerate().filter(|(_, l)| **l != ANY_LINES);
        let literal = units().filter(|(_, l)| !l.contains(ANY_TEXT));
        let wildcard = units().filter(|(_, l)| l.contains(ANY_TEXT));
        for (i, pattern) in literal.chain(wildcard) {
            let free =
                (0..a.len()).find(|&j| of_actual[j].is_none() && line_matches(pattern, a[j]));
            match free {
                Some(j) => of_actual[j] = Some(i),
                None => missing.push(i),
            }
        }
        missing.sort_unstable();
        Assignment {
            of_actual,
            missing,
            any_lines: e.contains(&ANY_LINES),
        }
    }

    fn unexpected(&self) -> impl Iterator<Item = usize> + '_ {
        let any_lines = self.any_lines;
        self.of_actual
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.is_none() && !any_lines)
            .map(|(j, _)| j)
    }

    fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected().next().is_none()
    }

    /// Lines missing from the output, then lines the block does not have.
    fn diff(&self, e: &[&str], a: &[&str]) -> String {
        let mut diff = String::from("--- expected (any order)\n+++ actual\n");
        for &i in &self.missing {
            diff.push_str(&format!("-{}\n", e[i]));
        }
        for j in self.unexpected() {
            diff.push_str(&format!("+{}\n", a[j]));
        }
        diff
    }

    /// In the output's order; a `...` block keeps its `...` (at the end) instead of the
    /// lines it absorbed.
    fn rewrite<'a>(&self, e: &[&'a str], a: &[&'a str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = a
            .iter()
            .zip(&self.of_actual)
            .filter_map(|(line, m)| match m {
                Some(i) => Some(e[*i]),
                None if self.any_lines => None,
                None => Some(*line),
            })
            .collect();
        if self.any_lines {
            out.push(ANY_LINES);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERED: MatchOptions = MatchOptions { unordered: false };
    const UNORDERED: MatchOptions = MatchOptions { unordered: true };

    fn ok(expected: &str, actual: &str) -> bool {
        match_output(expected, actual, ORDERED).is_ok()
    }

    #[test]
    fn literal_lines_after_normalization() {
        assert!(ok("a\nb\n", "a\nb\n"));
        assert!(ok("a\nb", "a  \r\nb\n\n\n"));
        assert!(!ok("a\nb\n", "a\nc\n"));
        assert!(!ok("a\n", "a\nb\n"));
        assert!(!ok("a\nb\n", "a\n"));
        assert!(ok("", ""));
        assert!(!ok("", "x"));
        // Leading spaces count.
        assert!(!ok("  a", "a"));
    }

    #[test]
    fn any_text_inside_a_line() {
        assert!(line_matches(
            "etcd1:2379 is healthy: took [..]",
            "etcd1:2379 is healthy: took 1.2ms"
        ));
        assert!(line_matches("[..]", ""));
        assert!(line_matches("a[..]b[..]c", "a-b-c"));
        assert!(line_matches("a[..]b[..]c", "abc"));
        assert!(!line_matches("a[..]b[..]c", "acb"));
        assert!(!line_matches("ab[..]ba", "aba"), "pieces must not overlap");
        assert!(!line_matches("x[..]", "yx"));
        assert!(ok("version [..]\n", "version 3.5.1\n"));
    }

    #[test]
    fn any_lines_alone_on_a_line() {
        assert!(ok("...\n", ""));
        assert!(ok("...\n", "a\nb\n"));
        assert!(ok("first\n...\nlast\n", "first\nlast\n"));
        assert!(ok("first\n...\nlast\n", "first\n1\n2\nlast\n"));
        assert!(ok("...\nb\n...\n", "a\nb\nc\nb\nd\n"));
        // Backtracking: the first `b` is not the one the block needs before `c`.
        assert!(ok("...\nb\nc\n", "b\nx\nb\nc\n"));
        assert!(!ok("first\n...\nlast\n", "first\n1\n"));
        assert!(!ok("...\nmissing\n...\n", "a\nb\n"));
        assert!(ok(
            "a\n...\n[..]:2379 is healthy\n",
            "a\nb\netcd3:2379 is healthy\n"
        ));
    }

    #[test]
    fn unordered_lines() {
        let yes = |e: &str, a: &str| match_output(e, a, UNORDERED).is_ok();
        assert!(yes("a\nb\nc\n", "c\na\nb\n"));
        assert!(!yes("a\nb\nc\n", "c\na\n"));
        assert!(!yes("a\nb\n", "b\na\nx\n"));
        assert!(yes("a\n...\n", "x\na\ny\n"));
        // The literal line gets its line before the wildcard line picks one.
        assert!(yes("etcd[..]\netcd2\n", "etcd2\netcd1\n"));
        // Repeated lines are counted.
        assert!(!yes("a\na\n", "a\n"));
        let diff = match_output("a\nb\n", "b\nc\n", UNORDERED)
            .unwrap_err()
            .diff;
        assert_eq!(diff, "--- expected (any order)\n+++ actual\n-a\n+c\n");
    }

    #[test]
    fn the_diff_shows_only_real_differences() {
        let expected = "header\n...\nmember etcd1 took [..]\nfooter\n";
        let actual = "header\nnoise\nmore noise\nmember etcd1 took 3ms\nFOOTER\n";
        let diff = match_output(expected, actual, ORDERED).unwrap_err().diff;
        assert_eq!(
            diff,
            "--- expected\n+++ actual\n@@ -1,4 +1,4 @@\n header\n ...\n member etcd1 took [..]\n-footer\n+FOOTER\n"
        );
        assert_eq!(format!("{}", Mismatch { diff: "x\n".into() }), "x\n");
    }

    #[test]
    fn rewriting_keeps_the_wildcards_that_still_match() {
        let expected = "took [..]\n...\nend\n";
        assert_eq!(
            rewrite(expected, "took 2ms\na\nb\nend\n", ORDERED),
            expected
        );
        assert_eq!(
            rewrite(expected, "took 2ms\na\nEND\n", ORDERED),
            "took [..]\n...\nEND\n"
        );
        assert_eq!(
            rewrite("took [..]\nend\n", "went 2ms\nend\n", ORDERED),
            "went 2ms\nend\n"
        );
        assert_eq!(rewrite("a\n...\n", "b\na\nc\n", UNORDERED), "a\n...\n");
        assert_eq!(rewrite("x [..]\ny\n", "z\nx 1\n", UNORDERED), "z\nx [..]\n");
        assert_eq!(rewrite("a\n", "b\r\nc  \n\n", ORDERED), "b\nc\n");
    }

    #[test]
    fn mistyped_wildcards_are_found() {
        assert_eq!(lint("a [..] b\n...\n"), None);
        assert_eq!(lint("Waiting...\n[x]\n"), None);
        let (line, column, message) = lint("ok\ntook [...]\n").unwrap();
        assert_eq!((line, column), (1, 5));
        assert!(
            message.starts_with("`[...]` is not a wildcard"),
            "{message}"
        );
        assert_eq!(lint("a\n[ .. ]\n").map(|l| (l.0, l.1)), Some((1, 0)));
        let (line, column, message) = lint("a\n  ...\n").unwrap();
        assert_eq!((line, column), (1, 2));
        assert!(message.contains("alone on its line"), "{message}");
    }

    #[test]
    fn huge_outputs_are_compared_as_they_are() {
        let actual: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let expected: String = (0..1000).map(|i| format!("line {i} [..]\n")).collect();
        assert!(match_output(&expected, &actual, ORDERED).is_err());
        assert_eq!(rewrite(&expected, &actual, ORDERED), actual);
    }
}
