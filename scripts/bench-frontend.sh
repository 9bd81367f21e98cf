#!/usr/bin/env bash
# End-to-end benchmark of POST /orders with durable commits: an open-loop
# load (tests/perf/loadgen.cpp, latency measured from each request's due time)
# at the design's 2,000 orders/s and at rising rates, against PostgreSQL with
# the extension, Redis and pgx-frontend on loopback. Baseline measured in the
# same run: plain single-row INSERT transactions with 8 pgbench clients (the
# machine's durable-commit ceiling for one row per transaction), and the
# floor: the same load at the same rates against tests/perf/http_floor.cpp,
# which answers without parsing and without a database (what the load
# generator, loopback TCP and the two shared cores cost by themselves).
# Then DELETE /orders/{id} the same way: for each cancel rate, resting buys on
# BTC-USD far below the market (50.00-59.99, nothing trades) placed directly in
# the database beforehand (rate x (2 s warm-up + PGX_BENCH_SECONDS) plus 5%),
# cancelled in random order by loadgen --cancel-file; then how many of the
# measured part's orders are 'cancelled' beside the 200 responses (they should
# agree), and exchange.verify again. Then PATCH /orders/{id} the same way
# (loadgen --amend 0.0002: each order's quantity from one lot to two, which
# re-queues it), counting the orders whose quantity is 0.0002.
# Then the commit-to-WebSocket latency with 1,000 subscribers
# (tests/perf/ws_latency.py), and the same with the subscribers on the feed
# of a second pgx-frontend pointed at a streaming standby of the cluster (a
# read replica: pg_basebackup -R after the runs above; its listener polls the
# journal every --feed-poll-ms, 10 by default), the orders still placed
# through the primary's frontend (PGX_BENCH_NO_STANDBY=1 skips it).
# PGX_BENCH_SECONDS (default 10) per rate; PGX_BENCH_RATES overrides the rates;
# PGX_BENCH_CANCEL_RATES (default "2000 5000 10000") the cancel rates;
# PGX_BENCH_NO_CANCEL=1 skips the cancel part; PGX_BENCH_AMEND_RATES and
# PGX_BENCH_NO_AMEND the same for the amends;
# PGX_BENCH_PG_SETTINGS adds server settings (e.g.
# "exchange.notify_publisher=auto"); PGX_BENCH_NO_WS=1 skips the WebSocket part,
# PGX_BENCH_WS_ARGS replaces its arguments (default "--subscribers 1000"; see
# ws_latency.py --help: --rate, --orders);
# PGX_BENCH_INSTRUMENTS=N (default 1) spreads the orders at random over N
# instruments (BTC-USD, then I2 … IN), which the database then writes in parallel;
# PGX_BENCH_FRONTEND runs another pgx-frontend binary (an A/B of two builds);
# PGX_BENCH_LATENCY_LOG=DIR keeps each order rate's per-request log there
# (loadgen --log: due time, latency, status), as DIR/orders-RATE-N.log for
# the Nth run of the script's order rates.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${PGX_BENCH_SECONDS:-10}
rates=${PGX_BENCH_RATES:-"1000 2000 3000 5000 8000"}
cancel_rates=${PGX_BENCH_CANCEL_RATES:-"2000 5000 10000"}
amend_rates=${PGX_BENCH_AMEND_RATES:-"2000 5000 10000"}
warmup=2
n_instruments=${PGX_BENCH_INSTRUMENTS:-1}
instruments=BTC-USD
for ((i = 2; i <= n_instruments; i++)); do instruments+=",I$i"; done
dir=$root/build/febench
pg_port=25379
redis_port=63799
http_port=18200
ws_port=18201
floor_port=18202
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
export PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres PGDATABASE=postgres

cleanup() {
  if [ -n "${floor_pid:-}" ]; then kill "$floor_pid" 2>/dev/null || true; fi
  scripts/frontend-ctl.sh stop "$dir/run-standby" >/dev/null 2>&1 || true
  scripts/frontend-ctl.sh stop "$dir/run" >/dev/null 2>&1 || true
  scripts/pg-cluster.sh stop "$dir/standby"
  scripts/pg-cluster.sh stop "$dir/pg"
}
trap cleanup EXIT
cleanup
rm -rf "$dir"
mkdir -p "$dir/run"
# shellcheck disable=SC2086  # settings are words
scripts/pg-cluster.sh start "$dir/pg" "$pg_port" shared_buffers=512MB max_wal_size=4GB ${PGX_BENCH_PG_SETTINGS:-}
psql -X -q -c "CREATE EXTENSION exchange" \
  -c "SELECT exchange.create_instrument(s, 0.01, 0.0001) FROM unnest(string_to_array('$instruments', ',')) s" \
  -c "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, client int, v float8, at timestamptz DEFAULT now())" >/dev/null
base=$("$PGBENCH" -n -M prepared -T "$secs" -c 8 -j 8 -f tests/perf/pgbench/plain_insert.sql 2>/dev/null |
  sed -n 's/^tps = \([0-9.]*\).*/\1/p')

# 1,000 WebSocket subscribers need more descriptors than a default soft limit of 1,024.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then ulimit -n 4096 2>/dev/null || true; fi
PGX_RATE_LIMIT=0 PGX_NO_AUTH=1 scripts/frontend-ctl.sh start "$dir/run" "${PGX_BENCH_FRONTEND:-build/frontend/pgx-frontend}" \
  "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" "$redis_port" "$http_port" "$ws_port"

printf '\nplain single-row INSERT, 8 clients (durable ceiling): %.0f tx/s\n' "$base"
printf 'orders spread over %d instrument(s): %s\n\n' "$n_instruments" "$instruments"
# CPU time (user + system, clock ticks) of processes: the frontend, and the postmaster with its
# children (the backends of the frontend's connections live through a rate; one that ends within
# it is not counted).
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
fe_pid=$(cat "$dir/run/frontend.pid")
pg_pid=$(head -1 "$dir/pg/data/postmaster.pid")
pg_cpu() {
  local children
  mapfile -t children < <(pgrep -P "$pg_pid")
  cpu_ticks "$pg_pid" "${children[@]}"
}
# The backend of the feed's LISTEN connection, which reads the journal after every notification.
feed_backend() {
  psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgx-feed-listen'" | head -1
}
hz=$(getconf CLK_TCK)

# The floor, before the frontend's rates: loadgen against tests/perf/http_floor.cpp (one thread
# answering every request 201 with an order-sized body; no parsing, no database), at the same rates:
# what the load generator, loopback TCP and the sharing of the cores cost before a server does
# anything. Its CPU per request is the first term of the frontend's.
build/http_floor "$floor_port" >"$dir/floor.log" &
floor_pid=$!
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$floor_port") 2>/dev/null && break
  sleep 0.1
done
printf 'the floor (tests/perf/http_floor.cpp: no parsing, no database)\n'
for rate in $rates; do
  f0=$(cpu_ticks "$floor_pid")
  line=$(build/loadgen --port "$floor_port" --rate "$rate" --seconds "$secs" --warmup "$warmup" --connections 32 \
    --max-connections 512 --instruments "$instruments")
  f1=$(cpu_ticks "$floor_pid")
  printf '%-8s %s  cpu floor %.1f us\n' "$rate" "$line" \
    "$(awk -v f=$((f1 - f0)) -v hz="$hz" -v n=$((rate * (secs + warmup))) 'BEGIN { print f * 1e6 / hz / n }')"
done
kill "$floor_pid"
wait "$floor_pid" 2>/dev/null || true
floor_pid=
printf '\nthe frontend\n'
printf '%-8s %s\n' "rate/s" "result (latency from due time; ratio = achieved orders/s / INSERT tx/s;"
printf '%-8s %s\n' "" "CPU per request (of PostgreSQL's: the feed's LISTEN connection) and orders per"
printf '%-8s %s\n' "" "place_orders statement, warm-up included)"
# Orders placed and place_orders statements so far (the frontend's group_commit_batch_size histogram).
batches() {
  curl -s "http://127.0.0.1:$http_port/metrics" |
    awk '/^group_commit_batch_size_sum/ { s = $2 } /^group_commit_batch_size_count/ { c = $2 } END { print s + 0, c + 0 }'
}
[ -n "${PGX_BENCH_LATENCY_LOG:-}" ] && mkdir -p "$PGX_BENCH_LATENCY_LOG"
run_no=0
for rate in $rates; do
  run_no=$((run_no + 1))
  log_args=()
  [ -n "${PGX_BENCH_LATENCY_LOG:-}" ] && log_args=(--log "$PGX_BENCH_LATENCY_LOG/orders-$rate-$run_no.log")
  read -r orders0 stmts0 < <(batches)
  feed_pid=$(feed_backend)
  fe0=$(cpu_ticks "$fe_pid") pg0=$(pg_cpu) feed0=$(cpu_ticks $feed_pid)
  line=$(build/loadgen --port "$http_port" --rate "$rate" --seconds "$secs" --warmup "$warmup" --connections 32 \
    --max-connections 512 --instruments "$instruments" "${log_args[@]}")
  fe1=$(cpu_ticks "$fe_pid") pg1=$(pg_cpu) feed1=$(cpu_ticks $feed_pid)
  read -r orders1 stmts1 < <(batches)
  achieved=$(sed -n 's/.*achieved \([0-9]*\)\/s.*/\1/p' <<<"$line")
  sent=$(sed -n 's/.* ok \([0-9]*\) errors \([0-9]*\).*/\1 \2/p' <<<"$line" | awk '{ print $1 + $2 }')
  printf '%-8s %s  ratio %.2f  cpu %s\n' "$rate" "$line" "$(awk -v a="$achieved" -v b="$base" 'BEGIN { print a / b }')" \
    "$(awk -v f=$((fe1 - fe0)) -v p=$((pg1 - pg0)) -v l=$((feed1 - feed0)) -v hz="$hz" -v n="$sent" -v r="$rate" \
      -v w="$warmup" -v o="$((orders1 - orders0))" -v b="$((stmts1 - stmts0))" 'BEGIN {
      n += r * w; printf "frontend %.1f / PostgreSQL %.1f us (feed %.1f), %.1f orders per batch",
        f * 1e6 / hz / n, p * 1e6 / hz / n, l * 1e6 / hz / n, b ? o / b : 0 }')"
done
verify() {
  local problems orders
  problems=$(psql -X -At -c "SELECT count(*) FROM exchange.instruments i, exchange.verify(i.symbol)")
  orders=$(psql -X -At -c "SELECT count(*) FROM exchange.orders")
  echo "orders in the table: $orders; verify after $1: $problems problems"
}
verify "the run"

# DELETE (cancel) or PATCH (amend to quantity 0.0002) of resting orders placed for the run:
# change_rates MODE RATES ("cancel" or "amend").
change_rates() {
  local mode=$1 rates=$2 run rate n from to resting file line achieved first last ok measured all done_sql
  if [ "$mode" = cancel ]; then done_sql="o.status = 'cancelled'"; else done_sql="o.quantity = 0.0002"; fi
  echo
  printf '%-15s %s\n' "$mode rate/s" \
    "result ($([ "$mode" = cancel ] && echo DELETE || echo PATCH) /orders/{id}; ratio = achieved/s / INSERT tx/s)"
  for rate in $rates; do
    run=$(psql -X -At -c "SELECT coalesce(max(run), 0) + 1 FROM bench_changes")
    n=$(awk -v r="$rate" -v w="$warmup" -v s="$secs" 'BEGIN { n = r * (w + s) * 1.05; print int(n) + (n > int(n)) }')
    # Buys at 50.00-59.99 (tick 0.01), one lot each, at most 10,000 per place_orders call.
    for ((from = 1; from <= n; from += 10000)); do
      to=$((from + 9999 < n ? from + 9999 : n))
      psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO bench_changes (run, order_id, client_id, status)
        SELECT $run, r.order_id, r.client_id, r.status FROM exchange.place_orders((
          SELECT jsonb_agg(jsonb_build_object('client_id', 'load-' || (g % 1000), 'instrument', 'BTC-USD',
                                              'side', 'buy', 'type', 'limit', 'quantity', '0.0001',
                                              'price', round((5000 + g % 1000)::numeric / 100, 2)::text))
          FROM generate_series($from, $to) g)) r" >/dev/null
    done
    resting=$(psql -X -At -c "SELECT count(*) FROM bench_changes WHERE run = $run AND status = 'open'")
    if [ "$resting" != "$n" ]; then
      echo "$mode $rate: only $resting of $n orders placed are resting (status 'open')" >&2
      exit 1
    fi
    file=$dir/$mode-$run.txt
    psql -X -q -c "UPDATE bench_changes b SET pos = s.pos
                   FROM (SELECT order_id, row_number() OVER (ORDER BY random()) pos
                         FROM bench_changes WHERE run = $run) s
                   WHERE b.order_id = s.order_id" >/dev/null
    psql -X -At -F ' ' -c "SELECT order_id, client_id FROM bench_changes WHERE run = $run ORDER BY pos" >"$file"
    # shellcheck disable=SC2046  # the amend option is two words or none
    line=$(build/loadgen --port "$http_port" --cancel-file "$file" $([ "$mode" = amend ] && echo --amend 0.0002) \
      --rate "$rate" --seconds "$secs" --warmup "$warmup" --connections 32 --max-connections 512)
    achieved=$(sed -n 's/.*achieved \([0-9]*\)\/s.*/\1/p' <<<"$line")
    printf '%s %-8s %s  ratio %.2f\n' "$mode" "$rate" "$line" "$(awk -v a="$achieved" -v b="$base" 'BEGIN { print a / b }')"
    # loadgen sent lines 1 .. rate x (warm-up + secs); it counts statuses from line rate x warm-up + 1 on.
    read -r first last < <(awk -v r="$rate" -v w="$warmup" -v s="$secs" 'BEGIN {
      f = r * w; print int(f) + (f > int(f)) + 1, int(r * (w + s)) }')
    ok=$(sed -n 's/.* 200:\([0-9]*\).*/\1/p' <<<"$line")
    read -r measured all < <(psql -X -At -F ' ' -c "SELECT count(*) FILTER (WHERE pos >= $first),
        count(*) FROM bench_changes b JOIN exchange.orders o USING (order_id)
        WHERE b.run = $run AND b.pos <= $last AND $done_sql")
    echo "$mode $rate: 200 responses ${ok:-0}; orders now $([ "$mode" = cancel ] && echo cancelled || echo amended):" \
      "$measured of the measured part (lines $first-$last), $all with the warm-up"
  done
  verify "the ${mode}s"
}

# One row per resting order placed for a cancel or amend run; pos = its line in the run's --cancel-file.
psql -X -q -c "CREATE TABLE bench_changes (run int, pos int, order_id uuid, client_id text, status text)" >/dev/null
if [ "${PGX_BENCH_NO_CANCEL:-}" != 1 ] && [ -n "$cancel_rates" ]; then change_rates cancel "$cancel_rates"; fi
if [ "${PGX_BENCH_NO_AMEND:-}" != 1 ] && [ -n "$amend_rates" ]; then change_rates amend "$amend_rates"; fi

if [ -z "${PGX_BENCH_NO_WS:-}" ]; then
  echo
  # shellcheck disable=SC2086  # arguments are words
  /usr/bin/python3 tests/perf/ws_latency.py --http-port "$http_port" --ws-port "$ws_port" \
    ${PGX_BENCH_WS_ARGS:---subscribers 1000}
  if [ -z "${PGX_BENCH_NO_STANDBY:-}" ]; then
    sb=$dir/standby sb_port=$((pg_port + 1)) sb_http=$((http_port + 10)) sb_ws=$((ws_port + 10))
    mkdir -p "$sb"
    as_pg=()
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$sb"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" /usr/lib/postgresql/15/bin/pg_basebackup -h 127.0.0.1 -p "$pg_port" -U postgres -D "$sb/data" -R \
      -X stream -c fast
    scripts/pg-cluster.sh start "$sb" "$sb_port"
    PGX_RATE_LIMIT=0 PGX_NO_AUTH=1 scripts/frontend-ctl.sh start "$dir/run-standby" \
      "${PGX_BENCH_FRONTEND:-build/frontend/pgx-frontend}" "host=127.0.0.1 port=$sb_port user=postgres dbname=postgres" \
      "$redis_port" "$sb_http" "$sb_ws"
    printf '\nthe same, the subscribers on the feed of a frontend on a streaming standby (orders through the primary):\n'
    # shellcheck disable=SC2086  # arguments are words
    /usr/bin/python3 tests/perf/ws_latency.py --http-port "$http_port" --ws-port "$sb_ws" \
      ${PGX_BENCH_WS_ARGS:---subscribers 1000}
  fi
fi
