#!/usr/bin/env bash
# Chaos with real processes: N trials of SIGKILL at a random moment while a
# driver sends webhooks, ingest and approvals, then restart on the same data
# dir and check the trail (tests/chaos.rs says what is checked).
# Usage: scripts/chaos.sh [N] (default 100); VIGIL_CHAOS_SEED=S repeats a run.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIGIL_E2E=1 VIGIL_CHAOS_TRIALS=${1:-100}
exec cargo test --test chaos -- --nocapture
