//! A rollback of levers, judged: the procedure names the lever that restores service, and
//! the rollback must have been restored by that one, not by none and not by another.

use firedrill_types::summary::{LeverOutcome, LeverResult};

/// Why the levers did not do what the procedure says (`expected` is the index of the lever
/// that must restore service), or `None` when they did.
pub fn verdict(levers: &[LeverResult], expected: usize) -> Option<String> {
    let says = |l: &LeverResult| {
        format!(
            "lever {} `{}` {} ({})",
            l.index,
            l.name,
            match l.outcome {
                LeverOutcome::Failed => "failed",
                _ => "did not restore service",
            },
            l.detail.as_deref().unwrap_or("no detail")
        )
    };
    let named = |k: usize| format!("lever {} `{}`", k + 1, levers[k].name);
    let restored = levers
        .iter()
        .position(|l| l.outcome == LeverOutcome::Restored);
    match restored {
        None => Some(format!(
            "no rollback lever restored service: {}",
            levers.iter().map(says).collect::<Vec<_>>().join("; ")
        )),
        Some(k) if k > expected => Some(format!(
            "{}; {} did, so the procedure's faster lever does not work",
            says(&levers[expected]),
            named(k)
        )),
        Some(k) if k < expected => Some(format!(
            "{} restored service, so {}, which the procedure says restores it, was not drilled",
            named(k),
            named(expected)
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levers(outcomes: &[LeverOutcome]) -> Vec<LeverResult> {
        let names = ["Flag off", "Safe mode", "Redeploy"];
        outcomes
            .iter()
            .enumerate()
            .map(|(k, &outcome)| LeverResult {
                index: k + 1,
                name: names[k].into(),
                outcome,
                start: None,
                end: None,
                detail: matches!(outcome, LeverOutcome::NotRestored | LeverOutcome::Failed)
                    .then(|| format!("step 2.{}.2 failed", k + 3)),
            })
            .collect()
    }

    use LeverOutcome::*;

    #[test]
    fn the_expected_lever_restoring_service_passes() {
        assert_eq!(verdict(&levers(&[Restored, NotTried, NotTried]), 0), None);
        assert_eq!(
            verdict(&levers(&[NotRestored, Restored, NotTried]), 1),
            None
        );
    }

    #[test]
    fn a_later_lever_restoring_service_fails_naming_both() {
        let why = verdict(&levers(&[NotRestored, Restored, NotTried]), 0).unwrap();
        assert_eq!(why, "lever 1 `Flag off` did not restore service (step 2.3.2 failed); lever 2 `Safe mode` did, so the procedure's faster lever does not work");
        let why = verdict(&levers(&[Failed, NotRestored, Restored]), 0).unwrap();
        assert!(
            why.starts_with(
                "lever 1 `Flag off` failed (step 2.3.2 failed); lever 3 `Redeploy` did"
            ),
            "{why}"
        );
    }

    #[test]
    fn no_lever_restoring_service_fails_naming_each() {
        let why = verdict(&levers(&[NotRestored, Failed]), 0).unwrap();
        assert_eq!(why, "no rollback lever restored service: lever 1 `Flag off` did not restore service (step 2.3.2 failed); lever 2 `Safe mode` failed (step 2.4.2 failed)");
    }

    #[test]
    fn an_earlier_lever_restoring_service_leaves_the_expected_one_undrilled() {
        let why = verdict(&levers(&[Restored, NotTried]), 1).unwrap();
        assert_eq!(why, "lever 1 `Flag off` restored service, so lever 2 `Safe mode`, which the procedure says restores it, was not drilled");
    }
}
