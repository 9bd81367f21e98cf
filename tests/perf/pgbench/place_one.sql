\set who random(1, 1000)
\set side random(0, 1)
\set price random(95, 105)
\set qty random(1, 5)
SELECT status FROM exchange.place_order('c' || :who, 'B1', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 'limit', :qty, :price);
