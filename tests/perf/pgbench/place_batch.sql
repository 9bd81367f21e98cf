SELECT count(*) FROM exchange.place_orders((
    SELECT jsonb_agg(jsonb_build_object('client_id', 'c' || (random() * 1000)::int, 'instrument', 'B1',
                                        'side', CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, 'type', 'limit',
                                        'quantity', 1 + (random() * 4)::int, 'price', 95 + (random() * 10)::int))
      FROM generate_series(1, 100)));
