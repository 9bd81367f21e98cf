#!/usr/bin/env bash
# SQL-level benchmark of the extension with durable commits (synchronous_commit
# on, fsync on), each case beside a plain single-row INSERT transaction
# measured in the same run: the machine's durable-commit ceiling.
# Also times loading a book of 1,000,000 resting orders.
# PGX_BENCH_SECONDS (default 10) per case; port 25339.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${PGX_BENCH_PORT:-25339}
secs=${PGX_BENCH_SECONDS:-10}
dir=$root/build/pgbench
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=bench
. scripts/bench-pg-common.sh

cleanup() { scripts/pg-cluster.sh stop "$dir"; }
trap cleanup EXIT
bench_db_start "$dir" "$port"

# tps of one pgbench run: script, clients.
run() { bench_tps "$1" "$2" "$secs"; }

printf '\n%-58s %12s %12s %10s\n' "case (durable commits, ${secs}s each)" "tx/s" "orders/s" "vs INSERT"
base1=$(run plain_insert.sql 1)
base8=$(run plain_insert.sql 8)
row() { awk -v n="$1" -v t="$2" -v per="$3" -v b="$4" 'BEGIN { printf "%-58s %12.0f %12.0f %9.0f%%\n", n, t, t * per, 100 * t / b }'; }
row "plain single-row INSERT, 1 client" "$base1" 1 "$base1"
row "plain single-row INSERT, 8 clients" "$base8" 1 "$base8"
one1=$(run place_one.sql 1)
row "place_order, 1 client, 1 instrument" "$one1" 1 "$base1"
row "place_order, 8 clients, 1 instrument" "$(run place_one.sql 8)" 1 "$base8"
row "place_order, 8 clients, 8 instruments" "$(run place_one_8.sql 8)" 1 "$base8"
row "  the same without NOTIFY (exchange.notify=off)" "$(PGOPTIONS='-c exchange.notify=off' run place_one_8.sql 8)" 1 "$base8"
row "place_order, 1 client, NOTIFY off" "$(PGOPTIONS='-c exchange.notify=off' run place_one.sql 1)" 1 "$base1"
row "cancel_order, 1 client, 1 instrument" "$(run cancel_one.sql 1)" 1 "$base1"
row "cancel_order, 8 clients, 1 instrument" "$(run cancel_one.sql 8)" 1 "$base8"
# 500 batches (a fixed count: the ids are numbered 60,001 to 110,000, so that
# none is cancelled twice, which would be answered as a quick refusal).
row "cancel_orders x100, 1 client" "$(bench_tx cancel_batch.sql 1 500)" 100 "$base1"
refused=$(psql -X -At -c "SELECT 50000 - count(*) FROM bench_cancel_ids c JOIN exchange.orders o USING (order_id)
                          WHERE c.n BETWEEN 60001 AND 110000 AND o.status = 'cancelled'")
echo "  (cancel_orders: $refused of its 50,000 ids not cancelled)"
row "amend_order, 1 client, 1 instrument" "$(run amend_one.sql 1)" 1 "$base1"
# 500 batches of 100 amends, each a change (see amend_batch.sql).
row "amend_orders x100, 1 client" "$(bench_tx amend_batch.sql 1 500)" 100 "$base1"
refused=$(psql -X -At -c "SELECT count(*) FROM bench_cancel_ids c JOIN exchange.orders o USING (order_id)
                          WHERE c.n BETWEEN 140001 AND 180000 AND o.quantity NOT IN (2, 3)")
echo "  (amend_orders: $refused of its 40,000 orders not amended)"
row "place_orders x100, 1 client" "$(run place_batch.sql 1)" 100 "$base1"
row "place_orders x100, 8 clients" "$(run place_batch.sql 8)" 100 "$base8"
text1=$(run place_batch_text.sql 1)
row "place_orders x100, 1 client, JSON text built before" "$text1" 100 "$base1"
row "place_orders x100, 8 clients, JSON text built before" "$(run place_batch_text.sql 8)" 100 "$base8"
# The same batches with each client on its own instrument (B1..B8): writers in parallel.
batch8=$(run place_batch_text_8.sql 8)
row "place_orders x100, 8 clients, 8 instruments, JSON before" "$batch8" 100 "$base8"
# The storage ceiling: the rows place_order(s) wrote for B1's first 100,000
# orders (bench_rows_prepare), written again into copies of the tables
# without the extension. One order's rows per transaction by one plain SQL
# statement (index scans forced: the tables grow from empty while the plan
# is cached), and less than any order writes: its row and its journal entry
# with primary keys only; then all of them by binary COPY, without the
# makers' updates.
bench_rows_prepare
rows1=$(PGOPTIONS='-c enable_seqscan=off' run rows_one.sql 1)
row "the same rows, one order per transaction, plain SQL, 1 client" "$rows1" 1 "$base1"
awk -v p="$one1" -v r="$rows1" 'BEGIN { printf "  (place_order / its rows by plain SQL, 1 client: %.2f)\n", p / r }'
row "  only the order's row and its journal entry, primary keys only" "$(PGOPTIONS='-c enable_seqscan=off' run rows_two.sql 1)" 1 "$base1"
copy1=$(bench_rows_copy_ms 1)
copy8=$(bench_rows_copy_ms 8)
bare1=$(bench_rows_copy_ms 1 _bare)
bare8=$(bench_rows_copy_ms 8 _bare)
rows_n=$(psql -X -At -c "SELECT count(*) FROM rows_src_orders")
awk -v n="$rows_n" -v c1="$copy1" -v c8="$copy8" -v b1="$bare1" -v b8="$bare8" -v t1="$text1" -v t8="$batch8" 'BEGIN {
  printf "%-58s %12s %12.0f\n", sprintf("the same rows of %d orders by COPY, 1 session", n), "-", n * 1000 / c1
  printf "%-58s %12s %12.0f\n", sprintf("the same rows of %d orders by COPY, 8 sessions", n), "-", n * 1000 / c8
  printf "%-58s %12s %12.0f\n", "  the same into tables without indexes, 1 session", "-", n * 1000 / b1
  printf "%-58s %12s %12.0f\n", "  the same into tables without indexes, 8 sessions", "-", n * 1000 / b8
  printf "  (place_orders x100 / COPY of its rows: 1 client %.2f, 8 clients on 8 instruments %.2f)\n",
    t1 * 100 * c1 / (n * 1000), t8 * 100 * c8 / (n * 1000) }'
# Stop orders (0.13), beside the batches above: the same batches on S1, a
# book with 1,000 pending stops far from the price (never triggered), and
# on S2 with one order in ten a stop order 2 ticks beyond its price (placed
# pending, refused as already reached, or triggered by a later order).
psql -X -q -c "SELECT exchange.create_instrument('S1', 1, 1)" -c "SELECT exchange.create_instrument('S2', 1, 1)" \
  -c "SELECT count(*) FROM exchange.place_orders((SELECT jsonb_agg(jsonb_build_object('client_id', 'far' || g,
        'instrument', 'S1', 'side', CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, 'type', 'market', 'quantity', 1,
        'stop_price', CASE WHEN g % 2 = 0 THEN 100000 + g ELSE 1 + g % 50 END)) FROM generate_series(1, 1000) g))" \
  -c "CREATE TABLE bench_stop_batches AS
      SELECT b.id, (SELECT jsonb_agg(CASE WHEN random() < 0.1
                                          THEN o || jsonb_build_object('stop_price', (o->>'price')::int +
                                                      CASE WHEN o->>'side' = 'buy' THEN 2 ELSE -2 END)
                                          ELSE o END)
                      FROM jsonb_array_elements(replace(b.body, '\"B1\"', '\"S2\"')::jsonb) o)::text AS body
        FROM bench_batches b" -c "ALTER TABLE bench_stop_batches ADD PRIMARY KEY (id)" >/dev/null
far=$(run place_batch_far_stops.sql 1)
row "place_orders x100, 1 client, 1,000 pending stops in the book" "$far" 100 "$base1"
stops=$(run place_batch_stops.sql 1)
row "place_orders x100, 1 client, one in ten a stop order" "$stops" 100 "$base1"
psql -X -At -c "SELECT format('  (stop orders: %s pending, %s triggered, %s refused as reached; batches with stops in the book / without: %s, with stop orders / without: %s)',
                  count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE stop_price IS NOT NULL AND status NOT IN ('pending', 'rejected')),
                  count(*) FILTER (WHERE reject_reason = 'stop_would_trigger'), round($far / $text1, 2), round($stops / $text1, 2))
                FROM exchange.orders WHERE instrument = 'S2'"

# cancel_order and amend_order (C since 0.3) beside exchange._cancel_order
# and exchange._amend_order, the PL/pgSQL versions they replaced, on the same
# book: the server's time per call, 5,000 calls in one transaction each,
# alternating twice (ids from the end of bench_cancel_ids, which the pgbench
# cases above do not reach; an amend raises the quantity from 1 to 2, which
# re-queues the order).
psql -X -q <<'SQL'
CREATE FUNCTION bench_us(what text, reference boolean, lo bigint, hi bigint) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    id uuid;
BEGIN
    FOR id IN SELECT order_id FROM bench_cancel_ids WHERE n BETWEEN lo AND hi LOOP
        IF what = 'cancel' AND reference THEN PERFORM exchange._cancel_order(id, NULL);
        ELSIF what = 'cancel' THEN PERFORM exchange.cancel_order(id);
        ELSIF reference THEN PERFORM exchange._amend_order(id, 2, NULL, NULL);
        ELSE PERFORM exchange.amend_order(id, 2);
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - started) * 1e6 / (hi - lo + 1);
END $$;
SQL
us() { psql -X -At -c "SELECT round(bench_us('$1', $2, $3, $(($3 + 4999)))::numeric, 1)"; }
echo
for what in cancel amend; do
  first=$([ $what = cancel ] && echo 180001 || echo 200001)
  c=() ref=()
  for k in 0 1; do
    lo=$((first + k * 10000))
    c+=("$(us $what false $lo)")
    ref+=("$(us $what true $((lo + 5000)))")
  done
  printf '%s_order, server time per call: C %s / %s us, PL/pgSQL reference %s / %s us\n' \
    "$what" "${c[0]}" "${c[1]}" "${ref[0]}" "${ref[1]}"
done
problems=$(verify_problems)
echo "verify after the run: $problems problems"

# ms SQL...: the milliseconds of each statement, run in one session.
ms() {
  local args=(-c "\\timing on") q
  for q in "$@"; do args+=(-c "$q"); done
  psql -X -At "${args[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tr '\n' ' '
}
# timed SQL [N]: the milliseconds of the last of N runs of SQL in one session (default 1).
timed() {
  local runs=() i
  for ((i = 0; i < ${2:-1}; i++)); do runs+=("$1"); done
  ms "${runs[@]}" | awk '{ print $NF }'
}
# The read functions of 0.11 over what the run left on B1: candles aggregate every trade of the window,
# orderbook_at reads every journal entry (time per trade and per entry), and rebuilds the book.
trades=$(psql -X -At -c "SELECT count(*) FROM exchange.trades WHERE instrument = 'B1'")
entries=$(psql -X -At -c "SELECT count(*) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
                          WHERE i.symbol = 'B1'")
ms_candles=$(timed "SELECT count(*) FROM exchange.candles('B1', '1 day', max_rows => 2)")
ms_book=$(timed "SELECT count(*) FROM exchange.orderbook_at('B1', depth => 100000)")
same=$(psql -X -At -c "SELECT count(*) FROM ((SELECT * FROM exchange.orderbook_at('B1', depth => 100000)
                         EXCEPT ALL SELECT * FROM exchange.orderbook('B1', 100000)) UNION ALL
                        (SELECT * FROM exchange.orderbook('B1', 100000)
                         EXCEPT ALL SELECT * FROM exchange.orderbook_at('B1', depth => 100000))) d")
awk -v t="$trades" -v e="$entries" -v c="$ms_candles" -v b="$ms_book" -v d="$same" 'BEGIN {
  printf "candles over %d trades: %.0f ms (%.2f us per trade); orderbook_at over %d journal entries: %.0f ms (%.2f us per entry), %d levels differing from the book\n",
    t, c, c * 1000 / t, e, b, b * 1000 / e, d }'
# list_orders (0.11: resting orders through the partial index orders_client_resting, finished ones by walking
# order_no from the newest): a client's 100 newest resting and filled orders,
# and a client without orders, among all the run's orders (the second call of each, its plan cached).
orders=$(psql -X -At -c "SELECT count(*) FROM exchange.orders")
lo() { timed "SELECT count(*) FROM exchange.list_orders($1)" 2; }
printf 'list_orders among %d orders: 100 resting %s ms, 100 filled %s ms, a client without orders %s ms\n' \
  "$orders" "$(lo "'c5'")" "$(lo "'c5', 'filled'")" "$(lo "'nobody'")"

# Loading a book of 1,000,000 resting orders (bids 1..5000, asks 5001..10000).
psql -X -q -c "SELECT exchange.create_instrument('LOAD', 1, 1)" >/dev/null
psql -X -q <<'SQL'
INSERT INTO exchange.clients (client_id) VALUES ('loader') ON CONFLICT DO NOTHING;
INSERT INTO exchange.orders (order_no, client_id, client_no, instrument, instrument_id, side, type, time_in_force,
                             stp, price, quantity, price_ticks, quantity_lots, remaining_lots, status, priority)
SELECT nextval('exchange.order_no_seq'), 'loader', (SELECT client_no FROM exchange.clients WHERE client_id = 'loader'),
       'LOAD', i.instrument_id, CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, 'limit', 'gtc', 'cancel_newest',
       p, 1, p, 1, 1, 'open', nextval('exchange.priority_seq')
  FROM exchange.instruments i, generate_series(1, 1000000) g,
       LATERAL (SELECT CASE WHEN g % 2 = 0 THEN 1 + g % 5000 ELSE 5001 + g % 5000 END AS p) x
 WHERE i.symbol = 'LOAD';
SQL
start=$(date +%s.%N)
loaded=$(psql -X -At -c "SELECT exchange.rebuild('LOAD')")
end=$(date +%s.%N)
awk -v n="$loaded" -v s="$start" -v e="$end" 'BEGIN { printf "\nloading a book of %d resting orders: %.2f s\n", n, e - s }'

# Loading a book whose journal holds 200,000 entries since its last trade (an
# instrument quoted a long time without trading; the entries are copies of one
# order's, inserted directly, then the book rebuilt). With a pending stop order the load reads the
# last trade price, walking back through them (as every load did before
# 2026-12-07); without, it does not, and the first stop placed reads it.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
SELECT exchange.create_instrument('QUIET', 1, 1);
SELECT exchange.place_order('q1', 'QUIET', 'sell', 'limit', 2, 100);
SELECT exchange.place_order('q2', 'QUIET', 'buy', 'limit', 1, 100);
SELECT exchange.place_order('q2', 'QUIET', 'buy', 'limit', 1, 90);
INSERT INTO exchange.events (instrument_id, seq, kind, order_id, payload)
SELECT e.instrument_id, e.seq + g, e.kind, e.order_id, e.payload
  FROM (SELECT * FROM exchange.events WHERE instrument_id = (SELECT instrument_id FROM exchange.instruments
                                                              WHERE symbol = 'QUIET') ORDER BY seq DESC LIMIT 1) e,
       generate_series(1, 200000) g;
SELECT exchange.rebuild('QUIET');  -- the book's sequence after the entries inserted beside it
SQL
rebuild="SELECT exchange.rebuild('QUIET')"
stop="SELECT exchange.place_order('q3', 'QUIET', 'buy', 'market', 1, stop_price => 110)"
cancel="SELECT count(exchange.cancel_order(order_id)) FROM exchange.orders WHERE instrument = 'QUIET' AND status = 'pending'"
# In one session each (its first statement pays for the session's first use of the tables): three loads
# with a pending stop, three without; then a load without and the first stop placed, twice.
read -r -a eager <<<"$(ms "$stop" "$rebuild" "$rebuild" "$rebuild" "$rebuild")"
psql -X -q -c "$cancel" >/dev/null
read -r -a lazy <<<"$(ms "$rebuild" "$rebuild" "$rebuild" "$rebuild")"
read -r -a first <<<"$(ms "$rebuild" "$stop" "$stop" "$cancel" "$rebuild" "$stop" "$stop")"
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
awk -v a="$(median3 "${eager[@]:2:3}")" -v b="$(median3 "${lazy[@]:1:3}")" -v f1="${first[1]}" -v f2="${first[5]}" \
    -v s1="${first[2]}" -v s2="${first[6]}" 'BEGIN {
  printf "loading a book with 200,000 journal entries since its last trade (median of 3): %.1f ms with a pending stop (reads the last trade price), %.1f ms without (%.3f of it); the first stop placed after a load without %.1f / %.1f ms, the next %.1f / %.1f ms\n",
    a, b, b / a, f1, f2, s1, s2 }'
echo "verify QUIET: $(psql -X -At -c "SELECT count(*) FROM exchange.verify('QUIET')") problems"

# Settlement (0.16): 20,000 orders on SETTLE dated yesterday (the columns'
# defaults; the trading functions stamp now()), then settle() through
# yesterday, beside this run's other entries (stamped today, not settled:
# each instrument's journal is read up to its first entry of today only);
# then reconcile() of that date, which reads its entries and trades again and
# each traded order's trades.
yesterday=$(psql -X -At -c "SELECT (now() AT TIME ZONE 'UTC')::date - 1")
psql -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
SELECT exchange.create_instrument('SETTLE', 1, 1);
ALTER TABLE exchange.events ALTER created_at SET DEFAULT '$yesterday 12:00+00';
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT '$yesterday 12:00+00';
SELECT count(*) FROM generate_series(0, 199) b,
       LATERAL exchange.place_orders((SELECT jsonb_agg(jsonb_build_object(
           'client_id', 'k' || g % 50, 'instrument', 'SETTLE', 'side', CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END,
           'type', 'limit', 'quantity', 1 + g % 3, 'price', 1000 + (g * 7919) % 11 - 5))
         FROM generate_series(b * 100, b * 100 + 99) g));
ALTER TABLE exchange.events ALTER created_at SET DEFAULT now();
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT now();
SQL
unsettled=$(psql -X -At -c "SELECT count(*) FROM exchange.events")
read -r -a st <<<"$(ms "SELECT count(*) FROM exchange.settle()" "SELECT count(*) FROM exchange.reconcile('$yesterday')")"
read -r days settled_entries settled_trades positions <<<"$(psql -X -At -F ' ' -c "SELECT count(*), sum(entries),
  sum(trade_count), (SELECT count(*) FROM exchange.settlements) FROM exchange.settlement_days")"
awk -v ms="${st[0]}" -v rc="${st[1]}" -v e="$unsettled" -v se="$settled_entries" -v t="$settled_trades" \
    -v p="$positions" -v d="$days" 'BEGIN {
  printf "settle() among %d journal entries: %.0f ms for the %d entries and %d trades of %d instrument-date(s), %d positions (%.2f us per settled entry); reconcile of that date %.0f ms (%.2f us per trade)\n",
    e, ms, se, t, d, p, ms * 1000 / se, rc, rc * 1000 / t }'
echo "reconcile: $(psql -X -At -c "SELECT count(*) FROM exchange.reconcile()") problems"
# Retention (0.17): prune() of that date, which removes its entries, its
# finished orders (found among all orders: a scan of the table) and their
# trades.
all_orders=$(psql -X -At -c "SELECT count(*) FROM exchange.orders")
pruned_ms=$(timed "SELECT count(*) FROM exchange.prune('$yesterday')")
read -r p_entries p_trades p_orders <<<"$(psql -X -At -F ' ' -c "SELECT sum(entries), sum(trades), sum(orders)
  FROM exchange.prunes")"
awk -v ms="$pruned_ms" -v e="$p_entries" -v t="$p_trades" -v o="$p_orders" -v all="$all_orders" 'BEGIN {
  printf "prune() of that date: %.0f ms for %d entries, %d trades and %d orders removed among %d orders (%.2f us per removed order)\n",
    ms, e, t, o, all, ms * 1000 / o }'
echo "after prune: verify SETTLE $(psql -X -At -c "SELECT count(*) FROM exchange.verify('SETTLE')") problems, reconcile $(psql -X -At -c "SELECT count(*) FROM exchange.reconcile()") problems"
