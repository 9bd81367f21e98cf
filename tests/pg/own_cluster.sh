# Sourced by the tests that need a PostgreSQL cluster of their own rather than
# scripts/test-pg.sh's (a worker's setting fixed at start, a crash of the postmaster).
#
#   own_cluster DIR PORT [SETTING=VALUE ...]
#     exports PGHOST, PGPORT and PGUSER for it, removes what DIR held, starts the
#     cluster there with the settings, and stops and removes it when the test exits;
#   q SQL
#     runs one statement in its database postgres (unaligned, quiet, stops on error).

own_cluster_stop() {
  scripts/pg-cluster.sh stop "$own_cluster_dir"
  rm -rf "$own_cluster_dir"
}

own_cluster() {
  own_cluster_dir=$1
  local port=$2
  shift 2
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
  trap own_cluster_stop EXIT
  own_cluster_stop
  scripts/pg-cluster.sh start "$own_cluster_dir" "$port" "$@"
}

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
