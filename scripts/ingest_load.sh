#!/usr/bin/env bash
# Load figures for the HTTP listener with wrk (Debian package `wrk`):
#  1. single-metric POST /api/v1/ingest, 32 keep-alive connections;
#  2. batched POST /api/v1/ingest (5,000 samples per request);
#  3. POST /hooks/alertmanager.
# Runs the release `vigil serve` on 127.0.0.1 with a temp data dir; the hub
# evaluates every sample. Usage: scripts/ingest_load.sh [SECONDS]
# (VIGIL_BIN=PATH runs that binary instead of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
bin=${VIGIL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=./target/release/vigil
fi
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'operator = "load"\n' > "$tmp/vigil.toml"
"$bin" --config "$tmp/vigil.toml" --data-dir "$tmp/data" serve --listen "127.0.0.1:$port" \
  > "$tmp/vigil.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

# 1,000 series, values below every threshold (pure evaluation, no alerts).
# The requests are made once, up front, as wrk's documentation advises:
# formatting one per request in Lua took CPU from the server on this
# machine's two cores.
cat > "$tmp/single.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local reqs = {}
for i = 0, 999 do
  local body = string.format('{"name":"disk_used_percent","value":%d,"tags":{"host":"h%d","mountpoint":"/"}}', i % 50, i)
  reqs[i + 1] = wrk.format(nil, nil, nil, body)
end
local n = 0
request = function()
  n = n + 1
  return reqs[n % 1000 + 1]
end
LUA
python3 - "$tmp/batch.json" <<'PY'
import json, sys
batch = [{"name": "disk_used_percent", "value": i % 50, "tags": {"host": "h%d" % (i % 1000), "mountpoint": "/"}} for i in range(5000)]
open(sys.argv[1], "w").write(json.dumps(batch))
PY
cat > "$tmp/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/batch.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
cp tests/fixtures/prometheus-stack/alertmanager_webhook_grouped_firing_mixed.json "$tmp/hook.json"
cat > "$tmp/hook.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/hook.json", "r")
wrk.body = f:read("*a")
f:close()
LUA

# Each request waits for the hub's pass (durable acknowledgement): the
# rate grows with the requests in flight, so two concurrencies are shown.
for c in 32 128; do
  echo "== single-metric ingest: $c connections, ${secs}s"
  wrk -t2 -c"$c" -d"${secs}s" --latency -s "$tmp/single.lua" "http://127.0.0.1:$port/api/v1/ingest" | tee "$tmp/single.out"
done
echo "== batched ingest (5,000 samples per request): 4 connections, ${secs}s"
wrk -t2 -c4 -d"${secs}s" --latency -s "$tmp/batch.lua" "http://127.0.0.1:$port/api/v1/ingest" | tee "$tmp/batch.out"
rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/batch.out")
echo "batched samples/s: $(python3 -c "print(int(float('$rps') * 5000))")"
echo "== webhook (3 alerts per body): 32 connections, ${secs}s"
wrk -t2 -c32 -d"${secs}s" --latency -s "$tmp/hook.lua" "http://127.0.0.1:$port/hooks/alertmanager" | tee "$tmp/hook.out"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^vigil_(samples|event_queue|http_requests)'
