-- TWAP orders (0.18). A TWAP's schedule is set by its start: the ones here
-- started minutes ago, so that a run finds a known number of slices due
-- (3 minutes into 5 slices of 2 minutes: slices 1 and 2), far from any
-- slice's boundary.
SELECT symbol FROM exchange.create_instrument('TWAP-USD', 0.5, 1);
SELECT symbol FROM exchange.create_instrument('TWAP2-USD', 0.5, 1, 2);
SELECT status FROM exchange.place_order('mm', 'TWAP-USD', 'sell', 'limit', 100, 10);
SELECT status FROM exchange.place_order('mm', 'TWAP-USD', 'buy', 'limit', 100, 8);
CREATE FUNCTION twap_state(id uuid) RETURNS TABLE (filled numeric, remaining numeric, slices_done int, children int,
                                                   status text, last_error text)
LANGUAGE sql AS $$
    SELECT filled_quantity, remaining_quantity, slices_done, children, status, last_error FROM exchange.get_twap(id)
$$;

-- Refused, nothing stored.
SELECT try($$SELECT exchange.place_twap(NULL, 'TWAP-USD', 'buy', 10, '10 minutes')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'NOPE', 'buy', 10, '10 minutes')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'hold', 10, '10 minutes')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10.5, '10 minutes')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 0, '10 minutes')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '10 minutes', price => 10.25)$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '0.5 seconds')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '8 days')$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, NULL)$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '10 minutes', 0)$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '10 minutes', 11)$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP2-USD', 'buy', 5, '10 minutes', 3)$$);
SELECT try($$SELECT exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '10 minutes', idempotency_key => '')$$);
SELECT count(*) FROM exchange.twaps;
-- Without slices: one a minute.
SELECT slices, end_at - start_at AS duration, status
  FROM exchange.place_twap('tw_zed', 'TWAP-USD', 'buy', 100, '10 minutes', start_at => now() + interval '1 day');

-- A limit TWAP with liquidity at its price: 3 minutes in, slices 1 and 2
-- are due, one child asks for both (4 of 10) and fills; running again
-- places nothing more until slice 3.
SELECT twap_id AS alice FROM exchange.place_twap('tw_alice', 'TWAP-USD', 'buy', 10, '10 minutes', 5, 10.5,
                                                 now() - interval '3 minutes') \gset
SELECT quantity, filled_quantity, status FROM exchange.run_twaps() WHERE twap_id = :'alice';
SELECT count(*) FROM exchange.run_twaps() WHERE twap_id = :'alice';
SELECT * FROM twap_state(:'alice');
SELECT side, type, time_in_force, price, quantity, filled_quantity, status FROM exchange.twap_orders(:'alice');
-- The child's idempotency key has a part the client is not shown: an order
-- of the client with the key it could guess does not become a child.
SELECT o.client_id, o.idempotency_key = exchange._twap_child_key(t, 1) AS keyed,
       o.idempotency_key LIKE 'twap:' || :'alice' || ':________________________________:1' AS shape
  FROM exchange.orders o, exchange.twaps t WHERE o.client_id = 'tw_alice' AND t.twap_id = :'alice';
SELECT status FROM exchange.place_order('tw_alice', 'TWAP-USD', 'buy', 'limit', 1, 8, 'ioc', 'twap:' || :'alice' || ':2');
SELECT count(*) AS children FROM exchange.twap_orders(:'alice');

-- No liquidity at its price: the child (IOC) is cancelled, nothing rests,
-- and the next slice asks for what this one left.
SELECT twap_id AS bob FROM exchange.place_twap('tw_bob', 'TWAP-USD', 'buy', 10, '10 minutes', 5, 9,
                                               now() - interval '3 minutes') \gset
SELECT quantity, filled_quantity, status FROM exchange.run_twaps() WHERE twap_id = :'bob';
SELECT * FROM twap_state(:'bob');
SELECT count(*) AS resting_bids_of_bob FROM exchange.orders
 WHERE client_id = 'tw_bob' AND status IN ('open', 'partially_filled');

-- A market TWAP whose end has passed: one child for all of it, completed.
SELECT twap_id AS carol FROM exchange.place_twap('tw_carol', 'TWAP-USD', 'sell', 7, '10 minutes', 3,
                                                 start_at => now() - interval '1 hour') \gset
SELECT quantity, filled_quantity, status FROM exchange.run_twaps() WHERE twap_id = :'carol';
SELECT * FROM twap_state(:'carol');
SELECT type, time_in_force, price, filled_quantity, status FROM exchange.twap_orders(:'carol');

-- Ended without liquidity: its last child finds none, it is completed
-- unfilled.
SELECT twap_id AS dan FROM exchange.place_twap('tw_dan', 'TWAP-USD', 'sell', 5, '10 minutes', 5, 12,
                                               now() - interval '1 hour') \gset
SELECT count(*) FROM exchange.run_twaps() WHERE twap_id = :'dan';
SELECT * FROM twap_state(:'dan');

-- The instrument halted: the child is refused, the TWAP keeps the error and
-- tries again at the next run; resumed, it catches up.
-- One past its end stays active until its last slice goes out.
SELECT twap_id AS erin FROM exchange.place_twap('tw_erin', 'TWAP-USD', 'buy', 10, '10 minutes', 5, 10.5,
                                                now() - interval '3 minutes') \gset
SELECT twap_id AS hal FROM exchange.place_twap('tw_hal', 'TWAP-USD', 'buy', 3, '10 minutes', 3, 10.5,
                                               now() - interval '1 hour') \gset
UPDATE exchange.instruments SET status = 'halted' WHERE symbol = 'TWAP-USD';
SELECT count(*) FROM exchange.run_twaps() WHERE twap_id IN (:'erin', :'hal');
SELECT * FROM twap_state(:'erin');
SELECT * FROM twap_state(:'hal');
UPDATE exchange.instruments SET status = 'active' WHERE symbol = 'TWAP-USD';
SELECT quantity, filled_quantity, status FROM exchange.run_twaps() WHERE twap_id IN (:'erin', :'hal')
 ORDER BY quantity;
SELECT * FROM twap_state(:'erin');
SELECT * FROM twap_state(:'hal');

-- A run rolled back leaves the TWAP, its children and the book as they were.
SELECT twap_id AS fay FROM exchange.place_twap('tw_fay', 'TWAP-USD', 'buy', 10, '10 minutes', 5, 10.5,
                                               now() - interval '3 minutes') \gset
BEGIN;
SELECT quantity, filled_quantity FROM exchange.run_twaps() WHERE twap_id = :'fay';
ROLLBACK;
SELECT * FROM twap_state(:'fay');
SELECT count(*) FROM exchange.orders WHERE client_id = 'tw_fay';
SELECT * FROM exchange.verify('TWAP-USD');

-- Cancelled: nothing more is placed. Refusals: unknown, another client's,
-- not active.
SELECT status FROM exchange.cancel_twap(:'fay', 'tw_fay');
SELECT count(*) FROM exchange.run_twaps() WHERE twap_id = :'fay';
SELECT try(format('SELECT exchange.cancel_twap(%L)', :'fay'));
SELECT try($$SELECT exchange.cancel_twap('00000000-0000-0000-0000-000000000000')$$);
SELECT try(format('SELECT exchange.cancel_twap(%L, %L)', :'alice', 'mallory'));
SELECT try($$SELECT exchange.get_twap('00000000-0000-0000-0000-000000000000')$$);
SELECT status FROM exchange.get_twap(:'alice');

-- The same idempotency key: the TWAP as it is, replayed.
SELECT twap_id AS gus FROM exchange.place_twap('tw_gus', 'TWAP-USD', 'buy', 10, '10 minutes', idempotency_key => 'g1')
\gset
SELECT twap_id = :'gus' AS same, replayed, status FROM exchange.place_twap('tw_gus', 'TWAP-USD', 'sell', 99, '1 minute',
                                                                           idempotency_key => 'g1');
SELECT count(*) FROM exchange.twaps WHERE client_id = 'tw_gus';

-- A client's TWAPs, newest first, by status.
SELECT client_id, status FROM exchange.list_twaps('tw_alice');
SELECT count(*) FROM exchange.list_twaps('tw_carol', 'completed');
SELECT try($$SELECT count(*) FROM exchange.list_twaps('tw_carol', 'done')$$);
SELECT try($$SELECT count(*) FROM exchange.list_twaps('tw_carol', NULL, 0)$$);

-- Who may do what.
SELECT r.role, f.fn, has_function_privilege(r.role, f.fn, 'EXECUTE') AS may
  FROM (VALUES ('exchange_trader'), ('exchange_auditor')) AS r(role),
       (VALUES ('exchange.place_twap(text, text, text, numeric, interval, int, numeric, timestamptz, text)'),
               ('exchange.cancel_twap(uuid, text)'), ('exchange.run_twaps()'), ('exchange.get_twap(uuid)'),
               ('exchange.list_twaps(text, text, int)'), ('exchange.twap_orders(uuid)')) AS f(fn)
 ORDER BY 1, 2;
SELECT r.role, has_table_privilege(r.role, 'exchange.twaps', 'SELECT') AS may_read
  FROM (VALUES ('exchange_trader'), ('exchange_auditor')) AS r(role) ORDER BY 1;
SELECT * FROM exchange.verify('TWAP-USD');

-- 0.19: run_twaps_each() runs the same TWAPs, each in its own transaction
-- (twap_each.spec shows an instrument freed while a later TWAP waits). The
-- TWAPs left active above are cancelled first, so that only these are due.
SELECT count(*) AS cancelled FROM exchange.twaps t, LATERAL exchange.cancel_twap(t.twap_id) c
 WHERE t.status = 'active';
SELECT symbol FROM exchange.create_instrument('TWAP3-USD', 1, 1);
SELECT status FROM exchange.place_order('mm', 'TWAP3-USD', 'sell', 'limit', 100, 10);
SELECT twap_id AS ivy FROM exchange.place_twap('tw_ivy', 'TWAP-USD', 'buy', 10, '10 minutes', 5, 10.5,
                                               now() - interval '3 minutes') \gset
SELECT twap_id AS jon FROM exchange.place_twap('tw_jon', 'TWAP3-USD', 'buy', 10, '10 minutes', 5, 10,
                                               now() - interval '3 minutes') \gset
CALL exchange.run_twaps_each();
SELECT * FROM twap_state(:'ivy');
SELECT * FROM twap_state(:'jon');
-- Nothing due: no child, nothing written.
SELECT updated_at AS jon_updated FROM exchange.twaps WHERE twap_id = :'jon' \gset
CALL exchange.run_twaps_each();
SELECT updated_at = :'jon_updated' AS unchanged FROM exchange.twaps WHERE twap_id = :'jon';
-- A refused child (its instrument halted) is kept in last_error and does
-- not stop the TWAPs after it; as exchange_trader, the frontend's role.
SELECT twap_id AS kim FROM exchange.place_twap('tw_kim', 'TWAP-USD', 'buy', 4, '10 minutes', 2, 10.5,
                                               now() - interval '6 minutes') \gset
SELECT twap_id AS lou FROM exchange.place_twap('tw_lou', 'TWAP3-USD', 'buy', 4, '10 minutes', 2, 10,
                                               now() - interval '6 minutes') \gset
UPDATE exchange.instruments SET status = 'halted' WHERE symbol = 'TWAP-USD';
SET ROLE exchange_trader;
CALL exchange.run_twaps_each();
RESET ROLE;
UPDATE exchange.instruments SET status = 'active' WHERE symbol = 'TWAP-USD';
SELECT * FROM twap_state(:'kim');
SELECT * FROM twap_state(:'lou');
-- Inside a transaction block it can not commit: refused, and the rollback
-- takes back what it did (run_twaps() is for one transaction).
BEGIN;
CALL exchange.run_twaps_each();
ROLLBACK;
SELECT * FROM twap_state(:'kim');
SELECT count(*) FROM exchange.orders WHERE client_id = 'tw_kim';
CALL exchange.run_twaps_each();
SELECT * FROM twap_state(:'kim');
SELECT has_function_privilege('exchange_trader', 'exchange.run_twaps_each(int)', 'EXECUTE') AS trader_may,
       has_function_privilege('exchange_auditor', 'exchange.run_twaps_each(int)', 'EXECUTE') AS auditor_may;
SELECT * FROM exchange.verify('TWAP-USD');
SELECT * FROM exchange.verify('TWAP3-USD');
