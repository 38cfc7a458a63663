#!/usr/bin/env bash
# bench/memory-ttl.sh — memory.sh's loads with a TTL on every key, measured
# the same way (RSS growth of a running server, per step).
#
# Usage: bench/memory-ttl.sh PORT PID
#   Run it on a FRESHLY STARTED server, pinned like memory.sh's servers, e.g.
#       taskset -c 1 redis-server --port 6393 --save '' --appendonly no
#
# Steps (pipelined with `redis-cli --pipe`, cumulative, no flush in between):
#   0. FLUSHALL, RSS baseline
#   1. 1,000,000 strings  SET key:%07d <32-byte value> EX 100000     -> B/key
#   2.   100,000 hashes   HSET hash:%06d f0..f9 <32-byte values>, then
#                         PEXPIRE hash:%06d 100000000                -> B/field
#   3.    10,000 zsets    ZADD zset:%05d 100 members, then PEXPIRE    -> B/member
# The same keys, values and members as memory.sh, so the two compare line
# by line: the difference is the cost of a TTL.
#
# Env: LOAD_TIMEOUT=120 (s per load step), SETTLE=1, CLIENT_CPUS=0
set -u
if [ $# -ne 2 ]; then awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2; fi
PORT=$1; PID=$2
HOST=127.0.0.1
LOAD_TIMEOUT=${LOAD_TIMEOUT:-120}
SETTLE=${SETTLE:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}

[ -r "/proc/$PID/status" ] || { echo "no such process: $PID" >&2; exit 2; }
[ "$(timeout 5 redis-cli -h $HOST -p "$PORT" PING 2>&1)" = PONG ] || { echo "no PONG from port $PORT" >&2; exit 2; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
cli() { timeout 5 redis-cli -h $HOST -p "$PORT" "$@" 2>/dev/null | tr -d '\r'; }
load() { # name expected_replies ; protocol on stdin
    local r
    r=$(timeout "$LOAD_TIMEOUT" taskset -c "$CLIENT_CPUS" redis-cli -h $HOST -p "$PORT" --pipe 2>&1 | tail -1)
    case "$r" in
        *"errors: 0, replies: $2"*) ;;
        *) echo "# WARNING: load $1: $r" >&2 ;;
    esac
    sleep "$SETTLE"
}
stage() { printf '%-34s %12s %8s %10s\n' "$1" "$(rss_kb)" "$(cli DBSIZE)" "$(cli INFO keyspace | awk -F'expires=' 'NF > 1 { split($2, a, ","); print a[1] }')"; }

r=$(timeout 60 redis-cli -h $HOST -p "$PORT" FLUSHALL 2>&1)
[ "$r" = OK ] || echo "# WARNING: FLUSHALL returned: $r" >&2
sleep "$SETTLE"
echo "# memory-ttl.sh port $PORT pid $PID ($(tr -d '\0' < /proc/$PID/comm))"
printf '%-34s %12s %8s %10s\n' "stage" "VmRSS kB" "dbsize" "expires"
rss0=$(rss_kb); stage "after FLUSHALL"

awk 'BEGIN { for (i = 0; i < 1000000; i++)
    printf "*5\r\n$3\r\nSET\r\n$11\r\nkey:%07d\r\n$32\r\n%032d\r\n$2\r\nEX\r\n$6\r\n100000\r\n", i, i }' | load strings 1000000
rss1=$(rss_kb); stage "+1M strings (32B values, EX)"

awk 'BEGIN { for (i = 0; i < 100000; i++) {
    printf "*22\r\n$4\r\nHSET\r\n$11\r\nhash:%06d\r\n", i
    for (f = 0; f < 10; f++) printf "$2\r\nf%d\r\n$32\r\n%032d\r\n", f, i * 10 + f
    printf "*3\r\n$7\r\nPEXPIRE\r\n$11\r\nhash:%06d\r\n$9\r\n100000000\r\n", i } }' | load hashes 200000
rss2=$(rss_kb); stage "+100k hashes x 10 fields, PEXPIRE"

awk 'BEGIN { for (i = 0; i < 10000; i++) {
    printf "*202\r\n$4\r\nZADD\r\n$10\r\nzset:%05d\r\n", i
    for (m = 0; m < 100; m++) { s = sprintf("%d", (i * 100 + m) % 1000); printf "$%d\r\n%s\r\n$10\r\nmember:%03d\r\n", length(s), s, m }
    printf "*3\r\n$7\r\nPEXPIRE\r\n$10\r\nzset:%05d\r\n$9\r\n100000000\r\n", i } }' | load zsets 20000
rss3=$(rss_kb); stage "+10k zsets x 100 members, PEXPIRE"

awk -v a="$rss0" -v b="$rss1" -v c="$rss2" -v d="$rss3" 'BEGIN {
    printf "\nstrings with TTL: %.1f B/key RSS\n", (b - a) * 1024 / 1e6
    printf "hashes with TTL:  %.0f B/hash, %.1f B/field RSS\n", (c - b) * 1024 / 1e5, (c - b) * 1024 / 1e6
    printf "zsets with TTL:   %.0f B/zset, %.1f B/member RSS\n", (d - c) * 1024 / 1e4, (d - c) * 1024 / 1e6
    printf "bytes/key: %.1f\n", (b - a) * 1024 / 1e6
}'
