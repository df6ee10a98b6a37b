# The team tests attach consoles (tmux), approve over the hub's unix socket
# as throw-away OS users (useradd, setpriv) with curl.
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
