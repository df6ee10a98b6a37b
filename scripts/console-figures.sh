#!/usr/bin/env bash
# Figures for the console as a user runs it: the first frame's latency, the
# resident memory and the idle CPU of the real binary in a real terminal
# (tmux, 200x50), on the store of `cargo bench --bench console` (1,000,000
# audit records). Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "tmux is needed" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/vigil
seed=target/console-bench-store
if [ ! -f "$seed/vigil.db" ]; then
  cargo bench --bench console
fi
work=$(mktemp -d)
trap 'tmux -L vigil-fig kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$seed" "$work/data"
printf 'operator = "bench"\ndemo = false\n' > "$work/quiet.toml"

measure() { # name, args...
  local name=$1; shift
  rm -f "$work/data/logs/vigil.log"
  tmux -L vigil-fig new-session -d -s fig -x 200 -y 50 "$bin $* --data-dir $work/data; sleep 60"
  local pid=""
  for _ in $(seq 100); do
    pid=$(pgrep -f "^$bin .*--data-dir $work/data" | head -1 || true)
    [ -n "$pid" ] && grep -q "first frame" "$work/data/logs/vigil.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 5
  if [ -n "${FEED_PORT:-}" ]; then feed "$FEED_PORT"; sleep 5; fi
  local first rss t0 t1 hz
  first=$(grep -o 'first frame [0-9.]* ms' "$work/data/logs/vigil.log" | head -1)
  rss=$(awk '/VmRSS/{print $2/1024 " MiB"}' "/proc/$pid/status")
  hz=$(getconf CLK_TCK)
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep 20
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "$name: $first; RSS $rss; CPU over 20 s: $(awk -v a="$t0" -v b="$t1" -v h="$hz" 'BEGIN{printf "%.2f%% of a core", (b-a)/h/20*100}')"
  tmux -L vigil-fig send-keys -t fig q
  sleep 1
  tmux -L vigil-fig kill-server 2>/dev/null || true
}

# 10,000 firing alerts delivered as Alertmanager would (100 webhooks of 100).
feed() { # port
  python3 - "$1" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
for b in range(100):
    alerts = []
    for i in range(100):
        n = b * 100 + i
        labels = {"alertname": "NodeFilesystemAlmostFull", "host": "node-%05d" % n,
                  "instance": "10.0.%d.%d:9100" % (n // 250, n % 250), "job": "node",
                  "mountpoint": "/var", "severity": ["warning", "critical", "high"][n % 3]}
        alerts.append({"status": "firing", "labels": labels,
                       "annotations": {"summary": "/var on node-%05d is 9%d%% full" % (n, n % 10)},
                       "startsAt": "2026-11-23T02:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                       "generatorURL": "http://prometheus.example/graph", "fingerprint": "%016x" % (n + 1)})
    body = {"receiver": "vigil", "status": "firing", "alerts": alerts, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
            "version": "4", "groupKey": "{}:{batch=\"%d\"}" % b, "truncatedAlerts": 0}
    req = urllib.request.Request("http://127.0.0.1:%s/hooks/alertmanager" % port,
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
PY
}

measure "idle (no sources, 1M records)" --config "$work/quiet.toml"
measure "demo fleet (1M records)" --demo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'operator = "bench"\ndemo = false\nlisten = "127.0.0.1:%s"\n' "$port" > "$work/fed.toml"
FEED_PORT=$port measure "10,000 alerts by webhook (1M records; RSS and CPU after they landed)" --config "$work/fed.toml"
