#!/usr/bin/env bash
# Restart and crash tests against the cluster in $PGX_CLUSTER_DIR (PGHOST,
# PGPORT, PGUSER set): after a clean restart the books are exactly as before;
# after kill -9 of the postmaster under load from several clients, and of a
# backend holding an instrument lock mid-transaction, every acknowledged order
# is in the tables, nothing uncommitted is, every book verifies clean and the
# journal has no gaps. A pg_dump restored into another database equals the
# original and trades on. Also: without shared_preload_libraries the library
# refuses to load with a clear message.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${PGX_CLUSTER_DIR:?}
port=${PGPORT:?}
work=$dir/crash
mkdir -p "$work"
db=crash_test
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0

# Every instrument verifies clean and every journal is gap-free.
check_health() {
  local problems gaps
  problems=$(psql_db -At -c "SELECT i.symbol || ': ' || v.problem FROM exchange.instruments i, exchange.verify(i.symbol) v")
  [ -z "$problems" ] || fail "$1: verify found: $problems"
  # Gap-free from entry 1, or after the last entry prune() removed (0.17).
  gaps=$(psql_db -At -c "SELECT instrument_id FROM exchange.events GROUP BY instrument_id
                         HAVING count(*) FILTER (WHERE seq > exchange._pruned_seq(instrument_id))
                                <> max(seq) - exchange._pruned_seq(instrument_id)")
  [ -z "$gaps" ] || fail "$1: journal gaps for instruments $gaps"
}

# A stream of n random orders for one client, one autocommitted statement each,
# printing the order id once the commit is acknowledged; on AAA and BBB, or
# only on the instrument given as the fourth argument. About one in ten is a
# stop order (0.13; a buy stop at 100-110, a sell stop at 90-100, limit or
# market): some wait (pending, outside the book), some the last trade has
# reached (rejected), some trigger as later orders trade.
order_script() {
  local client=$1 n=$2 seed=$3 only=${4:-}
  awk -v c="$client" -v n="$n" -v s="$seed" -v only="$only" 'BEGIN { srand(s); for (i = 0; i < n; i++) {
      inst = only != "" ? only : (rand() < 0.5) ? "AAA" : "BBB"; side = (rand() < 0.5) ? "buy" : "sell";
      price = 90 + int(rand() * 21); qty = 1 + int(rand() * 5); type = "limit"; stop = "";
      if (rand() < 0.1) {
        stop = ", stop_price => " (side == "buy" ? 100 + int(rand() * 11) : 90 + int(rand() * 11));
        if (rand() < 0.3) { type = "market"; price = "NULL" }
      }
      printf "SELECT order_id FROM exchange.place_order(%s, %s, %s, %s, %d, %s%s);\n", "'\''" c "'\''", "'\''" inst "'\''",
             "'\''" side "'\''", "'\''" type "'\''", qty, price, stop } }'
}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_db -c "CREATE EXTENSION exchange" \
        -c "SELECT exchange.create_instrument('AAA', 1, 1)" -c "SELECT exchange.create_instrument('BBB', 1, 1)" >/dev/null

# The pending stop orders of every book in trigger order, and its last trade price.
book_stops() {
  psql_db -At -c "SELECT symbol, exchange._book_last_price(instrument_id), s.* FROM exchange.instruments,
                    exchange._book_stops(instrument_id) s ORDER BY symbol, s.side, s.rank"
}

# 1. Clean restart: the books are reloaded exactly, their pending stop
#    orders (in trigger order, stop-limit icebergs with their display, III
#    below) and last trade prices too. On MMM (0.14) a stop moved before
#    the restart: after a trade at 100, m1's buy stop 105 -> 106 puts it
#    behind m2 (placed after it at 106), s1's sell stop 95 -> 94; reloaded,
#    m1 is still at 106 behind m2, a trade at 105 (m1's old stop) triggers
#    nothing and one at 106 triggers m2, then m1.
order_script seed 400 1 | psql_db -At >/dev/null
psql_db -At -c "SELECT exchange.create_instrument('MMM', 1, 1)" \
  -c "SELECT status FROM exchange.place_order('mk', 'MMM', 'sell', 'limit', 1, 100)" \
  -c "SELECT status FROM exchange.place_order('mt', 'MMM', 'buy', 'limit', 1, 100)" \
  -c "SELECT status FROM exchange.place_order('m1', 'MMM', 'buy', 'market', 1, stop_price => 105)" \
  -c "SELECT status FROM exchange.place_order('m2', 'MMM', 'buy', 'market', 1, stop_price => 106)" \
  -c "SELECT status FROM exchange.place_order('s1', 'MMM', 'sell', 'market', 1, stop_price => 95)" >/dev/null
moved=$(psql_db -At -c "SELECT string_agg(a.status || ' ' || a.stop_price, ', ' ORDER BY c) FROM (VALUES ('m1', 106),
          ('s1', 94)) v(c, stop), exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = v.c),
          stop_price => v.stop) a")
[ "$moved" = "pending 106, pending 94" ] || fail "restart: moving the stops on MMM: $moved"
mmm_stops() {
  psql_db -At -c "SELECT string_agg(o.client_id || ' ' || s.stop || ' #' || s.rank, ', ' ORDER BY s.side, s.rank)
                    FROM exchange._book_stops((SELECT instrument_id FROM exchange.instruments WHERE symbol = 'MMM')) s
                    JOIN exchange.orders o USING (order_no)"
}
[ "$(mmm_stops)" = "m2 106 #1, m1 106 #2, s1 94 #1" ] || fail "restart: the moved stops before the restart: $(mmm_stops)"
# LLL traded at 100 and has no pending stop order: its book is reloaded
# without its last trade price, which the first stop placed reads.
psql_db -At -c "SELECT exchange.create_instrument('LLL', 1, 1)" \
  -c "SELECT status FROM exchange.place_order('lk', 'LLL', 'sell', 'limit', 2, 100)" \
  -c "SELECT status FROM exchange.place_order('lt', 'LLL', 'buy', 'limit', 1, 100)" \
  -c "SELECT status FROM exchange.place_order('lq', 'LLL', 'buy', 'limit', 1, 90)" >/dev/null
# III (2026-12-07): pending stop-limit icebergs, i1 (buy stop 105, limit
# 106, 10 showing 2) and i2 (sell stop 95, limit 94, 6 showing 4, amended
# to 3, below its display), after a trade at 100. Reloaded with their
# display: triggered after the restart, i2 rests whole (3 of 3 shown, as an
# iceberg amended below its display does), i1 buys 2 at 106 and rests 8
# showing 2; the book and the rows' visible_lots show only the tip.
psql_db -At -c "SELECT exchange.create_instrument('III', 1, 1)" \
  -c "SELECT status FROM exchange.place_order('ik', 'III', 'sell', 'limit', 1, 100)" \
  -c "SELECT status FROM exchange.place_order('it', 'III', 'buy', 'limit', 1, 100)" \
  -c "SELECT status FROM exchange.place_order('i1', 'III', 'buy', 'limit', 10, 106, stop_price => 105,
                                             display_quantity => 2)" \
  -c "SELECT status FROM exchange.place_order('i2', 'III', 'sell', 'limit', 6, 94, stop_price => 95,
                                             display_quantity => 4)" \
  -c "SELECT status FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'i2'),
                                             quantity => 3)" >/dev/null
iii_rows() {
  psql_db -At -c "SELECT string_agg(client_id || ' ' || status || ' ' || remaining_lots || ' shown ' || visible_lots
                                    || ' of ' || display_lots, ', ' ORDER BY client_id)
                    FROM exchange.orders WHERE instrument = 'III' AND client_id IN ('i1', 'i2')"
}
iii_book() {
  psql_db -At -c "SELECT string_agg(side || ' ' || price || ' x ' || quantity || ' (' || order_count || ')', ', ')
                    FROM exchange.orderbook('III')"
}
[ "$(iii_rows)" = "i1 pending 10 shown 0 of 2, i2 pending 3 shown 0 of 4" ] ||
  fail "restart: the iceberg stops on III before the restart: $(iii_rows)"
[ -z "$(iii_book)" ] || fail "restart: the pending iceberg stops show in the book: $(iii_book)"
before=$(psql_db -At -c "SELECT symbol, o.* FROM exchange.instruments, exchange.orderbook(symbol, 1000) o")
stops_before=$(book_stops)
scripts/pg-cluster.sh stop "$dir"
scripts/pg-cluster.sh start "$dir" "$port"
after=$(psql_db -At -c "SELECT symbol, o.* FROM exchange.instruments, exchange.orderbook(symbol, 1000) o")
[ "$before" = "$after" ] || fail "restart: books differ"
[ -n "$after" ] || fail "restart: empty books"
[ "$stops_before" = "$(book_stops)" ] || fail "restart: pending stop orders or last trade prices differ"
[ -n "$stops_before" ] || fail "restart: no pending stop order to reload"
check_health restart
[ "$(mmm_stops)" = "m2 106 #1, m1 106 #2, s1 94 #1" ] || fail "restart: the moved stops after the restart: $(mmm_stops)"
psql_db -At -c "SELECT status FROM exchange.place_order('mk', 'MMM', 'sell', 'limit', 1, 105)" \
  -c "SELECT status FROM exchange.place_order('mk', 'MMM', 'sell', 'limit', 3, 106)" \
  -c "SELECT status FROM exchange.place_order('mt', 'MMM', 'buy', 'limit', 1, 105)" >/dev/null
[ "$(mmm_stops)" = "m2 106 #1, m1 106 #2, s1 94 #1" ] || fail "restart: a trade at m1's old stop changed the stops: $(mmm_stops)"
seq=$(psql_db -At -c "SELECT seq FROM exchange.place_order('mt', 'MMM', 'buy', 'limit', 1, 106)")
triggered=$(psql_db -At -c "SELECT string_agg(e.kind || ' ' || o.client_id || ' ' || o.status, ', ' ORDER BY e.seq)
              FROM exchange.events e JOIN exchange.orders o USING (order_id)
             WHERE e.instrument_id = o.instrument_id AND o.instrument = 'MMM' AND e.seq > $seq")
[ "$triggered" = "order_triggered m2 filled, order_triggered m1 filled" ] ||
  fail "restart: the trade at the moved stop's new stop triggered: $triggered"
[ "$(mmm_stops)" = "s1 94 #1" ] || fail "restart: the pending stops on MMM after the trigger: $(mmm_stops)"
check_health "restart, moved stops triggered"
lll=$(psql_db -At -c "SELECT string_agg(p.status || coalesce(' ' || p.reject_reason, ''), ', ' ORDER BY v.stop DESC)
        FROM (VALUES (100), (101)) v(stop),
             exchange.place_order('ls', 'LLL', 'buy', 'market', 1, stop_price => v.stop) p")
[ "$lll" = "pending, rejected stop_would_trigger" ] ||
  fail "restart: buy stops at 101 and 100 after a trade at 100 on a book reloaded without stops: $lll"
check_health "restart, the last trade price read when the first stop came"
[ "$(iii_rows)" = "i1 pending 10 shown 0 of 2, i2 pending 3 shown 0 of 4" ] ||
  fail "restart: the iceberg stops on III after the restart: $(iii_rows)"
psql_db -At -c "SELECT status FROM exchange.place_order('ic', 'III', 'buy', 'limit', 1, 95)" \
  -c "SELECT status FROM exchange.place_order('id', 'III', 'sell', 'limit', 1, 95)" >/dev/null
[ "$(iii_book)" = "sell 94 x 3 (1)" ] || fail "restart: i2 triggered after the restart: the book $(iii_book)"
[ "$(iii_rows)" = "i1 pending 10 shown 0 of 2, i2 open 3 shown 3 of 4" ] ||
  fail "restart: i2 triggered after the restart: $(iii_rows)"
psql_db -At -c "SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders
                                                           WHERE client_id = 'i2'))" \
  -c "SELECT status FROM exchange.place_order('ia', 'III', 'sell', 'limit', 1, 105)" \
  -c "SELECT status FROM exchange.place_order('ib', 'III', 'sell', 'limit', 2, 106)" \
  -c "SELECT status FROM exchange.place_order('iu', 'III', 'buy', 'limit', 1, 105)" >/dev/null
[ "$(iii_book)" = "buy 106 x 2 (1)" ] || fail "restart: i1 triggered after the restart: the book $(iii_book)"
[ "$(iii_rows)" = "i1 partially_filled 8 shown 2 of 2, i2 cancelled 0 shown 0 of 4" ] ||
  fail "restart: i1 triggered after the restart: $(iii_rows)"
triggered=$(psql_db -At -c "SELECT string_agg(o.client_id || ' display '
                                              || coalesce(e.payload->>'display_quantity', '-') || ' remaining '
                                              || (e.payload->>'remaining_quantity'), ', ' ORDER BY e.seq)
              FROM exchange.events e JOIN exchange.orders o USING (order_id)
             WHERE e.instrument_id = o.instrument_id AND o.instrument = 'III' AND e.kind = 'order_triggered'")
[ "$triggered" = "i2 display 4 remaining 3, i1 display 2 remaining 8" ] ||
  fail "restart: the iceberg stops' order_triggered entries: $triggered"
check_health "restart, iceberg stops triggered"
passed=$((passed + 1))

# 2. kill -9 the postmaster while three clients place orders on two
#    instruments, then while four place orders on one: there a writer nearly
#    always has another waiting for its instrument's lock, so it commits with
#    early lock release (extension/pg/books.cpp) and flushes its commit after
#    the locks. With exchange.notify off, so that the publisher (which
#    flushes before it announces) does not flush for them: an acknowledgement
#    sent before that flush can then be lost here (a build without it lost 2
#    in one of two runs; kill -9 loses only WAL not yet written to the
#    kernel, so the window is short).
crash_under_load() {
  local what=$1 clients=$2 only=$3 options=$4 c acked missing
  rm -f "$work"/ack*.txt
  for c in $(seq "$clients"); do
    order_script "$what$c" 3000 "$((c + 10))" "$only" > "$work/orders$c.sql"
    PGOPTIONS="$options" psql -X -q -At -d "$db" -f "$work/orders$c.sql" > "$work/ack$c.txt" 2>/dev/null &
  done
  sleep 2
  scripts/pg-cluster.sh crash "$dir"
  wait || true
  scripts/pg-cluster.sh start "$dir" "$port"
  acked=$(cat "$work"/ack*.txt | grep -cE '^[0-9a-f-]{36}$' || true)
  [ "$acked" -gt 0 ] || fail "postmaster crash ($what): no order was acknowledged before the crash"
  missing=$(cat "$work"/ack*.txt | grep -E '^[0-9a-f-]{36}$' | psql_db -At -c "CREATE TEMP TABLE ack (id uuid)" \
              -c "COPY ack FROM STDIN" -c "SELECT count(*) FROM ack WHERE id NOT IN (SELECT order_id FROM exchange.orders)")
  [ "$missing" = 0 ] || fail "postmaster crash ($what): $missing acknowledged orders lost"
  check_health "postmaster crash ($what)"
  echo "postmaster crash under load ($what): $acked orders acknowledged, 0 lost, $(psql_db -At -c "SELECT count(*)
        FROM exchange.orders WHERE status = 'pending'") stop orders pending and $(psql_db -At -c "SELECT count(*)
        FROM exchange.events WHERE kind = 'order_triggered'") triggered"
}
crash_under_load "two instruments, 3 clients, client" 3 "" ""
crash_under_load "one instrument, 4 clients, notify off, one" 4 AAA "-c exchange.notify=off"
passed=$((passed + 1))

# 3. kill -9 a backend that holds an instrument lock mid-transaction, with
#    another session waiting for the lock.
psql_db -c "BEGIN" -c "SELECT exchange.place_order('victim', 'AAA', 'buy', 'limit', 7, 1)" \
        -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleep 1
psql_db -At -c "SELECT order_id FROM exchange.place_order('waiter', 'AAA', 'sell', 'limit', 1, 500)" >/dev/null 2>&1 &
sleep 1
victim=$(psql_db -At -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
[ -n "$victim" ] || fail "backend crash: no victim backend found"
kill -9 "$victim"
wait || true
for _ in $(seq 100); do psql_db -At -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
[ "$(psql_db -At -c "SELECT count(*) FROM exchange.orders WHERE client_id = 'victim'")" = 0 ] ||
  fail "backend crash: the uncommitted order survived"
check_health "backend crash"
psql_db -At -c "SELECT status FROM exchange.place_order('after', 'AAA', 'buy', 'limit', 1, 1)" | grep -q open ||
  fail "backend crash: trading did not resume"
check_health "after backend crash"
passed=$((passed + 1))

# 4. Backup and restore with pg_dump/pg_restore into another database: every
#    row, the books, the API keys and the settled and pruned dates come back (reconciled), and trading
#    continues the journal and the sequences where they stopped.
key=$(psql_db -At -c "SELECT api_key FROM exchange.create_api_key('backup-client')")
psql_db -c "SELECT exchange.snapshot('AAA')" >/dev/null
# A settled trade date (0.16): trades on SETL stamped 2021-01-04 (the columns' defaults), settled.
psql_db -At >/dev/null <<'SQL'
SELECT exchange.create_instrument('SETL', 1, 1);
ALTER TABLE exchange.events ALTER created_at SET DEFAULT '2021-01-04 12:00+00';
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT '2021-01-04 12:00+00';
SELECT exchange.place_order('s1', 'SETL', 'sell', 'limit', 5, 10);
SELECT exchange.place_order('s2', 'SETL', 'buy', 'limit', 3, 11);
ALTER TABLE exchange.events ALTER created_at SET DEFAULT now();
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT now();
SELECT exchange.settle('2021-01-04');
SELECT exchange.prune('2021-01-04');
SQL
[ "$(psql_db -At -c "SELECT count(*) FROM exchange.settlements")" = 2 ] || fail "restore: the date was not settled"
# Pruned (0.17): entry 1 and s2's filled order go; entry 2 (the newest, with the last trade) and s1's
# resting order with its trade stay.
[ "$(psql_db -At -c "SELECT entries || ' ' || trades || ' ' || orders FROM exchange.prunes")" = "1 0 1" ] ||
  fail "restore: the date was not pruned"
digest() {  # every table's rows, the books and the next journal seq per instrument
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" \
    -c "SELECT 'orders', count(*), md5(string_agg(o::text, ',' ORDER BY order_no)) FROM exchange.orders o" \
    -c "SELECT 'trades', count(*), md5(string_agg(t::text, ',' ORDER BY trade_no)) FROM exchange.trades t" \
    -c "SELECT 'events', count(*), md5(string_agg(e::text, ',' ORDER BY instrument_id, seq)) FROM exchange.events e" \
    -c "SELECT 'keys', md5(string_agg(k::text, ',' ORDER BY key_id)) FROM exchange.api_keys k" \
    -c "SELECT 'settled', (SELECT md5(string_agg(r::text, ',' ORDER BY through)) FROM exchange.settlement_runs r),
               (SELECT md5(string_agg(d::text, ',' ORDER BY instrument_id, trade_date)) FROM exchange.settlement_days d),
               (SELECT md5(string_agg(s::text, ',' ORDER BY trade_date, client_id, instrument_id))
                  FROM exchange.settlements s),
               (SELECT md5(string_agg(p::text, ',' ORDER BY instrument_id, through)) FROM exchange.prunes p)" \
    -c "SELECT 'misc', (SELECT md5(string_agg(c::text, ',' ORDER BY client_no)) FROM exchange.clients c),
               (SELECT count(*) FROM exchange.orderbook_snapshots), (SELECT count(*) FROM exchange.instruments)" \
    -c "SELECT symbol, o.* FROM exchange.instruments, exchange.orderbook(symbol, 1000) o" \
    -c "SELECT symbol, s.seq FROM exchange.stats() s JOIN exchange.instruments i ON i.symbol = s.instrument"
}
before=$(digest "$db")
pg_dump -Fc -d "$db" -f "$work/backup.dump"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS restore_test" -c "CREATE DATABASE restore_test"
pg_restore --exit-on-error -d restore_test "$work/backup.dump"
after=$(digest restore_test)
[ "$before" = "$after" ] || fail "restore: the restored database differs: $(diff <(echo "$before") <(echo "$after"))"
db=restore_test check_health "restore"
[ "$(psql -X -At -d restore_test -c "SELECT exchange.authenticate('$key')")" = backup-client ] ||
  fail "restore: the API key does not work"
[ "$(psql -X -At -d restore_test -c "SELECT count(*) FROM exchange.reconcile()")" = 0 ] ||
  fail "restore: reconcile of the restored settlement"
next_seq=$(psql -X -At -d restore_test -c "SELECT coalesce(max(seq), 0) + 1 FROM exchange.events e
                                          JOIN exchange.instruments i USING (instrument_id) WHERE symbol = 'AAA'")
got=$(psql -X -At -d restore_test -c "SELECT seq FROM exchange.place_order('restored', 'AAA', 'buy', 'limit', 1, 2)")
[ "$got" = "$next_seq" ] || fail "restore: the journal went on at $got, not $next_seq"
got=$(psql -X -At -d restore_test -c "SELECT seq FROM exchange.place_order('restored', 'SETL', 'buy', 'limit', 1, 10)")
[ "$got" = 3 ] || fail "restore: the pruned journal of SETL went on at $got, not 3"
db=restore_test check_health "after restore"
psql -X -q -d postgres -c "DROP DATABASE restore_test"
echo "backup and restore: $(echo "$before" | head -1 | cut -d'|' -f2) orders, identical after pg_restore"
passed=$((passed + 1))

# 5. Without shared_preload_libraries the library refuses to load, clearly.
bare=$dir-bare
scripts/pg-cluster.sh stop "$bare"
rm -rf "$bare"
scripts/pg-cluster.sh start "$bare" "$((port + 1))" "shared_preload_libraries = ''"
msg=$(psql -X -q -p "$((port + 1))" -d postgres -c "CREATE EXTENSION exchange" 2>&1 || true)
scripts/pg-cluster.sh stop "$bare"
rm -rf "$bare"
echo "$msg" | grep -q "exchange must be loaded via shared_preload_libraries" ||
  fail "not preloaded: unexpected answer: $msg"
passed=$((passed + 1))

echo "$passed passed, 0 failed"
