//! CONFIG GET/SET over every parameter Redis 7.0 has: names and defaults
//! against the reference `CONFIG GET *`, bad values against redis-server.

use crate::support::{damselfly, diff_on, redis, Conn};
use std::collections::BTreeMap;

fn reference() -> BTreeMap<String, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/redis-reference/config-defaults-7.0.15.json"
    );
    let text = std::fs::read_to_string(path).expect("reference config defaults");
    serde_json::from_str(&text).expect("reference JSON")
}

/// `CONFIG GET *` as name → value.
fn config_all(c: &mut Conn) -> BTreeMap<String, String> {
    let raw = c.raw(&[b"CONFIG".to_vec(), b"GET".to_vec(), b"*".to_vec()]);
    let text = String::from_utf8_lossy(&raw);
    let mut lines = text.split("\r\n").skip(1);
    let mut bulks = Vec::new();
    while let Some(head) = lines.next() {
        if head.starts_with('$') {
            bulks.push(lines.next().unwrap_or_default().to_string());
        }
    }
    bulks
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// Values that differ from the reference for a reason: the reference server
/// ran daemonized with its own port and directory, and a few settings are
/// Damselfly's start-up choices (see the README's CONFIG section).
const DIFFERENT_VALUES: &[&str] = &[
    "daemonize",
    "port",
    "bind",
    "dir",
    "protected-mode",
    "save",
    "databases",
    "client-output-buffer-limit",
];

#[test]
fn config_get_star_lists_redis_names_with_redis_defaults() {
    let want = reference();
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let got = config_all(&mut c);
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| !DIFFERENT_VALUES.contains(&k.as_str()) && got[*k] != **v)
        .map(|(k, v)| format!("{k}: redis {v:?}, damselfly {:?}", got[k]))
        .collect();
    assert!(wrong.is_empty(), "defaults differ: {wrong:#?}");
}

/// Parameters whose CONFIG SET Redis acts on in ways a test server cannot
/// share (moving listeners, files, passwords, replication), or where we
/// refuse what Redis accepts: listed in the README.
const SET_SKIPPED: &[&str] = &[
    "port",
    "bind",
    "dir",
    "dbfilename",
    "requirepass",
    "masterauth",
    "masteruser",
    "replicaof",
    "slaveof",
    "unixsocket",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "aclfile",
    "databases",
];

#[test]
fn config_set_bad_values_get_redis_errors() {
    let r = redis();
    let d = damselfly(&[]);
    let mut script = String::new();
    for (name, default) in reference() {
        if SET_SKIPPED.contains(&name.as_str()) {
            continue;
        }
        for bad in ["bad!", "-1", "99999999999999999999", "", "1 2 3", "YES"] {
            script.push_str(&format!("CONFIG SET {name} \"{bad}\"\n"));
            // Start-up values that differ make the value read back differ.
            let get = if DIFFERENT_VALUES.contains(&name.as_str()) {
                "~"
            } else {
                ""
            };
            script.push_str(&format!("{get}CONFIG GET {name}\n"));
        }
        script.push_str(&format!("~CONFIG SET {name} \"{default}\"\n"));
    }
    diff_on(&r, &d, &script);
}

#[test]
fn config_set_special_values_match_redis() {
    let r = redis();
    let d = damselfly(&[]);
    diff_on(
        &r,
        &d,
        r#"
        CONFIG SET oom-score-adj-values "3 2 1"
        CONFIG GET oom-score-adj-values
        CONFIG SET oom-score-adj-values "1 2 3000"
        CONFIG SET oom-score-adj-values " 1 2 3"
        CONFIG SET oom-score-adj relative
        CONFIG GET oom-score-adj
        CONFIG SET oom-score-adj absolute
        CONFIG GET oom-score-adj
        CONFIG SET oom-score-adj no
        CONFIG SET proc-title-template "{title}"
        CONFIG SET proc-title-template "x{foo}"
        CONFIG SET proc-title-template "{title"
        CONFIG SET proc-title-template "title}"
        CONFIG GET proc-title-template
        CONFIG SET proc-title-template "{title} {port} {tls-port} {server-mode} {listen-addr}"
        CONFIG GET proc-title-template
        CONFIG SET shutdown-on-sigint "force save now"
        CONFIG GET shutdown-on-sigint
        CONFIG SET shutdown-on-sigint "save nosave"
        CONFIG SET shutdown-on-sigint "default now"
        CONFIG GET shutdown-on-sigint
        CONFIG SET shutdown-on-sigterm NOSAVE
        CONFIG GET shutdown-on-sigterm
        CONFIG SET cluster-link-sendbuf-limit 18446744073709551616
        CONFIG GET cluster-link-sendbuf-limit
        CONFIG SET cluster-link-sendbuf-limit 1gb
        CONFIG GET cluster-link-sendbuf-limit
        CONFIG SET cluster-announce-hostname a.b-c
        CONFIG SET cluster-announce-hostname a_b
        CONFIG SET activedefrag yes
        CONFIG SET slave-priority 7
        CONFIG GET replica-priority
        ~CONFIG GET *priority*
        CONFIG SET appendfsync ALWAYS
        CONFIG GET appendfsync
        CONFIG GET key-load-delay
        CONFIG GET rdb-key-save-delay
        CONFIG SET lazyfree-lazy-user-del yes maxmemory-clients 200% maxmemory 1
        CONFIG GET lazyfree-lazy-user-del
        CONFIG GET maxmemory
        CONFIG SET daemonize yes
        CONFIG SET maxmemory 1 maxmemory 2
        "#,
    );
}

/// Start-up log lines up to "Ready to accept connections".
fn startup_log(args: &[&str]) -> String {
    use std::io::BufRead;
    let dir = crate::support::tempdir::Dir::new("idlewarn");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_damselfly"))
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(args)
        .arg("--dir")
        .arg(&dir.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn damselfly");
    let mut log = String::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if line.contains("Ready to accept connections") {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn stored_only_parameters_warn_at_startup_when_not_default() {
    let log = startup_log(&[
        "--appendfsync",
        "always",
        "--activerehashing",
        "yes",
        "--slave-lazy-flush",
        "yes",
    ]);
    assert!(
        log.contains(
            "WARNING 'appendfsync always' is stored but not acted on: there is no append-only file"
        ),
        "{log}"
    );
    assert!(log.contains("'replica-lazy-flush yes' is stored"), "{log}");
    // The default value changes nothing, so it says nothing.
    assert!(!log.contains("activerehashing"), "{log}");
}

#[test]
fn enable_protected_configs_lets_config_set_move_dir_and_dbfilename() {
    let d = damselfly(&["--enable-protected-configs", "yes"]);
    let mut c = Conn::open(d.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", "/nonexistent-dir"]),
        "-ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dbfilename", "a/b"]),
        "-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename\r\n"
    );
    let sub = d.dir.0.join("sub");
    std::fs::create_dir_all(&sub).expect("sub dir");
    let sub = sub.to_str().expect("utf-8 path");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", sub, "dbfilename", "x.rdb"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    assert!(d.dir.0.join("sub/x.rdb").is_file());
    // Without the switch they stay start-up only, as in Redis.
    let plain = damselfly(&[]);
    let mut c = Conn::open(plain.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "dir", sub]),
        "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"
    );
}
