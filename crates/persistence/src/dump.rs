//! DUMP payloads: one RDB object, then the RDB version (2 bytes, little
//! endian) and a CRC-64 of everything before it (8 bytes, little endian).

use crate::codec::{self, Limits, Reader, RDB_VERSION};
use crate::{Error, Result, CRC64};
use damselfly_storage::{Value, ValueRef};

/// DUMP's payload for `v`.
pub fn dump(v: ValueRef<'_>, limits: &Limits) -> Vec<u8> {
    let mut out = Vec::new();
    codec::write_value(&mut out, v, limits);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the trailer: a version we read and a matching checksum
/// (RESTORE's "version or checksum are wrong").
pub fn verify(payload: &[u8]) -> Result<()> {
    let n = payload.len();
    if n < 10 {
        return Err(Error::Checksum);
    }
    let version = u16::from_le_bytes([payload[n - 10], payload[n - 9]]);
    if version > codec::RDB_VERSION_MAX {
        return Err(Error::Version(u32::from(version)));
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&payload[n - 8..]);
    if CRC64.checksum(&payload[..n - 8]) != u64::from_le_bytes(crc) {
        return Err(Error::Checksum);
    }
    Ok(())
}

/// The value in a verified payload. The object must fill the payload up
/// to its trailer exactly.
pub fn restore(payload: &[u8], limits: &Limits) -> Result<Value> {
    let body = payload
        .get(..payload.len().saturating_sub(10))
        .ok_or(Error::Truncated)?;
    let mut r = Reader::new(body);
    let t = r.byte()?;
    let v = codec::read_value(t, &mut r, limits)?;
    if r.remaining() != 0 {
        return Err(Error::Bad("trailing bytes in payload"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_dumps_as_redis_does() {
        // DUMP of SET k hello in Redis 7.0.
        let want = b"\x00\x05hello\x0a\x00\xd7\x9a\x8b\x88\x1b\xd7\x5f\x3b";
        let got = dump(Value::from_bytes(b"hello").view(), &Limits::default());
        assert_eq!(&got[..9], &want[..9]);
        assert!(verify(&got).is_ok());
        assert_eq!(
            restore(&got, &Limits::default()).unwrap(),
            Value::from_bytes(b"hello")
        );
    }

    #[test]
    fn corrupt_payloads_are_refused() {
        let mut p = dump(Value::from_bytes(b"hello").view(), &Limits::default());
        let last = p.len() - 1;
        p[last] ^= 1;
        assert!(verify(&p).is_err());
        assert!(verify(b"short").is_err());
    }
}
