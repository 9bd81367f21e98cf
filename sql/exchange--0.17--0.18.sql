-- exchange 0.17 -> 0.18: TWAP orders (the design's "advanced order types
-- (iceberg, TWAP)"). A TWAP buys or sells a quantity evenly over a period:
-- `slices` child orders, one at the start of each of `slices` equal parts of
-- [start_at, end_at). Each child is an ordinary IOC order of the client
-- (a limit order at the TWAP's price, or a market order without one), so it
-- trades like any other, is journaled, and never rests. A child asks for
-- what the schedule wants filled by then, less what is filled: a slice that
-- found no liquidity is caught up by the next, and the last slice asks for
-- the rest. What a child can not take is left; once the end has passed and
-- the last slice went out, the TWAP is completed, filled or not.
--
-- Time moves the schedule only when run_twaps() runs: the frontend calls it
-- every --twap-tick-ms (1 s by default); without a frontend, cron or psql
-- can. A run places the children that are due, each in the run's
-- transaction with the idempotency key 'twap:<twap_id>:<secret>:<n>' (n =
-- 1, 2, ...; the secret, drawn at random, is not shown to the client, so no
-- order of the client can take a child's key), so a child is placed once
-- even if two runs race (the second skips TWAPs the first holds) or a run
-- is retried.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.18'" to load this file. \quit

CREATE TABLE exchange.twaps (
    twap_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id text NOT NULL,
    instrument text NOT NULL,
    instrument_id int NOT NULL REFERENCES exchange.instruments,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity numeric NOT NULL,
    price numeric,                               -- the children's limit; NULL: market children
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    slices int NOT NULL CHECK (slices BETWEEN 1 AND 10000),
    quantity_lots bigint NOT NULL,
    filled_lots bigint NOT NULL DEFAULT 0,
    filled_quantity numeric NOT NULL DEFAULT 0,
    slices_done int NOT NULL DEFAULT 0,          -- the slices whose time has come and been run
    children int NOT NULL DEFAULT 0,             -- child orders placed
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'cancelled')),
    last_error text,                             -- the last refusal of a child (e.g. instrument_halted)
    idempotency_key text,
    child_key text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),  -- the secret of the children's keys
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_at > start_at),
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX twaps_active ON exchange.twaps (instrument_id, start_at) WHERE status = 'active';
CREATE INDEX twaps_client ON exchange.twaps (client_id, created_at);
GRANT SELECT ON exchange.twaps TO exchange_auditor;
SELECT pg_catalog.pg_extension_config_dump('exchange.twaps', '');

-- What every TWAP function returns.
CREATE TYPE exchange.twap_result AS (
    twap_id uuid,
    client_id text,
    instrument text,
    side text,
    quantity numeric,
    price numeric,
    start_at timestamptz,
    end_at timestamptz,
    slices int,
    filled_quantity numeric,
    remaining_quantity numeric,
    slices_done int,
    children int,
    status text,
    last_error text,
    created_at timestamptz,
    updated_at timestamptz,
    replayed boolean             -- place_twap: an idempotency_key seen before (the TWAP as it is now)
);

CREATE FUNCTION exchange._twap_result(t exchange.twaps, replayed boolean DEFAULT false) RETURNS exchange.twap_result
LANGUAGE sql STABLE AS $$
    SELECT t.twap_id, t.client_id, t.instrument, t.side, t.quantity, t.price, t.start_at, t.end_at, t.slices,
           t.filled_quantity, t.quantity - t.filled_quantity, t.slices_done, t.children, t.status, t.last_error, t.created_at,
           t.updated_at, replayed
$$;
REVOKE ALL ON FUNCTION exchange._twap_result(exchange.twaps, boolean) FROM PUBLIC;

-- A TWAP: `quantity` over `duration` from `start_at` (default now; one in
-- the past catches up at the next run), in `slices` children (default one a
-- minute, at least one, at most 10,000), each a limit IOC at `price` or, without one, a
-- market order. Errors (22023 unless said): invalid_client_id, invalid_side,
-- invalid_quantity (also: a slice smaller than the instrument's
-- min_quantity), invalid_price, invalid_duration (1 second to 7 days),
-- invalid_slices (1 to 10,000, and a slice at least one lot),
-- invalid_idempotency_key, 42704 unknown_instrument, 55000
-- instrument_halted. Repeating an idempotency_key of the client returns its
-- TWAP as it is now.
CREATE FUNCTION exchange.place_twap(client_id text, instrument text, side text, quantity numeric, duration interval,
                                    slices int DEFAULT NULL, price numeric DEFAULT NULL,
                                    start_at timestamptz DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS exchange.twap_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments;
    t exchange.twaps;
    lots bigint;
    ticks bigint;
    min_lots bigint;
    n int;
BEGIN
    IF place_twap.client_id IS NULL OR length(place_twap.client_id) NOT BETWEEN 1 AND 128
       OR place_twap.client_id ~ '[\x01-\x1f\x7f]' THEN
        PERFORM exchange._fail('invalid_client_id', 'client_id must be 1 to 128 printable characters');
    END IF;
    IF idempotency_key IS NOT NULL THEN
        IF length(idempotency_key) NOT BETWEEN 1 AND 255 THEN
            PERFORM exchange._fail('invalid_idempotency_key', 'idempotency_key must be 1 to 255 characters');
        END IF;
        SELECT * INTO t FROM exchange.twaps x
         WHERE x.client_id = place_twap.client_id AND x.idempotency_key = place_twap.idempotency_key;
        IF FOUND THEN
            RETURN exchange._twap_result(t, true);
        END IF;
    END IF;
    inst := exchange._instrument(instrument);
    IF side IS NULL OR side NOT IN ('buy', 'sell') THEN
        PERFORM exchange._fail('invalid_side', format('side %L is not buy or sell', side));
    END IF;
    lots := exchange._units(quantity, inst.lot_size, 'quantity');
    IF price IS NOT NULL THEN
        ticks := exchange._units(price, inst.tick_size, 'price');
    END IF;
    IF duration IS NULL OR duration < interval '1 second' OR duration > interval '7 days' THEN
        PERFORM exchange._fail('invalid_duration', format('duration %s is not between 1 second and 7 days', duration));
    END IF;
    n := coalesce(slices, least(10000, greatest(1, ceil(extract(epoch FROM duration) / 60)::int)));
    PERFORM exchange._in_range(n, 1, 10000, 'invalid_slices', 'slices');
    IF lots < n THEN
        PERFORM exchange._fail('invalid_slices', format('%s slices of quantity %s are less than a lot (%s) each', n,
                                                        quantity, inst.lot_size));
    END IF;
    min_lots := ceil(inst.min_quantity / inst.lot_size)::bigint;
    IF lots / n < min_lots THEN
        PERFORM exchange._fail('invalid_quantity', format(
            'a slice of quantity %s is less than the minimum quantity %s of %s', (lots / n) * inst.lot_size,
            inst.min_quantity, inst.symbol));
    END IF;
    IF inst.status <> 'active' THEN
        PERFORM exchange._fail('instrument_halted', format('instrument %s is %s', inst.symbol, inst.status), '55000');
    END IF;
    BEGIN
        INSERT INTO exchange.twaps (client_id, instrument, instrument_id, side, quantity, price, start_at, end_at,
                                    slices, quantity_lots, filled_quantity, idempotency_key)
        VALUES (place_twap.client_id, inst.symbol, inst.instrument_id, side, lots * inst.lot_size,
                ticks * inst.tick_size, coalesce(start_at, now()), coalesce(start_at, now()) + duration, n, lots,
                0 * inst.lot_size, idempotency_key)
        RETURNING * INTO t;
    EXCEPTION WHEN unique_violation THEN
        -- The same key placed by a concurrent call that committed first.
        SELECT * INTO t FROM exchange.twaps x
         WHERE x.client_id = place_twap.client_id AND x.idempotency_key = place_twap.idempotency_key;
        RETURN exchange._twap_result(t, true);
    END;
    RETURN exchange._twap_result(t);
END $$;
REVOKE ALL ON FUNCTION exchange.place_twap(text, text, text, numeric, interval, int, numeric, timestamptz, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.place_twap(text, text, text, numeric, interval, int, numeric, timestamptz, text)
    TO exchange_trader;

-- A TWAP's row (P0002 twap_not_found).
CREATE FUNCTION exchange._twap(twap_id uuid) RETURNS exchange.twaps
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t exchange.twaps;
BEGIN
    SELECT * INTO t FROM exchange.twaps x WHERE x.twap_id = _twap.twap_id;
    IF NOT FOUND THEN
        PERFORM exchange._fail('twap_not_found', format('TWAP %s does not exist', twap_id), 'P0002');
    END IF;
    RETURN t;
END $$;
REVOKE ALL ON FUNCTION exchange._twap(uuid) FROM PUBLIC;

-- Stops an active TWAP (its children are IOC: nothing of it rests). Errors:
-- P0002 twap_not_found, 42501 not_twap_owner (client_id given and not the
-- TWAP's), 55000 twap_not_active (completed or cancelled already).
CREATE FUNCTION exchange.cancel_twap(twap_id uuid, client_id text DEFAULT NULL) RETURNS exchange.twap_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    t exchange.twaps;
BEGIN
    PERFORM exchange._twap(twap_id);
    SELECT * INTO t FROM exchange.twaps x WHERE x.twap_id = cancel_twap.twap_id FOR UPDATE;
    IF cancel_twap.client_id IS NOT NULL AND t.client_id <> cancel_twap.client_id THEN
        PERFORM exchange._fail('not_twap_owner', format('TWAP %s is not a TWAP of %s', twap_id, cancel_twap.client_id),
                               '42501');
    END IF;
    IF t.status <> 'active' THEN
        PERFORM exchange._fail('twap_not_active', format('TWAP %s is %s', twap_id, t.status), '55000');
    END IF;
    UPDATE exchange.twaps x SET status = 'cancelled', updated_at = now() WHERE x.twap_id = t.twap_id
    RETURNING * INTO t;
    RETURN exchange._twap_result(t);
END $$;
REVOKE ALL ON FUNCTION exchange.cancel_twap(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.cancel_twap(uuid, text) TO exchange_trader;

-- One TWAP (P0002 twap_not_found), or a client's, newest first (status NULL:
-- every status).
CREATE FUNCTION exchange.get_twap(twap_id uuid) RETURNS exchange.twap_result
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
    SELECT exchange._twap_result(exchange._twap(twap_id))
$$;

CREATE FUNCTION exchange.list_twaps(client_id text, status text DEFAULT NULL, max_rows int DEFAULT 100)
RETURNS SETOF exchange.twap_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
BEGIN
    IF status IS NOT NULL AND status NOT IN ('active', 'completed', 'cancelled') THEN
        PERFORM exchange._fail('invalid_status', format('status %L is not active, completed or cancelled', status));
    END IF;
    PERFORM exchange._in_range(max_rows, 1, 10000, 'invalid_limit', 'max_rows');
    RETURN QUERY
    SELECT (exchange._twap_result(x)).* FROM exchange.twaps x
     WHERE x.client_id = list_twaps.client_id AND (list_twaps.status IS NULL OR x.status = list_twaps.status)
     ORDER BY x.created_at DESC, x.twap_id
     LIMIT max_rows;
END $$;
REVOKE ALL ON FUNCTION exchange.get_twap(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.list_twaps(text, text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.get_twap(uuid), exchange.list_twaps(text, text, int)
    TO exchange_trader, exchange_auditor;

-- The idempotency key of a TWAP's n-th child.
CREATE FUNCTION exchange._twap_child_key(t exchange.twaps, n int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'twap:' || t.twap_id || ':' || t.child_key || ':' || n $$;
REVOKE ALL ON FUNCTION exchange._twap_child_key(exchange.twaps, int) FROM PUBLIC;

-- The child orders of a TWAP (removed by prune() once finished and settled
-- like any order), oldest first, as order_result rows with their trades.
CREATE FUNCTION exchange.twap_orders(twap_id uuid) RETURNS SETOF exchange.order_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    t exchange.twaps := exchange._twap(twap_id);
BEGIN
    RETURN QUERY
    SELECT (exchange._result(o, exchange._order_trades(o), NULL)).* FROM exchange.orders o
     WHERE o.client_id = t.client_id
       AND o.idempotency_key = ANY (ARRAY(SELECT exchange._twap_child_key(t, k) FROM generate_series(1, t.children) k))
     ORDER BY o.order_no;
END $$;
REVOKE ALL ON FUNCTION exchange.twap_orders(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.twap_orders(uuid) TO exchange_trader, exchange_auditor;

-- Places every child order that is due now (now(): the transaction's start)
-- and returns one row per child placed. TWAPs another run holds are skipped;
-- instruments are taken in one order (by id). A child the exchange refuses
-- with an error (the instrument halted, say) leaves the TWAP as it was,
-- with the error in last_error, and the run goes on with the others; the
-- next run tries again (after the end too, until the child goes out or the
-- TWAP is cancelled). A TWAP whose end has passed is completed once its
-- last slice went out, filled or not.
CREATE FUNCTION exchange.run_twaps()
RETURNS TABLE (twap_id uuid, order_id uuid, quantity numeric, filled_quantity numeric, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    t exchange.twaps;
    inst exchange.instruments;
    due int;
    want bigint;
    min_lots bigint;
    final boolean;
    r exchange.order_result;
BEGIN
    FOR t IN SELECT * FROM exchange.twaps x WHERE x.status = 'active' AND x.start_at <= now()
              ORDER BY x.instrument_id, x.start_at, x.twap_id FOR UPDATE SKIP LOCKED LOOP
        SELECT * INTO inst FROM exchange.instruments i WHERE i.instrument_id = t.instrument_id;
        final := now() >= t.end_at;
        due := CASE WHEN final THEN t.slices
                    ELSE least(t.slices, floor(extract(epoch FROM now() - t.start_at)
                                               / extract(epoch FROM (t.end_at - t.start_at) / t.slices))::int + 1) END;
        want := floor(t.quantity_lots::numeric * due / t.slices)::bigint - t.filled_lots;
        min_lots := ceil(inst.min_quantity / inst.lot_size)::bigint;
        -- A slice whose time has come: a child for what the schedule wants
        -- filled by now (what earlier slices left included), unless that is
        -- less than the instrument's minimum (the next slice takes it up).
        IF due > t.slices_done AND want >= greatest(min_lots, 1) THEN
            BEGIN
                SELECT * INTO r FROM exchange.place_order(
                    t.client_id, t.instrument, t.side, CASE WHEN t.price IS NULL THEN 'market' ELSE 'limit' END,
                    want * inst.lot_size, t.price, 'ioc', exchange._twap_child_key(t, t.children + 1));
                t.children := t.children + 1;
                t.slices_done := due;
                t.filled_lots := t.filled_lots + (r.filled_quantity / inst.lot_size)::bigint;
                t.filled_quantity := t.filled_lots * inst.lot_size;
                t.last_error := NULL;
                twap_id := t.twap_id;
                order_id := r.order_id;
                quantity := r.quantity;
                filled_quantity := r.filled_quantity;
                status := r.status;
                RETURN NEXT;
            EXCEPTION WHEN OTHERS THEN
                -- Tried again at the next run (after the end too, until it
                -- goes out or the TWAP is cancelled).
                t.last_error := SQLSTATE || ' ' || SQLERRM;
            END;
        ELSIF due > t.slices_done THEN
            t.slices_done := due;
        END IF;
        IF t.filled_lots >= t.quantity_lots OR (final AND t.slices_done = t.slices) THEN
            t.status := 'completed';
        END IF;
        -- Written only when something moved: a run with nothing due writes
        -- nothing (the ticker runs every second).
        UPDATE exchange.twaps x
           SET slices_done = t.slices_done, children = t.children, filled_lots = t.filled_lots,
               filled_quantity = t.filled_quantity, last_error = t.last_error, status = t.status, updated_at = now()
         WHERE x.twap_id = t.twap_id
           AND (x.slices_done, x.children, x.last_error, x.status)
               IS DISTINCT FROM (t.slices_done, t.children, t.last_error, t.status);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION exchange.run_twaps() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.run_twaps() TO exchange_trader;
