//! The channel a run's events travel on: the runner emits [`RunEvent`]s, the console (and
//! any other live view) subscribes. Nothing here reaches back into the runner.

pub use firedrill_types::events::RunEvent;

pub type EventSink = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Sends an event; a reporter that went away does not stop the run.
pub fn emit(sink: &EventSink, event: RunEvent) {
    let _ = sink.send(event);
}
