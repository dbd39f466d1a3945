//! Alert episodes on the run clock: a strip of bands under the procedure strip, one row per
//! alert and label set, and the same bands washed in lightly behind the dashboards' lines.

use std::collections::BTreeMap;

use firedrill_types::history::Micros;
use firedrill_types::monitoring::AlertEpisode;
use firedrill_types::summary::Summary;

use super::chart::{coord, svg_open, Overlay, XAxis, CHAR_WIDTH, LEFT, RIGHT, WIDTH};
use super::labels;
use crate::{first_line, html_escape as esc, plural, run_clock};

/// Rows before the strip stops growing; the Alerts table lists every episode.
const MAX_ROWS: usize = 12;
/// Characters of a row's label, alert name and labels.
const MAX_LABEL: usize = 60;

/// A stretch of one episode on the axis, in one state; `class` is its CSS class.
pub(super) struct Span {
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) class: &'static str,
}

/// An episode as spans: pending until it fired (or resolved), firing until it resolved; still
/// active when the run stopped watching, it runs to the end of the axis.
fn spans(e: &AlertEpisode, x: &XAxis) -> Vec<Span> {
    let span = |from: Micros, until: Option<Micros>, class| {
        let x0 = x.at(from);
        Span {
            x0,
            x1: x.at(until.unwrap_or(x.end)).max(x0),
            class,
        }
    };
    let mut spans = Vec::new();
    if let Some(pending) = e.pending_at {
        spans.push(span(
            pending,
            e.firing_at.or(e.resolved_at),
            "alert-pending",
        ));
    }
    if let Some(firing) = e.firing_at {
        spans.push(span(firing, e.resolved_at, "alert-firing"));
    }
    // Shorter than a poll, or off the axis (clamped to its edge), it still shows as a sliver.
    if let Some(x0) = spans.first().map(|s| s.x0) {
        if let Some(last) = spans.last_mut() {
            last.x1 = last.x1.max(x0 + 2.0);
        }
    }
    spans
}

/// The alert, its labels and its times, for a hover title.
fn describe(e: &AlertEpisode) -> String {
    let mut times = Vec::new();
    if let Some(t) = e.pending_at {
        times.push(format!("pending at {} s", run_clock(t)));
    }
    if let Some(t) = e.firing_at {
        times.push(format!("firing at {} s", run_clock(t)));
    }
    times.push(match e.resolved_at {
        Some(t) => format!("resolved at {} s", run_clock(t)),
        None => "still active when the run stopped watching".to_string(),
    });
    let labels = labels::written(&e.labels);
    if labels.is_empty() {
        format!("{}: {}", e.alert, times.join(", "))
    } else {
        format!("{} {{{labels}}}: {}", e.alert, times.join(", "))
    }
}

/// Every episode's spans with its description: the overlay's light bands.
pub(super) fn washes(s: &Summary, x: &XAxis) -> Vec<(Span, String)> {
    let episodes = s.monitoring.iter().flat_map(|m| &m.episodes);
    episodes
        .flat_map(|e| spans(e, x).into_iter().map(move |span| (span, describe(e))))
        .collect()
}

/// One row of the strip: an alert with one label set, and its episodes in order.
struct Row<'a> {
    alert: &'a str,
    labels: &'a BTreeMap<String, String>,
    episodes: Vec<&'a AlertEpisode>,
}

/// The episodes by alert and label set, in the order each first became active.
fn rows(episodes: &[AlertEpisode]) -> Vec<Row<'_>> {
    let mut rows: Vec<Row> = Vec::new();
    for e in episodes {
        match rows
            .iter_mut()
            .find(|r| r.alert == e.alert && *r.labels == e.labels)
        {
            Some(row) => row.episodes.push(e),
            None => rows.push(Row {
                alert: &e.alert,
                labels: &e.labels,
                episodes: vec![e],
            }),
        }
    }
    rows
}

/// The alert's name, and the labels that tell its row from the others of the same name.
fn row_label(row: &Row, rows: &[Row]) -> String {
    let twins: Vec<&BTreeMap<String, String>> = rows
        .iter()
        .filter(|r| r.alert == row.alert)
        .map(|r| r.labels)
        .collect();
    let labels = labels::written(labels::distinguishing(row.labels, &twins));
    let label = if labels.is_empty() {
        row.alert.to_string()
    } else {
        format!("{} {labels}", row.alert)
    };
    first_line(&label, MAX_LABEL)
}

/// The strip: phases and step marks behind, a row of pending and firing bands per alert and
/// label set, each labelled and linked to the Alerts table. Nothing without an episode.
pub(super) fn strip(out: &mut String, s: &Summary, x: &XAxis, overlay: &Overlay) {
    const TOP: f64 = 24.0;
    const ROW: f64 = 16.0;
    const BAR: f64 = 12.0;

    let Some(m) = s.monitoring.as_ref().filter(|m| !m.episodes.is_empty()) else {
        return;
    };
    let rows = rows(&m.episodes);
    let shown = rows.len().min(MAX_ROWS);
    let left_out = rows.len() - shown;
    let height = TOP + (shown + usize::from(left_out > 0)) as f64 * ROW + 4.0;
    svg_open(out, height, "alerts on the run clock");
    overlay.draw(out, 0.0, height);
    // The legend: the title, a swatch for each state, and how late the times may be.
    out.push_str(&format!(
        "<text class=\"title\" x=\"4\" y=\"15\">Alerts</text>\n\
         <rect class=\"alert-pending\" x=\"{0}\" y=\"6\" width=\"14\" height=\"10\"/><text x=\"{1}\" y=\"15\">pending</text>\n\
         <rect class=\"alert-firing\" x=\"{2}\" y=\"6\" width=\"14\" height=\"10\"/><text x=\"{3}\" y=\"15\">firing</text>\n\
         <text class=\"unit\" x=\"{4}\" y=\"15\">times as polled (up to one poll late); still active at the end: drawn to the edge</text>\n",
        coord(LEFT),
        coord(LEFT + 18.0),
        coord(LEFT + 72.0),
        coord(LEFT + 90.0),
        coord(LEFT + 140.0),
    ));
    for (i, row) in rows.iter().take(shown).enumerate() {
        let y = TOP + i as f64 * ROW;
        out.push_str("<a href=\"#alerts\"><g>");
        for e in &row.episodes {
            out.push_str(&format!("<g><title>{}</title>", esc(&describe(e))));
            for span in spans(e, x) {
                out.push_str(&format!(
                    "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                    span.class,
                    coord(span.x0),
                    coord(y),
                    coord(span.x1 - span.x0),
                    coord(BAR)
                ));
            }
            out.push_str("</g>");
        }
        // The label starts at the row's first episode, moved left if it would run off the edge.
        let label = row_label(row, &rows);
        let width = label.chars().count() as f64 * CHAR_WIDTH + 4.0;
        let first = row.episodes[0].active_at();
        let text_x = (x.at(first) + 3.0).min(WIDTH - RIGHT - width).max(LEFT);
        out.push_str(&format!(
            "<text class=\"halo\" x=\"{}\" y=\"{}\">{}</text></g></a>\n",
            coord(text_x),
            coord(y + BAR - 2.5),
            esc(&label)
        ));
    }
    if left_out > 0 {
        out.push_str(&format!(
            "<text class=\"unit\" x=\"{}\" y=\"{}\">{} not drawn: see Alerts</text>\n",
            coord(LEFT),
            coord(TOP + shown as f64 * ROW + BAR - 2.5),
            plural(left_out, "more alert", "more alerts"),
        ));
    }
    out.push_str("</svg>\n</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(
        alert: &str,
        instance: &str,
        (pending, firing, resolved): (Option<u64>, Option<u64>, Option<u64>),
    ) -> AlertEpisode {
        AlertEpisode {
            alert: alert.to_string(),
            labels: [("instance", instance), ("severity", "page")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pending_at: pending,
            firing_at: firing,
            resolved_at: resolved,
        }
    }

    #[test]
    fn an_episode_is_pending_then_firing_until_it_resolves_or_the_axis_ends() {
        let x = XAxis::new(10_000_000, 20_000_000);
        let spans_of = |times| {
            spans(&episode("KvDown", "kv1:2379", times), &x)
                .into_iter()
                .map(|s| (s.class, s.x0, s.x1))
                .collect::<Vec<_>>()
        };
        let at = |t| x.at(t);
        assert_eq!(
            spans_of((Some(12_000_000), Some(13_000_000), Some(15_000_000))),
            [
                ("alert-pending", at(12_000_000), at(13_000_000)),
                ("alert-firing", at(13_000_000), at(15_000_000)),
            ]
        );
        // Firing at once and never resolved: to the right edge.
        assert_eq!(
            spans_of((None, Some(16_000_000), None)),
            [("alert-firing", at(16_000_000), WIDTH - RIGHT)]
        );
        // Pending, then gone without firing.
        assert_eq!(
            spans_of((Some(12_000_000), None, Some(14_000_000))),
            [("alert-pending", at(12_000_000), at(14_000_000))]
        );
        // Over before the axis starts: a sliver at its left edge.
        assert_eq!(
            spans_of((Some(1_000_000), Some(2_000_000), Some(3_000_000))),
            [
                ("alert-pending", LEFT, LEFT),
                ("alert-firing", LEFT, LEFT + 2.0),
            ]
        );
    }

    #[test]
    fn rows_group_episodes_and_name_what_tells_them_apart() {
        let episodes = [
            episode(
                "KvDown",
                "kv2:2379",
                (Some(1_000_000), Some(2_000_000), Some(3_000_000)),
            ),
            episode(
                "KvSlow",
                "kv2:2379",
                (Some(2_000_000), None, Some(4_000_000)),
            ),
            episode(
                "KvDown",
                "kv3:2379",
                (Some(5_000_000), Some(6_000_000), None),
            ),
            episode(
                "KvDown",
                "kv2:2379",
                (Some(7_000_000), Some(8_000_000), None),
            ),
        ];
        let rows = rows(&episodes);
        let labels: Vec<String> = rows.iter().map(|r| row_label(r, &rows)).collect();
        assert_eq!(
            labels,
            [
                "KvDown instance=\"kv2:2379\"",
                "KvSlow",
                "KvDown instance=\"kv3:2379\""
            ]
        );
        assert_eq!(rows[0].episodes.len(), 2, "kv2 went down twice");
        assert_eq!(
            describe(&episodes[2]),
            "KvDown {instance=\"kv3:2379\", severity=\"page\"}: pending at 5.000 s, \
             firing at 6.000 s, still active when the run stopped watching"
        );
    }
}
