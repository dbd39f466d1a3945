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
use firedrill_types::history::Micros;
use firedrill_types::monitoring::{AlertObservation, AlertState, PanelRecord, RuleMetrics};
use tokio::sync::watch;

use crate::cluster::{self, Cluster};
use crate::prometheus::{self, Prometheus, PrometheusError, RuleKind};

/// Log lines of an exited Prometheus kept in the error.
const LOG_LINES: usize = 8;
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
                let log = cluster.log_tail(&plan.node, LOG_LINES).await.join("\n");
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

    /// The metric names the targets expose now, once every target has been scraped
    /// (right after start-up Prometheus may list no target yet).
    pub async fn exposed_now(
        &self,
        timeout: Duration,
    ) -> Result<BTreeSet<String>, MonitoringError> {
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.prometheus.targets().await.map_err(|e| self.api(e))?;
            let scraped = !targets.is_empty() && targets.iter().all(|t| t.health != "unknown");
            if scraped || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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
    ) -> Result<Vec<PanelRecord>, MonitoringError> {
        if self.plan.dashboards.is_empty() {
            return Ok(Vec::new());
        }
        let dir = out_dir.join("metrics");
        std::fs::create_dir_all(&dir).map_err(|source| MonitoringError::Artifact {
            path: dir.clone(),
            source,
        })?;
        let start = self.epoch_unix + from as f64 / 1e6;
        let end = self.epoch_unix + to as f64 / 1e6;
        let step = Duration::from_secs_f64(((end - start) / PANEL_POINTS).max(1.0));
        let mut records = Vec::new();
        for p in &self.plan.dashboards {
            let answer = self
                .prometheus
                .query_range(&p.query, start, end, step)
                .await;
            let (series, error) = match answer {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let archived = serde_json::json!({
                "schema": PANEL_SCHEMA,
                "title": p.title,
                "query": p.query,
                "unit": p.unit,
                "epoch_unix": self.epoch_unix,
                "start": start,
                "end": end,
                "step_s": step.as_secs_f64(),
                "error": error,
                "series": series,
            });
            let path = out_dir.join(&p.file);
            let text = serde_json::to_string(&archived).expect("a JSON value serializes");
            std::fs::write(&path, text)
                .map_err(|source| MonitoringError::Artifact { path, source })?;
            records.push(PanelRecord {
                title: p.title.clone(),
                query: p.query.clone(),
                unit: p.unit.clone(),
                file: p.file.clone(),
                series: series.len(),
                error,
            });
        }
        Ok(records)
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
