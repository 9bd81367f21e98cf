\set b random(1, 1000)
SELECT count(*) FROM exchange.place_orders((SELECT body::jsonb FROM bench_stop_batches WHERE id = :b));
