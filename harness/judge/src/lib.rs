//! firedrill's judgement: pure functions from what a run did to what it means.
//!
//! Nothing here does I/O, spawns a task or reads the wall clock: every verdict can be
//! recomputed from a run's artifacts.

pub mod backup;
pub mod canary;
pub mod check;
pub mod effect;
pub mod end_state;
pub mod incident;
pub mod kill_switch;
pub mod levers;
pub mod linearizability;
pub mod monitoring;
pub mod slo;
pub mod summarize;
pub mod timeline;
pub mod verdict;

pub use summarize::summarize;
