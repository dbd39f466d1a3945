//! PromQL as firedrill reads it: checked at `validate` time with a parser that follows
//! Prometheus's grammar (promql-parser), so a query that does not parse is a file:line
//! error before anything starts; and the metric names an expression selects, for the rule
//! hygiene check. Evaluating a query is Prometheus's job, never firedrill's.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};

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
