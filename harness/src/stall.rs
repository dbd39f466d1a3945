//! A stall: a node frozen for `on` at the start of every `period` (docker pause, then
//! unpause), the way a process stalls on GC pauses or a slow disk, without a kernel module.
//!
//! A stall always leaves the node running: being stopped cuts the current freeze short, it
//! never skips the unpause.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cluster::Cluster;
use firedrill_spec::plan::ContainerOp;

/// Attempts at unpausing before the stall gives up (and fails its step).
const UNPAUSE_ATTEMPTS: u32 = 5;

/// When the freezes fall, from the stall's start: cycle k freezes over
/// `[k·period, k·period + on)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub on: Duration,
    pub period: Duration,
}

impl Schedule {
    /// The next freeze to carry out at `elapsed` since the start, as (begin, end) from the
    /// start: the cycle under way when its freeze has not begun yet or is still on (a late
    /// freeze is cut to what is left of it), else the next one. Late Docker calls thus skip
    /// the freezes they missed instead of bunching them up: the node runs for at least
    /// `period − on` between two freezes.
    pub fn next(&self, elapsed: Duration) -> (Duration, Duration) {
        let period = self.period.as_nanos().max(1);
        let k = elapsed.as_nanos() / period;
        let at = |k: u128| Duration::from_nanos((k * period) as u64);
        let (begin, end) = (at(k), at(k) + self.on);
        if elapsed < end {
            (begin.max(elapsed), end)
        } else {
            (at(k + 1), at(k + 1) + self.on)
        }
    }
}

/// What a stall did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stalled {
    pub freezes: u32,
    /// Time the node spent paused, summed.
    pub frozen: Duration,
    pub elapsed: Duration,
}

impl Stalled {
    pub fn describe(&self, node: &str, s: Schedule) -> String {
        format!(
            "froze {node} {} times ({} in all, {:.0} % of {}), {} every {}; {node} is running",
            self.freezes,
            fmt(self.frozen),
            100.0 * self.frozen.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9),
            fmt(self.elapsed),
            fmt(s.on),
            fmt(s.period),
        )
    }
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Sleeps until `at`, waking early when `stop` says so; says whether it was stopped. A
/// `stop` whose sender is gone counts as stopped.
pub async fn sleep_until_or_stop(at: Instant, stop: &mut Option<watch::Receiver<bool>>) -> bool {
    let Some(rx) = stop else {
        tokio::time::sleep_until(at.into()).await;
        return false;
    };
    if *rx.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => false,
        _ = rx.wait_for(|v| *v) => true,
    }
}

/// Freezes `node` on `schedule` for `duration`, or until `stop` (with neither, forever:
/// validation makes sure one is given). Fails when the node cannot be paused or unpaused;
/// after a pause the unpause is always attempted, several times.
pub async fn run(
    cluster: &Cluster,
    node: &str,
    schedule: Schedule,
    duration: Option<Duration>,
    mut stop: Option<watch::Receiver<bool>>,
) -> Result<Stalled, String> {
    let start = Instant::now();
    let mut done = Stalled::default();
    loop {
        let (begin, end) = schedule.next(start.elapsed());
        let end = duration.map_or(end, |d| end.min(d));
        if duration.is_some_and(|d| begin >= d) {
            break;
        }
        if sleep_until_or_stop(start + begin, &mut stop).await {
            break;
        }
        cluster
            .container_op(node, ContainerOp::Pause)
            .await
            .map_err(|e| {
                format!(
                    "freeze {} of {node}: {e} (after {} freezes)",
                    done.freezes + 1,
                    done.freezes
                )
            })?;
        let paused = Instant::now();
        let stopped = sleep_until_or_stop(start + end, &mut stop).await;
        let unpaused = unpause(cluster, node).await;
        done.freezes += 1;
        done.frozen += paused.elapsed();
        unpaused?;
        if stopped {
            break;
        }
    }
    done.elapsed = start.elapsed();
    Ok(done)
}

async fn unpause(cluster: &Cluster, node: &str) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=UNPAUSE_ATTEMPTS {
        match cluster.container_op(node, ContainerOp::Unpause).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        if attempt < UNPAUSE_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Err(format!(
        "could not unpause {node} after {UNPAUSE_ATTEMPTS} attempts: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn freezes_fall_at_the_start_of_each_period() {
        let s = Schedule {
            on: MS(400),
            period: MS(1000),
        };
        assert_eq!(s.next(MS(0)), (MS(0), MS(400)));
        // Late within the freeze: what is left of it.
        assert_eq!(s.next(MS(150)), (MS(150), MS(400)));
        // Past the freeze: the next period's.
        assert_eq!(s.next(MS(400)), (MS(1000), MS(1400)));
        assert_eq!(s.next(MS(999)), (MS(1000), MS(1400)));
        assert_eq!(s.next(MS(1000)), (MS(1000), MS(1400)));
        // Very late (a Docker call that hung): the missed freezes are skipped, not bunched.
        assert_eq!(s.next(MS(3700)), (MS(4000), MS(4400)));
    }

    #[test]
    fn the_node_runs_between_freezes() {
        let s = Schedule {
            on: MS(300),
            period: MS(500),
        };
        let mut t = Duration::ZERO;
        let mut last_end = Duration::ZERO;
        for _ in 0..20 {
            let (begin, end) = s.next(t);
            assert!(begin >= last_end + MS(200) || last_end.is_zero());
            assert_eq!(end - begin, MS(300));
            // Each freeze ends a little late, as a Docker call would.
            t = end + MS(7);
            last_end = end;
        }
    }

    #[test]
    fn described_with_its_share_of_time_frozen() {
        let d = Stalled {
            freezes: 3,
            frozen: MS(1210),
            elapsed: MS(3005),
        };
        let s = Schedule {
            on: MS(400),
            period: MS(1000),
        };
        assert_eq!(
            d.describe("etcd3", s),
            "froze etcd3 3 times (1s 210ms in all, 40 % of 3s 5ms), 400ms every 1s; etcd3 is running"
        );
    }
}
