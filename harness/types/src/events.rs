//! What a run reports as it goes. The runner emits events; the reporters (the console, the
//! artifact writers) subscribe. The verdict is not an event: reporters get the judged
//! summary once the run is over. Nothing here reaches back into the runner.

use std::path::PathBuf;
use std::time::Duration;

use crate::history::Phase;
use crate::summary::StepRecord;

#[derive(Debug, Clone)]
pub enum RunEvent {
    Started {
        scenario: String,
        run_id: String,
        seed: u64,
        out_dir: PathBuf,
    },
    Note(String),
    ClusterReady {
        nodes: Vec<String>,
        took: Duration,
    },
    PhaseStarted(Phase),
    StepStarted {
        id: String,
        name: String,
    },
    StepFinished(Box<StepRecord>),
    Load {
        ops: u64,
        errors: u64,
        ops_per_s: f64,
    },
}
