# The executor tests run the runbooks for real: an sshd started by the test,
# supervisor, PostgreSQL (as the postgres user) and Redis, each on
# 127.0.0.1 high ports in temp dirs; ps/pgrep from procps. disk_cleanup and
# log_rotation run Perl helpers (perl-base) and gzip; tests/path_safety.rs
# races them as `nobody` with setpriv and unshare (util-linux).
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v supervisord >/dev/null 2>&1 || need+=(supervisor)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v perl >/dev/null 2>&1 || need+=(perl-base)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
{ command -v setpriv && command -v unshare; } >/dev/null 2>&1 || need+=(util-linux)
