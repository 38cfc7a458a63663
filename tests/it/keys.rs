//! Keyspace commands, compared with redis-server.
