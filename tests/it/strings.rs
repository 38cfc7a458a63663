//! String commands, compared with redis-server.

use crate::support::diff;

#[test]
fn set_options_match_redis() {
    diff(
        r#"
        SET k v
        GET k
        SET k v NX
        SET k v2 XX
        GET k
        SET k v3 XX GET
        SET new v NX GET
        SET k v EX 0
        SET k v EX -1
        SET k v EX abc
        SET k v PX 100 EX 100
        SET k v KEEPTTL EX 10
        SET k v NX XX
        SET k v BOGUS
        SET k v EX 9223372036854775807
        SET k v PXAT 9223372036854775807
        SET "" ""
        GET ""
        SET "bin\x00key" "bin\x00val"
        GET "bin\x00key"
        SET k 12345
        GET k
        "#,
    );
}
