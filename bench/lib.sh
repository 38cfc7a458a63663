# bench/lib.sh — pieces shared by bench/latency.sh, bench/scaling.sh and
# bench/p1.sh (sourced). Expects HOST (and for the functions below, PORT) to
# be set by the caller. Sourcing it sets the exit clean-up: the server started
# last (SERVER_PID), background helpers (HELPER_PIDS) and temporary dirs
# (WORKDIRS) go when the script ends; EXIT_HOOK names one more command to run.

SERVER_PID=""
HELPER_PIDS=()
WORKDIRS=()
EXIT_HOOK=:
bench_cleanup() {
    local p
    for p in "${HELPER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
    $EXIT_HOOK
    for p in "${WORKDIRS[@]}"; do rm -rf "$p"; done
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# An awk function for the summaries: the median of a space-separated list.
AWK_MEDIAN='
function median(list,    a, n, i, j, t) {
    n = split(list, a, " "); if (n == 0) return "NA"
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return (n % 2) ? a[(n+1)/2] + 0 : (a[n/2] + a[n/2+1]) / 2
}'

# Checks the tools, builds target/release/damselfly unless SKIP_BUILD=1,
# and creates RESULTS_DIR (ROOT, REDIS_SERVER, DF_BIN set by the caller).
prepare() {
    local t
    for t in "$REDIS_SERVER" redis-cli redis-benchmark taskset awk; do
        command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
    done
    if [ "$SKIP_BUILD" != 1 ]; then
        (cd "$ROOT" && cargo build --release --bin damselfly)
    fi
    [ -x "$DF_BIN" ] || { echo "no binary at $DF_BIN" >&2; exit 2; }
    mkdir -p "$RESULTS_DIR"
}

# Starts SERVER (redis: REDIS_SERVER, with --io-threads when THREADS > 1;
# damselfly: DF_BIN with --proactor_threads THREADS) pinned to CPUS, on PORT,
# in a fresh dir, logging to LOG, with no snapshots; waits for its PONG.
start_pinned() { # server threads cpus log
    local d io=()
    d=$(mktemp -d /tmp/damselfly-bench-dir.XXXXXX); WORKDIRS+=("$d")
    if [ "$1" = redis ]; then
        [ "$2" -gt 1 ] && io=(--io-threads "$2" --io-threads-do-reads yes)
        taskset -c "$3" "$REDIS_SERVER" --port "$PORT" --bind "$HOST" \
            --save '' --appendonly no --dir "$d" "${io[@]}" >"$4" 2>&1 &
    else
        taskset -c "$3" "$DF_BIN" --port "$PORT" --bind "$HOST" --dir "$d" \
            --save '' --proactor_threads "$2" >"$4" 2>&1 &
    fi
    SERVER_PID=$!
    wait_pong "$1"
}

# Waits for PONG from $PORT while $SERVER_PID lives; NAME names it in errors.
wait_pong() { # name
    local i
    for i in $(seq 1 100); do
        [ "$(timeout 2 redis-cli -h "$HOST" -p "$PORT" PING 2>/dev/null)" = PONG ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1 exited during start-up" >&2; exit 1; }
        sleep 0.1
    done
    echo "$1 did not answer PING on port $PORT" >&2
    exit 1
}

# Stops the server started last: TERM, up to 5 s, then KILL.
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# FLUSHALL, then the 1M keys `key:%012d` -> 32-byte values that
# redis-benchmark -r 1000000 hits (what the shared latency.sh preloads),
# sent with redis-cli --pipe on CPUS.
preload() { # cpus
    local r
    r=$(timeout 60 redis-cli -h "$HOST" -p "$PORT" FLUSHALL)
    [ "$r" = OK ] || echo "# WARNING: FLUSHALL: $r" >&2
    r=$(awk 'BEGIN { v = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
                     for (i = 0; i < 1000000; i++)
                         printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n", i, v }' |
        timeout 120 taskset -c "$1" redis-cli -h "$HOST" -p "$PORT" --pipe 2>&1 | tail -1)
    case "$r" in *"errors: 0, replies: 1000000"*) ;; *) echo "# WARNING: preload: $r" >&2 ;; esac
}
