//! report.html: the run on one page, for a browser, a ticket attachment or paper.
//!
//! Layout: charts over the run clock first (throughput, error rate and latency, with the
//! phases shaded and the steps marked), then the verdict and its reasons, service levels,
//! data, reads, checks, load, versions and the step transcripts.
//!
//! The page is self-contained: CSS and SVG inline, no script, no font or image fetched, so it
//! reads the same offline years later. Every string that comes from the run is escaped.

use firedrill_types::history::Op;
use firedrill_types::summary::{
    BackupResult, CheckResult, DataResult, GateOutcome, LoadStats, NodeRecord, PhaseResult,
    ReadResult, RecoveryResult, RolloutResult, StepOutput, StepRecord, StepStatus, Summary,
    Verdict,
};

use crate::{
    capitalized, data_sentence, html_escape as esc, millis, percent, plural, reads_sentence,
    run_clock, seconds_from_ms, slo_value, tally, view, wall_clock, FOLD_LINES,
};

mod chart;

use chart::charts;

pub fn render(summary: &Summary, ops: &[Op]) -> String {
    let mut out = String::new();
    head(&mut out, summary);
    header(&mut out, summary);
    charts(&mut out, summary, ops);
    verdict(&mut out, summary);
    service_levels(&mut out, &summary.phases);
    data(&mut out, &summary.data);
    reads(&mut out, &summary.reads);
    if let Some(b) = &summary.backup {
        backup(&mut out, b, &summary.data);
    }
    if let Some(r) = &summary.rollout {
        rollout(&mut out, r);
    }
    checks(&mut out, &summary.checks);
    recoveries(&mut out, &summary.recoveries);
    load(&mut out, &summary.load);
    versions(&mut out, &summary.nodes);
    procedure(&mut out, &summary.steps);
    out.push_str(&format!(
        "<footer>Written by firedrill from summary.json ({}) and the operation history.</footer>\n\
         </body>\n</html>\n",
        esc(&summary.schema)
    ));
    out
}

/// Kept short: the page must stay readable when printed, so no dark theme and no sticky parts.
const STYLE: &str = r#"
:root { --fg: #1d2327; --muted: #5c6770; --line: #d5dade; --soft: #f5f7f9;
  --ok: #1e7a38; --bad: #b3261e; --skip: #6b6f73; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 960px; padding: 24px 20px 48px; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 26px 0 6px; }
p { margin: 6px 0 10px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
code { font-size: 13px; background: var(--soft); padding: 1px 4px; border-radius: 3px; }
pre { font-size: 12.5px; line-height: 1.45; background: var(--soft); border: 1px solid var(--line);
  border-radius: 4px; padding: 8px 10px; margin: 6px 0 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.action { background: #eef2f7; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: pre-wrap; }
.muted, .note, footer { color: var(--muted); }
.note { font-size: 13.5px; }
footer { margin-top: 40px; font-size: 13px; border-top: 1px solid var(--line); padding-top: 8px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-size: 12px;
  font-weight: 600; line-height: 20px; vertical-align: 3px; text-transform: uppercase; letter-spacing: .03em; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); }
.badge.skipped { background: var(--skip); }
dl.meta { display: flex; flex-wrap: wrap; gap: 2px 22px; margin: 8px 0; font-size: 14px; }
dl.meta div { display: flex; gap: 6px; } dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
.verdict { margin: 30px 0 10px; padding: 12px 18px; border-left: 8px solid var(--ok); background: #e9f5ec; }
.verdict.fail { border-color: var(--bad); background: #fbeceb; }
.verdict .word { font-size: 28px; font-weight: 700; margin: 0; color: var(--ok); letter-spacing: .04em; }
.verdict.fail .word { color: var(--bad); }
.verdict .tally { font-weight: 600; margin: 2px 0 6px; }
.verdict ul { margin: 4px 0 4px; padding-left: 22px; }
.result.pass { color: var(--ok); font-weight: 600; } .result.fail { color: var(--bad); font-weight: 600; }
.step { border-top: 1px solid var(--line); } .step:first-of-type { border-top: none; }
.step h3 .id { font-variant-numeric: tabular-nums; }
.step .error { color: var(--bad); }
details { margin: 6px 0 12px; } summary { cursor: pointer; font-weight: 600; }
figure { margin: 6px 0 10px; break-inside: avoid; }
svg.chart { display: block; width: 100%; max-width: 900px; height: auto; }
svg.chart text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #36404a; }
svg.chart text.title { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg.chart text.unit { font-style: italic; fill: var(--muted); }
svg.chart .halo { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-opacity: .85; stroke-linejoin: round; }
svg.chart text.empty { font-size: 13px; fill: var(--muted); }
svg.chart .grid { stroke: #e3e7ea; stroke-width: 1; }
svg.chart .axis { stroke: #8a949c; stroke-width: 1; }
svg.chart .band-steady { fill: #eaf0f8; } svg.chart .band-procedure { fill: #fbefd6; }
svg.chart .band-recovery { fill: #e6f3e9; }
svg.chart .edge { stroke: #b9c0c6; stroke-width: 1; stroke-dasharray: 3 3; }
svg.chart .step-mark { stroke: #9aa3ab; stroke-width: 1; stroke-opacity: .55; }
svg.chart .step-passed { fill: #3d6fa8; } svg.chart .step-failed { fill: var(--bad); }
svg.chart .step-passed, svg.chart .step-failed { stroke: #fff; stroke-width: .75; }
svg.chart .leader { stroke: #9aa3ab; stroke-width: 1; }
svg.chart polyline { fill: none; stroke-linejoin: round; stroke-linecap: round; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  h2, h3 { break-after: avoid; }
  table, pre, .verdict { break-inside: avoid; }
}
"#;

fn head(out: &mut String, s: &Summary) {
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}: {} · firedrill</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&s.scenario),
        verdict_word(s.verdict),
    ));
}

fn header(out: &mut String, s: &Summary) {
    out.push_str(&format!(
        "<header>\n<h1>{} {}</h1>\n",
        esc(&s.scenario),
        verdict_badge(s.verdict)
    ));
    if !s.description.trim().is_empty() {
        out.push_str(&format!("<p>{}</p>\n", esc(s.description.trim())));
    }
    out.push_str("<dl class=\"meta\">\n");
    // As text, not a link: the page makes no reference outside itself.
    if let Some(runbook) = &s.runbook {
        out.push_str(&format!(
            "<div><dt>Runbook</dt><dd>{}</dd></div>\n",
            esc(runbook.trim())
        ));
    }
    for (term, value) in [
        ("Scenario file", format!("<code>{}</code>", esc(&s.file))),
        ("Seed", format!("<code>{}</code>", s.seed)),
        ("Run id", format!("<code>{}</code>", esc(&s.run_id))),
        ("Started", esc(&wall_clock(&s.started_at))),
        ("Duration", seconds_from_ms(s.duration_ms)),
    ] {
        out.push_str(&format!("<div><dt>{term}</dt><dd>{value}</dd></div>\n"));
    }
    out.push_str("</dl>\n</header>\n");
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    }
}

fn verdict_badge(verdict: Verdict) -> String {
    let class = match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    };
    format!(
        "<span class=\"badge {class}\">{}</span>",
        verdict_word(verdict)
    )
}

fn verdict(out: &mut String, s: &Summary) {
    let class = match s.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    };
    out.push_str(&format!(
        "<section class=\"verdict {class}\" id=\"verdict\">\n<p class=\"word\">{}</p>\n\
         <p class=\"tally\">{}</p>\n",
        verdict_word(s.verdict),
        esc(&tally(s))
    ));
    if s.verdict == Verdict::Fail || !s.reasons.is_empty() {
        out.push_str("<ul>\n");
        for reason in &s.reasons {
            out.push_str(&format!("<li>{}</li>\n", esc(reason.trim())));
        }
        if s.reasons.is_empty() {
            out.push_str("<li>the run recorded no reason</li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// A pass/fail word for a table cell.
fn result(pass: bool, good: &str, bad: &str) -> String {
    if pass {
        format!("<span class=\"result pass\">✓ {good}</span>")
    } else {
        format!("<span class=\"result fail\">✗ {bad}</span>")
    }
}

/// A table: `head` cells are `(label, numeric)`; row cells are HTML already escaped.
fn table(out: &mut String, head: &[(&str, bool)], rows: &[Vec<String>]) {
    out.push_str("<table>\n<thead><tr>");
    for (label, numeric) in head {
        let class = if *numeric { " class=\"num\"" } else { "" };
        out.push_str(&format!("<th{class}>{label}</th>"));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (cell, (_, numeric)) in row.iter().zip(head) {
            let class = if *numeric { " class=\"num\"" } else { "" };
            out.push_str(&format!("<td{class}>{cell}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn service_levels(out: &mut String, phases: &[PhaseResult]) {
    out.push_str("<section id=\"service-levels\">\n<h2>Service levels</h2>\n");
    if phases.is_empty() {
        out.push_str("<p class=\"muted\">No phases measured.</p>\n</section>\n");
        return;
    }
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            vec![
                p.phase.name().to_string(),
                format!("{} – {}", run_clock(p.start), run_clock(p.end)),
                p.ops.to_string(),
                p.errors.to_string(),
                percent(p.error_rate),
                millis(p.p50_ms),
                millis(p.p99_ms),
                millis(p.longest_unavailable_ms),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Phase", false),
            ("Window (s)", false),
            ("Ops", true),
            ("Errors", true),
            ("Error rate", true),
            ("p50", true),
            ("p99", true),
            ("Longest unavailability", true),
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = phases
        .iter()
        .flat_map(|p| p.slos.iter().map(move |slo| (p, slo)))
        .map(|(p, slo)| {
            vec![
                p.phase.name().to_string(),
                esc(&slo.name),
                esc(&slo_value(slo.limit, &slo.unit)),
                esc(&slo_value(slo.observed, &slo.unit)),
                result(slo.pass, "met", "breached"),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">No SLOs set.</p>\n");
    } else {
        table(
            out,
            &[
                ("Phase", false),
                ("SLO", false),
                ("Limit", true),
                ("Observed", true),
                ("Result", false),
            ],
            &rows,
        );
    }
    out.push_str("</section>\n");
}

fn data(out: &mut String, d: &DataResult) {
    out.push_str("<section id=\"data\">\n<h2>Data</h2>\n");
    out.push_str(&format!(
        "<p>{}</p>\n",
        result(
            d.pass,
            &sentence(&data_sentence(d)),
            &sentence(&data_sentence(d))
        )
    ));
    table(
        out,
        &[
            ("Keys read back", true),
            ("Acked writes", true),
            ("Lost", true),
            ("Unexpected", true),
            ("Recovered", true),
        ],
        &[[d.keys, d.acked, d.lost, d.unexpected, d.recovered]
            .map(|n| n.to_string())
            .to_vec()],
    );
    out.push_str(
        "<p class=\"note\">Lost: acknowledged, but gone after recovery. Unexpected: a value no \
         write produced, or one whose write failed. Recovered: an unknown outcome whose value is \
         present (allowed).</p>\n",
    );
    examples(out, "Lost writes", d.lost, &d.lost_examples);
    examples(
        out,
        "Unexpected values",
        d.unexpected,
        &d.unexpected_examples,
    );
    out.push_str("</section>\n");
}

fn reads(out: &mut String, r: &ReadResult) {
    out.push_str("<section id=\"reads\">\n<h2>Reads</h2>\n");
    out.push_str(&format!(
        "<p>{}</p>\n",
        result(
            r.pass,
            &sentence(&reads_sentence(r)),
            &sentence(&reads_sentence(r))
        )
    ));
    table(
        out,
        &[
            ("Checked", true),
            ("Phantom", true),
            ("Future", true),
            ("Stale", true),
        ],
        &[[r.checked, r.phantom, r.future, r.stale]
            .map(|n| n.to_string())
            .to_vec()],
    );
    out.push_str(
        "<p class=\"note\">Phantom: a value no write produced, or one whose write failed. \
         Future: returned before its write began. Stale: older than a write that completed \
         before the read began.</p>\n",
    );
    examples(
        out,
        "Offending reads",
        r.phantom + r.future + r.stale,
        &r.examples,
    );
    out.push_str("</section>\n");
}

/// `"no lost writes"` → `"No lost writes."`, escaped.
fn sentence(text: &str) -> String {
    esc(&(capitalized(text) + "."))
}

fn examples(out: &mut String, label: &str, total: u64, examples: &[String]) {
    if examples.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<p>{label} ({} of {}):</p>\n<pre>{}</pre>\n",
        examples.len(),
        total.max(examples.len() as u64),
        esc(&examples.join("\n"))
    ));
}

fn checks(out: &mut String, checks: &[CheckResult]) {
    out.push_str("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if checks.is_empty() {
        out.push_str("<p class=\"muted\">No checks.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for c in checks {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>\n",
            esc(&c.name),
            result(c.pass, "pass", "fail"),
            esc(c.detail.trim()),
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn backup(out: &mut String, b: &BackupResult, d: &DataResult) {
    out.push_str("<section id=\"backup\">\n<h2>Backup and restore</h2>\n");
    let span = |from: u64, to: u64| {
        vec![
            format!("{} – {}", run_clock(from), run_clock(to)),
            seconds_from_ms((to - from) / 1000),
        ]
    };
    let never = || "never".to_string();
    let mut rows = vec![
        [
            vec![format!("Backup: {}", esc(&b.backup_step))],
            span(b.backup_start, b.backup_end),
        ]
        .concat(),
        [
            vec![format!("Disaster: {}", esc(&b.disaster_step))],
            span(b.disaster_start, b.disaster_end),
        ]
        .concat(),
    ];
    rows.push(vec![
        "Restored cluster's first answer".to_string(),
        b.first_ok_after.map_or_else(never, run_clock),
        b.restore_ms
            .map_or_else(never, |m| seconds_from_ms(m as u64)),
    ]);
    table(
        out,
        &[("Event", false), ("Run clock (s)", false), ("Took", true)],
        &rows,
    );
    let limit = |l: Option<f64>| {
        l.map(|l| format!(" (limit {})", seconds_from_ms(l as u64)))
            .unwrap_or_default()
    };
    out.push_str(&format!(
        "<p>{} Recovery time (RTO): {}{}. Recovery point (RPO) seen: {}{}, from the backup's start \
         to the last write acknowledged before the disaster.</p>\n<p class=\"note\">{} acknowledged \
         writes came after the backup ended; {} of them are gone (after the recovery point, \
         allowed); {} writes that overlapped the backup are gone (indeterminate, allowed).</p>\n",
        result(b.pass, "met", "missed"),
        b.rto_ms.map_or_else(|| "never served again".to_string(), |m| seconds_from_ms(m as u64)),
        limit(b.rto_limit_ms),
        b.rpo_ms.map_or_else(|| "none".to_string(), |m| seconds_from_ms(m as u64)),
        limit(b.rpo_limit_ms),
        b.writes_after_backup,
        d.after_recovery_point,
        d.indeterminate,
    ));
    out.push_str("</section>\n");
}

fn rollout(out: &mut String, r: &RolloutResult) {
    out.push_str("<section id=\"rollout\">\n<h2>Canary rollout</h2>\n");
    let outcome = r.outcome.map_or("not finished", |o| o.name());
    let matched = r.outcome == Some(r.expected);
    out.push_str(&format!(
        "<p>{} Canary <code>{}</code> against {}: <strong>{outcome}</strong>{}.</p>\n",
        result(matched, "as expected", "unexpected"),
        esc(&r.canary),
        r.baseline
            .iter()
            .map(|b| format!("<code>{}</code>", esc(b)))
            .collect::<Vec<_>>()
            .join(", "),
        if matched {
            String::new()
        } else {
            format!(", expected {}", r.expected.name())
        },
    ));
    if let Some(f) = &r.failure {
        out.push_str(&format!("<p>Rolled back: {}</p>\n", esc(f)));
    }
    let rows: Vec<Vec<String>> = r
        .stages
        .iter()
        .map(|s| {
            vec![
                s.index.to_string(),
                format!("{} %", s.percent),
                format!("{} / {}", s.canary_weight, s.baseline_weight),
                format!("{} – {}", run_clock(s.start), run_clock(s.end)),
                s.observed_share.map_or_else(|| "n/a".to_string(), percent),
                esc(&s.decision),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Stage", true),
            ("Share", true),
            ("Weights (canary / each baseline)", true),
            ("Run clock (s)", false),
            ("Observed share", true),
            ("Decision", false),
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = r
        .stages
        .iter()
        .flat_map(|s| s.evaluations.iter().map(move |e| (s.index, e)))
        .map(|(stage, e)| {
            let value = |v: Option<f64>| {
                v.map_or_else(|| "n/a".to_string(), |v| esc(&slo_value(v, &e.unit)))
            };
            vec![
                stage.to_string(),
                run_clock(e.at),
                esc(&e.gate),
                esc(&e.metric),
                value(e.canary),
                value(e.baseline),
                value(e.limit),
                e.samples.to_string(),
                match e.outcome {
                    GateOutcome::Pass => result(true, "pass", ""),
                    GateOutcome::Fail => result(false, "", "fail"),
                    GateOutcome::NoData => "no data".to_string(),
                },
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&format!(
            "<details><summary>Gate evaluations: {}</summary>\n",
            rows.len()
        ));
        table(
            out,
            &[
                ("Stage", true),
                ("At (s)", true),
                ("Gate", false),
                ("Metric", false),
                ("Canary", true),
                ("Baseline", true),
                ("Limit", true),
                ("Samples", true),
                ("Result", false),
            ],
            &rows,
        );
        out.push_str("</details>\n");
    }
    if let Some(k) = &r.kill_switch {
        out.push_str(&format!(
            "<p>{} Kill switch (step {}) at {} s: the canary served its last request {} later (limit {}); {} requests to it in the recovery phase.</p>\n",
            result(k.pass, "in time", "too slow"),
            esc(&k.step),
            run_clock(k.at),
            k.time_to_effect_ms.map_or_else(|| "n/a".to_string(), |m| seconds_from_ms(m as u64)),
            seconds_from_ms(k.limit_ms as u64),
            k.canary_requests_in_recovery,
        ));
    }
    out.push_str("</section>\n");
}

fn recoveries(out: &mut String, recoveries: &[RecoveryResult]) {
    // Most scenarios mark no step as one after which a node must serve again.
    if recoveries.is_empty() {
        return;
    }
    out.push_str("<section id=\"recovery\">\n<h2>Recovery after steps</h2>\n");
    let rows: Vec<Vec<String>> = view::recoveries(recoveries)
        .into_iter()
        .map(|r| {
            let mut cells: Vec<String> = r.cells.iter().map(|c| esc(c)).collect();
            cells.push(result(r.pass, "recovered", "not recovered"));
            cells
        })
        .collect();
    table(out, &view::RECOVERY_COLUMNS, &rows);
    out.push_str(&format!(
        "<p class=\"note\">{}</p>\n</section>\n",
        view::RECOVERY_NOTE
    ));
}

fn load(out: &mut String, l: &LoadStats) {
    out.push_str("<section id=\"load\">\n<h2>Load</h2>\n");
    let mut row: Vec<String> = [l.ops, l.reads, l.writes, l.ok, l.fail, l.unknown]
        .map(|n| n.to_string())
        .to_vec();
    row.push(format!("{:.1}", l.ops_per_s));
    row.push(l.goose_requests.to_string());
    table(
        out,
        &[
            ("Ops", true),
            ("Reads", true),
            ("Writes", true),
            ("Ok", true),
            ("Failed", true),
            ("Unknown", true),
            ("Ops/s", true),
            ("Goose requests", true),
        ],
        &[row],
    );
    out.push_str("</section>\n");
}

fn versions(out: &mut String, nodes: &[NodeRecord]) {
    out.push_str("<section id=\"versions\">\n<h2>Versions seen</h2>\n");
    if nodes.is_empty() {
        out.push_str("<p class=\"muted\">No nodes recorded.</p>\n</section>\n");
        return;
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                esc(&n.name),
                format!("<code>{}</code>", esc(&n.image_at_start)),
                format!("<code>{}</code>", esc(&n.image_at_end)),
                if n.image_at_start == n.image_at_end {
                    "no"
                } else {
                    "yes"
                }
                .to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("Node", false),
            ("Image at start", false),
            ("Image at end", false),
            ("Changed", false),
        ],
        &rows,
    );
    out.push_str("</section>\n");
}

/// The fragment id of a step's transcript, which the chart's step marks link to.
fn step_anchor(step: &StepRecord) -> String {
    let id: String = step
        .id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("step-{id}")
}

fn status_class(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

/// A path inside the output directory: the only kind of link the page may carry, so that it
/// never points a reader's browser at anything outside the run's own files.
fn is_local_path(path: &str) -> bool {
    !path.is_empty() && !path.starts_with('/') && !path.contains(':') && !path.contains('\\')
}

fn procedure(out: &mut String, steps: &[StepRecord]) {
    out.push_str("<section id=\"procedure\">\n<h2>Procedure</h2>\n");
    if steps.is_empty() {
        out.push_str("<p class=\"muted\">No steps.</p>\n");
    }
    for step in steps {
        let status = status_class(step.status);
        let badge = match step.status {
            StepStatus::Passed => "pass",
            StepStatus::Failed => "fail",
            StepStatus::Skipped => "skipped",
        };
        out.push_str(&format!(
            "<article class=\"step {status}\" id=\"{}\">\n<h3><span class=\"badge {badge}\">{status}</span> \
             <span class=\"id\">{}.</span> {}</h3>\n",
            esc(&step_anchor(step)),
            esc(&step.id),
            esc(&step.name),
        ));
        if !step.prose.trim().is_empty() {
            out.push_str(&format!("<p>{}</p>\n", esc(step.prose.trim())));
        }
        out.push_str(&format!(
            "<pre class=\"action\">{}</pre>\n",
            esc(&step.action)
        ));
        match step.status {
            StepStatus::Skipped => {
                out.push_str(
                    "<p class=\"muted\">Not run: an earlier step failed or the run was interrupted.</p>\n</article>\n",
                );
                continue;
            }
            StepStatus::Failed => {
                let error = step.error.as_deref().unwrap_or("the run recorded no error");
                if error.contains('\n') {
                    out.push_str(&format!(
                        "<p class=\"error\"><strong>Failed:</strong></p>\n<pre>{}</pre>\n",
                        esc(error)
                    ));
                } else {
                    out.push_str(&format!(
                        "<p class=\"error\"><strong>Failed:</strong> {}</p>\n",
                        esc(error.trim())
                    ));
                }
                step_output(out, "Output", &step.output);
            }
            StepStatus::Passed => step_output(out, "Expected output", &step.output),
        }
        let transcript = if is_local_path(&step.transcript) {
            format!(
                "<a href=\"{0}\"><code>{0}</code></a>",
                esc(&step.transcript)
            )
        } else {
            format!("<code>{}</code>", esc(&step.transcript))
        };
        out.push_str(&format!(
            "<p class=\"note\">Started at {} s on the run clock, took {}, {}. Transcript: {transcript}.</p>\n</article>\n",
            run_clock(step.started),
            seconds_from_ms(step.duration_ms),
            plural(step.attempts as usize, "attempt", "attempts"),
        ));
    }
    out.push_str("</section>\n");
}

fn step_output(out: &mut String, label: &str, output: &StepOutput) {
    let status: Vec<String> = output
        .exit_code
        .map(|c| format!("exit code {c}"))
        .into_iter()
        .chain(output.http_status.map(|s| format!("HTTP {s}")))
        .collect();
    let label = if status.is_empty() {
        label.to_string()
    } else {
        format!("{label} ({})", status.join(", "))
    };
    if output.stdout.is_empty() {
        out.push_str(&format!(
            "<p><strong>{label}:</strong> nothing on stdout.</p>\n"
        ));
    } else {
        output_block(out, &label, &output.stdout);
    }
    if !output.stderr.is_empty() {
        output_block(out, "stderr", &output.stderr);
    }
}

/// One stream of a step's output; long ones are folded in `<details>`.
fn output_block(out: &mut String, label: &str, text: &str) {
    let lines = text.lines().count();
    let body = esc(text.strip_suffix('\n').unwrap_or(text));
    if lines > FOLD_LINES {
        out.push_str(&format!(
            "<details><summary>{label}: {lines} lines</summary>\n<pre>{body}</pre>\n</details>\n"
        ));
    } else {
        out.push_str(&format!(
            "<p><strong>{label}:</strong></p>\n<pre>{body}</pre>\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::chart::BACKEND_COLORS;
    use super::*;
    use crate::fixtures;
    use firedrill_judge::timeline::*;
    use firedrill_types::history::{Micros, OpKind, Outcome};
    use std::sync::Arc;

    fn op(t_call: Micros, latency: Micros, outcome: Outcome, backend: Option<&str>) -> Op {
        Op {
            id: t_call,
            client: 0,
            node: "kv1".into(),
            kind: OpKind::Read,
            key: "k".into(),
            value: None,
            expected: None,
            t_intended: t_call,
            t_call,
            t_return: t_call + latency,
            outcome,
            error: None,
            backend: backend.map(Arc::from),
        }
    }

    /// The first `<svg` element of `page` whose aria-label is `label`.
    fn svg<'a>(page: &'a str, label: &str) -> &'a str {
        let at = page
            .find(&format!("aria-label=\"{label}\""))
            .unwrap_or_else(|| panic!("no chart {label}"));
        let start = page[..at].rfind("<svg").expect("svg start");
        let end = at + page[at..].find("</svg>").expect("svg end");
        &page[start..end]
    }

    #[test]
    fn failing_report() {
        insta::assert_snapshot!(
            "failing",
            render(&fixtures::failing(), &fixtures::history())
        );
    }

    #[test]
    fn failing_report_shows_the_verdict_and_every_reason_in_order() {
        let summary = fixtures::failing();
        let page = render(&summary, &fixtures::history());
        assert!(page.contains("<title>rolling-upgrade: FAIL · firedrill</title>"));
        let banner = page
            .split("<section class=\"verdict fail\" id=\"verdict\">")
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .expect("a fail banner");
        assert!(banner.contains("<p class=\"word\">FAIL</p>"), "{banner}");
        let mut last = 0;
        for reason in &summary.reasons {
            let at = banner
                .find(&format!("<li>{}</li>", esc(reason)))
                .unwrap_or_else(|| panic!("{reason} is missing from the banner"));
            assert!(at > last, "{reason} is out of order");
            last = at;
        }
        // The banner comes after the charts and before the tables.
        let charts = page.find("id=\"timeline\"").expect("charts");
        let verdict = page.find("id=\"verdict\"").expect("verdict");
        let slos = page.find("id=\"service-levels\"").expect("slos");
        assert!(charts < verdict && verdict < slos);
        assert!(page.contains("<span class=\"result fail\">✗ breached</span>"));
    }

    #[test]
    fn passing_report_has_no_reasons() {
        let page = render(&fixtures::passing(), &fixtures::history());
        assert!(page.contains("<section class=\"verdict pass\" id=\"verdict\">"));
        assert!(page.contains(
            "All 4 steps passed, all 9 SLOs met, no lost writes, reads consistent, 1 check passed."
        ));
        assert!(!page.contains("<ul>"), "a passing run lists no reasons");
        assert!(!page.contains("result fail"));
    }

    #[test]
    fn step_output_is_escaped() {
        let mut summary = fixtures::failing();
        summary.steps[0].output.stdout =
            "<script src=\"https://evil.example/x.js\"></script>\n<img src=x onerror=alert(1)> & 'q'\n"
                .to_string();
        summary.steps[1].name = "read </title><script>alert(1)</script>".to_string();
        let page = render(&summary, &fixtures::history());
        assert!(page.contains(
            "&lt;script src=&quot;https://evil.example/x.js&quot;&gt;&lt;/script&gt;\n\
             &lt;img src=x onerror=alert(1)&gt; &amp; &#39;q&#39;"
        ));
        assert!(page.contains("read &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            !page.contains("<script"),
            "markup from the run leaked into the page"
        );
        assert!(!page.contains("<img"));
    }

    #[test]
    fn long_output_is_folded_and_short_output_is_not() {
        let mut summary = fixtures::passing();
        let exactly: String = (1..=FOLD_LINES).map(|i| format!("line {i}\n")).collect();
        summary.steps[0].output.stdout = exactly;
        let page = render(&summary, &[]);
        assert_eq!(page.matches("<details>").count(), 1, "only step 3 is long");
        let folded = page
            .split("<details><summary>Expected output (exit code 0): 24 lines</summary>\n<pre>")
            .nth(1)
            .and_then(|rest| rest.split("</pre>\n</details>").next())
            .expect("step 3's output is folded");
        assert_eq!(
            folded,
            fixtures::passing().steps[2].output.stdout.trim_end()
        );
        assert!(page.contains("<pre>line 1\nline 2\n"));
    }

    #[test]
    fn nothing_is_fetched_from_outside_the_page() {
        let mut summary = fixtures::failing();
        summary.steps[0].output.stdout = "see https://example.org/runbook".to_string();
        summary.steps[1].transcript = "https://example.org/transcript.txt".to_string();
        summary.steps[2].transcript = "/etc/passwd".to_string();
        let page = render(&summary, &fixtures::history());
        // A URL may appear as text (a step's output or action), never inside a tag.
        let mut from = 0;
        while let Some(at) = page[from..].find("://").map(|i| i + from) {
            let open = page[..at].rfind('<').unwrap_or(0);
            let close = page[..at].rfind('>').unwrap_or(0);
            assert!(
                close > open,
                "a URL inside a tag: {}",
                &page[open..(at + 40).min(page.len())]
            );
            from = at + 3;
        }
        assert!(!page.contains("src="), "nothing is embedded by reference");
        for attribute in ["href=\"", "xlink:href=\""] {
            for value in page.split(attribute).skip(1) {
                assert!(
                    value.starts_with('#') || value.starts_with("steps/"),
                    "link outside the run: {}",
                    &value[..value.find('"').unwrap_or(value.len())]
                );
            }
        }
        for external in ["<script", "<link", "@import", "url(", "<iframe", "<object"] {
            assert!(!page.contains(external), "{external}");
        }
        assert!(is_local_path("steps/3-dump.txt"));
        assert!(!is_local_path("https://example.org/x"));
        assert!(!is_local_path("javascript:alert(1)"));
        assert!(!is_local_path("/etc/passwd"));
        assert!(!is_local_path("//example.org/x"));
    }

    #[test]
    fn phases_and_steps_are_marked_on_the_clock() {
        let summary = fixtures::failing();
        let page = render(&summary, &fixtures::history());
        let strip = svg(&page, "phases and steps on the run clock");
        for phase in ["steady", "procedure", "recovery"] {
            assert!(
                strip.contains(&format!("class=\"band-{phase}\"")),
                "{phase}"
            );
            assert!(strip.contains(&format!(">{phase}</text>")), "{phase}");
        }
        for step in &summary.steps[..3] {
            assert!(
                strip.contains(&format!("\">{}</text>", step.id)),
                "step {} has no label",
                step.id
            );
            assert!(strip.contains(&format!("<title>{}. {} (", step.id, step.name)));
            assert!(strip.contains(&format!("href=\"#step-{}\"", step.id)));
            assert!(page.contains(&format!(
                "<article class=\"step {}\" id=\"step-{}\">",
                status_class(step.status),
                step.id
            )));
        }
        assert!(strip.contains("class=\"step-failed\""), "step 3 failed");
        // Step 4 was skipped: it never ran, so it has no place on the clock.
        assert!(!strip.contains("#step-4"));
        // Every chart shades the phases and marks the 3 steps that ran.
        for chart in [
            "Throughput (ops/s)",
            "Error rate (%)",
            "Latency (ms, log scale)",
        ] {
            let chart = svg(&page, chart);
            assert!(chart.contains("class=\"band-procedure\""));
            assert_eq!(chart.matches("class=\"step-mark\"").count(), 3);
        }
    }

    #[test]
    fn empty_history_says_so_instead_of_a_chart() {
        let page = render(&fixtures::passing(), &[]);
        assert!(page.contains("No operations recorded"));
        assert!(!page.contains("<svg"));
        assert!(
            page.contains("id=\"procedure\""),
            "the rest of the page is there"
        );
    }

    #[test]
    fn per_backend_lines_appear_when_backends_are_set() {
        let plain = render(&fixtures::passing(), &fixtures::history());
        assert!(
            !plain.contains(BACKEND_COLORS[0]),
            "no backend, no backend line"
        );

        let mut ops = fixtures::history();
        for (i, op) in ops.iter_mut().enumerate() {
            // One canary op a second for 10 s: stable serves more.
            let canary = i % 2 == 0 && i < 20;
            op.backend = Some(if canary { "canary" } else { "stable" }.into());
        }
        let page = render(&fixtures::passing(), &ops);
        let errors = svg(&page, "Error rate (%)");
        let latency = svg(&page, "Latency (ms, log scale)");
        // The busiest backend gets the first colour.
        for (chart, labels) in [
            (errors, [">all backends<", ">stable<", ">canary<"]),
            (latency, [">p99<", ">p99 stable<", ">p99 canary<"]),
        ] {
            for label in labels {
                assert!(chart.contains(label), "{label}");
            }
            for color in &BACKEND_COLORS[..2] {
                assert!(
                    chart.contains(&format!("<polyline stroke=\"{color}\"")),
                    "no line in {color}"
                );
            }
            assert!(!chart.contains(BACKEND_COLORS[2]));
        }
    }

    #[test]
    fn at_most_eight_backends_are_drawn() {
        let ops: Vec<Op> = (0..10u64)
            .flat_map(|b| {
                // Backend b serves b + 1 operations, so b9 is the busiest.
                (0..=b).map(move |i| op(i * 100_000, 1_000, Outcome::Ok, Some(&format!("b{b}"))))
            })
            .collect();
        let timeline = Timeline::new(&ops).expect("a timeline");
        assert_eq!(
            timeline.backends,
            ["b9", "b8", "b7", "b6", "b5", "b4", "b3", "b2"]
        );
        assert_eq!(timeline.hidden_backends, 2);
        let page = render(&fixtures::passing(), &ops);
        assert!(page.contains(">2 more backends not drawn<"), "{page}");
    }

    #[test]
    fn a_run_without_a_successful_operation_says_there_is_no_latency() {
        let ops = vec![
            op(0, 1_000, Outcome::Fail, None),
            op(1_500_000, 1_000, Outcome::Unknown, None),
        ];
        let page = render(&fixtures::failing(), &ops);
        let latency = svg(&page, "Latency (ms, log scale)");
        assert!(latency.contains("no successful operation"));
        assert!(!latency.contains("<polyline"));
    }
}
