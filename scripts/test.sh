#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what the tests
# need (redis-server and redis-tools as the reference, tcl for Redis's own
# suite) when missing, then runs every test once in the dev profile.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
# Three sentinels watch a Damselfly master fail (tests/it/failover.rs).
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v tclsh >/dev/null || need+=(tcl)
# promtool checks the /metrics scrape (tests/it/http.rs).
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts a redis-server service on install; the tests start their own.
cargo test --workspace --all-targets 2>&1
