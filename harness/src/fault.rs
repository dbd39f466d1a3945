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
        self.run(node, &name, &hook_script()).await?;
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
        let script = append_script(rules);
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
        let rules = partition_rules(p, &all, &ips)?;
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
        self.add_rules(
            node,
            &[(CHAIN_IN, reject_rule(port, share, connections_only))],
        )
        .await
    }

    /// Adds delay and/or loss on the node's interface with tc netem, where the kernel has it.
    pub async fn netem(
        &self,
        node: &str,
        delay: Option<Duration>,
        loss: Option<f64>,
    ) -> Result<String, FaultError> {
        let sidecar = self.sidecar(node).await?;
        let command = netem_command(delay, loss);
        match self.run(node, &sidecar, &command).await {
            Err(FaultError::Command { output, .. }) if lacks_netem(&output) => {
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

/// Creates the chains (or empties them, in a namespace used before) and hooks them into
/// INPUT and OUTPUT once.
fn hook_script() -> String {
    [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")]
        .map(|(chain, from)| {
            format!(
                "(iptables -N {chain} 2>/dev/null || iptables -F {chain}) && \
                 (iptables -C {from} -j {chain} 2>/dev/null || iptables -I {from} -j {chain})"
            )
        })
        .join(" && ")
}

/// One shell line that appends each rule to its chain, stopping at the first that fails.
fn append_script(rules: &[(&str, String)]) -> String {
    rules
        .iter()
        .map(|(chain, r)| format!("iptables -A {chain} {r}"))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Per node, the rules to append: (chain, rule).
type NodeRules = BTreeMap<String, Vec<(&'static str, String)>>;

/// The rules each node gets for a partition: drop what comes from, and what goes to, the
/// addresses it must not reach. `all` are the nodes created, `ips` their addresses.
fn partition_rules(
    p: &Partition,
    all: &[String],
    ips: &BTreeMap<String, String>,
) -> Result<NodeRules, ClusterError> {
    let ip = |n: &str| {
        ips.get(n)
            .cloned()
            .ok_or_else(|| ClusterError::NoAddress(n.to_string()))
    };
    let mut rules = NodeRules::new();
    let mut cut = |node: &str, addr: &str| {
        let r = rules.entry(node.to_string()).or_default();
        r.push((CHAIN_IN, format!("-s {addr} -j DROP")));
        r.push((CHAIN_OUT, format!("-d {addr} -j DROP")));
    };
    match p {
        Partition::Isolate(node) => {
            for peer in all.iter().filter(|n| *n != node) {
                cut(node, &ip(peer)?);
            }
        }
        Partition::Groups(groups) => {
            for (i, g) in groups.iter().enumerate() {
                for other in groups.iter().skip(i + 1) {
                    for a in g {
                        for b in other {
                            cut(a, &ip(b)?);
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
    Ok(rules)
}

/// Resets a random share of the TCP packets (or only the new connections) to `port`.
fn reject_rule(port: u16, share: f64, connections_only: bool) -> String {
    let syn = if connections_only { " --syn" } else { "" };
    format!(
        "-p tcp --dport {port}{syn} -m statistic --mode random --probability {share} -j REJECT --reject-with tcp-reset"
    )
}

fn netem_command(delay: Option<Duration>, loss: Option<f64>) -> String {
    let mut spec = String::new();
    if let Some(d) = delay {
        spec.push_str(&format!(" delay {}ms", d.as_millis()));
    }
    if let Some(l) = loss {
        spec.push_str(&format!(" loss {}%", l * 100.0));
    }
    format!("tc qdisc replace dev eth0 root netem{spec}")
}

/// tc's answer on a kernel without the netem module (or without tc's qdisc support).
fn lacks_netem(output: &str) -> bool {
    output.contains("qdisc kind is unknown") || output.contains("No such file")
}

/// A suffix that keeps a new sidecar's name apart from the one it replaces.
fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips() -> BTreeMap<String, String> {
        (1..=3)
            .map(|i| (format!("kv{i}"), format!("10.0.0.{i}")))
            .collect()
    }

    fn nodes() -> Vec<String> {
        ips().into_keys().collect()
    }

    fn rules(p: &Partition) -> BTreeMap<String, Vec<String>> {
        partition_rules(p, &nodes(), &ips())
            .expect("every node has an address")
            .into_iter()
            .map(|(n, r)| (n, r.iter().map(|(c, r)| format!("{c} {r}")).collect()))
            .collect()
    }

    #[test]
    fn an_isolated_node_drops_traffic_to_and_from_every_peer() {
        let r = rules(&Partition::Isolate("kv2".into()));
        assert_eq!(r.keys().collect::<Vec<_>>(), ["kv2"], "only kv2 gets rules");
        assert_eq!(
            r["kv2"],
            [
                "FIREDRILL-IN -s 10.0.0.1 -j DROP",
                "FIREDRILL-OUT -d 10.0.0.1 -j DROP",
                "FIREDRILL-IN -s 10.0.0.3 -j DROP",
                "FIREDRILL-OUT -d 10.0.0.3 -j DROP",
            ]
        );
    }

    #[test]
    fn groups_cut_only_between_groups_and_leave_unlisted_nodes_alone() {
        let r = rules(&Partition::Groups(vec![
            vec!["kv1".into()],
            vec!["kv2".into()],
        ]));
        assert_eq!(
            r["kv1"],
            [
                "FIREDRILL-IN -s 10.0.0.2 -j DROP",
                "FIREDRILL-OUT -d 10.0.0.2 -j DROP"
            ]
        );
        // The earlier group holds the rules; the later one and kv3 are untouched.
        assert!(!r.contains_key("kv2") && !r.contains_key("kv3"), "{r:?}");
    }

    #[test]
    fn one_way_drops_only_arriving_packets_at_the_receivers() {
        let r = rules(&Partition::OneWay {
            from: "kv1".into(),
            to: vec!["kv2".into(), "kv3".into()],
        });
        for n in ["kv2", "kv3"] {
            assert_eq!(r[n], ["FIREDRILL-IN -s 10.0.0.1 -j DROP"], "{n}");
        }
        assert!(!r.contains_key("kv1"));
    }

    #[test]
    fn a_node_without_an_address_is_an_error_not_a_missing_rule() {
        let mut ips = ips();
        ips.remove("kv3");
        let err = partition_rules(&Partition::Isolate("kv1".into()), &nodes(), &ips)
            .expect_err("kv3 has no address");
        assert!(matches!(err, ClusterError::NoAddress(n) if n == "kv3"));
    }

    #[test]
    fn rules_are_appended_in_order_and_stop_at_the_first_failure() {
        let script = append_script(&[
            (CHAIN_IN, "-s 10.0.0.1 -j DROP".into()),
            (CHAIN_OUT, "-d 10.0.0.1 -j DROP".into()),
        ]);
        assert_eq!(
            script,
            "iptables -A FIREDRILL-IN -s 10.0.0.1 -j DROP && iptables -A FIREDRILL-OUT -d 10.0.0.1 -j DROP"
        );
    }

    #[test]
    fn the_hook_creates_or_flushes_each_chain_and_hooks_it_once() {
        let hook = hook_script();
        for (chain, from) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
            assert!(
                hook.contains(&format!(
                    "(iptables -N {chain} 2>/dev/null || iptables -F {chain})"
                )),
                "{hook}"
            );
            assert!(
                hook.contains(&format!(
                    "(iptables -C {from} -j {chain} 2>/dev/null || iptables -I {from} -j {chain})"
                )),
                "{hook}"
            );
        }
    }

    #[test]
    fn reject_resets_a_share_of_packets_or_only_of_new_connections() {
        assert_eq!(
            reject_rule(2379, 0.25, false),
            "-p tcp --dport 2379 -m statistic --mode random --probability 0.25 -j REJECT --reject-with tcp-reset"
        );
        assert!(reject_rule(2379, 1.0, true).starts_with("-p tcp --dport 2379 --syn -m statistic"));
    }

    #[test]
    fn netem_gives_delay_in_ms_and_loss_in_percent() {
        assert_eq!(
            netem_command(Some(Duration::from_millis(150)), Some(0.05)),
            "tc qdisc replace dev eth0 root netem delay 150ms loss 5%"
        );
        assert_eq!(
            netem_command(None, Some(0.5)),
            "tc qdisc replace dev eth0 root netem loss 50%"
        );
        assert!(lacks_netem("Error: Specified qdisc kind is unknown."));
        assert!(!lacks_netem("RTNETLINK answers: Operation not permitted"));
    }
}
