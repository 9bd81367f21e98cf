-- exchange 0.8 -> 0.9: cancel_orders with a client per id.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.9'" to load this file. \quit

-- Cancels many orders in one transaction, as cancel_orders(order_ids,
-- client_id), with each id's own client: client_ids[i] must own
-- order_ids[i] (NULL: no ownership check). One call locks all the orders'
-- instruments first, in one order, where one call per client would lock
-- each call's in turn (two such statements could deadlock). Arrays of
-- different lengths, a NULL or multi-dimensional one: ERROR 22023
-- invalid_batch.
CREATE FUNCTION exchange.cancel_orders(order_ids uuid[], client_ids text[])
RETURNS SETOF exchange.order_result AS 'MODULE_PATHNAME', 'exchange_cancel_orders_each' LANGUAGE C VOLATILE ROWS 100
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.cancel_orders(uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.cancel_orders(uuid[], text[]) TO exchange_trader;
