-- 100 resting orders of C1 amended per transaction with one amend_orders: the 400 blocks of
-- orders 140,001-180,000 in turn, to quantity 2, then 3 on the next pass.
SELECT nextval('bench_amend_batch') - 1 AS b \gset
SELECT count(*) FROM exchange.amend_orders((
  SELECT jsonb_agg(jsonb_build_object('order_id', order_id, 'quantity', 2 + (:b / 400) % 2) ORDER BY n)
    FROM bench_cancel_ids WHERE n BETWEEN 140001 + (:b % 400) * 100 AND 140000 + (:b % 400 + 1) * 100));
