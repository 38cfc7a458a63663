//! Process-wide state shared by every connection, and per-thread counters.

use crate::client::Clients;
use crate::config::Config;
use damselfly_storage::Keyspace;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// What commands need from the process around them (the binary implements it).
pub trait Host: Send + Sync {
    /// Stops the server once the current reply is written.
    fn shutdown(&self);

    /// Writes one line to the server log (DEBUG LOG).
    fn log(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

/// A counter written by one thread only: relaxed load + store instead of an
/// atomic read-modify-write keeps the hot path free of locked instructions.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

#[derive(Default, Debug)]
pub struct CmdCounters {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected: Counter,
    pub failed: Counter,
    /// Latency histogram, allocated on the command's first call.
    pub hist: std::sync::OnceLock<crate::observe::Histogram>,
}

/// One worker thread's counters, summed when INFO asks.
#[derive(Debug)]
pub struct ThreadStats {
    pub commands: Box<[CmdCounters]>,
    pub total_commands: Counter,
    pub connections: Counter,
    pub net_input: Counter,
    pub net_output: Counter,
    pub errors: Mutex<HashMap<String, u64>>,
}

impl ThreadStats {
    fn new(n: usize) -> ThreadStats {
        ThreadStats {
            commands: (0..n).map(|_| CmdCounters::default()).collect(),
            total_commands: Counter::default(),
            connections: Counter::default(),
            net_input: Counter::default(),
            net_output: Counter::default(),
            errors: Mutex::new(HashMap::new()),
        }
    }

    fn reset(&self) {
        for c in self.commands.iter() {
            c.calls.reset();
            c.usec.reset();
            c.rejected.reset();
            c.failed.reset();
            if let Some(h) = c.hist.get() {
                h.reset();
            }
        }
        self.total_commands.reset();
        self.connections.reset();
        self.net_input.reset();
        self.net_output.reset();
        self.errors.lock().clear();
    }
}

pub struct Server {
    pub keyspace: Keyspace,
    pub config: Config,
    pub acl: crate::acl::Acl,
    pub clients: Clients,
    pub host: Box<dyn Host>,
    pub started: Instant,
    pub run_id: String,
    pub port: u16,
    pub threads: usize,
    pub executable: String,
    pub config_file: String,
    /// Rejected connections and other counters not tied to a thread.
    pub rejected_connections: AtomicU64,
    /// Clients closed by `maxmemory-clients`.
    pub evicted_clients: AtomicU64,
    pub lastsave: AtomicU64,
    /// Last (time, total commands) sample and the rate derived from it,
    /// for INFO's instantaneous_ops_per_sec.
    pub ops_sample: Mutex<(Instant, u64, u64)>,
    stats: Mutex<Vec<Arc<ThreadStats>>>,
    /// Clients blocked in BLPOP & co., by client id (INFO blocked_clients,
    /// CLIENT UNBLOCK).
    pub blocked: Mutex<HashMap<u64, Arc<crate::list::Waiter>>>,
    /// Pub/sub subscriptions and keyspace notifications (also the
    /// keyspace's event sink).
    pub pubsub: Arc<crate::pubsub::PubSub>,
    /// Client tracking (CLIENT TRACKING).
    pub tracking: Arc<crate::tracking::Tracking>,
    /// SLOWLOG and the latency monitor.
    pub observe: crate::observe::Observe,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    /// MONITOR connections.
    pub monitors: crate::monitor::Monitors,
    /// Snapshot state: SAVE/BGSAVE, loading, INFO persistence.
    pub persistence: crate::persist::Persistence,
    /// Lua scripts and functions.
    pub scripting: crate::scripting::Scripting,
    /// Replication: IDs, offsets, the command stream and its replicas.
    pub repl: Arc<damselfly_replication::Replication>,
    /// The link to our master while this server is a replica.
    pub replica: damselfly_replication::replica::Follower,
    /// Full syncs that more replicas may still share.
    pub full_syncs: crate::repl_master::FullSyncs,
}

thread_local! {
    static THREAD_STATS: std::cell::RefCell<Option<Arc<ThreadStats>>> = const { std::cell::RefCell::new(None) };
}

pub struct ServerOptions {
    pub shards: usize,
    pub dbnum: usize,
    pub port: u16,
    pub threads: usize,
    pub executable: String,
    pub config_file: String,
}

impl Server {
    pub fn new(opts: ServerOptions, host: Box<dyn Host>) -> Server {
        let run_id: String = (0..40)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        let keyspace = Keyspace::new(opts.shards, opts.dbnum);
        let pubsub = Arc::new(crate::pubsub::PubSub::default());
        let tracking = Arc::new(crate::tracking::Tracking::default());
        let repl = Arc::new(damselfly_replication::Replication::default());
        keyspace.set_events(Arc::new(crate::tracking::Sink {
            pubsub: pubsub.clone(),
            tracking: tracking.clone(),
            repl: repl.clone(),
        }));
        let config = Config::new();
        config.apply_to(&pubsub, &tracking);
        Server {
            keyspace,
            config,
            acl: crate::acl::Acl::new(),
            clients: Clients::default(),
            host,
            started: Instant::now(),
            run_id,
            port: opts.port,
            threads: opts.threads,
            executable: opts.executable,
            config_file: opts.config_file,
            rejected_connections: AtomicU64::new(0),
            evicted_clients: AtomicU64::new(0),
            lastsave: AtomicU64::new(damselfly_storage::now_ms() / 1000),
            ops_sample: Mutex::new((Instant::now(), 0, 0)),
            stats: Mutex::new(Vec::new()),
            blocked: Mutex::new(HashMap::new()),
            pubsub,
            tracking,
            observe: Default::default(),
            pause: Default::default(),
            monitors: Default::default(),
            persistence: Default::default(),
            scripting: Default::default(),
            repl,
            replica: Default::default(),
            full_syncs: Default::default(),
        }
    }

    /// This thread's counters (registered on first use).
    pub fn thread_stats(&self) -> Arc<ThreadStats> {
        THREAD_STATS.with(|s| {
            s.borrow_mut()
                .get_or_insert_with(|| {
                    let st = Arc::new(ThreadStats::new(crate::table::table().all.len()));
                    self.stats.lock().push(st.clone());
                    st
                })
                .clone()
        })
    }

    pub fn all_thread_stats(&self) -> Vec<Arc<ThreadStats>> {
        self.stats.lock().clone()
    }

    pub fn reset_stats(&self) {
        for s in self.stats.lock().iter() {
            s.reset();
        }
        for i in 0..self.keyspace.shard_count() {
            let mut sh = self.keyspace.lock_one(i);
            sh.stats.expired_keys = 0;
            sh.stats.evicted_keys = 0;
            sh.stats.keyspace_hits = 0;
            sh.stats.keyspace_misses = 0;
        }
        self.repl.reset_sync_counters();
        damselfly_storage::lazyfree::reset_stats();
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
