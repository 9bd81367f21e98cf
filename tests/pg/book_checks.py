"""What every suite that trades checks afterwards (sql_fuzz.py,
concurrency_test.py): the books against their tables, the journals, and
the fills against the trades."""


def consistency_problems(conn):
    """(verify's problems, instruments whose journal has a gap, orders whose
    filled quantity differs from their trades); all empty or 0 when healthy."""
    problems = conn.execute("SELECT i.symbol, v.problem FROM exchange.instruments i, "
                            "exchange.verify(i.symbol) v").fetchall()
    gaps = conn.execute("SELECT instrument_id FROM exchange.events GROUP BY instrument_id "
                        "HAVING count(*) <> max(seq) OR min(seq) <> 1").fetchall()
    fills = conn.execute("SELECT count(*) FROM exchange.orders o WHERE o.filled_quantity <> coalesce("
                         "(SELECT sum(t.quantity) FROM exchange.trades t "
                         "WHERE o.order_id IN (t.buy_order_id, t.sell_order_id)), 0)").fetchone()[0]
    return problems, gaps, fills


def _reached(side, last, stop):
    return last is not None and (last >= stop if side == "buy" else last <= stop)


def stop_problems(conn, limit=10):
    """Stop orders against the journal (0.13, moves of their stop price 0.14):
    replaying each instrument's entries with the last trade price after each,
    a stop order is pending from its entry 'order_placed' or 'order_amended'
    with status pending, at that entry's stop_price (so a move replaces its
    stop), until its 'order_cancelled' or 'order_triggered'; it must trigger
    only when the last price before that entry reaches its current stop
    (buy: >=, sell: <=), at that stop, and at the end of every command's run
    (its entry and the triggered ones right after it) no pending stop may be
    reached by the last price; the pending ones at the end are the rows with
    status 'pending'. Returns up to `limit` problems (empty when healthy)."""
    sides = dict(conn.execute("SELECT order_id, side FROM exchange.orders WHERE stop_price IS NOT NULL").fetchall())
    last_trade = {(i, s): p for i, s, p in conn.execute(
        "SELECT DISTINCT ON (instrument_id, seq) instrument_id, seq, price FROM exchange.trades "
        "ORDER BY instrument_id, seq, trade_no DESC").fetchall()}
    entries = conn.execute("SELECT instrument_id, seq, kind, order_id, payload->>'status', "
                           "(payload->>'stop_price')::numeric FROM exchange.events "
                           "WHERE instrument_id IN (SELECT instrument_id FROM exchange.instruments) "
                           "ORDER BY instrument_id, seq").fetchall()
    problems, pending, last, inst = [], {}, None, None
    for n, (i, seq, kind, oid, status, stop) in enumerate(entries):
        if i != inst:
            inst, last, pending = i, None, {}
        before = last
        last = last_trade.get((i, seq), last)
        if kind == "order_triggered":
            if oid not in pending:
                problems.append(f"instrument {i} seq {seq}: {oid} triggered while not pending")
            else:
                current = pending.pop(oid)
                if stop != current or not _reached(sides[oid], before, current):
                    problems.append(f"instrument {i} seq {seq}: {oid} ({sides[oid]}) triggered at stop {stop}, "
                                    f"its stop {current}, the last price before {before}")
        elif kind == "order_cancelled":
            pending.pop(oid, None)
        elif kind in ("order_placed", "order_amended") and oid in sides and stop is not None:
            if status == "pending":
                pending[oid] = stop
            elif oid in pending:
                problems.append(f"instrument {i} seq {seq}: pending {oid} {kind} with status {status}")
                pending.pop(oid)
        run_ends = n + 1 == len(entries) or entries[n + 1][0] != i or entries[n + 1][2] != "order_triggered"
        if run_ends:
            for o, s in pending.items():
                if _reached(sides[o], last, s):
                    problems.append(f"instrument {i} seq {seq}: {o} ({sides[o]}) still pending at stop {s} "
                                    f"after the last price {last}")
        if n + 1 == len(entries) or entries[n + 1][0] != i:
            rows = {o for o, in conn.execute("SELECT order_id FROM exchange.orders WHERE instrument_id = %s "
                                             "AND status = 'pending'", (i,)).fetchall()}
            if rows != set(pending):
                problems.append(f"instrument {i}: pending by the journal {len(pending)}, by the rows {len(rows)} "
                                f"({len(rows ^ set(pending))} differ)")
        if len(problems) >= limit:
            break
    return problems


def iceberg_stop_problems(conn, limit=10):
    """Stop-limit icebergs (a stop-limit GTC order with a display_quantity,
    since 2026-12-07): a pending one shows nothing (its row's visible_lots
    0, its display_lots set); every 'order_placed' and 'order_triggered'
    entry of a stop order carries its display_quantity (none for one without);
    and each instrument's journal gives its book back (orderbook_at equals
    orderbook), so the level a triggered iceberg's entry lists holds its tip,
    not all it rests. (verify compares a resting iceberg's visible_lots with
    the book.) Returns up to `limit` problems (empty when healthy)."""
    problems = [f"pending stop {oid} with display_quantity {dq}: display_lots {dl}, visible_lots {vl}"
                for oid, dq, dl, vl in conn.execute(
                    "SELECT order_id, display_quantity, display_lots, visible_lots FROM exchange.orders "
                    "WHERE status = 'pending' AND display_quantity IS NOT NULL "
                    "AND (display_lots IS NULL OR visible_lots IS DISTINCT FROM 0) LIMIT %s", (limit,)).fetchall()]
    problems += [f"instrument {i} seq {seq}: {kind} of stop order {oid} has display_quantity {journal}, "
                 f"its row {row}" for i, seq, kind, oid, journal, row in conn.execute(
                     "SELECT e.instrument_id, e.seq, e.kind, o.order_id, e.payload->>'display_quantity', "
                     "o.display_quantity FROM exchange.events e JOIN exchange.orders o USING (order_id) "
                     "WHERE o.stop_price IS NOT NULL AND e.kind IN ('order_placed', 'order_triggered') "
                     "AND (e.payload->>'display_quantity')::numeric IS DISTINCT FROM o.display_quantity "
                     "ORDER BY e.instrument_id, e.seq LIMIT %s", (limit,)).fetchall()]
    problems += [f"{symbol}: {n} levels differ between orderbook_at and orderbook" for symbol, n in conn.execute(
        "SELECT i.symbol, (SELECT count(*) FROM ((SELECT * FROM exchange.orderbook_at(i.symbol, depth => 100000) "
        "EXCEPT ALL SELECT * FROM exchange.orderbook(i.symbol, 100000)) UNION ALL "
        "(SELECT * FROM exchange.orderbook(i.symbol, 100000) "
        "EXCEPT ALL SELECT * FROM exchange.orderbook_at(i.symbol, depth => 100000))) d) "
        "FROM exchange.instruments i ORDER BY i.symbol").fetchall() if n]
    return problems[:limit]
