//! Network faults, injected without touching the target's image: a sidecar container
//! shares the node's network namespace (with NET_ADMIN) and runs iptables or tc there.
//!
//! Rules live in chains of their own (`FIREDRILL-IN` from INPUT, `FIREDRILL-OUT` from
//! OUTPUT), so healing is one flush and a rule on arriving traffic never touches the node's
//! own outgoing connections. Sidecars
//! carry the run's labels: teardown and `firedrill clean` remove them (and with them any
//! rule, since the rules die with the namespace's last container) even after a crash.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use tokio::sync::Mutex;

use crate::cluster::{Cluster, ClusterError};

const CHAIN_IN: &str = "FIREDRILL-IN";
const CHAIN_OUT: &str = "FIREDRILL-OUT";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("no fault image is set: add `fault_image: <an image with iptables and iproute2>` under `cluster:` in the scenario")]
    NoImage,
    #[error("`{command}` failed in the fault sidecar of {node} (exit {code}): {output}")]
    Command {
        node: String,
        command: String,
        code: i64,
        output: String,
    },
    #[error("network emulation (tc netem) is not available on this kernel ({0}): latency and loss faults cannot run here; use a partition or a `reject` fault instead")]
    NoNetem(String),
}

/// Who cannot talk to whom.
#[derive(Debug, Clone, PartialEq)]
pub enum Partition {
    /// The node can reach none of its peers, and none of them can reach it.
    Isolate(String),
    /// No traffic between nodes of different groups; nodes not listed are untouched.
    Groups(Vec<Vec<String>>),
    /// Packets from `from` no longer arrive at the `to` nodes; the other way still works
    /// at the packet level (TCP connections from either side then stall: it is one-way
    /// only for what does not need replies).
    OneWay { from: String, to: Vec<String> },
}

/// Injects faults into one run's cluster and remembers every sidecar it started.
pub struct Faults<'a> {
    cluster: &'a Cluster,
    image: Option<String>,
    /// Node → its sidecar container, and when the node's container started: a node started
    /// again has a new network namespace, which needs a new sidecar.
    sidecars: Mutex<BTreeMap<String, (String, String)>>,
}

impl<'a> Faults<'a> {
    pub fn new(cluster: &'a Cluster, image: Option<String>) -> Self {
        Faults {
            cluster,
            image,
            sidecars: Mutex::new(BTreeMap::new()),
        }
    }

    /// The sidecar in `node`'s network namespace, started on first use with the chain hooked in.
    async fn sidecar(&self, node: &str) -> Result<String, FaultError> {
        let mut sidecars = self.sidecars.lock().await;
        let image = self.image.clone().ok_or(FaultError::NoImage)?;
        let target = self
            .cluster
            .container_name(node)
            .ok_or_else(|| ClusterError::UnknownNode(node.to_string()))?;
        let docker = self.cluster.docker();
        let started = docker
            .inspect_container(&target, None)
            .await
            .map_err(|source| ClusterError::Docker {
                action: format!("inspect {node}"),
                source,
            })?
            .state
            .and_then(|s| s.started_at)
            .unwrap_or_default();
        match sidecars.get(node) {
            Some((c, at)) if *at == started => return Ok(c.clone()),
            // The node restarted since: its old namespace (and the rules in it) are gone.
            Some((c, _)) => remove_sidecar(self.cluster, node, c).await?,
            None => {}
        }
        let name = format!("{target}-fault-{}", unix_nanos());
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(image),
                    entrypoint: Some(vec![]),
                    cmd: Some(vec!["sleep".into(), "infinity".into()]),
                    labels: Some(self.cluster.labels_for(&format!("{node}-fault"))),
                    host_config: Some(HostConfig {
                        network_mode: Some(format!("container:{target}")),
                        cap_add: Some(vec!["NET_ADMIN".into()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .map_err(|source| ClusterError::Docker {
                action: format!("create the fault sidecar of {node}"),
                source,
            })?;
        docker
            .start_container(&name, None)
            .await
            .map_err(|source| ClusterError::Docker {
                action: format!("start the fault sidecar of {node}"),
                source,
            })?;
        sidecars.insert(node.to_string(), (name.clone(), started));
        drop(sidecars);
        let hook = [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")]
            .map(|(chain, from)| {
                format!(
                    "(iptables -N {chain} 2>/dev/null || iptables -F {chain}) && \
                     (iptables -C {from} -j {chain} 2>/dev/null || iptables -I {from} -j {chain})"
                )
            })
            .join(" && ");
        self.run(node, &name, &hook).await?;
        Ok(name)
    }

    async fn run(&self, node: &str, sidecar: &str, command: &str) -> Result<String, FaultError> {
        let argv = vec!["sh".into(), "-c".into(), command.to_string()];
        let out = self
            .cluster
            .exec_container(
                sidecar,
                &format!("{node}'s fault sidecar"),
                argv,
                COMMAND_TIMEOUT,
            )
            .await?;
        if out.exit_code != 0 {
            return Err(FaultError::Command {
                node: node.to_string(),
                command: command.to_string(),
                code: out.exit_code,
                output: format!("{}{}", out.stderr.trim(), out.stdout.trim()),
            });
        }
        Ok(out.stdout)
    }

    /// Adds rules to `node`'s chain; returns the commands, for the transcript.
    async fn add_rules(&self, node: &str, rules: &[(&str, String)]) -> Result<String, FaultError> {
        let sidecar = self.sidecar(node).await?;
        let script: Vec<String> = rules
            .iter()
            .map(|(chain, r)| format!("iptables -A {chain} {r}"))
            .collect();
        let script = script.join(" && ");
        self.run(node, &sidecar, &script).await?;
        Ok(format!("[{node}] {script}\n"))
    }

    /// Cuts traffic as the partition says; returns what was done.
    pub async fn partition(&self, p: &Partition) -> Result<String, FaultError> {
        let all = self.cluster.created_nodes();
        let mut ips = BTreeMap::new();
        for n in &all {
            ips.insert(n.clone(), self.cluster.ip(n).await?);
        }
        let ip = |n: &str| {
            ips.get(n)
                .cloned()
                .ok_or_else(|| ClusterError::NoAddress(n.to_string()))
        };
        // Rules per node: drop what comes from, and what goes to, the listed addresses.
        let mut rules: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
        match p {
            Partition::Isolate(node) => {
                for peer in all.iter().filter(|n| *n != node) {
                    let addr = ip(peer)?;
                    let r = rules.entry(node.clone()).or_default();
                    r.push((CHAIN_IN, format!("-s {addr} -j DROP")));
                    r.push((CHAIN_OUT, format!("-d {addr} -j DROP")));
                }
            }
            Partition::Groups(groups) => {
                for (i, g) in groups.iter().enumerate() {
                    for other in groups.iter().skip(i + 1) {
                        for a in g {
                            for b in other {
                                let addr = ip(b)?;
                                let r = rules.entry(a.clone()).or_default();
                                r.push((CHAIN_IN, format!("-s {addr} -j DROP")));
                                r.push((CHAIN_OUT, format!("-d {addr} -j DROP")));
                            }
                        }
                    }
                }
            }
            Partition::OneWay { from, to } => {
                let addr = ip(from)?;
                for b in to {
                    rules
                        .entry(b.clone())
                        .or_default()
                        .push((CHAIN_IN, format!("-s {addr} -j DROP")));
                }
            }
        }
        let mut done = String::new();
        for (node, r) in rules {
            done.push_str(&self.add_rules(&node, &r).await?);
        }
        Ok(done)
    }

    /// Rejects (TCP reset) a random share of the packets, or of the new connections, that
    /// arrive at `port` on `node`.
    pub async fn reject(
        &self,
        node: &str,
        port: u16,
        share: f64,
        connections_only: bool,
    ) -> Result<String, FaultError> {
        let syn = if connections_only { " --syn" } else { "" };
        let rule = format!(
            "-p tcp --dport {port}{syn} -m statistic --mode random --probability {share} -j REJECT --reject-with tcp-reset"
        );
        self.add_rules(node, &[(CHAIN_IN, rule)]).await
    }

    /// Adds delay and/or loss on the node's interface with tc netem, where the kernel has it.
    pub async fn netem(
        &self,
        node: &str,
        delay: Option<Duration>,
        loss: Option<f64>,
    ) -> Result<String, FaultError> {
        let sidecar = self.sidecar(node).await?;
        let mut spec = String::new();
        if let Some(d) = delay {
            spec.push_str(&format!(" delay {}ms", d.as_millis()));
        }
        if let Some(l) = loss {
            spec.push_str(&format!(" loss {}%", l * 100.0));
        }
        let command = format!("tc qdisc replace dev eth0 root netem{spec}");
        match self.run(node, &sidecar, &command).await {
            Err(FaultError::Command { output, .. })
                if output.contains("qdisc kind is unknown") || output.contains("No such file") =>
            {
                Err(FaultError::NoNetem(output))
            }
            Err(e) => Err(e),
            Ok(_) => Ok(format!("[{node}] {command}\n")),
        }
    }

    /// Removes every injected rule (of one node, or all), and their sidecars.
    pub async fn heal(&self, node: Option<&str>) -> Result<String, FaultError> {
        let targets: Vec<(String, String)> = {
            let sidecars = self.sidecars.lock().await;
            sidecars
                .iter()
                .filter(|(n, _)| node.is_none_or(|x| x == n.as_str()))
                .map(|(n, (c, _))| (n.clone(), c.clone()))
                .collect()
        };
        let mut done = String::new();
        for (n, sidecar) in targets {
            // The namespace may be gone (the node was stopped or removed): nothing to flush then.
            let flush = format!(
                "iptables -F {CHAIN_IN}; iptables -F {CHAIN_OUT}; tc qdisc del dev eth0 root 2>/dev/null; true"
            );
            let _ = self.run(&n, &sidecar, &flush).await;
            remove_sidecar(self.cluster, &n, &sidecar).await?;
            self.sidecars.lock().await.remove(&n);
            done.push_str(&format!(
                "[{n}] flushed {CHAIN_IN} and {CHAIN_OUT}; sidecar removed\n"
            ));
        }
        if done.is_empty() {
            done.push_str("no fault was active\n");
        }
        Ok(done)
    }
}

async fn remove_sidecar(cluster: &Cluster, node: &str, sidecar: &str) -> Result<(), FaultError> {
    cluster
        .docker()
        .remove_container(
            sidecar,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|source| ClusterError::Docker {
            action: format!("remove the fault sidecar of {node}"),
            source,
        })?;
    Ok(())
}

/// A suffix that keeps a new sidecar's name apart from the one it replaces.
fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
