#!/usr/bin/env bash
# Runs the same load-test scenarios against roomcast and against nchan (nginx
# + libnginx-mod-nchan, one worker) on this machine and prints one table with
# both servers and their ratios.
#
#   loadtest/compare.sh                       # idle 2,000 + fanout 1,000 at steps 50,100,200,400
#   IDLE_N=5000 FANOUT_N=2000 STEPS=100,400,1600 loadtest/compare.sh
#   SCENARIOS="idle fanout rooms churn" loadtest/compare.sh
#
# Environment (defaults in brackets):
#   SCENARIOS   scenarios to run, in order [idle fanout]  (idle fanout rooms churn)
#   IDLE_N      idle connections [2000]          HOLD_SECS  idle hold [5]
#   FANOUT_N    fanout subscribers [1000]        STEPS      publish rates [50,100,200,400]
#   STEP_SECS   seconds per step [5]             SETTLE_SECS silence between steps [2]
#   ROOMS_N     rooms-scenario connections [2000]  ROOMS  rooms [100]  ROOMS_RATE  publishes/s [1000]
#   CHURN_N     held connections in churn [1000] CHURN_RATE cycles/s [200]  CHURN_SECS [20]
#   RAMP_RATE   connections/s while ramping [2000]
#   SERVER_CPU  CPU the server is pinned to [0]  GEN_CPU  CPU the generator is pinned to [1]
#   OUT         directory for JSON results and logs [a new /tmp/lt-compare.*]
#   CARGO_TARGET_DIR  where to build [/tmp/lt-target]
#
# Every server gets a fresh process per scenario (so RSS figures do not carry
# over), bound to a free 127.0.0.1 port; nginx runs in the foreground
# (`daemon off`) from a config written to a temp dir, with `-p` and `-c`.
# Everything started here is stopped on exit. Installs nginx and
# libnginx-mod-nchan with apt-get if they are missing (root needed then).
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIOS=${SCENARIOS:-"idle fanout"}
IDLE_N=${IDLE_N:-2000}
HOLD_SECS=${HOLD_SECS:-5}
FANOUT_N=${FANOUT_N:-1000}
STEPS=${STEPS:-50,100,200,400}
STEP_SECS=${STEP_SECS:-5}
SETTLE_SECS=${SETTLE_SECS:-2}
ROOMS_N=${ROOMS_N:-2000}
ROOMS=${ROOMS:-100}
ROOMS_RATE=${ROOMS_RATE:-1000}
CHURN_N=${CHURN_N:-1000}
CHURN_RATE=${CHURN_RATE:-200}
CHURN_SECS=${CHURN_SECS:-20}
RAMP_RATE=${RAMP_RATE:-2000}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/lt-target}
OUT=${OUT:-$(mktemp -d /tmp/lt-compare.XXXXXX)}
mkdir -p "$OUT"

log() { printf '[compare] %s\n' "$*" >&2; }

# --- processes we start, stopped on exit -------------------------------------
SERVER_PID=""   # the process we started (roomcast, or nginx's master)
NGINX_DIR=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  if [[ -n "$NGINX_DIR" ]]; then rm -rf "$NGINX_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools --------------------------------------------------------------------
need_root_for() {
  if [[ $(id -u) -ne 0 ]]; then
    log "$1 is missing and installing it needs root: run as root or install it yourself"
    exit 1
  fi
}

ensure_nchan() {
  if [[ -x /usr/sbin/nginx ]] && dpkg -s libnginx-mod-nchan >/dev/null 2>&1; then
    return
  fi
  need_root_for "nginx + libnginx-mod-nchan"
  log "installing nginx and libnginx-mod-nchan (apt-get)"
  # Keep the package scripts from starting a system nginx on port 80.
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nginx libnginx-mod-nchan >/dev/null
  if [[ -n $created_policy ]]; then rm -f "$policy"; fi
}

nchan_module() {
  dpkg -L libnginx-mod-nchan | grep -m1 'ngx_nchan_module\.so$'
}

# A free port on 127.0.0.1 (nothing answers on it), below the kernel's
# ephemeral range: the previous scenario's thousands of closing client sockets
# occupy ephemeral ports, and a listener there can fail with EADDRINUSE.
free_port() {
  local p low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  log "no free port found"
  exit 1
}

wait_port() {
  local port=$1
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited during start-up"; return 1; }
    sleep 0.1
  done
  log "server did not listen on $port within 10 s"
  return 1
}

# --- servers ------------------------------------------------------------------
# Each sets URL, DIALECT and MEASURED_PID (the process whose RSS/CPU is reported).
start_roomcast() {
  local port
  port=$(free_port)
  ROOMCAST_SIMULATOR=false ROOMCAST_BIND="127.0.0.1:$port" RUST_LOG=warn \
    taskset -c "$SERVER_CPU" "$ROOMCAST" >>"$OUT/roomcast.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$port"
  URL="http://127.0.0.1:$port"
  DIALECT=seed001
  MEASURED_PID=$SERVER_PID
}

start_nchan() {
  local port user_line=""
  port=$(free_port)
  NGINX_DIR=$(mktemp -d /tmp/lt-nchan.XXXXXX)
  mkdir -p "$NGINX_DIR/tmp"
  if [[ $(id -u) -eq 0 ]] && id www-data >/dev/null 2>&1; then
    user_line="user www-data;"
    chmod 755 "$NGINX_DIR" "$NGINX_DIR/tmp"
  fi
  cat >"$NGINX_DIR/nginx.conf" <<EOF
load_module $(nchan_module);
$user_line
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events {
  worker_connections 20000;
  multi_accept on;
}
http {
  access_log off;
  # roomcast has no per-connection request cap; do not make the publisher reconnect every 1,000.
  keepalive_requests 1000000;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  server {
    listen 127.0.0.1:$port backlog=4096;
    # WebSocket subscribers get every message published after they joined.
    location ~ ^/sub/(\w+)$ {
      nchan_subscriber websocket;
      nchan_channel_id \$1;
      nchan_subscriber_first_message newest;
    }
    # Publishers POST the message body; like roomcast, keep the last 100.
    location ~ ^/pub/(\w+)$ {
      nchan_publisher http;
      nchan_channel_id \$1;
      nchan_message_buffer_length 100;
      nchan_message_timeout 10m;
    }
  }
}
EOF
  taskset -c "$SERVER_CPU" /usr/sbin/nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" \
    >>"$OUT/nginx.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$port"
  # The one worker does all the work; the master only supervises.
  MEASURED_PID=""
  for _ in $(seq 1 50); do
    MEASURED_PID=$(pgrep -P "$SERVER_PID" | head -n1 || true)
    [[ -n "$MEASURED_PID" ]] && break
    sleep 0.1
  done
  if [[ -z "$MEASURED_PID" ]]; then
    log "no nginx worker found"
    exit 1
  fi
  URL="http://127.0.0.1:$port"
  DIALECT=nchan
}

stop_nchan() {
  stop_server
  if [[ -n "$NGINX_DIR" ]]; then
    cp "$NGINX_DIR/error.log" "$OUT/nginx-error.log" 2>/dev/null || true
    rm -rf "$NGINX_DIR"
    NGINX_DIR=""
  fi
}

# --- one scenario against one server -----------------------------------------
run_scenario() {
  local server=$1 scenario=$2
  local args=()
  case $scenario in
    idle) args=(idle -n "$IDLE_N" --hold-secs "$HOLD_SECS") ;;
    fanout) args=(fanout -n "$FANOUT_N" --steps "$STEPS" --step-secs "$STEP_SECS" --settle-secs "$SETTLE_SECS") ;;
    rooms) args=(rooms -n "$ROOMS_N" --rooms "$ROOMS" --rate "$ROOMS_RATE" --secs "$STEP_SECS") ;;
    churn) args=(churn -n "$CHURN_N" --churn-rate "$CHURN_RATE" --secs "$CHURN_SECS") ;;
    *) log "unknown scenario $scenario"; exit 1 ;;
  esac
  "start_$server"
  local cmd=(taskset -c "$GEN_CPU" "$LOADTEST" "${args[@]}" --ramp-rate "$RAMP_RATE"
    --url "$URL" --dialect "$DIALECT" --server-pid "$MEASURED_PID" --label "$server" --json)
  log "$server $scenario: ${cmd[*]}"
  echo "${cmd[*]}" >>"$OUT/commands.txt"
  if ! "${cmd[@]}" >"$OUT/$server-$scenario.json" 2>>"$OUT/loadtest-progress.log"; then
    log "$server $scenario failed (see $OUT/loadtest-progress.log)"
  fi
  if [[ $server == nchan ]]; then stop_nchan; else stop_server; fi
  sleep 1
}

# --- main ---------------------------------------------------------------------
command -v taskset >/dev/null || { log "taskset (util-linux) is required"; exit 1; }
command -v python3 >/dev/null || { log "python3 is required for the table"; exit 1; }
ensure_nchan
log "building roomcast and the load generator (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cargo build --release --quiet --bin roomcast
cargo build --release --quiet -p roomcast-loadtest
ROOMCAST=$CARGO_TARGET_DIR/release/roomcast
LOADTEST=$CARGO_TARGET_DIR/release/loadtest

{
  echo "date: $(date -u)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $3 " used, " $4 " free"}')"
  echo "nginx: $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan)"
  echo "roomcast: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted changes in src/)')"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

for scenario in $SCENARIOS; do
  for server in roomcast nchan; do
    run_scenario "$server" "$scenario"
  done
done

python3 - "$OUT" $SCENARIOS <<'PY'
import json, sys, os
out, scenarios = sys.argv[1], sys.argv[2:]

def load(server, scenario):
    path = os.path.join(out, f"{server}-{scenario}.json")
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except OSError:
        return None

rows = []  # (label, roomcast, nchan, better)  better: "low" or "high" or None
def g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d[p] if isinstance(d, dict) and p in d else (d[p] if isinstance(d, list) and isinstance(p, int) and p < len(d) else None)
    return d

for sc in scenarios:
    r, n = load("roomcast", sc), load("nchan", sc)
    rows.append((f"== {sc}", None, None, None))
    def add(label, *path, better=None, scale=1.0):
        a, b = g(r, *path), g(n, *path)
        if isinstance(a, (int, float)) and a is not None: a = a * scale
        if isinstance(b, (int, float)) and b is not None: b = b * scale
        rows.append((label, a, b, better))
    add("connections opened", "connections", "opened", better="high")
    add("connections failed", "connections", "failed", better="low")
    add("connect p50 (ms)", "connections", "connect_ms", "p50", better="low")
    add("connect p99 (ms)", "connections", "connect_ms", "p99", better="low")
    add("ramp (s)", "connections", "ramp_secs", better="low")
    add("server RSS before (MiB)", "server", "rss_kib_before", better="low", scale=1/1024)
    add("server RSS connected (MiB)", "server", "rss_kib_connected", better="low", scale=1/1024)
    add("server RSS per connection (KiB)", "server", "rss_bytes_per_conn", better="low", scale=1/1024)
    add("server CPU during ramp (%)", "server", "cpu_pct_ramp", better="low")
    if sc == "idle":
        add("server RSS after close (MiB)", "idle", "rss_kib_after_close", better="low", scale=1/1024)
    if sc in ("fanout", "rooms"):
        steps_r = g(r, "publish", "steps") or []
        steps_n = g(n, "publish", "steps") or []
        for i in range(max(len(steps_r), len(steps_n))):
            rate = g(r, "publish", "steps", i, "rate") or g(n, "publish", "steps", i, "rate")
            subs = g(r, "publish", "subscribers") or g(n, "publish", "subscribers")
            p = f"{rate:g}/s"
            add(f"[{p}] loss (%)", "publish", "steps", i, "loss_pct", better="low")
            add(f"[{p}] latency p50 (ms)", "publish", "steps", i, "latency_ms", "p50", better="low")
            add(f"[{p}] latency p99 (ms)", "publish", "steps", i, "latency_ms", "p99", better="low")
            add(f"[{p}] latency max (ms)", "publish", "steps", i, "latency_ms", "max", better="low")
            add(f"[{p}] delivered msg/s", "publish", "steps", i, "delivered_per_sec", better="high")
            add(f"[{p}] server CPU (%)", "publish", "steps", i, "server_cpu_pct", better="low")
            add(f"[{p}] generator CPU (%)", "publish", "steps", i, "generator_cpu_pct", better=None)
        add("publish failed", "publish", "failed", better="low")
        add("publish unsent (> --max-lag-secs behind)", "publish", "unsent", better="low")
        add("best loss-free step with p99 < 100 ms (/s)", "publish", "best_step_rate", better="high")
    if sc == "churn":
        add("churn cycles ok", "churn", "ok", better="high")
        add("churn cycles failed", "churn", "failed", better="low")
        add("churn connect p99 (ms)", "churn", "connect_ms", "p99", better="low")
        add("churn server RSS drift (KiB)", "churn", "rss_drift_kib", better="low")
    add("server CPU during run (%)", "server", "cpu_pct_run", better="low")
    add("generator CPU during run (%)", "generator", "cpu_pct_run", better=None)

def fmt(v):
    if v is None: return "-"
    if isinstance(v, float):
        if abs(v) >= 100: return f"{v:,.0f}"
        return f"{v:.3f}".rstrip("0").rstrip(".") if v != 0 else "0"
    return f"{v:,}"

w = max(len(r[0]) for r in rows) + 2
print(f"{'metric':<{w}}{'roomcast':>14}{'nchan':>14}{'nchan/roomcast':>16}")
for label, a, b, better in rows:
    if a is None and b is None and label.startswith("=="):
        print(label)
        continue
    ratio = "-"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a not in (0, None):
        ratio = f"{b / a:.2f}x"
    elif isinstance(b, (int, float)) and b == 0 and a == 0:
        ratio = "="
    print(f"{label:<{w}}{fmt(a):>14}{fmt(b):>14}{ratio:>16}")
print()
print("nchan/roomcast > 1 means nchan's figure is higher: worse for latency, memory, CPU and loss; better for throughput.")
print(f"JSON results, commands and logs: {out}")
PY
