//! The replication state every part of the server reads: the role, the
//! two replication IDs and their offsets (Redis's replid, replid2,
//! master_repl_offset, second_repl_offset).
//!
//! The offset advances only with the command stream (`Replication`
//! appends and adds the bytes under the same lock), so an offset always
//! names a byte position of the stream.

use std::fmt;

/// A replication ID: 40 hex characters, as Redis prints and parses it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplId([u8; 40]);

impl ReplId {
    /// A fresh random ID (a new history of the dataset).
    pub fn random() -> ReplId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 40];
        for b in id.iter_mut() {
            *b = HEX[(rand::random::<u8>() & 15) as usize];
        }
        ReplId(id)
    }

    /// The all-zeros ID Redis shows as replid2 when there is no previous
    /// history.
    pub const fn zero() -> ReplId {
        ReplId([b'0'; 40])
    }

    /// Parses an ID sent by a peer (PSYNC, +FULLRESYNC, +CONTINUE): exactly
    /// 40 bytes; anything else is no ID (Redis treats it as unknown).
    pub fn parse(s: &[u8]) -> Option<ReplId> {
        let id: [u8; 40] = s.try_into().ok()?;
        Some(ReplId(id))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Built from ASCII hex or checked to be 40 bytes of a peer's ID;
        // a non-UTF-8 peer ID shows as zeros rather than panicking.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000000000000000000000000000")
    }
}

impl fmt::Display for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplId({})", self.as_str())
    }
}

/// Whether this server is a master or follows one. The replica side keeps
/// the link's details (host, port, link state) in its own state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// The IDs and offsets. Read and changed only under `Replication`'s lock.
#[derive(Clone, Debug)]
pub struct ReplState {
    pub role: Role,
    /// The current history's ID.
    pub replid: ReplId,
    /// The history this one continues (after a failover or a replica's
    /// promotion), zeros when none.
    pub replid2: ReplId,
    /// Bytes of the stream so far, which is the offset of its last byte
    /// (a replica asks PSYNC for the next one, offset + 1).
    pub master_repl_offset: i64,
    /// Up to which offset `replid2` is valid (-1 when none).
    pub second_repl_offset: i64,
}

impl Default for ReplState {
    fn default() -> ReplState {
        ReplState {
            role: Role::Master,
            replid: ReplId::random(),
            replid2: ReplId::zero(),
            master_repl_offset: 0,
            second_repl_offset: -1,
        }
    }
}

impl ReplState {
    /// Starts a new history that continues the current one (Redis's
    /// shiftReplicationId, on promotion and failover): replicas of the old
    /// ID can still partially resync up to the current offset.
    pub fn shift_replid(&mut self) {
        self.replid2 = self.replid;
        self.second_repl_offset = self.master_repl_offset + 1;
        self.replid = ReplId::random();
    }

    /// Forgets the previous history (Redis's clearReplicationId2).
    pub fn clear_replid2(&mut self) {
        self.replid2 = ReplId::zero();
        self.second_repl_offset = -1;
    }

    /// Whether a replica that has the stream of `id` up to `offset` (the
    /// next byte it wants, Redis's psync_offset) can continue from our
    /// history, ignoring the backlog's extent.
    pub fn continues(&self, id: &ReplId, offset: i64) -> bool {
        *id == self.replid || (*id == self.replid2 && offset <= self.second_repl_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_forty_hex_chars_and_parse_back() {
        let id = ReplId::random();
        assert_eq!(id.as_str().len(), 40);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(ReplId::parse(id.as_bytes()), Some(id));
        assert_eq!(ReplId::parse(b"?"), None);
        assert_eq!(ReplId::zero().to_string(), "0".repeat(40));
    }

    #[test]
    fn shifting_keeps_the_old_history_up_to_the_offset() {
        let mut s = ReplState {
            master_repl_offset: 100,
            ..Default::default()
        };
        let old = s.replid;
        s.shift_replid();
        assert_ne!(s.replid, old);
        assert_eq!((s.replid2, s.second_repl_offset), (old, 101));
        assert!(s.continues(&old, 101));
        assert!(!s.continues(&old, 102));
        assert!(s.continues(&s.replid.clone(), 500));
        s.clear_replid2();
        assert!(!s.continues(&old, 50));
    }
}
