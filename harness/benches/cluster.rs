//! Cluster start and teardown: the bundled 3-member etcd topology from nothing to every
//! member healthy (etcd's /health needs a leader), then removed; repeated, medians printed.
//!
//! `cargo bench -p firedrill --bench cluster` (images must be built:
//! `cargo run --release -- images build`). `FIREDRILL_BENCH_ROUNDS` sets the rounds (7).

use std::time::{Duration, Instant};

use firedrill::cluster::{self, Cluster};

mod support;

#[tokio::main]
async fn main() {
    let rounds = support::rounds(7);
    let (compose, members) = support::bundled_cluster();
    let docker = cluster::connect().await.expect("a Docker engine");
    let logs = tempfile::tempdir().expect("a temporary directory");

    let (mut create, mut healthy, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let run_id = format!("bench{round:03}{:04x}", rand::random::<u16>());
        let started = Instant::now();
        let c = Cluster::create(&docker, &compose, &run_id, false, logs.path())
            .await
            .expect("the cluster starts");
        let created = started.elapsed();
        c.wait_healthy(&members, Duration::from_secs(60))
            .await
            .expect("the members become healthy");
        let ready = started.elapsed();
        let tearing = Instant::now();
        c.teardown().await.expect("the cluster is removed");
        let gone = tearing.elapsed();
        let left = cluster::reap(&docker, Some(&run_id)).await.expect("reap");
        assert_eq!(left.total(), 0, "teardown left objects of {run_id} behind");
        println!(
            "round {round}: containers started {:.2} s, {} healthy {:.2} s, teardown {:.2} s",
            created.as_secs_f64(),
            members.len(),
            ready.as_secs_f64(),
            gone.as_secs_f64()
        );
        create.push(created);
        healthy.push(ready);
        teardown.push(gone);
    }
    println!();
    support::row("containers created and started", &mut create, None);
    support::row(
        "start to every member healthy",
        &mut healthy,
        Some(Duration::from_secs(3)),
    );
    support::row("teardown", &mut teardown, Some(Duration::from_secs(2)));
}
