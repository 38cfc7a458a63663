//! Runtime configuration: the parameters CONFIG GET/SET know, their current
//! values, and typed copies of the ones read on hot paths.
//!
//! Only parameters the server acts on are listed (plus the few the README
//! names as stored-but-not-yet-acted-on); anything else is an unknown option,
//! as in Redis.

use crate::error::{CmdError, CmdResult};
use damselfly_core::glob::glob_match;
use damselfly_storage::evict::{configure_lfu, Policy};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    /// Bytes with optional unit, at least `min`.
    Memory {
        min: u64,
    },
    Bool,
    Str,
    /// Redis's `save` rule list.
    Save,
    /// Dragonfly's `snapshot_cron`: a crontab line, or empty for none.
    Cron,
    /// Set at start-up only.
    Immutable,
    /// Redis's protected configs (`enable-protected-configs no`): start-up only.
    Protected,
    /// `notify-keyspace-events` flag characters.
    Notify,
    /// `client-output-buffer-limit`: `class hard soft seconds` groups,
    /// merged into the current value.
    ObufLimit,
    /// One of a fixed list of words.
    Enum(&'static [&'static str]),
    /// Space-separated percentiles, each 0..=100.
    Percentiles,
    /// Bytes, or a percentage of maxmemory (`10%`).
    MemoryOrPercent,
    /// Dragonfly's booleans: `true` or `false`.
    Truth,
    /// A host name: letters, digits, `-` and `.`.
    Hostname,
    /// `oom-score-adj-values`: three integers, each -2000..=2000.
    OomValues,
    /// `proc-title-template`: text with `{variable}`s Redis knows.
    ProcTitle,
    /// `shutdown-on-sig*`: `default`, or any of save/nosave, now, force.
    ShutdownFlags,
    /// Bytes; a number too large for 64 bits saturates, as Redis's
    /// unsigned memory parameters do.
    MemorySaturating,
}

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    /// Why the server does not act on this parameter (empty when it does):
    /// it is stored for CONFIG GET/SET and REWRITE, and start-up warns when
    /// it is given a value other than its default.
    pub idle: &'static str,
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
        idle: "",
    }
}

/// A parameter stored but not acted on, and why.
const fn s(name: &'static str, kind: Kind, default: &'static str, idle: &'static str) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
        idle,
    }
}

/// A stored-only parameter with Redis's older alias (`slave-...`).
const fn sa(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
    idle: &'static str,
) -> Param {
    Param {
        name,
        alias: Some(alias),
        kind,
        default,
        idle,
    }
}

/// A parameter with a Redis 6 alias (the ziplist names of 7.0's listpack settings).
const fn pa(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: Some(alias),
        kind,
        default,
        idle: "",
    }
}

const ENTRIES: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

const SECONDS: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

/// A C int that may not be negative.
const NON_NEGATIVE_INT: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

pub const PARAMS: &[Param] = &[
    pa("busy-reply-threshold", "lua-time-limit", ENTRIES, "5000"),
    pa(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        ENTRIES,
        "512",
    ),
    pa(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        Kind::Memory { min: 0 },
        "64",
    ),
    pa(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        "-2",
    ),
    p(
        "list-compress-depth",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "0",
    ),
    p("set-max-intset-entries", ENTRIES, "512"),
    pa(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        ENTRIES,
        "128",
    ),
    pa(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        Kind::Memory { min: 0 },
        "64",
    ),
    p("stream-node-max-bytes", Kind::Memory { min: 0 }, "4096"),
    p("stream-node-max-entries", ENTRIES, "100"),
    p("port", Kind::Immutable, "6379"),
    p("bind", Kind::Immutable, "* -::*"),
    pa("databases", "dbnum", Kind::Immutable, "16"),
    p("dir", Kind::Protected, ""),
    p("dbfilename", Kind::Protected, "dump.rdb"),
    p(
        "hz",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "10",
    ),
    p(
        "proto-max-bulk-len",
        Kind::Memory { min: 1024 * 1024 },
        "536870912",
    ),
    p(
        "client-query-buffer-limit",
        Kind::Memory { min: 1024 * 1024 },
        "1073741824",
    ),
    p("save", Kind::Save, "3600 1 300 100 60 10000"),
    p("appendonly", Kind::Bool, "no"),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    p("snapshot_cron", Kind::Cron, ""),
    p(
        "rdb-key-save-delay",
        Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        "0",
    ),
    p(
        "slowlog-log-slower-than",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        "10000",
    ),
    p(
        "slowlog-max-len",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "128",
    ),
    p("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    p("notify-keyspace-events", Kind::Notify, ""),
    p("tracking-table-max-keys", ENTRIES, "1000000"),
    p(
        "client-output-buffer-limit",
        Kind::ObufLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    p("hll-sparse-max-bytes", Kind::Memory { min: 0 }, "3000"),
    p(
        "latency-monitor-threshold",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "0",
    ),
    p("latency-tracking", Kind::Bool, "yes"),
    p(
        "latency-tracking-info-percentiles",
        Kind::Percentiles,
        "50 99 99.9",
    ),
    p("maxmemory", Kind::MemorySaturating, "0"),
    p(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    p(
        "maxmemory-samples",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        "5",
    ),
    p(
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
        "10",
    ),
    p("maxmemory-clients", Kind::MemoryOrPercent, "0"),
    p("lfu-log-factor", NON_NEGATIVE_INT, "10"),
    p("lfu-decay-time", NON_NEGATIVE_INT, "1"),
    p(
        "maxclients",
        Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        "10000",
    ),
    // Set by the start-up flags (src/config.rs); the README says which of
    // them are not acted on yet.
    p("requirepass", Kind::Str, ""),
    p("masterauth", Kind::Str, ""),
    p("masteruser", Kind::Str, ""),
    pa("replicaof", "slaveof", Kind::Str, ""),
    // Replication, master side (crates/replication).
    p("repl-backlog-size", Kind::Memory { min: 1 }, "1048576"),
    p("repl-diskless-sync", Kind::Bool, "yes"),
    p("repl-diskless-sync-delay", NON_NEGATIVE_INT, "5"),
    p(
        "repl-backlog-ttl",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "3600",
    ),
    pa(
        "repl-ping-replica-period",
        "repl-ping-slave-period",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        "10",
    ),
    pa(
        "min-replicas-to-write",
        "min-slaves-to-write",
        NON_NEGATIVE_INT,
        "0",
    ),
    pa(
        "min-replicas-max-lag",
        "min-slaves-max-lag",
        NON_NEGATIVE_INT,
        "10",
    ),
    // Replication, replica side (commands/src/replicaof.rs).
    pa("replica-read-only", "slave-read-only", Kind::Bool, "yes"),
    pa(
        "replica-serve-stale-data",
        "slave-serve-stale-data",
        Kind::Bool,
        "yes",
    ),
    pa(
        "replica-priority",
        "slave-priority",
        NON_NEGATIVE_INT,
        "100",
    ),
    p("replica-announced", Kind::Bool, "yes"),
    pa(
        "replica-ignore-maxmemory",
        "slave-ignore-maxmemory",
        Kind::Bool,
        "yes",
    ),
    p(
        "repl-timeout",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        "60",
    ),
    p("timeout", SECONDS, "0"),
    p("tcp-keepalive", SECONDS, "300"),
    p("protected-mode", Kind::Bool, "yes"),
    p("aclfile", Kind::Immutable, ""),
    p("acllog-max-len", ENTRIES, "128"),
    p(
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    p("unixsocket", Kind::Immutable, ""),
    p("tls-port", Kind::Immutable, "0"),
    p("tls-cert-file", Kind::Immutable, ""),
    p("tls-key-file", Kind::Immutable, ""),
    p("tls-ca-cert-file", Kind::Immutable, ""),
    p("df_snapshot_format", Kind::Truth, "true"),
    p("cache_mode", Kind::Truth, "false"),
    p("keys_output_limit", ENTRIES, "8192"),
    p("proactor_threads", Kind::Immutable, "0"),
    p("admin_port", Kind::Immutable, "0"),
    p("admin_bind", Kind::Immutable, ""),
    p("admin_nopass", Kind::Immutable, "false"),
    p("tls", Kind::Immutable, "false"),
    p("primary_port_http_enabled", Kind::Immutable, "true"),
    p("memcached_port", Kind::Immutable, "0"),
    p("cluster_mode", Kind::Immutable, ""),
    p("logtostderr", Kind::Immutable, "false"),
    // Redis's other parameters, stored so that tools and config files that
    // set them keep working; `idle` says why each is not acted on.
    p(
        "key-load-delay",
        Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        "0",
    ),
    s(
        "active-defrag-cycle-max",
        Kind::Int { min: 1, max: 99 },
        "25",
        DEFRAG,
    ),
    s(
        "active-defrag-cycle-min",
        Kind::Int { min: 1, max: 99 },
        "1",
        DEFRAG,
    ),
    s(
        "active-defrag-ignore-bytes",
        Kind::Memory { min: 1 },
        "104857600",
        DEFRAG,
    ),
    s(
        "active-defrag-max-scan-fields",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        "1000",
        DEFRAG,
    ),
    s(
        "active-defrag-threshold-lower",
        Kind::Int { min: 0, max: 1000 },
        "10",
        DEFRAG,
    ),
    s(
        "active-defrag-threshold-upper",
        Kind::Int { min: 0, max: 1000 },
        "100",
        DEFRAG,
    ),
    s("activedefrag", Kind::Bool, "no", DEFRAG),
    s("activerehashing", Kind::Bool, "yes", REHASH),
    s("always-show-logo", Kind::Immutable, "no", LOGGING),
    s("aof-disable-auto-gc", Kind::Bool, "no", AOF),
    s("aof-load-truncated", Kind::Bool, "yes", AOF),
    s("aof-rewrite-incremental-fsync", Kind::Bool, "yes", AOF),
    s("aof-timestamp-enabled", Kind::Bool, "no", AOF),
    s("aof-use-rdb-preamble", Kind::Bool, "yes", AOF),
    s("aof_rewrite_cpulist", Kind::Immutable, "", AOF),
    s("appenddirname", Kind::Immutable, "appendonlydir", AOF),
    s("appendfilename", Kind::Immutable, "appendonly.aof", AOF),
    s(
        "appendfsync",
        Kind::Enum(&["everysec", "always", "no"]),
        "everysec",
        AOF,
    ),
    s(
        "auto-aof-rewrite-min-size",
        Kind::Memory { min: 0 },
        "67108864",
        AOF,
    ),
    s(
        "auto-aof-rewrite-percentage",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "100",
        AOF,
    ),
    s("bgsave_cpulist", Kind::Immutable, "", PROCESS),
    s("bind-source-addr", Kind::Str, "", PROCESS),
    s("bio_cpulist", Kind::Immutable, "", PROCESS),
    s(
        "cluster-allow-pubsubshard-when-down",
        Kind::Bool,
        "yes",
        CLUSTER,
    ),
    s("cluster-allow-reads-when-down", Kind::Bool, "no", CLUSTER),
    s(
        "cluster-allow-replica-migration",
        Kind::Bool,
        "yes",
        CLUSTER,
    ),
    s(
        "cluster-announce-bus-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        CLUSTER,
    ),
    s("cluster-announce-hostname", Kind::Hostname, "", CLUSTER),
    s("cluster-announce-ip", Kind::Str, "", CLUSTER),
    s(
        "cluster-announce-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        CLUSTER,
    ),
    s(
        "cluster-announce-tls-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        CLUSTER,
    ),
    s(
        "cluster-config-file",
        Kind::Immutable,
        "nodes.conf",
        CLUSTER,
    ),
    s("cluster-enabled", Kind::Immutable, "no", CLUSTER),
    s(
        "cluster-link-sendbuf-limit",
        Kind::MemorySaturating,
        "0",
        CLUSTER,
    ),
    s(
        "cluster-migration-barrier",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "1",
        CLUSTER,
    ),
    s(
        "cluster-node-timeout",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "15000",
        CLUSTER,
    ),
    s("cluster-port", Kind::Immutable, "0", CLUSTER),
    s(
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
        CLUSTER,
    ),
    sa(
        "cluster-replica-no-failover",
        "cluster-slave-no-failover",
        Kind::Bool,
        "no",
        CLUSTER,
    ),
    sa(
        "cluster-replica-validity-factor",
        "cluster-slave-validity-factor",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "10",
        CLUSTER,
    ),
    s("cluster-require-full-coverage", Kind::Bool, "yes", CLUSTER),
    s("crash-log-enabled", Kind::Bool, "yes", LOGGING),
    s("crash-memcheck-enabled", Kind::Bool, "yes", LOGGING),
    s("daemonize", Kind::Immutable, "no", PROCESS),
    p("disable-thp", Kind::Immutable, "yes"),
    s(
        "dynamic-hz",
        Kind::Bool,
        "yes",
        "hz stays what it is set to",
    ),
    s(
        "enable-debug-command",
        Kind::Immutable,
        "no",
        "DEBUG is always allowed",
    ),
    s(
        "enable-module-command",
        Kind::Immutable,
        "no",
        "there are no modules",
    ),
    s("enable-protected-configs", Kind::Immutable, "no", ""),
    s("ignore-warnings", Kind::Str, "", LOGGING),
    s("io-threads", Kind::Immutable, "1", PROCESS),
    s("io-threads-do-reads", Kind::Immutable, "no", PROCESS),
    s("jemalloc-bg-thread", Kind::Bool, "yes", PROCESS),
    s("lazyfree-lazy-eviction", Kind::Bool, "no", LAZYFREE),
    s("lazyfree-lazy-expire", Kind::Bool, "no", LAZYFREE),
    s("lazyfree-lazy-server-del", Kind::Bool, "no", LAZYFREE),
    p("lazyfree-lazy-user-del", Kind::Bool, "no"),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    s("logfile", Kind::Immutable, "", LOGGING),
    s(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        "notice",
        LOGGING,
    ),
    s("no-appendfsync-on-rewrite", Kind::Bool, "no", AOF),
    s(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
        PROCESS,
    ),
    s(
        "oom-score-adj-values",
        Kind::OomValues,
        "0 200 800",
        PROCESS,
    ),
    s("pidfile", Kind::Immutable, "", PROCESS),
    s(
        "proc-title-template",
        Kind::ProcTitle,
        "{title} {listen-addr} {server-mode}",
        PROCESS,
    ),
    s(
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
        REPL,
    ),
    s("rdb-del-sync-files", Kind::Bool, "no", REPL),
    s(
        "rdb-save-incremental-fsync",
        Kind::Bool,
        "yes",
        "a snapshot is fsynced once, when complete",
    ),
    s(
        "rdbchecksum",
        Kind::Immutable,
        "yes",
        "snapshots always carry a CRC-64",
    ),
    s(
        "rdbcompression",
        Kind::Bool,
        "yes",
        "snapshots always LZF-compress long strings",
    ),
    s("repl-disable-tcp-nodelay", Kind::Bool, "no", REPL),
    s(
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
        REPL,
    ),
    p(
        "repl-diskless-sync-max-replicas",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "0",
    ),
    sa(
        "replica-announce-ip",
        "slave-announce-ip",
        Kind::Str,
        "",
        REPL,
    ),
    sa(
        "replica-announce-port",
        "slave-announce-port",
        Kind::Int { min: 0, max: 65535 },
        "0",
        REPL,
    ),
    s("replica-ignore-disk-write-errors", Kind::Bool, "no", REPL),
    sa(
        "replica-lazy-flush",
        "slave-lazy-flush",
        Kind::Bool,
        "no",
        REPL,
    ),
    s(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
        "RESTORE and the loader always check every payload in full",
    ),
    s("server_cpulist", Kind::Immutable, "", PROCESS),
    s("set-proc-title", Kind::Immutable, "yes", PROCESS),
    s(
        "shutdown-on-sigint",
        Kind::ShutdownFlags,
        "default",
        SHUTDOWN,
    ),
    s(
        "shutdown-on-sigterm",
        Kind::ShutdownFlags,
        "default",
        SHUTDOWN,
    ),
    s(
        "shutdown-timeout",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "10",
        REPL,
    ),
    s("socket-mark-id", Kind::Immutable, "0", PROCESS),
    s("supervised", Kind::Immutable, "no", PROCESS),
    s("syslog-enabled", Kind::Immutable, "no", LOGGING),
    s("syslog-facility", Kind::Immutable, "local0", LOGGING),
    s("syslog-ident", Kind::Immutable, "redis", LOGGING),
    s("tcp-backlog", Kind::Immutable, "511", PROCESS),
    s(
        "tls-auth-clients",
        Kind::Enum(&["no", "yes", "optional"]),
        "yes",
        TLS,
    ),
    s("tls-ca-cert-dir", Kind::Str, "", TLS),
    s("tls-ciphers", Kind::Str, "", TLS),
    s("tls-ciphersuites", Kind::Str, "", TLS),
    s("tls-client-cert-file", Kind::Str, "", TLS),
    s("tls-client-key-file", Kind::Str, "", TLS),
    s("tls-client-key-file-pass", Kind::Str, "", TLS),
    s("tls-cluster", Kind::Bool, "no", TLS),
    s("tls-dh-params-file", Kind::Str, "", TLS),
    s("tls-key-file-pass", Kind::Str, "", TLS),
    s("tls-prefer-server-ciphers", Kind::Bool, "no", TLS),
    s("tls-protocols", Kind::Str, "", TLS),
    s("tls-replication", Kind::Bool, "no", TLS),
    s(
        "tls-session-cache-size",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "20480",
        TLS,
    ),
    s(
        "tls-session-cache-timeout",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "300",
        TLS,
    ),
    s("tls-session-caching", Kind::Bool, "yes", TLS),
    s("unixsocketperm", Kind::Immutable, "0", ""),
];

const AOF: &str = "there is no append-only file";
const CLUSTER: &str = "cluster mode is not supported";
const REPL: &str = "Damselfly's replication does not use it";
const TLS: &str = "rustls runs with its own protocol versions and cipher suites";
const LAZYFREE: &str =
    "expired, evicted and overwritten values are freed by the command that removes them";
const DEFRAG: &str = "there is no active defragmentation";
const LOGGING: &str = "the log always goes to stdout (or stderr) at one level";
const PROCESS: &str = "Redis's process management (daemon, pid file, process title, CPU lists, I/O threads, OOM score) is not done";
const REHASH: &str =
    "a resizing table moves its buckets on writes to it only; there is no cron rehashing";
const SHUTDOWN: &str = "signals always shut down as SHUTDOWN without arguments does";

/// Parameters Redis answers only when named exactly, never for a pattern.
const HIDDEN: &[&str] = &["rdb-key-save-delay", "key-load-delay"];

/// Dragonfly's own start-up parameters (and `dbnum`, its name for
/// `databases`): CONFIG GET answers them by name or by a pattern with `_`,
/// not by `*`, which lists what Redis lists.
const DRAGONFLY_ONLY: &[&str] = &[
    "dbnum",
    "snapshot_cron",
    "df_snapshot_format",
    "cache_mode",
    "keys_output_limit",
    "proactor_threads",
    "admin_port",
    "admin_bind",
    "admin_nopass",
    "tls",
    "primary_port_http_enabled",
    "memcached_port",
    "cluster_mode",
    "logtostderr",
];

/// The thresholds that decide when a small collection leaves its packed
/// encoding, read on every collection write.
#[derive(Debug, Default)]
pub struct Encodings {
    pub hash_max_listpack_entries: AtomicI64,
    pub hash_max_listpack_value: AtomicI64,
    pub list_max_listpack_size: AtomicI64,
    pub list_compress_depth: AtomicI64,
    pub set_max_intset_entries: AtomicI64,
    pub zset_max_listpack_entries: AtomicI64,
    pub zset_max_listpack_value: AtomicI64,
    pub stream_node_max_bytes: AtomicI64,
    pub stream_node_max_entries: AtomicI64,
}

pub struct Config {
    values: RwLock<Vec<String>>,
    pub encodings: Encodings,
    pub hz: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub query_buffer_limit: AtomicU64,
    /// `maxmemory` in bytes, 0 for no limit; read before every command.
    pub maxmemory: AtomicU64,
    pub maxmemory_policy: RwLock<Policy>,
    pub maxmemory_samples: AtomicU64,
    /// `maxmemory-eviction-tenacity`, read at every eviction.
    pub maxmemory_eviction_tenacity: AtomicU64,
    pub observe: crate::observe::Settings,
    pub hll_sparse_max_bytes: AtomicU64,
    /// `min-replicas-to-write` and `min-replicas-max-lag`, read before
    /// every write.
    pub min_replicas_to_write: AtomicU64,
    pub min_replicas_max_lag: AtomicU64,
    /// `maxclients` and `timeout` (seconds, 0: never), read per connection.
    pub maxclients: AtomicU64,
    pub idle_timeout: AtomicU64,
    /// `maxmemory-clients`: bytes, or a percentage of `maxmemory` (0: the
    /// other form is in force).
    pub clients_limit_bytes: AtomicU64,
    pub clients_limit_pct: AtomicU64,
}

/// Parses a memory amount: bytes, or a number with k/kb/m/mb/g/gb (any case;
/// k = 1000, kb = 1024).
pub fn parse_memory(s: &str) -> Option<u64> {
    parse_memory_checked(s).ok()
}

/// Redis's memtoull: digits then an optional unit. `Err(true)` when the
/// number does not fit (reported as out of bounds, as Redis does).
fn parse_memory_checked(s: &str) -> Result<u64, bool> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: u128 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(false),
    };
    // Redis's strtoull reads no digits as 0.
    if num.is_empty() {
        return Ok(0);
    }
    let n: u128 = num.parse().map_err(|_| true)?;
    let v = n.checked_mul(mul).ok_or(true)?;
    u64::try_from(v).map_err(|_| true)
}

fn validate(param: &Param, value: &str) -> Result<String, String> {
    match param.kind {
        Kind::Int { min, max } => {
            let v = crate::args::parse_i64(value.as_bytes())
                .ok_or("argument couldn't be parsed into an integer")?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            // Redis clamps hz to its maximum rather than refusing it.
            let v = if param.name == "hz" { v.min(500) } else { v };
            Ok(v.to_string())
        }
        Kind::Memory { min } => {
            let bounds = || format!("argument must be between {min} and {} inclusive", i64::MAX);
            match parse_memory_checked(value) {
                Ok(v) if v < min || v > i64::MAX as u64 => Err(bounds()),
                Ok(v) => Ok(v.to_string()),
                Err(true) => Err(bounds()),
                Err(false) => Err("argument must be a memory value".into()),
            }
        }
        // There is no defragmenter to switch on (Redis's words when it was
        // built without one).
        Kind::Bool if param.name == "activedefrag" && value.eq_ignore_ascii_case("yes") => Err(
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution"
                .into(),
        ),
        // TLS between cluster nodes or to replicas has nothing to run on.
        Kind::Bool
            if matches!(param.name, "tls-cluster" | "tls-replication")
                && value.eq_ignore_ascii_case("yes") =>
        {
            Err("Unable to update TLS configuration. Check server logs.".into())
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Str => Ok(value.to_string()),
        Kind::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(value))
            // `relative` is the same setting as `yes`, which Redis shows.
            .map(|w| if *w == "relative" { "yes" } else { w }.to_string())
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                )
            }),
        Kind::MemoryOrPercent => match value.strip_suffix('%') {
            Some(n) => match n.parse::<u64>() {
                Ok(p) if p <= 100 => Ok(format!("{p}%")),
                Ok(_) => Err("percentage argument must be less or equal to 100".into()),
                Err(_) => Err("argument must be a memory or percent value".into()),
            },
            // Redis keeps a percentage as a negative number, so a byte
            // count past i64::MAX (saturated at u64::MAX) reads back as one.
            None => match parse_memory_checked(value) {
                Ok(v) if v <= i64::MAX as u64 => Ok(v.to_string()),
                Ok(v) => Ok(format!("{}%", (v as i64).unsigned_abs())),
                Err(true) => Ok("1%".into()),
                Err(false) => Err("argument must be a memory or percent value".into()),
            },
        },
        Kind::Percentiles => {
            let mut out = Vec::new();
            for w in value.split_whitespace() {
                match w.parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => out.push(p.to_string()),
                    Err(_) => return Err("Invalid latency-tracking-info-percentiles parameters".into()),
                    _ => {
                        return Err(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                                .into(),
                        )
                    }
                }
            }
            Ok(out.join(" "))
        }
        Kind::Truth => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok("true".into()),
            "false" | "no" | "0" => Ok("false".into()),
            _ => Err("argument must be 'true' or 'false'".into()),
        },
        Kind::Save => {
            if value.is_empty() {
                return Ok(String::new());
            }
            let words: Vec<&str> = value.split(' ').collect();
            let ok = words.len() & 1 == 0
                && words
                    .iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err("Invalid save parameters".into());
            }
            Ok(words
                .iter()
                .map(|w| w.parse::<u64>().unwrap_or(0).to_string())
                .collect::<Vec<_>>()
                .join(" "))
        }
        Kind::Notify => crate::pubsub::parse_notify(value).map(crate::pubsub::class::render),
        Kind::ObufLimit => merge_obuf(param.default, value),
        Kind::Cron => {
            if value.trim().is_empty() || crate::persist::Cron::parse(value).is_some() {
                Ok(value.to_string())
            } else {
                Err("Invalid cron expression".into())
            }
        }
        Kind::Hostname => {
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                Ok(value.to_string())
            } else {
                Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into())
            }
        }
        Kind::OomValues => {
            let words: Vec<&str> = value.split(' ').collect();
            if words.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::new();
            for w in words {
                match crate::args::parse_i64(w.as_bytes()) {
                    Some(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
                    _ => {
                        return Err(
                            "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                                .into(),
                        )
                    }
                }
            }
            Ok(out.join(" "))
        }
        Kind::ProcTitle => {
            if proc_title_valid(value) {
                Ok(value.to_string())
            } else {
                Err("template format is invalid or contains unknown variables".into())
            }
        }
        Kind::ShutdownFlags => shutdown_flags(value),
        Kind::MemorySaturating => match parse_memory_checked(value) {
            Ok(v) => Ok(v.to_string()),
            Err(true) => Ok(u64::MAX.to_string()),
            Err(false) => Err("argument must be a memory value".into()),
        },
        Kind::Immutable => Err("can't set immutable config".into()),
        Kind::Protected => Err("can't set protected config".into()),
    }
}

/// `dir` and `dbfilename` with `enable-protected-configs` on: `dir` must
/// be a directory (kept absolute, as Redis shows its working directory),
/// `dbfilename` a plain file name.
fn protected_value(name: &str, value: &str) -> Result<String, String> {
    match name {
        "dir" => {
            let path = std::fs::canonicalize(value).map_err(|e| os_error_text(&e))?;
            if !path.is_dir() {
                return Err("Not a directory".into());
            }
            Ok(path.display().to_string())
        }
        _ if value.contains('/') => Err("dbfilename can't be a path, just a filename".into()),
        _ => Ok(value.to_string()),
    }
}

/// An OS error as C's strerror words it (`No such file or directory`),
/// without Rust's ` (os error N)` suffix.
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Redis's check of a process title template: every `{...}` names a known
/// variable, and the title it gives (with an empty `{title}`, and the
/// variables that may be empty taken as empty) is not blank.
fn proc_title_valid(template: &str) -> bool {
    let mut shown = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        shown.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        match &rest[open + 1..open + close] {
            "title" | "server-mode" | "unixsocket" | "config-file" => {}
            "listen-addr" | "port" | "tls-port" => shown.push('0'),
            _ => return false,
        }
        rest = &rest[open + close + 1..];
    }
    shown.push_str(rest);
    !shown.trim_matches(' ').is_empty()
}

/// `shutdown-on-sigint`/`-sigterm`: any of `save`/`nosave`, `now`, `force`
/// (or `default`, which adds nothing), shown in that order.
fn shutdown_flags(value: &str) -> Result<String, String> {
    const WORDS: [&str; 5] = ["default", "save", "nosave", "now", "force"];
    let unknown = || {
        format!(
            "argument(s) must be one of the following: {}",
            WORDS.join(", ")
        )
    };
    if value.trim().is_empty() {
        return Err(unknown());
    }
    let mut set = [false; 5];
    for w in value.split_whitespace() {
        let i = WORDS
            .iter()
            .position(|n| n.eq_ignore_ascii_case(w))
            .ok_or_else(unknown)?;
        set[i] = true;
    }
    if set[1] && set[2] {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    let shown: Vec<&str> = (1..5).filter(|&i| set[i]).map(|i| WORDS[i]).collect();
    Ok(if shown.is_empty() {
        "default".into()
    } else {
        shown.join(" ")
    })
}

/// Start-up warnings for the stored-only parameters among `given` that
/// hold a value other than their default.
pub fn idle_warnings<'a>(cfg: &Config, given: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for name in given {
        let Some(i) = Config::index(name) else {
            continue;
        };
        let p = &PARAMS[i];
        let value = &cfg.values.read()[i];
        let w = format!(
            "'{} {value}' is stored but not acted on: {}",
            p.name, p.idle
        );
        if !p.idle.is_empty() && value != p.default && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// Applies `value`'s `class hard soft seconds` groups to `current` and
/// returns the canonical whole (every class, bytes).
fn merge_obuf(current: &str, value: &str) -> Result<String, String> {
    let mut classes: Vec<(String, [u64; 3])> = current
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| {
            let n = |i: usize| c.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            (c[0].to_string(), [n(1), n(2), n(3)])
        })
        .collect();
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() % 4 != 0 {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut staged = Vec::new();
    for g in words.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(g[1]).ok_or_else(bad)?;
        let soft = parse_memory(g[2]).ok_or_else(bad)?;
        let secs = crate::args::parse_i64(g[3].as_bytes())
            .filter(|s| *s >= 0)
            .ok_or_else(bad)? as u64;
        staged.push((class, [hard, soft, secs]));
    }
    for (class, v) in staged {
        if let Some(c) = classes.iter_mut().find(|(n, _)| n == class) {
            c.1 = v;
        }
    }
    Ok(classes
        .iter()
        .map(|(n, [h, s, t])| format!("{n} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    pub fn new() -> Config {
        Config {
            values: RwLock::new(PARAMS.iter().map(|p| p.default.to_string()).collect()),
            encodings: Encodings {
                hash_max_listpack_entries: AtomicI64::new(512),
                hash_max_listpack_value: AtomicI64::new(64),
                list_max_listpack_size: AtomicI64::new(-2),
                list_compress_depth: AtomicI64::new(0),
                set_max_intset_entries: AtomicI64::new(512),
                zset_max_listpack_entries: AtomicI64::new(128),
                zset_max_listpack_value: AtomicI64::new(64),
                stream_node_max_bytes: AtomicI64::new(4096),
                stream_node_max_entries: AtomicI64::new(100),
            },
            hz: AtomicU64::new(10),
            proto_max_bulk_len: AtomicU64::new(512 * 1024 * 1024),
            query_buffer_limit: AtomicU64::new(1024 * 1024 * 1024),
            maxmemory: AtomicU64::new(0),
            maxmemory_policy: RwLock::new(Policy::NoEviction),
            maxmemory_samples: AtomicU64::new(5),
            maxmemory_eviction_tenacity: AtomicU64::new(10),
            observe: Default::default(),
            hll_sparse_max_bytes: AtomicU64::new(3000),
            min_replicas_to_write: AtomicU64::new(0),
            min_replicas_max_lag: AtomicU64::new(10),
            maxclients: AtomicU64::new(10000),
            idle_timeout: AtomicU64::new(0),
            clients_limit_bytes: AtomicU64::new(0),
            clients_limit_pct: AtomicU64::new(0),
        }
    }

    /// A parameter by name or alias; `-` and `_` are one character, so
    /// Dragonfly's spelling finds Redis's parameter (`tcp_keepalive`) and
    /// the reverse (`cache-mode`).
    fn index(name: &str) -> Option<usize> {
        let same = |a: &str| {
            a.len() == name.len()
                && a.bytes().zip(name.bytes()).all(|(x, y)| {
                    let norm = |c: u8| {
                        if c == b'_' {
                            b'-'
                        } else {
                            c.to_ascii_lowercase()
                        }
                    };
                    norm(x) == norm(y)
                })
        };
        PARAMS
            .iter()
            .position(|p| same(p.name) || p.alias.is_some_and(same))
    }

    /// Hands the values pub/sub reads on every message to it.
    pub fn apply_to(&self, ps: &crate::pubsub::PubSub, tr: &crate::tracking::Tracking) {
        use std::sync::atomic::Ordering::Relaxed;
        let get = |n| self.get(n).unwrap_or_default();
        tr.max_keys
            .store(get("tracking-table-max-keys").parse().unwrap_or(0), Relaxed);
        ps.notify.store(
            crate::pubsub::class::parse(&get("notify-keyspace-events")).unwrap_or(0),
            Relaxed,
        );
        let obuf = get("client-output-buffer-limit");
        let words: Vec<&str> = obuf.split_whitespace().collect();
        for g in words.chunks(4) {
            let n = |i: usize| g.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit = crate::pubsub::Limit {
                hard: n(1),
                soft: n(2),
                soft_secs: n(3),
            };
            match g[0] {
                "normal" => ps.limit_normal.set(limit),
                "pubsub" => ps.limit_pubsub.set(limit),
                "slave" => ps.limit_replica.set(limit),
                _ => {}
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        Some(self.values.read()[Self::index(name)?].clone())
    }

    /// Sets a value at start-up (immutable parameters included).
    pub fn set_initial(&self, name: &str, value: &str) -> Result<(), String> {
        let i = Self::index(name).ok_or_else(|| format!("unknown parameter {name}"))?;
        let v = match PARAMS[i].kind {
            Kind::Immutable | Kind::Protected => value.to_string(),
            _ => validate(&PARAMS[i], value).map_err(|e| format!("{name}: {e}"))?,
        };
        self.store(i, v);
        Ok(())
    }

    fn store(&self, i: usize, v: String) {
        match PARAMS[i].name {
            "hz" => self.hz.store(v.parse().unwrap_or(10), Relaxed),
            "proto-max-bulk-len" => self
                .proto_max_bulk_len
                .store(v.parse().unwrap_or(0), Relaxed),
            "client-query-buffer-limit" => self
                .query_buffer_limit
                .store(v.parse().unwrap_or(0), Relaxed),
            "maxmemory" => self.maxmemory.store(v.parse().unwrap_or(0), Relaxed),
            "min-replicas-to-write" => self
                .min_replicas_to_write
                .store(v.parse().unwrap_or(0), Relaxed),
            "min-replicas-max-lag" => self
                .min_replicas_max_lag
                .store(v.parse().unwrap_or(10), Relaxed),
            "slowlog-log-slower-than" => {
                let v = v.parse().unwrap_or(10_000);
                self.observe.slower_than.store(v, Relaxed)
            }
            "slowlog-max-len" => {
                let v = v.parse().unwrap_or(128);
                self.observe.slowlog_max_len.store(v, Relaxed)
            }
            "latency-monitor-threshold" => {
                let v = v.parse().unwrap_or(0);
                self.observe.latency_threshold.store(v, Relaxed)
            }
            "latency-tracking" => self.observe.tracking.store(v == "yes", Relaxed),
            "maxmemory-samples" => self
                .maxmemory_samples
                .store(v.parse().unwrap_or(5), Relaxed),
            "maxmemory-eviction-tenacity" => self
                .maxmemory_eviction_tenacity
                .store(v.parse().unwrap_or(10), Relaxed),
            "maxmemory-policy" | "lfu-log-factor" | "lfu-decay-time" | "cache_mode" => {
                self.values.write()[i] = v;
                self.apply_eviction_settings();
                return;
            }
            "hll-sparse-max-bytes" => self
                .hll_sparse_max_bytes
                .store(v.parse().unwrap_or(0), Relaxed),
            "maxclients" => self.maxclients.store(v.parse().unwrap_or(10000), Relaxed),
            "timeout" => self.idle_timeout.store(v.parse().unwrap_or(0), Relaxed),
            "maxmemory-clients" => {
                let (bytes, pct) = match v.strip_suffix('%') {
                    Some(p) => (0, p.parse().unwrap_or(0)),
                    None => (v.parse().unwrap_or(0), 0),
                };
                self.clients_limit_bytes.store(bytes, Relaxed);
                self.clients_limit_pct.store(pct, Relaxed);
            }
            name => {
                let e = &self.encodings;
                let slot = match name {
                    "hash-max-listpack-entries" => Some(&e.hash_max_listpack_entries),
                    "hash-max-listpack-value" => Some(&e.hash_max_listpack_value),
                    "list-max-listpack-size" => Some(&e.list_max_listpack_size),
                    "list-compress-depth" => Some(&e.list_compress_depth),
                    "set-max-intset-entries" => Some(&e.set_max_intset_entries),
                    "zset-max-listpack-entries" => Some(&e.zset_max_listpack_entries),
                    "zset-max-listpack-value" => Some(&e.zset_max_listpack_value),
                    "stream-node-max-bytes" => Some(&e.stream_node_max_bytes),
                    "stream-node-max-entries" => Some(&e.stream_node_max_entries),
                    _ => None,
                };
                if let (Some(slot), Ok(n)) = (slot, v.parse()) {
                    slot.store(n, Relaxed);
                }
            }
        }
        self.values.write()[i] = v;
    }

    /// Hands the policy and LFU settings to the storage layer.
    fn apply_eviction_settings(&self) {
        // Dragonfly's cache_mode: evict like a cache whatever the policy says.
        let policy = if self.get("cache_mode").as_deref() == Some("true") {
            Some(Policy::AllKeysLru)
        } else {
            self.get("maxmemory-policy").and_then(|p| Policy::parse(&p))
        }
        .unwrap_or(Policy::NoEviction);
        *self.maxmemory_policy.write() = policy;
        let num = |name| self.get(name).and_then(|v| v.parse().ok());
        configure_lfu(
            policy,
            num("lfu-log-factor").unwrap_or(10),
            num("lfu-decay-time").unwrap_or(1),
        );
    }

    /// CONFIG SET of several pairs: all are validated before any is applied.
    pub fn set_many(&self, pairs: &[(&[u8], &[u8])]) -> CmdResult {
        let mut staged = Vec::new();
        for (name, value) in pairs {
            let name = String::from_utf8_lossy(name);
            let i = Self::index(&name).ok_or_else(|| CmdError::UnknownConfig(name.to_string()))?;
            if staged.iter().any(|(j, _)| *j == i) {
                return Err(CmdError::Other(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                )));
            }
            let value = String::from_utf8_lossy(value);
            // Redis can move its listeners at run time; we cannot, but
            // setting them to what they are is a no-op that succeeds.
            let unchanged = matches!(PARAMS[i].name, "port" | "bind")
                && self.values.read()[i] == value.as_ref();
            if PARAMS[i].name == "port" && !unchanged {
                return Err(CmdError::InvalidConfig {
                    name: name.to_string(),
                    why: "Unable to listen on this port".into(),
                });
            }
            let protected_open = PARAMS[i].kind == Kind::Protected
                && self.get("enable-protected-configs").as_deref() != Some("no");
            let v = if unchanged {
                value.into_owned()
            } else if protected_open {
                protected_value(PARAMS[i].name, &value).map_err(|why| CmdError::InvalidConfig {
                    name: name.to_string(),
                    why,
                })?
            } else {
                let checked = if PARAMS[i].kind == Kind::ObufLimit {
                    merge_obuf(&self.values.read()[i], &value)
                } else {
                    validate(&PARAMS[i], &value)
                };
                checked.map_err(|why| CmdError::InvalidConfig {
                    name: name.to_string(),
                    why,
                })?
            };
            staged.push((i, v));
        }
        for (i, v) in staged {
            self.store(i, v);
        }
        Ok(())
    }

    /// Parameters (name, value) whose name or alias matches any pattern,
    /// each once. A pattern without glob characters names one parameter
    /// and is echoed as written (`CONFIG GET HZ` answers `HZ`), as Redis does.
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |name: String, v: &String| {
            if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                out.push((name, v.clone()));
            }
        };
        for pat in patterns {
            if !pat.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                let name = String::from_utf8_lossy(pat);
                if let Some(i) = Self::index(&name) {
                    add(name.into_owned(), &values[i]);
                }
                continue;
            }
            for (i, p) in PARAMS.iter().enumerate() {
                for name in std::iter::once(p.name).chain(p.alias) {
                    // Dragonfly's own parameters (`snapshot_cron`) answer
                    // their name or a pattern with `_`, so that `CONFIG GET *`
                    // lists what Redis lists (tools set each one back).
                    let dragonfly_only = DRAGONFLY_ONLY.contains(&name) && !pat.contains(&b'_');
                    if !dragonfly_only
                        && !HIDDEN.contains(&name)
                        && glob_match(pat, name.as_bytes(), true)
                    {
                        add(name.to_string(), &values[i]);
                    }
                }
            }
        }
        out
    }

    /// CONFIG REWRITE: `old` (the config file's text) with each parameter's
    /// line holding its current value, later repeats dropped, and the
    /// parameters that differ from their defaults appended; `users`
    /// (ACL LIST lines) replace the file's `user` lines when given.
    pub fn rewrite_text(&self, old: &str, users: Option<Vec<String>>) -> String {
        let values = self.values.read();
        // `replicaof host port` is two words, as Redis writes it; none
        // for a master (its line goes).
        let line_of = |i: usize| match PARAMS[i].name {
            "replicaof" if values[i].is_empty() => None,
            "replicaof" => Some(format!("replicaof {}", values[i])),
            name => Some(format!("{name} {}", quote(&values[i]))),
        };
        let mut written = vec![false; PARAMS.len()];
        let mut out = Vec::new();
        for line in old.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if line.trim_start().starts_with('#') || name.is_empty() {
                out.push(line.to_string());
                continue;
            }
            if name.eq_ignore_ascii_case("user") && users.is_some() {
                continue;
            }
            match Self::index(name) {
                Some(i) if !written[i] => {
                    written[i] = true;
                    out.extend(line_of(i));
                }
                Some(_) => {}
                None => out.push(line.to_string()),
            }
        }
        while out
            .last()
            .is_some_and(|l| l.is_empty() || l == REWRITE_MARK)
        {
            out.pop();
        }
        out.push(REWRITE_MARK.to_string());
        for (i, p) in PARAMS.iter().enumerate() {
            // Dragonfly's own names (with underscores) go only where the
            // file already has them: Redis would refuse them.
            if !written[i] && values[i] != p.default && !p.name.contains('_') {
                out.extend(line_of(i));
            }
        }
        out.extend(users.into_iter().flatten());
        let mut text = out.join("\n");
        text.push('\n');
        text
    }
}

const REWRITE_MARK: &str = "# Generated by CONFIG REWRITE";

/// A config file value: as is when it is one plain word, else quoted.
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'));
    if plain {
        return v.to_string();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each parameter (and alias) is listed once: a merge that brings the
    /// same row twice must fail here.
    #[test]
    fn parameters_are_listed_once() {
        let mut names: Vec<&str> = PARAMS
            .iter()
            .flat_map(|p| std::iter::once(p.name).chain(p.alias))
            .collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn eviction_settings_reach_the_typed_copies() {
        let c = Config::new();
        c.set_many(&[
            (b"maxmemory", b"10mb"),
            (b"maxmemory-policy", b"ALLKEYS-LFU"),
            (b"maxmemory-eviction-tenacity", b"42"),
        ])
        .unwrap();
        assert_eq!(c.maxmemory.load(Relaxed), 10 * 1024 * 1024);
        assert_eq!(c.maxmemory_eviction_tenacity.load(Relaxed), 42);
        assert_eq!(*c.maxmemory_policy.read(), Policy::AllKeysLfu);
        assert_eq!(c.get("maxmemory-policy").as_deref(), Some("allkeys-lfu"));
    }
}
