//! The calls and returns not yet linearized, in time order: a doubly linked list over the
//! entries, so linearizing an operation unlinks its two entries and undoing it (always in
//! reverse order) relinks them.

use super::super::history::KeyOp;

#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub op: usize,
    pub is_return: bool,
}

/// A position in the list. Positions are numbered in time order, so comparing two says
/// which comes first.
pub(super) type Node = u32;

pub(super) const END: Node = Node::MAX;
const HEAD: Node = 0;

pub(super) struct Timeline {
    entries: Vec<Entry>,
    /// Links between nodes; node 0 is the list's head, not an entry.
    next: Vec<Node>,
    prev: Vec<Node>,
    call: Vec<Node>,
    ret: Vec<Option<Node>>,
}

impl Timeline {
    pub fn new(ops: &[KeyOp]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = ops
            .iter()
            .enumerate()
            .flat_map(|(i, o)| {
                let ret = o.definite().then_some((o.ret, true, i));
                [Some((o.call, false, i)), ret]
            })
            .flatten()
            .collect();
        // At equal times calls come first: an operation that returns when another is called
        // does not precede it.
        order.sort_unstable();
        let mut entries = vec![Entry {
            op: usize::MAX,
            is_return: false,
        }];
        let mut call = vec![0; ops.len()];
        let mut ret = vec![None; ops.len()];
        for (i, &(_, is_return, op)) in order.iter().enumerate() {
            let node = (i + 1) as Node;
            if is_return {
                ret[op] = Some(node);
            } else {
                call[op] = node;
            }
            entries.push(Entry { op, is_return });
        }
        let n = entries.len() as Node;
        Timeline {
            next: (1..n).chain([END]).collect(),
            prev: [END].into_iter().chain(0..n - 1).collect(),
            entries,
            call,
            ret,
        }
    }

    pub fn first(&self) -> Node {
        self.next[HEAD as usize]
    }

    pub fn next(&self, node: Node) -> Node {
        self.next[node as usize]
    }

    pub fn entry(&self, node: Node) -> Entry {
        self.entries[node as usize]
    }

    pub fn call_of(&self, op: usize) -> Node {
        self.call[op]
    }

    /// The first return still in the list from `node` on ([`END`] if none): only
    /// operations called before it may be linearized next.
    pub fn first_return_from(&self, mut node: Node) -> Node {
        while node != END && !self.entry(node).is_return {
            node = self.next(node);
        }
        node
    }

    pub fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        if let Some(r) = self.ret[op] {
            self.unlink(r);
        }
    }

    pub fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret[op] {
            self.relink(r);
        }
        self.relink(self.call[op]);
    }

    fn unlink(&mut self, node: Node) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != END {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: Node) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != END {
            self.prev[n as usize] = node;
        }
    }
}
