//! zsets commands, compared with redis-server.
