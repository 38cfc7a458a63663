//! Test support: start the real `damselfly` binary and Debian's
//! `redis-server` on free ports, talk raw RESP to them, and compare replies.

#![allow(dead_code)]

pub mod resp;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use resp::Conn;

/// A server process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub dir: tempdir::Dir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let n: u64 = rand::random();
            let p = std::env::temp_dir().join(format!("damselfly-test-{tag}-{n:x}"));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_ready(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf) {
                    if buf[..n].starts_with(b"+PONG") {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Do not leave the process running after the failed test.
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not answer PING on port {port}");
}

/// Spawns damselfly on `port` in `dir` with extra flags, without waiting
/// for it; its stderr goes to `stderr`.
pub fn spawn_damselfly(port: u16, dir: &std::path::Path, extra: &[&str], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_damselfly"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--proactor_threads",
            "2",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn damselfly")
}

/// Starts damselfly with extra flags; retries on a port collision.
pub fn damselfly(extra: &[&str]) -> Proc {
    for _ in 0..5 {
        let port = free_port();
        let dir = tempdir::Dir::new("dfly");
        let mut child = spawn_damselfly(port, &dir.0, extra, Stdio::null());
        std::thread::sleep(Duration::from_millis(10));
        if let Ok(Some(_)) = child.try_wait() {
            continue;
        }
        wait_ready(port, &mut child, "damselfly");
        return Proc { child, port, dir };
    }
    panic!("could not start damselfly");
}

/// Starts Debian's redis-server with no persistence.
pub fn redis() -> Proc {
    redis_in(tempdir::Dir::new("redis"))
}

/// Starts Debian's redis-server with no save rules in `dir` (which may hold
/// a `dump.rdb` for it to load).
pub fn redis_in(dir: tempdir::Dir) -> Proc {
    redis_in_with(dir, &[])
}

/// Starts redis-server with extra arguments (`--enable-debug-command yes`).
pub fn redis_with(extra: &[&str]) -> Proc {
    redis_in_with(tempdir::Dir::new("redis"), extra)
}

/// `redis_in` with extra arguments (`--replicaof host port`...).
pub fn redis_in_with(dir: tempdir::Dir, extra: &[&str]) -> Proc {
    let bin = which("redis-server")
        .expect("redis-server is not installed: run the README's test command, which installs it");
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir.0)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        std::thread::sleep(Duration::from_millis(10));
        if let Ok(Some(_)) = child.try_wait() {
            continue;
        }
        wait_ready(port, &mut child, "redis-server");
        return Proc { child, port, dir };
    }
    panic!("could not start redis-server");
}

pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Splits a script line as redis-cli would (quotes, `\x` escapes).
pub fn words(line: &str) -> Vec<Vec<u8>> {
    damselfly_protocol::split_args(line.as_bytes())
        .unwrap_or_else(|| panic!("bad quoting in test line: {line}"))
}

/// Runs `script` (one command per line; `#` lines are comments) on a fresh
/// connection to Redis and to Damselfly, both flushed first, and asserts that
/// every reply is byte-for-byte identical. Lines starting with `~` are sent
/// to both but their replies are not compared (non-deterministic output).
pub fn diff(script: &str) {
    let r = redis();
    let d = damselfly(&[]);
    diff_on(&r, &d, script);
}

pub fn diff_on(r: &Proc, d: &Proc, script: &str) {
    let mut rc = Conn::open(r.port);
    let mut dc = Conn::open(d.port);
    rc.cmd(&["FLUSHALL"]);
    dc.cmd(&["FLUSHALL"]);
    let mut failures = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (compare, line) = match line.strip_prefix('~') {
            Some(rest) => (false, rest.trim()),
            None => (true, line),
        };
        let args = words(line);
        let want = rc.raw(&args);
        let got = dc.raw(&args);
        if compare && want != got {
            failures.push(format!(
                "  {line}\n    redis:     {:?}\n    damselfly: {:?}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "replies differ from redis-server:\n{}",
        failures.join("\n")
    );
}
