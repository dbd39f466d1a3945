//! The channel a run's events travel on: the runner emits [`RunEvent`]s, the reporters
//! subscribe. Nothing here reaches back into the runner.

pub use firedrill_types::events::RunEvent;

use firedrill_report::{Artifacts, ReportError, Reporter};
use firedrill_types::summary::Summary;

pub type EventSink = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Sends an event; a reporter that went away does not stop the run.
pub fn emit(sink: &EventSink, event: RunEvent) {
    let _ = sink.send(event);
}

pub type Reporters = Vec<Box<dyn Reporter + Send>>;

/// The reporters of one run, fed its events on a task of their own so that a slow terminal
/// never holds up the run.
pub struct Subscribers {
    task: tokio::task::JoinHandle<Reporters>,
}

/// Starts feeding `reporters` what is sent on the returned sink, in order.
pub fn subscribe(mut reporters: Reporters) -> (EventSink, Subscribers) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let task = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            for r in &mut reporters {
                r.on_event(&event);
            }
        }
        reporters
    });
    (tx, Subscribers { task })
}

impl Subscribers {
    /// Waits for the last event (every sink dropped), then hands each reporter the judged
    /// run in order; the first that fails stops the rest.
    pub async fn finish(
        self,
        summary: &Summary,
        artifacts: &Artifacts<'_>,
    ) -> Result<(), ReportError> {
        let mut reporters = self.close().await;
        reporters
            .iter_mut()
            .try_for_each(|r| r.finish(summary, artifacts))
    }

    /// Waits for the last event (every sink dropped); for a run that ended without a
    /// judgement, dropping what this returns ends the reporters.
    pub async fn close(self) -> Reporters {
        // The task only panics if a reporter did; its events are then lost, not the run.
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use firedrill_types::history::Phase;

    /// Writes down what it is given, into a log shared with the test.
    struct Recorder(&'static str, Arc<Mutex<Vec<String>>>, bool);

    impl Reporter for Recorder {
        fn on_event(&mut self, event: &RunEvent) {
            let what = match event {
                RunEvent::PhaseStarted(p) => p.name().to_string(),
                RunEvent::Note(n) => n.clone(),
                _ => "other".to_string(),
            };
            self.1.lock().unwrap().push(format!("{} {what}", self.0));
        }

        fn finish(&mut self, summary: &Summary, _: &Artifacts<'_>) -> Result<(), ReportError> {
            self.1
                .lock()
                .unwrap()
                .push(format!("{} finish {}", self.0, summary.scenario));
            if self.2 {
                let path = "nowhere/report.md".into();
                return Err(ReportError::Write {
                    path,
                    source: std::io::Error::other("read-only"),
                });
            }
            Ok(())
        }
    }

    /// Finishes a run of nothing whose artifacts go to a fresh directory.
    async fn finish(subscribers: Subscribers) -> Result<(), ReportError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let artifacts = Artifacts {
            dir: dir.path(),
            ops: &[],
            panels: &[],
        };
        subscribers
            .finish(&crate::testing::summary(), &artifacts)
            .await
    }

    #[tokio::test]
    async fn every_reporter_hears_every_event_in_order_then_finishes_in_turn() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sink, subscribers) = subscribe(vec![
            Box::new(Recorder("a", log.clone(), false)),
            Box::new(Recorder("b", log.clone(), false)),
        ]);
        // Events sent from another task, as the load's ticker does.
        let ticker = sink.clone();
        tokio::spawn(async move { emit(&ticker, RunEvent::PhaseStarted(Phase::Steady)) })
            .await
            .expect("task");
        emit(&sink, RunEvent::Note("cluster removed".into()));
        drop(sink);
        finish(subscribers).await.expect("finished");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a steady",
                "b steady",
                "a cluster removed",
                "b cluster removed",
                "a finish drill",
                "b finish drill"
            ]
        );
    }

    #[tokio::test]
    async fn a_reporter_that_fails_stops_the_ones_after_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sink, subscribers) = subscribe(vec![
            Box::new(Recorder("writer", log.clone(), true)),
            Box::new(Recorder("console", log.clone(), false)),
        ]);
        drop(sink);
        let err = finish(subscribers).await.expect_err("the writer fails");
        assert!(err.to_string().contains("nowhere/report.md"), "{err}");
        assert_eq!(*log.lock().unwrap(), ["writer finish drill"]);
    }
}
