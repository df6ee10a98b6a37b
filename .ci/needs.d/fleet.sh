# tests/fleet_e2e.rs: Prometheus, Alertmanager and node_exporter (textfile
# collector) started by the test, an sshd for `vigil doctor` (see exec.sh),
# tmux for the Hosts pane, curl to read the hub's API.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
