//! Streams in RDB, as Redis 7.0 writes them (RDB_TYPE_STREAM_LISTPACKS_2)
//! and as 5.0 to 7.2 wrote them (types 15, 19, 21).
//!
//! Layout: the node count, then per node its master ID (16 bytes,
//! big-endian ms then seq) and its listpack: live count, deleted count,
//! master field count, master field names, 0; then per entry its flags
//! (1: deleted, 2: same fields as the master), ms and seq deltas from the
//! master ID, either the values alone or a field count and the pairs, and
//! the number of listpack elements the entry took. After the nodes: length,
//! last ID, [first ID, largest deleted ID, entries added], then the groups:
//! name, last ID, [entries read], the PEL (raw ID, delivery time as 8 bytes
//! little-endian, delivery count), and the consumers (name, seen time,
//! [active time], the IDs of their pending entries).
//!
//! Our nodes are Redis's nodes (same master IDs, same splits, tombstones
//! kept), so a stream writes back byte for byte as it was read.

use crate::codec::{ty, write_len, write_string, Reader};
use crate::packed::{self, Item, ListpackWriter};
use crate::{Error, Result};
use damselfly_core::stream::{
    Consumer, Group, LoadEntry, Nack, NodeView, Stream, StreamId, INVALID_ENTRIES_READ,
};
use std::borrow::Cow;
use std::collections::BTreeMap;

const DELETED: i64 = 1;
const SAME_FIELDS: i64 = 2;

fn id_bytes(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// Appends a stream object (type 19).
pub fn write(out: &mut Vec<u8>, s: &Stream) {
    write_len(out, s.node_count() as u64);
    for n in s.node_views() {
        write_string(out, &id_bytes(n.master));
        write_string(out, &node_listpack(&n));
    }
    write_len(out, s.len());
    write_id(out, s.last_id);
    write_id(out, s.first_id);
    write_id(out, s.max_deleted);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string(out, name);
        write_id(out, g.last_id);
        // -1 (unknown) is written as its two's complement, as Redis does.
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id_bytes(*id));
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            write_len(out, nack.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            write_string(out, name);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id_bytes(*id));
            }
        }
    }
}

fn node_listpack(n: &NodeView<'_>) -> Vec<u8> {
    let mut w = ListpackWriter::default();
    w.push_int(i64::from(n.live));
    w.push_int(i64::from(n.deleted));
    w.push_int(n.names.len() as i64);
    for name in &n.names {
        w.push(name);
    }
    w.push_int(0);
    for e in &n.entries {
        let mut flags = 0;
        if e.deleted {
            flags |= DELETED;
        }
        if e.same_fields {
            flags |= SAME_FIELDS;
        }
        w.push_int(flags);
        w.push_int(e.id.ms.wrapping_sub(n.master.ms) as i64);
        w.push_int(e.id.seq.wrapping_sub(n.master.seq) as i64);
        let pairs = (e.fields.len() / 2) as i64;
        if e.same_fields {
            for v in e.fields.iter().skip(1).step_by(2) {
                w.push(v);
            }
            w.push_int(pairs + 3);
        } else {
            w.push_int(pairs);
            for f in &e.fields {
                w.push(f);
            }
            w.push_int(2 * pairs + 4);
        }
    }
    w.finish()
}

fn parse_id(b: &[u8]) -> Result<StreamId> {
    let b: &[u8; 16] = b.try_into().map_err(|_| Error::Bad("bad stream ID"))?;
    let (ms, seq) = b.split_at(8);
    let be = |x: &[u8]| x.iter().fold(0u64, |a, &v| (a << 8) | u64::from(v));
    Ok(StreamId::new(be(ms), be(seq)))
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

fn int(it: Option<&Item<'_>>) -> Result<i64> {
    match it {
        Some(Item::Int(n)) => Ok(*n),
        Some(Item::Str(s)) => std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(Error::Bad("stream listpack: integer expected")),
        None => Err(Error::Bad("stream listpack truncated")),
    }
}

fn count(it: Option<&Item<'_>>, max: usize) -> Result<usize> {
    usize::try_from(int(it)?)
        .ok()
        .filter(|n| *n <= max)
        .ok_or(Error::Bad("stream listpack: bad count"))
}

/// Parses one node's listpack and appends it to `s`.
fn read_node(s: &mut Stream, master: StreamId, blob: &[u8]) -> Result<()> {
    let items = packed::listpack(blob)?;
    let texts: Vec<Cow<'_, [u8]>> = items
        .iter()
        .map(|it| match it {
            Item::Str(b) => Cow::Borrowed(*b),
            Item::Int(_) => Cow::Owned(it.to_vec()),
        })
        .collect();
    let live = count(items.first(), items.len())?;
    let deleted = count(items.get(1), items.len())?;
    let n_names = count(items.get(2), items.len())?;
    let names: Vec<&[u8]> = texts
        .get(3..3 + n_names)
        .ok_or(Error::Bad("stream listpack truncated"))?
        .iter()
        .map(|t| t.as_ref())
        .collect();
    let mut i = 3 + n_names;
    if int(items.get(i))? != 0 {
        return Err(Error::Bad("stream master entry not terminated"));
    }
    i += 1;
    let mut entries = Vec::new();
    let mut seen_deleted = 0;
    while i < items.len() {
        let flags = int(items.get(i))?;
        if !(0..=DELETED | SAME_FIELDS).contains(&flags) {
            return Err(Error::Bad("bad stream entry flags"));
        }
        let id = StreamId::new(
            master.ms.wrapping_add(int(items.get(i + 1))? as u64),
            master.seq.wrapping_add(int(items.get(i + 2))? as u64),
        );
        i += 3;
        let mut fields = Vec::new();
        let elements = if flags & SAME_FIELDS != 0 {
            let values = texts
                .get(i..i + n_names)
                .ok_or(Error::Bad("stream listpack truncated"))?;
            for (n, v) in names.iter().zip(values) {
                fields.push(*n);
                fields.push(v.as_ref());
            }
            i += n_names;
            n_names + 3
        } else {
            let pairs = count(items.get(i), items.len())?;
            i += 1;
            let all = texts
                .get(i..i + 2 * pairs)
                .ok_or(Error::Bad("stream listpack truncated"))?;
            fields.extend(all.iter().map(|t| t.as_ref()));
            i += 2 * pairs;
            2 * pairs + 4
        };
        if int(items.get(i))? != elements as i64 {
            return Err(Error::Bad("bad stream entry element count"));
        }
        i += 1;
        let is_deleted = flags & DELETED != 0;
        seen_deleted += usize::from(is_deleted);
        entries.push(LoadEntry {
            id,
            deleted: is_deleted,
            fields,
        });
    }
    if seen_deleted != deleted || entries.len() - seen_deleted != live {
        return Err(Error::Bad("stream node counts do not match its entries"));
    }
    s.load_node(master, &names, &entries).map_err(Error::Bad)
}

/// Reads a stream object of type `t` (15, 19 or 21).
pub fn read(t: u8, r: &mut Reader<'_>) -> Result<Stream> {
    let mut s = Stream::new();
    for _ in 0..r.count()? {
        let master = parse_id(&r.string()?)?;
        let blob = r.string()?;
        read_node(&mut s, master, &blob)?;
    }
    if r.length()? != s.len() {
        return Err(Error::Bad("stream length does not match its entries"));
    }
    s.last_id = read_id(r)?;
    if s.edge(true).is_some_and(|e| e.id > s.last_id) {
        return Err(Error::Bad("stream entry above the last ID"));
    }
    if t == ty::STREAM_LISTPACKS {
        // What Redis 7.0 derives for a stream saved before 7.0 (an empty
        // stream's first ID comes out as the largest ID).
        s.entries_added = s.len();
        s.first_id = s.edge(false).map_or(StreamId::MAX, |e| e.id);
    } else {
        s.first_id = read_id(r)?;
        s.max_deleted = read_id(r)?;
        s.entries_added = r.length()?;
    }
    for _ in 0..r.count()? {
        let name = r.string()?.into_owned();
        let last_id = read_id(r)?;
        let entries_read = if t == ty::STREAM_LISTPACKS {
            s.entries_up_to(last_id)
        } else {
            let n = r.length()? as i64;
            if n < INVALID_ENTRIES_READ {
                return Err(Error::Bad("bad consumer group read counter"));
            }
            n
        };
        let mut g = Group::new(last_id, entries_read);
        let mut unowned: BTreeMap<StreamId, (u64, u64)> = BTreeMap::new();
        for _ in 0..r.count()? {
            let id = parse_id(r.take(16)?)?;
            let time = r.u64_le()?;
            let deliveries = r.length()?;
            if unowned.insert(id, (time, deliveries)).is_some() {
                return Err(Error::Bad("duplicate pending entry"));
            }
        }
        for _ in 0..r.count()? {
            let cname = r.string()?.into_owned();
            let seen_time = r.u64_le()?;
            if t == ty::STREAM_LISTPACKS_3 {
                // Redis 7.2's active time: 7.0 keeps only the seen time.
                r.u64_le()?;
            }
            let mut c = Consumer {
                seen_time,
                ..Consumer::default()
            };
            for _ in 0..r.count()? {
                let id = parse_id(r.take(16)?)?;
                let (delivery_time, delivery_count) = unowned
                    .remove(&id)
                    .ok_or(Error::Bad("consumer pending entry not in the group's"))?;
                g.pel.insert(
                    id,
                    Nack {
                        delivery_time,
                        delivery_count,
                        consumer: cname.clone(),
                    },
                );
                c.pel.insert(id);
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(Error::Bad("duplicate consumer"));
            }
        }
        if !unowned.is_empty() {
            return Err(Error::Bad("pending entry without a consumer"));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(Error::Bad("duplicate consumer group"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{read_value, write_value, Limits};
    use damselfly_core::stream::Limits as NodeLimits;
    use damselfly_storage::Value;

    /// A stream with several nodes, tombstones, mixed field layouts and a
    /// group whose PEL is split between two consumers.
    fn sample() -> Stream {
        let mut s = Stream::new();
        let limits = NodeLimits {
            max_entries: 3,
            max_bytes: 0,
        };
        for i in 1..=10u64 {
            let v = i.to_string();
            let fields: Vec<&[u8]> = if i % 3 == 0 {
                vec![b"other", v.as_bytes(), b"x", b"-70000"]
            } else {
                vec![b"a", v.as_bytes()]
            };
            s.append(StreamId::new(i, i), &fields, limits);
        }
        s.delete(StreamId::new(2, 2));
        s.delete(StreamId::new(4, 4));
        s.max_deleted = StreamId::new(4, 4);
        let mut g = Group::new(StreamId::new(6, 6), 6);
        for (id, who) in [(1, &b"alice"[..]), (5, b"bob"), (6, b"alice")] {
            g.consumer(who, Some(1_700_000_000_000 + id));
            g.deliver(StreamId::new(id, id), who, 1_700_000_000_500 + id);
        }
        g.consumer(b"idle", Some(5));
        s.groups.insert(b"g".to_vec(), g);
        s.groups.insert(
            b"7".to_vec(),
            Group::new(StreamId::MIN, INVALID_ENTRIES_READ),
        );
        s
    }

    fn encode(s: &Stream) -> Vec<u8> {
        let mut out = Vec::new();
        write_value(
            &mut out,
            Value::Stream(Box::new(s.clone())).view(),
            &Limits::default(),
        );
        out
    }

    fn decode(bytes: &[u8]) -> Result<Value> {
        let mut r = Reader::new(&bytes[1..]);
        let v = read_value(bytes[0], &mut r, &Limits::default())?;
        if r.remaining() != 0 {
            return Err(Error::Bad("trailing bytes"));
        }
        Ok(v)
    }

    #[test]
    fn streams_round_trip_node_for_node() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(bytes[0], ty::STREAM_LISTPACKS_2);
        assert_eq!(decode(&bytes).unwrap(), Value::Stream(Box::new(s.clone())));
        let empty = Stream::new();
        assert_eq!(
            decode(&encode(&empty)).unwrap(),
            Value::Stream(Box::new(empty))
        );
    }

    #[test]
    fn redis_7_2_consumer_active_time_is_read_and_dropped() {
        let s = sample();
        let mut bytes = encode(&s);
        bytes[0] = ty::STREAM_LISTPACKS_3;
        // Insert an active time after each consumer's seen time.
        for c in [&b"alice"[..], b"bob", b"idle"] {
            let seen = s.groups[&b"g".to_vec()].consumers[c]
                .seen_time
                .to_le_bytes();
            let mut name = vec![c.len() as u8];
            name.extend_from_slice(c);
            name.extend_from_slice(&seen);
            let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
            bytes.splice(at..at, 99u64.to_le_bytes());
        }
        assert_eq!(decode(&bytes).unwrap(), Value::Stream(Box::new(s)));
    }

    #[test]
    fn hostile_stream_bytes_fail_without_panicking() {
        let bytes = encode(&sample());
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for t in [
            ty::STREAM_LISTPACKS,
            ty::STREAM_LISTPACKS_2,
            ty::STREAM_LISTPACKS_3,
        ] {
            for at in 1..bytes.len() {
                for x in [0x00, 0x01, 0x40, 0x7F, 0x80, 0xFF] {
                    let mut b = bytes.clone();
                    b[0] = t;
                    b[at] ^= x;
                    // Whatever loads must write and load back the same.
                    if let Ok(Value::Stream(s)) = decode(&b) {
                        assert_eq!(decode(&encode(&s)).unwrap(), Value::Stream(s));
                    }
                }
            }
        }
        // A node count, PEL size or listpack claiming far more than the
        // bytes left.
        for b in [
            &[19, 0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..],
            &[
                19, 1, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0xFF, 0xFF, 0xFF,
                0xFF,
            ][..],
            &[
                19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'g', 0, 0, 0, 0x80, 0xFF, 0xFF, 0xFF, 0xFF,
            ][..],
        ] {
            assert!(decode(b).is_err());
        }
    }
}
