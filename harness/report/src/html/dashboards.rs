//! The dashboards' charts: each panel as Prometheus answered its query over the run, drawn
//! over the timeline charts' x axis with the same phases and steps behind, and the alerts
//! washed in. Each sample sits at the time Prometheus evaluated it, not in a bucket.

use std::collections::BTreeMap;

use firedrill_judge::timeline::Timeline;
use firedrill_types::history::Micros;
use firedrill_types::monitoring::{PanelLine, PanelSeries};
use firedrill_types::summary::Summary;

use super::chart::{panel, Overlay, Scale, Series, XAxis, BACKEND_COLORS};
use super::labels;
use crate::{first_line, html_escape as esc, plural};

/// Characters of a line's name in the legend.
const MAX_NAME: usize = 60;

/// A chart per panel of `s.monitoring`, in order, from `panels` (their series, in the same
/// order); a panel with an error or without a series gets a line saying so.
pub(super) fn charts(
    out: &mut String,
    s: &Summary,
    panels: &[PanelSeries],
    timeline: Option<&Timeline>,
) {
    let Some(m) = &s.monitoring else {
        return;
    };
    // Without operations there is no timeline to line up with: the panels' own span.
    let x = match timeline {
        Some(t) => Some(XAxis::spanning(t)),
        None => extent(panels).map(|(start, end)| XAxis::new(start, end)),
    };
    if x.is_some() {
        out.push_str(&format!(
            "<p class=\"note\">Each point is a sample, at the time Prometheus evaluated the \
             query; x axis: seconds on the run clock, {}. Shaded: the phases and, lightly, any \
             alert pending or firing (in full in the ribbon on top).</p>\n",
            if timeline.is_some() {
                "as in the Timeline"
            } else {
                "over the panels' own span (no operation was recorded)"
            }
        ));
    }
    let chart = x.map(|x| {
        let overlay = Overlay::new(s, &x).with_alerts(s, &x);
        (x, overlay)
    });
    for (i, record) in m.panels.iter().enumerate() {
        let lines: Vec<&PanelLine> = panels
            .get(i)
            .into_iter()
            .flat_map(|p| &p.lines)
            .filter(|l| !l.points.is_empty())
            .collect();
        let (x, overlay) = match (&record.error, &chart) {
            (Some(error), _) => {
                muted(out, &record.title, &format!("not fetched: {error}"));
                continue;
            }
            (None, Some(chart)) if !lines.is_empty() => chart,
            // Series counted but not given: a report rendered from summary.json alone.
            (None, _) if record.series > 0 => {
                muted(out, &record.title, "no samples to draw.");
                continue;
            }
            (None, _) => {
                muted(
                    out,
                    &record.title,
                    "the query returned no series over the run.",
                );
                continue;
            }
        };
        let siblings: Vec<&BTreeMap<String, String>> = lines.iter().map(|l| &l.labels).collect();
        let series: Vec<Series> = lines
            .iter()
            .zip(BACKEND_COLORS)
            .map(|(line, color)| {
                let name = name(&line.labels, &siblings, &record.title);
                Series::new(&name, color, points(&line.points, x))
            })
            .collect();
        let hidden = lines.len() - series.len();
        panel(
            out,
            x,
            overlay,
            &record.title,
            Scale::Linear { unit: &record.unit },
            &series,
            (hidden > 0)
                .then(|| format!("{} not drawn", plural(hidden, "more series", "more series"))),
        );
    }
}

fn muted(out: &mut String, title: &str, why: &str) {
    out.push_str(&format!(
        "<p class=\"muted\"><strong>{}</strong>: {}</p>\n",
        esc(title),
        esc(why)
    ));
}

/// The first and last sample of every panel.
fn extent(panels: &[PanelSeries]) -> Option<(Micros, Micros)> {
    let times = panels
        .iter()
        .flat_map(|p| &p.lines)
        .flat_map(|l| &l.points)
        .map(|(t, _)| *t);
    Some((times.clone().min()?, times.max()?))
}

/// A line's legend entry: the labels that tell it from the panel's other lines, else all of
/// them, else (a query that keeps no label) the panel's title.
fn name(
    labels: &BTreeMap<String, String>,
    siblings: &[&BTreeMap<String, String>],
    title: &str,
) -> String {
    let distinct = labels::written(labels::distinguishing(labels, siblings));
    let name = if distinct.is_empty() {
        labels::written(labels)
    } else {
        distinct
    };
    first_line(if name.is_empty() { title } else { &name }, MAX_NAME)
}

/// Samples as a series over `x`: broken where one is not a number or missing (a gap of more
/// than two of the line's steps), cut at the ends of the axis.
fn points(samples: &[(Micros, f64)], x: &XAxis) -> Vec<(Micros, Option<f64>)> {
    let step = samples
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .filter(|d| *d > 0)
        .min();
    let mut runs: Vec<Vec<(Micros, f64)>> = vec![Vec::new()];
    for &(t, v) in samples {
        let last = runs.last().and_then(|run| run.last()).map(|(t, _)| *t);
        let gap = last
            .zip(step)
            .is_some_and(|(last, step)| t.saturating_sub(last) > 2 * step);
        if gap || !v.is_finite() {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut().filter(|_| v.is_finite()) {
            run.push((t, v));
        }
    }
    let mut points = Vec::new();
    for run in runs {
        let run = clip(&run, x);
        if let Some(&(end, _)) = run.last() {
            points.extend(run.into_iter().map(|(t, v)| (t, Some(v))));
            points.push((end, None));
        }
    }
    points
}

/// The part of a run of samples on the axis, with a point interpolated at each end it crosses,
/// so that the line reaches the edge rather than stopping a step short of it.
fn clip(run: &[(Micros, f64)], x: &XAxis) -> Vec<(Micros, f64)> {
    let between = |(t0, v0): (Micros, f64), (t1, v1): (Micros, f64), t: Micros| {
        (t, v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
    };
    let mut clipped = Vec::new();
    for (i, &(t, v)) in run.iter().enumerate() {
        if let Some(&prev) = i.checked_sub(1).map(|j| &run[j]) {
            if prev.0 < x.start && t > x.start {
                clipped.push(between(prev, (t, v), x.start));
            }
            if prev.0 < x.end && t > x.end {
                clipped.push(between(prev, (t, v), x.end));
            }
        }
        if (x.start..=x.end).contains(&t) {
            clipped.push((t, v));
        }
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_break_at_gaps_and_stop_at_the_axis() {
        let x = XAxis::new(10_000_000, 20_000_000);
        let s = |seconds: f64| (seconds * 1e6) as Micros;
        // 1 s steps from 9 s to 21 s: 13 s is missing (one step: drawn across), 15 s to 17 s
        // are (a gap: broken), 19 s is not a number (broken).
        let samples: Vec<(Micros, f64)> = [9.0, 10.0, 11.0, 12.0, 14.0, 18.0, 19.0, 20.0, 21.0]
            .into_iter()
            .map(|t| (s(t), if t == 19.0 { f64::NAN } else { t * 10.0 }))
            .collect();
        let drawn = points(&samples, &x);
        let runs: Vec<Vec<(Micros, f64)>> = drawn
            .split(|(_, v)| v.is_none())
            .map(|run| {
                run.iter()
                    .map(|(t, v)| (*t, v.unwrap_or_default()))
                    .collect()
            })
            .filter(|run: &Vec<_>| !run.is_empty())
            .collect();
        assert_eq!(
            runs,
            [
                // 9 s is before the axis: 10 s is a sample, no point is made up.
                vec![
                    (s(10.0), 100.0),
                    (s(11.0), 110.0),
                    (s(12.0), 120.0),
                    (s(14.0), 140.0)
                ],
                vec![(s(18.0), 180.0)],
                // 21 s is past the axis: the line stops at 20 s, where a sample is.
                vec![(s(20.0), 200.0)],
            ]
        );
    }

    #[test]
    fn a_line_crossing_an_end_of_the_axis_reaches_it() {
        let x = XAxis::new(10_500_000, 12_500_000);
        let samples = [
            (10_000_000, 0.0),
            (11_000_000, 10.0),
            (12_000_000, 20.0),
            (13_000_000, 40.0),
        ];
        assert_eq!(
            clip(&samples, &x),
            [
                (10_500_000, 5.0),
                (11_000_000, 10.0),
                (12_000_000, 20.0),
                (12_500_000, 30.0)
            ]
        );
        // Both ends inside one step.
        let x = XAxis::new(10_250_000, 10_750_000);
        assert_eq!(
            clip(&samples[..2], &x),
            [(10_250_000, 2.5), (10_750_000, 7.5)]
        );
    }
}
