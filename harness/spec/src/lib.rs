//! firedrill's input side: a scenario file, its load profile and its compose file, read
//! with source positions and checked into one [`plan::Plan`] that nothing downstream
//! needs to re-validate.
//!
//! Every error names file:line:column ([`yaml::Diagnostic`]). Nothing here starts a
//! container or judges a run.

pub mod compose;
pub mod gate;
pub mod loadprofile;
pub mod monitoring;
pub mod plan;
pub mod promql;
pub mod runbook;
pub mod scenario;
pub mod slo;
pub mod yaml;
