#!/usr/bin/env bash
# Builds and runs roomcast's fuzz targets (cargo-fuzz + libFuzzer) on the
# stable toolchain, and fails if any target crashes (a panic: a broken
# invariant or a bug). See docs/conformance.md (Fuzzing).
#
#   tests/fuzz/run.sh                     # every target, 60 s each
#   tests/fuzz/run.sh 300                 # every target, 300 s each
#   tests/fuzz/run.sh 30 frame_reader handshake
#   tests/fuzz/run.sh --smoke             # quick pass for the test suite:
#                                         # each target over its seed corpus
#                                         # plus SMOKE_RUNS (3000) mutations
#                                         # (dev build, fixed libFuzzer seed)
#
# Stable Rust works because the targets are built without a sanitizer
# (`cargo fuzz build -s none`): the remaining flags (`-Cpasses=sancov-module`
# and the `-Cllvm-args=-sanitizer-coverage-*` options) are stable. Needs
# cargo and a C++ compiler (libfuzzer-sys builds libFuzzer); installs
# cargo-fuzz with `cargo install` and g++ from Debian's packages when absent.
#
# New corpus entries go to tests/fuzz/generated/<target>/ and crashes to
# tests/fuzz/artifacts/<target>/ (both ignored by git); the committed seed
# files in tests/fuzz/corpus/<target>/ are only read. Reproduce a crash with
#   cargo fuzz run --fuzz-dir tests/fuzz -s none <target> <file>
# (findings so far: tests/fuzz/crashes-found/README.md). CARGO_TARGET_DIR is
# honoured.
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZ_DIR=tests/fuzz

log() { printf '[tests/fuzz/run.sh] %s\n' "$*" >&2; }

ALL_TARGETS=(
  frame_reader
  message_assembler
  handshake
  seed001_messages
  native_messages
  seed000_messages
  publish_bodies
  room_names_and_queries
  jwt_tokens
)

smoke=false
seconds=60
if [ "${1:-}" = "--smoke" ]; then
  smoke=true
  shift
elif [ -n "${1:-}" ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do
  if [[ " ${ALL_TARGETS[*]} " != *" $target "* ]]; then
    log "unknown target '$target' (targets: ${ALL_TARGETS[*]})"
    exit 2
  fi
done
smoke_runs=${SMOKE_RUNS:-3000}

ensure_tools() {
  if ! command -v c++ >/dev/null 2>&1; then
    log "no C++ compiler (libfuzzer-sys builds libFuzzer); installing Debian's g++"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
  fi
}

ensure_tools

build_started=$(date +%s)
# No sanitizer: the one thing that needs nightly. The smoke pass builds
# without optimisations (a clean build in about a third of the time; a few
# thousand runs do not need speed); real runs build optimised, with debug
# assertions and overflow checks (cargo-fuzz's default).
fuzz_flags=(--fuzz-dir "$FUZZ_DIR" -s none)
$smoke && fuzz_flags+=(--dev)
# One cargo invocation builds every target (`cargo fuzz build` takes at
# most one name, and the targets share all their dependencies).
log "building the fuzz targets with $(cargo fuzz --version)"
cargo fuzz build "${fuzz_flags[@]}"
log "build took $(($(date +%s) - build_started)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
  seeds="$FUZZ_DIR/corpus/$target"
  artifacts="$FUZZ_DIR/artifacts/$target"
  mkdir -p "$seeds" "$artifacts"
  args=(
    "-artifact_prefix=$artifacts/"
    -timeout=10
    -rss_limit_mb=2048
    -print_final_stats=1
  )
  if [ -f "$FUZZ_DIR/dict/$target.dict" ]; then
    args+=("-dict=$FUZZ_DIR/dict/$target.dict")
  fi
  if $smoke; then
    # A throwaway first corpus directory: what libFuzzer adds goes there.
    # A fixed seed makes the pass repeatable: the same binary runs the same
    # inputs, so it cannot fail one time in ten.
    work=$(mktemp -d)
    args+=("-runs=$smoke_runs" -seed=1)
  else
    work="$FUZZ_DIR/generated/$target"
    mkdir -p "$work"
    args+=("-max_total_time=$seconds")
  fi
  out=$(mktemp)
  started=$(date +%s)
  status=0
  cargo fuzz run "${fuzz_flags[@]}" "$target" "$work" "$seeds" -- "${args[@]}" \
    >"$out" 2>&1 || status=$?
  elapsed=$(($(date +%s) - started))
  $smoke && rm -rf "$work"
  # A target that crashes at once prints no statistics: none of these may
  # end the script (set -e, pipefail) before its crash is reported.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1 || true)
  corpus=$( (grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$out" || true) | tail -n 1 | sed 's/corp: //')
  fuzzed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -n 1 || true)
  line=$(printf '%-24s execs %10s  execs/s %7s  corpus %-12s fuzzed %4s s (wall %4s s)' \
    "$target" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "${fuzzed:-?}" "$elapsed")
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    line="$line  CRASH (exit $status)"
    log "$target crashed:"
    # The panic message, then libFuzzer's report (without the backtrace).
    grep -A 2 'panicked at' "$out" | grep -v '^stack backtrace' >&2 || true
    sed -n '/^SUMMARY/,/^Minimize/p' "$out" | grep -v '^[[:space:]]*$' | head -n 40 >&2
  fi
  summary+=("$line")
  echo "$line"
  rm -f "$out"
done

echo
echo "== fuzz summary ($($smoke && echo "smoke: seeds + $smoke_runs runs" || echo "$seconds s per target"))"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs saved under $FUZZ_DIR/artifacts/<target>/)"
  exit 1
fi
echo "no crashes"
