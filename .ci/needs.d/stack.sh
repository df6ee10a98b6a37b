# The Prometheus stack end-to-end test (tests/stack_e2e.rs) starts the real
# Debian servers; scripts/ingest_load.sh drives the listener with wrk.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
