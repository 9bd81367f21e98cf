-- exchange 0.2 -> 0.3: cancel_order and amend_order in C.
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
