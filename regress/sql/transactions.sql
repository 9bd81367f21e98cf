-- The book commits and rolls back with the transaction, to the last lot.
\set VERBOSITY terse
CREATE TEMP TABLE snap (label text, lines text);
CREATE FUNCTION remember(label text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO snap SELECT label, string_agg(b, ' | ') FROM book('ETH-USD') b
$$;
SELECT status FROM exchange.place_order('t1', 'ETH-USD', 'sell', 'limit', 1, 2000);
SELECT status FROM exchange.place_order('t2', 'ETH-USD', 'buy', 'limit', 1, 1990);
SELECT remember('start');

-- ROLLBACK undoes fills, new levels and cancels.
BEGIN;
SELECT status FROM exchange.place_order('t3', 'ETH-USD', 'buy', 'limit', 2, 2000);
SELECT status FROM exchange.cancel_order((SELECT order_id FROM exchange.orders WHERE client_id = 't2'));
SELECT book('ETH-USD');
ROLLBACK;
SELECT lines = (SELECT lines FROM snap WHERE label = 'start') AS restored FROM (SELECT string_agg(b, ' | ') AS lines FROM book('ETH-USD') b) x;
SELECT count(*) FROM exchange.orders WHERE client_id = 't3';

-- ROLLBACK TO SAVEPOINT undoes only what followed it; nested savepoints too.
BEGIN;
SELECT status FROM exchange.place_order('t4', 'ETH-USD', 'sell', 'limit', 1, 2010);
SAVEPOINT a;
SELECT status FROM exchange.place_order('t5', 'ETH-USD', 'sell', 'limit', 1, 2020);
SAVEPOINT b;
SELECT status FROM exchange.place_order('t6', 'ETH-USD', 'buy', 'market', 3);
SELECT book('ETH-USD');
ROLLBACK TO SAVEPOINT b;
SELECT book('ETH-USD');
ROLLBACK TO SAVEPOINT a;
SELECT book('ETH-USD');
RELEASE SAVEPOINT a;
SAVEPOINT c;
SELECT status FROM exchange.place_order('t7', 'ETH-USD', 'buy', 'limit', 1, 1980);
RELEASE SAVEPOINT c;
COMMIT;
SELECT book('ETH-USD');
SELECT client_id FROM exchange.orders WHERE client_id IN ('t4', 't5', 't6', 't7') ORDER BY client_id;

-- An error in the middle of a transaction leaves the book untouched.
SELECT remember('before error');
BEGIN;
SELECT status FROM exchange.place_order('t8', 'ETH-USD', 'buy', 'limit', 5, 2010);
SELECT exchange.place_order('t8', 'ETH-USD', 'buy', 'limit', 5, 0.01);
ROLLBACK;
SELECT lines = (SELECT lines FROM snap WHERE label = 'before error') AS restored FROM (SELECT string_agg(b, ' | ') AS lines FROM book('ETH-USD') b) x;

-- A PL/pgSQL exception block is a subtransaction: its changes are undone with it.
DO $$
BEGIN
    PERFORM exchange.place_order('t9', 'ETH-USD', 'buy', 'limit', 5, 2010);
    RAISE EXCEPTION 'boom';
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
SELECT lines = (SELECT lines FROM snap WHERE label = 'before error') AS restored FROM (SELECT string_agg(b, ' | ') AS lines FROM book('ETH-USD') b) x;

-- Trading needs READ COMMITTED (a later snapshot would miss committed orders).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT exchange.place_order('t10', 'ETH-USD', 'buy', 'limit', 1, 1000)$$);
ROLLBACK;
-- A changed book cannot be prepared for two-phase commit.
BEGIN;
SELECT status FROM exchange.place_order('t11', 'ETH-USD', 'buy', 'limit', 1, 1000);
PREPARE TRANSACTION 'x';
SELECT book('ETH-USD');
-- Rebuild reloads exactly what the tables say.
SELECT exchange.rebuild('ETH-USD');
SELECT book('ETH-USD');
SELECT healthy('ETH-USD'), healthy('BTC-USD'), healthy('SOL-USD');

-- A read-only transaction (and SET TRANSACTION READ ONLY after a trade) is
-- refused by every trading function at once, naming it (25006), and
-- changes nothing; reading the book and verify still work there.
SELECT order_id AS ro_order, client_id AS ro_client FROM exchange.orders
 WHERE instrument = 'ETH-USD' AND status = 'open' ORDER BY order_no LIMIT 1 \gset
SELECT count(*) AS orders_before FROM exchange.orders \gset
BEGIN READ ONLY;
SELECT try($$SELECT exchange.place_order('$$ || :'ro_client' || $$', 'ETH-USD', 'buy', 'limit', 1, 1000)$$);
SELECT try($$SELECT exchange.place_orders('[{"client_id": "$$ || :'ro_client' || $$", "instrument": "ETH-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 1000}]')$$);
SELECT try($$SELECT exchange.cancel_order('$$ || :'ro_order' || $$')$$);
SELECT try($$SELECT exchange.cancel_orders(ARRAY['$$ || :'ro_order' || $$']::uuid[])$$);
SELECT try($$SELECT exchange.cancel_orders(ARRAY['$$ || :'ro_order' || $$']::uuid[], ARRAY['$$ || :'ro_client' || $$'])$$);
SELECT try($$SELECT exchange.amend_order('$$ || :'ro_order' || $$', quantity => 2)$$);
SELECT try($$SELECT exchange.amend_orders('[{"order_id": "$$ || :'ro_order' || $$", "quantity": 2}]')$$);
SELECT try($$SELECT exchange.cancel_all_orders('$$ || :'ro_client' || $$')$$);
SELECT count(*) > 0 AS book_readable FROM exchange.orderbook('ETH-USD');
SELECT count(*) AS problems FROM exchange.verify('ETH-USD');
ROLLBACK;
BEGIN;
SELECT status FROM exchange.cancel_order(:'ro_order');
SET TRANSACTION READ ONLY;
SELECT try($$SELECT exchange.place_order('$$ || :'ro_client' || $$', 'ETH-USD', 'sell', 'limit', 1, 2502)$$);
ROLLBACK;
SELECT count(*) = :orders_before AS nothing_written, (SELECT status FROM exchange.get_order(:'ro_order')) AS still
  FROM exchange.orders;
SELECT healthy('ETH-USD');
