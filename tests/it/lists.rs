//! lists commands, compared with redis-server.
