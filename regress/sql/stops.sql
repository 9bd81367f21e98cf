-- Stop orders (0.13): an order placed with a stop_price waits outside the
-- book (status 'pending') until a trade prints at or beyond its stop (buy:
-- at or above, sell: at or below); it then runs as an incoming limit
-- (stop-limit) or market (stop-market) order right after the command whose
-- trades triggered it, with its own journal entry 'order_triggered'.
SELECT symbol FROM exchange.create_instrument('STOP-USD', 0.5, 0.1);
CREATE TEMP TABLE sids (name text PRIMARY KEY, id uuid);
CREATE TEMP TABLE saved (line text);  -- a stop_state, to compare with (stop_diff)
-- The pending stops of an instrument as the table has them, in the order
-- they would trigger: buys lowest stop first, sells highest first, each
-- oldest first at one stop.
CREATE FUNCTION stop_pending(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT client_id || ' ' || side || ' stop ' || stop_price || ' ' || coalesce('limit ' || price, 'market') || ' '
           || time_in_force || ' remaining ' || remaining_lots
      FROM exchange.orders o WHERE o.instrument = symbol AND status = 'pending'
     ORDER BY side, CASE WHEN side = 'buy' THEN stop_ticks ELSE -stop_ticks END, priority
$$;
-- The resting orders of an instrument as the table has them, each side best
-- price first, then in time priority.
CREATE FUNCTION stop_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT client_id || ' ' || side || ' ' || price || ' remaining ' || remaining_lots || ' ' || status
           || coalesce(' (stop ' || stop_price || ')', '')
      FROM exchange.orders o WHERE o.instrument = symbol AND status IN ('open', 'partially_filled')
     ORDER BY side, CASE WHEN side = 'buy' THEN -price_ticks ELSE price_ticks END, priority
$$;
-- The newest journal sequence of an instrument.
CREATE FUNCTION stop_seq(symbol text) RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(max(e.seq), 0) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
     WHERE i.symbol = stop_seq.symbol
$$;
-- The journal entries of an instrument after seq `after`, numbered from
-- there: what each payload says, its trades (quantity@price and the maker's
-- client) and its level changes.
CREATE FUNCTION stop_journal(symbol text, after bigint) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT concat_ws(' ', '+' || (e.seq - after), e.kind, e.payload->>'client_id', e.payload->>'side', e.payload->>'type',
                     e.payload->>'price', 'stop ' || (e.payload->>'stop_price'))
           || ': ' || concat_ws(' ', e.payload->>'status', 'filled ' || (e.payload->>'filled_quantity'),
                                'remaining ' || (e.payload->>'remaining_quantity'), e.payload->>'cancel_reason',
                                e.payload->>'reject_reason')
           || ' trades [' || coalesce((SELECT string_agg((t->>'quantity') || '@' || (t->>'price') || ' from '
                                                         || coalesce(m.client_id, '?'), ', ' ORDER BY k)
                                         FROM jsonb_array_elements(e.payload->'trades') WITH ORDINALITY AS a(t, k)
                                         LEFT JOIN exchange.orders m ON m.order_id = (t->>'maker_order_id')::uuid), '')
           || '] levels [' || coalesce((SELECT string_agg((l->>'side') || ' ' || (l->>'price') || ' ' || (l->>'quantity')
                                                          || ' (' || (l->>'order_count') || ')', ', ' ORDER BY k)
                                          FROM jsonb_array_elements(e.payload->'levels') WITH ORDINALITY AS a(l, k)), '')
           || ']'
      FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
     WHERE i.symbol = stop_journal.symbol AND e.seq > after
     ORDER BY e.seq
$$;
-- The rows of exchange.trades of an instrument after seq `after`: the
-- taker's and the maker's client and side, and whether the taker is the
-- order of the journal entry at the trade's seq.
CREATE FUNCTION stop_trades(symbol text, after bigint) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('+%s %s@%s taker %s %s, maker %s %s%s', t.seq - after, t.quantity, t.price, tk.client_id, tk.side,
                  mk.client_id, t.maker_side,
                  CASE WHEN e.order_id = tk.order_id THEN '' ELSE ' (the taker is not the entry''s order)' END)
      FROM exchange.trades t
      JOIN exchange.orders tk ON tk.order_id = CASE WHEN t.maker_side = 'buy' THEN t.sell_order_id ELSE t.buy_order_id END
      JOIN exchange.orders mk ON mk.order_id = CASE WHEN t.maker_side = 'buy' THEN t.buy_order_id ELSE t.sell_order_id END
      LEFT JOIN exchange.events e ON e.instrument_id = t.instrument_id AND e.seq = t.seq
     WHERE t.instrument = symbol AND t.seq > after
     ORDER BY t.trade_no
$$;
-- Trades of the journal after `after` that exchange.trades lacks (or has
-- with another price, quantity, seq or maker), and the other way round.
CREATE FUNCTION stop_trades_differing(symbol text, after bigint) RETURNS bigint LANGUAGE sql AS $$
    WITH j AS (SELECT e.seq, (t->>'trade_id')::uuid AS id, (t->>'price')::numeric AS price,
                      (t->>'quantity')::numeric AS quantity, (t->>'maker_order_id')::uuid AS maker
                 FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
                      CROSS JOIN jsonb_array_elements(e.payload->'trades') t
                WHERE i.symbol = stop_trades_differing.symbol AND e.seq > after),
         r AS (SELECT seq, trade_id AS id, price, quantity,
                      CASE WHEN maker_side = 'buy' THEN buy_order_id ELSE sell_order_id END AS maker
                 FROM exchange.trades WHERE instrument = symbol AND seq > after)
    SELECT count(*) FROM ((SELECT * FROM j EXCEPT ALL SELECT * FROM r) UNION ALL (SELECT * FROM r EXCEPT ALL SELECT * FROM j)) d
$$;
-- Everything a rollback must give back: the book's levels, the resting
-- orders and pending stops as the table has them, and the book's last
-- trade price and sequence.
CREATE FUNCTION stop_state(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'book ' || b FROM book(symbol) b
    UNION ALL SELECT 'rest ' || r FROM stop_rows(symbol) r
    UNION ALL SELECT 'pend ' || p FROM stop_pending(symbol) p
    UNION ALL SELECT 'last price ' || exchange._book_last_price(instrument_id) FROM exchange.instruments i
               WHERE i.symbol = stop_state.symbol
    UNION ALL SELECT 'seq ' || s.seq FROM exchange.stats() s WHERE s.instrument = symbol
$$;
-- What differs between stop_state(symbol) now and the lines saved in the
-- temp table saved: '-' a saved line gone, '+' a new one.
CREATE FUNCTION stop_diff(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    (SELECT '- ' || line FROM (SELECT * FROM saved EXCEPT ALL SELECT * FROM stop_state(symbol)) d(line))
    UNION ALL
    (SELECT '+ ' || line FROM (SELECT * FROM stop_state(symbol) EXCEPT ALL SELECT * FROM saved) d(line))
    ORDER BY 1
$$;

-- Placing before any trade in the instrument: every stop waits. A buy
-- stop-limit, a sell stop-market, a buy stop-market at the same stop as the
-- first and a buy stop-limit with a lower stop; the answers carry the stop
-- price and status 'pending', nothing is in the book.
WITH r AS (SELECT * FROM exchange.place_order('st_a', 'STOP-USD', 'buy', 'limit', 1, 106, stop_price => 105)),
     i AS (INSERT INTO sids SELECT 'st_a', order_id FROM r)
SELECT side, type, price, quantity, filled_quantity, remaining_quantity, status, stop_price, trades, display_quantity, seq
  FROM r;
SELECT status, remaining_quantity, stop_price FROM exchange.get_order((SELECT id FROM sids WHERE name = 'st_a'));
SELECT side, type, price, quantity, filled_quantity, remaining_quantity, status, stop_price, trades
  FROM exchange.place_order('st_b', 'STOP-USD', 'sell', 'market', 0.5, stop_price => 95);
SELECT type, status, stop_price FROM exchange.place_order('st_c', 'STOP-USD', 'buy', 'market', 0.3, stop_price => 105);
SELECT type, status, stop_price FROM exchange.place_order('st_d', 'STOP-USD', 'buy', 'limit', 0.5, 103, stop_price => 104.5);
SELECT * FROM book('STOP-USD');
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM stop_journal('STOP-USD', 0);
SELECT * FROM exchange.verify('STOP-USD');

-- Bad input: the reason codes, nothing written. (A display_quantity is refused
-- on a stop-market or IOC/FOK stop only: stop-limit icebergs, at the end.)
SELECT count(*) AS orders_before FROM exchange.orders WHERE instrument = 'STOP-USD' \gset
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'buy', 'limit', 1, 110, stop_price => 100.25)$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'buy', 'limit', 1, 110, stop_price => 0)$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'sell', 'market', 1, stop_price => -95)$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'sell', 'market', 1, stop_price => 'NaN')$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'sell', 'market', 1, stop_price => 1e18)$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'buy', 'limit', 1, 110, post_only => true, stop_price => 108)$$);
SELECT try($$SELECT exchange.place_order('st_g', 'STOP-USD', 'buy', 'market', 1, display_quantity => 0.5,
                                         stop_price => 108)$$);
SELECT status, reject_reason, reject_message, stop_price FROM exchange.place_orders('[
    {"client_id": "st_g", "instrument": "STOP-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "stop_price": "x"},
    {"client_id": "st_g", "instrument": "STOP-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "stop_price": 100.25},
    {"client_id": "st_g", "instrument": "STOP-USD", "side": "sell", "type": "market", "quantity": 1, "stop_price": 0},
    {"client_id": "st_g", "instrument": "STOP-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "stop_price": 108, "post_only": true},
    {"client_id": "st_g", "instrument": "STOP-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "time_in_force": "ioc", "stop_price": 108, "display_quantity": 0.5}]');
SELECT count(*) - :orders_before AS orders_written FROM exchange.orders WHERE instrument = 'STOP-USD';
SELECT * FROM stop_pending('STOP-USD');

-- The first trade (at 100) triggers nothing: the buy stops are above it,
-- the sell stop below. From now on a stop the last price already reached
-- is rejected (stop_would_trigger), and journaled as such.
SELECT status FROM exchange.place_order('st_m1', 'STOP-USD', 'sell', 'limit', 0.2, 100);
SELECT status FROM exchange.place_order('st_m2', 'STOP-USD', 'sell', 'limit', 0.4, 105);
SELECT status FROM exchange.place_order('st_m3', 'STOP-USD', 'sell', 'limit', 0.5, 106);
SELECT status FROM exchange.place_order('st_m6', 'STOP-USD', 'sell', 'limit', 0.1, 107);
SELECT status FROM exchange.place_order('st_m4', 'STOP-USD', 'buy', 'limit', 1, 96);
SELECT status FROM exchange.place_order('st_m5', 'STOP-USD', 'buy', 'limit', 0.5, 95);
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_t1', 'STOP-USD', 'buy', 'limit', 0.2, 100);
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT exchange._book_last_price(instrument_id) AS last_price_ticks, exchange._last_trade_ticks(instrument_id) AS journal_ticks
  FROM exchange.instruments WHERE symbol = 'STOP-USD';
SELECT stop_seq('STOP-USD') AS base \gset
SELECT side, type, stop_price, status, reject_reason, filled_quantity, remaining_quantity
  FROM exchange.place_order('st_r', 'STOP-USD', 'buy', 'limit', 1, 110, stop_price => 100);
SELECT side, type, stop_price, status, reject_reason FROM exchange.place_order('st_r', 'STOP-USD', 'buy', 'market', 1, stop_price => 99.5);
SELECT side, type, stop_price, status, reject_reason FROM exchange.place_order('st_r', 'STOP-USD', 'sell', 'market', 1, stop_price => 100);
SELECT side, type, stop_price, status, reject_reason FROM exchange.place_order('st_r', 'STOP-USD', 'sell', 'limit', 1, 90, stop_price => 100.5);
SELECT status, reject_reason, stop_price FROM exchange.place_orders('[
    {"client_id": "st_r", "instrument": "STOP-USD", "side": "buy", "type": "market", "quantity": 1, "stop_price": "50"}]');
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT status, reject_reason, stop_price, count(*) FROM exchange.orders WHERE client_id = 'st_r' GROUP BY 1, 2, 3 ORDER BY 3;
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');

-- Triggering buy stops. st_e bids at 103 after st_d's stop was placed;
-- st_t2 buys 0.4 at 105: its trade at 105 reaches the stops of st_d
-- (104.5), st_a and st_c (105). They run right after it, lowest stop first,
-- then oldest first at 105, each with its own journal entry and sequence:
-- st_d rests at 103 behind st_e (a new time priority), st_a takes the ask at
-- 106 and rests the rest at 106, st_c (a stop-market) takes the ask at 107
-- and its rest is cancelled. The sell stop (95) stays pending.
SELECT status FROM exchange.place_order('st_e', 'STOP-USD', 'buy', 'limit', 0.2, 103);
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status, filled_quantity, jsonb_path_query_array(trades, '$[*].price') AS prices, seq - :base AS seq
  FROM exchange.place_order('st_t2', 'STOP-USD', 'buy', 'limit', 0.4, 105);
SELECT * FROM stop_journal('STOP-USD', :base);
-- Each entry's order_id is the row of its order (the stop's own row for a triggered one).
SELECT e.seq - :base AS seq, e.kind, o.client_id, o.stop_price, e.payload->>'order_id' = o.order_id::text AS payload_id
  FROM exchange.events e JOIN exchange.orders o USING (order_id)
 WHERE e.instrument_id = (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'STOP-USD') AND e.seq > :base
 ORDER BY e.seq;
SELECT * FROM stop_trades('STOP-USD', :base);
SELECT stop_trades_differing('STOP-USD', 0) AS trades_differing;
SELECT client_id, type, status, stop_price, filled_quantity, remaining_lots, cancel_reason
  FROM exchange.orders WHERE client_id IN ('st_a', 'st_c', 'st_d') ORDER BY client_id;
SELECT status, filled_quantity, remaining_quantity, stop_price, cancel_reason
  FROM exchange.get_order((SELECT id FROM sids WHERE name = 'st_a'));
-- The triggered orders queued when they triggered: after the command's own
-- order and after st_e, though placed before both.
SELECT (SELECT priority FROM exchange.orders WHERE client_id = 'st_d') > (SELECT priority FROM exchange.orders WHERE client_id = 'st_t2')
       AND (SELECT priority FROM exchange.orders WHERE client_id = 'st_d') > (SELECT priority FROM exchange.orders WHERE client_id = 'st_e')
       AND (SELECT created_at FROM exchange.orders WHERE client_id = 'st_d') <= (SELECT created_at FROM exchange.orders WHERE client_id = 'st_e')
       AS requeued;
SELECT * FROM stop_rows('STOP-USD');
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM book('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');

-- A cascade of sell stops: st_t3 sells 0.6 at 103 (last price 103) and
-- triggers st_h (stop 103, a stop-market of 1.2), whose last fill at 96
-- triggers st_i (stop 96, limit 95), whose fill at 95 triggers st_b (stop
-- 95, the stop-market placed first), which finds too little left: its rest
-- is cancelled.
SELECT type, status, stop_price FROM exchange.place_order('st_i', 'STOP-USD', 'sell', 'limit', 0.6, 95, stop_price => 96);
SELECT type, status, stop_price FROM exchange.place_order('st_h', 'STOP-USD', 'sell', 'market', 1.2, stop_price => 103);
SELECT * FROM stop_pending('STOP-USD');
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices, seq - :base AS seq
  FROM exchange.place_order('st_t3', 'STOP-USD', 'sell', 'limit', 0.6, 103);
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT * FROM stop_trades('STOP-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, cancel_reason
  FROM exchange.orders WHERE client_id IN ('st_h', 'st_i', 'st_b') ORDER BY priority;
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM book('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');
SELECT stop_trades_differing('STOP-USD', 0) AS trades_differing;

-- Lowest buy stop first whatever the order placed, oldest first at one
-- stop: st_j (stop 101), st_k (stop 100.5), st_l (stop 101), stop-limits
-- that will rest; a trade at 101 runs st_k, st_j, st_l, which rest at 97 in
-- that order.
SELECT status FROM exchange.place_order('st_m7', 'STOP-USD', 'sell', 'limit', 0.1, 101);
SELECT status FROM exchange.place_order('st_j', 'STOP-USD', 'buy', 'limit', 0.1, 97, stop_price => 101);
SELECT status FROM exchange.place_order('st_k', 'STOP-USD', 'buy', 'limit', 0.1, 97, stop_price => 100.5);
SELECT status FROM exchange.place_order('st_l', 'STOP-USD', 'buy', 'limit', 0.1, 97, stop_price => 101);
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status FROM exchange.place_order('st_t4', 'STOP-USD', 'buy', 'limit', 0.1, 101);
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT * FROM stop_rows('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');

-- Cancel and amend of pending stops. st_n and st_o wait at buy stop 110;
-- an amend to less at the same limit price keeps st_n's place, an amend to
-- more (or another limit price) moves it behind st_o; the stop price stays.
-- A stop-market order has no price to amend.
INSERT INTO sids SELECT 'st_n', order_id FROM exchange.place_order('st_n', 'STOP-USD', 'buy', 'limit', 1, 111,
                                                                  stop_price => 110);
INSERT INTO sids SELECT 'st_o', order_id FROM exchange.place_order('st_o', 'STOP-USD', 'buy', 'market', 0.5,
                                                                  stop_price => 110);
INSERT INTO sids SELECT 'st_p', order_id FROM exchange.place_order('st_p', 'STOP-USD', 'sell', 'limit', 0.4, 90,
                                                                  stop_price => 92);
SELECT * FROM stop_pending('STOP-USD');
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status, price, quantity, remaining_quantity, stop_price, seq - :base AS seq
  FROM exchange.amend_order((SELECT id FROM sids WHERE name = 'st_n'), quantity => 0.8);
SELECT * FROM stop_pending('STOP-USD');
SELECT status, price, quantity, remaining_quantity, stop_price
  FROM exchange.amend_order((SELECT id FROM sids WHERE name = 'st_n'), quantity => 0.9);
SELECT * FROM stop_pending('STOP-USD');
SELECT status, price, quantity, remaining_quantity, stop_price
  FROM exchange.amend_order((SELECT id FROM sids WHERE name = 'st_n'), price => 112);
SELECT status, price, quantity, remaining_quantity, stop_price
  FROM exchange.amend_order((SELECT id FROM sids WHERE name = 'st_o'), quantity => 0.7);
SELECT try($$SELECT exchange.amend_order((SELECT id FROM sids WHERE name = 'st_o'), price => 112)$$);
SELECT try($$SELECT exchange.amend_order((SELECT id FROM sids WHERE name = 'st_o'), quantity => 0.7, price => 112)$$);
SELECT try($$SELECT exchange.amend_order((SELECT id FROM sids WHERE name = 'st_n'), quantity => 0.9)$$);
SELECT try($$SELECT exchange.amend_order((SELECT id FROM sids WHERE name = 'st_n'), price => 112.25)$$);
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT payload->>'priority_kept' AS priority_kept FROM exchange.events
 WHERE order_id = (SELECT id FROM sids WHERE name = 'st_n') AND kind = 'order_amended' ORDER BY seq;
SELECT client_id, type, price, quantity, remaining_lots, status, stop_price, stop_ticks
  FROM exchange.orders WHERE client_id IN ('st_n', 'st_o') ORDER BY client_id;
SELECT * FROM exchange.verify('STOP-USD');
-- list_orders: without a status the pending stops are among a client's open
-- orders; with 'pending' only they are.
SELECT status FROM exchange.place_order('st_n', 'STOP-USD', 'buy', 'limit', 0.1, 90);
SELECT side, type, price, status, stop_price FROM exchange.list_orders('st_n');
SELECT side, type, price, status, stop_price FROM exchange.list_orders('st_n', 'pending');
SELECT side, type, price, status, stop_price FROM exchange.list_orders('st_n', 'open');
SELECT count(*) AS pending_listed FROM exchange.list_orders('st_a', 'pending');
-- Cancel: the stop leaves the pending ones (cancel_reason user); cancel_orders too.
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status, remaining_quantity, cancel_reason, stop_price, seq - :base AS seq
  FROM exchange.cancel_order((SELECT id FROM sids WHERE name = 'st_n'));
SELECT status, remaining_quantity, cancel_reason, stop_price, reject_reason
  FROM exchange.cancel_orders(ARRAY[(SELECT id FROM sids WHERE name = 'st_o'), (SELECT id FROM sids WHERE name = 'st_n')]);
SELECT try($$SELECT exchange.cancel_order((SELECT id FROM sids WHERE name = 'st_o'))$$);
SELECT try($$SELECT exchange.amend_order((SELECT id FROM sids WHERE name = 'st_o'), quantity => 1)$$);
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT client_id, status, remaining_lots, cancel_reason, stop_price
  FROM exchange.orders WHERE client_id IN ('st_n', 'st_o') AND stop_price IS NOT NULL ORDER BY client_id;
SELECT count(*) AS pending_listed FROM exchange.list_orders('st_n', 'pending');
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');

-- ROLLBACK after a trigger: the book, the pending stops, the rows and the
-- book's last price are as before. st_u's sale at 90 triggers st_p (sell
-- stop 92, limit 90), which rests at 90; rolled back, st_p is pending
-- again, the last trade price 101 again.
INSERT INTO saved SELECT * FROM stop_state('STOP-USD');
SELECT * FROM saved;
BEGIN;
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_u', 'STOP-USD', 'sell', 'limit', 0.4, 90);
SELECT status, remaining_quantity FROM exchange.get_order((SELECT id FROM sids WHERE name = 'st_p'));
SELECT * FROM stop_diff('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');
ROLLBACK;
SELECT * FROM stop_diff('STOP-USD');
SELECT status FROM exchange.get_order((SELECT id FROM sids WHERE name = 'st_p'));
SELECT count(*) AS rows_of_st_u FROM exchange.orders WHERE client_id = 'st_u';
SELECT * FROM exchange.verify('STOP-USD');
-- The same with ROLLBACK TO SAVEPOINT, the transaction going on: the last
-- trade price is 101 again, not 90, so a sell stop at 95 waits (at 90 it
-- would be rejected); that stop rolled back too, st_v's bid committed.
BEGIN;
SELECT status FROM exchange.place_order('st_v', 'STOP-USD', 'buy', 'limit', 0.1, 89);
SAVEPOINT before_trigger;
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_u', 'STOP-USD', 'sell', 'limit', 0.4, 90);
SELECT count(*) AS triggered FROM exchange.events
 WHERE kind = 'order_triggered' AND order_id = (SELECT id FROM sids WHERE name = 'st_p');
ROLLBACK TO SAVEPOINT before_trigger;
SELECT * FROM exchange.verify('STOP-USD');
SELECT status, reject_reason FROM exchange.place_order('st_v', 'STOP-USD', 'sell', 'market', 0.1, stop_price => 95);
SELECT * FROM stop_pending('STOP-USD');
ROLLBACK TO SAVEPOINT before_trigger;
COMMIT;
SELECT * FROM stop_diff('STOP-USD');
SELECT count(*) AS triggered FROM exchange.events
 WHERE kind = 'order_triggered' AND order_id = (SELECT id FROM sids WHERE name = 'st_p');
SELECT count(*) AS rows_of_st_u, (SELECT count(*) FROM exchange.orders WHERE client_id = 'st_v') AS rows_of_st_v
  FROM exchange.orders WHERE client_id = 'st_u';
SELECT * FROM exchange.verify('STOP-USD');

-- Rebuild: the book reloads the resting orders (rebuild answers how many),
-- the pending stops in their order and the last trade price from the
-- journal: verify finds nothing, the state is the same, a stop the last
-- price reached is still rejected, one beyond waits.
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOP-USD');
SELECT exchange.rebuild('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');
SELECT * FROM stop_diff('STOP-USD');
SELECT status, reject_reason FROM exchange.place_order('st_w', 'STOP-USD', 'buy', 'limit', 0.1, 102, stop_price => 101);
SELECT status, reject_reason FROM exchange.place_order('st_w', 'STOP-USD', 'sell', 'market', 0.1, stop_price => 101);
SELECT status, reject_reason FROM exchange.place_order('st_w', 'STOP-USD', 'buy', 'limit', 0.1, 102, stop_price => 101.5);
SELECT * FROM stop_pending('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');
-- The rebuilt book triggers: a trade at 101.5 runs st_w's new stop.
SELECT status FROM exchange.place_order('st_m8', 'STOP-USD', 'sell', 'limit', 0.2, 101.5);
SELECT stop_seq('STOP-USD') AS base \gset
SELECT status FROM exchange.place_order('st_t5', 'STOP-USD', 'buy', 'limit', 0.1, 101.5);
SELECT * FROM stop_journal('STOP-USD', :base);
SELECT exchange.rebuild('STOP-USD');
SELECT * FROM exchange.verify('STOP-USD');

-- A triggered FOK that cannot fill is cancelled (fok_unfillable), a
-- triggered market order meeting an empty book too (market_no_liquidity),
-- both without trades. STOPF-USD has no trade yet: a buy stop at 1 and a
-- sell stop at 1000 wait; the first trade (at 10) triggers both.
SELECT symbol FROM exchange.create_instrument('STOPF-USD', 1, 1);
SELECT status, stop_price FROM exchange.place_order('st_f1', 'STOPF-USD', 'buy', 'market', 2, stop_price => 1);
SELECT status, stop_price FROM exchange.place_order('st_f2', 'STOPF-USD', 'sell', 'limit', 5, 9, 'fok', stop_price => 1000);
SELECT status FROM exchange.place_order('st_f3', 'STOPF-USD', 'sell', 'limit', 1, 10);
SELECT status FROM exchange.place_order('st_f4', 'STOPF-USD', 'buy', 'limit', 3, 9);
SELECT stop_seq('STOPF-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_f5', 'STOPF-USD', 'buy', 'limit', 1, 10);
SELECT * FROM stop_journal('STOPF-USD', :base);
SELECT client_id, type, time_in_force, status, filled_quantity, remaining_lots, cancel_reason, reject_reason
  FROM exchange.orders WHERE client_id IN ('st_f1', 'st_f2') ORDER BY client_id;
SELECT count(*) AS trades_of_the_stops FROM exchange.trades t JOIN exchange.orders o
    ON o.order_id IN (t.buy_order_id, t.sell_order_id) WHERE o.client_id IN ('st_f1', 'st_f2');
SELECT * FROM book('STOPF-USD');
SELECT * FROM exchange.verify('STOPF-USD');

-- A stop placed earlier in the same place_orders batch, triggered by a
-- later item: it runs right after that item (its journal entry next), and
-- the batch answers each item as placed.
SELECT stop_seq('STOPF-USD') AS base \gset
SELECT client_id, status, stop_price, filled_quantity, jsonb_path_query_array(trades, '$[*].price') AS prices,
       seq - :base AS seq
  FROM exchange.place_orders('[
    {"client_id": "st_g1", "instrument": "STOPF-USD", "side": "sell", "type": "limit", "quantity": 1, "price": 11},
    {"client_id": "st_g2", "instrument": "STOPF-USD", "side": "sell", "type": "limit", "quantity": 1, "price": 12},
    {"client_id": "st_g3", "instrument": "STOPF-USD", "side": "buy", "type": "limit", "quantity": 2, "price": 13,
     "stop_price": 11},
    {"client_id": "st_g4", "instrument": "STOPF-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 11},
    {"client_id": "st_g5", "instrument": "STOPF-USD", "side": "sell", "type": "limit", "quantity": 1, "price": 14},
    {"client_id": "st_g6", "instrument": "STOPF-USD", "side": "sell", "type": "limit", "quantity": 2, "price": 15}
  ]');
SELECT * FROM stop_journal('STOPF-USD', :base);
SELECT * FROM stop_trades('STOPF-USD', :base);
SELECT status, filled_quantity, remaining_quantity FROM exchange.get_order(
    (SELECT order_id FROM exchange.orders WHERE client_id = 'st_g3'));
SELECT * FROM stop_rows('STOPF-USD');
SELECT * FROM exchange.verify('STOPF-USD');

-- An amend that moves an order to a crossing price trades, and its trade
-- triggers a stop: the amend's entry, then the triggered one.
SELECT status FROM exchange.place_order('st_h1', 'STOPF-USD', 'buy', 'market', 1, stop_price => 14);
SELECT stop_seq('STOPF-USD') AS base \gset
SELECT status, price, filled_quantity, remaining_quantity, jsonb_path_query_array(trades, '$[*].price') AS prices,
       seq - :base AS seq
  FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'st_g3'), price => 14);
SELECT * FROM stop_journal('STOPF-USD', :base);
SELECT * FROM stop_trades('STOPF-USD', :base);
SELECT * FROM stop_rows('STOPF-USD');
SELECT * FROM stop_pending('STOPF-USD');
SELECT * FROM exchange.verify('STOPF-USD');
SELECT exchange.rebuild('STOPF-USD');
SELECT * FROM exchange.verify('STOPF-USD');

-- A triggered stop takes from an iceberg: st_i4's fill refills st_i1's tip
-- behind st_i2 and triggers st_i3 (a stop-market), which takes st_i2, then
-- the tip, a refill and the next tip; the rows follow the book.
SELECT status, display_quantity FROM exchange.place_order('st_i1', 'STOPF-USD', 'sell', 'limit', 4, 17, display_quantity => 1);
SELECT status FROM exchange.place_order('st_i2', 'STOPF-USD', 'sell', 'limit', 1, 17);
SELECT status FROM exchange.place_order('st_i3', 'STOPF-USD', 'buy', 'market', 3, stop_price => 17);
SELECT stop_seq('STOPF-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_i4', 'STOPF-USD', 'buy', 'limit', 2, 17);
SELECT * FROM stop_journal('STOPF-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, visible_lots FROM exchange.orders
 WHERE client_id LIKE 'st_i_' ORDER BY client_id;
SELECT * FROM book('STOPF-USD');
SELECT * FROM exchange.verify('STOPF-USD');

-- The journal's level changes, the triggered entries' among them, give the
-- book back; at the seq of a triggering command the book is as that command
-- left it, before its stops ran.
SELECT symbol, count(d.side) AS levels_differing
  FROM unnest(ARRAY['STOP-USD', 'STOPF-USD']) symbol
  LEFT JOIN LATERAL ((SELECT * FROM exchange.orderbook_at(symbol, depth => 100)
                      EXCEPT ALL SELECT * FROM exchange.orderbook(symbol, 100))
                     UNION ALL
                     (SELECT * FROM exchange.orderbook(symbol, 100)
                      EXCEPT ALL SELECT * FROM exchange.orderbook_at(symbol, depth => 100))) d ON true
 GROUP BY symbol ORDER BY symbol;
SELECT side, price, quantity, order_count FROM exchange.orderbook_at('STOP-USD',
    (SELECT seq FROM exchange.events WHERE payload->>'client_id' = 'st_t2' AND instrument_id =
        (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'STOP-USD')));
SELECT side, price, quantity, order_count FROM exchange.orderbook_at('STOP-USD',
    (SELECT seq FROM exchange.events WHERE kind = 'order_triggered'
        AND order_id = (SELECT id FROM sids WHERE name = 'st_a')));
SELECT kind, count(*) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol IN ('STOP-USD', 'STOPF-USD') GROUP BY kind ORDER BY kind;
SELECT i.symbol, count(*) = max(e.seq) AND min(e.seq) = 1 AS gap_free
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol IN ('STOP-USD', 'STOPF-USD') GROUP BY i.symbol ORDER BY i.symbol;
SELECT count(*) AS fills_differing FROM exchange.orders o
 WHERE o.instrument IN ('STOP-USD', 'STOPF-USD') AND o.filled_quantity <> coalesce(
       (SELECT sum(t.quantity) FROM exchange.trades t WHERE o.order_id IN (t.buy_order_id, t.sell_order_id)), 0);
SELECT stop_trades_differing('STOP-USD', 0) + stop_trades_differing('STOPF-USD', 0) AS trades_differing;
SELECT * FROM exchange.verify('STOP-USD');
SELECT * FROM exchange.verify('STOPF-USD');

-- The answers of amend_order, amend_orders, cancel_order and cancel_orders
-- carry the order's stop price, as get_order and list_orders do, also for
-- a stop order that triggered and rests (st_j, st_k, st_l at 97).
SELECT a.status, a.stop_price, (SELECT stop_price FROM exchange.get_order(a.order_id)) AS get_order_stop_price
  FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'st_j' AND stop_price IS NOT NULL),
                            quantity => 0.2) a;
SELECT a.status, a.stop_price, (SELECT stop_price FROM exchange.get_order(a.order_id)) AS get_order_stop_price
  FROM exchange.amend_orders(jsonb_build_array(jsonb_build_object('order_id',
         (SELECT order_id FROM exchange.orders WHERE client_id = 'st_j' AND stop_price IS NOT NULL), 'quantity', 0.3))) a;
SELECT c.status, c.stop_price, (SELECT stop_price FROM exchange.get_order(c.order_id)) AS get_order_stop_price
  FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'st_l' AND stop_price IS NOT NULL)) c;
SELECT c.status, c.stop_price, (SELECT stop_price FROM exchange.get_order(c.order_id)) AS get_order_stop_price
  FROM exchange.cancel_orders(ARRAY(SELECT order_id FROM exchange.orders WHERE client_id = 'st_k' AND stop_price IS NOT NULL)) c;
SELECT * FROM exchange.verify('STOP-USD');

-- With a BEFORE UPDATE trigger on exchange.orders the rows are written by
-- statements (row_writer.sql); a triggered stop order's row too: st_x3's
-- trade at 18 triggers st_x1, which buys the rest of st_x2.
CREATE FUNCTION stop_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER stop_noop_orders BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION stop_noop();
SELECT status FROM exchange.place_order('st_x1', 'STOPF-USD', 'buy', 'limit', 1, 20, stop_price => 18);
SELECT status FROM exchange.place_order('st_x2', 'STOPF-USD', 'sell', 'limit', 2, 18);
SELECT stop_seq('STOPF-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('st_x3', 'STOPF-USD', 'buy', 'limit', 2, 18);
DROP TRIGGER stop_noop_orders ON exchange.orders;
SELECT * FROM stop_journal('STOPF-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots FROM exchange.orders WHERE client_id LIKE 'st_x_' ORDER BY client_id;
SELECT * FROM exchange.verify('STOPF-USD');

-- Moving a pending stop order's stop price (0.14): amend_order(...,
-- stop_price => ...) and amend_orders' "stop_price". The order leaves its
-- stop's queue for the back of the new stop's (a new, larger priority; the
-- quantity and limit price given with it change too); its entry
-- 'order_amended' has the new stop_price, priority_kept false, no trades and
-- no levels; nothing triggers. A trade at the new stop triggers it, one at
-- the old no longer does. stop_queue shows the book's pending stops (from
-- shared memory, _book_stops) in trigger order, each with its place by the
-- table's rows (ORDER BY stop, priority), which must be the same.
SELECT symbol FROM exchange.create_instrument('STOPM-USD', 0.5, 0.1);
CREATE FUNCTION mv(name text) RETURNS uuid LANGUAGE sql AS $$
    SELECT order_id FROM exchange.orders WHERE client_id = name AND instrument = 'STOPM-USD'
$$;
CREATE FUNCTION stop_queue(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    WITH b AS (SELECT s.*, i.tick_size FROM exchange.instruments i, exchange._book_stops(i.instrument_id) s
                WHERE i.symbol = stop_queue.symbol),
         t AS (SELECT o.order_no, o.client_id, o.side,
                      row_number() OVER (PARTITION BY o.side ORDER BY CASE WHEN o.side = 'buy' THEN o.stop_ticks
                                                                           ELSE -o.stop_ticks END, o.priority) AS place
                 FROM exchange.orders o WHERE o.instrument = symbol AND o.status = 'pending')
    SELECT format('%s #%s %s stop %s %s lots %s (table #%s)', coalesce(t.side, '?'), coalesce(b.rank::text, '-'),
                  coalesce(t.client_id, '?'), b.stop * b.tick_size,
                  CASE WHEN b.price = 0 THEN 'market' ELSE 'limit ' || b.price * b.tick_size END, b.qty,
                  coalesce(t.place::text, '-'))
      FROM b FULL JOIN t USING (order_no)
     ORDER BY coalesce(b.side, CASE WHEN t.side = 'buy' THEN 0 ELSE 1 END), b.rank, t.place
$$;
-- Before any trade: three buy stops (mv_a's at 105 oldest), two sell stops.
SELECT status, stop_price FROM exchange.place_order('mv_a', 'STOPM-USD', 'buy', 'limit', 1, 104, stop_price => 105);
SELECT status, stop_price FROM exchange.place_order('mv_b', 'STOPM-USD', 'buy', 'market', 0.5, stop_price => 106);
SELECT status, stop_price FROM exchange.place_order('mv_c', 'STOPM-USD', 'buy', 'limit', 0.3, 108, stop_price => 106);
SELECT status, stop_price FROM exchange.place_order('mv_s', 'STOPM-USD', 'sell', 'market', 0.4, stop_price => 95);
SELECT status, stop_price FROM exchange.place_order('mv_t', 'STOPM-USD', 'sell', 'limit', 0.2, 93, stop_price => 94);
SELECT * FROM stop_queue('STOPM-USD');
-- mv_a's stop 105 -> 106: it goes behind mv_b and mv_c, placed after it;
-- its quantity and limit price stay. A sell stop moves too (94 -> 96), no
-- trade yet to check it against.
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, price, quantity, remaining_quantity, stop_price, seq - :base AS seq
  FROM exchange.amend_order(mv('mv_a'), stop_price => 106);
SELECT status, price, quantity, remaining_quantity, stop_price, seq - :base AS seq
  FROM exchange.amend_order(mv('mv_t'), stop_price => 96);
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM stop_pending('STOPM-USD');
SELECT (SELECT priority FROM exchange.orders WHERE order_id = mv('mv_a'))
       > (SELECT max(priority) FROM exchange.orders WHERE client_id IN ('mv_b', 'mv_c', 'mv_s')) AS new_larger_priority;
SELECT client_id, type, price, quantity, remaining_lots, status, stop_price, stop_ticks
  FROM exchange.orders WHERE client_id IN ('mv_a', 'mv_t') ORDER BY client_id;
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT payload->>'client_id' AS client_id, payload->>'stop_price' AS stop_price, payload->>'priority_kept' AS priority_kept,
       jsonb_array_length(payload->'trades') AS trades, jsonb_array_length(payload->'levels') AS levels
  FROM exchange.events WHERE kind = 'order_amended' AND order_id IN (mv('mv_a'), mv('mv_t')) ORDER BY seq;
SELECT count(*) AS triggered FROM exchange.events e JOIN exchange.orders o USING (order_id)
 WHERE e.kind = 'order_triggered' AND o.instrument = 'STOPM-USD';
SELECT * FROM book('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
-- A move with a new quantity and limit price at once (mv_c: 106 -> 105.5,
-- 0.6 at 107). A move with a lower quantity still goes to the back (mv_b
-- 106 -> 107, 0.4: priority_kept false); moved back to 106 it is behind mv_a,
-- which it was ahead of.
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, price, quantity, remaining_quantity, stop_price
  FROM exchange.amend_order(mv('mv_c'), quantity => 0.6, price => 107, stop_price => 105.5);
SELECT * FROM stop_queue('STOPM-USD');
SELECT status, price, quantity, remaining_quantity, stop_price
  FROM exchange.amend_order(mv('mv_b'), quantity => 0.4, stop_price => 107);
SELECT * FROM stop_queue('STOPM-USD');
SELECT status, price, quantity, remaining_quantity, stop_price FROM exchange.amend_order(mv('mv_b'), stop_price => 106);
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT payload->>'client_id' AS client_id, payload->>'priority_kept' AS priority_kept
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol = 'STOPM-USD' AND e.seq > :base ORDER BY e.seq;
SELECT client_id, type, price, quantity, remaining_lots, status, stop_price, stop_ticks
  FROM exchange.orders WHERE client_id IN ('mv_b', 'mv_c') ORDER BY client_id;
SELECT * FROM exchange.verify('STOPM-USD');
-- Its own stop price is no move: with a lower quantity mv_a keeps its place
-- (priority_kept true); alone, or with its own quantity, it is no_change.
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, quantity, stop_price FROM exchange.amend_order(mv('mv_a'), quantity => 0.9, stop_price => 106);
SELECT payload->>'priority_kept' AS priority_kept FROM exchange.events
 WHERE order_id = mv('mv_a') AND kind = 'order_amended' ORDER BY seq DESC LIMIT 1;
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 106)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), quantity => 0.9, stop_price => 106.0)$$);
SELECT * FROM stop_queue('STOPM-USD');
SELECT stop_seq('STOPM-USD') - :base AS entries;
SELECT * FROM exchange.verify('STOPM-USD');

-- Refused moves change nothing (the pending stops, the book, the last
-- price, the journal's seq): no change given; a stop price not positive,
-- not a multiple of the tick (0.5), NaN, infinite or too large; a price
-- for a stop-market order; a stop price for an order in the book (mv_o);
-- an unknown id, another client's order, a cancelled stop order.
SELECT status FROM exchange.place_order('mv_o', 'STOPM-USD', 'buy', 'limit', 0.1, 90);
SELECT status FROM exchange.place_order('mv_x', 'STOPM-USD', 'sell', 'market', 0.1, stop_price => 92);
SELECT status FROM exchange.cancel_order(mv('mv_x'));
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOPM-USD');
SELECT try($$SELECT exchange.amend_order(mv('mv_a'))$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), NULL, NULL, NULL, NULL)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 0)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => -106)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 106.25)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), quantity => 0.5, stop_price => 106.25)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 'NaN')$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 'Infinity')$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 1e18)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_b'), price => 107, stop_price => 107)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_o'), stop_price => 95)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_o'), quantity => 0.2, stop_price => 95)$$);
SELECT try($$SELECT exchange.amend_order(gen_random_uuid(), stop_price => 107)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 107, client_id => 'mv_b')$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_x'), stop_price => 91)$$);
SELECT * FROM stop_diff('STOPM-USD');
SELECT status, price, quantity, stop_price FROM exchange.get_order(mv('mv_o'));
SELECT * FROM exchange.verify('STOPM-USD');

-- After the first trade (100): a new stop it has already reached is
-- refused (stop_would_trigger: buy at or below 100, sell at or above), with
-- a new quantity too; nothing changes.
SELECT status FROM exchange.place_order('mv_m1', 'STOPM-USD', 'sell', 'limit', 0.2, 100);
SELECT status FROM exchange.place_order('mv_m2', 'STOPM-USD', 'sell', 'limit', 0.1, 105.5);
SELECT status FROM exchange.place_order('mv_m3', 'STOPM-USD', 'sell', 'limit', 0.5, 106);
SELECT status FROM exchange.place_order('mv_m4', 'STOPM-USD', 'sell', 'limit', 0.5, 106.5);
SELECT status FROM exchange.place_order('mv_m5', 'STOPM-USD', 'sell', 'limit', 0.1, 107);
SELECT status FROM exchange.place_order('mv_m6', 'STOPM-USD', 'sell', 'limit', 2, 108);
SELECT status FROM exchange.place_order('mv_m7', 'STOPM-USD', 'buy', 'limit', 0.1, 99);
SELECT status FROM exchange.place_order('mv_m8', 'STOPM-USD', 'buy', 'limit', 0.5, 96);
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('mv_t1', 'STOPM-USD', 'buy', 'limit', 0.2, 100);
SELECT * FROM stop_journal('STOPM-USD', :base);
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOPM-USD');
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 100)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 99.5)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), quantity => 0.5, stop_price => 100)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_b'), stop_price => 50)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_t'), stop_price => 100)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_t'), stop_price => 100.5)$$);
SELECT * FROM stop_diff('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');

-- amend_orders: each item's "stop_price" (a JSON number or string); a
-- refused item is a 'rejected' row with amend_order's reason and message
-- and changes nothing, the others go through: mv_t 96 -> 97, mv_s 95 -> 99.5
-- (one tick below the last trade price).
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT r.ordinality AS k, status, reject_reason,
       regexp_replace(reject_message, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>') AS reject_message,
       stop_price, quantity
  FROM exchange.amend_orders(jsonb_build_array(
    jsonb_build_object('order_id', mv('mv_t'), 'stop_price', '97'),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 100),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 'x', 'quantity', 0.5),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', true),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 106.25),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 0),
    jsonb_build_object('order_id', mv('mv_o'), 'stop_price', 95),
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 106),
    jsonb_build_object('order_id', mv('mv_a')),
    jsonb_build_object('order_id', mv('mv_b'), 'price', 107, 'stop_price', 107),
    jsonb_build_object('order_id', mv('mv_t'), 'stop_price', 98, 'client_id', 'mv_s'),
    jsonb_build_object('order_id', mv('mv_x'), 'stop_price', 98),
    jsonb_build_object('order_id', mv('mv_s'), 'stop_price', 99.5))) WITH ORDINALITY AS r
 ORDER BY r.ordinality;
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');

-- ROLLBACK of a move gives the old stop and place back, in the book and the
-- rows: mv_a moved by its owner to 100.5, one tick above the last trade
-- price (allowed), then rolled back. ROLLBACK TO SAVEPOINT too, the
-- transaction going on to move mv_c (105.5 -> 106.5), which commits.
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOPM-USD');
CREATE TEMP TABLE saved_queue AS SELECT * FROM stop_queue('STOPM-USD') q(line);
BEGIN;
SELECT status, stop_price FROM exchange.amend_order(mv('mv_a'), stop_price => 100.5, client_id => 'mv_a');
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM stop_diff('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
ROLLBACK;
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM stop_diff('STOPM-USD');
SELECT stop_price, stop_ticks FROM exchange.orders WHERE order_id = mv('mv_a');
SELECT * FROM exchange.verify('STOPM-USD');
BEGIN;
SAVEPOINT before_move;
SELECT status, stop_price FROM exchange.amend_order(mv('mv_b'), quantity => 0.3, stop_price => 105.5);
SELECT * FROM stop_queue('STOPM-USD');
ROLLBACK TO SAVEPOINT before_move;
SELECT (SELECT array_agg(q) FROM stop_queue('STOPM-USD') q) = (SELECT array_agg(line) FROM saved_queue) AS queue_as_before;
SELECT * FROM exchange.verify('STOPM-USD');
SELECT status, stop_price FROM exchange.amend_order(mv('mv_c'), stop_price => 106.5);
COMMIT;
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM stop_diff('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');

-- The new stop triggers, the old no longer does. mv_t's stop goes down to
-- 93 (it was 94, 96, then 97). A sale at 99 reaches mv_s's new stop 99.5
-- (it was 95): mv_s sells at 96, which reaches neither mv_t's new stop nor
-- triggers it at its old ones.
SELECT status, stop_price FROM exchange.amend_order(mv('mv_t'), stop_price => 93);
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('mv_t2', 'STOPM-USD', 'sell', 'limit', 0.1, 99);
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
-- A buy at 105.5, mv_c's old stop, triggers nothing (mv_c waits at 106.5,
-- mv_a and mv_b at 106).
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('mv_t3', 'STOPM-USD', 'buy', 'limit', 0.1, 105.5);
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT * FROM stop_queue('STOPM-USD');
-- A buy at 106 triggers mv_a, then mv_b (mv_b was placed before mv_a and
-- was ahead of it at 106, but left and came back): mv_a (limit 104) rests,
-- mv_b (market) buys the rest at 106. mv_c (106.5) waits.
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('mv_t4', 'STOPM-USD', 'buy', 'limit', 0.1, 106);
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
-- A buy at 106.5 triggers mv_c at its new stop: it buys 0.4 at 106.5 and
-- 0.1 at 107, the rest rests at its new limit price 107.
SELECT stop_seq('STOPM-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('mv_t5', 'STOPM-USD', 'buy', 'limit', 0.1, 106.5);
SELECT * FROM stop_journal('STOPM-USD', :base);
SELECT * FROM stop_trades('STOPM-USD', 0);
SELECT stop_trades_differing('STOPM-USD', 0) AS trades_differing;
SELECT client_id, type, price, quantity, status, filled_quantity, remaining_lots, stop_price, cancel_reason
  FROM exchange.orders WHERE client_id IN ('mv_a', 'mv_b', 'mv_c', 'mv_s', 'mv_t') ORDER BY client_id;
SELECT * FROM stop_rows('STOPM-USD');
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
-- A stop order that triggered has no stop price to move: resting (mv_a
-- open, mv_c partially filled) it is invalid_stop_price, filled (mv_b) not
-- open; their quantity still amends.
SELECT try($$SELECT exchange.amend_order(mv('mv_a'), stop_price => 110)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_c'), stop_price => 110)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_c'), quantity => 0.7, stop_price => 107)$$);
SELECT try($$SELECT exchange.amend_order(mv('mv_b'), stop_price => 110)$$);
SELECT status, reject_reason FROM exchange.amend_orders(jsonb_build_array(
    jsonb_build_object('order_id', mv('mv_a'), 'stop_price', 110),
    jsonb_build_object('order_id', mv('mv_c'), 'stop_price', '110')));
SELECT status, quantity, remaining_quantity, stop_price FROM exchange.amend_order(mv('mv_a'), quantity => 0.8);
SELECT * FROM exchange.verify('STOPM-USD');

-- Moves with a BEFORE UPDATE trigger on exchange.orders (the rows written
-- by statements, row_writer.sql): mv_v waits at 110, mv_u placed before it
-- at 110.5 moves behind it, and mv_w, a stop-market order (no price: its
-- statement's price parameters are NULL, the others not), moves behind both
-- and then gives up a lot; the rows and the book agree.
SELECT status FROM exchange.place_order('mv_u', 'STOPM-USD', 'buy', 'limit', 0.1, 112, stop_price => 110.5);
SELECT status FROM exchange.place_order('mv_v', 'STOPM-USD', 'buy', 'limit', 0.2, 111, stop_price => 110);
SELECT status FROM exchange.place_order('mv_w', 'STOPM-USD', 'buy', 'market', 0.3, stop_price => 111);
CREATE TRIGGER stop_noop_orders BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION stop_noop();
SELECT status, stop_price FROM exchange.amend_order(mv('mv_u'), stop_price => 110);
SELECT status, quantity, stop_price FROM exchange.amend_order(mv('mv_v'), quantity => 0.1);
SELECT status, price, quantity, stop_price FROM exchange.amend_order(mv('mv_w'), stop_price => 110);
SELECT status, price, quantity, stop_price FROM exchange.amend_order(mv('mv_w'), quantity => 0.2);
DROP TRIGGER stop_noop_orders ON exchange.orders;
SELECT client_id, type, price, price_ticks, quantity, quantity_lots, remaining_lots, stop_price, stop_ticks
  FROM exchange.orders WHERE client_id IN ('mv_u', 'mv_v', 'mv_w') ORDER BY client_id;
SELECT * FROM stop_queue('STOPM-USD');
SELECT * FROM exchange.verify('STOPM-USD');
-- A rebuild reloads the moved stops at their new stop prices and places
-- (by priority): the same queue, verify finds nothing; the journal has
-- every move and gives the book back.
TRUNCATE saved_queue;
INSERT INTO saved_queue SELECT * FROM stop_queue('STOPM-USD');
SELECT exchange.rebuild('STOPM-USD');
SELECT (SELECT array_agg(q) FROM stop_queue('STOPM-USD') q) = (SELECT array_agg(line) FROM saved_queue) AS queue_as_before;
SELECT * FROM exchange.verify('STOPM-USD');
SELECT kind, count(*), count(*) FILTER (WHERE payload ? 'stop_price') AS with_stop_price
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol = 'STOPM-USD' GROUP BY kind ORDER BY kind;
SELECT count(d.side) AS levels_differing
  FROM ((SELECT * FROM exchange.orderbook_at('STOPM-USD', depth => 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook('STOPM-USD', 100))
        UNION ALL
        (SELECT * FROM exchange.orderbook('STOPM-USD', 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook_at('STOPM-USD', depth => 100))) d;
SELECT count(*) = max(e.seq) AND min(e.seq) = 1 AS gap_free
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = 'STOPM-USD';
SELECT * FROM exchange.verify('STOPM-USD');
-- stats() (0.14) counts the pending stop orders and their stop prices
-- apart from the book's orders and levels: here 3 buys at 110 and a sell
-- at 93, 4 orders at 2 stop prices.
SELECT s.pending_stops, s.stop_levels,
       s.pending_stops = (SELECT count(*) FROM exchange.orders o WHERE o.instrument = 'STOPM-USD' AND o.status = 'pending')
           AS rows_agree,
       s.resting_orders = (SELECT count(*) FROM exchange.orders o
                            WHERE o.instrument = 'STOPM-USD' AND o.status IN ('open', 'partially_filled'))
           AS book_agrees
  FROM exchange.stats() s WHERE s.instrument = 'STOPM-USD';

-- A book without pending stop orders is loaded without its last trade
-- price: reading it walks the journal back to its last trade. The first
-- stop placed or moved before the book's own first trade reads it; a
-- rollback keeps what was read, as it describes what was committed before.
-- (Index scans only, so that the journal rows each statement reads count
-- the walk: 51 entries here, one for the sequence.)
SELECT symbol FROM exchange.create_instrument('STOPL-USD', 1, 1);
SELECT status FROM exchange.place_order('sl_a', 'STOPL-USD', 'sell', 'limit', 1, 100);
SELECT status FROM exchange.place_order('sl_b', 'STOPL-USD', 'buy', 'limit', 1, 100);
SELECT count(*) AS quotes FROM generate_series(1, 50) g,
       LATERAL exchange.place_order('sl_q', 'STOPL-USD', 'buy', 'limit', 1, 50 + g % 40) p;
SET enable_seqscan = off;
CREATE TEMP VIEW journal_reads AS
    SELECT idx_tup_fetch + seq_tup_read AS n FROM pg_stat_xact_user_tables
     WHERE schemaname = 'exchange' AND relname = 'events';
BEGIN;
SELECT n AS before_rebuild FROM journal_reads \gset
SELECT exchange.rebuild('STOPL-USD') AS resting;
SELECT n - :before_rebuild < 10 AS rebuild_did_not_walk FROM journal_reads;
SELECT n AS before_stop FROM journal_reads \gset
SELECT status, reject_reason FROM exchange.place_order('sl_s', 'STOPL-USD', 'buy', 'market', 1, stop_price => 100);
SELECT n - :before_stop >= 51 AS stop_walked FROM journal_reads;
ROLLBACK;
BEGIN;
SELECT n AS before_stop FROM journal_reads \gset
SELECT status, reject_reason FROM exchange.place_order('sl_s', 'STOPL-USD', 'sell', 'market', 1, stop_price => 100);
SELECT status, stop_price FROM exchange.place_order('sl_s', 'STOPL-USD', 'buy', 'market', 1, stop_price => 101);
SELECT n - :before_stop < 10 AS read_once FROM journal_reads;
ROLLBACK;
-- _book_last_price answers the journal's price before the book reads it.
-- A book with pending stop orders reads it at the load, to check them.
SELECT exchange.rebuild('STOPL-USD') AS resting;
SELECT exchange._book_last_price(instrument_id) AS book_ticks, exchange._last_trade_ticks(instrument_id) AS journal_ticks
  FROM exchange.instruments WHERE symbol = 'STOPL-USD';
SELECT status, stop_price FROM exchange.place_order('sl_s', 'STOPL-USD', 'buy', 'market', 1, stop_price => 103);
BEGIN;
SELECT n AS before_rebuild FROM journal_reads \gset
SELECT exchange.rebuild('STOPL-USD') AS resting;
SELECT n - :before_rebuild >= 51 AS rebuild_walked FROM journal_reads;
SELECT n AS before_stop FROM journal_reads \gset
SELECT status, reject_reason FROM exchange.place_order('sl_s', 'STOPL-USD', 'sell', 'market', 1, stop_price => 100);
SELECT n - :before_stop < 10 AS read_at_load FROM journal_reads;
ROLLBACK;
SELECT * FROM exchange.verify('STOPL-USD');
-- verify (0.15) compares the last trade price only of a book that has read
-- it (_book_last_price_read NULL until then): rebuilt without pending stop
-- orders, its verify does not walk the journal. And it compares a pending
-- stop order's display quantity with the book's.
SELECT count(*) AS cancelled FROM exchange.orders o, exchange.cancel_order(o.order_id) c
 WHERE o.instrument = 'STOPL-USD' AND o.status = 'pending';
SELECT exchange.rebuild('STOPL-USD') AS resting;
SELECT exchange._book_last_price_read(instrument_id) AS read_ticks FROM exchange.instruments WHERE symbol = 'STOPL-USD';
BEGIN;
SELECT n AS before_verify FROM journal_reads \gset
SELECT * FROM exchange.verify('STOPL-USD');
SELECT n - :before_verify < 10 AS verify_did_not_walk FROM journal_reads;
SELECT order_id AS sl_ice FROM exchange.place_order('sl_i', 'STOPL-USD', 'buy', 'limit', 4, 110, stop_price => 105,
                                                    display_quantity => 1) \gset
SELECT exchange._book_last_price_read(instrument_id) AS read_ticks FROM exchange.instruments WHERE symbol = 'STOPL-USD';
SELECT n AS before_verify FROM journal_reads \gset
SELECT * FROM exchange.verify('STOPL-USD');
SELECT n - :before_verify >= 51 AS verify_walked FROM journal_reads;
UPDATE exchange.orders SET display_lots = 2 WHERE order_id = :'sl_ice';
SELECT regexp_replace(problem, 'order_no \d+', 'order_no N') AS problem FROM exchange.verify('STOPL-USD');
ROLLBACK;
-- place_orders reads it as place_order does: after a rebuild without
-- pending stops, in a batch whose first item does not trade, the second,
-- its first stop, reads it (101 waits) and the third, a stop the last
-- trade (100) has reached, is refused.
SELECT exchange.rebuild('STOPL-USD') AS resting;
BEGIN;
SELECT status, reject_reason, stop_price FROM exchange.place_orders('[
  {"client_id": "sl_b1", "instrument": "STOPL-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 60},
  {"client_id": "sl_b1", "instrument": "STOPL-USD", "side": "buy", "type": "market", "quantity": 1, "stop_price": 101},
  {"client_id": "sl_b1", "instrument": "STOPL-USD", "side": "sell", "type": "market", "quantity": 1, "stop_price": 100}]');
ROLLBACK;
RESET enable_seqscan;

-- Stop-limit icebergs: a stop-limit GTC order may have a display_quantity.
-- It waits with its whole quantity and shows nothing (its row's
-- visible_lots is 0, no level has it); triggered, it runs as an iceberg
-- placed at that moment: it trades its whole quantity as a taker and rests
-- with a tip of min(display, remaining), the rest hidden; its
-- order_triggered entry carries its display_quantity. si_rows shows the
-- resting orders of an instrument in book order with the part each shows.
SELECT symbol FROM exchange.create_instrument('STOPI-USD', 0.5, 0.1);
CREATE FUNCTION si(name text) RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT order_id FROM exchange.orders WHERE client_id = name AND instrument = 'STOPI-USD'
$$;
-- STOPI-USD's journal entries after seq `after` (through its key, not a
-- scan of every instrument's).
CREATE FUNCTION si_entries(after bigint DEFAULT 0) RETURNS SETOF exchange.events LANGUAGE sql STABLE AS $$
    SELECT * FROM exchange.events
     WHERE instrument_id = (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'STOPI-USD') AND seq > after
$$;
CREATE FUNCTION si_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT client_id || ' ' || side || ' ' || price || ' remaining ' || remaining_lots
           || coalesce(' shown ' || visible_lots || ' of ' || display_lots, '') || ' ' || status
           || coalesce(' (stop ' || stop_price || ')', '')
      FROM exchange.orders o WHERE o.instrument = symbol AND status IN ('open', 'partially_filled')
     ORDER BY side, CASE WHEN side = 'buy' THEN -price_ticks ELSE price_ticks END, priority
$$;
-- Before any trade: a buy (stop 105, limit 106, 2 showing 0.5) and a sell
-- (stop 95, limit 94, 1 showing 0.2) wait; the answers, get_order, the rows
-- and the order_placed entries carry the display; the book is empty.
SELECT side, type, price, quantity, remaining_quantity, status, stop_price, display_quantity
  FROM exchange.place_order('si_a', 'STOPI-USD', 'buy', 'limit', 2, 106, stop_price => 105, display_quantity => 0.5);
SELECT side, type, price, quantity, remaining_quantity, status, stop_price, display_quantity
  FROM exchange.place_order('si_b', 'STOPI-USD', 'sell', 'limit', 1, 94, stop_price => 95, display_quantity => 0.2);
SELECT status, remaining_quantity, stop_price, display_quantity FROM exchange.get_order(si('si_a'));
SELECT client_id, status, remaining_lots, display_quantity, display_lots, visible_lots, stop_price
  FROM exchange.orders WHERE instrument = 'STOPI-USD' ORDER BY client_id;
SELECT * FROM book('STOPI-USD');
SELECT * FROM stop_queue('STOPI-USD');
SELECT * FROM stop_journal('STOPI-USD', 0);
SELECT e.payload->>'client_id' AS client_id, e.payload->>'display_quantity' AS journal_display,
       jsonb_array_length(e.payload->'levels') AS levels
  FROM si_entries() e WHERE e.order_id IN (si('si_a'), si('si_b')) ORDER BY e.seq;
SELECT * FROM exchange.verify('STOPI-USD');

-- Refused: post_only on a stop order (with a display or without); a display
-- on a stop-market or an IOC/FOK stop (as without a stop); a display not a
-- multiple of the lot, above the quantity, or under 1/100 of it. Nothing
-- is written, in place_order and in place_orders.
SELECT count(*) AS orders_before FROM exchange.orders WHERE instrument = 'STOPI-USD' \gset
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 1, 110, post_only => true,
                                         stop_price => 108, display_quantity => 0.5)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 1, 110, post_only => true,
                                         stop_price => 108)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'market', 1, stop_price => 108,
                                         display_quantity => 0.5)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 1, 110, 'ioc', stop_price => 108,
                                         display_quantity => 0.5)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'sell', 'limit', 1, 90, 'fok', stop_price => 92,
                                         display_quantity => 0.5)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 1, 110, stop_price => 108,
                                         display_quantity => 0.05)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 1, 110, stop_price => 108,
                                         display_quantity => 1.5)$$);
SELECT try($$SELECT exchange.place_order('si_g', 'STOPI-USD', 'buy', 'limit', 10.1, 110, stop_price => 108,
                                         display_quantity => 0.1)$$);
SELECT status, reject_reason, reject_message, stop_price, display_quantity FROM exchange.place_orders('[
    {"client_id": "si_g", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "stop_price": 108, "display_quantity": 0.5, "post_only": true},
    {"client_id": "si_g", "instrument": "STOPI-USD", "side": "buy", "type": "market", "quantity": 1,
     "stop_price": 108, "display_quantity": "0.5"},
    {"client_id": "si_g", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "time_in_force": "fok", "stop_price": 108, "display_quantity": 0.5},
    {"client_id": "si_g", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 110,
     "stop_price": 108, "display_quantity": 2}]');
SELECT count(*) - :orders_before AS orders_written FROM exchange.orders WHERE instrument = 'STOPI-USD';
SELECT * FROM stop_queue('STOPI-USD');

-- The first trade (at 100) triggers nothing. Then si_t1's trade at 105
-- triggers si_a in a later statement: it buys its whole quantity's worth,
-- 0.3 at 105 and 0.4 at 106 (more than its display), and rests 1.3 at 106
-- showing 0.5: the book shows only the tip, the row's visible_lots is 5.
SELECT status FROM exchange.place_order('si_m1', 'STOPI-USD', 'sell', 'limit', 0.1, 100);
SELECT status FROM exchange.place_order('si_m2', 'STOPI-USD', 'buy', 'limit', 0.1, 100);
SELECT status FROM exchange.place_order('si_m3', 'STOPI-USD', 'sell', 'limit', 0.4, 105);
SELECT status FROM exchange.place_order('si_m4', 'STOPI-USD', 'sell', 'limit', 0.4, 106);
SELECT * FROM stop_queue('STOPI-USD');
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices, seq - :base AS seq
  FROM exchange.place_order('si_t1', 'STOPI-USD', 'buy', 'limit', 0.1, 105);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT e.seq - :base AS seq, e.kind, e.payload->>'client_id' AS client_id,
       e.payload->>'display_quantity' AS journal_display, e.payload->>'remaining_quantity' AS remaining
  FROM si_entries(:base) e ORDER BY e.seq;
SELECT * FROM stop_trades('STOPI-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots, stop_price
  FROM exchange.orders WHERE order_id = si('si_a');
SELECT status, filled_quantity, remaining_quantity, display_quantity, stop_price FROM exchange.get_order(si('si_a'));
SELECT * FROM book('STOPI-USD');
SELECT * FROM si_rows('STOPI-USD');
SELECT * FROM stop_queue('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- A later fill refills it as any iceberg: si_p bids 0.2 at 106 behind it;
-- si_r1 sells 0.6 at 106, takes si_a's tip (refilled with 0.5, to the back
-- behind si_p), then 0.1 of si_p.
SELECT status FROM exchange.place_order('si_p', 'STOPI-USD', 'buy', 'limit', 0.2, 106);
SELECT * FROM book('STOPI-USD');
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].quantity') AS fills
  FROM exchange.place_order('si_r1', 'STOPI-USD', 'sell', 'limit', 0.6, 106);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT * FROM si_rows('STOPI-USD');
SELECT * FROM book('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- A trigger inside one place_orders call, the iceberg stop staged by the
-- same call: si_c (stop 108, limit 109, 1 showing 0.2) waits, si_n3's trade
-- at 108 triggers it, it buys 0.2 at 108 and 0.4 at 109 and rests 0.4 at
-- 109 showing 0.2; si_n4 takes 0.1 of the tip, si_n5 the rest of it, which
-- refills it with 0.2. The batch answers si_c as placed (pending); its row
-- is written as the call leaves it.
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT client_id, status, stop_price, display_quantity, filled_quantity,
       jsonb_path_query_array(trades, '$[*].price') AS prices, seq - :base AS seq
  FROM exchange.place_orders('[
    {"client_id": "si_c", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 109,
     "stop_price": 108, "display_quantity": "0.2"},
    {"client_id": "si_n1", "instrument": "STOPI-USD", "side": "sell", "type": "limit", "quantity": 0.3, "price": 108},
    {"client_id": "si_n2", "instrument": "STOPI-USD", "side": "sell", "type": "limit", "quantity": 0.4, "price": 109},
    {"client_id": "si_n3", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 0.1, "price": 108},
    {"client_id": "si_n4", "instrument": "STOPI-USD", "side": "sell", "type": "limit", "quantity": 0.1, "price": 109},
    {"client_id": "si_n5", "instrument": "STOPI-USD", "side": "sell", "type": "limit", "quantity": 0.1, "price": 109}
  ]');
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT e.seq - :base AS seq, e.kind, e.payload->>'client_id' AS client_id,
       e.payload->>'display_quantity' AS journal_display, e.payload->>'remaining_quantity' AS remaining
  FROM si_entries() e WHERE e.order_id = si('si_c') ORDER BY e.seq;
SELECT * FROM stop_trades('STOPI-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots, stop_price
  FROM exchange.orders WHERE order_id = si('si_c');
SELECT status, filled_quantity, remaining_quantity, display_quantity FROM exchange.get_order(si('si_c'));
SELECT * FROM si_rows('STOPI-USD');
SELECT * FROM book('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- A rebuild gives the same book: its levels show the same tips, and
-- verify finds the tips, hidden parts and places of the rows and the
-- pending si_b; the journal's level changes give it back too.
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOPI-USD');
SELECT exchange.rebuild('STOPI-USD');
SELECT * FROM stop_diff('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');
SELECT count(d.side) AS levels_differing
  FROM ((SELECT * FROM exchange.orderbook_at('STOPI-USD', depth => 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook('STOPI-USD', 100))
        UNION ALL
        (SELECT * FROM exchange.orderbook('STOPI-USD', 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook_at('STOPI-USD', depth => 100))) d;

-- Amend of a pending iceberg stop. si_d (stop 111, 1 showing 0.2) waits
-- ahead of si_e, a plain stop at the same stop. Less keeps its place and
-- its display; more than 100 times the display is invalid_display (100
-- times is allowed, and goes behind si_e: rolled back); less than the
-- display is kept, and triggered it rests whole (0.1 shown of 0.1).
SELECT status, display_quantity FROM exchange.place_order('si_d', 'STOPI-USD', 'buy', 'limit', 1, 112, stop_price => 111,
                                                          display_quantity => 0.2);
SELECT status, display_quantity FROM exchange.place_order('si_e', 'STOPI-USD', 'buy', 'limit', 0.5, 112, stop_price => 111);
SELECT * FROM stop_queue('STOPI-USD');
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, quantity, remaining_quantity, display_quantity, stop_price FROM exchange.amend_order(si('si_d'), quantity => 0.8);
SELECT * FROM stop_queue('STOPI-USD');
SELECT try($$SELECT exchange.amend_order(si('si_d'), quantity => 20.1)$$);
SELECT try($$SELECT exchange.amend_order(si('si_d'), quantity => 25, price => 113)$$);
SELECT status, reject_reason,
       regexp_replace(reject_message, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>') AS reject_message
  FROM exchange.amend_orders(jsonb_build_array(jsonb_build_object('order_id', si('si_d'), 'quantity', '21')));
BEGIN;
SELECT status, quantity, display_quantity FROM exchange.amend_order(si('si_d'), quantity => 20);
SELECT * FROM stop_queue('STOPI-USD');
ROLLBACK;
SELECT status, quantity, remaining_quantity, display_quantity FROM exchange.amend_order(si('si_d'), quantity => 0.1);
SELECT * FROM stop_queue('STOPI-USD');
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT payload->>'priority_kept' AS priority_kept FROM si_entries()
 WHERE order_id = si('si_d') AND kind = 'order_amended' ORDER BY seq;
SELECT client_id, status, quantity, remaining_lots, display_quantity, display_lots, visible_lots, stop_price
  FROM exchange.orders WHERE order_id = si('si_d');
SELECT * FROM exchange.verify('STOPI-USD');
SELECT status FROM exchange.place_order('si_m5', 'STOPI-USD', 'sell', 'limit', 0.1, 111);
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('si_t2', 'STOPI-USD', 'buy', 'limit', 0.1, 111);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT e.payload->>'client_id' AS client_id, e.payload->>'display_quantity' AS journal_display
  FROM si_entries(:base) e WHERE e.kind = 'order_triggered' ORDER BY e.seq;
SELECT * FROM si_rows('STOPI-USD');
SELECT * FROM book('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- Moving its stop price keeps its display: si_f (stop 114, 1.2 showing
-- 0.3) moves to 115; a rebuild reloads it with its display; a trade at 114
-- (its old stop) triggers nothing, one at 115 triggers it: it buys 0.1 at
-- 115 and rests 1.1 at 116 showing 0.3.
SELECT status, stop_price, display_quantity FROM exchange.place_order('si_f', 'STOPI-USD', 'buy', 'limit', 1.2, 116,
                                                                      stop_price => 114, display_quantity => 0.3);
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, quantity, stop_price, display_quantity FROM exchange.amend_order(si('si_f'), stop_price => 115);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT client_id, status, remaining_lots, display_quantity, display_lots, visible_lots, stop_price, stop_ticks
  FROM exchange.orders WHERE order_id = si('si_f');
SELECT * FROM stop_queue('STOPI-USD');
SELECT exchange.rebuild('STOPI-USD');
SELECT * FROM stop_queue('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');
SELECT status FROM exchange.place_order('si_m6', 'STOPI-USD', 'sell', 'limit', 0.1, 114);
SELECT status FROM exchange.place_order('si_m7', 'STOPI-USD', 'sell', 'limit', 0.2, 115);
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('si_t3', 'STOPI-USD', 'buy', 'limit', 0.1, 114);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('si_t4', 'STOPI-USD', 'buy', 'limit', 0.1, 115);
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT e.payload->>'client_id' AS client_id, e.payload->>'display_quantity' AS journal_display
  FROM si_entries() e WHERE e.order_id = si('si_f') AND e.kind = 'order_triggered';
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots, stop_price
  FROM exchange.orders WHERE order_id = si('si_f');
SELECT * FROM book('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- Cancel of a pending iceberg stop (si_b): it leaves the pending stops, no
-- level changes; its row keeps its display and shows nothing.
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, remaining_quantity, display_quantity, stop_price, cancel_reason
  FROM exchange.cancel_order(si('si_b'));
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT client_id, status, remaining_lots, display_lots, visible_lots, cancel_reason
  FROM exchange.orders WHERE order_id = si('si_b');
SELECT * FROM stop_queue('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- With a BEFORE UPDATE trigger on exchange.orders the triggered iceberg's
-- row is written by a statement (row_writer.sql): si_x3's trade at 118
-- triggers si_x1 (stop 118, limit 120, 1 showing 0.2), which buys 0.3 at
-- 118 and rests 0.7 showing 0.2; si_x4 takes the tip, a refill. Then with
-- a BEFORE INSERT OR UPDATE trigger, a batch whose iceberg stop (si_y1,
-- staged in it) triggers on a later item: its row inserted by statement.
-- visible_lots is the tip, as the book has it.
CREATE TRIGGER stop_noop_orders BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION stop_noop();
SELECT status FROM exchange.place_order('si_x1', 'STOPI-USD', 'buy', 'limit', 1, 120, stop_price => 118,
                                        display_quantity => 0.2);
SELECT status FROM exchange.place_order('si_x2', 'STOPI-USD', 'sell', 'limit', 0.5, 118);
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT status, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_order('si_x3', 'STOPI-USD', 'buy', 'limit', 0.2, 118);
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots
  FROM exchange.orders WHERE order_id = si('si_x1');
SELECT status, jsonb_path_query_array(trades, '$[*].quantity') AS fills
  FROM exchange.place_order('si_x4', 'STOPI-USD', 'sell', 'limit', 0.2, 120);
DROP TRIGGER stop_noop_orders ON exchange.orders;
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots
  FROM exchange.orders WHERE order_id = si('si_x1');
SELECT * FROM exchange.verify('STOPI-USD');
CREATE TRIGGER stop_noop_orders BEFORE INSERT OR UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION stop_noop();
SELECT stop_seq('STOPI-USD') AS base \gset
SELECT client_id, status, filled_quantity, jsonb_path_query_array(trades, '$[*].price') AS prices
  FROM exchange.place_orders('[
    {"client_id": "si_y1", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 0.8, "price": 123,
     "stop_price": 122, "display_quantity": 0.3},
    {"client_id": "si_y2", "instrument": "STOPI-USD", "side": "sell", "type": "limit", "quantity": 0.4, "price": 122},
    {"client_id": "si_y3", "instrument": "STOPI-USD", "side": "buy", "type": "limit", "quantity": 0.1, "price": 122}
  ]');
DROP TRIGGER stop_noop_orders ON exchange.orders;
SELECT * FROM stop_journal('STOPI-USD', :base);
SELECT client_id, status, filled_quantity, remaining_lots, display_lots, visible_lots
  FROM exchange.orders WHERE order_id = si('si_y1');
SELECT * FROM si_rows('STOPI-USD');
SELECT * FROM book('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');

-- The end: every triggered iceberg's entry has its display, a rebuild gives
-- the same book, the journal gives it back, the trades agree.
SELECT o.client_id, e.payload->>'display_quantity' AS journal_display, o.display_quantity
  FROM si_entries() e JOIN exchange.orders o USING (order_id)
 WHERE e.kind = 'order_triggered' ORDER BY e.seq;
TRUNCATE saved;
INSERT INTO saved SELECT * FROM stop_state('STOPI-USD');
SELECT exchange.rebuild('STOPI-USD');
SELECT * FROM stop_diff('STOPI-USD');
SELECT * FROM exchange.verify('STOPI-USD');
SELECT count(d.side) AS levels_differing
  FROM ((SELECT * FROM exchange.orderbook_at('STOPI-USD', depth => 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook('STOPI-USD', 100))
        UNION ALL
        (SELECT * FROM exchange.orderbook('STOPI-USD', 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook_at('STOPI-USD', depth => 100))) d;
SELECT stop_trades_differing('STOPI-USD', 0) AS trades_differing;
SELECT count(*) AS fills_differing FROM exchange.orders o
 WHERE o.instrument = 'STOPI-USD' AND o.filled_quantity <> coalesce(
       (SELECT sum(t.quantity) FROM exchange.trades t WHERE o.order_id IN (t.buy_order_id, t.sell_order_id)), 0);
