#!/usr/bin/env bash
# Runs roomcast's whole test suite on a fresh machine with Rust: installs what
# the tests need when it is missing, then runs every unit and integration test.
#
#   ./tests/run.sh            # everything
#   ./tests/run.sh limits     # extra arguments go to `cargo test` (a filter here)
#
# Needs: cargo. Installs when absent: Python's `websockets` package (the seed
# client compatibility test runs the seed's own Python client code).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[tests/run.sh] %s\n' "$*" >&2; }

ensure_python_websockets() {
  if ! command -v python3 >/dev/null 2>&1; then
    log "python3 not found; installing from Debian packages"
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
    fi
  fi
  if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import websockets' 2>/dev/null; then
    log "installing Python package websockets"
    python3 -m pip install --quiet --disable-pip-version-check websockets \
      || python3 -m pip install --quiet --break-system-packages websockets \
      || log "could not install websockets; the seed-client test will be skipped"
  fi
}

ensure_python_websockets

# Each test binary starts its own servers on 127.0.0.1 port 0; two threads
# per binary keep the 2-core machine responsive.
log "cargo test"
cargo test --workspace --all-features "$@" -- --test-threads=2
