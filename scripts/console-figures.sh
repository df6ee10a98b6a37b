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
seed=target/console-bench-data
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

measure "idle (no sources, 1M records)" --config "$work/quiet.toml"
measure "demo fleet (1M records)" --demo
