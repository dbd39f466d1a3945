//! The monitoring stack's files, proved with the real tools: the etcd alert rules pass
//! `promtool check` and their unit tests in the Prometheus image, a twin with a misspelt
//! metric fails them, every metric the rules name is exported by real etcd 3.4 and 3.5
//! members, and the monitored topology stays the bundled cluster plus Prometheus.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{firedrill, repo, SERIAL};
use firedrill_spec::compose::Compose;
use serde::Deserialize;

const PROMETHEUS: &str = "firedrill/prometheus:2.42.0";
const ETCD_IMAGES: [&str; 2] = ["firedrill/etcd:3.4.23", "firedrill/etcd:3.5.1"];
const RULES: &str = "compose/prometheus/rules/etcd.rules.yml";
const RULE_TESTS: &str = "compose/prometheus/rules/etcd.rules.test.yml";

/// Builds the bundled images the engine lacks, once per test binary.
fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let missing = [PROMETHEUS, ETCD_IMAGES[0], ETCD_IMAGES[1]]
            .iter()
            .any(|tag| !docker(&["image", "inspect", tag]).status.success());
        if missing {
            let build = firedrill(&["images", "build"]);
            assert_eq!(
                build.code, 0,
                "firedrill images build: {}{}",
                build.stdout, build.stderr
            );
        }
    });
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

struct Run {
    ok: bool,
    text: String,
}

/// `promtool <args>` in the Prometheus image, with `dir` mounted read-only as its working
/// directory.
fn promtool(dir: &Path, args: &[&str]) -> Run {
    images();
    let mount = format!("{}:/rules:ro", dir.display());
    let mut argv = vec![
        "run", "--rm", "-v", &mount, "-w", "/rules", PROMETHEUS, "promtool",
    ];
    argv.extend(args);
    let out = docker(&argv);
    Run {
        ok: out.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The rules and their unit tests in a directory of their own, with the metric of
/// etcdNoLeader misspelt.
fn sabotaged() -> (tempfile::TempDir, String) {
    let rules = std::fs::read_to_string(repo().join(RULES)).unwrap();
    let misspelt = rules.replace("etcd_server_has_leader{", "etcd_server_has_leadr{");
    assert_ne!(misspelt, rules, "the rules name etcd_server_has_leader");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("etcd.rules.yml"), &misspelt).unwrap();
    std::fs::copy(
        repo().join(RULE_TESTS),
        dir.path().join("etcd.rules.test.yml"),
    )
    .unwrap();
    (dir, misspelt)
}

#[test]
fn the_rules_pass_promtool_check_and_their_unit_tests() {
    let rules_dir = repo().join("compose/prometheus/rules");
    let check = promtool(&rules_dir, &["check", "rules", "etcd.rules.yml"]);
    assert!(check.ok, "promtool check rules:\n{}", check.text);
    assert!(
        check.text.contains("SUCCESS: 9 rules found"),
        "{}",
        check.text
    );

    let test = promtool(&rules_dir, &["test", "rules", "etcd.rules.test.yml"]);
    assert!(test.ok, "promtool test rules:\n{}", test.text);
    assert!(test.text.contains("SUCCESS"), "{}", test.text);

    // The configuration the monitored topology runs, mounted where it runs, with the rule
    // files it loads from there.
    let mount_dir = repo().join("compose/prometheus");
    let mount = format!("{}:/etc/prometheus:ro", mount_dir.display());
    let out = docker(&[
        "run",
        "--rm",
        "-v",
        &mount,
        PROMETHEUS,
        "promtool",
        "check",
        "config",
        "/etc/prometheus/prometheus.yml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool check config: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SUCCESS: 9 rules found"), "{text}");
}

#[test]
fn a_misspelt_metric_in_etcd_no_leader_fails_its_unit_test() {
    let (dir, _) = sabotaged();
    // Still valid PromQL: only the unit test can tell.
    let check = promtool(dir.path(), &["check", "rules", "etcd.rules.yml"]);
    assert!(check.ok, "promtool check rules:\n{}", check.text);

    let test = promtool(dir.path(), &["test", "rules", "etcd.rules.test.yml"]);
    assert!(
        !test.ok,
        "the misspelt rule passed its unit test:\n{}",
        test.text
    );
    assert!(
        test.text.contains("alertname: etcdNoLeader, time: 1m30s"),
        "{}",
        test.text
    );
    assert!(test.text.contains("got:[]"), "{}", test.text);
    // The other rules still pass: the failure is the misspelt one's alone.
    let failures = test.text.matches("alertname: ").count();
    assert_eq!(failures, 1, "{}", test.text);
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<RuleEntry>,
}

#[derive(Deserialize)]
struct RuleEntry {
    expr: String,
}

/// The metric names the rules' expressions select: identifiers outside label matchers,
/// label lists, durations and strings that are neither functions nor PromQL keywords.
fn metric_names(rules_yaml: &str) -> BTreeSet<String> {
    let file: RuleFile = serde_saphyr::from_str(rules_yaml).expect("rules parse");
    let strip = regex::Regex::new(
        r#""[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#,
    )
    .unwrap();
    let ident = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?").unwrap();
    const KEYWORDS: [&str; 5] = ["bool", "and", "or", "unless", "offset"];
    let mut names = BTreeSet::new();
    for rule in file.groups.iter().flat_map(|g| &g.rules) {
        let bare = strip.replace_all(&rule.expr, " ");
        for m in ident.find_iter(&bare) {
            let word = m.as_str();
            let preceded_by_digit = bare[..m.start()]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_digit() || c == '.');
            if word.ends_with('(') || KEYWORDS.contains(&word) || preceded_by_digit {
                continue;
            }
            names.insert(word.to_string());
        }
    }
    names
}

/// Removes the container when dropped, also when an assertion fails.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

/// Two members in one container; once the first is healthy the second is killed, so the
/// first also exports the metrics etcd creates only when a peer fails. Returns the
/// first member's /metrics.
fn exposition_with_a_lost_peer(image: &str) -> String {
    let script = "\
        flags='--initial-cluster a=http://127.0.0.1:2380,b=http://127.0.0.1:22380 --initial-cluster-token t'; \
        etcd --name a --data-dir /tmp/a $flags --initial-advertise-peer-urls http://127.0.0.1:2380 \
          --listen-peer-urls http://127.0.0.1:2380 --listen-client-urls http://127.0.0.1:2379 \
          --advertise-client-urls http://127.0.0.1:2379 2>/dev/null & \
        etcd --name b --data-dir /tmp/b $flags --initial-advertise-peer-urls http://127.0.0.1:22380 \
          --listen-peer-urls http://127.0.0.1:22380 --listen-client-urls http://127.0.0.1:22379 \
          --advertise-client-urls http://127.0.0.1:22379 2>/dev/null & \
        b=$!; \
        until curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:2379/health; do sleep 0.2; done; \
        kill $b; wait";
    let name = format!(
        "fd-metrics-{}-{}",
        std::process::id(),
        image.replace(['/', ':', '.'], "-")
    );
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "firedrill.managed=true",
        image,
        "sh",
        "-c",
        script,
    ]);
    assert!(
        run.status.success(),
        "docker run {image}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let _container = Container(name.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = docker(&[
            "exec",
            &name,
            "curl",
            "-fsS",
            "--max-time",
            "2",
            "http://127.0.0.1:2379/metrics",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("\netcd_network_peer_sent_failures_total{") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{image} never reported a failed send to its lost peer:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The names the rules select that the exposition has no sample of. `up` is Prometheus's own.
fn missing(names: &BTreeSet<String>, exposition: &str) -> Vec<String> {
    let exported: BTreeSet<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    names
        .iter()
        .filter(|n| *n != "up" && !exported.contains(n.as_str()))
        .cloned()
        .collect()
}

#[test]
fn every_metric_the_rules_name_is_exported_by_etcd_3_4_and_3_5() {
    images();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let names = metric_names(&std::fs::read_to_string(repo().join(RULES)).unwrap());
    assert_eq!(
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "etcd_disk_backend_commit_duration_seconds_bucket",
            "etcd_disk_wal_fsync_duration_seconds_bucket",
            "etcd_network_peer_sent_failures_total",
            "etcd_server_has_leader",
            "etcd_server_leader_changes_seen_total",
            "etcd_server_proposals_failed_total",
            "grpc_server_handled_total",
            "up",
        ]
    );
    let (_dir, misspelt) = sabotaged();
    let misspelt = metric_names(&misspelt);
    for image in ETCD_IMAGES {
        let exposition = exposition_with_a_lost_peer(image);
        assert_eq!(
            missing(&names, &exposition),
            Vec::<String>::new(),
            "{image}"
        );
        assert_eq!(
            missing(&misspelt, &exposition),
            ["etcd_server_has_leadr"],
            "{image}"
        );
    }
}

/// The scrape targets written in prometheus.yml, static and discovered by name.
fn scrape_targets() -> (Vec<String>, Vec<String>) {
    #[derive(Deserialize)]
    struct Config {
        scrape_configs: Vec<Job>,
    }
    #[derive(Deserialize)]
    struct Job {
        job_name: String,
        #[serde(default)]
        static_configs: Vec<Static>,
        #[serde(default)]
        dns_sd_configs: Vec<Dns>,
    }
    #[derive(Deserialize)]
    struct Static {
        targets: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Dns {
        names: Vec<String>,
    }
    let text = std::fs::read_to_string(repo().join("compose/prometheus/prometheus.yml")).unwrap();
    let config: Config = serde_saphyr::from_str(&text).expect("prometheus.yml parses");
    assert_eq!(config.scrape_configs.len(), 1);
    let job = &config.scrape_configs[0];
    assert_eq!(job.job_name, "etcd", "the rules select job=~\".*etcd.*\"");
    let statics = job
        .static_configs
        .iter()
        .flat_map(|s| s.targets.clone())
        .collect();
    let dns = job
        .dns_sd_configs
        .iter()
        .flat_map(|d| d.names.clone())
        .collect();
    (statics, dns)
}

#[test]
fn the_monitored_topology_is_the_bundled_cluster_plus_prometheus() {
    let plain = plus_prometheus("compose/etcd-3.yaml", "compose/etcd-3-monitored.yaml");

    // Prometheus scrapes every member: those that start with the cluster by name, the
    // spares while they run.
    let (statics, dns) = scrape_targets();
    let members = |with_cluster: bool| -> Vec<String> {
        plain
            .services
            .iter()
            .filter(|s| s.starts_with_cluster() == with_cluster)
            .map(|s| s.name.clone())
            .collect()
    };
    let with_port: Vec<String> = members(true).iter().map(|m| format!("{m}:2379")).collect();
    assert_eq!(statics, with_port);
    assert_eq!(dns, members(false));
}

#[test]
fn the_monitored_canary_topology_is_the_canary_cluster_plus_prometheus() {
    plus_prometheus("compose/etcd-3-lb.yaml", "compose/etcd-3-lb-monitored.yaml");
}

/// `monitored` holds every service of `plain` unchanged, and one more: a Prometheus that
/// publishes only its API and mounts files of the repository read-only. Returns `plain`.
fn plus_prometheus(plain: &str, monitored: &str) -> Compose {
    let plain = Compose::load(&repo().join(plain)).expect(plain);
    let monitored = Compose::load(&repo().join(monitored)).expect(monitored);
    for s in &plain.services {
        let twin = monitored
            .service(&s.name)
            .unwrap_or_else(|| panic!("{} lacks {}", monitored.file.display(), s.name));
        assert_eq!(
            format!("{twin:?}"),
            format!("{s:?}"),
            "{} differs between {} and {}",
            s.name,
            plain.file.display(),
            monitored.file.display()
        );
    }
    assert_eq!(plain.volumes, monitored.volumes);
    let extra: Vec<_> = monitored
        .services
        .iter()
        .filter(|s| plain.service(&s.name).is_none())
        .collect();
    assert_eq!(extra.len(), 1);
    let prometheus = extra[0];
    assert_eq!(prometheus.name, "prometheus");
    assert_eq!(prometheus.image, PROMETHEUS);
    assert!(prometheus.starts_with_cluster());
    // No client port: the load's default targets stay the members.
    assert!(prometheus.ports.iter().all(|p| p.container_port == 9090));
    assert!(prometheus
        .healthcheck
        .as_ref()
        .unwrap()
        .test
        .join(" ")
        .contains("/-/ready"));
    for m in &prometheus.mounts {
        assert!(m.read_only, "{m:?}");
        let firedrill_spec::compose::MountSource::Bind(path) = &m.source else {
            panic!("{m:?} is not a file of the repository");
        };
        assert!(path.exists(), "{}", path.display());
    }
    plain
}

/// The sabotaged twins of the monitored topology differ from it only by their sabotage:
/// the rules directory mounted, or etcd3 not started with the cluster.
#[test]
fn the_sabotaged_monitored_topologies_differ_only_by_their_sabotage() {
    let load = |f: &str| Compose::load(&repo().join(f)).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    let monitored = load("compose/etcd-3-monitored.yaml");
    let rules_mount = |c: &Compose| {
        let p = c.service("prometheus").unwrap();
        let m = p
            .mounts
            .iter()
            .find(|m| m.target == "/etc/prometheus/rules")
            .unwrap();
        let firedrill_spec::compose::MountSource::Bind(path) = &m.source else {
            panic!("{m:?} is not a directory of the repository");
        };
        path.canonicalize().unwrap()
    };
    for (file, down) in [
        ("compose/sabotage/etcd-3-monitored-misspelt-rule.yaml", None),
        (
            "compose/sabotage/etcd-3-monitored-member-down.yaml",
            Some("etcd3"),
        ),
    ] {
        let twin = load(file);
        assert_eq!(twin.volumes, monitored.volumes, "{file}");
        assert_eq!(twin.services.len(), monitored.services.len(), "{file}");
        for s in &monitored.services {
            let mut t = twin.service(&s.name).unwrap().clone();
            if Some(s.name.as_str()) == down {
                assert_eq!(t.profiles, ["down"], "{file}: {} starts", s.name);
                t.profiles.clear();
            }
            if s.name == "prometheus" {
                continue;
            }
            assert_eq!(
                format!("{t:?}"),
                format!("{s:?}"),
                "{file}: {} differs",
                s.name
            );
        }
        let (ours, theirs) = (rules_mount(&monitored), rules_mount(&twin));
        assert_eq!(ours == theirs, down.is_some(), "{file}: {theirs:?}");
    }
}
