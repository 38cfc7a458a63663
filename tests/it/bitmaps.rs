//! bitmaps commands, compared with redis-server.
