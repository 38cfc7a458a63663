//! Integration tests: the real binary, real clients, and Redis as the oracle.

mod support;

mod acl;
mod bitmaps;
mod clients;
mod geo;
mod hashes;
mod hll;
mod keys;
mod lists;
mod multi;
mod persistence;
mod protocol;
mod pubsub;
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
