//! The damselfly binary: parse options, build the server, serve.

mod config;
mod service;
mod tls;

use damselfly_commands::{Host, Server, ServerOptions};
use std::sync::Arc;

/// mimalloc, counted: `used_memory` and maxmemory read the count.
#[global_allocator]
static GLOBAL: damselfly_storage::memory::Counting<mimalloc::MiMalloc> =
    damselfly_storage::memory::Counting(mimalloc::MiMalloc);

/// Shard count: a power of two well above any worker count we run with, so
/// that unrelated keys rarely share a lock.
const SHARDS: usize = 256;

/// Log lines go to stdout, as Redis's do with no logfile, or to stderr with
/// `--logtostderr` (Dragonfly's flag).
static LOG_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Redis-style log line: `pid:M 23 Nov 2026 10:00:00.000 * message`.
pub fn log(msg: &str) {
    log_as('*', msg);
}

/// A log line with Redis's level mark (`*` notice, `#` warning).
pub fn log_as(level: char, msg: &str) {
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
    let line = format!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} {level} {}",
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
    // A closed log stream must not take the server down (println! panics).
    use std::io::Write;
    let _ = if LOG_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        writeln!(std::io::stderr().lock(), "{line}")
    } else {
        writeln!(std::io::stdout().lock(), "{line}")
    };
}

fn unsafe_zeroed_tm() -> libc::tm {
    // SAFETY: libc::tm is a plain C struct of integers (and, on some
    // platforms, a nullable pointer), for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

struct ProcessHost;

/// The unix socket file to remove on exit, once listening there.
static UNIX_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// The listening sockets, shut first on exit.
static LISTENING: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
/// Set once exiting: an acceptor whose socket was shut is not an error.
static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn exit_now() -> ! {
    EXITING.store(true, std::sync::atomic::Ordering::SeqCst);
    // Refuse new connections before any open one closes (at exit): a
    // client that sees its connection close finds the port shut, as
    // Redis closes its listeners first.
    for fd in LISTENING.get().into_iter().flatten() {
        // SAFETY: fd is a listening socket this process opened and never
        // closes; shutdown only changes its state (its acceptor's
        // accept() then fails, see EXITING).
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
    if let Some(path) = UNIX_PATH.get().filter(|p| !p.is_empty()) {
        log("Removing the unix socket file.");
        let _ = std::fs::remove_file(path);
    }
    log("Damselfly is now ready to exit, bye bye...");
    std::process::exit(0);
}

impl Host for ProcessHost {
    /// SHUTDOWN exits in the command, as Redis does: before the asking
    /// connection closes, so a client that sees it close and connects
    /// again finds the port shut, not a server still on its way out.
    fn shutdown(&self) {
        log("User requested shutdown...");
        exit_now();
    }

    fn log(&self, msg: &str) {
        log(msg);
    }
}

/// Users from requirepass, the config file's `user` lines and the aclfile.
fn setup_acl(server: &Server, opts: &config::Options) -> Result<(), String> {
    let acl = &server.acl;
    acl.sync_config(&server.config);
    let pass = server.config.get("requirepass").unwrap_or_default();
    acl.set_requirepass(pass.as_bytes());
    let mut seen = Vec::new();
    for line in &opts.users {
        let mut words = line.split_whitespace();
        let name = words.next().ok_or("a 'user' directive needs a name")?;
        if seen.contains(&name) {
            return Err(format!(
                "user '{name}': Duplicate user found. A user can only be defined once in config files"
            ));
        }
        seen.push(name);
        let ops: Vec<&[u8]> = words.map(str::as_bytes).collect();
        acl.define_user(name, &ops)
            .map_err(|e| format!("user '{name}': {e}"))?;
    }
    if !opts.aclfile.is_empty() {
        *acl.file.write() = opts.aclfile.clone();
        acl.load_file()
            .map_err(|e| format!("aclfile {}: {e}", opts.aclfile))?;
    }
    Ok(())
}

/// `disable-thp yes`, as Redis does: with transparent huge pages a growing
/// value faults in and zeroes 2 MB at a time (a latency spike, and on this
/// VM 9% of LPUSH's CPU in `clear_page_erms`). Threads started later
/// inherit the setting. A kernel without the prctl leaves THP as it is.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        log_as(
            '#',
            "WARNING could not disable transparent huge pages (prctl PR_SET_THP_DISABLE failed)",
        );
    }
}

fn main() {
    GLOBAL.activate();
    // vars() would panic on a variable that is not UTF-8; such variables
    // cannot be DFLY_ flags anyway.
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let opts = match config::parse(args, env) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    LOG_TO_STDERR.store(opts.logtostderr, std::sync::atomic::Ordering::Relaxed);
    if let Some(dir) = &opts.dir {
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::env::set_current_dir(dir)) {
            eprintln!("ERROR: cannot use --dir {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    let tls = if opts.tls || opts.tls_port != 0 {
        match tls::server_config(
            &opts.tls_cert_file,
            &opts.tls_key_file,
            &opts.tls_ca_cert_file,
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let listen = |bind: &str, port: u16| match std::net::TcpListener::bind((bind, port)) {
        Ok(l) => l,
        Err(e) => {
            // "Failed listening on port" is what Redis's test suite and
            // scripts look for when a port is taken.
            log_as(
                '#',
                &format!("Failed listening on port {port} (tcp) at {bind}: {e}, aborting."),
            );
            eprintln!("ERROR: cannot listen on {bind}:{port}: {e}");
            std::process::exit(1);
        }
    };
    // Redis's form: `tls-port N` adds a TLS listener; with `port 0` it is
    // the only one. Dragonfly's: `--tls` makes the main port TLS.
    let tls_only = opts.tls_port != 0 && opts.port == 0;
    let (main_port, main_tls) = if tls_only {
        (opts.tls_port, tls.clone())
    } else {
        (opts.port, tls.clone().filter(|_| opts.tls))
    };
    let listener = listen(&opts.bind, main_port);
    let tls_listener = (opts.tls_port != 0 && !tls_only).then(|| listen(&opts.bind, opts.tls_port));
    let admin = (opts.admin_port != 0).then(|| {
        let bind = if opts.admin_bind.is_empty() {
            opts.bind.as_str()
        } else {
            opts.admin_bind.as_str()
        };
        listen(bind, opts.admin_port)
    });
    let port = listener.local_addr().map_or(main_port, |a| a.port());
    let server = Arc::new(Server::new(
        ServerOptions {
            shards: SHARDS,
            dbnum: opts.dbnum,
            port,
            threads: opts.threads,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            config_file: opts
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        },
        Box::new(ProcessHost),
    ));
    let cfg = &server.config;
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    // Protected mode is Redis's: on by default for a redis.conf start, off
    // for Dragonfly-style flags (Dragonfly has none, and its users expect
    // a password-less container to answer its network).
    let protected = if opts.config_file.is_some() {
        "yes"
    } else {
        "no"
    };
    let start_params = std::iter::once(("protected-mode", protected.to_string()))
        .chain(opts.params.iter().map(|(k, v)| (*k, v.clone())));
    for (k, v) in start_params.chain([
        ("port", port.to_string()),
        ("bind", opts.bind.clone()),
        ("databases", opts.dbnum.to_string()),
        ("dir", dir),
        ("proactor_threads", opts.threads.to_string()),
    ]) {
        if let Err(e) = cfg.set_initial(k, &v) {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
    if cfg.get("disable-thp").as_deref() == Some("yes") {
        disable_transparent_huge_pages();
    }
    if let Err(e) = setup_acl(&server, &opts) {
        eprintln!("ERROR: {e}");
        std::process::exit(1);
    }
    log_as(
        '#',
        &format!(
            "Damselfly {} starting (Redis version=7.0.15 compatible), port: {port} PID: {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ),
    );
    for w in &opts.warnings {
        log_as('#', &format!("WARNING {w}"));
    }
    for w in damselfly_commands::config::idle_warnings(&cfg, opts.params.iter().map(|(k, _)| *k)) {
        log_as('#', &format!("WARNING {w}"));
    }
    log(&format!(
        "Running with {} worker threads, {SHARDS} shards, {} databases",
        opts.threads, opts.dbnum
    ));
    let admin_port = admin
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(0, |a| a.port());
    damselfly_commands::persist::init(&server);
    let snapshot = std::env::current_dir().ok().and_then(|d| {
        damselfly_commands::persist::startup_file(&d, &cfg.get("dbfilename").unwrap_or_default())
    });
    if snapshot.is_some() {
        // Clients connecting meanwhile get -LOADING.
        server
            .persistence
            .loading
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let app = Arc::new(service::App {
        server: server.clone(),
        admin_port,
        admin_nopass: opts.admin_nopass,
    });
    let threads = opts.threads;
    let mut listeners = vec![damselfly_net::Listener {
        tcp: listener,
        tls: main_tls,
    }];
    if let Some(tcp) = tls_listener {
        log(&format!("TLS port {} is open", opts.tls_port));
        listeners.push(damselfly_net::Listener {
            tcp,
            tls: tls.clone(),
        });
    }
    if let Some(tcp) = admin {
        log(&format!("Admin port {admin_port} is open for operators"));
        listeners.push(damselfly_net::Listener {
            tcp,
            tls: tls.filter(|_| opts.tls),
        });
    }
    let unix_path = cfg.get("unixsocket").unwrap_or_default();
    let unix = match unix_listener(&unix_path, &cfg.get("unixsocketperm").unwrap_or_default()) {
        Ok(u) => u,
        Err(e) => {
            log_as('#', &e);
            std::process::exit(1);
        }
    };
    if unix.is_some() {
        let _ = UNIX_PATH.set(unix_path.clone());
        log(&format!(
            "The server is now ready to accept connections at {unix_path}"
        ));
    }
    {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<i32> = listeners.iter().map(|l| l.tcp.as_raw_fd()).collect();
        fds.extend(unix.as_ref().map(AsRawFd::as_raw_fd));
        let _ = LISTENING.set(fds);
    }
    std::thread::spawn(move || {
        if let Err(e) = damselfly_net::serve_all_and_unix(listeners, unix, app, threads) {
            if EXITING.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            log(&format!("listener failed: {e}"));
            std::process::exit(1);
        }
    });
    log(&format!(
        "Server initialized, listening on {}:{port}",
        opts.bind
    ));
    damselfly_storage::memory::mark_startup();
    let master = cfg.get("replicaof").unwrap_or_default();
    let master = damselfly_commands::replicaof::parse_replicaof(&master);
    // The replication point a loaded RDB names: a replica offers it to its
    // master (partial resync after a restart).
    let mut continue_own = false;
    if let Some(path) = snapshot {
        log(&format!("Loading RDB {}", path.display()));
        let start = std::time::Instant::now();
        match damselfly_commands::persist::load_file(&server, &path, false) {
            Ok(stats) => {
                log(&format!(
                    "Done loading RDB, keys loaded: {}, keys expired: {}.",
                    stats.keys_loaded, stats.keys_expired
                ));
                log(&format!(
                    "DB loaded from disk: {:.3} seconds",
                    start.elapsed().as_secs_f64()
                ));
                continue_own = damselfly_commands::repl_master::restore_from_rdb(
                    &server,
                    &stats.aux,
                    master.is_some(),
                );
            }
            Err(e) => {
                // Never serve an empty dataset over a snapshot we could not read.
                log(&format!("Fatal error loading the DB: {e}. Exiting."));
                std::process::exit(1);
            }
        }
    }
    if let Some((host, port)) = master {
        log(&format!("Connecting to MASTER {host}:{port}"));
        damselfly_commands::replicaof::follow(&server, &host, port, continue_own);
    }
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
        loop {
            let term_recv = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    log("Received SIGINT scheduling shutdown...");
                }
                _ = term_recv => {
                    log("Received SIGTERM scheduling shutdown...");
                }
            };
            // A signal saves here when rules or a cron are set, as Redis
            // does, and a failed save keeps the server running.
            if !damselfly_commands::persist::saving_configured(&server) {
                break;
            }
            log("Saving the final RDB snapshot before exiting.");
            if damselfly_commands::persist::save_now(&server) {
                break;
            }
            log("Error trying to save the DB, can't exit.");
        }
    });
    exit_now();
}

/// Redis's `unixsocket`: a listener at `path` (a stale socket file there
/// is replaced), its permissions set from `unixsocketperm` (octal, 0:
/// left as the umask makes them).
fn unix_listener(
    path: &str,
    perm: &str,
) -> Result<Option<std::os::unix::net::UnixListener>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    let mode = u32::from_str_radix(if perm.is_empty() { "0" } else { perm }, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("Invalid socket file permissions: unixsocketperm {perm}"))?;
    let _ = std::fs::remove_file(path);
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("Failed opening Unix socket: {e}"))?;
    if mode != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("Failed setting Unix socket permissions: {e}"))?;
    }
    Ok(Some(l))
}
