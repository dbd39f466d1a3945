//! The cluster topology, read from a compose file (the subset firedrill can honour).
//!
//! The file stays usable with docker-compose; firedrill creates the same containers itself
//! so it can label, fault and tear them down. Keys it cannot honour are errors, not silently
//! ignored, so a topology never runs differently from what its file says.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::yaml::{self, Diagnostic};

/// A parsed and checked compose file.
#[derive(Debug, Clone)]
pub struct Compose {
    pub file: PathBuf,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Named volumes, created per run.
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub ports: Vec<PortSpec>,
    pub healthcheck: Option<Healthcheck>,
    /// Services with a profile are not started with the cluster; a step starts them
    /// (a spare node that joins later).
    pub profiles: Vec<String>,
    pub cap_add: Vec<String>,
    pub stop_grace_period: Option<Duration>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

impl Service {
    pub fn starts_with_cluster(&self) -> bool {
        self.profiles.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountSource {
    /// A named volume of this compose file (one per run).
    Volume(String),
    /// A host path, absolute.
    Bind(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

/// A container port published on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortSpec {
    /// `None`: a free port is chosen per run, so runs never collide.
    pub host_port: Option<u16>,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    /// The command to run inside the container, as argv.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Compose {
    pub fn load(path: &Path) -> Result<Compose, Vec<Diagnostic>> {
        let text = yaml::read_text(path).map_err(|d| vec![d])?;
        let raw: RawCompose = yaml::parse(path, &text).map_err(|d| vec![d])?;
        let mut problems = Vec::new();
        for key in top_level_keys(&text) {
            let known = matches!(key.as_str(), "version" | "services" | "volumes");
            if !known && !key.starts_with("x-") {
                let line = yaml::top_level_key_line(&text, &key).unwrap_or(0);
                problems.push(Diagnostic::at(
                    path,
                    line,
                    1,
                    format!(
                        "top-level key `{key}` is not supported: firedrill gives each run one private network of its own; remove it (extension keys `x-…` are fine)"
                    ),
                ));
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let volumes: Vec<String> = raw.volumes.keys().cloned().collect();
        let mut services = Vec::new();
        for (name, s) in raw.services {
            let line = yaml::top_level_key_line(&text, &format!("  {name}")).unwrap_or(0);
            // Located at the offending value when it is written in this service, else at
            // the service (its value may come from an `x-` anchor above).
            let mut problem = |value: Option<&str>, message: String| {
                let (line, column) = value
                    .and_then(|v| value_location(&text, line, v))
                    .unwrap_or((line, 3));
                problems.push(Diagnostic::at(
                    path,
                    line,
                    column,
                    format!("service `{name}`: {message}"),
                ))
            };
            let mut mounts = Vec::new();
            for v in &s.volumes {
                match parse_mount(v, base) {
                    Ok(m) => {
                        if let MountSource::Volume(vol) = &m.source {
                            if !volumes.contains(vol) {
                                problem(Some(v), format!(
                                    "volume `{vol}` is not declared under the top-level `volumes:`; add `{vol}:` there"
                                ));
                            }
                        }
                        mounts.push(m);
                    }
                    Err(e) => problem(Some(v), e),
                }
            }
            let mut ports = Vec::new();
            for p in &s.ports {
                match parse_port(p) {
                    Ok(port) => ports.push(port),
                    Err(e) => problem(Some(p), e),
                }
            }
            let healthcheck = match s.healthcheck {
                None => None,
                Some(h) => match healthcheck_argv(h.test) {
                    Ok(test) => Some(Healthcheck {
                        test,
                        interval: h.interval.unwrap_or(Duration::from_secs(1)),
                        timeout: h.timeout.unwrap_or(Duration::from_secs(5)),
                    }),
                    Err(e) => {
                        problem(Some("test:"), e);
                        None
                    }
                },
            };
            if s.image.trim().is_empty() {
                problem(
                    Some("image:"),
                    "`image` is empty: name the image to run".into(),
                );
            }
            services.push(Service {
                name: name.clone(),
                image: s.image,
                command: s.command.map(|c| c.0),
                entrypoint: s.entrypoint.map(|c| c.0),
                environment: s.environment.0,
                mounts,
                ports,
                healthcheck,
                profiles: s.profiles,
                cap_add: s.cap_add,
                stop_grace_period: s.stop_grace_period,
                user: s.user,
                working_dir: s.working_dir,
            });
        }
        // serde_saphyr keeps map order in BTreeMap; restore file order for stable output.
        services.sort_by_key(|s| text.find(&format!("\n  {}:", s.name)).unwrap_or(usize::MAX));
        if services.is_empty() {
            problems.push(Diagnostic::whole_file(
                path,
                "defines no services: add a `services:` map with at least one service",
            ));
        }
        if problems.is_empty() {
            Ok(Compose {
                file: path.to_path_buf(),
                services,
                volumes,
            })
        } else {
            Err(problems)
        }
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }

    /// Every image the topology uses.
    pub fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = self.services.iter().map(|s| s.image.clone()).collect();
        images.sort();
        images.dedup();
        images
    }
}

/// The 1-based line and column where `value` is first written after line `after` (the
/// line of the service it belongs to).
fn value_location(text: &str, after: u64, value: &str) -> Option<(u64, u64)> {
    text.lines()
        .enumerate()
        .skip(usize::try_from(after).ok()?)
        .find_map(|(i, l)| l.find(value).map(|c| (i as u64 + 1, c as u64 + 1)))
}

fn top_level_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
        .collect()
}

fn parse_mount(spec: &str, base: &Path) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, None),
        [s, t, m] => (*s, *t, Some(*m)),
        _ => {
            return Err(format!(
                "volume `{spec}` is not `name:/path` or `./host/path:/path[:ro]`"
            ))
        }
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => {
            return Err(format!(
                "volume `{spec}`: mode `{m}` is neither `ro` nor `rw`"
            ))
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "volume `{spec}`: the container path must be absolute"
        ));
    }
    let source = if source.starts_with('.') || source.starts_with('/') {
        MountSource::Bind(base.join(source))
    } else {
        MountSource::Volume(source.to_string())
    };
    Ok(Mount {
        source,
        target: target.to_string(),
        read_only,
    })
}

fn parse_port(spec: &str) -> Result<PortSpec, String> {
    let spec_no_proto = spec.strip_suffix("/tcp").unwrap_or(spec);
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("port `{spec}`: `{s}` is not a port number"))
    };
    let loopback_only = || {
        format!("port `{spec}` would publish beyond this machine: publish on 127.0.0.1 (`127.0.0.1::PORT` picks a free host port per run)")
    };
    match spec_no_proto.split(':').collect::<Vec<_>>().as_slice() {
        ["127.0.0.1", "", c] => Ok(PortSpec {
            host_port: None,
            container_port: number(c)?,
        }),
        ["127.0.0.1", h, c] => Ok(PortSpec {
            host_port: Some(number(h)?),
            container_port: number(c)?,
        }),
        [_, _, _] | [_, _] | [_] => Err(loopback_only()),
        _ => Err(format!("port `{spec}` is not `127.0.0.1:[HOST]:CONTAINER`")),
    }
}

fn healthcheck_argv(test: StringOrList) -> Result<Vec<String>, String> {
    let mut argv = test.0;
    match argv.first().map(String::as_str) {
        Some("CMD") => {
            argv.remove(0);
            Ok(argv)
        }
        Some("CMD-SHELL") if argv.len() == 2 => Ok(vec!["sh".into(), "-c".into(), argv.remove(1)]),
        Some(_) if test.1 => Ok(vec!["sh".into(), "-c".into(), argv.join(" ")]),
        _ => Err("healthcheck `test` must be a string, [CMD, …] or [CMD-SHELL, \"…\"]".into()),
    }
}

#[derive(Deserialize)]
struct RawCompose {
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<RawVolume>>,
}

/// Named volumes take no options: each run creates its own, local ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolume {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: String,
    command: Option<StringOrList>,
    entrypoint: Option<StringOrList>,
    #[serde(default)]
    environment: Environment,
    #[serde(default)]
    volumes: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
    healthcheck: Option<RawHealthcheck>,
    #[serde(default)]
    profiles: Vec<String>,
    /// Accepted for docker-compose; firedrill starts all services at once and waits for health.
    #[serde(default, rename = "depends_on")]
    _depends_on: Vec<String>,
    #[serde(default)]
    cap_add: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    stop_grace_period: Option<Duration>,
    user: Option<String>,
    working_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    test: StringOrList,
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    /// firedrill polls until its own timeout instead of counting retries.
    #[serde(default, rename = "retries")]
    _retries: Option<u32>,
    #[serde(default, rename = "start_period", with = "humantime_serde")]
    _start_period: Option<Duration>,
}

/// A compose value written either as one string or as a list of strings. The flag says it
/// was a plain string (which compose runs through a shell for healthchecks).
struct StringOrList(Vec<String>, bool);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrList, E> {
                // Like compose: a plain command string is split on whitespace.
                Ok(StringOrList(
                    v.split_whitespace().map(String::from).collect(),
                    true,
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringOrList(out, false))
            }
        }
        d.deserialize_any(V)
    }
}

/// `environment:` as a map (`KEY: value`) or a list (`- KEY=value`).
#[derive(Default)]
struct Environment(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Environment;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of variables or a list of KEY=value strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, yaml::Scalar>()? {
                    out.push((k, v.0));
                }
                Ok(Environment(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Environment, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    let (k, v) = s.split_once('=').ok_or_else(|| {
                        de::Error::custom(format!("environment entry `{s}` is not KEY=value"))
                    })?;
                    out.push((k.to_string(), v.to_string()));
                }
                Ok(Environment(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("c.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn bundled_etcd_topology_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose/etcd-3.yaml");
        let c = Compose::load(&p).unwrap();
        let names: Vec<_> = c.service_names().collect();
        assert_eq!(names, ["etcd1", "etcd2", "etcd3", "etcd4"]);
        // The spare has a profile: a step starts it, not the cluster.
        let starting: Vec<_> = c
            .services
            .iter()
            .filter(|s| s.starts_with_cluster())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(starting, ["etcd1", "etcd2", "etcd3"]);
        let e1 = c.service("etcd1").unwrap();
        assert_eq!(
            e1.ports,
            [PortSpec {
                host_port: None,
                container_port: 2379
            }]
        );
        assert!(e1
            .environment
            .iter()
            .any(|(k, v)| k == "ETCDCTL_API" && v == "3"));
        assert_eq!(e1.healthcheck.as_ref().unwrap().test[0], "curl");
        assert_eq!(
            e1.mounts[0].source,
            MountSource::Volume("etcd1-data".into())
        );
    }

    #[test]
    fn public_ports_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "services:\n  a:\n    image: x\n    ports: [\"2379:2379\"]\nnetworks:\n  n: {}\n",
        );
        let errs = Compose::load(&p).unwrap_err();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(":5:1: top-level key `networks`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("publish on 127.0.0.1")),
            "{text:?}"
        );
    }

    #[test]
    fn a_bad_port_or_volume_is_located_at_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "services:\n  a:\n    image: x\n    volumes:\n      - data:/d\n    ports: [\"127.0.0.1::80\", \"80:80\"]\n",
        );
        let errs = Compose::load(&p).unwrap_err();
        let at: Vec<(u64, u64)> = errs.iter().map(|d| (d.line, d.column)).collect();
        assert_eq!(at, [(5, 9), (6, 31)], "{errs:?}");
    }

    #[test]
    fn undeclared_volume_and_unknown_service_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "services:\n  a:\n    image: x\n    volumes: [\"data:/d\"]\n",
        );
        let errs = Compose::load(&p).unwrap_err();
        assert!(
            errs[0].message.contains("`data` is not declared"),
            "{:?}",
            errs
        );
        let p = write(
            dir.path(),
            "services:\n  a:\n    image: x\n    privileged: true\n",
        );
        let errs = Compose::load(&p).unwrap_err();
        assert_eq!(errs[0].line, 4, "{:?}", errs);
    }
}
