#!/usr/bin/env bash
# Microseconds from exec of the release binary (default config, simulator on)
# to the first 200 from /health, REPEATS times; prints the sorted samples.
#   cargo build --release && bench/startup.sh 9 8800
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-7}
base_port=${2:-8800}
for i in $(seq 1 "$repeats"); do
  port=$((base_port + i))
  start=$(date +%s%N)
  ROOMCAST_BIND=127.0.0.1:$port ./target/release/roomcast >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do :; done
  end=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo $(( (end - start) / 1000 ))
done | sort -n | tr '\n' ' '
echo
