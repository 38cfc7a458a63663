//! Integration tests: the real binary, real clients, and Redis as the oracle.

mod support;

mod acl;
mod bitmaps;
mod clientctl;
mod clients;
mod config;
mod failover;
mod full_sync;
mod geo;
mod hashes;
mod hll;
mod http;
mod keys;
mod lazyfree;
mod lists;
mod maxmemory;
mod multi;
mod observe;
mod persistence;
mod protocol;
mod pubsub;
mod replica;
mod replication;
mod script_locks;
mod scripting;
mod server;
mod sets;
mod sort;
mod startup;
mod stream_persistence;
mod streams;
mod strings;
mod tracking;
mod zsets;
