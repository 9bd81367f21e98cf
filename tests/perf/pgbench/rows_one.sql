-- The rows one place_order of the run wrote (rows_src_*: bench_rows_prepare
-- in scripts/bench-pg-common.sh), written by one plain SQL statement per
-- transaction without any matching: the order as it was inserted, its
-- journal entry, its trades, and its makers' fills. Numbered from rows_next,
-- so that no key repeats.
WITH n AS MATERIALIZED (SELECT nextval('rows_next') AS k),
o AS (INSERT INTO rows_orders SELECT s.order_id, s.order_no, s.client_id, s.client_no, s.instrument, s.instrument_id,
             s.side, s.type, s.time_in_force, s.post_only, s.stp, s.price, s.quantity, s.filled_quantity, s.price_ticks,
             s.quantity_lots, s.remaining_lots, s.status, s.reject_reason, s.cancel_reason, s.idempotency_key,
             s.priority, now(), now(), s.display_quantity, s.display_lots, s.visible_lots, s.stop_price, s.stop_ticks
        FROM rows_src_orders s, n WHERE s.k = n.k RETURNING 1),
e AS (INSERT INTO rows_events SELECT s.instrument_id, s.seq, s.kind, s.order_id, s.payload, now()
        FROM rows_src_events s, n WHERE s.k = n.k RETURNING 1),
t AS (INSERT INTO rows_trades SELECT s.trade_id, s.instrument, s.instrument_id, s.seq, s.trade_no, s.price, s.quantity,
             s.buy_order_id, s.sell_order_id, s.buy_client_id, s.sell_client_id, s.maker_side, now()
        FROM rows_src_trades s, n WHERE s.k = n.k RETURNING 1),
u AS (UPDATE rows_orders r SET filled_quantity = r.filled_quantity + m.q, remaining_lots = r.remaining_lots - m.q,
             status = CASE WHEN r.remaining_lots = m.q THEN 'filled' ELSE 'partially_filled' END, updated_at = now()
        FROM (SELECT s.maker_id, sum(s.quantity_lots) AS q FROM rows_src_trades s, n WHERE s.k = n.k GROUP BY s.maker_id) m
       WHERE r.order_id = m.maker_id RETURNING 1)
SELECT (SELECT count(*) FROM o) + (SELECT count(*) FROM e) + (SELECT count(*) FROM t) + (SELECT count(*) FROM u);
