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
pub mod partition;
pub mod prometheus;
mod rejudge;
mod run;
mod runbook;
mod stall;
mod step;

pub use firedrill_spec::plan::Plan;
pub use firedrill_types::{history, summary};
