-- exchange 0.14 -> 0.15: verify compares a pending stop order's display
-- quantity (a GTC stop-limit order may be an iceberg: the library accepts
-- one at any version from 0.13, this version checks it), and no longer
-- reads the journal's last trade price for a book that has not read it.
-- A book without pending stop orders is loaded without its last trade
-- price, which the first stop order placed on it reads from the journal (a
-- walk back to the last entry with a trade): until then there is nothing
-- to compare, and verify of an instrument quoted a long time without a
-- trade no longer pays that walk.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.15'" to load this file. \quit

-- _book_stops gains the display quantity of each pending stop order (0: not an iceberg).
DROP FUNCTION exchange._book_stops(int);
CREATE FUNCTION exchange._book_stops(int, OUT order_no bigint, OUT side smallint, OUT stop bigint, OUT price bigint,
                                     OUT qty bigint, OUT rank bigint, OUT display bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'exchange_book_stops' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._book_stops(int) FROM PUBLIC;
-- The book's last trade price in ticks if it has one to compare (read from
-- the journal, or a trade since it was loaded; 0: the journal had none),
-- else NULL.
CREATE FUNCTION exchange._book_last_price_read(int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'exchange_book_last_price_read' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._book_last_price_read(int) FROM PUBLIC;

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
               coalesce(o.price_ticks, 0) AS price, o.remaining_lots AS qty, coalesce(o.display_lots, 0) AS display,
               row_number() OVER (PARTITION BY o.side
                                  ORDER BY CASE WHEN o.side = 'buy' THEN o.stop_ticks ELSE -o.stop_ticks END,
                                           o.priority) AS rank
          FROM exchange.orders o
         WHERE o.instrument_id = inst.instrument_id AND o.status = 'pending'
    )
    SELECT CASE
             WHEN b.order_no IS NULL THEN format('stop order_no %s is pending in the table but not in the book', t.order_no)
             WHEN t.order_no IS NULL THEN format('stop order_no %s is pending in the book but not in the table', b.order_no)
             WHEN b.side <> t.side OR b.stop <> t.stop OR b.price <> t.price OR b.qty <> t.qty OR b.display <> t.display THEN
               format('stop order_no %s differs: book side %s stop %s price %s qty %s display %s, table side %s stop %s price %s qty %s display %s',
                      b.order_no, b.side, b.stop, b.price, b.qty, b.display, t.side, t.stop, t.price, t.qty, t.display)
             ELSE format('stop order_no %s is at trigger position %s in the book but %s in the table', b.order_no, b.rank, t.rank)
           END
      FROM book b FULL JOIN rows t ON b.order_no = t.order_no
     WHERE b.order_no IS NULL OR t.order_no IS NULL OR b.side <> t.side OR b.stop <> t.stop OR b.price <> t.price
        OR b.qty <> t.qty OR b.display <> t.display OR b.rank <> t.rank;
    RETURN QUERY
    SELECT format('book last trade price %s ticks but the journal''s is %s', b.ticks, j.ticks)
      FROM (SELECT exchange._book_last_price_read(inst.instrument_id) AS ticks) b
           CROSS JOIN LATERAL (SELECT exchange._last_trade_ticks(inst.instrument_id) AS ticks
                                WHERE b.ticks IS NOT NULL) j
     WHERE b.ticks <> j.ticks;
    RETURN QUERY
    SELECT format('book sequence %s but journal ends at %s', s.seq, j.seq)
      FROM exchange._stats() s,
           (SELECT coalesce(max(e.seq), 0) AS seq FROM exchange.events e WHERE e.instrument_id = inst.instrument_id) j
     WHERE s.instrument_id = inst.instrument_id AND s.loaded AND s.seq <> j.seq;
END $$;
