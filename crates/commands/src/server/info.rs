//! INFO: Redis's sections and field names, filled from our own counters.
//!
//! Memory figures come from the process's resident set size (/proc), not
//! from the allocator: `used_memory` is the RSS, as is `used_memory_rss`.
//! Fields for features we do not have (persistence, replication, Lua,
//! eviction...) report their idle values.

use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::server::REDIS_VERSION;
use crate::state::Server;
use crate::table::table;
use damselfly_protocol::Args;
use damselfly_storage::Shard;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Sections in output order: (key, header, in the default set).
const SECTIONS: &[(&str, &str, bool)] = &[
    ("server", "Server", true),
    ("clients", "Clients", true),
    ("memory", "Memory", true),
    ("persistence", "Persistence", true),
    ("stats", "Stats", true),
    ("replication", "Replication", true),
    ("cpu", "CPU", true),
    ("modules", "Modules", true),
    ("commandstats", "Commandstats", false),
    ("errorstats", "Errorstats", true),
    ("latencystats", "Latencystats", false),
    ("cluster", "Cluster", true),
    ("keyspace", "Keyspace", true),
];

/// Which sections a request selects, as flags in SECTIONS order.
fn selected(args: &Args) -> Vec<bool> {
    let mut on = vec![false; SECTIONS.len()];
    if args.len() == 1 {
        for (i, s) in SECTIONS.iter().enumerate() {
            on[i] = s.2;
        }
        return on;
    }
    for a in args.iter().skip(1) {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => on.iter_mut().for_each(|x| *x = true),
            "default" => {
                for (i, s) in SECTIONS.iter().enumerate() {
                    on[i] |= s.2;
                }
            }
            "module_list" => on[7] = true,
            name => {
                if let Some(i) = SECTIONS.iter().position(|s| s.0 == name) {
                    on[i] = true;
                }
            }
        }
    }
    on
}

/// Redis's bytesToHuman.
fn human(n: u64) -> String {
    let d = n as f64;
    const UNITS: [(&str, f64); 6] = [
        ("K", 1024.0),
        ("M", 1048576.0),
        ("G", 1073741824.0),
        ("T", 1099511627776.0),
        ("P", 1125899906842624.0),
        ("E", 1152921504606846976.0),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    for (i, (u, base)) in UNITS.iter().enumerate() {
        let next = UNITS.get(i + 1).map_or(f64::INFINITY, |x| x.1);
        if d < next {
            return format!("{:.2}{u}", d / base);
        }
    }
    format!("{n}B")
}

/// The process's resident set size.
pub(crate) fn rss_bytes() -> u64 {
    damselfly_storage::memory::rss_bytes()
}

/// The process's memory as INFO, MEMORY STATS and /metrics report it.
pub struct MemoryFigures {
    /// Bytes allocated (the counting allocator), or the RSS when the
    /// allocator is not counted (library tests).
    pub used: u64,
    pub rss: u64,
    pub peak: u64,
    pub startup: u64,
}

impl MemoryFigures {
    pub fn now() -> MemoryFigures {
        use damselfly_storage::memory as m;
        let rss = m::rss_bytes();
        let used = if m::accounting_active() {
            m::used_memory()
        } else {
            rss
        };
        MemoryFigures {
            used,
            rss,
            peak: m::used_memory_peak().max(used),
            startup: m::used_memory_startup(),
        }
    }

    /// RSS over allocated bytes (Redis's mem_fragmentation_ratio).
    pub fn frag_ratio(&self) -> f64 {
        self.rss as f64 / self.used.max(1) as f64
    }
}

fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: rusage is plain integers; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid, exclusively borrowed out-parameter.
    unsafe { libc::getrusage(who, &mut ru) };
    ru
}

fn secs(tv: libc::timeval) -> String {
    format!("{}.{:06}", tv.tv_sec, tv.tv_usec)
}

fn os_name() -> String {
    // SAFETY: utsname is plain byte arrays; all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, exclusively borrowed out-parameter.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "Linux".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

/// calls, usec, rejected, failed.
pub(super) type CmdTotals = (u64, u64, u64, u64);

/// Per-command and error counters summed over the worker threads.
pub(super) struct Totals {
    pub calls: Vec<CmdTotals>,
    pub commands: u64,
    pub connections: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub errors: BTreeMap<String, u64>,
}

pub(super) fn totals(server: &Server) -> Totals {
    let n = table().all.len();
    let mut t = Totals {
        calls: vec![(0, 0, 0, 0); n],
        commands: 0,
        connections: 0,
        net_in: 0,
        net_out: 0,
        errors: BTreeMap::new(),
    };
    for st in server.all_thread_stats() {
        for (i, c) in st.commands.iter().enumerate().take(n) {
            let x = &mut t.calls[i];
            x.0 += c.calls.get();
            x.1 += c.usec.get();
            x.2 += c.rejected.get();
            x.3 += c.failed.get();
        }
        t.commands += st.total_commands.get();
        t.connections += st.connections.get();
        t.net_in += st.net_input.get();
        t.net_out += st.net_output.get();
        for (k, v) in st.errors.lock().iter() {
            *t.errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    t
}

/// Keyspace counters summed over the shards.
#[derive(Default)]
pub(super) struct ShardSums {
    pub expired: u64,
    pub evicted: u64,
    pub hits: u64,
    pub misses: u64,
    pub dirty: u64,
    /// (keys, volatile) per DB.
    pub dbs: Vec<(u64, u64)>,
}

impl ShardSums {
    fn new(dbnum: usize) -> ShardSums {
        ShardSums {
            dbs: vec![(0, 0); dbnum],
            ..Default::default()
        }
    }

    fn add(&mut self, sh: &Shard) {
        self.expired += sh.stats.expired_keys;
        self.evicted += sh.stats.evicted_keys;
        self.hits += sh.stats.keyspace_hits;
        self.misses += sh.stats.keyspace_misses;
        self.dirty += sh.stats.dirty;
        for (x, d) in self.dbs.iter_mut().zip(&sh.dbs) {
            x.0 += d.len() as u64;
            x.1 += d.volatile as u64;
        }
    }
}

/// The sums over the shards a command holds or can lock one at a time.
pub(super) fn shard_sums(ctx: &mut Ctx) -> ShardSums {
    let mut s = ShardSums::new(ctx.server.keyspace.dbnum());
    ctx.each_shard(|sh| s.add(sh));
    s
}

/// The sums, locking each shard in turn (the caller holds none).
pub(super) fn shard_sums_unlocked(server: &Server) -> ShardSums {
    let ks = &server.keyspace;
    let mut s = ShardSums::new(ks.dbnum());
    for i in 0..ks.shard_count() {
        // A look: a snapshot's debt stays with its own thread.
        s.add(&ks.peek(i));
    }
    s
}

/// Commands per second between this INFO and an earlier one at least
/// 100 ms before (Redis samples every 100 ms; we sample on demand).
fn ops_per_sec(ctx: &Ctx, total: u64) -> u64 {
    let mut s = ctx.server.ops_sample.lock();
    let elapsed = s.0.elapsed();
    if elapsed.as_millis() >= 100 {
        let rate = (total.saturating_sub(s.1) as f64 / elapsed.as_secs_f64()) as u64;
        *s = (std::time::Instant::now(), total, rate);
    }
    s.2
}

/// INFO [section [section ...]]
pub(super) fn info(ctx: &mut Ctx, args: &Args) -> CmdResult {
    // Read before INFO's own buffers exist, so they do not count.
    let mem = MemoryFigures::now();
    let on = selected(args);
    let need_counters = on[4] || on[8] || on[9];
    let t = if need_counters {
        Some(totals(ctx.server))
    } else {
        None
    };
    let sums = if on[3] || on[4] || on[12] {
        shard_sums(ctx)
    } else {
        ShardSums::default()
    };
    let srv = ctx.server;
    let mut out = String::new();
    for (i, (key, header, _)) in SECTIONS.iter().enumerate() {
        if !on[i] {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = write!(out, "# {header}\r\n");
        let mut line = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(out, "{k}:{v}\r\n");
        };
        match *key {
            "server" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let up = srv.uptime_secs();
                line("redis_version", &REDIS_VERSION);
                line("redis_git_sha1", &"00000000");
                line("redis_git_dirty", &0);
                line("redis_build_id", &"0");
                line("redis_mode", &"standalone");
                line("os", &os_name());
                line("arch_bits", &(usize::BITS));
                line("monotonic_clock", &"POSIX clock_gettime");
                line("multiplexing_api", &"epoll");
                line("atomicvar_api", &"c11-builtin");
                line("gcc_version", &"0.0.0");
                line("process_id", &std::process::id());
                line("process_supervised", &"no");
                line("run_id", &srv.run_id);
                line("tcp_port", &srv.port);
                line("server_time_usec", &now.as_micros());
                line("uptime_in_seconds", &up);
                line("uptime_in_days", &(up / 86400));
                let hz = srv.config.hz.load(Relaxed);
                line("hz", &hz);
                line("configured_hz", &hz);
                line("lru_clock", &(now.as_secs() & ((1 << 24) - 1)));
                line("executable", &srv.executable);
                line("config_file", &srv.config_file);
                line("io_threads_active", &0);
                line("damselfly_version", &env!("CARGO_PKG_VERSION"));
                line("damselfly_threads", &srv.threads);
            }
            "clients" => {
                line("connected_clients", &srv.clients.count());
                line("cluster_connections", &0);
                line(
                    "maxclients",
                    &srv.config.get("maxclients").unwrap_or_default(),
                );
                line("client_recent_max_input_buffer", &0);
                line("client_recent_max_output_buffer", &0);
                let paused = srv.pause.waiting.load(Relaxed);
                line("blocked_clients", &(srv.blocked.lock().len() + paused));
                line("tracking_clients", &srv.tracking.clients_on.load(Relaxed));
                line("clients_in_timeout_table", &0);
            }
            "memory" => {
                let m = &mem;
                let total = total_system_memory();
                let maxmem = srv.config.maxmemory.load(Relaxed);
                let policy = srv.config.maxmemory_policy.read().name();
                let used = m.used;
                let perc = |part: u64, whole: u64| {
                    format!("{:.2}%", part as f64 * 100.0 / whole.max(1) as f64)
                };
                line("used_memory", &used);
                line("used_memory_human", &human(used));
                line("used_memory_rss", &m.rss);
                line("used_memory_rss_human", &human(m.rss));
                line("used_memory_peak", &m.peak);
                line("used_memory_peak_human", &human(m.peak));
                line("used_memory_peak_perc", &perc(used, m.peak));
                line("used_memory_overhead", &m.startup);
                line("used_memory_startup", &m.startup);
                let dataset = used.saturating_sub(m.startup);
                line("used_memory_dataset", &dataset);
                line("used_memory_dataset_perc", &perc(dataset, used));
                line("allocator_allocated", &used);
                line("allocator_active", &m.rss);
                line("allocator_resident", &m.rss);
                line("total_system_memory", &total);
                line("total_system_memory_human", &human(total));
                line("used_memory_lua", &0);
                line("used_memory_vm_eval", &0);
                line("used_memory_lua_human", &human(0));
                line("used_memory_scripts_eval", &0);
                let sc = &srv.scripting;
                line("number_of_cached_scripts", &sc.scripts.load(Relaxed));
                line("number_of_functions", &sc.functions.load(Relaxed));
                line("number_of_libraries", &sc.libraries.load(Relaxed));
                line("used_memory_vm_functions", &0);
                line("used_memory_vm_total", &0);
                line("used_memory_vm_total_human", &human(0));
                line("used_memory_functions", &0);
                line("used_memory_scripts", &0);
                line("used_memory_scripts_human", &human(0));
                line("maxmemory", &maxmem);
                line("maxmemory_human", &human(maxmem));
                line("maxmemory_policy", &policy);
                let frag = format!("{:.2}", m.frag_ratio());
                let frag_bytes = m.rss as i64 - used as i64;
                line("allocator_frag_ratio", &frag);
                line("allocator_frag_bytes", &frag_bytes);
                line("allocator_rss_ratio", &"1.00");
                line("allocator_rss_bytes", &0);
                line("rss_overhead_ratio", &"1.00");
                line("rss_overhead_bytes", &0);
                line("mem_fragmentation_ratio", &frag);
                line("mem_fragmentation_bytes", &frag_bytes);
                line("mem_not_counted_for_evict", &0);
                line("mem_replication_backlog", &0);
                line("mem_total_replication_buffers", &0);
                // What replicas' connections hold queued: a full sync's
                // RDB in transit and the stream behind it.
                let mut replicas_queued = 0;
                srv.clients.for_each_locked(|c| {
                    if c.replica.load(Relaxed) {
                        replicas_queued += c.outbox.held();
                    }
                });
                line("mem_clients_slaves", &replicas_queued);
                line("mem_clients_normal", &0);
                line("mem_cluster_links", &0);
                line("mem_aof_buffer", &0);
                line("mem_allocator", &"mimalloc");
                line("active_defrag_running", &0);
                line(
                    "lazyfree_pending_objects",
                    &damselfly_storage::lazyfree::pending(),
                );
                line("lazyfreed_objects", &damselfly_storage::lazyfree::freed());
            }
            "persistence" => {
                let p = crate::persist::info_fields(srv);
                line("loading", &u8::from(p.loading));
                line("async_loading", &0);
                line("current_cow_peak", &0);
                line("current_cow_size", &0);
                line("current_cow_size_age", &0);
                line("current_fork_perc", &"0.00");
                line("current_save_keys_processed", &p.keys_processed);
                line("current_save_keys_total", &p.keys_total);
                line("rdb_changes_since_last_save", &sums.dirty);
                line("rdb_bgsave_in_progress", &u8::from(p.bgsave_in_progress));
                line("rdb_last_save_time", &srv.lastsave.load(Relaxed));
                line(
                    "rdb_last_bgsave_status",
                    &if p.last_ok { "ok" } else { "err" },
                );
                line("rdb_last_bgsave_time_sec", &p.last_bgsave_secs);
                line("rdb_current_bgsave_time_sec", &p.current_bgsave_secs);
                line("rdb_saves", &p.saves);
                line("rdb_last_cow_size", &0);
                line("rdb_last_load_keys_expired", &p.loaded_expired);
                line("rdb_last_load_keys_loaded", &p.loaded_keys);
                line("aof_enabled", &0);
                line("aof_rewrite_in_progress", &0);
                line("aof_rewrite_scheduled", &0);
                line("aof_last_rewrite_time_sec", &-1);
                line("aof_current_rewrite_time_sec", &-1);
                line("aof_last_bgrewrite_status", &"ok");
                line("aof_rewrites", &0);
                line("aof_rewrites_consecutive_failures", &0);
                line("aof_last_write_status", &"ok");
                line("aof_last_cow_size", &0);
                line("module_fork_in_progress", &0);
                line("module_fork_last_cow_size", &0);
                if p.loading {
                    line("loading_start_time", &p.loading_started);
                    line("loading_total_bytes", &p.loading_bytes);
                }
            }
            "stats" => {
                let t = t.as_ref().expect("counters gathered");
                let errors: u64 = t.errors.values().sum();
                line("total_connections_received", &t.connections);
                line("total_commands_processed", &t.commands);
                line("instantaneous_ops_per_sec", &ops_per_sec(ctx, t.commands));
                line("total_net_input_bytes", &t.net_in);
                line("total_net_output_bytes", &t.net_out);
                line("total_net_repl_input_bytes", &0);
                line("total_net_repl_output_bytes", &0);
                line("instantaneous_input_kbps", &"0.00");
                line("instantaneous_output_kbps", &"0.00");
                line("instantaneous_input_repl_kbps", &"0.00");
                line("instantaneous_output_repl_kbps", &"0.00");
                line(
                    "rejected_connections",
                    &srv.rejected_connections.load(Relaxed),
                );
                let (full, ok, err) = crate::repl_master::sync_counters(srv);
                line("sync_full", &full);
                line("sync_partial_ok", &ok);
                line("sync_partial_err", &err);
                line("expired_keys", &sums.expired);
                line("expired_stale_perc", &"0.00");
                line("expired_time_cap_reached_count", &0);
                line("expire_cycle_cpu_milliseconds", &0);
                line("evicted_keys", &sums.evicted);
                line("evicted_clients", &srv.evicted_clients.load(Relaxed));
                line("total_eviction_exceeded_time", &0);
                line("current_eviction_exceeded_time", &0);
                line("keyspace_hits", &sums.hits);
                line("keyspace_misses", &sums.misses);
                line("pubsub_channels", &srv.pubsub.channel_count());
                line("pubsub_patterns", &srv.pubsub.pattern_count());
                line("pubsubshard_channels", &srv.pubsub.shard_channel_count());
                line("latest_fork_usec", &0);
                line("total_forks", &0);
                line("migrate_cached_sockets", &0);
                line("slave_expires_tracked_keys", &0);
                line("active_defrag_hits", &0);
                line("active_defrag_misses", &0);
                line("active_defrag_key_hits", &0);
                line("active_defrag_key_misses", &0);
                line("total_active_defrag_time", &0);
                line("current_active_defrag_time", &0);
                let (keys, items, prefixes) = srv.tracking.totals();
                line("tracking_total_keys", &keys);
                line("tracking_total_items", &items);
                line("tracking_total_prefixes", &prefixes);
                line("unexpected_error_replies", &0);
                line("total_error_replies", &errors);
                line("dump_payload_sanitizations", &0);
                line("total_reads_processed", &0);
                line("total_writes_processed", &0);
                line("io_threaded_reads_processed", &0);
                line("io_threaded_writes_processed", &0);
                line("reply_buffer_shrinks", &0);
                line("reply_buffer_expands", &0);
            }
            "replication" => {
                crate::repl_master::info_replication(srv, &mut line);
            }
            "cpu" => {
                let me = rusage(libc::RUSAGE_SELF);
                let ch = rusage(libc::RUSAGE_CHILDREN);
                let th = rusage(libc::RUSAGE_THREAD);
                line("used_cpu_sys", &secs(me.ru_stime));
                line("used_cpu_user", &secs(me.ru_utime));
                line("used_cpu_sys_children", &secs(ch.ru_stime));
                line("used_cpu_user_children", &secs(ch.ru_utime));
                line("used_cpu_sys_main_thread", &secs(th.ru_stime));
                line("used_cpu_user_main_thread", &secs(th.ru_utime));
            }
            "commandstats" => {
                let t = t.as_ref().expect("counters gathered");
                let mut rows: Vec<(&str, CmdTotals)> = table()
                    .all
                    .iter()
                    .map(|e| (e.fullname.as_str(), t.calls[e.id]))
                    .filter(|(_, c)| c.0 != 0 || c.2 != 0 || c.3 != 0)
                    .collect();
                rows.sort_by(|a, b| a.0.cmp(b.0));
                for (name, (calls, usec, rejected, failed)) in rows {
                    let per = if calls == 0 {
                        0.0
                    } else {
                        usec as f64 / calls as f64
                    };
                    line(
                        &format!("cmdstat_{name}"),
                        &format!(
                            "calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}"
                        ),
                    );
                }
            }
            "errorstats" => {
                let t = t.as_ref().expect("counters gathered");
                for (code, n) in &t.errors {
                    line(&format!("errorstat_{code}"), &format!("count={n}"));
                }
            }
            "cluster" => line("cluster_enabled", &0),
            "keyspace" => {
                for (db, (keys, expires)) in sums.dbs.iter().enumerate() {
                    if *keys > 0 {
                        line(
                            &format!("db{db}"),
                            &format!("keys={keys},expires={expires},avg_ttl=0"),
                        );
                    }
                }
            }
            "latencystats" => crate::observe::latencystats(ctx, &mut out),
            // modules: nothing to report.
            _ => {}
        }
    }
    ctx.reply.verbatim("txt", out.as_bytes());
    Ok(())
}
