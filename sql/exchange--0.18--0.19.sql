-- exchange 0.18 -> 0.19: each TWAP's slice in its own transaction, and a
-- prune() that reads only the entries it removes (at the end of this file).
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

-- prune(): the finished orders from the pruned entries alone. 0.17 found
-- them by reading each pruned instrument's whole remaining journal (the
-- entries it removes and every entry after them), so a prune cost what the
-- kept history holds: with a retention of N days, N days of entries for
-- each day pruned. Now it reads the entries it removes, 50,000 at a time,
-- and looks up the orders they finished and the later trades of the makers
-- they filled by their indexes. The same orders go (an order filled,
-- cancelled or rejected is named by no later entry: see below), and
-- everything else is 0.17's.
CREATE OR REPLACE FUNCTION exchange.prune(through date) RETURNS SETOF exchange.prunes
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp
-- What it reads and deletes is a small part of each table, found through
-- its indexes; costed as if it came from disk (random_page_cost 4), some
-- plans read whole tables instead: a date of 20,000 orders among 1,020,000
-- took 0.88-0.93 s, 0.49-0.59 s with this setting.
SET random_page_cost = 1.1 AS $$
DECLARE
    ids int[];
    bounds bigint[];
    inst exchange.instruments;
    upto bigint;
    gone uuid[];
    done uuid[];
    stp_nos bigint[];
    makers uuid[];
    lo bigint;
    hi bigint;
    n_orders bigint;
    n_trades bigint;
    n_sold bigint;
    head bigint;
    last_trade bigint;
    n_entries bigint;
    n_snapshots bigint;
    p exchange.prunes;
BEGIN
    IF NOT isfinite(through) THEN
        PERFORM exchange._fail('invalid_date', format('trade date %s is not a day', through));
    END IF;
    LOCK TABLE exchange.settlement_runs IN EXCLUSIVE MODE;
    PERFORM exchange._require_settled(through);  -- missing_field, not_settled
    -- Each instrument's last settled entry up to `through`, where it moves.
    SELECT array_agg(s.instrument_id ORDER BY s.instrument_id), array_agg(s.upto ORDER BY s.instrument_id)
      INTO ids, bounds
      FROM (SELECT d.instrument_id, max(d.to_seq) AS upto FROM exchange.settlement_days d
             WHERE d.trade_date <= through GROUP BY d.instrument_id) s
     WHERE s.upto > exchange._pruned_seq(s.instrument_id);
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        SELECT * INTO inst FROM exchange.instruments x WHERE x.instrument_id = ids[i];
        upto := bounds[i];
        -- The book after the last pruned entry is where the journal now
        -- starts: settle() stored it; made again if it was removed since,
        -- from the newest snapshot before it, which must be after anything
        -- pruned earlier.
        IF NOT EXISTS (SELECT 1 FROM exchange.orderbook_snapshots s
                        WHERE s.instrument = inst.symbol AND s.seq = upto) THEN
            IF coalesce((SELECT max(s.seq) FROM exchange.orderbook_snapshots s
                          WHERE s.instrument = inst.symbol AND s.seq <= upto), 0)
               < exchange._pruned_seq(inst.instrument_id) THEN
                PERFORM exchange._fail('snapshot_missing', format(
                    'the book of %s after entry %s cannot be made again: its snapshots were removed', inst.symbol,
                    upto), '55000');
            END IF;
            PERFORM exchange._store_snapshot(inst, upto, upto);
        END IF;
        -- The finished orders whose last mention is a pruned entry. An order
        -- that is filled, cancelled or rejected is named by no later entry
        -- (nothing trades, amends or cancels it any more), so the entry that
        -- finished it is its last: these are the orders a pruned entry
        -- finished. That entry is its own, leaving it filled, cancelled or
        -- rejected; or another order's whose self-trade prevention cancelled
        -- it; or another order's that filled it as a maker, by its last trade.
        -- Read from the pruned entries only (0.17 read every later entry too,
        -- to find the orders they name: a cost that grew with the history
        -- kept), 50,000 entries at a time (a day's orders at a high rate would
        -- not fit in memory at once), each window's ids gathered into arrays
        -- first, so that the orders and the makers' trades are then looked up
        -- by their indexes. Entries before the last prune are gone but two,
        -- whose finished orders went with them.
        n_orders := 0;
        n_trades := 0;
        lo := exchange._pruned_seq(inst.instrument_id);
        WHILE lo < upto LOOP
            hi := least(lo + 50000, upto);
            done := ARRAY(SELECT e.order_id FROM exchange.events e
                           WHERE e.instrument_id = inst.instrument_id AND e.seq > lo AND e.seq <= hi
                             AND e.payload->>'status' IN ('filled', 'cancelled', 'rejected'));
            stp_nos := ARRAY(SELECT n::bigint FROM exchange.events e
                              CROSS JOIN LATERAL jsonb_array_elements_text(e.payload->'stp_cancelled') AS n
                              WHERE e.instrument_id = inst.instrument_id AND e.seq > lo AND e.seq <= hi
                                AND jsonb_typeof(e.payload->'stp_cancelled') = 'array');
            makers := ARRAY(SELECT DISTINCT (x->>'maker_order_id')::uuid FROM exchange.events e
                             CROSS JOIN LATERAL jsonb_array_elements(e.payload->'trades') AS x
                             WHERE e.instrument_id = inst.instrument_id AND e.seq > lo AND e.seq <= hi
                               AND jsonb_typeof(e.payload->'trades') = 'array');
            -- Entries up to `upto` are settled, so committed before this call:
            -- every snapshot sees them. Whether a maker's last trade is among
            -- them is decided in the DELETE's own snapshot, with its status: a
            -- maker filled further after `upto` has a later trade and stays.
            WITH removed AS (
                DELETE FROM exchange.orders o
                 WHERE o.status IN ('filled', 'cancelled', 'rejected')
                   AND (o.order_id = ANY (done) OR o.order_no = ANY (stp_nos)
                        OR (o.order_id = ANY (makers) AND o.status = 'filled'
                            AND NOT EXISTS (SELECT 1 FROM exchange.trades t
                                             WHERE t.buy_order_id = o.order_id AND t.seq > upto)
                            AND NOT EXISTS (SELECT 1 FROM exchange.trades t
                                             WHERE t.sell_order_id = o.order_id AND t.seq > upto)))
                RETURNING o.order_id
            )
            SELECT array_agg(r.order_id) INTO gone FROM removed r;
            n_orders := n_orders + coalesce(array_length(gone, 1), 0);
            -- A trade goes with the last of its two orders: those of the
            -- orders just removed, found by the trades' indexes on each side
            -- (a trade whose other order goes in a later window goes then).
            DELETE FROM exchange.trades t USING unnest(gone) AS g(id)
             WHERE t.buy_order_id = g.id
               AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.sell_order_id);
            GET DIAGNOSTICS n_sold = ROW_COUNT;
            n_trades := n_trades + n_sold;
            DELETE FROM exchange.trades t USING unnest(gone) AS g(id)
             WHERE t.sell_order_id = g.id
               AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.buy_order_id);
            GET DIAGNOSTICS n_sold = ROW_COUNT;
            n_trades := n_trades + n_sold;
            lo := hi;
        END LOOP;
        -- The journal, but the two entries it keeps.
        head := exchange._journal_head(inst.instrument_id);
        last_trade := coalesce((SELECT e.seq FROM exchange.events e
                                 WHERE e.instrument_id = inst.instrument_id AND e.payload->'trades'->-1 IS NOT NULL
                                 ORDER BY e.seq DESC LIMIT 1), 0);
        DELETE FROM exchange.events e
         WHERE e.instrument_id = inst.instrument_id AND e.seq <= upto AND e.seq <> head AND e.seq <> last_trade;
        GET DIAGNOSTICS n_entries = ROW_COUNT;
        -- The books stored before the last pruned entry (snapshot(), say every
        -- few minutes from cron) no longer start anything: orderbook_at()
        -- refuses a sequence before it and a standby starts from the newest.
        -- The settled dates' closing books stay, one a date, for audit.
        DELETE FROM exchange.orderbook_snapshots s
         WHERE s.instrument = inst.symbol AND s.seq < upto
           AND NOT EXISTS (SELECT 1 FROM exchange.settlement_days d
                            WHERE d.instrument_id = inst.instrument_id AND d.to_seq = s.seq);
        GET DIAGNOSTICS n_snapshots = ROW_COUNT;
        INSERT INTO exchange.prunes (through, instrument_id, instrument, through_seq, entries, trades, orders,
                                     snapshots)
        VALUES (through, inst.instrument_id, inst.symbol, upto, n_entries, n_trades, n_orders,
                n_snapshots)
        RETURNING * INTO p;
        RETURN NEXT p;
    END LOOP;
END $$;
-- (its privileges are 0.17's: owner only)
