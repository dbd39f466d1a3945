//! The cluster's Prometheus during a run: reached and checked at the start (ready, the
//! alert names the scenario uses are rules it loaded, every metric a rule selects is
//! exposed), watched while the load runs (the active alerts, polled; each change is a
//! line of `alerts.jsonl`), and asked at the end for the dashboards' series
//! (`metrics/*.json`). Only Prometheus's HTTP API is used: nothing of it is re-done here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use firedrill_spec::monitoring::MonitoringPlan;
use firedrill_spec::promql;
use firedrill_types::history::{Micros, Phase};
use firedrill_types::monitoring::{
    AlertObservation, AlertState, PanelLine, PanelRecord, PanelSeries, QuerySamples, RuleMetrics,
};
use tokio::sync::watch;

use crate::cluster::{self, Cluster};
use crate::prometheus::{self, Prometheus, PrometheusError, RuleKind};

/// Log lines of an exited Prometheus kept in the error.
const LOG_LINES: usize = 8;
/// How far back an exited Prometheus's log is searched for its errors: it logs why it
/// refused its rules first, then a dozen lines of shutting down.
const LOG_SCAN: usize = 200;
/// Points per panel series at most: a step of at least a second.
const PANEL_POINTS: f64 = 1000.0;

#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    #[error("Prometheus (service `{service}`, {url}) is not ready after {timeout:?}: {last}; check the service in the compose file and its log (`firedrill run --keep`, then `docker logs`)")]
    NotReady {
        service: String,
        url: String,
        timeout: Duration,
        last: String,
    },
    #[error("service `{0}` publishes no port for Prometheus's API: add `127.0.0.1::<port>` to its ports")]
    NoPort(String),
    #[error("Prometheus (service `{service}`) rejected its configuration or rules:\n{log}")]
    Rejected { service: String, log: String },
    #[error("{}", .0.join("\n"))]
    UnknownAlerts(Vec<String>),
    #[error("Prometheus (service `{service}`): {source}")]
    Api {
        service: String,
        #[source]
        source: PrometheusError,
    },
    #[error("cannot write {path}: {source}")]
    Artifact {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MonitoringError {
    /// Bad input (the rules, the names in the scenario) exits 2; the rest is the
    /// environment.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            MonitoringError::Rejected { .. } | MonitoringError::UnknownAlerts(_)
        )
    }
}

pub struct Monitor<'a> {
    plan: &'a MonitoringPlan,
    pub prometheus: Prometheus,
    /// The run clock's epoch, as Unix seconds: Prometheus's times are Unix times.
    epoch_unix: f64,
    epoch: Instant,
}

impl<'a> Monitor<'a> {
    /// Waits until Prometheus answers ready; one that exited names its own complaint.
    pub async fn connect(
        plan: &'a MonitoringPlan,
        cluster: &Cluster,
        epoch: Instant,
        timeout: Duration,
    ) -> Result<Monitor<'a>, MonitoringError> {
        let port = cluster
            .host_port(&plan.node, plan.port)
            .ok_or_else(|| MonitoringError::NoPort(plan.node.clone()))?;
        let prometheus = Prometheus::new(&cluster::published_url(port));
        let deadline = Instant::now() + timeout;
        loop {
            let last = match prometheus.ready().await {
                Ok(()) => break,
                Err(e) => e.to_string(),
            };
            if !cluster
                .container_state(&plan.node)
                .await
                .is_some_and(|s| s.running)
            {
                let log = complaint(&cluster.log_tail(&plan.node, LOG_SCAN).await);
                return Err(MonitoringError::Rejected {
                    service: plan.node.clone(),
                    log,
                });
            }
            if Instant::now() >= deadline {
                return Err(MonitoringError::NotReady {
                    service: plan.node.clone(),
                    url: prometheus.base_url().to_string(),
                    timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let since_epoch = epoch.elapsed().as_secs_f64();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Ok(Monitor {
            plan,
            prometheus,
            epoch_unix: now - since_epoch,
            epoch,
        })
    }

    fn api(&self, source: PrometheusError) -> MonitoringError {
        MonitoringError::Api {
            service: self.plan.node.clone(),
            source,
        }
    }

    /// The rules Prometheus loaded, each with the metrics it selects; every alert name
    /// the scenario uses must be one of them.
    pub async fn rules(&self) -> Result<Vec<RuleMetrics>, MonitoringError> {
        let groups = self.prometheus.rules().await.map_err(|e| self.api(e))?;
        let rules: Vec<&prometheus::Rule> = groups.iter().flat_map(|g| &g.rules).collect();
        let alerts: BTreeSet<&str> = rules
            .iter()
            .filter(|r| r.kind == RuleKind::Alerting)
            .map(|r| r.name.as_str())
            .collect();
        let unknown: Vec<String> = self
            .plan
            .named
            .iter()
            .filter(|(name, _)| !alerts.contains(name.as_str()))
            .map(|(name, at)| {
                format!(
                    "{at}: alert `{name}` is defined by no rule Prometheus (service `{}`) loaded; it has: {}",
                    self.plan.node,
                    alerts.iter().copied().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(MonitoringError::UnknownAlerts(unknown));
        }
        Ok(rules
            .iter()
            .map(|r| RuleMetrics {
                rule: r.name.clone(),
                kind: match r.kind {
                    RuleKind::Alerting => "alerting",
                    RuleKind::Recording => "recording",
                }
                .into(),
                // Prometheus parsed it already; a query this parser cannot read names
                // nothing rather than stopping the run.
                metrics: promql::metric_names(&r.query)
                    .map(|m| m.into_iter().collect())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Waits until every target has been scraped once (right after start-up Prometheus
    /// may list no target yet), so that queries and alerts see the whole cluster from the
    /// first phase on; after `timeout` the run goes on with what there is.
    pub async fn first_scrape(&self, timeout: Duration) -> Result<(), MonitoringError> {
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.prometheus.targets().await.map_err(|e| self.api(e))?;
            let scraped = !targets.is_empty() && targets.iter().all(|t| t.health != "unknown");
            if scraped || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The metric names the targets expose now.
    pub async fn exposed_now(&self) -> Result<BTreeSet<String>, MonitoringError> {
        self.names(None).await
    }

    /// The metric names any target exposed from `from` on the run clock until now: a
    /// labelled counter appears only with its first event (a failed peer send), which
    /// the drill's fault may be.
    pub async fn exposed_since(&self, from: Micros) -> Result<BTreeSet<String>, MonitoringError> {
        let now = self.epoch_unix + self.epoch.elapsed().as_secs_f64();
        self.names(Some((self.epoch_unix + from as f64 / 1e6, now)))
            .await
    }

    async fn names(&self, range: Option<(f64, f64)>) -> Result<BTreeSet<String>, MonitoringError> {
        let names = self
            .prometheus
            .metric_names(range)
            .await
            .map_err(|e| self.api(e))?;
        Ok(names.into_iter().collect())
    }

    /// Starts polling the active alerts every `poll`, until the returned watch stops.
    pub fn watch(&self) -> AlertWatch {
        let (stop, mut stopped) = watch::channel(false);
        let prometheus = self.prometheus.clone();
        let poll = self.plan.poll;
        let epoch = self.epoch;
        let task = tokio::spawn(async move {
            let mut w = Watched::default();
            let mut active: BTreeMap<(String, BTreeMap<String, String>), AlertState> =
                BTreeMap::new();
            let mut ticks = tokio::time::interval(poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                w.polls += 1;
                let answer = prometheus.alerts().await;
                let at = epoch.elapsed().as_micros() as Micros;
                let alerts = match answer {
                    Ok(a) => a,
                    Err(e) => {
                        w.errors += 1;
                        w.first_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                };
                let now: BTreeMap<_, _> = alerts
                    .into_iter()
                    .map(|a| {
                        let mut labels = a.labels;
                        labels.remove("alertname");
                        let state = match a.state {
                            prometheus::AlertState::Pending => AlertState::Pending,
                            prometheus::AlertState::Firing => AlertState::Firing,
                        };
                        ((a.name, labels), state)
                    })
                    .collect();
                for (id, _) in active.iter().filter(|(id, _)| !now.contains_key(*id)) {
                    w.observations
                        .push(observation(at, id, AlertState::Inactive));
                }
                for (id, state) in &now {
                    if active.get(id) != Some(state) {
                        w.observations.push(observation(at, id, *state));
                    }
                }
                active = now;
            }
            w
        });
        AlertWatch { stop, task }
    }

    /// Fetches every panel over `[from, to]` of the run clock into `out_dir/metrics/`.
    pub async fn panels(
        &self,
        from: Micros,
        to: Micros,
        out_dir: &Path,
    ) -> Result<(Vec<PanelRecord>, Vec<PanelSeries>), MonitoringError> {
        let mut records = Vec::new();
        let mut drawn = Vec::new();
        for p in &self.plan.dashboards {
            let (series, error) = self
                .fetch(
                    &p.title,
                    &p.query,
                    &p.unit,
                    (from, to),
                    &out_dir.join(&p.file),
                )
                .await?;
            drawn.push(PanelSeries {
                title: p.title.clone(),
                unit: p.unit.clone(),
                lines: series
                    .iter()
                    .map(|s| PanelLine {
                        labels: s.labels.clone(),
                        points: s
                            .points
                            .iter()
                            .map(|&(t, v)| (self.run_clock(t), v))
                            .collect(),
                    })
                    .collect(),
            });
            records.push(PanelRecord {
                title: p.title.clone(),
                query: p.query.clone(),
                unit: p.unit.clone(),
                file: p.file.clone(),
                series: series.len(),
                error,
            });
        }
        Ok((records, drawn))
    }

    /// Fetches each phase query SLO over its phase (`windows` by phase) into
    /// `out_dir/metrics/`, where the samples can be recounted.
    pub async fn slo_samples(
        &self,
        windows: &BTreeMap<Phase, (Micros, Micros)>,
        out_dir: &Path,
    ) -> Result<Vec<QuerySamples>, MonitoringError> {
        let mut samples = Vec::new();
        for slo in &self.plan.slos {
            let (start, end) = windows.get(&slo.phase).copied().unwrap_or_default();
            let settled = start + slo.settle.as_micros() as Micros;
            let window = (settled.min(end), end);
            let (series, error) = self
                .fetch(&slo.name, &slo.query, "", window, &out_dir.join(&slo.file))
                .await?;
            samples.push(QuerySamples {
                phase: slo.phase,
                name: slo.name.clone(),
                file: slo.file.clone(),
                answer: match error {
                    Some(e) => Err(e),
                    None => Ok(series
                        .iter()
                        .flat_map(|s| s.points.iter().map(|&(_, v)| v))
                        .collect()),
                },
            });
        }
        Ok(samples)
    }

    /// One range query over `[from, to]` of the run clock, archived at `path`
    /// (`firedrill.panel/v1`); Prometheus's error is kept, not raised: it is the run's fact.
    async fn fetch(
        &self,
        title: &str,
        query: &str,
        unit: &str,
        (from, to): (Micros, Micros),
        path: &Path,
    ) -> Result<(Vec<prometheus::Series>, Option<String>), MonitoringError> {
        let artifact = |source| MonitoringError::Artifact {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(artifact)?;
        }
        let start = self.epoch_unix + from as f64 / 1e6;
        let end = self.epoch_unix + to as f64 / 1e6;
        let step = Duration::from_secs_f64(((end - start) / PANEL_POINTS).max(1.0));
        let (series, error) = match self.prometheus.query_range(query, start, end, step).await {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let archived = serde_json::json!({
            "schema": PANEL_SCHEMA,
            "title": title,
            "query": query,
            "unit": unit,
            "epoch_unix": self.epoch_unix,
            "start": start,
            "end": end,
            "step_s": step.as_secs_f64(),
            "error": error,
            "series": series,
        });
        let text = serde_json::to_string(&archived).expect("a JSON value serializes");
        std::fs::write(path, text).map_err(artifact)?;
        Ok((series, error))
    }

    /// A Unix time as the run clock (µs since the run's zero); before it counts as zero.
    fn run_clock(&self, unix_seconds: f64) -> Micros {
        ((unix_seconds - self.epoch_unix) * 1e6).max(0.0) as Micros
    }
}

/// What an exited Prometheus said: its `level=error` lines (the rule or configuration it
/// refused, in its own words), else the last lines of its log.
fn complaint(log: &[String]) -> String {
    let errors: Vec<&str> = log
        .iter()
        .filter(|l| l.contains("level=error"))
        .map(String::as_str)
        .collect();
    match errors.is_empty() {
        true => log[log.len().saturating_sub(LOG_LINES)..].join("\n"),
        false => errors.join("\n"),
    }
}

/// A run that fails before the watch is stopped does not leave it polling.
impl Drop for AlertWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The version of a `metrics/*.json` file (docs/monitoring.md).
pub const PANEL_SCHEMA: &str = "firedrill.panel/v1";

fn observation(
    at: Micros,
    (alert, labels): &(String, BTreeMap<String, String>),
    state: AlertState,
) -> AlertObservation {
    AlertObservation {
        at,
        alert: alert.clone(),
        labels: labels.clone(),
        state,
    }
}

#[derive(Default)]
pub struct Watched {
    pub polls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub observations: Vec<AlertObservation>,
}

pub struct AlertWatch {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Watched>,
}

impl AlertWatch {
    /// Stops polling and writes what was seen to `alerts.jsonl`.
    pub async fn stop(mut self, path: &Path) -> Result<Watched, MonitoringError> {
        let _ = self.stop.send(true);
        let watched = (&mut self.task).await.unwrap_or_default();
        let artifact = |source| MonitoringError::Artifact {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(artifact)?);
        for o in &watched.observations {
            let line = serde_json::to_string(o).expect("an observation serializes");
            writeln!(file, "{line}").map_err(artifact)?;
        }
        file.flush().map_err(artifact)?;
        Ok(watched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_prometheus_is_quoted_by_its_errors_else_by_its_last_lines() {
        let log: Vec<String> = [
            "level=info msg=\"Loading configuration file\"",
            "level=error component=\"rule manager\" msg=\"loading groups failed\" err=\"bad.rules.yml: parse error\"",
        ]
        .into_iter()
        .map(String::from)
        .chain((0..20).map(|i| format!("level=info msg=\"stopping {i}\"")))
        .chain(["level=error err=\"error loading config\"".to_string()])
        .collect();
        assert_eq!(
            complaint(&log),
            "level=error component=\"rule manager\" msg=\"loading groups failed\" err=\"bad.rules.yml: parse error\"\nlevel=error err=\"error loading config\""
        );
        let quiet: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        assert_eq!(complaint(&quiet).lines().count(), LOG_LINES);
        assert!(complaint(&quiet).ends_with("line 19"));
        assert_eq!(complaint(&[]), "");
    }
}
