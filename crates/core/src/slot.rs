//! Redis Cluster hash slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`
//! when the key has a non-empty one, modulo 16384. Keys with the same tag land
//! in the same slot, hence the same shard.

/// Slice-by-16 tables: a key costs a few instructions per byte instead of
/// the bytewise table's ~18 (measured with callgrind on GET).
const CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

pub const SLOTS: u16 = 16384;

/// The part of `key` that is hashed: the content of the first `{...}` if it
/// is non-empty, else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = find_open_brace(key) {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The first `{` of `key`, eight bytes per step (most keys have none, and
/// every command's keys are searched for one).
fn find_open_brace(key: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = key.chunks_exact(8);
    let mut base = 0;
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        // A zero byte of `x` is a `{` of the chunk (the classic test for a
        // zero byte: exact for the lowest one, which is all we need).
        let x = u64::from_le_bytes(w) ^ (ONES * u64::from(b'{'));
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&c| c == b'{').map(|i| base + i)
}

/// Which of `shards` (a power of two) holds `key`: a hash of its hash tag,
/// so keys sharing a `{tag}` share a shard. Not the CRC16 slot (`key_slot`),
/// which costs several times more and nothing needs here. Fixed-seeded, so
/// the mapping is the same in every process (tests place keys with it);
/// a chosen-key flood can only crowd one shard's lock, never a table chain
/// (the tables' hash is seeded per process).
pub fn key_shard(key: &[u8], shards: usize) -> usize {
    use std::hash::BuildHasher;
    const SEED: u64 = 0x5eed_da35_e1f1_7a11;
    let h = foldhash::fast::FixedState::with_seed(SEED).hash_one(hash_tag(key));
    (h >> 50) as usize & (shards - 1)
}

pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from CLUSTER KEYSLOT on Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
    }

    #[test]
    fn brace_search_matches_a_byte_scan() {
        let keys: [&[u8]; 9] = [
            b"",
            b"{",
            b"key:000000012345",
            b"key:0000{00012345",
            b"abcdefg{",
            b"abcdefgh{",
            b"\xfb\x7b\xff\x00{{{{{",
            b"\x7a\x7c\xfa\xfc\x7b",
            b"0123456789abcdef0123{x}",
        ];
        for k in keys {
            assert_eq!(
                find_open_brace(k),
                k.iter().position(|&c| c == b'{'),
                "{k:?}"
            );
        }
        assert_eq!(key_shard(b"{user1000}.a", 256), key_shard(b"user1000", 256));
        assert_eq!(
            key_shard(b"x{user1000}", 256),
            key_shard(b"{user1000}y", 256)
        );
        assert!(key_shard(b"anything", 256) < 256);
    }
}
