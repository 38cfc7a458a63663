//! Starting the binary the ways people do: Dragonfly flags, `DFLY_`
//! environment, `--flagfile`, a redis.conf (with `include` and CONFIG
//! REWRITE), the compose file of the issue, bad values, TLS, the admin port.

use crate::support::{free_port, tempdir, which, Conn};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A started server, killed (and its log removed) when dropped.
struct Started {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts damselfly with exactly `args` and `env` (and no other DFLY_
/// variables), and waits until `port` answers a request.
fn start(args: &[&str], env: &[(&str, &str)], port: u16) -> Started {
    // Its log goes to a file, so that a failed start says why.
    let log = std::env::temp_dir().join(format!(
        "damselfly-startup-{}-{port}.log",
        std::process::id()
    ));
    let log_file = std::fs::File::create(&log).expect("create the start-up log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_damselfly"));
    cmd.args(args).stdout(Stdio::null()).stderr(log_file);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DFLY_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn damselfly");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            panic!("damselfly exited during start-up: {status}\n{said}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 64];
            if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                return Started { child, port, log };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    panic!("damselfly did not answer on port {port}\n{said}");
}

/// Runs damselfly expecting it to refuse to start; returns its stderr.
fn refuses(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_damselfly"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run damselfly");
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// CONFIG GET name on an authenticated connection.
fn config_get(port: u16, pass: Option<&str>, name: &str) -> String {
    let mut c = Conn::open(port);
    if let Some(p) = pass {
        assert_eq!(c.cmd(&["AUTH", p]), "+OK\r\n");
    }
    let reply = c.cmd(&["CONFIG", "GET", name]);
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert!(lines.len() >= 5, "CONFIG GET {name}: {reply:?}");
    lines[4].to_string()
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new(which("redis-cli").expect("redis-cli is installed"))
        .args(args)
        .output()
        .expect("run redis-cli");
    let text = if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    };
    String::from_utf8_lossy(text).trim().to_string()
}

/// The `command:` of docker-compose.yml split as compose splits it (words,
/// double quotes), with `${DRAGONFLY_PASSWORD}` replaced by `pass`.
fn compose_command(pass: &str) -> (Vec<String>, Vec<(String, String)>) {
    let yml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml");
    let lines: Vec<&str> = yml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "command: >")
        .expect("a folded command");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| indent(l) > indent(lines[start]))
        .map(|l| l.trim())
        .collect();
    let text = body.join(" ").replace("${DRAGONFLY_PASSWORD}", pass);
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    let env_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("environment:"))
        .expect("an environment");
    let env = env_line
        .split('"')
        .skip(1)
        .step_by(2)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("${DRAGONFLY_PASSWORD}", pass)))
        .collect();
    (words, env)
}

#[test]
fn the_compose_command_starts_and_its_healthcheck_passes() {
    // docker-compose.yml's command and environment, word for word, except
    // the ports and /data (tests cannot take 6379 or write to /).
    let pass = "s3cret-Pass";
    let (words, env) = compose_command(pass);
    assert!(
        words.contains(&"--snapshot_cron=0 2 * * *".to_string()),
        "{words:?}"
    );
    let dir = tempdir::Dir::new("compose");
    let data = dir.0.join("data");
    let (port, admin) = (free_port(), free_port());
    let args: Vec<String> = words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("--port", _)) => format!("--port={port}"),
            Some(("--admin_port", _)) => format!("--admin_port={admin}"),
            Some(("--dir", "/data")) => format!("--dir={}", data.display()),
            _ => w,
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = start(&args, &env, port);
    // The healthcheck: redis-cli -p PORT -a PASSWORD PING
    let port_s = port.to_string();
    assert_eq!(redis_cli(&["-p", &port_s, "-a", pass, "PING"]), "PONG");
    assert_eq!(
        redis_cli(&["-p", &port_s, "PING"]),
        "NOAUTH Authentication required."
    );
    assert_eq!(config_get(s.port, Some(pass), "maxmemory"), "8589934592");
    assert_eq!(config_get(s.port, Some(pass), "snapshot_cron"), "0 2 * * *");
    assert_eq!(
        config_get(s.port, Some(pass), "dbfilename"),
        "dump-{timestamp}.rdb"
    );
    assert_eq!(config_get(s.port, Some(pass), "hz"), "100");
    assert_eq!(config_get(s.port, Some(pass), "keys_output_limit"), "8192");
    assert!(data.is_dir(), "--dir is created");
    // The admin port serves the same protocol, with the same password.
    let admin_s = admin.to_string();
    assert_eq!(redis_cli(&["-p", &admin_s, "-a", pass, "PING"]), "PONG");
}

#[test]
fn environment_and_flagfile_set_config_and_the_command_line_wins() {
    let dir = tempdir::Dir::new("flagfile");
    let port = free_port();
    let flagfile = dir.0.join("dragonfly.flags");
    std::fs::write(
        &flagfile,
        format!(
            "# comment\n--port={port}\n--bind=127.0.0.1\n--maxmemory=512mb\n--dbnum 4\n--nocache_mode\n"
        ),
    )
    .unwrap();
    let ff = format!("--flagfile={}", flagfile.display());
    let dirflag = format!("--dir={}", dir.0.display());
    let s = start(
        &[&ff, &dirflag, "--hz=50"],
        &[
            ("DFLY_hz", "20"),
            ("DFLY_keys_output_limit", "100"),
            ("DFLY_PASSWORD", "pw"),
        ],
        port,
    );
    assert_eq!(config_get(s.port, Some("pw"), "maxmemory"), "536870912");
    assert_eq!(config_get(s.port, Some("pw"), "databases"), "4");
    assert_eq!(config_get(s.port, Some("pw"), "hz"), "50");
    assert_eq!(config_get(s.port, Some("pw"), "keys_output_limit"), "100");
    assert_eq!(config_get(s.port, Some("pw"), "cache_mode"), "false");
    // Either spelling names a parameter: Dragonfly's and Redis's.
    assert_eq!(config_get(s.port, Some("pw"), "cache-mode"), "false");
    assert_eq!(config_get(s.port, Some("pw"), "tcp_keepalive"), "300");
    assert_eq!(config_get(s.port, Some("pw"), "dbnum"), "4");
    // CONFIG GET * lists Redis's parameters only; `_` patterns find
    // Dragonfly's.
    let mut c = Conn::open(s.port);
    c.cmd(&["AUTH", "pw"]);
    assert!(!c.cmd(&["CONFIG", "GET", "*"]).contains("keys_output_limit"));
    assert!(c
        .cmd(&["CONFIG", "GET", "*_limit"])
        .contains("keys_output_limit"));
}

#[test]
fn a_redis_conf_starts_it_and_config_rewrite_writes_back() {
    let dir = tempdir::Dir::new("redisconf");
    let port = free_port();
    let inc = dir.0.join("extra.conf");
    std::fs::write(
        &inc,
        "maxmemory-policy allkeys-lru\nhash-max-ziplist-entries 64\n",
    )
    .unwrap();
    let conf = dir.0.join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "# a Redis config file\nport {port}\nbind 127.0.0.1\ndir \"{}\"\n\
             requirepass \"with space\"\nmaxmemory 100mb\ndaemonize no\nsave \"\"\n\
             include {}\nuser alice on >pw ~a* +get\n",
            dir.0.display(),
            inc.display()
        ),
    )
    .unwrap();
    let conf_s = conf.display().to_string();
    let s = start(&[&conf_s, "--hz", "25"], &[], port);
    let pass = Some("with space");
    assert_eq!(config_get(s.port, pass, "maxmemory"), "104857600");
    assert_eq!(config_get(s.port, pass, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_get(s.port, pass, "hash-max-listpack-entries"), "64");
    assert_eq!(config_get(s.port, pass, "hz"), "25");
    assert_eq!(config_get(s.port, pass, "protected-mode"), "yes");
    let mut c = Conn::open(s.port);
    c.cmd(&["AUTH", "with space"]);
    let info = c.cmd(&["INFO", "server"]);
    assert!(info.contains("redis_version:7.0.15\r\n"), "{info}");
    assert!(
        info.contains(&format!(
            "config_file:{}",
            std::fs::canonicalize(&conf).unwrap().display()
        )),
        "{info}"
    );
    let mut c = Conn::open(s.port);
    assert_eq!(c.cmd(&["AUTH", "alice", "pw"]), "+OK\r\n");
    assert!(c.cmd(&["SET", "a1", "v"]).starts_with("-NOPERM"));
    assert_eq!(c.cmd(&["AUTH", "with space"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "2mb"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-max-len", "7"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("maxmemory 2097152\n"), "{text}");
    assert!(text.contains("slowlog-max-len 7\n"), "{text}");
    assert!(text.contains("requirepass \"with space\"\n"), "{text}");
    assert!(
        text.contains(&format!("include {}\n", inc.display())),
        "{text}"
    );
    assert!(text.contains("user alice on #"), "{text}");
    assert_eq!(text.matches("maxmemory ").count(), 1, "{text}");
    drop(s);
    // The rewritten file starts the server again with the same settings.
    let s = start(&[&conf_s], &[], port);
    assert_eq!(config_get(s.port, pass, "maxmemory"), "2097152");
    assert_eq!(config_get(s.port, pass, "slowlog-max-len"), "7");
}

#[test]
fn bad_values_and_unknown_names_stop_start_up_naming_them() {
    let first_line = |s: String| s.lines().next().unwrap_or("").to_string();
    assert_eq!(
        first_line(refuses(&["--port=abc"], &[])),
        "ERROR: illegal value 'abc' specified for flag 'port'"
    );
    assert!(refuses(&["--maxmemory=lots"], &[]).contains("'maxmemory'"));
    assert!(refuses(&["--snapshot_cron=0 2 * *"], &[]).contains("'snapshot_cron'"));
    assert!(refuses(&["--no_such_flag=1"], &[]).contains("'no_such_flag'"));
    assert!(refuses(&[], &[("DFLY_no_such_flag", "1")]).contains("'DFLY_no_such_flag'"));
    assert!(refuses(&["--flagfile=/nonexistent/flags"], &[]).contains("flagfile"));
    assert!(refuses(&["/nonexistent/redis.conf"], &[]).contains("redis.conf"));
    let dir = tempdir::Dir::new("badconf");
    let conf = dir.0.join("redis.conf");
    std::fs::write(&conf, "port 7777\nnot-a-directive yes\n").unwrap();
    assert!(refuses(&[&conf.display().to_string()], &[]).contains("'not-a-directive'"));
    let missing = "--tls_cert_file=/nonexistent/cert.pem";
    assert!(
        refuses(&["--tls", missing, "--tls_key_file=/nonexistent/k"], &[])
            .contains("'tls_cert_file'")
    );
}

/// redis-cli over TLS with the client certificate of `make_certs(dir)`.
fn tls_cli(dir: &std::path::Path, port: u16, args: &[&str]) -> String {
    let f = |n: &str| dir.join(n).display().to_string();
    let (ca, cert, key, p) = (
        f("ca.crt"),
        f("client.crt"),
        f("client.key"),
        port.to_string(),
    );
    let mut all = vec![
        "--tls",
        "--sni",
        "localhost",
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "-p",
        &p,
    ];
    all.extend_from_slice(args);
    redis_cli(&all)
}

/// A CA, a server certificate for localhost and a client certificate, as
/// PEM files in `dir`.
fn make_certs(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    // Distinct subject names: OpenSSL takes a certificate whose subject is
    // its issuer's for a self-signed one.
    let params = |names: Vec<String>, cn: &str| {
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = params(Vec::new(), "damselfly test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = params(vec!["localhost".into()], "localhost")
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = params(vec!["client".into()], "client")
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    for (name, pem) in [
        ("ca.crt", ca.pem()),
        ("server.crt", server.pem()),
        ("server.key", server_key.serialize_pem()),
        ("client.crt", client.pem()),
        ("client.key", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
}

#[test]
fn tls_with_client_certificates_works_with_redis_cli() {
    let dir = tempdir::Dir::new("tls");
    make_certs(&dir.0);
    let f = |n: &str| dir.0.join(n).display().to_string();
    let port = free_port();
    let args = [
        "--tls".to_string(),
        format!("--tls_cert_file={}", f("server.crt")),
        format!("--tls_key_file={}", f("server.key")),
        format!("--tls_ca_cert_file={}", f("ca.crt")),
        format!("--port={port}"),
        "--bind=127.0.0.1".to_string(),
        format!("--dir={}", dir.0.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _s = start(&args, &[], port);
    let p = port.to_string();
    let ca = f("ca.crt");
    let with = |extra: &[&str]| tls_cli(&dir.0, port, extra);
    assert_eq!(with(&["SET", "k", "over tls"]), "OK");
    assert_eq!(with(&["GET", "k"]), "over tls");
    // Without a client certificate, or without TLS, nothing is served.
    let no_cert = redis_cli(&[
        "--tls",
        "--sni",
        "localhost",
        "--cacert",
        &ca,
        "-p",
        &p,
        "PING",
    ]);
    assert_ne!(no_cert, "PONG");
    assert_ne!(redis_cli(&["-p", &p, "PING"]), "PONG");
}

#[test]
fn admin_nopass_lets_operators_in_without_the_password() {
    let dir = tempdir::Dir::new("admin");
    let (port, admin) = (free_port(), free_port());
    let args = [
        format!("--port={port}"),
        format!("--admin_port={admin}"),
        "--admin_bind=127.0.0.1".to_string(),
        "--admin_nopass".to_string(),
        "--requirepass=pw".to_string(),
        "--bind=127.0.0.1".to_string(),
        format!("--dir={}", dir.0.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _s = start(&args, &[], port);
    assert_eq!(redis_cli(&["-p", &admin.to_string(), "PING"]), "PONG");
    assert_eq!(
        redis_cli(&["-p", &port.to_string(), "PING"]),
        "NOAUTH Authentication required."
    );
}

#[test]
fn protected_mode_refuses_remote_clients_without_a_password() {
    // Needs an address of this machine that is not loopback.
    let Some(ip) = local_non_loopback() else {
        return;
    };
    let dir = tempdir::Dir::new("protected");
    let port = free_port();
    let conf = dir.0.join("redis.conf");
    std::fs::write(
        &conf,
        format!("port {port}\nbind 0.0.0.0\ndir {}\n", dir.0.display()),
    )
    .unwrap();
    let _s = start(&[&conf.display().to_string()], &[], port);
    let mut remote = TcpStream::connect((ip, port)).unwrap();
    remote
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    remote.write_all(b"PING\r\n").unwrap();
    let mut reply = String::new();
    let _ = remote.read_to_string(&mut reply);
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode"),
        "{reply}"
    );
    assert_eq!(redis_cli(&["-p", &port.to_string(), "PING"]), "PONG");
}

fn local_non_loopback() -> Option<std::net::IpAddr> {
    // The address a UDP socket would use to reach a public address (no
    // packet is sent).
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_redis_conf_with_tls_port_serves_tls_beside_or_instead_of_plain() {
    let dir = tempdir::Dir::new("tlsport");
    make_certs(&dir.0);
    let f = |n: &str| dir.0.join(n).display().to_string();
    let (plain, secure) = (free_port(), free_port());
    let files = format!(
        "tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ndir {}\nbind 127.0.0.1\n",
        f("server.crt"),
        f("server.key"),
        f("ca.crt"),
        dir.0.display()
    );
    let tls_ping = |port: u16| tls_cli(&dir.0, port, &["PING"]);
    let both = dir.0.join("both.conf");
    std::fs::write(&both, format!("port {plain}\ntls-port {secure}\n{files}")).unwrap();
    let s = start(&[&both.display().to_string()], &[], plain);
    assert_eq!(redis_cli(&["-p", &plain.to_string(), "PING"]), "PONG");
    assert_eq!(tls_ping(secure), "PONG");
    assert_eq!(config_get(plain, None, "tls-port"), secure.to_string());
    drop(s);
    let only = dir.0.join("only.conf");
    std::fs::write(&only, format!("port 0\ntls-port {secure}\n{files}")).unwrap();
    let _s = start(&[&only.display().to_string()], &[], secure);
    assert_eq!(tls_ping(secure), "PONG");
}

/// `THP_enabled` of a process, from /proc (Linux 5.0 and later).
fn thp_enabled(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(|v| v.trim().to_string())
}

#[test]
fn disable_thp_turns_transparent_huge_pages_off_as_redis_does() {
    let Some(ours) = thp_enabled(std::process::id()) else {
        return; // a kernel that does not report it
    };
    let port = free_port();
    let s = start(
        &["--port", &port.to_string(), "--bind", "127.0.0.1"],
        &[],
        port,
    );
    assert_eq!(thp_enabled(s.child.id()).as_deref(), Some("0"));
    assert_eq!(config_get(s.port, None, "disable-thp"), "yes");
    let port = free_port();
    let kept = start(
        &[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--disable-thp",
            "no",
        ],
        &[],
        port,
    );
    assert_eq!(thp_enabled(kept.child.id()), Some(ours));
    assert_eq!(config_get(kept.port, None, "disable-thp"), "no");
}
