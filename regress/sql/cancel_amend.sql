-- exchange.cancel_order and exchange.amend_order (in C since 0.3) against
-- exchange._cancel_order and exchange._amend_order, the PL/pgSQL versions
-- they replaced: the same orders and cancels or amends on two instruments
-- end in the same results, rows, journal entries and errors.
SELECT symbol FROM exchange.create_instrument('CXA-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('CXB-USD', 0.01, 0.001);

-- 120 orders that trade among themselves (partial fills, several levels).
CREATE FUNCTION cx_stream(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT r.status FROM exchange.place_orders((
        SELECT jsonb_agg(jsonb_build_object(
                   'client_id', 'cx' || (i % 5), 'instrument', symbol,
                   'side', CASE WHEN i % 3 = 0 THEN 'sell' ELSE 'buy' END, 'type', 'limit',
                   'price', 100 + ((i * 7) % 9) * 0.01, 'quantity', 0.5 + (i % 4) * 0.25, 'stp', 'none')
                 ORDER BY i)
          FROM generate_series(1, 120) i)) r
$$;
SELECT count(*) AS placed, count(*) FILTER (WHERE s = 'partially_filled') > 0 AS some_partial
  FROM cx_stream('CXA-USD') s;
SELECT count(*) AS placed FROM cx_stream('CXB-USD');

-- Cancels two of every three resting orders, oldest first, every other one
-- naming its owner; records each result without its order id, instrument
-- and timestamps (and whether those are the order's).
CREATE TABLE cx_done (symbol text, k int, result text);
CREATE FUNCTION cx_cancel(symbol text, reference boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o record;
    r exchange.order_result;
    k int := 0;
BEGIN
    FOR o IN SELECT order_id, client_id FROM exchange.orders
              WHERE instrument = symbol AND status IN ('open', 'partially_filled') ORDER BY priority LOOP
        k := k + 1;
        CONTINUE WHEN k % 3 = 0;
        IF reference THEN
            r := exchange._cancel_order(o.order_id, CASE WHEN k % 2 = 0 THEN o.client_id END);
        ELSE
            r := exchange.cancel_order(o.order_id, CASE WHEN k % 2 = 0 THEN o.client_id END);
        END IF;
        INSERT INTO cx_done
        SELECT symbol, k, row(r.client_id, r.side, r.type, r.time_in_force, r.price, r.quantity, r.filled_quantity,
                              r.remaining_quantity, r.status, r.reject_reason, r.cancel_reason, r.trades, r.seq,
                              r.reject_message, r.order_id = o.order_id, r.instrument = symbol,
                              r.created_at = x.created_at, x.updated_at = now())::text
          FROM exchange.orders x WHERE x.order_id = o.order_id;
    END LOOP;
END $$;
SELECT cx_cancel('CXA-USD', false);
SELECT cx_cancel('CXB-USD', true);
SELECT count(*) AS cancels, count(DISTINCT result) > 10 AS varied FROM cx_done WHERE symbol = 'CXA-USD';
SELECT result FROM cx_done WHERE symbol = 'CXA-USD' ORDER BY k LIMIT 2;
SELECT (SELECT count(*) FROM (SELECT k, result FROM cx_done WHERE symbol = 'CXA-USD' EXCEPT ALL
                              SELECT k, result FROM cx_done WHERE symbol = 'CXB-USD') d) AS only_c,
       (SELECT count(*) FROM (SELECT k, result FROM cx_done WHERE symbol = 'CXB-USD' EXCEPT ALL
                              SELECT k, result FROM cx_done WHERE symbol = 'CXA-USD') d) AS only_plpgsql;

-- The rows: orders (in priority order) and the journal (the placed entries
-- without their ids; the cancel entries whole but for the order id, which
-- must be the entry's order).
CREATE FUNCTION cx_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'order ' || rank() OVER (ORDER BY o.priority) || ' ' || o.client_id || ' ' || o.side || ' ' || o.price
           || ' ' || o.quantity || ' ' || o.filled_quantity || ' ' || o.remaining_lots || ' ' || o.status || ' '
           || coalesce(o.cancel_reason, '-') || ' ' || (o.updated_at >= o.created_at)
      FROM exchange.orders o WHERE o.instrument = symbol
    UNION ALL
    SELECT 'event ' || e.seq || ' ' || e.kind || ' '
           || (e.payload - 'order_id' - CASE WHEN e.kind = 'order_placed' THEN 'trades' ELSE '-' END)::text || ' '
           || (e.payload ->> 'order_id' = e.order_id::text)
      FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = $1
$$;
SELECT (SELECT count(*) FROM cx_rows('CXA-USD') r WHERE r LIKE 'event % order_cancelled %') AS cancel_entries,
       (SELECT count(*) FROM (SELECT * FROM cx_rows('CXA-USD') EXCEPT ALL
                              SELECT replace(r, 'CXB-USD', 'CXA-USD') FROM cx_rows('CXB-USD') r) d) AS only_c,
       (SELECT count(*) FROM (SELECT replace(r, 'CXB-USD', 'CXA-USD') FROM cx_rows('CXB-USD') r EXCEPT ALL
                              SELECT * FROM cx_rows('CXA-USD')) d) AS only_plpgsql;
SELECT r FROM cx_rows('CXA-USD') r WHERE r LIKE 'event % order_cancelled %' ORDER BY r LIMIT 1;
SELECT (SELECT array_agg(b) FROM book('CXA-USD') b) = (SELECT array_agg(b) FROM book('CXB-USD') b) AS same_book,
       (SELECT count(*) FROM book('CXA-USD')) > 0 AS orders_left,
       healthy('CXA-USD'), healthy('CXB-USD');

-- The same errors: SQLSTATE and message, for each way a cancel is refused.
CREATE FUNCTION cx_nth(symbol text, wanted text, n int) RETURNS uuid LANGUAGE sql AS $$
    SELECT order_id FROM exchange.orders WHERE instrument = symbol AND status = wanted
     ORDER BY priority OFFSET n - 1 LIMIT 1
$$;
SELECT what, try(format($$SELECT exchange.cancel_order(%L, %L)$$, cx_nth('CXA-USD', st, 1), who)) AS c,
       try(format($$SELECT exchange._cancel_order(%L, %L)$$, cx_nth('CXB-USD', st, 1), who)) AS plpgsql
  FROM (VALUES ('cancelled twice', 'cancelled', NULL), ('filled', 'filled', NULL),
               ('another client''s', 'open', 'intruder')) v(what, st, who);
SELECT try($$SELECT exchange.cancel_order('00000000-0000-0000-0000-000000000000')$$) AS c,
       try($$SELECT exchange._cancel_order('00000000-0000-0000-0000-000000000000', NULL)$$) AS plpgsql;
SELECT try($$SELECT exchange.cancel_order(NULL)$$);
SELECT (SELECT array_agg(b) FROM book('CXA-USD') b) = (SELECT array_agg(b) FROM book('CXB-USD') b) AS same_book,
       healthy('CXA-USD');

-- ROLLBACK TO SAVEPOINT undoes a cancel: the row, the journal and the book.
CREATE TABLE cx_before AS SELECT b FROM book('CXA-USD') b;
BEGIN;
SAVEPOINT s;
SELECT status FROM exchange.cancel_order(cx_nth('CXA-USD', 'open', 1));
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS resting FROM exchange.orders WHERE instrument = 'CXA-USD' AND status IN ('open', 'partially_filled');
COMMIT;
SELECT count(*) AS resting FROM exchange.orders WHERE instrument = 'CXA-USD' AND status IN ('open', 'partially_filled');
SELECT (SELECT array_agg(b) FROM cx_before) = (SELECT array_agg(b) FROM book('CXA-USD') b) AS book_as_before,
       (SELECT max(seq) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
         WHERE i.symbol = 'CXA-USD') = (SELECT seq FROM exchange.stats() WHERE instrument = 'CXA-USD') AS journal_at_book,
       healthy('CXA-USD');

-- A BEFORE UPDATE trigger on orders: the row is written by the UPDATE
-- statement instead (the trigger sees it), with the same result. (The
-- trigger runs under the function's search_path: exchange, pg_catalog.)
CREATE TABLE cx_audit (n serial, info text);
CREATE FUNCTION cx_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.cx_audit (info) VALUES (OLD.status || ' -> ' || NEW.status || ' ' || NEW.cancel_reason);
    RETURN NEW;
END $$;
CREATE TRIGGER cx_before_update BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION cx_log();
SELECT row(c.client_id, c.price, c.quantity, c.filled_quantity, c.remaining_quantity, c.status, c.cancel_reason,
           c.seq)::text = row(p.client_id, p.price, p.quantity, p.filled_quantity, p.remaining_quantity, p.status,
                              p.cancel_reason, p.seq)::text AS same_result, c.status
  FROM exchange.cancel_order(cx_nth('CXA-USD', 'open', 1)) c, exchange._cancel_order(cx_nth('CXB-USD', 'open', 1), NULL) p;
SELECT info FROM cx_audit ORDER BY n;
DROP TRIGGER cx_before_update ON exchange.orders;
SELECT (SELECT count(*) FROM (SELECT * FROM cx_rows('CXA-USD') EXCEPT ALL
                              SELECT replace(r, 'CXB-USD', 'CXA-USD') FROM cx_rows('CXB-USD') r) d) AS only_c,
       healthy('CXA-USD'), healthy('CXB-USD');

-- Amends. A stream with three owners and every STP mode, on two more
-- instruments; then every resting order, oldest first, gets one of four
-- amends: a lower quantity (keeps its priority), a higher one (re-queued),
-- a price that crosses the book (trades, may meet its own orders) and a
-- price one tick inward; every other one names its owner.
SELECT symbol FROM exchange.create_instrument('AMA-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('AMB-USD', 0.01, 0.001);
CREATE FUNCTION am_stream(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT r.status FROM exchange.place_orders((
        SELECT jsonb_agg(jsonb_build_object(
                   'client_id', 'am' || (i % 3), 'instrument', symbol,
                   'side', CASE WHEN i % 2 = 0 THEN 'sell' ELSE 'buy' END, 'type', 'limit',
                   'price', CASE WHEN i % 2 = 0 THEN 100.05 + (i % 5) * 0.01 ELSE 100.04 - (i % 5) * 0.01 END,
                   'quantity', 0.5 + (i % 4) * 0.25,
                   'stp', (ARRAY['none', 'cancel_newest', 'cancel_oldest', 'cancel_both'])[1 + i % 4],
                   'post_only', i % 13 = 0)
                 ORDER BY i)
          FROM generate_series(1, 80) i)) r
$$;
SELECT count(*) AS placed, count(*) FILTER (WHERE s IN ('open', 'partially_filled')) > 30 AS resting
  FROM am_stream('AMA-USD') s;
SELECT count(*) AS placed FROM am_stream('AMB-USD');
CREATE FUNCTION am_amend(symbol text, reference boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o record;
    r exchange.order_result;
    k int := 0;
    q numeric;
    p numeric;
    who text;
BEGIN
    FOR o IN SELECT order_id, client_id, side, price FROM exchange.orders
              WHERE instrument = symbol AND status IN ('open', 'partially_filled') ORDER BY priority LOOP
        k := k + 1;
        -- an earlier amend may have traded with it
        CONTINUE WHEN (SELECT status FROM exchange.orders x WHERE x.order_id = o.order_id) NOT IN ('open', 'partially_filled');
        SELECT CASE k % 4 WHEN 0 THEN CASE WHEN x.remaining_lots >= 2 THEN x.quantity - (x.remaining_lots / 2) * 0.001
                                           ELSE x.quantity + 0.001 END
                          WHEN 1 THEN x.quantity + 0.25 END
          INTO q FROM exchange.orders x WHERE x.order_id = o.order_id;
        p := CASE k % 4 WHEN 2 THEN CASE WHEN o.side = 'buy' THEN 100.12 ELSE 99.97 END
                        WHEN 3 THEN o.price + CASE WHEN o.side = 'buy' THEN 0.01 ELSE -0.01 END END;
        who := CASE WHEN k % 2 = 0 THEN o.client_id END;
        BEGIN
            IF reference THEN
                r := exchange._amend_order(o.order_id, q, p, who);
            ELSE
                r := exchange.amend_order(o.order_id, q, p, who);
            END IF;
            INSERT INTO cx_done
            SELECT symbol, k, row(r.client_id, r.side, r.type, r.time_in_force, r.price, r.quantity,
                                  r.filled_quantity, r.remaining_quantity, r.status, r.reject_reason, r.cancel_reason,
                                  (SELECT jsonb_agg(t - 'trade_id' - 'maker_order_id') FROM jsonb_array_elements(r.trades) t),
                                  jsonb_array_length(r.trades), r.seq, r.reject_message, r.order_id = o.order_id,
                                  r.instrument = symbol, r.created_at = x.created_at, x.updated_at = now())::text
              FROM exchange.orders x WHERE x.order_id = o.order_id;
        EXCEPTION WHEN OTHERS THEN  -- e.g. post_only_would_take: must be the same on both sides
            INSERT INTO cx_done
            VALUES (symbol, k, SQLSTATE || ' ' || regexp_replace(SQLERRM, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}',
                                                                 '<uuid>', 'g'));
        END;
    END LOOP;
END $$;
SELECT am_amend('AMA-USD', false);
SELECT am_amend('AMB-USD', true);
SELECT count(*) AS amends,
       count(*) FILTER (WHERE result LIKE '%,t,t,t,t)') AS answered,
       count(*) FILTER (WHERE result LIKE '(%' AND result NOT LIKE '%,,0,%') AS traded,
       count(*) FILTER (WHERE result NOT LIKE '(%') AS refused
  FROM cx_done WHERE symbol = 'AMA-USD';
SELECT DISTINCT result FROM cx_done WHERE symbol = 'AMA-USD' AND result NOT LIKE '(%' ORDER BY 1;
SELECT (SELECT count(*) FROM (SELECT k, result FROM cx_done WHERE symbol = 'AMA-USD' EXCEPT ALL
                              SELECT k, result FROM cx_done WHERE symbol = 'AMB-USD') d) AS only_c,
       (SELECT count(*) FROM (SELECT k, result FROM cx_done WHERE symbol = 'AMB-USD' EXCEPT ALL
                              SELECT k, result FROM cx_done WHERE symbol = 'AMA-USD') d) AS only_plpgsql;

-- The rows: orders, trades (by sequence and rank) and the journal, whose
-- stp_cancelled lists engine order numbers (they differ between the
-- instruments: only their count is compared) and whose trades carry ids.
CREATE FUNCTION am_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'order ' || rank() OVER (ORDER BY o.order_no) || ' ' || o.client_id || ' ' || o.side || ' '
           || o.price || ' ' || o.price_ticks || ' ' || o.quantity || ' ' || o.quantity_lots || ' '
           || o.filled_quantity || ' ' || o.remaining_lots || ' ' || o.status || ' ' || coalesce(o.cancel_reason, '-')
           || ' ' || dense_rank() OVER (ORDER BY o.priority)
      FROM exchange.orders o WHERE o.instrument = symbol
    UNION ALL
    SELECT 'trade ' || t.seq || ' ' || t.price || ' ' || t.quantity || ' ' || t.buy_client_id || ' '
           || t.sell_client_id || ' ' || t.maker_side || ' ' || rank() OVER (PARTITION BY t.seq ORDER BY t.trade_no)
      FROM exchange.trades t WHERE t.instrument = symbol
    UNION ALL
    SELECT 'event ' || e.seq || ' ' || e.kind || ' '
           || (e.payload - 'order_id' - 'trades' - 'stp_cancelled')::text || ' stp '
           || coalesce(jsonb_array_length(e.payload -> 'stp_cancelled'), -1) || ' trades '
           || coalesce((SELECT jsonb_agg(t - 'trade_id' - 'maker_order_id')
                          FROM jsonb_array_elements(e.payload -> 'trades') t)::text, '-')
           || ' ' || (e.payload ->> 'order_id' = e.order_id::text)
      FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = $1
$$;
SELECT (SELECT count(*) FROM am_rows('AMA-USD') r WHERE r LIKE 'event % order_amended %') AS amend_entries,
       (SELECT count(*) FROM am_rows('AMA-USD') r WHERE r LIKE 'event % order_amended %"priority_kept": true%') > 0 AS some_kept,
       (SELECT count(*) FROM am_rows('AMA-USD') r WHERE r LIKE 'event % order_amended % stp 0 %') <
       (SELECT count(*) FROM am_rows('AMA-USD') r WHERE r LIKE 'event % order_amended %') AS some_stp,
       (SELECT count(*) FROM (SELECT * FROM am_rows('AMA-USD') EXCEPT ALL
                              SELECT replace(r, 'AMB-USD', 'AMA-USD') FROM am_rows('AMB-USD') r) d) AS only_c,
       (SELECT count(*) FROM (SELECT replace(r, 'AMB-USD', 'AMA-USD') FROM am_rows('AMB-USD') r EXCEPT ALL
                              SELECT * FROM am_rows('AMA-USD')) d) AS only_plpgsql;
SELECT (SELECT array_agg(b) FROM book('AMA-USD') b) = (SELECT array_agg(b) FROM book('AMB-USD') b) AS same_book,
       (SELECT count(*) FROM book('AMA-USD')) > 0 AS orders_left, healthy('AMA-USD'), healthy('AMB-USD');

-- The same errors for the ways an amend is refused (but for no_change's
-- message, which since 0.14 names the C one's stop_price too: the PL/pgSQL
-- reference has none).
SELECT what, try(format($$SELECT exchange.amend_order(%L, %s, %s, %L)$$, cx_nth('AMA-USD', st, 1), q, p, who)) AS c,
       try(format($$SELECT exchange._amend_order(%L, %s, %s, %L)$$, cx_nth('AMB-USD', st, 1), q, p, who)) AS plpgsql
  FROM (VALUES ('nothing to change', 'open', 'NULL', 'NULL', NULL),
               ('quantity off the lot', 'open', '1.0005', 'NULL', NULL),
               ('price off the tick', 'open', 'NULL', '100.001', NULL),
               ('negative price', 'open', 'NULL', '-1', NULL),
               ('NaN quantity', 'open', $q$'NaN'$q$, 'NULL', NULL),
               ('huge price', 'open', 'NULL', '1e30', NULL),
               ('quantity not above the filled part', 'partially_filled', '0.001', 'NULL', NULL),
               ('another client''s', 'open', '2', 'NULL', 'intruder'),
               ('filled', 'filled', '2', 'NULL', NULL),
               ('cancelled', 'cancelled', '2', 'NULL', NULL)) v(what, st, q, p, who);
SELECT try($$SELECT exchange.amend_order('00000000-0000-0000-0000-000000000000', 1)$$) AS c,
       try($$SELECT exchange._amend_order('00000000-0000-0000-0000-000000000000', 1, NULL, NULL)$$) AS plpgsql;
SELECT try($$SELECT exchange.amend_order(NULL, 1)$$);
SELECT (SELECT count(*) FROM (SELECT * FROM am_rows('AMA-USD') EXCEPT ALL
                              SELECT replace(r, 'AMB-USD', 'AMA-USD') FROM am_rows('AMB-USD') r) d) AS only_c,
       healthy('AMA-USD'), healthy('AMB-USD');

-- ROLLBACK TO SAVEPOINT undoes an amend that traded: rows, trades, journal, book.
CREATE TABLE am_before AS SELECT b FROM book('AMA-USD') b;
CREATE TABLE am_rows_before AS SELECT r FROM am_rows('AMA-USD') r;
BEGIN;
SAVEPOINT s;
SELECT status, jsonb_array_length(trades) > 0 AS traded
  FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE instrument = 'AMA-USD' AND side = 'buy'
                              AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 1),
                            price => 100.20);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT (SELECT array_agg(b) FROM am_before) = (SELECT array_agg(b) FROM book('AMA-USD') b) AS book_as_before,
       NOT EXISTS (SELECT r FROM am_rows('AMA-USD') r EXCEPT ALL SELECT r FROM am_rows_before) AS rows_as_before,
       healthy('AMA-USD');

-- With a BEFORE UPDATE trigger on orders the amended row and the makers are
-- written by UPDATE statements, with the same result and rows.
TRUNCATE cx_audit;
CREATE TRIGGER cx_before_update BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION cx_log();
SELECT row(c.price, c.quantity, c.filled_quantity, c.remaining_quantity, c.status, c.seq,
           jsonb_array_length(c.trades))::text = row(p.price, p.quantity, p.filled_quantity, p.remaining_quantity,
                                                     p.status, p.seq, jsonb_array_length(p.trades))::text AS same_result,
       jsonb_array_length(c.trades) > 0 AS traded
  FROM exchange.amend_order((SELECT order_id FROM exchange.orders WHERE instrument = 'AMA-USD' AND side = 'buy'
                              AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 1), price => 100.20) c,
       exchange._amend_order((SELECT order_id FROM exchange.orders WHERE instrument = 'AMB-USD' AND side = 'buy'
                              AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 1), NULL, 100.20, NULL) p;
SELECT count(*) AS row_updates FROM cx_audit;
DROP TRIGGER cx_before_update ON exchange.orders;
SELECT (SELECT count(*) FROM (SELECT * FROM am_rows('AMA-USD') EXCEPT ALL
                              SELECT replace(r, 'AMB-USD', 'AMA-USD') FROM am_rows('AMB-USD') r) d) AS only_c,
       healthy('AMA-USD'), healthy('AMB-USD');
DROP TABLE am_rows_before;
DROP TABLE am_before;
DROP FUNCTION am_rows(text);
DROP FUNCTION am_amend(text, boolean);
DROP FUNCTION am_stream(text);

-- cancel_orders: many cancels in one transaction, one result per id, in
-- order. On a twin instrument the same ids cancelled one by one with
-- cancel_order give the same results (a refusal there is the ERROR whose
-- reason and message the batch's 'rejected' row carries), rows and journal.
SELECT symbol FROM exchange.create_instrument('CBA-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('CBB-USD', 0.01, 0.001);
SELECT count(*) AS placed FROM cx_stream('CBA-USD');
SELECT count(*) AS placed FROM cx_stream('CBB-USD');
-- Two of every three resting orders, then a filled one, an unknown id, NULL
-- and the first id again.
CREATE FUNCTION cb_ids(symbol text) RETURNS uuid[] LANGUAGE sql AS $$
    SELECT (SELECT array_agg(order_id ORDER BY n) FROM (
                SELECT order_id, row_number() OVER (ORDER BY priority) AS n FROM exchange.orders
                 WHERE instrument = symbol AND status IN ('open', 'partially_filled')) r WHERE n % 3 <> 0)
    || (SELECT order_id FROM exchange.orders WHERE instrument = symbol AND status = 'filled' ORDER BY priority LIMIT 1)
    || ARRAY['00000000-0000-0000-0000-000000000000'::uuid, NULL]
    || (SELECT order_id FROM exchange.orders WHERE instrument = symbol AND status IN ('open', 'partially_filled')
         ORDER BY priority LIMIT 1)
$$;
CREATE FUNCTION cb_show(r exchange.order_result) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN r.status = 'rejected'
                THEN 'refused ' || r.reject_reason || ': '
                     || regexp_replace(r.reject_message, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
                     || ' ' || (r.client_id IS NULL AND r.seq IS NULL)
                ELSE row(r.client_id, r.price, r.quantity, r.filled_quantity, r.remaining_quantity, r.status,
                         r.cancel_reason, r.seq, r.reject_message)::text END
$$;
-- calls[i]: a call of a function returning exchange.order_result, each run
-- on its own; a refusal is shown as the batch shows it.
CREATE FUNCTION one_by_one(calls text[]) RETURNS TABLE (n bigint, result text) LANGUAGE plpgsql AS $$
DECLARE
    r exchange.order_result;
BEGIN
    FOR i IN 1 .. cardinality(calls) LOOP
        n := i;
        BEGIN
            EXECUTE 'SELECT * FROM ' || calls[i] INTO r;
            result := cb_show(r);
        EXCEPTION WHEN OTHERS THEN
            result := 'refused ' || regexp_replace(SQLERRM, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
                      || ' true';
        END;
        RETURN NEXT;
    END LOOP;
END $$;
CREATE TABLE cb_batch AS
SELECT n, result
  FROM unnest(ARRAY(SELECT cb_show(c) FROM exchange.cancel_orders(cb_ids('CBA-USD')) c)) WITH ORDINALITY AS u(result, n);
CREATE TABLE cb_single AS
SELECT * FROM one_by_one(ARRAY(SELECT format('exchange.cancel_order(%L)', id)
                                 FROM unnest(cb_ids('CBB-USD')) WITH ORDINALITY AS u(id, k) ORDER BY k));
SELECT count(*) AS results, count(*) FILTER (WHERE result LIKE 'refused %') AS refused FROM cb_batch;
SELECT n, result FROM cb_batch WHERE result LIKE 'refused %' ORDER BY n;
SELECT (SELECT count(*) FROM (SELECT * FROM cb_batch EXCEPT ALL SELECT * FROM cb_single) d) AS only_batch,
       (SELECT count(*) FROM (SELECT * FROM cb_single EXCEPT ALL SELECT * FROM cb_batch) d) AS only_one_by_one;
-- Twin instruments a (batch) and b (one by one): rows and journal entries
-- of only one of them, whether their books are the same, and both healthy.
CREATE FUNCTION twins(a text, b text) RETURNS TABLE (only_batch bigint, only_one_by_one bigint, same_book boolean,
                                                     healthy_a boolean, healthy_b boolean) LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM (SELECT * FROM cx_rows(a) EXCEPT ALL SELECT replace(r, b, a) FROM cx_rows(b) r) d),
           (SELECT count(*) FROM (SELECT replace(r, b, a) FROM cx_rows(b) r EXCEPT ALL SELECT * FROM cx_rows(a)) d),
           (SELECT array_agg(x) FROM book(a) x) IS NOT DISTINCT FROM (SELECT array_agg(x) FROM book(b) x),
           healthy(a), healthy(b)
$$;
SELECT * FROM twins('CBA-USD', 'CBB-USD');
-- client_id applies to every id; an empty array answers nothing; a NULL or
-- two-dimensional array is an ERROR; ROLLBACK undoes the whole batch.
SELECT status, reject_reason FROM exchange.cancel_orders(
    (SELECT array_agg(order_id ORDER BY priority) FROM exchange.orders
      WHERE instrument = 'CBA-USD' AND status IN ('open', 'partially_filled') AND client_id IN ('cx0', 'cx1')), 'cx1');
SELECT count(*) AS results FROM exchange.cancel_orders('{}');
SELECT try($$SELECT exchange.cancel_orders(NULL)$$);
SELECT try($$SELECT exchange.cancel_orders('{{00000000-0000-0000-0000-000000000000}}')$$);
CREATE TABLE cb_before AS SELECT b FROM book('CBB-USD') b;
BEGIN;
SELECT count(*) FILTER (WHERE status = 'cancelled') > 0 AS cancelled
  FROM exchange.cancel_orders((SELECT array_agg(order_id) FROM exchange.orders
                                WHERE instrument = 'CBB-USD' AND status IN ('open', 'partially_filled')));
ROLLBACK;
SELECT (SELECT array_agg(b) FROM cb_before) = (SELECT array_agg(b) FROM book('CBB-USD') b) AS book_as_before,
       healthy('CBB-USD');
DROP TABLE cb_before;
-- With a BEFORE UPDATE trigger on orders the batch's rows are written by
-- UPDATE statements (the trigger sees each cancel once), with the same
-- results; the repeated id is refused as after a cancel of its own.
TRUNCATE cx_audit;
CREATE TRIGGER cx_before_update BEFORE UPDATE ON exchange.orders FOR EACH ROW EXECUTE FUNCTION cx_log();
CREATE TABLE cb_three AS
SELECT array_agg(order_id ORDER BY priority) AS ids
  FROM (SELECT order_id, priority FROM exchange.orders WHERE instrument = 'CBB-USD'
          AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 3) o;
SELECT n, result
  FROM unnest(ARRAY(SELECT cb_show(c) FROM exchange.cancel_orders((SELECT ids || ids[1] FROM cb_three)) c))
       WITH ORDINALITY AS u(result, n);
SELECT info FROM cx_audit ORDER BY n;
DROP TRIGGER cx_before_update ON exchange.orders;
SELECT (SELECT array_agg(status || ' ' || cancel_reason ORDER BY priority) FROM exchange.orders
         WHERE order_id = ANY ((SELECT ids FROM cb_three)::uuid[])) AS rows,
       (SELECT count(*) FROM exchange.events
         WHERE kind = 'order_cancelled' AND order_id = ANY ((SELECT ids FROM cb_three)::uuid[])) AS journal,
       healthy('CBB-USD');
DROP TABLE cb_three;

-- cancel_orders(order_ids, client_ids) (0.9): each id with its own client
-- (NULL: no ownership check). On a twin instrument the same ids cancelled
-- one by one with cancel_order(id, client) give the same results, rows and
-- journal: ids named with their owner, with no client, with another
-- client (cx0..cx3 are each the owner of some), a filled one, an unknown
-- id, NULL and the first id again.
SELECT symbol FROM exchange.create_instrument('CBC-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('CBD-USD', 0.01, 0.001);
SELECT count(*) AS placed FROM cx_stream('CBC-USD');
SELECT count(*) AS placed FROM cx_stream('CBD-USD');
CREATE FUNCTION cb_each(symbol text) RETURNS TABLE (id uuid, client text, k bigint) LANGUAGE sql AS $$
    SELECT u.id, CASE u.k % 3 WHEN 0 THEN o.client_id WHEN 1 THEN NULL ELSE 'cx' || (u.k % 4) END, u.k
      FROM unnest(cb_ids(symbol)) WITH ORDINALITY AS u(id, k) LEFT JOIN exchange.orders o ON o.order_id = u.id
$$;
CREATE TABLE cb_each_batch AS
SELECT n, result
  FROM unnest(ARRAY(SELECT cb_show(c) FROM exchange.cancel_orders(
                        (SELECT array_agg(id ORDER BY k) FROM cb_each('CBC-USD')),
                        (SELECT array_agg(client ORDER BY k) FROM cb_each('CBC-USD'))) c)) WITH ORDINALITY AS u(result, n);
CREATE TABLE cb_each_single AS
SELECT * FROM one_by_one(ARRAY(SELECT format('exchange.cancel_order(%L, %L)', id, client)
                                 FROM cb_each('CBD-USD') ORDER BY k));
SELECT count(*) AS results, count(*) FILTER (WHERE result LIKE 'refused %') AS refused,
       count(*) FILTER (WHERE result LIKE 'refused not_order_owner%') AS not_owner FROM cb_each_batch;
SELECT (SELECT count(*) FROM (SELECT * FROM cb_each_batch EXCEPT ALL SELECT * FROM cb_each_single) d) AS only_batch,
       (SELECT count(*) FROM (SELECT * FROM cb_each_single EXCEPT ALL SELECT * FROM cb_each_batch) d) AS only_one_by_one;
SELECT * FROM twins('CBC-USD', 'CBD-USD');
-- Arrays of different lengths, a NULL or two-dimensional client_ids: ERROR,
-- nothing cancelled. A call with one client (or NULL, or none) is still the
-- one-client form.
SELECT try(format('SELECT exchange.cancel_orders(%L::uuid[], %L::text[])',
                  (SELECT array_agg(order_id) FROM exchange.orders WHERE instrument = 'CBC-USD'
                      AND status IN ('open', 'partially_filled')), '{cx1}'));
SELECT try($$SELECT exchange.cancel_orders('{}'::uuid[], NULL::text[])$$);
SELECT try($$SELECT exchange.cancel_orders('{00000000-0000-0000-0000-000000000000}'::uuid[], '{{cx1}}'::text[])$$);
SELECT count(*) AS still_resting FROM exchange.orders
 WHERE instrument = 'CBC-USD' AND status IN ('open', 'partially_filled');
SELECT (SELECT count(*) FROM exchange.cancel_orders('{}', NULL)) AS one_client_null,
       (SELECT count(*) FROM exchange.cancel_orders('{}', 'cx1')) AS one_client,
       (SELECT count(*) FROM exchange.cancel_orders('{}'::uuid[], '{}'::text[])) AS each_empty;
DROP TABLE cb_each_batch;
DROP TABLE cb_each_single;
DROP FUNCTION cb_each(text);

-- amend_orders: many amends in one transaction, one result per item, in
-- order. On a twin instrument the same items applied one by one with
-- amend_order give the same results (a refusal there is the ERROR whose
-- reason and message the batch's 'rejected' row carries), rows, journal and
-- book: quantity up (re-queued), quantity down (kept), a new price (some
-- trade), both, another client's order, a filled order, an unknown id, the
-- first resting order again (it sees the first item's amend) and with
-- neither (no_change), a partially filled order down to its filled quantity.
SELECT symbol FROM exchange.create_instrument('ABA-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('ABB-USD', 0.01, 0.001);
SELECT count(*) AS placed FROM cx_stream('ABA-USD');
SELECT count(*) AS placed FROM cx_stream('ABB-USD');
CREATE FUNCTION ab_items(symbol text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(item ORDER BY k) FROM (
        SELECT n AS k, CASE n % 6
                 WHEN 0 THEN jsonb_build_object('order_id', order_id, 'quantity', quantity + 0.25)
                 WHEN 1 THEN jsonb_build_object('order_id', order_id, 'quantity', (quantity + filled_quantity) / 2 + 0.001)
                 WHEN 2 THEN jsonb_build_object('order_id', order_id,
                                                'price', (price + CASE side WHEN 'buy' THEN 0.03 ELSE -0.03 END)::text)
                 WHEN 3 THEN jsonb_build_object('order_id', order_id, 'quantity', quantity + 0.5, 'price', price - 0.01,
                                                'client_id', client_id)
                 WHEN 4 THEN jsonb_build_object('order_id', order_id, 'price', price, 'client_id', 'someone')
                 ELSE jsonb_build_object('order_id', order_id, 'quantity', greatest(filled_quantity, 0.001),
                                         'client_id', client_id)
               END AS item
          FROM (SELECT *, row_number() OVER (ORDER BY priority) AS n FROM exchange.orders
                 WHERE instrument = symbol AND status IN ('open', 'partially_filled')) r
        UNION ALL
        (SELECT 1000, jsonb_build_object('order_id', order_id, 'quantity', 1) FROM exchange.orders
          WHERE instrument = symbol AND status = 'filled' AND remaining_lots = 0 ORDER BY priority LIMIT 1)
        UNION ALL
        SELECT 1001, '{"order_id": "00000000-0000-0000-0000-000000000000", "price": 1}'::jsonb
        UNION ALL
        (SELECT 1002, jsonb_build_object('order_id', order_id, 'price', price + 0.01) FROM exchange.orders
          WHERE instrument = symbol AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 1)
        UNION ALL
        (SELECT 1003, jsonb_build_object('order_id', order_id) FROM exchange.orders
          WHERE instrument = symbol AND status IN ('open', 'partially_filled') ORDER BY priority LIMIT 1)
        UNION ALL
        (SELECT 1004, jsonb_build_object('order_id', order_id, 'quantity', filled_quantity) FROM exchange.orders
          WHERE instrument = symbol AND status = 'partially_filled' ORDER BY priority LIMIT 1)
    ) i
$$;
CREATE TABLE ab_batch AS
SELECT n, result
  FROM unnest(ARRAY(SELECT cb_show(a) FROM exchange.amend_orders(ab_items('ABA-USD')) a)) WITH ORDINALITY AS u(result, n);
CREATE TABLE ab_single AS
SELECT * FROM one_by_one(ARRAY(SELECT format('exchange.amend_order(%L::uuid, %L::numeric, %L::numeric, %L)',
                                             i ->> 'order_id', i ->> 'quantity', i ->> 'price', i ->> 'client_id')
                                 FROM jsonb_array_elements(ab_items('ABB-USD')) WITH ORDINALITY AS u(i, k) ORDER BY k));
SELECT count(*) AS results, count(*) FILTER (WHERE result LIKE 'refused %') AS refused FROM ab_batch;
SELECT n, result FROM ab_batch WHERE result LIKE 'refused %' ORDER BY n;
SELECT (SELECT count(*) FROM (SELECT * FROM ab_batch EXCEPT ALL SELECT * FROM ab_single) d) AS only_batch,
       (SELECT count(*) FROM (SELECT * FROM ab_single EXCEPT ALL SELECT * FROM ab_batch) d) AS only_one_by_one;
SELECT t.*,
       (SELECT count(*) FROM cx_rows('ABA-USD') r WHERE r LIKE 'event % order_amended %') AS amend_entries,
       (SELECT count(*) FROM exchange.trades WHERE instrument = 'ABA-USD') =
       (SELECT count(*) FROM exchange.trades WHERE instrument = 'ABB-USD') AS same_trades
  FROM twins('ABA-USD', 'ABB-USD') t;
-- A batch's amends that change no other order are written together, later,
-- and its orders' rows are read once, before the first: an amend that trades
-- with such an order, or amends it again, must see it written, and an amend
-- of an order an earlier one traded with must see that trade. On twins: the
-- first ask up (staged), the second down (staged), a bid whose new price
-- takes both and half the third ask, the first ask again (filled now), the
-- third ask up (half filled now), the second bid up twice.
SELECT symbol FROM exchange.create_instrument('ABE-USD', 0.01, 0.001);
SELECT symbol FROM exchange.create_instrument('ABF-USD', 0.01, 0.001);
CREATE FUNCTION ab_id(symbol text, client text) RETURNS uuid LANGUAGE sql AS $$
    SELECT order_id FROM exchange.orders WHERE instrument = symbol AND client_id = client
$$;
CREATE FUNCTION ab_cross(symbol text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_array(
        jsonb_build_object('order_id', ab_id(symbol, 'ask1'), 'quantity', 3),
        jsonb_build_object('order_id', ab_id(symbol, 'ask2'), 'quantity', 0.5),
        jsonb_build_object('order_id', ab_id(symbol, 'bid1'), 'quantity', 4, 'price', 101.02),
        jsonb_build_object('order_id', ab_id(symbol, 'ask1'), 'quantity', 5),
        jsonb_build_object('order_id', ab_id(symbol, 'ask3'), 'quantity', 2),
        jsonb_build_object('order_id', ab_id(symbol, 'bid2'), 'quantity', 2),
        jsonb_build_object('order_id', ab_id(symbol, 'bid2'), 'quantity', 3))
$$;
SELECT count(*) AS placed
  FROM unnest(ARRAY['ABE-USD', 'ABF-USD']) s,
       LATERAL (VALUES ('ask1', 'sell', 101.00), ('ask2', 'sell', 101.01), ('ask3', 'sell', 101.02),
                       ('bid1', 'buy', 100.00), ('bid2', 'buy', 99.99)) v(client, side, price),
       LATERAL exchange.place_order(client, s, side, 'limit', 1, price) r;
SELECT n, result
  FROM unnest(ARRAY(SELECT cb_show(a) FROM exchange.amend_orders(ab_cross('ABE-USD')) a)) WITH ORDINALITY AS u(result, n);
SELECT * FROM one_by_one(ARRAY(SELECT format('exchange.amend_order(%L::uuid, %L::numeric, %L::numeric)',
                                             i ->> 'order_id', i ->> 'quantity', i ->> 'price')
                                 FROM jsonb_array_elements(ab_cross('ABF-USD')) WITH ORDINALITY AS u(i, k) ORDER BY k));
SELECT r FROM cx_rows('ABE-USD') r WHERE r LIKE 'order %' ORDER BY r;
-- (The journal entries' trades name each twin's own ids.)
CREATE FUNCTION ab_rows(symbol text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT regexp_replace(replace(r, symbol, 'ABE-USD'), '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<uuid>', 'g')
      FROM cx_rows(symbol) r
$$;
SELECT (SELECT count(*) FROM ab_rows('ABE-USD')) AS rows,
       (SELECT count(*) FROM (SELECT * FROM ab_rows('ABE-USD') EXCEPT ALL SELECT * FROM ab_rows('ABF-USD')) d) AS only_batch,
       (SELECT count(*) FROM (SELECT * FROM ab_rows('ABF-USD') EXCEPT ALL SELECT * FROM ab_rows('ABE-USD')) d)
         AS only_one_by_one,
       (SELECT array_agg(b) FROM book('ABE-USD') b) = (SELECT array_agg(b) FROM book('ABF-USD') b) AS same_book,
       healthy('ABE-USD'), healthy('ABF-USD');
DROP FUNCTION ab_rows(text);
DROP FUNCTION ab_cross(text);
DROP FUNCTION ab_id(text, text);
-- Items the one-by-one form cannot even be called with; an empty array
-- answers nothing; a NULL or non-array argument is an ERROR; ROLLBACK undoes
-- the whole batch.
SELECT status, reject_reason, reject_message FROM exchange.amend_orders(
    '[7, {}, {"order_id": null}, {"order_id": "nope", "price": 1}, {"order_id": "{00000000000000000000000000000000}", "price": 1}]');
SELECT count(*) AS results FROM exchange.amend_orders('[]');
SELECT try($$SELECT exchange.amend_orders(NULL)$$);
SELECT try($$SELECT exchange.amend_orders('{"order_id": "00000000-0000-0000-0000-000000000000"}')$$);
CREATE TABLE ab_before AS SELECT b FROM book('ABB-USD') b;
BEGIN;
SELECT count(*) FILTER (WHERE status <> 'rejected') > 0 AS amended
  FROM exchange.amend_orders((SELECT jsonb_agg(jsonb_build_object('order_id', order_id, 'quantity', quantity + 1))
                                FROM exchange.orders WHERE instrument = 'ABB-USD' AND status IN ('open', 'partially_filled')));
ROLLBACK;
SELECT (SELECT array_agg(b) FROM ab_before) = (SELECT array_agg(b) FROM book('ABB-USD') b) AS book_as_before,
       healthy('ABB-USD');
DROP TABLE ab_before;
DROP TABLE ab_batch;
DROP TABLE ab_single;
DROP FUNCTION ab_items(text);
DROP TABLE cb_single;
DROP TABLE cb_batch;
DROP FUNCTION one_by_one(text[]);
DROP FUNCTION twins(text, text);
DROP FUNCTION cb_show(exchange.order_result);
DROP FUNCTION cb_ids(text);

DROP FUNCTION cx_log();
DROP TABLE cx_audit;
DROP TABLE cx_before;
DROP FUNCTION cx_nth(text, text, int);
DROP FUNCTION cx_rows(text);
DROP FUNCTION cx_cancel(text, boolean);
DROP TABLE cx_done;
DROP FUNCTION cx_stream(text);

-- 0.8's exchange.journal_entries: the entries of exchange.journal(), every
-- instrument's; a placed or rejected order's row is not read (its payload
-- has side and type: NULL columns), a cancel's or amend's is, as there.
WITH f AS (SELECT i.instrument_id, f.* FROM exchange.instruments i,
                  exchange.journal(i.instrument_id, 0, 1000000000, 1000000000) f)
SELECT coalesce(f.kind, v.kind) AS kind, count(f.seq) AS in_function, count(v.seq) AS in_view,
       count(*) FILTER (WHERE v.payload = f.payload AND v.created_us = f.created_us AND v.order_id IS NOT NULL
                          AND CASE WHEN v.kind IN ('order_placed', 'order_rejected')
                                   THEN num_nulls(v.side, v.type, v.price, v.quantity, v.filled_quantity) = 5
                                        AND v.payload->>'side' = f.side AND v.payload->>'type' = f.type
                                   ELSE (v.side, v.type, v.price, v.quantity, v.filled_quantity)
                                        IS NOT DISTINCT FROM (f.side, f.type, f.price, f.quantity, f.filled_quantity)
                              END) AS agree
  FROM f FULL JOIN exchange.journal_entries v ON v.instrument_id = f.instrument_id AND v.seq = f.seq
 GROUP BY 1 ORDER BY 1;
-- Read as the feed reads it (a prepared statement, generic plan): the orders'
-- index is probed for the cancels and amends only.
SET plan_cache_mode = force_generic_plan;
PREPARE read_journal(int, bigint, bigint, int) AS
  SELECT seq, kind, side FROM exchange.journal_entries
   WHERE instrument_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4;
EXPLAIN (COSTS OFF) EXECUTE read_journal(1, 0, 10, 10);
DEALLOCATE read_journal;
RESET plan_cache_mode;
