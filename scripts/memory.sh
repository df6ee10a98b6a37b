#!/usr/bin/env bash
# Memory figures for the series budget: sends SERIES distinct series (one
# sample each, 5,000 per request) through POST /api/v1/ingest of the release
# `vigil serve` and prints its resident size before, at the peak, once every
# series was evicted (`[settings] series_ttl`), and after a second wave of
# as many new series (freed ids and memory are reused).
#
# The series are spread over ten metrics at the default per-metric limit
# (100,000): the six metrics the default policies read (every series there
# also makes an alert instance) and four that no policy reads. Values stay
# below every threshold, so nothing fires.
#
# Usage: scripts/memory.sh [SERIES] [TTL]   (defaults: 1000000, 5m)
#   VIGIL_BIN=PATH   run that binary instead of building the release one
#   TTL "" (empty)   leaves series_ttl unset (a build without the setting)
#   WAVES=1          skip the second wave
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
ttl=${2-5m}
waves=${WAVES:-2}
bin=${VIGIL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin vigil
  bin=./target/release/vigil
fi
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'operator = "memory"\n' > "$tmp/vigil.toml"
if [ -n "$ttl" ]; then
  printf '[settings]\nseries_ttl = "%s"\n' "$ttl" >> "$tmp/vigil.toml"
fi
"$bin" --config "$tmp/vigil.toml" --data-dir "$tmp/data" serve --listen "127.0.0.1:$port" \
  > "$tmp/vigil.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

python3 - "$port" "$pid" "$n" "$waves" "$ttl" <<'PY'
import http.client, json, re, sys, threading, time

port, pid, n, waves, ttl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
METRICS = [
    ("disk_used_percent", "mountpoint", 50), ("service_up", "service", 1),
    ("memory_used_percent", "service", 50), ("log_file_bytes", "path", 1000),
    ("zombie_processes", "unit", 0), ("connection_pool_used_ratio", "pool", 0.5),
    ("load_test_requests", "route", 7), ("load_test_latency", "route", 0.01),
    ("load_test_bytes", "iface", 1500), ("load_test_errors", "code", 0),
]
BATCH = 5000

def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0

def metric(name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None

def body(wave, start, count):
    out = []
    for i in range(start, start + count):
        name, label, value = METRICS[i % len(METRICS)]
        out.append({"name": name, "value": value,
                    "tags": {"host": "w%d-host-%07d" % (wave, i // len(METRICS)), label: "x"}})
    return json.dumps(out).encode()

def send(wave):
    """Sends n series in batches from two connections; returns (seconds, refused)."""
    refused = [0]
    starts = list(range(0, n, BATCH))
    lock = threading.Lock()
    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not starts:
                    return
                s = starts.pop(0)
            c.request("POST", "/api/v1/ingest", body(wave, s, min(BATCH, n - s)),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status == 422:
                with lock:
                    refused[0] += json.loads(data)["refused"]
            elif r.status != 201:
                raise SystemExit("ingest answered %d: %s" % (r.status, data[:300]))
    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return time.time() - t0, refused[0]

def show(what):
    print("%-34s RSS %7.1f MB   peak %7.1f MB   series %s" % (
        what, status("VmRSS:"), status("VmHWM:"), metric("vigil_series")), flush=True)

show("started")
for wave in range(1, waves + 1):
    secs, refused = send(wave)
    print("wave %d: %d series in %.1fs (%.0f samples/s), %d refused" % (
        wave, n, secs, n / secs, refused), flush=True)
    show("after wave %d" % wave)
    if not ttl or metric("vigil_series") is None:
        print("no series_ttl: nothing is evicted; holding for 60s")
        time.sleep(60)
        show("60s later")
        break
    t0 = time.time()
    while (metric("vigil_series") or 0) > 0 and time.time() - t0 < 900:
        time.sleep(2)
    # The analysis history's sweep and the hand-back of freed memory
    # follow: wait until the resident size stops falling (at most 60s).
    last, t1 = status("VmRSS:"), time.time()
    while time.time() - t1 < 60:
        time.sleep(3)
        now = status("VmRSS:")
        if now > last - 1:
            break
        last = now
    show("evicted (%.0fs after the wave)" % (time.time() - t0))
PY
echo "evicted total: $(curl -s "http://127.0.0.1:$port/metrics" | awk '/^vigil_series_evicted_total/ {print $2}')"
