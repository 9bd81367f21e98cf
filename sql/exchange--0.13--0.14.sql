-- exchange 0.13 -> 0.14: a pending stop order's stop price can be amended;
-- stats() counts pending stop orders; cancel_all_orders.
-- amend_order takes stop_price as its last argument, amend_orders reads it
-- from each item's "stop_price": the order goes behind the stop orders
-- already waiting at the new stop price, and the new stop price must not be
-- reached already by the last trade price (stop_would_trigger)
-- (extension/core/SEMANTICS.md, Stop orders).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.14'" to load this file. \quit

DROP FUNCTION exchange.amend_order(uuid, numeric, numeric, text);
CREATE FUNCTION exchange.amend_order(order_id uuid, quantity numeric DEFAULT NULL, price numeric DEFAULT NULL,
                                     client_id text DEFAULT NULL, stop_price numeric DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_amend_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.amend_order(uuid, numeric, numeric, text, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.amend_order(uuid, numeric, numeric, text, numeric) TO exchange_trader;

-- stats() also counts each book's pending stop orders and the levels of
-- their stop prices: they take order and level slots of the book as resting
-- orders do (max_orders and max_levels cover both).
DROP FUNCTION exchange.stats();
DROP FUNCTION exchange._stats();
CREATE FUNCTION exchange._stats(OUT instrument_id int, OUT loaded boolean, OUT resting_orders bigint, OUT levels bigint,
                                OUT max_orders bigint, OUT max_levels bigint, OUT seq bigint, OUT shared_bytes bigint,
                                OUT published_seq bigint, OUT pending_stops bigint, OUT stop_levels bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'exchange_stats_raw' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION exchange._stats() FROM PUBLIC;
CREATE FUNCTION exchange.stats()
RETURNS TABLE (instrument text, loaded boolean, resting_orders bigint, levels bigint, max_orders bigint,
               max_levels bigint, seq bigint, shared_bytes bigint, published_seq bigint, pending_stops bigint,
               stop_levels bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
    SELECT i.symbol, coalesce(s.loaded, false), coalesce(s.resting_orders, 0), coalesce(s.levels, 0), s.max_orders,
           s.max_levels, s.seq, s.shared_bytes, s.published_seq, coalesce(s.pending_stops, 0),
           coalesce(s.stop_levels, 0)
      FROM exchange.instruments i LEFT JOIN exchange._stats() s ON s.instrument_id = i.instrument_id
     ORDER BY i.symbol
$$;
REVOKE ALL ON FUNCTION exchange.stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.stats() TO exchange_auditor, exchange_trader;

-- Cancels all of a client's resting orders and pending stop orders, or
-- those of one instrument: the orders it has when the call starts (found
-- through orders_client_resting), cancelled by one cancel_orders call (its
-- instruments' locks first, in one order). Returns the orders it cancelled,
-- oldest first; an order that another transaction filled or cancelled
-- between the two is left out. A client without orders gets no rows.
CREATE FUNCTION exchange.cancel_all_orders(client_id text, instrument text DEFAULT NULL)
RETURNS SETOF exchange.order_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp AS $$
DECLARE
    client bigint;
    ids uuid[];
BEGIN
    IF client_id IS NULL THEN
        PERFORM exchange._fail('invalid_client_id', 'client_id is required');
    END IF;
    IF instrument IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM exchange.instruments i WHERE i.symbol = cancel_all_orders.instrument) THEN
        PERFORM exchange._fail('unknown_instrument', format('instrument %L does not exist', instrument), '42704');
    END IF;
    SELECT c.client_no INTO client FROM exchange.clients c WHERE c.client_id = cancel_all_orders.client_id;
    IF client IS NULL THEN
        RETURN;  -- a client that never placed an order
    END IF;
    -- The partial index: its predicate written as in the index, so the planner sees it applies.
    SELECT array_agg(o.order_id ORDER BY o.order_no) INTO ids
      FROM exchange.orders o
     WHERE o.client_no = client AND o.status IN ('open', 'partially_filled', 'pending')
       AND (cancel_all_orders.instrument IS NULL OR o.instrument = cancel_all_orders.instrument);
    IF ids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.* FROM exchange.cancel_orders(ids, cancel_all_orders.client_id) r WHERE r.status = 'cancelled';
END $$;
REVOKE ALL ON FUNCTION exchange.cancel_all_orders(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.cancel_all_orders(text, text) TO exchange_trader;
