//! RESP wire format: request parsing (multibulk and inline) and reply encoding
//! for RESP2 and RESP3.
//!
//! Invariants: no I/O and no async runtime here; nothing in this crate panics
//! on any input (the parser is fuzzed); every protocol error renders Redis's
//! exact `Protocol error: ...` text.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod inline;
mod parse;
mod reply;

pub use inline::split_args;
pub use parse::{parse_request, Args, Limits, Parsed, ProtocolError, Request, INLINE_MAX};
pub use reply::{format_double, Reply};
