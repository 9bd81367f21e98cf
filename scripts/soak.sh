#!/usr/bin/env bash
# Soak: POST /orders at a fixed rate (default 2,000/s, open loop) for
# SOAK_MINUTES (default 10) against durable PostgreSQL, Redis and
# pgx-frontend, with WebSocket subscribers (tests/perf/ws_soak.py) checking
# gap-free deltas. Prints one line per minute: latency percentiles of that
# minute, errors, memory in MB (RSS of the frontend and of Redis; PSS summed
# over all PostgreSQL processes, so shared memory counts once) and the
# database size, and the frontend's CPU that minute (% of one core); then the
# subscribers' summary and verify.
# SOAK_FRONTEND=<binary> runs another pgx-frontend build (side by side
# comparisons); SOAK_WS_BATCH=1 makes the subscribers ask for batches
# ("batch": true). Ports 25409, 63796, 18500-18501. make soak.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
minutes=${SOAK_MINUTES:-10}
rate=${SOAK_RATE:-2000}
subscribers=${SOAK_SUBSCRIBERS:-20}
frontend=${SOAK_FRONTEND:-build/frontend/pgx-frontend}
dir=$root/build/soak
pg_port=25409
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGDATABASE=postgres

cleanup() {
  [ -n "${ws_pid:-}" ] && kill "$ws_pid" 2>/dev/null || true
  scripts/frontend-ctl.sh stop "$dir/run" >/dev/null 2>&1 || true
  scripts/pg-cluster.sh stop "$dir/pg"
}
trap cleanup EXIT
scripts/frontend-ctl.sh stop "$dir/run" >/dev/null 2>&1 || true
scripts/pg-cluster.sh stop "$dir/pg"
rm -rf "$dir"
mkdir -p "$dir/run"
scripts/pg-cluster.sh start "$dir/pg" "$pg_port" shared_buffers=512MB max_wal_size=4GB
psql -X -q -c "CREATE EXTENSION exchange" -c "SELECT exchange.create_instrument('BTC-USD', 0.01, 0.0001)" >/dev/null
PGX_RATE_LIMIT=0 PGX_NO_AUTH=1 scripts/frontend-ctl.sh start "$dir/run" "$frontend" \
  "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" 63796 18500 18501
/usr/bin/python3 tests/perf/ws_soak.py --ws-port 18501 --subscribers "$subscribers" \
  ${SOAK_WS_BATCH:+--batch} >"$dir/ws.out" 2>&1 &
ws_pid=$!
sleep 2

# Processes come and go (autovacuum workers): a vanished one counts as 0.
rss_kb() { { ps -o rss= "$@" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
# Proportional set size: shared memory (buffers, order books) counted once across the processes.
pss_kb() {
  local p
  for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
}
fe_pid=$(cat "$dir/run/frontend.pid")
pg_pids() {
  local pm
  pm=$(head -1 "$dir/pg/data/postmaster.pid")
  echo "$pm" $(pgrep -P "$pm" || true)
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# CPU time (user + system, clock ticks) of a process so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)
printf 'soak: %d orders/s for %d min, %d WebSocket subscribers\n' "$rate" "$minutes" "$subscribers"
printf '%-4s %-118s %9s %9s %7s %8s %7s\n' min "loadgen (latency from due time, this minute)" "fe RSS" "pg PSS" "redis" "db MB" "fe CPU"
for m in $(seq "$minutes"); do
  before=$(cpu_ticks "$fe_pid")
  line=$(build/loadgen --port 18500 --rate "$rate" --seconds 60 --warmup 0 --connections 32 --max-connections 512)
  fe_cpu=$(awk -v a="$before" -v b="$(cpu_ticks "$fe_pid")" -v t="$ticks_per_s" 'BEGIN { printf "%.0f%%", 100 * (b - a) / t / 60 }')
  fe=$(rss_kb "$fe_pid")
  pg=$(pss_kb $(pg_pids))
  redis=$(rss_kb "$(cat "$dir/run/redis/redis.pid")")
  db=$(psql -X -At -c "SELECT pg_database_size('postgres') / 1048576")
  printf '%-4s %-118s %9s %9s %7s %8s %7s\n' "$m" "$line" "$(mb "$fe")" "$(mb "$pg")" "$(mb "$redis")" "$db" "$fe_cpu"
done
kill "$ws_pid"
wait "$ws_pid" || { cat "$dir/ws.out"; echo "FAIL: WebSocket subscribers saw gaps or disconnects"; exit 1; }
ws_pid=
cat "$dir/ws.out"
problems=$(psql -X -At -c "SELECT count(*) FROM exchange.verify('BTC-USD')")
echo "verify after the soak: $problems problems; orders: $(psql -X -At -c 'SELECT count(*) FROM exchange.orders')"
[ "$problems" -eq 0 ]
