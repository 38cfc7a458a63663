//! sets commands, compared with redis-server.
