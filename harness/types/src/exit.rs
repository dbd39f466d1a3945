//! Exit codes of every `firedrill` command, stable and documented in the README.

/// Every verdict passed.
pub const PASS: u8 = 0;
/// A verdict failed (a step, an SLO, lost writes, bad reads, a check).
pub const VERDICT_FAILED: u8 = 1;
/// Invalid input: nothing was started.
pub const INVALID_INPUT: u8 = 2;
/// Infrastructure: no Docker daemon, an image that cannot be built, a port in use…
pub const INFRASTRUCTURE: u8 = 3;
/// Interrupted by Ctrl-C or SIGTERM (after cleaning up).
pub const INTERRUPTED: u8 = 130;
/// firedrill itself failed (a panic: a bug to report); the cluster was removed.
pub const INTERNAL: u8 = 101;
