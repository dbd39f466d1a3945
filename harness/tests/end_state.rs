//! The false-PASS twins: procedures whose load and data look fine while the cluster is left
//! short of a member. Two of three etcd members keep quorum, so only the end-state check
//! (every expected node running and healthy at the end) can fail them, and it must name the
//! member, its state and, where the member said why, its own words.

mod common;

use common::{check, drill, node, reason, END_STATE, SERIAL};
use firedrill::summary::Verdict;

#[test]
fn a_member_restarted_on_a_wiped_disk_fails_the_end_state_check() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, out) = drill("scenarios/sabotage/member-rejoins-with-empty-disk.yaml", 41);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);

    let end = check(&s, END_STATE);
    assert!(!end.pass, "{end:?}");
    assert!(
        end.detail
            .starts_with("2 of 3 expected nodes running and healthy; etcd3 is exited"),
        "{end:?}"
    );
    assert!(
        end.detail.contains("has already been bootstrapped"),
        "the member's own words are missing: {end:?}"
    );
    reason(&s, &format!("check `{END_STATE}` failed"));

    let etcd3 = node(&s, "etcd3");
    assert!(
        etcd3.expected,
        "started again by a step: expected {etcd3:?}"
    );
    assert!(!etcd3.running && !etcd3.healthy, "{etcd3:?}");
    assert_eq!(etcd3.state, "exited", "{etcd3:?}");
    assert!(
        etcd3
            .log_tail
            .iter()
            .any(|l| l.contains("has already been bootstrapped")),
        "{etcd3:?}"
    );
    for name in ["etcd1", "etcd2"] {
        let n = node(&s, name);
        assert!(n.expected && n.running && n.healthy, "{n:?}");
    }
    // The archived log has the same line.
    let log = std::fs::read_to_string(out.path().join("logs/etcd3.log")).unwrap();
    assert!(log.contains("has already been bootstrapped"), "{log}");

    // Two members agreeing is not convergence: the missing one is named.
    let converge = check(&s, "every member holds the same data");
    assert!(!converge.pass, "{converge:?}");
    assert!(
        converge
            .detail
            .contains("not covered, so convergence is not shown: etcd3"),
        "{converge:?}"
    );
    // What the load saw looked healthy: only the end state catches it.
    assert_eq!(s.data.lost, 0, "{:?}", s.data);
}

#[test]
fn a_member_never_started_again_fails_the_end_state_check() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (run, s, _out) = drill("scenarios/sabotage/member-never-restarted.yaml", 42);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.verdict, Verdict::Fail);

    let end = check(&s, END_STATE);
    assert!(!end.pass, "{end:?}");
    assert!(
        end.detail
            .starts_with("2 of 3 expected nodes running and healthy; etcd2 is exited"),
        "{end:?}"
    );
    // The end state is the only thing wrong.
    assert_eq!(
        s.reasons,
        [format!("check `{END_STATE}` failed: {}", end.detail)],
        "{:#?}",
        s.reasons
    );

    let etcd2 = node(&s, "etcd2");
    assert!(etcd2.expected, "{etcd2:?}");
    assert!(!etcd2.running && !etcd2.healthy, "{etcd2:?}");
    assert_eq!(etcd2.state, "exited", "{etcd2:?}");
    for name in ["etcd1", "etcd3"] {
        let n = node(&s, name);
        assert!(n.expected && n.running && n.healthy, "{n:?}");
    }
    assert!(s.data.pass && s.reads.pass, "{:?} {:?}", s.data, s.reads);
}
