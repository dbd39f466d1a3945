//! firedrill's output contract, read by everything downstream and by outsiders: the
//! operation history (`history.jsonl`), the run summary (`summary.json`, versioned by
//! [`summary::SCHEMA`]), the merged index of several runs (`firedrill merge`, versioned by
//! [`index::SCHEMA`]), the events a run emits while it goes, and the exit codes.
//!
//! serde only: no async runtime, no Docker. A change here is a change of a documented
//! format (docs/artifacts.md).

pub mod events;
pub mod exit;
pub mod facts;
pub mod history;
pub mod index;
pub mod monitoring;
pub mod summary;
