-- exchange 0.10 -> 0.11: OHLCV candles from the trades, the book as it was at
-- any journal sequence, a client's resting orders found by an index, and paging
-- through a client's orders and an instrument's trades.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.11'" to load this file. \quit

-- The candles of an instrument: one row per bucket of `width` (a whole
-- number of seconds from 1 second to 7 days), oldest first, with the open,
-- high, low and close price, the volume and notional and the trade count of
-- the trades executed in it. Buckets are aligned to Monday 2001-01-01 00:00
-- UTC (date_bin's origin): a width that divides a day starts its buckets at
-- UTC midnight, a week starts on Monday.
--
-- The window: the buckets that start in [since, until), at most max_rows of
-- them from the first (from the first trade's when the instrument had not
-- traded before since); until defaults to now() and cannot be later (a
-- bucket that has not begun is not reported), since defaults to the
-- max_rows buckets that end with the one in progress at until. The last
-- bucket holds the trades before until only. A client pages forward with
-- since = the last bucket + width.
--
-- Every bucket of the window is a row, also one without trades (trade_count
-- 0, volume and notional 0, and open = high = low = close = the last price
-- before it), so that a chart has no holes; the buckets before the
-- instrument's first trade are left out. Prices and quantities are the
-- trades' own numerics: exact, no rounding.
--
-- Errors (SQLSTATE 22023 unless said): unknown instrument (42704
-- unknown_instrument), width out of range or not whole seconds
-- (invalid_interval), max_rows not in 1..10000 (invalid_limit), since or
-- until not finite or since not before until (invalid_range).
CREATE FUNCTION exchange.candles(instrument text, width interval DEFAULT '1 minute', since timestamptz DEFAULT NULL,
                                 until timestamptz DEFAULT NULL, max_rows int DEFAULT 500)
RETURNS TABLE (bucket timestamptz, open numeric, high numeric, low numeric, close numeric, volume numeric,
               notional numeric, trade_count bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
    origin constant timestamptz := '2001-01-01 00:00:00+00';
    secs numeric := extract(epoch FROM width);
    w interval;
    hi timestamptz;
    lo timestamptz;
    last_price numeric;
    c record;
BEGIN
    PERFORM exchange._in_range(max_rows, 1, 10000, 'invalid_limit', 'max_rows');
    IF secs IS NULL OR secs < 1 OR secs > 604800 OR secs <> trunc(secs) THEN
        PERFORM exchange._fail('invalid_interval',
                               format('width %s is not a whole number of seconds from 1 second to 7 days',
                                      coalesce(width::text, 'NULL')));
    END IF;
    w := make_interval(secs => secs);
    IF NOT isfinite(coalesce(since, now())) OR NOT isfinite(coalesce(until, now())) THEN
        PERFORM exchange._fail('invalid_range', 'since and until must be finite timestamps');
    END IF;
    IF since IS NOT NULL AND until IS NOT NULL AND since >= until THEN
        PERFORM exchange._fail('invalid_range', format('since %s is not before until %s', since, until));
    END IF;
    hi := least(coalesce(until, now()), now());
    IF since IS NULL THEN
        -- the bucket in progress at hi (one that starts at hi has not begun), and max_rows - 1 before it
        lo := date_bin(w, hi, origin);
        IF lo = hi THEN
            lo := lo - w;
        END IF;
        lo := lo - w * (max_rows - 1);
    ELSE
        -- the first bucket that starts at or after since
        lo := date_bin(w, since, origin);
        IF lo < since THEN
            lo := lo + w;
        END IF;
    END IF;
    IF lo >= hi THEN
        RETURN;
    END IF;
    SELECT t.price INTO last_price
      FROM exchange.trades t
     WHERE t.instrument = inst.symbol AND t.executed_at < lo
     ORDER BY t.executed_at DESC, t.seq DESC, t.trade_no DESC
     LIMIT 1;
    IF last_price IS NULL AND since IS NOT NULL THEN
        -- No trade before the window: it starts at the first trade's bucket (a client paging from a
        -- time before the instrument traded is not handed empty pages).
        SELECT date_bin(w, t.executed_at, origin) INTO lo
          FROM exchange.trades t
         WHERE t.instrument = inst.symbol AND t.executed_at >= lo AND t.executed_at < hi
         ORDER BY t.executed_at
         LIMIT 1;
        IF lo IS NULL THEN
            RETURN;
        END IF;
    END IF;
    hi := least(hi, lo + w * max_rows);
    -- Open and close are the first and last trade in (executed_at, seq,
    -- trade_no) order, as trade_stats and recent_trades order them; the
    -- array's minimum and maximum find them in one pass without sorting.
    FOR c IN
        SELECT s.b, a.first_trade[4] AS o, a.hi_price, a.lo_price, a.last_trade[4] AS cl, a.vol, a.notional, a.n
          FROM generate_series(lo, hi - interval '1 microsecond', w) AS s(b)
          LEFT JOIN (SELECT date_bin(w, t.executed_at, origin) AS b,
                            min(ARRAY[extract(epoch FROM t.executed_at), t.seq, t.trade_no, t.price]) AS first_trade,
                            max(ARRAY[extract(epoch FROM t.executed_at), t.seq, t.trade_no, t.price]) AS last_trade,
                            max(t.price) AS hi_price, min(t.price) AS lo_price, sum(t.quantity) AS vol,
                            sum(t.price * t.quantity) AS notional, count(*) AS n
                       FROM exchange.trades t
                      WHERE t.instrument = inst.symbol AND t.executed_at >= lo AND t.executed_at < hi
                      GROUP BY 1) a ON a.b = s.b
         ORDER BY s.b
    LOOP
        IF c.n IS NOT NULL THEN
            bucket := c.b;
            open := c.o;
            high := c.hi_price;
            low := c.lo_price;
            close := c.cl;
            volume := c.vol;
            notional := c.notional;
            trade_count := c.n;
            last_price := c.cl;
            RETURN NEXT;
        ELSIF last_price IS NOT NULL THEN
            bucket := c.b;
            open := last_price;
            high := last_price;
            low := last_price;
            close := last_price;
            volume := 0;
            notional := 0;
            trade_count := 0;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
ALTER FUNCTION exchange.candles(text, interval, timestamptz, timestamptz, int)
    SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.candles(text, interval, timestamptz, timestamptz, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.candles(text, interval, timestamptz, timestamptz, int)
    TO exchange_trader, exchange_auditor;

-- The book of an instrument as it was right after journal entry `seq`
-- (default: the newest, which is the committed book), read from the journal
-- alone: every entry's payload lists the levels it changed with their new
-- quantity and order count, so a level's state at seq is its last change at
-- or before seq. The rows are exchange.orderbook's: (side, price, quantity,
-- order_count), bids then asks, each best first, at most `depth` per side.
-- For audit ("what did the book look like when this order came in?") and to
-- check the journal against the book: with no seq it must equal
-- exchange.orderbook(instrument, <all>). It reads every journal entry of the
-- instrument up to seq: time grows with the journal.
--
-- Errors (SQLSTATE 22023 unless said): unknown instrument (42704
-- unknown_instrument), seq not in 0..the newest entry (invalid_seq), depth
-- negative or NULL (invalid_depth).
CREATE FUNCTION exchange.orderbook_at(instrument text, seq bigint DEFAULT NULL, depth int DEFAULT 20)
RETURNS TABLE (side text, price numeric, quantity numeric, order_count int)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
    head bigint;
    upto bigint;
BEGIN
    IF depth IS NULL OR depth < 0 THEN
        PERFORM exchange._fail('invalid_depth', 'depth must be zero or positive');
    END IF;
    SELECT coalesce(max(e.seq), 0) INTO head FROM exchange.events e WHERE e.instrument_id = inst.instrument_id;
    upto := coalesce(orderbook_at.seq, head);
    IF upto < 0 OR upto > head THEN
        PERFORM exchange._fail('invalid_seq', format('seq %s is not in 0..%s, the journal of %s', upto, head,
                                                     inst.symbol));
    END IF;
    RETURN QUERY
        WITH last AS (
            SELECT DISTINCT ON (l.change->>'side', (l.change->>'price')::numeric)
                   l.change->>'side' AS s, (l.change->>'price')::numeric AS p,
                   (l.change->>'quantity')::numeric AS q, (l.change->>'order_count')::int AS n
              FROM exchange.events e
                   CROSS JOIN LATERAL jsonb_array_elements(e.payload->'levels') WITH ORDINALITY AS l(change, k)
             WHERE e.instrument_id = inst.instrument_id AND e.seq <= upto
             ORDER BY l.change->>'side', (l.change->>'price')::numeric, e.seq DESC, l.k DESC),
        ranked AS (
            SELECT last.s, last.p, last.q, last.n,
                   row_number() OVER (PARTITION BY last.s ORDER BY CASE WHEN last.s = 'buy' THEN -last.p
                                                                        ELSE last.p END) AS r
              FROM last
             WHERE last.n > 0)
        SELECT ranked.s, ranked.p, ranked.q, ranked.n FROM ranked WHERE ranked.r <= depth ORDER BY ranked.s, ranked.r;
END $$;
ALTER FUNCTION exchange.orderbook_at(text, bigint, int)
    SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.orderbook_at(text, bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.orderbook_at(text, bigint, int) TO exchange_trader, exchange_auditor;

-- A client's resting orders by an index. list_orders walked the order_no
-- index from the newest order and filtered by client: for a client's open
-- orders (GET /orders?client_id=, the design's open-orders route) its time
-- grew with the whole table (at 1.24 million orders 110-210 ms for one
-- client's open orders or for a client without any; at 100 million, past
-- the frontend's 10 s statement timeout). This partial index holds the
-- resting orders only, by client and age: an entry for each order that
-- rests when written, and for each maker update that leaves the order
-- resting (not HOT anyway: status is in orders_resting's predicate); orders
-- that trade or are refused at once get none (Benchmark measures the cost).
-- A client's finished orders (status filled, cancelled, rejected) are still
-- found by walking order_no from the newest: fast for an active client,
-- slow for one whose last orders are far back. Built here with a SHARE lock
-- on exchange.orders: writes to orders wait for the build during the update.
CREATE INDEX orders_client_resting ON exchange.orders (client_no, order_no)
    WHERE status IN ('open', 'partially_filled');

-- A client's orders, newest first: its resting ones (status NULL) or those
-- with one status; `before` (an order of the client) pages on: only orders
-- older than it. Errors: unknown status (invalid_status), max_rows not in
-- 1..10000 (invalid_limit), before not an order of the client (P0002
-- order_not_found).
DROP FUNCTION exchange.list_orders(text, text, int);
CREATE FUNCTION exchange.list_orders(client_id text, status text DEFAULT NULL, max_rows int DEFAULT 100,
                                     before uuid DEFAULT NULL)
RETURNS SETOF exchange.order_result
LANGUAGE plpgsql STABLE AS $$
DECLARE
    client bigint;
    older_than bigint := 9223372036854775807;
BEGIN
    IF status IS NOT NULL AND status NOT IN ('open', 'partially_filled', 'filled', 'cancelled', 'rejected') THEN
        PERFORM exchange._fail('invalid_status', format('status %L is not open, partially_filled, filled, cancelled or rejected', status));
    END IF;
    PERFORM exchange._in_range(max_rows, 1, 10000, 'invalid_limit', 'max_rows');
    SELECT c.client_no INTO client FROM exchange.clients c WHERE c.client_id = list_orders.client_id;
    IF before IS NOT NULL THEN
        SELECT o.order_no INTO older_than FROM exchange.orders o
         WHERE o.order_id = before AND o.client_no = client;
        IF NOT FOUND THEN
            PERFORM exchange._fail('order_not_found',
                                   format('order %s does not exist or is not an order of %s', before, list_orders.client_id),
                                   'P0002');
        END IF;
    END IF;
    IF client IS NULL THEN
        RETURN;  -- a client that never placed an order
    END IF;
    IF status IS NULL OR status IN ('open', 'partially_filled') THEN
        -- The partial index: its predicate written as in the index, so the planner sees it applies.
        RETURN QUERY
            SELECT (exchange._result(o, '[]'::jsonb, NULL)).*
              FROM exchange.orders o
             WHERE o.client_no = client AND o.status IN ('open', 'partially_filled')
               AND o.status = coalesce(list_orders.status, o.status) AND o.order_no < older_than
             ORDER BY o.order_no DESC
             LIMIT max_rows;
    ELSE
        RETURN QUERY
            SELECT (exchange._result(o, '[]'::jsonb, NULL)).*
              FROM exchange.orders o
             WHERE o.client_no = client AND o.status = list_orders.status AND o.order_no < older_than
             ORDER BY o.order_no DESC
             LIMIT max_rows;
    END IF;
END $$;
ALTER FUNCTION exchange.list_orders(text, text, int, uuid)
    SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.list_orders(text, text, int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.list_orders(text, text, int, uuid) TO exchange_trader, exchange_auditor;

-- The latest trades of an instrument, newest first; `before` (a trade of
-- the instrument) pages on: only trades older than it, in the same order
-- (executed_at, seq, trade_no). Errors: max_rows not in 1..10000
-- (invalid_limit), before not a trade of the instrument (P0002
-- trade_not_found).
DROP FUNCTION exchange.recent_trades(text, int);
CREATE FUNCTION exchange.recent_trades(instrument text, max_rows int DEFAULT 100, before uuid DEFAULT NULL)
RETURNS TABLE (trade_id uuid, symbol text, price numeric, quantity numeric, buy_order_id uuid,
               sell_order_id uuid, buy_client_id text, sell_client_id text, maker_side text, seq bigint,
               executed_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
    cursor_at timestamptz;
    cursor_seq bigint;
    cursor_no bigint;
BEGIN
    PERFORM exchange._in_range(max_rows, 1, 10000, 'invalid_limit', 'max_rows');
    IF before IS NOT NULL THEN
        SELECT t.executed_at, t.seq, t.trade_no INTO cursor_at, cursor_seq, cursor_no
          FROM exchange.trades t
         WHERE t.trade_id = before AND t.instrument = inst.symbol;
        IF NOT FOUND THEN
            PERFORM exchange._fail('trade_not_found',
                                   format('trade %s does not exist or is not a trade of %s', before, inst.symbol),
                                   'P0002');
        END IF;
    END IF;
    -- Planned for each call with its values (EXECUTE): a cursor's conditions planned generically could
    -- read all the instrument's trades and sort them.
    RETURN QUERY EXECUTE
        'SELECT t.trade_id, t.instrument, t.price, t.quantity, t.buy_order_id, t.sell_order_id, t.buy_client_id,
                t.sell_client_id, t.maker_side, t.seq, t.executed_at
           FROM exchange.trades t
          WHERE t.instrument = $1' ||
        CASE WHEN before IS NULL THEN ''
             ELSE ' AND t.executed_at <= $2 AND (t.executed_at, t.seq, t.trade_no) < ($2, $3, $4)' END ||
        ' ORDER BY t.executed_at DESC, t.seq DESC, t.trade_no DESC LIMIT $5'
        USING inst.symbol, cursor_at, cursor_seq, cursor_no, max_rows;
END $$;
ALTER FUNCTION exchange.recent_trades(text, int, uuid)
    SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.recent_trades(text, int, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.recent_trades(text, int, uuid) TO exchange_trader, exchange_auditor;
