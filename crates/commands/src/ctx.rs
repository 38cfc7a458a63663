//! What a handler works with: the server, its client, the reply buffer and
//! the shards the dispatcher locked for it.

use crate::client::Client;
use crate::state::{Server, ThreadStats};
use damselfly_protocol::Reply;
use damselfly_storage::{Locked, Shard};

pub struct Ctx<'s, 'l> {
    pub server: &'s Server,
    /// The counters of the thread running the command (EXEC counts the
    /// commands it runs).
    pub stats: &'l ThreadStats,
    pub client: &'l mut Client,
    pub reply: &'l mut Reply,
    pub locked: Locked<'s>,
    /// The command's clock: frozen for its whole run, as Redis does, so one
    /// command sees one consistent set of expired keys.
    pub now: u64,
    /// Set by a blocking command that found nothing: the connection waits.
    /// (Boxed, as are `script` and `wait`: every command moves these
    /// three out when it ends, and a word each is cheap to move.)
    pub block: Option<Box<crate::list::Blocked>>,
    /// Set by EVAL and FCALL: the connection runs the script off its
    /// worker thread and waits for the reply.
    pub script: Option<Box<crate::scripting::Job>>,
    /// Set by WAIT: the connection waits for replicas' acknowledgements.
    pub wait: Option<Box<crate::repl_master::WaitAcks>>,
}

impl<'s, 'l> Ctx<'s, 'l> {
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// The locked shard that holds `key`. The dispatcher locked every key of
    /// the command from the table's key spec, so this cannot miss for a key
    /// argument; a miss is a table bug, caught in tests.
    pub fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let idx = self.shard_index(key);
        match self.locked.get(idx) {
            Some(s) => s,
            None => panic!("shard {idx} of key not locked: the command's key spec is wrong"),
        }
    }

    /// The shard of `key` together with the reply buffer, for handlers that
    /// reply straight from the stored value without copying it.
    pub fn shard_and_reply(&mut self, key: &[u8]) -> (&mut Shard, &mut Reply) {
        let idx = self.shard_index(key);
        match self.locked.get(idx) {
            Some(s) => (s, &mut *self.reply),
            None => panic!("shard {idx} of key not locked: the command's key spec is wrong"),
        }
    }

    /// Where `key` lives. With one shard held, every key of the command is
    /// there (the dispatcher locked the shards of all of them), so the key
    /// is not hashed a second time; debug builds check it.
    fn shard_index(&self, key: &[u8]) -> usize {
        match self.locked.single_index() {
            Some(i) => {
                debug_assert_eq!(
                    i,
                    self.server.keyspace.shard_of(key),
                    "key outside the command's key spec"
                );
                i
            }
            None => self.server.keyspace.shard_of(key),
        }
    }

    /// Runs `f` on each shard in turn. Shards already held are used as they
    /// are; others are locked one at a time, which is only done when the
    /// command holds no locks (so the ascending-order rule cannot break).
    /// For walks that change nothing a snapshot keeps (`Keyspace::peek`).
    pub fn each_shard<T>(&mut self, mut f: impl FnMut(&mut Shard) -> T) -> Vec<T> {
        let ks = &self.server.keyspace;
        let mut out = Vec::with_capacity(ks.shard_count());
        for i in 0..ks.shard_count() {
            if let Some(s) = self.locked.get(i) {
                out.push(f(s));
            } else {
                debug_assert!(self.locked.is_empty());
                out.push(f(&mut ks.peek(i)));
            }
        }
        out
    }

    /// Runs `f` on shard `i` (held or peeked at for the call).
    pub fn with_shard<T>(&mut self, i: usize, f: impl FnOnce(&mut Shard) -> T) -> T {
        if let Some(s) = self.locked.get(i) {
            return f(s);
        }
        debug_assert!(self.locked.is_empty());
        f(&mut self.server.keyspace.peek(i))
    }
}
