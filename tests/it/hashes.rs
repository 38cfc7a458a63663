//! hashes commands, compared with redis-server.
