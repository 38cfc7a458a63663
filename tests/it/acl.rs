//! AUTH, requirepass and ACL, compared with redis-server given the same
//! users, plus what only a second connection can see (NOAUTH, rotation).

use crate::support::{damselfly, diff, diff_on, redis, Conn};

#[test]
fn acl_setuser_list_getuser_match_redis() {
    diff(
        r#"
        ACL SETUSER alice on >p1 ~k* +@read -get
        ACL SETUSER bob on >pw %R~r* %W~w* ~all* &chan* +@all -flushall +config|get (~x* +get)
        ACL SETUSER carol reset
        ACL SETUSER dave on nopass allkeys allchannels allcommands
        ACL SETUSER erin on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 >two <two
        ACL SETUSER frank on nocommands +@string -@write +client|id
        ACL SETUSER frank reset
        ACL LIST
        ACL USERS
        ACL GETUSER alice
        ACL GETUSER bob
        ACL GETUSER erin
        # The order of single commands follows Redis's command dict.
        ~ACL GETUSER frank
        ACL GETUSER nobody
        ACL WHOAMI
        ACL CAT
        ~ACL CAT string
        ACL CAT nosuch
        ACL CAT NON_EXISTS
        ACL CAT NON_EXISTS NON_EXISTS2
        ACL DELUSER carol nobody
        ACL USERS
        ~HELLO 3
        ACL GETUSER bob
        ACL LIST
        "#,
    );
}

#[test]
fn command_rules_are_kept_as_redis_keeps_them() {
    let mut script = String::new();
    for (i, rules) in [
        "+@all +get",
        "+@all +@read",
        "+@all -@read +get",
        "-@all +@read +@read",
        "-@all +config|get +config",
        "-@all +config +config|get",
        "-@all +config -config|get",
        "-@all +@read -@read",
        "-@all +select|0 +select|1",
        "-@all +select|0 +select",
        "-@all +select|0 -select",
        "+@all -select|0",
        "-@all +@read +get",
        "+@all -config|get -config",
        "+@all -client +client|id",
        "-@all +config -config|set",
        "-@all +GET +@READ -@Write",
    ]
    .iter()
    .enumerate()
    {
        script.push_str(&format!(
            "ACL SETUSER u{i} reset {rules}\nACL GETUSER u{i}\n"
        ));
    }
    // Redis lists independent rules in an order that changes from one
    // process to the next (`+get +acl +set` may list as `+set +get +acl`);
    // Damselfly keeps them as written, so only one-order cases compare.
    script.push_str("ACL SETUSER x +@all -@string +incr -config +config|get\n~ACL LIST\n");
    script.push_str("ACL SETUSER s -@all +select|0 on nopass\nAUTH s x\nSELECT 0\nSELECT 1\n");
    diff(&script);
}

#[test]
fn acl_setuser_errors_match_redis() {
    diff(
        r#"
        ACL SETUSER x ~* ~a
        ACL SETUSER x &* &a
        ACL SETUSER x +nosuch
        ACL SETUSER x +@nosuch
        ACL SETUSER x <nopw
        ACL SETUSER x #abc
        ACL SETUSER x !abc
        ACL SETUSER x +config|get|x
        ACL SETUSER x +get|key1|key2
        ACL SETUSER x +config|nosuch
        ACL SETUSER x badrule
        ACL SETUSER x (~x +get
        ACL SETUSER x ( ~x
        ACL SETUSER x (this-is-invalid)
        ACL SETUSER x %X~a
        ACL SETUSER x %~a
        ACL SETUSER "a b" on
        ACL DELUSER default
        ACL GENPASS 0
        ACL GENPASS 5000
        ACL GENPASS abc
        ACL LOG foo
        ACL LOG -1
        ACL WHOAMI extra
        ACL NOSUCH
        ACL SAVE
        ACL LOAD
        ACL DRYRUN nope get k
        ACL SETUSER y on +@all ~*
        ACL DRYRUN y nosuchcmd
        ACL DRYRUN y get
        ACL USERS
        "#,
    );
}

#[test]
fn permissions_and_dryrun_match_redis() {
    diff(
        r#"
        ACL SETUSER alice on >p1 ~k* +@read -get +set
        ACL SETUSER bob on >pw %R~r* %W~w* ~all* &chan* +@all -flushall (~x* +get)
        ACL DRYRUN alice get k
        ACL DRYRUN alice set k v
        ACL DRYRUN alice set x v
        ACL DRYRUN alice mget k x
        ACL DRYRUN bob get x1
        ACL DRYRUN bob set w1 1
        ACL DRYRUN bob set w1 1 GET
        ACL DRYRUN bob get w1
        ACL DRYRUN bob get r1
        ACL DRYRUN bob copy r1 w1
        ACL DRYRUN bob copy w1 r1
        ACL DRYRUN bob lpush w1 1
        ACL DRYRUN bob flushall
        ACL DRYRUN bob config get maxmemory
        AUTH alice wrong
        AUTH alice p1
        ACL WHOAMI
        SET k v
        SET x v
        MGET k x
        GET k
        STRLEN k
        FLUSHALL
        CONFIG GET maxmemory
        MULTI
        GET k
        STRLEN k
        EXEC
        AUTH default anything
        ACL WHOAMI
        ~ACL LOG
        ACL LOG RESET
        ACL LOG
        "#,
    );
}

#[test]
fn requirepass_auth_and_rotation_match_redis() {
    diff(
        r#"
        AUTH foo
        AUTH a b c
        CONFIG SET requirepass foobar
        AUTH wrong!
        AUTH foobar
        AUTH default foobar
        HELLO 2 AUTH default wrong
        ~HELLO 2 AUTH default foobar
        ACL LIST
        CONFIG GET requirepass
        CONFIG SET requirepass ""
        ACL LIST
        AUTH foo
        "#,
    );
}

/// Replies of a fresh connection to `commands`, on a server whose default
/// user has a password.
fn fresh(port: u16, commands: &[&[&str]]) -> Vec<String> {
    let mut c = Conn::open(port);
    commands.iter().map(|a| c.cmd(a)).collect()
}

#[test]
fn a_new_connection_needs_the_current_password() {
    let r = redis();
    let d = damselfly(&[]);
    diff_on(&r, &d, "CONFIG SET requirepass first");
    let script: &[&[&str]] = &[
        &["GET", "k"],
        &["HELLO", "3"],
        &["AUTH", "nope"],
        &["AUTH", "first"],
        &["CONFIG", "SET", "requirepass", "second"],
        &["PING"],
    ];
    assert_eq!(fresh(r.port, script), fresh(d.port, script));
    // The old password stopped working for new connections.
    let script: &[&[&str]] = &[&["AUTH", "first"], &["AUTH", "second"], &["PING"]];
    assert_eq!(fresh(r.port, script), fresh(d.port, script));
    assert_eq!(fresh(d.port, script)[1], "+OK\r\n");
}

#[test]
fn deleted_users_lose_their_connections() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "temp", "on", ">pw", "+@all", "~*"]),
        "+OK\r\n"
    );
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["AUTH", "temp", "pw"]), "+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), "$4\r\ntemp\r\n");
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "temp"]), ":1\r\n");
    c.send(&["PING"]);
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut c.reader, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the connection of a deleted user is closed");
}

#[test]
fn acl_log_keeps_acllog_max_len_entries() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(c.cmd(&["CONFIG", "SET", "acllog-max-len", "5"]), "+OK\r\n");
    c.cmd(&["ACL", "SETUSER", "u", "on", "nopass", "+@all", "~a*"]);
    c.cmd(&["AUTH", "u", "x"]);
    for j in 0..10 {
        assert!(c
            .cmd(&["SET", &format!("obj:{j}"), "1"])
            .starts_with("-NOPERM"));
    }
    c.cmd(&["AUTH", "default", "x"]);
    assert!(c.cmd(&["ACL", "LOG"]).starts_with("*5\r\n"));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "acllog-max-len"]),
        "*2\r\n$14\r\nacllog-max-len\r\n$1\r\n5\r\n"
    );
}

#[test]
fn failed_auth_is_logged_once_per_burst() {
    let d = damselfly(&[]);
    let mut c = Conn::open(d.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "requirepass", "secret"]),
        "+OK\r\n"
    );
    for _ in 0..100 {
        assert!(c.cmd(&["AUTH", "guess"]).starts_with("-WRONGPASS"));
    }
    assert_eq!(c.cmd(&["AUTH", "secret"]), "+OK\r\n");
    let log = c.cmd(&["ACL", "LOG"]);
    assert!(log.starts_with("*1\r\n"), "{log}");
    assert!(log.contains("$5\r\ncount\r\n:100\r\n"), "{log}");
    assert!(log.contains("$6\r\nreason\r\n$4\r\nauth\r\n"), "{log}");
}

/// Every keyed command of the table, checked with ACL DRYRUN for a user who
/// may only read `read*`, only write `write*`, and do both on `rw*`: the
/// access each command's keys need matches Redis's key specs.
#[test]
fn key_permissions_of_every_command_match_redis() {
    use damselfly_commands::table::{table, Keys};
    let mut script = String::from("ACL SETUSER kp on nopass +@all %R~read* %W~write* %RW~rw*\n");
    for e in table().all.iter().filter(|e| !e.fullname.contains('|')) {
        if !matches!(e.cmd.keys, Keys::Range(1, _, _) | Keys::SortStore) {
            continue;
        }
        // Past the minimum arity: Redis finds no keys in some minimal forms.
        let argc = match e.cmd.arity {
            n if n > 0 => n as usize,
            n => (n.unsigned_abs() as usize).max(3),
        };
        for key in ["read1", "write1", "rw1", "none1"] {
            let args = vec![key; argc - 1].join(" ");
            script.push_str(&format!("ACL DRYRUN kp {} {args}\n", e.fullname));
            if e.fullname == "bitfield" {
                script.push_str(&format!(
                    "ACL DRYRUN kp bitfield {key} GET u4 0 OVERFLOW SAT\n"
                ));
            }
        }
    }
    diff(&script);
}

#[test]
fn exec_rechecks_rules_changed_after_queueing() {
    let r = redis();
    let d = damselfly(&[]);
    for p in [&r, &d] {
        let mut admin = Conn::open(p.port);
        admin.cmd(&["ACL", "SETUSER", "m", "on", "nopass", "+@all", "~*"]);
    }
    let queue: &[&[&str]] = &[
        &["AUTH", "m", "x"],
        &["MULTI"],
        &["GET", "k"],
        &["SET", "k", "v"],
    ];
    let (mut rc, mut dc) = (Conn::open(r.port), Conn::open(d.port));
    for c in queue {
        assert_eq!(rc.cmd(c), dc.cmd(c));
    }
    for p in [&r, &d] {
        Conn::open(p.port).cmd(&["ACL", "SETUSER", "m", "-get"]);
    }
    assert_eq!(rc.cmd(&["EXEC"]), dc.cmd(&["EXEC"]));
    let (rl, dl) = (rc.cmd(&["ACL", "LOG", "1"]), dc.cmd(&["ACL", "LOG", "1"]));
    for want in ["$5\r\nmulti\r\n", "$3\r\nget\r\n", "cmd=exec user=m"] {
        assert!(
            rl.contains(want) && dl.contains(want),
            "{want}: {rl} / {dl}"
        );
    }
}

#[test]
fn scripts_run_as_their_callers_user() {
    diff(
        r#"
        ACL SETUSER s on nopass +@all -get ~*
        ACL SETUSER s2 on nopass +@all ~a*
        AUTH s x
        EVAL "return redis.call('get','k')" 0
        EVAL "return redis.pcall('get','k')" 0
        EVAL "return redis.call('set','k','v')" 0
        AUTH s2 x
        EVAL "return redis.call('get','k')" 0
        EVAL "return redis.call('get','a1')" 0
        AUTH default x
        ~ACL LOG
        "#,
    );
}

/// Whether the server closed the connection: reading ends (EOF or a
/// reset) rather than timing out.
fn closed_by_server(c: &mut Conn) -> bool {
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut c.reader, &mut rest) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn revoking_channels_or_deleting_the_user_closes_its_clients_at_once() {
    let d = damselfly(&[]);
    let mut admin = Conn::open(d.port);
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "psuser",
        "on",
        ">pspass",
        "+@all",
        "~*",
        "resetchannels",
        "&foo:1",
        "&bar:*",
    ]);
    let mut sub = Conn::open(d.port);
    assert_eq!(sub.cmd(&["AUTH", "psuser", "pspass"]), "+OK\r\n");
    sub.cmd(&["CLIENT", "SETNAME", "deathrow"]);
    sub.cmd(&["SUBSCRIBE", "foo:1"]);
    let mut psub = Conn::open(d.port);
    assert_eq!(psub.cmd(&["AUTH", "psuser", "pspass"]), "+OK\r\n");
    psub.cmd(&["CLIENT", "SETNAME", "survivor"]);
    psub.cmd(&["PSUBSCRIBE", "bar:*"]);
    // foo:1 goes, bar:* stays: only the channel's subscriber is closed.
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "psuser", "resetchannels", "&bar:*"]),
        "+OK\r\n"
    );
    let list = admin.cmd(&["CLIENT", "LIST"]);
    assert!(
        !list.contains("deathrow") && list.contains("survivor"),
        "{list}"
    );
    assert!(closed_by_server(&mut sub));
    // A pattern subscription needs the very same pattern.
    admin.cmd(&["ACL", "SETUSER", "psuser", "resetchannels", "&bar:1"]);
    assert!(!admin.cmd(&["CLIENT", "LIST"]).contains("survivor"));
    // DELUSER closes the user's other clients too.
    let mut plain = Conn::open(d.port);
    assert_eq!(plain.cmd(&["AUTH", "psuser", "pspass"]), "+OK\r\n");
    plain.cmd(&["CLIENT", "SETNAME", "plain"]);
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "psuser"]), ":1\r\n");
    assert!(!admin.cmd(&["CLIENT", "LIST"]).contains("plain"));
    assert!(closed_by_server(&mut plain));
}
