//! Redis-compatible persistence: the RDB value codec (DUMP/RESTORE
//! payloads) and RDB snapshot files, saved and loaded. No tokio, no
//! knowledge of commands or sockets.
//!
//! Invariants:
//! - Nothing read from a payload or a file can panic or allocate more
//!   than the input's own size (plus bounded LZF expansion): every length
//!   is checked against the bytes left before it is used. Fuzzed in
//!   `fuzz/`.
//! - We write what Redis 7.0 writes (RDB version 10) and read RDB
//!   versions 1 to 12.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod codec;
pub mod dump;
pub mod file;
mod lzf;
pub mod packed;
pub mod snapshot;
pub mod stream;

pub use codec::{Limits, Reader, RDB_VERSION};

/// Redis's CRC-64 (Jones polynomial, reflected), as DUMP payloads and
/// RDB files carry it.
pub static CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Why a payload or file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unexpected end of data")]
    Truncated,
    #[error("bad data: {0}")]
    Bad(&'static str),
    #[error("empty collection")]
    EmptyKey,
    #[error("unknown RDB value type {0}")]
    UnknownType(u8),
    #[error("{0} values are not supported yet")]
    Unsupported(&'static str),
    #[error("unknown module type '{0}'")]
    Module(String),
    #[error("wrong RDB checksum")]
    Checksum,
    #[error("unsupported RDB version {0}")]
    Version(u32),
    #[error("not an RDB file")]
    NotRdb,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    #[test]
    fn crc64_matches_redis_test_vector() {
        assert_eq!(super::CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
    }
}
