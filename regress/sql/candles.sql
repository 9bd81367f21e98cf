-- OHLCV candles (0.11): exchange.candles(instrument, width, since, until, max_rows).
-- The trades of OHLC-USD are written here with fixed times (the trading
-- functions stamp now()); the last part trades for real.
SET timezone = 'UTC';
SELECT symbol FROM exchange.create_instrument('OHLC-USD', 0.01, 0.001);

CREATE TEMP TABLE fake (n int, at timestamptz, seq bigint, price numeric, quantity numeric);
INSERT INTO fake VALUES
    (1, '2026-01-05 09:58:30+00', 1, 99.00, 1.000),   -- before the windows below: the price carried into them
    (2, '2026-01-05 10:00:05+00', 2, 100.00, 0.500),  -- 10:00 opens at 100.00
    (3, '2026-01-05 10:00:20+00', 3, 101.50, 0.250),  -- its high
    (4, '2026-01-05 10:00:20+00', 3, 99.50, 0.250),   -- its low
    (5, '2026-01-05 10:00:59.999999+00', 4, 100.75, 0.500),
    (6, '2026-01-05 10:00:59.999999+00', 4, 100.25, 0.500),  -- same time and entry: the later trade_no closes
    -- 10:01 has no trade
    (7, '2026-01-05 10:02:00+00', 5, 102.00, 0.125),  -- 10:02 starts exactly at its bucket's start
    (8, '2026-01-05 10:02:40+00', 6, 101.00, 0.375),
    (9, '2026-01-05 10:03:10+00', 7, 103.00, 2.000);
INSERT INTO exchange.trades (instrument, instrument_id, seq, price, quantity, buy_order_id, sell_order_id,
                             buy_client_id, sell_client_id, maker_side, executed_at)
SELECT 'OHLC-USD', (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'OHLC-USD'), seq, price, quantity,
       gen_random_uuid(), gen_random_uuid(), 'cb', 'cs', 'sell', at
  FROM fake ORDER BY n;
SELECT count(*) FROM exchange.trades t JOIN fake f ON f.price = t.price AND f.at = t.executed_at
 WHERE t.instrument = 'OHLC-USD' AND t.trade_no = (SELECT min(trade_no) FROM exchange.trades WHERE instrument = 'OHLC-USD') + f.n - 1;

-- One-minute candles from 10:00 to 10:04: 10:01 is carried (no trade: the
-- close before it), 10:04 has not begun at until and is not reported.
SELECT * FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 10:00+00', '2026-01-05 10:04+00');
-- The window's first bucket carries the price of the last trade before it.
SELECT bucket, open, close, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 09:59+00', '2026-01-05 10:00+00');
-- Before the instrument's first trade there is nothing to report.
SELECT count(*) FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 09:00+00', '2026-01-05 09:58+00');
SELECT bucket, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 09:55+00', '2026-01-05 10:00+00');
-- A since before the first trade: the window starts at the first trade's bucket, so paging from the
-- distant past is not a long run of empty pages.
SELECT bucket, close, trade_count FROM exchange.candles('OHLC-USD', '1 second', '2020-01-01+00', max_rows => 3);
SELECT bucket, close, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 09:00+00', '2026-01-05 10:30+00', 3);
-- until inside a bucket: that bucket holds the trades before until only.
SELECT bucket, open, high, low, close, volume, trade_count
  FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 10:02+00', '2026-01-05 10:02:30+00');
-- since inside a bucket: the first bucket is the next one that starts at or after since.
SELECT bucket, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 10:00:01+00', '2026-01-05 10:04+00');
-- max_rows bounds the window from since; the next page starts at the last bucket + width.
SELECT bucket, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 10:00+00', '2026-01-05 10:04+00', 2);
SELECT bucket, trade_count FROM exchange.candles('OHLC-USD', '1 minute', '2026-01-05 10:02+00', '2026-01-05 10:04+00', 2);
-- Without since: the max_rows buckets that end with the one in progress at until.
SELECT bucket, close, trade_count FROM exchange.candles('OHLC-USD', '1 minute', until => '2026-01-05 10:03:30+00', max_rows => 3);
-- An until on a bucket's start: that bucket has not begun.
SELECT bucket, close, trade_count FROM exchange.candles('OHLC-USD', '1 minute', until => '2026-01-05 10:03+00', max_rows => 2);
-- Wider buckets: 90 seconds (aligned to the origin, Monday 2001-01-01 00:00 UTC), an hour, a day, a week
-- (2026-01-05 is a Monday); each adds up to the same trades.
SELECT bucket, open, high, low, close, volume, notional, trade_count
  FROM exchange.candles('OHLC-USD', '90 seconds', '2026-01-05 09:58:30+00', '2026-01-05 10:04:30+00');
SELECT bucket, open, high, low, close, volume, notional, trade_count
  FROM exchange.candles('OHLC-USD', '1 hour', '2026-01-05 09:00+00', '2026-01-05 11:00+00');
SELECT bucket, open, close, volume, trade_count FROM exchange.candles('OHLC-USD', '1 day', '2026-01-05+00', '2026-01-06+00');
SELECT bucket, open, close, volume, trade_count FROM exchange.candles('OHLC-USD', '7 days', '2026-01-01+00', '2026-01-12+00');
-- Totals agree with the trades whatever the width.
SELECT w, sum(c.trade_count) AS trades, sum(c.volume) AS volume, sum(c.notional) AS notional
  FROM unnest(ARRAY['1 second', '7 seconds', '1 minute', '1 hour']::interval[]) w,
       exchange.candles('OHLC-USD', w, '2026-01-05 09:00+00', '2026-01-05 11:00+00', 10000) c
 GROUP BY w ORDER BY w;
SELECT count(*), sum(quantity), sum(price * quantity) FROM fake;

-- Bad input: an error with its reason code, nothing else.
SELECT try($$SELECT * FROM exchange.candles('NOPE')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', '0 seconds')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', '-1 minute')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', '1.5 seconds')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', '8 days')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', '1 month')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', NULL)$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', max_rows => 0)$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', max_rows => 10001)$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', since => '2026-01-05 10:00+00', until => '2026-01-05 10:00+00')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', since => '-infinity')$$);
SELECT try($$SELECT * FROM exchange.candles('OHLC-USD', until => 'infinity')$$);
-- A since after now has no bucket that has begun.
SELECT count(*) FROM exchange.candles('OHLC-USD', since => now() + interval '1 hour');

-- Real trading: the bucket in progress, with the trades the functions wrote.
SELECT symbol FROM exchange.create_instrument('LIVE-USD', 0.01, 0.001);
SELECT count(*) FROM exchange.candles('LIVE-USD');
SELECT status FROM exchange.place_order('cm', 'LIVE-USD', 'sell', 'limit', 2, 50.00);
SELECT status FROM exchange.place_order('ct', 'LIVE-USD', 'buy', 'limit', 0.5, 50.00);
SELECT status FROM exchange.place_order('ct', 'LIVE-USD', 'buy', 'limit', 1, 50.00);
SELECT open, high, low, close, volume, notional, trade_count, bucket = date_bin('7 days', now(), '2001-01-01') AS current
  FROM exchange.candles('LIVE-USD', '7 days');
-- Traders and auditors may read candles; nobody else.
SELECT has_function_privilege('exchange_trader', 'exchange.candles(text, interval, timestamptz, timestamptz, int)', 'EXECUTE') AS trader,
       has_function_privilege('exchange_auditor', 'exchange.candles(text, interval, timestamptz, timestamptz, int)', 'EXECUTE') AS auditor,
       has_function_privilege('public', 'exchange.candles(text, interval, timestamptz, timestamptz, int)', 'EXECUTE') AS public;
RESET timezone;
