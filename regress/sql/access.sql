-- Roles: traders only execute the trading functions; auditors only read.
CREATE ROLE regress_trader LOGIN IN ROLE exchange_trader;
CREATE ROLE regress_auditor LOGIN IN ROLE exchange_auditor;
CREATE ROLE regress_nobody LOGIN;
SELECT key_id AS dave_id, api_key AS dave_key FROM exchange.create_api_key('dave') \gset
SET ROLE regress_trader;
SELECT status FROM exchange.place_order('acc', 'SOL-USD', 'buy', 'limit', 1, 5);
SELECT count(*) FROM exchange.orderbook('SOL-USD');
SELECT try($$SELECT count(*) FROM exchange.orders$$);
SELECT try($$UPDATE exchange.orders SET status = 'filled'$$);
SELECT try($$SELECT exchange._cancel(1, 1)$$);
SELECT try($$SELECT exchange.rebuild('SOL-USD')$$);
-- The frontend's role checks keys and reads the journal, and can do nothing else with keys.
SELECT exchange.authenticate(:'dave_key') AS dave;
SELECT count(*) > 0 FROM exchange.journal_heads();
SELECT count(*) > 0 FROM exchange.journal(1, 0, 10, 10);
SELECT count(*) > 0 FROM exchange.journal_entries WHERE instrument_id = 1;
SELECT try($$SELECT exchange.create_api_key('mallory')$$);
SELECT try(format('SELECT exchange.revoke_api_key(%L)', :'dave_id'));
SELECT try($$SELECT * FROM exchange.list_api_keys()$$);
SELECT try($$SELECT count(*) FROM exchange.api_keys$$);
RESET ROLE;
SET ROLE regress_auditor;
SELECT count(*) > 0 FROM exchange.orders;
SELECT count(*) > 0 FROM exchange.journal_entries WHERE instrument_id = 1;
SELECT try($$DELETE FROM exchange.trades$$);
SELECT count(*) > 0 FROM (SELECT key_id, client_id, revoked_at FROM exchange.api_keys) a;
SELECT try($$SELECT secret_sha256 FROM exchange.api_keys$$);
SELECT try($$SELECT exchange.create_api_key('mallory')$$);
SELECT try($$SELECT exchange.place_order('acc', 'SOL-USD', 'buy', 'limit', 1, 5)$$);
RESET ROLE;
SET ROLE regress_nobody;
SELECT try($$SELECT exchange.place_order('acc', 'SOL-USD', 'buy', 'limit', 1, 5)$$);
SELECT try($$SELECT * FROM exchange.orderbook('SOL-USD')$$);
SELECT try($$SELECT count(*) FROM exchange.journal_entries$$);
SELECT try($$SELECT exchange.authenticate('pgx_')$$);
RESET ROLE;
SELECT exchange.authenticate(:'dave_key') AS still_dave;
DROP ROLE regress_trader, regress_auditor, regress_nobody;
-- exchange.clients is append-only, for its owner too (0.6): a client's number,
-- which self-trade prevention compares and backends keep, never changes.
SELECT try($$UPDATE exchange.clients SET client_no = client_no + 1000 WHERE client_id = 'acc'$$);
SELECT try($$DELETE FROM exchange.clients WHERE client_id = 'acc'$$);
SELECT try($$TRUNCATE exchange.clients$$);
SELECT count(*) AS acc_rows FROM exchange.clients WHERE client_id = 'acc';
