-- The read API the frontend uses: get_order, list_orders, recent_trades,
-- trade_stats, list_instruments, book_snapshot.
SELECT symbol FROM exchange.create_instrument('ADA-USD', 0.0001, 1);

SELECT status FROM exchange.place_order('r-maker', 'ADA-USD', 'sell', 'limit', 10, 0.5000, idempotency_key => 'm1');
SELECT status FROM exchange.place_order('r-maker', 'ADA-USD', 'sell', 'limit', 10, 0.5100, idempotency_key => 'm2');
SELECT status FROM exchange.place_order('r-maker', 'ADA-USD', 'buy', 'limit', 5, 0.4000, idempotency_key => 'm3');
SELECT status, filled_quantity, remaining_quantity
  FROM exchange.place_order('r-taker', 'ADA-USD', 'buy', 'limit', 15, 0.5100, idempotency_key => 't1');

-- get_order: the maker's state with every trade it took part in; seq is NULL (not a command).
SELECT status, filled_quantity, remaining_quantity, jsonb_array_length(trades) AS trades, seq
  FROM exchange.get_order((SELECT order_id FROM exchange.orders WHERE client_id = 'r-maker' AND idempotency_key = 'm2'));
SELECT t->>'price' AS price, t->>'quantity' AS quantity
  FROM exchange.get_order((SELECT order_id FROM exchange.orders WHERE client_id = 'r-taker' AND idempotency_key = 't1')) g,
       jsonb_array_elements(g.trades) t;
SELECT try($$SELECT exchange.get_order('00000000-0000-0000-0000-000000000000')$$);

-- list_orders: resting ones by default, newest first; or one status.
SELECT side, price, remaining_quantity, status FROM exchange.list_orders('r-maker');
SELECT side, price, status FROM exchange.list_orders('r-maker', 'filled');
SELECT count(*) FROM exchange.list_orders('r-maker', max_rows => 1);
SELECT count(*) FROM exchange.list_orders('nobody');
SELECT try($$SELECT exchange.list_orders('r-maker', 'done')$$);
SELECT try($$SELECT exchange.list_orders('r-maker', NULL, 0)$$);

-- recent_trades: newest first.
SELECT price, quantity, maker_side, buy_client_id, sell_client_id FROM exchange.recent_trades('ADA-USD');
SELECT count(*) FROM exchange.recent_trades('ADA-USD', 1);
SELECT try($$SELECT exchange.recent_trades('NOPE')$$);

-- trade_stats: exact sums; vwap = (10 * 0.50 + 5 * 0.51) / 15.
SELECT symbol, trade_count, volume, notional, vwap, open, high, low, close FROM exchange.trade_stats('ADA-USD', 5);
SELECT trade_count, volume, vwap, open FROM exchange.trade_stats('SOL-USD');
SELECT try($$SELECT exchange.trade_stats('ADA-USD', 0)$$);

SELECT symbol, tick_size, lot_size FROM exchange.list_instruments() WHERE symbol IN ('SOL-USD', 'ADA-USD', 'ETH-USD');

-- book_snapshot: levels as decimal strings, best first, with the sequence of the last journal entry.
SELECT exchange.book_snapshot('ADA-USD') - 'seq' AS book;
SELECT (exchange.book_snapshot('ADA-USD')->>'seq')::bigint = max(seq) AS seq_matches_journal
  FROM exchange.events WHERE instrument_id = (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'ADA-USD');
SELECT exchange.book_snapshot('ADA-USD', 0) - 'seq' AS empty_depth;
-- Nothing rolled back shows.
BEGIN;
SELECT status FROM exchange.place_order('r-maker', 'ADA-USD', 'buy', 'limit', 7, 0.4500);
ROLLBACK;
SELECT exchange.book_snapshot('ADA-USD')->'bids' AS bids;
SELECT try($$SELECT exchange.book_snapshot('ADA-USD', -1)$$);
SELECT try($$SELECT exchange.book_snapshot('NOPE')$$);
SELECT healthy('ADA-USD');
