//! The load: goose users that send a load profile's reads and writes to the cluster's nodes and
//! record every operation into the history, plus the read-back used by the lost-write check.
//!
//! The history is what the verdicts rest on, so its rules come first:
//! - one monotonic clock: `t_call` just before the request is sent, `t_return` just after the
//!   reply's body was read (a read needs the body), and `t_intended` when the schedule meant
//!   to send it, so latency is measured open loop (see `Pacer`);
//! - every write carries a value unique in the run (`{seed}-{client}-{seq}`);
//! - a request that was never sent (connection refused) failed; one that may have reached the
//!   server without an answer (timeout, reset, error status) is unknown for a write and failed
//!   for a read, since a read changes nothing;
//! - a write is never retried (the HTTP client's own retries are off too).
//!
//! goose schedules the users and counts requests (a cross-check of the history). It is
//! process-global (one killswitch, one Ctrl-C handler), so one [`LoadRun`] runs at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::Url;
use tokio::sync::mpsc::UnboundedSender;

use firedrill_spec::loadprofile::{
    CompiledProfile, Fields, HttpMethod, LoadProfile, RenderedRequest,
};
use firedrill_types::facts::FinalValue;
use firedrill_types::history::{Micros, Op, OpKind, Outcome};

/// One node the load sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name in the history (`Op::node`).
    pub node: String,
    /// Where the profile's port is reachable, e.g. `http://127.0.0.1:49153`.
    pub base_url: String,
}

/// goose's own count of the requests it saw, to cross-check the history.
///
/// goose resets its metrics once every user has started (turning that off makes it print to
/// stdout), so requests of the first milliseconds may be missing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GooseCount {
    pub requests: u64,
    /// Requests goose counted as failed: a transport error or a non-2xx status.
    pub failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no target nodes were given: the load needs at least one node to send requests to")]
    NoTargets,
    #[error("target {node}: {url:?} is not an http(s) base URL ({reason}); expected e.g. http://127.0.0.1:8080")]
    BadTarget {
        node: String,
        url: String,
        reason: String,
    },
    #[error("a load is already running in this process (goose runs one attack per process): stop it first")]
    AlreadyRunning,
    #[error("failed to configure goose: {0}")]
    Goose(#[source] Box<goose::GooseError>),
    #[error("the goose attack ended with an error: {0}")]
    Attack(#[source] Box<goose::GooseError>),
    #[error("the goose attack task panicked or was cancelled: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("failed to build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("read-back incomplete at its deadline: {unread} of {total} keys were never read successfully (first {key:?}: {error}); give the cluster longer to recover or check that it serves reads")]
    ReadBackIncomplete {
        unread: usize,
        total: usize,
        key: String,
        error: String,
    },
}

impl From<goose::GooseError> for LoadError {
    fn from(error: goose::GooseError) -> Self {
        LoadError::Goose(Box::new(error))
    }
}

/// Set while an attack runs: goose's killswitch and metrics are process-global.
static ATTACK_RUNNING: AtomicBool = AtomicBool::new(false);

/// Holds [`ATTACK_RUNNING`] for one attack and releases it however the attack ends (even by a
/// panic), so a later `start` is not refused forever.
struct AttackSlot;

impl AttackSlot {
    fn take() -> Result<AttackSlot, LoadError> {
        if ATTACK_RUNNING.swap(true, Ordering::SeqCst) {
            Err(LoadError::AlreadyRunning)
        } else {
            Ok(AttackSlot)
        }
    }
}

impl Drop for AttackSlot {
    fn drop(&mut self) {
        ATTACK_RUNNING.store(false, Ordering::SeqCst);
    }
}

/// Long enough that only [`LoadRun::stop`] ends the attack (30 days, in seconds).
const RUN_TIME_SECS: usize = 30 * 24 * 3600;
/// How often `stop` pulls the killswitch again: goose clears it when an attack starts, so a
/// stop right after `start` would otherwise be lost.
const KILLSWITCH_REPEAT: Duration = Duration::from_millis(100);
/// How long a client idles after the killswitch before goose asks it again.
const KILLSWITCH_IDLE: Duration = Duration::from_millis(20);
/// Between read-back attempts of one key.
const READ_BACK_PAUSE: Duration = Duration::from_millis(100);
/// Concurrent readers of the final read-back.
const READ_BACK_READERS: usize = 8;
/// The pacer's longest gap between operations, so that a tiny rate cannot overflow the clock.
const LONGEST_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest error text kept in an `Op`.
const ERROR_TEXT_MAX: usize = 200;

/// A running load.
pub struct LoadRun {
    attack: tokio::task::JoinHandle<Result<GooseMetrics, goose::GooseError>>,
    stop_on_drop: StopOnDrop,
}

/// A run dropped without [`LoadRun::stop`] (an error path) must not keep loading the cluster.
struct StopOnDrop {
    armed: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.armed {
            goose::trigger_killswitch("firedrill dropped the load");
        }
    }
}

impl LoadRun {
    /// Starts the load now: goose users, one per client, pinned to targets round-robin.
    /// Every operation is sent to `sink` as an [`Op`] the moment it returns.
    ///
    /// Must be called inside a tokio runtime. Two process-wide side effects of goose to plan for:
    /// - install the tracing subscriber (with its `log` bridge, tracing-subscriber's default)
    ///   first, or goose installs its own logger, which writes to stdout; goose also logs a
    ///   warning per failed request (filter `goose=error` to keep a fault quiet);
    /// - goose's first attack installs a SIGINT handler with `ctrlc::set_handler`, which replaces
    ///   any handler installed otherwise (e.g. `tokio::signal::ctrl_c` stops firing); it stays
    ///   away only when a handler was installed through the `ctrlc` crate first.
    pub fn start(
        profile: Arc<CompiledProfile>,
        targets: Vec<Target>,
        seed: u64,
        epoch: Instant,
        sink: UnboundedSender<Op>,
    ) -> Result<LoadRun, LoadError> {
        let first_url = check_targets(&targets)?.remove(0);
        let slot = AttackSlot::take()?;
        let shared = Arc::new(Shared {
            keys: profile.key_names().into_iter().map(Arc::from).collect(),
            pacer: Pacer::new(profile.source.rate),
            profile,
            targets,
            seed,
            epoch,
            sink,
            sink_closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        });
        let attack = configure_attack(&shared, first_url.as_str())?;
        let handle = tokio::spawn(async move {
            let _slot = slot;
            attack.execute().await
        });
        Ok(LoadRun {
            attack: handle,
            stop_on_drop: StopOnDrop { armed: true },
        })
    }

    /// Stops the load (goose's killswitch), waits until every in-flight operation has returned
    /// and been sent to the sink and goose has finished, and returns goose's own count.
    pub async fn stop(self) -> Result<GooseCount, LoadError> {
        let LoadRun {
            mut attack,
            mut stop_on_drop,
        } = self;
        stop_on_drop.armed = false;
        let outcome = loop {
            goose::trigger_killswitch("firedrill stopped the load");
            tokio::select! {
                outcome = &mut attack => break outcome,
                () = tokio::time::sleep(KILLSWITCH_REPEAT) => {}
            }
        };
        // The next attack in this process must not start canceled.
        goose::reset_killswitch();
        let metrics = outcome?.map_err(|error| LoadError::Attack(Box::new(error)))?;
        let (requests, failures) =
            metrics
                .requests
                .values()
                .fold((0u64, 0u64), |(total, failed), aggregate| {
                    (
                        total + (aggregate.success_count + aggregate.fail_count) as u64,
                        failed + aggregate.fail_count as u64,
                    )
                });
        Ok(GooseCount { requests, failures })
    }
}

/// Reads every key once through the profile's read request, retrying each key (on any target,
/// rotating) until a read succeeds or `deadline` passes. Returns each key's value (`None`:
/// the key is absent), when it was read on the run clock and from which node. Used after
/// recovery for the lost-write check. A few readers share the keys, each starting on its own
/// target: one read at a time would make the check cost a round trip per key.
pub async fn read_back(
    profile: &CompiledProfile,
    targets: &[Target],
    keys: &[String],
    deadline: Instant,
    epoch: Instant,
) -> Result<Vec<FinalValue>, LoadError> {
    let bases = check_targets(targets)?;
    let client = http_client(profile.source.timeout)
        .build()
        .map_err(LoadError::Client)?;
    let reader = Reader {
        profile,
        targets,
        bases: &bases,
        client: &client,
        deadline,
        epoch,
    };
    let share = keys.len().div_ceil(READ_BACK_READERS).max(1);
    let results = futures_util::future::join_all(
        keys.chunks(share)
            .enumerate()
            .map(|(i, chunk)| reader.read(chunk, i)),
    )
    .await;
    let mut values = Vec::with_capacity(keys.len());
    let mut first_error = None;
    let mut unread = 0;
    for result in results {
        match result {
            Ok(mut read) => values.append(&mut read),
            Err((read, left, key, error)) => {
                values.extend(read);
                unread += left;
                first_error.get_or_insert((key, error));
            }
        }
    }
    match first_error {
        None => {
            values.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(values)
        }
        Some((key, error)) => Err(LoadError::ReadBackIncomplete {
            unread,
            total: keys.len(),
            key,
            error,
        }),
    }
}

/// What the read-back's readers share.
struct Reader<'a> {
    profile: &'a CompiledProfile,
    targets: &'a [Target],
    bases: &'a [Url],
    client: &'a reqwest::Client,
    deadline: Instant,
    epoch: Instant,
}

/// What a reader had read when the deadline passed, how many keys it left, and the first of
/// them with its last error.
type Unfinished = (Vec<FinalValue>, usize, String, String);

impl Reader<'_> {
    async fn read(
        &self,
        keys: &[String],
        first_target: usize,
    ) -> Result<Vec<FinalValue>, Unfinished> {
        let mut values = Vec::with_capacity(keys.len());
        let mut turn = first_target;
        let mut failures_in_a_row = 0usize;
        for (done, key) in keys.iter().enumerate() {
            loop {
                // Stay on a target while it answers; a failing one is left at once, and only
                // a full round of failures waits before trying again.
                let at = turn % self.bases.len();
                let remaining = self.deadline.saturating_duration_since(Instant::now());
                let rendered = self.profile.read.render(&Fields::key(key));
                let concluded = match self.bases[at].join(&rendered.path) {
                    Ok(url) => {
                        let request = self.client.request(reqwest_method(rendered.method), url);
                        let response = with_body_and_headers(request, &rendered)
                            .timeout(
                                remaining
                                    .min(self.profile.source.timeout)
                                    .max(Duration::from_millis(1)),
                            )
                            .send()
                            .await;
                        conclude(OpKind::Read, self.profile, None, response).await
                    }
                    Err(error) => Concluded {
                        outcome: Outcome::Fail,
                        value: None,
                        error: Some(format!("the read's URL is invalid: {error}")),
                        backend: None,
                    },
                };
                if concluded.outcome == Outcome::Ok {
                    values.push(FinalValue {
                        key: key.clone(),
                        value: concluded.value,
                        read_at: micros_since(self.epoch),
                        node: self.targets[at].node.clone(),
                    });
                    failures_in_a_row = 0;
                    break;
                }
                turn += 1;
                failures_in_a_row += 1;
                if !failures_in_a_row.is_multiple_of(self.bases.len()) {
                    continue;
                }
                if Instant::now() + READ_BACK_PAUSE >= self.deadline {
                    return Err((
                        values,
                        keys.len() - done,
                        key.clone(),
                        concluded.error.unwrap_or_default(),
                    ));
                }
                tokio::time::sleep(READ_BACK_PAUSE).await;
            }
        }
        Ok(values)
    }
}

/// What every user shares.
struct Shared {
    profile: Arc<CompiledProfile>,
    keys: Vec<Arc<str>>,
    targets: Vec<Target>,
    seed: u64,
    epoch: Instant,
    sink: UnboundedSender<Op>,
    sink_closed: AtomicBool,
    next_id: AtomicU64,
    pacer: Pacer,
}

/// The load's schedule: operations are due `1/rate` apart, and the next free client takes the
/// next due time.
///
/// The schedule does not wait for the clients (open loop): when a stall holds every client,
/// the operations that fell due meanwhile are sent as soon as a client is free, each recording
/// the time it was due (`t_intended`), so their queueing counts as latency instead of vanishing
/// (coordinated omission). goose's own `throttle_requests` is not used: it waits inside
/// `GooseUser::request`, where no timestamp of the caller's can separate the two.
struct Pacer {
    interval: Duration,
    /// `None` until the first client asks, so the attack's start-up is no backlog.
    next: Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            // A rate too small for the clock means "practically never".
            interval: Duration::try_from_secs_f64(1.0 / rate)
                .unwrap_or(LONGEST_INTERVAL)
                .min(LONGEST_INTERVAL),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next due time (not at all when it has passed) and returns when the
    /// operation was due: the slot when it had passed before this client asked (the wait
    /// since is the system's doing), else now, so the timer's own lateness (up to a
    /// millisecond's tick) is not charged to the system.
    async fn wait(&self) -> Instant {
        let asked = tokio::time::Instant::now();
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = next.unwrap_or(asked);
            *next = Some(slot + self.interval);
            slot
        };
        if slot < asked {
            return slot.into_std();
        }
        tokio::time::sleep_until(slot).await;
        Instant::now()
    }
}

/// One client's sequence of operations, fixed by the run's seed and the client's index.
#[derive(Debug, Clone)]
struct OpScript {
    rng: StdRng,
    read_ratio: f64,
    cas_ratio: f64,
    key_count: u32,
}

impl OpScript {
    fn new(seed: u64, client: u32, profile: &LoadProfile) -> OpScript {
        // Mix the client index in so neighbouring seeds do not give shifted copies.
        let client_seed = seed ^ (u64::from(client) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        OpScript {
            rng: StdRng::seed_from_u64(client_seed),
            read_ratio: profile.read_ratio,
            cas_ratio: profile.cas_ratio,
            key_count: profile.keys.count,
        }
    }

    /// The next operation's kind and key index. A cas goes to the key the client last read
    /// instead (see [`ClientState::last_read`]); the index drawn keeps the sequence seeded.
    fn next_op(&mut self) -> (OpKind, usize) {
        let draw: f64 = self.rng.random();
        let kind = if draw < self.read_ratio {
            OpKind::Read
        } else if draw < self.read_ratio + self.cas_ratio {
            OpKind::Cas
        } else {
            OpKind::Write
        };
        (kind, self.rng.random_range(0..self.key_count) as usize)
    }
}

/// A goose user's session data.
#[derive(Debug, Clone)]
struct ClientState {
    client: u32,
    /// Index of the target the client talks to now.
    target: usize,
    node: Arc<str>,
    script: OpScript,
    writes: u64,
    /// The key this client last saw a value under (by an ok read or its own ok cas), and
    /// that value: what its next cas compares against.
    last_read: Option<(usize, Box<str>)>,
}

fn configure_attack(shared: &Arc<Shared>, host: &str) -> Result<GooseAttack, LoadError> {
    let clients = shared.profile.source.clients as usize;
    let start = Arc::clone(shared);
    let setup: TransactionFunction = Arc::new(move |user| {
        let shared = Arc::clone(&start);
        Box::pin(async move { setup_client(user, &shared).await })
    });
    let run = Arc::clone(shared);
    let operation: TransactionFunction = Arc::new(move |user| {
        let shared = Arc::clone(&run);
        Box::pin(async move {
            run_operation(user, &shared).await;
            Ok(())
        })
    });
    let scenario = Scenario::new("load")
        .register_transaction(Transaction::new(setup).set_name("setup").set_on_start())
        .register_transaction(Transaction::new(operation).set_name("operation"));
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host)?
        .set_default(GooseDefault::Users, clients)?
        // Start every user at once: the pacer, not a ramp, shapes the load.
        .set_default(
            GooseDefault::IncreaseRate,
            (clients * 1000).to_string().as_str(),
        )?
        .set_default(GooseDefault::RunTime, RUN_TIME_SECS)?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoErrorSummary, true)?
        .set_default(GooseDefault::NoTransactionMetrics, true)?
        .set_default(GooseDefault::NoScenarioMetrics, true)?
        .set_default(GooseDefault::Quiet, 1)?
        .set_default(
            GooseDefault::CoordinatedOmissionMitigation,
            GooseCoordinatedOmissionMitigation::Disabled,
        )?;
    Ok(*attack)
}

/// Runs once per user before its operations: pins it to its target and gives it its own
/// HTTP client and script.
async fn setup_client(user: &mut GooseUser, shared: &Shared) -> TransactionResult {
    let index = user.weighted_users_index;
    let target = &shared.targets[index % shared.targets.len()];
    user.set_base_url(&target.base_url)?;
    if let Err(error) = user
        .set_client_builder(http_client(shared.profile.source.timeout))
        .await
    {
        tracing::error!(
            "load client {index} could not build its HTTP client and sends nothing: {error}"
        );
        return Err(Box::new(error));
    }
    let client = u32::try_from(index).map_err(|_| {
        Box::new(TransactionError::Custom(format!(
            "client index {index} does not fit in u32"
        )))
    })?;
    user.set_session_data(ClientState {
        client,
        target: index % shared.targets.len(),
        node: Arc::from(target.node.as_str()),
        script: OpScript::new(shared.seed, client, &shared.profile.source),
        writes: 0,
        last_read: None,
    });
    Ok(())
}

/// One operation: wait for a slot, send, classify, record.
async fn run_operation(user: &mut GooseUser, shared: &Shared) {
    let due = shared.pacer.wait().await;
    if goose::is_killswitch_triggered() {
        // goose calls this again at once until it tells the user to exit, which can take a
        // while: without a pause the clients would spin on both cores meanwhile.
        tokio::time::sleep(KILLSWITCH_IDLE).await;
        return;
    }
    let Some(state) = user.get_session_data_mut::<ClientState>() else {
        tracing::error!("a load client has no session state; its setup failed");
        return;
    };
    let (kind, key_index) = state.script.next_op();
    // A cas needs a value this client saw; until it has one, it writes.
    let (kind, key_index, expected) = match (kind, state.last_read.take()) {
        (OpKind::Cas, Some((seen_key, seen))) => (OpKind::Cas, seen_key, Some(seen)),
        (OpKind::Cas, None) => (OpKind::Write, key_index, None),
        (kind, last_read) => {
            state.last_read = last_read;
            (kind, key_index, None)
        }
    };
    let key = Arc::clone(&shared.keys[key_index]);
    let value = match kind {
        OpKind::Write | OpKind::Cas => {
            state.writes += 1;
            Some(format!("{}-{}-{}", shared.seed, state.client, state.writes).into_boxed_str())
        }
        OpKind::Read => None,
    };
    let (client, node) = (state.client, Arc::clone(&state.node));
    let request = match (kind, &shared.profile.cas) {
        (OpKind::Write, _) => &shared.profile.write,
        (OpKind::Read, _) => &shared.profile.read,
        (OpKind::Cas, Some(cas)) => &cas.request,
        (OpKind::Cas, None) => unreachable!("a profile with a cas share has a cas request"),
    };
    let rendered = request.render(&Fields {
        key: &key,
        value: value.as_deref().unwrap_or(""),
        expected: expected.as_deref().unwrap_or(""),
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);

    let builder = user
        .get_request_builder(&goose_method(rendered.method), &rendered.path)
        .map(|builder| with_body_and_headers(builder, &rendered));
    let t_call = micros_since(shared.epoch);
    let response = match builder {
        Ok(builder) => {
            let goose_request = GooseRequest::builder()
                .name(kind_name(kind))
                .set_request_builder(builder)
                .build();
            match user.request(goose_request).await {
                Ok(goose_response) => goose_response.response.map_err(SendError::Http),
                // After sending, goose can still fail on its metrics channel: the request
                // may have been sent, so this is not a "never sent".
                Err(error) => Err(SendError::Goose(error.to_string())),
            }
        }
        Err(error) => Err(SendError::Goose(error.to_string())),
    };
    let served_by = shared.profile.source.served_by_header.as_deref();
    let never_sent = matches!(&response, Err(SendError::Http(e)) if e.is_connect());
    let concluded = match response {
        Ok(response) => conclude(kind, &shared.profile, served_by, Ok(response)).await,
        Err(SendError::Http(error)) => conclude(kind, &shared.profile, served_by, Err(error)).await,
        Err(SendError::Goose(text)) => Concluded {
            outcome: after_sending(kind),
            value: None,
            error: Some(short(format!("goose: {text}"))),
            backend: None,
        },
    };
    let t_return = micros_since(shared.epoch);
    let op = Op {
        id,
        client,
        node,
        kind,
        key,
        value: match kind {
            OpKind::Write | OpKind::Cas => value.clone(),
            OpKind::Read => concluded.value.clone().map(String::into_boxed_str),
        },
        expected: expected.clone(),
        t_intended: due.saturating_duration_since(shared.epoch).as_micros() as Micros,
        t_call,
        t_return,
        outcome: concluded.outcome,
        error: concluded.error.map(Arc::from),
        backend: concluded.backend.map(Arc::from),
    };
    // What this client now knows the key holds, for its next cas.
    let seen = match (kind, concluded.outcome) {
        (OpKind::Read, Outcome::Ok) => op.value.clone(),
        (OpKind::Cas, Outcome::Ok) => value,
        _ => None,
    };
    if let Some(seen) = seen {
        if let Some(state) = user.get_session_data_mut::<ClientState>() {
            state.last_read = Some((key_index, seen));
        }
    }
    if shared.sink.send(op).is_err() && !shared.sink_closed.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the history sink was closed while the load runs: operations are no longer recorded"
        );
    }
    // Like a client given several endpoints: a node that refuses connections is left for the
    // next one. Only for connections never made, so no operation is ever sent twice.
    if never_sent && shared.profile.source.failover && shared.targets.len() > 1 {
        if let Some(state) = user.get_session_data_mut::<ClientState>() {
            state.target = (state.target + 1) % shared.targets.len();
            let next = &shared.targets[state.target];
            state.node = Arc::from(next.node.as_str());
            let url = next.base_url.clone();
            if let Err(error) = user.set_base_url(&url) {
                tracing::warn!("load client {client} cannot fail over to {url}: {error}");
            }
        }
    }
}

enum SendError {
    Http(reqwest::Error),
    Goose(String),
}

/// How an operation ended, before it becomes an [`Op`].
struct Concluded {
    outcome: Outcome,
    /// For a read, the value seen.
    value: Option<String>,
    error: Option<String>,
    backend: Option<String>,
}

/// The outcome of an operation that may have reached the server but got no usable answer: a
/// write may have been applied; a read changed nothing, so it simply failed.
fn after_sending(kind: OpKind) -> Outcome {
    match kind {
        OpKind::Write | OpKind::Cas => Outcome::Unknown,
        OpKind::Read => Outcome::Fail,
    }
}

/// Classifies a reply (reading its whole body) or a transport error.
async fn conclude(
    kind: OpKind,
    compiled: &CompiledProfile,
    served_by: Option<&str>,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Concluded {
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            // A connect error means no byte of the request left: it definitely did not happen.
            let outcome = if error.is_connect() {
                Outcome::Fail
            } else {
                after_sending(kind)
            };
            return Concluded {
                outcome,
                value: None,
                error: Some(describe(&error)),
                backend: None,
            };
        }
    };
    let backend = served_by
        .and_then(|name| response.headers().get(name))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => {
            return Concluded {
                outcome: after_sending(kind),
                value: None,
                error: Some(describe(&error)),
                backend,
            }
        }
    };
    let failed = |outcome, error: String| Concluded {
        outcome,
        value: None,
        error: Some(short(error)),
        backend: backend.clone(),
    };
    if !status.is_success() {
        if kind == OpKind::Read && compiled.is_absent_status(status.as_u16()) {
            return Concluded {
                outcome: Outcome::Ok,
                value: None,
                error: None,
                backend,
            };
        }
        let text = String::from_utf8_lossy(&body);
        return failed(
            after_sending(kind),
            format!("status {}: {}", status.as_u16(), text.trim()),
        );
    }
    let answered = |outcome| Concluded {
        outcome,
        value: None,
        error: None,
        backend: backend.clone(),
    };
    match kind {
        OpKind::Write => answered(Outcome::Ok),
        OpKind::Cas => match compiled.cas.as_ref().map(|cas| cas.succeeded(&body)) {
            Some(Ok(true)) => answered(Outcome::Ok),
            // The system answered that the compare failed: a definite no-op, no error.
            Some(Ok(false)) => answered(Outcome::Fail),
            Some(Err(error)) => failed(Outcome::Unknown, error),
            None => failed(
                Outcome::Unknown,
                "the profile has no cas request".to_string(),
            ),
        },
        OpKind::Read => match compiled.extract_value(&body) {
            Ok(value) => Concluded {
                outcome: Outcome::Ok,
                value,
                error: None,
                backend,
            },
            Err(error) => failed(Outcome::Fail, error),
        },
    }
}

/// A short text for a transport error: what failed and its innermost cause.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connect failed"
    } else if error.is_body() || error.is_decode() {
        "reading the reply failed"
    } else {
        "request failed"
    };
    let mut innermost = None;
    let mut cause = std::error::Error::source(error);
    while let Some(source) = cause {
        innermost = Some(source);
        cause = source.source();
    }
    match innermost {
        Some(source) => short(format!("{what}: {source}")),
        None => short(what.to_string()),
    }
}

fn short(mut text: String) -> String {
    if text.len() > ERROR_TEXT_MAX {
        let mut end = ERROR_TEXT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The HTTP client every load client and the read-back use: one timeout for the whole request
/// and for connecting (a connect timeout is a "never sent"), no retries of any kind.
fn http_client(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .retry(reqwest::retry::never())
        .no_proxy()
}

fn with_body_and_headers(
    mut builder: reqwest::RequestBuilder,
    rendered: &RenderedRequest,
) -> reqwest::RequestBuilder {
    for (name, value) in &rendered.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &rendered.body {
        builder = builder.body(body.clone());
    }
    builder
}

/// Parses every target's base URL; the first is goose's default host.
fn check_targets(targets: &[Target]) -> Result<Vec<Url>, LoadError> {
    if targets.is_empty() {
        return Err(LoadError::NoTargets);
    }
    targets
        .iter()
        .map(|target| {
            let bad = |reason: String| LoadError::BadTarget {
                node: target.node.clone(),
                url: target.base_url.clone(),
                reason,
            };
            let url = Url::parse(&target.base_url).map_err(|error| bad(error.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(bad(
                    "it needs an http or https scheme and a host".to_string()
                ));
            }
            Ok(url)
        })
        .collect()
}

fn micros_since(epoch: Instant) -> Micros {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(Micros::MAX)
}

fn kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Read => "read",
        OpKind::Write => "write",
        OpKind::Cas => "cas",
    }
}

fn goose_method(method: HttpMethod) -> GooseMethod {
    match method {
        HttpMethod::Get => GooseMethod::Get,
        HttpMethod::Head => GooseMethod::Head,
        HttpMethod::Post => GooseMethod::Post,
        HttpMethod::Put => GooseMethod::Put,
        HttpMethod::Patch => GooseMethod::Patch,
        HttpMethod::Delete => GooseMethod::Delete,
    }
}

/// The profile's method as the HTTP client names it.
pub fn reqwest_method(method: HttpMethod) -> reqwest::Method {
    match method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use testcontainers::core::{IntoContainerPort as _, WaitFor};
    use testcontainers::runners::AsyncRunner as _;
    use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;

    /// goose is process-global: the tests that run an attack take turns.
    static ONE_ATTACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    const ETCD_KV: &str = include_str!("../../loadprofiles/etcd-kv.yaml");

    fn small_profile(clients: u32, rate: f64, timeout: Duration) -> CompiledProfile {
        let mut profile: LoadProfile =
            serde_saphyr::from_str(ETCD_KV).expect("etcd-kv.yaml parses");
        profile.clients = clients;
        profile.rate = rate;
        profile.timeout = timeout;
        profile.keys.count = 20;
        profile.read_ratio = 0.5;
        // Each client stays on its target, so a dead target's operations stay visible.
        profile.failover = false;
        profile.compile().expect("the test profile is valid")
    }

    fn init_tracing() {
        // goose logs through `log`; the subscriber's bridge keeps it off stdout.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,goose=error"))
            .with_test_writer()
            .try_init();
    }

    async fn start_etcd() -> (ContainerAsync<GenericImage>, String) {
        // testcontainers would try to pull a missing image; a fresh machine builds it instead.
        let docker = bollard::Docker::connect_with_local_defaults()
            .expect("the tests need a Docker engine")
            .negotiate_version()
            .await
            .expect("the tests need a reachable Docker engine");
        crate::images::tests::ensure_bundled(&docker, "firedrill/etcd:3.4.23").await;
        let container = GenericImage::new("firedrill/etcd", "3.4.23")
            .with_exposed_port(2379.tcp())
            .with_wait_for(WaitFor::message_on_stderr("ready to serve client requests"))
            .with_cmd([
                "etcd",
                "--listen-client-urls=http://0.0.0.0:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
            ])
            .with_label("firedrill.managed", "true")
            .start()
            .await
            .expect("the local image firedrill/etcd:3.4.23 starts");
        let port = container
            .get_host_port_ipv4(2379.tcp())
            .await
            .expect("etcd's client port is published");
        let base_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let healthy = match client.get(format!("{base_url}/health")).send().await {
                Ok(response) => response
                    .text()
                    .await
                    .is_ok_and(|body| body.contains("true")),
                Err(_) => false,
            };
            if healthy {
                break;
            }
            assert!(Instant::now() < deadline, "etcd never became healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (container, base_url)
    }

    /// Runs the load for `run`, calling `during` once it has run for `lead`, and returns the
    /// history and goose's count.
    async fn run_load<F>(
        profile: &CompiledProfile,
        targets: &[Target],
        epoch: Instant,
        lead: Duration,
        during: F,
        tail: Duration,
    ) -> (Vec<Op>, GooseCount)
    where
        F: std::future::Future<Output = ()>,
    {
        let (sink, mut history) = unbounded_channel();
        let run = LoadRun::start(Arc::new(profile.clone()), targets.to_vec(), 42, epoch, sink)
            .expect("the load starts");
        tokio::time::sleep(lead).await;
        during.await;
        tokio::time::sleep(tail).await;
        let count = run.stop().await.expect("the load stops cleanly");
        let mut ops = Vec::new();
        // Every sender is gone once goose has finished, so this ends.
        while let Some(op) = history.recv().await {
            ops.push(op);
        }
        (ops, count)
    }

    fn percentile(sorted: &[u64], share: f64) -> u64 {
        sorted[((sorted.len() - 1) as f64 * share).round() as usize]
    }

    /// A one-answer HTTP server on a free port: it reads each request whole, then writes
    /// `reply` (or, when `reply` is empty, closes the connection without answering).
    async fn fake_server(reply: &'static str) -> Url {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(read) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        request.extend_from_slice(&chunk[..read]);
                        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|line| line.strip_prefix("content-length:"))
                                .and_then(|value| value.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    if !reply.is_empty() {
                        let _ = stream.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        Url::parse(&format!("http://{address}")).expect("url")
    }

    /// Sends `kind`'s request for key `k` to `base` and classifies the reply.
    async fn exchange(kind: OpKind, compiled: &CompiledProfile, base: &Url) -> Concluded {
        let client = http_client(Duration::from_secs(2)).build().expect("client");
        let rendered = match kind {
            OpKind::Write => compiled.write.render(&Fields {
                key: "k",
                value: "v",
                expected: "",
            }),
            OpKind::Read => compiled.read.render(&Fields::key("k")),
            OpKind::Cas => compiled
                .cas
                .as_ref()
                .expect("a cas request")
                .request
                .render(&Fields {
                    key: "k",
                    value: "v2",
                    expected: "v",
                }),
        };
        let url = base.join(&rendered.path).expect("url");
        let request = client.request(reqwest_method(rendered.method), url);
        let response = with_body_and_headers(request, &rendered).send().await;
        conclude(kind, compiled, Some("X-Served-By"), response).await
    }

    fn compiled_etcd() -> CompiledProfile {
        small_profile(1, 10.0, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn an_error_status_is_unknown_for_a_write_and_failed_for_a_read() {
        let base = fake_server(
            "HTTP/1.1 503 Service Unavailable\r\nX-Served-By: b2\r\ncontent-length: 4\r\n\r\nbusy",
        )
        .await;
        let compiled = compiled_etcd();
        let write = exchange(OpKind::Write, &compiled, &base).await;
        assert_eq!(write.outcome, Outcome::Unknown);
        assert_eq!(write.error.as_deref(), Some("status 503: busy"));
        assert_eq!(write.backend.as_deref(), Some("b2"));
        let read = exchange(OpKind::Read, &compiled, &base).await;
        assert_eq!(read.outcome, Outcome::Fail);
        assert_eq!(read.backend.as_deref(), Some("b2"));
    }

    #[tokio::test]
    async fn an_unreadable_reply_fails_a_read_but_acknowledges_a_write() {
        let base =
            fake_server("HTTP/1.1 200 OK\r\nX-Served-By: b1\r\ncontent-length: 4\r\n\r\noops")
                .await;
        let compiled = compiled_etcd();
        let write = exchange(OpKind::Write, &compiled, &base).await;
        assert_eq!(write.outcome, Outcome::Ok);
        assert_eq!(write.backend.as_deref(), Some("b1"));
        let read = exchange(OpKind::Read, &compiled, &base).await;
        assert_eq!(read.outcome, Outcome::Fail);
        assert!(read
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("reply is not JSON")));
    }

    #[tokio::test]
    async fn a_connection_closed_after_sending_is_unknown_for_a_write() {
        let base = fake_server("").await;
        let compiled = compiled_etcd();
        let write = exchange(OpKind::Write, &compiled, &base).await;
        assert_eq!(write.outcome, Outcome::Unknown, "{:?}", write.error);
        assert!(write
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("request failed")));
        let read = exchange(OpKind::Read, &compiled, &base).await;
        assert_eq!(read.outcome, Outcome::Fail);
    }

    #[tokio::test]
    async fn a_cas_reply_says_whether_it_took_effect() {
        let compiled = compiled_etcd();
        let reply = |body: &'static str| {
            let text = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            fake_server(Box::leak(text.into_boxed_str()))
        };
        let held = exchange(
            OpKind::Cas,
            &compiled,
            &reply(r#"{"succeeded":true}"#).await,
        )
        .await;
        assert_eq!((held.outcome, held.error), (Outcome::Ok, None));
        // The system answered that the compare failed: nothing happened, and no error.
        let refused = exchange(OpKind::Cas, &compiled, &reply(r#"{"header":{}}"#).await).await;
        assert_eq!((refused.outcome, refused.error), (Outcome::Fail, None));
        let garbled = exchange(OpKind::Cas, &compiled, &reply("oops").await).await;
        assert_eq!(garbled.outcome, Outcome::Unknown, "{:?}", garbled.error);
        assert!(garbled.error.is_some());
    }

    #[tokio::test]
    async fn a_status_the_profile_names_as_absent_is_an_ok_read_of_nothing() {
        let base = fake_server("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let mut compiled = small_profile(1, 10.0, Duration::from_secs(2));
        let read = exchange(OpKind::Read, &compiled, &base).await;
        assert_eq!(
            read.outcome,
            Outcome::Fail,
            "404 is no answer unless the profile says so"
        );
        compiled.source.read.absent_status = vec![404];
        let read = exchange(OpKind::Read, &compiled, &base).await;
        assert_eq!((read.outcome, read.value), (Outcome::Ok, None));
        assert_eq!(read.backend, None, "no X-Served-By header, no backend");
    }

    #[test]
    fn the_same_seed_gives_the_same_operations() {
        let sequence = |seed, client| {
            let mut script = OpScript::new(seed, client, &script_profile(0.5, 0.0, 100));
            (0..200).map(|_| script.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(sequence(7, 0), sequence(7, 0));
        assert_ne!(sequence(7, 0), sequence(7, 1));
        assert_ne!(sequence(7, 0), sequence(8, 0));
        let ops = sequence(7, 3);
        let reads = ops.iter().filter(|(kind, _)| *kind == OpKind::Read).count();
        assert!(
            (60..140).contains(&reads),
            "read share far from 0.5: {reads}/200"
        );
        assert!(ops.iter().all(|(_, key)| *key < 100));
        let only_writes = OpScript::new(7, 0, &script_profile(0.0, 0.0, 10))
            .next_op()
            .0;
        assert_eq!(only_writes, OpKind::Write);
        let mut with_cas = OpScript::new(7, 0, &script_profile(0.5, 0.2, 10));
        let cas = (0..1000)
            .filter(|_| with_cas.next_op().0 == OpKind::Cas)
            .count();
        assert!(
            (120..280).contains(&cas),
            "cas share far from 0.2: {cas}/1000"
        );
    }

    fn script_profile(read_ratio: f64, cas_ratio: f64, keys: u32) -> LoadProfile {
        let mut profile = small_profile(1, 10.0, Duration::from_secs(1)).source;
        (profile.read_ratio, profile.cas_ratio, profile.keys.count) = (read_ratio, cas_ratio, keys);
        profile
    }

    #[test]
    fn a_bad_target_is_refused_before_anything_runs() {
        let (sink, _history) = unbounded_channel();
        let profile = small_profile(1, 10.0, Duration::from_secs(1));
        let error = LoadRun::start(
            Arc::new(profile.clone()),
            Vec::new(),
            1,
            Instant::now(),
            sink.clone(),
        )
        .err()
        .expect("no targets is refused");
        assert!(matches!(error, LoadError::NoTargets), "{error}");
        let bad = Target {
            node: "n0".to_string(),
            base_url: "127.0.0.1:2379".to_string(),
        };
        let error = LoadRun::start(Arc::new(profile), vec![bad], 1, Instant::now(), sink)
            .err()
            .expect("a base URL without a scheme is refused");
        assert!(error.to_string().starts_with("target n0:"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_healthy_node_acknowledges_every_operation_and_keeps_every_write() {
        let _turn = ONE_ATTACK.lock().await;
        init_tracing();
        let (_etcd, base_url) = start_etcd().await;
        let targets = vec![Target {
            node: "etcd0".to_string(),
            base_url,
        }];
        let rate = 100.0;
        let profile = small_profile(3, rate, Duration::from_secs(2));
        let epoch = Instant::now();
        let ran = Duration::from_secs(3);
        let second = async {
            let (sink, _history) = unbounded_channel();
            let refused =
                LoadRun::start(Arc::new(profile.clone()), targets.clone(), 1, epoch, sink);
            assert!(
                matches!(refused, Err(LoadError::AlreadyRunning)),
                "a second attack started"
            );
        };
        let (ops, count) = run_load(&profile, &targets, epoch, ran, second, Duration::ZERO).await;

        assert!(ops.iter().any(|op| op.kind == OpKind::Read), "no reads");
        assert!(ops.iter().any(|op| op.kind == OpKind::Write), "no writes");
        // A cas compares against what its client last read there, and says which it was.
        let cas: Vec<&Op> = ops.iter().filter(|op| op.kind == OpKind::Cas).collect();
        assert!(
            cas.iter().any(|op| op.outcome == Outcome::Ok),
            "no cas took effect: {cas:?}"
        );
        assert!(
            cas.iter()
                .all(|op| op.expected.is_some() && op.value.is_some()),
            "a cas without its expected or new value: {cas:?}"
        );
        let bad: Vec<&Op> = ops.iter().filter(|op| !op.answered()).collect();
        assert!(bad.is_empty(), "not answered on a healthy node: {bad:?}");
        let verdict = firedrill_judge::linearizability::check(&ops, &Default::default());
        assert_eq!(
            verdict.linearizable,
            firedrill_types::summary::LinearizableVerdict::True,
            "{verdict:?}"
        );
        assert!(ops
            .iter()
            .all(|op| op.t_call <= op.t_return && &*op.node == "etcd0"));
        let ids: BTreeSet<u64> = ops.iter().map(|op| op.id).collect();
        assert_eq!(ids.len(), ops.len(), "operation ids repeat");
        let written: Vec<&Op> = ops
            .iter()
            .filter(|op| op.kind == OpKind::Write || op.kind == OpKind::Cas)
            .collect();
        let values: BTreeSet<&str> = written
            .iter()
            .filter_map(|op| op.value.as_deref())
            .collect();
        assert_eq!(
            values.len(),
            written.len(),
            "write values repeat or are missing"
        );
        let written: Vec<&Op> = written
            .into_iter()
            .filter(|op| op.outcome == Outcome::Ok)
            .collect();
        // The rate cap holds (with one slot of slack per client), and the load is not idle.
        let seconds = ran.as_secs_f64() + 0.5;
        assert!(
            (ops.len() as f64) <= rate * seconds + 3.0,
            "{} ops exceed the cap",
            ops.len()
        );
        assert!(
            ops.len() as f64 >= rate * ran.as_secs_f64() * 0.5,
            "only {} ops",
            ops.len()
        );
        // goose saw the same requests, but for those before its metrics reset at start-up.
        let recorded = ops.len() as u64;
        assert!(
            count.requests <= recorded && count.requests + 10 >= recorded,
            "goose counted {} requests, the history has {recorded}",
            count.requests
        );
        // goose counts a 2xx as success whatever its body says, so a failed compare too.
        assert_eq!(count.failures, 0);
        // A read of a key sees a value some write of that key carried (or nothing yet).
        let mut by_key: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for op in &written {
            by_key
                .entry(&op.key)
                .or_default()
                .insert(op.value.as_deref().unwrap_or(""));
        }
        for read in ops.iter().filter(|op| op.kind == OpKind::Read) {
            if let Some(seen) = &read.value {
                assert!(
                    by_key.get(&*read.key).is_some_and(|v| v.contains(&**seen)),
                    "read {read:?} saw a value never written to its key"
                );
            }
        }

        let keys: Vec<String> = by_key.keys().map(|key| key.to_string()).collect();
        let back = read_back(
            &profile,
            &targets,
            &keys,
            Instant::now() + Duration::from_secs(10),
            Instant::now(),
        )
        .await
        .expect("every key reads back");
        assert_eq!(back.len(), keys.len());
        for FinalValue { key, value, .. } in &back {
            let value = value.as_deref().expect("a written key is present");
            assert!(
                by_key[key.as_str()].contains(value),
                "{key} holds {value:?}, never written"
            );
        }
        let mut latencies: Vec<u64> = ops.iter().map(Op::latency_us).collect();
        latencies.sort_unstable();
        let span = (ops.iter().map(|op| op.t_return).max().unwrap_or(0)
            - ops.iter().map(|op| op.t_call).min().unwrap_or(0)) as f64
            / 1e6;
        println!(
            "healthy etcd: {} ops in {span:.2} s = {:.1} ops/s; latency p50 {} us, p99 {} us, max {} us; goose counted {}",
            ops.len(),
            ops.len() as f64 / span,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            count.requests
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_port_fails_its_operations_while_the_others_succeed() {
        let _turn = ONE_ATTACK.lock().await;
        init_tracing();
        let (_etcd, base_url) = start_etcd().await;
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let targets = vec![
            Target {
                node: "up".to_string(),
                base_url,
            },
            Target {
                node: "down".to_string(),
                base_url: format!("http://127.0.0.1:{closed_port}"),
            },
        ];
        let profile = small_profile(4, 80.0, Duration::from_secs(1));
        let (ops, count) = run_load(
            &profile,
            &targets,
            Instant::now(),
            Duration::from_secs(2),
            async {},
            Duration::ZERO,
        )
        .await;
        let down: Vec<&Op> = ops.iter().filter(|op| &*op.node == "down").collect();
        let up: Vec<&Op> = ops.iter().filter(|op| &*op.node == "up").collect();
        assert!(
            down.len() >= 10 && up.len() >= 10,
            "down {} up {}",
            down.len(),
            up.len()
        );
        for op in &down {
            assert_eq!(op.outcome, Outcome::Fail, "{op:?}");
            let error = op.error.as_deref().unwrap_or("");
            assert!(error.starts_with("connect failed"), "{op:?}");
            assert!(
                op.kind == OpKind::Read || op.value.is_some(),
                "a write keeps its value"
            );
        }
        assert!(down.iter().any(|op| op.kind == OpKind::Write));
        assert!(up.iter().all(|op| op.answered()), "{up:?}");
        // Clients 1 and 3 are pinned to the closed port, 0 and 2 to the node.
        assert!(down.iter().all(|op| op.client % 2 == 1));
        assert!(up.iter().all(|op| op.client % 2 == 0));
        assert!(count.failures > 0 && count.failures <= down.len() as u64);
    }

    /// Coordinated omission: while a paused node holds every client, a closed-loop tool
    /// sends nothing and so measures nothing; the operations that fell due meanwhile are
    /// simply missing. The schedule keeps them, so the stall shows in the latencies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stall_that_holds_every_client_shows_in_the_open_loop_latency() {
        let _turn = ONE_ATTACK.lock().await;
        init_tracing();
        let (etcd, base_url) = start_etcd().await;
        let targets = vec![Target {
            node: "etcd0".to_string(),
            base_url,
        }];
        // Longer than the stall: the stalled requests wait it out instead of timing out.
        let profile = small_profile(3, 100.0, Duration::from_secs(10));
        let stall = Duration::from_secs(2);
        let (ops, _count) = run_load(
            &profile,
            &targets,
            Instant::now(),
            Duration::from_secs(2),
            async {
                etcd.pause().await.expect("docker pause");
                tokio::time::sleep(stall).await;
                etcd.unpause().await.expect("docker unpause");
            },
            Duration::from_secs(3),
        )
        .await;
        assert!(ops.iter().all(Op::answered));
        let p99 = |f: fn(&Op) -> Micros| {
            let mut v: Vec<Micros> = ops.iter().map(f).collect();
            v.sort_unstable();
            percentile(&v, 0.99)
        };
        let (open, closed) = (p99(Op::latency_us), p99(Op::service_us));
        println!(
            "{} ops; p99 open loop {} ms, closed loop {} ms",
            ops.len(),
            open / 1000,
            closed / 1000
        );
        // About a fifth of the operations fell due during the stall and waited for its end,
        // so the open-loop p99 is near the stall; only the few requests in flight when it
        // began saw it from their own send time, far under 1 % of the history.
        let stall_us = stall.as_micros() as Micros;
        assert!(
            open >= stall_us / 2,
            "open-loop p99 {open} µs hides the stall"
        );
        assert!(
            closed * 4 <= open,
            "closed-loop p99 {closed} µs is expected to under-report the stall (open {open} µs)"
        );
        let most_behind = ops
            .iter()
            .map(|op| op.t_call.saturating_sub(op.t_intended))
            .max()
            .unwrap_or(0);
        assert!(
            most_behind >= stall_us / 2,
            "the schedule never fell behind"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_paused_node_are_unknown_not_failed() {
        let _turn = ONE_ATTACK.lock().await;
        init_tracing();
        let (etcd, base_url) = start_etcd().await;
        let targets = vec![Target {
            node: "etcd0".to_string(),
            base_url,
        }];
        let timeout = Duration::from_millis(500);
        let profile = small_profile(3, 60.0, timeout);
        let epoch = Instant::now();
        // The node is surely frozen from when `pause` returned until `unpause` was called.
        let frozen_from = AtomicU64::new(0);
        let frozen_until = AtomicU64::new(0);
        let resumed_at = AtomicU64::new(0);
        let (ops, _count) = run_load(
            &profile,
            &targets,
            epoch,
            Duration::from_secs(1),
            async {
                etcd.pause().await.expect("docker pause");
                frozen_from.store(micros_since(epoch), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(2)).await;
                frozen_until.store(micros_since(epoch), Ordering::SeqCst);
                etcd.unpause().await.expect("docker unpause");
                resumed_at.store(micros_since(epoch), Ordering::SeqCst);
            },
            Duration::from_millis(1500),
        )
        .await;
        let (frozen_from, frozen_until, resumed_at) = (
            frozen_from.into_inner(),
            frozen_until.into_inner(),
            resumed_at.into_inner(),
        );
        let timeout_us = timeout.as_micros() as u64;
        // Invoked while the node was frozen, and timed out before it resumed.
        let frozen: Vec<&Op> = ops
            .iter()
            .filter(|op| op.t_call >= frozen_from && op.t_call + timeout_us < frozen_until)
            .collect();
        let frozen_writes: Vec<&&Op> = frozen
            .iter()
            .filter(|op| op.kind == OpKind::Write)
            .collect();
        assert!(
            !frozen_writes.is_empty(),
            "no write was sent while the node was paused"
        );
        for op in &frozen {
            let expected = match op.kind {
                OpKind::Write | OpKind::Cas => Outcome::Unknown,
                OpKind::Read => Outcome::Fail,
            };
            assert_eq!(op.outcome, expected, "{op:?}");
            assert!(
                op.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("timed out")),
                "{op:?}"
            );
        }
        assert!(ops.iter().all(|op| op.kind == OpKind::Read
            || op.outcome != Outcome::Fail
            || op.compare_failed()));
        assert!(
            ops.iter()
                .any(|op| op.t_call > resumed_at && op.outcome == Outcome::Ok),
            "the load did not recover after the node resumed"
        );
        // An unknown write may or may not have been applied; either way the key holds a
        // value that some write (or cas) of it carried.
        let mut by_key: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for op in ops
            .iter()
            .filter(|op| matches!(op.kind, OpKind::Write | OpKind::Cas))
        {
            by_key
                .entry(&op.key)
                .or_default()
                .insert(op.value.as_deref().unwrap_or(""));
        }
        let keys: Vec<String> = by_key.keys().map(|key| key.to_string()).collect();
        let back = read_back(
            &profile,
            &targets,
            &keys,
            Instant::now() + Duration::from_secs(10),
            Instant::now(),
        )
        .await
        .expect("every key reads back");
        for FinalValue { key, value, .. } in &back {
            let value = value.as_deref().expect("a written key is present");
            assert!(
                by_key[key.as_str()].contains(value),
                "{key} holds {value:?}, never written"
            );
        }
        let unknown: Vec<&Op> = ops
            .iter()
            .filter(|op| op.outcome == Outcome::Unknown)
            .collect();
        let applied = unknown
            .iter()
            .filter(|op| {
                back.iter()
                    .any(|v| *v.key == *op.key && v.value.as_deref() == op.value.as_deref())
            })
            .count();
        println!(
            "paused etcd: {} ops, {} unknown writes ({applied} of them visible at read-back), {} failed reads",
            ops.len(),
            unknown.len(),
            ops.iter().filter(|op| op.outcome == Outcome::Fail).count()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_back_gives_up_at_its_deadline_naming_the_key() {
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let targets = vec![Target {
            node: "down".to_string(),
            base_url: format!("http://127.0.0.1:{closed_port}"),
        }];
        let profile = small_profile(1, 10.0, Duration::from_millis(200));
        let keys = vec!["fd/1".to_string(), "fd/2".to_string()];
        let started = Instant::now();
        let error = read_back(
            &profile,
            &targets,
            &keys,
            started + Duration::from_millis(500),
            started,
        )
        .await
        .expect_err("nothing answers");
        assert!(started.elapsed() < Duration::from_secs(2));
        match error {
            LoadError::ReadBackIncomplete {
                unread,
                total,
                key,
                error,
            } => {
                assert_eq!((unread, total, key.as_str()), (2, 2, "fd/1"));
                assert!(error.starts_with("connect failed"), "{error}");
            }
            other => panic!("unexpected error: {other}"),
        }
    }
}
