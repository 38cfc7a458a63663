//! The damselfly binary: parse options, build the server, serve.

mod config;
mod service;

use damselfly_commands::{Host, Server, ServerOptions};
use std::sync::Arc;

/// mimalloc, counted: `used_memory` and maxmemory read the count.
#[global_allocator]
static GLOBAL: damselfly_storage::memory::Counting<mimalloc::MiMalloc> =
    damselfly_storage::memory::Counting(mimalloc::MiMalloc);

/// Shard count: a power of two well above any worker count we run with, so
/// that unrelated keys rarely share a lock.
const SHARDS: usize = 256;

/// Redis-style log line: `pid:M 23 Nov 2026 10:00:00.000 * message`.
pub fn log(msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    let mut tm: libc::tm = unsafe_zeroed_tm();
    // SAFETY: secs and tm are valid, exclusively borrowed locals; gmtime_r
    // writes only into tm and is thread-safe.
    unsafe { libc::gmtime_r(&secs, &mut tm) };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    eprintln!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} * {}",
        std::process::id(),
        tm.tm_mday,
        MONTHS.get(tm.tm_mon as usize).unwrap_or(&"Jan"),
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis(),
        msg
    );
}

fn unsafe_zeroed_tm() -> libc::tm {
    // SAFETY: libc::tm is a plain C struct of integers (and, on some
    // platforms, a nullable pointer), for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

struct ProcessHost {
    shutdown: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Host for ProcessHost {
    fn shutdown(&self) {
        let _ = self.shutdown.send(());
    }

    fn log(&self, msg: &str) {
        log(msg);
    }
}

fn main() {
    GLOBAL.activate();
    let opts = match config::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Some(dir) = &opts.dir {
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::env::set_current_dir(dir)) {
            eprintln!("ERROR: cannot use --dir {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    let listener = match std::net::TcpListener::bind((opts.bind.as_str(), opts.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ERROR: cannot listen on {}:{}: {e}", opts.bind, opts.port);
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map_or(opts.port, |a| a.port());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = Arc::new(Server::new(
        ServerOptions {
            shards: SHARDS,
            dbnum: opts.dbnum,
            port,
            threads: opts.threads,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            config_file: String::new(),
        },
        Box::new(ProcessHost { shutdown: tx }),
    ));
    let cfg = &server.config;
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    for (k, v) in [
        ("port", port.to_string()),
        ("bind", opts.bind.clone()),
        ("databases", opts.dbnum.to_string()),
        ("dir", dir),
        ("dbfilename", opts.dbfilename.clone()),
        ("hz", opts.hz.to_string()),
    ] {
        if let Err(e) = cfg.set_initial(k, &v) {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
    log(&format!(
        "Damselfly {} (Redis 7.0.15 compatible) starting, pid={}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    ));
    log(&format!(
        "Running with {} worker threads, {SHARDS} shards, {} databases",
        opts.threads, opts.dbnum
    ));
    let app = Arc::new(service::App {
        server: server.clone(),
    });
    let threads = opts.threads;
    std::thread::spawn(move || {
        if let Err(e) = damselfly_net::serve(listener, app, threads) {
            log(&format!("listener failed: {e}"));
            std::process::exit(1);
        }
    });
    log(&format!(
        "Server initialized, listening on {}:{port}",
        opts.bind
    ));
    damselfly_storage::memory::mark_startup();
    log("Ready to accept connections tcp");
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ERROR: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_recv = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => log("Received SIGINT scheduling shutdown..."),
            _ = term_recv => log("Received SIGTERM scheduling shutdown..."),
            _ = rx.recv() => log("User requested shutdown..."),
        }
    });
    log("Damselfly is now ready to exit, bye bye...");
    std::process::exit(0);
}
