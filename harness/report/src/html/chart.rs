//! The charts of report.html: inline SVG over the run clock (throughput, error rate,
//! latency on a log scale, per-backend lines), with the phases shaded and the steps marked.
//! The numbers come from the judge's [`Timeline`]; this module only draws. Its axes, overlay
//! and [`panel`] are shared with the dashboards.

use firedrill_judge::timeline::{self, Bucket, Stats, Timeline};
use firedrill_types::history::Micros;
use firedrill_types::summary::{StepRecord, StepStatus, Summary};

use super::alerts::{self, Span};
use super::{status_class, step_anchor};
use crate::view;
use crate::{html_escape as esc, plural, run_clock, seconds_from_ms};

/// The SVG coordinate width; the figure scales down with the page.
pub(super) const WIDTH: f64 = 900.0;
/// Room for the y tick labels.
pub(super) const LEFT: f64 = 58.0;
pub(super) const RIGHT: f64 = 14.0;
const PLOT_HEIGHT: f64 = 150.0;
/// Rows of step labels before labels are allowed to overlap.
const MAX_LABEL_LANES: usize = 5;
/// An estimate of the width of one character of the 11 px chart font, for layout.
pub(super) const CHAR_WIDTH: f64 = 6.2;

const OK_COLOR: &str = "#2e7d32";
const ERROR_COLOR: &str = "#c62828";
const P50_COLOR: &str = "#7a8a99";
const P99_COLOR: &str = "#1f3b57";
/// One colour per backend line (colour-blind safe, none red, so errors stay red).
pub(super) const BACKEND_COLORS: [&str; timeline::MAX_BACKENDS] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#8c564b", "#7a5195", "#b8a000",
];

/// The Timeline section: `op_count` operations, in `timeline` (`None`: there were none).
pub(super) fn charts(out: &mut String, s: &Summary, op_count: usize, timeline: Option<&Timeline>) {
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    let Some(timeline) = timeline else {
        out.push_str("<p class=\"muted\">No operations recorded: there is nothing to chart.</p>\n</section>\n");
        return;
    };
    let x = XAxis::spanning(timeline);
    out.push_str(&format!(
        "<p class=\"note\">{} in {} one-second buckets, by the time each was invoked; x axis: \
         seconds on the run clock, from the first operation to the last. Shaded: the phases. \
         Latency: successful operations only.</p>\n",
        plural(op_count, "operation", "operations"),
        timeline.buckets.len(),
    ));
    procedure_strip(out, s, &x);
    let overlay = Overlay::new(s, &x);
    alerts::strip(out, s, &x, &overlay);
    let backends_left_out = (timeline.hidden_backends > 0).then(|| {
        format!(
            "{} not drawn",
            plural(timeline.hidden_backends, "more backend", "more backends")
        )
    });

    panel(
        out,
        &x,
        &overlay,
        "Throughput",
        Scale::Linear { unit: "ops/s" },
        &[
            Series::new(
                "ok ops/s",
                OK_COLOR,
                bucketed(timeline, |b| Some(b.ok_per_s())),
            ),
            Series::new(
                "errors/s",
                ERROR_COLOR,
                bucketed(timeline, |b| Some(b.errors_per_s())),
            ),
        ],
        backends_left_out.clone(),
    );

    let per_backend = |f: &dyn Fn(&Stats) -> Option<f64>| -> Vec<Vec<(Micros, Option<f64>)>> {
        (0..timeline.backends.len())
            .map(|i| bucketed(timeline, |b| f(&b.backends[i])))
            .collect()
    };
    let mut series = vec![Series::new(
        if timeline.backends.is_empty() {
            "error rate"
        } else {
            "all backends"
        },
        ERROR_COLOR,
        bucketed(timeline, |b| b.all.error_rate().map(|r| r * 100.0)),
    )];
    for (i, points) in per_backend(&|s| s.error_rate().map(|r| r * 100.0))
        .into_iter()
        .enumerate()
    {
        series.push(Series::new(&timeline.backends[i], BACKEND_COLORS[i], points).thin());
    }
    panel(
        out,
        &x,
        &overlay,
        "Error rate",
        Scale::Linear { unit: "%" },
        &series,
        backends_left_out.clone(),
    );

    let mut series = vec![
        Series::new("p50", P50_COLOR, bucketed(timeline, |b| b.all.p50_ms)),
        Series::new("p99", P99_COLOR, bucketed(timeline, |b| b.all.p99_ms)),
    ];
    for (i, points) in per_backend(&|s| s.p99_ms).into_iter().enumerate() {
        let label = format!("p99 {}", timeline.backends[i]);
        series.push(Series::new(&label, BACKEND_COLORS[i], points).thin());
    }
    panel(
        out,
        &x,
        &overlay,
        "Latency",
        Scale::Log { unit: "ms" },
        &series,
        backends_left_out,
    );
    out.push_str("</section>\n");
}

/// Each bucket's value, at the bucket's middle.
fn bucketed(
    timeline: &Timeline,
    value: impl Fn(&Bucket) -> Option<f64>,
) -> Vec<(Micros, Option<f64>)> {
    timeline
        .buckets
        .iter()
        .map(|b| (b.start + (b.end - b.start) / 2, value(b)))
        .collect()
}

/// The run clock mapped onto the plot area's width.
pub(super) struct XAxis {
    pub(super) start: Micros,
    pub(super) end: Micros,
}

impl XAxis {
    pub(super) fn new(start: Micros, end: Micros) -> XAxis {
        XAxis {
            start,
            end: end.max(start + 1),
        }
    }

    /// The history's span: every chart of a run with operations shares it.
    pub(super) fn spanning(timeline: &Timeline) -> XAxis {
        XAxis::new(timeline.start, timeline.end)
    }

    /// The x coordinate of a time, clamped to the plot area.
    pub(super) fn at(&self, t: Micros) -> f64 {
        let t = t.clamp(self.start, self.end);
        LEFT + (t - self.start) as f64 / (self.end - self.start) as f64 * (WIDTH - LEFT - RIGHT)
    }

    /// Round seconds on the run clock, about ten of them.
    fn ticks(&self) -> Vec<(f64, String)> {
        let (lo, hi) = (self.start as f64 / 1e6, self.end as f64 / 1e6);
        let step = nice_step((hi - lo) / 10.0);
        let decimals = decimals_for(step);
        let mut ticks = Vec::new();
        let mut k = (lo / step).ceil();
        while k * step <= hi + step * 1e-9 {
            let seconds = k * step;
            let t = (seconds * 1e6).round().max(0.0) as Micros;
            ticks.push((self.at(t), format!("{seconds:.decimals$}")));
            k += 1.0;
        }
        ticks
    }
}

/// A round step (1, 2 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// How many decimals tick labels `step` apart need.
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    }
}

/// A coordinate for the SVG: one decimal is finer than a pixel, and keeps the page small.
pub(super) fn coord(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Phase bands and step marks, drawn behind every panel's lines.
pub(super) struct Overlay {
    /// `(x0, x1, phase name)`
    phases: Vec<(f64, f64, &'static str)>,
    /// The alerts, washed in lightly (the dashboards): each span with what it was.
    alerts: Vec<(Span, String)>,
    /// Where each step that ran started.
    steps: Vec<f64>,
    /// Where each rollout stage started, and its share of the traffic or its name.
    stages: Vec<(f64, String)>,
}

impl Overlay {
    pub(super) fn new(s: &Summary, x: &XAxis) -> Overlay {
        Overlay {
            phases: s
                .phases
                .iter()
                .map(|p| (x.at(p.start), x.at(p.end), p.phase.name()))
                .filter(|(x0, x1, _)| x1 > x0)
                .collect(),
            alerts: Vec::new(),
            steps: ran(&s.steps).map(|step| x.at(step.started)).collect(),
            stages: s
                .rollout
                .iter()
                .flat_map(|r| &r.stages)
                .map(|st| {
                    (
                        x.at(st.start),
                        format!("stage {}: {}", st.index, view::stage_label(st)),
                    )
                })
                .collect(),
        }
    }

    /// The same, with the alert episodes as light bands behind the lines.
    pub(super) fn with_alerts(self, s: &Summary, x: &XAxis) -> Overlay {
        Overlay {
            alerts: alerts::washes(s, x),
            ..self
        }
    }

    pub(super) fn draw(&self, out: &mut String, top: f64, bottom: f64) {
        for (x0, x1, name) in &self.phases {
            out.push_str(&format!(
                "<rect class=\"band-{name}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
                coord(*x0),
                coord(top),
                coord(x1 - x0),
                coord(bottom - top)
            ));
        }
        // Lightly over the plot, to line up with the lines, and in full in a ribbon above it.
        for (span, title) in &self.alerts {
            out.push_str(&format!(
                "<g><title>{title}</title><rect class=\"{class} wash\" x=\"{x}\" y=\"{top}\" width=\"{width}\" height=\"{height}\"/>\
                 <rect class=\"{class}\" x=\"{x}\" y=\"{ribbon}\" width=\"{width}\" height=\"4\"/></g>\n",
                title = esc(title),
                class = span.class,
                x = coord(span.x0),
                top = coord(top),
                width = coord(span.x1 - span.x0),
                height = coord(bottom - top),
                ribbon = coord(top - 5.0),
            ));
        }
        for x in &self.steps {
            out.push_str(&format!(
                "<line class=\"step-mark\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>\n",
                coord(*x),
                coord(top),
                coord(bottom)
            ));
        }
        for (x, label) in &self.stages {
            out.push_str(&format!(
                "<g><title>{3}</title><line class=\"edge\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/></g>\n",
                coord(*x),
                coord(top),
                coord(bottom),
                esc(label)
            ));
        }
    }
}

/// Steps that ran, so have a place on the clock.
fn ran(steps: &[StepRecord]) -> impl Iterator<Item = &StepRecord> {
    steps.iter().filter(|s| s.status != StepStatus::Skipped)
}

pub(super) fn svg_open(out: &mut String, height: f64, label: &str) {
    out.push_str(&format!(
        "<figure>\n<svg class=\"chart\" viewBox=\"0 0 {} {}\" \
         role=\"img\" aria-label=\"{}\">\n",
        coord(WIDTH),
        coord(height),
        esc(label)
    ));
}

/// The phases as labelled bands and each step as a bar with its id, linked to its transcript.
fn procedure_strip(out: &mut String, s: &Summary, x: &XAxis) {
    const BAR_TOP: f64 = 26.0;
    const BAR_HEIGHT: f64 = 10.0;
    const LANE: f64 = 13.0;

    // Lay out the step labels first: the strip is as tall as its lanes.
    let mut lanes: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for step in ran(&s.steps) {
        let x0 = x.at(step.started);
        let x1 = x.at(step.started + step.duration_ms * 1000).max(x0 + 2.0);
        let width = step.id.chars().count() as f64 * CHAR_WIDTH + 4.0;
        let text_x = x0.min(WIDTH - RIGHT - width);
        let free = lanes.iter().position(|end| *end + 3.0 <= text_x);
        let lane = match free {
            Some(lane) => lane,
            None if lanes.len() < MAX_LABEL_LANES => {
                lanes.push(0.0);
                lanes.len() - 1
            }
            // Out of room: overlap the lane whose last label ends first.
            None => (0..lanes.len())
                .min_by(|a, b| lanes[*a].total_cmp(&lanes[*b]))
                .unwrap_or(0),
        };
        lanes[lane] = text_x + width;
        placed.push((step, x0, x1, text_x, lane));
    }
    let height = BAR_TOP + BAR_HEIGHT + lanes.len().max(1) as f64 * LANE + 8.0;
    svg_open(out, height, "phases and steps on the run clock");
    out.push_str(&format!(
        "<text class=\"title\" x=\"4\" y=\"15\">Phases</text>\n<text class=\"title\" x=\"4\" y=\"{}\">Steps</text>\n",
        coord(BAR_TOP + BAR_HEIGHT - 1.0)
    ));
    for p in &s.phases {
        let (x0, x1) = (x.at(p.start), x.at(p.end));
        if x1 <= x0 {
            continue;
        }
        let name = p.phase.name();
        out.push_str(&format!(
            "<g><title>{name}: {} s – {} s</title><rect class=\"band-{name}\" x=\"{}\" y=\"0\" width=\"{}\" height=\"{}\"/>",
            run_clock(p.start),
            run_clock(p.end),
            coord(x0),
            coord(x1 - x0),
            coord(height)
        ));
        // A label that does not fit its band is left to the hover title.
        if name.len() as f64 * CHAR_WIDTH + 6.0 <= x1 - x0 {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"15\" text-anchor=\"middle\">{name}</text>",
                coord((x0 + x1) / 2.0)
            ));
        }
        out.push_str("</g>\n");
    }
    let label_y = |lane: usize| BAR_TOP + BAR_HEIGHT + LANE * (lane as f64 + 1.0) - 2.0;
    // Leaders first, so that none crosses a label drawn in an upper lane.
    for (_, x0, _, _, lane) in &placed {
        out.push_str(&format!(
            "<line class=\"leader\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>\n",
            coord(x0 + 0.5),
            coord(BAR_TOP + BAR_HEIGHT),
            coord(label_y(*lane) - 8.0),
        ));
    }
    for (step, x0, x1, text_x, lane) in placed {
        out.push_str(&format!(
            "<a href=\"#{anchor}\"><g><title>{id}. {name} ({status}, {took} from {at} s)</title>\
             <rect class=\"step-{status}\" x=\"{x0}\" y=\"{bar_top}\" width=\"{bar_width}\" height=\"{bar_height}\"/>\
             <text class=\"halo\" x=\"{text_x}\" y=\"{label_y}\">{id}</text></g></a>\n",
            anchor = esc(&step_anchor(&step.id)),
            id = esc(&step.id),
            name = esc(&step.name),
            status = status_class(step.status),
            took = seconds_from_ms(step.duration_ms),
            at = run_clock(step.started),
            x0 = coord(x0),
            bar_top = coord(BAR_TOP),
            bar_width = coord(x1 - x0),
            bar_height = coord(BAR_HEIGHT),
            text_x = coord(text_x + 2.5),
            label_y = coord(label_y(lane)),
        ));
    }
    out.push_str("</svg>\n</figure>\n");
}

pub(super) enum Scale<'a> {
    /// An empty unit: plain numbers.
    Linear { unit: &'a str },
    /// Latency spans decades (a 2 s timeout next to 3 ms reads): a log scale keeps both visible.
    Log { unit: &'a str },
}

pub(super) struct Series {
    label: String,
    color: &'static str,
    width: f64,
    /// Values at their times on the run clock; `None` breaks the line (nothing to measure,
    /// or a gap in the samples).
    points: Vec<(Micros, Option<f64>)>,
}

impl Series {
    pub(super) fn new(
        label: &str,
        color: &'static str,
        points: Vec<(Micros, Option<f64>)>,
    ) -> Series {
        Series {
            label: label.to_string(),
            color,
            width: 2.0,
            points,
        }
    }

    pub(super) fn thin(self) -> Series {
        Series { width: 1.5, ..self }
    }
}

/// How ticks `step` apart up to `largest` are written: past four digits (a dashboard's bytes)
/// in thousands (k), millions (M) and so on, so that they fit left of the plot.
fn tick_label(step: f64, largest: f64) -> impl Fn(f64) -> String {
    let (scale, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| largest >= 1e4 && largest >= *scale)
        .unwrap_or((1.0, ""));
    let decimals = decimals_for(step / scale);
    move |v| {
        // A sum of steps misses zero by a rounding error, which would read `-0.0`.
        let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
        if v == 0.0 && !suffix.is_empty() {
            "0".to_string()
        } else {
            format!("{:.decimals$}{suffix}", v / scale)
        }
    }
}

/// A y axis: maps values to heights and names its ticks.
struct YAxis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl YAxis {
    fn new(scale: &Scale, values: impl Iterator<Item = f64>) -> Option<YAxis> {
        match scale {
            Scale::Linear { .. } => {
                // From 0, or below it for a series that goes negative (a dashboard's deriv()).
                let (min, max) =
                    values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
                // A flat zero line still gets a readable axis, from 0 to 1.
                let max = if max > min { max } else { min + 1.0 };
                let step = nice_step((max - min) / 4.0);
                let (lo, hi) = ((min / step).floor() * step, (max / step).ceil() * step);
                let label = tick_label(step, lo.abs().max(hi));
                let ticks = (0..)
                    .map(|k| lo + k as f64 * step)
                    .take_while(|v| *v <= hi + step * 1e-9)
                    .map(|v| (v, label(v)))
                    .collect();
                Some(YAxis {
                    lo,
                    hi,
                    log: false,
                    ticks,
                })
            }
            Scale::Log { .. } => {
                let (min, max) = values.filter(|v| *v > 0.0).fold(
                    None,
                    |acc: Option<(f64, f64)>, v| match acc {
                        None => Some((v, v)),
                        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
                    },
                )?;
                let lo_exp = min.log10().floor() as i32;
                let hi_exp = (max.log10().ceil() as i32).max(lo_exp + 1);
                // Few decades leave room for 2 and 5 between the powers of ten.
                let multiples: &[f64] = if hi_exp - lo_exp <= 2 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut ticks = Vec::new();
                for exp in lo_exp..=hi_exp {
                    for m in multiples {
                        let v = m * 10f64.powi(exp);
                        if exp == hi_exp && *m > 1.0 {
                            break;
                        }
                        let decimals = (-exp).max(0) as usize;
                        ticks.push((v, format!("{v:.decimals$}")));
                    }
                }
                Some(YAxis {
                    lo: 10f64.powi(lo_exp),
                    hi: 10f64.powi(hi_exp),
                    log: true,
                    ticks,
                })
            }
        }
    }

    /// The y coordinate of `v` in a plot from `top` to `bottom`.
    fn at(&self, v: f64, top: f64, bottom: f64) -> f64 {
        let fraction = if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        bottom - fraction.clamp(0.0, 1.0) * (bottom - top)
    }
}

/// One chart: title and legend, y ticks, phase bands and step marks, then the lines.
/// `left_out` ends the legend, without a line: what was not drawn.
pub(super) fn panel(
    out: &mut String,
    x: &XAxis,
    overlay: &Overlay,
    title: &str,
    scale: Scale,
    series: &[Series],
    left_out: Option<String>,
) {
    let title = match scale {
        Scale::Linear { unit: "" } => title.to_string(),
        Scale::Linear { unit } => format!("{title} ({unit})"),
        Scale::Log { unit } => format!("{title} ({unit}, log scale)"),
    };
    // Legend entries flow left to right after the (bold, larger) title and wrap onto new rows.
    let title_width = (title.chars().count() + 2) as f64 * CHAR_WIDTH * 1.2;
    let mut legend = Vec::new();
    let (mut lx, mut row) = (LEFT + title_width, 0usize);
    let mut entries: Vec<(String, &str)> =
        series.iter().map(|s| (s.label.clone(), s.color)).collect();
    entries.extend(left_out.map(|note| (note, "")));
    for (label, color) in entries {
        let width = 26.0 + label.chars().count() as f64 * CHAR_WIDTH + 14.0;
        if lx + width > WIDTH - RIGHT && lx > LEFT {
            row += 1;
            lx = LEFT;
        }
        legend.push((lx, row, label, color));
        lx += width;
    }
    let top = 28.0 + row as f64 * 16.0;
    let bottom = top + PLOT_HEIGHT;
    let height = bottom + 36.0;
    svg_open(out, height, &title);
    out.push_str(&format!(
        "<text class=\"title\" x=\"4\" y=\"15\">{}</text>\n",
        esc(&title)
    ));
    for (lx, row, label, color) in &legend {
        let y = 15.0 + *row as f64 * 16.0;
        if !color.is_empty() {
            out.push_str(&format!(
                "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{2}\" stroke=\"{color}\" stroke-width=\"3\"/>",
                coord(*lx),
                coord(lx + 20.0),
                coord(y - 4.0)
            ));
        }
        let text_x = if color.is_empty() { *lx } else { lx + 26.0 };
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\">{}</text>\n",
            coord(text_x),
            coord(y),
            esc(label)
        ));
    }
    overlay.draw(out, top, bottom);

    let values = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v));
    // Only a log scale can lack data: latency without a single successful operation.
    let Some(y) = YAxis::new(&scale, values) else {
        out.push_str(&format!(
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no successful operation: nothing to measure</text>\n",
            coord((LEFT + WIDTH - RIGHT) / 2.0),
            coord((top + bottom) / 2.0)
        ));
        x_axis(out, x, top, bottom);
        out.push_str("</svg>\n</figure>\n");
        return;
    };
    for (v, label) in &y.ticks {
        let ty = y.at(*v, top, bottom);
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{left}\" x2=\"{right}\" y1=\"{ty}\" y2=\"{ty}\"/><text x=\"{text_x}\" y=\"{text_y}\" text-anchor=\"end\">{label}</text>\n",
            left = coord(LEFT),
            right = coord(WIDTH - RIGHT),
            ty = coord(ty),
            text_x = coord(LEFT - 6.0),
            text_y = coord(ty + 4.0),
        ));
    }
    x_axis(out, x, top, bottom);

    for s in series {
        line(out, s, x, |v| y.at(v, top, bottom));
    }
    out.push_str("</svg>\n</figure>\n");
}

/// Vertical grid lines at round seconds, the axis line, its labels and its unit.
fn x_axis(out: &mut String, x: &XAxis, top: f64, bottom: f64) {
    for (tx, label) in x.ticks() {
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/><text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{label}</text>\n",
            coord(tx),
            coord(top),
            coord(bottom + 4.0),
            coord(bottom + 16.0),
        ));
    }
    out.push_str(&format!(
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{2}\" y2=\"{2}\"/>\n\
         <text class=\"unit\" x=\"{1}\" y=\"{3}\" text-anchor=\"end\">seconds on the run clock</text>\n",
        coord(LEFT),
        coord(WIDTH - RIGHT),
        coord(bottom),
        coord(bottom + 31.0),
    ));
}

/// A series as polylines broken where it has no value; a lone point becomes a dot.
fn line(out: &mut String, s: &Series, x: &XAxis, y: impl Fn(f64) -> f64) {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (t, v) in &s.points {
        match v {
            Some(v) => {
                if let Some(run) = runs.last_mut() {
                    run.push((x.at(*t), y(*v)));
                }
            }
            None => runs.push(Vec::new()),
        }
    }
    for run in runs {
        match run.as_slice() {
            [] => {}
            [(x, y)] => out.push_str(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>\n",
                coord(*x),
                coord(*y),
                coord(s.width + 0.5),
                s.color
            )),
            points => {
                let coords: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{},{}", coord(*x), coord(*y)))
                    .collect();
                out.push_str(&format!(
                    "<polyline stroke=\"{}\" stroke-width=\"{}\" points=\"{}\"/>\n",
                    s.color,
                    coord(s.width),
                    coords.join(" ")
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timeline: the history cut into one-second buckets

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_have_round_ticks() {
        let x = XAxis::new(3_693_396, 25_832_213);
        let labels: Vec<String> = x.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["5", "10", "15", "20", "25"]);
        let short = XAxis::new(1_000_000, 1_400_000);
        let labels: Vec<String> = short.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            labels,
            ["1.00", "1.05", "1.10", "1.15", "1.20", "1.25", "1.30", "1.35", "1.40"]
        );

        let ticks = |scale: Scale, values: &[f64]| -> Vec<String> {
            YAxis::new(&scale, values.iter().copied())
                .map(|y| y.ticks.into_iter().map(|(_, l)| l).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            ticks(Scale::Linear { unit: "ops/s" }, &[12.0, 153.0]),
            ["0", "50", "100", "150", "200"]
        );
        assert_eq!(
            ticks(Scale::Linear { unit: "%" }, &[0.0]),
            ["0.0", "0.5", "1.0"]
        );
        assert_eq!(
            ticks(Scale::Log { unit: "ms" }, &[2.3, 40.0]),
            ["1", "2", "5", "10", "20", "50", "100"]
        );
        assert_eq!(
            ticks(Scale::Log { unit: "ms" }, &[0.5, 1000.1]),
            ["0.1", "1", "10", "100", "1000", "10000"]
        );
        assert!(ticks(Scale::Log { unit: "ms" }, &[]).is_empty());
        // A dashboard's series may go below zero, or count bytes.
        assert_eq!(
            ticks(Scale::Linear { unit: "" }, &[-3.0, 12.0]),
            ["-5", "0", "5", "10", "15"]
        );
        assert_eq!(
            ticks(Scale::Linear { unit: "" }, &[-0.25, 0.0]),
            ["-0.3", "-0.2", "-0.1", "0.0"]
        );
        assert_eq!(
            ticks(Scale::Linear { unit: "bytes" }, &[0.0, 2.6e9]),
            ["0", "1G", "2G", "3G"]
        );
        assert_eq!(
            ticks(Scale::Linear { unit: "req/s" }, &[0.0, 12_000.0]),
            ["0", "5k", "10k", "15k"]
        );
        assert_eq!(
            ticks(Scale::Linear { unit: "bytes" }, &[0.0, 1.2e6]),
            ["0", "0.5M", "1.0M", "1.5M"]
        );
    }
}
