-- exchange 0.9 -> 0.10: the journal and the trades are append-only, and no
-- order is ever deleted.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.10'" to load this file. \quit

-- What happened stays. A journal entry (exchange.events) or a trade, once
-- committed, never changes and is never removed: market data, audit and
-- replay read the journal by its gap-free sequence and must find every
-- entry. An order's row is never removed either: a resting order must have
-- its row for the book to match against, its trades and journal entries name
-- it, and a retry finds it by its idempotency key (its status and fills
-- change through the trading functions, as before). So UPDATE, DELETE and
-- TRUNCATE of exchange.events and exchange.trades, and DELETE and TRUNCATE of
-- exchange.orders, are refused with SQLSTATE 55000
-- (object_not_in_prerequisite_state), reason codes events_append_only,
-- trades_append_only and orders_kept, for the extension's owner too. The
-- triggers are ENABLE ALWAYS, so that session_replication_role = replica
-- does not skip them either; dropping or disabling one is DDL, which only
-- the owner can do. None of them fires on the inserts and updates the
-- trading functions make. exchange.clients (append-only since 0.6) is served
-- by the same function now, with the same message, and its triggers are
-- ENABLE ALWAYS too.
CREATE FUNCTION exchange._history_kept() RETURNS trigger
LANGUAGE plpgsql SET search_path = exchange, pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'clients' THEN
        RAISE EXCEPTION 'clients_append_only: % of exchange.clients refused: a client''s number never changes',
            TG_OP USING ERRCODE = '55000';
    END IF;
    IF TG_TABLE_NAME = 'orders' THEN
        RAISE EXCEPTION 'orders_kept: % of exchange.orders refused: an order''s row is never removed (cancel the order instead)',
            TG_OP USING ERRCODE = '55000';
    END IF;
    RAISE EXCEPTION '%_append_only: % of exchange.% refused: what was committed there never changes',
        TG_TABLE_NAME, TG_OP, TG_TABLE_NAME USING ERRCODE = '55000';
END $$;
REVOKE ALL ON FUNCTION exchange._history_kept() FROM PUBLIC;

DROP TRIGGER clients_append_only ON exchange.clients;
DROP TRIGGER clients_no_truncate ON exchange.clients;
DROP FUNCTION exchange._clients_append_only();
CREATE TRIGGER clients_append_only BEFORE UPDATE OR DELETE ON exchange.clients
    FOR EACH ROW EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER clients_no_truncate BEFORE TRUNCATE ON exchange.clients
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.clients ENABLE ALWAYS TRIGGER clients_append_only;
ALTER TABLE exchange.clients ENABLE ALWAYS TRIGGER clients_no_truncate;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON exchange.events
    FOR EACH ROW EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON exchange.events
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER trades_append_only BEFORE UPDATE OR DELETE ON exchange.trades
    FOR EACH ROW EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER trades_no_truncate BEFORE TRUNCATE ON exchange.trades
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER orders_kept BEFORE DELETE ON exchange.orders
    FOR EACH ROW EXECUTE FUNCTION exchange._history_kept();
CREATE TRIGGER orders_no_truncate BEFORE TRUNCATE ON exchange.orders
    FOR EACH STATEMENT EXECUTE FUNCTION exchange._history_kept();
ALTER TABLE exchange.events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE exchange.events ENABLE ALWAYS TRIGGER events_no_truncate;
ALTER TABLE exchange.trades ENABLE ALWAYS TRIGGER trades_append_only;
ALTER TABLE exchange.trades ENABLE ALWAYS TRIGGER trades_no_truncate;
ALTER TABLE exchange.orders ENABLE ALWAYS TRIGGER orders_kept;
ALTER TABLE exchange.orders ENABLE ALWAYS TRIGGER orders_no_truncate;
