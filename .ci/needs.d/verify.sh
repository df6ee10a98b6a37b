# tests/verify_prometheus_e2e.rs starts the real Prometheus and
# node_exporter (Debian packages) on 127.0.0.1 with temp configs; the
# runbooks it runs use /bin/sh and /bin/true (coreutils).
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
