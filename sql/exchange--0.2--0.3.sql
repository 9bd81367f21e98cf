-- exchange 0.2 -> 0.3: cancel_order and amend_order in C; cancel_orders (many in one transaction).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.3'" to load this file. \quit

-- Same checks, SQLSTATEs, messages, rows, journal entries and results as the
-- PL/pgSQL versions (exchange._cancel_order, exchange._amend_order), without
-- a statement per step (extension/pg/commands.cpp). CREATE OR REPLACE keeps
-- their grants.
CREATE OR REPLACE FUNCTION exchange.cancel_order(order_id uuid, client_id text DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_cancel_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION exchange.amend_order(order_id uuid, quantity numeric DEFAULT NULL,
                                                price numeric DEFAULT NULL, client_id text DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_amend_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;

COMMENT ON FUNCTION exchange._cancel_order(uuid, text) IS
    'the PL/pgSQL cancel that exchange.cancel_order replaced in 0.3; kept as the reference the regression suite compares it with';
COMMENT ON FUNCTION exchange._amend_order(uuid, numeric, numeric, text) IS
    'the PL/pgSQL amend that exchange.amend_order replaced in 0.3; kept as the reference the regression suite compares it with';

-- Cancels many orders in one transaction (one commit for all): one result
-- per id, in order, each as cancel_order's; an id that cannot be cancelled
-- (unknown, not resting, another client's, NULL) gets a 'rejected' row with
-- the reason code in reject_reason and cancel_order's message in
-- reject_message, and changes nothing.
CREATE FUNCTION exchange.cancel_orders(order_ids uuid[], client_id text DEFAULT NULL)
RETURNS SETOF exchange.order_result AS 'MODULE_PATHNAME', 'exchange_cancel_orders' LANGUAGE C VOLATILE ROWS 100
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION exchange.cancel_orders(uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exchange.cancel_orders(uuid[], text) TO exchange_trader;
