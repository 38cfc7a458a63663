#!/usr/bin/env bash
# Runs files of Redis's bundled 7.0.15 suite in its own-server mode: the
# suite starts `src/redis-server` itself (here: the damselfly binary) with
# tests/assets/default.conf plus each test's overrides, so this also checks
# redis.conf support. For the files that need their own server. As in
# run.sh, `--durable` makes an unexpected error fail its test, not the file.
#
# usage: scripts/suite-own.sh [FILE...]   (default: unit/auth unit/acl unit/acl-v2)
# env:   PROFILE (debug|release, default debug), BASEPORT (default 24100:
#        clear of the suite's default ports that other runs may hold),
#        SKIP (a regexp of test names to skip), SHARED (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
PROFILE=${PROFILE:-debug}
BASEPORT=${BASEPORT:-24100}
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || FILES=(unit/auth unit/acl unit/acl-v2)

if [ "$PROFILE" = release ]; then cargo build --release -q; else cargo build -q; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -a "$SHARED/redis-suite/redis-7.0.15/." "$dir/"
mkdir -p "$dir/src"
cp "target/$PROFILE/damselfly" "$dir/src/redis-server"
# Some files run Redis's own client tools from src/ (psync2-reg: redis-benchmark).
for tool in redis-cli redis-benchmark; do
    if command -v "$tool" >/dev/null; then cp "$(command -v "$tool")" "$dir/src/$tool"; fi
done
skip=()
[ -n "${SKIP:-}" ] && skip=(--skiptest "/$SKIP")
total_ok=0; total_bad=0
for f in "${FILES[@]}"; do
    log="$dir/${f//\//_}.log"
    ( cd "$dir" && timeout -k 10 600 tclsh tests/test_helper.tcl --single "$f" \
        --baseport "$BASEPORT" --portcount 100 --durable "${skip[@]}" ) > "$log" 2>&1 < /dev/null || true
    clean=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
    ok=$(grep -c '^\[ok\]' <<< "$clean" || true)
    err=$(grep -c '^\[err\]' <<< "$clean" || true)
    exc=$(grep -c '^\[exception\]' <<< "$clean" || true)
    echo "$f: $ok ok, $err err, $exc exception"
    # A file with no failures: grep finds nothing, which must not end the run.
    { grep -E '^\[(err|exception)\]' <<< "$clean" || true; } | head -5 | sed 's/^/    /'
    total_ok=$((total_ok + ok)); total_bad=$((total_bad + err + exc))
done
echo "suite-own: $total_ok passed, $total_bad failed"
