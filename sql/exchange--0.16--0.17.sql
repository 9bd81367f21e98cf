-- exchange 0.16 -> 0.17: retention. The history only grew: every order
-- leaves a row in orders, its journal entries and its trades (~1.1 kB), and
-- since 0.10 removing any of it took the owner disabling a trigger.
-- prune(through) removes the history of the settled trade dates up to
-- `through`, instrument by instrument, and keeps what the exchange still
-- needs:
--   - the journal's entries of those dates, but for each instrument its
--     newest entry (a book takes its sequence from it when it loads) and its
--     newest entry with a trade (the last price, which stop orders trigger
--     on); the closing book settle() stored at the last of them stays, so
--     the book at any later entry is still that snapshot and the entries
--     after it (orderbook_at, a standby's orderbook);
--   - every order that an entry after the pruned ones names (as its order, a
--     maker of its trades or an order its self-trade prevention cancelled)
--     and every order still resting or pending: only finished orders that no
--     kept entry names go;
--   - a trade goes with the last of its two orders, so an order that stays
--     keeps all its trades (filled_quantity = the sum of its trades, as
--     reconcile() checks);
--   - settlement_days and settlements (the dates' totals and positions), and
--     the record of the run in exchange.prunes;
--   - of the stored books before the last pruned entry only the settled
--     dates' closing books (one a date).
-- A pruned date no longer reconciles (55000 pruned), the book before the
-- last pruned entry is gone (orderbook_at: 55000 pruned), and an order's
-- idempotency key is remembered as long as its row.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.17'" to load this file. \quit

-- One row per instrument and call of prune() that removed some of its
-- history: its journal's entries up to through_seq are gone (but the two it
-- keeps), and what the call removed (entries, trades, orders, and stored
-- books before through_seq but the settled dates' closing books).
CREATE TABLE exchange.prunes (
    through date NOT NULL,
    instrument_id int NOT NULL REFERENCES exchange.instruments,
    instrument text NOT NULL,
    through_seq bigint NOT NULL,
    entries bigint NOT NULL,
    trades bigint NOT NULL,
    orders bigint NOT NULL,
    snapshots bigint NOT NULL,
    pruned_at timestamptz NOT NULL DEFAULT now(),
    pruned_by text NOT NULL DEFAULT session_user,
    PRIMARY KEY (instrument_id, through)
);
GRANT SELECT ON exchange.prunes TO exchange_auditor;
SELECT pg_catalog.pg_extension_config_dump('exchange.prunes', '');

-- The history stays as committed (0.10), for the owner too, except what
-- prune() removes: a DELETE of the journal, the trades or the orders is let
-- through only when prune() runs it (PostgreSQL's call stack says so). The
-- triggers that refuse a DELETE (and the journal's and trades' UPDATE) now
-- fire once per statement, not once per row: the call stack is read once
-- for all the rows prune() deletes (per row it cost ~15 us, most of what a
-- prune took), and a statement that would change no row is refused too.
CREATE OR REPLACE FUNCTION exchange._history_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    stack text;
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'STATEMENT' AND TG_TABLE_NAME IN ('events', 'trades', 'orders') THEN
        GET DIAGNOSTICS stack = PG_CONTEXT;
        IF stack ~ '\mPL/pgSQL function (exchange\.)?prune\(date\) line \d+ at SQL statement' THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_TABLE_NAME = 'clients' THEN
        RAISE EXCEPTION 'clients_append_only: % of exchange.clients refused: a client''s number never changes',
            TG_OP USING ERRCODE = '55000';
    END IF;
    IF TG_TABLE_NAME = 'orders' THEN
        RAISE EXCEPTION 'orders_kept: % of exchange.orders refused: an order''s row is never removed (cancel the order instead; exchange.prune removes settled history)',
            TG_OP USING ERRCODE = '55000';
    END IF;
    RAISE EXCEPTION '%_append_only: % of exchange.% refused: what was committed there never changes',
        TG_TABLE_NAME, TG_OP, TG_TABLE_NAME USING ERRCODE = '55000';
END $$;

DROP TRIGGER events_append_only ON exchange.events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON exchange.events
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.events ENABLE ALWAYS TRIGGER events_append_only;
DROP TRIGGER trades_append_only ON exchange.trades;
CREATE TRIGGER trades_append_only BEFORE UPDATE OR DELETE ON exchange.trades
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.trades ENABLE ALWAYS TRIGGER trades_append_only;
DROP TRIGGER orders_kept ON exchange.orders;
CREATE TRIGGER orders_kept BEFORE DELETE ON exchange.orders
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.orders ENABLE ALWAYS TRIGGER orders_kept;

CREATE TRIGGER prunes_append_only BEFORE UPDATE OR DELETE ON exchange.prunes
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER prunes_no_truncate BEFORE TRUNCATE ON exchange.prunes
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.prunes ENABLE ALWAYS TRIGGER prunes_append_only;
ALTER TABLE exchange.prunes ENABLE ALWAYS TRIGGER prunes_no_truncate;

-- The last journal entry of an instrument that prune() removed (0: none).
CREATE FUNCTION exchange._pruned_seq(instrument_id int) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(p.through_seq), 0) FROM exchange.prunes p WHERE p.instrument_id = _pruned_seq.instrument_id
$$;
REVOKE ALL ON FUNCTION exchange._pruned_seq(int) FROM PUBLIC;

-- The trade date pruned through (NULL: none).
CREATE FUNCTION exchange._pruned_through() RETURNS date
LANGUAGE sql STABLE AS $$ SELECT max(through) FROM exchange.prunes $$;
REVOKE ALL ON FUNCTION exchange._pruned_through() FROM PUBLIC;

-- Removes the history of every settled trade date up to `through` (see the
-- top of this file for what stays) and returns one row per instrument whose
-- history it removed. Refused: NULL (22023 missing_field), +-infinity (22023
-- invalid_date), a date not settled (55000 not_settled), an instrument whose
-- closing book at the last pruned entry is missing and cannot be made again
-- (55000 snapshot_missing). Pruning a date again does nothing. It runs
-- beside trading without locking any instrument (it removes only what no
-- transaction changes any more: finished orders, settled entries), and one
-- at a time with settle(). It reads the pruned instruments' journals (the
-- entries it removes and those after them), not all orders.
CREATE FUNCTION exchange.prune(through date) RETURNS SETOF exchange.prunes
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
        -- The finished orders whose last mention is a pruned entry. Every
        -- change of an order is an entry that names it (as its order, a
        -- maker of its trades, or an order its self-trade prevention
        -- cancelled), so these are the finished orders no later entry names,
        -- found from the journal instead of a scan of all orders. One
        -- statement, one snapshot: an order finished by an entry it does not
        -- see is not finished for it.
        WITH entries AS (
            SELECT e.seq, e.order_id, e.payload FROM exchange.events e WHERE e.instrument_id = inst.instrument_id
        ), named AS (
            SELECT e.seq, e.order_id FROM entries e
            UNION ALL
            SELECT e.seq, (x->>'maker_order_id')::uuid FROM entries e
             CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'trades', '[]')) AS x
            UNION ALL
            SELECT e.seq, o.order_id FROM entries e
             CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(e.payload->'stp_cancelled', '[]')) AS n
              JOIN exchange.orders o ON o.order_no = n::bigint
        ), last_named AS (
            SELECT n.order_id FROM named n GROUP BY n.order_id HAVING max(n.seq) <= upto
        ), removed AS (
            DELETE FROM exchange.orders o USING last_named l
             WHERE o.order_id = l.order_id AND o.status IN ('filled', 'cancelled', 'rejected')
            RETURNING o.order_id
        )
        SELECT array_agg(r.order_id) INTO gone FROM removed r;
        -- A trade goes with the last of its two orders: those of the orders
        -- just removed, found by the trades' indexes on each side.
        DELETE FROM exchange.trades t USING unnest(gone) AS g(id)
         WHERE t.buy_order_id = g.id
           AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.sell_order_id);
        GET DIAGNOSTICS n_trades = ROW_COUNT;
        DELETE FROM exchange.trades t USING unnest(gone) AS g(id)
         WHERE t.sell_order_id = g.id
           AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.buy_order_id);
        GET DIAGNOSTICS n_sold = ROW_COUNT;
        n_trades := n_trades + n_sold;
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
        VALUES (through, inst.instrument_id, inst.symbol, upto, n_entries, n_trades, coalesce(array_length(gone, 1), 0),
                n_snapshots)
        RETURNING * INTO p;
        RETURN NEXT p;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION exchange.prune(date) FROM PUBLIC;

-- reconcile() checks a date against its journal, trades and orders, which a
-- pruned date has lost: as in 0.16, but a pruned date is refused (55000
-- pruned), and without a date every settled date after the pruned ones is
-- checked.
CREATE OR REPLACE FUNCTION exchange.reconcile(trade_date date DEFAULT NULL, instrument text DEFAULT NULL)
RETURNS SETOF exchange.reconcile_problem
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst_id int;
    d exchange.settlement_days;
    pruned date := exchange._pruned_through();
BEGIN
    IF instrument IS NOT NULL THEN
        inst_id := (exchange._instrument(instrument)).instrument_id;
    END IF;
    IF trade_date IS NOT NULL THEN
        PERFORM exchange._require_settled(trade_date);
        IF trade_date <= pruned THEN
            PERFORM exchange._fail('pruned', format('trade date %s has been pruned (pruned through %s)',
                                                    to_char(trade_date, 'YYYY-MM-DD'), to_char(pruned, 'YYYY-MM-DD')),
                                   '55000');
        END IF;
    END IF;
    -- The ranges: each date's starts right after the one before it, the first at 1.
    RETURN QUERY
    SELECT s.trade_date, s.instrument, 'journal_range',
           format('entries %s to %s follow %s', s.from_seq, s.to_seq,
                  coalesce('entry ' || s.prev_to || ' (the date before)', 'no earlier date'))
      FROM (SELECT x.*, lag(x.to_seq) OVER (PARTITION BY x.instrument_id ORDER BY x.trade_date) AS prev_to
              FROM exchange.settlement_days x) s
     WHERE coalesce(s.prev_to, 0) + 1 <> s.from_seq
       AND (reconcile.trade_date IS NULL OR s.trade_date = reconcile.trade_date)
       AND (inst_id IS NULL OR s.instrument_id = inst_id) AND (pruned IS NULL OR s.trade_date > pruned);
    FOR d IN
        SELECT * FROM exchange.settlement_days x
         WHERE (reconcile.trade_date IS NULL OR x.trade_date = reconcile.trade_date)
           AND (inst_id IS NULL OR x.instrument_id = inst_id) AND (pruned IS NULL OR x.trade_date > pruned)
         ORDER BY x.instrument_id, x.trade_date
    LOOP
        RETURN QUERY
        SELECT d.trade_date, d.instrument, 'journal_range',
               format('%s of the entries %s to %s are in the journal', count(*), d.from_seq, d.to_seq)
          FROM exchange.events e
         WHERE e.instrument_id = d.instrument_id AND e.seq BETWEEN d.from_seq AND d.to_seq
        HAVING count(*) <> d.entries;
        -- The journal's trades against the register's: those of the date's
        -- range found by their time (as settle() found them), and any
        -- other row a journal trade's id names.
        RETURN QUERY
        WITH journal AS (
            SELECT e.seq, e.created_at, (j->>'trade_id')::uuid AS trade_id, (j->>'price')::numeric AS price,
                   (j->>'quantity')::numeric AS quantity
              FROM exchange.events e
             CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'trades', '[]')) AS j
             WHERE e.instrument_id = d.instrument_id AND e.seq BETWEEN d.from_seq AND d.to_seq
        ), day AS (
            SELECT * FROM exchange._day_trades(d)
        )
        SELECT d.trade_date, d.instrument, 'journal_trade',
               CASE
                 WHEN j.trade_id IS NULL THEN
                   format('trade %s of entry %s is in the register but not in the journal', t.trade_id, t.seq)
                 WHEN t.trade_id IS NULL AND r.trade_id IS NULL THEN
                   format('trade %s of entry %s is not in the register', j.trade_id, j.seq)
                 ELSE
                   format('trade %s differs: the journal''s entry %s at %s price %s quantity %s, the register''s entry %s at %s price %s quantity %s',
                          j.trade_id, j.seq, j.created_at, j.price, j.quantity, coalesce(t.seq, r.seq),
                          coalesce(t.executed_at, r.executed_at), coalesce(t.price, r.price),
                          coalesce(t.quantity, r.quantity))
               END
          FROM journal j
          FULL JOIN day t ON t.trade_id = j.trade_id
          LEFT JOIN exchange.trades r ON t.trade_id IS NULL AND r.trade_id = j.trade_id
         WHERE j.trade_id IS NULL OR t.trade_id IS NULL
            OR (t.seq, t.price, t.quantity) IS DISTINCT FROM (j.seq, j.price, j.quantity);
        -- The stored totals and positions against the trades.
        RETURN QUERY
        SELECT d.trade_date, d.instrument, 'day_totals',
               format('stored %s trades, volume %s, notional %s; the trades make %s, %s, %s',
                      d.trade_count, d.volume, d.notional, x.n, x.volume, x.notional)
          FROM (SELECT count(*) AS n, coalesce(sum(t.quantity), 0) AS volume,
                       coalesce(sum(t.quantity * t.price), 0) AS notional
                  FROM exchange._day_trades(d) t) x
         WHERE (x.n, x.volume, x.notional) IS DISTINCT FROM (d.trade_count, d.volume, d.notional);
        RETURN QUERY
        SELECT d.trade_date, d.instrument, 'positions',
               CASE
                 WHEN s.client_id IS NULL THEN format('client %s traded but has no stored position', p.client_id)
                 WHEN p.client_id IS NULL THEN format('client %s has a stored position but no trades', s.client_id)
                 ELSE format('client %s differs: stored bought %s for %s, sold %s for %s, maker %s, taker %s, %s trades; the trades make %s for %s, %s for %s, %s, %s, %s',
                             s.client_id, s.bought_quantity, s.bought_notional, s.sold_quantity, s.sold_notional,
                             s.maker_quantity, s.taker_quantity, s.trade_count, p.bought_quantity,
                             p.bought_notional, p.sold_quantity, p.sold_notional, p.maker_quantity,
                             p.taker_quantity, p.trade_count)
               END
          FROM exchange._day_positions(d) p
          FULL JOIN (SELECT * FROM exchange.settlements x
                      WHERE x.trade_date = d.trade_date AND x.instrument_id = d.instrument_id) s
            ON s.client_id = p.client_id
         WHERE s.client_id IS NULL OR p.client_id IS NULL
            OR (s.bought_quantity, s.bought_notional, s.sold_quantity, s.sold_notional, s.maker_quantity,
                s.taker_quantity, s.trade_count)
               IS DISTINCT FROM (p.bought_quantity, p.bought_notional, p.sold_quantity, p.sold_notional,
                                 p.maker_quantity, p.taker_quantity, p.trade_count);
        RETURN QUERY
        SELECT d.trade_date, d.instrument, 'balance',
               format('positions net to %s quantity and %s notional; bought %s for %s and sold %s for %s, the date''s volume %s and notional %s',
                      x.net_q, x.net_n, x.bought, x.bought_n, x.sold, x.sold_n, d.volume, d.notional)
          FROM (SELECT coalesce(sum(s.net_quantity), 0) AS net_q, coalesce(sum(s.net_notional), 0) AS net_n,
                       coalesce(sum(s.bought_quantity), 0) AS bought, coalesce(sum(s.sold_quantity), 0) AS sold,
                       coalesce(sum(s.bought_notional), 0) AS bought_n, coalesce(sum(s.sold_notional), 0) AS sold_n,
                       coalesce(bool_and(s.net_quantity = s.bought_quantity - s.sold_quantity
                                         AND s.net_notional = s.sold_notional - s.bought_notional), true) AS nets
                  FROM exchange.settlements s
                 WHERE s.trade_date = d.trade_date AND s.instrument_id = d.instrument_id) x
         WHERE x.net_q <> 0 OR x.net_n <> 0 OR x.bought <> d.volume OR x.sold <> d.volume
            OR x.bought_n <> d.notional OR x.sold_n <> d.notional OR NOT x.nets;
        -- The orders that traded on the date: there, of the trade's side and
        -- instrument, and filled as much as all their trades.
        RETURN QUERY
        SELECT d.trade_date, d.instrument, 'order_fills',
               CASE
                 WHEN o.order_id IS NULL THEN
                   format('order %s (%s of trade %s) is not in the orders', x.order_id, x.side, x.trade_id)
                 WHEN o.side <> x.side OR o.instrument_id <> d.instrument_id OR o.client_id <> x.client_id THEN
                   format('order %s is a %s order of %s on %s, but the %s of trade %s by %s', o.order_id, o.side,
                          o.client_id, o.instrument, x.side, x.trade_id, x.client_id)
                 ELSE
                   format('order %s has filled_quantity %s, its trades %s', o.order_id, o.filled_quantity,
                          (SELECT coalesce(sum(t.quantity), 0) FROM exchange.trades t WHERE t.buy_order_id = o.order_id)
                        + (SELECT coalesce(sum(t.quantity), 0) FROM exchange.trades t WHERE t.sell_order_id = o.order_id))
               END
          FROM (SELECT DISTINCT ON (s.order_id) s.*
                  FROM exchange._day_trades(d) t
                 CROSS JOIN LATERAL (VALUES (t.buy_order_id, 'buy', t.buy_client_id, t.trade_id),
                                            (t.sell_order_id, 'sell', t.sell_client_id, t.trade_id))
                             AS s(order_id, side, client_id, trade_id)
                 ORDER BY s.order_id, s.trade_id) x
          LEFT JOIN exchange.orders o ON o.order_id = x.order_id
         WHERE o.order_id IS NULL
            OR o.side <> x.side OR o.instrument_id <> d.instrument_id OR o.client_id <> x.client_id
            OR o.filled_quantity
               <> (SELECT coalesce(sum(t.quantity), 0) FROM exchange.trades t WHERE t.buy_order_id = o.order_id)
                + (SELECT coalesce(sum(t.quantity), 0) FROM exchange.trades t WHERE t.sell_order_id = o.order_id)
         ORDER BY x.order_id;
    END LOOP;
END $$;

-- The book right after any journal entry: 0.11 replayed every entry from
-- the first on each call (~2.6 us an entry); now the newest snapshot at or
-- before it and the entries after that, as a standby's orderbook() (0.16).
-- A sequence before the last pruned entry is refused (55000 pruned).
CREATE OR REPLACE FUNCTION exchange.orderbook_at(instrument text, seq bigint DEFAULT NULL, depth int DEFAULT 20)
RETURNS TABLE (side text, price numeric, quantity numeric, order_count int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
    head bigint;
    upto bigint;
    pruned bigint;
BEGIN
    IF depth IS NULL OR depth < 0 THEN
        PERFORM exchange._fail('invalid_depth', 'depth must be zero or positive');
    END IF;
    head := exchange._journal_head(inst.instrument_id);
    upto := coalesce(orderbook_at.seq, head);
    IF upto < 0 OR upto > head THEN
        PERFORM exchange._fail('invalid_seq', format('seq %s is not in 0..%s, the journal of %s', upto, head,
                                                     inst.symbol));
    END IF;
    pruned := exchange._pruned_seq(inst.instrument_id);
    -- From the last pruned entry on, the book is its snapshot (prune keeps
    -- it) and the entries after it.
    IF pruned > 0 AND (upto < pruned OR NOT EXISTS (
           SELECT 1 FROM exchange.orderbook_snapshots s
            WHERE s.instrument = inst.symbol AND s.seq BETWEEN pruned AND upto)) THEN
        PERFORM exchange._fail('pruned', format('the journal of %s up to entry %s has been pruned: the book is known from there on',
                                                inst.symbol, pruned), '55000');
    END IF;
    RETURN QUERY SELECT * FROM exchange._journal_book(inst, upto, depth);
END $$;
