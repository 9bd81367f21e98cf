-- exchange 0.18 -> 0.19: each TWAP's slice in its own transaction.
--
-- 0.18's run_twaps() runs every due TWAP in the caller's transaction. A
-- child placed early in a run keeps its instrument locked until the run
-- commits, so that instrument's traders wait for every later TWAP of the
-- run, including a child that waits lock_timeout for another instrument.
-- The procedure run_twaps_each() runs the same TWAPs, in the same order,
-- and commits after each one: an instrument is held only while its own
-- TWAP's child is placed. The frontend's ticker calls it (CALL, outside a
-- transaction block); run_twaps() stays for a caller that wants one
-- transaction (inside BEGIN ... COMMIT, where a procedure can not commit).
-- Both go through _run_twap(id), which is 0.18's loop body unchanged: the
-- children, their keys, the catch-up and the errors are as before.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.19'" to load this file. \quit

-- The TWAPs a run looks at, in the order 0.18 took them (by instrument, so
-- that one transaction running several takes the instruments in one order).
CREATE FUNCTION exchange._due_twaps() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(x.twap_id ORDER BY x.instrument_id, x.start_at, x.twap_id), '{}')
      FROM exchange.twaps x WHERE x.status = 'active' AND x.start_at <= now()
$$;
REVOKE ALL ON FUNCTION exchange._due_twaps() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange._due_twaps() TO exchange_trader;

-- One TWAP: its child if a slice is due, and its row brought up to date. A
-- TWAP another run holds (FOR UPDATE SKIP LOCKED), or that is no longer
-- active, is left alone.
CREATE FUNCTION exchange._run_twap(id uuid)
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
    SELECT * INTO t FROM exchange.twaps x WHERE x.twap_id = id AND x.status = 'active' AND x.start_at <= now()
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
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
END $$;
REVOKE ALL ON FUNCTION exchange._run_twap(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange._run_twap(uuid) TO exchange_trader;

-- Every due TWAP in the caller's transaction (0.18's contract).
CREATE OR REPLACE FUNCTION exchange.run_twaps()
RETURNS TABLE (twap_id uuid, order_id uuid, quantity numeric, filled_quantity numeric, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    id uuid;
BEGIN
    FOREACH id IN ARRAY exchange._due_twaps() LOOP
        RETURN QUERY SELECT * FROM exchange._run_twap(id);
    END LOOP;
END $$;

-- Every due TWAP, each in its own transaction: CALL exchange.run_twaps_each()
-- outside a transaction block. children: the child orders placed. No SET
-- clause and no SECURITY DEFINER (either would forbid its COMMIT): it runs
-- as its caller and reaches the TWAPs through the two functions above.
CREATE PROCEDURE exchange.run_twaps_each(INOUT children int DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    id uuid;
    placed int;
BEGIN
    children := 0;
    FOREACH id IN ARRAY exchange._due_twaps() LOOP
        SELECT pg_catalog.count(*) INTO placed FROM exchange._run_twap(id);
        children := children OPERATOR(pg_catalog.+) placed;
        COMMIT;
    END LOOP;
END $$;
REVOKE ALL ON PROCEDURE exchange.run_twaps_each(int) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE exchange.run_twaps_each(int) TO exchange_trader;
