//! The stream value type: entries packed into nodes, plus consumer groups.
//!
//! Entries live in nodes kept in a `BTreeMap` keyed by the node's master ID
//! (the ID of the first entry ever added to it), as Redis keeps listpacks in
//! a radix tree. A node is one byte buffer: the master entry's field names,
//! then each entry as a flag byte, its ID as deltas from the master ID
//! (LEB128), and either just its values (when its field names equal the
//! master's, the common case) or its field/value pairs. Deleted entries stay
//! as tombstones (flag bit) until their whole node goes, so a node fills up,
//! and approximate trimming removes whole nodes, exactly as in Redis.
//!
//! Persistence (RDB, DUMP/RESTORE) is not done here: the encoder reads
//! the nodes through `node_views` (Redis's listpack layout can be rebuilt
//! byte for byte from them), the public counters and `groups`; a loader
//! rebuilds the nodes exactly as the file had them with `load_node` and
//! sets the same fields.
//!
//! Invariants:
//! - Entry IDs strictly increase through a node and across nodes; every ID
//!   is at most `last_id`.
//! - `length` counts the live entries; a node with no live entry is removed.
//! - A node holds at most `Limits::max_entries` entries (tombstones included)
//!   when that limit is not 0, and a new node is started before one would
//!   pass `Limits::max_bytes`.
//! - Every pending entry of a group is in exactly one of its consumers'
//!   PELs, the one its `Nack::consumer` names, and vice versa.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A stream entry ID: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The smallest ID above this one.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The largest ID below this one.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Node size limits (`stream-node-max-entries`, `stream-node-max-bytes`);
/// 0 means unlimited.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 number at `*pos` (node bytes are only ever written by
/// `put_varint`; a truncated buffer reads as 0 rather than panicking).
fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn get_bytes<'a>(data: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(data, pos) as usize;
    let start = (*pos).min(data.len());
    let end = start.saturating_add(len).min(data.len());
    *pos = end;
    &data[start..end]
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The largest listpack Redis builds for a stream node.
const LP_MAX: usize = 1 << 30;

/// Sizes in Redis's listpack encoding, for splitting nodes where Redis does.
mod lp {
    use super::StreamId;

    fn backlen(l: usize) -> usize {
        match l {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2_097_150 => 3,
            2_097_151..=268_435_454 => 4,
            _ => 5,
        }
    }

    /// An integer element, with its back-length.
    pub fn int(v: i64) -> usize {
        let enc = match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8_388_608..=8_388_607 => 4,
            -2_147_483_648..=2_147_483_647 => 5,
            _ => 9,
        };
        enc + backlen(enc)
    }

    /// A string element (stored as an integer when it is one in canonical
    /// form, as listpacks do).
    pub fn string(s: &[u8]) -> usize {
        if let Some(v) = canonical_int(s) {
            return int(v);
        }
        let enc = match s.len() {
            0..=63 => 1 + s.len(),
            64..=4095 => 2 + s.len(),
            _ => 5 + s.len(),
        };
        enc + backlen(enc)
    }

    fn canonical_int(s: &[u8]) -> Option<i64> {
        if s.is_empty() || s.len() > 20 {
            return None;
        }
        let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
        (v.to_string().as_bytes() == s).then_some(v)
    }

    /// One entry: flags, ID deltas, [field count], [fields], values and
    /// the element count.
    pub fn entry(master: StreamId, id: StreamId, fields: &[&[u8]], same: bool) -> usize {
        let n = fields.len() / 2;
        let mut size = int(2)
            + int(id.ms.wrapping_sub(master.ms) as i64)
            + int(id.seq.wrapping_sub(master.seq) as i64);
        let mut elements = n + 3;
        if same {
            size += fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| string(v))
                .sum::<usize>();
        } else {
            size += int(n as i64) + fields.iter().map(|f| string(f)).sum::<usize>();
            elements += n + 1;
        }
        size + int(elements as i64)
    }
}

/// One node: the master fields, then the packed entries.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    data: Vec<u8>,
    /// Entries, tombstones included.
    count: u32,
    live: u32,
    /// The ID of its last entry (live or not).
    last: StreamId,
    /// The bytes Redis's listpack for this node would take: nodes split on
    /// `stream-node-max-bytes` where Redis's do, so `~` trimming (whole
    /// nodes) and XINFO agree with Redis whatever the entry sizes.
    lp_bytes: usize,
}

/// Where one entry sits inside a node.
struct Slot {
    id: StreamId,
    flag_at: usize,
    flags: u8,
    body: usize,
}

impl Node {
    fn new(fields: &[&[u8]]) -> Node {
        let names: Vec<&[u8]> = fields.iter().step_by(2).copied().collect();
        Node::with_names(&names)
    }

    fn with_names(names: &[&[u8]]) -> Node {
        let mut data = Vec::new();
        put_varint(&mut data, names.len() as u64);
        for f in names {
            put_bytes(&mut data, f);
        }
        // Listpack header and end byte; valid and deleted counts; the
        // master fields and their terminator.
        let lp_bytes = 7
            + lp::int(1)
            + lp::int(0)
            + lp::int(names.len() as i64)
            + names.iter().map(|f| lp::string(f)).sum::<usize>()
            + lp::int(0);
        Node {
            data,
            count: 0,
            live: 0,
            last: StreamId::MIN,
            lp_bytes,
        }
    }

    fn master_fields(&self) -> (Vec<&[u8]>, usize) {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos) as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(get_bytes(&self.data, &mut pos));
        }
        (out, pos)
    }

    /// Whether `fields` (a flat pair list) has the master's field names,
    /// checked without decoding them into a vector (XADD's hot path).
    fn same_fields(&self, fields: &[&[u8]]) -> bool {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos) as usize;
        n * 2 == fields.len()
            && fields
                .iter()
                .step_by(2)
                .all(|f| get_bytes(&self.data, &mut pos) == *f)
    }

    fn push(&mut self, master: StreamId, id: StreamId, fields: &[&[u8]]) {
        let same = self.same_fields(fields);
        self.lp_bytes += lp::entry(master, id, fields, same);
        if self.count > 0 {
            self.lp_bytes =
                self.lp_bytes + lp::int(i64::from(self.live) + 1) - lp::int(i64::from(self.live));
        }
        let (dms, seq) = id_delta(master, id);
        self.data.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut self.data, dms);
        put_varint(&mut self.data, seq);
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                put_bytes(&mut self.data, v);
            }
        } else {
            put_varint(&mut self.data, (fields.len() / 2) as u64);
            for f in fields {
                put_bytes(&mut self.data, f);
            }
        }
        self.count += 1;
        self.live += 1;
        self.last = id;
    }

    /// Marks the entry whose flag byte is at `at` deleted (its live count
    /// down, its deleted count up, as the listpack's counters go).
    fn tombstone(&mut self, at: usize) {
        if let Some(f) = self.data.get_mut(at) {
            *f |= DELETED;
        }
        let (live, dead) = (i64::from(self.live), i64::from(self.count - self.live));
        self.lp_bytes =
            self.lp_bytes + lp::int(live - 1) + lp::int(dead + 1) - lp::int(live) - lp::int(dead);
        self.live -= 1;
    }

    /// Every entry's position, in ID order.
    fn slots(&self, master: StreamId) -> Vec<Slot> {
        let (names, mut pos) = self.master_fields();
        let mut out = Vec::with_capacity(self.count as usize);
        while pos < self.data.len() {
            let flag_at = pos;
            let flags = self.data[pos];
            pos += 1;
            let dms = get_varint(&self.data, &mut pos);
            let s = get_varint(&self.data, &mut pos);
            let id = if dms == 0 {
                StreamId::new(master.ms, master.seq.wrapping_add(s))
            } else {
                StreamId::new(master.ms.wrapping_add(dms), s)
            };
            let body = pos;
            let values = if flags & SAME_FIELDS != 0 {
                names.len()
            } else {
                get_varint(&self.data, &mut pos) as usize * 2
            };
            for _ in 0..values {
                get_bytes(&self.data, &mut pos);
            }
            out.push(Slot {
                id,
                flag_at,
                flags,
                body,
            });
        }
        out
    }

    /// The field/value list of the entry at `slot`.
    /// The field/value list of the entry at `slot`, borrowed from the
    /// node, into `out` (cleared first).
    fn fields_into<'a>(&'a self, slot: &Slot, out: &mut Vec<&'a [u8]>) {
        out.clear();
        let mut pos = slot.body;
        if slot.flags & SAME_FIELDS != 0 {
            let (names, _) = self.master_fields();
            for n in names {
                out.push(n);
                out.push(get_bytes(&self.data, &mut pos));
            }
        } else {
            let n = get_varint(&self.data, &mut pos) as usize * 2;
            for _ in 0..n {
                out.push(get_bytes(&self.data, &mut pos));
            }
        }
    }
}

/// An ID as (ms delta, seq) from the node's master ID: the sequence is a
/// delta too while the milliseconds are the same.
fn id_delta(master: StreamId, id: StreamId) -> (u64, u64) {
    // IDs only grow, so neither difference wraps; wrapping keeps a broken
    // invariant from panicking (decoding wraps back).
    let dms = id.ms.wrapping_sub(master.ms);
    if dms == 0 {
        (0, id.seq.wrapping_sub(master.seq))
    } else {
        (dms, id.seq)
    }
}

/// One node as Redis lays out its listpack (for the RDB encoder): the
/// master ID and field names, the live and deleted counts, and every
/// entry, tombstones included.
pub struct NodeView<'a> {
    pub master: StreamId,
    pub names: Vec<&'a [u8]>,
    pub live: u32,
    pub deleted: u32,
    pub entries: Vec<EntryView<'a>>,
}

/// One entry of a `NodeView`; `fields` is the flat field/value list, and
/// `same_fields` says its names are the master's (only values are stored).
pub struct EntryView<'a> {
    pub id: StreamId,
    pub deleted: bool,
    pub same_fields: bool,
    pub fields: Vec<&'a [u8]>,
}

/// An entry as a loader hands it to `Stream::load_node`.
pub struct LoadEntry<'a> {
    pub id: StreamId,
    pub deleted: bool,
    pub fields: Vec<&'a [u8]>,
}

/// An entry copied out of the stream: its ID and flat field/value list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<Vec<u8>>,
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A pending (delivered, not yet acknowledged) entry of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Last time it was seen (Unix ms).
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

/// `entries_read` when the group's read counter is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer `name`, created if missing (true when created); its
    /// seen time becomes `now` unless `now` is None.
    pub fn consumer(&mut self, name: &[u8], now: Option<u64>) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self
            .consumers
            .entry(name.to_vec())
            .or_insert_with(|| Consumer {
                seen_time: now.unwrap_or(0),
                pel: BTreeSet::new(),
            });
        if let Some(t) = now {
            c.seen_time = t;
        }
        (c, created)
    }

    /// Records `id` as delivered to `consumer` (which must exist): a new
    /// pending entry, or one taken over from whoever had it.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        if let Some(old) = self.pel.get(&id).map(|n| n.consumer.clone()) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        self.pel.insert(
            id,
            Nack {
                delivery_time: now,
                delivery_count: 1,
                consumer: consumer.to_vec(),
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Moves pending `id` to `consumer` (which must exist).
    pub fn reassign(&mut self, id: StreamId, consumer: &[u8]) {
        let Some(n) = self.pel.get_mut(&id) else {
            return;
        };
        if n.consumer != consumer {
            let old = std::mem::replace(&mut n.consumer, consumer.to_vec());
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// XACK of one ID: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Deletes a consumer; returns how many pending entries it had (they
    /// are dropped from the group's PEL too).
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

/// A stream: entries, bookkeeping counters and consumer groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Vec<u8>, Group>,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// How many nodes hold the entries (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The ID `*` gives at time `now_ms`: now, or one past the last ID if
    /// the clock is behind it. None when the last ID is the maximum.
    pub fn auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// The ID `ms-*` gives: the next sequence within `ms`, or `ms-0`.
    /// None when that would not be above the last ID.
    pub fn seq_id(&self, ms: u64) -> Option<StreamId> {
        if ms == self.last_id.ms {
            self.last_id
                .seq
                .checked_add(1)
                .map(|s| StreamId::new(ms, s))
        } else if ms > self.last_id.ms {
            Some(StreamId::new(ms, 0))
        } else {
            None
        }
    }

    /// Appends an entry (`fields` is a flat field/value list of even
    /// length); `id` must be above `last_id`.
    pub fn append(&mut self, id: StreamId, fields: &[&[u8]], limits: Limits) {
        debug_assert!(
            id > self.last_id
                || (self.last_id.is_zero() && self.entries_added == 0 && !id.is_zero())
        );
        let fits = match self.nodes.iter_mut().next_back() {
            Some((&master, node)) => {
                let full_entries =
                    limits.max_entries != 0 && node.count as usize >= limits.max_entries;
                // Redis's test: the listpack's bytes plus the raw field and
                // value bytes reaching the limit (0: 1 GB).
                let max_bytes = match limits.max_bytes {
                    0 => LP_MAX,
                    n => n.min(LP_MAX),
                };
                let raw: usize = fields.iter().map(|f| f.len()).sum();
                let full_bytes = node.lp_bytes + raw >= max_bytes;
                if !full_entries && !full_bytes {
                    node.push(master, id, fields);
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if !fits {
            // The tail node is full: give back its spare capacity.
            if let Some((_, tail)) = self.nodes.iter_mut().next_back() {
                tail.data.shrink_to_fit();
            }
            let mut node = Node::new(fields);
            node.push(id, id, fields);
            self.nodes.insert(id, node);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// Every node, oldest first, as Redis's listpacks hold them.
    pub fn node_views(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes.iter().map(|(&master, node)| {
            let (names, _) = node.master_fields();
            let entries = node
                .slots(master)
                .iter()
                .map(|s| {
                    let mut fields = Vec::new();
                    node.fields_into(s, &mut fields);
                    EntryView {
                        id: s.id,
                        deleted: s.flags & DELETED != 0,
                        same_fields: s.flags & SAME_FIELDS != 0,
                        fields,
                    }
                })
                .collect();
            NodeView {
                master,
                names,
                live: node.live,
                deleted: node.count - node.live,
                entries,
            }
        })
    }

    /// Appends a node read from an RDB listpack, as it was: master ID,
    /// master field names, entries with their tombstones. IDs must be
    /// strictly ascending, from `master` on, above every entry and master
    /// already loaded; field lists must have even lengths. A node with no
    /// live entry is dropped (Redis never keeps one). Counters other than
    /// the length are the loader's to set.
    pub fn load_node(
        &mut self,
        master: StreamId,
        names: &[&[u8]],
        entries: &[LoadEntry<'_>],
    ) -> Result<(), &'static str> {
        if let Some((&prev_master, prev)) = self.nodes.iter().next_back() {
            if master <= prev_master || master <= prev.last {
                return Err("stream node out of order");
            }
        }
        let mut node = Node::with_names(names);
        let mut prev: Option<StreamId> = None;
        for e in entries {
            if e.fields.len() % 2 != 0 {
                return Err("odd stream entry field list");
            }
            if e.id < master || prev.is_some_and(|p| e.id <= p) {
                return Err("stream entry IDs out of order");
            }
            prev = Some(e.id);
            node.push(master, e.id, &e.fields);
        }
        if entries.iter().all(|e| e.deleted) {
            return Ok(());
        }
        let deleted: Vec<usize> = node
            .slots(master)
            .iter()
            .zip(entries)
            .filter(|(_, e)| e.deleted)
            .map(|(s, _)| s.flag_at)
            .collect();
        for at in deleted {
            node.tombstone(at);
        }
        self.length += u64::from(node.live);
        self.nodes.insert(master, node);
        Ok(())
    }

    /// The master ID of the node that would hold `id`.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// Live entries with IDs in `start..=end`, ascending (descending when
    /// `rev`), at most `count` of them (0: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<StreamEntry> {
        let mut out = Vec::new();
        self.visit(start, end, rev, count, |id, fields| {
            out.push(StreamEntry {
                id,
                fields: fields.iter().map(|f| f.to_vec()).collect(),
            })
        });
        out
    }

    /// Calls `f` with each live entry in `start..=end`, ascending
    /// (descending when `rev`), at most `count` of them (0: all), its
    /// fields borrowed from the node (replies are written without copying
    /// entries out). Returns how many it visited.
    pub fn visit<'s>(
        &'s self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
        mut f: impl FnMut(StreamId, &[&[u8]]),
    ) -> usize {
        if start > end {
            return 0;
        }
        let from = self.node_of(start).unwrap_or(start);
        let nodes = self.nodes.range(from..=end);
        let mut seen = 0;
        let mut fields = Vec::new();
        let mut node_visit = |master: StreamId, node: &'s Node| -> bool {
            let slots = node.slots(master);
            let mut each = |s: &Slot| {
                if s.flags & DELETED == 0 && s.id >= start && s.id <= end {
                    node.fields_into(s, &mut fields);
                    f(s.id, &fields);
                    seen += 1;
                }
                count != 0 && seen >= count
            };
            if rev {
                slots.iter().rev().any(&mut each)
            } else {
                slots.iter().any(&mut each)
            }
        };
        if rev {
            for (m, n) in nodes.rev() {
                if node_visit(*m, n) {
                    break;
                }
            }
        } else {
            for (m, n) in nodes {
                if node_visit(*m, n) {
                    break;
                }
            }
        }
        seen
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<StreamEntry> {
        self.range(id, id, false, 1).pop()
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let Some(m) = self.node_of(id) else {
            return false;
        };
        let Some(node) = self.nodes.get(&m) else {
            return false;
        };
        if id > node.last {
            return false;
        }
        node.slots(m)
            .iter()
            .any(|s| s.id == id && s.flags & DELETED == 0)
    }

    /// The first or last live entry.
    pub fn edge(&self, last: bool) -> Option<StreamEntry> {
        self.range(StreamId::MIN, StreamId::MAX, last, 1).pop()
    }

    /// XDEL of one ID: true if a live entry was deleted. Keeps first_id
    /// and max_deleted as Redis 7.0 does.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some(m) = self.node_of(id) else {
            return false;
        };
        let Some(node) = self.nodes.get_mut(&m) else {
            return false;
        };
        let Some(at) = node
            .slots(m)
            .iter()
            .find(|s| s.id == id && s.flags & DELETED == 0)
            .map(|s| s.flag_at)
        else {
            return false;
        };
        node.tombstone(at);
        if node.live == 0 {
            self.nodes.remove(&m);
        }
        self.length -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.edge(false).map_or(StreamId::MIN, |e| e.id);
        }
        true
    }

    /// Trims from the oldest end; returns how many entries went. `limit`
    /// (0: none) caps the entries removed; with `approx` only whole nodes
    /// go.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        if self.length == 0 {
            return 0;
        }
        let mut deleted = 0u64;
        // Only ever the first node is removed whole, or trimmed and then
        // the walk stops, so the first node is always the next one.
        loop {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let Some(mut first) = self.nodes.first_entry() else {
                break;
            };
            let m = *first.key();
            let node = first.get_mut();
            let entries = u64::from(node.live);
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                self.nodes.remove(&m);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for s in node.slots(m) {
                if s.flags & DELETED != 0 {
                    continue;
                }
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => s.id >= min,
                };
                if stop {
                    break;
                }
                node.tombstone(s.flag_at);
                self.length -= 1;
                deleted += 1;
            }
            // Its last entries may have been XDELed already: a node with
            // nothing live goes, as XDEL removes one.
            if node.live == 0 {
                first.remove();
            }
            break;
        }
        if deleted > 0 {
            self.first_id = self.edge(false).map_or(StreamId::MIN, |e| e.id);
        }
        deleted
    }

    /// Whether a deleted entry may lie at or after `start` (Redis 7.0's
    /// test, which only knows the largest deleted ID).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// How many entries were added up to and including `id`, when that can
    /// be known; else `INVALID_ENTRIES_READ`.
    pub fn entries_up_to(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return INVALID_ENTRIES_READ,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return added - self.length as i64,
                std::cmp::Ordering::Equal => return added - self.length as i64 + 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (entries not yet read), when it can be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.entries_up_to(g.last_id);
        (read != INVALID_ENTRIES_READ).then(|| self.entries_added as i64 - read)
    }

    /// Advances group `g`'s last ID to `id` (a newly delivered entry),
    /// keeping its read counter as Redis 7.0 does.
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.has_tombstones_from(id) {
            g.entries_read += 1;
        } else if self.entries_added != 0 {
            g.entries_read = self.entries_up_to(id);
        }
        g.last_id = id;
    }

    /// How many nodes a radix tree keyed by the node master IDs (16 bytes,
    /// big-endian) has, as XINFO's radix-tree-nodes reports for Redis's
    /// compressed rax: one per chain of single-child bytes, one per branch
    /// point, one per key.
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        rax_count(&keys, 0)
    }

    /// Heap bytes owned (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        let nodes: usize = self
            .nodes
            .values()
            .map(|n| {
                n.data.capacity() + std::mem::size_of::<Node>() + std::mem::size_of::<StreamId>()
            })
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                name.len()
                    + std::mem::size_of::<Group>()
                    + g.pel.values().map(|n| 64 + n.consumer.len()).sum::<usize>()
                    + g.consumers
                        .iter()
                        .map(|(k, c)| k.len() + 64 + c.pel.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        nodes + groups
    }
}

/// Nodes of the compressed trie over `keys` (sorted, distinct, all 16
/// bytes) from byte `depth` on.
fn rax_count(keys: &[[u8; 16]], depth: usize) -> usize {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    if depth >= 16 {
        return 1;
    }
    let mut common = 0;
    while depth + common < 16 && first[depth + common] == last[depth + common] {
        common += 1;
    }
    if common > 0 {
        return 1 + rax_count(keys, depth + common);
    }
    let mut n = 1;
    let mut start = 0;
    while start < keys.len() {
        let b = keys[start][depth];
        let end = start + keys[start..].iter().take_while(|k| k[depth] == b).count();
        n += rax_count(&keys[start..end], depth + 1);
        start = end;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn add(s: &mut Stream, id: StreamId, fields: &[&str], limits: Limits) {
        let fs: Vec<&[u8]> = fields.iter().map(|x| x.as_bytes()).collect();
        s.append(id, &fs, limits);
    }

    #[test]
    fn packs_same_fields_compactly() {
        let mut s = Stream::new();
        let l = Limits::default();
        for i in 0..50u64 {
            add(
                &mut s,
                StreamId::new(1_700_000_000_000 + i, 0),
                &["temperature", "21"],
                l,
            );
        }
        add(
            &mut s,
            StreamId::new(1_700_000_000_100, 0),
            &["other", "x", "y", "z"],
            l,
        );
        assert_eq!(s.len(), 51);
        let all = s.range(StreamId::MIN, StreamId::MAX, false, 0);
        assert_eq!(all[3].fields, f(&["temperature", "21"]));
        assert_eq!(all[50].fields, f(&["other", "x", "y", "z"]));
        // An entry whose fields repeat the master's costs 6 bytes here.
        let bytes: usize = s.nodes.values().map(|n| n.data.len()).sum();
        assert!(bytes < 50 * 7 + 40, "{bytes}");
    }

    #[test]
    fn nodes_split_at_the_entry_limit() {
        let mut s = Stream::new();
        let l = Limits {
            max_entries: 10,
            max_bytes: 0,
        };
        for i in 1..=100 {
            add(&mut s, StreamId::new(i, 0), &["a", "b"], l);
        }
        assert_eq!(s.node_count(), 10);
        assert_eq!(s.trim(Trim::MaxLen(55), true, 30), 30);
        assert_eq!(s.len(), 70);
        assert_eq!(s.trim(Trim::MaxLen(55), true, 0), 10);
        assert_eq!(s.first_id, StreamId::new(41, 0));
    }

    #[test]
    fn rax_nodes_match_redis() {
        let mut s = Stream::new();
        let l = Limits {
            max_entries: 1,
            max_bytes: 0,
        };
        assert_eq!(s.rax_nodes(), 1);
        let mut got = Vec::new();
        for ms in [1, 2, 3, 4, 5, 300, 70000] {
            add(&mut s, StreamId::new(ms, 0), &["a", "b"], l);
            got.push(s.rax_nodes());
        }
        // What Redis 7.0.15 reports for the same inserts.
        assert_eq!(got, vec![2, 6, 8, 10, 12, 15, 18]);
    }

    #[test]
    fn ids_step_over_sequence_overflow() {
        let id = StreamId::new(5, u64::MAX);
        assert_eq!(id.next(), Some(StreamId::new(6, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(6, 0).prev(), Some(id));
        assert_eq!(StreamId::MIN.prev(), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u64, u8),
        Del(u64),
        MaxLen(u64, bool, u64),
        MinId(u64, bool, u64),
        Deliver(u8),
        Ack(u64),
        Claim(u64, u8),
        DelConsumer(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u64..4, 0u8..3).prop_map(|(d, k)| Op::Add(d, k)),
            1 => (0u64..80).prop_map(Op::Del),
            1 => (0u64..30, any::<bool>(), 0u64..20).prop_map(|(m, a, l)| Op::MaxLen(m, a, l)),
            1 => (0u64..120, any::<bool>(), 0u64..20).prop_map(|(m, a, l)| Op::MinId(m, a, l)),
            2 => (0u8..3).prop_map(Op::Deliver),
            1 => (0u64..120).prop_map(Op::Ack),
            1 => (0u64..120, 0u8..3).prop_map(|(i, c)| Op::Claim(i, c)),
            1 => (0u8..3).prop_map(Op::DelConsumer),
        ]
    }

    proptest! {
        /// Stream entries, trimming and a group's PEL behave like a
        /// BTreeMap model.
        #[test]
        fn behaves_like_a_model(ops in proptest::collection::vec(op(), 0..120), node in 1usize..6) {
            let limits = Limits { max_entries: node, max_bytes: 0 };
            let mut s = Stream::new();
            let mut model: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
            let mut g = Group::new(StreamId::MIN, INVALID_ENTRIES_READ);
            let mut pel: BTreeMap<StreamId, u8> = BTreeMap::new();
            let mut last = StreamId::MIN;
            let mut t = 0u64;
            for op in ops {
                t += 1;
                match op {
                    Op::Add(d, k) => {
                        let id = StreamId::new(last.ms + d / 2, if d / 2 == 0 { last.seq + 1 } else { d });
                        let fields = match k { 0 => vec!["a", "1"], 1 => vec!["a", "2", "b", "3"], _ => vec!["x", ""] };
                        add(&mut s, id, &fields, limits);
                        model.insert(id, f(&fields));
                        last = id;
                    }
                    Op::Del(ms) => {
                        let id = model.keys().find(|k| k.ms >= ms).copied().unwrap_or(StreamId::new(ms, 0));
                        prop_assert_eq!(s.delete(id), model.remove(&id).is_some());
                    }
                    Op::MaxLen(max, approx, limit) => {
                        let limit = if approx { limit } else { 0 };
                        let before = model.len() as u64;
                        let n = s.trim(Trim::MaxLen(max), approx, limit);
                        for _ in 0..n {
                            let k = *model.keys().next().unwrap();
                            model.remove(&k);
                        }
                        prop_assert!(model.len() as u64 >= max.min(before));
                        if !approx {
                            prop_assert_eq!(model.len() as u64, max.min(before));
                        }
                    }
                    Op::MinId(ms, approx, limit) => {
                        let min = StreamId::new(ms, 0);
                        let limit = if approx { limit } else { 0 };
                        let n = s.trim(Trim::MinId(min), approx, limit);
                        for _ in 0..n {
                            let k = *model.keys().next().unwrap();
                            prop_assert!(k < min);
                            model.remove(&k);
                        }
                        if !approx {
                            prop_assert!(model.keys().all(|k| *k >= min));
                        }
                    }
                    Op::Deliver(c) => {
                        let name = [b'c' + c];
                        let next = g.last_id.next().unwrap();
                        if let Some((&id, _)) = model.range(next..).next() {
                            g.consumer(&name, Some(t));
                            g.deliver(id, &name, t);
                            s.advance_group(&mut g, id);
                            pel.insert(id, c);
                        }
                    }
                    Op::Ack(ms) => {
                        let id = pel.keys().find(|k| k.ms >= ms).copied().unwrap_or(StreamId::new(ms, 0));
                        prop_assert_eq!(g.ack(id), pel.remove(&id).is_some());
                    }
                    Op::Claim(ms, c) => {
                        let name = [b'c' + c];
                        if let Some(id) = pel.keys().find(|k| k.ms >= ms).copied() {
                            g.consumer(&name, Some(t));
                            g.reassign(id, &name);
                            pel.insert(id, c);
                        }
                    }
                    Op::DelConsumer(c) => {
                        let name = [b'c' + c];
                        let had = pel.values().filter(|x| **x == c).count();
                        let got = g.delete_consumer(&name);
                        prop_assert!(got.is_none_or(|n| n == had));
                        pel.retain(|_, x| *x != c);
                    }
                }
                prop_assert_eq!(s.len(), model.len() as u64);
                let all: Vec<StreamId> = s.range(StreamId::MIN, StreamId::MAX, false, 0).iter().map(|e| e.id).collect();
                prop_assert_eq!(&all, &model.keys().copied().collect::<Vec<_>>());
                let rev: Vec<StreamId> = s.range(StreamId::MIN, StreamId::MAX, true, 3).iter().map(|e| e.id).collect();
                prop_assert_eq!(rev, model.keys().rev().take(3).copied().collect::<Vec<_>>());
                if let Some((&k, v)) = model.iter().nth(model.len() / 2) {
                    prop_assert_eq!(&s.get(k).unwrap().fields, v);
                    prop_assert!(s.contains(k));
                }
                if let Some(&first) = model.keys().next() {
                    prop_assert_eq!(s.first_id, first);
                }
                for n in s.nodes.values() {
                    prop_assert!(n.live > 0 && n.count as usize <= node);
                }
                prop_assert_eq!(g.pel.keys().copied().collect::<Vec<_>>(), pel.keys().copied().collect::<Vec<_>>());
                for (id, n) in &g.pel {
                    prop_assert!(g.consumers[&n.consumer].pel.contains(id));
                    prop_assert_eq!(n.consumer[0] - b'c', pel[id]);
                }
                let in_consumers: usize = g.consumers.values().map(|c| c.pel.len()).sum();
                prop_assert_eq!(in_consumers, g.pel.len());
            }
        }
    }
}
