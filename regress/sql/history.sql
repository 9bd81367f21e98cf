-- Last in the schedule: the suites before it count the journal's entries.
SELECT symbol FROM exchange.create_instrument('HIST-USD', 1, 1);
SELECT status FROM exchange.place_order('hist0', 'HIST-USD', 'buy', 'limit', 1, 5);
-- What happened stays, for the owner too (0.10): journal entries and trades
-- never change and are never removed, nor is an order's row (its status and
-- fills change through the trading functions). Each refusal changes nothing,
-- also with session_replication_role = replica (the triggers fire always).
CREATE FUNCTION tables_now() RETURNS TABLE (events bigint, trades bigint, orders bigint, digest text) LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM exchange.events), (SELECT count(*) FROM exchange.trades),
           (SELECT count(*) FROM exchange.orders),
           md5((SELECT string_agg(e::text, ',' ORDER BY instrument_id, seq) FROM exchange.events e) ||
               (SELECT string_agg(t::text, ',' ORDER BY trade_no) FROM exchange.trades t) ||
               (SELECT string_agg(o::text, ',' ORDER BY order_no) FROM exchange.orders o))
$$;
CREATE TEMP TABLE kept AS SELECT * FROM tables_now();
SELECT try($$UPDATE exchange.events SET payload = '{}' WHERE seq = 1$$);
SELECT try($$DELETE FROM exchange.events WHERE seq = 1$$);
SELECT try($$TRUNCATE exchange.events$$);
SELECT try($$UPDATE exchange.trades SET quantity = quantity * 2$$);
SELECT try($$DELETE FROM exchange.trades$$);
SELECT try($$TRUNCATE exchange.trades$$);
SELECT try($$DELETE FROM exchange.orders WHERE status = 'open'$$);
SELECT try($$TRUNCATE exchange.orders$$);
SELECT try($$TRUNCATE exchange.orders, exchange.trades, exchange.events$$);
SET session_replication_role = replica;
SELECT try($$DELETE FROM exchange.events$$);
SELECT try($$DELETE FROM exchange.orders$$);
SELECT try($$UPDATE exchange.trades SET price = 0$$);
SELECT try($$DELETE FROM exchange.clients$$);
RESET session_replication_role;
SELECT count(*) AS trigger_functions FROM pg_proc WHERE proname IN ('_clients_append_only', '_history_kept');
SELECT n.events = k.events AS events_kept, n.trades = k.trades AS trades_kept, n.orders = k.orders AS orders_kept,
       n.digest = k.digest AS all_rows_unchanged
  FROM tables_now() n, kept k;
-- Trading still writes them: an order that trades adds its journal entry and
-- trade, updates its maker, and a cancel updates its order.
SELECT status, filled_quantity FROM exchange.place_order('hist1', 'HIST-USD', 'sell', 'limit', 1, 5);
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.place_order('hist1', 'HIST-USD', 'sell', 'limit', 1, 9)));
SELECT n.events - k.events AS new_entries, n.trades - k.trades AS new_trades, n.orders - k.orders AS new_orders
  FROM tables_now() n, kept k;
SELECT status, filled_quantity FROM exchange.orders WHERE client_id = 'hist0';
SELECT count(*) AS problems FROM exchange.verify('HIST-USD');
DROP FUNCTION tables_now();
