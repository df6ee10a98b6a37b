# The PostgreSQL store tests (tests/store_pg.rs) start a cluster of their own
# (initdb as the postgres user, a 127.0.0.1 high port) and tamper with it
# through psql.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
