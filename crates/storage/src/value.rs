use damselfly_core::{hash::Hash, list::List, set::Set, stream::Stream, zset::ZSet, CompactBytes};
use std::borrow::Cow;

/// A stored value. Strings that are canonical 64-bit integers are kept as
/// integers (Redis's `int` encoding): smaller, and INCR needs no parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Str(CompactBytes),
    /// A string modified in place (APPEND, SETRANGE, SETBIT...): kept with
    /// spare capacity so repeated growth is amortised O(1) per byte, and
    /// reported as `raw`, as Redis reports such strings.
    Raw(Box<Vec<u8>>),
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

/// Redis stores strings up to this length as `embstr`.
const EMBSTR_MAX: usize = 44;

/// The integer `s` spells in canonical form (no sign on zero, no leading
/// zeros or '+', fits in i64), as Redis requires for the `int` encoding.
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (neg || digits.len() > 1)) {
        return None;
    }
    // 19 digits always fit in a u64.
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    if neg {
        (v <= 1 << 63).then(|| (v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

impl Value {
    pub fn from_bytes(s: &[u8]) -> Value {
        match canonical_int(s) {
            Some(n) => Value::Int(n),
            None => Value::Str(CompactBytes::new(s)),
        }
    }

    /// Becomes `Value::from_bytes(s)`, writing over the old string's heap
    /// block when it has the same length (SET over a same-sized value
    /// allocates and frees nothing).
    pub fn assign_bytes(&mut self, s: &[u8]) {
        match (canonical_int(s), &mut *self) {
            (Some(n), _) => *self = Value::Int(n),
            (None, Value::Str(b)) => b.assign(s),
            (None, _) => *self = Value::Str(CompactBytes::new(s)),
        }
    }

    pub fn from_vec(v: Vec<u8>) -> Value {
        match canonical_int(&v) {
            Some(n) => Value::Int(n),
            None => Value::Str(CompactBytes::from_vec(v)),
        }
    }

    /// A borrowed view, the form an `Entry` hands out.
    pub fn view(&self) -> ValueRef<'_> {
        match self {
            Value::Int(n) => ValueRef::Int(*n),
            Value::Str(s) => ValueRef::Str(s),
            Value::Raw(v) => ValueRef::Raw(v),
            Value::List(l) => ValueRef::List(l),
            Value::Hash(h) => ValueRef::Hash(h),
            Value::Set(s) => ValueRef::Set(s),
            Value::ZSet(z) => ValueRef::ZSet(z),
            Value::Stream(s) => ValueRef::Stream(s),
        }
    }

    /// The TYPE name.
    pub fn type_name(&self) -> &'static str {
        self.view().type_name()
    }

    pub fn is_string(&self) -> bool {
        self.view().is_string()
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        self.view().encoding()
    }

    /// The string's bytes (integers rendered in decimal).
    pub fn string_bytes(&self) -> Cow<'_, [u8]> {
        self.view().string_bytes()
    }

    /// The string as an editable buffer with room for at least `min_len`
    /// bytes (growth zero-fills), converting it to `Raw` first. Growth
    /// doubles below 1 MiB and adds 1 MiB above, so a value grown piece by
    /// piece costs amortised O(1) per byte. None if memory is exhausted or
    /// the value is not a string.
    pub fn raw_mut(&mut self, min_len: usize) -> Option<&mut Vec<u8>> {
        if !matches!(self, Value::Raw(_)) {
            if !self.is_string() {
                return None;
            }
            let bytes = self.string_bytes().into_owned();
            *self = Value::Raw(Box::new(bytes));
        }
        let Value::Raw(v) = self else { return None };
        grow_raw(v, min_len).then_some(v)
    }

    /// Bytes of heap memory the value owns (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            _ => self.view().heap_size(),
        }
    }
}

/// Grows `v` to at least `min_len` bytes (zero-filled): doubling below
/// 1 MiB, +1 MiB above. False if memory is exhausted.
pub(crate) fn grow_raw(v: &mut Vec<u8>, min_len: usize) -> bool {
    if v.len() < min_len {
        if v.capacity() < min_len {
            const MIB: usize = 1024 * 1024;
            let target = if min_len < MIB {
                min_len * 2
            } else {
                min_len + MIB
            };
            if v.try_reserve_exact(target - v.len()).is_err()
                && v.try_reserve_exact(min_len - v.len()).is_err()
            {
                return false;
            }
        }
        v.resize(min_len, 0);
    }
    true
}

/// A borrowed value: what an `Entry` (or `Value::view`) hands out.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Int(i64),
    Str(&'a [u8]),
    Raw(&'a Vec<u8>),
    List(&'a List),
    Hash(&'a Hash),
    Set(&'a Set),
    ZSet(&'a ZSet),
    Stream(&'a Stream),
}

impl<'a> ValueRef<'a> {
    /// The TYPE name.
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_) => "string",
            ValueRef::List(_) => "list",
            ValueRef::Hash(_) => "hash",
            ValueRef::Set(_) => "set",
            ValueRef::ZSet(_) => "zset",
            ValueRef::Stream(_) => "stream",
        }
    }

    pub fn is_string(self) -> bool {
        matches!(self, ValueRef::Int(_) | ValueRef::Str(_) | ValueRef::Raw(_))
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(self) -> &'static str {
        match self {
            ValueRef::Int(_) => "int",
            ValueRef::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            ValueRef::Str(_) | ValueRef::Raw(_) => "raw",
            ValueRef::List(l) => l.encoding(),
            ValueRef::Hash(h) => h.encoding(),
            ValueRef::Set(s) => s.encoding(),
            ValueRef::ZSet(z) => z.encoding(),
            ValueRef::Stream(_) => "stream",
        }
    }

    /// The string's bytes (integers rendered in decimal).
    pub fn string_bytes(self) -> Cow<'a, [u8]> {
        match self {
            ValueRef::Int(n) => Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec()),
            ValueRef::Str(s) => Cow::Borrowed(s),
            ValueRef::Raw(v) => Cow::Borrowed(v.as_slice()),
            _ => Cow::Borrowed(&[]),
        }
    }

    /// Bytes of heap memory the value owns beyond an entry (for memory
    /// accounting): strings live inside the entry.
    pub fn heap_size(self) -> usize {
        match self {
            ValueRef::Int(_) => 0,
            ValueRef::Str(_) => 0,
            ValueRef::Raw(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
            ValueRef::List(l) => std::mem::size_of::<List>() + l.heap_size(),
            // A hash's word lives in its entry (`Entry`), not in a box.
            ValueRef::Hash(h) => h.heap_size(),
            ValueRef::Set(s) => std::mem::size_of::<Set>() + s.heap_size(),
            ValueRef::ZSet(z) => std::mem::size_of::<ZSet>() + z.heap_size(),
            ValueRef::Stream(s) => std::mem::size_of::<Stream>() + s.heap_size(),
        }
    }

    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Str(s) => Value::Str(CompactBytes::new(s)),
            ValueRef::Raw(v) => Value::Raw(Box::new(v.clone())),
            ValueRef::List(l) => Value::List(Box::new(l.clone())),
            ValueRef::Hash(h) => Value::Hash(Box::new(h.clone())),
            ValueRef::Set(s) => Value::Set(Box::new(s.clone())),
            ValueRef::ZSet(z) => Value::ZSet(Box::new(z.clone())),
            ValueRef::Stream(s) => Value::Stream(Box::new(s.clone())),
        }
    }
}

/// An exclusively borrowed value: the boxed kinds, editable in place
/// (inline strings and integers are replaced with `Entry::set_value`).
pub enum ValueMut<'a> {
    String,
    Raw(&'a mut Vec<u8>),
    List(&'a mut List),
    Hash(&'a mut Hash),
    Set(&'a mut Set),
    ZSet(&'a mut ZSet),
    Stream(&'a mut Stream),
}

/// Redis's LFU_INIT_VAL: the counter a new key starts with.
pub const LFU_INIT_VAL: u8 = 5;

/// A coarse seconds clock for access times (refreshed every tick, not
/// read per access).
pub fn clock_secs() -> u32 {
    crate::lru_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ints_only() {
        assert_eq!(canonical_int(b"123"), Some(123));
        assert_eq!(canonical_int(b"-5"), Some(-5));
        assert_eq!(canonical_int(b"0"), Some(0));
        assert_eq!(canonical_int(b"-0"), None);
        assert_eq!(canonical_int(b"007"), None);
        assert_eq!(canonical_int(b"+1"), None);
        assert_eq!(canonical_int(b" 1"), None);
        assert_eq!(canonical_int(b"9223372036854775808"), None);
        assert_eq!(canonical_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(canonical_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(canonical_int(b"-9223372036854775809"), None);
        assert_eq!(canonical_int(b"99999999999999999999"), None);
        for bad in [&b""[..], b"-", b"1a", b"1.0", b"--1", b"-01", b"1 "] {
            assert_eq!(canonical_int(bad), None, "{bad:?}");
        }
        for n in [1i64, -1, 10, 1234567890, i64::MAX - 1, i64::MIN + 1] {
            assert_eq!(canonical_int(n.to_string().as_bytes()), Some(n));
        }
    }

    #[test]
    fn assign_bytes_reuses_a_same_length_string() {
        let mut v = Value::from_bytes(&[b'x'; 32]);
        let before = v.string_bytes().as_ptr();
        v.assign_bytes(&[b'y'; 32]);
        assert_eq!(v, Value::from_bytes(&[b'y'; 32]));
        assert_eq!(v.string_bytes().as_ptr(), before);
        v.assign_bytes(b"42");
        assert_eq!(v, Value::Int(42));
        v.assign_bytes(&[b'z'; 40]);
        assert_eq!(v, Value::from_bytes(&[b'z'; 40]));
        v.assign_bytes(b"short");
        assert_eq!(v, Value::from_bytes(b"short"));
    }

    #[test]
    fn raw_growth_is_amortised_and_keeps_bytes() {
        let mut v = Value::Int(12);
        let mut reallocs = 0;
        let mut cap = 0;
        for i in 0..10_000usize {
            let buf = v.raw_mut(2 + i + 1).unwrap();
            let last = buf.len() - 1;
            buf[last] = b'x';
            if buf.capacity() != cap {
                reallocs += 1;
                cap = buf.capacity();
            }
        }
        assert!(reallocs < 20, "{reallocs} reallocations");
        assert_eq!(&v.string_bytes()[..3], b"12x");
        assert_eq!(v.encoding(), "raw");
        assert!(Value::List(Box::default()).raw_mut(1).is_none());
    }

    #[test]
    fn value_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }
}
