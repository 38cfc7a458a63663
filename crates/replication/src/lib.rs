//! Replication as Redis 7.0 speaks it, in both directions.
//!
//! Who owns what (two people built this crate side by side):
//! - `state.rs` (master side's owner, shared by both): the role, replid,
//!   replid2, master_repl_offset, second_repl_offset. The server reaches
//!   them through `Server::repl` (an `Arc<Replication>`): `repl.state()`
//!   locks them.
//! - `backlog.rs`, `master.rs` (master side): the command stream, the
//!   backlog, replicas of this server (SYNC/PSYNC, REPLCONF, WAIT).
//! - `replica.rs` (replica side): following a master (REPLICAOF).
//!
//! Invariants:
//! - The IDs, the offset and the stream live behind one lock, so the
//!   offset always names a byte of the stream.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backlog;
pub mod master;
pub mod replica;
pub mod state;

pub use master::{Announced, Link, Op, ReplicaInfo};
pub use state::{ReplId, ReplState, Role};

use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};
use std::sync::atomic::AtomicBool;

/// The server's replication: state, stream and replicas, one per process.
#[derive(Default)]
pub struct Replication {
    inner: Mutex<Inner>,
    /// A backlog exists: writes are propagated (`master.rs`).
    active: AtomicBool,
}

#[derive(Default)]
struct Inner {
    state: ReplState,
    stream: master::Stream,
}

impl Replication {
    /// Locks the IDs and offsets. Hold it briefly: writers propagating a
    /// command take the same lock.
    pub fn state(&self) -> MappedMutexGuard<'_, ReplState> {
        MutexGuard::map(self.inner.lock(), |i| &mut i.state)
    }
}
