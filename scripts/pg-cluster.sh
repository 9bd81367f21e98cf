#!/usr/bin/env bash
# A local PostgreSQL 15 cluster with the exchange extension preloaded,
# listening on 127.0.0.1 only. As root, the server runs as the postgres user.
#   pg-cluster.sh start DIR PORT [setting=value ...]   (initdb on first start)
#   pg-cluster.sh stop DIR
#   pg-cluster.sh crash DIR                             (kill -9 the postmaster)
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=${1:?usage: pg-cluster.sh start|stop|crash DIR [PORT] [setting=value ...]}
dir=$(realpath -m "${2:?DIR missing}")

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# kill -9 of the postmaster; backends notice its death and exit: waits for all
# of them, as a supervisor would before starting the server again.
kill_postmaster() {
  local pid children alive p
  pid=$(head -1 "$dir/data/postmaster.pid")
  children=$(pgrep -P "$pid" || true)
  kill -9 "$pid"
  for _ in $(seq 300); do
    alive=0
    for p in $pid $children; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
}

case "$cmd" in
start)
  port=${3:?PORT missing}
  shift 3
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "error: the postgres user cannot reach $dir (a parent folder is not searchable)" >&2
      exit 1
    fi
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log"
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "shared_preload_libraries = 'exchange'"
      echo "max_connections = 120"
      for setting in "$@"; do echo "$setting"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
  fi
  if as_pg "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # Already running (make run twice): on the port asked for, or an error.
    running=$(sed -n 4p "$dir/data/postmaster.pid")
    if [ "$running" != "$port" ]; then
      echo "error: the cluster in $dir runs on port $running, not $port: stop it first (make stop)" >&2
      exit 1
    fi
    exit 0
  fi
  # The port asked for wins over the one initdb wrote (a cluster made when
  # make run's default was another port).
  as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 120 start >/dev/null
  ;;
stop)
  # A server that does not finish a fast shutdown (seen once, half-way through
  # the reset after a backend crashed) gets an immediate one, then kill -9:
  # the next start must not find the port taken.
  if [ -f "$dir/data/postmaster.pid" ] &&
    ! as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 120 stop >/dev/null; then
    echo "pg-cluster.sh: $dir did not stop; immediate shutdown" >&2
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null ||
      { [ -f "$dir/data/postmaster.pid" ] && kill_postmaster; } || true
  fi
  ;;
crash)
  kill_postmaster
  ;;
*)
  echo "usage: pg-cluster.sh start|stop|crash DIR [PORT] [setting=value ...]" >&2
  exit 2
  ;;
esac
