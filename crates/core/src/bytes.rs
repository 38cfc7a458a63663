//! A byte string that keeps up to 22 bytes inline and larger ones in one heap
//! block, in 24 bytes either way: most keys and many values never allocate.

use std::fmt;

const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CompactBytes {
    Inline { len: u8, data: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl CompactBytes {
    pub fn new(s: &[u8]) -> Self {
        if s.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..s.len()].copy_from_slice(s);
            CompactBytes::Inline {
                len: s.len() as u8,
                data,
            }
        } else {
            CompactBytes::Heap(s.into())
        }
    }

    /// Becomes `CompactBytes::new(s)`, reusing the heap block when it has
    /// the same length.
    pub fn assign(&mut self, s: &[u8]) {
        match self {
            CompactBytes::Heap(b) if b.len() == s.len() => b.copy_from_slice(s),
            _ => *self = Self::new(s),
        }
    }

    pub fn from_vec(v: Vec<u8>) -> Self {
        if v.len() <= INLINE {
            Self::new(&v)
        } else {
            CompactBytes::Heap(v.into_boxed_slice())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, data } => &data[..usize::from(*len)],
            CompactBytes::Heap(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned beyond the struct itself (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } => 0,
            CompactBytes::Heap(b) => b.len(),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            CompactBytes::Inline { len, data } => data[..usize::from(len)].to_vec(),
            CompactBytes::Heap(b) => b.into_vec(),
        }
    }
}

impl Default for CompactBytes {
    fn default() -> Self {
        Self::new(b"")
    }
}

impl std::ops::Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_24_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        for n in [0, 1, 21, 22, 23, 100] {
            let v: Vec<u8> = (0..n as u8).collect();
            let c = CompactBytes::new(&v);
            assert_eq!(c.as_slice(), &v[..]);
            assert_eq!(c.heap_size() > 0, n > INLINE);
            assert_eq!(CompactBytes::from_vec(v.clone()).into_vec(), v);
        }
    }
}
