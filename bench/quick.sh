#!/usr/bin/env bash
# bench/quick.sh — smoke run of bench/run.sh: proves the pipeline works end to
# end in a minute or two; its numbers mean nothing.
#
# Defaults: SCALE=0.05 ROUNDS=1 ONLY=set_p1,get_p16 RETRIES=0; any of them (and
# every other knob of bench/run.sh) can still be set in the environment.
set -euo pipefail
export SCALE=${SCALE:-0.05}
export ROUNDS=${ROUNDS:-1}
export ONLY=${ONLY:-set_p1,get_p16}
export RETRIES=${RETRIES:-0}
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
