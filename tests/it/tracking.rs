//! Client tracking compared with redis-server: CLIENT TRACKING's options
//! and errors, invalidations as RESP3 pushes and through a RESP2 client
//! subscribed to `__redis__:invalidate`, BCAST prefixes, OPTIN/OPTOUT,
//! NOLOOP, flushes and broken redirections.

use crate::pubsub::diff_conns;

#[test]
fn tracking_options_and_errors() {
    diff_conns(
        r#"
        0 CLIENT TRACKING
        0 CLIENT TRACKING maybe
        0 CLIENT TRACKING on REDIRECT 999999
        0 CLIENT TRACKING on REDIRECT abc
        0 CLIENT TRACKING on REDIRECT
        0 CLIENT TRACKING on OPTIN OPTOUT
        0 CLIENT TRACKING on BCAST OPTIN
        0 CLIENT TRACKING on PREFIX a
        0 CLIENT TRACKING on BCAST PREFIX FOOBAR PREFIX FOO
        0 CLIENT TRACKING on BCAST PREFIX FOO PREFIX FOOBAR
        0 CLIENT TRACKING on foo
        0 CLIENT TRACKINGINFO
        0 CLIENT GETREDIR
        0 CLIENT CACHING yes
        0 CLIENT TRACKING on BCAST PREFIX FOO PREFIX BAR NOLOOP
        0 CLIENT TRACKING on BCAST PREFIX FO
        0 CLIENT TRACKING on BCAST PREFIX BARB
        0 CLIENT TRACKING on BCAST PREFIX BAZ
        0 CLIENT TRACKINGINFO
        0 CLIENT TRACKING on
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on OPTIN
        0 CLIENT TRACKING on OPTOUT
        0 CLIENT CACHING no
        0 CLIENT CACHING maybe
        0 CLIENT CACHING yes
        0 CLIENT TRACKINGINFO
        0 CLIENT GETREDIR
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on OPTOUT NOLOOP
        0 CLIENT CACHING no
        0 CLIENT TRACKINGINFO
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on BCAST
        0 CLIENT TRACKINGINFO
        0 CLIENT TRACKING off BCAST
        0 CLIENT TRACKINGINFO
        0 ~HELLO 3
        0 CLIENT TRACKING on OPTIN
        0 CLIENT CACHING yes
        0 CLIENT TRACKINGINFO
        0 INFO keyspace
        "#,
    );
}

/// Connection 1 is the redirection target (RESP2, subscribed to the
/// invalidation channel); 2 writes; 0 tracks.
const REDIRECT: &str = r#"
    1 SUBSCRIBE __redis__:invalidate
    2 SET a 1
    2 SET b 1
    0 CLIENT TRACKING on REDIRECT $id1
    0 GET a
    2 INCR b
    2 INCR a
    1 .
    2 INCR a
    0 MGET a b c
    2 MSET a 2 b 2 c 2
    1:3 .
    0 CLIENT TRACKING off
    0 CLIENT TRACKING on BCAST REDIRECT $id1 PREFIX a: PREFIX b:
    2 MULTI
    2 INCR a:1
    2 INCR a:2
    2 INCR b:1
    2 INCR c:1
    2 EXEC
    1:2 .
    0 CLIENT TRACKING off
    0 CLIENT TRACKING on REDIRECT $id1 NOLOOP
    0 MGET x y
    0 SET x 1
    2 SET y 1
    1 .
    0 GET z
    2 FLUSHALL
    1 .
"#;

#[test]
fn invalidations_redirected_to_a_resp2_subscriber() {
    diff_conns(REDIRECT);
}

#[test]
fn invalidations_as_resp3_pushes() {
    diff_conns(
        r#"
        0 ~HELLO 3
        1 SET k 1
        0 CLIENT TRACKING on
        0 GET k
        1 SET k 2
        0 .
        0 GET k
        0 SET k 3
        0 .
        0 HSET h f 1
        0 HGET h f
        0 HDEL h f
        0 .
        0 MSET a 1 b 2
        0 GET a
        0 MULTI
        0 INCR a
        0 GET b
        0 EXEC
        0 .
        0 GET a
        0 MULTI
        0 FLUSHDB
        0 EXEC
        0 .
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on OPTIN
        1 SET k 1
        0 GET k
        1 SET k 2
        0 CLIENT CACHING yes
        0 GET k
        1 SET k 3
        0 .
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on BCAST PREFIX k NOLOOP
        1 SET k1 1
        0 .
        0 SET k2 1
        0 PING
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on
        0 GET q
        0:0 CLIENT REPLY OFF
        1 SET q 1
        0 .
        0 CLIENT REPLY ON
        0 PING
        "#,
    );
}

#[test]
fn broken_redirection_is_reported_in_resp3() {
    diff_conns(
        r#"
        1 PING
        0 ~HELLO 3
        0 CLIENT TRACKING on REDIRECT $id1
        0 GET key
        1 QUIT
        2 SET key 1
        0 ~.
        0 ~CLIENT TRACKINGINFO
        0 ~CLIENT GETREDIR
        0 PING
        "#,
    );
}

#[test]
fn tracking_table_counts_in_info() {
    let d = crate::support::damselfly(&[]);
    let mut c = crate::support::Conn::open(d.port);
    let mut b = crate::support::Conn::open(d.port);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    c.cmd(&["MGET", "k1", "k2"]);
    b.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p:"]);
    let info = c.cmd(&["INFO"]);
    for line in [
        "tracking_clients:2",
        "tracking_total_keys:2",
        "tracking_total_items:2",
        "tracking_total_prefixes:1",
    ] {
        assert!(info.contains(line), "{line} missing:\n{info}");
    }
    let me = c.cmd(&["CLIENT", "INFO"]);
    assert!(me.contains(" flags=t ") && me.contains(" redir=0 "), "{me}");
    let other = b.cmd(&["CLIENT", "INFO"]);
    assert!(other.contains(" flags=tB "), "{other}");
    c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    c.cmd(&["GET", "k3"]);
    let info = c.cmd(&["INFO"]);
    assert!(info.contains("tracking_total_keys:1"), "{info}");
}

/// A script that reads makes its caller track the keys it declared; its
/// writes are the caller's own for NOLOOP.
#[test]
fn scripts_track_their_declared_keys() {
    diff_conns(
        r#"
        0 ~HELLO 3
        0 CLIENT TRACKING on
        1 MSET k1 1 k2 1
        0 EVAL "redis.call('set', 'k3', 'bar')" 2 k1 k2
        1 MSET k2 2 k1 2
        0 EVAL "return redis.call('get', 'k3')" 2 k1 k2
        1 MSET k2 3 k1 3
        0:2 .
        0 EVAL_RO "return redis.call('ping')" 2 k1 k2
        1 MSET k2 4 k1 4
        0 PING
        0 CLIENT TRACKING off
        0 CLIENT TRACKING on NOLOOP
        0 GET k1
        0 EVAL "return redis.call('set', KEYS[1], '5')" 1 k1
        0 GET k1
        0 PING
        "#,
    );
}
