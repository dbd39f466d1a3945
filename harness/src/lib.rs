//! firedrill's runtime and command line: builds the images, starts the cluster, drives the
//! load, the steps and the faults, and returns what happened.
//!
//! The flow is one way and each stage is its own crate (docs/architecture.md):
//! `firedrill-spec` reads the files into a plan; this crate runs the plan and records the
//! run's facts; `firedrill-judge` turns the facts into a summary; `firedrill-report`
//! renders it. `firedrill-types` is the contract they share (history, summary, events).

mod background;
pub mod cli;
pub mod cluster;
mod console;
mod debootstrap;
pub mod engine;
mod events;
mod fault;
pub mod images;
mod jobs;
pub mod load;
mod monitoring;
pub mod partition;
pub mod prometheus;
mod rejudge;
mod run;
mod runbook;
mod stall;
mod step;

pub use firedrill_spec::plan::Plan;
pub use firedrill_types::{history, summary};

#[cfg(test)]
mod testing {
    use firedrill_types::summary::Summary;

    /// The least summary.json a run writes: a passing run of nothing.
    pub fn summary() -> Summary {
        serde_json::from_str(
            r#"{"schema":"firedrill.summary/v1","scenario":"drill","description":"",
            "file":"s.yaml","run_id":"1","seed":1,"started_at":"","duration_ms":0,
            "verdict":"pass","reasons":[],"steps":[],"phases":[],"data":{"keys":0,"acked":0,
            "lost":0,"unexpected":0,"recovered":0,"lost_examples":[],"unexpected_examples":[],
            "pass":true},"reads":{"checked":0,"phantom":0,"future":0,"stale":0,"examples":[],
            "pass":true},"checks":[],"load":{"ops":0,"reads":0,"writes":0,"ok":0,"fail":0,
            "unknown":0,"ops_per_s":0.0,"goose_requests":0},"nodes":[]}"#,
        )
        .expect("a summary")
    }
}
