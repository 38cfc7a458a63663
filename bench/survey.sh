#!/usr/bin/env bash
# bench/survey.sh — server CPU per command for the commands applications
# send (cache, sessions, rate limits, queues, leaderboards), redis-server 7.0
# beside Damselfly, both running at once, pinned to SERVER_CPU.
#
# Each line of COMMANDS (a file; default: the list below) is run as
# `redis-benchmark -c 50 -P PIPELINE -r 1000000 -n N <line>` against Redis,
# then Damselfly, in order, so later lines see what earlier ones wrote (the
# leaderboard is filled before it is read). For each it prints the server
# CPU ns per command (/proc/PID/stat, user + system) and Redis/Damselfly
# (above 1: Damselfly is cheaper). Lines are split on spaces (no quoting),
# so a script argument is written without spaces. One round: a coarse map
# for finding outliers, not a measurement to quote; compare.sh and the
# other scripts measure.
#
# Env: N=1000000 PIPELINE=16 SERVER_CPU=1 CLIENT_CPUS=0 PORT=6396 (Redis on
#      PORT, Damselfly on PORT+1) COMMANDS=file SKIP_BUILD=0
#      REDIS_SERVER=redis-server RESULTS_DIR (default: mktemp -d)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-1000000}
PIPELINE=${PIPELINE:-16}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
BASE_PORT=${PORT:-6396}
SKIP_BUILD=${SKIP_BUILD:-0}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-survey.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

. "$ROOT/bench/lib.sh"
prepare

DEFAULT_COMMANDS='SET k:__rand_int__ vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv EX 3600
GET k:__rand_int__
MGET k:__rand_int__ k:__rand_int__ k:__rand_int__ k:__rand_int__
EXPIRE k:__rand_int__ 100
TTL k:__rand_int__
INCR rl:__rand_int__
SETNX n:__rand_int__ 1
DEL n:__rand_int__
HSET sess:__rand_int__ f1 v1 f2 v2 f3 v3
HGET sess:__rand_int__ f2
HGETALL sess:__rand_int__
HINCRBY h:__rand_int__ n 1
LPUSH q job:__rand_int__
RPOP q
LRANGE q 0 9
SADD tags:__rand_int__ t:__rand_int__
SISMEMBER tags:__rand_int__ t:__rand_int__
ZADD lb __rand_int__ m:__rand_int__
ZINCRBY lb 1 m:__rand_int__
ZSCORE lb m:__rand_int__
ZRANK lb m:__rand_int__
ZREVRANGE lb 0 9 WITHSCORES
ZRANGEBYSCORE lb 100 200 LIMIT 0 10
PUBLISH events msg
EVAL return(redis.call("incr",KEYS[1])) 1 ev:__rand_int__
PING'
if [ -n "${COMMANDS:-}" ]; then
    LIST=$(cat "$COMMANDS")
else
    LIST=$DEFAULT_COMMANDS
fi

PORT=$BASE_PORT
start_pinned redis 1 "$SERVER_CPU" "$RESULTS_DIR/redis.log"
REDIS_PID=$SERVER_PID
HELPER_PIDS+=("$REDIS_PID")
SERVER_PID=""
PORT=$((BASE_PORT + 1))
start_pinned damselfly 1 "$SERVER_CPU" "$RESULTS_DIR/damselfly.log"
DF_PID=$SERVER_PID

cpu_ns_per_op() { # port pid line
    local t0 t1
    t0=$(awk '{ print $14 + $15 }' "/proc/$2/stat")
    # The line is split into words on purpose: it is a command and its args.
    # shellcheck disable=SC2086
    timeout 300 taskset -c "$CLIENT_CPUS" redis-benchmark -h $HOST -p "$1" -c 50 \
        -P "$PIPELINE" -r 1000000 -n "$N" -q $3 >/dev/null 2>&1
    t1=$(awk '{ print $14 + $15 }' "/proc/$2/stat")
    echo $(( (t1 - t0) * 1000000000 / $(getconf CLK_TCK) / N ))
}

echo "# results: $RESULTS_DIR; N=$N PIPELINE=$PIPELINE"
printf '%-58s %9s %9s %7s\n' command redis damselfly ratio | tee "$RESULTS_DIR/survey.txt"
set -f
while IFS= read -r line; do
    [ -z "$line" ] && continue
    r=$(cpu_ns_per_op "$BASE_PORT" "$REDIS_PID" "$line")
    d=$(cpu_ns_per_op "$((BASE_PORT + 1))" "$DF_PID" "$line")
    awk -v c="$line" -v r="$r" -v d="$d" 'BEGIN {
        printf "%-58s %9d %9d %7.2f\n", substr(c, 1, 58), r, d, (d > 0) ? r / d : 0 }' |
        tee -a "$RESULTS_DIR/survey.txt"
done <<< "$LIST"
echo "(server CPU ns per command, one round)"
