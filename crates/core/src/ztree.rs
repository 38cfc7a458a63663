//! The order of a large sorted set: a B+tree with subtree counts (rank and
//! select in O(log n)), in two arenas of fixed-size nodes.
//!
//! A node holds up to `CAP` elements (a leaf) or children (an inner node),
//! scores in one array and members in another, so a descent scans a few
//! adjacent cache lines of scores per level (the members are read only on
//! a score tie) and touches about four levels for a million elements,
//! where a binary tree touches twenty-odd, most of them cache misses.
//!
//! Invariants:
//! - Elements are ordered by (score, member) (`zset::cmp_elem`); a leaf
//!   holds its elements in order, and the leaves in tree order hold all of
//!   them in order.
//! - Separator `i` of an inner node is a lower bound of every element
//!   under child `i + 1` and greater than every element under child `i`
//!   (it is the first element of child `i + 1` when that child is split
//!   off; removals keep it a valid bound).
//! - `counts[i]` is the number of elements under child `i`; no child is
//!   empty (a removal that empties a node unlinks it) and the root, when
//!   inner, has at least two children.

use crate::zset::cmp_elem;
use crate::CompactBytes;
use std::cmp::Ordering;

/// Elements per leaf, children per inner node.
const CAP: usize = 32;
/// The tag of a leaf's id (inner nodes have it clear).
const LEAF: u32 = 1 << 31;
const NIL: u32 = u32::MAX;

#[derive(Clone)]
struct Leaf {
    len: usize,
    scores: [f64; CAP],
    members: [CompactBytes; CAP],
}

#[derive(Clone)]
struct Inner {
    /// Children; separators are one fewer.
    len: usize,
    scores: [f64; CAP],
    members: [CompactBytes; CAP],
    counts: [u32; CAP],
    children: [u32; CAP],
}

impl Leaf {
    fn new() -> Leaf {
        Leaf {
            len: 0,
            scores: [0.0; CAP],
            members: std::array::from_fn(|_| CompactBytes::default()),
        }
    }
}

impl Inner {
    fn new() -> Inner {
        Inner {
            len: 0,
            scores: [0.0; CAP],
            members: std::array::from_fn(|_| CompactBytes::default()),
            counts: [0; CAP],
            children: [NIL; CAP],
        }
    }

    fn total(&self) -> usize {
        self.counts[..self.len].iter().map(|&c| c as usize).sum()
    }
}

/// How many of the sorted keys `(scores[i], members[i])` are below
/// (score, member), or with `equal` at most it. The scores are scanned
/// whole (independent loads the CPU overlaps); members only on a tie.
#[inline]
fn rank_in(
    scores: &[f64],
    members: &[CompactBytes],
    score: f64,
    member: &[u8],
    equal: bool,
) -> usize {
    let mut n = scores
        .iter()
        .map(|&s| usize::from(s < score))
        .sum::<usize>();
    while n < scores.len() && scores[n] == score {
        match members[n].as_slice().cmp(member) {
            Ordering::Less => n += 1,
            Ordering::Equal if equal => n += 1,
            _ => break,
        }
    }
    n
}

/// What `detach` did with an element.
enum Detached {
    Missing,
    /// Rescored where it was.
    InPlace,
    /// Taken out: its member.
    Out(CompactBytes),
}

/// A split-off right sibling for the parent: its first key and its id.
struct Split {
    score: f64,
    member: CompactBytes,
    node: u32,
}

#[derive(Clone)]
pub(crate) struct Tree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    root: u32,
    len: usize,
}

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            leaves: Vec::new(),
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: NIL,
            len: 0,
        }
    }

    /// Bytes of the node arenas (for memory accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.leaves.capacity() * std::mem::size_of::<Leaf>()
            + self.inners.capacity() * std::mem::size_of::<Inner>()
            + (self.free_leaves.capacity() + self.free_inners.capacity()) * 4
    }

    fn new_leaf(&mut self) -> u32 {
        match self.free_leaves.pop() {
            Some(i) => i | LEAF,
            None => {
                self.leaves.push(Leaf::new());
                (self.leaves.len() - 1) as u32 | LEAF
            }
        }
    }

    fn new_inner(&mut self) -> u32 {
        match self.free_inners.pop() {
            Some(i) => i,
            None => {
                self.inners.push(Inner::new());
                (self.inners.len() - 1) as u32
            }
        }
    }

    fn free(&mut self, t: u32) {
        if t & LEAF != 0 {
            self.leaves[(t & !LEAF) as usize].len = 0;
            self.free_leaves.push(t & !LEAF);
        } else {
            self.inners[t as usize].len = 0;
            self.free_inners.push(t);
        }
    }

    fn leaf(&self, t: u32) -> &Leaf {
        &self.leaves[(t & !LEAF) as usize]
    }

    fn leaf_mut(&mut self, t: u32) -> &mut Leaf {
        &mut self.leaves[(t & !LEAF) as usize]
    }

    fn size(&self, t: u32) -> usize {
        if t & LEAF != 0 {
            self.leaf(t).len
        } else {
            self.inners[t as usize].total()
        }
    }

    /// Adds an element that is not there yet.
    pub(crate) fn insert(&mut self, score: f64, member: CompactBytes) {
        if self.root == NIL {
            self.root = self.new_leaf();
        }
        self.len += 1;
        let root = self.root;
        if let Some(s) = self.insert_at(root, score, member) {
            let r = self.new_inner();
            let (left, right) = (self.size(root), self.size(s.node));
            let n = &mut self.inners[r as usize];
            n.len = 2;
            n.children[0] = root;
            n.children[1] = s.node;
            n.counts[0] = left as u32;
            n.counts[1] = right as u32;
            n.scores[0] = s.score;
            n.members[0] = s.member;
            self.root = r;
        }
    }

    fn insert_at(&mut self, t: u32, score: f64, member: CompactBytes) -> Option<Split> {
        if t & LEAF != 0 {
            return self.insert_leaf(t, score, member);
        }
        let c = {
            let n = &mut self.inners[t as usize];
            let seps = n.len - 1;
            let c = rank_in(&n.scores[..seps], &n.members[..seps], score, &member, true);
            n.counts[c] += 1;
            c
        };
        let child = self.inners[t as usize].children[c];
        let s = self.insert_at(child, score, member)?;
        let (left, right) = (self.size(child) as u32, self.size(s.node) as u32);
        let full = self.inners[t as usize].len == CAP;
        // A full node splits first: its upper half moves to a new sibling
        // and the separator between the halves goes up.
        let (node, at, up) = if full {
            let r = self.new_inner();
            let half = CAP / 2;
            let (lo, hi) = split_pair(&mut self.inners, t as usize, r as usize);
            let up_score = lo.scores[half - 1];
            let up_member = std::mem::take(&mut lo.members[half - 1]);
            for i in 0..half {
                hi.children[i] = lo.children[half + i];
                hi.counts[i] = lo.counts[half + i];
            }
            for i in 0..half - 1 {
                hi.scores[i] = lo.scores[half + i];
                hi.members[i] = std::mem::take(&mut lo.members[half + i]);
            }
            lo.len = half;
            hi.len = half;
            let up = Some(Split {
                score: up_score,
                member: up_member,
                node: r,
            });
            if c < half {
                (t, c, up)
            } else {
                (r, c - half, up)
            }
        } else {
            (t, c, None)
        };
        let n = &mut self.inners[node as usize];
        // Child `at` keeps its place; the new sibling follows it.
        for i in (at + 1..n.len).rev() {
            n.children[i + 1] = n.children[i];
            n.counts[i + 1] = n.counts[i];
        }
        for i in (at..n.len - 1).rev() {
            n.scores[i + 1] = n.scores[i];
            n.members.swap(i + 1, i);
        }
        n.children[at + 1] = s.node;
        n.counts[at] = left;
        n.counts[at + 1] = right;
        n.scores[at] = s.score;
        n.members[at] = s.member;
        n.len += 1;
        up
    }

    fn insert_leaf(&mut self, t: u32, score: f64, member: CompactBytes) -> Option<Split> {
        let pos = {
            let l = self.leaf(t);
            rank_in(
                &l.scores[..l.len],
                &l.members[..l.len],
                score,
                &member,
                false,
            )
        };
        if self.leaf(t).len < CAP {
            put(self.leaf_mut(t), pos, score, member);
            return None;
        }
        let r = self.new_leaf();
        // Halves, except for an element past either end: then the full
        // leaf stays whole and the new one starts alone, so ascending (or
        // descending) inserts, such as timestamps, leave full leaves
        // behind instead of half-empty ones.
        let cut = match pos {
            0 => 0,
            CAP => CAP,
            _ => CAP / 2,
        };
        let (lo, hi) = split_pair(&mut self.leaves, (t & !LEAF) as usize, (r & !LEAF) as usize);
        for i in 0..CAP - cut {
            hi.scores[i] = lo.scores[cut + i];
            hi.members[i] = std::mem::take(&mut lo.members[cut + i]);
        }
        lo.len = cut;
        hi.len = CAP - cut;
        if pos < cut || (pos == cut && cut < CAP) {
            put(lo, pos, score, member);
        } else {
            put(hi, pos - cut, score, member);
        }
        Some(Split {
            score: hi.scores[0],
            member: hi.members[0].clone(),
            node: r,
        })
    }

    /// Removes the element (score, member); true if it was there.
    pub(crate) fn remove_elem(&mut self, score: f64, member: &[u8]) -> bool {
        if self.root == NIL {
            return false;
        }
        match self.detach(self.root, score, member, None) {
            Detached::Out(_) => {
                self.len -= 1;
                self.settle_root();
                true
            }
            _ => false,
        }
    }

    /// Moves the element (old, member) to score `new`: in place when it
    /// stays inside its leaf, else out and in again with one descent
    /// each; false if it is not there.
    pub(crate) fn rescore(&mut self, old: f64, member: &[u8], new: f64) -> bool {
        if self.root == NIL {
            return false;
        }
        match self.detach(self.root, old, member, Some(new)) {
            Detached::Missing => false,
            Detached::InPlace => true,
            Detached::Out(m) => {
                self.len -= 1;
                self.settle_root();
                self.insert(new, m);
                true
            }
        }
    }

    /// After removals: an emptied root goes; an inner root left with one
    /// child hands the root to it.
    fn settle_root(&mut self) {
        loop {
            let t = self.root;
            if t & LEAF != 0 {
                if self.leaf(t).len == 0 {
                    self.free(t);
                    self.root = NIL;
                }
                return;
            }
            match self.inners[t as usize].len {
                0 => self.root = NIL,
                1 => self.root = self.inners[t as usize].children[0],
                _ => return,
            }
            self.free(t);
        }
    }

    /// Counts `removed` elements gone from child `c` of inner node `t`,
    /// unlinking the child when that empties it, with the separator on
    /// one side of it (every remaining bound stays valid).
    fn removed_from(&mut self, t: u32, c: usize, removed: usize) {
        let n = &mut self.inners[t as usize];
        n.counts[c] -= removed as u32;
        if n.counts[c] != 0 {
            return;
        }
        let child = n.children[c];
        let sep = c.saturating_sub(1);
        for i in c..n.len - 1 {
            n.children[i] = n.children[i + 1];
            n.counts[i] = n.counts[i + 1];
        }
        if n.len > 1 {
            for i in sep..n.len - 2 {
                n.scores[i] = n.scores[i + 1];
                n.members.swap(i, i + 1);
            }
            n.members[n.len - 2] = CompactBytes::default();
        }
        n.len -= 1;
        self.free(child);
    }

    /// Finds the element (score, member) under `t` and takes it out,
    /// or with `rescore` gives it that score in place when it stays
    /// strictly between its neighbours in its leaf (then no count or
    /// bound changes).
    fn detach(&mut self, t: u32, score: f64, member: &[u8], rescore: Option<f64>) -> Detached {
        if t & LEAF != 0 {
            let l = self.leaf_mut(t);
            let pos = rank_in(
                &l.scores[..l.len],
                &l.members[..l.len],
                score,
                member,
                false,
            );
            if pos == l.len || l.scores[pos] != score || l.members[pos].as_slice() != member {
                return Detached::Missing;
            }
            if let Some(new) = rescore {
                let inside = pos > 0
                    && pos + 1 < l.len
                    && cmp_elem(l.scores[pos - 1], &l.members[pos - 1], new, member)
                        == Ordering::Less
                    && cmp_elem(new, member, l.scores[pos + 1], &l.members[pos + 1])
                        == Ordering::Less;
                if inside {
                    l.scores[pos] = new;
                    return Detached::InPlace;
                }
            }
            let m = std::mem::take(&mut l.members[pos]);
            for i in pos..l.len - 1 {
                l.scores[i] = l.scores[i + 1];
                l.members.swap(i, i + 1);
            }
            l.len -= 1;
            return Detached::Out(m);
        }
        let (c, child) = {
            let n = &self.inners[t as usize];
            let seps = n.len - 1;
            let c = rank_in(&n.scores[..seps], &n.members[..seps], score, member, true);
            (c, n.children[c])
        };
        let d = self.detach(child, score, member, rescore);
        if let Detached::Out(_) = d {
            self.removed_from(t, c, 1);
        }
        d
    }

    /// How many leading elements satisfy `pred` (true on a prefix of the
    /// order, also between elements: separators are tested with it).
    pub(crate) fn prefix_len(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut t = self.root;
        let mut acc = 0;
        while t != NIL {
            if t & LEAF != 0 {
                let l = self.leaf(t);
                acc += (0..l.len)
                    .take_while(|&i| pred(l.scores[i], &l.members[i]))
                    .count();
                break;
            }
            let n = &self.inners[t as usize];
            let j = (0..n.len - 1)
                .take_while(|&i| pred(n.scores[i], &n.members[i]))
                .count();
            acc += n.counts[..j].iter().map(|&c| c as usize).sum::<usize>();
            t = n.children[j];
        }
        acc
    }

    /// The element at rank `k`.
    pub(crate) fn select(&self, mut k: usize) -> Option<(f64, &CompactBytes)> {
        if k >= self.len {
            return None;
        }
        let mut t = self.root;
        while t & LEAF == 0 {
            let n = &self.inners[t as usize];
            let mut c = 0;
            while c + 1 < n.len && k >= n.counts[c] as usize {
                k -= n.counts[c] as usize;
                c += 1;
            }
            t = n.children[c];
        }
        let l = self.leaf(t);
        (k < l.len).then(|| (l.scores[k], &l.members[k]))
    }

    /// Detaches the elements of ranks `lo..hi` and hands each to `f`, in
    /// order: a leaf's worth per descent.
    pub(crate) fn remove_range(
        &mut self,
        lo: usize,
        hi: usize,
        mut f: impl FnMut(CompactBytes, f64),
    ) {
        let mut left = hi.min(self.len).saturating_sub(lo);
        while left > 0 {
            let n = self.remove_ranks(self.root, lo, left, &mut f);
            if n == 0 {
                break;
            }
            self.len -= n;
            left -= n;
            self.settle_root();
        }
    }

    /// Removes up to `max` elements from rank `k` of the subtree `t`,
    /// within the one leaf that holds rank `k`; returns how many.
    fn remove_ranks(
        &mut self,
        t: u32,
        k: usize,
        max: usize,
        f: &mut impl FnMut(CompactBytes, f64),
    ) -> usize {
        if t & LEAF != 0 {
            let l = self.leaf_mut(t);
            let end = k.saturating_add(max).min(l.len);
            let n = end.saturating_sub(k);
            for i in k..end {
                f(std::mem::take(&mut l.members[i]), l.scores[i]);
            }
            for i in end..l.len {
                l.scores[i - n] = l.scores[i];
                l.members.swap(i - n, i);
            }
            l.len -= n;
            return n;
        }
        let (c, child, k) = {
            let x = &self.inners[t as usize];
            let (mut c, mut k) = (0, k);
            while c + 1 < x.len && k >= x.counts[c] as usize {
                k -= x.counts[c] as usize;
                c += 1;
            }
            (c, x.children[c], k)
        };
        let n = self.remove_ranks(child, k, max, f);
        if n > 0 {
            self.removed_from(t, c, n);
        }
        n
    }

    /// Visits ranks `lo..hi` in order (or reverse order).
    pub(crate) fn visit(&self, lo: usize, hi: usize, rev: bool, f: &mut dyn FnMut(&[u8], f64)) {
        if self.root != NIL {
            self.visit_node(self.root, 0, lo, hi.min(self.len), rev, f);
        }
    }

    fn visit_node(
        &self,
        t: u32,
        base: usize,
        lo: usize,
        hi: usize,
        rev: bool,
        f: &mut dyn FnMut(&[u8], f64),
    ) {
        if t & LEAF != 0 {
            let l = self.leaf(t);
            let from = lo.saturating_sub(base).min(l.len);
            let to = hi.saturating_sub(base).min(l.len);
            let mut each = |i: usize| f(&l.members[i], l.scores[i]);
            if rev {
                (from..to).rev().for_each(&mut each);
            } else {
                (from..to).for_each(&mut each);
            }
            return;
        }
        let n = &self.inners[t as usize];
        let mut starts = [0usize; CAP];
        let mut at = base;
        for (c, s) in starts.iter_mut().enumerate().take(n.len) {
            *s = at;
            at += n.counts[c] as usize;
        }
        let mut each = |c: usize| {
            let (start, end) = (starts[c], starts[c] + n.counts[c] as usize);
            if start < hi && end > lo {
                self.visit_node(n.children[c], start, lo, hi, rev, f);
            }
        };
        if rev {
            (0..n.len).rev().for_each(&mut each);
        } else {
            (0..n.len).for_each(&mut each);
        }
    }
}

/// Inserts (score, member) at `pos` of a leaf with room.
fn put(l: &mut Leaf, pos: usize, score: f64, member: CompactBytes) {
    for i in (pos..l.len).rev() {
        l.scores[i + 1] = l.scores[i];
        l.members.swap(i + 1, i);
    }
    l.scores[pos] = score;
    l.members[pos] = member;
    l.len += 1;
}

/// Two distinct nodes of one arena, both mutable.
fn split_pair<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    debug_assert_ne!(a, b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks every invariant of the module comment against `want`.
    fn check(t: &Tree, want: &[(f64, Vec<u8>)]) {
        assert_eq!(t.len, want.len());
        let mut got = Vec::new();
        t.visit(0, usize::MAX, false, &mut |m, s| got.push((s, m.to_vec())));
        assert_eq!(got, want);
        if t.root != NIL {
            assert_eq!(t.size(t.root), want.len());
            check_node(t, t.root, None, None);
            if t.root & LEAF == 0 {
                assert!(t.inners[t.root as usize].len >= 2);
            }
        }
        for (k, (s, m)) in want.iter().enumerate() {
            let (gs, gm) = t.select(k).unwrap();
            assert_eq!((gs, gm.as_slice()), (*s, &m[..]));
            let below = t.prefix_len(|ps, pm| cmp_elem(ps, pm, *s, m) == Ordering::Less);
            assert_eq!(below, k);
        }
        assert!(t.select(want.len()).is_none());
    }

    type Bound<'a> = Option<(f64, &'a [u8])>;

    fn check_node(t: &Tree, n: u32, lo: Bound<'_>, hi: Bound<'_>) {
        let within = |s: f64, m: &[u8]| {
            lo.is_none_or(|(ls, lm)| cmp_elem(s, m, ls, lm) != Ordering::Less)
                && hi.is_none_or(|(hs, hm)| cmp_elem(s, m, hs, hm) == Ordering::Less)
        };
        if n & LEAF != 0 {
            let l = t.leaf(n);
            assert!(l.len > 0);
            for i in 0..l.len {
                assert!(within(l.scores[i], &l.members[i]));
            }
            return;
        }
        let x = &t.inners[n as usize];
        assert!(x.len > 0);
        for c in 0..x.len {
            assert_eq!(x.counts[c] as usize, t.size(x.children[c]));
            let clo = if c == 0 {
                lo
            } else {
                Some((x.scores[c - 1], &x.members[c - 1][..]))
            };
            let chi = if c + 1 == x.len {
                hi
            } else {
                Some((x.scores[c], &x.members[c][..]))
            };
            check_node(t, x.children[c], clo, chi);
        }
    }

    proptest! {
        #[test]
        fn matches_a_sorted_model(ops in proptest::collection::vec((any::<bool>(), 0u16..3000, 0u8..8), 1..2500)) {
            let mut t = Tree::new();
            let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
            for (i, (add, m, s)) in ops.into_iter().enumerate() {
                let member = format!("m{}", m % 700).into_bytes();
                let score = f64::from(s % 4) - if s > 5 { 0.0 } else { 1.5 };
                match (add, model.get(&member).copied()) {
                    (true, Some(old)) if i % 3 == 0 => {
                        prop_assert!(t.remove_elem(old, &member));
                        t.insert(score, CompactBytes::new(&member));
                        model.insert(member, score);
                    }
                    (true, Some(old)) => {
                        prop_assert!(t.rescore(old, &member, score));
                        model.insert(member, score);
                    }
                    (true, None) => {
                        t.insert(score, CompactBytes::new(&member));
                        model.insert(member, score);
                    }
                    (false, Some(old)) => {
                        prop_assert!(!t.remove_elem(old + 0.25, &member));
                        prop_assert!(t.remove_elem(old, &member));
                        model.remove(&member);
                    }
                    (false, None) => prop_assert!(!t.remove_elem(score, &member)),
                }
                if i % 97 == 0 {
                    let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
                    want.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
                    check(&t, &want);
                }
            }
            let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
            want.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
            check(&t, &want);
            let mut rev = Vec::new();
            t.visit(3, want.len().saturating_sub(2), true, &mut |m, s| rev.push((s, m.to_vec())));
            let mut exp: Vec<_> = want.iter().take(want.len().saturating_sub(2)).skip(3).cloned().collect();
            exp.reverse();
            prop_assert_eq!(rev, exp);
            let (lo, hi) = (want.len() / 3, want.len() / 2);
            let mut gone = Vec::new();
            t.remove_range(lo, hi, |m, s| gone.push((s, m.to_vec())));
            prop_assert_eq!(&gone[..], &want[lo..hi]);
            let rest: Vec<_> = want[..lo].iter().chain(want[hi..].iter()).cloned().collect();
            check(&t, &rest);
        }
    }

    #[test]
    fn ascending_and_descending_inserts_fill_their_leaves() {
        for desc in [false, true] {
            let mut t = Tree::new();
            let mut want = Vec::new();
            for i in 0..3200u32 {
                let s = f64::from(if desc { 3200 - i } else { i });
                t.insert(s, CompactBytes::new(b"m"));
                want.push((s, b"m".to_vec()));
            }
            want.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
            check(&t, &want);
            assert!(t.leaves.len() <= 101, "{} leaves", t.leaves.len());
        }
    }

    #[test]
    fn rescoring_moves_elements_in_place_or_across_leaves() {
        let mut t = Tree::new();
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for i in 0..3000u32 {
            let m = format!("m{i}").into_bytes();
            t.insert(f64::from(i), CompactBytes::new(&m));
            model.insert(m, f64::from(i));
        }
        for (n, i) in (0..3000u32).map(|i| i * 17 % 3000).enumerate() {
            let m = format!("m{i}").into_bytes();
            let old = model[&m];
            // Small steps stay inside the leaf; every fifth jumps far.
            let new = if n % 5 == 0 {
                old * 7.0 % 3001.0
            } else {
                old + 0.25
            };
            assert!(t.rescore(old, &m, new));
            model.insert(m, new);
        }
        assert!(!t.rescore(-1.0, b"m1", 5.0));
        let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(m, s)| (*s, m.clone())).collect();
        want.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
        check(&t, &want);
    }

    #[test]
    fn drains_to_empty_and_grows_again() {
        let mut t = Tree::new();
        let elem = |i: u32| (f64::from(i % 300), format!("{i}").into_bytes());
        let sorted = |ids: &mut dyn Iterator<Item = u32>| {
            let mut v: Vec<(f64, Vec<u8>)> = ids.map(elem).collect();
            v.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
            v
        };
        for i in 0..5000u32 {
            let (s, m) = elem(i);
            t.insert(s, CompactBytes::new(&m));
        }
        check(&t, &sorted(&mut (0..5000)));
        // Every other element, in a scattered order, leaves sparse nodes.
        for i in (0..5000u32).map(|i| i * 7 % 5000).filter(|i| i % 2 == 0) {
            let (s, m) = elem(i);
            assert!(t.remove_elem(s, &m));
        }
        let odd = sorted(&mut (0..5000).filter(|i| i % 2 == 1));
        check(&t, &odd);
        // A range across many leaves goes, in order, a leaf at a time.
        let mut gone = Vec::new();
        let mut copy = t.clone();
        copy.remove_range(100, 2100, |m, s| gone.push((s, m.to_vec())));
        assert_eq!(&gone[..], &odd[100..2100]);
        let rest: Vec<_> = odd[..100].iter().chain(&odd[2100..]).cloned().collect();
        check(&copy, &rest);
        copy.remove_range(0, usize::MAX, |_, _| {});
        check(&copy, &[]);
        assert_eq!(copy.root, NIL);
        for i in (0..5000u32).filter(|i| i % 2 == 1).rev() {
            let (s, m) = elem(i);
            assert!(t.remove_elem(s, &m));
        }
        assert_eq!(t.len, 0);
        assert_eq!(t.root, NIL);
        t.insert(1.0, CompactBytes::new(b"a"));
        check(&t, &[(1.0, b"a".to_vec())]);
    }
}
