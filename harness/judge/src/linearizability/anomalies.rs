//! Violations one operation (or two) prove on their own, before any ordering: a value no write
//! produced, a value seen before its write began, and two cas that replaced the same value
//! when it was there only once.
//!
//! Both methods run this first: the zone check assumes every read has a write that could
//! have produced it, and the search's dead end is harder to read than these.

use firedrill_types::summary::{KeyViolation, LinearizabilityViolationKind as Kind};

use super::explain::{describe_op, secs};
use super::history::{KeyHistory, KeyOp, ABSENT};

pub(super) fn find(h: &KeyHistory) -> Option<KeyViolation> {
    // For each value: how many operations may write it, and the one called first.
    let mut writers: Vec<(usize, Option<&KeyOp>)> = vec![(0, None); h.values.len()];
    for o in &h.ops {
        if let Some(v) = o.written() {
            let w = &mut writers[v as usize];
            w.0 += 1;
            w.1.get_or_insert(o);
        }
    }
    for o in &h.ops {
        let Some(v) = o.observed().filter(|&v| v != ABSENT) else {
            continue;
        };
        match writers[v as usize].1 {
            None => return Some(phantom(h, o)),
            Some(w) if w.call > o.ret => {
                let text = format!(
                    "{}, but the first write of {}, {}, only began at {}, after that returned",
                    h.describe(o),
                    h.value_text(v),
                    describe_op(w.op),
                    secs(w.op.t_call)
                );
                return Some(h.violation(Kind::Future, text, [o.op.id, w.op.id]));
            }
            Some(_) => {}
        }
    }
    lost_update(h, &writers)
}

fn phantom(h: &KeyHistory, o: &KeyOp) -> KeyViolation {
    let v = o.observed().expect("only observers are phantoms");
    let text = h.values[v as usize];
    let failed = h.failed.iter().find(|f| f.value.as_deref() == text);
    match failed {
        Some(f) => h.violation(
            Kind::Phantom,
            format!(
                "{}, which only {} tried to write, and it failed",
                h.describe(o),
                describe_op(f)
            ),
            [o.op.id, f.id],
        ),
        None => h.violation(
            Kind::Phantom,
            format!("{}, which no write of the key produced", h.describe(o)),
            [o.op.id],
        ),
    }
}

/// Two ok cas that expected the same value, when that value was in the key only once: the
/// first to take effect replaced it, so the second cannot have found it.
fn lost_update(h: &KeyHistory, writers: &[(usize, Option<&KeyOp>)]) -> Option<KeyViolation> {
    let mut first_cas: Vec<Option<&KeyOp>> = vec![None; h.values.len()];
    for o in &h.ops {
        let Some(e) = o.observed().filter(|_| o.written().is_some()) else {
            continue;
        };
        let (count, writer) = writers[e as usize];
        let once = count + usize::from(e == ABSENT) <= 1;
        match first_cas[e as usize] {
            Some(first) if once => {
                let origin = match writer {
                    Some(w) => format!("only {} wrote it", describe_op(w.op)),
                    None => "the key started absent and nothing wrote absent again".to_owned(),
                };
                let text = format!(
                    "{} and {} both succeeded, but {} was in the key only once ({origin}): whichever came second cannot have found it, so one update was lost",
                    h.describe(first),
                    h.describe(o),
                    h.value_text(e)
                );
                let ops = [first.op.id, o.op.id]
                    .into_iter()
                    .chain(writer.map(|w| w.op.id));
                return Some(h.violation(Kind::LostUpdate, text, ops));
            }
            Some(_) => {}
            None => first_cas[e as usize] = Some(o),
        }
    }
    None
}
