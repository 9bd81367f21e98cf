-- exchange 0.7 -> 0.8: the journal as a view, for readers that follow it
-- (the WebSocket feed reads it after every notification).
\echo Use "ALTER EXTENSION exchange UPDATE TO '0.8'" to load this file. \quit

-- Every journal entry; for an entry other than order_placed and
-- order_rejected, whose payloads hold the whole order, the order row's side,
-- type, price, quantity and filled quantity (its current state: the final
-- one of a cancelled order); NULL for those two kinds, whose row is not read.
-- created_us: microseconds since the Unix epoch.
--
-- exchange.journal() returns the same with the row read for every entry,
-- through a PL/pgSQL function. Read through this view with a prepared
-- statement and a generic plan (plan_cache_mode = force_generic_plan), a
-- read of 2 entries costs the server ~127 µs of CPU instead of ~337 µs, one
-- of 40 entries ~443 instead of ~557 (tests/perf/journal_read.py; README,
-- Benchmark): no function call, no row read for the orders whose payload
-- has them (OFFSET 0 keeps the subquery a subquery, so that its condition
-- on the entry's kind is a one-time filter, checked before the index scan
-- of orders), and no planning per read, which a custom plan of the range
-- condition costs.
CREATE VIEW exchange.journal_entries AS
SELECT e.instrument_id, e.seq, e.kind, e.order_id, e.payload,
       o.side, o.type, o.price, o.quantity, o.filled_quantity,
       (extract(epoch FROM e.created_at) * 1000000)::bigint AS created_us
  FROM exchange.events e
  LEFT JOIN LATERAL (SELECT o.side, o.type, o.price, o.quantity, o.filled_quantity
                       FROM exchange.orders o
                      WHERE o.order_id = e.order_id AND e.kind NOT IN ('order_placed', 'order_rejected')
                     OFFSET 0) o ON true;

REVOKE ALL ON exchange.journal_entries FROM PUBLIC;
GRANT SELECT ON exchange.journal_entries TO exchange_trader, exchange_auditor;
