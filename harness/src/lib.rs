//! firedrill: proves operator runbooks work.
//!
//! Data flows one way: a scenario file ([`scenario`]) is checked into a [`plan`]; a [`run`]
//! drives the [`cluster`], the [`load`] and the [`step`]s and emits [`events`]; the
//! [`history`] and step records are judged ([`slo`], [`check`], [`verdict`]) into a
//! [`summary`], which the reporters ([`report`], [`console`]) render.

pub mod canary;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod compose;
pub mod console;
pub mod events;
pub mod fault;
pub mod history;
pub mod images;
pub mod load;
pub mod loadprofile;
pub mod plan;
pub mod prometheus;
pub mod report;
pub mod run;
pub mod scenario;
pub mod slo;
pub mod step;
pub mod summary;
pub mod verdict;
pub mod yaml;
