-- exchange 0.15 -> 0.16: daily settlement and reconciliation (the design's
-- "settlement service (daily reconciliation)").
--
-- A trade date is a UTC day. settle(through) closes every trade date up to
-- `through` that is not closed yet: for each instrument it assigns the
-- journal entries not yet settled to trade dates, and stores each date's
-- range of sequences and totals (settlement_days) and each client's
-- bought and sold quantity and notional on it (settlements), from the
-- trades of those entries. What is stored never changes (append-only, like
-- the journal), and reconcile() checks it against the journal, the trades
-- and the orders.
--
-- Trade dates are ranges of the journal, not of clocks. An entry's time is
-- its transaction's start (now()), and the journal's order is the order in
-- which writers held the instrument's lock, so a transaction that started
-- before midnight can append after one that started after it. An entry's
-- trade date is therefore the latest UTC date among its own and every
-- earlier entry's times (the dates never go back along the journal), and at
-- least the day after the last date already settled. What a settlement
-- reads is a prefix of each journal (a writer becomes visible before it
-- lets the next writer of its instrument in), so an entry that commits after
-- its date was settled belongs to the next date: nothing is settled twice or
-- left out, and no instrument is locked.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.16'" to load this file. \quit

-- One row per call of settle() that closed dates: every trade date up to
-- `through` is settled, for every instrument.
CREATE TABLE exchange.settlement_runs (
    through date PRIMARY KEY,
    settled_at timestamptz NOT NULL DEFAULT now(),
    settled_by text NOT NULL DEFAULT session_user
);

-- One row per instrument and trade date that has journal entries: the
-- date's range of the journal (contiguous from seq 1, date after date) and
-- its totals. trade_count counts trades, volume sums their quantity and
-- notional their price times quantity.
CREATE TABLE exchange.settlement_days (
    trade_date date NOT NULL,
    instrument_id int NOT NULL REFERENCES exchange.instruments,
    instrument text NOT NULL,
    from_seq bigint NOT NULL,
    to_seq bigint NOT NULL,
    entries bigint NOT NULL,
    trade_count bigint NOT NULL,
    volume numeric NOT NULL,
    notional numeric NOT NULL,
    first_at timestamptz NOT NULL,  -- the earliest and latest time of its entries
    last_at timestamptz NOT NULL,
    settled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instrument_id, trade_date),
    UNIQUE (instrument_id, from_seq),
    CHECK (from_seq >= 1 AND to_seq >= from_seq AND entries = to_seq - from_seq + 1)
);

-- One row per client, instrument and trade date on which the client traded.
-- net_quantity = bought - sold (the base the client receives), net_notional
-- = sold_notional - bought_notional (the quote it receives). A self-trade
-- (stp 'none') counts on both sides and once in trade_count.
CREATE TABLE exchange.settlements (
    trade_date date NOT NULL,
    instrument_id int NOT NULL,
    instrument text NOT NULL,
    client_id text NOT NULL,
    bought_quantity numeric NOT NULL,
    bought_notional numeric NOT NULL,
    sold_quantity numeric NOT NULL,
    sold_notional numeric NOT NULL,
    net_quantity numeric NOT NULL,
    net_notional numeric NOT NULL,
    maker_quantity numeric NOT NULL,
    taker_quantity numeric NOT NULL,
    trade_count bigint NOT NULL,
    PRIMARY KEY (trade_date, client_id, instrument_id),
    FOREIGN KEY (instrument_id, trade_date) REFERENCES exchange.settlement_days
);

-- What was settled stays, for the owner too (as the journal since 0.10).
CREATE FUNCTION exchange._settlement_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = exchange, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'settlement_kept: % of exchange.% refused: a settled trade date never changes',
        TG_OP, TG_TABLE_NAME USING ERRCODE = '55000';
END $$;
REVOKE ALL ON FUNCTION exchange._settlement_kept() FROM PUBLIC;
CREATE TRIGGER settlement_runs_kept BEFORE UPDATE OR DELETE ON exchange.settlement_runs
    FOR EACH ROW EXECUTE FUNCTION exchange._settlement_kept();
CREATE TRIGGER settlement_runs_no_truncate BEFORE TRUNCATE ON exchange.settlement_runs
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._settlement_kept();
CREATE TRIGGER settlement_days_kept BEFORE UPDATE OR DELETE ON exchange.settlement_days
    FOR EACH ROW EXECUTE FUNCTION exchange._settlement_kept();
CREATE TRIGGER settlement_days_no_truncate BEFORE TRUNCATE ON exchange.settlement_days
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._settlement_kept();
CREATE TRIGGER settlements_kept BEFORE UPDATE OR DELETE ON exchange.settlements
    FOR EACH ROW EXECUTE FUNCTION exchange._settlement_kept();
CREATE TRIGGER settlements_no_truncate BEFORE TRUNCATE ON exchange.settlements
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._settlement_kept();
ALTER TABLE exchange.settlement_runs ENABLE ALWAYS TRIGGER settlement_runs_kept;
ALTER TABLE exchange.settlement_runs ENABLE ALWAYS TRIGGER settlement_runs_no_truncate;
ALTER TABLE exchange.settlement_days ENABLE ALWAYS TRIGGER settlement_days_kept;
ALTER TABLE exchange.settlement_days ENABLE ALWAYS TRIGGER settlement_days_no_truncate;
ALTER TABLE exchange.settlements ENABLE ALWAYS TRIGGER settlements_kept;
ALTER TABLE exchange.settlements ENABLE ALWAYS TRIGGER settlements_no_truncate;
GRANT SELECT ON exchange.settlement_runs, exchange.settlement_days, exchange.settlements TO exchange_auditor;
-- Their rows are the database's, not the extension's: pg_dump dumps them.
SELECT pg_catalog.pg_extension_config_dump('exchange.settlement_runs', '');
SELECT pg_catalog.pg_extension_config_dump('exchange.settlement_days', '');
SELECT pg_catalog.pg_extension_config_dump('exchange.settlements', '');

-- The UTC date settled through (NULL: none yet).
CREATE FUNCTION exchange._settled_through() RETURNS date
LANGUAGE sql STABLE AS $$ SELECT max(through) FROM exchange.settlement_runs $$;
REVOKE ALL ON FUNCTION exchange._settled_through() FROM PUBLIC;

-- The trades of one trade date's range of an instrument's journal, from the
-- trade register. A trade is stamped with its journal entry's time (both
-- now() of the same transaction), so the date's trades are found through
-- trades_instrument_time between its first and last entry's time, and
-- kept by their sequence. reconcile() checks the stamps against the journal.
CREATE FUNCTION exchange._day_trades(d exchange.settlement_days) RETURNS SETOF exchange.trades
LANGUAGE sql STABLE AS $$
    SELECT t.* FROM exchange.trades t
     WHERE t.instrument = d.instrument AND t.executed_at BETWEEN d.first_at AND d.last_at
       AND t.seq BETWEEN d.from_seq AND d.to_seq AND t.instrument_id = d.instrument_id
$$;
REVOKE ALL ON FUNCTION exchange._day_trades(exchange.settlement_days) FROM PUBLIC;

-- Each client's side of a trade date's trades: one row per client, as stored
-- in settlements.
CREATE FUNCTION exchange._day_positions(d exchange.settlement_days)
RETURNS TABLE (client_id text, bought_quantity numeric, bought_notional numeric, sold_quantity numeric,
               sold_notional numeric, maker_quantity numeric, taker_quantity numeric, trade_count bigint)
LANGUAGE sql STABLE AS $$
    SELECT s.client_id,
           coalesce(sum(s.quantity) FILTER (WHERE s.side = 'buy'), 0),
           coalesce(sum(s.quantity * s.price) FILTER (WHERE s.side = 'buy'), 0),
           coalesce(sum(s.quantity) FILTER (WHERE s.side = 'sell'), 0),
           coalesce(sum(s.quantity * s.price) FILTER (WHERE s.side = 'sell'), 0),
           coalesce(sum(s.quantity) FILTER (WHERE s.side = s.maker_side), 0),
           coalesce(sum(s.quantity) FILTER (WHERE s.side <> s.maker_side), 0),
           count(DISTINCT s.trade_id)
      FROM exchange._day_trades(d) t
     CROSS JOIN LATERAL (VALUES (t.buy_client_id, 'buy', t.trade_id, t.price, t.quantity, t.maker_side),
                                (t.sell_client_id, 'sell', t.trade_id, t.price, t.quantity, t.maker_side))
                 AS s(client_id, side, trade_id, price, quantity, maker_side)
     GROUP BY s.client_id
$$;
REVOKE ALL ON FUNCTION exchange._day_positions(exchange.settlement_days) FROM PUBLIC;

-- Settle every trade date up to `through` (default: yesterday, UTC) that is
-- not settled yet, for every instrument; returns the dates it settled, one
-- row per instrument and date with journal entries, and stores each one's
-- closing book in orderbook_snapshots (seq = its to_seq). A date that has not
-- ended is refused (22023 settle_too_early), and so is +-infinity (22023
-- invalid_date); a journal with entries missing (55000 journal_gap)
-- settles nothing; settling a date again does nothing. One settlement runs
-- at a time (the others wait); trading goes on.
CREATE FUNCTION exchange.settle(through date DEFAULT NULL) RETURNS SETOF exchange.settlement_days
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    last date;
    inst exchange.instruments;
    after bigint;
    upto bigint;
    d exchange.settlement_days;
BEGIN
    IF through IS NULL THEN
        through := today - 1;
    ELSIF NOT isfinite(through) THEN
        PERFORM exchange._fail('invalid_date', format('trade date %s is not a day', through), '22023');
    ELSIF through >= today THEN
        PERFORM exchange._fail('settle_too_early',
                               format('trade date %s has not ended (today is %s, UTC)', to_char(through, 'YYYY-MM-DD'),
                                      to_char(today, 'YYYY-MM-DD')), '22023');
    END IF;
    LOCK TABLE exchange.settlement_runs IN EXCLUSIVE MODE;
    last := exchange._settled_through();
    IF last >= through THEN
        RETURN;
    END IF;
    FOR inst IN SELECT * FROM exchange.instruments ORDER BY instrument_id LOOP
        after := coalesce((SELECT max(s.to_seq) FROM exchange.settlement_days s
                            WHERE s.instrument_id = inst.instrument_id), 0);
        -- The first entry stamped after `through` ends what can be settled:
        -- it and every entry after it belong to a later date. Found by the
        -- key's order, so the entries after it (today's) are not read.
        upto := (SELECT e.seq - 1 FROM exchange.events e
                  WHERE e.instrument_id = inst.instrument_id AND e.seq > after
                    AND e.created_at >= ((through + 1)::timestamp AT TIME ZONE 'UTC')
                  ORDER BY e.seq LIMIT 1);
        FOR d IN
            WITH unsettled AS (
                SELECT e.seq, e.created_at,
                       greatest(max((e.created_at AT TIME ZONE 'UTC')::date) OVER (ORDER BY e.seq), last + 1) AS day
                  FROM exchange.events e
                 WHERE e.instrument_id = inst.instrument_id AND e.seq > after
                   AND (upto IS NULL OR e.seq <= upto)
            )
            SELECT u.day, inst.instrument_id, inst.symbol, min(u.seq), max(u.seq), count(*), 0, 0, 0,
                   min(u.created_at), max(u.created_at), now()
              FROM unsettled u
             WHERE u.day <= through
             GROUP BY u.day
             ORDER BY u.day
        LOOP
            -- The journal is gap-free (what the owner removed behind the
            -- extension's back aside): a settlement covers all of it.
            IF d.from_seq <> after + 1 OR d.entries <> d.to_seq - d.from_seq + 1 THEN
                PERFORM exchange._fail('journal_gap', format(
                    'the journal of %s has %s entries from %s to %s after entry %s: entries are missing',
                    inst.symbol, d.entries, d.from_seq, d.to_seq, after), '55000');
            END IF;
            after := d.to_seq;
            SELECT count(*), coalesce(sum(t.quantity), 0), coalesce(sum(t.quantity * t.price), 0)
              INTO d.trade_count, d.volume, d.notional
              FROM exchange._day_trades(d) t;
            INSERT INTO exchange.settlement_days SELECT d.*;
            INSERT INTO exchange.settlements
            SELECT d.trade_date, d.instrument_id, d.instrument, p.client_id, p.bought_quantity, p.bought_notional,
                   p.sold_quantity, p.sold_notional, p.bought_quantity - p.sold_quantity,
                   p.sold_notional - p.bought_notional, p.maker_quantity, p.taker_quantity, p.trade_count
              FROM exchange._day_positions(d) p;
            -- The date's closing book (right after its last entry), from the
            -- newest snapshot before it and the entries after that (the
            -- previous date's close once there is one): a record for audit,
            -- and where a standby's book starts (orderbook on a standby).
            PERFORM exchange._store_snapshot(inst, d.to_seq, d.to_seq);
            RETURN NEXT d;
        END LOOP;
    END LOOP;
    INSERT INTO exchange.settlement_runs (through) VALUES (through);
END $$;
REVOKE ALL ON FUNCTION exchange.settle(date) FROM PUBLIC;

-- A settled trade date's positions: every client's, or one client's, on
-- every instrument or one, by client and instrument. A date not settled yet
-- is refused (55000 not_settled); a client that did not trade on it has no
-- row.
CREATE FUNCTION exchange.settlement(trade_date date, client_id text DEFAULT NULL, instrument text DEFAULT NULL)
RETURNS SETOF exchange.settlements
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst_id int;
BEGIN
    IF instrument IS NOT NULL THEN
        inst_id := (exchange._instrument(instrument)).instrument_id;
    END IF;
    PERFORM exchange._require_settled(trade_date);
    RETURN QUERY
    SELECT * FROM exchange.settlements s
     WHERE s.trade_date = settlement.trade_date
       AND (settlement.client_id IS NULL OR s.client_id = settlement.client_id)
       AND (inst_id IS NULL OR s.instrument_id = inst_id)
     ORDER BY s.client_id, s.instrument;
END $$;

-- A trade date given and settled, or an error.
CREATE FUNCTION exchange._require_settled(day date) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    through date := exchange._settled_through();
BEGIN
    IF day IS NULL THEN
        PERFORM exchange._fail('missing_field', 'a trade date is required', '22023');
    END IF;
    IF through IS NULL OR day > through THEN
        PERFORM exchange._fail('not_settled', format('trade date %s has not been settled (settled through %s)',
                                                     to_char(day, 'YYYY-MM-DD'),
                                                     coalesce(to_char(through, 'YYYY-MM-DD'), 'none')), '55000');
    END IF;
END $$;
REVOKE ALL ON FUNCTION exchange._require_settled(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION exchange.settlement(date, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.settlement(date, text, text) TO exchange_trader, exchange_auditor;

CREATE TYPE exchange.reconcile_problem AS (trade_date date, instrument text, check_name text, problem text);

-- Every difference between what was settled on a trade date (NULL: every
-- settled date) and the records it came from; empty = reconciled.
--   journal_range  the dates' ranges of an instrument's journal do not follow
--                  each other from seq 1, or entries of a range are missing
--   journal_trade  a trade of a journal entry (its payload's trades) is not in
--                  the trade register as the journal has it (sequence, price,
--                  quantity, its entry's time), or a registered trade of the
--                  range is not in the journal
--   day_totals     a date's stored totals differ from its trades
--   positions      a client's stored position differs from its trades
--   balance        a date's positions do not net to zero or do not add up to
--                  its totals
--   order_fills    an order that traded on the date is not in the orders, is
--                  not of the trade's side, client and instrument, or has a
--                  filled_quantity other than the sum of all its trades
CREATE FUNCTION exchange.reconcile(trade_date date DEFAULT NULL, instrument text DEFAULT NULL)
RETURNS SETOF exchange.reconcile_problem
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst_id int;
    d exchange.settlement_days;
BEGIN
    IF instrument IS NOT NULL THEN
        inst_id := (exchange._instrument(instrument)).instrument_id;
    END IF;
    IF trade_date IS NOT NULL THEN
        PERFORM exchange._require_settled(trade_date);
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
       AND (inst_id IS NULL OR s.instrument_id = inst_id);
    FOR d IN
        SELECT * FROM exchange.settlement_days x
         WHERE (reconcile.trade_date IS NULL OR x.trade_date = reconcile.trade_date)
           AND (inst_id IS NULL OR x.instrument_id = inst_id)
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
REVOKE ALL ON FUNCTION exchange.reconcile(date, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.reconcile(date, text) TO exchange_auditor;

-- ------------------------------------------------ the book on a standby
-- A standby replays the tables, not the books in the primary's memory. Its
-- orderbook() and book_snapshot() answer from what it replays instead: the
-- newest stored snapshot (exchange.snapshot(), at or before the journal's
-- head; none: the empty book at 0) with the journal entries after it, each
-- of which lists the levels it changed with their new quantity and order
-- count (as orderbook_at() reads them, from entry 1). So the cost is the
-- entries since the last snapshot (~2.6 us each): a primary that takes
-- snapshots now and then bounds it. The answer is the book at the newest
-- entry the standby has replayed. verify() and rebuild() stay refused
-- (book_unavailable), and the trading functions (25006).
CREATE INDEX orderbook_snapshots_instrument_seq ON exchange.orderbook_snapshots (instrument, seq);

-- The book right after journal entry `upto` of an instrument, best first, at
-- most `depth` levels a side: the newest snapshot at or before it, then the
-- entries after it.
CREATE FUNCTION exchange._journal_book(inst exchange.instruments, upto bigint, depth int)
RETURNS TABLE (side text, price numeric, quantity numeric, order_count int)
LANGUAGE sql STABLE AS $$
    WITH snap AS (
        SELECT s.seq, s.bids, s.asks FROM exchange.orderbook_snapshots s
         WHERE s.instrument = inst.symbol AND s.seq <= upto
         ORDER BY s.seq DESC, s.id DESC LIMIT 1
    ), changes AS (
        SELECT x.side, (l->>'price')::numeric AS price, (l->>'quantity')::numeric AS quantity,
               (l->>'order_count')::int AS order_count, snap.seq AS at, 0::bigint AS k
          FROM snap CROSS JOIN LATERAL (VALUES ('buy', snap.bids), ('sell', snap.asks)) AS x(side, levels)
               CROSS JOIN LATERAL jsonb_array_elements(x.levels) AS l
        UNION ALL
        SELECT l.change->>'side', (l.change->>'price')::numeric, (l.change->>'quantity')::numeric,
               (l.change->>'order_count')::int, e.seq, l.k
          FROM exchange.events e
               CROSS JOIN LATERAL jsonb_array_elements(e.payload->'levels') WITH ORDINALITY AS l(change, k)
         WHERE e.instrument_id = inst.instrument_id AND e.seq <= upto
           AND e.seq > coalesce((SELECT snap.seq FROM snap), 0)
    ), last AS (
        SELECT DISTINCT ON (c.side, c.price) c.side, c.price, c.quantity, c.order_count
          FROM changes c
         ORDER BY c.side, c.price, c.at DESC, c.k DESC
    ), ranked AS (
        SELECT last.*, row_number() OVER (PARTITION BY last.side
                                          ORDER BY CASE WHEN last.side = 'buy' THEN -last.price ELSE last.price END) AS r
          FROM last
         WHERE last.order_count > 0
    )
    SELECT ranked.side, ranked.price, ranked.quantity, ranked.order_count
      FROM ranked WHERE ranked.r <= depth ORDER BY ranked.side, ranked.r
$$;
REVOKE ALL ON FUNCTION exchange._journal_book(exchange.instruments, bigint, int) FROM PUBLIC;

-- The newest entry of an instrument's journal (0: none).
CREATE FUNCTION exchange._journal_head(instrument_id int) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT e.seq FROM exchange.events e WHERE e.instrument_id = _journal_head.instrument_id
                      ORDER BY e.seq DESC LIMIT 1), 0)
$$;
REVOKE ALL ON FUNCTION exchange._journal_head(int) FROM PUBLIC;

-- journal_heads() (the feed reads it at start and, on a standby, every few
-- milliseconds) finds each head the same way: max(seq) may be planned as a
-- read of every entry when the statistics say an instrument has few (the
-- book load met it, 2026-12-07).
CREATE OR REPLACE FUNCTION exchange.journal_heads() RETURNS TABLE (instrument_id int, symbol text, seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
    SELECT i.instrument_id, i.symbol, exchange._journal_head(i.instrument_id)
      FROM exchange.instruments i ORDER BY i.instrument_id
$$;

-- A book's levels, best first, at most `depth` a side (orderbook()'s rows):
-- with `upto` NULL the book in memory (a primary's), else the book right
-- after entry `upto`, from the journal (a standby's; a settled date's close).
CREATE FUNCTION exchange._book_levels(inst exchange.instruments, depth int, upto bigint)
RETURNS TABLE (side text, price numeric, quantity numeric, order_count int)
LANGUAGE plpgsql AS $$
BEGIN
    IF upto IS NOT NULL THEN
        RETURN QUERY SELECT * FROM exchange._journal_book(inst, upto, depth);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT CASE WHEN l.side = 0 THEN 'buy' ELSE 'sell' END, l.price * inst.tick_size, l.qty * inst.lot_size,
               l.order_count
          FROM exchange._levels(inst.instrument_id, depth) WITH ORDINALITY AS l(side, price, qty, order_count, n)
         ORDER BY l.n;
END $$;
REVOKE ALL ON FUNCTION exchange._book_levels(exchange.instruments, int, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION exchange.orderbook(instrument text, depth int DEFAULT 20)
RETURNS TABLE (side text, price numeric, quantity numeric, order_count int)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
BEGIN
    IF depth IS NULL OR depth < 0 THEN
        PERFORM exchange._fail('invalid_depth', 'depth must be zero or positive');
    END IF;
    RETURN QUERY SELECT * FROM exchange._book_levels(inst, depth, CASE WHEN pg_is_in_recovery()
                                                                       THEN exchange._journal_head(inst.instrument_id) END);
END $$;

CREATE OR REPLACE FUNCTION exchange.book_snapshot(instrument text, depth int DEFAULT 2147483647) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
    v_seq bigint;
BEGIN
    IF depth IS NULL OR depth < 0 THEN
        PERFORM exchange._fail('invalid_depth', 'depth must be zero or positive');
    END IF;
    -- The sequence the levels reflect: on a primary the book's, whose writers
    -- now wait until this transaction ends; on a standby the newest replayed.
    v_seq := CASE WHEN pg_is_in_recovery() THEN exchange._journal_head(inst.instrument_id)
                  ELSE exchange._read_lock(inst.instrument_id) END;
    RETURN (WITH book AS (SELECT * FROM exchange._book_levels(inst, depth,
                                                              CASE WHEN pg_is_in_recovery() THEN v_seq END))
            SELECT jsonb_build_object(
                'instrument', inst.symbol, 'seq', v_seq,
                'bids', coalesce((SELECT jsonb_agg(jsonb_build_object('price', b.price::text, 'quantity', b.quantity::text,
                                                                      'order_count', b.order_count) ORDER BY b.price DESC)
                                    FROM book b WHERE b.side = 'buy'), '[]'::jsonb),
                'asks', coalesce((SELECT jsonb_agg(jsonb_build_object('price', b.price::text, 'quantity', b.quantity::text,
                                                                      'order_count', b.order_count) ORDER BY b.price)
                                    FROM book b WHERE b.side = 'sell'), '[]'::jsonb)));
END $$;

-- Stores a whole book in orderbook_snapshots at journal entry `seq` (its
-- levels as _book_levels(upto) gives them, decimals as JSON numbers) and
-- returns the row's id: snapshot() the book in memory, settle() a date's
-- close from the journal.
CREATE FUNCTION exchange._store_snapshot(inst exchange.instruments, seq bigint, upto bigint) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO exchange.orderbook_snapshots (instrument, seq, bids, asks)
    SELECT inst.symbol, seq,
           coalesce(jsonb_agg(jsonb_build_object('price', b.price, 'quantity', b.quantity, 'order_count', b.order_count)
                              ORDER BY b.price DESC) FILTER (WHERE b.side = 'buy'), '[]'::jsonb),
           coalesce(jsonb_agg(jsonb_build_object('price', b.price, 'quantity', b.quantity, 'order_count', b.order_count)
                              ORDER BY b.price) FILTER (WHERE b.side = 'sell'), '[]'::jsonb)
      FROM exchange._book_levels(inst, 2147483647, upto) b
    RETURNING id
$$;
REVOKE ALL ON FUNCTION exchange._store_snapshot(exchange.instruments, bigint, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION exchange.snapshot(instrument text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
BEGIN
    RETURN exchange._store_snapshot(inst, exchange._lock(inst.instrument_id), NULL);
END $$;
