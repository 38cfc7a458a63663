//! Integration tests: the real binary, real clients, and Redis as the oracle.

mod support;

mod keys;
mod protocol;
mod server;
mod strings;
