//! Glue between the network layer and the commands: one `Conn` per client,
//! and each worker's periodic active-expiry pass over its share of shards.

use damselfly_commands::{execute, Client, CmdError, Server, ThreadStats, Wait};
use damselfly_net::{Flow, Service, Session};
use damselfly_protocol::{Args, Limits, Reply};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub struct App {
    pub server: Arc<Server>,
}

pub struct Conn {
    server: Arc<Server>,
    stats: Arc<ThreadStats>,
    client: Client,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closing();
    }
}

impl Session for Conn {
    fn limits(&self) -> Limits {
        Limits {
            max_bulk_len: self.server.config.proto_max_bulk_len.load(Relaxed),
            auth_required: !self.client.authenticated,
        }
    }

    fn query_buffer_limit(&self) -> usize {
        self.server.config.query_buffer_limit.load(Relaxed) as usize
    }

    fn handle(&mut self, args: &Args<'_>, out: &mut Reply) -> Flow {
        match execute(&self.server, &self.stats, &mut self.client, args, out) {
            Some(Wait::Keys(blocked)) => {
                let sleep = blocked.timeout().map(tokio::time::sleep);
                return Flow::Wait(Box::pin(blocked.wait(self.server.clone(), sleep)));
            }
            // A script runs on the blocking pool so this worker keeps
            // serving its other clients (who may need to send SCRIPT KILL).
            Some(Wait::Script(job)) => {
                let server = self.server.clone();
                let id = self.client.id();
                return Flow::Wait(Box::pin(async move {
                    tokio::task::spawn_blocking(move || job.run(&server, id))
                        .await
                        .unwrap_or_else(|_| format!("-{}\r\n", CmdError::ScriptAborted).into_bytes())
                }));
            }
            None => {}
        }
        if self.client.close_after_reply {
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    fn count_io(&mut self, read: usize, written: usize) {
        self.stats.net_input.add(read as u64);
        self.stats.net_output.add(written as u64);
    }

    fn take_pushed(&mut self, out: &mut Reply) -> bool {
        self.client.info.outbox.take(out)
    }

    fn poll_pushed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.client.info.outbox.poll_ready(cx)
    }

    fn poll_dropped(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.client.info.outbox.poll_closed(cx)
    }

    fn pushed_written(&mut self) {
        self.client.info.outbox.written();
    }

    fn closing(&mut self) {
        damselfly_commands::release_client(&self.server, &mut self.client);
        self.server.clients.unregister(self.client.id());
    }
}

impl Service for App {
    type Session = Conn;

    fn open(&self, peer: SocketAddr, local: SocketAddr, fd: i64, _worker: usize) -> Option<Conn> {
        let stats = self.server.thread_stats();
        stats.connections.add(1);
        let info = self
            .server
            .clients
            .register(peer.to_string(), local.to_string(), fd);
        let authenticated = self
            .server
            .config
            .get("requirepass")
            .is_none_or(|p| p.is_empty());
        Some(Conn {
            server: self.server.clone(),
            stats,
            client: Client::new(info, authenticated),
        })
    }

    /// Periodic work: the tracking table's size limit, pending BCAST
    /// invalidations, active expiry.
    fn tick(&self, worker: usize, workers: usize) {
        let s = &self.server;
        s.tracking.enforce_limit(&s.pubsub);
        s.tracking.flush_bcast(&s.pubsub);
        self.expire_tick(worker, workers);
        // Keys expired by this pass reach BCAST trackers now.
        s.tracking.flush_bcast(&s.pubsub);
    }

    fn tick_interval(&self) -> Duration {
        let hz = self.server.config.hz.load(Relaxed).clamp(1, 500);
        Duration::from_millis(1000 / hz)
    }
}

impl App {
    /// Active expiry, Redis's "fast enough" cycle per shard: sweep buckets of
    /// each DB holding volatile keys; keep going while more than a tenth of
    /// what was examined had expired, within a time budget of a quarter of
    /// the tick.
    fn expire_tick(&self, worker: usize, workers: usize) {
        let ks = &self.server.keyspace;
        if !ks.active_expire() {
            return;
        }
        let hz = self.server.config.hz.load(Relaxed).clamp(1, 500);
        let effort = self
            .server
            .config
            .get("active-expire-effort")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        let budget = Duration::from_micros(250_000 / hz * effort as u64);
        let start = Instant::now();
        for shard_idx in (worker..ks.shard_count()).step_by(workers.max(1)) {
            // A busy shard is skipped until the next tick: a long script
            // holds every shard, and this worker must keep serving.
            let Some(mut shard) = ks.try_lock_one(shard_idx) else {
                continue;
            };
            for db in 0..shard.dbs.len() {
                // Most DBs of most shards hold no volatile keys: skip them
                // before reading any clock (this loop runs hz × shards × dbs
                // times a second even when idle).
                if shard.dbs[db].volatile == 0 {
                    continue;
                }
                loop {
                    let now = damselfly_storage::now_ms();
                    let (examined, expired) = shard.expire_step(db, 16 * effort, now);
                    if examined == 0 || expired * 10 < examined || start.elapsed() > budget {
                        break;
                    }
                }
            }
        }
    }
}
