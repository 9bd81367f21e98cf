-- One resting order of C1 cancelled per transaction, oldest first (see bench_db_start).
SELECT status FROM exchange.cancel_order((SELECT order_id FROM bench_cancel_ids WHERE n = (SELECT nextval('bench_cancel_next'))));
