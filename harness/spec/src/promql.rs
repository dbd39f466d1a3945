//! PromQL as firedrill reads it: checked at `validate` time with a parser that follows
//! Prometheus's grammar (promql-parser), so a query that does not parse is a file:line
//! error before anything starts; and the metric names an expression selects, for the rule
//! hygiene check. Evaluating a query is Prometheus's job, never firedrill's.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};

/// What a query's samples must satisfy: each at most a limit, or each at least one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Max(f64),
    Min(f64),
}

impl Bound {
    /// From a spec's `max`/`min`, exactly one of which is given.
    pub fn from_spec(max: Option<f64>, min: Option<f64>) -> Result<Bound, &'static str> {
        match (max, min) {
            (Some(m), None) if m.is_finite() => Ok(Bound::Max(m)),
            (None, Some(m)) if m.is_finite() => Ok(Bound::Min(m)),
            (Some(_), None) | (None, Some(_)) => Err("the bound must be a finite number"),
            _ => Err("give exactly one of `max` and `min`"),
        }
    }

    pub fn limit(self) -> f64 {
        match self {
            Bound::Max(l) | Bound::Min(l) => l,
        }
    }

    pub fn holds(self, value: f64) -> bool {
        match self {
            Bound::Max(l) => value <= l,
            Bound::Min(l) => value >= l,
        }
    }

    /// The sample nearest to breaking the bound (the largest under `max`, the smallest under
    /// `min`); a NaN sample (Prometheus's answer to 0/0) breaks any bound, so it is the worst.
    pub fn worst(self, values: impl IntoIterator<Item = f64>) -> Option<f64> {
        values.into_iter().reduce(|a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                match self {
                    Bound::Max(_) => a.max(b),
                    Bound::Min(_) => a.min(b),
                }
            }
        })
    }

    /// "at most 0", "at least 1".
    pub fn describe(self) -> String {
        match self {
            Bound::Max(l) => format!("at most {l}"),
            Bound::Min(l) => format!("at least {l}"),
        }
    }
}

/// Ok when `query` parses; otherwise the parser's message.
pub fn check(query: &str) -> Result<(), String> {
    parser::parse(query).map(|_| ())
}

/// The metric names `query` selects by name (`foo`, `foo[5m]`, `{__name__="foo"}`). A
/// selector that matches names by a regular expression names no metric of its own.
pub fn metric_names(query: &str) -> Result<BTreeSet<String>, String> {
    let expr = parser::parse(query)?;
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &expr).map_err(|e| e.to_string())?;
    Ok(names.0)
}

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        match &selector.name {
            Some(name) => {
                self.0.insert(name.clone());
            }
            None => self.0.extend(
                selector
                    .matchers
                    .matchers
                    .iter()
                    .filter(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                    .map(|m| m.value.clone()),
            ),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_one_of_max_and_min_and_its_worst_sample_breaks_first() {
        assert_eq!(Bound::from_spec(Some(0.0), None), Ok(Bound::Max(0.0)));
        assert!(Bound::from_spec(Some(1.0), Some(0.0)).is_err());
        assert!(Bound::from_spec(None, None).is_err());
        assert!(Bound::from_spec(Some(f64::NAN), None).is_err());
        assert_eq!(Bound::Max(1.0).worst([0.5, 2.0, 1.0]), Some(2.0));
        assert_eq!(Bound::Min(1.0).worst([1.5, 0.0, 3.0]), Some(0.0));
        assert!(Bound::Max(1.0).worst([0.5, f64::NAN]).unwrap().is_nan());
        assert!(!Bound::Max(1.0).holds(f64::NAN) && !Bound::Min(1.0).holds(f64::NAN));
        assert_eq!(Bound::Max(1.0).worst(Vec::<f64>::new()), None);
        assert!(Bound::Min(1.0).holds(1.0) && !Bound::Min(1.0).holds(0.99));
    }

    fn names(q: &str) -> Vec<String> {
        metric_names(q).unwrap().into_iter().collect()
    }

    #[test]
    fn the_names_of_every_selector_in_an_alert_expression() {
        let q = r#"(sum without (instance) (up{job=~".*kv.*"} == bool 0) > 0)
            or count without (To) (sum(rate(peer_sent_failures_total[2m])) > 0.01)"#;
        assert_eq!(names(q), ["peer_sent_failures_total", "up"]);
        assert_eq!(
            names(r#"histogram_quantile(0.99, rate(fsync_seconds_bucket[5m])) > 0.5"#),
            ["fsync_seconds_bucket"]
        );
        assert_eq!(
            names(r#"{__name__="has_leader", job="kv"} == 0"#),
            ["has_leader"]
        );
        assert_eq!(
            names(r#"{__name__=~"has_.*"}"#),
            Vec::<String>::new(),
            "a regular expression names no metric"
        );
        assert_eq!(names("1 + 2"), Vec::<String>::new());
    }

    #[test]
    fn a_query_that_does_not_parse_says_why() {
        let e = check("sum(has_leader) ==").unwrap_err();
        assert!(!e.is_empty());
        assert!(check("sum(has_leader) == 3").is_ok());
        assert!(check("rate(x[5m]").is_err());
    }
}
