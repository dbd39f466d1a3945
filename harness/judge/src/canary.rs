//! Canary analysis: gates judged over a window of the live history, the canary's operations
//! compared with the baseline's, and the failure bookkeeping that turns gate results into
//! "promote" or "roll back".
//!
//! Everything here is a pure function of the operations (and of scraped metric values), so
//! every rule can be tested on crafted histories; the stage runner in [`crate::step`] feeds
//! it the live history and acts on its answers. The backend that served an operation is
//! `Op::backend`, which the load reads from a response header the proxy sets: nothing here
//! knows which proxy or which system is behind it.

use std::collections::BTreeMap;

use firedrill_spec::gate::{FailureLimits, Gate, GateKind, MetricGate, NoDataPolicy};
use firedrill_spec::promql::Bound;
use firedrill_types::history::{Micros, Op};
use firedrill_types::summary::{GateEvaluation, GateOutcome, Unit};

/// Which operations a gate looks at: those invoked at or after `start` that returned by
/// `end`. Operations still in flight at `end` are not visible yet, whatever their fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Micros,
    pub end: Micros,
}

impl Window {
    fn contains(&self, op: &Op) -> bool {
        op.t_call >= self.start && op.t_return <= self.end
    }
}

/// Who is who in the history.
#[derive(Debug, Clone, Copy)]
pub struct Backends<'a> {
    /// `None`: a configuration rollout, where the whole service is the one under change:
    /// every operation counts as the canary's, and there is no baseline.
    pub canary: Option<&'a str>,
    pub baseline: &'a [String],
}

impl Backends<'_> {
    fn is_canary(&self, op: &Op) -> bool {
        match self.canary {
            Some(c) => op.backend.as_deref() == Some(c),
            None => true,
        }
    }

    fn is_baseline(&self, op: &Op) -> bool {
        op.backend
            .as_deref()
            .is_some_and(|b| self.baseline.iter().any(|x| x == b))
    }
}

/// Judges an error-rate or latency gate over `window`. Fewer than `min_samples` canary
/// operations (successful ones, for latency) is "no data"; a limit relative to the
/// baseline is judged only when the baseline has `min_samples` too (at 100 % it has none),
/// and the detail says so. A metric gate is judged by [`metric_gate`] instead: here it has
/// no data.
pub fn history_gate(
    gate: &Gate,
    ops: &[Op],
    window: Window,
    who: Backends,
    min_samples: u64,
) -> GateEvaluation {
    let in_window = || ops.iter().filter(|op| window.contains(op));
    let canary: Vec<&Op> = in_window().filter(|op| who.is_canary(op)).collect();
    let baseline: Vec<&Op> = in_window().filter(|op| who.is_baseline(op)).collect();
    // A metric or promql gate's unit: judged elsewhere, it has no data here.
    let mut e = unjudged(gate, String::new(), window);
    // A configuration rollout judges the whole service, with no baseline to compare.
    let (subject, compared) = match who.canary {
        Some(_) => ("canary ", true),
        None => ("", false),
    };
    let baseline_note = |value: Option<String>, samples: u64| match compared {
        true => baseline_note(value, samples, min_samples),
        false => String::new(),
    };
    match &gate.kind {
        GateKind::ErrorRate {
            max,
            max_over_baseline,
        } => {
            e.metric = "error_rate".into();
            e.unit = Unit::Ratio;
            e.samples = canary.len() as u64;
            e.baseline_samples = baseline.len() as u64;
            let rate = |ops: &[&Op]| {
                ops.iter().filter(|op| !op.answered()).count() as f64 / ops.len() as f64
            };
            if e.samples < min_samples {
                e.detail = no_data(e.samples, min_samples, &format!("{subject}operations"));
                return e;
            }
            let observed = rate(&canary);
            e.canary = Some(observed);
            let base = (e.baseline_samples >= min_samples).then(|| rate(&baseline));
            e.baseline = base;
            let (limit, note) = combine(*max, max_over_baseline.zip(base).map(|(d, b)| b + d));
            e.limit = limit;
            e.outcome = judge(observed, limit);
            e.detail = format!(
                "{subject}{} errors in {} operations{}{}",
                percent(observed),
                e.samples,
                baseline_note(base.map(percent), e.baseline_samples),
                limit_note(
                    limit.map(percent),
                    note,
                    max_over_baseline.is_some() && base.is_none()
                ),
            );
        }
        GateKind::Latency {
            quantile,
            max,
            max_ratio,
            floor,
        } => {
            e.metric = format!("p{}", quantile_label(*quantile));
            e.unit = Unit::Ms;
            let ok = |ops: &[&Op]| -> Vec<Micros> {
                let mut l: Vec<Micros> = ops
                    .iter()
                    .filter(|op| op.answered())
                    .map(|op| op.latency_us())
                    .collect();
                l.sort_unstable();
                l
            };
            let (c, b) = (ok(&canary), ok(&baseline));
            e.samples = c.len() as u64;
            e.baseline_samples = b.len() as u64;
            if e.samples < min_samples {
                e.detail = no_data(
                    e.samples,
                    min_samples,
                    &format!("successful {subject}operations"),
                );
                return e;
            }
            let observed = ms(quantile_of(&c, *quantile));
            e.canary = Some(observed);
            let base = (e.baseline_samples >= min_samples).then(|| ms(quantile_of(&b, *quantile)));
            e.baseline = base;
            let relative = max_ratio.zip(base).map(|(r, b)| (b * r).max(ms(*floor)));
            let (limit, note) = combine(max.map(ms), relative);
            e.limit = limit;
            e.outcome = judge(observed, limit);
            e.detail = format!(
                "{subject}{} {:.1} ms over {} successful operations{}{}",
                e.metric,
                observed,
                e.samples,
                baseline_note(base.map(|b| format!("{b:.1} ms")), e.baseline_samples),
                limit_note(
                    limit.map(|l| format!("{l:.1} ms")),
                    note,
                    max_ratio.is_some() && base.is_none()
                ),
            );
        }
        GateKind::Metric(m) => {
            e.metric = m.metric.clone();
            e.detail = "no data: a metric gate is judged from scraped values".into();
        }
        GateKind::Promql { query, .. } => {
            e.metric = query.clone();
            e.detail = "no data: a promql gate is judged from Prometheus's answer".into();
        }
        GateKind::Value {
            source, pointer, ..
        } => {
            e.metric = format!("{pointer} of {}", source.describe());
            e.detail = "no data: a value gate is judged from its source's answer".into();
        }
    }
    e
}

/// An evaluation of `gate` over `window` before anything is known: no data, no value.
fn unjudged(gate: &Gate, metric: String, window: Window) -> GateEvaluation {
    GateEvaluation {
        at: window.end,
        window_start: window.start,
        gate: gate.name.clone(),
        metric,
        canary: None,
        baseline: None,
        limit: None,
        unit: Unit::Value,
        samples: 0,
        baseline_samples: 0,
        outcome: GateOutcome::NoData,
        detail: String::new(),
    }
}

/// Judges a promql gate on Prometheus's answer at the end of `window`: the value of each
/// series. An empty answer is "no data" (Argo Rollouts' inconclusive); none at all, an
/// error (Argo Rollouts' error).
pub fn promql_gate(
    gate: &Gate,
    query: &str,
    bound: Bound,
    answer: Result<Vec<f64>, String>,
    window: Window,
) -> GateEvaluation {
    let mut e = GateEvaluation {
        limit: Some(bound.limit()),
        ..unjudged(gate, query.to_string(), window)
    };
    let values = match answer {
        Ok(v) => v,
        Err(why) => {
            e.outcome = GateOutcome::Error;
            e.detail = format!("error: {why}");
            return e;
        }
    };
    e.samples = values.len() as u64;
    let Some(worst) = bound.worst(values) else {
        e.detail = "no data: the query returned no sample".into();
        return e;
    };
    // NaN (0/0 in PromQL) has no JSON form: it is recorded as no value, and fails.
    e.canary = worst.is_finite().then_some(worst);
    e.outcome = if bound.holds(worst) {
        GateOutcome::Pass
    } else {
        GateOutcome::Fail
    };
    let of = match e.samples {
        1 => String::new(),
        n => format!(" (the worst of {n} series)"),
    };
    e.detail = format!("{}{of}, must be {}", number(worst), bound.describe());
    e
}

/// Judges a `command` or `http` gate on the JSON its source gave at the end of `window`
/// (Argo Rollouts' job and web providers): the number at `pointer` must keep `bound`; with
/// `fail_beyond`, only a value past it fails and one between is inconclusive. Nothing or
/// `null` at the pointer is no data; no answer (the command failed, the endpoint did not
/// answer 2xx) is an error; JSON that is not, or a value that is not a number, fails: the
/// analyzer is broken, which is no reason to promote.
pub fn value_gate(
    gate: &Gate,
    source: &str,
    pointer: &str,
    bound: Bound,
    fail_beyond: Option<f64>,
    answer: Result<String, String>,
    window: Window,
) -> GateEvaluation {
    let mut e = GateEvaluation {
        limit: Some(bound.limit()),
        ..unjudged(gate, format!("{pointer} of {source}"), window)
    };
    let text = match answer {
        Ok(t) => t,
        Err(why) => {
            e.outcome = GateOutcome::Error;
            e.detail = format!("error: {why}");
            return e;
        }
    };
    let value = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Err(err) => {
            e.outcome = GateOutcome::Fail;
            e.detail = format!("the answer is not JSON ({err}): {}", first_line(&text));
            return e;
        }
        Ok(doc) => doc.pointer(pointer).cloned(),
    };
    let parsed = match value {
        None | Some(serde_json::Value::Null) => {
            e.detail = format!("no data: nothing at {pointer}");
            return e;
        }
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(t)) => t.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let Some(v) = parsed.filter(|v| v.is_finite()) else {
        e.outcome = GateOutcome::Fail;
        e.detail = format!("{pointer} is not a number");
        return e;
    };
    e.canary = Some(v);
    e.samples = 1;
    let fails = match (bound, fail_beyond) {
        (_, None) => !bound.holds(v),
        (Bound::Max(_), Some(f)) => v > f,
        (Bound::Min(_), Some(f)) => v < f,
    };
    e.outcome = if bound.holds(v) {
        GateOutcome::Pass
    } else if fails {
        GateOutcome::Fail
    } else {
        GateOutcome::Inconclusive
    };
    let beyond = match (bound, fail_beyond) {
        (Bound::Max(_), Some(f)) => format!(" (fails above {})", number(f)),
        (Bound::Min(_), Some(f)) => format!(" (fails below {})", number(f)),
        (_, None) => String::new(),
    };
    let verdict = match e.outcome {
        GateOutcome::Inconclusive => "inconclusive: ",
        _ => "",
    };
    e.detail = format!(
        "{verdict}{} is {}, must be {}{beyond}",
        pointer,
        number(v),
        bound.describe()
    );
    e
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// Judges a metric gate: `first` was scraped when the rollout began, `now` at the end of
/// `window`. A scrape that failed or lacked the metric is "no data".
pub fn metric_gate(
    gate: &Gate,
    m: &MetricGate,
    first: Option<f64>,
    now: Result<f64, String>,
    window: Window,
) -> GateEvaluation {
    let mut e = GateEvaluation {
        baseline: first,
        ..unjudged(gate, m.metric.clone(), window)
    };
    let now = match now {
        Ok(v) => v,
        Err(why) => {
            e.detail = format!("no data: {why}");
            return e;
        }
    };
    e.canary = Some(now);
    e.samples = 1;
    let rise = match (m.max_increase, first) {
        (Some(_), None) => {
            e.detail = format!(
                "no data: {} was not read when the rollout began, so its rise is unknown",
                m.metric
            );
            e.canary = None;
            return e;
        }
        (Some(d), Some(f)) => Some(f + d),
        (None, _) => None,
    };
    let (limit, _) = combine(m.max, rise);
    e.limit = limit;
    e.outcome = judge(now, limit);
    e.detail = match first {
        Some(f) => format!(
            "{} on {} is {} ({:+} since the rollout began){}",
            m.metric,
            m.node,
            number(now),
            now - f,
            limit
                .map(|l| format!(", limit {}", number(l)))
                .unwrap_or_default()
        ),
        None => format!(
            "{} on {} is {}{}",
            m.metric,
            m.node,
            number(now),
            limit
                .map(|l| format!(", limit {}", number(l)))
                .unwrap_or_default()
        ),
    };
    e
}

/// The sum of the samples of `name` whose labels include `labels`, in Prometheus' text
/// format; an error says why there is no value.
pub fn metric_value(
    text: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<f64, String> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| format!("the metrics are not in Prometheus' text format ({e})"))?;
    let mut found = None;
    for s in scrape.samples.iter().filter(|s| s.metric == name) {
        if !labels
            .iter()
            .all(|(k, v)| s.labels.get(k) == Some(v.as_str()))
        {
            continue;
        }
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => {
                return Err(format!(
                    "{name} is a histogram or summary, not a single value"
                ))
            }
        };
        *found.get_or_insert(0.0) += v;
    }
    found.ok_or_else(|| format!("no sample of {name} in the metrics"))
}

/// The limit a gate reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub gate: String,
    pub kind: BreachKind,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachKind {
    /// `consecutive_failure_limit`.
    FailuresInARow,
    /// `failure_limit`.
    FailuresInAll,
    /// `consecutive_error_limit`: the gate's source could not be read.
    ErrorsInARow,
}

impl Breach {
    pub fn describe(&self) -> String {
        match self.kind {
            BreachKind::FailuresInARow => format!("{} failed evaluations in a row", self.count),
            BreachKind::FailuresInAll => format!("{} failed evaluations in all", self.count),
            BreachKind::ErrorsInARow => format!(
                "{} evaluations in a row whose source could not be read",
                self.count
            ),
        }
    }
}

/// Counts each gate's failures, in total and in a row (a pass ends a row), and its errors
/// in a row (any reading ends that row).
#[derive(Debug, Clone)]
pub struct FailureCounter {
    limits: FailureLimits,
    counts: BTreeMap<String, Counts>,
}

#[derive(Debug, Clone, Default)]
struct Counts {
    failures: u32,
    failures_in_a_row: u32,
    errors_in_a_row: u32,
}

impl FailureCounter {
    pub fn new(limits: FailureLimits) -> Self {
        FailureCounter {
            limits,
            counts: BTreeMap::new(),
        }
    }

    /// Records one evaluation of `gate` that read its source; says which limit it reached,
    /// if one.
    pub fn record(&mut self, gate: &str, failed: bool) -> Option<Breach> {
        let c = self.counts.entry(gate.to_string()).or_default();
        c.errors_in_a_row = 0;
        if !failed {
            c.failures_in_a_row = 0;
            return None;
        }
        c.failures += 1;
        c.failures_in_a_row += 1;
        let breach = |kind, count| {
            Some(Breach {
                gate: gate.to_string(),
                kind,
                count,
            })
        };
        if c.failures_in_a_row >= self.limits.consecutive {
            breach(BreachKind::FailuresInARow, c.failures_in_a_row)
        } else if c.failures >= self.limits.cumulative {
            breach(BreachKind::FailuresInAll, c.failures)
        } else {
            None
        }
    }

    /// Records an evaluation of `gate` whose source could not be read.
    pub fn record_error(&mut self, gate: &str) -> Option<Breach> {
        let c = self.counts.entry(gate.to_string()).or_default();
        c.errors_in_a_row += 1;
        (c.errors_in_a_row >= self.limits.consecutive_errors).then(|| Breach {
            gate: gate.to_string(),
            kind: BreachKind::ErrorsInARow,
            count: c.errors_in_a_row,
        })
    }
}

/// What one evaluation of every gate of a stage means for the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion {
    /// Every gate passed.
    Passed,
    /// A gate failed, within the failure limits: the evaluation counts, the stage goes on.
    Failed,
    /// A gate had no data and may wait for more: the evaluation does not count.
    Inconclusive,
    /// A gate's source could not be read, within the error limit: the evaluation does not
    /// count, and the window is not extended.
    Errored,
    /// A failure limit was reached: roll back.
    Breached(Breach),
}

/// Folds one evaluation of every gate into the stage's next move, recording failures.
/// `may_extend` says whether the stage may still wait for data under [`NoDataPolicy::Extend`];
/// when it may not, no data counts as a failure (and the detail says so).
pub fn conclude(
    evaluations: &mut [GateEvaluation],
    policy: NoDataPolicy,
    may_extend: bool,
    counter: &mut FailureCounter,
) -> Conclusion {
    let wait = policy == NoDataPolicy::Extend && may_extend;
    let mut breach = None;
    let (mut failed, mut inconclusive, mut errored) = (false, false, false);
    for e in evaluations.iter_mut() {
        let is_failure = match e.outcome {
            GateOutcome::Pass => false,
            GateOutcome::Fail => true,
            GateOutcome::Error => {
                errored = true;
                if let Some(b) = counter.record_error(&e.gate) {
                    breach.get_or_insert(b);
                }
                continue;
            }
            GateOutcome::NoData | GateOutcome::Inconclusive if wait => {
                inconclusive = true;
                e.detail.push_str("; the window is extended");
                continue;
            }
            GateOutcome::NoData | GateOutcome::Inconclusive => {
                e.detail.push_str("; counts as a failure");
                true
            }
        };
        failed |= is_failure;
        if let Some(b) = counter.record(&e.gate, is_failure) {
            breach.get_or_insert(b);
        }
    }
    match (breach, failed, inconclusive, errored) {
        (Some(b), ..) => Conclusion::Breached(b),
        (None, true, ..) => Conclusion::Failed,
        (None, false, true, _) => Conclusion::Inconclusive,
        (None, false, false, true) => Conclusion::Errored,
        (None, false, false, false) => Conclusion::Passed,
    }
}

/// Integer weights that send `percent` of the traffic to the canary when `baselines`
/// backends share the rest equally: the canary gets `round(total × percent / 100)`, each
/// baseline an equal part of what is left. Returns (canary weight, weight of each baseline,
/// the canary's actual share from 0 to 1).
pub fn weights(percent: f64, baselines: usize, total: u32) -> (u32, u32, f64) {
    let canary = ((f64::from(total) * percent / 100.0).round() as u32).min(total);
    let each = if baselines == 0 {
        0
    } else {
        ((f64::from(total - canary)) / baselines as f64).round() as u32
    };
    let sum = f64::from(canary) + f64::from(each) * baselines as f64;
    let share = if sum == 0.0 {
        0.0
    } else {
        f64::from(canary) / sum
    };
    (canary, each, share)
}

/// `limit = min(absolute, relative)` of those set; the note names where it comes from.
fn combine(absolute: Option<f64>, relative: Option<f64>) -> (Option<f64>, &'static str) {
    match (absolute, relative) {
        (Some(a), Some(r)) if r < a => (Some(r), "relative to the baseline"),
        (Some(a), _) => (Some(a), "absolute"),
        (None, Some(r)) => (Some(r), "relative to the baseline"),
        (None, None) => (None, ""),
    }
}

fn judge(observed: f64, limit: Option<f64>) -> GateOutcome {
    match limit {
        Some(l) if observed > l => GateOutcome::Fail,
        _ => GateOutcome::Pass,
    }
}

fn no_data(samples: u64, min: u64, what: &str) -> String {
    format!("no data: {samples} {what} in the window, fewer than the {min} needed")
}

fn baseline_note(value: Option<String>, samples: u64, min: u64) -> String {
    match value {
        Some(v) => format!("; baseline {v} over {samples}"),
        None => format!("; baseline has {samples} operations (fewer than {min}): no comparison"),
    }
}

fn limit_note(limit: Option<String>, source: &str, relative_skipped: bool) -> String {
    let skipped = if relative_skipped {
        " (relative limit not judged)"
    } else {
        ""
    };
    match limit {
        Some(l) => format!("; limit {l} ({source}){skipped}"),
        None => format!("; no limit applies{skipped}"),
    }
}

/// The value at quantile `q` of sorted values (nearest rank).
fn quantile_of(sorted: &[Micros], q: f64) -> Micros {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `0.95` → `95`, `0.999` → `99.9`.
fn quantile_label(q: f64) -> String {
    let s = format!("{:.1}", q * 100.0);
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

fn percent(ratio: f64) -> String {
    format!("{:.2} %", ratio * 100.0)
}

/// A metric's value as people write it: `3`, `0.273112` (not `0.27311199999999997`).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.is_finite() && v.abs() >= 1e-6 && v.abs() < 1e15 {
        let fixed = format!("{v:.6}");
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_types::history::{OpKind, Outcome};

    const CANARY: &str = "c";

    fn baseline() -> Vec<String> {
        vec!["b1".into(), "b2".into()]
    }

    fn who(baseline: &[String]) -> Backends<'_> {
        Backends {
            canary: Some(CANARY),
            baseline,
        }
    }

    /// `n` operations served by `backend`, invoked 10 ms apart from `from`, each taking
    /// `latency` µs; every `fail_every`-th one (if not 0) fails.
    fn ops(backend: &str, from: Micros, n: u64, latency: Micros, fail_every: u64) -> Vec<Op> {
        (0..n)
            .map(|i| {
                let failed = fail_every > 0 && i % fail_every == 0;
                Op {
                    id: i,
                    client: 0,
                    node: "lb".into(),
                    kind: OpKind::Read,
                    key: "k".into(),
                    value: None,
                    expected: None,
                    t_intended: from + i * 10_000,
                    t_call: from + i * 10_000,
                    t_return: from + i * 10_000 + latency,
                    outcome: if failed {
                        Outcome::Unknown
                    } else {
                        Outcome::Ok
                    },
                    error: failed.then(|| "status 502".into()),
                    backend: Some(backend.into()),
                }
            })
            .collect()
    }

    fn error_gate(max: Option<f64>, over: Option<f64>) -> Gate {
        Gate {
            name: "errors".into(),
            kind: GateKind::ErrorRate {
                max,
                max_over_baseline: over,
            },
        }
    }

    fn whole() -> Window {
        Window {
            start: 0,
            end: 100_000_000,
        }
    }

    #[test]
    fn error_rate_against_an_absolute_limit() {
        // 1 in 10 fails: 10 %.
        let h = ops(CANARY, 0, 50, 1_000, 10);
        let b = baseline();
        let e = history_gate(&error_gate(Some(0.05), None), &h, whole(), who(&b), 20);
        assert_eq!(e.outcome, GateOutcome::Fail, "{e:?}");
        assert_eq!(e.canary, Some(0.1));
        assert_eq!(e.samples, 50);
        let e = history_gate(&error_gate(Some(0.1), None), &h, whole(), who(&b), 20);
        assert_eq!(e.outcome, GateOutcome::Pass, "{e:?}");
    }

    #[test]
    fn error_rate_is_compared_with_the_baseline_over_the_same_window() {
        // Canary 10 %, baseline 8 %: within baseline + 5 points, not within baseline + 1.
        let mut h = ops(CANARY, 0, 50, 1_000, 10);
        let mut b1 = ops("b1", 0, 50, 1_000, 0);
        for op in b1.iter_mut().take(4) {
            op.outcome = Outcome::Fail;
        }
        h.extend(b1);
        // Baseline failures outside the window do not count.
        h.extend(ops("b2", 200_000_000, 50, 1_000, 1));
        let b = baseline();
        let loose = history_gate(&error_gate(Some(0.5), Some(0.05)), &h, whole(), who(&b), 20);
        assert_eq!(loose.baseline, Some(0.08), "{loose:?}");
        assert_eq!(loose.outcome, GateOutcome::Pass, "{loose:?}");
        let tight = history_gate(&error_gate(Some(0.5), Some(0.01)), &h, whole(), who(&b), 20);
        assert_eq!(tight.outcome, GateOutcome::Fail, "{tight:?}");
        let limit = tight.limit.unwrap();
        assert!((limit - 0.09).abs() < 1e-9, "{limit}");
        assert!(
            tight.detail.contains("relative to the baseline"),
            "{}",
            tight.detail
        );
    }

    #[test]
    fn relative_limit_without_baseline_data_is_not_judged_and_says_so() {
        // At 100 % the baseline serves nothing: only the absolute limit holds.
        let h = ops(CANARY, 0, 50, 1_000, 10);
        let b = baseline();
        let e = history_gate(&error_gate(Some(0.2), Some(0.0)), &h, whole(), who(&b), 20);
        assert_eq!(e.outcome, GateOutcome::Pass, "{e:?}");
        assert_eq!((e.baseline, e.limit), (None, Some(0.2)));
        assert!(e.detail.contains("no comparison"), "{}", e.detail);
    }

    #[test]
    fn too_few_canary_samples_is_no_data() {
        let mut h = ops(CANARY, 0, 5, 1_000, 1); // all failed, but only 5
        h.extend(ops("b1", 0, 100, 1_000, 0));
        let b = baseline();
        let e = history_gate(&error_gate(Some(0.0), None), &h, whole(), who(&b), 10);
        assert_eq!(e.outcome, GateOutcome::NoData, "{e:?}");
        assert!(e.detail.contains("5 canary operations"), "{}", e.detail);
    }

    #[test]
    fn operations_outside_the_window_or_unattributed_do_not_count() {
        let mut h = ops(CANARY, 0, 30, 1_000, 1); // all fail, before the window
        h.extend(ops(CANARY, 1_000_000, 30, 1_000, 0));
        let mut unattributed = ops(CANARY, 1_000_000, 30, 1_000, 1);
        unattributed.iter_mut().for_each(|op| op.backend = None);
        h.extend(unattributed);
        let b = baseline();
        let w = Window {
            start: 1_000_000,
            end: 2_000_000,
        };
        let e = history_gate(&error_gate(Some(0.0), None), &h, w, who(&b), 10);
        assert_eq!((e.outcome, e.samples), (GateOutcome::Pass, 30), "{e:?}");
        // An operation still in flight at the window's end is not seen.
        let w = Window {
            start: 1_000_000,
            end: 1_000_000 + 5 * 10_000 + 500,
        };
        let e = history_gate(&error_gate(Some(0.0), None), &h, w, who(&b), 1);
        assert_eq!(e.samples, 5, "{e:?}");
    }

    fn latency_gate(max_ratio: f64, floor_ms: u64) -> Gate {
        Gate {
            name: "latency".into(),
            kind: GateKind::Latency {
                quantile: 0.95,
                max: None,
                max_ratio: Some(max_ratio),
                floor: floor_ms * 1000,
            },
        }
    }

    #[test]
    fn latency_ratio_to_the_baseline_with_a_floor() {
        // Canary 30 ms, baseline 10 ms: 3×.
        let mut h = ops(CANARY, 0, 40, 30_000, 0);
        h.extend(ops("b1", 0, 40, 10_000, 0));
        let b = baseline();
        let e = history_gate(&latency_gate(2.0, 5), &h, whole(), who(&b), 20);
        assert_eq!(e.metric, "p95");
        assert_eq!((e.canary, e.baseline), (Some(30.0), Some(10.0)));
        assert_eq!(
            (e.outcome, e.limit),
            (GateOutcome::Fail, Some(20.0)),
            "{e:?}"
        );
        // The floor lifts the limit: 3× a fast baseline is still fast enough.
        let e = history_gate(&latency_gate(2.0, 50), &h, whole(), who(&b), 20);
        assert_eq!(
            (e.outcome, e.limit),
            (GateOutcome::Pass, Some(50.0)),
            "{e:?}"
        );
    }

    #[test]
    fn latency_counts_only_successful_operations() {
        // Every canary operation failed: no latency sample at all.
        let mut h = ops(CANARY, 0, 40, 30_000, 1);
        h.extend(ops("b1", 0, 40, 10_000, 0));
        let b = baseline();
        let e = history_gate(&latency_gate(2.0, 5), &h, whole(), who(&b), 20);
        assert_eq!(e.outcome, GateOutcome::NoData, "{e:?}");
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted: Vec<Micros> = (1..=100).collect();
        assert_eq!(quantile_of(&sorted, 0.95), 95);
        assert_eq!(quantile_of(&sorted, 1.0), 100);
        assert_eq!(quantile_of(&[7], 0.5), 7);
        assert_eq!(quantile_label(0.95), "95");
        assert_eq!(quantile_label(0.999), "99.9");
    }

    fn failing(gate: &str) -> GateEvaluation {
        GateEvaluation {
            at: 0,
            window_start: 0,
            gate: gate.into(),
            metric: "error_rate".into(),
            canary: Some(1.0),
            baseline: None,
            limit: Some(0.0),
            unit: Unit::Ratio,
            samples: 10,
            baseline_samples: 0,
            outcome: GateOutcome::Fail,
            detail: String::new(),
        }
    }

    fn with(outcome: GateOutcome, gate: &str) -> GateEvaluation {
        GateEvaluation {
            outcome,
            ..failing(gate)
        }
    }

    #[test]
    fn consecutive_limit_counts_failures_in_a_row() {
        let limits = FailureLimits {
            cumulative: 10,
            consecutive: 2,
            consecutive_errors: 4,
        };
        let mut c = FailureCounter::new(limits);
        // F P F: never two in a row.
        assert_eq!(c.record("g", true), None);
        assert_eq!(c.record("g", false), None);
        assert_eq!(c.record("g", true), None);
        // Another gate's failure does not extend g's row.
        assert_eq!(c.record("h", true), None);
        let b = c.record("g", true).expect("two in a row");
        assert_eq!((b.kind, b.count), (BreachKind::FailuresInARow, 2));
        assert!(b.describe().contains("in a row"));
    }

    #[test]
    fn cumulative_limit_counts_failures_apart_from_rows() {
        let limits = FailureLimits {
            cumulative: 3,
            consecutive: 3,
            consecutive_errors: 4,
        };
        let mut c = FailureCounter::new(limits);
        // F P F P F: the longest row is 1, yet the third failure in all rolls back.
        for failed in [true, false, true, false] {
            assert_eq!(c.record("g", failed), None);
        }
        let b = c.record("g", true).expect("three in all");
        assert_eq!((b.kind, b.count), (BreachKind::FailuresInAll, 3));
        assert!(b.describe().contains("in all"));
    }

    #[test]
    fn no_data_fails_under_the_fail_policy() {
        let limits = FailureLimits {
            cumulative: 2,
            consecutive: 2,
            consecutive_errors: 4,
        };
        let mut c = FailureCounter::new(limits);
        let mut e = vec![with(GateOutcome::NoData, "g")];
        assert_eq!(
            conclude(&mut e, NoDataPolicy::Fail, true, &mut c),
            Conclusion::Failed
        );
        assert!(e[0].detail.ends_with("counts as a failure"));
        let mut e = vec![with(GateOutcome::NoData, "g")];
        let Conclusion::Breached(b) = conclude(&mut e, NoDataPolicy::Fail, true, &mut c) else {
            panic!("two no-data windows reach the limit of 2");
        };
        assert_eq!(b.gate, "g");
    }

    #[test]
    fn no_data_extends_the_window_under_the_extend_policy_until_it_may_not() {
        let limits = FailureLimits {
            cumulative: 1,
            consecutive: 1,
            consecutive_errors: 4,
        };
        let mut c = FailureCounter::new(limits);
        let mut e = vec![with(GateOutcome::Pass, "a"), with(GateOutcome::NoData, "g")];
        assert_eq!(
            conclude(&mut e, NoDataPolicy::Extend, true, &mut c),
            Conclusion::Inconclusive
        );
        assert!(e[1].detail.ends_with("extended"), "{e:?}");
        // Out of extensions: no data is a failure, and with a limit of 1 a breach.
        let mut e = vec![with(GateOutcome::NoData, "g")];
        assert!(matches!(
            conclude(&mut e, NoDataPolicy::Extend, false, &mut c),
            Conclusion::Breached(_)
        ));
    }

    #[test]
    fn a_failure_outweighs_an_inconclusive_gate() {
        let limits = FailureLimits {
            cumulative: 5,
            consecutive: 5,
            consecutive_errors: 4,
        };
        let mut c = FailureCounter::new(limits);
        let mut e = vec![with(GateOutcome::Fail, "a"), with(GateOutcome::NoData, "g")];
        assert_eq!(
            conclude(&mut e, NoDataPolicy::Extend, true, &mut c),
            Conclusion::Failed
        );
        let mut e = vec![with(GateOutcome::Pass, "a"), with(GateOutcome::Pass, "g")];
        assert_eq!(
            conclude(&mut e, NoDataPolicy::Extend, true, &mut c),
            Conclusion::Passed
        );
    }

    #[test]
    fn errors_count_in_a_row_toward_their_own_limit_and_a_reading_ends_the_row() {
        let mut c = FailureCounter::new(FailureLimits {
            cumulative: 1,
            consecutive: 1,
            consecutive_errors: 3,
        });
        let err = |c: &mut FailureCounter| {
            let mut e = vec![with(GateOutcome::Pass, "a"), with(GateOutcome::Error, "g")];
            conclude(&mut e, NoDataPolicy::Fail, true, c)
        };
        // An error is no failure, even under `fail` with limits of 1, and does not count.
        assert_eq!(err(&mut c), Conclusion::Errored);
        assert_eq!(err(&mut c), Conclusion::Errored);
        // A reading (a pass) ends the row.
        let mut e = vec![with(GateOutcome::Pass, "g")];
        assert_eq!(
            conclude(&mut e, NoDataPolicy::Fail, true, &mut c),
            Conclusion::Passed
        );
        assert_eq!(err(&mut c), Conclusion::Errored);
        assert_eq!(err(&mut c), Conclusion::Errored);
        let Conclusion::Breached(b) = err(&mut c) else {
            panic!("three errors in a row reach the limit of 3")
        };
        assert_eq!(
            (b.gate.as_str(), b.kind, b.count),
            ("g", BreachKind::ErrorsInARow, 3)
        );
        assert!(
            b.describe().contains("could not be read"),
            "{}",
            b.describe()
        );
    }

    #[test]
    fn a_source_that_cannot_be_read_is_an_error_and_an_empty_reading_no_data() {
        let e = value(0.05, None, Err("`ranker-analyze` exited with 127"));
        assert_eq!(e.outcome, GateOutcome::Error, "{e:?}");
        assert!(e.detail.starts_with("error: "), "{}", e.detail);
        assert_eq!(
            value(0.05, None, Ok(r#"{"error_rate": null}"#)).outcome,
            GateOutcome::NoData
        );
    }

    fn value(max: f64, fail_above: Option<f64>, answer: Result<&str, &str>) -> GateEvaluation {
        let gate = Gate {
            name: "new path errors".into(),
            kind: GateKind::Latency {
                quantile: 0.5,
                max: None,
                max_ratio: None,
                floor: 0,
            },
        };
        value_gate(
            &gate,
            "`ranker-analyze` on app",
            "/error_rate",
            Bound::Max(max),
            fail_above,
            answer.map(String::from).map_err(String::from),
            whole(),
        )
    }

    #[test]
    fn a_value_gate_reads_the_number_at_its_pointer() {
        let e = value(0.05, None, Ok(r#"{"error_rate": 0.02, "requests": 90}"#));
        assert_eq!(
            (e.outcome, e.canary, e.limit),
            (GateOutcome::Pass, Some(0.02), Some(0.05))
        );
        assert_eq!(e.metric, "/error_rate of `ranker-analyze` on app");
        let e = value(0.05, None, Ok(r#"{"error_rate": "0.3"}"#));
        assert_eq!(
            (e.outcome, e.canary),
            (GateOutcome::Fail, Some(0.3)),
            "{e:?}"
        );
        assert_eq!(e.detail, "/error_rate is 0.3, must be at most 0.05");
    }

    #[test]
    fn between_the_success_and_failure_conditions_a_value_is_inconclusive() {
        let e = value(0.05, Some(0.10), Ok(r#"{"error_rate": 0.07}"#));
        assert_eq!(e.outcome, GateOutcome::Inconclusive, "{e:?}");
        assert!(e.detail.starts_with("inconclusive: "), "{}", e.detail);
        assert_eq!(
            value(0.05, Some(0.10), Ok(r#"{"error_rate": 0.11}"#)).outcome,
            GateOutcome::Fail
        );
        assert_eq!(
            value(0.05, Some(0.10), Ok(r#"{"error_rate": 0.05}"#)).outcome,
            GateOutcome::Pass
        );
        // The analysis's policy decides, as for no data: under `fail` it counts as a failure.
        let mut evals = [value(0.05, Some(0.10), Ok(r#"{"error_rate": 0.07}"#))];
        let mut counter = FailureCounter::new(FailureLimits {
            cumulative: 3,
            consecutive: 2,
            consecutive_errors: 4,
        });
        assert_eq!(
            conclude(&mut evals, NoDataPolicy::Fail, true, &mut counter),
            Conclusion::Failed
        );
        let mut evals = [value(0.05, Some(0.10), Ok(r#"{"error_rate": 0.07}"#))];
        assert_eq!(
            conclude(&mut evals, NoDataPolicy::Extend, true, &mut counter),
            Conclusion::Inconclusive
        );
    }

    #[test]
    fn a_value_gate_without_a_number_is_no_data_an_error_or_fails() {
        // Nothing measured yet (the analyzer saw no sampled request): no data.
        for answer in [Ok(r#"{"error_rate": null}"#), Ok("{}")] {
            let e = value(0.05, None, answer);
            assert_eq!((e.outcome, e.canary), (GateOutcome::NoData, None), "{e:?}");
        }
        // The analyzer could not run: an error, counted apart from failures.
        let e = value(0.05, None, Err("exit code 2"));
        assert_eq!((e.outcome, e.canary), (GateOutcome::Error, None), "{e:?}");
        // A broken analyzer is no reason to promote.
        for answer in [
            Ok("Traceback (most recent call last):"),
            Ok(r#"{"error_rate": [1]}"#),
        ] {
            let e = value(0.05, None, answer);
            assert_eq!(e.outcome, GateOutcome::Fail, "{e:?}");
        }
    }

    #[test]
    fn a_configuration_rollout_judges_every_operation_without_a_baseline() {
        let mut all = ops("c", 0, 50, 1000, 10);
        all.extend(ops("b1", 0, 50, 1000, 0));
        // A service without a proxy names no backend: its operations count all the same.
        all.extend(ops("b2", 0, 50, 1000, 0).into_iter().map(|op| Op {
            backend: None,
            ..op
        }));
        let whole_service = Backends {
            canary: None,
            baseline: &[],
        };
        let e = history_gate(
            &error_gate(Some(0.2), None),
            &all,
            whole(),
            whole_service,
            10,
        );
        assert_eq!(e.samples, 150, "{e:?}");
        assert_eq!(
            e.detail,
            "3.33 % errors in 150 operations; limit 20.00 % (absolute)"
        );
    }

    #[test]
    fn weights_for_three_backends() {
        // One canary, two baselines, 200 weight points: exact percentages.
        for (percent, canary, each) in [
            (1.0, 2, 99),
            (5.0, 10, 95),
            (10.0, 20, 90),
            (50.0, 100, 50),
            (100.0, 200, 0),
        ] {
            let (c, b, share) = weights(percent, 2, 200);
            assert_eq!((c, b), (canary, each), "{percent} %");
            assert!(
                (share - percent / 100.0).abs() < 1e-9,
                "{percent} %: {share}"
            );
        }
        // A coarse total rounds: 1 % of 100 over 2 baselines.
        let (c, b, share) = weights(1.0, 2, 100);
        assert_eq!((c, b), (1, 50));
        assert!((share - 1.0 / 101.0).abs() < 1e-9);
        assert_eq!(weights(0.0, 2, 200), (0, 100, 0.0));
    }

    const METRICS: &str = "\
# HELP etcd_server_leader_changes_seen_total The number of leader changes seen.
# TYPE etcd_server_leader_changes_seen_total counter
etcd_server_leader_changes_seen_total 1
# TYPE grpc_requests counter
grpc_requests{method=\"Range\",code=\"OK\"} 10
grpc_requests{method=\"Put\",code=\"OK\"} 5
grpc_requests{method=\"Put\",code=\"Unavailable\"} 2
# TYPE latency histogram
latency_bucket{le=\"0.1\"} 3
latency_bucket{le=\"+Inf\"} 4
latency_sum 0.5
latency_count 4
";

    #[test]
    fn metric_values_are_read_and_summed_by_labels() {
        let none = BTreeMap::new();
        assert_eq!(
            metric_value(METRICS, "etcd_server_leader_changes_seen_total", &none),
            Ok(1.0)
        );
        assert_eq!(metric_value(METRICS, "grpc_requests", &none), Ok(17.0));
        let put = BTreeMap::from([("method".to_string(), "Put".to_string())]);
        assert_eq!(metric_value(METRICS, "grpc_requests", &put), Ok(7.0));
        let err = metric_value(METRICS, "nope", &none).unwrap_err();
        assert!(err.contains("no sample of nope"), "{err}");
        assert!(metric_value(METRICS, "latency", &none).is_err());
    }

    fn leader_gate() -> (Gate, MetricGate) {
        let m = MetricGate {
            node: "n3".into(),
            port: 2379,
            path: "/metrics".into(),
            metric: "leader_changes".into(),
            labels: BTreeMap::new(),
            max_increase: Some(0.0),
            max: None,
        };
        (
            Gate {
                name: "no leader change".into(),
                kind: GateKind::Metric(m.clone()),
            },
            m,
        )
    }

    #[test]
    fn metric_gate_fails_when_the_counter_rises() {
        let (g, m) = leader_gate();
        let e = metric_gate(&g, &m, Some(1.0), Ok(1.0), whole());
        assert_eq!(e.outcome, GateOutcome::Pass, "{e:?}");
        let e = metric_gate(&g, &m, Some(1.0), Ok(3.0), whole());
        assert_eq!(
            (e.outcome, e.limit),
            (GateOutcome::Fail, Some(1.0)),
            "{e:?}"
        );
        assert!(
            e.detail.contains("+2 since the rollout began"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn metric_gate_without_a_value_is_no_data() {
        let (g, m) = leader_gate();
        let e = metric_gate(&g, &m, Some(1.0), Err("connection refused".into()), whole());
        assert_eq!(e.outcome, GateOutcome::NoData);
        assert!(e.detail.contains("connection refused"));
        // A rise cannot be judged without the first value.
        let e = metric_gate(&g, &m, None, Ok(1.0), whole());
        assert_eq!(e.outcome, GateOutcome::NoData, "{e:?}");
    }

    fn promql(bound: Bound) -> Gate {
        Gate {
            name: "canary errors by its metrics".into(),
            kind: GateKind::Promql {
                query: "sum(rate(errors_total[5s]))".into(),
                bound,
            },
        }
    }

    #[test]
    fn promql_gate_judges_the_worst_series_against_its_bound() {
        let g = promql(Bound::Max(0.0));
        let q = "sum(rate(errors_total[5s]))";
        let e = promql_gate(&g, q, Bound::Max(0.0), Ok(vec![0.0, 0.0]), whole());
        assert_eq!((e.outcome, e.samples), (GateOutcome::Pass, 2), "{e:?}");
        let e = promql_gate(&g, q, Bound::Max(0.0), Ok(vec![0.0, 0.4, 0.1]), whole());
        assert_eq!(
            (e.outcome, e.canary, e.limit),
            (GateOutcome::Fail, Some(0.4), Some(0.0)),
            "{e:?}"
        );
        assert_eq!(e.detail, "0.4 (the worst of 3 series), must be at most 0");
        let e = promql_gate(
            &g,
            q,
            Bound::Max(0.05),
            Ok(vec![0.27311199999999997]),
            whole(),
        );
        assert_eq!(e.detail, "0.273112, must be at most 0.05");
        let e = promql_gate(&g, q, Bound::Min(3.0), Ok(vec![3.0, 2.0]), whole());
        assert_eq!((e.outcome, e.canary), (GateOutcome::Fail, Some(2.0)));
        // 0/0 is no value, and fails.
        let e = promql_gate(&g, q, Bound::Max(1.0), Ok(vec![f64::NAN]), whole());
        assert_eq!((e.outcome, e.canary), (GateOutcome::Fail, None), "{e:?}");
    }

    #[test]
    fn promql_gate_without_a_sample_is_no_data_and_without_an_answer_an_error() {
        let g = promql(Bound::Max(0.0));
        let e = promql_gate(&g, "q", Bound::Max(0.0), Ok(vec![]), whole());
        assert_eq!(e.outcome, GateOutcome::NoData, "{e:?}");
        assert!(e.detail.contains("no sample"), "{}", e.detail);
        let e = promql_gate(&g, "q", Bound::Max(0.0), Err("timed out".into()), whole());
        assert_eq!(e.outcome, GateOutcome::Error);
        assert!(e.detail.contains("timed out"), "{}", e.detail);
    }
}
