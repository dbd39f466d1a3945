//! The search's memory: the set of linearized operations, and every (set, value) state
//! already explored.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::super::history::Value;

/// The set of linearized operations: a bitset over the key's operations (in call order),
/// with what makes it cheap to remember.
///
/// Operations are linearized roughly in call order, so the set is nearly always a run of
/// ones, then a window of mixed bits, then zeros. Only the window is stored per state, and
/// the set's hash is kept up to date by XOR (Zobrist hashing).
pub(super) struct Linearized {
    bits: Vec<u64>,
    hash: u64,
    bounds: Bounds,
}

/// Where the set's window lies: every operation before `prefix` is in the set, none from
/// `end` on is.
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    prefix: usize,
    end: usize,
}

impl Linearized {
    pub fn new(ops: usize) -> Self {
        Linearized {
            bits: vec![0; ops.div_ceil(64)],
            hash: 0,
            bounds: Bounds { prefix: 0, end: 0 },
        }
    }

    pub fn contains(&self, op: usize) -> bool {
        self.bits[op / 64] >> (op % 64) & 1 == 1
    }

    pub fn insert(&mut self, op: usize) {
        self.bits[op / 64] |= 1 << (op % 64);
        self.hash ^= mix(op as u64);
        let b = &mut self.bounds;
        b.end = b.end.max(op + 1);
        // Bits from `end` on are clear, so the run of ones stops there at the latest.
        while b.prefix < b.end {
            // The shift fills with zeros, so this counts at most to the word's end.
            let ones = (!(self.bits[b.prefix / 64] >> (b.prefix % 64))).trailing_zeros() as usize;
            let room = 64 - b.prefix % 64;
            b.prefix += ones;
            if ones < room {
                break;
            }
        }
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Takes out operations inserted since `bounds` were taken, all of which go; the last
    /// one restores them.
    pub fn remove(&mut self, op: usize, bounds: Bounds) {
        self.bits[op / 64] &= !(1 << (op % 64));
        self.hash ^= mix(op as u64);
        self.bounds = bounds;
    }

    /// The words from the one holding the first missing operation to the last non-zero one.
    fn window(&self) -> (usize, &[u64]) {
        let start = self.bounds.prefix / 64;
        (
            start,
            &self.bits[start..self.bounds.end.div_ceil(64).max(start)],
        )
    }
}

/// The states already explored, each one's window stored once in an arena.
#[derive(Default)]
pub(super) struct Seen {
    /// From a state's hash to its latest entry; entries of equal hash chain through `next`.
    heads: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    entries: Vec<SeenEntry>,
    words: Vec<u64>,
}

/// The end of a chain of entries.
const NONE: u32 = u32::MAX;

struct SeenEntry {
    value: Value,
    start: u32,
    offset: usize,
    len: u32,
    next: u32,
}

impl Seen {
    /// Remembers the state; false if it was already there.
    pub fn insert(&mut self, set: &Linearized, value: Value) -> bool {
        let hash = set.hash ^ mix(u64::from(value) | 1 << 63);
        let (start, window) = set.window();
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut e = head;
        while e != NONE {
            let entry = &self.entries[e as usize];
            let stored = &self.words[entry.offset..entry.offset + entry.len as usize];
            if entry.value == value && entry.start as usize == start && stored == window {
                return false;
            }
            e = entry.next;
        }
        self.entries.push(SeenEntry {
            value,
            start: start as u32,
            offset: self.words.len(),
            len: window.len() as u32,
            next: head,
        });
        self.words.extend_from_slice(window);
        self.heads.insert(hash, (self.entries.len() - 1) as u32);
        true
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// SplitMix64's finalizer: a well-spread 64-bit key for each operation and value.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The keys are already hashes.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
