//! The list value type. Internals are owned by the collections work (issue 4).

/// A list value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List {
    len: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// OBJECT ENCODING's name for the current representation.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Heap bytes owned (for memory accounting).
    pub fn heap_size(&self) -> usize {
        0
    }
}
