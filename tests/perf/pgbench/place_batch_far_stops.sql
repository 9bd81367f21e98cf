\set b random(1, 1000)
SELECT count(*) FROM exchange.place_orders((SELECT replace(body, '"B1"', '"S1"')::jsonb FROM bench_batches WHERE id = :b));
