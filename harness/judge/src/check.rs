//! History checks: did every acknowledged write survive, and did every read see a value its
//! key could legally hold at that moment?
//!
//! Keys are registers that writes overwrite, and every write carries a unique value, so a
//! value names exactly the write that produced it. Linearizability is local, so each key is
//! checked on its own. An acknowledged operation took effect somewhere between its
//! `t_call` and its `t_return`. An operation with an unknown outcome may take effect at any
//! time after its `t_call`, even long after the client gave up (a timed-out request can
//! still be committed), so its `t_return` bounds nothing: no verdict below relies on it.

use std::collections::{BTreeMap, HashMap};

use firedrill_types::history::{Micros, Op, OpKind, Outcome};
use firedrill_types::summary::{DataResult, ReadResult};

/// How many offending writes or reads a result spells out.
const MAX_EXAMPLES: usize = 5;

/// After recovery the harness reads every key once more; `final_values` maps each key to the value
/// read (None = the key is absent). Keys not in the map were not read back.
pub fn data_check(ops: &[Op], final_values: &BTreeMap<String, Option<String>>) -> DataResult {
    let index = WriteIndex::new(ops);
    let mut result = index.data_result(final_values);

    for (key, value) in final_values {
        let acked_writes = index.acked_of(key);
        let Some(value) = value else {
            for w in acked_writes {
                result.lost += 1;
                push_example(&mut result.lost_examples, || {
                    format!(
                        "key {key}: {} is gone; the key is absent",
                        describe_acked_write(w)
                    )
                });
            }
            continue;
        };
        let Some(w) = index.write_of(key, value) else {
            // Which writes this value displaced is unknowable, so no loss is guessed.
            unwritten(&mut result, key, value);
            continue;
        };
        match w.outcome {
            Outcome::Fail => {
                // The client was wrong about this write, so its times bound nothing.
                result.unexpected += 1;
                push_example(&mut result.unexpected_examples, || {
                    format!(
                        "key {key} holds {value:?} from write #{} (client {} via {}), which failed at {}{}",
                        w.id,
                        w.client,
                        w.node,
                        secs(w.t_return),
                        error_suffix(w)
                    )
                });
            }
            Outcome::Unknown => result.recovered += 1,
            Outcome::Ok => {
                // A write invoked after `w` was acknowledged is ordered after `w`: had it
                // survived, the key could not hold `w`'s value.
                for w2 in acked_writes.iter().filter(|w2| w2.t_call > w.t_return) {
                    result.lost += 1;
                    push_example(&mut result.lost_examples, || {
                        format!(
                            "key {key}: {} is gone; the key holds {value:?} from write #{} acknowledged at {}, before write #{} began at {}",
                            describe_acked_write(w2),
                            w.id,
                            secs(w.t_return),
                            w2.id,
                            secs(w2.t_call)
                        )
                    });
                }
            }
        }
    }
    result.pass = result.lost == 0 && result.unexpected == 0;
    result
}

/// A backup and the loss of the cluster on the run clock, from the steps that marked them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupWindow {
    /// The backup's recovery point lies in `[start, end]`.
    pub start: Micros,
    pub end: Micros,
    /// The cluster is lost from `disaster_start`; writes invoked after `disaster_end` go to
    /// the restored cluster.
    pub disaster_start: Micros,
    pub disaster_end: Micros,
}

/// The data check after a restore from a backup: what survived must be what the backup held,
/// plus what was written to the restored cluster.
///
/// The restored cluster holds the backup's state as of a recovery point `r` somewhere in
/// `[start, end]`, then the writes invoked after the disaster ended. So a key's final value
/// is legal if it comes from a write that may precede `r` (invoked before the backup ended),
/// or from a write invoked after the disaster ended; a write invoked between the two cannot
/// be there (unexpected: the restore did not come from the declared backup).
///
/// Registers are overwritten, so a missing write is one that should have replaced the final
/// value: an acknowledged write `w2` invoked after that value's write returned (for a value
/// that came through the backup, also any write invoked after the disaster ended; for an
/// absent key, every acknowledged write). Each such `w2` is then
/// - **lost** if it was acknowledged before the backup began (the backup must hold it or a
///   later write), or invoked after the disaster ended (it went to the restored cluster);
/// - **after the recovery point** if it was invoked after the backup ended (allowed);
/// - **indeterminate** otherwise: it overlapped the backup, which may or may not hold it.
///
/// An unknown write's value being there is allowed (`recovered`); since an unknown write may
/// take effect any time after its call, only writes to the restored cluster are ordered
/// after it.
pub fn backup_data_check(
    ops: &[Op],
    final_values: &BTreeMap<String, Option<String>>,
    w: &BackupWindow,
) -> DataResult {
    let index = WriteIndex::new(ops);
    let mut result = index.data_result(final_values);
    for (key, value) in final_values {
        let acked_writes = index.acked_of(key);
        // Which acknowledged writes should have replaced the final value, and what it is.
        let (replaces, holds) = match value {
            None => (Replaced::ByAll, "the key is absent".to_string()),
            Some(value) => {
                let Some(f) = index.write_of(key, value) else {
                    unwritten(&mut result, key, value);
                    continue;
                };
                let between = f.t_call > w.end && f.t_call <= w.disaster_end;
                if f.outcome == Outcome::Fail || between {
                    result.unexpected += 1;
                    push_example(&mut result.unexpected_examples, || {
                        if between {
                            format!(
                                "key {key} holds {value:?} from write #{} invoked at {}, after the backup ended at {} and before the cluster was restored: the restore did not come from the declared backup",
                                f.id,
                                secs(f.t_call),
                                secs(w.end)
                            )
                        } else {
                            format!(
                                "key {key} holds {value:?} from write #{}, which failed at {}{}",
                                f.id,
                                secs(f.t_return),
                                error_suffix(f)
                            )
                        }
                    });
                    continue;
                }
                let restored = f.t_call > w.disaster_end;
                if f.outcome == Outcome::Unknown {
                    result.recovered += 1;
                }
                let holds = format!(
                    "the key holds {value:?} from write #{} ({})",
                    f.id,
                    if f.outcome == Outcome::Unknown {
                        "unknown outcome".to_string()
                    } else {
                        format!("acknowledged at {}", secs(f.t_return))
                    }
                );
                let replaced = Replaced::After {
                    returned: (f.outcome == Outcome::Ok).then_some(f.t_return),
                    through_backup: !restored,
                };
                (replaced, holds)
            }
        };
        for w2 in acked_writes.iter().filter(|w2| replaces.by(w2, w)) {
            if w2.t_call > w.disaster_end || w2.t_return < w.start {
                result.lost += 1;
                push_example(&mut result.lost_examples, || {
                    let why = if w2.t_return < w.start {
                        format!("acknowledged before the backup began at {}", secs(w.start))
                    } else {
                        format!(
                            "written to the restored cluster (the disaster ended at {})",
                            secs(w.disaster_end)
                        )
                    };
                    format!(
                        "key {key}: {} is gone although it was {why}; {holds}",
                        describe_acked_write(w2)
                    )
                });
            } else if w2.t_call > w.end {
                result.after_recovery_point += 1;
            } else {
                result.indeterminate += 1;
            }
        }
    }
    result.pass = result.lost == 0 && result.unexpected == 0;
    result
}

/// Which writes should have replaced a key's final value after a restore.
enum Replaced {
    /// The key is absent: every acknowledged write.
    ByAll,
    After {
        /// The value's write was acknowledged then: writes invoked later.
        returned: Option<Micros>,
        /// The value came through the backup: writes to the restored cluster too.
        through_backup: bool,
    },
}

impl Replaced {
    fn by(&self, w2: &Op, w: &BackupWindow) -> bool {
        match self {
            Replaced::ByAll => true,
            Replaced::After {
                returned,
                through_backup,
            } => {
                returned.is_some_and(|t| w2.t_call > t)
                    || (*through_backup && w2.t_call > w.disaster_end)
            }
        }
    }
}

/// Per-key register checks on every Ok read in the history.
pub fn read_check(ops: &[Op]) -> ReadResult {
    let index = WriteIndex::new(ops);
    let mut result = ReadResult::default();

    // History order, so the examples are the first offending reads as recorded.
    for r in ops
        .iter()
        .filter(|op| op.kind == OpKind::Read && op.outcome == Outcome::Ok)
    {
        result.checked += 1;
        let acked = index.acked.get(&*r.key);
        let Some(value) = &r.value else {
            // Absent is stale once any write of the key was acknowledged before the read.
            let first = acked
                .and_then(|a| a.by_return.first())
                .filter(|w2| w2.t_return < r.t_call);
            if let Some(w2) = first {
                result.stale += 1;
                push_example(&mut result.examples, || {
                    format!(
                        "{} saw the key absent, but should have seen at least {:?}: write #{} was acknowledged at {}, before the read began",
                        describe_read(r),
                        w2.value.as_deref().unwrap_or_default(),
                        w2.id,
                        secs(w2.t_return)
                    )
                });
            }
            continue;
        };
        let Some(w) = index.write_of(&r.key, value) else {
            result.phantom += 1;
            push_example(&mut result.examples, || {
                format!(
                    "{} saw {value:?}, which no write of that key produced",
                    describe_read(r)
                )
            });
            continue;
        };
        if w.outcome == Outcome::Fail {
            result.phantom += 1;
            push_example(&mut result.examples, || {
                format!(
                    "{} saw {value:?}, which write #{} tried to write but failed at {}{}",
                    describe_read(r),
                    w.id,
                    secs(w.t_return),
                    error_suffix(w)
                )
            });
        } else if w.t_call > r.t_return {
            result.future += 1;
            push_example(&mut result.examples, || {
                format!(
                    "{} saw {value:?}, but write #{} that produced it only began at {}, after the read returned",
                    describe_read(r),
                    w.id,
                    secs(w.t_call)
                )
            });
        } else if w.outcome == Outcome::Ok {
            let newer = acked
                .and_then(|a| a.latest_invoked_acked_before(r.t_call))
                .filter(|w2| w2.t_call > w.t_return);
            if let Some(w2) = newer {
                result.stale += 1;
                push_example(&mut result.examples, || {
                    format!(
                        "{} saw {value:?} from write #{} acknowledged at {}, but should have seen at least {:?}: write #{} began after that, at {}, and was acknowledged at {}, before the read began",
                        describe_read(r),
                        w.id,
                        secs(w.t_return),
                        w2.value.as_deref().unwrap_or_default(),
                        w2.id,
                        secs(w2.t_call),
                        secs(w2.t_return)
                    )
                });
            }
        }
    }
    result.pass = result.phantom == 0 && result.future == 0 && result.stale == 0;
    result
}

/// The writes of a history, indexed for O(1) value look-ups and O(log n) order queries.
struct WriteIndex<'a> {
    /// Every write and cas by (key, value). Values are unique; should one repeat, the first
    /// write of it is the one named.
    by_value: HashMap<(&'a str, &'a str), &'a Op>,
    /// The acknowledged writes of each key.
    acked: HashMap<&'a str, AckedWrites<'a>>,
}

impl<'a> WriteIndex<'a> {
    fn new(ops: &'a [Op]) -> Self {
        // A cas that took effect (or may have) writes its new value like a write; one whose
        // compare failed is indexed too, as a failed write, so a read of its value is named.
        let writes = || {
            ops.iter()
                .filter(|op| matches!(op.kind, OpKind::Write | OpKind::Cas))
        };
        // Sized up front: growing a map of a million entries rehashes it many times.
        let mut by_value = HashMap::with_capacity(writes().count());
        let mut acked: HashMap<&str, Vec<&Op>> = HashMap::new();
        for w in writes() {
            if let Some(value) = &w.value {
                by_value.entry((&*w.key, &**value)).or_insert(w);
            }
            if w.outcome == Outcome::Ok {
                acked.entry(&*w.key).or_default().push(w);
            }
        }
        let acked = acked
            .into_iter()
            .map(|(key, writes)| (key, AckedWrites::new(writes)))
            .collect();
        WriteIndex { by_value, acked }
    }

    fn write_of(&self, key: &str, value: &str) -> Option<&'a Op> {
        self.by_value.get(&(key, value)).copied()
    }

    /// The key's acknowledged writes, by `t_return`.
    fn acked_of(&self, key: &str) -> &[&'a Op] {
        self.acked
            .get(key)
            .map(|a| a.by_return.as_slice())
            .unwrap_or_default()
    }

    /// A data check's result before any key is judged: what was read back and acknowledged.
    fn data_result(&self, final_values: &BTreeMap<String, Option<String>>) -> DataResult {
        DataResult {
            keys: final_values.len() as u64,
            acked: self.acked.values().map(|a| a.by_return.len() as u64).sum(),
            ..DataResult::default()
        }
    }
}

/// One key's acknowledged writes, sorted by `t_return`.
struct AckedWrites<'a> {
    by_return: Vec<&'a Op>,
    /// `by_return[i].t_return`, kept inline so a binary search does not chase pointers.
    returns: Vec<Micros>,
    /// `latest_call[i]` is the write invoked last among `by_return[..=i]`.
    latest_call: Vec<&'a Op>,
}

impl<'a> AckedWrites<'a> {
    fn new(mut by_return: Vec<&'a Op>) -> Self {
        by_return.sort_by_key(|w| w.t_return);
        let mut latest_call = Vec::with_capacity(by_return.len());
        let mut latest: Option<&Op> = None;
        for &w in &by_return {
            let l = match latest {
                Some(l) if l.t_call >= w.t_call => l,
                _ => w,
            };
            latest_call.push(l);
            latest = Some(l);
        }
        AckedWrites {
            returns: by_return.iter().map(|w| w.t_return).collect(),
            by_return,
            latest_call,
        }
    }

    /// Of the writes acknowledged before `t`, the one invoked last.
    ///
    /// A read that saw write `w` and began at `t` is stale iff some write acknowledged
    /// before `t` was invoked after `w` returned. Those writes form a prefix of
    /// `by_return`, and "some write in the prefix was invoked after X" holds iff the
    /// prefix's latest invocation is after X, so one binary search answers it in
    /// O(log n) instead of a scan of every write. `w` itself never qualifies, since
    /// it was invoked before it returned.
    fn latest_invoked_acked_before(&self, t: Micros) -> Option<&'a Op> {
        let n = self.returns.partition_point(|&r| r < t);
        n.checked_sub(1).map(|i| self.latest_call[i])
    }
}

/// A key holding a value no write of it produced: unexpected.
fn unwritten(result: &mut DataResult, key: &str, value: &str) {
    result.unexpected += 1;
    push_example(&mut result.unexpected_examples, || {
        format!("key {key} holds {value:?}, which no write of that key produced")
    });
}

/// Builds the example only while fewer than [`MAX_EXAMPLES`] are kept, so a history full
/// of offenders does not format a million strings.
fn push_example(examples: &mut Vec<String>, example: impl FnOnce() -> String) {
    if examples.len() < MAX_EXAMPLES {
        examples.push(example());
    }
}

fn describe_acked_write(w: &Op) -> String {
    format!(
        "{} #{} of {:?} acknowledged at {} (client {} via {})",
        if w.kind == OpKind::Cas {
            "cas"
        } else {
            "write"
        },
        w.id,
        w.value.as_deref().unwrap_or_default(),
        secs(w.t_return),
        w.client,
        w.node
    )
}

fn describe_read(r: &Op) -> String {
    format!(
        "read #{} of key {} (client {} via {}, {}–{})",
        r.id,
        r.key,
        r.client,
        r.node,
        secs(r.t_call),
        secs(r.t_return)
    )
}

fn error_suffix(op: &Op) -> String {
    op.error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}

/// A time on the run clock, in seconds.
fn secs(t: Micros) -> String {
    format!("{:.3}s", t as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        id: u64,
        kind: OpKind,
        key: &str,
        value: Option<&str>,
        t: (Micros, Micros),
        outcome: Outcome,
    ) -> Op {
        Op {
            id,
            client: (id % 4) as u32,
            node: format!("node{}", id % 3).into(),
            kind,
            key: key.into(),
            value: value.map(Box::from),
            expected: None,
            t_intended: t.0,
            t_call: t.0,
            t_return: t.1,
            outcome,
            error: None,
            backend: None,
        }
    }

    fn write(id: u64, key: &str, value: &str, t: (Micros, Micros), outcome: Outcome) -> Op {
        op(id, OpKind::Write, key, Some(value), t, outcome)
    }

    fn read(id: u64, key: &str, value: Option<&str>, t: (Micros, Micros)) -> Op {
        op(id, OpKind::Read, key, value, t, Outcome::Ok)
    }

    fn finals(entries: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect()
    }

    /// Two acknowledged writes of `k`, one after the other: "a" in [0, 10], "b" in [20, 30].
    fn sequential() -> Vec<Op> {
        vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "b", (20, 30), Outcome::Ok),
        ]
    }

    fn cas(
        id: u64,
        key: &str,
        expected: &str,
        new: &str,
        t: (Micros, Micros),
        outcome: Outcome,
    ) -> Op {
        Op {
            expected: Some(expected.into()),
            ..op(id, OpKind::Cas, key, Some(new), t, outcome)
        }
    }

    // ---- data_check ----

    #[test]
    fn an_acknowledged_cas_is_a_write_that_must_survive() {
        let mut ops = sequential();
        ops.push(cas(3, "k", "b", "c", (40, 50), Outcome::Ok));
        let r = data_check(&ops, &finals(&[("k", Some("b"))]));
        assert_eq!((r.acked, r.lost), (3, 1), "{r:?}");
        assert!(
            r.lost_examples[0].contains("cas #3 of \"c\""),
            "{:?}",
            r.lost_examples
        );
        let twin = data_check(&ops, &finals(&[("k", Some("c"))]));
        assert!(twin.pass, "{twin:?}");
    }

    #[test]
    fn a_cas_whose_compare_failed_never_wrote_its_value() {
        let mut ops = sequential();
        ops.push(cas(3, "k", "a", "c", (40, 50), Outcome::Fail));
        ops.push(read(4, "k", Some("c"), (60, 70)));
        let reads = read_check(&ops);
        assert_eq!(reads.phantom, 1, "{reads:?}");
        let data = data_check(&ops, &finals(&[("k", Some("c"))]));
        assert_eq!(data.unexpected, 1, "{data:?}");
        // The twin: the read sees the value the cas compared against and left in place.
        ops[3] = read(4, "k", Some("b"), (60, 70));
        assert!(read_check(&ops).pass);
        assert!(data_check(&ops, &finals(&[("k", Some("b"))])).pass);
    }

    #[test]
    fn lost_write_when_final_value_is_an_older_write() {
        let r = data_check(&sequential(), &finals(&[("k", Some("a"))]));
        assert_eq!((r.keys, r.acked, r.lost, r.unexpected), (1, 2, 1, 0));
        assert!(!r.pass);
        assert_eq!(r.lost_examples.len(), 1);
        assert!(
            r.lost_examples[0].contains("write #2 of \"b\""),
            "{:?}",
            r.lost_examples
        );

        let twin = data_check(&sequential(), &finals(&[("k", Some("b"))]));
        assert!(twin.pass, "{twin:?}");
        assert_eq!(twin.lost, 0);
    }

    #[test]
    fn lost_example_reads_as_a_sentence() {
        let ops = vec![
            Op {
                client: 1,
                node: "etcd1".into(),
                ..write(80, "fd/17", "v-1-80", (9_500_000, 10_001_000), Outcome::Ok)
            },
            Op {
                client: 3,
                node: "etcd2".into(),
                ..write(
                    1234,
                    "fd/17",
                    "v-3-99",
                    (11_500_000, 12_345_000),
                    Outcome::Ok,
                )
            },
        ];
        let r = data_check(&ops, &finals(&[("fd/17", Some("v-1-80"))]));
        assert_eq!(
            r.lost_examples,
            [
                "key fd/17: write #1234 of \"v-3-99\" acknowledged at 12.345s (client 3 via etcd2) is gone; \
                 the key holds \"v-1-80\" from write #80 acknowledged at 10.001s, before write #1234 began at 11.500s"
            ]
        );
    }

    #[test]
    fn key_absent_after_acked_writes_loses_them_all() {
        let r = data_check(&sequential(), &finals(&[("k", None)]));
        assert_eq!((r.lost, r.unexpected), (2, 0));
        assert!(!r.pass);
        assert!(
            r.lost_examples[0].ends_with("the key is absent"),
            "{:?}",
            r.lost_examples
        );

        // The twin: only a failed and an unknown write, so absence is legal.
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Fail),
            write(2, "k", "b", (20, 30), Outcome::Unknown),
        ];
        let twin = data_check(&ops, &finals(&[("k", None)]));
        assert!(twin.pass, "{twin:?}");
        assert_eq!(twin.acked, 0);
    }

    #[test]
    fn recovered_unknown_write_is_allowed_and_counted() {
        let mut ops = sequential();
        ops.push(write(3, "k", "c", (40, 50), Outcome::Unknown));
        let r = data_check(&ops, &finals(&[("k", Some("c"))]));
        assert_eq!((r.recovered, r.lost, r.unexpected), (1, 0, 0));
        assert!(r.pass);

        // Its value not showing up is fine too, and is not counted as recovered.
        let r = data_check(&ops, &finals(&[("k", Some("b"))]));
        assert_eq!(r.recovered, 0);
        assert!(r.pass);
    }

    #[test]
    fn unknown_write_may_land_after_later_acked_writes() {
        // The timed-out write of "a" may be committed after "b" was acknowledged.
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Unknown),
            write(2, "k", "b", (20, 30), Outcome::Ok),
        ];
        let r = data_check(&ops, &finals(&[("k", Some("a"))]));
        assert_eq!((r.recovered, r.lost), (1, 0));
        assert!(r.pass);
    }

    #[test]
    fn unexpected_value_is_flagged_without_guessing_losses() {
        let mut ops = sequential();
        ops.push(write(3, "other", "x", (0, 10), Outcome::Ok));
        for bogus in ["never-written", "x"] {
            let r = data_check(&ops, &finals(&[("k", Some(bogus))]));
            assert_eq!((r.unexpected, r.lost), (1, 0), "{bogus}");
            assert!(!r.pass);
            assert!(r.unexpected_examples[0].contains("no write of that key produced"));
        }
    }

    #[test]
    fn failed_write_whose_value_shows_up_is_unexpected() {
        let mut ops = sequential();
        ops.push(Op {
            error: Some("connection refused".into()),
            ..write(3, "k", "c", (40, 50), Outcome::Fail)
        });
        let r = data_check(&ops, &finals(&[("k", Some("c"))]));
        assert_eq!((r.unexpected, r.lost, r.recovered), (1, 0, 0));
        assert!(!r.pass);
        assert!(
            r.unexpected_examples[0].contains("write #3")
                && r.unexpected_examples[0].contains("connection refused"),
            "{:?}",
            r.unexpected_examples
        );

        let twin = data_check(&ops, &finals(&[("k", Some("b"))]));
        assert!(twin.pass, "{twin:?}");
    }

    #[test]
    fn either_concurrent_write_may_win() {
        let ops = vec![
            write(1, "k", "a", (0, 20), Outcome::Ok),
            write(2, "k", "b", (10, 30), Outcome::Ok),
        ];
        for last in ["a", "b"] {
            let r = data_check(&ops, &finals(&[("k", Some(last))]));
            assert!(r.pass, "{last}: {r:?}");
        }
    }

    #[test]
    fn keys_not_read_back_are_not_judged() {
        let mut ops = sequential();
        ops.push(write(3, "unread", "x", (0, 10), Outcome::Ok));
        let r = data_check(&ops, &finals(&[("k", Some("b"))]));
        assert_eq!((r.keys, r.acked), (1, 3));
        assert!(r.pass);
    }

    #[test]
    fn at_most_five_examples_are_kept() {
        let ops: Vec<Op> = (0..8)
            .map(|i| write(i, &format!("k{i}"), &format!("v{i}"), (0, 10), Outcome::Ok))
            .collect();
        let lost: Vec<(String, Option<String>)> = (0..8).map(|i| (format!("k{i}"), None)).collect();
        let r = data_check(&ops, &lost.into_iter().collect());
        assert_eq!(r.lost, 8);
        assert_eq!(r.lost_examples.len(), MAX_EXAMPLES);
    }

    // ---- backup_data_check ----

    /// Backup from 100 to 200, disaster from 300 to 400.
    const WINDOW: BackupWindow = BackupWindow {
        start: 100,
        end: 200,
        disaster_start: 300,
        disaster_end: 400,
    };

    fn backup(ops: &[Op], entries: &[(&str, Option<&str>)]) -> DataResult {
        backup_data_check(ops, &finals(entries), &WINDOW)
    }

    #[test]
    fn backup_must_hold_writes_acknowledged_before_it_began() {
        let ops = vec![write(1, "k", "a", (0, 10), Outcome::Ok)];
        assert!(backup(&ops, &[("k", Some("a"))]).pass);
        let r = backup(&ops, &[("k", None)]);
        assert_eq!((r.lost, r.after_recovery_point, r.indeterminate), (1, 0, 0));
        assert!(!r.pass);
        assert!(
            r.lost_examples[0].contains("acknowledged before the backup began at 0.000s")
                && r.lost_examples[0].contains("the key is absent"),
            "{:?}",
            r.lost_examples
        );
    }

    #[test]
    fn writes_after_the_backup_may_be_gone() {
        // Invoked after the backup ended, acknowledged before the disaster.
        let ops = vec![write(1, "k", "a", (250, 260), Outcome::Ok)];
        let r = backup(&ops, &[("k", None)]);
        assert_eq!((r.lost, r.after_recovery_point), (0, 1));
        assert!(r.pass, "{r:?}");
        // Acknowledged by a node still alive while the disaster went on: gone too, allowed.
        let ops = vec![write(1, "k", "a", (320, 330), Outcome::Ok)];
        let r = backup(&ops, &[("k", None)]);
        assert_eq!((r.lost, r.after_recovery_point), (0, 1));
    }

    #[test]
    fn writes_overlapping_the_backup_are_indeterminate() {
        let ops = vec![write(1, "k", "a", (150, 250), Outcome::Ok)];
        let r = backup(&ops, &[("k", None)]);
        assert_eq!((r.lost, r.indeterminate), (0, 1));
        assert!(r.pass);
        assert!(backup(&ops, &[("k", Some("a"))]).pass);
    }

    #[test]
    fn a_stale_backup_loses_overwrites_acknowledged_before_the_declared_one() {
        // "b" replaced "a" before the backup began: a backup holding "a" is older than declared.
        let ops = sequential();
        let r = backup(&ops, &[("k", Some("a"))]);
        assert_eq!(r.lost, 1);
        assert!(!r.pass);
        assert!(
            r.lost_examples[0].contains("write #2 of \"b\""),
            "{:?}",
            r.lost_examples
        );
        assert!(backup(&ops, &[("k", Some("b"))]).pass);
    }

    #[test]
    fn an_overwrite_after_the_backup_may_be_undone() {
        // "a" before the backup, "b" after it: the restore brings "a" back, as it should.
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "b", (250, 260), Outcome::Ok),
        ];
        let r = backup(&ops, &[("k", Some("a"))]);
        assert_eq!((r.lost, r.after_recovery_point), (0, 1));
        assert!(r.pass, "{r:?}");
        // An overwrite during the backup: either value may be in it.
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "b", (150, 160), Outcome::Ok),
        ];
        let r = backup(&ops, &[("k", Some("a"))]);
        assert_eq!((r.lost, r.indeterminate), (0, 1));
        assert!(backup(&ops, &[("k", Some("b"))]).pass);
    }

    #[test]
    fn a_value_written_between_backup_and_restore_is_unexpected() {
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "b", (250, 260), Outcome::Ok),
        ];
        let r = backup(&ops, &[("k", Some("b"))]);
        assert_eq!((r.unexpected, r.lost), (1, 0));
        assert!(!r.pass);
        assert!(
            r.unexpected_examples[0].contains("did not come from the declared backup"),
            "{:?}",
            r.unexpected_examples
        );
    }

    #[test]
    fn writes_to_the_restored_cluster_must_survive() {
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "c", (500, 510), Outcome::Ok),
            write(3, "k", "d", (600, 610), Outcome::Ok),
        ];
        assert!(backup(&ops, &[("k", Some("d"))]).pass);
        // The restore's value shows through: both later writes are lost.
        let r = backup(&ops, &[("k", Some("a"))]);
        assert_eq!(r.lost, 2);
        assert!(
            r.lost_examples[0].contains("restored cluster"),
            "{:?}",
            r.lost_examples
        );
        // Register order among restored writes holds as usual.
        let r = backup(&ops, &[("k", Some("c"))]);
        assert_eq!(r.lost, 1);
        let r = backup(&ops, &[("k", None)]);
        assert_eq!((r.lost, r.after_recovery_point), (3, 0));
    }

    #[test]
    fn an_unknown_write_in_the_backup_is_still_replaced_by_restored_writes() {
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Unknown),
            write(2, "k", "b", (20, 30), Outcome::Ok),
            write(3, "k", "c", (500, 510), Outcome::Ok),
        ];
        // "a" may have landed after "b": fine before the disaster, not after the restore.
        let r = backup(&ops, &[("k", Some("a"))]);
        assert_eq!((r.recovered, r.lost), (1, 1));
        assert!(
            r.lost_examples[0].contains("write #3"),
            "{:?}",
            r.lost_examples
        );
        let mut before = ops.clone();
        before.pop();
        let r = backup(&before, &[("k", Some("a"))]);
        assert!(r.pass, "{r:?}");
    }

    // ---- read_check ----

    #[test]
    fn stale_read_is_caught() {
        let mut ops = sequential();
        ops.push(read(3, "k", Some("a"), (40, 50)));
        let r = read_check(&ops);
        assert_eq!((r.checked, r.stale, r.phantom, r.future), (1, 1, 0, 0));
        assert!(!r.pass);
        assert!(
            r.examples[0].contains("read #3") && r.examples[0].contains("at least \"b\""),
            "{:?}",
            r.examples
        );

        let mut twin = sequential();
        twin.push(read(3, "k", Some("b"), (40, 50)));
        assert!(read_check(&twin).pass);
    }

    #[test]
    fn absent_read_after_an_acked_write_is_stale() {
        let mut ops = sequential();
        ops.push(read(3, "k", None, (15, 18)));
        let r = read_check(&ops);
        assert_eq!(r.stale, 1);
        assert!(r.examples[0].contains("absent"), "{:?}", r.examples);

        // Before or during the first write, absence is legal.
        let mut twin = sequential();
        twin.push(read(3, "k", None, (0, 5)));
        twin.push(read(4, "k", None, (5, 9)));
        let r = read_check(&twin);
        assert_eq!(r.checked, 2);
        assert!(r.pass, "{r:?}");
    }

    #[test]
    fn future_read_is_caught() {
        let ops = vec![
            write(1, "k", "a", (100, 110), Outcome::Ok),
            read(2, "k", Some("a"), (0, 50)),
        ];
        let r = read_check(&ops);
        assert_eq!((r.future, r.stale, r.phantom), (1, 0, 0));
        assert!(!r.pass);
        assert!(r.examples[0].contains("only began at"), "{:?}", r.examples);

        // A read overlapping the write may see it.
        let twin = vec![
            write(1, "k", "a", (100, 110), Outcome::Ok),
            read(2, "k", Some("a"), (0, 105)),
        ];
        assert!(read_check(&twin).pass);
    }

    #[test]
    fn phantom_reads_are_caught() {
        let mut ops = sequential();
        ops.push(write(3, "k", "failed", (40, 50), Outcome::Fail));
        ops.push(write(4, "other", "elsewhere", (40, 50), Outcome::Ok));
        ops.push(read(5, "k", Some("never-written"), (60, 70)));
        ops.push(read(6, "k", Some("failed"), (60, 70)));
        ops.push(read(7, "k", Some("elsewhere"), (60, 70)));
        let r = read_check(&ops);
        assert_eq!((r.checked, r.phantom, r.stale, r.future), (3, 3, 0, 0));
        assert!(!r.pass);
        assert_eq!(r.examples.len(), 3);
        assert!(r.examples[1].contains("failed at"), "{:?}", r.examples);

        let mut twin = sequential();
        twin.push(read(5, "k", Some("b"), (60, 70)));
        assert!(read_check(&twin).pass);
    }

    #[test]
    fn concurrent_read_may_see_old_or_new() {
        for seen in ["a", "b"] {
            let mut ops = sequential();
            // Overlaps the write of "b" (20..30) at both ends.
            ops.push(read(3, "k", Some(seen), (25, 35)));
            ops.push(read(4, "k", Some(seen), (15, 25)));
            let r = read_check(&ops);
            assert!(r.pass, "{seen}: {r:?}");
        }
    }

    #[test]
    fn reading_an_unknown_write_is_never_stale() {
        // "a" timed out but may have been committed after "b".
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Unknown),
            write(2, "k", "b", (20, 30), Outcome::Ok),
            read(3, "k", Some("a"), (40, 50)),
        ];
        assert!(read_check(&ops).pass);
    }

    #[test]
    fn only_ok_reads_are_checked() {
        let mut ops = sequential();
        ops.push(op(
            3,
            OpKind::Read,
            "k",
            Some("junk"),
            (40, 50),
            Outcome::Unknown,
        ));
        ops.push(op(4, OpKind::Read, "k", None, (40, 50), Outcome::Fail));
        let r = read_check(&ops);
        assert_eq!(r.checked, 0);
        assert!(r.pass);
    }

    #[test]
    fn stale_uses_the_latest_invocation_not_the_latest_return() {
        // "c" overlaps both; "b" begins after "a" returned. "c" is acknowledged last, yet it
        // is "b" that makes a later read of "a" stale.
        let ops = vec![
            write(1, "k", "a", (0, 10), Outcome::Ok),
            write(2, "k", "b", (20, 30), Outcome::Ok),
            write(3, "k", "c", (5, 50), Outcome::Ok),
            read(4, "k", Some("a"), (12, 18)),
            read(5, "k", Some("a"), (60, 70)),
            read(6, "k", Some("c"), (60, 70)),
        ];
        let r = read_check(&ops);
        assert_eq!((r.checked, r.stale), (3, 1));
        assert!(
            r.examples[0].starts_with("read #5") && r.examples[0].contains("write #2"),
            "{:?}",
            r.examples
        );
    }

    /// The O(n log n) stale check must agree with the obvious quadratic definition.
    #[test]
    fn stale_matches_brute_force_on_random_histories() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..50 {
            let mut ops = Vec::new();
            for id in 0..200u64 {
                let key = format!("k{}", rng.below(3));
                let t_call = rng.below(1000);
                let t = (t_call, t_call + rng.below(60));
                if rng.below(2) == 0 {
                    let outcome =
                        [Outcome::Ok, Outcome::Ok, Outcome::Unknown][rng.below(3) as usize];
                    ops.push(write(id, &key, &format!("v{id}"), t, outcome));
                } else {
                    // Read a random earlier value of any key, or nothing.
                    let seen = (id > 0 && rng.below(5) > 0).then(|| format!("v{}", rng.below(id)));
                    ops.push(read(id, &key, seen.as_deref(), t));
                }
            }
            let expected = ops
                .iter()
                .filter(|r| r.kind == OpKind::Read)
                .filter(|r| {
                    let written = |w: &&Op| w.kind == OpKind::Write && w.key == r.key;
                    let acked_before = |w: &&Op| w.outcome == Outcome::Ok && w.t_return < r.t_call;
                    match &r.value {
                        None => ops.iter().filter(written).any(|w| acked_before(&w)),
                        Some(v) => ops.iter().filter(written).any(|w| {
                            w.value.as_ref() == Some(v)
                                && w.outcome == Outcome::Ok
                                && w.t_call <= r.t_return
                                && ops
                                    .iter()
                                    .filter(written)
                                    .any(|w2| acked_before(&w2) && w2.t_call > w.t_return)
                        }),
                    }
                })
                .count() as u64;
            assert_eq!(read_check(&ops).stale, expected, "round {round}");
        }
    }

    /// A tiny deterministic generator, so the random histories are the same on every run.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn large_history_completes() {
        const KEYS: u64 = 500;
        const OPS: u64 = 200_000;
        // Each key alternates write and read, one at a time, so every check must pass.
        let mut ops = Vec::with_capacity(OPS as usize);
        let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut first: BTreeMap<String, String> = BTreeMap::new();
        for id in 0..OPS {
            let key = format!("fd/{}", id % KEYS);
            let t = id * 10;
            if (id / KEYS).is_multiple_of(2) {
                let value = format!("v-{id}");
                ops.push(write(id, &key, &value, (t, t + 5), Outcome::Ok));
                first.entry(key.clone()).or_insert_with(|| value.clone());
                last.insert(key, Some(value));
            } else {
                let seen = last[&key].clone();
                ops.push(read(id, &key, seen.as_deref(), (t, t + 5)));
            }
        }
        let writes = ops.iter().filter(|o| o.kind == OpKind::Write).count() as u64;

        let reads = read_check(&ops);
        assert!(reads.pass, "{reads:?}");
        assert_eq!(reads.checked, OPS - writes);

        let data = data_check(&ops, &last);
        assert!(data.pass, "{data:?}");
        assert_eq!((data.keys, data.acked), (KEYS, writes));

        // Roll one key back to its first value: every later write of it is lost.
        let mut rolled_back = last.clone();
        rolled_back.insert("fd/7".into(), Some(first["fd/7"].clone()));
        let data = data_check(&ops, &rolled_back);
        assert_eq!(data.lost, writes / KEYS - 1);
    }
}
