#!/usr/bin/env bash
# Side-by-side benchmark of two builds of the extension by the server's work
# per order rather than by commits per second: the working tree's against
# the one at git revision $1 (default HEAD~1), in alternating rounds, each
# round on a fresh cluster (bench-pg-common.sh's bench database). One psql
# session sends, one statement and one durable commit each:
#   - place_orders x100: 50 batches to warm up, then 300 batches of 100
#     random limit orders from 1,000 clients (bench_batches: the JSON text the
#     frontend would send, built before the clock starts), on B1;
#   - place_order: 200 orders to warm up, then 2,000 one at a time from the
#     same 1,000 clients, on B2;
#   - cancel_orders x100: 20 batches to warm up, then 300 batches of 100 of
#     C1's resting orders (bench_cancel_ids 60,001-92,000), each batch's id
#     array read from bench_cancel_ids in the same statement;
#   - amend_orders x100: the same with 100 of C1's orders (140,001-172,000)
#     each from one lot to two (re-queued), the JSON built in the statement.
# For each it prints the backend's CPU time (utime + stime from
# /proc/<pid>/stat, 10 ms ticks) and the session's elapsed time per order.
# CPU time does not include the wait for the WAL flush, so it moves much less
# with this VM's fsync speed than commits per second do.
#   scripts/bench-pg-cpu-ab.sh [REV] [ROUNDS]   (make bench-pg-cpu-ab BASE=REV)
# Installs each build into PostgreSQL's folders in turn (root or sudo) and
# reinstalls the working tree's at the end. Port 25351.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
rounds=${2:-5}
port=${PGX_BENCH_PORT:-25351}
work=$(pwd)/build/bench-cpu-ab
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=bench
. scripts/bench-pg-common.sh
ab_build "$rev" "$work"
cleanup() {
  scripts/pg-cluster.sh stop "$work/pg" || true
  install_build "$work" new
}
trap cleanup EXIT
tick_us=$((1000000 / $(getconf CLK_TCK)))

# The psql input of one measurement: WARM statements, then the backend's CPU
# ticks to $work/cpu0, the clock, MEASURED statements, the ticks to
# $work/cpu1 and the elapsed microseconds to $work/wall. STATEMENT is the
# function that prints statement number i.
session() {
  local warm=$1 measured=$2 statement=$3 i
  echo "SELECT pg_backend_pid() AS pid \\gset"
  echo "\\setenv PGX_PID :pid"
  for ((i = 1; i <= warm; i++)); do echo "$($statement "$i") \\g /dev/null"; done
  echo "\\! awk '{ print \$14 + \$15 }' /proc/\$PGX_PID/stat > $work/cpu0"
  echo "SELECT clock_timestamp() AS t0 \\gset"
  for ((i = warm + 1; i <= warm + measured; i++)); do echo "$($statement "$i") \\g /dev/null"; done
  echo "\\! awk '{ print \$14 + \$15 }' /proc/\$PGX_PID/stat > $work/cpu1"
  echo "SELECT (extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1e6)::bigint AS us \\gset"
  echo "\\setenv PGX_US :us"
  echo "\\! echo \$PGX_US > $work/wall"
}

# Runs one session (ORDERS WARM MEASURED STATEMENT); prints CPU and elapsed
# microseconds per order.
measure() {
  local orders=$1
  session "$2" "$3" "$4" | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
  awk -v c0="$(cat "$work/cpu0")" -v c1="$(cat "$work/cpu1")" -v w="$(cat "$work/wall")" -v t="$tick_us" \
    -v n="$orders" 'BEGIN { printf "%.1f %.1f\n", (c1 - c0) * t / n, w / n }'
}

batch() { echo "SELECT count(*) FROM exchange.place_orders((SELECT body FROM bench_batches WHERE id = $1)::jsonb)"; }
# Client, side, price and quantity from the statement's number, spread like bench_batches'.
single() {
  echo "SELECT status FROM exchange.place_order('c$(($1 * 7919 % 1000))', 'B2', '$([ $(($1 % 2)) = 0 ] && echo buy || echo sell)'," \
    "'limit', $((1 + $1 % 5)), $((95 + $1 * 31 % 11)))"
}

# Batch i of 100 ids of bench_cancel_ids from FIRST on: FIRST I.
ids() { echo "FROM bench_cancel_ids WHERE n BETWEEN $(($1 + ($2 - 1) * 100)) AND $(($1 - 1 + $2 * 100))"; }
cancels() { echo "SELECT count(*) FROM exchange.cancel_orders(ARRAY(SELECT order_id $(ids 60001 "$1") ORDER BY n))"; }
amends() {
  echo "SELECT count(*) FROM exchange.amend_orders((SELECT jsonb_agg(jsonb_build_object('order_id', order_id," \
    "'quantity', 2) ORDER BY n) $(ids 140001 "$1")))"
}

results=$work/results
: >"$results"
echo "base: $rev ($(git log -1 --format='%h %s' "$rev" | cut -c1-70)); new: the working tree"
for round in $(seq "$rounds"); do
  # ABBA: odd rounds run base first, even rounds new first, so that neither
  # build always runs on a machine the other has just warmed or tired.
  for b in $( ((round % 2)) && echo base new || echo new base); do
    install_build "$work" "$b"
    bench_db_start "$work/pg" "$port" >/dev/null
    read -r bcpu bwall < <(measure 30000 50 300 batch)
    read -r scpu swall < <(measure 2000 200 2000 single)
    read -r ccpu cwall < <(measure 30000 20 300 cancels)
    read -r acpu awall < <(measure 30000 20 300 amends)
    {
      echo "$b|place_orders x100: CPU µs per order|$bcpu"
      echo "$b|place_orders x100: elapsed µs per order|$bwall"
      echo "$b|place_order: CPU µs per order|$scpu"
      echo "$b|place_order: elapsed µs per order|$swall"
      echo "$b|cancel_orders x100: CPU µs per cancel|$ccpu"
      echo "$b|cancel_orders x100: elapsed µs per cancel|$cwall"
      echo "$b|amend_orders x100: CPU µs per amend|$acpu"
      echo "$b|amend_orders x100: elapsed µs per amend|$awall"
    } >>"$results"
    problems=$(verify_problems)
    echo "round $round $b  x100 CPU $bcpu elapsed $bwall  single CPU $scpu elapsed $swall " \
      " cancels CPU $ccpu elapsed $cwall  amends CPU $acpu elapsed $awall  (verify: $problems problems)"
  done
done
echo
scripts/ab-summary.py "$results" "case (durable commits; median of rounds)"
