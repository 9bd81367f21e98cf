-- The book at any journal sequence (0.11): exchange.orderbook_at reads the
-- journal alone. A seeded random stream of orders (limit, market, IOC, self
-- trades), cancels and amends on one instrument keeps, after every command,
-- the book exchange.orderbook showed with the sequence of that command's
-- journal entry; afterwards orderbook_at must give each of them back exactly.
-- (Inside one transaction both read the transaction's own changes.)
SELECT symbol FROM exchange.create_instrument('PAST-USD', 0.5, 1);
CREATE TEMP TABLE seen (seq bigint, side text, price numeric, quantity numeric, order_count int);
CREATE TEMP TABLE steps (seq bigint, kind text);
SELECT setseed(0.4242);
DO $$
DECLARE
    victim uuid;
    pick float8;
    kind text;
    head bigint;
BEGIN
    FOR i IN 1..400 LOOP
        pick := random();
        SELECT o.order_id INTO victim
          FROM exchange.orders o
         WHERE o.instrument = 'PAST-USD' AND o.status IN ('open', 'partially_filled')
         ORDER BY o.order_no
        OFFSET floor(random() * 20) LIMIT 1;
        IF pick < 0.15 AND victim IS NOT NULL THEN
            PERFORM exchange.cancel_order(victim);
            kind := 'cancel';
        ELSIF pick < 0.30 AND victim IS NOT NULL THEN
            BEGIN
                PERFORM exchange.amend_order(victim, quantity => 1 + floor(random() * 6)::int,
                                             price => CASE WHEN random() < 0.5 THEN NULL
                                                           ELSE 95 + floor(random() * 21)::int * 0.5 END);
                kind := 'amend';
            EXCEPTION WHEN OTHERS THEN  -- no_change: rolled back to the block's start, book included
                kind := 'amend refused';
            END;
        ELSIF pick < 0.38 THEN
            PERFORM exchange.place_order('h' || floor(random() * 5)::int, 'PAST-USD',
                                         CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, 'market',
                                         1 + floor(random() * 8)::int);
            kind := 'market';
        ELSE
            PERFORM exchange.place_order('h' || floor(random() * 5)::int, 'PAST-USD',
                                         CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, 'limit',
                                         1 + floor(random() * 8)::int, 95 + floor(random() * 21)::int * 0.5,
                                         CASE WHEN random() < 0.1 THEN 'ioc' ELSE 'gtc' END);
            kind := 'limit';
        END IF;
        SELECT max(e.seq) INTO head
          FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
         WHERE i.symbol = 'PAST-USD';
        IF kind <> 'amend refused' THEN  -- a refusal writes no journal entry: the book of head is kept already
            INSERT INTO seen SELECT head, b.* FROM exchange.orderbook('PAST-USD', 10000) b;
        END IF;
        INSERT INTO steps VALUES (head, kind);
    END LOOP;
END $$;
-- What the stream did.
SELECT kind, count(*) FROM steps GROUP BY kind ORDER BY kind;
SELECT count(*) AS trades FROM exchange.trades WHERE instrument = 'PAST-USD';
SELECT max(seq) AS journal, count(DISTINCT seq) AS books_kept, count(DISTINCT seq) FILTER (WHERE seq IN (SELECT seq FROM seen)) AS not_empty
  FROM steps;

-- Every kept book comes back from the journal, row for row, and the same
-- stays true whatever the depth.
SELECT count(*) AS books, count(*) FILTER (WHERE differs) AS differing
  FROM (SELECT s.seq,
               EXISTS ((SELECT side, price, quantity, order_count FROM seen WHERE seen.seq = s.seq
                        EXCEPT ALL SELECT * FROM exchange.orderbook_at('PAST-USD', s.seq, 10000))
                       UNION ALL
                       (SELECT * FROM exchange.orderbook_at('PAST-USD', s.seq, 10000)
                        EXCEPT ALL SELECT side, price, quantity, order_count FROM seen WHERE seen.seq = s.seq))
                   AS differs
          FROM (SELECT DISTINCT seq FROM steps) s) x;
-- Now: the committed book, in exchange.orderbook's order, at every depth.
SELECT d, (SELECT array_agg(b ORDER BY n) FROM exchange.orderbook_at('PAST-USD', depth => d) WITH ORDINALITY AS b(side, price, quantity, order_count, n))
          IS NOT DISTINCT FROM
          (SELECT array_agg(b ORDER BY n) FROM exchange.orderbook('PAST-USD', d) WITH ORDINALITY AS b(side, price, quantity, order_count, n))
          AS same
  FROM unnest(ARRAY[0, 1, 3, 20, 10000]) d;
SELECT count(*) FROM exchange.orderbook_at('PAST-USD', 0);
SELECT * FROM exchange.orderbook_at('PAST-USD', 3);

-- Within one entry the later change of a level is its state (the core lists
-- a level once per command, so these entries are written here by hand, on
-- an instrument nobody trades).
SELECT symbol FROM exchange.create_instrument('HAND-USD', 1, 1);
INSERT INTO exchange.events (instrument_id, seq, kind, order_id, payload)
SELECT i.instrument_id, e.seq, 'order_placed', gen_random_uuid(), e.payload::jsonb
  FROM exchange.instruments i,
       (VALUES (1, '{"levels": [{"side": "buy", "price": 10, "quantity": 5, "order_count": 1}]}'),
               (2, '{"levels": [{"side": "buy", "price": 10, "quantity": 3, "order_count": 1},
                                {"side": "buy", "price": 10, "quantity": 7, "order_count": 2},
                                {"side": "sell", "price": 12, "quantity": 1, "order_count": 1}]}'),
               (3, '{"levels": [{"side": "sell", "price": 12, "quantity": 0, "order_count": 0},
                                {"side": "sell", "price": 12, "quantity": 4, "order_count": 1}]}')) e(seq, payload)
 WHERE i.symbol = 'HAND-USD';
SELECT s, b.* FROM generate_series(1, 3) s, exchange.orderbook_at('HAND-USD', s) b ORDER BY s, b.side;

-- Bad input: an error with its reason code, nothing else.
SELECT try($$SELECT * FROM exchange.orderbook_at('NOPE')$$);
SELECT try($$SELECT * FROM exchange.orderbook_at('PAST-USD', -1)$$);
SELECT try(format($$SELECT * FROM exchange.orderbook_at('PAST-USD', %s)$$, (SELECT max(seq) + 1 FROM steps)));
SELECT try($$SELECT * FROM exchange.orderbook_at('PAST-USD', depth => -1)$$);
SELECT try($$SELECT * FROM exchange.orderbook_at('PAST-USD', depth => NULL)$$);
SELECT has_function_privilege('exchange_trader', 'exchange.orderbook_at(text, bigint, int)', 'EXECUTE') AS trader,
       has_function_privilege('exchange_auditor', 'exchange.orderbook_at(text, bigint, int)', 'EXECUTE') AS auditor,
       has_function_privilege('public', 'exchange.orderbook_at(text, bigint, int)', 'EXECUTE') AS public;
