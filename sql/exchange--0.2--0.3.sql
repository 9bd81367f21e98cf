-- exchange 0.2 -> 0.3: cancel_order in C.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.3'" to load this file. \quit

-- Same checks, SQLSTATEs, messages, rows, journal entry and result as the
-- PL/pgSQL version (exchange._cancel_order), without a statement per step
-- (extension/pg/commands.cpp). CREATE OR REPLACE keeps its grants.
CREATE OR REPLACE FUNCTION exchange.cancel_order(order_id uuid, client_id text DEFAULT NULL)
RETURNS exchange.order_result AS 'MODULE_PATHNAME', 'exchange_cancel_order' LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = exchange, pg_catalog, pg_temp;

COMMENT ON FUNCTION exchange._cancel_order(uuid, text) IS
    'the PL/pgSQL cancel that exchange.cancel_order replaced in 0.3; kept as the reference the regression suite compares it with';
