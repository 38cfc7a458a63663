//! CLUSTER: cluster mode is absent (see ARCHITECTURE.md), so every
//! subcommand answers as Redis does with `cluster-enabled no`. The rows
//! still carry Redis's flags, so `noscript` (CLUSTER RESET) is refused
//! from scripts as in Redis.

use crate::cmd;
use crate::table::{Command, Keys::None as NoKeys};

pub static COMMANDS: &[Command] = &[cmd!(
    "cluster",
    -2,
    "",
    NoKeys,
    "@slow",
    "cluster",
    "3.0.0",
    crate::server::help_only,
    SUBCOMMANDS
)];

/// A CLUSTER subcommand row: name, arity, flags, ACL categories, since.
macro_rules! sub {
    ($name:literal, $arity:expr, $flags:literal, $acl:literal, $since:literal) => {
        cmd!(
            $name,
            $arity,
            $flags,
            NoKeys,
            $acl,
            "cluster",
            $since,
            crate::connection::cluster_only
        )
    };
}

#[rustfmt::skip]
static SUBCOMMANDS: &[Command] = &[
    sub!("addslots", -3, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("addslotsrange", -4, "admin stale no_async_loading", "@admin @slow @dangerous", "7.0.0"),
    sub!("bumpepoch", 2, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("count-failure-reports", 3, "admin stale", "@admin @slow @dangerous", "3.0.0"),
    sub!("countkeysinslot", 3, "stale", "@slow", "3.0.0"),
    sub!("delslots", -3, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("delslotsrange", -4, "admin stale no_async_loading", "@admin @slow @dangerous", "7.0.0"),
    sub!("failover", -2, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("flushslots", 2, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("forget", 3, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("getkeysinslot", 4, "stale", "@slow", "3.0.0"),
    sub!("help", 2, "loading stale", "@slow", "5.0.0"),
    sub!("info", 2, "stale", "@slow", "3.0.0"),
    sub!("keyslot", 3, "stale", "@slow", "3.0.0"),
    sub!("links", 2, "stale", "@slow", "7.0.0"),
    sub!("meet", -4, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("myid", 2, "stale", "@slow", "3.0.0"),
    sub!("nodes", 2, "stale", "@slow", "3.0.0"),
    sub!("replicas", 3, "admin stale", "@admin @slow @dangerous", "5.0.0"),
    sub!("replicate", 3, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("reset", -2, "admin noscript stale", "@admin @slow @dangerous", "3.0.0"),
    sub!("saveconfig", 2, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("set-config-epoch", 3, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("setslot", -4, "admin stale no_async_loading", "@admin @slow @dangerous", "3.0.0"),
    sub!("shards", 2, "stale", "@slow", "7.0.0"),
    sub!("slaves", 3, "admin stale", "@admin @slow @dangerous", "3.0.0"),
    sub!("slots", 2, "stale", "@slow", "3.0.0"),
];
