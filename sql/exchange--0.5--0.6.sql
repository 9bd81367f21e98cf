-- exchange 0.5 -> 0.6: exchange.clients is append-only.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.6'" to load this file. \quit

-- A client's number is what self-trade prevention compares, and the books'
-- resting orders carry it: a row of exchange.clients, once committed, never
-- changes and is never removed. The trading functions rely on that to keep
-- the numbers they have read in each backend across transactions. UPDATE,
-- DELETE and TRUNCATE of the table are refused with SQLSTATE 55000
-- (object_not_in_prerequisite_state), reason code clients_append_only.
CREATE FUNCTION exchange._clients_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = exchange, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'clients_append_only: % of exchange.clients refused: a client''s number never changes', TG_OP
        USING ERRCODE = '55000';
END $$;
REVOKE ALL ON FUNCTION exchange._clients_append_only() FROM PUBLIC;
CREATE TRIGGER clients_append_only BEFORE UPDATE OR DELETE ON exchange.clients
    FOR EACH ROW EXECUTE FUNCTION exchange._clients_append_only();
CREATE TRIGGER clients_no_truncate BEFORE TRUNCATE ON exchange.clients
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._clients_append_only();
