//! SORT and SORT_RO, compared with redis-server. Sets are intsets (which
//! iterate in ascending order on both servers) wherever BY nosort shows
//! the set's own order.

use crate::support::diff;

#[test]
fn sort_numeric_alpha_limit_match_redis() {
    diff(
        r#"
        RPUSH l 3 1 2 10 -5 1.5
        SORT l
        SORT l DESC
        SORT l ALPHA
        SORT l ALPHA DESC
        SORT l LIMIT 1 2
        SORT l LIMIT -5 2
        SORT l LIMIT 5 2
        SORT l LIMIT 6 2
        SORT l LIMIT 2 -1
        SORT l LIMIT 0 0
        SORT l LIMIT 1 9223372036854775807
        SORT l LIMIT x 1
        SORT l LIMIT 1
        SORT l DESC ASC
        SORT_RO l DESC LIMIT 0 3
        RPUSH l abc
        SORT l
        SORT l ALPHA
        RPUSH w "" " 5" 0x10 1e2 inf -inf
        SORT w
        RPUSH n nan
        SORT n
        RPUSH t b a b a
        SORT t ALPHA
        SORT nokey
        SORT_RO nokey
        SADD s 5 1 3
        SORT s
        SORT s DESC
        ZADD z 3 a 1 b 2 c
        SORT z ALPHA
        SORT z
        SET str x
        SORT str
        SORT str foo
        SORT l foo
        SORT l STORE
        SORT l BY
        SORT l GET
        SORT_RO l STORE d
        ~HELLO 3
        SORT l ALPHA LIMIT 0 2
        # Last: Redis reads a stale errno after an ERANGE, so later numeric
        # sorts on the same connection would fail there.
        RPUSH u 1e-400
        SORT u
        "#,
    );
}

#[test]
fn sort_by_and_get_patterns_match_redis() {
    diff(
        r#"
        RPUSH l 3 1 2
        MSET w_1 30 w_2 10 w_3 20
        SORT l BY w_*
        SORT l BY w_* DESC
        SORT l BY w_* GET #
        SORT l BY w_* GET w_* GET # GET nokey_*
        SORT l BY nosort
        SORT l BY nosort DESC
        SORT l BY nosort DESC LIMIT 1 1
        SORT l BY nosort LIMIT 1 5
        SORT l BY missing_*
        SORT l BY missing_* ALPHA
        SET a_3 x
        SORT l BY a_* ALPHA
        SORT l BY a_* ALPHA DESC
        SORT l BY a_*
        HSET h_1 f 3 g x
        HSET h_2 f 1
        HSET h_3 f 2
        SORT l BY h_*->f
        SORT l BY h_*->f GET h_*->g GET h_*->f GET h_*->
        SORT l BY h_*->g
        SORT l BY h_*->g ALPHA
        SORT l GET h_*
        SORT l GET noglob
        SORT l BY w_* GET w_*->f
        ZADD z 1 a 2 b 3 c 4 d
        SORT z BY nosort
        SORT z BY nosort DESC
        SORT z BY nosort DESC LIMIT 1 2
        SORT z BY nosort LIMIT 1 2 GET #
        SADD s 5 1 3
        SORT s BY nosort
        SORT s BY w_*
        ~HELLO 3
        SORT l GET nokey_* GET #
        "#,
    );
}

#[test]
fn sort_store_matches_redis() {
    diff(
        r#"
        RPUSH l 3 1 2
        SORT l STORE d
        LRANGE d 0 -1
        TYPE d
        SORT l DESC STORE d
        LRANGE d 0 -1
        SORT l GET # GET nokey_* STORE d
        LRANGE d 0 -1
        SET d x
        SORT l LIMIT 0 1 STORE d
        LRANGE d 0 -1
        SORT l STORE x STORE d2
        EXISTS x
        LRANGE d2 0 -1
        SORT nokey STORE d
        EXISTS d
        SORT l LIMIT 5 1 STORE d2
        EXISTS d2
        SADD s c a b 10
        SORT s BY nosort STORE d
        LRANGE d 0 -1
        SORT s BY nosort DESC STORE d
        LRANGE d 0 -1
        ZADD z 1 a 2 b 3 c
        SORT z BY nosort DESC STORE d
        LRANGE d 0 -1
        SORT l STORE l
        LRANGE l 0 -1
        COMMAND GETKEYS SORT abc STORE def
        COMMAND GETKEYS SORT abc STORE x LIMIT 1 2 STORE def
        COMMAND GETKEYS SORT abc GET STORE
        COMMAND GETKEYS SORT_RO abc GET x
        "#,
    );
}
