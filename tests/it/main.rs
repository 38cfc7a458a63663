//! Integration tests: the real binary, real clients, and Redis as the oracle.

mod support;

mod protocol;
mod strings;
