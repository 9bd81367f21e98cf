-- The extension, instruments, and helpers the other suites use.
CREATE EXTENSION exchange;
SELECT symbol, tick_size, lot_size, min_quantity, status FROM exchange.create_instrument('BTC-USD', 0.01, 0.001);
SELECT symbol, min_quantity FROM exchange.create_instrument('ETH-USD', 0.05, 0.01, 0.1);
SELECT symbol FROM exchange.create_instrument('SOL-USD', 1, 1);

-- try(sql): runs a statement and shows its SQLSTATE and message (order ids masked) instead of failing.
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || regexp_replace(SQLERRM, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g');
END $$;

-- book(symbol): the whole book as one line per level, best first.
CREATE FUNCTION book(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT side || ' ' || price || ' x ' || quantity || ' (' || order_count || ')'
      FROM exchange.orderbook(symbol, 100)
$$;

-- healthy(symbol): true when verify() finds nothing.
CREATE FUNCTION healthy(symbol text) RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT FROM exchange.verify(symbol))
$$;

SELECT try($$SELECT exchange.create_instrument('BTC-USD', 0.01, 0.001)$$);
SELECT try($$SELECT exchange.create_instrument('X', 0, 1)$$);
SELECT try($$SELECT exchange.create_instrument('X', 1, -1)$$);
SELECT try($$SELECT exchange.create_instrument('X', 'NaN', 1)$$);
SELECT try($$SELECT exchange.create_instrument('X', 1, 1, 0.5)$$);
SELECT try($$SELECT exchange.create_instrument('bad symbol', 1, 1)$$);
SELECT try($$SELECT exchange.create_instrument(NULL, 1, 1)$$);
SELECT name, setting FROM pg_settings WHERE name LIKE 'exchange.%' ORDER BY name;
