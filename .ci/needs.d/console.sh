# The console's end-to-end tests drive the real binary in tmux and read the
# store with sqlite3.
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
