-- exchange 0.11 -> 0.12: iceberg orders. A GTC limit order placed with a
-- display_quantity shows at most that much of itself in the book at a time;
-- the rest is hidden, and each time the shown part (the tip) is taken a new
-- tip is shown and the order goes to the back of its price level
-- (extension/core/SEMANTICS.md, Icebergs).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.12'" to load this file. \quit

-- NULL for a plain order. visible_lots is the part of remaining_lots shown in
-- the book right now (what a rebuild restores); remaining_lots stays all
-- that is left of the order, shown and hidden.
ALTER TABLE exchange.orders
    ADD COLUMN display_quantity numeric,
    ADD COLUMN display_lots bigint CONSTRAINT orders_display_lots_check CHECK (display_lots > 0),
    ADD COLUMN visible_lots bigint CONSTRAINT orders_visible_lots_check CHECK (visible_lots >= 0);

-- place_order takes display_quantity as its last argument (named notation
-- keeps working for every earlier caller); place_orders reads it from each
-- item's "display_quantity".
DROP FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text);
CREATE FUNCTION exchange.place_order(client_id text, instrument text, side text, type text, quantity numeric,
                                     price numeric DEFAULT NULL, time_in_force text DEFAULT 'gtc',
                                     idempotency_key text DEFAULT NULL, post_only boolean DEFAULT false,
                                     stp text DEFAULT NULL, display_quantity numeric DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_place_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text, numeric)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.place_order(text, text, text, text, numeric, numeric, text, text, boolean, text, numeric)
    TO exchange_trader;

-- The book's orders with the part of each that is shown, and verify
-- comparing it with visible_lots (all of remaining_lots for a plain order).
DROP FUNCTION exchange._book_orders(int);
CREATE FUNCTION exchange._book_orders(int, OUT order_no bigint, OUT side smallint, OUT price bigint, OUT qty bigint,
                                      OUT rank bigint, OUT visible bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'exchange_book_orders' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._book_orders(int) FROM PUBLIC;

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
    SELECT format('book sequence %s but journal ends at %s', s.seq, j.seq)
      FROM exchange._stats() s,
           (SELECT coalesce(max(e.seq), 0) AS seq FROM exchange.events e WHERE e.instrument_id = inst.instrument_id) j
     WHERE s.instrument_id = inst.instrument_id AND s.loaded AND s.seq <> j.seq;
END $$;

-- Every trading function's result ends with the order's display_quantity
-- (NULL for a plain order).
ALTER TYPE exchange.order_result ADD ATTRIBUTE display_quantity numeric;

-- An order row as the API's result.
CREATE OR REPLACE FUNCTION exchange._result(o exchange.orders, p_trades jsonb, p_seq bigint)
RETURNS exchange.order_result
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN ROW(o.order_id, o.client_id, o.instrument, o.side, o.type, o.time_in_force, o.price, o.quantity,
               o.filled_quantity, o.remaining_lots * (SELECT lot_size FROM exchange.instruments i
                                                      WHERE i.instrument_id = o.instrument_id),
               o.status, o.reject_reason, o.cancel_reason, coalesce(p_trades, '[]'::jsonb), o.created_at,
               p_seq, NULL::text, o.display_quantity)::exchange.order_result;
END $$;
