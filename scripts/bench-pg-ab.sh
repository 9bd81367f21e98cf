#!/usr/bin/env bash
# Side-by-side benchmark of two builds of the extension: the working tree's
# (build/ext) against the one at git revision $1 (default HEAD~1), in
# alternating rounds on the same machine, each round on a fresh cluster.
# Prints every round, then the medians and the ratio new/base per case.
# The machine's fsync speed drifts over minutes; alternating rounds is what
# makes the two columns comparable.
#   scripts/bench-pg-ab.sh [REV] [ROUNDS] [SECONDS]   (make bench-pg-ab BASE=REV)
# Installs each build's exchange.so, control and SQL files into PostgreSQL's
# folders in turn (root or sudo, as install-extension.sh) and reinstalls the
# working tree's at the end. Port 25349.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rev=${1:-HEAD~1}
rounds=${2:-3}
secs=${3:-8}
port=${PGX_BENCH_PORT:-25349}
work=$root/build/bench-ab
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=bench
. scripts/bench-pg-common.sh
ab_build "$rev" "$work"
base_sha=$(git rev-parse --verify "$rev^{commit}")

cleanup() {
  scripts/pg-cluster.sh stop "$work/pg" || true
  install_build "$work" new
}
trap cleanup EXIT

cases=("INSERT, 1 client|plain_insert.sql|1|1" "place_order, 1 client|place_one.sql|1|1"
       "INSERT, 8 clients|plain_insert.sql|8|1" "place_order, 8 clients, 1 instrument|place_one.sql|8|1"
       "place_order, 8 clients, 8 instruments|place_one_8.sql|8|1" "cancel_order, 1 client|cancel_one.sql|1|1"
       "place_orders x100, 1 client (orders/s)|place_batch.sql|1|100"
       "place_orders x100, 8 clients (orders/s)|place_batch.sql|8|100"
       "cancel_orders x100, 1 client (cancels/s)|cancel_batch.sql|1|100|500"
       "amend_order, 1 client|amend_one.sql|1|1"
       "amend_orders x100, 1 client (amends/s)|amend_batch.sql|1|100|500")
results=$work/results
: >"$results"
echo "base: $rev ($(git log -1 --format='%h %s' "$base_sha" | cut -c1-70)); new: the working tree"
for round in $(seq "$rounds"); do
  # ABBA: odd rounds run base first, even rounds new first, so that neither
  # build always runs on a machine the other has just warmed or tired.
  for b in $( ((round % 2)) && echo base new || echo new base); do
    install_build "$work" $b
    bench_db_start "$work/pg" "$port" >/dev/null
    line="round $round $b"
    for c in "${cases[@]}"; do
      IFS='|' read -r name script clients per tx <<<"$c"
      # A case with a transaction count runs that many (cancel_batch.sql has 1,600 batches to cancel).
      # A case that fails in one build (pgbench prints no tps) counts 0 there.
      if [ -n "$tx" ]; then tps=$(bench_tx "$script" "$clients" "$tx" || true)
      else tps=$(bench_tps "$script" "$clients" "$secs" || true); fi
      v=$(awk -v t="$tps" -v p="$per" 'BEGIN { printf "%.0f", t * p }')
      echo "$b|$name|$v" >>"$results"
      line="$line  $v"
    done
    problems=$(verify_problems)
    echo "$line  (verify: $problems problems)"
  done
done
echo
scripts/ab-summary.py "$results" "case (durable commits; median of rounds)"
