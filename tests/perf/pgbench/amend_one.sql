-- One resting order of C1 amended per transaction: orders 120,001-140,000 in turn, each to
-- quantity 2, then 3 on the next pass (always a change; a larger quantity re-queues it).
SELECT nextval('bench_amend_next') - 1 AS a \gset
SELECT status FROM exchange.amend_order((SELECT order_id FROM bench_cancel_ids WHERE n = 120001 + :a % 20000),
                                        2 + (:a / 20000) % 2);
