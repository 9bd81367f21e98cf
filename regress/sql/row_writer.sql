-- The rows of place_order/place_orders are written without SQL statements
-- (extension/pg/row_writer.cpp): these tests show that the tables' defaults,
-- constraints and triggers still apply, and that a table with a BEFORE
-- trigger is written through INSERT/UPDATE statements instead.
SELECT symbol FROM exchange.create_instrument('RW-USD', 1, 1);

-- An audit of what fires: one row per trigger call.
CREATE TABLE rw_audit (n serial, tbl text, op text, timing text, level text, info text);
CREATE FUNCTION rw_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    info text;
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'orders' THEN
        info := NEW.client_id || ' ' || NEW.status || ' ' || NEW.filled_quantity;
    ELSIF TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'trades' THEN
        info := NEW.buy_client_id || ' ' || NEW.sell_client_id || ' ' || NEW.quantity;
    ELSIF TG_LEVEL = 'ROW' THEN
        info := NEW.kind;
    END IF;
    INSERT INTO public.rw_audit (tbl, op, timing, level, info) VALUES (TG_TABLE_NAME, TG_OP, TG_WHEN, TG_LEVEL, info);
    IF TG_LEVEL = 'ROW' THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rw_orders_row AFTER INSERT OR UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION rw_log();
CREATE TRIGGER rw_orders_stmt AFTER INSERT OR UPDATE ON exchange.orders FOR EACH STATEMENT EXECUTE FUNCTION rw_log();
CREATE TRIGGER rw_trades_row AFTER INSERT ON exchange.trades FOR EACH ROW EXECUTE FUNCTION rw_log();
CREATE TRIGGER rw_events_row AFTER INSERT ON exchange.events FOR EACH ROW EXECUTE FUNCTION rw_log();

-- AFTER row and statement triggers fire for the inserted orders, trades and
-- journal entries and for the makers' updates.
SELECT status FROM exchange.place_order('rw-m1', 'RW-USD', 'sell', 'limit', 2, 100);
SELECT status FROM exchange.place_order('rw-m2', 'RW-USD', 'sell', 'limit', 1, 101);
SELECT status, filled_quantity FROM exchange.place_orders('[
    {"client_id": "rw-t1", "instrument": "RW-USD", "side": "buy", "type": "limit", "quantity": 3, "price": 101},
    {"client_id": "rw-t2", "instrument": "RW-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 99}
  ]');
SELECT tbl, op, timing, level, info FROM rw_audit ORDER BY n;
TRUNCATE rw_audit;

-- Defaults of the columns the engine does not write: the trade's number from
-- its sequence, the timestamps from the transaction.
BEGIN;
SELECT status FROM exchange.place_order('rw-m3', 'RW-USD', 'sell', 'limit', 2, 102);
SELECT status FROM exchange.place_order('rw-t3', 'RW-USD', 'buy', 'limit', 2, 102);
SELECT count(*) AS trades, bool_and(executed_at = now()) AS executed_now, count(DISTINCT trade_no) AS numbers
  FROM exchange.trades WHERE buy_client_id = 'rw-t3';
SELECT bool_and(created_at = now() AND updated_at = now()) AS stamped_now FROM exchange.orders
 WHERE client_id IN ('rw-m3', 'rw-t3');
SELECT bool_and(e.created_at = now()) AS journal_now FROM exchange.events e
  JOIN exchange.orders o USING (order_id) WHERE o.client_id = 'rw-t3';
COMMIT;
SELECT (SELECT trade_no FROM exchange.trades WHERE buy_client_id = 'rw-t3')
     > (SELECT max(trade_no) FROM exchange.trades WHERE buy_client_id = 'rw-t1') AS numbered_in_order;
TRUNCATE rw_audit;

-- CHECK constraints are checked on insert and on the makers' update; a
-- violation aborts the call and leaves the book as it was.
ALTER TABLE exchange.orders ADD CONSTRAINT rw_small CHECK (quantity < 1000);
SELECT try($$SELECT exchange.place_order('rw-big', 'RW-USD', 'sell', 'limit', 5000, 200)$$);
-- The writer keeps the planned constraints and defaults between calls: a
-- constraint replaced by another (the same number of checks) and a changed
-- default take effect at once.
ALTER TABLE exchange.orders DROP CONSTRAINT rw_small, ADD CONSTRAINT rw_small2 CHECK (quantity < 500);
SELECT try($$SELECT exchange.place_order('rw-big', 'RW-USD', 'sell', 'limit', 700, 200)$$);
ALTER TABLE exchange.orders DROP CONSTRAINT rw_small2;
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT '2000-01-01 00:00:00+00';
SELECT status FROM exchange.place_order('rw-m7', 'RW-USD', 'sell', 'limit', 1, 104);
SELECT status FROM exchange.place_order('rw-t7', 'RW-USD', 'buy', 'limit', 1, 104);
ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT now();
SELECT executed_at = '2000-01-01 00:00:00+00' AS default_changed FROM exchange.trades WHERE buy_client_id = 'rw-t7';
SELECT status FROM exchange.place_order('rw-m4', 'RW-USD', 'sell', 'limit', 5, 103);
ALTER TABLE exchange.orders ADD CONSTRAINT rw_fill CHECK (client_id <> 'rw-m4' OR filled_quantity <= 2);
SELECT try($$SELECT exchange.place_order('rw-t4', 'RW-USD', 'buy', 'limit', 3, 103)$$);
SELECT try($$SELECT exchange.place_orders('[{"client_id": "rw-t4", "instrument": "RW-USD", "side": "buy",
                                            "type": "limit", "quantity": 3, "price": 103}]')$$);
SELECT * FROM book('RW-USD');
SELECT status, filled_quantity FROM exchange.place_order('rw-t5', 'RW-USD', 'buy', 'limit', 2, 103);
ALTER TABLE exchange.orders DROP CONSTRAINT rw_fill;
SELECT healthy('RW-USD');
TRUNCATE rw_audit;

-- A foreign key an operator adds to orders is checked on the direct path:
-- only the key to instruments is not checked row by row, because the call
-- locks the instrument row itself (regress/specs/instrument_key.spec).
CREATE TABLE rw_known_clients (client_id text PRIMARY KEY);
INSERT INTO rw_known_clients VALUES ('rw-k1');
ALTER TABLE exchange.orders ADD CONSTRAINT rw_known FOREIGN KEY (client_id) REFERENCES rw_known_clients NOT VALID;
SELECT status FROM exchange.place_order('rw-k1', 'RW-USD', 'sell', 'limit', 1, 120);
SELECT try($$SELECT exchange.place_order('rw-k2', 'RW-USD', 'sell', 'limit', 1, 121)$$);
SELECT try($$SELECT count(*) FROM exchange.place_orders('[{"client_id": "rw-k1", "instrument": "RW-USD", "side": "sell",
    "type": "limit", "quantity": 1, "price": 122}, {"client_id": "rw-k2", "instrument": "RW-USD", "side": "sell",
    "type": "limit", "quantity": 1, "price": 123}]')$$);
SELECT client_id, price FROM exchange.orders WHERE client_id IN ('rw-k1', 'rw-k2') ORDER BY order_no;
SELECT healthy('RW-USD');
ALTER TABLE exchange.orders DROP CONSTRAINT rw_known;
DROP TABLE rw_known_clients;
SELECT c.status FROM exchange.orders o, exchange.cancel_order(o.order_id) c WHERE o.client_id = 'rw-k1';
TRUNCATE rw_audit;

-- In a read-only transaction a call fails with 25006 and writes nothing
-- (the client exists already, so no INSERT statement would catch it: the
-- call refuses itself first, naming itself).
BEGIN READ ONLY;
SELECT try($$SELECT exchange.place_order('rw-m4', 'RW-USD', 'sell', 'limit', 1, 110)$$);
COMMIT;
SELECT count(*) AS written FROM exchange.orders WHERE client_id = 'rw-m4' AND price = 110;

-- A BEFORE trigger: those tables are written by INSERT/UPDATE statements,
-- with the same rows.
CREATE TRIGGER rw_trades_before BEFORE INSERT ON exchange.trades FOR EACH ROW EXECUTE FUNCTION rw_log();
CREATE TRIGGER rw_orders_before BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION rw_log();
SELECT status, filled_quantity FROM exchange.place_order('rw-t6', 'RW-USD', 'buy', 'limit', 3, 103);
SELECT tbl, op, timing, level, info FROM rw_audit ORDER BY n;
SELECT client_id, status, filled_quantity, remaining_lots FROM exchange.orders WHERE client_id = 'rw-m4';
SELECT count(*), sum(quantity) FROM exchange.trades WHERE buy_client_id = 'rw-t6';
DROP TRIGGER rw_trades_before ON exchange.trades;
DROP TRIGGER rw_orders_before ON exchange.orders;
SELECT healthy('RW-USD');

-- The same order stream on two instruments, one written directly and one
-- through the statements (no-op BEFORE triggers on all three tables), ends
-- in the same rows (the journal's stp_cancelled lists engine order numbers,
-- which differ between the instruments: only their count is compared).
DROP TRIGGER rw_orders_row ON exchange.orders;
DROP TRIGGER rw_orders_stmt ON exchange.orders;
DROP TRIGGER rw_trades_row ON exchange.trades;
DROP TRIGGER rw_events_row ON exchange.events;
CREATE FUNCTION rw_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE FUNCTION rw_stream(symbol text) RETURNS TABLE (batch int, status text) LANGUAGE sql AS $$
    SELECT b, r.status
      FROM generate_series(0, 5) b,
           exchange.place_orders((
               SELECT jsonb_agg(jsonb_build_object(
                          'client_id', 'rw' || (i % 7), 'instrument', symbol,
                          'side', CASE WHEN (i * 7) % 3 = 0 THEN 'buy' ELSE 'sell' END,
                          'type', CASE WHEN i % 17 = 0 THEN 'market' ELSE 'limit' END,
                          'price', CASE WHEN i % 17 = 0 THEN NULL ELSE 95 + (i * 13) % 11 END,
                          'quantity', 1 + (i * 5) % 4,
                          'time_in_force', CASE WHEN i % 17 = 0 OR i % 11 = 0 THEN 'ioc' ELSE 'gtc' END,
                          'stp', CASE i % 5 WHEN 0 THEN 'cancel_oldest' WHEN 1 THEN 'cancel_both' ELSE 'cancel_newest' END)
                        ORDER BY i)
                 FROM generate_series(b * 50, b * 50 + 49) i)) r
$$;
CREATE FUNCTION rw_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'order ' || o.client_id || ' ' || o.side || ' ' || o.type || ' ' || coalesce(o.price::text, '-') || ' '
           || o.quantity || ' ' || o.filled_quantity || ' ' || o.remaining_lots || ' ' || o.status || ' '
           || coalesce(o.cancel_reason, '-') || ' ' || (o.updated_at = o.created_at)
      FROM exchange.orders o WHERE o.instrument = symbol
    UNION ALL
    SELECT 'trade ' || t.seq || ' ' || t.price || ' ' || t.quantity || ' ' || t.buy_client_id || ' '
           || t.sell_client_id || ' ' || t.maker_side || ' '
           || rank() OVER (PARTITION BY t.seq ORDER BY t.trade_no)
      FROM exchange.trades t WHERE t.instrument = symbol
    UNION ALL
    SELECT 'event ' || e.seq || ' ' || e.kind || ' ' || (e.payload - 'order_id' - 'trades' - 'stp_cancelled')::text
           || ' ' || coalesce(jsonb_array_length(e.payload -> 'stp_cancelled'), -1)
      FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = $1
$$;
SELECT symbol FROM exchange.create_instrument('RWA-USD', 1, 1);
SELECT symbol FROM exchange.create_instrument('RWB-USD', 1, 1);
SELECT count(*) FILTER (WHERE status IN ('filled', 'partially_filled')) > 50 AS trading, count(*) AS results
  FROM rw_stream('RWA-USD');
CREATE TRIGGER rw_noop_orders BEFORE INSERT OR UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION rw_noop();
CREATE TRIGGER rw_noop_trades BEFORE INSERT ON exchange.trades FOR EACH ROW EXECUTE FUNCTION rw_noop();
CREATE TRIGGER rw_noop_events BEFORE INSERT ON exchange.events FOR EACH ROW EXECUTE FUNCTION rw_noop();
SELECT count(*) AS results FROM rw_stream('RWB-USD');
DROP TRIGGER rw_noop_orders ON exchange.orders;
DROP TRIGGER rw_noop_trades ON exchange.trades;
DROP TRIGGER rw_noop_events ON exchange.events;
SELECT (SELECT count(*) FROM rw_rows('RWA-USD')) AS rows,
       (SELECT count(*) FROM rw_rows('RWA-USD') r WHERE left(r, 6) = 'trade ') AS trades,
       (SELECT count(*) FROM (SELECT * FROM rw_rows('RWA-USD') EXCEPT ALL
                              SELECT replace(r, 'RWB-USD', 'RWA-USD') FROM rw_rows('RWB-USD') r) d) AS only_direct,
       (SELECT count(*) FROM (SELECT replace(r, 'RWB-USD', 'RWA-USD') FROM rw_rows('RWB-USD') r EXCEPT ALL
                              SELECT * FROM rw_rows('RWA-USD')) d) AS only_statements;
SELECT count(*) FILTER (WHERE r IS NULL) AS null_rows FROM rw_rows('RWA-USD') r;
SELECT healthy('RWA-USD'), healthy('RWB-USD');
DROP FUNCTION rw_rows(text);
DROP FUNCTION rw_stream(text);
DROP FUNCTION rw_noop();
DROP TABLE rw_audit;
DROP FUNCTION rw_log();
