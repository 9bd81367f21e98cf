-- API keys: created and revoked by the owner, checked by exchange.authenticate.
CREATE TEMP TABLE k AS SELECT * FROM exchange.create_api_key('alice', 'laptop');
SELECT key_id ~ '^[0-9a-f]{16}$' AS id_ok, api_key ~ ('^pgx_' || key_id || '_[0-9a-f]{64}$') AS key_ok FROM k;
-- Only the hash of the secret is stored.
SELECT count(*) FROM exchange.api_keys a, k
 WHERE a.key_id = k.key_id AND a.secret_sha256 = sha256(convert_to(substr(k.api_key, 22), 'UTF8'))
   AND position(substr(k.api_key, 22) IN a::text) = 0;
SELECT exchange.authenticate(api_key) FROM k;
-- A wrong secret, another key_id, malformed and NULL keys: NULL, never an error.
SELECT exchange.authenticate(left(api_key, 84) || CASE WHEN right(api_key, 1) = '0' THEN '1' ELSE '0' END) FROM k;
SELECT exchange.authenticate('pgx_0000000000000000_' || substr(api_key, 22)) FROM k;
SELECT exchange.authenticate(api_key || '0') FROM k;
SELECT exchange.authenticate(upper(api_key)) FROM k;
SELECT exchange.authenticate(''), exchange.authenticate(NULL), exchange.authenticate('pgx_'),
       exchange.authenticate(repeat('x', 100000));
-- Two keys of one client are independent; a second client's key names that client.
CREATE TEMP TABLE k2 AS SELECT * FROM exchange.create_api_key('alice');
CREATE TEMP TABLE k3 AS SELECT * FROM exchange.create_api_key('bob');
SELECT (SELECT key_id FROM k) <> (SELECT key_id FROM k2) AS distinct_ids,
       exchange.authenticate((SELECT api_key FROM k2)) AS k2, exchange.authenticate((SELECT api_key FROM k3)) AS k3;
SELECT client_id, label, revoked_at IS NULL AS active FROM exchange.list_api_keys('alice') ORDER BY label NULLS LAST;
SELECT count(*) FROM exchange.list_api_keys();
-- Revoke by key_id or by the whole key; again: false; unknown: P0002.
SELECT exchange.revoke_api_key(key_id) FROM k;
SELECT exchange.revoke_api_key(key_id) FROM k;
SELECT exchange.revoke_api_key(api_key) FROM k2;
SELECT exchange.authenticate(api_key) FROM k;
SELECT exchange.authenticate(api_key) FROM k2;
SELECT exchange.authenticate(api_key) FROM k3;
SELECT try($$SELECT exchange.revoke_api_key('0123456789abcdef')$$);
SELECT try($$SELECT exchange.revoke_api_key(NULL)$$);
-- Bad input changes nothing.
SELECT count(*) FROM exchange.api_keys;
SELECT try($$SELECT exchange.create_api_key('')$$);
SELECT try($$SELECT exchange.create_api_key(NULL)$$);
SELECT try($$SELECT exchange.create_api_key(repeat('a', 129))$$);
SELECT try($$SELECT exchange.create_api_key(E'tab\there')$$);
SELECT try($$SELECT exchange.create_api_key('carol', repeat('l', 201))$$);
SELECT count(*) FROM exchange.api_keys;
-- The journal as the feed reads it.
SELECT symbol, seq > 0 AS has_entries FROM exchange.journal_heads() ORDER BY instrument_id;
SELECT count(*) = (SELECT seq FROM exchange.journal_heads() WHERE symbol = 'BTC-USD') AS complete,
       bool_and(side IS NOT NULL) AS sides
  FROM exchange.journal((SELECT instrument_id FROM exchange.instruments WHERE symbol = 'BTC-USD'), 0, 1000000, 1000000);
SELECT array_agg(seq ORDER BY seq) FROM exchange.journal((SELECT instrument_id FROM exchange.instruments
                                                           WHERE symbol = 'BTC-USD'), 2, 5, 2);
