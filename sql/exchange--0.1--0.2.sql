-- exchange 0.1 -> 0.2: a place_orders item refused for malformed input says why.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.2'" to load this file. \quit

-- The last column of every trading function's result: for a place_orders
-- item refused for malformed input (no order_id), the message place_order
-- would have raised, after its reason code; NULL otherwise.
ALTER TYPE exchange.order_result ADD ATTRIBUTE reject_message text;

-- An order row as the API's result.
CREATE OR REPLACE FUNCTION exchange._result(o exchange.orders, p_trades jsonb, p_seq bigint)
RETURNS exchange.order_result
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN ROW(o.order_id, o.client_id, o.instrument, o.side, o.type, o.time_in_force, o.price, o.quantity,
               o.filled_quantity, o.remaining_lots * (SELECT lot_size FROM exchange.instruments i
                                                      WHERE i.instrument_id = o.instrument_id),
               o.status, o.reject_reason, o.cancel_reason, coalesce(p_trades, '[]'::jsonb), o.created_at,
               p_seq, NULL::text)::exchange.order_result;
END $$;
