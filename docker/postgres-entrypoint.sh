#!/usr/bin/env bash
# Entrypoint of the pgexchange/postgres image: PostgreSQL 15 with the exchange
# extension preloaded, in the foreground.
#
# First start (no $PGDATA/PG_VERSION): initdb and the settings below. Until
# the first-start SQL has succeeded once ($PGDATA/pgx-first-start.done), it
# runs on a temporary server that listens on a private socket only (so health
# checks do not pass early): the database, CREATE EXTENSION exchange, the
# frontend's login role, optionally a demo instrument. It is idempotent, so a
# first start that failed halfway is simply repeated. Then, on every start,
# this script becomes postgres (exec: the server is PID 1 in a container and
# receives the stop signal itself; SIGINT = fast shutdown, see STOPSIGNAL).
#
# Environment (defaults are the image's):
#   PGDATA                 /var/lib/postgresql/data (owned by postgres, mode 0700)
#   PGPORT                 5432
#   PGX_LISTEN_ADDRESSES   *                    (listen_addresses; the container's own interfaces)
#   PGX_SOCKET_DIR         /var/run/postgresql  (Unix socket; peer authentication)
#   PGX_DATABASE           exchange             (the database with the extension)
#   PGX_FRONTEND_PASSWORD  password of the LOGIN role pgx_frontend (member of exchange_trader);
#                          required on first start. Or PGX_FRONTEND_PASSWORD_FILE (a Docker secret).
#   POSTGRES_PASSWORD      password of the superuser postgres for TCP logins; unset = postgres logs
#                          in over the Unix socket only. Or POSTGRES_PASSWORD_FILE.
#   PGX_DEMO_INSTRUMENT    1 = create the instrument BTC-USD on first start (default 0)
# TCP clients authenticate with scram-sha-256; the socket uses peer
# authentication (`docker compose exec -u postgres postgres psql`).
# Arguments are passed to postgres, e.g. `-c exchange.max_instruments=4`.
# Run as root, it prepares $PGDATA and the socket folder, then runs itself as
# postgres; the same script therefore works outside a container
# (scripts/docker-check.sh runs it on 127.0.0.1).
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGPORT=${PGPORT:-5432}
PGX_LISTEN_ADDRESSES=${PGX_LISTEN_ADDRESSES:-*}
PGX_SOCKET_DIR=${PGX_SOCKET_DIR:-/var/run/postgresql}
PGX_DATABASE=${PGX_DATABASE:-exchange}
PGX_DEMO_INSTRUMENT=${PGX_DEMO_INSTRUMENT:-0}
DONE_MARKER=$PGDATA/pgx-first-start.done

log() { echo "pgx-postgres-entrypoint: $*" >&2; }

case $PGX_DEMO_INSTRUMENT in
  0 | 1) ;;
  *) log "error: PGX_DEMO_INSTRUMENT must be 0 or 1, not '$PGX_DEMO_INSTRUMENT'"; exit 1 ;;
esac

if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$PGDATA" "$PGX_SOCKET_DIR"
  chown postgres:postgres "$PGDATA" "$PGX_SOCKET_DIR"
  chmod 0700 "$PGDATA"
  # setpriv execs (no fork), so the server keeps this process's PID.
  HOME=$(getent passwd postgres | cut -d: -f6)
  export HOME
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$(readlink -f "$0")" "$@"
fi

# The value of NAME, or the contents of the file NAME_FILE names.
secret() {
  local file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    cat "${!file_var}"
  else
    printf '%s' "${!1:-}"
  fi
}

# initdb and the settings that must hold for every start.
initialize_cluster() {
  log "initdb in $PGDATA"
  "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale --auth-local=peer --auth-host=reject >/dev/null
  cat >>"$PGDATA/postgresql.conf" <<EOF

# pgexchange (postgres-entrypoint.sh). listen_addresses, port and the socket
# folder are given on the command line at every start.
shared_preload_libraries = 'exchange'
password_encryption = 'scram-sha-256'
max_connections = 120
EOF
  cat >"$PGDATA/pg_hba.conf" <<EOF
# pgexchange (postgres-entrypoint.sh): peer on the Unix socket, passwords
# (scram-sha-256) over TCP. Who can reach the port at all is the network's
# business: compose publishes it on the host's 127.0.0.1 only.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all       all            peer
host    all       all   all      scram-sha-256
EOF
}

# The database, the extension, the frontend's role and the demo instrument,
# on a temporary server reachable only through a private socket.
run_first_start_sql() {
  local frontend_password postgres_password sock
  frontend_password=$(secret PGX_FRONTEND_PASSWORD)
  postgres_password=$(secret POSTGRES_PASSWORD)
  sock=$(mktemp -d)
  log "first start: temporary server on $sock"
  "$BIN/pg_ctl" -D "$PGDATA" -w -t 120 -o "-c listen_addresses='' -k $sock" start >&2
  trap '"$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; rm -rf "$sock"' EXIT
  # Passwords reach psql through its environment (\getenv), never its command line.
  PGX_FRONTEND_PASSWORD=$frontend_password POSTGRES_PASSWORD=$postgres_password \
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -U postgres -d postgres \
    -v dbname="$PGX_DATABASE" -v demo="$PGX_DEMO_INSTRUMENT" <<'SQL'
-- A failing statement must not copy a password into the server log.
SET log_min_error_statement = panic;
\getenv frontend_password PGX_FRONTEND_PASSWORD
\getenv postgres_password POSTGRES_PASSWORD
SELECT :'postgres_password' <> '' AS set_postgres_password \gset
\if :set_postgres_password
ALTER ROLE postgres PASSWORD :'postgres_password';
\endif
SELECT format('CREATE DATABASE %I', :'dbname')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \gexec
\connect :"dbname"
SET log_min_error_statement = panic;
CREATE EXTENSION IF NOT EXISTS exchange;
ALTER EXTENSION exchange UPDATE;
-- The frontend logs in as pgx_frontend: only what exchange_trader may do.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgx_frontend') AS create_frontend_role \gset
\if :create_frontend_role
CREATE ROLE pgx_frontend LOGIN PASSWORD :'frontend_password' IN ROLE exchange_trader;
\else
ALTER ROLE pgx_frontend LOGIN NOSUPERUSER PASSWORD :'frontend_password';
GRANT exchange_trader TO pgx_frontend;
\endif
\if :demo
INSERT INTO exchange.instruments (symbol, tick_size, lot_size, min_quantity)
VALUES ('BTC-USD', 0.01, 0.0001, 0.0001) ON CONFLICT DO NOTHING;
\endif
SQL
  "$BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 120 stop >/dev/null
  trap - EXIT
  rm -rf "$sock"
  touch "$DONE_MARKER"
  log "first start done: database $PGX_DATABASE, extension exchange, role pgx_frontend"
}

if [ ! -f "$DONE_MARKER" ] && [ -z "$(secret PGX_FRONTEND_PASSWORD)" ]; then
  log "error: set PGX_FRONTEND_PASSWORD or PGX_FRONTEND_PASSWORD_FILE for the first start"
  exit 1
fi
[ -s "$PGDATA/PG_VERSION" ] || initialize_cluster
[ -f "$DONE_MARKER" ] || run_first_start_sql
exec "$BIN/postgres" -D "$PGDATA" -p "$PGPORT" -k "$PGX_SOCKET_DIR" \
  -c listen_addresses="$PGX_LISTEN_ADDRESSES" "$@"
