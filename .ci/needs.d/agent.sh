# tests/agent_e2e.rs makes a self-signed certificate with openssl for the
# agent's TLS and the hub's pin; the built-in runbooks through the agent
# need what .ci/needs.d/exec.sh installs (supervisor, gzip, perl).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
