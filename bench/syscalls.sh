#!/usr/bin/env bash
# bench/syscalls.sh: what one redis-benchmark load costs a running server
# in the kernel's terms, per request: epoll_wait calls, reads (recvfrom or
# read), context switches, and server CPU (task-clock) in ns.
#
# Usage: bench/syscalls.sh PORT TEST REQUESTS [PIPELINE]
#   e.g. bench/syscalls.sh 6392 lpush 2000000 16
# The server on PORT should be pinned to one core (taskset -c 1 ...); the
# client runs on CLIENT_CPUS (default 0), 50 clients, 32-byte values,
# keys from -r 1000000. The keys redis-benchmark's list, hash, set and
# zset tests use are deleted first. Needs perf (linux-perf) with
# tracepoint access (run as root).
set -u
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
port=$1 test=$2 n=$3 p=${4:-16}
CLIENT_CPUS=${CLIENT_CPUS:-0}
pid=$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[ -n "$pid" ] || { echo "nothing listens on port $port" >&2; exit 2; }
out=$(mktemp)
redis-cli -p "$port" del mylist myhash myset myzset >/dev/null
perf stat -e 'syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,context-switches,task-clock' \
    -p "$pid" -o "$out" &
perf_pid=$!
sleep 0.3
taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -c 50 -n "$n" -r 1000000 -d 32 -t "$test" -P "$p" -q >/dev/null 2>&1
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null
awk -v n="$n" '
    /epoll_wait/ { e = $1 }
    /sys_enter_recvfrom|sys_enter_read / { r += $1 }
    /context-switches/ { c = $1 }
    /task-clock/ { t = $1 }
    END {
        gsub(",", "", e); gsub(",", "", c); gsub(",", "", t)
        printf "epoll_wait/op %.3f  reads/op %.3f  context switches %d  server ns/op %.0f\n", e / n, r / n, c, t * 1e6 / n
    }' "$out"
rm -f "$out"
