//! debootstrap, which builds the Debian base images: the machine's own when installed, else a
//! copy firedrill fetches from the Debian mirror the image comes from.
//!
//! debootstrap is one `Architecture: all` package of shell scripts, so a bare machine needs no
//! install step. The copy is found along the archive's chain of trust, as apt would: the
//! suite's Release file (its signature checked by gpgv against the Debian keyring, when the
//! machine has that keyring: debootstrap checks the same and only warns without one), the
//! Packages index's SHA256 in it, and the package's SHA256 in the index. The package is
//! unpacked into the cache once and reused, offline, while it knows the suite.

use std::ffi::OsString;
use std::io::{self, BufRead, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::images::MIRROR_VARIABLE;

/// The keyring debootstrap checks Debian suites against (its suite scripts name it).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Stands in for wget, which debootstrap downloads with, where only curl is installed (curl
/// comes with every Rust toolchain install). debootstrap calls it as `wget -nv -O FILE URL`.
const WGET_VIA_CURL: &str = r#"#!/bin/sh
# Written by firedrill: debootstrap downloads with wget, and this machine has only curl.
out= url=
while [ $# -gt 0 ]; do
  case "$1" in
    -O) out=$2; shift ;;
    -*) ;;
    *) url=$1 ;;
  esac
  shift
done
exec curl --fail --silent --show-error --location --retry 2 -o "$out" "$url"
"#;

#[derive(Debug, thiserror::Error)]
pub enum DebootstrapError {
    #[error("debootstrap is not installed, and fetching it failed: {url}: {detail}: check that the mirror is reachable and serves the suite (or set {variable} to one that does), or install debootstrap", variable = MIRROR_VARIABLE)]
    Download { url: String, detail: String },
    #[error("debootstrap is not installed, and the mirror's Release file {url} lists no main/binary-all (or binary-{arch}) Packages index, .xz or .gz, to find it in: use a full Debian mirror, or install debootstrap")]
    NoIndex { url: String, arch: &'static str },
    #[error("debootstrap is not installed, and the index {url} has no complete debootstrap entry (Architecture: all, with Version, Filename, Size and SHA256): use a full Debian mirror, or install debootstrap")]
    NotInIndex { url: String },
    #[error("{url} does not match its entry in {listed_in}: {problem}: the mirror may be in the middle of an update: retry later, or use another mirror")]
    Checksum {
        url: String,
        listed_in: String,
        problem: String,
    },
    #[error("checking the Release signature of the mirror debootstrap is fetched from needs gpgv, which is not installed: apt-get install gpgv")]
    GpgvMissing,
    #[error("the signature {url} of the mirror's Release file does not verify against {keyring} ({problem}); gpgv says:\n{detail}\nuse a genuine Debian mirror, or update the keyring: apt-get install debian-archive-keyring", keyring = KEYRING)]
    BadSignature {
        url: String,
        problem: &'static str,
        detail: String,
    },
    #[error("cannot unpack {url} into {dir}: {source}")]
    Unpack {
        url: String,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("no cache directory for the fetched debootstrap: set XDG_CACHE_HOME or HOME")]
    NoCache,
    #[error("debootstrap downloads packages with wget, and neither wget nor curl is installed: apt-get install wget")]
    NoDownloader,
    #[error("failed to {action}: {source}")]
    Io { action: String, source: io::Error },
}

/// A debootstrap ready to run.
#[derive(Debug)]
pub struct Debootstrap {
    program: PathBuf,
    /// `DEBOOTSTRAP_DIR` of a fetched copy: where its functions and suite scripts are.
    scripts: Option<PathBuf>,
    /// Put first on PATH: holds the `wget` that calls curl.
    shims: Option<PathBuf>,
}

impl Debootstrap {
    /// The installed debootstrap, else the cached or freshly fetched copy from `mirror` (which
    /// must serve `suite`); and, without wget, curl standing in for it.
    pub async fn obtain(
        mirror: &str,
        suite: &str,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Debootstrap, DebootstrapError> {
        let mut debootstrap = match find_program("debootstrap") {
            Some(program) => Debootstrap {
                program,
                scripts: None,
                shims: None,
            },
            None => fetched(&cache_dir()?.join("debootstrap"), mirror, suite, progress).await?,
        };
        if find_program("wget").is_none() {
            if find_program("curl").is_none() {
                return Err(DebootstrapError::NoDownloader);
            }
            debootstrap.shims = Some(write_wget_via_curl(&cache_dir()?.join("bin"))?);
            progress("wget not installed: debootstrap downloads through curl instead");
        }
        Ok(debootstrap)
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The command to add debootstrap's arguments to.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        if let Some(scripts) = &self.scripts {
            command.env("DEBOOTSTRAP_DIR", scripts);
        }
        if let Some(shims) = &self.shims {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let dirs = std::iter::once(shims.clone()).chain(std::env::split_paths(&path));
            command.env(
                "PATH",
                std::env::join_paths(dirs).unwrap_or_else(|_| OsString::from(shims)),
            );
        }
        command
    }

    /// An unpacked copy of the package, as `unpack` leaves it.
    fn unpacked(copy: &Path) -> Debootstrap {
        Debootstrap {
            program: copy.join("usr/sbin/debootstrap"),
            scripts: Some(copy.join("usr/share/debootstrap")),
            shims: None,
        }
    }
}

/// Searches PATH and the sbin directories, which a non-root PATH often lacks.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `$XDG_CACHE_HOME/firedrill`, else `~/.cache/firedrill`.
fn cache_dir() -> Result<PathBuf, DebootstrapError> {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    set("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("firedrill"))
        .ok_or(DebootstrapError::NoCache)
}

/// The copy of debootstrap in `cache` that knows `suite`, fetched from `mirror` unless an
/// earlier run left one.
async fn fetched(
    cache: &Path,
    mirror: &str,
    suite: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Debootstrap, DebootstrapError> {
    if let Some(copy) = cached(cache, suite) {
        progress(&format!(
            "debootstrap not installed: using the copy fetched earlier into {}",
            copy.display()
        ));
        return Ok(Debootstrap::unpacked(&copy));
    }
    let mirror = mirror.trim_end_matches('/');
    progress(&format!(
        "debootstrap not installed: fetching it from {mirror}…"
    ));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|error| DebootstrapError::Download {
            url: mirror.to_string(),
            detail: chain(&error),
        })?;
    let release_url = format!("{mirror}/dists/{suite}/Release");
    let release = get(&client, &release_url).await?;
    let signature = check_signature(&client, &release_url, &release).await?;
    let release = String::from_utf8_lossy(&release);
    let index = pick_index(&release, debian_arch()).ok_or_else(|| DebootstrapError::NoIndex {
        url: release_url.clone(),
        arch: debian_arch(),
    })?;
    let index_url = format!("{mirror}/dists/{suite}/{}", index.path);
    let compressed = get(&client, &index_url).await?;
    verify(&compressed, &index.sum).map_err(|problem| DebootstrapError::Checksum {
        url: index_url.clone(),
        listed_in: release_url.clone(),
        problem,
    })?;
    let packages = decompress_index(&index.path, compressed, &index_url).await?;
    let package =
        find_package(&packages, "debootstrap").ok_or_else(|| DebootstrapError::NotInIndex {
            url: index_url.clone(),
        })?;
    let deb_url = format!("{mirror}/{}", package.filename);
    let deb = get(&client, &deb_url).await?;
    verify(&deb, &package.sum).map_err(|problem| DebootstrapError::Checksum {
        url: deb_url.clone(),
        listed_in: index_url,
        problem,
    })?;
    let (dir, version) = (cache.to_path_buf(), package.version.clone());
    let copy = tokio::task::spawn_blocking(move || unpack(&dir, &version, &deb))
        .await
        .map_err(io::Error::other)
        .and_then(|unpacked| unpacked)
        .map_err(|source| DebootstrapError::Unpack {
            url: deb_url,
            dir: cache.to_path_buf(),
            source,
        })?;
    progress(&format!(
        "debootstrap not installed: fetched debootstrap {} from {mirror} into {} ({signature})",
        package.version,
        copy.display()
    ));
    Ok(Debootstrap::unpacked(&copy))
}

/// The most recently unpacked copy under `cache` with a script for `suite`. Copies appear only
/// complete (see `unpack`), so any directory found is whole.
fn cached(cache: &Path, suite: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(cache).ok()?;
    entries
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .filter(|copy| {
            copy.join("usr/sbin/debootstrap").is_file()
                && copy
                    .join("usr/share/debootstrap/scripts")
                    .join(suite)
                    .is_file()
        })
        .max_by_key(|copy| copy.metadata().and_then(|m| m.modified()).ok())
}

/// A URL's body; `file:` URLs (a local mirror, as apt allows) are read from disk.
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, DebootstrapError> {
    let failed = |detail: String| DebootstrapError::Download {
        url: url.to_string(),
        detail,
    };
    if let Some(path) = url
        .strip_prefix("file://")
        .or_else(|| url.strip_prefix("file:"))
    {
        return tokio::fs::read(path)
            .await
            .map_err(|error| failed(error.to_string()));
    }
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| failed(chain(&error)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the mirror answered {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|error| failed(chain(&error)))?;
    Ok(body.to_vec())
}

/// An error with its causes: reqwest's own text alone rarely says what went wrong.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(": ");
        text.push_str(&source.to_string());
        cause = source.source();
    }
    text
}

/// Checks the Release file's detached signature the way debootstrap does (gpgv, the Debian
/// keyring, expiry ignored), when the keyring is there. Says what was checked, for progress.
async fn check_signature(
    client: &reqwest::Client,
    release_url: &str,
    release: &[u8],
) -> Result<String, DebootstrapError> {
    if !Path::new(KEYRING).is_file() {
        return Ok(format!(
            "Release signature not checked: no keyring at {KEYRING}, debootstrap will warn the same"
        ));
    }
    let gpgv = find_program("gpgv").ok_or(DebootstrapError::GpgvMissing)?;
    let signature_url = format!("{release_url}.gpg");
    let signature = get(client, &signature_url).await?;
    let io_failed = |action: &str| {
        let action = action.to_string();
        move |source: io::Error| DebootstrapError::Io { action, source }
    };
    let dir = tempfile::tempdir().map_err(io_failed("create a temporary directory"))?;
    let (release_file, signature_file) =
        (dir.path().join("Release"), dir.path().join("Release.gpg"));
    std::fs::write(&release_file, release).map_err(io_failed("write the Release file"))?;
    std::fs::write(&signature_file, signature).map_err(io_failed("write the Release signature"))?;
    let output = tokio::process::Command::new(&gpgv)
        .args([
            "--status-fd",
            "1",
            "--ignore-time-conflict",
            "--keyring",
            KEYRING,
        ])
        .arg(&signature_file)
        .arg(&release_file)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io_failed(&format!("run {}", gpgv.display())))?;
    signature_verdict(&String::from_utf8_lossy(&output.stdout)).map_err(|problem| {
        DebootstrapError::BadSignature {
            url: signature_url,
            problem,
            detail: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        }
    })?;
    Ok(format!("Release signature checked against {KEYRING}"))
}

/// Reads gpgv's status lines as debootstrap does: a bad signature fails, else one valid one
/// (of the several the Debian archive signs with) is enough.
fn signature_verdict(status: &str) -> Result<(), &'static str> {
    let has = |keyword: &str| {
        status.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some("[GNUPG:]") && words.next() == Some(keyword)
        })
    };
    if has("BADSIG") {
        Err("a signature is bad")
    } else if has("VALIDSIG") {
        Ok(())
    } else if has("NO_PUBKEY") {
        Err("signed by no key of the keyring")
    } else {
        Err("no valid signature")
    }
}

/// The expected size and SHA256 of a downloaded file.
#[derive(Debug, Clone, PartialEq)]
struct Sum {
    size: u64,
    sha256: String,
}

fn verify(data: &[u8], sum: &Sum) -> Result<(), String> {
    if data.len() as u64 != sum.size {
        return Err(format!("{} bytes, listed as {}", data.len(), sum.size));
    }
    let actual: String = Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if !actual.eq_ignore_ascii_case(&sum.sha256) {
        return Err(format!("SHA256 {actual}, listed as {}", sum.sha256));
    }
    Ok(())
}

/// One index file a Release lists.
#[derive(Debug, Clone, PartialEq)]
struct Index {
    path: String,
    sum: Sum,
}

/// debootstrap's architecture name for this machine (the names that differ from Rust's).
fn debian_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The main Packages index to find debootstrap in, from the Release file's SHA256 list:
/// binary-all, where Debian lists `Architecture: all` packages, else the machine's own
/// architecture's, which lists them too; xz before gz, as it is smaller.
fn pick_index(release: &str, arch: &str) -> Option<Index> {
    let listed = field(release, "SHA256")?;
    let rank = |path: &str| -> Option<(u8, u8)> {
        let (dir, file) = path.strip_prefix("main/binary-")?.split_once('/')?;
        let dir = match dir {
            "all" => 0,
            own if own == arch => 1,
            _ => return None,
        };
        let file = match file {
            "Packages.xz" => 0,
            "Packages.gz" => 1,
            _ => return None,
        };
        Some((dir, file))
    };
    listed
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (sha256, size, path) = (words.next()?, words.next()?, words.next()?);
            let index = Index {
                path: path.to_string(),
                sum: Sum {
                    size: size.parse().ok()?,
                    sha256: sha256.to_string(),
                },
            };
            Some((rank(path)?, index))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, index)| index)
}

async fn decompress_index(
    path: &str,
    compressed: Vec<u8>,
    url: &str,
) -> Result<String, DebootstrapError> {
    let xz = path.ends_with(".xz");
    let text = tokio::task::spawn_blocking(move || -> io::Result<String> {
        let mut text = String::new();
        decoder(xz, io::Cursor::new(compressed))?.read_to_string(&mut text)?;
        Ok(text)
    })
    .await
    .map_err(io::Error::other)
    .and_then(|decompressed| decompressed)
    .map_err(|error| DebootstrapError::Download {
        url: url.to_string(),
        detail: format!("cannot decompress it: {error}"),
    })?;
    Ok(text)
}

/// A reader of xz (whole, into memory: lzma-rs has no streaming reader) or gzip data.
fn decoder<'a>(xz: bool, mut input: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    if xz {
        let mut data = Vec::new();
        lzma_rs::xz_decompress(&mut input, &mut data)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("{error:?}")))?;
        Ok(Box::new(io::Cursor::new(data)))
    } else {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
    }
}

/// A binary package's entry in a Packages index.
#[derive(Debug, Clone, PartialEq)]
struct Package {
    version: String,
    filename: String,
    sum: Sum,
}

/// The first complete `Architecture: all` entry for `name` (a suite's index has one).
fn find_package(index: &str, name: &str) -> Option<Package> {
    index
        .split("\n\n")
        .filter(|stanza| field(stanza, "Package").as_deref() == Some(name))
        .filter(|stanza| field(stanza, "Architecture").as_deref() == Some("all"))
        .find_map(|stanza| {
            Some(Package {
                version: field(stanza, "Version")?,
                filename: field(stanza, "Filename")?,
                sum: Sum {
                    size: field(stanza, "Size")?.parse().ok()?,
                    sha256: field(stanza, "SHA256")?,
                },
            })
        })
}

/// A field of a deb822 stanza (Release, Packages): its first line's value, then each
/// continuation line on a line of its own.
fn field(stanza: &str, name: &str) -> Option<String> {
    let mut lines = stanza.lines();
    let first = lines.find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then_some(value.trim())
    })?;
    let mut value = first.to_string();
    for line in lines.take_while(|line| line.starts_with([' ', '\t'])) {
        value.push('\n');
        value.push_str(line.trim());
    }
    Some(value.trim_start_matches('\n').to_string())
}

/// Unpacks a .deb's data member into `cache/<version>` and returns that directory. A .deb is
/// an ar archive whose `data.tar[.gz|.xz]` holds the files. The copy is unpacked beside its
/// place and renamed into it, so a copy under its version's name is always complete.
fn unpack(cache: &Path, version: &str, deb: &[u8]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(cache)?;
    // Versions are letters, digits and `.+~-:`; no path may come out of one.
    let name: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".+~-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let target = cache.join(name);
    let work = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(cache)?;
    let mut archive = ar::Archive::new(deb);
    while let Some(entry) = archive.next_entry() {
        let entry = entry?;
        let member = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let Some(compression) = member.strip_prefix("data.tar") else {
            continue;
        };
        let data: Box<dyn Read> = match compression {
            "" => Box::new(entry),
            ".gz" | ".xz" => decoder(compression == ".xz", io::BufReader::new(entry))?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("its {member} is compressed in a way firedrill does not read (gzip and xz only)"),
                ))
            }
        };
        tar::Archive::new(data).unpack(work.path())?;
        if !work.path().join("usr/sbin/debootstrap").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "it holds no usr/sbin/debootstrap",
            ));
        }
        if target.is_dir() {
            // Another build fetched the same version meanwhile.
            return Ok(target);
        }
        std::fs::rename(work.keep(), &target)?;
        return Ok(target);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "it is no .deb: no data.tar member",
    ))
}

/// Writes the `wget` that calls curl into `dir` and returns `dir`.
fn write_wget_via_curl(dir: &Path) -> Result<PathBuf, DebootstrapError> {
    let wget = dir.join("wget");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&wget, WGET_VIA_CURL))
        .and_then(|()| std::fs::set_permissions(&wget, std::fs::Permissions::from_mode(0o755)))
        .map_err(|source| DebootstrapError::Io {
            action: format!("write {}", wget.display()),
            source,
        })?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// SHA256 of `abc`.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn sum(size: u64, sha256: &str) -> Sum {
        Sum {
            size,
            sha256: sha256.to_string(),
        }
    }

    #[test]
    fn the_release_file_names_the_smallest_index_that_lists_debootstrap() {
        let release = "Origin: Debian\nCodename: bookworm\nMD5Sum:\n 0123 5 main/binary-all/Packages.xz\nSHA256:\n aa01 900 main/binary-all/Packages\n aa02 300 main/binary-all/Packages.gz\n aa03 200 main/binary-all/Packages.xz\n aa04 100 contrib/binary-all/Packages.xz\n aa05 400 main/binary-amd64/Packages.xz\n aa06 500 main/binary-arm64/Packages.gz\n aa07 600 main/binary-amd64/Packages.gz\n";
        assert_eq!(
            pick_index(release, "amd64"),
            Some(Index {
                path: "main/binary-all/Packages.xz".to_string(),
                sum: sum(200, "aa03"),
            })
        );
        let no_all: String = release
            .lines()
            .filter(|line| !line.contains("main/binary-all"))
            .map(|line| format!("{line}\n"))
            .collect();
        let own = pick_index(&no_all, "arm64").unwrap();
        assert_eq!(own.path, "main/binary-arm64/Packages.gz");
        assert_eq!(
            pick_index(&no_all, "amd64").unwrap().path,
            "main/binary-amd64/Packages.xz"
        );
        assert_eq!(pick_index(&no_all, "s390x"), None);
        assert_eq!(pick_index("Origin: Debian\n", "amd64"), None);
    }

    #[test]
    fn the_index_entry_is_the_complete_debootstrap_one() {
        let index = "\
Package: live-build
Architecture: all
Version: 1
Depends: debootstrap
Filename: pool/main/l/live-build/live-build_1_all.deb
Size: 3
SHA256: aa

Package: debootstrap
Architecture: amd64
Version: 9
Filename: pool/main/d/debootstrap/debootstrap_9_amd64.deb
Size: 3
SHA256: bb

Package: debootstrap
Architecture: all
Version: 0.1
Description: no checksum, so not fetchable

Package: debootstrap
Version: 1.0.128+nmu2+deb12u2
Architecture: all
Description: Bootstrap a basic Debian system
 Filename: this continuation line is no field
 .
Filename: pool/main/d/debootstrap/debootstrap_1.0.128+nmu2+deb12u2_all.deb
Size: 3
SHA256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad

Package: debootstrapper
Architecture: all
";
        assert_eq!(
            find_package(index, "debootstrap"),
            Some(Package {
                version: "1.0.128+nmu2+deb12u2".to_string(),
                filename: "pool/main/d/debootstrap/debootstrap_1.0.128+nmu2+deb12u2_all.deb"
                    .to_string(),
                sum: sum(3, ABC),
            })
        );
        assert_eq!(find_package(index, "debootstrap-udeb"), None);
    }

    #[test]
    fn a_download_must_match_its_listed_size_and_sha256() {
        assert_eq!(verify(b"abc", &sum(3, ABC)), Ok(()));
        assert_eq!(verify(b"abc", &sum(3, &ABC.to_uppercase())), Ok(()));
        let short = verify(b"ab", &sum(3, ABC)).unwrap_err();
        assert_eq!(short, "2 bytes, listed as 3");
        let changed = verify(b"abd", &sum(3, ABC)).unwrap_err();
        assert!(
            changed.starts_with("SHA256 ") && changed.ends_with(&format!("listed as {ABC}")),
            "{changed}"
        );
    }

    #[test]
    fn signatures_are_judged_as_debootstrap_judges_them() {
        let valid = "[GNUPG:] NEWSIG\n[GNUPG:] NO_PUBKEY 0E98404D386FA1D9\n[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 6ED0E7B82643E131 Debian\n[GNUPG:] VALIDSIG 4CB5 2026-07-11\n";
        assert_eq!(signature_verdict(valid), Ok(()));
        let bad = format!("{valid}[GNUPG:] BADSIG 6ED0E7B82643E131 Debian\n");
        assert_eq!(signature_verdict(&bad), Err("a signature is bad"));
        assert_eq!(
            signature_verdict("[GNUPG:] NO_PUBKEY 0E98404D386FA1D9\n"),
            Err("signed by no key of the keyring")
        );
        assert_eq!(signature_verdict(""), Err("no valid signature"));
        // Words of gpgv's human output are not status lines.
        assert_eq!(
            signature_verdict("gpgv: VALIDSIG\n"),
            Err("no valid signature")
        );
    }

    /// A .deb like debootstrap's: the program, its functions, and a suite script linked to another.
    fn deb(compression: &str) -> Vec<u8> {
        let mut data = tar::Builder::new(Vec::new());
        let mut add = |path: &str, mode: u32, body: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            data.append_data(&mut header, path, body).unwrap();
        };
        add("./usr/sbin/debootstrap", 0o755, b"#!/bin/sh\necho fake\n");
        add("./usr/share/debootstrap/functions", 0o644, b"");
        add("./usr/share/debootstrap/scripts/sid", 0o644, b"");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_mode(0o777);
        link.set_cksum();
        data.append_link(&mut link, "./usr/share/debootstrap/scripts/bookworm", "sid")
            .unwrap();
        let tar = data.into_inner().unwrap();
        let member = match compression {
            ".xz" => {
                let mut xz = Vec::new();
                lzma_rs::xz_compress(&mut io::Cursor::new(tar), &mut xz).unwrap();
                xz
            }
            ".gz" => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                io::Write::write_all(&mut gz, &tar).unwrap();
                gz.finish().unwrap()
            }
            _ => tar,
        };
        let mut deb = ar::Builder::new(Vec::new());
        for (name, body) in [
            ("debian-binary".to_string(), b"2.0\n".to_vec()),
            ("control.tar.gz".to_string(), Vec::new()),
            (format!("data.tar{compression}"), member),
        ] {
            let header = ar::Header::new(name.into_bytes(), body.len() as u64);
            deb.append(&header, body.as_slice()).unwrap();
        }
        deb.into_inner().unwrap()
    }

    #[test]
    fn a_deb_unpacks_whole_into_its_version_directory() {
        let cache = tempfile::tempdir().unwrap();
        let copy = unpack(cache.path(), "1:1.0.1+b1", &deb(".xz")).unwrap();
        assert_eq!(copy, cache.path().join("1_1.0.1+b1"));
        let debootstrap = Debootstrap::unpacked(&copy);
        let mode = std::fs::metadata(&debootstrap.program)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "not executable: {mode:o}");
        assert_eq!(
            debootstrap.scripts,
            Some(copy.join("usr/share/debootstrap"))
        );
        assert_eq!(cached(cache.path(), "bookworm"), Some(copy.clone()));
        assert_eq!(cached(cache.path(), "forky"), None);
        let left: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["1_1.0.1+b1"], "work directories left behind");

        let gz = unpack(cache.path(), "2", &deb(".gz")).unwrap();
        assert!(gz.join("usr/share/debootstrap/functions").is_file());
        let zst = unpack(cache.path(), "3", &deb(".zst")).unwrap_err();
        assert!(zst.to_string().contains("data.tar.zst"), "{zst}");
        assert!(!cache.path().join("3").exists());
        let junk = unpack(cache.path(), "4", b"!<arch>\n").unwrap_err();
        assert!(junk.to_string().contains("no data.tar"), "{junk}");
    }

    #[test]
    fn curl_stands_in_for_wget_as_debootstrap_calls_it() {
        if find_program("curl").is_none() {
            eprintln!("skipped: curl is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let shims = write_wget_via_curl(&dir.path().join("bin")).unwrap();
        let source = dir.path().join("Release");
        std::fs::write(&source, "Codename: bookworm\n").unwrap();
        let dest = dir.path().join("partial/Release");
        std::fs::create_dir(dir.path().join("partial")).unwrap();
        let status = std::process::Command::new(shims.join("wget"))
            .arg("-nv")
            .arg("-O")
            .arg(&dest)
            .arg(format!("file://{}", source.display()))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&dest).unwrap(),
            "Codename: bookworm\n"
        );
        let missing = std::process::Command::new(shims.join("wget"))
            .args(["-nv", "-O"])
            .arg(dir.path().join("none"))
            .arg(format!("file://{}/absent", dir.path().display()))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            !missing.success(),
            "a failed download must fail debootstrap's get"
        );
    }

    /// Against the machine's real mirror, as building the base image is.
    #[tokio::test]
    async fn fetches_from_the_mirror_once_then_reuses_the_copy_offline() {
        let variable = std::env::var(MIRROR_VARIABLE).ok();
        let mirror =
            crate::images::mirror_for("bookworm", variable.as_deref(), Path::new("/etc/apt"))
                .expect("the tests need a Debian mirror for bookworm");
        let cache = tempfile::tempdir().unwrap();
        let lines = Mutex::new(Vec::<String>::new());
        let record = |line: &str| lines.lock().unwrap().push(line.to_string());
        let debootstrap = fetched(cache.path(), &mirror, "bookworm", &record)
            .await
            .unwrap();
        let fetched_line = lines.lock().unwrap().last().cloned().unwrap();
        assert!(
            fetched_line.starts_with("debootstrap not installed: fetched debootstrap "),
            "{fetched_line}"
        );
        let version = debootstrap
            .command()
            .arg("--version")
            .output()
            .await
            .unwrap();
        let version = String::from_utf8_lossy(&version.stdout);
        let version = version
            .trim()
            .strip_prefix("debootstrap ")
            .unwrap()
            .to_string();
        assert!(
            fetched_line.contains(&format!("debootstrap {version} from {mirror} into ")),
            "{fetched_line} (runs as {version})"
        );

        lines.lock().unwrap().clear();
        // Nothing listens there: reuse must not touch the network.
        let again = fetched(
            cache.path(),
            "http://127.0.0.1:9/debian",
            "bookworm",
            &record,
        )
        .await
        .unwrap();
        assert_eq!(again.program, debootstrap.program);
        let reused = lines.lock().unwrap().clone();
        assert_eq!(reused.len(), 1, "{reused:?}");
        assert!(
            reused[0].contains("using the copy fetched earlier"),
            "{reused:?}"
        );
    }
}
