//! `--partition K/N`: a deterministic share of the scenarios, so that N CI jobs can split a
//! suite between them. A scenario belongs to shard `fnv1a64(name) mod N + 1`: the name,
//! not the path, so moving or renaming a file's directory does not move it, and FNV-1a
//! (64 bit), a fixed function, so the split is the same on every machine and Rust version
//! (std's `DefaultHasher` promises neither).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based: 1..=total.
    pub index: u64,
    pub total: u64,
}

impl Partition {
    /// Whether the scenario named `name` is in this shard.
    pub fn contains(&self, name: &str) -> bool {
        shard_of(name, self.total) == self.index
    }
}

/// The shard (1..=total) of the scenario named `name`.
pub fn shard_of(name: &str, total: u64) -> u64 {
    fnv1a64(name.as_bytes()) % total.max(1) + 1
}

/// FNV-1a, 64 bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || format!("`{s}` is not K/N with 1 ≤ K ≤ N (e.g. `--partition 2/3`)");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let total: u64 = n.trim().parse().map_err(|_| bad())?;
        if total == 0 || index == 0 || index > total {
            return Err(bad());
        }
        Ok(Partition { index, total })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_scenario_is_in_exactly_one_shard() {
        let names: Vec<String> = (0..200).map(|i| format!("scenario-{i}")).collect();
        for total in 1..=7 {
            for name in &names {
                let shards: Vec<u64> = (1..=total)
                    .filter(|&index| Partition { index, total }.contains(name))
                    .collect();
                assert_eq!(shards.len(), 1, "{name} in {shards:?} of {total}");
            }
        }
    }

    #[test]
    fn the_split_is_pinned() {
        // A change here moves scenarios between CI jobs: it must be deliberate.
        let pinned = [
            ("backup-restore", 1),
            ("canary-rollout", 3),
            ("canary-rollout-bad", 3),
            ("node-replacement", 3),
            ("partition-recovery", 1),
            ("rolling-upgrade", 2),
        ];
        let got: Vec<(&str, u64)> = pinned.iter().map(|(n, _)| (*n, shard_of(n, 3))).collect();
        assert_eq!(got, pinned);
    }

    #[test]
    fn k_of_n_parses_and_rejects_the_rest() {
        let p: Partition = "2/3".parse().expect("2/3");
        assert_eq!(p, Partition { index: 2, total: 3 });
        assert_eq!(p.to_string(), "2/3");
        assert_eq!(
            " 1 / 1 ".parse::<Partition>(),
            Ok(Partition { index: 1, total: 1 })
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", "1/3/4", ""] {
            let err = bad.parse::<Partition>().expect_err(bad);
            assert!(err.contains("K/N"), "{bad}: {err}");
        }
    }
}
