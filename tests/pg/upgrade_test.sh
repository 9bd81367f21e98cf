#!/usr/bin/env bash
# ALTER EXTENSION exchange UPDATE from 0.1 (the base script) to the current
# version keeps the data and ends with the current API: a database created
# at 0.1 and holding an order is updated, then the order is still there, the
# new result column answers and idempotent replays (which read an order
# back as exchange.order_result) work, and so do 0.3's cancel_order and
# amend_order in C, 0.4's partial idempotency index, 0.5's amend_orders,
# 0.6's append-only clients table, 0.7's trigger on instruments, 0.8's
# journal view, 0.9's cancel_orders with a client per id, 0.10's kept
# history (the journal and the trades append-only, no order deleted), 0.11's candles,
# book at a sequence and paging, 0.12's icebergs, 0.13's stop orders and
# 0.14's amend of a pending stop's stop price (amend_order with one
# signature, the 5-argument one);
# and a database at 0.12 whose book was loaded before its update to 0.13
# (the server runs the new library first) keeps the last trade price that
# stop orders are checked against, then, holding pending stops loaded in
# memory at 0.13, is updated to 0.14 and moves one of them, then to 0.15,
# whose verify compares a pending stop's display quantity, then to 0.16, which
# settles the trades made at 0.15, then to 0.17, which prunes them, then to
# 0.18, whose TWAP trades on the book loaded at 0.17, then to 0.19, whose
# run_twaps_each runs a TWAP placed at 0.18. Runs against
# the cluster of scripts/test-pg.sh (PGHOST/PGPORT/PGUSER from there); the
# databases are dropped at the end.
set -euo pipefail
db=exchange_upgrade
db12=exchange_upgrade12
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS $db12" >/dev/null 2>&1 || true' EXIT
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
fail() { echo "upgrade: $*" >&2; exit 1; }

q "CREATE EXTENSION exchange VERSION '0.1'" >/dev/null
q "SELECT symbol FROM exchange.create_instrument('UP-USD', 0.01, 0.0001)" >/dev/null
before=$(q "SELECT order_id FROM exchange.place_order('u1', 'UP-USD', 'buy', 'limit', 1, 10, idempotency_key => 'k1')")
[ "$(q "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.1 ] || fail "not created at 0.1"

q "ALTER EXTENSION exchange UPDATE" >/dev/null
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$(dirname "$0")/../../sql/exchange.control")
[ "$(q "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = "$current" ] ||
  fail "not updated to $current"
[ "$(q "SELECT count(*) FROM exchange.orders WHERE order_id = '$before' AND status = 'open'")" = 1 ] ||
  fail "the order placed at 0.1 is gone"
[ "$(q "SELECT count(*) FROM exchange.verify('UP-USD')")" = 0 ] || fail "verify found differences"
replay=$(q "SELECT order_id || ' ' || (seq IS NULL) FROM exchange.place_order('u1', 'UP-USD', 'buy', 'limit', 1, 10, idempotency_key => 'k1')")
[ "$replay" = "$before true" ] || fail "idempotent replay after the update: '$replay'"
message=$(q "SELECT reject_message FROM exchange.place_orders('[{\"client_id\": \"u2\", \"instrument\": \"UP-USD\",
  \"side\": \"buy\", \"type\": \"limit\", \"quantity\": 1, \"price\": \"10.001\"}]')")
[ "$message" = "price 10.001 is not a multiple of 0.01" ] || fail "reject_message after the update: '$message'"
# 0.3: cancel_order, amend_order (and the new cancel_orders; 0.5's amend_orders) are C functions, SECURITY
# DEFINER with their search_path and still granted to traders; they amend
# and then cancel the order placed at 0.1.
for f in "cancel_order(uuid, text)" "amend_order(uuid, numeric, numeric, text, numeric)" "cancel_orders(uuid[], text)" \
  "amend_orders(jsonb)" "cancel_orders(uuid[], text[])"; do
  [ "$(q "SELECT l.lanname || ' ' || p.prosecdef || ' ' || array_to_string(p.proconfig, ',')
           || ' ' || has_function_privilege('exchange_trader', p.oid, 'EXECUTE')
           FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'exchange.$f'::regprocedure")" \
    = "c true search_path=exchange, pg_catalog, pg_temp true" ] || fail "$f after the update is not the C one as granted"
done
for f in "cancel_orders(uuid[], text)" "amend_orders(jsonb)" "cancel_orders(uuid[], text[])" \
  "amend_order(uuid, numeric, numeric, text, numeric)"; do
  [ "$(q "SELECT has_function_privilege('exchange_auditor', 'exchange.$f', 'EXECUTE')")" = f ] ||
    fail "$f is executable beyond exchange_trader"
done
# 0.5: amend_orders amends the order placed at 0.1 (then amend_order and cancel_order below).
[ "$(q "SELECT status || ' ' || quantity FROM exchange.amend_orders('[{\"order_id\": \"$before\", \"quantity\": 3, \"client_id\": \"u1\"}]')")" \
  = "open 3.0000" ] || fail "amend_orders of the order placed at 0.1"
[ "$(q "SELECT status || ' ' || quantity FROM exchange.amend_order('$before', 2, client_id => 'u1')")" = "open 2.0000" ] ||
  fail "amend_order of the order placed at 0.1"
[ "$(q "SELECT status || ' ' || remaining_quantity FROM exchange.cancel_order('$before', 'u1')")" = "cancelled 0.0000" ] ||
  fail "cancel_order of the order placed at 0.1"
[ "$(q "SELECT count(*) FROM exchange.verify('UP-USD')") $(q "SELECT kind FROM exchange.events ORDER BY seq DESC LIMIT 1")" \
  = "0 order_cancelled" ] || fail "the book or the journal after the cancel"
# 0.4: the idempotency keys' unique index holds only the orders with a key;
# the 0.1 constraint is gone, a repeated key is still refused by it.
[ "$(q "SELECT indexdef FROM pg_indexes WHERE schemaname = 'exchange' AND indexname = 'orders_client_idempotency_key'")" \
  = "CREATE UNIQUE INDEX orders_client_idempotency_key ON exchange.orders USING btree (client_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)" ] ||
  fail "the partial idempotency index after the update"
[ "$(q "SELECT count(*) FROM pg_constraint WHERE conrelid = 'exchange.orders'::regclass AND contype = 'u' AND conname LIKE '%idempotency%'")" = 0 ] ||
  fail "the 0.1 idempotency constraint is still there"
dup=$(psql -X -At -d "$db" -c "INSERT INTO exchange.orders SELECT (jsonb_populate_record(o, jsonb_build_object('order_id', gen_random_uuid(),
  'order_no', o.order_no + 1000000))).* FROM exchange.orders o WHERE order_id = '$before'" 2>&1 || true)
case "$dup" in *orders_client_idempotency_key*) ;; *) fail "a repeated idempotency key was not refused by the index: $dup" ;; esac
# 0.6: exchange.clients is append-only; the client of the order placed at 0.1 keeps its row and number.
for op in "UPDATE exchange.clients SET client_no = client_no + 1000" "DELETE FROM exchange.clients" \
  "TRUNCATE exchange.clients"; do
  out=$(psql -X -At -d "$db" -c "$op" 2>&1 || true)
  case "$out" in *clients_append_only*) ;; *) fail "'$op' after the update was not refused: $out" ;; esac
done
[ "$(q "SELECT count(*) FROM exchange.clients c JOIN exchange.orders o USING (client_id, client_no) WHERE o.order_id = '$before'")" = 1 ] ||
  fail "the client of the order placed at 0.1 lost its row or number"
# 0.7: every change of exchange.instruments reaches the backends' kept
# instruments through the trigger instruments_changed, enabled in every
# session_replication_role.
[ "$(q "SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'exchange.instruments'::regclass AND tgname = 'instruments_changed'")" = A ] ||
  fail "the trigger instruments_changed is missing or not ENABLE ALWAYS after the update"
# 0.8: the journal view has the entries of the order above (placed at 0.1,
# amended twice and cancelled after the update), readable by the traders.
[ "$(q "SELECT string_agg(kind || ' ' || coalesce(side, payload->>'side'), ', ' ORDER BY seq) FROM exchange.journal_entries
        WHERE order_id = '$before'")" = "order_placed buy, order_amended buy, order_amended buy, order_cancelled buy" ] ||
  fail "the journal view after the update"
[ "$(q "SELECT has_table_privilege('exchange_trader', 'exchange.journal_entries', 'SELECT')")" = t ] ||
  fail "the journal view is not readable by exchange_trader"
# 0.9: cancel_orders with a client per id refuses another client's id and cancels the owner's.
o2=$(q "SELECT order_id FROM exchange.place_order('u3', 'UP-USD', 'buy', 'limit', 1, 9)")
[ "$(q "SELECT string_agg(coalesce(r.reject_reason, r.status), ' ' ORDER BY r.ordinality)
        FROM exchange.cancel_orders(ARRAY['$o2', '$o2']::uuid[], ARRAY['u1', 'u3']) WITH ORDINALITY AS r")" \
  = "not_order_owner cancelled" ] ||
  fail "cancel_orders with a client per id after the update"
# 0.10: the journal and the trades refuse UPDATE, DELETE and TRUNCATE, the orders DELETE and TRUNCATE,
# also under session_replication_role = replica; trading still writes all three (a trade first), and
# what was written stays.
[ "$(q "SELECT status FROM exchange.place_order('u5', 'UP-USD', 'buy', 'limit', 1, 9)") $(q "SELECT status FROM
        exchange.place_order('u4', 'UP-USD', 'sell', 'limit', 1, 9)") $(q "SELECT count(*) FROM exchange.trades")" \
  = "open filled 1" ] || fail "an order that trades after the update"
for op in "UPDATE exchange.events SET payload = '{}'" "DELETE FROM exchange.events" "TRUNCATE exchange.events" \
  "UPDATE exchange.trades SET price = 0" "DELETE FROM exchange.trades" "TRUNCATE exchange.trades" \
  "DELETE FROM exchange.orders WHERE order_id = '$before'" "TRUNCATE exchange.orders" \
  "SET session_replication_role = replica; DELETE FROM exchange.events"; do
  out=$(psql -X -At -d "$db" -c "$op" 2>&1 || true)
  case "$out" in *events_append_only* | *trades_append_only* | *orders_kept*) ;;
    *) fail "'$op' after the update was not refused: $out" ;; esac
done
[ "$(q "SELECT count(*) FROM exchange.journal_entries WHERE order_id = '$before'") $(q "SELECT count(*) FROM exchange.orders
        WHERE order_id = '$before'") $(q "SELECT count(*) || ' ' || min(price) FROM exchange.trades")" = "4 1 1 9.00" ] ||
  fail "the journal entries or the row of the order placed at 0.1, or the trade, changed"
[ "$(q "SELECT count(*) FROM exchange.verify('UP-USD')")" = 0 ] || fail "verify after the refusals"
# 0.11: candles from the trades, the one made above included.
[ "$(q "SELECT trade_count || ' ' || close || ' ' || volume FROM exchange.candles('UP-USD', '7 days')")" = "1 9.00 1.0000" ] ||
  fail "candles after the update"
# 0.11: the book rebuilt from the journal, whose first entry 0.1 wrote, after each entry (the order
# placed at 0.1, its two amends and cancel, then the orders of 0.9 and 0.10), and at the end the book.
[ "$(q "SELECT string_agg(coalesce((SELECT string_agg(side || ' ' || price || ' ' || quantity, ',')
        FROM exchange.orderbook_at('UP-USD', s)), '-'), ' ' ORDER BY s) FROM generate_series(0, 8) s")" \
  = "- buy 10.00 1.0000 buy 10.00 3.0000 buy 10.00 2.0000 - buy 9.00 1.0000 - buy 9.00 1.0000 -" ] ||
  fail "orderbook_at after the update: the books from the journal"
[ "$(q "SELECT count(*) FROM exchange.orderbook('UP-USD') FULL JOIN exchange.orderbook_at('UP-USD') USING (side, price,
        quantity, order_count)") $(q "SELECT max(seq) FROM exchange.events")" = "0 8" ] ||
  fail "orderbook_at after the update: the book now"
# 0.11: a client's orders through the new index (the one placed at 0.1 among them) and paging on.
[ "$(q "SELECT string_agg(order_id::text, ' ') FROM exchange.list_orders('u1', 'cancelled')")" = "$before" ] ||
  fail "list_orders after the update"
[ "$(q "SELECT count(*) FROM exchange.list_orders('u1', 'cancelled', 10, '$before')") $(q "SELECT count(*) FROM
        exchange.recent_trades('UP-USD', 10, (SELECT trade_id FROM exchange.trades))")" = "0 0" ] ||
  fail "paging after the update"
# 0.12: an iceberg shows its tip, answers with its display (so does a replay, through get_order), and a
# rebuild gives the same book.
ice=$(q "SELECT order_id || ' ' || display_quantity FROM exchange.place_order('u3', 'UP-USD', 'sell', 'limit', 5, 11,
          idempotency_key => 'ice', display_quantity => 2)")
[ "${ice#* }" = "2.0000" ] || fail "an iceberg after the update: '$ice'"
[ "$(q "SELECT order_id || ' ' || display_quantity FROM exchange.place_order('u3', 'UP-USD', 'sell', 'limit', 5, 11,
       idempotency_key => 'ice', display_quantity => 2)")" = "$ice" ] || fail "the iceberg's replay"
tip=$(q "SELECT quantity FROM exchange.orderbook('UP-USD') WHERE side = 'sell'")
[ "$tip $(q "SELECT exchange.rebuild('UP-USD')") $(q "SELECT count(*) FROM exchange.verify('UP-USD')")" = "2.0000 1 0" ] ||
  fail "the iceberg's tip in the book (2 of 5), or the book rebuilt with it alone resting"
# 0.13: a stop order waits (pending, outside the book, listed among the client's open orders), answers
# with its stop price (so does a replay), a stop the last trade (at 9) already reached is rejected, and a
# trade at 10 triggers it: its own journal entry 'order_triggered' right after the trade's, its trade
# with the iceberg's tip at 11, its row filled; verify and a rebuild find the book and the tables equal.
stop=$(q "SELECT order_id || ' ' || status || ' ' || stop_price FROM exchange.place_order('u6', 'UP-USD', 'buy', 'limit', 1,
          11, idempotency_key => 'stop', stop_price => 10)")
[ "${stop#* }" = "pending 10.00" ] || fail "a stop order after the update: '$stop'"
[ "$(q "SELECT order_id || ' ' || status || ' ' || stop_price FROM exchange.place_order('u6', 'UP-USD', 'buy', 'limit', 1,
       11, idempotency_key => 'stop', stop_price => 10)")" = "$stop" ] || fail "the stop order's replay"
[ "$(q "SELECT status || ' ' || stop_price FROM exchange.list_orders('u6', 'pending')") $(q "SELECT count(*) FROM
        exchange.orderbook('UP-USD') WHERE side = 'buy'") $(q "SELECT count(*) FROM exchange.verify('UP-USD')")" \
  = "pending 10.00 0 0" ] || fail "the pending stop order in list_orders, outside the book, or verify"
[ "$(q "SELECT status || ' ' || reject_reason FROM exchange.place_order('u6', 'UP-USD', 'buy', 'market', 1,
        stop_price => 9)")" = "rejected stop_would_trigger" ] || fail "a stop the last trade reached after the update"
q "SELECT status FROM exchange.place_order('u7', 'UP-USD', 'sell', 'limit', 1, 10)" >/dev/null
trigger_seq=$(q "SELECT seq FROM exchange.place_order('u8', 'UP-USD', 'buy', 'limit', 1, 10)")
[ "$(q "SELECT string_agg(e.seq - $trigger_seq || ' ' || e.kind || ' ' || o.client_id, ', ' ORDER BY e.seq)
        FROM exchange.events e JOIN exchange.orders o USING (order_id) WHERE e.seq >= $trigger_seq")" \
  = "0 order_placed u8, 1 order_triggered u6" ] || fail "the journal of the trade that triggers the stop order"
[ "$(q "SELECT status || ' ' || filled_quantity || ' ' || stop_price FROM exchange.get_order('${stop%% *}')") $(q "SELECT
        count(*) || ' ' || min(price) FROM exchange.trades WHERE buy_order_id = '${stop%% *}'")" = "filled 1.0000 10.00 1 11.00" ] ||
  fail "the triggered stop order's row or trade"
[ "$(q "SELECT count(*) FROM exchange.verify('UP-USD')") $(q "SELECT exchange.rebuild('UP-USD')") $(q "SELECT
        count(*) FROM exchange.verify('UP-USD')")" = "0 1 0" ] ||
  fail "verify after the stop order triggered, or the book rebuilt (the iceberg alone resting)"
# 0.14: amend_order has one signature, the one with stop_price (0.13's 4-argument one is dropped), which
# moves a pending stop order: u10's stop 12 -> 13 puts it behind u9's (placed after it) in the book and
# in the rows, and verify finds them equal.
[ "$(q "SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p WHERE p.proname = 'amend_order'
        AND p.pronamespace = 'exchange'::regnamespace")" = "exchange.amend_order(uuid,numeric,numeric,text,numeric)" ] ||
  fail "amend_order after the update is not the one 5-argument function"
s10=$(q "SELECT order_id FROM exchange.place_order('u10', 'UP-USD', 'buy', 'market', 1, stop_price => 12)")
q "SELECT status FROM exchange.place_order('u9', 'UP-USD', 'buy', 'market', 1, stop_price => 13)" >/dev/null
[ "$(q "SELECT status || ' ' || stop_price FROM exchange.amend_order('$s10', stop_price => 13, client_id => 'u10')")" \
  = "pending 13.00" ] || fail "amend_order moving a stop price after the update"
[ "$(q "SELECT string_agg(client_id || ' ' || stop_price, ', ' ORDER BY priority) FROM exchange.orders
        WHERE status = 'pending'") | $(q "SELECT string_agg(o.client_id || ' ' || s.stop, ', ' ORDER BY s.rank)
        FROM exchange._book_stops((SELECT instrument_id FROM exchange.instruments WHERE symbol = 'UP-USD')) s
        JOIN exchange.orders o USING (order_no)") | $(q "SELECT count(*) FROM exchange.verify('UP-USD')")" \
  = "u9 13.00, u10 13.00 | u9 1300, u10 1300 | 0" ] || fail "the moved stop order in the rows, the book, or verify"
echo "upgrade: 0.1 -> $current keeps the order placed at 0.1; replays, reject_message, the C amend_order, amend_orders and cancel_order, the partial idempotency index, the append-only clients table, the instruments' change trigger, the journal view, cancel_orders with a client per id, the kept history, candles, the book at a sequence, paging, icebergs, stop orders and moving a stop price work"

# 0.12 -> 0.13 with the book already in shared memory: the new library runs
# first (a restart), trading at 0.12 loads the book (a trade at 10, then a
# rebuild as the first use after a restart does), then the update. The book
# must know the last trade price: verify finds nothing, and a stop order
# the trade at 10 already reached is rejected (stop_would_trigger).
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db12" -c "CREATE DATABASE $db12"
q12() { psql -X -At -v ON_ERROR_STOP=1 -d "$db12" -c "$1"; }
q12 "CREATE EXTENSION exchange VERSION '0.12'" >/dev/null
q12 "SELECT symbol FROM exchange.create_instrument('UP12-USD', 1, 1)" >/dev/null
q12 "SELECT status FROM exchange.place_order('v1', 'UP12-USD', 'sell', 'limit', 2, 10)" >/dev/null
[ "$(q12 "SELECT status FROM exchange.place_order('v2', 'UP12-USD', 'buy', 'limit', 1, 10)") $(q12 "SELECT
        exchange.rebuild('UP12-USD')")" = "filled 1" ] || fail "trading at 0.12"
q12 "ALTER EXTENSION exchange UPDATE TO '0.13'" >/dev/null
problems=$(q12 "SELECT string_agg(problem, '; ') FROM exchange.verify('UP12-USD')")
[ -z "$problems" ] || fail "verify after 0.12 -> 0.13 with the book loaded at 0.12: $problems"
[ "$(q12 "SELECT status || ' ' || coalesce(reject_reason, '-') FROM exchange.place_order('v3', 'UP12-USD', 'buy',
        'market', 1, stop_price => 5)")" = "rejected stop_would_trigger" ] ||
  fail "a stop order that the trade at 0.12 already reached was not rejected after the update"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')")" = 0 ] || fail "verify after the stop order"
echo "upgrade: 0.12 -> 0.13 with the book loaded at 0.12 keeps its last trade price"

# 0.13 -> 0.14 with pending stop orders in the book in shared memory: placed
# at 0.13 (v4's at stop 12, then v5's at 13) and reloaded by a rebuild,
# the update, then v4's stop moves to 13: behind v5 in the book
# (_book_stops) and the rows, verify finds nothing; a move to a stop the
# trade at 10 already reached is refused (stop_would_trigger); trades at 10
# (v1's ask left from 0.12) and 12, v4's old stop, trigger nothing, one at
# 13 triggers v5 then v4. amend_order has the one signature, which
# exchange_trader may execute (and only it).
inst12=$(q12 "SELECT instrument_id FROM exchange.instruments WHERE symbol = 'UP12-USD'")
s4=$(q12 "SELECT order_id FROM exchange.place_order('v4', 'UP12-USD', 'buy', 'market', 1, stop_price => 12)")
q12 "SELECT status FROM exchange.place_order('v5', 'UP12-USD', 'buy', 'market', 1, stop_price => 13)" >/dev/null
[ "$(q12 "SELECT exchange.rebuild('UP12-USD')")" = 1 ] || fail "the rebuild at 0.13"
[ "$(q12 "SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p WHERE p.proname = 'amend_order'
        AND p.pronamespace = 'exchange'::regnamespace") $(q12 "SELECT string_agg(stop || ':' || rank, ' ' ORDER BY rank)
        FROM exchange._book_stops($inst12)")" = "exchange.amend_order(uuid,numeric,numeric,text) 12:1 13:2" ] ||
  fail "at 0.13 before the update: amend_order's signature or the pending stops in the book"
# stats() at 0.13 has its nine columns (the new library fills what the function declares), at 0.14
# also the pending stop orders and their stop prices.
[ "$(q12 "SELECT array_length(proargnames, 1) FROM pg_proc WHERE oid = 'exchange.stats'::regproc") $(q12 "SELECT
        loaded || ' ' || resting_orders FROM exchange.stats() WHERE instrument = 'UP12-USD'")" = "9 true 1" ] ||
  fail "stats() at 0.13 with the new library"
q12 "ALTER EXTENSION exchange UPDATE TO '0.14'" >/dev/null
[ "$(q12 "SELECT resting_orders || ' ' || pending_stops || ' ' || stop_levels FROM exchange.stats()
        WHERE instrument = 'UP12-USD'")" = "1 2 2" ] || fail "stats()' pending stops after 0.13 -> 0.14"
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.14 ] || fail "not updated to 0.14"
[ "$(q12 "SELECT string_agg(p.oid::regprocedure::text || ' ' || p.prosecdef || ' ' || array_to_string(p.proconfig, ',')
        || ' ' || has_function_privilege('exchange_trader', p.oid, 'EXECUTE') || ' '
        || has_function_privilege('exchange_auditor', p.oid, 'EXECUTE'), '; ')
        FROM pg_proc p WHERE p.proname = 'amend_order' AND p.pronamespace = 'exchange'::regnamespace")" \
  = "exchange.amend_order(uuid,numeric,numeric,text,numeric) true search_path=exchange, pg_catalog, pg_temp true false" ] ||
  fail "amend_order after 0.13 -> 0.14 is not the one 5-argument function, SECURITY DEFINER, executable by exchange_trader alone"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')")" = 0 ] || fail "verify after 0.13 -> 0.14"
[ "$(q12 "SELECT status || ' ' || stop_price FROM exchange.amend_order('$s4', stop_price => 13, client_id => 'v4')")" \
  = "pending 13" ] || fail "amend_order moving the stop placed at 0.13 after the update"
[ "$(q12 "SELECT string_agg(o.client_id || ' ' || s.stop || ':' || s.rank, ' ' ORDER BY s.rank) FROM
        exchange._book_stops($inst12) s JOIN exchange.orders o USING (order_no)") $(q12 "SELECT string_agg(client_id || ' '
        || stop_ticks, ' ' ORDER BY priority) FROM exchange.orders WHERE status = 'pending'") $(q12 "SELECT kind || ' '
        || (payload->>'stop_price') || ' ' || (payload->>'priority_kept') FROM exchange.events ORDER BY seq DESC LIMIT 1")" \
  = "v5 13:1 v4 13:2 v5 13 v4 13 order_amended 13 false" ] ||
  fail "the moved stop in the book, the rows or the journal after 0.13 -> 0.14"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')") $(q12 "SELECT pending_stops || ' ' || stop_levels
        FROM exchange.stats() WHERE instrument = 'UP12-USD'")" = "0 2 1" ] || fail "verify or stats() after the move"
moved=$(psql -X -At -d "$db12" -c "SELECT exchange.amend_order('$s4', stop_price => 10)" 2>&1 || true)
case "$moved" in *stop_would_trigger*) ;; *) fail "a move to a stop the last trade reached after 0.13 -> 0.14: $moved" ;; esac
q12 "SELECT status FROM exchange.place_order('v6', 'UP12-USD', 'sell', 'limit', 1, 12)" >/dev/null
q12 "SELECT status FROM exchange.place_order('v6', 'UP12-USD', 'sell', 'limit', 5, 13)" >/dev/null
[ "$(q12 "SELECT (SELECT string_agg(t->>'price', ' ') FROM jsonb_array_elements(r.trades) t) FROM
        exchange.place_order('v7', 'UP12-USD', 'buy', 'limit', 2, 12) r")" = "10 12" ] ||
  fail "the trades at 10 and 12 after 0.13 -> 0.14"
[ "$(q12 "SELECT count(*) FROM exchange.events WHERE kind = 'order_triggered'") $(q12 "SELECT count(*) FROM
        exchange._book_stops($inst12)")" = "0 2" ] || fail "a trade at the moved stop's old stop price triggered it"
trigger_seq=$(q12 "SELECT seq FROM exchange.place_order('v7', 'UP12-USD', 'buy', 'limit', 1, 13)")
[ "$(q12 "SELECT string_agg(e.kind || ' ' || o.client_id || ' ' || o.status, ', ' ORDER BY e.seq) FROM exchange.events e
        JOIN exchange.orders o USING (order_id) WHERE e.seq > $trigger_seq") $(q12 "SELECT count(*) FROM
        exchange.verify('UP12-USD')")" = "order_triggered v5 filled, order_triggered v4 filled 0" ] ||
  fail "a trade at the new stop price after 0.13 -> 0.14: the triggered stops, or verify"
echo "upgrade: 0.13 -> 0.14 with pending stops loaded at 0.13 moves one (amend_order with stop_price, one signature)"

# 0.14 -> 0.15: verify compares a pending stop order's display quantity (the
# library accepts a stop-limit iceberg at 0.14 already; a row whose
# display_lots disagrees with the book is not seen by 0.14's verify, and is
# by 0.15's), and reads the journal's last trade price only for a book that
# has read it: UP12-USD, rebuilt without pending stops, has none to compare
# (_book_last_price_read NULL) until a stop order is placed.
ice=$(q12 "SELECT order_id FROM exchange.place_order('v8', 'UP12-USD', 'buy', 'limit', 10, 20, stop_price => 20,
        display_quantity => 2)")
[ "$(q12 "SELECT status || ' ' || display_lots || ' ' || visible_lots FROM exchange.orders WHERE order_id = '$ice'")" \
  = "pending 2 0" ] || fail "a stop-limit iceberg at 0.14"
q12 "UPDATE exchange.orders SET display_lots = 3 WHERE order_id = '$ice'" >/dev/null
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')")" = 0 ] || fail "0.14's verify compared the display"
q12 "ALTER EXTENSION exchange UPDATE TO '0.15'" >/dev/null
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.15 ] || fail "not updated to 0.15"
case "$(q12 "SELECT string_agg(problem, '; ') FROM exchange.verify('UP12-USD')")" in
  "stop order_no "*" differs: book side 0 stop 20 price 20 qty 10 display 2, table side 0 stop 20 price 20 qty 10 display 3") ;;
  *) fail "0.15's verify did not report the display differing: $(q12 "SELECT string_agg(problem, '; ')
       FROM exchange.verify('UP12-USD')")" ;;
esac
q12 "UPDATE exchange.orders SET display_lots = 2 WHERE order_id = '$ice'" >/dev/null
q12 "SELECT status FROM exchange.cancel_order('$ice')" >/dev/null
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')") $(q12 "SELECT count(*) FROM exchange.orders
        WHERE instrument = 'UP12-USD' AND status = 'pending'")" = "0 0" ] || fail "verify at 0.15, or a stop left pending"
[ "$(q12 "SELECT exchange.rebuild('UP12-USD') >= 0") $(q12 "SELECT coalesce(exchange._book_last_price_read($inst12)::text,
        'null') || ' ' || exchange._book_last_price($inst12)")" = "t null 13" ] ||
  fail "a book rebuilt without pending stops: its last trade price read (NULL) or the journal's (13)"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')")" = 0 ] || fail "verify of a book that has not read its last price"
[ "$(q12 "SELECT status || ' ' || coalesce(reject_reason, '-') FROM exchange.place_order('v9', 'UP12-USD', 'buy',
        'market', 1, stop_price => 13)")" = "rejected stop_would_trigger" ] || fail "a stop at the last price after the rebuild"
[ "$(q12 "SELECT exchange._book_last_price_read($inst12)") $(q12 "SELECT count(*) FROM exchange.verify('UP12-USD')")" \
  = "13 0" ] || fail "the last trade price read by the stop order, or verify after it"
echo "upgrade: 0.14 -> 0.15 verify compares pending stops' display, and the last trade price only once read"

# 0.15 -> 0.16: settlement. Trades made at 0.15 (dated 2021-06-01 through
# the columns' defaults; the trading functions stamp now()) are settled at
# 0.16, and reconcile finds nothing to report.
q12 "ALTER TABLE exchange.events ALTER created_at SET DEFAULT '2021-06-01 12:00+00'" >/dev/null
q12 "ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT '2021-06-01 12:00+00'" >/dev/null
q12 "SELECT symbol FROM exchange.create_instrument('UP16-USD', 0.5, 1)" >/dev/null
q12 "SELECT status FROM exchange.place_order('s1', 'UP16-USD', 'sell', 'limit', 5, 10)" >/dev/null
q12 "SELECT status FROM exchange.place_order('b1', 'UP16-USD', 'buy', 'limit', 3, 10.5)" >/dev/null
q12 "ALTER TABLE exchange.events ALTER created_at SET DEFAULT now()" >/dev/null
q12 "ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT now()" >/dev/null
q12 "ALTER EXTENSION exchange UPDATE TO '0.16'" >/dev/null
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.16 ] || fail "not updated to 0.16"
[ "$(q12 "SELECT string_agg(instrument || ' ' || from_seq || '-' || to_seq || ' ' || trade_count || ' ' || volume
        || ' ' || notional, '; ') FROM exchange.settle('2021-06-01')")" = "UP16-USD 1-2 1 3 30.0" ] ||
  fail "settle at 0.16 of the trades made at 0.15"
[ "$(q12 "SELECT string_agg(client_id || ' ' || net_quantity || ' ' || net_notional, '; ')
        FROM exchange.settlement('2021-06-01')")" = "b1 3 -30.0; s1 -3 30.0" ] || fail "the positions settled at 0.16"
[ "$(q12 "SELECT count(*) FROM exchange.reconcile()")" = 0 ] || fail "reconcile at 0.16"
echo "upgrade: 0.15 -> 0.16 settles the trades made at 0.15 and reconciles them"

# 0.16 -> 0.17: retention. The date settled at 0.16 is pruned at 0.17: b1's
# filled order and entry 1 go; s1's resting order stays with its trade, and
# entry 2 (the newest, with the last trade); the book and reconcile agree.
q12 "ALTER EXTENSION exchange UPDATE TO '0.17'" >/dev/null
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.17 ] || fail "not updated to 0.17"
[ "$(q12 "SELECT string_agg(instrument || ' ' || through_seq || ' ' || entries || ' ' || trades || ' ' || orders, '; ')
        FROM exchange.prune('2021-06-01')")" = "UP16-USD 2 1 0 1" ] || fail "prune at 0.17 of the date settled at 0.16"
[ "$(q12 "SELECT string_agg(o.client_id || ' ' || o.status, '; ' ORDER BY o.order_no) FROM exchange.orders o
        WHERE o.instrument = 'UP16-USD'")" = "s1 partially_filled" ] || fail "the orders left by the prune"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP16-USD')") $(q12 "SELECT count(*) FROM exchange.reconcile()")" \
  = "0 0" ] || fail "verify or reconcile after the prune"
[ "$(q12 "SELECT count(*) FROM exchange.settlement('2021-06-01')")" = 2 ] || fail "the settled positions after the prune"
[ "$(q12 "SELECT count(*) FROM (SELECT * FROM exchange.orderbook_at('UP16-USD') EXCEPT ALL
        SELECT * FROM exchange.orderbook('UP16-USD')) d")" = 0 ] || fail "orderbook_at after the prune"
echo "upgrade: 0.16 -> 0.17 prunes the date settled at 0.16"

# 0.17 -> 0.18: TWAP orders. A TWAP started 3 minutes ago over 10 in 5
# slices buys slices 1 and 2 from s1's order left resting at 0.17.
q12 "ALTER EXTENSION exchange UPDATE TO '0.18'" >/dev/null
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.18 ] || fail "not updated to 0.18"
twap=$(q12 "SELECT twap_id FROM exchange.place_twap('t1', 'UP16-USD', 'buy', 1, '10 minutes', 1, 10,
            now() - interval '3 minutes')")
[ "$(q12 "SELECT string_agg(quantity || ' ' || filled_quantity || ' ' || status, '; ') FROM exchange.run_twaps()")" \
  = "1 1 filled" ] || fail "run_twaps at 0.18"
[ "$(q12 "SELECT status || ' ' || children FROM exchange.get_twap('$twap')")" = "completed 1" ] ||
  fail "the TWAP after its run"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP16-USD')")" = 0 ] || fail "verify after the TWAP"
echo "upgrade: 0.17 -> 0.18 runs a TWAP on a book loaded at 0.17"

# 0.18 -> 0.19: run_twaps_each. A TWAP placed at 0.18 with its one slice due
# is run by the procedure after the update, as the frontend's ticker calls it.
q12 "SELECT status FROM exchange.place_order('s2', 'UP16-USD', 'sell', 'limit', 1, 10)" >/dev/null
twap=$(q12 "SELECT twap_id FROM exchange.place_twap('t2', 'UP16-USD', 'buy', 1, '10 minutes', 1, 10,
            now() - interval '3 minutes')")
q12 "ALTER EXTENSION exchange UPDATE TO '0.19'" >/dev/null
[ "$(q12 "SELECT extversion FROM pg_extension WHERE extname = 'exchange'")" = 0.19 ] || fail "not updated to 0.19"
[ "$(q12 "CALL exchange.run_twaps_each()")" = 1 ] || fail "run_twaps_each at 0.19"
[ "$(q12 "SELECT status || ' ' || children || ' ' || filled_quantity FROM exchange.get_twap('$twap')")" \
  = "completed 1 1" ] || fail "the TWAP after run_twaps_each"
[ "$(q12 "SELECT count(*) FROM exchange.verify('UP16-USD')")" = 0 ] || fail "verify after run_twaps_each"
echo "upgrade: 0.18 -> 0.19 runs a TWAP placed at 0.18 with run_twaps_each"
