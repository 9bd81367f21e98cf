-- Matching scenarios as a trader sees them: given this book, this order
-- produces these fills and this book.

-- Price-time priority: better price first, then the older order; fills at the maker's price.
SELECT status FROM exchange.place_order('mm1', 'BTC-USD', 'sell', 'limit', 1, 101.00);
SELECT status FROM exchange.place_order('mm2', 'BTC-USD', 'sell', 'limit', 1, 100.50);
SELECT status FROM exchange.place_order('mm3', 'BTC-USD', 'sell', 'limit', 2, 100.50);
SELECT status FROM exchange.place_order('mm1', 'BTC-USD', 'buy', 'limit', 1, 99.00);
SELECT book('BTC-USD');
SELECT status, filled_quantity, remaining_quantity,
       (SELECT jsonb_agg(jsonb_build_object('price', t->'price', 'quantity', t->'quantity')) FROM jsonb_array_elements(trades) t)
  FROM exchange.place_order('taker', 'BTC-USD', 'buy', 'limit', 2.5, 101.00);
-- mm2 (older) was filled before mm3 at 100.50; the remainder took 0.5 of mm3.
SELECT client_id, status, filled_quantity, remaining_lots FROM exchange.orders
 WHERE client_id IN ('mm2', 'mm3') ORDER BY client_id;
SELECT book('BTC-USD');
SELECT price, quantity, buy_client_id, sell_client_id, maker_side FROM exchange.trades ORDER BY executed_at, price;

-- A limit remainder rests at its own price.
SELECT status, filled_quantity, remaining_quantity FROM exchange.place_order('taker', 'BTC-USD', 'buy', 'limit', 3, 100.50);
SELECT book('BTC-USD');

-- A market order sweeps levels; its remainder is cancelled, never rested.
SELECT status, filled_quantity, remaining_quantity, cancel_reason, jsonb_array_length(trades)
  FROM exchange.place_order('sweeper', 'BTC-USD', 'sell', 'market', 10);
SELECT book('BTC-USD');

-- IOC: trade what crosses, cancel the rest.
SELECT status FROM exchange.place_order('mm1', 'BTC-USD', 'sell', 'limit', 1, 102.00);
SELECT status, filled_quantity, remaining_quantity, cancel_reason FROM exchange.place_order('t', 'BTC-USD', 'buy', 'limit', 3, 102.00, 'ioc');
-- FOK: all or nothing, checked before any fill.
SELECT status FROM exchange.place_order('mm1', 'BTC-USD', 'sell', 'limit', 1, 103.00);
SELECT status, reject_reason, filled_quantity FROM exchange.place_order('t', 'BTC-USD', 'buy', 'limit', 2, 103.00, 'fok');
SELECT book('BTC-USD');
SELECT status, filled_quantity FROM exchange.place_order('t', 'BTC-USD', 'buy', 'limit', 1, 103.00, 'fok');
-- Post-only: rests when passive, rejected when it would take.
SELECT status FROM exchange.place_order('mm1', 'BTC-USD', 'sell', 'limit', 1, 104.00);
SELECT status, reject_reason FROM exchange.place_order('mm2', 'BTC-USD', 'buy', 'limit', 1, 104.00, post_only => true);
SELECT status, reject_reason FROM exchange.place_order('mm2', 'BTC-USD', 'buy', 'limit', 1, 103.99, post_only => true);
SELECT book('BTC-USD');

-- Self-trade prevention (default cancel_newest): the incoming remainder is cancelled, the resting order stays.
SELECT status, filled_quantity, cancel_reason FROM exchange.place_order('mm1', 'BTC-USD', 'buy', 'limit', 1, 104.00);
SELECT book('BTC-USD');
-- cancel_oldest: the resting order goes, the incoming order rests.
SELECT status, remaining_quantity FROM exchange.place_order('mm1', 'BTC-USD', 'buy', 'limit', 1, 104.00, stp => 'cancel_oldest');
SELECT client_id, price, status, cancel_reason FROM exchange.orders WHERE client_id = 'mm1' AND price = 104.00 ORDER BY created_at, side;
SELECT book('BTC-USD');
-- none: trading with yourself is allowed.
SELECT status, filled_quantity FROM exchange.place_order('mm1', 'BTC-USD', 'sell', 'limit', 1, 104.00, stp => 'none');

-- Amend: reducing keeps time priority, increasing loses it.
SELECT status FROM exchange.place_order('a', 'SOL-USD', 'buy', 'limit', 5, 20);
SELECT status FROM exchange.place_order('b', 'SOL-USD', 'buy', 'limit', 5, 20);
SELECT status, remaining_quantity FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'a' AND instrument = 'SOL-USD'), quantity => 4);
SELECT jsonb_agg(t->'maker_order_id' = to_jsonb((SELECT order_id FROM exchange.orders WHERE client_id = 'a' AND instrument = 'SOL-USD')))
  FROM exchange.place_order('c', 'SOL-USD', 'sell', 'limit', 1, 20) p, jsonb_array_elements(p.trades) t;
SELECT status, remaining_quantity FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'a' AND instrument = 'SOL-USD'), quantity => 10);
SELECT status FROM exchange.place_order('c', 'SOL-USD', 'sell', 'limit', 1, 20);
-- b is first in the queue now.
SELECT client_id, filled_quantity FROM exchange.orders WHERE instrument = 'SOL-USD' AND side = 'buy' ORDER BY client_id;
-- A price change re-queues and can trade at once.
SELECT status FROM exchange.place_order('d', 'SOL-USD', 'sell', 'limit', 3, 25);
SELECT status, filled_quantity, remaining_quantity, price FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE client_id = 'b' AND instrument = 'SOL-USD'), price => 25);
SELECT book('SOL-USD');

-- Cancel.
SELECT status, cancel_reason, remaining_quantity FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'a' AND instrument = 'SOL-USD'));
SELECT book('SOL-USD');
SELECT try($$SELECT exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'a' AND instrument = 'SOL-USD'))$$);

-- The journal has a gap-free sequence per instrument.
SELECT instrument_id, count(*), min(seq), max(seq) FROM exchange.events GROUP BY instrument_id ORDER BY instrument_id;
SELECT instrument, resting_orders, levels, seq FROM exchange.stats();
SELECT healthy('BTC-USD'), healthy('SOL-USD');
SELECT exchange.snapshot('SOL-USD') > 0;
SELECT instrument, seq, bids, asks FROM exchange.orderbook_snapshots ORDER BY id DESC LIMIT 1;
