#!/usr/bin/env bash
# Seed 004's price batches to N clients over 1 and 16 symbol sets, each case
# against a fresh roomcast on defaults (bench/RESULTS.md, "Seed 004: 15,000
# trading clients"). Loopback only; the server on core $SERVER_CPU, the
# generator on core $GEN_CPU. Output (tables, JSON lines, commands) in $OUT.
#
#   loadtest/trading.sh                       # 15,000 clients, sets 1 and 16, 90 s each
#   N=2000 SECS=30 SETS="1 4 16" loadtest/trading.sh
#   SERVER_ENV="ROOMCAST_PAPER_TRADING=false" loadtest/trading.sh   # price batches only
set -euo pipefail

N=${N:-15000}
SECS=${SECS:-90}
SETS=${SETS:-"1 16"}
PORT=${PORT:-18410}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SERVER_ENV=${SERVER_ENV:-}
TARGET=${CARGO_TARGET_DIR:-/tmp/lt-target}
OUT=${OUT:-$(mktemp -d /tmp/lt-trading.XXXXXX)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$OUT"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p roomcast -p roomcast-loadtest)
ulimit -n "$(ulimit -Hn)"
{ date -u; uname -r; lscpu | grep -E 'Model name|^CPU\(s\)'; git -C "$ROOT" rev-parse --short HEAD; } > "$OUT/machine.txt"

for k in $SETS; do
    # shellcheck disable=SC2086 # SERVER_ENV is a list of VAR=value words
    env $SERVER_ENV ROOMCAST_BIND=127.0.0.1:$PORT taskset -c "$SERVER_CPU" "$TARGET/release/roomcast" \
        > "$OUT/server-sets$k.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
        sleep 0.1
    done
    sleep 5 # the simulator's first quotes, a first round
    cmd=(taskset -c "$GEN_CPU" "$TARGET/release/loadtest" trading -n "$N" --sets "$k" --secs "$SECS"
        --ramp-rate 2000 --url "http://127.0.0.1:$PORT" --server-pid "$server")
    echo "${cmd[*]}" > "$OUT/sets$k.cmd"
    "${cmd[@]}" > "$OUT/sets$k.txt" 2> "$OUT/sets$k.err" || true
    kill "$server"
    wait "$server" 2> /dev/null || true
    grep -E '^(batches|latency|server cpu|attributed)' "$OUT/sets$k.txt" || cat "$OUT/sets$k.err"
done
echo "results in $OUT"
