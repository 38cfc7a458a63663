#!/usr/bin/env bash
# bench/replication.sh — full sync and replication lag, Damselfly and redis-server 7.0 in
# the four master -> replica pairings (Damselfly -> Damselfly, Redis -> Damselfly,
# Damselfly -> Redis, Redis -> Redis), one pair at a time, release builds.
#
# For each pair:
#   1. a fresh master (pinned to MASTER_CPU) loads the dataset with `redis-cli --pipe`:
#      1,000,000 strings `key:%07d` -> 32-byte values, 50,000 hashes x 10 fields and
#      50,000 zsets x 10 members (KEYS_SCALE scales all three); SAVE gives the RDB's size;
#   2. full sync: a fresh replica (pinned to REPLICA_CPU) is told REPLICAOF; the time from
#      then until its link is up with every key loaded. keys/s and MB/s (RDB bytes) follow.
#      The master syncs diskless with no delay (`repl-diskless-sync yes`, delay 0);
#   3. lag under load: redis-benchmark (pinned to CLIENT_CPU) writes SETs of 32-byte values
#      to the master for LAG_SECONDS while a sampler, every SAMPLE_MS, reads both offsets
#      (master_repl_offset minus the replica's: bytes not yet applied) and writes a marker
#      key on the master, timing until the replica returns it.
# One table at the end; the servers' logs and the raw samples stay in RESULTS_DIR.
#
# Env: MASTER_PORT=6476 REPLICA_PORT=6477 MASTER_CPU=1 REPLICA_CPU=0 CLIENT_CPU=0
#      SKIP_BUILD=0 KEYS_SCALE=1 LAG_SECONDS=10 SAMPLE_MS=100 BENCH_CLIENTS=8
#      BENCH_PIPELINE=8 REDIS_SERVER=redis-server PAIRS="df:df redis:df df:redis redis:redis"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MASTER_PORT=${MASTER_PORT:-6476}
REPLICA_PORT=${REPLICA_PORT:-6477}
MASTER_CPU=${MASTER_CPU:-1}
REPLICA_CPU=${REPLICA_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEYS_SCALE=${KEYS_SCALE:-1}
LAG_SECONDS=${LAG_SECONDS:-10}
SAMPLE_MS=${SAMPLE_MS:-100}
BENCH_CLIENTS=${BENCH_CLIENTS:-8}
BENCH_PIPELINE=${BENCH_PIPELINE:-8}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
PAIRS=${PAIRS:-"df:df redis:df df:redis redis:redis"}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/damselfly-repl.XXXXXX)}
DF_BIN=$ROOT/target/release/damselfly
HOST=127.0.0.1

for t in "$REDIS_SERVER" redis-cli redis-benchmark taskset python3 bc; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done
[ "$SKIP_BUILD" = 1 ] || (cd "$ROOT" && cargo build --release --bin damselfly)
mkdir -p "$RESULTS_DIR"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

now_ns() { date +%s%N; }

generate() { # file
    python3 "$ROOT/bench/dataset.py" "$1" "$KEYS_SCALE" key=1000000 hash=50000 zset=50000
}

# Not called in $(...): the pid goes into PIDS and LAST_PID in this shell.
start_server() { # kind port dir cpu
    local kind=$1 port=$2 dir=$3 cpu=$4
    if [ "$kind" = redis ]; then
        taskset -c "$cpu" "$REDIS_SERVER" --port "$port" --bind $HOST --dir "$dir" \
            --dbfilename dump.rdb --save '' --appendonly no \
            --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
            --repl-backlog-size 256mb >>"$dir/server.log" 2>&1 &
    else
        taskset -c "$cpu" "$DF_BIN" --port "$port" --bind $HOST --dir "$dir" \
            --dbfilename dump.rdb --save '' --proactor_threads 1 --logtostderr \
            --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
            --repl-backlog-size 256mb >>"$dir/server.log" 2>&1 &
    fi
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    until [ "$(redis-cli -h $HOST -p "$port" PING 2>/dev/null)" = PONG ]; do
        kill -0 "$LAST_PID" 2>/dev/null || { echo "server on $port exited" >&2; exit 1; }
        sleep 0.02
    done
}

stop_server() { # pid
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

info_field() { # port section field
    redis-cli -h $HOST -p "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

# Samples lag while the load runs; prints "lag_p50 lag_p99 lag_max mk_p50 mk_p99 mk_max"
# (bytes, milliseconds) and leaves the raw samples in $3.
sample_lag() { # seconds out
    python3 - "$MASTER_PORT" "$REPLICA_PORT" "$1" "$SAMPLE_MS" "$2" <<'EOF'
import socket, sys, time
mport, rport, secs, every_ms, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()
    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"-":
            raise RuntimeError(rest.decode())
        return rest
def offset(c):
    for l in c.cmd("INFO", "replication").decode().splitlines():
        if l.startswith("master_repl_offset:"):
            return int(l.split(":")[1])
    return 0
m, r = Conn(mport), Conn(rport)
lags, marks = [], []
end = time.time() + secs
i = 0
while time.time() < end:
    start = time.time()
    lags.append(max(0, offset(m) - offset(r)))
    i += 1
    key = "marker:%d" % i
    t0 = time.perf_counter()
    m.cmd("SET", key, "1")
    while r.cmd("GET", key) is None:
        if time.perf_counter() - t0 > 60:
            sys.exit("marker %s never reached the replica" % key)
    marks.append((time.perf_counter() - t0) * 1000)
    time.sleep(max(0, every_ms / 1000 - (time.time() - start)))
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0
with open(out, "w") as f:
    for a, b in zip(lags, marks):
        f.write("%d %.3f\n" % (a, b))
print("%d %d %d %.2f %.2f %.2f" % (pct(lags, .5), pct(lags, .99), max(lags or [0]),
      pct(marks, .5), pct(marks, .99), max(marks or [0])))
EOF
}

LOAD=$RESULTS_DIR/load.resp
echo "# generating the dataset (scale $KEYS_SCALE) into $LOAD"
generate "$LOAD"

name() { [ "$1" = df ] && echo Damselfly || echo Redis; }

ROWS=()
for pair in $PAIRS; do
    mk=${pair%%:*}
    rk=${pair##*:}
    label="$(name "$mk") -> $(name "$rk")"
    echo "# $label"
    mdir=$(mktemp -d "$RESULTS_DIR/master-$mk.XXXX")
    rdir=$(mktemp -d "$RESULTS_DIR/replica-$rk.XXXX")
    start_server "$mk" "$MASTER_PORT" "$mdir" "$MASTER_CPU"
    mpid=$LAST_PID
    taskset -c "$CLIENT_CPU" redis-cli -h $HOST -p "$MASTER_PORT" --pipe <"$LOAD" >"$mdir/pipe.log"
    keys=$(redis-cli -h $HOST -p "$MASTER_PORT" DBSIZE)
    redis-cli -h $HOST -p "$MASTER_PORT" SAVE >/dev/null
    rdb_bytes=$(stat -c %s "$mdir/dump.rdb")
    start_server "$rk" "$REPLICA_PORT" "$rdir" "$REPLICA_CPU"
    rpid=$LAST_PID
    start=$(now_ns)
    redis-cli -h $HOST -p "$REPLICA_PORT" REPLICAOF $HOST "$MASTER_PORT" >/dev/null
    # Up, and every key in (INFO answers while the RDB loads; DBSIZE may be refused).
    while true; do
        if [ "$(info_field "$REPLICA_PORT" replication master_link_status)" = up ] &&
            [ "$(redis-cli -h $HOST -p "$REPLICA_PORT" DBSIZE 2>/dev/null)" = "$keys" ]; then
            break
        fi
        kill -0 "$rpid" 2>/dev/null || { echo "replica exited" >&2; exit 1; }
        sleep 0.01
    done
    sync_s=$(echo "scale=3; ($(now_ns) - $start) / 1000000000" | bc)
    kps=$(echo "scale=0; $keys / $sync_s" | bc)
    mbps=$(echo "scale=1; $rdb_bytes / 1000000 / $sync_s" | bc)
    taskset -c "$CLIENT_CPU" redis-benchmark -h $HOST -p "$MASTER_PORT" -t set -d 32 \
        -r 1000000 -n 2000000000 -c "$BENCH_CLIENTS" -P "$BENCH_PIPELINE" -q >/dev/null 2>&1 &
    bench=$!
    PIDS+=("$bench")
    sleep 1
    read -r lp50 lp99 lmax mp50 mp99 mmax < <(sample_lag "$LAG_SECONDS" "$RESULTS_DIR/lag-$mk-$rk.txt")
    kill "$bench" 2>/dev/null || true
    wait "$bench" 2>/dev/null || true
    rdb_mb=$(echo "scale=1; $rdb_bytes / 1000000" | bc)
    ROWS+=("$(printf '| %-22s | %9s | %6s | %7.2f | %9s | %6s | %s / %s / %s | %s / %s / %s |' \
        "$label" "$keys" "$rdb_mb" "$sync_s" "$kps" "$mbps" "$lp50" "$lp99" "$lmax" "$mp50" "$mp99" "$mmax")")
    stop_server "$rpid"
    stop_server "$mpid"
done

echo
echo "RDB MB: the master's SAVE of the dataset; MB/s: that over the sync time. Lag sampled every"
echo "$SAMPLE_MS ms for $LAG_SECONDS s under redis-benchmark SET -d 32 -c $BENCH_CLIENTS -P $BENCH_PIPELINE."
echo "Results in $RESULTS_DIR"
echo
echo "| master -> replica      |      keys | RDB MB | sync s  |    keys/s |   MB/s | lag bytes p50 / p99 / max | marker ms p50 / p99 / max |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|"
for row in "${ROWS[@]}"; do echo "$row"; done
