-- Every kind of bad input is an ERROR with a specific SQLSTATE and a stable
-- reason code, and changes nothing.
CREATE TEMP TABLE before AS
    SELECT (SELECT count(*) FROM exchange.orders) AS orders, (SELECT count(*) FROM exchange.events) AS events,
           (SELECT count(*) FROM exchange.trades) AS trades, (SELECT string_agg(b, ',') FROM book('BTC-USD') b) AS book;
SELECT try($$SELECT exchange.place_order('x', 'NOPE', 'buy', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', NULL, 'buy', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'hold', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', NULL, 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'stop', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 100, 'day')$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 100, stp => 'maybe')$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 100.001)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1.0001, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'ETH-USD', 'buy', 'limit', 0.05, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'market', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 0, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', -1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, -100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 'NaN', 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 'NaN')$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 'Infinity', 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', NULL, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1e40, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 1e40)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 100, 'ioc', post_only => true)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'market', 1, post_only => true)$$);
SELECT try($$SELECT exchange.place_order('', 'BTC-USD', 'buy', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order(NULL, 'BTC-USD', 'buy', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order(repeat('x', 200), 'BTC-USD', 'buy', 'limit', 1, 100)$$);
SELECT try($$SELECT exchange.place_order('x', 'BTC-USD', 'buy', 'limit', 1, 100, idempotency_key => '')$$);
SELECT try($$SELECT exchange.cancel_order('00000000-0000-0000-0000-000000000000')$$);
SELECT try($$SELECT exchange.amend_order('00000000-0000-0000-0000-000000000000', 1)$$);
SELECT try($$SELECT * FROM exchange.orderbook('BTC-USD', -1)$$);
SELECT try($$SELECT * FROM exchange.orderbook('NOPE')$$);
-- Sides, types and time in force are case-insensitive.
SELECT status FROM exchange.place_order('x', 'BTC-USD', 'BUY', 'Limit', 1, 50, 'GTC');
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'x'));
-- Amend and cancel: ownership, state, values.
SELECT status FROM exchange.place_order('owner', 'BTC-USD', 'buy', 'limit', 2, 50);
SELECT try(format($$SELECT exchange.cancel_order(%L, 'intruder')$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT try(format($$SELECT exchange.amend_order(%L, 1, client_id => 'intruder')$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT try(format($$SELECT exchange.amend_order(%L)$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT try(format($$SELECT exchange.amend_order(%L, 2)$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT try(format($$SELECT exchange.amend_order(%L, 0)$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT try(format($$SELECT exchange.amend_order(%L, price => 50.005)$$, (SELECT order_id FROM exchange.orders WHERE client_id = 'owner')));
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 'owner'), 'owner');
-- Only the good orders above left a trace (placed then cancelled).
SELECT (SELECT count(*) FROM exchange.orders) - orders AS new_orders, (SELECT count(*) FROM exchange.events) - events AS new_events,
       (SELECT count(*) FROM exchange.trades) - trades AS new_trades,
       (SELECT string_agg(b, ',') FROM book('BTC-USD') b) IS NOT DISTINCT FROM book AS book_unchanged
  FROM before;
SELECT healthy('BTC-USD'), healthy('ETH-USD');
