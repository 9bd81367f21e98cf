-- exchange 0.6 -> 0.7: a change of exchange.instruments reaches every
-- backend's kept copy.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.7'" to load this file. \quit

-- The trading functions keep the instruments they have read in each backend
-- across transactions (tick and lot size, minimum quantity, status). Any
-- UPDATE, DELETE or TRUNCATE of the table (halting an instrument, say)
-- invalidates the table's relcache entry, which empties those copies: in
-- the other backends when the transaction commits, in its own at once. The
-- trigger fires in every session_replication_role (ENABLE ALWAYS); while it
-- is dropped or disabled the functions keep nothing and read the table on
-- every call, as before 0.7.
CREATE FUNCTION exchange._instruments_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'exchange_instruments_changed' LANGUAGE C;
REVOKE ALL ON FUNCTION exchange._instruments_changed() FROM PUBLIC;
CREATE TRIGGER instruments_changed AFTER UPDATE OR DELETE OR TRUNCATE ON exchange.instruments
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._instruments_changed();
ALTER TABLE exchange.instruments ENABLE ALWAYS TRIGGER instruments_changed;
