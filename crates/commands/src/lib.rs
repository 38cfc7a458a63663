//! Redis commands: the command table (data), the generic checks every
//! request passes, and one module per command group.
//!
//! Invariants:
//! - Handlers never lock shards themselves for key arguments: the dispatcher
//!   locks every shard named by the table's key spec, in ascending order,
//!   before the handler runs, and releases them after. Commands that touch
//!   everything carry the `all_shards` flag; commands that walk the keyspace
//!   (SCAN, KEYS, DBSIZE) lock one shard at a time through `Ctx::each_shard`.
//!   DEBUG OBJECT and POPULATE (no key spec, as in Redis) lock one key's
//!   shard at a time, holding nothing else (inside EXEC, which holds them
//!   all, they use the held one).
//! - A handler writes its whole reply on success and nothing on error; the
//!   dispatcher renders the error.

pub mod acl;
pub mod args;
pub mod client;
mod client_admin;
pub mod client_evict;
pub mod config;
pub mod ctx;
pub mod dispatch;
pub mod error;
pub mod maxmemory;
pub mod monitor;
pub mod observe;
pub mod pause;
pub mod pubsub;
pub mod replicaof;
pub mod state;
pub mod table;
pub mod tracking;

mod bitmap;
mod cluster;
mod connection;
mod debug;
mod digest;
mod failover;
mod generic;
mod geo;
mod hash;
mod hyperloglog;
mod list;
pub mod persist;
pub mod repl_master;
pub mod scripting;
pub mod server;
mod set;
mod sort;
mod sorted_set;
mod stream;
mod string;
mod transactions;

pub use client::{Client, ClientInfo};
pub use dispatch::{execute, Wait};
pub use error::{CmdError, CmdResult};
pub use state::{Host, Server, ServerOptions, ThreadStats};
pub use transactions::release as release_client;
