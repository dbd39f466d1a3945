//! What a scenario asks of each phase: the limits the judge checks the load against.

use std::time::Duration;

use serde::Deserialize;

/// The limits for one phase; a limit that is not set is not judged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Largest allowed share of operations that failed or had an unknown outcome, `0.0..=1.0`.
    pub max_error_rate: Option<f64>,
    /// Largest allowed median latency of successful operations.
    #[serde(default, with = "humantime_serde")]
    pub max_p50: Option<Duration>,
    /// Largest allowed 99th-percentile latency of successful operations.
    #[serde(default, with = "humantime_serde")]
    pub max_p99: Option<Duration>,
    /// Longest allowed span in the phase without a successful operation completing.
    #[serde(default, with = "humantime_serde")]
    pub max_unavailable: Option<Duration>,
    /// Fewest operations the phase must see: "no data" is not a pass.
    pub min_ops: Option<u64>,
}

impl SloSpec {
    /// Checks the limits make sense, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.max_error_rate {
            // Written this way so NaN is rejected too.
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "max_error_rate must be a ratio between 0 and 1 (0.01 means 1%), got {rate}"
                ));
            }
        }
        Ok(())
    }
}
