//! Partition recovery and node replacement, with their sabotaged twins, end to end against
//! a real etcd cluster: faults injected from sidecars, convergence and time to recover.

mod common;

use std::process::Command;

use common::{check, drill, node, phase, reason, recount, slo, step, END_STATE, SERIAL};
use firedrill::history::Phase;
use firedrill::summary::{StepStatus, Verdict};

const CONVERGE: &str = "every member holds the same data";

#[test]
fn partition_recovery_elects_a_new_leader_heals_and_converges() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/partition-recovery.md", 21);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    // The query SLOs were judged on Prometheus's samples, archived where they can be recounted.
    for (phase, name, worst) in [
        (0, "every member is scraped", 3.0),
        (2, "no member without a leader", 1.0),
    ] {
        let slo = slo(&s.phases[phase], name);
        assert!(slo.pass && slo.observed == worst, "{slo:?}");
        let detail = slo
            .detail
            .as_deref()
            .expect("a query SLO says what it asked");
        let file = &detail[detail.rfind('(').unwrap() + 1..detail.len() - 1];
        assert!(out.path().join(file).is_file(), "{detail}");
    }
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    assert_eq!(s.reads.stale, 0, "{:?}", s.reads);
    assert!(s.reads.checked > 0, "{:?}", s.reads);
    let converge = check(&s, CONVERGE);
    assert!(converge.pass, "{converge:?}");
    assert!(
        converge.detail.starts_with("all 3 covered nodes agree: "),
        "{converge:?}"
    );
    // The heal step said the old leader should serve again within 15 s, and it did.
    assert_eq!(s.recoveries.len(), 1, "{:#?}", s.recoveries);
    let recovery = &s.recoveries[0];
    let to_first_ok = recovery
        .to_first_ok_ms
        .expect("the old leader served again");
    assert!(to_first_ok < 15_000.0, "{recovery:?}");
    assert_eq!(recovery.limit_ms, Some(15_000.0));
    assert!(recovery.pass);
    let gate = format!(
        "{} serves again within 15000 ms after step {}",
        recovery.node, recovery.step
    );
    assert!(check(&s, &gate).pass, "{:?}", check(&s, &gate));
    // The isolated member's clients saw the partition: the load measured it.
    let procedure = phase(&s, Phase::Procedure);
    assert!(procedure.errors > 0, "{procedure:#?}");
    recount::load_and_phases(out.path(), &s);
    let partition = std::fs::read_dir(out.path().join("steps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("cut-the-leader-off"))
        .expect("a transcript for the partition step");
    let transcript = std::fs::read_to_string(partition).unwrap();
    assert!(
        transcript.contains("iptables -A FIREDRILL-IN"),
        "{transcript}"
    );
}

#[test]
fn a_partition_that_never_heals_is_caught_by_convergence() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/partition-never-heals.yaml", 22);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    let converge = check(&s, CONVERGE);
    assert!(!converge.pass, "{converge:?}");
    assert!(
        converge.detail.starts_with("answers differ after "),
        "{converge:?}"
    );
    reason(&s, &format!("check `{CONVERGE}` failed"));
}

#[test]
fn a_partition_without_a_majority_is_caught_as_unavailability() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/sabotage/partition-cuts-majority.yaml", 23);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    reason(&s, "procedure phase: max_unavailable");
    // Healed afterwards: the replicas agree and nothing acknowledged was lost.
    assert!(check(&s, CONVERGE).pass, "{:?}", check(&s, CONVERGE));
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    assert!(s.data.acked > 0, "{:?}", s.data);
    recount::data(out.path(), &s);
}

#[test]
fn node_replacement_joins_a_new_member_and_converges() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/node-replacement.md", 24);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    // The production rule saw the member go: pending within seconds of the kill (its
    // `for: 3m` is longer than the drill), and nothing was active before it.
    let m = s.monitoring.as_ref().expect("a monitoring block");
    let down = &m.expectations[0];
    assert_eq!(down.alert, "etcdMembersDown");
    assert!(
        down.pass && down.pending_after_ms.is_some_and(|ms| ms < 10_000.0),
        "{down:?}"
    );
    assert!(m.quiet.len() == 1 && m.quiet[0].pass, "{:?}", m.quiet);
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    let converge = check(&s, CONVERGE);
    assert!(converge.pass, "{converge:?}");
    for member in ["etcd1: ", "etcd2: ", "etcd4: "] {
        assert!(converge.detail.contains(member), "{converge:?}");
    }
    let membership = step(&s, "Verify the membership");
    assert_eq!(membership.status, StepStatus::Passed);
    assert!(
        membership.output.stdout.contains(", etcd4, "),
        "{membership:?}"
    );
    // The destroyed member is recorded and not judged; every other one ends up healthy.
    let lost = node(&s, "etcd3");
    assert!(!lost.expected, "{lost:?}");
    let because = lost
        .not_expected_because
        .as_deref()
        .expect("a reason etcd3 is not expected");
    assert!(because.contains("destroyed"), "{lost:?}");
    let expected: Vec<&str> = s
        .nodes
        .iter()
        .filter(|n| n.expected)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(expected, ["etcd1", "etcd2", "etcd4", "prometheus"]);
    for n in s.nodes.iter().filter(|n| n.expected) {
        assert!(n.running && n.healthy && n.state == "running", "{n:?}");
    }
    let end = check(&s, END_STATE);
    assert!(end.pass, "{end:?}");
    assert!(
        end.detail.starts_with(
            "4 of 4 expected nodes running and healthy: etcd1, etcd2, etcd4, prometheus"
        ),
        "{end:?}"
    );
    assert!(end.detail.contains("not judged: etcd3 ("), "{end:?}");
    // The twin's symptom is absent here: the new member joined the existing cluster.
    let log = std::fs::read_to_string(out.path().join("logs/etcd1.log")).unwrap();
    assert!(!log.contains("cluster ID mismatch"), "etcd1 saw a stranger");
    recount::data(out.path(), &s);
}

/// The part of `line` after `marker` up to the next `)`, `,` or space.
fn id_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let end = rest.find([')', ',', ' ']).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn a_replacement_started_as_a_new_cluster_is_caught() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/sabotage/replacement-starts-new-cluster.yaml", 25);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    reason(&s, "step 7 `Wait until etcd4 is healthy` failed");
    let end = check(&s, END_STATE);
    assert!(!end.pass, "{end:?}");
    assert!(
        end.detail.contains("etcd4 is running but not healthy"),
        "{end:?}"
    );
    // etcd's own words, in the archived logs: the existing members refuse messages from
    // etcd4, whose cluster ID is not theirs, and etcd4 sees its own requests refused by them.
    let log = |n: &str| std::fs::read_to_string(out.path().join(format!("logs/{n}.log"))).unwrap();
    let peers = log("etcd1");
    let refused = peers
        .lines()
        .find(|l| l.contains("rafthttp: request cluster ID mismatch (got "))
        .unwrap_or_else(|| panic!("etcd1 never refused a stranger:\n{peers}"));
    let stranger = id_after(refused, "(got ").unwrap();
    let ours = id_after(refused, " want ").unwrap();
    assert_ne!(stranger, ours, "{refused}");
    assert!(
        log("etcd2").contains(&format!(
            "rafthttp: request cluster ID mismatch (got {stranger} want {ours})"
        )),
        "etcd2 did not refuse etcd4's cluster {stranger}"
    );
    // The stranger is etcd4: started as a new cluster, it has the other cluster ID.
    let etcd4 = log("etcd4");
    assert!(
        etcd4.contains("ETCD_INITIAL_CLUSTER_STATE=new"),
        "etcd4 was not started as a new cluster"
    );
    assert!(
        etcd4.contains(&format!("={ours}, local={stranger})")),
        "etcd4's `request sent was ignored (cluster ID mismatch: peer[…]={ours}, local={stranger})` is missing"
    );
}

/// Whether this kernel has tc netem, asked without firedrill: tc in a throwaway container of
/// the fault image. `Some(what tc said)` when it has not.
fn netem_missing() -> Option<String> {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-add",
            "NET_ADMIN",
            "firedrill/debian-etcd:bookworm",
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
        ])
        .output()
        .expect("docker CLI");
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })
}

#[test]
fn netem_delays_the_node_where_the_kernel_has_it_and_says_so_where_it_does_not() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let missing = netem_missing();
    let (run, s, out) = drill("harness/tests/fixtures/quick/netem.yaml", 26);
    let netem = step(&s, "Slow etcd1 down");
    match missing {
        Some(tc_said) => {
            // This project's machines: no sch_netem.
            assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
            assert_eq!(netem.status, StepStatus::Failed, "{netem:?}");
            let expected = format!(
                "network emulation (tc netem) is not available on this kernel ({tc_said}): latency and loss faults cannot run here; use a partition or a `reject` fault instead"
            );
            assert_eq!(netem.error.as_deref(), Some(expected.as_str()));
            assert_eq!(
                s.reasons,
                [format!("step 1 `Slow etcd1 down` failed: {expected}")]
            );
            assert_eq!(step(&s, "Keep etcd1 slow").status, StepStatus::Skipped);
        }
        None => {
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert_eq!(netem.status, StepStatus::Passed, "{netem:?}");
            assert_eq!(
                netem.output.stdout.trim(),
                "[etcd1] tc qdisc replace dev eth0 root netem delay 50ms"
            );
            // The delay is in the history: while it held, every answer from etcd1 took at
            // least 50 ms.
            let from = netem.started + netem.duration_ms * 1000;
            let until = step(&s, "Heal").started;
            let delayed: Vec<_> = recount::history(out.path())
                .into_iter()
                .filter(|o| o.node == "etcd1" && o.outcome == "ok")
                .filter(|o| o.t_call >= from && o.t_return <= until)
                .collect();
            assert!(
                delayed.len() >= 5,
                "too few operations on etcd1 while it was slow: {delayed:?}"
            );
            for o in &delayed {
                assert!(o.t_return - o.t_call >= 50_000, "not delayed: {o:?}");
            }
        }
    }
}
