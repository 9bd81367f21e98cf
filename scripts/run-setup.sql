-- make run: the extension, a demo instrument and the frontend's login role
-- (a member of exchange_trader: it can only execute the trading functions).
-- Idempotent. The local cluster trusts 127.0.0.1, so the role has no password.
CREATE EXTENSION IF NOT EXISTS exchange;
ALTER EXTENSION exchange UPDATE;  -- a cluster from an earlier make run: to this build's version
INSERT INTO exchange.instruments (symbol, tick_size, lot_size, min_quantity)
VALUES ('BTC-USD', 0.01, 0.0001, 0.0001) ON CONFLICT DO NOTHING;
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgx_frontend') AS need_role \gset
\if :need_role
CREATE ROLE pgx_frontend LOGIN IN ROLE exchange_trader;
\endif
-- API keys reach exchange.authenticate as bind parameters: keep them out of
-- PostgreSQL's statement and error logs.
ALTER ROLE pgx_frontend SET log_parameter_max_length = 0;
ALTER ROLE pgx_frontend SET log_parameter_max_length_on_error = 0;
