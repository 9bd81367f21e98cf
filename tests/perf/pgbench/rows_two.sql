-- Less than any order writes: one order's row and its journal entry (from
-- bench_rows_prepare's rows_src_*), each table with its primary key only,
-- by one plain SQL statement per transaction; no trade, no maker, no other
-- index. Numbered from rows_two_next, so that no key repeats.
WITH n AS MATERIALIZED (SELECT nextval('rows_two_next') AS k),
o AS (INSERT INTO rows_orders_pk SELECT s.order_id, s.order_no, s.client_id, s.client_no, s.instrument,
             s.instrument_id, s.side, s.type, s.time_in_force, s.post_only, s.stp, s.price, s.quantity,
             s.filled_quantity, s.price_ticks, s.quantity_lots, s.remaining_lots, s.status, s.reject_reason,
             s.cancel_reason, s.idempotency_key, s.priority, now(), now(), s.display_quantity, s.display_lots,
             s.visible_lots, s.stop_price, s.stop_ticks
        FROM rows_src_orders s, n WHERE s.k = n.k RETURNING 1),
e AS (INSERT INTO rows_events_pk SELECT s.instrument_id, s.seq, s.kind, s.order_id, s.payload, now()
        FROM rows_src_events s, n WHERE s.k = n.k RETURNING 1)
SELECT (SELECT count(*) FROM o) + (SELECT count(*) FROM e);
