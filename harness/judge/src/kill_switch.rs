//! A rollout's kill switch judged in the history: how long until the canary served its last
//! request, and whether it served none in the recovery phase (the switch held).

use firedrill_types::facts::{KillSwitchRun, PhaseTimes};
use firedrill_types::history::Op;
use firedrill_types::summary::{CheckResult, KillSwitchResult};

pub fn judge(k: &KillSwitchRun, canary: &str, ops: &[Op], phases: &PhaseTimes) -> KillSwitchResult {
    let served = |o: &&Op| o.backend.as_deref() == Some(canary);
    let last_canary_request = ops.iter().filter(served).map(|o| o.t_return).max();
    let time_to_effect_ms =
        last_canary_request.map_or(0, |l| l.saturating_sub(k.at)) as f64 / 1000.0;
    let canary_requests_in_recovery = ops
        .iter()
        .filter(served)
        .filter(|o| o.t_call >= phases.recovery_start && o.t_call < phases.recovery_end)
        .count() as u64;
    KillSwitchResult {
        step: k.step.clone(),
        at: k.at,
        last_canary_request,
        time_to_effect_ms: Some(time_to_effect_ms),
        limit_ms: k.limit_ms,
        canary_requests_in_recovery,
        pass: time_to_effect_ms <= k.limit_ms && canary_requests_in_recovery == 0,
    }
}

pub fn check(k: &KillSwitchResult, canary: &str) -> CheckResult {
    CheckResult {
        name: format!(
            "kill switch takes effect within {:.0} s",
            k.limit_ms / 1000.0
        ),
        pass: k.pass,
        detail: format!(
            "{canary} served its last request {:.1} s after the kill switch (step {}); {} requests to it in the recovery phase",
            k.time_to_effect_ms.unwrap_or(0.0) / 1000.0,
            k.step,
            k.canary_requests_in_recovery
        ),
    }
}
