-- exchange 0.12 -> 0.13: stop orders. An order placed with a stop_price
-- waits outside the book (status 'pending') until a trade at or beyond its
-- stop price (buy: at or above; sell: at or below) triggers it; it then
-- enters as a limit order (a stop-limit, with a price) or a market order (a
-- stop-market), with its own journal entry 'order_triggered'
-- (extension/core/SEMANTICS.md, Stop orders).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.13'" to load this file. \quit

-- NULL for an order without a stop. Both stay set after the order triggers.
ALTER TABLE exchange.orders
    ADD COLUMN stop_price numeric,
    ADD COLUMN stop_ticks bigint CONSTRAINT orders_stop_ticks_check CHECK (stop_ticks > 0);

-- 'pending': a stop order waiting for its stop price.
ALTER TABLE exchange.orders DROP CONSTRAINT orders_status_check;
ALTER TABLE exchange.orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'rejected', 'pending'));

-- The pending stops of an instrument in the order a rebuild queues them.
CREATE INDEX orders_pending ON exchange.orders (instrument_id, priority) WHERE status = 'pending';

-- A client's open orders (list_orders without a status) include its pending stops.
DROP INDEX exchange.orders_client_resting;
CREATE INDEX orders_client_resting ON exchange.orders (client_no, order_no)
    WHERE status IN ('open', 'partially_filled', 'pending');

-- A triggered stop order's run is its own journal entry, with its own sequence number.
ALTER TABLE exchange.events DROP CONSTRAINT events_kind_check;
ALTER TABLE exchange.events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('order_placed', 'order_rejected', 'order_cancelled', 'order_amended', 'order_triggered'));

-- An entry whose payload has the order (placed, rejected, triggered) reads no order row.
CREATE OR REPLACE VIEW exchange.journal_entries AS
SELECT e.instrument_id, e.seq, e.kind, e.order_id, e.payload,
       o.side, o.type, o.price, o.quantity, o.filled_quantity,
       (extract(epoch FROM e.created_at) * 1000000)::bigint AS created_us
  FROM exchange.events e
  LEFT JOIN LATERAL (SELECT o.side, o.type, o.price, o.quantity, o.filled_quantity
                       FROM exchange.orders o
                      WHERE o.order_id = e.order_id AND e.kind NOT IN ('order_placed', 'order_rejected', 'order_triggered')
                     OFFSET 0) o ON true;

-- place_order takes stop_price as its last argument; place_orders reads it
-- from each item's "stop_price".
DROP FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text, numeric);
CREATE FUNCTION exchange.place_order(client_id text, instrument text, side text, type text, quantity numeric,
                                     price numeric DEFAULT NULL, time_in_force text DEFAULT 'gtc',
                                     idempotency_key text DEFAULT NULL, post_only boolean DEFAULT false,
                                     stp text DEFAULT NULL, display_quantity numeric DEFAULT NULL,
                                     stop_price numeric DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_place_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text, numeric,
                                            numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text,
                                               numeric, numeric) TO exchange_trader;

-- Every trading function's result ends with the order's stop_price (NULL without a stop).
ALTER TYPE exchange.order_result ADD ATTRIBUTE stop_price numeric;

-- An order row as the API's result.
CREATE OR REPLACE FUNCTION exchange._result(o exchange.orders, p_trades jsonb, p_seq bigint)
RETURNS exchange.order_result
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN ROW(o.order_id, o.client_id, o.instrument, o.side, o.type, o.time_in_force, o.price, o.quantity,
               o.filled_quantity, o.remaining_lots * (SELECT lot_size FROM exchange.instruments i
                                                      WHERE i.instrument_id = o.instrument_id),
               o.status, o.reject_reason, o.cancel_reason, coalesce(p_trades, '[]'::jsonb), o.created_at,
               p_seq, NULL::text, o.display_quantity, o.stop_price)::exchange.order_result;
END $$;

-- A client's orders, newest first: its open ones (status NULL: open,
-- partially filled and pending stops) or those with one status.
CREATE OR REPLACE FUNCTION exchange.list_orders(client_id text, status text DEFAULT NULL, max_rows int DEFAULT 100,
                                                before uuid DEFAULT NULL)
RETURNS SETOF exchange.order_result
LANGUAGE plpgsql STABLE AS $$
DECLARE
    client bigint;
    older_than bigint := 9223372036854775807;
BEGIN
    IF status IS NOT NULL AND status NOT IN ('open', 'partially_filled', 'filled', 'cancelled', 'rejected', 'pending') THEN
        PERFORM exchange._fail('invalid_status',
                               format('status %L is not open, partially_filled, filled, cancelled, rejected or pending', status));
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
    IF status IS NULL OR status IN ('open', 'partially_filled', 'pending') THEN
        -- The partial index: its predicate written as in the index, so the planner sees it applies.
        RETURN QUERY
            SELECT (exchange._result(o, '[]'::jsonb, NULL)).*
              FROM exchange.orders o
             WHERE o.client_no = client AND o.status IN ('open', 'partially_filled', 'pending')
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
-- (CREATE OR REPLACE resets what 0.11's ALTER FUNCTION set.)
ALTER FUNCTION exchange.list_orders(text, text, int, uuid)
    SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;

-- The book's pending stop orders, each side in trigger order; and verify
-- comparing them with the rows of status 'pending', and the book's last
-- trade price with the journal's.
CREATE FUNCTION exchange._book_stops(int, OUT order_no bigint, OUT side smallint, OUT stop bigint, OUT price bigint,
                                     OUT qty bigint, OUT rank bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'exchange_book_stops' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._book_stops(int) FROM PUBLIC;
CREATE FUNCTION exchange._book_last_price(int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'exchange_book_last_price' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._book_last_price(int) FROM PUBLIC;

-- The price in ticks of an instrument's last trade, from the journal (0: none), as a book loads it.
CREATE FUNCTION exchange._last_trade_ticks(int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'exchange_last_trade_ticks' LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION exchange._last_trade_ticks(int) FROM PUBLIC;

CREATE OR REPLACE FUNCTION exchange.verify(instrument text) RETURNS TABLE (problem text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    inst exchange.instruments := exchange._instrument(instrument);
BEGIN
    PERFORM exchange._lock(inst.instrument_id);
    RETURN QUERY SELECT 'invariant: ' || p FROM unnest(exchange._validate(inst.instrument_id)) AS p;
    RETURN QUERY
    WITH book AS (
        SELECT * FROM exchange._book_orders(inst.instrument_id)
    ), rows AS (
        SELECT o.order_no, CASE WHEN o.side = 'buy' THEN 0 ELSE 1 END AS side, o.price_ticks AS price,
               o.remaining_lots AS qty, coalesce(o.visible_lots, o.remaining_lots) AS visible,
               row_number() OVER (PARTITION BY o.side
                                  ORDER BY CASE WHEN o.side = 'buy' THEN -o.price_ticks ELSE o.price_ticks END,
                                           o.priority) AS rank
          FROM exchange.orders o
         WHERE o.instrument_id = inst.instrument_id AND o.status IN ('open', 'partially_filled')
    )
    SELECT CASE
             WHEN b.order_no IS NULL THEN format('order_no %s rests in the table but not in the book', t.order_no)
             WHEN t.order_no IS NULL THEN format('order_no %s rests in the book but not in the table', b.order_no)
             WHEN b.side <> t.side OR b.price <> t.price OR b.qty <> t.qty OR b.visible <> t.visible THEN
               format('order_no %s differs: book side %s price %s qty %s shown %s, table side %s price %s qty %s shown %s',
                      b.order_no, b.side, b.price, b.qty, b.visible, t.side, t.price, t.qty, t.visible)
             ELSE format('order_no %s is at queue position %s in the book but %s in the table', b.order_no, b.rank, t.rank)
           END
      FROM book b FULL JOIN rows t ON b.order_no = t.order_no
     WHERE b.order_no IS NULL OR t.order_no IS NULL OR b.side <> t.side OR b.price <> t.price OR b.qty <> t.qty
        OR b.visible <> t.visible OR b.rank <> t.rank;
    RETURN QUERY
    WITH book AS (
        SELECT * FROM exchange._book_stops(inst.instrument_id)
    ), rows AS (
        SELECT o.order_no, CASE WHEN o.side = 'buy' THEN 0 ELSE 1 END AS side, o.stop_ticks AS stop,
               coalesce(o.price_ticks, 0) AS price, o.remaining_lots AS qty,
               row_number() OVER (PARTITION BY o.side
                                  ORDER BY CASE WHEN o.side = 'buy' THEN o.stop_ticks ELSE -o.stop_ticks END,
                                           o.priority) AS rank
          FROM exchange.orders o
         WHERE o.instrument_id = inst.instrument_id AND o.status = 'pending'
    )
    SELECT CASE
             WHEN b.order_no IS NULL THEN format('stop order_no %s is pending in the table but not in the book', t.order_no)
             WHEN t.order_no IS NULL THEN format('stop order_no %s is pending in the book but not in the table', b.order_no)
             WHEN b.side <> t.side OR b.stop <> t.stop OR b.price <> t.price OR b.qty <> t.qty THEN
               format('stop order_no %s differs: book side %s stop %s price %s qty %s, table side %s stop %s price %s qty %s',
                      b.order_no, b.side, b.stop, b.price, b.qty, t.side, t.stop, t.price, t.qty)
             ELSE format('stop order_no %s is at trigger position %s in the book but %s in the table', b.order_no, b.rank, t.rank)
           END
      FROM book b FULL JOIN rows t ON b.order_no = t.order_no
     WHERE b.order_no IS NULL OR t.order_no IS NULL OR b.side <> t.side OR b.stop <> t.stop OR b.price <> t.price
        OR b.qty <> t.qty OR b.rank <> t.rank;
    RETURN QUERY
    SELECT format('book last trade price %s ticks but the journal''s is %s', b.ticks, j.ticks)
      FROM (SELECT exchange._book_last_price(inst.instrument_id) AS ticks) b,
           (SELECT exchange._last_trade_ticks(inst.instrument_id) AS ticks) j
     WHERE b.ticks <> j.ticks;
    RETURN QUERY
    SELECT format('book sequence %s but journal ends at %s', s.seq, j.seq)
      FROM exchange._stats() s,
           (SELECT coalesce(max(e.seq), 0) AS seq FROM exchange.events e WHERE e.instrument_id = inst.instrument_id) j
     WHERE s.instrument_id = inst.instrument_id AND s.loaded AND s.seq <> j.seq;
END $$;
