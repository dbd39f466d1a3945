//! `firedrill merge`: the runs of several shards as one index.
//!
//! Pure functions from the runs' summaries (and where their directories lie relative to the
//! merged directory) to the index (`summary.json`, schema `firedrill.index/v1`), one
//! `junit.xml` with a `<testsuite>` per run, and `index.md` / `index.html` linking every
//! run's report. The command line finds the summaries and writes the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use quick_junit::Report;

use firedrill_types::index::{Index, IndexEntry, SCHEMA};
use firedrill_types::summary::{Summary, Verdict};

use crate::{html_escape, junit, seconds_from_ms, ReportError, HTML_FILE, MARKDOWN_FILE};

/// The merged files, beside `summary.json` (the index) and `junit.xml`.
pub const INDEX_MARKDOWN_FILE: &str = "index.md";
pub const INDEX_HTML_FILE: &str = "index.html";

/// One run found in a shard's artifacts.
#[derive(Debug, Clone)]
pub struct Run {
    pub summary: Summary,
    /// Its directory relative to the merged directory, `/` separated (`""`: the same one).
    pub path: String,
}

/// The index and the rendered files, in the order to write them.
#[derive(Debug)]
pub struct Merged {
    pub index: Index,
    /// (file name, contents): summary.json, junit.xml, index.md, index.html.
    pub files: Vec<(&'static str, String)>,
}

/// Everything `firedrill merge` writes, from the runs found. `sources` are the directories
/// given to the merge (as given), `generated_at` RFC 3339.
pub fn merge(runs: &[Run], sources: &[String], generated_at: &str) -> Result<Merged, ReportError> {
    let mut runs: Vec<&Run> = runs.iter().collect();
    runs.sort_by(|a, b| {
        let key = |r: &Run| {
            (
                r.summary.scenario.clone(),
                r.summary.started_at.clone(),
                r.summary.run_id.clone(),
                r.path.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let names = suite_names(&runs);
    let index = index(&runs, &names, sources, generated_at);
    let mut json = serde_json::to_string_pretty(&index)?;
    json.push('\n');
    let junit = merged_junit(&runs, &names, index.duration_ms)?;
    let files = vec![
        (crate::SUMMARY_FILE, json),
        (crate::JUNIT_FILE, junit),
        (INDEX_MARKDOWN_FILE, markdown(&index)),
        (INDEX_HTML_FILE, html(&index)),
    ];
    Ok(Merged { index, files })
}

/// A `<testsuite>` name per run, all distinct: the scenario's name, or, for a scenario found
/// more than once, the name and the run id (and a counter if even those repeat).
fn suite_names(runs: &[&Run]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        *count.entry(r.summary.scenario.as_str()).or_default() += 1;
    }
    let mut taken = BTreeSet::new();
    runs.iter()
        .map(|r| {
            let s = &r.summary;
            let base = if count[s.scenario.as_str()] > 1 {
                format!("{} (run {})", s.scenario, s.run_id)
            } else {
                s.scenario.clone()
            };
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base} #{n}");
                n += 1;
            }
            name
        })
        .collect()
}

fn index(runs: &[&Run], names: &[String], sources: &[String], generated_at: &str) -> Index {
    let scenarios: Vec<IndexEntry> = runs
        .iter()
        .zip(names)
        .map(|(r, suite)| {
            let s = &r.summary;
            IndexEntry {
                name: s.scenario.clone(),
                suite: suite.clone(),
                verdict: s.verdict,
                duration_ms: s.duration_ms,
                reasons: s.reasons.clone(),
                path: r.path.clone(),
                file: s.file.clone(),
                run_id: s.run_id.clone(),
                seed: s.seed,
                started_at: s.started_at.clone(),
                jobs: s.timings.jobs,
            }
        })
        .collect();
    let failed = scenarios
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .count() as u32;
    Index {
        schema: SCHEMA.to_string(),
        generated_at: generated_at.to_string(),
        verdict: if failed == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        passed: scenarios.len() as u32 - failed,
        failed,
        duration_ms: scenarios.iter().map(|e| e.duration_ms).sum(),
        sources: sources.to_vec(),
        scenarios,
    }
}

fn merged_junit(runs: &[&Run], names: &[String], duration_ms: u64) -> Result<String, ReportError> {
    let mut report = Report::new(junit::REPORT_NAME);
    report.set_time(Duration::from_millis(duration_ms));
    report.add_test_suites(
        runs.iter()
            .zip(names)
            .map(|(r, name)| junit::suite(&r.summary, name)),
    );
    Ok(report.to_string()?)
}

/// `dir/file`, or `file` when the run's directory is the merged one.
fn link(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    }
}

fn headline(index: &Index) -> String {
    let total = index.passed + index.failed;
    format!(
        "{} scenario{}: {} passed, {} failed; {} of run time",
        total,
        if total == 1 { "" } else { "s" },
        index.passed,
        index.failed,
        seconds_from_ms(index.duration_ms)
    )
}

/// index.md: one table row per run, with links to its reports.
pub fn markdown(index: &Index) -> String {
    let icon = |v| if v == Verdict::Pass { "✅" } else { "❌" };
    let mut out = format!(
        "# firedrill: {} {}\n\n{}.\n\n",
        icon(index.verdict),
        verdict_word(index.verdict),
        headline(index)
    );
    out.push_str("| scenario | verdict | duration | report | why it failed |\n");
    out.push_str("|---|---|---|---|---|\n");
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    for e in &index.scenarios {
        out.push_str(&format!(
            "| {} | {} {} | {} | [report.md]({}) · [report.html]({}) | {} |\n",
            cell(&e.suite),
            icon(e.verdict),
            verdict_word(e.verdict),
            seconds_from_ms(e.duration_ms),
            link(&e.path, MARKDOWN_FILE),
            link(&e.path, HTML_FILE),
            cell(&e.reasons.join("; "))
        ));
    }
    out.push_str(&format!(
        "\n<sub>Merged by firedrill from {} ({}, {}).</sub>\n",
        index
            .sources
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", "),
        index.schema,
        index.generated_at
    ));
    out
}

/// index.html: the same table as index.md, self-contained.
pub fn html(index: &Index) -> String {
    let mut rows = String::new();
    for e in &index.scenarios {
        let class = if e.verdict == Verdict::Pass {
            "pass"
        } else {
            "fail"
        };
        let reasons: String = e
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", html_escape(r)))
            .collect();
        rows.push_str(&format!(
            "<tr class=\"{class}\"><td><a href=\"{}\">{}</a></td><td class=\"v\">{}</td><td class=\"n\">{}</td><td><a href=\"{}\">report.md</a></td><td><ul>{reasons}</ul></td></tr>\n",
            html_escape(&link(&e.path, HTML_FILE)),
            html_escape(&e.suite),
            verdict_word(e.verdict),
            seconds_from_ms(e.duration_ms),
            html_escape(&link(&e.path, MARKDOWN_FILE)),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>firedrill: {verdict}</title>\n<style>\nbody{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\ntable{{border-collapse:collapse}}\nth,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\ntd.n{{text-align:right}}\ntr.pass td.v{{color:#176f2c;font-weight:bold}}\ntr.fail td.v{{color:#b00020;font-weight:bold}}\nul{{margin:0;padding-left:1.2em}}\n</style></head><body>\n<h1>firedrill: {verdict}</h1>\n<p>{headline}.</p>\n<table>\n<tr><th>scenario</th><th>verdict</th><th>duration</th><th>report</th><th>why it failed</th></tr>\n{rows}</table>\n<p><small>Merged by firedrill from {sources} ({schema}, {at}).</small></p>\n</body></html>\n",
        verdict = verdict_word(index.verdict),
        headline = html_escape(&headline(index)),
        sources = html_escape(&index.sources.join(", ")),
        schema = index.schema,
        at = html_escape(&index.generated_at),
    )
}

/// `to` relative to the directory `from`, both absolute and free of `.` and `..` (as
/// `canonicalize` returns them), `/` separated; `""` when they are the same.
pub fn relative_path(from: &Path, to: &Path) -> String {
    let parts = |p: &Path| -> Vec<String> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let (from, to) = (parts(from), parts(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel: Vec<String> = vec!["..".to_string(); from.len() - common];
    rel.extend(to[common..].iter().cloned());
    let joined: PathBuf = rel.iter().collect();
    joined.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn run(name: &str, verdict: Verdict, run_id: &str, path: &str) -> Run {
        let mut s = match verdict {
            Verdict::Pass => fixtures::passing(),
            Verdict::Fail => fixtures::failing(),
        };
        s.scenario = name.to_string();
        s.run_id = run_id.to_string();
        s.timings.jobs = 2;
        Run {
            summary: s,
            path: path.to_string(),
        }
    }

    fn file<'a>(m: &'a Merged, name: &str) -> &'a str {
        &m.files.iter().find(|(n, _)| *n == name).expect(name).1
    }

    #[test]
    fn two_shards_merge_into_one_index_sorted_by_name() {
        let runs = [
            run(
                "rolling-upgrade",
                Verdict::Pass,
                "a1",
                "shard-2/rolling-upgrade",
            ),
            run(
                "backup-restore",
                Verdict::Fail,
                "b2",
                "shard-1/backup-restore",
            ),
        ];
        let m = merge(
            &runs,
            &["shard-1".into(), "shard-2".into()],
            "2026-11-23T03:00:00Z",
        )
        .expect("merge");
        let i = &m.index;
        assert_eq!(i.schema, "firedrill.index/v1");
        assert_eq!((i.passed, i.failed, i.verdict), (1, 1, Verdict::Fail));
        let names: Vec<&str> = i.scenarios.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["backup-restore", "rolling-upgrade"]);
        let failed = &i.scenarios[0];
        assert_eq!(failed.path, "shard-1/backup-restore");
        assert_eq!(failed.reasons, fixtures::failing().reasons);
        assert!(!failed.reasons.is_empty());
        assert_eq!(failed.jobs, 2);
        assert_eq!(
            i.duration_ms,
            fixtures::passing().duration_ms + fixtures::failing().duration_ms
        );
        // The index round-trips through its schema.
        let back: Index = serde_json::from_str(file(&m, "summary.json")).expect("index json");
        assert_eq!(&back, i);
    }

    #[test]
    fn every_verdict_passing_passes() {
        let runs = [
            run("a", Verdict::Pass, "1", "a"),
            run("b", Verdict::Pass, "2", "b"),
        ];
        let m = merge(&runs, &[], "t").expect("merge");
        assert_eq!(
            (m.index.verdict, m.index.passed, m.index.failed),
            (Verdict::Pass, 2, 0)
        );
    }

    #[test]
    fn the_merged_junit_has_one_suite_per_run_with_distinct_names() {
        let runs = [
            run(
                "partition-recovery",
                Verdict::Pass,
                "aaaa",
                "s1/partition-recovery",
            ),
            run(
                "partition-recovery",
                Verdict::Fail,
                "bbbb",
                "s2/partition-recovery",
            ),
            run(
                "rolling-upgrade",
                Verdict::Pass,
                "cccc",
                "s2/rolling-upgrade",
            ),
        ];
        let m = merge(&runs, &[], "t").expect("merge");
        let xml = file(&m, "junit.xml");
        let suites: Vec<&str> = xml
            .split("<testsuite name=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or(""))
            .collect();
        assert_eq!(
            suites,
            [
                "partition-recovery (run aaaa)",
                "partition-recovery (run bbbb)",
                "rolling-upgrade"
            ]
        );
        assert_eq!(xml.matches("<testsuites ").count(), 1);
        // Each suite holds the run's own test cases.
        let single = junit::render(&fixtures::failing()).expect("junit");
        let cases = single.matches("<testcase ").count();
        assert!(cases > 0);
        assert_eq!(
            xml.matches("<testcase ").count(),
            cases
                + 2 * junit::render(&fixtures::passing())
                    .expect("junit")
                    .matches("<testcase ")
                    .count()
        );
        let suite_names: Vec<&str> = m.index.scenarios.iter().map(|e| e.suite.as_str()).collect();
        assert_eq!(suite_names, suites);
    }

    #[test]
    fn identical_runs_still_get_distinct_suite_names() {
        let runs = [
            run("x", Verdict::Pass, "1", "a"),
            run("x", Verdict::Pass, "1", "b"),
        ];
        let m = merge(&runs, &[], "t").expect("merge");
        let names: Vec<&str> = m.index.scenarios.iter().map(|e| e.suite.as_str()).collect();
        assert_eq!(names, ["x (run 1)", "x (run 1) #2"]);
    }

    #[test]
    fn the_pages_link_every_report_and_show_every_verdict() {
        let runs = [
            run(
                "rolling-upgrade",
                Verdict::Pass,
                "a1",
                "shard-2/rolling-upgrade",
            ),
            run("back|up <b>", Verdict::Fail, "b2", ""),
        ];
        let m = merge(&runs, &["shard-1".into()], "t").expect("merge");
        let md = file(&m, "index.md");
        assert!(md.starts_with("# firedrill: ❌ FAIL\n"), "{md}");
        assert!(
            md.contains("[report.html](shard-2/rolling-upgrade/report.html)"),
            "{md}"
        );
        assert!(md.contains("[report.md](report.md)"), "{md}");
        assert!(md.contains("| back\\|up <b> | ❌ FAIL |"), "{md}");
        assert!(md.contains("| rolling-upgrade | ✅ PASS |"), "{md}");
        assert!(md.contains("2 scenarios: 1 passed, 1 failed"), "{md}");
        let html = file(&m, "index.html");
        assert!(
            html.contains("href=\"shard-2/rolling-upgrade/report.html\""),
            "{html}"
        );
        assert!(html.contains("back|up &lt;b&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert_eq!(html.matches("<tr class=").count(), 2);
        for r in &fixtures::failing().reasons {
            assert!(html.contains(&html_escape(r)), "{r}");
        }
    }

    #[test]
    fn relative_paths_between_directories() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(relative_path(&p("/r"), &p("/r/shard-1/x")), "shard-1/x");
        assert_eq!(
            relative_path(&p("/r/merged"), &p("/r/shard-1/x")),
            "../shard-1/x"
        );
        assert_eq!(relative_path(&p("/r/x"), &p("/r/x")), "");
        assert_eq!(relative_path(&p("/a/b/c"), &p("/d")), "../../../d");
    }
}
