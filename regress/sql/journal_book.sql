-- The book from the journal (0.16): what orderbook() and book_snapshot()
-- answer on a standby, whose books are not in memory: the newest stored
-- snapshot at or before the newest entry, then the entries after it. Here,
-- on the primary, it must equal the book in memory for every instrument the
-- suites before left behind (icebergs, stops, halts, self-trades, amends),
-- with and without stored snapshots, and at an older entry equal
-- orderbook_at() (a snapshot after that entry is not used). HAND-USD is left
-- out: orderbook_at.sql wrote its journal by hand, with no book behind it.
CREATE FUNCTION journal_book_differs() RETURNS TABLE (symbol text, side text, price numeric, quantity numeric,
                                                       order_count int, in_memory boolean)
LANGUAGE sql AS $$
    WITH i AS (SELECT * FROM exchange.instruments WHERE symbol <> 'HAND-USD')
    SELECT i.symbol, b.*, false FROM i, exchange._journal_book(i::exchange.instruments,
                                                               exchange._journal_head(i.instrument_id), 100000) b
    EXCEPT ALL SELECT i.symbol, o.*, false FROM i, exchange.orderbook(i.symbol, 100000) o
    UNION ALL
    (SELECT i.symbol, o.*, true FROM i, exchange.orderbook(i.symbol, 100000) o
     EXCEPT ALL SELECT i.symbol, b.*, true FROM i, exchange._journal_book(i::exchange.instruments,
                                                                         exchange._journal_head(i.instrument_id), 100000) b)
$$;
SELECT count(*) > 20 AS instruments, sum(exchange._journal_head(instrument_id)) > 1000 AS entries
  FROM exchange.instruments;
SELECT * FROM journal_book_differs();
-- Depth: the best levels of each side, in orderbook()'s order.
SELECT count(*) AS differing FROM (
    SELECT i.symbol, b.* FROM exchange.instruments i, exchange._journal_book(i, exchange._journal_head(i.instrument_id), 2) b
     WHERE i.symbol <> 'HAND-USD'
    EXCEPT ALL SELECT i.symbol, o.* FROM exchange.instruments i, exchange.orderbook(i.symbol, 2) o) d;
-- A snapshot of every book, then more trading on one: the snapshots and the entries after them.
SELECT count(exchange.snapshot(symbol)) > 20 AS snapshots FROM exchange.instruments;
SELECT symbol FROM exchange.create_instrument('JB-USD', 0.5, 1);
SELECT exchange.snapshot('JB-USD') > 0 AS empty_snapshot;
SELECT count(*) FROM generate_series(1, 60) g,
       LATERAL exchange.place_order('jb' || g % 5, 'JB-USD', CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, 'limit',
                                    1 + g % 4, 100 + (g * 7) % 9 * 0.5 - 2) p;
SELECT exchange.snapshot('JB-USD') > 0 AS mid_snapshot;
SELECT count(*) FROM generate_series(61, 100) g,
       LATERAL exchange.place_order('jb' || g % 5, 'JB-USD', CASE WHEN g % 2 = 0 THEN 'buy' ELSE 'sell' END, 'limit',
                                    1 + g % 4, 100 + (g * 7) % 9 * 0.5 - 2) p;
SELECT count(*) AS cancelled FROM exchange.orders o, exchange.cancel_order(o.order_id) c
 WHERE o.instrument = 'JB-USD' AND o.status = 'open' AND o.client_id = 'jb1';
SELECT * FROM journal_book_differs();
-- At entry 30 of JB-USD (before its second snapshot): orderbook_at's book.
SELECT count(*) AS differing FROM (
    (SELECT b.* FROM exchange.instruments i, exchange._journal_book(i, 30, 1000) b WHERE i.symbol = 'JB-USD'
     EXCEPT ALL SELECT * FROM exchange.orderbook_at('JB-USD', 30, 1000))
    UNION ALL
    (SELECT * FROM exchange.orderbook_at('JB-USD', 30, 1000)
     EXCEPT ALL SELECT b.* FROM exchange.instruments i, exchange._journal_book(i, 30, 1000) b WHERE i.symbol = 'JB-USD')) d;
SELECT count(*) > 0 AS levels FROM exchange.orderbook('JB-USD', 1000);
-- book_snapshot's JSON is the same text either way (decimals as the book prints them).
SELECT count(*) AS differing FROM exchange.instruments i
 WHERE i.symbol <> 'HAND-USD' AND exchange.book_snapshot(i.symbol)
       <> jsonb_build_object('instrument', i.symbol, 'seq', exchange._journal_head(i.instrument_id),
                             'bids', coalesce((SELECT jsonb_agg(jsonb_build_object('price', b.price::text,
                                                 'quantity', b.quantity::text, 'order_count', b.order_count)
                                                 ORDER BY b.price DESC)
                                                 FROM exchange._journal_book(i, exchange._journal_head(i.instrument_id),
                                                                             100000) b WHERE b.side = 'buy'), '[]'),
                             'asks', coalesce((SELECT jsonb_agg(jsonb_build_object('price', b.price::text,
                                                 'quantity', b.quantity::text, 'order_count', b.order_count)
                                                 ORDER BY b.price)
                                                 FROM exchange._journal_book(i, exchange._journal_head(i.instrument_id),
                                                                             100000) b WHERE b.side = 'sell'), '[]'));
