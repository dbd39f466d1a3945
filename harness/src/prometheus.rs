//! A client for Prometheus's HTTP API: readiness, instant and range queries, active alerts
//! and rule state, for steps and gates that judge a run by what a monitoring stack saw
//! (an alert that must fire during a fault and resolve after it, a PromQL condition).
//!
//! Every reply of the API is an envelope `{status, data, errorType?, error?}`; an error
//! names the URL asked and Prometheus's own `errorType` and `error`, so a PromQL that does
//! not parse reads as `bad_data: … parse error …` rather than as a bare HTTP 400.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Per request; a query that Prometheus itself times out answers before this.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of an unexpected reply kept in an error.
const BODY_MAX: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    /// Prometheus answered with `status: error`.
    #[error("{url}: Prometheus answered {error_type}: {error}")]
    Api {
        url: String,
        http_status: u16,
        error_type: String,
        error: String,
    },
    #[error("{url}: Prometheus is not ready (HTTP {http_status}): {body}")]
    NotReady {
        url: String,
        http_status: u16,
        body: String,
    },
    /// A reply that is not what the API documents (a wrong base URL, another server).
    #[error("{url}: unexpected reply (HTTP {http_status}): {what}")]
    Unexpected {
        url: String,
        http_status: u16,
        what: String,
    },
}

impl PrometheusError {
    /// Prometheus's `errorType` (`bad_data`, `execution`, `timeout`…), when it answered one.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            PrometheusError::Api { error_type, .. } => Some(error_type),
            _ => None,
        }
    }
}

/// One element of an instant vector, or a scalar (with no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One series of a range query: `(Unix time in seconds, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less time than the rule's `for:`.
    Pending,
    Firing,
}

/// An active alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The `alertname` label.
    pub name: String,
    /// Every label, `alertname` included.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// When the condition started to hold (the alert went pending).
    pub active_at: Option<DateTime<Utc>>,
    /// The expression's value at the last evaluation.
    pub value: f64,
}

/// A scrape target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub scrape_url: String,
    /// `up`, `down`, or `unknown` before the first scrape.
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Alerting,
    Recording,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleHealth {
    Ok,
    Err,
    /// Not evaluated yet.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Inactive,
    Pending,
    Firing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The alert name, or the recorded series' name.
    pub name: String,
    pub query: String,
    pub kind: RuleKind,
    /// An alerting rule's `for:` (zero when it has none).
    pub duration: Option<Duration>,
    pub health: RuleHealth,
    /// Why the last evaluation failed.
    pub last_error: Option<String>,
    /// An alerting rule's state: its most advanced alert's.
    pub state: Option<RuleState>,
    /// An alerting rule's active alerts.
    pub alerts: Vec<Alert>,
}

/// A Prometheus server, by its base URL (`http://127.0.0.1:9090`).
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    pub fn new(base_url: &str) -> Prometheus {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .build()
            .expect("a client without TLS or proxies always builds");
        Prometheus {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Ok once the server has loaded its TSDB and rules (`/-/ready` answers 200).
    pub async fn ready(&self) -> Result<(), PrometheusError> {
        let url = self.url("/-/ready", &[])?;
        let (http_status, body) = self.get(&url).await?;
        match http_status {
            200 => Ok(()),
            _ => Err(PrometheusError::NotReady {
                url: url.to_string(),
                http_status,
                body: short(body.trim()),
            }),
        }
    }

    /// Evaluates `promql` at `at` (Unix seconds; the server's now when `None`). A scalar
    /// result is one sample without labels.
    pub async fn query(
        &self,
        promql: &str,
        at: Option<f64>,
    ) -> Result<Vec<Sample>, PrometheusError> {
        let mut params = vec![("query", promql.to_string())];
        if let Some(t) = at {
            params.push(("time", t.to_string()));
        }
        let url = self.url("/api/v1/query", &params)?;
        let (status, data): (u16, QueryData) = self.api(&url).await?;
        let unexpected = |what: String| PrometheusError::Unexpected {
            url: url.to_string(),
            http_status: status,
            what,
        };
        match data.result_type.as_str() {
            "vector" => {
                let result: Vec<RawSample> = serde_json::from_value(data.result)
                    .map_err(|e| unexpected(format!("a vector result that does not decode: {e}")))?;
                result
                    .into_iter()
                    .map(|s| {
                        Ok(Sample {
                            labels: s.metric,
                            value: number(&s.value.1).map_err(&unexpected)?,
                        })
                    })
                    .collect()
            }
            "scalar" => {
                let (_, value): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| unexpected(format!("a scalar result that does not decode: {e}")))?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value: number(&value).map_err(&unexpected)?,
                }])
            }
            other => Err(unexpected(format!(
                "a {other} result, where an instant vector or a scalar was asked for (a range selector belongs in query_range)"
            ))),
        }
    }

    /// Evaluates `promql` every `step` from `start` to `end` (Unix seconds).
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let params = [
            ("query", promql.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.as_secs_f64().to_string()),
        ];
        let url = self.url("/api/v1/query_range", &params)?;
        let (status, data): (u16, QueryData) = self.api(&url).await?;
        let unexpected = |what: String| PrometheusError::Unexpected {
            url: url.to_string(),
            http_status: status,
            what,
        };
        if data.result_type != "matrix" {
            return Err(unexpected(format!(
                "a {} result, where a range query gives a matrix",
                data.result_type
            )));
        }
        let result: Vec<RawSeries> = serde_json::from_value(data.result)
            .map_err(|e| unexpected(format!("a matrix result that does not decode: {e}")))?;
        result
            .into_iter()
            .map(|s| {
                let points = s
                    .values
                    .iter()
                    .map(|(t, v)| Ok((*t, number(v).map_err(&unexpected)?)))
                    .collect::<Result<_, PrometheusError>>()?;
                Ok(Series {
                    labels: s.metric,
                    points,
                })
            })
            .collect()
    }

    /// The alerts pending or firing now.
    pub async fn alerts(&self) -> Result<Vec<Alert>, PrometheusError> {
        let url = self.url("/api/v1/alerts", &[])?;
        let (_, data): (u16, AlertsData) = self.api(&url).await?;
        Ok(data.alerts.into_iter().map(Alert::from).collect())
    }

    /// The active scrape targets.
    pub async fn targets(&self) -> Result<Vec<Target>, PrometheusError> {
        let url = self.url("/api/v1/targets", &[("state", "active".to_string())])?;
        let (_, data): (u16, TargetsData) = self.api(&url).await?;
        Ok(data.active_targets)
    }

    /// Every metric name the server holds a series of, between `start` and `end` (Unix
    /// seconds) when given.
    pub async fn metric_names(
        &self,
        range: Option<(f64, f64)>,
    ) -> Result<Vec<String>, PrometheusError> {
        let params: Vec<(&str, String)> = match range {
            Some((start, end)) => vec![("start", start.to_string()), ("end", end.to_string())],
            None => Vec::new(),
        };
        let url = self.url("/api/v1/label/__name__/values", &params)?;
        let (_, names): (u16, Vec<String>) = self.api(&url).await?;
        Ok(names)
    }

    /// Every rule group with its rules' health, state and active alerts.
    pub async fn rules(&self) -> Result<Vec<RuleGroup>, PrometheusError> {
        let url = self.url("/api/v1/rules", &[])?;
        let (_, data): (u16, RulesData) = self.api(&url).await?;
        Ok(data.groups.into_iter().map(RuleGroup::from).collect())
    }

    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, PrometheusError> {
        let text = format!("{}{path}", self.base);
        let mut url = Url::parse(&text).map_err(|e| PrometheusError::Unexpected {
            url: text.clone(),
            http_status: 0,
            what: format!("not a URL: {e}"),
        })?;
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        Ok(url)
    }

    async fn get(&self, url: &Url) -> Result<(u16, String), PrometheusError> {
        let http = |source| PrometheusError::Http {
            url: url.to_string(),
            source,
        };
        let response = self.http.get(url.clone()).send().await.map_err(http)?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(http)?))
    }

    /// GETs an API endpoint and unwraps its envelope: `data` on success, else Prometheus's
    /// error. Prometheus answers errors with 4xx/5xx and the envelope, so the body decides.
    async fn api<T: DeserializeOwned>(&self, url: &Url) -> Result<(u16, T), PrometheusError> {
        let (http_status, body) = self.get(url).await?;
        let unexpected = |what: String| PrometheusError::Unexpected {
            url: url.to_string(),
            http_status,
            what,
        };
        let envelope: Envelope = serde_json::from_str(&body)
            .map_err(|_| unexpected(format!("not an API reply: {}", short(body.trim()))))?;
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) => serde_json::from_value(data)
                .map(|d| (http_status, d))
                .map_err(|e| unexpected(format!("`data` does not decode: {e}"))),
            ("error", _) => Err(PrometheusError::Api {
                url: url.to_string(),
                http_status,
                error_type: envelope.error_type.unwrap_or_default(),
                error: envelope.error.unwrap_or_default(),
            }),
            (status, _) => Err(unexpected(format!("status `{status}` without data"))),
        }
    }
}

/// Prometheus writes sample values as strings (`"1e+00"`, `"NaN"`, `"+Inf"`).
fn number(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|_| format!("sample value `{text}` is not a number"))
}

fn short(text: &str) -> String {
    match text.char_indices().nth(BODY_MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<serde_json::Value>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<Target>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    state: AlertState,
    /// RFC 3339.
    active_at: Option<String>,
    value: Value,
}

/// A value written as a string (what Prometheus does) or as a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Number(f64),
    Text(String),
}

impl From<RawAlert> for Alert {
    fn from(a: RawAlert) -> Alert {
        Alert {
            name: a.labels.get("alertname").cloned().unwrap_or_default(),
            value: match a.value {
                Value::Number(v) => v,
                // An unreadable value is no reason to lose the alert.
                Value::Text(t) => number(&t).unwrap_or(f64::NAN),
            },
            labels: a.labels,
            annotations: a.annotations,
            state: a.state,
            active_at: a
                .active_at
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
struct RawGroup {
    name: String,
    file: String,
    /// Seconds.
    interval: f64,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    name: String,
    query: String,
    #[serde(rename = "type")]
    kind: RuleKind,
    /// Seconds; alerting rules only.
    duration: Option<f64>,
    health: RuleHealth,
    last_error: Option<String>,
    state: Option<RuleState>,
    #[serde(default)]
    alerts: Vec<RawAlert>,
}

impl From<RawGroup> for RuleGroup {
    fn from(g: RawGroup) -> RuleGroup {
        RuleGroup {
            name: g.name,
            file: g.file,
            interval: seconds(g.interval),
            rules: g
                .rules
                .into_iter()
                .map(|r| Rule {
                    name: r.name,
                    query: r.query,
                    kind: r.kind,
                    duration: r.duration.map(seconds),
                    health: r.health,
                    last_error: r.last_error.filter(|e| !e.is_empty()),
                    state: r.state,
                    alerts: r.alerts.into_iter().map(Alert::from).collect(),
                })
                .collect(),
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! Decoding, on replies captured from Prometheus 2.42 (Debian bookworm) watching the
    //! bundled etcd cluster while a member was cut off from its peers.
    use super::*;

    fn decode<T: DeserializeOwned>(body: &str) -> T {
        let envelope: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.status, "success");
        serde_json::from_value(envelope.data.unwrap()).unwrap()
    }

    #[test]
    fn active_alerts_with_their_state_and_value() {
        let data: AlertsData = decode(include_str!("prometheus/alerts.json"));
        let alerts: Vec<Alert> = data.alerts.into_iter().map(Alert::from).collect();
        let no_leader = alerts.iter().find(|a| a.name == "etcdNoLeader").unwrap();
        assert_eq!(no_leader.state, AlertState::Firing);
        assert_eq!(no_leader.labels["instance"], "etcd2:2379");
        assert_eq!(no_leader.labels["alertname"], "etcdNoLeader");
        assert_eq!(no_leader.value, 0.0);
        assert_eq!(
            no_leader.active_at.unwrap().to_rfc3339(),
            "2026-12-01T08:49:58.505636823+00:00"
        );
        assert!(no_leader.annotations["description"].contains("etcd2:2379"));
        let down = alerts.iter().find(|a| a.name == "etcdMembersDown").unwrap();
        assert_eq!(down.state, AlertState::Pending);
        assert!(!down.labels.contains_key("instance"));
        let grpc = alerts
            .iter()
            .find(|a| a.name == "etcdHighNumberOfFailedGRPCRequests")
            .unwrap();
        assert!((grpc.value - 46.866464222745236).abs() < 1e-12);
    }

    #[test]
    fn rule_groups_with_durations_states_and_alerts() {
        let data: RulesData = decode(include_str!("prometheus/rules.json"));
        let groups: Vec<RuleGroup> = data.groups.into_iter().map(RuleGroup::from).collect();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.name, "etcd");
        assert_eq!(g.file, "/etc/prometheus/rules/etcd.rules.yml");
        assert_eq!(g.interval, Duration::from_secs(1));
        let summary: Vec<_> = g
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.duration, r.state, r.alerts.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "etcdMembersDown",
                    Some(Duration::from_secs(180)),
                    Some(RuleState::Pending),
                    1
                ),
                (
                    "etcdInsufficientMembers",
                    Some(Duration::from_secs(180)),
                    Some(RuleState::Inactive),
                    0
                ),
                (
                    "etcdNoLeader",
                    Some(Duration::from_secs(60)),
                    Some(RuleState::Firing),
                    1
                ),
            ]
        );
        let no_leader = &g.rules[2];
        assert_eq!(no_leader.kind, RuleKind::Alerting);
        assert_eq!(no_leader.health, RuleHealth::Ok);
        assert_eq!(no_leader.last_error, None);
        assert_eq!(
            no_leader.query,
            r#"etcd_server_has_leader{job=~".*etcd.*"} == 0"#
        );
        assert_eq!(no_leader.alerts[0].state, AlertState::Firing);
    }

    #[test]
    fn a_recording_rule_that_fails_has_its_error_and_no_state() {
        let data: RulesData = decode(include_str!("prometheus/rules_recording_error.json"));
        let groups: Vec<RuleGroup> = data.groups.into_iter().map(RuleGroup::from).collect();
        let broken = groups[0]
            .rules
            .iter()
            .find(|r| r.kind == RuleKind::Recording)
            .unwrap();
        assert_eq!(broken.name, "job:up:broken");
        assert_eq!(broken.health, RuleHealth::Err);
        assert_eq!(
            broken.last_error.as_deref(),
            Some("vector cannot contain metrics with the same labelset")
        );
        assert_eq!((broken.duration, broken.state), (None, None));
        let pending = groups[0]
            .rules
            .iter()
            .find(|r| r.name == "PendingForAnHour")
            .unwrap();
        assert_eq!(pending.state, Some(RuleState::Pending));
        assert_eq!(pending.duration, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn vector_scalar_and_matrix_results() {
        let v: QueryData = decode(include_str!("prometheus/query_vector.json"));
        assert_eq!(v.result_type, "vector");
        let samples: Vec<RawSample> = serde_json::from_value(v.result).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[1].metric["instance"], "etcd2:2379");
        assert_eq!(number(&samples[1].value.1), Ok(1.0));

        let s: QueryData = decode(include_str!("prometheus/query_scalar.json"));
        assert_eq!(s.result_type, "scalar");
        let (_, value): (f64, String) = serde_json::from_value(s.result).unwrap();
        assert_eq!(number(&value), Ok(2.0));

        let m: QueryData = decode(include_str!("prometheus/query_range.json"));
        let series: Vec<RawSeries> = serde_json::from_value(m.result).unwrap();
        let cut_off = series
            .iter()
            .find(|s| s.metric["instance"] == "etcd2:2379")
            .unwrap();
        let values: Vec<f64> = cut_off
            .values
            .iter()
            .map(|(_, v)| number(v).unwrap())
            .collect();
        assert_eq!(values, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(cut_off.values[0].0, 1796115000.0);
    }

    #[test]
    fn special_values_parse() {
        assert!(number("NaN").unwrap().is_nan());
        assert_eq!(number("+Inf"), Ok(f64::INFINITY));
        assert_eq!(number("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(number("1e+00"), Ok(1.0));
        assert!(number("one").unwrap_err().contains("`one`"));
    }

    /// A one-shot HTTP server on 127.0.0.1 that answers every request with `status` and
    /// `body`, for the envelope and error paths.
    async fn answer(status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn bad_promql_names_the_url_and_prometheus_error() {
        let base = answer(400, include_str!("prometheus/error_bad_data.json")).await;
        let err = Prometheus::new(&base).query("up{", None).await.unwrap_err();
        assert_eq!(err.error_type(), Some("bad_data"));
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{base}/api/v1/query?query=up%7B: Prometheus answered bad_data: "
            )),
            "{text}"
        );
        assert!(
            text.contains("parse error: unexpected end of input inside braces"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_scalar_is_one_sample_without_labels() {
        let base = answer(200, include_str!("prometheus/query_scalar.json")).await;
        let samples = Prometheus::new(&base)
            .query("1+1", Some(1796115097.207))
            .await
            .unwrap();
        assert_eq!(
            samples,
            [Sample {
                labels: BTreeMap::new(),
                value: 2.0
            }]
        );
    }

    #[tokio::test]
    async fn a_reply_that_is_no_api_reply_says_what_it_was() {
        let base = answer(404, "404 page not found").await;
        let err = Prometheus::new(&base).alerts().await.unwrap_err();
        assert_eq!(err.error_type(), None);
        assert_eq!(
            err.to_string(),
            format!("{base}/api/v1/alerts: unexpected reply (HTTP 404): not an API reply: 404 page not found")
        );
        let err = Prometheus::new(&base).ready().await.unwrap_err();
        assert!(
            matches!(
                err,
                PrometheusError::NotReady {
                    http_status: 404,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_range_selector_in_an_instant_query_is_refused_clearly() {
        let base = answer(200, include_str!("prometheus/query_range.json")).await;
        let err = Prometheus::new(&base)
            .query("up[1m]", None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("a matrix result"), "{err}");
        let series = Prometheus::new(&base)
            .query_range(
                "etcd_server_has_leader",
                1796114990.0,
                1796115070.0,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[1].points.last(), Some(&(1796115070.0, 1.0)));
    }
}
