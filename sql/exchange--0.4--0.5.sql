-- exchange 0.4 -> 0.5: amend_orders (many amends in one transaction).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.5'" to load this file. \quit

-- Amends many orders in one transaction (one commit for all): one result per
-- item, in order, each as amend_order's. An item is a JSON object with
-- order_id, quantity and/or price (JSON numbers or strings) and optionally
-- client_id (which must own the order). Items apply in order: a later item
-- sees what an earlier one did to the same order. An item that cannot be
-- amended gets a row with its order_id, status 'rejected', the reason code in
-- reject_reason and amend_order's message in reject_message, and changes
-- nothing: amend_order's refusals (order_not_found, not_order_owner,
-- order_not_open, invalid_quantity, invalid_price, no_change, the book's
-- rejects), and for an item that is not an object invalid_order, without
-- order_id order_not_found, with one that is not a UUID invalid_order_id.
-- A NULL or non-array argument is ERROR 22023 invalid_batch.
CREATE FUNCTION exchange.amend_orders(amends jsonb)
RETURNS SETOF exchange.order_result AS 'MODULE_PATHNAME', 'exchange_amend_orders' LANGUAGE C VOLATILE ROWS 100
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.amend_orders(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.amend_orders(jsonb) TO exchange_trader;
