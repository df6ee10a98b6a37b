# tests/silence_e2e.rs starts the real Alertmanager (Debian package) on
# 127.0.0.1 with a temp config and storage dir.
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
