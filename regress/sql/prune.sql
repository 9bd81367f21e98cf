-- Retention (0.17): prune(through) removes the history of settled trade
-- dates. It runs on what settlement.sql left: SETL-USD settled on
-- 2020-03-02 (entries 1-11), 2020-03-03 (12-13) and 2020-03-04 (14, an
-- entry stamped 2020-03-03 that came after that date was settled), and
-- SETL2-USD on 2020-03-03 (1-2). mm's sell of 1 at 50.10 rests partially
-- filled: by carol on 2020-03-02, by frank and bob on 2020-03-03, by carol
-- on 2020-03-04.
SET timezone = 'UTC';
CREATE FUNCTION setl_state(sym text) RETURNS TABLE (what text, rows text) LANGUAGE sql AS $$
    SELECT 'orders', string_agg(o.client_id || ' ' || o.side || ' ' || o.quantity || ' ' || o.status, ', '
                                ORDER BY o.order_no)
      FROM exchange.orders o WHERE o.instrument = sym
    UNION ALL
    SELECT 'trades', string_agg(t.seq || ': ' || t.buy_client_id || '/' || t.sell_client_id || ' ' || t.quantity, ', '
                                ORDER BY t.trade_no)
      FROM exchange.trades t WHERE t.instrument = sym
    UNION ALL
    SELECT 'journal', string_agg(e.seq::text, ' ' ORDER BY e.seq)
      FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = sym
$$;
SELECT * FROM setl_state('SETL-USD');

-- Refused, and nothing removed: no date, not a day, a date not settled.
SELECT try('SELECT exchange.prune(NULL)');
SELECT try('SELECT exchange.prune(''infinity'')'), try('SELECT exchange.prune(''-infinity'')');
SELECT try_dated('SELECT exchange.prune(''2999-01-01'')');
SELECT count(*) FROM exchange.prunes;
-- A date before anything settled: nothing to remove.
SELECT count(*) FROM exchange.prune('2020-03-01');

-- 2020-03-02: its entries go (the newest entry and the newest with a
-- trade, 14, are later); its finished orders go, but none that a later
-- entry names; carol's trade with mm's resting order stays with it.
SELECT through, instrument, through_seq, entries, trades, orders, pruned_by = session_user AS by_me
  FROM exchange.prune('2020-03-02');
SELECT * FROM setl_state('SETL-USD');
SELECT count(*) FROM exchange.prune('2020-03-02');
-- Every remaining order has all its trades.
SELECT o.client_id, o.filled_quantity,
       (SELECT sum(t.quantity) FROM exchange.trades t WHERE o.order_id IN (t.buy_order_id, t.sell_order_id)) AS traded
  FROM exchange.orders o WHERE o.instrument = 'SETL-USD' ORDER BY o.order_no;

-- What was settled stays; a pruned date no longer reconciles; the others do.
SELECT client_id, net_quantity, net_notional FROM exchange.settlement('2020-03-02', instrument => 'SETL-USD')
 ORDER BY client_id;
SELECT try('SELECT count(*) FROM exchange.reconcile(''2020-03-02'')');
SELECT count(*) AS problems FROM exchange.reconcile('2020-03-03');
SELECT count(*) AS problems FROM exchange.reconcile();
-- The book from the pruned date's close on (its snapshot); before it, refused.
SELECT * FROM exchange.orderbook_at('SETL-USD', 11);
SELECT * FROM exchange.orderbook_at('SETL-USD', 13);
SELECT try('SELECT count(*) FROM exchange.orderbook_at(''SETL-USD'', 10)');
SELECT try('SELECT count(*) FROM exchange.orderbook_at(''SETL-USD'', 0)');
SELECT * FROM exchange.verify('SETL-USD');

-- Outside prune() the history is kept as before, for the owner too.
SELECT try('DELETE FROM exchange.events');
SELECT try('DELETE FROM exchange.trades');
SELECT try($$DELETE FROM exchange.orders WHERE status = 'filled'$$);
SELECT try('TRUNCATE exchange.events');
-- And so is the record of what was pruned.
SELECT try('UPDATE exchange.prunes SET orders = 0');
SELECT try('DELETE FROM exchange.prunes');
SELECT try('TRUNCATE exchange.prunes');

-- Through 2020-03-04: SETL-USD keeps entry 14 (its newest, with its last
-- trade) and mm's resting order with all its trades; SETL2-USD keeps entry 2
-- and mm's resting order; bob's filled market order goes, its trade stays
-- with mm's order.
-- A book stored at entry 12 (as snapshot() from cron would have) goes: the
-- pruned entries' books start nothing any more; the settled dates' closing
-- books (11, 13, 14) stay.
INSERT INTO exchange.orderbook_snapshots (instrument, seq, bids, asks)
SELECT 'SETL-USD', 12, coalesce(jsonb_agg(to_jsonb(b) - 'side') FILTER (WHERE side = 'buy'), '[]'),
       coalesce(jsonb_agg(to_jsonb(b) - 'side') FILTER (WHERE side = 'sell'), '[]')
  FROM exchange.orderbook_at('SETL-USD', 12, 1000) b;
SELECT string_agg(seq::text, ' ' ORDER BY seq) AS stored FROM exchange.orderbook_snapshots WHERE instrument = 'SETL-USD';
SELECT through, instrument, through_seq, entries, trades, orders, snapshots FROM exchange.prune('2020-03-04')
 ORDER BY instrument;
SELECT string_agg(seq::text, ' ' ORDER BY seq) AS stored FROM exchange.orderbook_snapshots WHERE instrument = 'SETL-USD';
SELECT * FROM setl_state('SETL-USD');
SELECT * FROM setl_state('SETL2-USD');
-- The books load from what is left: the sequence goes on from the kept
-- newest entry, and the last trade price (which stop orders trigger on)
-- from the kept entry with a trade.
SELECT exchange.rebuild('SETL-USD'), exchange.rebuild('SETL2-USD');
SELECT * FROM exchange.verify('SETL-USD');
SELECT * FROM exchange.verify('SETL2-USD');
SELECT symbol, exchange._last_trade_ticks(instrument_id) * tick_size AS last_price
  FROM exchange.instruments WHERE symbol LIKE 'SETL%' ORDER BY symbol;
SELECT status, seq FROM exchange.place_order('dave', 'SETL-USD', 'buy', 'limit', 0.1, 50.10);
-- A sell stop at 7.5: the last trade (at 7.5, pruned date) has reached it.
SELECT status, reject_reason FROM exchange.place_order('dave', 'SETL2-USD', 'sell', 'limit', 1, 60,
                                                       stop_price => 7.5);
SELECT status, filled_quantity FROM exchange.place_order('frank', 'SETL2-USD', 'buy', 'limit', 1, 7.5);
SELECT client_id, status, filled_quantity FROM exchange.orders WHERE instrument = 'SETL2-USD' ORDER BY order_no;
SELECT * FROM exchange.orderbook_at('SETL-USD', 14);
SELECT count(*) AS problems FROM exchange.reconcile();
SELECT count(*) FROM exchange.prune('2020-03-05');

-- Only the owner prunes; auditors read the record; pg_dump dumps it.
SELECT r.role, has_function_privilege(r.role, 'exchange.prune(date)', 'EXECUTE') AS may_prune,
       has_table_privilege(r.role, 'exchange.prunes', 'SELECT') AS may_read
  FROM (VALUES ('exchange_trader'), ('exchange_auditor')) AS r(role) ORDER BY 1;
SELECT 'exchange.prunes'::regclass = ANY (extconfig) AS dumped FROM pg_extension WHERE extname = 'exchange';
