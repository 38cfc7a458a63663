//! The sorted-set value type.
//!
//! Two representations, as Redis 7.0 reports them through OBJECT ENCODING:
//! - `listpack`: every (member, score) pair in one exactly-sized byte
//!   buffer (`zpack.rs`, members front-coded), used while the set is small (at most
//!   `max_entries` elements, members at most `max_value` bytes). Every
//!   operation is a linear walk over a few dozen pairs.
//! - `skiplist`: a B+tree with subtree counts (`ztree.rs`: rank and select
//!   are O(log n)) plus a member → score hash table (our keyspace table,
//!   which also gives ZSCAN its reverse-binary cursor).
//!
//! Invariants:
//! - Elements are ordered by score, then by member bytes; scores are never
//!   NaN. `-0` and `0` compare equal (ties broken by member).
//! - In the skiplist form the tree and the table hold exactly the same
//!   (member, score) pairs.
//! - The packed form is only left for the tree form on insertion; store
//!   commands build their result with `shrink_if_fits`, as Redis converts
//!   a finished result back when it fits.

use crate::table::{Keyed, Table};
use crate::zpack::ZPack;
use crate::ztree::Tree;
use crate::CompactBytes;
use std::cmp::Ordering;

pub use crate::zpack::Elem;

/// The conversion thresholds (`zset-max-listpack-entries`/`-value`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// The element order: score, then member bytes.
pub fn cmp_elem(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

struct Slot {
    member: CompactBytes,
    score: f64,
}

impl Keyed for Slot {
    fn key(&self) -> &[u8] {
        &self.member
    }
}

/// The large encoding: the tree for order, the table for lookups.
struct Big {
    dict: Table<Slot>,
    tree: Tree,
}

impl Clone for Big {
    fn clone(&self) -> Self {
        let mut dict = Table::new();
        for s in self.dict.iter() {
            dict.insert(Slot {
                member: s.member.clone(),
                score: s.score,
            });
        }
        Big {
            dict,
            tree: self.tree.clone(),
        }
    }
}

#[derive(Clone)]
enum Repr {
    Pack(ZPack),
    Big(Box<Big>),
}

/// A sorted set.
#[derive(Clone)]
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.to_vec() == other.to_vec()
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZSet")
            .field("encoding", &self.encoding())
            .field("elements", &self.to_vec())
            .finish()
    }
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet {
            repr: Repr::Pack(ZPack::default()),
        }
    }

    /// An empty set in the encoding Redis picks for `size_hint` elements
    /// whose longest member is `max_len` bytes.
    pub fn with_hint(size_hint: usize, max_len: usize, limits: Limits) -> ZSet {
        if size_hint <= limits.max_entries && max_len <= limits.max_value {
            ZSet::new()
        } else {
            ZSet::new_big()
        }
    }

    fn new_big() -> ZSet {
        ZSet {
            repr: Repr::Big(Box::new(Big {
                dict: Table::new(),
                tree: Tree::new(),
            })),
        }
    }

    /// Warms the cache for a lookup of `member` in the member table: at
    /// `depth` 0 its bucket slot, at 1 its chain's first node
    /// (`Table::prefetch_key`); nothing to do for a listpack.
    /// Warms `member`'s place in the member table; false when there is no
    /// table to warm (a listpack).
    pub fn prefetch(&self, member: &[u8], depth: u8) -> bool {
        let Repr::Big(b) = &self.repr else {
            return false;
        };
        b.dict.prefetch_key(member, depth > 0);
        true
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len(),
            Repr::Big(b) => b.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Big(_) => "skiplist",
        }
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.heap_size(),
            Repr::Big(b) => {
                std::mem::size_of::<Big>()
                    + b.dict.bucket_count() * 8
                    + b.dict.len() * (std::mem::size_of::<Slot>() + 8)
                    + b.tree.heap_bytes()
                    + 2 * b.dict.iter().map(|s| s.member.heap_size()).sum::<usize>()
            }
        }
    }

    /// Every element in order (tests, debugging, equality).
    pub fn to_vec(&self) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::with_capacity(self.len());
        self.range(0, self.len(), false, |m, s| out.push((m.to_vec(), s)));
        out
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(p) => p.score(member),
            Repr::Big(b) => b.dict.get(member).map(|s| s.score),
        }
    }

    fn make_big(&mut self) {
        let Repr::Pack(p) = &self.repr else {
            return;
        };
        let mut dict = Table::new();
        let mut tree = Tree::new();
        p.for_each(|m, s| {
            dict.insert(Slot {
                member: CompactBytes::new(m),
                score: s,
            });
            tree.insert(s, CompactBytes::new(m));
        });
        self.repr = Repr::Big(Box::new(Big { dict, tree }));
    }

    /// Converts back to the packed form when the whole set fits the limits.
    pub fn shrink_if_fits(&mut self, limits: Limits) {
        if let Repr::Big(_) = self.repr {
            if self.len() <= limits.max_entries && self.max_member_len() <= limits.max_value {
                self.repr = Repr::Pack(ZPack::from_sorted(self.to_vec().into_iter()));
            }
        }
    }

    fn max_member_len(&self) -> usize {
        let mut n = 0;
        self.range(0, self.len(), false, |m, _| n = n.max(m.len()));
        n
    }

    /// Adds `member` or changes its score. Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> Option<f64> {
        if let Repr::Big(b) = &mut self.repr {
            // A new score for a present member: its table slot is updated
            // in place and only the tree moves it (one table probe, no
            // slot freed and allocated again).
            if let Some(slot) = b.dict.get_mut(member) {
                let old = slot.score;
                if old != score {
                    slot.score = score;
                    b.tree.rescore(old, member, score);
                }
                return Some(old);
            }
        } else if let Some(old) = self.score(member) {
            if old != score {
                self.remove(member);
                self.insert_new(member, score, None);
            }
            return Some(old);
        }
        self.insert_new(member, score, Some(limits));
        None
    }

    fn insert_new(&mut self, member: &[u8], score: f64, limits: Option<Limits>) {
        if let (Repr::Pack(p), Some(l)) = (&self.repr, limits) {
            if p.len() + 1 > l.max_entries || member.len() > l.max_value {
                self.make_big();
            }
        }
        match &mut self.repr {
            Repr::Pack(p) => p.insert(member, score),
            Repr::Big(b) => {
                // Callers have checked that `member` is absent.
                b.dict.insert_new(Slot {
                    member: CompactBytes::new(member),
                    score,
                });
                b.tree.insert(score, CompactBytes::new(member));
            }
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(p) => p.remove(member),
            Repr::Big(b) => {
                let slot = b.dict.remove(member)?;
                b.tree.remove_elem(slot.score, member);
                Some(slot.score)
            }
        }
    }

    /// The 0-based ascending rank of `member`, with its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        let k = self.prefix_len(|s, m| cmp_elem(s, m, score, member) == Ordering::Less);
        Some((k, score))
    }

    /// How many leading elements satisfy `pred`, which must hold on a
    /// prefix of the order (e.g. "score < x").
    pub fn prefix_len(&self, pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.prefix_len(pred),
            Repr::Big(b) => b.tree.prefix_len(pred),
        }
    }

    /// The element at ascending rank `k`; the member derefs to its bytes.
    pub fn get(&self, k: usize) -> Option<(Elem<'_>, f64)> {
        match &self.repr {
            Repr::Pack(p) => p.get(k).map(|(m, s)| (Elem::Owned(m), s)),
            Repr::Big(b) => b.tree.select(k).map(|(s, m)| (Elem::Bytes(&m[..]), s)),
        }
    }

    /// Visits the elements of ascending ranks `lo..hi`, from `hi - 1` down
    /// when `rev`.
    pub fn range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let hi = hi.min(self.len());
        if lo >= hi {
            return;
        }
        match &self.repr {
            Repr::Pack(p) => p.range(lo, hi, rev, &mut f),
            Repr::Big(b) => b.tree.visit(lo, hi, rev, &mut f),
        }
    }

    /// Removes the elements of ascending ranks `lo..hi`, handing each to
    /// `f` in no particular order; returns how many went.
    pub fn remove_range(&mut self, lo: usize, hi: usize, mut f: impl FnMut(&[u8], f64)) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match &mut self.repr {
            Repr::Pack(p) => p.remove_range(lo, hi, &mut f),
            Repr::Big(b) => {
                let Big { dict, tree } = &mut **b;
                tree.remove_range(lo, hi, |m, s| {
                    dict.remove(&m);
                    f(&m, s);
                });
            }
        }
        hi - lo
    }

    /// One step of ZSCAN from `cursor`: a packed set is returned whole
    /// (next cursor 0); a large one walks its table's buckets until about
    /// `count` elements were seen. Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                p.for_each(f);
                0
            }
            Repr::Big(b) => {
                let mut cursor = cursor;
                let mut seen = 0;
                let mut budget = count.saturating_mul(10);
                loop {
                    cursor = b.dict.scan_bucket(cursor, |s| {
                        seen += 1;
                        f(&s.member, s.score);
                    });
                    budget = budget.saturating_sub(1);
                    if cursor == 0 || seen >= count || budget == 0 {
                        break;
                    }
                }
                cursor
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, u8),
        Rem(u8),
        RemRange(u8, u8),
        /// Converts back to the packed form where it fits (what store
        /// commands do with their result).
        Shrink,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<u8>(), any::<u8>()).prop_map(|(m, s)| Op::Add(m % 64, s)),
            4 => any::<u8>().prop_map(|m| Op::Rem(m % 64)),
            2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::RemRange(a % 40, b % 8)),
            1 => Just(Op::Shrink),
        ]
    }

    /// Scores that exercise every packed score form, ties included.
    fn score(s: u8) -> f64 {
        const ODD: [f64; 12] = [
            0.5,
            -1.25,
            1.1,
            2047.0,
            2048.0,
            -4096.0,
            1e10,
            -3e15,
            9.2e18,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
        ];
        match s % 4 {
            0 => f64::from(s % 8),
            1 => f64::from(s) * 10.0 - 1200.0,
            _ => ODD[usize::from(s) % ODD.len()],
        }
    }

    fn member(m: u8) -> Vec<u8> {
        match m % 8 {
            // Long members force the skiplist encoding by value length.
            0 if m % 3 == 0 => vec![b'x'; 70],
            // Integer-looking members are packed as integers.
            1 => (i64::from(m) - 30).to_string().into_bytes(),
            2 => (i64::from(m) * 1_000_000_007).to_string().into_bytes(),
            // Not canonical integers: stay strings.
            3 => format!("0{m}").into_bytes(),
            4 => format!("member:with:a:longer:name:{m}").into_bytes(),
            _ => format!("m{m}").into_bytes(),
        }
    }

    fn sorted(model: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
        v
    }

    proptest! {
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(), 1..300), max_entries in 0usize..20) {
            let limits = Limits { max_entries, max_value: 64 };
            let mut z = ZSet::new();
            let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Add(m, s) => {
                        let m = member(m);
                        let s = score(s);
                        let old = z.insert(&m, s, limits);
                        // -0 and 0 compare equal (the packed form stores 0).
                        prop_assert_eq!(old, model.insert(m, s));
                    }
                    Op::Shrink => {
                        let before = z.encoding();
                        z.shrink_if_fits(limits);
                        let fits = model.len() <= max_entries && model.keys().all(|m| m.len() <= 64);
                        prop_assert_eq!(z.encoding() == "listpack", before == "listpack" || fits);
                    }
                    Op::Rem(m) => {
                        let m = member(m);
                        prop_assert_eq!(z.remove(&m), model.remove(&m));
                    }
                    Op::RemRange(a, n) => {
                        let want = sorted(&model);
                        let lo = a as usize;
                        let hi = (lo + n as usize).min(want.len());
                        let mut gone = Vec::new();
                        z.remove_range(lo, hi, |m, _| gone.push(m.to_vec()));
                        for m in &gone {
                            model.remove(m);
                        }
                        if lo < hi {
                            prop_assert_eq!(gone.len(), hi - lo);
                        }
                    }
                }
                if z.encoding() == "listpack" {
                    prop_assert!(z.len() <= max_entries);
                }
                let want = sorted(&model);
                prop_assert_eq!(z.len(), want.len());
                prop_assert_eq!(z.to_vec(), want.clone());
                for (i, (m, s)) in want.iter().enumerate() {
                    prop_assert_eq!(z.rank(m), Some((i, *s)));
                    prop_assert_eq!(z.score(m), Some(*s));
                    let got = z.get(i).map(|(m, s)| (m.to_vec(), s));
                    prop_assert_eq!(got, Some((m.clone(), *s)));
                }
                prop_assert_eq!(z.get(want.len()).map(|(m, _)| m.to_vec()), None);
                let mut scanned = Vec::new();
                let mut cursor = 0;
                loop {
                    cursor = z.scan(cursor, 5, |m, s| scanned.push((m.to_vec(), s)));
                    if cursor == 0 {
                        break;
                    }
                }
                scanned.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
                prop_assert_eq!(&scanned, &want);
                let below = want.iter().filter(|(_, s)| *s < 0.0).count();
                prop_assert_eq!(z.prefix_len(|s, _| s < 0.0), below);
                let mut rev = Vec::new();
                z.range(1, want.len(), true, |m, s| rev.push((m.to_vec(), s)));
                let mut exp: Vec<_> = want.iter().skip(1).cloned().collect();
                exp.reverse();
                prop_assert_eq!(rev, exp);
            }
            let mut c = z.clone();
            c.shrink_if_fits(Limits { max_entries: 1000, max_value: 1000 });
            prop_assert_eq!(c.encoding(), "listpack");
            prop_assert_eq!(&c, &z);
        }
    }

    #[test]
    fn scan_visits_everything() {
        let limits = Limits {
            max_entries: 4,
            max_value: 64,
        };
        let mut z = ZSet::new();
        for i in 0..1000 {
            z.insert(format!("{i}").as_bytes(), i as f64, limits);
        }
        assert_eq!(z.encoding(), "skiplist");
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, 10, |m, _| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
