-- exchange 0.3 -> 0.4: the idempotency keys' unique index holds only orders that have a key.
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.4'" to load this file. \quit

-- UNIQUE (client_id, idempotency_key) gave every order an index entry, also
-- the orders without a key (NULLs never conflict): one B-tree insert per
-- order, at a random place (by client), for nothing. The same uniqueness,
-- for the orders with a key only. Lookups by (client_id, idempotency_key)
-- use it as before (an equality on the key implies it is not NULL). Built
-- before the constraint is dropped, in the same transaction.
CREATE UNIQUE INDEX orders_client_idempotency_key ON exchange.orders (client_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
ALTER TABLE exchange.orders DROP CONSTRAINT orders_client_id_idempotency_key_key;
