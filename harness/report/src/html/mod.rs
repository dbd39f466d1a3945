//! report.html: the run on one page, for a browser, a ticket attachment or paper.
//!
//! Layout: charts over the run clock first (throughput, error rate and latency, with the
//! phases shaded, the steps marked and the alerts as bands), then the verdict and its reasons,
//! service levels, data, reads, checks, alerts, the dashboards (charted over the same clock),
//! load, versions and the step transcripts.
//!
//! The page is self-contained: CSS and SVG inline, no script, no font or image fetched, so it
//! reads the same offline years later. Every string that comes from the run is escaped.

use firedrill_judge::timeline::Timeline;
use firedrill_types::history::Op;
use firedrill_types::monitoring::PanelSeries;
use firedrill_types::summary::{StepStatus, Summary, Verdict};

use crate::html_escape as esc;
use crate::view::{self, Align, Cell, Table};

mod alerts;
mod chart;
mod dashboards;
mod labels;

use chart::charts;

/// `panels`: the series of `summary.monitoring`'s panels, in their order.
pub fn render(summary: &Summary, ops: &[Op], panels: &[PanelSeries]) -> String {
    let mut out = String::new();
    let h = view::header(summary);
    head(&mut out, &h);
    header(&mut out, &h);
    let timeline = Timeline::new(ops);
    charts(&mut out, summary, ops.len(), timeline.as_ref());
    verdict(&mut out, &h);
    service_levels(&mut out, &view::service_levels(&summary.phases));
    history_check(&mut out, "data", "Data", &view::data(&summary.data));
    history_check(&mut out, "reads", "Reads", &view::reads(&summary.reads));
    if let Some(b) = &summary.backup {
        backup(&mut out, &view::backup(b, &summary.data));
    }
    if let Some(r) = &summary.rollout {
        rollout(&mut out, &view::rollout(r));
    }
    let sections = [
        view::effects(&summary.effects, &summary.steps),
        Some(view::checks(&summary.checks)),
        view::alerts(summary.monitoring.as_ref()),
        view::recoveries(&summary.recoveries),
    ];
    for section in sections.iter().flatten() {
        table_section(&mut out, section);
    }
    // The panels' table, then their charts.
    if let Some(section) = view::panels(summary.monitoring.as_ref()) {
        table_section_body(&mut out, &section);
        dashboards::charts(&mut out, summary, panels, timeline.as_ref());
        out.push_str("</section>\n");
    }
    for section in [view::load(&summary.load), view::versions(&summary.nodes)] {
        table_section(&mut out, &section);
    }
    procedure(&mut out, &view::steps(&summary.steps));
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
svg.chart .alert-pending { fill: #f7c46c; } svg.chart .alert-firing { fill: #e8590c; }
svg.chart .wash { fill-opacity: .12; }
svg.chart polyline { fill: none; stroke-linejoin: round; stroke-linecap: round; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  h2, h3 { break-after: avoid; }
  table, pre, .verdict { break-inside: avoid; }
}
"#;

fn head(out: &mut String, h: &view::Header) {
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}: {} · firedrill</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&h.scenario),
        view::verdict_word(h.verdict),
    ));
}

fn header(out: &mut String, h: &view::Header) {
    out.push_str(&format!(
        "<header>\n<h1>{} <span class=\"badge {}\">{}</span></h1>\n",
        esc(&h.scenario),
        verdict_class(h.verdict),
        view::verdict_word(h.verdict),
    ));
    if let Some(d) = &h.description {
        out.push_str(&format!("<p>{}</p>\n", esc(d)));
    }
    out.push_str("<dl class=\"meta\">\n");
    // As text, not a link: the page makes no reference outside itself.
    if let Some(runbook) = &h.runbook {
        out.push_str(&format!(
            "<div><dt>Runbook</dt><dd>{}</dd></div>\n",
            esc(runbook)
        ));
    }
    for (term, value, is_code) in &h.facts {
        let value = if *is_code {
            format!("<code>{}</code>", esc(value))
        } else {
            esc(value)
        };
        out.push_str(&format!("<div><dt>{term}</dt><dd>{value}</dd></div>\n"));
    }
    out.push_str("</dl>\n</header>\n");
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    }
}

fn verdict(out: &mut String, h: &view::Header) {
    out.push_str(&format!(
        "<section class=\"verdict {}\" id=\"verdict\">\n<p class=\"word\">{}</p>\n\
         <p class=\"tally\">{}</p>\n",
        verdict_class(h.verdict),
        view::verdict_word(h.verdict),
        esc(&h.tally)
    ));
    if let Some(reasons) = &h.failure {
        out.push_str("<ul>\n");
        for reason in reasons {
            out.push_str(&format!("<li>{}</li>\n", esc(reason)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// A pass/fail word; `None`: nothing was judged.
fn result(pass: Option<bool>, word: &str) -> String {
    match pass {
        Some(true) => format!("<span class=\"result pass\">✓ {word}</span>"),
        Some(false) => format!("<span class=\"result fail\">✗ {word}</span>"),
        None => word.to_string(),
    }
}

fn table_section(out: &mut String, s: &view::TableSection) {
    table_section_body(out, s);
    out.push_str("</section>\n");
}

/// A table section but for its end, for what comes after the table.
fn table_section_body(out: &mut String, s: &view::TableSection) {
    out.push_str(&format!(
        "<section id=\"{}\">\n<h2>{}</h2>\n",
        s.id, s.title
    ));
    if s.table.rows.is_empty() {
        out.push_str(&format!("<p class=\"muted\">{}</p>\n", s.empty));
    } else {
        table(out, &s.table);
    }
    if let Some(note) = s.note {
        out.push_str(&format!("<p class=\"note\">{note}</p>\n"));
    }
}

/// A table; every cell is escaped.
fn table(out: &mut String, t: &Table) {
    let class = |align: Align, header: bool| match align {
        Align::Right => " class=\"num\"",
        Align::Wrap if !header => " class=\"text\"",
        Align::Left | Align::Wrap => "",
    };
    out.push_str("<table>\n<thead><tr>");
    for (label, align) in t.columns {
        out.push_str(&format!("<th{}>{label}</th>", class(*align, true)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (cell, (_, align)) in row.iter().zip(t.columns) {
            let html = match cell {
                Cell::Text(t) => esc(t),
                Cell::Code(t) => format!("<code>{}</code>", esc(t)),
                Cell::Mark { pass, word } => result(*pass, word),
            };
            out.push_str(&format!("<td{}>{html}</td>", class(*align, false)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn service_levels(out: &mut String, levels: &view::ServiceLevels) {
    out.push_str("<section id=\"service-levels\">\n<h2>Service levels</h2>\n");
    if levels.phases.rows.is_empty() {
        out.push_str("<p class=\"muted\">No phases measured.</p>\n</section>\n");
        return;
    }
    table(out, &levels.phases);
    if levels.slos.rows.is_empty() {
        out.push_str("<p class=\"muted\">No SLOs set.</p>\n");
    } else {
        table(out, &levels.slos);
    }
    out.push_str("</section>\n");
}

fn history_check(out: &mut String, id: &str, title: &str, c: &view::HistoryCheck) {
    out.push_str(&format!("<section id=\"{id}\">\n<h2>{title}</h2>\n"));
    out.push_str(&format!(
        "<p>{}</p>\n",
        result(Some(c.pass), &esc(&c.sentence))
    ));
    table(out, &c.counts);
    out.push_str(&format!("<p class=\"note\">{}</p>\n", c.note));
    for e in &c.examples {
        out.push_str(&format!(
            "<p>{}:</p>\n<pre>{}</pre>\n",
            e.heading,
            esc(&e.text)
        ));
    }
    out.push_str("</section>\n");
}

fn backup(out: &mut String, b: &view::Backup) {
    out.push_str("<section id=\"backup\">\n<h2>Backup and restore</h2>\n");
    table(out, &b.timeline);
    out.push_str(&format!(
        "<p>{} Recovery time (RTO): {}{}. Recovery point (RPO) seen: {}{}, from the backup's start \
         to the last write acknowledged before the disaster.</p>\n<p class=\"note\">{} acknowledged \
         writes came after the backup ended; {} of them are gone (after the recovery point, \
         allowed); {} writes that overlapped the backup are gone (indeterminate, allowed).</p>\n",
        result(Some(b.pass), if b.pass { "met" } else { "missed" }),
        b.rto,
        b.rto_limit,
        b.rpo,
        b.rpo_limit,
        b.writes_after_backup,
        b.after_recovery_point,
        b.indeterminate,
    ));
    out.push_str("</section>\n");
}

fn rollout(out: &mut String, r: &view::Rollout) {
    out.push_str(&format!("<section id=\"rollout\">\n<h2>{}</h2>\n", r.title));
    let matched = r.expected.is_none();
    let subject = match &r.traffic {
        Some(t) => format!(
            "Canary <code>{}</code> against {}",
            esc(&t.canary),
            t.baseline
                .iter()
                .map(|b| format!("<code>{}</code>", esc(b)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => format!("Stages of step <code>{}</code>", esc(&r.step)),
    };
    out.push_str(&format!(
        "<p>{} {subject}: <strong>{}</strong>{}.</p>\n",
        result(
            Some(matched),
            if matched { "as expected" } else { "unexpected" }
        ),
        r.outcome,
        r.expected
            .map(|e| format!(", expected {e}"))
            .unwrap_or_default(),
    ));
    if let Some(f) = &r.failure {
        out.push_str(&format!("<p>Rolled back: {}</p>\n", esc(f)));
    }
    if let Some(file) = r.incident {
        out.push_str(&format!(
            "<p>Incident note: <a href=\"{0}\">{0}</a></p>\n",
            esc(file)
        ));
    }
    table(out, &r.stages);
    if !r.evaluations.rows.is_empty() {
        out.push_str(&format!(
            "<details><summary>Gate evaluations: {}</summary>\n",
            r.evaluations.rows.len()
        ));
        table(out, &r.evaluations);
        out.push_str("</details>\n");
    }
    if let Some(k) = &r.kill_switch {
        out.push_str(&format!(
            "<p>{} Kill switch {}</p>\n",
            result(Some(k.pass), if k.pass { "in time" } else { "too slow" }),
            esc(&k.sentence),
        ));
    }
    if let Some(l) = &r.levers {
        out.push_str("<h3>Rollback levers</h3>\n");
        if let Some(u) = &l.unexpected {
            let sentence = u.sentence(|name| format!("<code>{}</code>", esc(name)));
            out.push_str(&format!("<p>{}</p>\n", result(Some(false), &sentence)));
        }
        table(out, &l.table);
        out.push_str(&format!("<p class=\"note\">{}</p>\n", l.note));
    }
    out.push_str("</section>\n");
}

/// The fragment id of a step's transcript, which the chart's step marks link to.
fn step_anchor(id: &str) -> String {
    let id: String = id
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

fn procedure(out: &mut String, steps: &[view::Step]) {
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
            esc(&step_anchor(&step.id)),
            esc(&step.id),
            esc(&step.name),
        ));
        if let Some(prose) = &step.prose {
            out.push_str(&format!("<p>{}</p>\n", esc(prose)));
        }
        out.push_str(&format!(
            "<pre class=\"action\">{}</pre>\n",
            esc(&step.action)
        ));
        let Some(ran) = &step.ran else {
            out.push_str(
                "<p class=\"muted\">Not run: an earlier step failed or the run was interrupted.</p>\n</article>\n",
            );
            continue;
        };
        match &ran.error {
            Some(view::Error::Block(error)) => out.push_str(&format!(
                "<p class=\"error\"><strong>Failed:</strong></p>\n<pre>{}</pre>\n",
                esc(error)
            )),
            Some(view::Error::Line(error)) => out.push_str(&format!(
                "<p class=\"error\"><strong>Failed:</strong> {}</p>\n",
                esc(error)
            )),
            None => {}
        }
        step_output(out, &ran.output);
        let transcript = if is_local_path(&ran.transcript) {
            format!("<a href=\"{0}\"><code>{0}</code></a>", esc(&ran.transcript))
        } else {
            format!("<code>{}</code>", esc(&ran.transcript))
        };
        out.push_str(&format!(
            "<p class=\"note\">{}. Transcript: {transcript}.</p>\n</article>\n",
            ran.timing,
        ));
    }
    out.push_str("</section>\n");
}

fn step_output(out: &mut String, output: &view::Output) {
    match &output.stdout {
        Some(stdout) => output_block(out, stdout),
        None => out.push_str(&format!(
            "<p><strong>{}:</strong> nothing on stdout.</p>\n",
            output.label
        )),
    }
    if let Some(stderr) = &output.stderr {
        output_block(out, stderr);
    }
}

/// One stream of a step's output; long ones are folded in `<details>`.
fn output_block(out: &mut String, s: &view::Stream) {
    let body = esc(s.text.strip_suffix('\n').unwrap_or(&s.text));
    if s.folded {
        out.push_str(&format!(
            "<details><summary>{}: {} lines</summary>\n<pre>{body}</pre>\n</details>\n",
            s.label, s.lines
        ));
    } else {
        out.push_str(&format!(
            "<p><strong>{}:</strong></p>\n<pre>{body}</pre>\n",
            s.label
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::chart::{XAxis, BACKEND_COLORS, LEFT, RIGHT, WIDTH};
    use super::*;
    use crate::{fixtures, FOLD_LINES};
    use firedrill_types::history::{Micros, OpKind, Outcome};
    use firedrill_types::monitoring::AlertEpisode;

    fn seconds(s: f64) -> Micros {
        (s * 1e6).round() as Micros
    }
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

    /// The `(x, width)` of each `<rect>` of exactly `class` in `svg`.
    fn rects(svg: &str, class: &str) -> Vec<(f64, f64)> {
        svg.split(&format!("<rect class=\"{class}\""))
            .skip(1)
            .map(|rect| (attribute(rect, "x"), attribute(rect, "width")))
            .collect()
    }

    /// The first value of `name` in `tag`, as a number.
    fn attribute(tag: &str, name: &str) -> f64 {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {tag}"))
    }

    /// The points of each polyline drawn in `color` in `svg`.
    fn polylines(svg: &str, color: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split(&format!("<polyline stroke=\"{color}\""))
            .skip(1)
            .map(|line| {
                let points = line.split("points=\"").nth(1).expect("points");
                points[..points.find('"').expect("end of points")]
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').expect("x,y");
                        (x.parse().expect("x"), y.parse().expect("y"))
                    })
                    .collect()
            })
            .collect()
    }

    /// Within the rounding of the SVG's coordinates to a tenth.
    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() <= 0.11
    }

    fn history_axis() -> XAxis {
        XAxis::spanning(&Timeline::new(&fixtures::history()).expect("a timeline"))
    }

    #[test]
    fn failing_report() {
        insta::assert_snapshot!(
            "failing",
            render(&fixtures::failing(), &fixtures::history(), &[])
        );
    }

    #[test]
    fn backup_and_rollout_sections() {
        let page = render(&fixtures::procedures(), &[], &[]);
        let from = page
            .find("<section id=\"backup\">")
            .expect("a backup section");
        let to = page
            .find("<section id=\"checks\">")
            .expect("a checks section");
        insta::assert_snapshot!("backup_and_rollout", &page[from..to]);
    }

    #[test]
    fn staged_rollout_and_time_to_effect_sections() {
        let page = render(&fixtures::staged(), &fixtures::history(), &[]);
        let from = page
            .find("<section id=\"rollout\">")
            .expect("a rollout section");
        let to = page
            .find("<section id=\"checks\">")
            .expect("a checks section");
        insta::assert_snapshot!("staged_rollout_and_effects", &page[from..to]);
        // The charts mark the stages by name, not by a share of 0 %.
        assert!(
            page.contains("<title>stage 2: sample 5 %</title>"),
            "{page}"
        );
        assert!(!page.contains("stage 2: 0 %"));
    }

    #[test]
    fn rollback_levers_and_the_incident_note() {
        let page = render(&fixtures::levers(), &[], &[]);
        let rollout = page
            .split("<section id=\"rollout\">")
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .expect("a rollout section");
        assert!(
            rollout.contains("<p>Incident note: <a href=\"incident.md\">incident.md</a></p>"),
            "{rollout}"
        );
        let levers = rollout
            .split("<h3>Rollback levers</h3>\n")
            .nth(1)
            .expect("a levers table");
        assert!(
            levers.starts_with(
                "<p><span class=\"result fail\">✗ Lever 1 <code>Flag off</code> was expected to \
             restore service; lever 2 <code>Safe mode</code> did.</span></p>\n<table>"
            ),
            "{levers}"
        );
        assert!(
            levers.contains(
                "<tr><td class=\"num\">2</td><td>Safe mode</td><td><span class=\"result pass\">✓ \
             restored</span></td><td class=\"num\">3.6 s</td><td class=\"text\">—</td></tr>"
            ),
            "{levers}"
        );
        assert!(levers.contains("<td>Redeploy</td><td>not tried</td><td class=\"num\">—</td>"));
        let staged = render(&fixtures::staged(), &[], &[]);
        assert!(!staged.contains("Rollback levers") && !staged.contains("incident.md"));
    }

    #[test]
    fn failing_report_shows_the_verdict_and_every_reason_in_order() {
        let summary = fixtures::failing();
        let page = render(&summary, &fixtures::history(), &[]);
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
        let page = render(&fixtures::passing(), &fixtures::history(), &[]);
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
        let page = render(&summary, &fixtures::history(), &[]);
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
        let page = render(&summary, &[], &[]);
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
        let page = render(&summary, &fixtures::history(), &[]);
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
        let page = render(&summary, &fixtures::history(), &[]);
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
        let page = render(&fixtures::passing(), &[], &[]);
        assert!(page.contains("No operations recorded"));
        assert!(!page.contains("<svg"));
        assert!(
            page.contains("id=\"procedure\""),
            "the rest of the page is there"
        );
    }

    #[test]
    fn per_backend_lines_appear_when_backends_are_set() {
        let plain = render(&fixtures::passing(), &fixtures::history(), &[]);
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
        let page = render(&fixtures::passing(), &ops, &[]);
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
        let page = render(&fixtures::passing(), &ops, &[]);
        assert!(page.contains(">2 more backends not drawn<"), "{page}");
    }

    #[test]
    fn a_run_without_a_successful_operation_says_there_is_no_latency() {
        let ops = vec![
            op(0, 1_000, Outcome::Fail, None),
            op(1_500_000, 1_000, Outcome::Unknown, None),
        ];
        let page = render(&fixtures::failing(), &ops, &[]);
        let latency = svg(&page, "Latency (ms, log scale)");
        assert!(latency.contains("no successful operation"));
        assert!(!latency.contains("<polyline"));
    }

    #[test]
    fn dashboards() {
        let page = render(
            &fixtures::monitored(),
            &fixtures::history(),
            &fixtures::panel_series(),
        );
        let from = page.find("<section id=\"panels\">").expect("dashboards");
        let to = page.find("<section id=\"load\">").expect("load");
        insta::assert_snapshot!("dashboards", &page[from..to]);
    }

    #[test]
    fn dashboards_draw_each_sample_at_its_time_over_the_timeline_axis() {
        let page = render(
            &fixtures::monitored(),
            &fixtures::history(),
            &fixtures::panel_series(),
        );
        let x = history_axis();
        let chart = svg(&page, "Requests per member (req/s)");
        assert_eq!(
            chart.matches("<polyline").count(),
            4,
            "kv2's gap breaks its line"
        );
        let [kv1, kv2, kv3] = [0, 1, 2].map(|i| polylines(chart, BACKEND_COLORS[i]));
        // Samples every second from 7 s to 20 s; the axis runs from the first operation (8 s)
        // to the last (19.505 s): 8 s to 19 s, and the line cut where it leaves the axis.
        for line in [&kv1, &kv3] {
            assert_eq!(line.len(), 1);
            assert_eq!(line[0].len(), 13);
            assert!(near(line[0][0].0, LEFT), "{:?}", line[0][0]);
            assert!(near(line[0][2].0, x.at(10_000_000)), "{:?}", line[0][2]);
            assert!(near(line[0][12].0, WIDTH - RIGHT), "{:?}", line[0][12]);
        }
        // kv2 answered nothing from 12 s to 14 s: 8–11 s, then 15–19 s and the edge.
        assert_eq!(kv2.iter().map(Vec::len).collect::<Vec<_>>(), [4, 6]);
        assert!(near(kv2[1][0].0, x.at(15_000_000)));
        for instance in ["kv1", "kv2", "kv3"] {
            assert!(chart.contains(&format!(">instance=&quot;{instance}:2379&quot;</text>")));
        }
        assert!(
            !chart.contains(BACKEND_COLORS[3]),
            "three lines, three colours"
        );
        // The timeline's phases and steps, and the alerts washed in.
        assert!(chart.contains("class=\"band-procedure\""));
        assert_eq!(chart.matches("class=\"step-mark\"").count(), 4);
        assert_eq!(chart.matches("class=\"alert-pending wash\"").count(), 2);
        assert_eq!(chart.matches("class=\"alert-firing wash\"").count(), 2);

        // One series: named by all its labels but the metric's name; no unit, plain numbers.
        let leaders = svg(&page, "Leader changes");
        assert!(leaders.contains(">instance=&quot;kv1:2379&quot;, job=&quot;kv&quot;</text>"));
        assert!(!leaders.contains("kv_server_leader_changes_seen_total"));
        let line = polylines(leaders, BACKEND_COLORS[0]);
        // 9 s to 19 s every 2 s, and where it crosses into the axis at 8 s.
        assert_eq!(line.iter().map(Vec::len).collect::<Vec<_>>(), [7]);
        assert!(near(line[0][1].0, x.at(9_000_000)));
        assert!(leaders.contains(">2.0</text>") && !leaders.contains("req/s"));
    }

    #[test]
    fn a_panel_that_failed_or_matched_nothing_says_so_instead_of_a_chart() {
        let page = render(
            &fixtures::monitored(),
            &fixtures::history(),
            &fixtures::panel_series(),
        );
        assert!(page.contains(
            "<p class=\"muted\"><strong>Commit latency p99</strong>: not fetched: bad_data: \
             invalid parameter &quot;query&quot;: 1:63: parse error: unclosed left parenthesis</p>"
        ));
        assert!(page.contains(
            "<p class=\"muted\"><strong>Snapshots taken</strong>: the query returned no series \
             over the run.</p>"
        ));
        for title in ["Commit latency p99", "Snapshots taken"] {
            assert!(!page.contains(&format!("aria-label=\"{title}")), "{title}");
        }
        // Without the series (a report re-rendered from summary.json alone): no chart either.
        let page = render(&fixtures::monitored(), &fixtures::history(), &[]);
        assert!(!page.contains("aria-label=\"Requests per member"));
        assert!(page.contains("<strong>Requests per member</strong>: no samples to draw."));
    }

    #[test]
    fn at_most_eight_lines_per_dashboard() {
        let mut panels = fixtures::panel_series();
        let line = panels[0].lines[0].clone();
        panels[0].lines = (1..=10)
            .map(|i| {
                let mut line = line.clone();
                line.labels.insert("instance".into(), format!("kv{i}:2379"));
                line
            })
            .collect();
        let page = render(&fixtures::monitored(), &fixtures::history(), &panels);
        let chart = svg(&page, "Requests per member (req/s)");
        assert_eq!(chart.matches("<polyline").count(), 8);
        for color in BACKEND_COLORS {
            assert_eq!(polylines(chart, color).len(), 1, "{color}");
        }
        assert!(chart.contains(">instance=&quot;kv8:2379&quot;<"));
        assert!(!chart.contains("kv9:2379"));
        assert!(chart.contains(">2 more series not drawn</text>"));
    }

    #[test]
    fn dashboard_and_alert_labels_are_escaped() {
        let mut summary = fixtures::monitored();
        let m = summary.monitoring.as_mut().expect("monitoring");
        m.episodes[1]
            .labels
            .insert("summary".into(), "<b>kv3</b> & 'down'".into());
        let mut panels = fixtures::panel_series();
        panels[0].lines[0]
            .labels
            .insert("path".into(), "</text><script>x</script>".into());
        let page = render(&summary, &fixtures::history(), &panels);
        let chart = svg(&page, "Requests per member (req/s)");
        assert!(chart.contains(
            ">instance=&quot;kv1:2379&quot;, path=&quot;&lt;/text&gt;&lt;script&gt;x&lt;/script&gt;&quot;</text>"
        ));
        let strip = svg(&page, "alerts on the run clock");
        assert!(strip.contains("summary=&quot;&lt;b&gt;kv3&lt;/b&gt; &amp; &#39;down&#39;&quot;"));
        assert!(!page.contains("<script") && !page.contains("<b>"));
    }

    #[test]
    fn alert_bands_sit_on_the_run_clock() {
        let page = render(
            &fixtures::monitored(),
            &fixtures::history(),
            &fixtures::panel_series(),
        );
        let x = history_axis();
        let strip = svg(&page, "alerts on the run clock");
        // Under the procedure strip, above the first chart.
        let at = |label: &str| page.find(&format!("aria-label=\"{label}\"")).expect(label);
        assert!(at("phases and steps on the run clock") < at("alerts on the run clock"));
        assert!(at("alerts on the run clock") < at("Throughput (ops/s)"));
        let episode = |instance: &str| {
            let from = strip
                .find(&format!(
                    "<title>KvMemberDown {{instance=&quot;{instance}&quot;"
                ))
                .unwrap_or_else(|| panic!("no episode on {instance}"));
            &strip[from..from + strip[from..].find("</g>").expect("end of the episode")]
        };
        let span =
            |from: f64, to: f64| (x.at(seconds(from)), x.at(seconds(to)) - x.at(seconds(from)));
        let same = |drawn: &[(f64, f64)], expected: (f64, f64)| {
            assert_eq!(drawn.len(), 1, "{drawn:?}");
            assert!(
                near(drawn[0].0, expected.0) && near(drawn[0].1, expected.1),
                "{drawn:?} is not {expected:?}"
            );
        };
        // kv2: pending from 10.5 s, firing from 11.5 s, resolved at 15 s.
        let kv2 = episode("kv2:2379");
        same(&rects(kv2, "alert-pending"), span(10.5, 11.5));
        same(&rects(kv2, "alert-firing"), span(11.5, 15.0));
        assert!(kv2.contains("resolved at 15.000 s"));
        // kv3 was still firing when the run stopped watching: to the end of the axis.
        let kv3 = episode("kv3:2379");
        same(&rects(kv3, "alert-pending"), span(16.0, 17.0));
        let from = x.at(seconds(17.0));
        same(&rects(kv3, "alert-firing"), (from, WIDTH - RIGHT - from));
        assert!(kv3.contains("still active when the run stopped watching"));
        // One row each, named by the label that tells them apart (not by `severity`, which
        // they share); the legend names the states.
        for label in [
            ">KvMemberDown instance=&quot;kv2:2379&quot;</text>",
            ">KvMemberDown instance=&quot;kv3:2379&quot;</text>",
            ">pending</text>",
            ">firing</text>",
        ] {
            assert!(strip.contains(label), "{label}");
        }
    }

    #[test]
    fn the_alert_strip_stops_at_twelve_rows() {
        let mut summary = fixtures::monitored();
        let m = summary.monitoring.as_mut().expect("monitoring");
        let episode = m.episodes[0].clone();
        m.episodes = (1..=14)
            .map(|i| AlertEpisode {
                alert: format!("KvAlert{i:02}"),
                ..episode.clone()
            })
            .collect();
        let page = render(&summary, &fixtures::history(), &fixtures::panel_series());
        let strip = svg(&page, "alerts on the run clock");
        assert_eq!(strip.matches("<a href=\"#alerts\">").count(), 12);
        assert!(strip.contains(">KvAlert12</text>") && !strip.contains("KvAlert13"));
        assert!(strip.contains(">2 more alerts not drawn: see Alerts</text>"));
        // Every episode is still washed into the dashboards.
        let chart = page.split("id=\"panels\"").nth(1).expect("dashboards");
        assert!(chart.contains("KvAlert14"));
    }

    #[test]
    fn a_run_without_monitoring_or_alerts_has_no_alert_strip() {
        for summary in [fixtures::passing(), {
            let mut quiet = fixtures::monitored();
            quiet
                .monitoring
                .as_mut()
                .expect("monitoring")
                .episodes
                .clear();
            quiet
        }] {
            let page = render(&summary, &fixtures::history(), &fixtures::panel_series());
            assert!(!page.contains("alerts on the run clock"));
            assert!(!page.contains("class=\"alert-"), "no band anywhere");
        }
        // Without monitoring there is no panel either, whatever series are passed.
        let page = render(
            &fixtures::passing(),
            &fixtures::history(),
            &fixtures::panel_series(),
        );
        assert!(!page.contains("id=\"panels\"") && !page.contains("Requests per member"));
    }

    #[test]
    fn dashboards_without_operations_draw_over_their_own_span() {
        let page = render(&fixtures::monitored(), &[], &fixtures::panel_series());
        assert!(page.contains("No operations recorded"));
        assert!(page.contains("over the panels' own span"));
        assert!(
            page.find("<svg").expect("a chart") > page.find("id=\"panels\"").expect("dashboards"),
            "no chart in the Timeline"
        );
        // The panels' samples run from 7 s to 20 s.
        let x = XAxis::new(seconds(7.0), seconds(20.0));
        let requests = polylines(svg(&page, "Requests per member (req/s)"), BACKEND_COLORS[0]);
        assert_eq!(requests[0].len(), 14);
        assert!(near(requests[0][0].0, LEFT) && near(requests[0][13].0, WIDTH - RIGHT));
        let leaders = svg(&page, "Leader changes");
        assert!(near(
            polylines(leaders, BACKEND_COLORS[0])[0][6].0,
            x.at(seconds(19.0))
        ));
        assert!(leaders.contains("class=\"alert-firing wash\""));
    }
}
