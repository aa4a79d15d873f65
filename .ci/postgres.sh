# Sourced by .ci/run: a private PostgreSQL on 127.0.0.1 for the tracking-server tests.
# Exports BPEXP_TEST_POSTGRES_URI; stop_postgres (run on exit) stops it by process id.
pg_port="${BPEXP_PG_PORT:-55432}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "ci: installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
pg_root="$(mktemp -d)"
as_pg=()
if [ "$(id -u)" = 0 ]; then  # postgres refuses to run as root
    chown postgres: "$pg_root"
    as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_root/data" -U bpexp --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_root/data" -l "$pg_root/log" -w \
    -o "-h 127.0.0.1 -p $pg_port -k $pg_root" start >/dev/null
pg_pid="$(head -n 1 "$pg_root/data/postmaster.pid")"
stop_postgres() {
    kill -INT "$pg_pid" 2>/dev/null || true  # a fast shutdown, by process id
    for _ in $(seq 50); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.2; done
}
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bpexp bpexp
export BPEXP_TEST_POSTGRES_URI="postgresql://bpexp@127.0.0.1:$pg_port/bpexp"
echo "ci: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (pid $pg_pid)"
