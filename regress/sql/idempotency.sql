-- Repeating an idempotency key returns the original order as it is now and changes nothing.
SELECT status, filled_quantity FROM exchange.place_order('idem', 'SOL-USD', 'sell', 'limit', 3, 30, idempotency_key => 'k1');
SELECT count(*) FROM exchange.events WHERE instrument_id = 3 \gset before_
SELECT a.order_id = b.order_id AS same_order, b.status, b.quantity
  FROM (SELECT order_id FROM exchange.orders WHERE idempotency_key = 'k1') a,
       exchange.place_order('idem', 'SOL-USD', 'sell', 'limit', 3, 30, idempotency_key => 'k1') b;
-- Even with different parameters the key wins: the original order is returned.
SELECT status, side, quantity FROM exchange.place_order('idem', 'SOL-USD', 'buy', 'limit', 7, 10, idempotency_key => 'k1');
SELECT count(*) = :before_count AS nothing_new FROM exchange.events WHERE instrument_id = 3;
SELECT count(*) FROM exchange.orders WHERE client_id = 'idem';
-- After a fill, the repeat shows the current state and its trades.
SELECT status FROM exchange.place_order('other', 'SOL-USD', 'buy', 'limit', 1, 30);
SELECT status, filled_quantity, remaining_quantity, jsonb_array_length(trades)
  FROM exchange.place_order('idem', 'SOL-USD', 'sell', 'limit', 3, 30, idempotency_key => 'k1');
-- Keys are per client.
SELECT status FROM exchange.place_order('someone-else', 'SOL-USD', 'sell', 'limit', 1, 40, idempotency_key => 'k1');
SELECT count(*) FROM exchange.orders WHERE idempotency_key = 'k1';
-- A rejected order is remembered too.
SELECT status, reject_reason FROM exchange.place_order('idem', 'SOL-USD', 'buy', 'limit', 1, 30, post_only => true, idempotency_key => 'k2');
SELECT status, reject_reason FROM exchange.place_order('idem', 'SOL-USD', 'buy', 'limit', 1, 29, post_only => true, idempotency_key => 'k2');
SELECT healthy('SOL-USD');
