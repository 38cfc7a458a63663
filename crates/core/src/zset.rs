//! The zset value type. Internals are owned by the collections work (issue 4).

/// A zset value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet {
    len: usize,
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
