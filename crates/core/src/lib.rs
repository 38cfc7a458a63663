//! Data structures of the keyspace, with no I/O, threads or knowledge of
//! commands: the hash table (our own, for SCAN's guarantee and a stable walk
//! order), compact byte strings, glob matching, cluster slots and the
//! `long double` arithmetic that INCRBYFLOAT needs to match Redis exactly.

pub mod bytes;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod hll;
pub mod ldouble;
pub mod list;
pub mod set;
pub mod slot;
pub mod stream;
pub mod table;
pub mod zpack;
pub mod zset;
mod ztree;

pub use bytes::CompactBytes;
pub use table::{Keyed, Link, RawTable, Table};
