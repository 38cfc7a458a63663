//! Typed access to a key's value for the collection commands: the one place
//! that checks the type (WRONGTYPE), creates a missing collection, and
//! deletes a collection that became empty.

use crate::shard::Shard;
use crate::value::{Value, ValueMut, ValueRef};
use damselfly_core::{hash::Hash, list::List, set::Set, stream::Stream, zset::ZSet};

/// The key holds a value of another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// A collection type stored boxed in a `Value`.
pub trait Collection: Default {
    fn of(v: ValueRef<'_>) -> Option<&Self>;
    fn of_mut(v: ValueMut<'_>) -> Option<&mut Self>;
    fn boxed(self) -> Value;
    fn is_empty_collection(&self) -> bool;
}

macro_rules! collection {
    ($ty:ident, $variant:ident) => {
        impl Collection for $ty {
            fn of(v: ValueRef<'_>) -> Option<&Self> {
                match v {
                    ValueRef::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn of_mut(v: ValueMut<'_>) -> Option<&mut Self> {
                match v {
                    ValueMut::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn boxed(self) -> Value {
                Value::$variant(Box::new(self))
            }
            fn is_empty_collection(&self) -> bool {
                self.is_empty()
            }
        }
    };
}

collection!(List, List);
collection!(Hash, Hash);
collection!(Set, Set);
collection!(ZSet, ZSet);

/// A stream may exist with no entries (XADD MAXLEN 0, XGROUP CREATE
/// MKSTREAM, XDEL of the last entry): it is never deleted for being empty.
impl Collection for Stream {
    fn of(v: ValueRef<'_>) -> Option<&Self> {
        match v {
            ValueRef::Stream(c) => Some(c),
            _ => None,
        }
    }
    fn of_mut(v: ValueMut<'_>) -> Option<&mut Self> {
        match v {
            ValueMut::Stream(c) => Some(c),
            _ => None,
        }
    }
    fn boxed(self) -> Value {
        Value::Stream(Box::new(self))
    }
    fn is_empty_collection(&self) -> bool {
        false
    }
}

/// The collection at `key` for reading (counts a hit or miss).
pub fn read<'a, T: Collection>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a T>, WrongType> {
    match shard.get(db, key, now) {
        None => Ok(None),
        Some(e) => T::of(e.value()).map(Some).ok_or(WrongType),
    }
}

/// The collection at `key` for writing.
pub fn write<'a, T: Collection>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut T>, WrongType> {
    match shard.get_quiet(db, key, now) {
        None => Ok(None),
        Some(e) => T::of_mut(e.value_mut()).map(Some).ok_or(WrongType),
    }
}

/// The collection at `key`, created empty when absent.
pub fn write_or_create<'a, T: Collection>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<&'a mut T, WrongType> {
    if write::<T>(shard, db, key, now)?.is_none() {
        shard.put_value(db, key, T::default().boxed());
    }
    write::<T>(shard, db, key, now)?.ok_or(WrongType)
}

/// The collection at `key`, created with `make` when absent; true when
/// it was created.
pub fn write_or_make<'a, T: Collection>(
    shard: &'a mut Shard,
    db: usize,
    key: &[u8],
    now: u64,
    make: impl FnOnce() -> T,
) -> Result<(&'a mut T, bool), WrongType> {
    let created = write::<T>(shard, db, key, now)?.is_none();
    if created {
        shard.put_value(db, key, make().boxed());
    }
    let c = write::<T>(shard, db, key, now)?.ok_or(WrongType)?;
    Ok((c, created))
}

/// Deletes `key` when its collection became empty (a stored collection is
/// never empty).
pub fn drop_if_empty<T: Collection>(shard: &mut Shard, db: usize, key: &[u8], now: u64) {
    if matches!(write::<T>(shard, db, key, now), Ok(Some(c)) if c.is_empty_collection()) {
        shard.remove(db, key);
        shard.written(db, key, "del");
    }
}
