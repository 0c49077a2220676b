#!/usr/bin/env bash
# Runs roomcast's whole test suite on a fresh machine with Rust: installs what
# the tests need when it is missing, then runs every unit and integration test.
#
#   ./tests/run.sh            # everything
#   ./tests/run.sh limits     # extra arguments go to `cargo test` (a filter here)
#
# cargo's own output is shown as it runs; the last line sums every test
# binary's `test result:` line: `N passed, N failed, N ignored`. The exit
# status is cargo's (the fuzz pass's when cargo passed).
#
# Needs: cargo. Installs when absent: Python's `websockets` package, 12 or
# later (the seed client compatibility test runs the seed's own Python client
# code; the Python package's subscriber, tests/python_subscriber.rs, needs
# it), Python's
# `backtesting` package (backtesting.py: the backtest engine is cross-checked
# against it, engine/tests/peer.rs), Python's
# `kosoku` package (it runs the Autobahn|Testsuite cases against the echo
# endpoint: tests/conformance.rs, docs/conformance.md), Python's
# `openapi-spec-validator` and `schemathesis` (pinned: they check
# web/openapi.json against a real server, tests/openapi.rs), and the
# PostgreSQL server binaries (Debian's `postgresql` package: the database
# tests run their own private PostgreSQL instances on 127.0.0.1, as the
# `postgres` user when run as root).
#
#   DATABASE_URL=postgres://user@host:port/db ./tests/run.sh
#
# makes the tests that only need *a* database create their databases on that
# server instead of a private one (the user needs CREATEDB; PostgreSQL >= 13).
# The binaries are still installed when absent: the outage tests stop and
# restart private instances of their own.
#
# The fleet tests start their own `redis-server` (installed from Debian's
# package when absent) on a free port and real roomcast processes.
#
# The seed 004 client test (tests/seed004.rs) runs the seed's JavaScript
# client in Node, which needs a global WebSocket (Node >= 22, or Node 20-21
# with --experimental-websocket; the test picks the flag). Debian's `nodejs`
# package is installed when `node` is absent; without it the test is skipped.
# The JavaScript client's tests (tests/js_client.rs: clients/js/test/*.test.mjs
# under `node --test`, against real servers and a fleet on redis-server) use
# the same Node (for a Node older than 20, the `ws` package from
# clients/js/package-lock.json, installed with npm ci); when CI is set, a
# missing Node fails them instead of skipping them.
#
# The browser tests (tests/browser.rs) need Debian's `chromium` (and
# `nodejs`, `npm`) and the npm packages of tests/browser (`npm ci` when
# node_modules is missing or was installed from another package-lock.json).
#
# Last, a smoke pass of every fuzz target (tests/fuzz/run.sh --smoke: each
# over its seed corpus plus a few thousand mutations, on the stable
# toolchain; it installs cargo-fuzz and g++ when absent). Skipped when
# `cargo test` gets a filter.
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
  local recent="import websockets, sys; sys.exit(int(websockets.__version__.split('.')[0]) < 12)"
  if command -v python3 >/dev/null 2>&1 && ! python3 -c "$recent" 2>/dev/null; then
    log "installing Python package websockets (>= 12)"
    python3 -m pip install --quiet --disable-pip-version-check 'websockets>=12' \
      || python3 -m pip install --quiet --break-system-packages 'websockets>=12' \
      || { log "could not install websockets; the Python subscriber tests cannot run"; exit 1; }
  fi
}

ensure_python_backtesting() {
  if python3 -c 'import backtesting' 2>/dev/null; then
    return
  fi
  log "installing Python package backtesting (the engine's peer: engine/tests/peer.rs)"
  python3 -m pip install --quiet --disable-pip-version-check backtesting \
    || python3 -m pip install --quiet --break-system-packages backtesting \
    || { log "could not install backtesting; the engine's cross-check cannot run"; exit 1; }
}

# The Python package for existing engines must install as documented
# (`pip install ./clients/python`, `pip install "./clients/python[subscriber]"`);
# tests/python_publisher.rs and tests/python_subscriber.rs import it from the
# repository, so this checks the packaging, into a scratch directory, and
# that the installed publisher imports without any site package (the
# subscriber's `websockets` is an extra, not a dependency).
check_python_package() {
  local scratch
  scratch="$(mktemp -d)"
  if ! python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$scratch" './clients/python[subscriber]'; then
    rm -rf "$scratch"
    log "pip install ./clients/python[subscriber] failed"
    exit 1
  fi
  if ! PYTHONPATH="$scratch" python3 -S -c 'import roomcast_client; roomcast_client.HttpTransport; roomcast_client.Subscriber'; then
    rm -rf "$scratch"
    log "the installed roomcast_client does not import without site packages"
    exit 1
  fi
  rm -rf "$scratch" clients/python/build clients/python/*.egg-info
}

ensure_kosoku() {
  if command -v kosoku >/dev/null 2>&1; then
    return
  fi
  log "installing Python package kosoku (Autobahn|Testsuite runner)"
  python3 -m pip install --quiet --disable-pip-version-check kosoku \
    || python3 -m pip install --quiet --break-system-packages kosoku \
    || { log "could not install kosoku; the conformance tests cannot run"; exit 1; }
  if ! command -v kosoku >/dev/null 2>&1; then
    # pip put the script where PATH does not look (a user install).
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
    export PATH
  fi
  command -v kosoku >/dev/null 2>&1 || { log "kosoku installed but not on PATH"; exit 1; }
}

# tests/openapi.rs validates web/openapi.json with openapi-spec-validator and
# runs schemathesis against a real server; pinned, so a run is repeatable.
OPENAPI_TOOLS=(openapi-spec-validator==0.9.0 schemathesis==4.32.5)
ensure_openapi_tools() {
  if command -v openapi-spec-validator >/dev/null 2>&1 && command -v schemathesis >/dev/null 2>&1 \
    && schemathesis --version 2>/dev/null | grep -q ' 4\.32\.5' \
    && python3 -m pip show openapi-spec-validator 2>/dev/null | grep -q '^Version: 0\.9\.0$'; then
    return
  fi
  log "installing Python packages ${OPENAPI_TOOLS[*]} (the OpenAPI document's checks: tests/openapi.rs)"
  python3 -m pip install --quiet --disable-pip-version-check "${OPENAPI_TOOLS[@]}" \
    || python3 -m pip install --quiet --break-system-packages "${OPENAPI_TOOLS[@]}" \
    || { log "could not install ${OPENAPI_TOOLS[*]}; the OpenAPI tests cannot run"; exit 1; }
  if ! command -v schemathesis >/dev/null 2>&1; then
    # pip put the scripts where PATH does not look (a user install).
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
    export PATH
  fi
  command -v schemathesis >/dev/null 2>&1 && command -v openapi-spec-validator >/dev/null 2>&1 \
    || { log "openapi-spec-validator or schemathesis installed but not on PATH"; exit 1; }
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "DATABASE_URL is set; shared-database tests use that server"
  fi
  # The outage tests stop and restart private instances, so the binaries are
  # needed even with DATABASE_URL.
  if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    return
  fi
  log "PostgreSQL binaries not found; installing Debian's postgresql package"
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not available: install PostgreSQL (initdb, postgres) or set DATABASE_URL"
    exit 1
  fi
  # The package may create and start its own cluster; the tests do not use it.
  if ! { apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
    log "installing postgresql failed; the database tests cannot run"
    exit 1
  fi
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    log "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
    exit 1
  fi
}

ensure_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    return
  fi
  log "redis-server not found; installing Debian's redis-server package"
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not available: install redis-server"
    exit 1
  fi
  if ! { apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }; then
    log "installing redis-server failed; the fleet tests cannot run"
    exit 1
  fi
}

ensure_nodejs() {
  if ! command -v node >/dev/null 2>&1; then
    log "node not found; installing Debian's nodejs package"
    if ! command -v apt-get >/dev/null 2>&1; then
      log "apt-get not available; the seed 004 JavaScript client test will be skipped"
      return
    fi
    if ! { apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; }; then
      log "could not install nodejs; the seed 004 JavaScript client test will be skipped"
      return
    fi
  fi
  local probe='process.exit(typeof WebSocket === "function" ? 0 : 1)'
  if ! node -e "$probe" 2>/dev/null && ! node --experimental-websocket -e "$probe" 2>/dev/null; then
    log "node $(node --version) has no WebSocket (Node >= 20 needed); the seed 004 JavaScript client test will be skipped"
  fi
}

# The JavaScript client's tests need a WebSocket in Node. An older Node than
# 20 (Debian 12's nodejs is 18) has none: install the `ws` package into
# clients/js from its lock file (npm ci; Debian's npm package when npm is
# absent), which the tests fall back to.
ensure_js_client_websocket() {
  command -v node >/dev/null 2>&1 || return 0
  local probe='process.exit(typeof WebSocket === "function" ? 0 : 1)'
  if node -e "$probe" 2>/dev/null || node --experimental-websocket -e "$probe" 2>/dev/null; then
    return
  fi
  if [ -f clients/js/node_modules/ws/package.json ]; then
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found; installing Debian's npm package (the JavaScript client's tests need the ws package on node $(node --version))"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null \
      || { log "could not install npm; the JavaScript client's tests cannot run"; exit 1; }
  fi
  log "installing npm package ws into clients/js (npm ci): node $(node --version) has no WebSocket"
  (cd clients/js && npm ci --no-audit --no-fund --loglevel=error) \
    || { log "npm ci in clients/js failed; the JavaScript client's tests cannot run"; exit 1; }
}

# The browser tests (tests/browser.rs) drive Debian's headless Chromium
# through playwright-core (tests/browser/package.json, pinned, installed
# with `npm ci` from package-lock.json; it never downloads a browser).
ensure_browser() {
  local need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages for the browser tests: ${need[*]}"
    if ! { command -v apt-get >/dev/null 2>&1 && apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }; then
      log "could not install ${need[*]}; the browser tests cannot run (they fail under CI)"
      return
    fi
  fi
  # node_modules is stale when it was installed from another package-lock.json.
  local stamp=tests/browser/node_modules/.roomcast-package-lock.json
  if ! cmp -s tests/browser/package-lock.json "$stamp"; then
    log "installing the browser tests' npm packages (npm ci in tests/browser)"
    if (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error); then
      cp tests/browser/package-lock.json "$stamp"
    else
      log "npm ci failed in tests/browser; the browser tests cannot run (they fail under CI)"
    fi
  fi
}

ensure_python_websockets
ensure_nodejs
ensure_js_client_websocket
ensure_browser
ensure_python_backtesting
check_python_package
ensure_kosoku
ensure_openapi_tools
ensure_postgres
ensure_redis

# Sums cargo's `test result: ok. 3 passed; 0 failed; 1 ignored; …` lines
# (one per test binary and doc-test run) into `N passed, N failed, N ignored`.
sum_test_results() {
  awk '/^test result:/ {
         for (i = 2; i <= NF; i++) {
           if ($i == "passed;") passed += $(i - 1)
           if ($i == "failed;") failed += $(i - 1)
           if ($i == "ignored;") ignored += $(i - 1)
         }
       }
       END { printf "%d passed, %d failed, %d ignored\n", passed, failed, ignored }'
}

# Each test binary starts its own servers on 127.0.0.1 port 0; two threads
# per binary keep the 2-core machine responsive. cargo's output stays on
# the terminal; a copy of its stdout is kept for the summary at the end.
log "cargo test"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
cargo_status=0
cargo test --workspace --all-features "$@" -- --test-threads=2 | tee "$results" \
  || cargo_status=${PIPESTATUS[0]}

fuzz_status=0
if [ "$cargo_status" -eq 0 ] && [ $# -eq 0 ]; then
  log "fuzz smoke pass"
  tests/fuzz/run.sh --smoke || fuzz_status=$?
fi

# The last line: every cargo test binary's results, summed.
sum_test_results <"$results"
if [ "$cargo_status" -ne 0 ]; then
  exit "$cargo_status"
fi
exit "$fuzz_status"
