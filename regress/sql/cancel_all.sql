-- exchange.cancel_all_orders (0.14): all of a client's resting orders and
-- pending stop orders, or those of one instrument, cancelled in one call;
-- the rows are the orders it cancelled, oldest first.
SELECT symbol FROM exchange.create_instrument('CAL-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('CAM-USD', 0.01, 0.001);

-- ca1: on CAL-USD two bids, an ask that ca2 partly takes and a pending buy
-- stop; on CAM-USD a bid; a filled order and a cancelled one (nothing to
-- cancel). ca2 rests orders of its own on both.
SELECT status FROM exchange.place_order('ca1', 'CAL-USD', 'buy', 'limit', 1, 99);
SELECT status FROM exchange.place_order('ca1', 'CAL-USD', 'buy', 'limit', 2, 98);
SELECT status FROM exchange.place_order('ca1', 'CAL-USD', 'sell', 'limit', 3, 101);
SELECT status, filled_quantity FROM exchange.place_order('ca2', 'CAL-USD', 'buy', 'limit', 1, 101);
SELECT status FROM exchange.place_order('ca1', 'CAL-USD', 'buy', 'market', 0.5, stop_price => 105);
SELECT status FROM exchange.place_order('ca1', 'CAM-USD', 'buy', 'limit', 4, 50);
SELECT status FROM exchange.place_order('ca2', 'CAM-USD', 'sell', 'limit', 1, 50);
SELECT try($$SELECT exchange.cancel_order((SELECT order_id FROM exchange.orders
                                           WHERE client_id = 'ca1' AND instrument = 'CAM-USD'), 'ca1')$$);
SELECT status FROM exchange.place_order('ca1', 'CAM-USD', 'buy', 'limit', 2, 49);
SELECT status FROM exchange.place_order('ca2', 'CAL-USD', 'sell', 'limit', 1, 102);
SELECT status FROM exchange.place_order('ca2', 'CAM-USD', 'buy', 'limit', 1, 48);
SELECT * FROM book('CAL-USD');
SELECT * FROM book('CAM-USD');

-- Only CAL-USD: the two bids, the partly filled ask (its filled part kept)
-- and the pending stop, oldest first; each an order_cancelled entry.
SELECT max(e.seq) AS before_seq FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol = 'CAL-USD' \gset
SELECT client_id, instrument, side, type, price, quantity, filled_quantity, remaining_quantity, status,
       cancel_reason, stop_price
  FROM exchange.cancel_all_orders('ca1', 'CAL-USD');
SELECT kind, o.client_id, o.side, o.price, e.payload->>'status' AS status
  FROM exchange.events e JOIN exchange.orders o USING (order_id)
 WHERE o.instrument = 'CAL-USD' AND e.seq > :before_seq ORDER BY e.seq;
SELECT * FROM book('CAL-USD');
SELECT client_id, instrument, side, price, status FROM exchange.orders
 WHERE client_id IN ('ca1', 'ca2') ORDER BY order_no;

-- Then everything else of ca1's: the bid on CAM-USD; then nothing left.
SELECT client_id, instrument, side, price, status FROM exchange.cancel_all_orders('ca1');
SELECT count(*) AS cancelled_again FROM exchange.cancel_all_orders('ca1');
SELECT * FROM book('CAM-USD');
SELECT count(*) AS resting_or_pending FROM exchange.list_orders('ca1');

-- A client that never traded gets no rows; bad input is an ERROR that changes nothing.
SELECT count(*) AS nobody FROM exchange.cancel_all_orders('ca-nobody');
SELECT try($$SELECT exchange.cancel_all_orders('ca2', 'NOPE-USD')$$);
SELECT try($$SELECT exchange.cancel_all_orders(NULL)$$);
SELECT try($$SELECT exchange.cancel_all_orders(NULL, 'CAL-USD')$$);
SELECT client_id, instrument, status FROM exchange.orders WHERE client_id = 'ca2' ORDER BY order_no;

-- ROLLBACK (and ROLLBACK TO SAVEPOINT) of a cancel-all gives the books and rows back.
BEGIN;
SELECT count(*) AS cancelled FROM exchange.cancel_all_orders('ca2');
SELECT * FROM book('CAL-USD');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT count(*) AS cancelled FROM exchange.cancel_all_orders('ca2', 'CAM-USD');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT * FROM book('CAL-USD');
SELECT * FROM book('CAM-USD');
SELECT client_id, instrument, status FROM exchange.orders WHERE client_id = 'ca2' ORDER BY order_no;

-- Who may: exchange_trader, not exchange_auditor.
SET ROLE exchange_auditor;
SELECT try($$SELECT exchange.cancel_all_orders('ca2')$$);
RESET ROLE;
SET ROLE exchange_trader;
SELECT client_id, instrument, side, price, status FROM exchange.cancel_all_orders('ca2', 'CAM-USD');
RESET ROLE;

SELECT healthy('CAL-USD') AND healthy('CAM-USD') AS healthy;
SELECT symbol, count(*) = max(e.seq) AS gap_free
  FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
 WHERE i.symbol IN ('CAL-USD', 'CAM-USD') GROUP BY symbol ORDER BY symbol;
