//! Sorted set commands.

use crate::table::Command;

pub(crate) static COMMANDS: &[Command] = &[];
