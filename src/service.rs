//! Glue between the network layer and the commands: one `Conn` per client,
//! and each worker's periodic active-expiry pass over its share of shards.

use damselfly_commands::server::metrics;
use damselfly_commands::{execute, Client, CmdError, Server, ThreadStats, Wait};
use damselfly_net::{Flow, HttpRequest, HttpResponse, Service, Session};
use damselfly_protocol::{Args, Limits, Reply};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
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
        damselfly_commands::release_client(&self.server, &mut self.client);
        if self.client.monitor.is_some() {
            self.server.monitors.remove(self.client.id());
        }
        self.server.clients.unregister(self.client.id());
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
        // A monitor stays on its MONITOR request: each time lines arrive
        // they are written, and the request is handled again.
        if let Some(q) = &self.client.monitor {
            out.raw(&q.take());
            return monitor_wait(q.clone());
        }
        if self.server.pause.on() {
            if let Some(wait) =
                damselfly_commands::dispatch::pause_wait(&self.server, &self.client, args)
            {
                return Flow::Retry(Box::pin(wait.wait(tokio::time::sleep)));
            }
        }
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
                        .unwrap_or_else(|_| {
                            format!("-{}\r\n", CmdError::ScriptAborted).into_bytes()
                        })
                }));
            }
            None => {}
        }
        if let Some(q) = &self.client.monitor {
            return monitor_wait(q.clone());
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

    fn query_pending(&mut self, bytes: usize) {
        self.client.info.qbuf.store(bytes, Relaxed);
    }

    fn http_enabled(&self) -> bool {
        self.server
            .config
            .get("primary_port_http_enabled")
            .as_deref()
            != Some("false")
    }

    /// `/metrics` and `/healthz` are open (scrapers and probes carry no
    /// password); `/` asks for HTTP basic auth as user `default` when a
    /// password is set.
    fn http(&mut self, req: &HttpRequest) -> HttpResponse {
        if !matches!(req.method.as_str(), "GET" | "HEAD") {
            return HttpResponse::new(405, "text/plain", "method not allowed\n");
        }
        match req.path.as_str() {
            "/metrics" => HttpResponse::new(
                200,
                "text/plain; version=0.0.4",
                metrics::prometheus(&self.server),
            ),
            "/healthz" => HttpResponse::new(200, "text/plain", "OK\n"),
            "/" if !basic_auth_ok(
                &self.server.config.get("requirepass").unwrap_or_default(),
                req.header("authorization"),
            ) =>
            {
                let mut r = HttpResponse::new(401, "text/plain", "authentication required\n");
                r.headers
                    .push(("WWW-Authenticate", "Basic realm=\"damselfly\"".into()));
                r
            }
            "/" => HttpResponse::new(200, "text/plain", metrics::status_page(&self.server)),
            _ => HttpResponse::new(404, "text/plain", "not found\n"),
        }
    }
}

/// Waits for a monitor's next lines.
fn monitor_wait(q: Arc<damselfly_commands::monitor::Queue>) -> Flow {
    Flow::Retry(Box::pin(std::future::poll_fn(move |cx| q.poll_ready(cx))))
}

/// Reports an active expiry pass to the latency monitor when it ends.
struct ExpireCycle<'a> {
    server: &'a Server,
    start: Instant,
}

impl Drop for ExpireCycle<'_> {
    fn drop(&mut self) {
        let ms = self.start.elapsed().as_millis() as u64;
        damselfly_commands::observe::latency_event(self.server, "expire-cycle", ms);
    }
}

/// Whether an `Authorization: Basic` header carries user `default` and
/// `password` (always true when no password is set).
fn basic_auth_ok(password: &str, header: Option<&str>) -> bool {
    use base64::Engine as _;
    if password.is_empty() {
        return true;
    }
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("default:{password}").as_bytes()
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

    /// Active expiry, Redis's "fast enough" cycle per shard: sweep buckets of
    /// each DB holding volatile keys; keep going while more than a tenth of
    /// what was examined had expired, within a time budget of a quarter of
    /// the tick.
    fn tick(&self, worker: usize, workers: usize) {
        let ks = &self.server.keyspace;
        if !ks.active_expire() || !damselfly_storage::expiry_deletes(damselfly_storage::now_ms()) {
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
        let _cycle = ExpireCycle {
            server: &self.server,
            start,
        };
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

    fn tick_interval(&self) -> Duration {
        let hz = self.server.config.hz.load(Relaxed).clamp(1, 500);
        Duration::from_millis(1000 / hz)
    }
}

#[cfg(test)]
mod tests {
    use super::basic_auth_ok;

    #[test]
    fn basic_auth_wants_user_default_and_the_password() {
        assert!(basic_auth_ok("", None));
        assert!(!basic_auth_ok("pw", None));
        // base64("default:pw") and base64("other:pw").
        assert!(basic_auth_ok("pw", Some("Basic ZGVmYXVsdDpwdw==")));
        assert!(!basic_auth_ok("pw", Some("Basic b3RoZXI6cHc=")));
        assert!(!basic_auth_ok("pw", Some("Basic !!!")));
        assert!(!basic_auth_ok("pw", Some("Bearer ZGVmYXVsdDpwdw==")));
    }
}
