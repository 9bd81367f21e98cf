# Sourced by bench-pg.sh, bench-pg-ab.sh and bench-pg-cpu-ab.sh: the benchmark
# database they use, so that they measure the same thing. Needs PGHOST/PGPORT/PGUSER set,
# PGDATABASE=bench, and the repository root as the working directory.
PGBENCH=/usr/lib/postgresql/15/bin/pgbench

# A fresh cluster in DIR on PORT with database bench: the extension, the
# plain-INSERT baseline table, the instruments B1..B8 (tick and lot 1) and
# bench_batches: 1,000 batches of 100 random orders for B1 as JSON text, the
# way the frontend sends them (place_batch_text.sql; place_batch_text_8.sql
# puts each pgbench client on its own instrument, B1..B8), made before the clock
# starts (the subquery's "WHERE b > 0" ties it to its batch, so that each
# batch gets its own random orders). For the cancel and amend cases
# (cancel_one.sql, cancel_batch.sql, bench-pg.sh's per-call timings):
# instrument C1 with 220,000 resting bids over 50 prices, their ids numbered
# in bench_cancel_ids (cancel_one.sql takes them from 1 on, cancel_batch.sql
# from 60,001; amend_one.sql amends 120,001-140,000, amend_batch.sql
# 140,001-180,000; bench-pg.sh's per-call timings use 180,001-220,000).
bench_db_start() {
  local dir=$1 port=$2
  scripts/pg-cluster.sh stop "$dir"
  rm -rf "$dir"
  scripts/pg-cluster.sh start "$dir" "$port" exchange.max_instruments=16 shared_buffers=512MB max_wal_size=4GB
  psql -X -q -d postgres -c "CREATE DATABASE bench"
  psql -X -q -c "CREATE EXTENSION exchange" \
    -c "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, client int, v float8, at timestamptz DEFAULT now())"
  for i in 1 2 3 4 5 6 7 8; do psql -X -q -c "SELECT exchange.create_instrument('B$i', 1, 1)" >/dev/null; done
  psql -X -q -c "CREATE TABLE bench_batches AS
    SELECT b AS id, (SELECT jsonb_agg(jsonb_build_object('client_id', 'c' || (random() * 1000)::int, 'instrument', 'B1',
                                       'side', CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, 'type', 'limit',
                                       'quantity', 1 + (random() * 4)::int, 'price', 95 + (random() * 10)::int))
                       FROM generate_series(1, 100) WHERE b > 0)::text AS body
      FROM generate_series(1, 1000) b" -c "ALTER TABLE bench_batches ADD PRIMARY KEY (id)"
  psql -X -q -c "SELECT exchange.create_instrument('C1', 1, 1)" >/dev/null
  psql -X -q -c "CREATE TABLE bench_cancel_ids (n bigserial PRIMARY KEY, order_id uuid NOT NULL)" \
    -c "CREATE SEQUENCE bench_cancel_next" -c "CREATE SEQUENCE bench_cancel_batch" \
    -c "CREATE SEQUENCE bench_amend_next" -c "CREATE SEQUENCE bench_amend_batch" \
    -c "INSERT INTO bench_cancel_ids (order_id)
        SELECT r.order_id FROM generate_series(1, 220) b,
               LATERAL exchange.place_orders((SELECT jsonb_agg(jsonb_build_object('client_id', 'k' || (g % 100),
                         'instrument', 'C1', 'side', 'buy', 'type', 'limit', 'quantity', 1, 'price', 1000 + g % 50))
                          FROM generate_series(1, 1000) g WHERE b > 0)) r"
}

# tps of one pgbench run of tests/perf/pgbench/SCRIPT: SCRIPT CLIENTS SECONDS
# (bench_tx: a fixed number of transactions per client instead).
bench_tx() {
  "$PGBENCH" -n -M prepared -t "$3" -c "$2" -j "$2" -f "tests/perf/pgbench/$1" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
bench_tps() {
  "$PGBENCH" -n -M prepared -T "$3" -c "$2" -j "$2" -f "tests/perf/pgbench/$1" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

# The two builds of an A/B run (bench-pg-ab.sh, bench-pg-cpu-ab.sh): the
# extension at git revision REV and the working tree's, in WORK/base and
# WORK/new (exchange.so, control file, SQL scripts). The base revision's
# sources come from git archive (nothing checked out) and are built the way
# that revision builds (out of tree since the PGXS VPATH change, in its
# extension/ folder before). Run from the repository root.
ab_build() {
  local rev=$1 work=$2 sha out base_out b
  sha=$(git rev-parse --verify "$rev^{commit}")
  rm -rf "$work"
  mkdir -p "$work/src" "$work/base" "$work/new"
  git archive "$sha" | tar -x -C "$work/src"
  if grep -q 'out-of-tree\|out of tree' "$work/src/extension/Makefile"; then
    mkdir -p "$work/src/build/ext"
    make -s -C "$work/src/build/ext" -f "$work/src/extension/Makefile" -j "${JOBS:-2}" >/dev/null
    base_out=$work/src/build/ext
  else
    make -s -C "$work/src/extension" -j "${JOBS:-2}" >/dev/null
    base_out=$work/src/extension
  fi
  make -s ext >/dev/null
  for b in base new; do
    out=$([ "$b" = base ] && echo "$base_out" || echo "$(pwd)/build/ext")
    cp "$out/exchange.so" "$out/exchange.control" "$out"/exchange--*.sql "$work/$b/"
  done
}

# Installs build B (base or new) of WORK into PostgreSQL's folders (as root,
# or through sudo): install_build WORK B. A running server keeps the library
# it loaded until restarted: install(1) replaces the file (a new inode), where
# cp would rewrite the one the server's processes have mapped, and the
# previous round's server, still running at this point, crashed on its next
# call into it (seen as "server does not shut down" at its stop).
install_build() {
  local libdir sharedir as_root=()
  libdir=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)
  sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" install -m 755 "$1/$2/exchange.so" "$libdir/exchange.so"
  "${as_root[@]}" install -m 644 "$1/$2/exchange.control" "$1/$2"/exchange--*.sql "$sharedir/"
}

# How many differences exchange.verify finds over every instrument of the
# database (0: every book matches its tables).
verify_problems() {
  psql -X -At -c "SELECT count(*) FROM exchange.instruments i, exchange.verify(i.symbol)"
}

# The storage ceiling (bench-pg.sh): the rows that place_order(s) wrote for
# B1's first 100,000 orders, to be written again without the extension.
# rows_src_orders holds each order as it was inserted (its own fills as the
# taker applied, none of its later fills as a maker), rows_src_events its
# journal entry, rows_src_trades the trades it took, with its number k (its
# place in order_no order) and the maker's id; rows_orders, rows_events and
# rows_trades are empty tables LIKE the extension's (the same columns,
# defaults, CHECK constraints and indexes; no foreign key, no trigger).
bench_rows_prepare() {
  psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS rows_src_orders, rows_src_events, rows_src_trades, rows_orders, rows_events, rows_trades,
                     rows_orders_bare, rows_events_bare, rows_trades_bare, rows_orders_pk, rows_events_pk;
DROP SEQUENCE IF EXISTS rows_next;
CREATE TABLE rows_src_orders AS
  SELECT row_number() OVER (ORDER BY order_no) AS k, o.* FROM exchange.orders o
   WHERE instrument = 'B1' ORDER BY order_no LIMIT 100000;
CREATE TABLE rows_src_events AS SELECT s.k, e.* FROM exchange.events e JOIN rows_src_orders s USING (order_id);
CREATE TABLE rows_src_trades AS
  SELECT s.k, t.*, t.quantity::bigint AS quantity_lots,  -- B1: lot size 1
         CASE WHEN t.maker_side = 'buy' THEN t.buy_order_id ELSE t.sell_order_id END AS maker_id
    FROM exchange.trades t
    JOIN rows_src_orders s ON s.order_id = CASE WHEN t.maker_side = 'buy' THEN t.sell_order_id ELSE t.buy_order_id END;
CREATE INDEX ON rows_src_orders (k);
CREATE INDEX ON rows_src_events (k);
CREATE INDEX ON rows_src_trades (k);
UPDATE rows_src_orders s
   SET filled_quantity = coalesce(f.q, 0), remaining_lots = s.quantity_lots - coalesce(f.q, 0),
       status = CASE WHEN s.status IN ('cancelled', 'rejected') THEN s.status WHEN f.q = s.quantity_lots THEN 'filled'
                     WHEN f.q > 0 THEN 'partially_filled' ELSE 'open' END
  FROM (SELECT o.k, (SELECT sum(quantity_lots) FROM rows_src_trades t WHERE t.k = o.k) AS q FROM rows_src_orders o) f
 WHERE f.k = s.k;
CREATE TABLE rows_orders (LIKE exchange.orders INCLUDING ALL);
CREATE TABLE rows_events (LIKE exchange.events INCLUDING ALL);
CREATE TABLE rows_trades (LIKE exchange.trades INCLUDING ALL);
-- The same columns without any index or constraint: the heap and its WAL alone.
CREATE TABLE rows_orders_bare (LIKE exchange.orders);
CREATE TABLE rows_events_bare (LIKE exchange.events);
CREATE TABLE rows_trades_bare (LIKE exchange.trades);
-- An order's row and its journal entry with their primary keys only (rows_two.sql).
CREATE TABLE rows_orders_pk (LIKE exchange.orders INCLUDING DEFAULTS, PRIMARY KEY (order_id));
CREATE TABLE rows_events_pk (LIKE exchange.events INCLUDING DEFAULTS, PRIMARY KEY (instrument_id, seq));
CREATE SEQUENCE rows_next;
CREATE SEQUENCE rows_two_next;
ANALYZE rows_src_orders, rows_src_events, rows_src_trades;
SQL
}

# Milliseconds to COPY the prepared rows into the empty copies in SESSIONS
# parallel sessions (1 or 8), each one transaction with a durable commit
# (SUFFIX _bare: into the copies without indexes or constraints):
# COPY's binary format from files the server wrote (bench_rows_prepare's
# rows split by k modulo 8 into the data directory), PostgreSQL's fastest way
# in for rows, without the makers' updates, the journal's payloads or the
# trades built.
bench_rows_copy_ms() {
  local sessions=$1 suffix=${2:-} data p s e pids=()
  data=$(psql -X -At -c "SHOW data_directory") || return 1
  psql -X -q -v ON_ERROR_STOP=1 -c "TRUNCATE rows_orders$suffix, rows_events$suffix, rows_trades$suffix" -c "CHECKPOINT" || return 1
  if [ "$(psql -X -At -c "SELECT count(*) FROM pg_ls_dir('.') f WHERE f = 'rows-o0.bin'")" = 0 ]; then  # written once
    for p in 0 1 2 3 4 5 6 7; do
      psql -X -q -v ON_ERROR_STOP=1 \
        -c "COPY (SELECT order_id, order_no, client_id, client_no, instrument, instrument_id, side, type, time_in_force,
                         post_only, stp, price, quantity, filled_quantity, price_ticks, quantity_lots, remaining_lots,
                         status, reject_reason, cancel_reason, idempotency_key, priority, created_at, updated_at,
                         display_quantity, display_lots, visible_lots, stop_price, stop_ticks
                    FROM rows_src_orders WHERE k % 8 = $p) TO '$data/rows-o$p.bin' (FORMAT binary)" \
        -c "COPY (SELECT instrument_id, seq, kind, order_id, payload, created_at FROM rows_src_events WHERE k % 8 = $p)
              TO '$data/rows-e$p.bin' (FORMAT binary)" \
        -c "COPY (SELECT trade_id, instrument, instrument_id, seq, trade_no, price, quantity, buy_order_id, sell_order_id,
                         buy_client_id, sell_client_id, maker_side, executed_at FROM rows_src_trades WHERE k % 8 = $p)
              TO '$data/rows-t$p.bin' (FORMAT binary)" || return 1
    done
  fi
  copy_part() {  # parts $@ in one session and one transaction
    local q="BEGIN;" p
    for p in "$@"; do
      q+=" COPY rows_orders$suffix FROM '$data/rows-o$p.bin' (FORMAT binary);"
      q+=" COPY rows_events$suffix FROM '$data/rows-e$p.bin' (FORMAT binary);"
      q+=" COPY rows_trades$suffix FROM '$data/rows-t$p.bin' (FORMAT binary);"
    done
    psql -X -q -v ON_ERROR_STOP=1 -c "$q COMMIT;"
  }
  s=$(date +%s%N)
  if [ "$sessions" = 1 ]; then
    copy_part 0 1 2 3 4 5 6 7 || return 1
  else
    for p in 0 1 2 3 4 5 6 7; do
      copy_part "$p" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || return 1; done
  fi
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
