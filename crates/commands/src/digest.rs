//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis 7.0's dataset digest, which
//! replication tests compare between a master and its replica. The same
//! data gives the same digest as Redis's for every type but streams (whose
//! entries and IDs are digested, in a way of our own).
//!
//! A digest is 20 bytes. "xor" folds in SHA-1 of some bytes; "mix" xors
//! them in, then replaces the digest by its own SHA-1 (so order counts).
//! A key's digest mixes its name, its type code and its value (lists and
//! stream entries in order, set members, hash pairs and zset pairs xored,
//! so their order does not count), plus "!!expire!!" when it has a TTL;
//! the dataset's digest mixes each non-empty DB's index and xors in each
//! of its keys' digests.

use damselfly_storage::{Entry, Value};

type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    sha1_smol::Sha1::from(data).digest().bytes()
}

fn xor(d: &mut Digest, data: &[u8]) {
    for (a, b) in d.iter_mut().zip(sha1(data)) {
        *a ^= b;
    }
}

fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    *d = sha1(d);
}

pub(crate) fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Redis's type codes (OBJ_STRING...), big-endian as it mixes them.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Int(_) | Value::Str(_) | Value::Raw(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// The digest of one key's value and TTL, folded into `d` (which holds
/// the key's name already for DEBUG DIGEST, nothing for DIGEST-VALUE).
pub(crate) fn value(d: &mut Digest, e: &Entry) {
    mix(d, &type_code(&e.value).to_be_bytes());
    match &e.value {
        Value::Int(n) => mix(d, n.to_string().as_bytes()),
        Value::Str(s) => mix(d, s.as_slice()),
        Value::Raw(s) => mix(d, s),
        Value::List(l) => l.iter().for_each(|x| mix(d, x)),
        Value::Set(s) => {
            for m in s.iter() {
                match m {
                    damselfly_core::set::Member::Int(n) => xor(d, n.to_string().as_bytes()),
                    damselfly_core::set::Member::Bytes(b) => xor(d, b),
                }
            }
        }
        Value::ZSet(z) => z.range(0, z.len(), false, |m, score| {
            let mut el = [0u8; 20];
            mix(&mut el, m);
            mix(&mut el, damselfly_protocol::format_double(score).as_bytes());
            xor(d, &el);
        }),
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut el = [0u8; 20];
                mix(&mut el, f);
                mix(&mut el, v);
                xor(d, &el);
            }
        }
        Value::Stream(s) => {
            let all = damselfly_core::stream::StreamId {
                ms: u64::MAX,
                seq: u64::MAX,
            };
            s.visit(Default::default(), all, false, 0, |id, fields| {
                mix(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                fields.iter().for_each(|f| mix(d, f));
            });
        }
    }
    if e.expire_at != 0 {
        xor(d, b"!!expire!!");
    }
}

/// DEBUG DIGEST's fold of one DB: its index, then every key.
pub(crate) fn db_start(d: &mut Digest, db: usize) {
    mix(d, &(db as u32).to_be_bytes());
}

/// One key of DEBUG DIGEST, folded (xor of its SHA-1) into `d`.
pub(crate) fn key(d: &mut Digest, e: &Entry) {
    let mut k = [0u8; 20];
    mix(&mut k, e.key.as_slice());
    value(&mut k, e);
    xor(d, &k);
}
