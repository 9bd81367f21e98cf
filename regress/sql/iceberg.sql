-- Iceberg orders (0.12): a GTC limit order with display_quantity shows at
-- most that much of itself in the book; each time its tip is taken a new
-- one is shown and the order goes to the back of its price level.
SELECT symbol FROM exchange.create_instrument('ICE-USD', 0.01, 0.1);
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
-- The orders of ICE-USD in time priority, as the table has them.
CREATE FUNCTION ice_rows() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT client_id || ' ' || side || ' ' || price || ' remaining ' || remaining_lots
           || coalesce(' shown ' || visible_lots || ' of ' || display_quantity, '') || ' ' || status
      FROM exchange.orders WHERE instrument = 'ICE-USD' AND status IN ('open', 'partially_filled')
     ORDER BY priority
$$;

-- Alice's iceberg of 1.0 showing 0.3, then Bob's plain 0.2 at the same price:
-- the level shows 0.5 in two orders; the answer and get_order give the display.
INSERT INTO ids SELECT 'alice', order_id FROM exchange.place_order('alice', 'ICE-USD', 'sell', 'limit', 1.0, 100,
                                                                   display_quantity => 0.3);
SELECT status, remaining_quantity, display_quantity FROM exchange.get_order((SELECT id FROM ids WHERE name = 'alice'));
SELECT status, display_quantity FROM exchange.place_order('bob', 'ICE-USD', 'sell', 'limit', 0.2, 100);
SELECT * FROM book('ICE-USD');
SELECT payload->>'display_quantity' AS journal_display FROM exchange.events
 WHERE order_id = (SELECT id FROM ids WHERE name = 'alice');

-- Carol buys 0.1: only the tip trades, Alice keeps her place.
SELECT status, trades->0->>'quantity' AS q FROM exchange.place_order('carol', 'ICE-USD', 'buy', 'limit', 0.1, 100);
SELECT * FROM ice_rows();
-- Carol buys 0.4: Alice's last 0.2 of the tip, Bob's 0.2; Alice refilled to 0.3 at the back.
SELECT status, jsonb_path_query_array(trades, '$[*].quantity') AS fills
  FROM exchange.place_order('carol', 'ICE-USD', 'buy', 'limit', 0.4, 100);
SELECT * FROM ice_rows();
SELECT * FROM book('ICE-USD');
-- One taker through several tips: 0.5 takes 0.3, refill, 0.2 of the next tip.
SELECT status, jsonb_path_query_array(trades, '$[*].quantity') AS fills
  FROM exchange.place_order('dave', 'ICE-USD', 'buy', 'limit', 0.5, 100);
SELECT * FROM ice_rows();
SELECT * FROM exchange.verify('ICE-USD');
-- The book rebuilt from the tables is the same book.
SELECT exchange.rebuild('ICE-USD');
SELECT * FROM book('ICE-USD');
SELECT * FROM exchange.verify('ICE-USD');

-- A rolled back refill leaves the book and the rows as they were.
BEGIN;
SELECT status FROM exchange.place_order('erin', 'ICE-USD', 'buy', 'limit', 0.1, 100);
SELECT * FROM ice_rows();
ROLLBACK;
SELECT * FROM ice_rows();
SELECT * FROM exchange.verify('ICE-USD');

-- Amend: less keeps the place and takes the hidden part first; more re-queues.
SELECT status, remaining_quantity, display_quantity
  FROM exchange.amend_order((SELECT id FROM ids WHERE name = 'alice'), quantity => 0.9);
SELECT * FROM ice_rows();
SELECT status FROM exchange.place_order('bob', 'ICE-USD', 'sell', 'limit', 0.2, 100);
SELECT status, remaining_quantity FROM exchange.amend_order((SELECT id FROM ids WHERE name = 'alice'), quantity => 1.5);
SELECT * FROM ice_rows();
SELECT * FROM exchange.verify('ICE-USD');
-- More than 100 tips of the display: refused, nothing changed.
SELECT try($$SELECT exchange.amend_order((SELECT id FROM ids WHERE name = 'alice'), quantity => 31)$$);
SELECT * FROM ice_rows();
-- Cancel: all of it leaves, shown and hidden.
SELECT status, remaining_quantity, display_quantity FROM exchange.cancel_order((SELECT id FROM ids WHERE name = 'alice'));
SELECT * FROM book('ICE-USD');

-- A batch whose icebergs trade with each other: the book and the rows agree,
-- also on the refilled order's new place behind an order of the same batch.
SELECT status, display_quantity, jsonb_path_query_array(trades, '$[*].quantity') AS fills
  FROM exchange.place_orders('[
    {"client_id": "f1", "instrument": "ICE-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 99,
     "display_quantity": "0.2"},
    {"client_id": "f2", "instrument": "ICE-USD", "side": "buy", "type": "limit", "quantity": 0.5, "price": 99},
    {"client_id": "f3", "instrument": "ICE-USD", "side": "sell", "type": "limit", "quantity": 0.3, "price": 99},
    {"client_id": "f4", "instrument": "ICE-USD", "side": "buy", "type": "limit", "quantity": 0.1, "price": 99}
  ]');
SELECT * FROM ice_rows();
SELECT * FROM book('ICE-USD');
SELECT * FROM exchange.verify('ICE-USD');
SELECT exchange.rebuild('ICE-USD');
SELECT * FROM exchange.verify('ICE-USD');

-- Bad input: the reason codes, nothing written.
SELECT count(*) AS orders_before FROM exchange.orders WHERE instrument = 'ICE-USD' \gset
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'limit', 1, 90, display_quantity => 0.05)$$);
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'limit', 1, 90, display_quantity => 0)$$);
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'limit', 1, 90, display_quantity => 1.1)$$);
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'limit', 10.1, 90, display_quantity => 0.1)$$);
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'market', 1, display_quantity => 0.5)$$);
SELECT try($$SELECT exchange.place_order('g', 'ICE-USD', 'buy', 'limit', 1, 90, 'ioc', display_quantity => 0.5)$$);
SELECT status, reject_reason, reject_message FROM exchange.place_orders('[
    {"client_id": "g", "instrument": "ICE-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 90,
     "display_quantity": "x"},
    {"client_id": "g", "instrument": "ICE-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 90,
     "display_quantity": 2}]');
SELECT count(*) - :orders_before AS orders_written FROM exchange.orders WHERE instrument = 'ICE-USD';
-- display_quantity equal to the quantity, and with post_only: accepted.
SELECT status, display_quantity FROM exchange.place_order('h', 'ICE-USD', 'buy', 'limit', 0.4, 90, display_quantity => 0.4);
SELECT status, display_quantity FROM exchange.place_order('h', 'ICE-USD', 'buy', 'limit', 1, 90, post_only => true,
                                                          display_quantity => 0.5);
SELECT * FROM book('ICE-USD');
SELECT * FROM exchange.verify('ICE-USD');

-- The journal's level changes (what the WebSocket feed's deltas carry) give
-- the book back, tips and refills included.
SELECT count(*) AS levels_differing
  FROM ((SELECT * FROM exchange.orderbook_at('ICE-USD', depth => 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook('ICE-USD', 100))
        UNION ALL
        (SELECT * FROM exchange.orderbook('ICE-USD', 100)
         EXCEPT ALL SELECT * FROM exchange.orderbook_at('ICE-USD', depth => 100))) d;
SELECT side, price, quantity, order_count FROM exchange.orderbook_at('ICE-USD',
    (SELECT seq FROM exchange.events WHERE payload->>'client_id' = 'dave' AND instrument_id =
        (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'ICE-USD')));

-- A cancelled iceberg shows nothing any more: its row's visible_lots is 0,
-- as a filled one's (a plain order's stays NULL), whether the row is
-- written directly or, under a BEFORE UPDATE trigger, by statement.
SELECT status FROM exchange.place_order('ice_c1', 'ICE-USD', 'sell', 'limit', 1.0, 150, display_quantity => 0.3);
SELECT status FROM exchange.place_order('ice_c2', 'ICE-USD', 'sell', 'limit', 1.0, 151, display_quantity => 0.4);
SELECT status FROM exchange.place_order('ice_c3', 'ICE-USD', 'sell', 'limit', 0.5, 152);
SELECT count(*) AS cancelled FROM exchange.cancel_orders(ARRAY(
    SELECT order_id FROM exchange.orders WHERE client_id IN ('ice_c1', 'ice_c3') ORDER BY order_no));
CREATE FUNCTION ice_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER ice_noop BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION ice_noop();
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'ice_c2'));
DROP TRIGGER ice_noop ON exchange.orders;
SELECT client_id, status, remaining_lots, display_lots, visible_lots FROM exchange.orders
 WHERE client_id LIKE 'ice_c%' ORDER BY client_id;
SELECT * FROM exchange.verify('ICE-USD');
