//! Bring your own cluster: the RabbitMQ example under examples/rabbitmq/, end to end. Its
//! compose file, image recipes, load profile and scenarios are plain files written without
//! touching firedrill's code; these tests prove they work with the real binary against a
//! real 3-node RabbitMQ cluster. The first run builds the example's images from Debian
//! packages (debootstrap, a few minutes); later runs find them on the Docker engine.

mod common;

use common::{check, drill, firedrill, phase, reason, slo, SERIAL};
use firedrill::history::Phase;
use firedrill::summary::Verdict;

#[test]
fn the_rabbitmq_rolling_restart_passes_with_nothing_lost_and_every_node_converged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("examples/rabbitmq/scenarios/rolling-restart.yaml", 1);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Pass, "{:#?}", s.reasons);
    assert!(run.stdout.contains("verdict: PASS"));

    // The load really ran through the management API and RabbitMQ acknowledged writes.
    assert!(
        s.data.acked > 1000,
        "too few acknowledged writes: {:?}",
        s.data
    );
    assert_eq!((s.data.lost, s.data.unexpected), (0, 0), "{:?}", s.data);
    assert_eq!(s.reads.stale, 0, "{:?}", s.reads);
    assert!(s.reads.checked > 0, "{:?}", s.reads);

    // Every node answered the same parameter set, and it was not an empty answer.
    let converged = check(&s, "every node holds the same global parameters");
    assert!(converged.pass, "{converged:?}");
    let detail = &converged.detail;
    for node in ["rmq1", "rmq2", "rmq3"] {
        assert!(detail.contains(&format!("{node}: ")), "{detail}");
    }
    // md5sum of empty input: the nodes would "agree" on holding nothing.
    assert!(
        !detail.contains("d41d8cd98f00b204e9800998ecf8427e"),
        "{detail}"
    );

    // Each node was stopped and started, and its own client was served again afterwards.
    let recovered: Vec<&str> = s
        .recoveries
        .iter()
        .map(|r| {
            assert!(r.pass && r.to_first_ok_ms.is_some(), "{r:?}");
            r.node.as_str()
        })
        .collect();
    assert_eq!(recovered, ["rmq1", "rmq2", "rmq3"]);

    // The transcripts hold RabbitMQ's own words, and every node's log was collected.
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        report.contains("rabbit@rmq1"),
        "the transcript shows rabbitmqctl output"
    );
    for node in ["rmq1", "rmq2", "rmq3"] {
        let log = std::fs::read_to_string(out.path().join(format!("logs/{node}.log"))).unwrap();
        assert!(
            log.contains("Server startup complete"),
            "{node}.log: no boot in it"
        );
    }
}

#[test]
fn restarting_two_rabbitmq_nodes_at_once_is_caught_as_an_outage() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill(
        "examples/rabbitmq/scenarios/sabotage/restart-two-at-once.yaml",
        2,
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);
    // The third node pauses itself (pause_minority): for a while no node serves at all.
    let procedure = phase(&s, Phase::Procedure);
    let unavailable = slo(procedure, "max_unavailable");
    assert!(!unavailable.pass, "{procedure:#?}");
    reason(&s, "procedure phase: max_unavailable");
    // An outage, not data loss: the majority came back with every acknowledged write.
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
    assert!(s.data.acked > 0, "{:?}", s.data);
}

#[test]
fn the_rabbitmq_example_validates_and_keeps_its_twin_out_of_the_main_job() {
    let validate = firedrill(&[
        "validate",
        "examples/rabbitmq/scenarios",
        "examples/rabbitmq/scenarios/sabotage",
    ]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    let list = firedrill(&["list", "examples/rabbitmq/scenarios"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("rabbitmq-rolling-restart"));
    assert!(!list.stdout.contains("rabbitmq-restart-two-at-once"));
}
