//! Which Docker engine a run uses, and where the ports its containers publish are reached.
//!
//! The engine comes from `DOCKER_HOST` (`unix://`, `tcp://`, `http://`, `ssh://`), else the
//! Docker context named by `DOCKER_CONTEXT`, else the current context of the Docker CLI's
//! configuration (`$DOCKER_CONFIG/config.json`, default `~/.docker`), else the local socket.
//! A local engine publishes ports on 127.0.0.1 and they are reached there; a remote one
//! (`tcp://host:port`, `ssh://user@host`) publishes them on every address of its host, and
//! the load, the HTTP steps and the metric reads reach them at that host
//! ([`published_host`]), or at `FIREDRILL_PUBLISHED_HOST` when set (e.g. the host's address
//! when the engine is reached through a tunnel).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The engine when nothing names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Overrides the host at which published ports are reached.
pub const PUBLISHED_HOST_ENV: &str = "FIREDRILL_PUBLISHED_HOST";
const LOOPBACK: &str = "127.0.0.1";

/// A resolved engine: its address and what named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `unix:///…`, `tcp://host:port`, `ssh://user@host`…
    pub host: String,
    /// `DOCKER_HOST`, `context NAME`, or `default`: for messages.
    pub from: String,
}

impl Engine {
    /// Whether the engine runs on this machine (its published ports are on 127.0.0.1).
    pub fn is_local(&self) -> bool {
        is_local(&self.host)
    }
}

/// The environment and files the resolution reads, so that tests can give their own.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// The Docker CLI's configuration directory (`DOCKER_CONFIG`, or `~/.docker`).
    pub config_dir: Option<PathBuf>,
}

impl Inputs {
    pub fn from_env() -> Inputs {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Inputs {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker"))),
        }
    }
}

/// Which engine to use: `DOCKER_HOST`, else the named or current Docker context, else the
/// local socket. An error names a context that cannot be read.
pub fn resolve(inputs: &Inputs) -> Result<Engine, String> {
    if let Some(h) = &inputs.docker_host {
        return Ok(Engine {
            host: h.trim().to_string(),
            from: "DOCKER_HOST".into(),
        });
    }
    let config = inputs.config_dir.as_deref();
    let context = match &inputs.docker_context {
        Some(c) => Some(c.trim().to_string()),
        None => config.and_then(current_context),
    };
    match context {
        None => Ok(default_engine()),
        Some(c) if c == "default" => Ok(default_engine()),
        Some(name) => {
            let Some(dir) = config else {
                return Err(format!(
                    "Docker context `{name}`: no Docker configuration directory (set DOCKER_CONFIG or HOME)"
                ));
            };
            let host = context_host(dir, &name)?;
            Ok(Engine {
                host,
                from: format!("context {name}"),
            })
        }
    }
}

fn default_engine() -> Engine {
    Engine {
        host: DEFAULT_HOST.into(),
        from: "default".into(),
    }
}

/// `currentContext` of `config.json`, when the file says one.
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?
        .as_str()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
}

/// The Docker endpoint of a context: `contexts/meta/<sha256 of the name>/meta.json`, as the
/// Docker CLI stores it.
fn context_host(config_dir: &Path, name: &str) -> Result<String, String> {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let meta = config_dir.join("contexts/meta").join(hex).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        format!(
            "Docker context `{name}`: cannot read {} ({e}); list the contexts with `docker context ls`",
            meta.display()
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "Docker context `{name}`: {} is not JSON ({e})",
            meta.display()
        )
    })?;
    json.pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .filter(|h| !h.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            format!(
                "Docker context `{name}`: {} has no Endpoints.docker.Host",
                meta.display()
            )
        })
}

/// The host part of an engine address: `tcp://10.0.0.5:2375` → `10.0.0.5`,
/// `ssh://user@host:22` → `host`; `None` for a socket or pipe.
fn engine_host_name(engine: &str) -> Option<String> {
    let (scheme, rest) = engine.split_once("://")?;
    if !matches!(scheme, "tcp" | "http" | "https" | "ssh") {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        // [::1]:2375 keeps its brackets: it goes into URLs.
        format!("[{}]", v6.split(']').next().unwrap_or(""))
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    (!host.is_empty() && host != "[]").then_some(host)
}

/// Whether an engine address is on this machine: a socket, a pipe, or a loopback host.
pub fn is_local(engine: &str) -> bool {
    match engine_host_name(engine) {
        None => true,
        Some(h) => {
            h == "localhost"
                || h == "[::1]"
                || h.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// Where the ports an engine publishes are reached from here: 127.0.0.1 for a local engine,
/// the engine's host for a remote one, `override_host` (`FIREDRILL_PUBLISHED_HOST`) first.
pub fn published_host_for(engine: &str, override_host: Option<&str>) -> String {
    if let Some(h) = override_host.map(str::trim).filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    if is_local(engine) {
        return LOOPBACK.to_string();
    }
    engine_host_name(engine).unwrap_or_else(|| LOOPBACK.to_string())
}

/// The address containers publish their ports on: loopback for a local engine; every
/// address of the engine's host for a remote one, which firedrill must reach from here.
pub fn bind_ip_for(engine: &str) -> &'static str {
    if is_local(engine) {
        LOOPBACK
    } else {
        "0.0.0.0"
    }
}

static CONNECTED: OnceLock<Engine> = OnceLock::new();

/// Records the engine a process connected to (the first one wins: a process uses one).
pub fn set_connected(engine: Engine) {
    let _ = CONNECTED.set(engine);
}

/// The engine connected to, when there is one.
pub fn connected() -> Option<&'static Engine> {
    CONNECTED.get()
}

/// Where the published ports of this process's engine are reached: `127.0.0.1` unless the
/// engine connected to is remote (or `FIREDRILL_PUBLISHED_HOST` says otherwise).
pub fn published_host() -> String {
    let engine = connected().map_or(DEFAULT_HOST, |e| e.host.as_str());
    published_host_for(engine, std::env::var(PUBLISHED_HOST_ENV).ok().as_deref())
}

/// The address this process's containers publish on (see [`bind_ip_for`]).
pub fn bind_ip() -> &'static str {
    bind_ip_for(connected().map_or(DEFAULT_HOST, |e| e.host.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_of_a_local_engine_are_on_loopback() {
        for engine in [
            "unix:///var/run/docker.sock",
            "unix:///run/user/1000/docker.sock",
            "npipe:////./pipe/docker_engine",
            DEFAULT_HOST,
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "http://[::1]:2375",
        ] {
            assert_eq!(published_host_for(engine, None), "127.0.0.1", "{engine}");
            assert_eq!(bind_ip_for(engine), "127.0.0.1", "{engine}");
            assert!(is_local(engine), "{engine}");
        }
    }

    #[test]
    fn published_ports_of_a_remote_engine_are_at_its_host() {
        let cases = [
            ("tcp://10.0.0.5:2375", "10.0.0.5"),
            ("tcp://10.0.0.5", "10.0.0.5"),
            ("http://docker.example:2375/", "docker.example"),
            ("ssh://user@host", "host"),
            ("ssh://user@host:2222", "host"),
            ("ssh://host", "host"),
            ("tcp://[fd00::5]:2375", "[fd00::5]"),
        ];
        for (engine, host) in cases {
            assert_eq!(published_host_for(engine, None), host, "{engine}");
            assert_eq!(bind_ip_for(engine), "0.0.0.0", "{engine}");
            assert!(!is_local(engine), "{engine}");
        }
    }

    #[test]
    fn the_override_wins() {
        assert_eq!(
            published_host_for("ssh://user@host", Some("192.0.2.7")),
            "192.0.2.7"
        );
        assert_eq!(published_host_for("unix:///x", Some(" ")), "127.0.0.1");
    }

    #[test]
    fn docker_host_comes_first_then_the_context_then_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_context(dir.path(), "lab", "ssh://drill@lab-host");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {}, "currentContext": "lab"}"#,
        )
        .expect("config");
        let inputs = |host: Option<&str>, context: Option<&str>| Inputs {
            docker_host: host.map(String::from),
            docker_context: context.map(String::from),
            config_dir: Some(dir.path().to_path_buf()),
        };
        let e = resolve(&inputs(Some("tcp://10.0.0.5:2375"), Some("lab"))).expect("host");
        assert_eq!(
            (e.host.as_str(), e.from.as_str()),
            ("tcp://10.0.0.5:2375", "DOCKER_HOST")
        );
        // The current context of config.json.
        let e = resolve(&inputs(None, None)).expect("current context");
        assert_eq!(
            (e.host.as_str(), e.from.as_str()),
            ("ssh://drill@lab-host", "context lab")
        );
        assert_eq!(published_host_for(&e.host, None), "lab-host");
        // DOCKER_CONTEXT over config.json; `default` is the local socket.
        let e = resolve(&inputs(None, Some("default"))).expect("default");
        assert_eq!(e.host, DEFAULT_HOST);
        let err = resolve(&inputs(None, Some("missing"))).expect_err("unknown context");
        assert!(err.contains("Docker context `missing`"), "{err}");
        // No configuration at all: the socket.
        let none = Inputs::default();
        assert_eq!(resolve(&none).expect("socket").host, DEFAULT_HOST);
    }

    fn write_context(config: &Path, name: &str, host: &str) {
        let digest = Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let dir = config.join("contexts/meta").join(hex);
        std::fs::create_dir_all(&dir).expect("context dir");
        let meta = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}
        });
        std::fs::write(dir.join("meta.json"), meta.to_string()).expect("meta.json");
    }

    #[test]
    fn the_context_directory_is_the_sha256_of_its_name() {
        // As the Docker CLI names it: `docker context create lab` writes under this digest.
        let digest = Sha256::digest(b"default");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }
}
