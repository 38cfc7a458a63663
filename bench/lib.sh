# bench/lib.sh — pieces shared by bench/latency.sh and bench/scaling.sh
# (sourced). Expects HOST, PORT and SERVER_PID to be set by the caller.

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
