-- Paging (0.11): list_orders and recent_trades take the last row seen as
-- `before` and go on with the older ones. A client with orders of every
-- status on two instruments, listed a page at a time, gives each status's
-- orders exactly once, newest first, the same as reading the table directly.
SELECT symbol FROM exchange.create_instrument('PAGE-USD', 1, 1);
SELECT symbol FROM exchange.create_instrument('PAGE2-USD', 0.01, 1);
SELECT count(*) FROM (
    SELECT exchange.place_order('pager', CASE WHEN g % 2 = 0 THEN 'PAGE-USD' ELSE 'PAGE2-USD' END,
                                CASE WHEN g % 3 = 0 THEN 'sell' ELSE 'buy' END, 'limit', 1 + g % 4,
                                CASE WHEN g % 2 = 0 THEN 100 + g % 7 ELSE 0.40 + (g % 7) / 100.0 END,
                                CASE WHEN g % 11 = 0 THEN 'fok' WHEN g % 5 = 0 THEN 'ioc' ELSE 'gtc' END,
                                stp => 'none')  -- the client trades with itself
      FROM generate_series(1, 120) g) placed;
SELECT count(*) FROM (SELECT exchange.cancel_order(order_id) FROM exchange.orders
                       WHERE client_id = 'pager' AND status IN ('open', 'partially_filled') AND order_no % 4 = 0) c;
SELECT status, count(*) FROM exchange.orders WHERE client_id = 'pager' GROUP BY status ORDER BY status;
-- pages(call, page): walks a paged function to its end, a page at a time;
-- `call` has %s for the page size and %L for the cursor (NULL first), and
-- its rows' `id` is what the next page starts before.
CREATE FUNCTION pages(call text, page int) RETURNS TABLE (n int, id uuid) LANGUAGE plpgsql AS $$
DECLARE
    cursor_id uuid;
    got int;
    k int := 0;
    r record;
BEGIN
    LOOP
        got := 0;
        FOR r IN EXECUTE format(call, page, cursor_id) LOOP
            k := k + 1; got := got + 1; n := k; id := r.id; cursor_id := r.id;
            RETURN NEXT;
        END LOOP;
        EXIT WHEN got < page OR k > 1000;  -- a cursor that pages nowhere fails, not hangs
    END LOOP;
END $$;
SELECT coalesce(s, 'resting') AS status,
       (SELECT array_agg(p.id ORDER BY p.n)
          FROM pages(format('SELECT order_id AS id FROM exchange.list_orders(''pager'', %L, %%s, %%L)', s), 7) p)
       = (SELECT array_agg(o.order_id ORDER BY o.order_no DESC) FROM exchange.orders o
           WHERE o.client_id = 'pager' AND (o.status = s OR (s IS NULL AND o.status IN ('open', 'partially_filled'))))
           AS pages_are_the_table,
       (SELECT count(*)
          FROM pages(format('SELECT order_id AS id FROM exchange.list_orders(''pager'', %L, %%s, %%L)', s), 7)) AS orders
  FROM unnest(ARRAY[NULL, 'open', 'partially_filled', 'filled', 'cancelled', 'rejected']) s;
-- recent_trades: the same for an instrument's trades, in (executed_at, seq, trade_no) order.
SELECT (SELECT array_agg(p.id ORDER BY p.n)
          FROM pages('SELECT trade_id AS id FROM exchange.recent_trades(''PAGE-USD'', %s, %L)', 3) p)
       = (SELECT array_agg(t.trade_id ORDER BY t.executed_at DESC, t.seq DESC, t.trade_no DESC)
            FROM exchange.trades t WHERE t.instrument = 'PAGE-USD') AS pages_are_the_table,
       (SELECT count(*) FROM pages('SELECT trade_id AS id FROM exchange.recent_trades(''PAGE-USD'', %s, %L)', 3))
           AS trades;
SELECT count(*) FROM exchange.list_orders('nobody', NULL, 10, NULL);
-- A cursor that is not the client's order, or not the instrument's trade.
SELECT try(format($$SELECT exchange.list_orders('somebody-else', NULL, 10, %L)$$,
                  (SELECT order_id FROM exchange.orders WHERE client_id = 'pager' LIMIT 1)));
SELECT try($$SELECT exchange.list_orders('pager', NULL, 10, '00000000-0000-0000-0000-000000000000')$$);
SELECT try(format($$SELECT * FROM exchange.recent_trades('PAGE2-USD', 10, %L)$$,
                  (SELECT trade_id FROM exchange.trades WHERE instrument = 'PAGE-USD' LIMIT 1)));
SELECT has_function_privilege('exchange_trader', 'exchange.list_orders(text, text, int, uuid)', 'EXECUTE')
       AND has_function_privilege('exchange_auditor', 'exchange.recent_trades(text, int, uuid)', 'EXECUTE') AS granted,
       to_regprocedure('exchange.list_orders(text, text, int)') IS NULL
       AND to_regprocedure('exchange.recent_trades(text, int)') IS NULL AS old_forms_gone;
SELECT healthy('PAGE-USD'), healthy('PAGE2-USD');
