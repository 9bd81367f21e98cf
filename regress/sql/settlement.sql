-- Daily settlement and reconciliation (0.16). The trading functions stamp
-- now(); the trades here get past dates from the columns' defaults, which
-- the row writer honours (row_writer.sql).
SET timezone = 'UTC';
CREATE FUNCTION at(ts timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE exchange.events ALTER created_at SET DEFAULT %L', ts);
    EXECUTE format('ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT %L', ts);
END $$;
CREATE FUNCTION at_now() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE exchange.events ALTER created_at SET DEFAULT now();
    ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT now();
END $$;
-- An error as its SQLSTATE and message, with dates masked (today's date is in some).
CREATE FUNCTION try_dated(sql text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(try(sql), '\d{4}-\d{2}-\d{2}', '<date>', 'g')
$$;
SELECT symbol FROM exchange.create_instrument('SETL-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('SETL2-USD', 0.5, 1);

-- 2020-03-02: mm quotes; bob and carol take; dave's stop buy is triggered by
-- bob's trade and takes too (its trades are in an order_triggered entry);
-- eve trades with herself (stp none: one trade, on both sides); an amend and
-- a cancel add entries without trades.
SELECT at('2020-03-02 09:00+00');
SELECT status FROM exchange.place_order('mm', 'SETL-USD', 'sell', 'limit', 2, 50.00);
SELECT status FROM exchange.place_order('mm', 'SETL-USD', 'sell', 'limit', 1, 50.10);
SELECT status FROM exchange.place_order('dave', 'SETL-USD', 'buy', 'limit', 0.1, 51.00, stop_price => 50.00);
SELECT at('2020-03-02 12:00+00');
SELECT status, filled_quantity FROM exchange.place_order('bob', 'SETL-USD', 'buy', 'limit', 0.5, 50.00);
SELECT status, filled_quantity FROM exchange.orders WHERE client_id = 'dave' AND instrument = 'SETL-USD';
SELECT status, filled_quantity FROM exchange.place_order('carol', 'SETL-USD', 'buy', 'limit', 1.45, 50.10);
SELECT status FROM exchange.place_order('eve', 'SETL-USD', 'sell', 'limit', 0.1, 49.00);
SELECT status FROM exchange.place_order('eve', 'SETL-USD', 'buy', 'limit', 0.1, 49.00, stp => 'none');
SELECT status FROM exchange.place_order('mm', 'SETL-USD', 'buy', 'limit', 1, 40.00);
SELECT status FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'mm' AND price = 40.00),
                                        quantity => 0.5);
SELECT at('2020-03-02 23:59:00+00');
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'mm' AND price = 40.00));
-- 2020-03-03: frank buys just after midnight; then an entry stamped the day
-- before appends (its transaction started before midnight and took the
-- instrument after frank's): it belongs to 2020-03-03, the dates never go
-- back along the journal. SETL2-USD trades on 2020-03-03 only.
SELECT at('2020-03-03 00:00:05+00');
SELECT status FROM exchange.place_order('frank', 'SETL-USD', 'buy', 'limit', 0.2, 50.10);
SELECT at('2020-03-02 23:59:59+00');
SELECT status FROM exchange.place_order('bob', 'SETL-USD', 'buy', 'limit', 0.1, 50.10);
SELECT at('2020-03-03 10:00+00');
SELECT status FROM exchange.place_order('mm', 'SETL2-USD', 'sell', 'limit', 10, 7.5);
SELECT status FROM exchange.place_order('bob', 'SETL2-USD', 'buy', 'market', 4);
SELECT at_now();
SELECT i.symbol, e.seq, e.kind, e.created_at, count(t.*) AS trades
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
  LEFT JOIN exchange.trades t ON t.instrument_id = e.instrument_id AND t.seq = e.seq
 WHERE i.symbol LIKE 'SETL%' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;

-- Nothing is settled yet.
SELECT try('SELECT * FROM exchange.settlement(''2020-03-02'')');
SELECT try('SELECT * FROM exchange.reconcile(''2020-03-02'')');
SELECT count(*) FROM exchange.reconcile();
-- A date that has not ended is refused, and nothing is stored.
SELECT try_dated('SELECT exchange.settle((now() AT TIME ZONE ''UTC'')::date)');
SELECT try_dated('SELECT exchange.settle(''2999-01-01'')');
SELECT try('SELECT exchange.settle(''-infinity'')'), try('SELECT exchange.settle(''infinity'')');
SELECT (SELECT count(*) FROM exchange.settlement_runs), (SELECT count(*) FROM exchange.settlement_days);

-- Settling 2020-03-02: SETL-USD's entries of that date (the other
-- instruments' entries, stamped today, and SETL2-USD's are later).
SELECT trade_date, instrument, from_seq, to_seq, entries, trade_count, volume, notional, first_at, last_at
  FROM exchange.settle('2020-03-02');
SELECT * FROM exchange.settlement('2020-03-02');
SELECT * FROM exchange.settlement('2020-03-02', 'eve');
SELECT instrument, client_id, net_quantity FROM exchange.settlement('2020-03-02', instrument => 'SETL-USD')
 ORDER BY net_quantity, client_id;
SELECT count(*) FROM exchange.settlement('2020-03-02', 'nobody');
SELECT count(*) FROM exchange.settlement('2020-03-02', instrument => 'SETL2-USD');
SELECT try('SELECT * FROM exchange.settlement(''2020-03-02'', instrument => ''NOPE'')');
SELECT try('SELECT * FROM exchange.settlement(NULL)');
SELECT try('SELECT * FROM exchange.settlement(''2020-03-03'')');
-- The positions net to zero and add up to the day's trades, as the register has them.
SELECT sum(net_quantity) AS net_quantity, sum(net_notional) AS net_notional, sum(bought_quantity) AS bought,
       sum(sold_quantity) AS sold, sum(bought_notional) AS bought_notional
  FROM exchange.settlement('2020-03-02');
SELECT sum(quantity) AS volume, sum(price * quantity) AS notional, count(*) AS trades
  FROM exchange.trades WHERE instrument = 'SETL-USD' AND seq <= 11;
-- Again, or an earlier date: nothing more to settle.
SELECT count(*) FROM exchange.settle('2020-03-02');
SELECT count(*) FROM exchange.settle('2020-03-01');
SELECT through, settled_by = session_user AS by_me FROM exchange.settlement_runs ORDER BY through;

-- 2020-03-03, with the late entry, and SETL2-USD.
SELECT trade_date, instrument, from_seq, to_seq, entries, trade_count, volume, notional, first_at, last_at
  FROM exchange.settle('2020-03-03');
SELECT instrument, client_id, bought_quantity, bought_notional, sold_quantity, sold_notional, net_quantity,
       net_notional, maker_quantity, taker_quantity, trade_count
  FROM exchange.settlement('2020-03-03');
-- An entry stamped with a settled date after it was settled belongs to the
-- next date that is not: it is neither lost nor settled twice.
SELECT at('2020-03-03 23:00+00');
SELECT status FROM exchange.place_order('carol', 'SETL-USD', 'buy', 'limit', 0.05, 50.10);
SELECT at_now();
SELECT trade_date, instrument, from_seq, to_seq, entries, trade_count, volume FROM exchange.settle('2020-03-05');
SELECT client_id, bought_quantity, sold_quantity, trade_count FROM exchange.settlement('2020-03-05');
SELECT count(*) FROM exchange.settlement('2020-03-04');
SELECT count(*) AS problems FROM exchange.reconcile();
SELECT count(*) AS problems FROM exchange.reconcile('2020-03-02', 'SETL-USD');
-- Each settled date's closing book is stored (orderbook_snapshots, seq = its
-- last entry), equal to orderbook_at there.
CREATE FUNCTION closing_differs(sym text, at bigint) RETURNS bigint LANGUAGE sql AS $$
    WITH snap AS (
        SELECT s.bids, s.asks FROM exchange.orderbook_snapshots s WHERE s.instrument = sym AND s.seq = at
    ), levels AS (
        SELECT 'buy' AS side, (l->>'price')::numeric AS price, (l->>'quantity')::numeric AS quantity,
               (l->>'order_count')::int AS order_count FROM snap, jsonb_array_elements(snap.bids) l
        UNION ALL
        SELECT 'sell', (l->>'price')::numeric, (l->>'quantity')::numeric, (l->>'order_count')::int
          FROM snap, jsonb_array_elements(snap.asks) l
    ), book AS (
        SELECT * FROM exchange.orderbook_at(sym, at, 100000)
    )
    SELECT count(*) FROM ((SELECT * FROM levels EXCEPT ALL SELECT * FROM book)
                          UNION ALL (SELECT * FROM book EXCEPT ALL SELECT * FROM levels)) x
$$;
SELECT d.instrument, d.trade_date, d.to_seq,
       (SELECT count(*) FROM exchange.orderbook_snapshots s WHERE s.instrument = d.instrument AND s.seq = d.to_seq)
           AS stored,
       (SELECT jsonb_array_length(s.bids) || ' bids, ' || jsonb_array_length(s.asks) || ' asks'
          FROM exchange.orderbook_snapshots s WHERE s.instrument = d.instrument AND s.seq = d.to_seq) AS levels,
       closing_differs(d.instrument, d.to_seq) AS differing
  FROM exchange.settlement_days d WHERE d.instrument LIKE 'SETL%' ORDER BY 1, 2;

-- What was settled stays, for the owner too.
SELECT try('UPDATE exchange.settlements SET net_quantity = 0');
SELECT try('DELETE FROM exchange.settlement_days');
SELECT try('TRUNCATE exchange.settlement_runs');
SELECT try('TRUNCATE exchange.settlements CASCADE');

-- reconcile() finds what changed behind the settlement (each change made
-- with the history triggers disabled by the owner, and rolled back).
BEGIN;
ALTER TABLE exchange.trades DISABLE TRIGGER trades_append_only;
UPDATE exchange.trades SET quantity = 0.300 WHERE buy_client_id = 'bob' AND instrument = 'SETL-USD' AND quantity = 0.500;
SELECT trade_date, instrument, check_name, regexp_replace(problem, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
  FROM exchange.reconcile() ORDER BY 1, 2, 3, 4;
ROLLBACK;
BEGIN;
ALTER TABLE exchange.trades DISABLE TRIGGER trades_append_only;
UPDATE exchange.trades SET executed_at = '2020-03-01 00:00+00' WHERE buy_client_id = 'frank' AND instrument = 'SETL-USD';
SELECT trade_date, check_name, regexp_replace(problem, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
  FROM exchange.reconcile('2020-03-03', 'SETL-USD') ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
INSERT INTO exchange.trades (instrument, instrument_id, seq, price, quantity, buy_order_id, sell_order_id,
                             buy_client_id, sell_client_id, maker_side, executed_at)
SELECT 'SETL-USD', instrument_id, 5, 50.00, 1.000, gen_random_uuid(), gen_random_uuid(), 'ghost', 'mm', 'sell',
       '2020-03-02 12:00+00'
  FROM exchange.instruments WHERE symbol = 'SETL-USD';
SELECT trade_date, check_name, regexp_replace(problem, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
  FROM exchange.reconcile('2020-03-02') ORDER BY 1, 2, 3;
ROLLBACK;
-- A trade whose order is another's.
BEGIN;
ALTER TABLE exchange.trades DISABLE TRIGGER trades_append_only;
UPDATE exchange.trades SET buy_client_id = 'carol' WHERE buy_client_id = 'frank' AND instrument = 'SETL-USD';
SELECT trade_date, check_name, regexp_replace(problem, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
  FROM exchange.reconcile('2020-03-03') ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
ALTER TABLE exchange.settlements DISABLE TRIGGER settlements_kept;
DELETE FROM exchange.settlements WHERE client_id = 'eve' AND instrument = 'SETL-USD';
UPDATE exchange.settlements SET net_notional = net_notional + 1
 WHERE client_id = 'carol' AND trade_date = '2020-03-02' AND instrument = 'SETL-USD';
SELECT trade_date, check_name, problem FROM exchange.reconcile('2020-03-02') ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
UPDATE exchange.orders SET filled_quantity = filled_quantity + 0.001
 WHERE client_id = 'carol' AND quantity = 1.45 AND instrument = 'SETL-USD';
SELECT trade_date, check_name, regexp_replace(problem, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
  FROM exchange.reconcile() ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
ALTER TABLE exchange.events DISABLE TRIGGER events_append_only;
DELETE FROM exchange.events e USING exchange.instruments i
 WHERE i.instrument_id = e.instrument_id AND i.symbol = 'SETL-USD' AND e.seq = 10;
SELECT trade_date, check_name, problem FROM exchange.reconcile(instrument => 'SETL-USD') ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
ALTER TABLE exchange.settlement_days DISABLE TRIGGER settlement_days_kept;
ALTER TABLE exchange.settlements DISABLE TRIGGER settlements_kept;
DELETE FROM exchange.settlements WHERE trade_date = '2020-03-03' AND instrument = 'SETL-USD';
DELETE FROM exchange.settlement_days WHERE trade_date = '2020-03-03' AND instrument = 'SETL-USD';
SELECT trade_date, check_name, problem FROM exchange.reconcile(instrument => 'SETL-USD') ORDER BY 1, 2, 3;
ROLLBACK;
SELECT count(*) AS problems FROM exchange.reconcile();
-- A journal with an entry missing (removed by the owner behind the
-- extension's back) is not settled: an error naming it, nothing stored.
BEGIN;
SELECT at('2020-03-06 10:00+00');
SELECT status FROM exchange.place_order('mm', 'SETL2-USD', 'sell', 'limit', 1, 8);
SELECT status FROM exchange.place_order('mm', 'SETL2-USD', 'sell', 'limit', 1, 8.5);
SELECT at_now();
ALTER TABLE exchange.events DISABLE TRIGGER events_append_only;
DELETE FROM exchange.events e USING exchange.instruments i
 WHERE i.instrument_id = e.instrument_id AND i.symbol = 'SETL2-USD' AND e.seq = 3;
SELECT try('SELECT exchange.settle(''2020-03-06'')');
SELECT count(*) FROM exchange.settlement_days WHERE trade_date = '2020-03-06';
ROLLBACK;

-- Who may do what: traders read positions (the frontend answers a client
-- its own), auditors read everything and reconcile, only the owner settles.
SELECT r.role, f.fn, has_function_privilege(r.role, f.fn, 'EXECUTE') AS may
  FROM (VALUES ('exchange_trader'), ('exchange_auditor')) AS r(role),
       (VALUES ('exchange.settle(date)'), ('exchange.settlement(date, text, text)'),
               ('exchange.reconcile(date, text)')) AS f(fn)
 ORDER BY 1, 2;
SELECT r.role, t.tbl, has_table_privilege(r.role, t.tbl, 'SELECT') AS may
  FROM (VALUES ('exchange_trader'), ('exchange_auditor')) AS r(role),
       (VALUES ('exchange.settlement_runs'), ('exchange.settlement_days'), ('exchange.settlements')) AS t(tbl)
 ORDER BY 1, 2;

-- Without a date, settle() settles through yesterday (UTC).
SELECT count(*) >= 0 AS settled FROM exchange.settle();
SELECT max(through) = (now() AT TIME ZONE 'UTC')::date - 1 AS through_yesterday FROM exchange.settlement_runs;

SELECT count(*) AS problems FROM exchange.reconcile(instrument => 'SETL-USD');
