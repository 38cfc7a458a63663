//! Clients blocked on keys (BLPOP and friends), per shard.
//!
//! Storage knows nothing of what a waiter wants: each is an opaque
//! `Arc<dyn Any>` with a unique token, queued FIFO per (db, key). The write
//! door marks a key with waiters "ready"; the command layer drains the ready
//! keys before it releases the shard locks and serves the waiters.

use damselfly_core::CompactBytes;
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub type WaiterRef = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub struct Waiters {
    queues: HashMap<(usize, CompactBytes), VecDeque<(u64, WaiterRef)>>,
    ready: Vec<(usize, CompactBytes)>,
}

impl Waiters {
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Queues waiter `token` on (db, key), behind the ones already there.
    pub fn add(&mut self, db: usize, key: &[u8], token: u64, w: WaiterRef) {
        self.queues
            .entry((db, CompactBytes::new(key)))
            .or_default()
            .push_back((token, w));
    }

    /// Removes waiter `token` from (db, key), if queued there.
    pub fn remove(&mut self, db: usize, key: &[u8], token: u64) {
        let k = (db, CompactBytes::new(key));
        if let Some(q) = self.queues.get_mut(&k) {
            q.retain(|(t, _)| *t != token);
            if q.is_empty() {
                self.queues.remove(&k);
            }
        }
    }

    /// The first waiter on (db, key).
    pub fn front(&self, db: usize, key: &[u8]) -> Option<(u64, WaiterRef)> {
        let q = self.queues.get(&(db, CompactBytes::new(key)))?;
        q.front().map(|(t, w)| (*t, w.clone()))
    }

    /// Every waiter on (db, key), in queue order.
    pub fn queue(&self, db: usize, key: &[u8]) -> Vec<(u64, WaiterRef)> {
        self.queues
            .get(&(db, CompactBytes::new(key)))
            .map(|q| q.iter().map(|(t, w)| (*t, w.clone())).collect())
            .unwrap_or_default()
    }

    /// Marks (db, key) ready if anyone waits on it.
    #[inline]
    pub fn mark(&mut self, db: usize, key: &[u8]) {
        if !self.queues.is_empty() {
            self.mark_queued(db, key);
        }
    }

    #[inline(never)]
    fn mark_queued(&mut self, db: usize, key: &[u8]) {
        let k = (db, CompactBytes::new(key));
        if self.queues.contains_key(&k) && !self.ready.contains(&k) {
            self.ready.push(k);
        }
    }

    /// Marks every waited-on key of `db` ready (SWAPDB).
    pub fn mark_db(&mut self, db: usize) {
        let keys: Vec<_> = self
            .queues
            .keys()
            .filter(|(d, _)| *d == db)
            .cloned()
            .collect();
        for k in keys {
            if !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub fn take_ready(&mut self) -> Vec<(usize, CompactBytes)> {
        std::mem::take(&mut self.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ready_and_cleanup() {
        let mut w = Waiters::default();
        w.mark(0, b"k");
        assert!(!w.has_ready());
        w.add(0, b"k", 1, Arc::new(1u8));
        w.add(0, b"k", 2, Arc::new(2u8));
        assert_eq!(w.front(0, b"k").map(|x| x.0), Some(1));
        let order: Vec<u64> = w.queue(0, b"k").iter().map(|x| x.0).collect();
        assert_eq!(order, vec![1, 2]);
        w.mark(0, b"k");
        w.mark(0, b"k");
        w.mark(1, b"k");
        assert_eq!(w.take_ready().len(), 1);
        w.remove(0, b"k", 1);
        assert_eq!(w.front(0, b"k").map(|x| x.0), Some(2));
        w.remove(0, b"k", 2);
        assert!(w.is_empty());
    }
}
