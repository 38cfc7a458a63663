#!/usr/bin/env bash
# Runs Redis's own 7.0.15 test suite (../shared/redis-suite) against a fresh
# damselfly. Not part of .ci/run (it takes minutes and starts its own server).
#
# usage: scripts/suite.sh [FILE...]   (default: the foundation issue's files)
# env:   PORT (default 6390), PROFILE (release|debug, default release),
#        THREADS (worker threads; default: one per core; 1 gives the
#        cross-connection ordering some of Redis's tests assume),
#        SHARED (default ../shared beside the repo), plus run.sh's own knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
PORT=${PORT:-6390}
PROFILE=${PROFILE:-release}
# Per-port logs and summary, so runs on different ports do not clash.
export LOG_DIR=${LOG_DIR:-/tmp/damselfly-suite-$PORT} OUT=${OUT:-/tmp/damselfly-suite-$PORT.tsv}
# The suite's own helper servers start at --baseport (21079 by default): one per run.
export REDIS_SUITE_ARGS=${REDIS_SUITE_ARGS:---baseport $((PORT + 20000))}
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || FILES=(unit/type/string unit/type/incr unit/expire unit/keyspace unit/scan
    unit/quit unit/protocol unit/info-command)

if [ "$PROFILE" = release ]; then cargo build --release -q; else cargo build -q; fi
dir=$(mktemp -d)
threads=()
[ -n "${THREADS:-}" ] && threads=(--proactor_threads "$THREADS")
"./target/$PROFILE/damselfly" --port "$PORT" --bind 127.0.0.1 --dir "$dir" "${threads[@]}" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
"$SHARED/redis-suite/run.sh" "$PORT" "${FILES[@]}"
