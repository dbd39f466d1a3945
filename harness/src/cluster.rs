//! The cluster: the compose topology as labelled containers on a private network, driven
//! through the Docker API.
//!
//! Every object carries the run's labels, so teardown (and `firedrill clean` after a killed
//! run) finds everything by label instead of trusting in-memory bookkeeping.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, ExecConfig, HostConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig, PortBinding,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::engine;
use firedrill_spec::compose::{Compose, MountSource, Service};
use firedrill_spec::plan::ContainerOp;

pub const LABEL_MANAGED: &str = "firedrill.managed";
pub const LABEL_RUN: &str = "firedrill.run";
pub const LABEL_PID: &str = "firedrill.pid";
pub const LABEL_NODE: &str = "firedrill.node";
/// Set on runs started with `--keep`: stale-run reaping leaves them to `firedrill clean`.
pub const LABEL_KEEP: &str = "firedrill.keep";
/// The machine the run's firedrill process runs on: on an engine shared by several
/// machines, stale-run reaping judges only its own machine's processes.
pub const LABEL_HOST: &str = "firedrill.host";

/// This machine's name, for [`LABEL_HOST`].
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Docker daemon {0}: start it (e.g. `systemctl start docker`), or point DOCKER_HOST at a running one")]
    NoDaemon(String),
    #[error("{0}: fix or remove it (`docker context use default`), or set DOCKER_HOST")]
    NoEngine(String),
    #[error("port 127.0.0.1:{port} that node `{node}` publishes is already in use: free it, or write `127.0.0.1::{container_port}` in the compose file so each run picks a free port")]
    PortInUse {
        node: String,
        port: u16,
        container_port: u16,
    },
    #[error("node `{0}` is not part of this cluster")]
    UnknownNode(String),
    #[error("node `{0}` has no address on the run's network (is it running and connected?)")]
    NoAddress(String),
    #[error("docker refused to {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("node `{node}` did not become healthy within {timeout:?}; its last health check said: {last}")]
    NotReady {
        node: String,
        timeout: Duration,
        last: String,
    },
    #[error("`{command}` in `{node}` did not finish within {timeout:?}")]
    ExecTimeout {
        node: String,
        command: String,
        timeout: Duration,
    },
    #[error("cannot write the log of `{node}`: {source}")]
    Log {
        node: String,
        #[source]
        source: std::io::Error,
    },
}

fn docker_err(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Docker { action, source }
}

/// Connects to the Docker daemon and checks that it answers.
/// The engine is `DOCKER_HOST`, else the Docker context (`DOCKER_CONTEXT`, else the Docker
/// CLI's current one), else the local socket (see [`crate::engine`]).
pub async fn connect() -> Result<Docker, ClusterError> {
    let engine = engine::resolve(&engine::Inputs::from_env()).map_err(ClusterError::NoEngine)?;
    let at = match engine.from.strip_prefix("context ") {
        Some(name) => format!("{} of Docker context {name}", engine.host),
        None => engine.host.clone(),
    };
    let unreachable = |e: bollard::errors::Error| ClusterError::NoDaemon(format!("at {at} ({e})"));
    let docker = Docker::connect_with_host(&engine.host).map_err(unreachable)?;
    let docker = docker.negotiate_version().await.map_err(unreachable)?;
    docker.ping().await.map_err(unreachable)?;
    if !engine.is_local() {
        tracing::info!(
            "remote Docker engine {at}: published ports are reached at {}",
            engine::published_host_for(
                &engine.host,
                std::env::var(engine::PUBLISHED_HOST_ENV).ok().as_deref()
            )
        );
    }
    engine::set_connected(engine);
    Ok(docker)
}

/// Where the ports the cluster publishes are reached from here: 127.0.0.1, or the host of a
/// remote engine. Every URL to a published port is built on it.
pub fn published_host() -> String {
    engine::published_host()
}

/// `http://HOST:PORT` of a published port (see [`published_host`]).
pub fn published_url(host_port: u16) -> String {
    format!("http://{}:{host_port}", published_host())
}

/// A container's state, as far as a verdict needs it.
#[derive(Debug, Clone)]
pub struct ContainerState {
    /// Running and not paused.
    pub running: bool,
    /// Docker's word for it: running, exited, paused, restarting…
    pub status: String,
    /// Set once the container has stopped.
    pub exit_code: Option<i64>,
}

/// What a command run in a container printed.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone)]
struct Node {
    container: String,
    image: String,
    /// Container port → host port on 127.0.0.1; fixed for the run so a restarted or
    /// replaced node is reached where the load already talks to it.
    ports: BTreeMap<u16, u16>,
    /// Environment set by a `replace` step over the compose file's.
    env: Vec<(String, String)>,
    /// Command and entrypoint set by a `replace` step instead of the compose file's.
    command: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    created: bool,
    /// The node was created at some point of the run: it is part of the run's story even
    /// if a step destroyed it since.
    ever_created: bool,
}

pub struct Cluster {
    docker: Docker,
    run_id: String,
    network: String,
    compose: Compose,
    logs_dir: PathBuf,
    labels: HashMap<String, String>,
    nodes: Mutex<BTreeMap<String, Node>>,
    log_tasks: Mutex<Vec<JoinHandle<()>>>,
    oneoffs: Mutex<u32>,
}

impl Cluster {
    /// Creates the network, volumes and containers of every service that starts with the
    /// cluster, and starts them all at once.
    pub async fn create(
        docker: &Docker,
        compose: &Compose,
        run_id: &str,
        keep: bool,
        logs_dir: &Path,
    ) -> Result<Cluster, ClusterError> {
        let labels = run_labels(run_id, keep, std::process::id(), &this_host());
        let mut nodes = BTreeMap::new();
        for s in &compose.services {
            let mut ports = BTreeMap::new();
            for p in &s.ports {
                let host = match p.host_port {
                    Some(h) => {
                        // Only a local engine's ports can be checked from here.
                        let local = engine::connected().is_none_or(|e| e.is_local());
                        if local && std::net::TcpListener::bind(("127.0.0.1", h)).is_err() {
                            return Err(ClusterError::PortInUse {
                                node: s.name.clone(),
                                port: h,
                                container_port: p.container_port,
                            });
                        }
                        h
                    }
                    None => free_port().map_err(|e| {
                        ClusterError::NoDaemon(format!("no free port on 127.0.0.1: {e}"))
                    })?,
                };
                ports.insert(p.container_port, host);
            }
            nodes.insert(
                s.name.clone(),
                Node {
                    container: object_name(run_id, &s.name),
                    image: s.image.clone(),
                    ports,
                    env: Vec::new(),
                    command: None,
                    entrypoint: None,
                    created: false,
                    ever_created: false,
                },
            );
        }
        let cluster = Cluster {
            docker: docker.clone(),
            run_id: run_id.to_string(),
            network: format!("fd-{run_id}"),
            compose: compose.clone(),
            logs_dir: logs_dir.to_path_buf(),
            labels,
            nodes: Mutex::new(nodes),
            log_tasks: Mutex::new(Vec::new()),
            oneoffs: Mutex::new(0),
        };
        docker
            .create_network(NetworkCreateRequest {
                name: cluster.network.clone(),
                driver: Some("bridge".into()),
                labels: Some(cluster.labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(docker_err(format!("create network {}", cluster.network)))?;
        for v in &compose.volumes {
            docker
                .create_volume(VolumeCreateRequest {
                    name: Some(cluster.volume_name(v)),
                    labels: Some(cluster.labels.clone()),
                    ..Default::default()
                })
                .await
                .map_err(docker_err(format!("create volume {v}")))?;
        }
        let starting: Vec<&Service> = compose
            .services
            .iter()
            .filter(|s| s.starts_with_cluster())
            .collect();
        let starts = starting.iter().map(|s| cluster.start(&s.name));
        for r in futures_util::future::join_all(starts).await {
            r?;
        }
        Ok(cluster)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    fn volume_name(&self, volume: &str) -> String {
        object_name(&self.run_id, volume)
    }

    fn node(&self, name: &str) -> Result<Node, ClusterError> {
        self.nodes
            .lock()
            .expect("node table")
            .get(name)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownNode(name.to_string()))
    }

    fn service(&self, name: &str) -> Result<&Service, ClusterError> {
        self.compose
            .service(name)
            .ok_or_else(|| ClusterError::UnknownNode(name.to_string()))
    }

    /// The host port (at [`published_host`]) where `node` publishes `container_port`.
    pub fn host_port(&self, node: &str, container_port: u16) -> Option<u16> {
        self.node(node).ok()?.ports.get(&container_port).copied()
    }

    /// The node's current image.
    pub fn image(&self, node: &str) -> Option<String> {
        self.node(node).ok().map(|n| n.image)
    }

    pub fn container_name(&self, node: &str) -> Option<String> {
        self.node(node).ok().map(|n| n.container)
    }

    fn container_body(
        &self,
        s: &Service,
        node: &Node,
        image: &str,
        labels: HashMap<String, String>,
    ) -> ContainerCreateBody {
        let binds = s
            .mounts
            .iter()
            .map(|m| {
                let source = match &m.source {
                    MountSource::Volume(v) => self.volume_name(v),
                    // Docker reads a relative source as a volume name.
                    MountSource::Bind(p) => std::path::absolute(p)
                        .unwrap_or_else(|_| p.clone())
                        .display()
                        .to_string(),
                };
                let mode = if m.read_only { ":ro" } else { "" };
                format!("{source}:{}{mode}", m.target)
            })
            .collect();
        let port_bindings = node
            .ports
            .iter()
            .map(|(c, h)| {
                (
                    format!("{c}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some(engine::bind_ip().into()),
                        host_port: Some(h.to_string()),
                    }]),
                )
            })
            .collect();
        ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: Some(s.name.clone()),
            cmd: node.command.clone().or_else(|| s.command.clone()),
            entrypoint: node.entrypoint.clone().or_else(|| s.entrypoint.clone()),
            env: Some(
                s.environment
                    .iter()
                    .filter(|(k, _)| !node.env.iter().any(|(o, _)| o == k))
                    .chain(node.env.iter())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            user: s.user.clone(),
            working_dir: s.working_dir.clone(),
            exposed_ports: Some(node.ports.keys().map(|c| format!("{c}/tcp")).collect()),
            labels: Some(labels),
            stop_timeout: s.stop_grace_period.map(|d| d.as_secs() as i64),
            host_config: Some(HostConfig {
                binds: Some(binds),
                port_bindings: Some(port_bindings),
                cap_add: (!s.cap_add.is_empty()).then(|| s.cap_add.clone()),
                network_mode: Some(self.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![s.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    fn node_labels(&self, node: &str) -> HashMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert(LABEL_NODE.into(), node.into());
        labels
    }

    /// Starts a node, creating its container first if it does not exist yet.
    pub async fn start(&self, name: &str) -> Result<(), ClusterError> {
        let node = self.node(name)?;
        if !node.created {
            let s = self.service(name)?;
            self.create_volumes(s).await?;
            let body = self.container_body(s, &node, &node.image, self.node_labels(name));
            self.docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(node.container.clone()),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .map_err(docker_err(format!("create container for {name}")))?;
            if let Some(n) = self.nodes.lock().expect("node table").get_mut(name) {
                n.created = true;
                n.ever_created = true;
            }
        }
        let since = unix_now();
        self.docker
            .start_container(&node.container, None)
            .await
            .map_err(docker_err(format!("start {name}")))?;
        self.follow_logs(name, &node.container, since);
        Ok(())
    }

    /// Creates the service's named volumes with the run's labels. A destroyed node's volumes
    /// must exist, labelled, before a container mounts them: Docker would otherwise make
    /// unlabelled ones that teardown cannot find. Creating an existing volume is a no-op.
    async fn create_volumes(&self, s: &Service) -> Result<(), ClusterError> {
        for m in &s.mounts {
            if let MountSource::Volume(v) = &m.source {
                self.docker
                    .create_volume(VolumeCreateRequest {
                        name: Some(self.volume_name(v)),
                        labels: Some(self.labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(docker_err(format!("create volume {v}")))?;
            }
        }
        Ok(())
    }

    /// Streams the container's output into `logs/<node>.log`, appending across restarts.
    fn follow_logs(&self, name: &str, container: &str, since: i32) {
        let docker = self.docker.clone();
        let path = self.logs_dir.join(format!("{name}.log"));
        let container = container.to_string();
        let task = tokio::spawn(async move {
            let Ok(mut file) = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
            else {
                return;
            };
            let mut logs = docker.logs(
                &container,
                Some(LogsOptions {
                    follow: true,
                    stdout: true,
                    stderr: true,
                    since,
                    ..Default::default()
                }),
            );
            while let Some(Ok(chunk)) = logs.next().await {
                let bytes = match chunk {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => message,
                    LogOutput::StdIn { .. } => continue,
                };
                if file.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = file.flush().await;
        });
        self.log_tasks.lock().expect("log tasks").push(task);
    }

    /// Stops, starts, kills, restarts, pauses or unpauses a node.
    pub async fn container_op(&self, name: &str, op: ContainerOp) -> Result<(), ClusterError> {
        let node = self.node(name)?;
        let c = &node.container;
        let action = format!("{} {name}", op.verb());
        match op {
            ContainerOp::Start => return self.start(name).await,
            ContainerOp::Stop => self
                .docker
                .stop_container(c, Some(self.stop_options(name)))
                .await
                .map_err(docker_err(action))?,
            ContainerOp::Kill => self
                .docker
                .kill_container(
                    c,
                    Some(KillContainerOptions {
                        signal: "KILL".into(),
                    }),
                )
                .await
                .map_err(docker_err(action))?,
            ContainerOp::Restart => {
                self.docker
                    .stop_container(c, Some(self.stop_options(name)))
                    .await
                    .map_err(docker_err(action))?;
                return self.start(name).await;
            }
            ContainerOp::Pause => self
                .docker
                .pause_container(c)
                .await
                .map_err(docker_err(action))?,
            ContainerOp::Unpause => self
                .docker
                .unpause_container(c)
                .await
                .map_err(docker_err(action))?,
        }
        Ok(())
    }

    fn stop_options(&self, name: &str) -> StopContainerOptions {
        let grace = self
            .compose
            .service(name)
            .and_then(|s| s.stop_grace_period)
            .unwrap_or(Duration::from_secs(10));
        StopContainerOptions {
            t: Some(grace.as_secs() as i32),
            ..Default::default()
        }
    }

    /// Replaces the node's container with one running `image`, with the same volumes,
    /// network name and ports: swapping the binary, keeping the data. `env`, `command` and
    /// `entrypoint` replace those of the previous `replace` (the compose file's when empty
    /// or `None`); the image stays for later starts.
    pub async fn replace(
        &self,
        name: &str,
        image: Option<&str>,
        env: &[(String, String)],
        command: Option<&[String]>,
        entrypoint: Option<&[String]>,
    ) -> Result<(), ClusterError> {
        self.remove_container_of(name).await?;
        if let Some(n) = self.nodes.lock().expect("node table").get_mut(name) {
            if let Some(image) = image {
                n.image = image.to_string();
            }
            n.env = env.to_vec();
            n.command = command.map(<[String]>::to_vec);
            n.entrypoint = entrypoint.map(<[String]>::to_vec);
        }
        self.start(name).await
    }

    /// Removes a node's container and the named volumes given, as when a machine is lost
    /// for good. Starting the node again creates it afresh.
    pub async fn destroy(&self, name: &str, volumes: &[String]) -> Result<(), ClusterError> {
        self.remove_container_of(name).await?;
        for v in volumes {
            self.docker
                .remove_volume(
                    &self.volume_name(v),
                    Some(RemoveVolumeOptions { force: true }),
                )
                .await
                .map_err(docker_err(format!("remove volume {v} of {name}")))?;
        }
        Ok(())
    }

    /// Removes the node's container, if it has one; the next start creates it afresh.
    async fn remove_container_of(&self, name: &str) -> Result<(), ClusterError> {
        let node = self.node(name)?;
        if node.created {
            self.docker
                .remove_container(
                    &node.container,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(docker_err(format!("remove the container of {name}")))?;
        }
        if let Some(n) = self.nodes.lock().expect("node table").get_mut(name) {
            n.created = false;
        }
        Ok(())
    }

    /// The node's address on the run's network.
    pub async fn ip(&self, name: &str) -> Result<String, ClusterError> {
        let node = self.node(name)?;
        let info = self
            .docker
            .inspect_container(&node.container, None)
            .await
            .map_err(docker_err(format!("inspect {name}")))?;
        info.network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&self.network))
            .and_then(|e| e.ip_address)
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| ClusterError::NoAddress(name.to_string()))
    }

    /// Every node that had a container at some point of the run, with whether it still
    /// has one.
    pub fn nodes_had(&self) -> Vec<(String, bool)> {
        self.nodes
            .lock()
            .expect("node table")
            .iter()
            .filter(|(_, n)| n.ever_created)
            .map(|(k, n)| (k.clone(), n.created))
            .collect()
    }

    /// The node's container as Docker sees it now; `None` when it has none.
    pub async fn container_state(&self, name: &str) -> Option<ContainerState> {
        let node = self.node(name).ok()?;
        if !node.created {
            return None;
        }
        let state = self
            .docker
            .inspect_container(&node.container, None)
            .await
            .ok()?
            .state?;
        Some(ContainerState {
            running: state.running == Some(true) && state.paused != Some(true),
            status: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            exit_code: state.exit_code.filter(|_| state.running != Some(true)),
        })
    }

    /// The last `lines` lines of the node's output.
    pub async fn log_tail(&self, name: &str, lines: usize) -> Vec<String> {
        let Ok(node) = self.node(name) else {
            return Vec::new();
        };
        let mut logs = self.docker.logs(
            &node.container,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        text.lines().map(str::to_string).collect()
    }

    /// The node's output since `since` (seconds since the epoch, as Docker takes it), each
    /// line with the time Docker received it, in microseconds since the epoch. Output of
    /// the node's earlier containers (before a `replace`) is not included.
    pub async fn log_lines_since(
        &self,
        name: &str,
        since: i32,
    ) -> Result<Vec<(i64, String)>, ClusterError> {
        let node = self.node(name)?;
        let mut logs = self.docker.logs(
            &node.container,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                timestamps: true,
                since,
                ..Default::default()
            }),
        );
        let mut text = String::new();
        while let Some(chunk) = logs.next().await {
            text.push_str(
                &chunk
                    .map_err(docker_err(format!("read the output of {name}")))?
                    .to_string(),
            );
        }
        Ok(text
            .lines()
            .filter_map(|l| {
                let (stamp, line) = l.split_once(' ')?;
                let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
                Some((at.timestamp_micros(), line.to_string()))
            })
            .collect())
    }

    /// Whether the node passes its compose healthcheck now (no check: it passes).
    pub async fn health(&self, name: &str) -> Result<(), String> {
        let check = match self.service(name) {
            Ok(s) => s.healthcheck.clone(),
            Err(e) => return Err(e.to_string()),
        };
        let Some(check) = check else {
            return Ok(());
        };
        match self
            .exec_argv(name, check.test.clone(), check.timeout)
            .await
        {
            Ok(out) if out.exit_code == 0 => Ok(()),
            Ok(out) => Err(format!(
                "exit {}: {}{}",
                out.exit_code,
                out.stdout.trim(),
                out.stderr.trim()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Every node whose container exists.
    pub fn created_nodes(&self) -> Vec<String> {
        self.nodes
            .lock()
            .expect("node table")
            .iter()
            .filter(|(_, n)| n.created)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Labels for another object of this run (a sidecar), named `what`.
    pub fn labels_for(&self, what: &str) -> HashMap<String, String> {
        self.node_labels(what)
    }

    /// Disconnects a node from the run's network, or connects it again under its name.
    pub async fn set_connected(&self, name: &str, connected: bool) -> Result<(), ClusterError> {
        let node = self.node(name)?;
        if connected {
            self.docker
                .connect_network(
                    &self.network,
                    NetworkConnectRequest {
                        container: node.container.clone(),
                        endpoint_config: Some(EndpointSettings {
                            aliases: Some(vec![name.to_string()]),
                            ..Default::default()
                        }),
                    },
                )
                .await
                .map_err(docker_err(format!("connect {name}")))
        } else {
            self.docker
                .disconnect_network(
                    &self.network,
                    NetworkDisconnectRequest {
                        container: node.container.clone(),
                        force: Some(true),
                    },
                )
                .await
                .map_err(docker_err(format!("disconnect {name}")))
        }
    }

    /// Runs `command` through `sh -c` inside a running node.
    pub async fn exec(
        &self,
        name: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        let argv = vec!["sh".to_string(), "-c".to_string(), command.to_string()];
        self.exec_argv(name, argv, timeout).await
    }

    pub async fn exec_argv(
        &self,
        name: &str,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        let node = self.node(name)?;
        self.exec_container(&node.container, name, argv, timeout)
            .await
    }

    /// Runs `argv` in any container of this run (a node or a fault sidecar); `label` names it
    /// in errors.
    pub async fn exec_container(
        &self,
        container: &str,
        label: &str,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        let shown = argv.join(" ");
        let exec = self
            .docker
            .create_exec(
                container,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err(format!("run `{shown}` in {label}")))?;
        let collect = async {
            let mut out = ExecOutput::default();
            let started = self
                .docker
                .start_exec(&exec.id, None::<StartExecOptions>)
                .await
                .map_err(docker_err(format!("run `{shown}` in {label}")))?;
            if let StartExecResults::Attached { mut output, .. } = started {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(docker_err(format!(
                        "read the output of `{shown}` in {label}"
                    )))? {
                        LogOutput::StdErr { message } => {
                            out.stderr.push_str(&String::from_utf8_lossy(&message))
                        }
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            out.stdout.push_str(&String::from_utf8_lossy(&message))
                        }
                        LogOutput::StdIn { .. } => {}
                    }
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(docker_err(format!("inspect `{shown}` in {label}")))?;
            out.exit_code = inspect.exit_code.unwrap_or(-1);
            Ok(out)
        };
        tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| ClusterError::ExecTimeout {
                node: label.to_string(),
                command: shown,
                timeout,
            })?
    }

    /// Runs `command` in a one-off container that has the node's volumes and network (the
    /// node itself is usually stopped), e.g. to restore a snapshot into its data directory.
    pub async fn run_oneoff(
        &self,
        name: &str,
        image: Option<&str>,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        let node = self.node(name)?;
        let s = self.service(name)?;
        let n = {
            let mut count = self.oneoffs.lock().expect("one-off counter");
            *count += 1;
            *count
        };
        // The node may have been destroyed with its volumes (a restore into fresh ones).
        self.create_volumes(s).await?;
        let container = format!("{}-run{n}", node.container);
        let mut labels = self.labels.clone();
        labels.insert(LABEL_NODE.into(), format!("{name}-run{n}"));
        let no_ports = Node {
            ports: BTreeMap::new(),
            ..node.clone()
        };
        let mut body = self.container_body(s, &no_ports, image.unwrap_or(&node.image), labels);
        body.entrypoint = Some(vec![]);
        body.cmd = Some(vec!["sh".into(), "-c".into(), command.into()]);
        if let Some(net) = body
            .networking_config
            .as_mut()
            .and_then(|c| c.endpoints_config.as_mut())
        {
            // Not reachable under the node's name: the node may come back meanwhile.
            net.values_mut().for_each(|e| e.aliases = None);
        }
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(container.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(docker_err(format!("create a one-off container for {name}")))?;
        let result = self.run_to_completion(&container, command, timeout).await;
        let _ = self
            .docker
            .remove_container(
                &container,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        result
    }

    async fn run_to_completion(
        &self,
        container: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(docker_err(format!("start {container}")))?;
        let wait = async {
            let mut waits = self.docker.wait_container(container, None);
            let mut code = -1;
            while let Some(w) = waits.next().await {
                match w {
                    Ok(r) => code = r.status_code,
                    // A non-zero exit arrives as an error carrying the code.
                    Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                        code = c
                    }
                    Err(e) => return Err(docker_err(format!("wait for {container}"))(e)),
                }
            }
            Ok(code)
        };
        let exit_code = tokio::time::timeout(timeout, wait).await.map_err(|_| {
            ClusterError::ExecTimeout {
                node: container.to_string(),
                command: command.to_string(),
                timeout,
            }
        })??;
        let mut out = ExecOutput {
            exit_code,
            ..Default::default()
        };
        let mut logs = self.docker.logs(
            container,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        while let Some(Ok(chunk)) = logs.next().await {
            match chunk {
                LogOutput::StdErr { message } => {
                    out.stderr.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out.stdout.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok(out)
    }

    /// Nodes whose containers exist and run.
    pub async fn running_nodes(&self) -> Vec<String> {
        let nodes: Vec<(String, Node)> = self
            .nodes
            .lock()
            .expect("node table")
            .iter()
            .filter(|(_, n)| n.created)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut running = Vec::new();
        for (name, node) in nodes {
            let state = self
                .docker
                .inspect_container(&node.container, None)
                .await
                .ok()
                .and_then(|i| i.state);
            if state.is_some_and(|s| s.running == Some(true) && s.paused != Some(true)) {
                running.push(name);
            }
        }
        running
    }

    /// Waits until every node in `names` passes its compose healthcheck (run by firedrill
    /// at a short interval, not by Docker, so readiness is seen within a fraction of a second).
    pub async fn wait_healthy(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        let waits = names
            .iter()
            .map(|n| self.wait_node_healthy(n, deadline, timeout));
        for r in futures_util::future::join_all(waits).await {
            r?;
        }
        Ok(())
    }

    async fn wait_node_healthy(
        &self,
        name: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let Some(check) = self.service(name)?.healthcheck.clone() else {
            return Ok(());
        };
        let mut last = String::from("(no check ran yet)");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClusterError::NotReady {
                    node: name.to_string(),
                    timeout,
                    last,
                });
            }
            match self
                .exec_argv(name, check.test.clone(), check.timeout.min(left))
                .await
            {
                Ok(out) if out.exit_code == 0 => return Ok(()),
                Ok(out) => {
                    last = format!(
                        "exit {}: {}{}",
                        out.exit_code,
                        out.stdout.trim(),
                        out.stderr.trim()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200).min(left)).await;
        }
    }

    /// Removes everything of this run.
    pub async fn teardown(self) -> Result<Reaped, ClusterError> {
        let reaped = reap(&self.docker, Some(&self.run_id)).await;
        for t in self.log_tasks.lock().expect("log tasks").drain(..) {
            t.abort();
        }
        reaped
    }
}

/// The labels every object of a run carries.
fn run_labels(run_id: &str, keep: bool, pid: u32, host: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_PID.to_string(), pid.to_string()),
        (LABEL_KEEP.to_string(), keep.to_string()),
        (LABEL_HOST.to_string(), host.to_string()),
    ])
}

/// The Docker name of a run's container or volume: unique per run, so runs never collide.
fn object_name(run_id: &str, what: &str) -> String {
    format!("fd-{run_id}-{what}")
}

/// The list filter for one run's objects, or for every firedrill object.
fn label_filter(run_id: Option<&str>) -> HashMap<String, Vec<String>> {
    let label = match run_id {
        Some(id) => format!("{LABEL_RUN}={id}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    HashMap::from([("label".to_string(), vec![label])])
}

/// The run an object with these labels belongs to, when that run is stale: its harness
/// process (on this machine, `me`) is no longer `alive` and the run was not kept.
fn stale_run<'a>(
    labels: &'a HashMap<String, String>,
    me: &str,
    alive: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let (run, pid) = (labels.get(LABEL_RUN)?, labels.get(LABEL_PID)?);
    let kept = labels.get(LABEL_KEEP).is_some_and(|k| k == "true");
    // Another machine's process cannot be looked up here: leave its runs alone.
    let elsewhere = labels.get(LABEL_HOST).is_some_and(|h| h != me);
    (!kept && !elsewhere && !alive(pid)).then_some(run.as_str())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn unix_now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0)
}

/// What a reap removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub containers: usize,
    pub volumes: usize,
    pub networks: usize,
}

impl Reaped {
    pub fn total(&self) -> usize {
        self.containers + self.volumes + self.networks
    }
}

/// Removes every object of one run, or of all firedrill runs when `run_id` is `None`.
pub async fn reap(docker: &Docker, run_id: Option<&str>) -> Result<Reaped, ClusterError> {
    let filters = label_filter(run_id);
    let mut reaped = Reaped::default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(docker_err("list containers"))?;
    let removals = containers
        .iter()
        .filter_map(|c| c.id.clone())
        .map(|id| async move {
            docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
        });
    for r in futures_util::future::join_all(removals).await {
        r.map_err(docker_err("remove a container"))?;
        reaped.containers += 1;
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(docker_err("list volumes"))?;
    for v in volumes.volumes.unwrap_or_default() {
        docker
            .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
            .await
            .map_err(docker_err(format!("remove volume {}", v.name)))?;
        reaped.volumes += 1;
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(docker_err("list networks"))?;
    for n in networks {
        if let Some(id) = n.id {
            docker
                .remove_network(&id)
                .await
                .map_err(docker_err(format!(
                    "remove network {}",
                    n.name.unwrap_or_default()
                )))?;
            reaped.networks += 1;
        }
    }
    Ok(reaped)
}

/// Removes what runs left behind when their harness process died (SIGKILL, a crash),
/// leaving runs that are still going and runs kept on purpose with `--keep`.
pub async fn reap_stale(docker: &Docker) -> Result<Reaped, ClusterError> {
    let filters = label_filter(None);
    let mut runs: BTreeMap<String, bool> = BTreeMap::new();
    let me = this_host();
    let alive = |pid: &str| Path::new(&format!("/proc/{pid}")).exists();
    let mut note = |labels: Option<&HashMap<String, String>>| {
        if let Some(run) = labels.and_then(|l| stale_run(l, &me, alive)) {
            runs.insert(run.to_string(), true);
        }
    };
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(docker_err("list containers"))?;
    containers.iter().for_each(|c| note(c.labels.as_ref()));
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(docker_err("list volumes"))?;
    volumes
        .volumes
        .unwrap_or_default()
        .iter()
        .for_each(|v| note(Some(&v.labels)));
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(docker_err("list networks"))?;
    networks.iter().for_each(|n| note(n.labels.as_ref()));
    let mut total = Reaped::default();
    for run in runs.keys() {
        let r = reap(docker, Some(run)).await?;
        total.containers += r.containers;
        total.volumes += r.volumes;
        total.networks += r.networks;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_of_a_run_carries_its_labels() {
        let l = run_labels("6d7dc96b", true, 4242, "ci-7");
        assert_eq!(l[LABEL_MANAGED], "true");
        assert_eq!(l[LABEL_RUN], "6d7dc96b");
        assert_eq!(l[LABEL_PID], "4242");
        assert_eq!(l[LABEL_KEEP], "true");
        assert_eq!(l[LABEL_HOST], "ci-7");
        assert_eq!(l.len(), 5);
        assert_eq!(run_labels("r", false, 1, "h")[LABEL_KEEP], "false");
    }

    #[test]
    fn names_carry_the_run_id() {
        assert_eq!(object_name("6d7dc96b", "kv1"), "fd-6d7dc96b-kv1");
    }

    #[test]
    fn reaping_filters_by_run_or_by_the_managed_label() {
        assert_eq!(
            label_filter(Some("6d7dc96b"))["label"],
            ["firedrill.run=6d7dc96b"]
        );
        assert_eq!(label_filter(None)["label"], ["firedrill.managed=true"]);
    }

    #[test]
    fn a_run_is_stale_only_when_its_process_here_is_gone_and_it_was_not_kept() {
        let labels = |keep: bool, host: &str| run_labels("r1", keep, 4242, host);
        let dead = |_: &str| false;
        let alive = |pid: &str| pid == "4242";
        assert_eq!(stale_run(&labels(false, "me"), "me", dead), Some("r1"));
        assert_eq!(
            stale_run(&labels(false, "me"), "me", alive),
            None,
            "running"
        );
        assert_eq!(stale_run(&labels(true, "me"), "me", dead), None, "--keep");
        assert_eq!(
            stale_run(&labels(false, "other"), "me", dead),
            None,
            "another machine's process cannot be looked up"
        );
        // Labels written before the host label existed: judged here.
        let mut old = labels(false, "me");
        old.remove(LABEL_HOST);
        assert_eq!(stale_run(&old, "me", dead), Some("r1"));
        // Not a run's object at all.
        old.remove(LABEL_PID);
        assert_eq!(stale_run(&old, "me", dead), None);
    }

    #[test]
    fn reaped_totals_every_kind() {
        let r = Reaped {
            containers: 3,
            volumes: 2,
            networks: 1,
        };
        assert_eq!(r.total(), 6);
        assert_eq!(Reaped::default().total(), 0);
    }
}
