-- place_orders: one transaction, one result per order in order; bad orders are rejected rows.
SELECT status, reject_reason, filled_quantity, remaining_quantity, reject_message
  FROM exchange.place_orders('[
    {"client_id": "b1", "instrument": "SOL-USD", "side": "sell", "type": "limit", "quantity": "2", "price": "50"},
    {"client_id": "b2", "instrument": "SOL-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 50},
    {"client_id": "b3", "instrument": "NOPE", "side": "buy", "type": "limit", "quantity": 1, "price": 50},
    {"client_id": "b3", "instrument": "SOL-USD", "side": "buy", "type": "limit", "quantity": "abc", "price": 50},
    {"client_id": "b4", "instrument": "SOL-USD", "side": "buy", "type": "market", "quantity": 5},
    "not an object"
  ]');
-- A malformed item's reject_message is the message place_order raises for the same input.
SELECT r.reject_reason, '22023 ' || r.reject_reason || ': ' || r.reject_message
         = try($$SELECT exchange.place_order('b5', 'SOL-USD', 'buy', 'limit', 1, 50.005)$$) AS same_as_place_order
  FROM exchange.place_orders('[{"client_id": "b5", "instrument": "SOL-USD", "side": "buy", "type": "limit",
                                "quantity": 1, "price": "50.005"}]') r;
SELECT try($$SELECT exchange.place_orders('{}')$$);
SELECT count(*) FROM exchange.place_orders('[]');
SELECT healthy('SOL-USD');

-- Within one batch the rows are written together at the end: orders that
-- trade with orders of the same batch, makers filled several times, makers
-- cancelled by self-trade prevention and repeated idempotency keys must all
-- end as if placed one by one.
SELECT symbol FROM exchange.create_instrument('BAT-USD', 1, 1);
SELECT status FROM exchange.place_order('old1', 'BAT-USD', 'sell', 'limit', 5, 10);  -- rested before the batch
SELECT status FROM exchange.place_order('old2', 'BAT-USD', 'sell', 'limit', 5, 11);
SELECT n, client_id, status, filled_quantity, remaining_quantity, cancel_reason, jsonb_array_length(trades) AS trades,
       seq IS NULL AS replayed
  FROM exchange.place_orders('[
    {"client_id": "new1", "instrument": "BAT-USD", "side": "sell", "type": "limit", "quantity": 4, "price": 9},
    {"client_id": "tak1", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 9},
    {"client_id": "tak1", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 3, "price": 9, "idempotency_key": "k1"},
    {"client_id": "tak1", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 3, "price": 9, "idempotency_key": "k1"},
    {"client_id": "tak2", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 2, "price": 10},
    {"client_id": "tak2", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 10},
    {"client_id": "old1", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 10, "stp": "cancel_oldest"},
    {"client_id": "new2", "instrument": "BAT-USD", "side": "sell", "type": "limit", "quantity": 2, "price": 10},
    {"client_id": "new2", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 10, "stp": "cancel_both"},
    {"client_id": "tak3", "instrument": "BAT-USD", "side": "buy", "type": "limit", "quantity": 2, "price": 11}
  ]') WITH ORDINALITY AS r(order_id, client_id, instrument, side, type, time_in_force, price, quantity, filled_quantity,
                           remaining_quantity, status, reject_reason, cancel_reason, trades, created_at, seq,
                           reject_message, display_quantity, stop_price, n);
-- The rows as written: each order's filled quantity equals its trades, and the book equals the tables.
SELECT client_id, side, price, quantity, filled_quantity, remaining_lots, status, cancel_reason
  FROM exchange.orders WHERE instrument = 'BAT-USD' ORDER BY order_no;
SELECT count(*) AS orders_whose_fills_disagree_with_trades
  FROM exchange.orders o
 WHERE o.instrument = 'BAT-USD'
   AND o.filled_quantity <> coalesce((SELECT sum(t.quantity) FROM exchange.trades t
                                       WHERE t.buy_order_id = o.order_id OR t.sell_order_id = o.order_id), 0);
SELECT count(*) AS keyed_orders FROM exchange.orders WHERE client_id = 'tak1' AND idempotency_key = 'k1';
SELECT book('BAT-USD');
SELECT healthy('BAT-USD');
-- The journal: one entry per order, gap-free.
SELECT count(*), min(seq), max(seq) FROM exchange.events WHERE instrument_id = (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'BAT-USD');

-- Differential: the same 400 seeded random orders (crossing prices, shared
-- clients for STP, repeated idempotency keys) placed in batches of 50 on one
-- instrument and one by one on another end with the same answers, rows,
-- trades, book and journal (engine order numbers aside).
SELECT symbol FROM exchange.create_instrument('DIFF-A', 1, 1);
SELECT symbol FROM exchange.create_instrument('DIFF-B', 1, 1);
SELECT setseed(0.42);
CREATE TEMP TABLE stream AS
SELECT n, 'd' || (random() * 5)::int AS client_id, CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END AS side,
       CASE WHEN random() < 0.1 THEN 'market' ELSE 'limit' END AS type, 1 + (random() * 6)::int AS quantity,
       95 + (random() * 10)::int AS price, (ARRAY['gtc', 'gtc', 'gtc', 'ioc', 'fok'])[1 + (random() * 4)::int] AS tif,
       (ARRAY['none', 'cancel_newest', 'cancel_oldest', 'cancel_both'])[1 + (random() * 3)::int] AS stp,
       CASE WHEN random() < 0.3 THEN 'k' || (random() * 40)::int END AS idempotency_key
  FROM generate_series(1, 400) n;
CREATE TEMP TABLE via_batch AS
SELECT (s.chunk * 50 + r.i)::int AS n, r.*
  FROM generate_series(0, 7) s(chunk),
       LATERAL exchange.place_orders((
           SELECT jsonb_agg(jsonb_build_object('client_id', client_id, 'instrument', 'DIFF-A', 'side', side, 'type', type,
                                               'quantity', quantity,
                                               'price', CASE WHEN type = 'limit' THEN price END,
                                               'time_in_force', tif, 'stp', stp, 'idempotency_key', 'A' || idempotency_key)
                            ORDER BY n)
             FROM stream WHERE n > s.chunk * 50 AND n <= (s.chunk + 1) * 50)) WITH ORDINALITY
       AS r(order_id, client_id, instrument, side, type, time_in_force, price, quantity, filled_quantity,
            remaining_quantity, status, reject_reason, cancel_reason, trades, created_at, seq, reject_message,
            display_quantity, i);
CREATE TEMP TABLE via_single (n int, r exchange.order_result);
DO $$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM stream ORDER BY n LOOP
        INSERT INTO via_single
        SELECT o.n, exchange.place_order(o.client_id, 'DIFF-B', o.side, o.type, o.quantity,
                                         CASE WHEN o.type = 'limit' THEN o.price END, o.tif, 'B' || o.idempotency_key,
                                         false, o.stp);
    END LOOP;
END $$;
SELECT count(*) AS answers_that_differ
  FROM via_batch b JOIN via_single s USING (n)
 WHERE (b.status, b.filled_quantity, b.remaining_quantity, b.reject_reason, b.cancel_reason, b.seq IS NULL,
        jsonb_array_length(b.trades))
       IS DISTINCT FROM ((s.r).status, (s.r).filled_quantity, (s.r).remaining_quantity, (s.r).reject_reason,
                         (s.r).cancel_reason, (s.r).seq IS NULL, jsonb_array_length((s.r).trades));
SELECT count(*) FILTER (WHERE status = 'filled') > 50 AS many_filled, count(*) FILTER (WHERE cancel_reason = 'self_trade') > 0 AS some_stp,
       count(*) FILTER (WHERE seq IS NULL) > 5 AS some_replays, count(*) FILTER (WHERE status = 'rejected') > 0 AS some_rejected
  FROM via_batch;
SELECT count(*) AS rows_that_differ FROM (
    (SELECT order_no - min(order_no) OVER () AS k, client_id, side, quantity, filled_quantity, remaining_lots, status, cancel_reason
       FROM exchange.orders WHERE instrument = 'DIFF-A'
     EXCEPT
     SELECT order_no - min(order_no) OVER (), client_id, side, quantity, filled_quantity, remaining_lots, status, cancel_reason
       FROM exchange.orders WHERE instrument = 'DIFF-B')
    UNION ALL
    (SELECT order_no - min(order_no) OVER (), client_id, side, quantity, filled_quantity, remaining_lots, status, cancel_reason
       FROM exchange.orders WHERE instrument = 'DIFF-B'
     EXCEPT
     SELECT order_no - min(order_no) OVER (), client_id, side, quantity, filled_quantity, remaining_lots, status, cancel_reason
       FROM exchange.orders WHERE instrument = 'DIFF-A')) d;
SELECT (SELECT array_agg((seq, price, quantity, buy_client_id, sell_client_id, maker_side)::text ORDER BY seq, trade_no)
          FROM exchange.trades WHERE instrument = 'DIFF-A')
     = (SELECT array_agg((seq, price, quantity, buy_client_id, sell_client_id, maker_side)::text ORDER BY seq, trade_no)
          FROM exchange.trades WHERE instrument = 'DIFF-B') AS same_trades;
SELECT (SELECT array_agg(b) FROM book('DIFF-A') b) = (SELECT array_agg(b) FROM book('DIFF-B') b) AS same_book;
SELECT (SELECT array_agg(payload - 'order_id' - 'trades' - 'stp_cancelled' ORDER BY seq) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = 'DIFF-A')
     = (SELECT array_agg(payload - 'order_id' - 'trades' - 'stp_cancelled' ORDER BY seq) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = 'DIFF-B')
       AS same_journal;
SELECT healthy('DIFF-A') AND healthy('DIFF-B') AS healthy;

-- Makers that rested before the call are found by order_no through the index,
-- however the table grew since the session's first call; their order ids and
-- clients are the trades' maker ids and counterparties.
SELECT symbol FROM exchange.create_instrument('MKR-USD', 1, 1);
SELECT count(*) FROM exchange.place_orders((
    SELECT jsonb_agg(jsonb_build_object('client_id', 'm' || g, 'instrument', 'MKR-USD', 'side', 'sell',
                                        'type', 'limit', 'quantity', 1, 'price', 100 + g % 7))
      FROM generate_series(1, 300) g));
SELECT count(*) AS trades, count(DISTINCT t.maker_order_id) AS makers,
       bool_and(m.client_id LIKE 'm%' AND m.client_id <> 'mt' AND m.side = 'sell') AS makers_are_resting_sellers
  FROM exchange.place_orders('[{"client_id": "mt", "instrument": "MKR-USD", "side": "buy", "type": "limit", "quantity": 50, "price": 106}]') r,
       jsonb_to_recordset(r.trades) AS t(maker_order_id uuid),
       exchange.orders m
 WHERE m.order_id = t.maker_order_id;
SELECT count(*) AS trades_with_wrong_counterparty
  FROM exchange.trades t JOIN exchange.orders s ON s.order_id = t.sell_order_id
 WHERE t.instrument = 'MKR-USD' AND t.sell_client_id <> s.client_id;
SELECT healthy('MKR-USD');
-- A maker in the book but missing from the table (since 0.10 only a
-- superuser who disables the table's trigger orders_kept could do this) is an
-- ERROR that changes nothing; the session goes on trading.
BEGIN;
ALTER TABLE exchange.orders DISABLE TRIGGER orders_kept;
DELETE FROM exchange.orders  -- the next maker: best price, oldest
 WHERE order_no = (SELECT order_no FROM exchange.orders WHERE instrument = 'MKR-USD' AND status = 'open'
                    ORDER BY price_ticks, priority LIMIT 1);
SELECT regexp_replace(try($$SELECT count(*) FROM exchange.place_orders('[{"client_id": "mt", "instrument": "MKR-USD", "side": "buy", "type": "market", "quantity": 1}]')$$), '[0-9]{3,}', 'N', 'g');
SELECT book('MKR-USD') LIMIT 1;
ROLLBACK;
SELECT status, filled_quantity FROM exchange.place_orders('[{"client_id": "mt", "instrument": "MKR-USD", "side": "buy", "type": "market", "quantity": 1}]');
SELECT healthy('MKR-USD');
-- Order and trade ids are version 7 UUIDs: time-ordered, so one session's ids
-- increase with order_no and trade_no (they land at the right edge of the
-- uuid indexes).
SELECT bool_and(substr(order_id::text, 15, 1) = '7' AND substr(order_id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS version_7,
       count(*) FILTER (WHERE order_id <= prev) AS out_of_order
  FROM (SELECT order_id, lag(order_id) OVER (ORDER BY order_no) AS prev FROM exchange.orders WHERE instrument = 'MKR-USD') o;
SELECT bool_and(substr(trade_id::text, 15, 1) = '7') AS version_7, count(*) FILTER (WHERE trade_id <= prev) AS out_of_order
  FROM (SELECT trade_id, lag(trade_id) OVER (ORDER BY trade_no) AS prev FROM exchange.trades WHERE instrument = 'MKR-USD') t;
SELECT abs(extract(epoch FROM now()) * 1000 - ('x' || substr(replace(order_id::text, '-', ''), 1, 12))::bit(48)::bigint) < 600000
       AS timestamp_is_now
  FROM exchange.orders WHERE instrument = 'MKR-USD' ORDER BY order_no DESC LIMIT 1;
