//! The Prometheus client against the real server: the Prometheus image alone, scraping
//! itself, with rules that fire at once, stay pending, or fail to evaluate.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::firedrill;
use firedrill::prometheus::{AlertState, Prometheus, RuleHealth, RuleKind, RuleState};

const IMAGE: &str = "firedrill/prometheus:2.42.0";

const CONFIG: &str = "\
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [rules.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: [\"localhost:9090\"] }]
";

const RULES: &str = "\
groups:
  - name: client
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        annotations: { summary: fires at once }
      - alert: PendingForAnHour
        expr: up == 1
        for: 1h
      # Two series with the same labels once the names are dropped: fails every evaluation.
      - record: job:up:broken
        expr: '{__name__=~\"up|scrape_duration_seconds\"} * 0'
";

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

/// Removes the container when dropped, also when an assertion fails.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Retries `probe` every 200 ms until it gives a value or `limit` runs out.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what} within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn the_client_reads_a_live_prometheus() {
    if !docker(&["image", "inspect", IMAGE]).status.success() {
        let build = firedrill(&["images", "build"]);
        assert_eq!(build.code, 0, "{}{}", build.stdout, build.stderr);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let name = format!("fd-prometheus-client-{}", std::process::id());
    let mount = format!("{}:/etc/prometheus:ro", dir.path().display());
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "firedrill.managed=true",
        "-p",
        "127.0.0.1::9090",
        "-v",
        &mount,
        IMAGE,
        "prometheus",
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/var/lib/prometheus",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let _container = Container(name.clone());
    let started = Instant::now();
    let port = String::from_utf8_lossy(&docker(&["port", &name, "9090/tcp"]).stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next().map(str::to_string))
        .expect("a published port");
    let base = format!("http://127.0.0.1:{port}");
    let prometheus = Prometheus::new(&base);
    assert_eq!(prometheus.base_url(), base);

    until(Duration::from_secs(30), "ready", || async {
        prometheus.ready().await.map_err(|e| e.to_string())
    })
    .await;
    eprintln!("ready {:?} after docker run", started.elapsed());

    // Scraped once, and every rule evaluated since.
    let up = until(Duration::from_secs(20), "a scrape of itself", || async {
        match prometheus.query("up", None).await {
            Ok(s) if !s.is_empty() => Ok(s),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].labels["job"], "prometheus");
    assert_eq!(up[0].labels["instance"], "localhost:9090");
    assert_eq!(up[0].value, 1.0);
    // Evaluated since the first scrape: the recording rule fails once both series exist.
    let groups = until(
        Duration::from_secs(20),
        "rules evaluated after a scrape",
        || async {
            let groups = prometheus.rules().await.map_err(|e| e.to_string())?;
            let failing = groups
                .iter()
                .flat_map(|g| &g.rules)
                .any(|r| r.name == "job:up:broken" && r.health == RuleHealth::Err);
            if failing {
                Ok(groups)
            } else {
                Err(format!("{groups:?}"))
            }
        },
    )
    .await;

    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "client");
    assert_eq!(groups[0].file, "/etc/prometheus/rules.yml");
    assert_eq!(groups[0].interval, Duration::from_secs(1));
    let rule = |n: &str| groups[0].rules.iter().find(|r| r.name == n).unwrap();
    let pending = rule("PendingForAnHour");
    assert_eq!(pending.kind, RuleKind::Alerting);
    assert_eq!(pending.duration, Some(Duration::from_secs(3600)));
    assert_eq!(pending.state, Some(RuleState::Pending));
    assert_eq!(pending.query, "up == 1");
    assert_eq!(rule("AlwaysFiring").state, Some(RuleState::Firing));
    let broken = rule("job:up:broken");
    assert_eq!(broken.kind, RuleKind::Recording);
    assert_eq!(broken.health, RuleHealth::Err);
    assert_eq!((broken.duration, broken.state), (None, None));
    assert!(
        broken
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("same labelset"),
        "{broken:?}"
    );

    let alerts = prometheus.alerts().await.unwrap();
    let alert = |n: &str| alerts.iter().find(|a| a.name == n).unwrap();
    let firing = alert("AlwaysFiring");
    assert_eq!(firing.state, AlertState::Firing);
    assert_eq!(firing.value, 1.0);
    assert_eq!(firing.annotations["summary"], "fires at once");
    let pending = alert("PendingForAnHour");
    assert_eq!(pending.state, AlertState::Pending);
    assert_eq!(pending.labels["instance"], "localhost:9090");
    let since = pending.active_at.expect("an active alert has a start");
    assert!((now() - since.timestamp() as f64).abs() < 60.0, "{since}");

    let scalar = prometheus.query("1 + 1", Some(now())).await.unwrap();
    assert_eq!(scalar.len(), 1);
    assert!(scalar[0].labels.is_empty());
    assert_eq!(scalar[0].value, 2.0);

    let (end, series) = until(
        Duration::from_secs(10),
        "two scrapes in a range",
        || async {
            let end = now();
            match prometheus
                .query_range("up", end - 5.0, end, Duration::from_secs(1))
                .await
            {
                Ok(s) if s.len() == 1 && s[0].points.len() >= 2 => Ok((end, s)),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    // Prometheus keeps times to the millisecond.
    assert!(series[0]
        .points
        .iter()
        .all(|&(t, v)| v == 1.0 && t <= end + 0.001));
    assert!(series[0]
        .points
        .windows(2)
        .all(|w| (w[1].0 - w[0].0 - 1.0).abs() < 1e-6));

    let err = prometheus
        .query("sum(rate(up[1m])", None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), Some("bad_data"));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{base}/api/v1/query?query=")),
        "{text}"
    );
    assert!(text.contains("parse error"), "{text}");
}
