-- 100 resting orders of C1 cancelled per transaction, by number (see bench_db_start and bench-pg.sh).
SELECT nextval('bench_cancel_batch') AS b \gset
SELECT count(*) FROM exchange.cancel_orders(ARRAY(SELECT order_id FROM bench_cancel_ids WHERE n BETWEEN 60001 + (:b - 1) * 100 AND 60000 + :b * 100 ORDER BY n));
