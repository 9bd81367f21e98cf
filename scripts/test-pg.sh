#!/usr/bin/env bash
# Runs the PostgreSQL suites against a fresh local cluster with the extension
# preloaded (127.0.0.1, port $PGX_TEST_PORT, default 25329): pg_regress
# (regress/sql), isolation specs (regress/specs), the SQL fuzz pass
# (tests/pg/sql_fuzz.py), concurrent sessions trading
# (tests/pg/concurrency_test.py), settlement while trading goes on
# (tests/pg/settlement_race_test.py), pruning while trading goes on
# (tests/pg/prune_race_test.py), the NOTIFY publisher's test
# (tests/pg/publisher_test.py), the upgrade from the base version
# (tests/pg/upgrade_test.sh), the WAL preallocator's (tests/pg/wal_prealloc_test.sh,
# on a cluster of its own), the writeback worker's (tests/pg/writeback_test.sh,
# on a cluster of its own, first), a streaming standby of the cluster
# (tests/pg/standby_test.sh), then the restart and crash tests. The cluster is
# stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${PGX_TEST_PORT:-25329}
dir=$root/build/pgtest
PGXS_TEST=/usr/lib/postgresql/15/lib/pgxs/src/test
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres

cleanup() { scripts/pg-cluster.sh stop "$dir"; }
trap cleanup EXIT
scripts/pg-cluster.sh stop "$dir"
rm -rf "$dir"
status=0
# First, before this suite's cluster starts: a writeback worker's syncfs
# covers the whole file system, so another cluster's would write the test's
# pages too and leave nothing to compare.
tests/pg/writeback_test.sh || status=1
# A database keeps its books' slots while it exists; the regress and fuzz
# databases stay until the end, the isolation and concurrency ones are
# dropped when their suites passed: 64 slots cover every instrument the
# suites below use at once (~8.6 MB of shared memory each at these sizes).
scripts/pg-cluster.sh start "$dir" "$port" \
  exchange.max_instruments=64 exchange.max_orders_per_instrument=100000 exchange.max_levels_per_instrument=10000 \
  deadlock_timeout=100ms

out=$dir/out
mkdir -p "$out"
tests=$(sed -n 's/^test: *//p' regress/schedule | tr '\n' ' ')
"$PGXS_TEST/regress/pg_regress" --inputdir=regress --outputdir="$out/regress" \
  --dbname=exchange_regress $tests || status=1
specs=$(cd regress/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | tr '\n' ' ')
if [ -n "$specs" ]; then
  "$PGXS_TEST/isolation/pg_isolation_regress" --inputdir=regress --outputdir="$out/isolation" \
    --dbname=exchange_isolation $specs || status=1
fi
for f in "$out"/regress/regression.diffs "$out"/isolation/regression.diffs; do
  [ -s "$f" ] && { echo "---- $f"; head -200 "$f"; }
done
# Each isolation permutation drops and creates the extension, and the slots
# of its instruments stay with the database until it is dropped (or reused
# by it): drop it when the specs passed, so that the suites below find slots.
if [ $status -eq 0 ]; then
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS exchange_isolation" || status=1
fi
if [ $status -eq 0 ]; then
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS exchange_fuzz" -c "CREATE DATABASE exchange_fuzz"
  /usr/bin/python3 tests/pg/sql_fuzz.py "host=$PGHOST port=$port user=$PGUSER dbname=exchange_fuzz" 10000 || status=1
fi
if [ $status -eq 0 ]; then
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS exchange_concurrency" -c "CREATE DATABASE exchange_concurrency"
  /usr/bin/python3 tests/pg/concurrency_test.py "host=$PGHOST port=$port user=$PGUSER dbname=exchange_concurrency" \
    1000 || status=1
  # Its books' slots go with the database (the suites below need them).
  psql -X -q -d postgres -c "DROP DATABASE exchange_concurrency" || status=1
fi
if [ $status -eq 0 ]; then
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS exchange_settlement" -c "CREATE DATABASE exchange_settlement"
  /usr/bin/python3 tests/pg/settlement_race_test.py "host=$PGHOST port=$port user=$PGUSER dbname=exchange_settlement" \
    150 || status=1
  psql -X -q -d postgres -c "DROP DATABASE exchange_settlement" || status=1
fi
if [ $status -eq 0 ]; then
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS exchange_prune" -c "CREATE DATABASE exchange_prune"
  /usr/bin/python3 tests/pg/prune_race_test.py "host=$PGHOST port=$port user=$PGUSER dbname=exchange_prune" \
    150 || status=1
  psql -X -q -d postgres -c "DROP DATABASE exchange_prune" || status=1
fi
if [ $status -eq 0 ]; then
  /usr/bin/python3 tests/pg/publisher_test.py "host=$PGHOST port=$port user=$PGUSER dbname=postgres" || status=1
fi
if [ $status -eq 0 ]; then
  tests/pg/upgrade_test.sh || status=1
fi
if [ $status -eq 0 ]; then
  tests/pg/wal_prealloc_test.sh || status=1
fi
if [ $status -eq 0 ]; then
  PGX_CLUSTER_DIR=$dir tests/pg/standby_test.sh || status=1
fi
if [ $status -eq 0 ]; then
  PGX_CLUSTER_DIR=$dir tests/pg/restart_crash_test.sh || status=1
fi
exit $status
