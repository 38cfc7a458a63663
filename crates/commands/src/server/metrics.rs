//! HTTP on the RESP port: `/metrics` in Prometheus's text format with
//! Dragonfly's metric names (so its Grafana dashboard works), `/healthz`,
//! and a small status page at `/`. Counters are summed on demand, as INFO
//! sums them.

use super::info::{shard_sums_unlocked, totals, MemoryFigures};
use crate::state::Server;
use crate::table::table;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Writes one metric family: its HELP and TYPE lines, then each sample
/// (label text, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

fn one(v: u64) -> [(String, f64); 1] {
    [(String::new(), v as f64)]
}

/// A label value with Prometheus's escapes.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `/metrics` body.
pub fn prometheus(server: &Server) -> String {
    let mem = MemoryFigures::now();
    let t = totals(server);
    let sums = shard_sums_unlocked(server);
    let mut out = String::with_capacity(8192);
    let o = &mut out;
    family(
        o,
        "dragonfly_version",
        "gauge",
        "Version of the server in its label",
        &[(format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1.0)],
    );
    family(
        o,
        "dragonfly_uptime_in_seconds",
        "gauge",
        "Seconds since the server started",
        &one(server.uptime_secs()),
    );
    let (role, offset) = {
        let st = server.repl.state();
        (st.role, st.master_repl_offset)
    };
    let master = role == damselfly_replication::Role::Master;
    family(
        o,
        "dragonfly_master",
        "gauge",
        "1 if the instance is a master",
        &one(u64::from(master)),
    );
    family(
        o,
        "dragonfly_connected_clients",
        "gauge",
        "Client connections",
        &one(server.clients.count() as u64),
    );
    family(
        o,
        "dragonfly_blocked_clients",
        "gauge",
        "Clients blocked in a blocking command",
        &one(server.blocked.lock().len() as u64),
    );
    family(
        o,
        "dragonfly_memory_used_bytes",
        "gauge",
        "Bytes allocated by the server",
        &one(mem.used),
    );
    family(
        o,
        "dragonfly_memory_used_peak_bytes",
        "gauge",
        "Highest bytes allocated seen",
        &one(mem.peak),
    );
    family(
        o,
        "dragonfly_used_memory_rss_bytes",
        "gauge",
        "Resident set size of the process",
        &one(mem.rss),
    );
    family(
        o,
        "dragonfly_memory_max_bytes",
        "gauge",
        "The maxmemory limit, 0 for none",
        &one(server.config.maxmemory.load(Relaxed)),
    );
    family(
        o,
        "dragonfly_commands_processed_total",
        "counter",
        "Commands processed",
        &one(t.commands),
    );
    family(
        o,
        "dragonfly_connections_received_total",
        "counter",
        "Connections accepted",
        &one(t.connections),
    );
    family(
        o,
        "dragonfly_keyspace_hits_total",
        "counter",
        "Key lookups that found the key",
        &one(sums.hits),
    );
    family(
        o,
        "dragonfly_keyspace_misses_total",
        "counter",
        "Key lookups that did not find the key",
        &one(sums.misses),
    );
    family(
        o,
        "dragonfly_expired_keys_total",
        "counter",
        "Keys removed because their time to live passed",
        &one(sums.expired),
    );
    family(
        o,
        "dragonfly_evicted_keys_total",
        "counter",
        "Keys evicted by the maxmemory policy",
        &one(sums.evicted),
    );
    family(
        o,
        "dragonfly_net_input_bytes_total",
        "counter",
        "Bytes read from clients",
        &one(t.net_in),
    );
    family(
        o,
        "dragonfly_net_output_bytes_total",
        "counter",
        "Bytes written to clients",
        &one(t.net_out),
    );
    let dbs = |pick: fn(&(u64, u64)) -> u64| -> Vec<(String, f64)> {
        sums.dbs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.0 > 0)
            .map(|(i, d)| (format!("db=\"db{i}\""), pick(d) as f64))
            .collect()
    };
    family(
        o,
        "dragonfly_db_keys",
        "gauge",
        "Total number of keys by DB",
        &dbs(|d| d.0),
    );
    family(
        o,
        "dragonfly_db_keys_expiring",
        "gauge",
        "Total number of expiring keys by DB",
        &dbs(|d| d.1),
    );
    // Our stream is Redis's, so a replica's lag is counted in bytes of it
    // not yet acknowledged (Dragonfly counts journal records).
    let replicas = server.repl.replicas();
    let lags: Vec<(String, f64)> = replicas
        .iter()
        .map(|r| {
            (
                format!(
                    "replica_ip=\"{}\",replica_port=\"{}\",replica_state=\"{}\"",
                    label(&r.ip),
                    r.port,
                    r.state
                ),
                offset.saturating_sub(r.offset).max(0) as f64,
            )
        })
        .collect();
    family(
        o,
        "dragonfly_connected_replica_lag_records",
        "gauge",
        "Lag in records of a connected replica.",
        &lags,
    );
    let (full, partial_ok, partial_err) = server.repl.sync_counters();
    let (_, _, _, histlen) = server.repl.backlog_info();
    family(
        o,
        "dragonfly_replication_connected_replicas",
        "gauge",
        "Replicas connected to this master",
        &one(replicas.len() as u64),
    );
    family(
        o,
        "dragonfly_replication_offset_bytes",
        "gauge",
        "Bytes of the replication stream so far (master_repl_offset)",
        &one(offset.max(0) as u64),
    );
    family(
        o,
        "dragonfly_replication_backlog_bytes",
        "gauge",
        "Bytes held in the replication backlog",
        &one(histlen as u64),
    );
    family(
        o,
        "dragonfly_replication_full_syncs_total",
        "counter",
        "Full synchronizations served to replicas",
        &one(full),
    );
    family(
        o,
        "dragonfly_replication_partial_syncs_total",
        "counter",
        "Partial resynchronizations by outcome",
        &[
            ("result=\"ok\"".into(), partial_ok as f64),
            ("result=\"err\"".into(), partial_err as f64),
        ],
    );
    family(
        o,
        "dragonfly_pipeline_queue_length",
        "gauge",
        "Requests waiting in pipelines",
        &one(0),
    );
    let errors: Vec<(String, f64)> = t
        .errors
        .iter()
        .map(|(code, n)| (format!("type=\"{}\"", label(code)), *n as f64))
        .collect();
    family(
        o,
        "dragonfly_errors_total",
        "counter",
        "Error replies by error code",
        &errors,
    );
    let mut calls = Vec::new();
    let mut durations = Vec::new();
    for e in &table().all {
        let (n, usec, _, _) = t.calls[e.id];
        if n == 0 {
            continue;
        }
        let l = format!("cmd=\"{}\"", label(&e.fullname));
        calls.push((l.clone(), n as f64));
        durations.push((l, usec as f64 / 1e6));
    }
    family(
        o,
        "dragonfly_commands_total",
        "counter",
        "Calls by command",
        &calls,
    );
    // Dragonfly's name, which lacks the `_total` a counter's name carries:
    // declared untyped so that strict parsers accept it; rate() works alike.
    family(
        o,
        "dragonfly_commands_duration_seconds",
        "untyped",
        "Seconds spent executing, by command",
        &durations,
    );
    out
}

/// The `/` page: a few lines of status, as plain text.
pub fn status_page(server: &Server) -> String {
    let mem = MemoryFigures::now();
    let sums = shard_sums_unlocked(server);
    let keys: u64 = sums.dbs.iter().map(|d| d.0).sum();
    format!(
        "damselfly {} (Redis {} compatible)\nuptime_in_seconds: {}\nconnected_clients: {}\nkeys: {keys}\nused_memory: {}\nused_memory_rss: {}\nmaxmemory: {}\nmaxmemory_policy: {}\n",
        env!("CARGO_PKG_VERSION"),
        super::REDIS_VERSION,
        server.uptime_secs(),
        server.clients.count(),
        mem.used,
        mem.rss,
        server.config.maxmemory.load(Relaxed),
        server.config.maxmemory_policy.read().name(),
    )
}
