//! Server and introspection commands: INFO, COMMAND, CONFIG, TIME, CLIENT,
//! SHUTDOWN, FUNCTION, DEBUG. Compared with redis-server where replies are
//! deterministic, checked for structure otherwise.

use crate::support::{damselfly, diff, Conn};
use damselfly_commands::table::{flag, table};
use std::collections::BTreeSet;

fn reference(name: &str) -> serde_json::Value {
    // shared/ sits beside the checkout (as in CI); DAMSELFLY_SHARED overrides.
    let shared = std::env::var("DAMSELFLY_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").to_string());
    let path = format!("{shared}/redis-reference/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("reference JSON")
}

fn strings(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

/// Every row of our table (subcommands included) has Redis's name, arity,
/// flags, first/last/step and ACL categories.
#[test]
fn command_table_matches_redis_command_info() {
    let info = reference("command-info-7.0.15.json");
    let mut by_name = std::collections::HashMap::new();
    for row in info.as_array().expect("array") {
        by_name.insert(row[0].as_str().expect("name").to_string(), row.clone());
        for sub in row[9].as_array().expect("subcommands") {
            by_name.insert(sub[0].as_str().expect("name").to_string(), sub.clone());
        }
    }
    let mut problems = Vec::new();
    for e in &table().all {
        let Some(want) = by_name.get(&e.fullname) else {
            problems.push(format!("{}: not a Redis 7.0 command", e.fullname));
            continue;
        };
        if want[1].as_i64() != Some(e.cmd.arity as i64) {
            problems.push(format!(
                "{}: arity {} vs {}",
                e.fullname, e.cmd.arity, want[1]
            ));
        }
        // `may_replicate` is real (PUBLISH, PFCOUNT) but hidden from
        // COMMAND INFO, as Redis hides it.
        let flags: BTreeSet<String> = flag::NAMES
            .iter()
            .filter(|(b, _)| {
                e.flags & b != 0
                    && *b != flag::SENTINEL
                    && *b != flag::ONLY_SENTINEL
                    && *b != flag::MAY_REPLICATE
            })
            .map(|(_, n)| n.to_string())
            .chain(e.cmd.keys.movable().then(|| "movablekeys".to_string()))
            .collect();
        let want_flags = strings(&want[2]);
        if flags != want_flags {
            problems.push(format!("{}: flags {flags:?} vs {want_flags:?}", e.fullname));
        }
        let (f, l, s) = e.cmd.keys.legacy_range();
        let got = [f as i64, l as i64, s as i64];
        let exp = [want[3].as_i64(), want[4].as_i64(), want[5].as_i64()];
        if exp != got.map(Some) {
            problems.push(format!("{}: keys {got:?} vs {exp:?}", e.fullname));
        }
        let acl: BTreeSet<String> = e.cmd.acl.split_whitespace().map(String::from).collect();
        if acl != strings(&want[6]) {
            problems.push(format!("{}: acl {acl:?} vs {:?}", e.fullname, want[6]));
        }
    }
    assert!(
        problems.is_empty(),
        "table rows differ:\n{}",
        problems.join("\n")
    );
}

/// COMMAND INFO on the wire, for every command we have, is Redis's reply
/// (as `redis-cli --json` renders both): flags with movablekeys, tips, key
/// specs (keynum, keyword and unknown ones too) and each subcommand.
#[test]
fn command_info_replies_match_redis() {
    let info = reference("command-info-7.0.15.json");
    let d = damselfly(&[]);
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &d.port.to_string(), "--json", "command", "info"])
        .output()
        .expect("run redis-cli");
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from redis-cli");
    let mut problems = Vec::new();
    let ours = ours.as_array().expect("array");
    assert!(
        ours.len() >= 100,
        "COMMAND INFO returned {} rows",
        ours.len()
    );
    for row in ours {
        let name = row[0].as_str().expect("name");
        let Some(want) = info
            .as_array()
            .expect("array")
            .iter()
            .find(|w| w[0].as_str() == Some(name))
        else {
            problems.push(format!("{name}: not a Redis 7.0 command"));
            continue;
        };
        if row[8] != want[8] {
            problems.push(format!("{name}: key specs\n  {}\n  {}", row[8], want[8]));
        }
        if strings(&row[2]) != strings(&want[2]) {
            problems.push(format!("{name}: flags {} vs {}", row[2], want[2]));
        }
        let (row, want) = (row.as_array().expect("row"), want.as_array().expect("row"));
        if row[..9] != want[..9] {
            problems.push(format!("{name}: row\n  {row:?}\n  {want:?}"));
        }
        // Subcommands: each of ours is Redis's (Redis lists them in its
        // dict's order, and we implement only some).
        for sub in row[9].as_array().expect("subcommands") {
            let same = want[9].as_array().expect("subcommands").contains(sub);
            if !same {
                problems.push(format!("{name}: subcommand {sub}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "COMMAND INFO differs:\n{}",
        problems.join("\n")
    );
}

/// `since` and `group` agree with COMMAND DOCS.
#[test]
fn command_table_matches_redis_command_docs() {
    let docs = reference("command-docs-7.0.15.json");
    let mut problems = Vec::new();
    for e in &table().all {
        let doc = match e.fullname.split_once('|') {
            None => &docs[&e.fullname],
            Some((parent, _)) => &docs[parent]["subcommands"][&e.fullname],
        };
        if doc["since"].as_str() != Some(e.cmd.since) || doc["group"].as_str() != Some(e.cmd.group)
        {
            problems.push(format!(
                "{}: since/group {}/{} vs {}/{}",
                e.fullname, e.cmd.since, e.cmd.group, doc["since"], doc["group"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "table rows differ:\n{}",
        problems.join("\n")
    );
}

#[test]
fn config_get_set_match_redis() {
    diff(
        r#"
        CONFIG GET nosuch
        CONFIG GET hz
        CONFIG GET HZ
        CONFIG GET h?
        CONFIG GET hz HZ h?
        CONFIG GET *max-bulk*
        CONFIG GET
        CONFIG SET hz
        CONFIG SET hz 10 port
        CONFIG SET nosuch 1
        CONFIG SET hz abc
        CONFIG SET hz +10
        CONFIG SET hz 010
        CONFIG SET hz -1
        CONFIG SET hz 10 hz 11
        CONFIG SET hz 1000
        CONFIG GET hz
        CONFIG SET hz 10
        CONFIG SET maxclients 0
        CONFIG SET slowlog-max-len -1
        CONFIG SET slowlog-log-slower-than -2
        CONFIG SET active-expire-effort 11
        CONFIG SET proto-max-bulk-len foo
        CONFIG SET proto-max-bulk-len 1k
        CONFIG SET proto-max-bulk-len -5
        CONFIG SET proto-max-bulk-len 99999999999999999999
        CONFIG SET proto-max-bulk-len 2MB
        CONFIG GET proto-max-bulk-len
        CONFIG SET client-query-buffer-limit 1k
        CONFIG SET dbfilename x.rdb
        CONFIG SET dir /tmp
        CONFIG SET databases 3
        CONFIG SET appendonly maybe
        CONFIG SET save "1 2 3"
        CONFIG SET save "100 -2"
        CONFIG SET save "a b"
        CONFIG SET save "100 2"
        CONFIG GET save
        CONFIG SET save ""
        CONFIG GET save
        CONFIG SET slowlog-max-len 64 hz nosuch
        CONFIG GET slowlog-max-len
        CONFIG FOO
        CONFIG
        CONFIG HELP
        CONFIG REWRITE
        CONFIG RESETSTAT
        "#,
    );
}

#[test]
fn command_subcommands_match_redis() {
    diff(
        r#"
        COMMAND INFO get
        COMMAND INFO get nosuch GET
        COMMAND INFO time lastsave dbsize echo
        COMMAND INFO set del exists flushall ping
        COMMAND GETKEYSANDFLAGS del a b
        COMMAND DOCS nosuch
        COMMAND COUNT x
        COMMAND LIST x
        COMMAND LIST FILTERBY
        COMMAND LIST FILTERBY foo bar
        COMMAND LIST FILTERBY module foo
        COMMAND LIST FILTERBY aclcat nosuch
        COMMAND GETKEYS
        COMMAND GETKEYS get
        COMMAND GETKEYS nosuch a
        COMMAND GETKEYS get a b
        COMMAND GETKEYS get a
        COMMAND GETKEYS GET a
        COMMAND GETKEYS del a b c
        COMMAND GETKEYS ping a
        COMMAND GETKEYS config get a
        COMMAND GETKEYS config nosuch
        COMMAND NOSUCH
        COMMAND HELP
        ~HELLO 3
        COMMAND INFO get nosuch
        COMMAND INFO time dbsize
        COMMAND INFO get set del exists
        COMMAND DOCS nosuch
        "#,
    );
}

#[test]
fn server_misc_commands_match_redis() {
    diff(
        r#"
        TIME x
        LASTSAVE x
        SHUTDOWN foo
        SHUTDOWN NOSAVE SAVE
        SHUTDOWN ABORT NOW
        SHUTDOWN ABORT
        SHUTDOWN abort
        FUNCTION FLUSH
        FUNCTION FLUSH ASYNC
        FUNCTION FLUSH sync
        FUNCTION FLUSH x
        FUNCTION FLUSH async sync
        FUNCTION foo
        FUNCTION
        DEBUG
        INFO nosuch
        INFO cluster
        INFO CLUSTER modules
        INFO keyspace
        SET a 1
        SELECT 3
        SET b 2
        INFO keyspace
        INFO nosuch keyspace
        ~HELLO 3
        INFO cluster
        INFO nosuch
        INFO keyspace
        CLIENT GETNAME
        CLIENT SETNAME "a b"
        CLIENT SETNAME foo
        CLIENT GETNAME
        CLIENT NOSUCH
        CLIENT
        CLIENT LIST ID 999999
        CLIENT LIST TYPE nosuch
        "#,
    );
}

fn info(c: &mut Conn, args: &[&str]) -> String {
    let mut a = vec!["INFO"];
    a.extend_from_slice(args);
    let raw = c.raw(&a);
    let text = String::from_utf8(raw).expect("utf8");
    let body = text.split_once("\r\n").expect("header").1;
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

fn headers(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("# ")).collect()
}

#[test]
fn info_sections_follow_redis_selection_rules() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["NOSUCHCOMMAND"]);
    let default = [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ];
    let all = [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Commandstats",
        "# Errorstats",
        "# Latencystats",
        "# Cluster",
        "# Keyspace",
    ];
    assert_eq!(headers(&info(&mut c, &[])), default);
    assert_eq!(headers(&info(&mut c, &["default"])), default);
    assert_eq!(headers(&info(&mut c, &["all"])), all);
    assert_eq!(headers(&info(&mut c, &["everything"])), all);
    assert_eq!(headers(&info(&mut c, &["cpu", "all"])), all);
    assert_eq!(
        headers(&info(&mut c, &["CPU", "commandSTATS"])),
        ["# CPU", "# Commandstats"]
    );

    let text = info(&mut c, &["everything"]);
    for field in [
        "redis_version:7.0.15\r\n",
        "redis_mode:standalone\r\n",
        "arch_bits:64\r\n",
        "process_id:",
        "run_id:",
        &format!("tcp_port:{}\r\n", d.port),
        "uptime_in_seconds:",
        "uptime_in_days:0\r\n",
        "hz:10\r\n",
        "executable:",
        "config_file:",
        "damselfly_version:",
        "connected_clients:",
        "blocked_clients:0\r\n",
        "maxclients:10000\r\n",
        "used_memory:",
        "used_memory_human:",
        "used_memory_rss:",
        "maxmemory:0\r\n",
        "loading:0\r\n",
        "rdb_changes_since_last_save:1\r\n",
        "rdb_last_save_time:",
        "total_connections_received:",
        "total_commands_processed:",
        "instantaneous_ops_per_sec:",
        "total_net_input_bytes:",
        "total_net_output_bytes:",
        "expired_keys:0\r\n",
        "evicted_keys:0\r\n",
        "keyspace_hits:1\r\n",
        "keyspace_misses:0\r\n",
        "total_error_replies:1\r\n",
        "role:master\r\n",
        "connected_slaves:0\r\n",
        "master_replid:",
        "master_repl_offset:0\r\n",
        "used_cpu_sys:",
        "used_cpu_user:",
        "used_cpu_sys_children:",
        "used_cpu_user_children:",
        "errorstat_ERR:count=1\r\n",
        "cluster_enabled:0\r\n",
        "db0:keys=1,expires=0,avg_ttl=0\r\n",
        "cmdstat_set:calls=1,usec=",
        "cmdstat_get:calls=1,usec=",
    ] {
        assert!(text.contains(field), "INFO lacks {field:?}:\n{text}");
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("cmdstat_get:"))
        .expect("cmdstat_get");
    let rest = line.split_once("usec_per_call=").expect("per call").1;
    assert!(rest.contains(",rejected_calls=0,failed_calls=0"), "{line}");
    // Subcommands are named with `|`.
    c.cmd(&["CONFIG", "GET", "hz"]);
    assert!(info(&mut c, &["commandstats"]).contains("cmdstat_config|get:calls=1,"));
    // RESETSTAT clears counters.
    c.cmd(&["CONFIG", "RESETSTAT"]);
    let text = info(&mut c, &["all"]);
    assert!(!text.contains("errorstat_ERR"), "{text}");
    assert!(!text.contains("cmdstat_get:"), "{text}");
    // Lines end with CRLF, sections are separated by one blank line.
    let raw = String::from_utf8(c.raw(&["INFO", "cpu", "cluster"])).expect("utf8");
    assert!(
        raw.contains("\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n"),
        "{raw:?}"
    );
    assert!(!raw.contains("\n\n"), "{raw:?}");
}

#[test]
fn info_is_verbatim_in_resp3() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.raw(&["HELLO", "3"]);
    assert_eq!(
        String::from_utf8(c.raw(&["INFO", "cluster"])).expect("utf8"),
        "=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n"
    );
}

#[test]
fn command_lists_and_counts_our_table() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let top = table()
        .all
        .iter()
        .filter(|e| !e.fullname.contains('|'))
        .count();
    assert_eq!(c.cmd(&["COMMAND", "COUNT"]), format!(":{top}\r\n"));
    let all = c.cmd(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{top}\r\n")), "{all}");
    let list = c.cmd(&["COMMAND", "LIST"]);
    assert!(
        list.starts_with(&format!("*{}\r\n", table().all.len())),
        "{list}"
    );
    let conf = c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "config*"]);
    assert!(conf.contains("$10\r\nconfig|get\r\n") && conf.contains("$6\r\nconfig\r\n"));
    let read = c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "READ"]);
    assert!(read.contains("$3\r\nget\r\n") && !read.contains("$3\r\nset\r\n"));
    let docs = c.cmd(&["COMMAND", "DOCS", "get"]);
    assert!(
        docs.contains("since\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring"),
        "{docs}"
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYSANDFLAGS", "get", "k"]),
        "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n"
    );
}

#[test]
fn time_and_lastsave_are_current() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let t = c.cmd(&["TIME"]);
    let parts: Vec<&str> = t.split("\r\n").collect();
    assert_eq!(parts[0], "*2", "{t}");
    let secs: u64 = parts[2].parse().expect("seconds");
    let usec: u64 = parts[4].parse().expect("micros");
    assert!(secs.abs_diff(now) <= 2 && usec < 1_000_000, "{t}");
    let l = c.cmd(&["LASTSAVE"]);
    let saved: u64 = l[1..l.len() - 2].parse().expect("int");
    assert!(saved <= now + 1 && saved + 60 > now, "{l}");
}

#[test]
fn client_fields_follow_redis_format() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    c.cmd(&["CLIENT", "SETNAME", "me"]);
    let id = c.cmd(&["CLIENT", "ID"]);
    let id = id[1..id.len() - 2].to_string();
    let info = c.cmd(&["CLIENT", "INFO"]);
    let body = info.split_once("\r\n").expect("bulk").1;
    let keys: Vec<&str> = body
        .trim_end()
        .split(' ')
        .map(|kv| kv.split_once('=').expect("k=v").0)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp"
        ]
    );
    assert!(
        body.starts_with(&format!("id={id} addr=127.0.0.1:")),
        "{body}"
    );
    assert!(
        body.contains(" name=me ") && body.contains(" cmd=client|info "),
        "{body}"
    );
    assert!(body.ends_with("resp=2\n\r\n"), "{body:?}");
    let list = c.cmd(&["CLIENT", "LIST"]);
    assert!(list.contains(" cmd=client|list "), "{list}");
    let help = c.cmd(&["CLIENT", "HELP"]);
    assert!(help.contains("+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    assert!(
        help.ends_with("+HELP\r\n+    Prints this help.\r\n"),
        "{help}"
    );
}

#[test]
fn debug_log_works_and_shutdown_stops_the_server() {
    let mut d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["DEBUG", "LOG", "hello from a test"]), "+OK\r\n");
    assert!(c.cmd(&["DEBUG", "NOSUCH"]).starts_with(
        "-ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP."
    ));
    assert_eq!(c.cmd(&["FUNCTION", "LIST"]), "*0\r\n");
    c.send(&["SHUTDOWN", "NOSAVE"]);
    // The port is shut before the connection closes, as with Redis: a
    // client that sees the close and connects again is refused.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c.reader, &mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", d.port)).is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = d.child.try_wait() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS for commands whose keys move: a
/// numkeys count, SORT's STORE, GEORADIUS's STORE/STOREDIST.
#[test]
fn command_getkeys_of_movable_commands_match_redis() {
    diff(
        r#"
        COMMAND GETKEYS zunionstore d 2 a b
        COMMAND GETKEYS zunionstore d 2 a b WEIGHTS 1 2
        COMMAND GETKEYS zunionstore d 3 a b
        COMMAND GETKEYS zunionstore d 1 a b
        COMMAND GETKEYS zunionstore d 0 a
        COMMAND GETKEYS zunionstore d -1 a
        COMMAND GETKEYS zunionstore d x a
        COMMAND GETKEYS zinterstore d 1 a
        COMMAND GETKEYS zdiffstore d 2 a b
        COMMAND GETKEYS zunion 2 a b WITHSCORES
        COMMAND GETKEYS zinter 1 a
        COMMAND GETKEYS zdiff 2 a b
        COMMAND GETKEYS zintercard 2 a b LIMIT 1
        COMMAND GETKEYS sintercard 2 a b
        COMMAND GETKEYS sintercard 1 a LIMIT 3
        COMMAND GETKEYS lmpop 2 a b LEFT
        COMMAND GETKEYS lmpop 1 a RIGHT COUNT 2
        COMMAND GETKEYS blmpop 0 2 a b LEFT
        COMMAND GETKEYS zmpop 2 a b MIN
        COMMAND GETKEYS bzmpop 1.5 1 a MAX COUNT 3
        COMMAND GETKEYS sort k
        COMMAND GETKEYS sort k STORE d
        COMMAND GETKEYS sort k BY w_* GET h_*->f STORE d
        COMMAND GETKEYS sort k LIMIT 0 1 STORE d
        COMMAND GETKEYS sort_ro k BY w_*
        COMMAND GETKEYS georadius src 1 1 1 km STORE dst
        COMMAND GETKEYS georadius src 1 1 1 km STOREDIST dst
        COMMAND GETKEYS georadiusbymember src m 1 km STORE dst
        COMMAND GETKEYSANDFLAGS zunionstore d 2 a b
        COMMAND GETKEYSANDFLAGS zinterstore d 1 a
        COMMAND GETKEYSANDFLAGS sintercard 2 a b
        COMMAND GETKEYSANDFLAGS lmpop 2 a b LEFT
        COMMAND GETKEYSANDFLAGS blmpop 0 1 a LEFT
        COMMAND GETKEYSANDFLAGS zmpop 1 a MIN
        COMMAND GETKEYSANDFLAGS sort k STORE d
        COMMAND GETKEYSANDFLAGS sort_ro k
        COMMAND GETKEYSANDFLAGS georadius src 1 1 1 km STORE dst
        COMMAND GETKEYSANDFLAGS georadius src 1 1 1 km STOREDIST dst
        COMMAND GETKEYSANDFLAGS lmove a b LEFT RIGHT
        COMMAND GETKEYSANDFLAGS rename a b
        COMMAND GETKEYSANDFLAGS sunionstore d a b
        COMMAND GETKEYSANDFLAGS set k v
        COMMAND INFO zunionstore sort georadius lmpop sintercard zmpop bzmpop blmpop sort_ro
        COMMAND INFO zinter zunion zdiff zintercard zdiffstore zinterstore georadiusbymember
        "#,
    );
}

/// Commands whose key flags depend on their arguments (SET's GET,
/// BITFIELD's SET/INCRBY), and numkeys counts that name no key or too many.
#[test]
fn command_getkeysandflags_variable_flags_and_bad_counts_match_redis() {
    diff(
        r#"
        COMMAND GETKEYSANDFLAGS set k v
        COMMAND GETKEYSANDFLAGS set k v NX GET
        COMMAND GETKEYSANDFLAGS bitfield k GET u8 0
        COMMAND GETKEYSANDFLAGS bitfield k INCRBY u8 0 1
        COMMAND GETKEYSANDFLAGS bitfield k OVERFLOW SAT
        COMMAND GETKEYSANDFLAGS bitfield k
        COMMAND GETKEYSANDFLAGS bitfield_ro k GET u8 0
        COMMAND GETKEYS sintercard 0 a
        COMMAND GETKEYS sintercard x a
        COMMAND GETKEYS lmpop 0 a LEFT
        COMMAND GETKEYS lmpop 5 a LEFT
        COMMAND GETKEYS zunion 0 a
        COMMAND GETKEYS zintercard 0 a
        COMMAND GETKEYS zmpop 3 a b MIN
        COMMAND GETKEYS blmpop 0 0 a LEFT
        COMMAND GETKEYS zinterstore d 2 a
        COMMAND GETKEYS sort k STORE
        COMMAND GETKEYS eval "return 1" 0
        COMMAND GETKEYS eval "return 1" 1 a
        COMMAND GETKEYS eval "return 1" 2 a
        COMMAND GETKEYS evalsha abc 2 a b c
        COMMAND GETKEYSANDFLAGS eval "return 1" 1 a
        COMMAND INFO eval evalsha eval_ro fcall
        "#,
    );
}

/// DEBUG OBJECT's line with the address and the access clock blanked.
fn debug_object_line(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    text.split(' ')
        .map(|w| match w.split_once(':') {
            Some(("at", _)) => "at:ADDR".to_string(),
            Some(("lru", _)) => "lru:CLOCK".to_string(),
            Some(("lru_seconds_idle", _)) => "lru_seconds_idle:IDLE".to_string(),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn debug_object_populate_sleep_and_error_match_redis() {
    let r = crate::support::redis_with(&["--enable-debug-command", "yes"]);
    let d = damselfly(&[]);
    let setup: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["SET", "i", "12345"],
        &["SET", "small", "7"],
        &["SET", "big", &"a".repeat(100)],
        &["RPUSH", "l", "a", "b", "c", "1", "22"],
        &["HSET", "h", "f", "v"],
        &["SADD", "st", "1", "2"],
        &["ZADD", "z", "1", "a"],
        &["DEBUG", "POPULATE", "3"],
        &["DEBUG", "POPULATE", "2", "p", "12"],
        &["SET", "key:9", "x"],
        &["DEBUG", "POPULATE", "10"],
    ];
    let checks: &[&[&str]] = &[
        &["DEBUG", "OBJECT", "s"],
        &["DEBUG", "OBJECT", "i"],
        &["DEBUG", "OBJECT", "small"],
        &["DEBUG", "OBJECT", "big"],
        &["DEBUG", "OBJECT", "l"],
        &["DEBUG", "OBJECT", "h"],
        &["DEBUG", "OBJECT", "st"],
        &["DEBUG", "OBJECT", "z"],
        &["DEBUG", "OBJECT", "nokey"],
        &["DEBUG", "OBJECT"],
        &["DEBUG", "OBJECT", "a", "b"],
        &["GET", "key:0"],
        &["GET", "p:1"],
        &["GET", "key:9"],
        &["DBSIZE"],
        &["DEBUG", "POPULATE", "-1"],
        &["DEBUG", "POPULATE", "1", "x", "0"],
        &["DEBUG", "SLEEP", "0"],
        &["DEBUG", "SLEEP", "abc"],
        &["DEBUG", "ERROR", "hello world"],
        &["DEBUG", "ERROR"],
    ];
    let mut seen = Vec::new();
    for port in [r.port, d.port] {
        let mut c = Conn::open(port);
        for args in setup {
            c.raw(args);
        }
        let replies: Vec<String> = checks
            .iter()
            .map(|args| debug_object_line(&c.raw(args)))
            .collect();
        seen.push(replies);
    }
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn readonly_and_readwrite_say_cluster_support_is_disabled() {
    diff(
        "READONLY
        READWRITE
        READONLY x
        ACL SETUSER scripter on nopass +readonly
        ACL GETUSER scripter",
    );
}
