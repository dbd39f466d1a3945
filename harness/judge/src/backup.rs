//! A backup and restore judged on the run clock: the recovery point the restore kept (RPO)
//! and how long the cluster took to serve again (RTO).

use std::time::Duration;

use firedrill_spec::plan::BackupPlan;
use firedrill_types::facts::{Mark, MarkTime};
use firedrill_types::history::{Micros, Op, OpKind, Outcome};
use firedrill_types::summary::{BackupResult, CheckResult};

use crate::check::BackupWindow;
use crate::slo;

/// The backup window and the disaster, from the marks the steps reached; `None` unless all
/// four edges were reached.
pub fn window(marks: &[MarkTime]) -> Option<BackupWindow> {
    let at = |mark: Mark, begin: bool| {
        marks
            .iter()
            .find(|m| m.mark == mark && m.begin == begin)
            .map(|m| m.at)
    };
    Some(BackupWindow {
        start: at(Mark::Backup, true)?,
        end: at(Mark::Backup, false)?,
        disaster_start: at(Mark::Disaster, true)?,
        disaster_end: at(Mark::Disaster, false)?,
    })
}

/// The restore's timeline: recovery point seen (RPO) and recovery time (RTO).
pub fn result(plan: &BackupPlan, w: &BackupWindow, marks: &[MarkTime], ops: &[Op]) -> BackupResult {
    let step = |mark: Mark| {
        marks
            .iter()
            .find(|m| m.mark == mark)
            .map(|m| m.step.clone())
            .unwrap_or_default()
    };
    let acked_writes = || {
        ops.iter()
            .filter(|o| matches!(o.kind, OpKind::Write | OpKind::Cas) && o.outcome == Outcome::Ok)
    };
    let last_ack = acked_writes()
        .filter(|o| o.t_return < w.disaster_start)
        .map(|o| o.t_return)
        .max();
    let writes_after_backup = acked_writes()
        .filter(|o| o.t_call > w.end && o.t_return < w.disaster_start)
        .count() as u64;
    let restore = slo::time_to_recover(ops, w.disaster_end, None);
    let rto = restore.map(|r| r + (w.disaster_end - w.disaster_start));
    let rpo = last_ack.map(|l| l.saturating_sub(w.start));
    let limit = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let (rto_limit_ms, rpo_limit_ms) = (limit(plan.rto), limit(plan.rpo));
    let within = |v: Option<Micros>, l: Option<f64>| match (v, l) {
        (_, None) => true,
        (Some(v), Some(l)) => ms(v) <= l,
        (None, Some(_)) => false,
    };
    BackupResult {
        backup_step: step(Mark::Backup),
        backup_start: w.start,
        backup_end: w.end,
        disaster_step: step(Mark::Disaster),
        disaster_start: w.disaster_start,
        disaster_end: w.disaster_end,
        last_ack_before_disaster: last_ack,
        rpo_ms: rpo.map(ms),
        writes_after_backup,
        first_ok_after: restore.map(|r| w.disaster_end + r),
        restore_ms: restore.map(ms),
        rto_ms: rto.map(ms),
        rto_limit_ms,
        rpo_limit_ms,
        // A restore never seen serving has no recovery time: that fails even without a limit.
        pass: rto.is_some() && within(rto, rto_limit_ms) && within(rpo, rpo_limit_ms),
    }
}

pub fn checks(b: &BackupResult) -> Vec<CheckResult> {
    let shown = |v: Option<f64>| {
        v.map(|v| format!("{:.1} s", v / 1000.0))
            .unwrap_or_else(|| "never".into())
    };
    let mut checks = vec![CheckResult {
        name: match b.rto_limit_ms {
            Some(l) => format!("restore time (RTO) within {}", shown(Some(l))),
            None => "the restored cluster serves".into(),
        },
        pass: b.rto_ms.is_some() && b.rto_limit_ms.is_none_or(|l| b.rto_ms.is_some_and(|r| r <= l)),
        detail: format!(
            "first successful operation {} after the disaster began ({} after the last node was lost)",
            shown(b.rto_ms),
            shown(b.restore_ms)
        ),
    }];
    if let Some(l) = b.rpo_limit_ms {
        checks.push(CheckResult {
            name: format!("recovery point (RPO) within {}", shown(Some(l))),
            pass: b.rpo_ms.is_some_and(|r| r <= l),
            detail: format!(
                "{} acknowledged writes in the {} from the backup's start to the disaster",
                b.writes_after_backup,
                shown(b.rpo_ms)
            ),
        });
    }
    checks
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}
