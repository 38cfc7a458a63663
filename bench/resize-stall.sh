#!/usr/bin/env bash
# bench/resize-stall.sh — the worst single-command latency while a big set grows.
#
# Usage: bench/resize-stall.sh PORT [MEMBERS]
#
# Fills set `s` on the server at 127.0.0.1:PORT with MEMBERS - 1000 members
# (default 2^20, a power of two where hash tables grow), through
# `redis-cli --pipe`, then sends 2,000 single SADDs of new members one at a
# time on one connection and prints the four slowest (ms, index). A table that
# rehashes everything at once shows its whole rehash in one of them.
# Needs python3 and redis-cli. The server should be fresh (FLUSHALL first).
set -eu
PORT=${1:?usage: bench/resize-stall.sh PORT [MEMBERS]}
MEMBERS=${2:-1048576}
redis-cli -p "$PORT" DEL s >/dev/null
python3 - "$MEMBERS" <<'PY' | redis-cli -p "$PORT" --pipe | tail -n 1
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1]) - 1000):
    m = b'm%d' % i
    out.write(b'*3\r\n$4\r\nSADD\r\n$1\r\ns\r\n$%d\r\n%s\r\n' % (len(m), m))
PY
python3 - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
times = []
for i in range(2000):
    m = b'x%d' % i
    t = time.perf_counter()
    s.sendall(b'*3\r\n$4\r\nSADD\r\n$1\r\ns\r\n$%d\r\n%s\r\n' % (len(m), m))
    if not s.recv(100).startswith(b':'):
        sys.exit('unexpected reply')
    times.append((time.perf_counter() - t, i))
times.sort(reverse=True)
print('slowest SADDs (ms, index):', [(round(w * 1000, 2), i) for w, i in times[:4]])
PY
