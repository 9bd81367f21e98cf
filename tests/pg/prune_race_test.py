"""Pruning (0.17) while trading and settlement go on.

As in settlement_race_test.py, four sessions trade three instruments in
batches, each transaction stamped by its session's own clock (the journal's
and the trades' time columns default to the setting race.now), the clocks
crossing three midnights at their own pace and now and then a few minutes
back; two sessions call settle() on the dates the traders are on or have
just left. The traders also rest orders away from the price that sweeps
(IOC) fill on later dates, place stop orders (pending until a trade reaches
them), cancel some of their resting orders, and place orders with
self-trade prevention cancel_oldest (entries with stp_cancelled). Two more
sessions call prune() on the dates settled so far (the latest or the day
before), racing the traders, the settlers and each other, until the
traders are two thirds through (the trading then goes on to later dates).

Afterwards everything is settled through 2020-01-09, and for each
instrument, both as the prunes during the trading left it and after one
more prune() through a date D before the last (after what those pruned if
the dates allow): after its pruned sequence (the last entry prune removed)
the journal is whole up to its head and ends at its last settled entry; at
or before it only prune's two kept entries may remain (the newest entry,
the newest with a trade: now, if the last prune pruned it); every order an
entry after it names (as its order, a maker of its trades, an order_no its
STP cancelled) exists; every order's filled_quantity is the sum of its
trades; no trade remains whose two orders are gone; verify() is empty.
After the last prune also: the orders not finished before it are all
there, unchanged, and verify() is empty after rebuild(); the journal's last
trade price is the last trade's; orderbook_at() at the head equals
orderbook(), works at the pruned sequence and refuses the entry before it
(55000 pruned); reconcile() is empty, reconcile(D) refused (55000 pruned),
settlement(D) still answers; and something was pruned. Every prune() and
settle() call must succeed.

Usage: prune_race_test.py DSN [transactions per trader]
(the database must not have the extension)
"""
import datetime
import random
import sys
import threading
import time

import psycopg

from race_clock import LAST_DATE, first_clock, prepare, race, stamped, tick

INSTRUMENTS = ["P1", "P2", "P3"]
UNFINISHED = ("open", "partially_filled", "pending")


def fail(message):
    print(f"prune race: {message}", file=sys.stderr)
    sys.exit(1)


def order(rng, client, symbol):
    """One order of a batch: mostly near the price, some resting away from
    it, some sweeping through to it, some stops; a third with STP."""
    side = rng.choice(["buy", "sell"])
    sign = 1 if side == "buy" else -1
    o = {"client_id": client, "instrument": symbol, "side": side, "type": "limit", "quantity": rng.randrange(1, 5)}
    roll = rng.random()
    if roll < 0.08:  # rests away from the price until a sweep of a later date
        o["price"] = str(100 - sign * rng.randrange(5, 9) / 2)
    elif roll < 0.12:  # a sweep: takes what rests up to 4.5 away, the rest cancelled
        o.update(price=str(100 + sign * 4.5), quantity=rng.randrange(8, 20), time_in_force="ioc")
    elif roll < 0.15:  # a stop-limit order, pending until a trade reaches its stop
        stop = 100 + sign * rng.randrange(3, 8) / 2
        o.update(stop_price=str(stop), price=str(stop + sign))
    else:
        o["price"] = str(100 + rng.randrange(-4, 5) / 2)
    if rng.random() < 0.3:
        o["stp"] = "cancel_oldest"
    return o


def main():
    dsn = sys.argv[1]
    per_trader = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    prepare(dsn, INSTRUMENTS)

    errors = []
    clocks = {}
    settled = []
    progress = [0] * 4  # each trader's transactions so far
    done = threading.Event()

    def trader(n):
        rng = random.Random(1000 + n)
        clock = first_clock(rng)
        resting = {s: [] for s in INSTRUMENTS}  # this session's orders that may still rest or wait
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for _ in range(per_trader):
                    clock, stamp = tick(rng, clock)
                    clocks[n] = clock
                    symbol = rng.choice(INSTRUMENTS)
                    orders = [order(rng, f"t{n}c{rng.randrange(3)}", symbol) for _ in range(rng.randrange(1, 10))]
                    mine = resting[symbol]
                    cancel = []
                    if mine and rng.random() < 0.25:
                        cancel = rng.sample(mine, min(len(mine), rng.randrange(1, 4)))
                    with c.transaction():
                        stamped(c, stamp)
                        if cancel:
                            # One instrument a transaction; an order filled or
                            # cancelled since gets a 'rejected' row, no error.
                            c.execute("SELECT count(*) FROM exchange.cancel_orders(%s::uuid[])", (cancel,))
                        placed = c.execute("SELECT order_id, status FROM exchange.place_orders(%s::jsonb)",
                                           (psycopg.types.json.Jsonb(orders),)).fetchall()
                        if rng.random() < 0.1:
                            time.sleep(rng.random() * 0.005)
                    mine[:] = [i for i in mine if i not in cancel][-30:]
                    mine.extend(i for i, status in placed if status in UNFINISHED)
                    progress[n] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"trader {n}: {e!r}")

    pruned = []

    def pruner(n):
        rng = random.Random(3000 + n)
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                # Till the slowest trader is two thirds through: the trading goes on
                # to later dates, where the last prune (through D) has work left.
                while not done.is_set() and min(progress) < per_trader * 2 // 3:
                    time.sleep(rng.random() * 0.05)
                    # Settled dates only grow: the date is still settled when prune() runs.
                    (through,), = c.execute("SELECT max(through) FROM exchange.settlement_runs").fetchall()
                    if through is None:
                        continue
                    day = through - datetime.timedelta(days=rng.randrange(0, 2))
                    rows = c.execute("SELECT instrument, entries, trades, orders FROM exchange.prune(%s)",
                                     (day,)).fetchall()
                    pruned.append((day, rows))
        except Exception as e:  # noqa: BLE001
            errors.append(f"pruner {n}: {e!r}")

    race(dsn, trader, [lambda n=n: pruner(n) for n in range(2)], clocks, done, settled, errors, fail)
    prunes_during = sum(1 for _, rows in pruned if rows)
    if prunes_during == 0:
        fail(f"no prune() call during the trading removed anything ({len(pruned)} calls): the race did not happen")

    with psycopg.connect(dsn, autocommit=True) as c:
        q = lambda sql, *args: c.execute(sql, args).fetchall()  # noqa: E731

        def refused(sql, *args):
            """The error (SQLSTATE, message) of a statement that must fail, or None."""
            try:
                c.execute(sql, args).fetchall()
            except psycopg.Error as e:
                return e.sqlstate, e.diag.message_primary or str(e)
            return None

        def kept(stage, final):
            """Checks 1 to 4 and verify() for each instrument after `stage`
            (`final`: the instruments the last prune() call pruned, by id);
            returns the STP cancels named after the pruned entries and the
            makers placed at or before them that traded after them."""
            stp = makers = 0
            for iid, symbol, _tick in instruments:
                where = f"{symbol} {stage}"
                (ps,), = q("SELECT exchange._pruned_seq(%s)", iid)
                (head,), = q("SELECT exchange._journal_head(%s)", iid)
                (last_settled,), = q("SELECT max(to_seq) FROM exchange.settlement_days WHERE instrument_id = %s",
                                     iid)
                (newest_trade,), = q("SELECT max(seq) FROM exchange.events WHERE instrument_id = %s"
                                     " AND payload->'trades'->-1 IS NOT NULL", iid)

                # 1. The journal: whole after the pruned entry, the kept entries at or before it.
                if head != last_settled:
                    fail(f"{where}: the journal ends at entry {head}, the last settled entry is {last_settled}")
                (n, lo, hi), = q("SELECT count(*), min(seq), max(seq) FROM exchange.events"
                                 " WHERE instrument_id = %s AND seq > %s", iid, ps)
                if n != head - ps or (n and (lo, hi) != (ps + 1, head)):
                    fail(f"{where}: after the pruned entry {ps} the journal has {n} entries from {lo} to {hi}, "
                         f"not {head - ps} from {ps + 1} to {head}")
                remain = q("SELECT seq, payload->'trades'->-1 IS NOT NULL FROM exchange.events"
                           " WHERE instrument_id = %s AND seq <= %s ORDER BY seq", iid, ps)
                # The instrument's last prune kept its head then (the pruned
                # entry itself if nothing came after it yet) and its newest
                # entry with a trade then (if at or before the pruned entry,
                # the newest there): one with a trade besides the pruned entry
                # at most, none if that has a trade.
                others = [(seq, traded) for seq, traded in remain if seq != ps]
                if len(others) > 1 or not all(traded for _, traded in others) or (others and remain[-1] == (ps, True)):
                    fail(f"{where}: at or before the pruned entry {ps} remain the entries {remain} (seq, has a "
                         "trade): more than the newest entry and the newest with a trade")
                if final.get(iid) == ps:
                    # Pruned after the trading: what remains there is the head or the newest with a trade.
                    stray = [seq for seq, _ in remain if seq not in (head, newest_trade)]
                    if stray:
                        fail(f"{where}: entries {stray} remain at or before the pruned entry {ps}, neither the head "
                             f"{head} nor the newest entry with a trade {newest_trade}")
                if newest_trade is None:
                    fail(f"{where}: no entry with a trade remains")

                # 2. The orders the entries after the pruned one name.
                missing = q("""
                    WITH tail AS (
                        SELECT seq, order_id, payload FROM exchange.events WHERE instrument_id = %s AND seq > %s
                    ), named AS (
                        SELECT seq, 'order' AS how, order_id FROM tail
                        UNION ALL
                        SELECT t.seq, 'maker', (x->>'maker_order_id')::uuid FROM tail t
                         CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'trades', '[]')) AS x
                    )
                    SELECT seq, how, order_id::text FROM named n
                     WHERE NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = n.order_id)
                     ORDER BY seq""", iid, ps)
                missing += q("""
                    SELECT e.seq, 'stp_cancelled', n FROM exchange.events e
                     CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(e.payload->'stp_cancelled', '[]')) AS n
                     WHERE e.instrument_id = %s AND e.seq > %s
                       AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_no = n::bigint)
                     ORDER BY e.seq""", iid, ps)
                if missing:
                    fail(f"{where}: entries after the pruned entry {ps} name orders that are gone "
                         f"(seq, as, order): {missing[:5]}")
                # 2b. And prune left none it should have removed: every finished order is named after it.
                leftover = q("""
                    WITH tail AS (
                        SELECT order_id, payload FROM exchange.events WHERE instrument_id = %s AND seq > %s
                    ), named AS (
                        SELECT order_id FROM tail
                        UNION
                        SELECT (x->>'maker_order_id')::uuid FROM tail t
                         CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'trades', '[]')) AS x
                        UNION
                        SELECT o.order_id FROM tail t
                         CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(t.payload->'stp_cancelled', '[]')) AS n
                          JOIN exchange.orders o ON o.order_no = n::bigint
                    )
                    SELECT o.order_id::text, o.status FROM exchange.orders o
                     WHERE o.instrument_id = %s AND o.status IN ('filled', 'cancelled', 'rejected')
                       AND NOT EXISTS (SELECT 1 FROM named n WHERE n.order_id = o.order_id)""", iid, ps, iid)
                if ps and leftover:
                    fail(f"{where}: {len(leftover)} finished orders remain that no entry after the pruned entry "
                         f"{ps} names: {leftover[:5]}")
                (n,), = q("SELECT count(*) FROM exchange.events e"
                          " CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'stp_cancelled', '[]')) AS n"
                          " WHERE e.instrument_id = %s AND e.seq > %s", iid, ps)
                stp += n
                (n,), = q("""
                    SELECT count(DISTINCT x->>'maker_order_id') FROM exchange.events e
                     CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.payload->'trades', '[]')) AS x
                     WHERE e.instrument_id = %s AND e.seq > %s
                       AND NOT EXISTS (SELECT 1 FROM exchange.events p WHERE p.instrument_id = e.instrument_id
                                          AND p.seq > %s AND p.order_id = (x->>'maker_order_id')::uuid
                                          AND p.kind = 'order_placed')""", iid, ps, ps)
                makers += n

                # 3. Fills equal trades; 4. no trade of two orders gone.
                fills = q("""
                    SELECT o.order_id::text, o.status, o.filled_quantity,
                           (SELECT coalesce(sum(t.quantity), 0) FROM exchange.trades t
                             WHERE t.buy_order_id = o.order_id OR t.sell_order_id = o.order_id)
                      FROM exchange.orders o WHERE o.instrument_id = %s""", iid)
                fills = [f for f in fills if f[2] != f[3]]
                if fills:
                    fail(f"{where}: orders whose filled_quantity is not the sum of their trades "
                         f"(order, status, filled, trades): {fills[:5]}")
                orphans = q("SELECT t.trade_id::text, t.seq FROM exchange.trades t WHERE t.instrument_id = %s"
                            " AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.buy_order_id)"
                            " AND NOT EXISTS (SELECT 1 FROM exchange.orders o WHERE o.order_id = t.sell_order_id)",
                            iid)
                if orphans:
                    fail(f"{where}: {len(orphans)} trades remain whose two orders are gone: {orphans[:5]}")

                # 5. (part) The orders not finished are there: the book and the table agree.
                problems = q("SELECT * FROM exchange.verify(%s)", symbol)
                if problems:
                    fail(f"{where}: verify(): {problems[:5]}")
            return stp, makers

        q("SELECT count(*) FROM exchange.settle(%s)", LAST_DATE)
        instruments = q("SELECT instrument_id, symbol, tick_size FROM exchange.instruments"
                        " WHERE symbol = ANY (%s) ORDER BY instrument_id", INSTRUMENTS)
        # What the prunes during the trading left (a longer journal after
        # the pruned entries than the last prune leaves).
        stp_named, makers_kept = kept("after the prunes during the trading", {})
        # Before the last prune: each instrument's last trade (the register's
        # and the journal's), and the orders not finished.
        last_price = dict(q("SELECT DISTINCT ON (instrument_id) instrument_id, price FROM exchange.trades"
                            " ORDER BY instrument_id, trade_no DESC"))
        for iid, symbol, tick_size in instruments:
            (ticks,), = q("SELECT exchange._last_trade_ticks(%s)", iid)
            if iid not in last_price or ticks * tick_size != last_price[iid]:
                fail(f"{symbol}: before the last prune the journal's last trade price is {ticks * tick_size}, "
                     f"the register's last trade's {last_price.get(iid)}")
        unfinished = {(row[0], row[1]): row for row in q(
            "SELECT instrument_id, order_id, status, filled_quantity, remaining_lots FROM exchange.orders"
            " WHERE status = ANY (%s)", list(UNFINISHED))}
        # D: a date before the last with entries, after what the race pruned if it can be.
        dates = [d for d, in q("SELECT DISTINCT trade_date FROM exchange.settlement_days ORDER BY 1")]
        (race_through,), = q("SELECT max(through) FROM exchange.prunes")
        if len(dates) < 2:
            fail(f"the trading covered only the dates {dates}")
        later = [d for d in dates[1:-1] if d > race_through]
        day = later[0] if later else dates[-2]
        rows = q("SELECT instrument_id, through_seq, entries FROM exchange.prune(%s)", day)
        final = {iid: seq for iid, seq, _ in rows}
        removed_final = sum(n for _, _, n in rows)
        kept(f"after pruning through {day}", final)

        for iid, symbol, tick_size in instruments:
            (ps,), = q("SELECT exchange._pruned_seq(%s)", iid)
            # 5. The orders not finished: all there, as they were; the book agrees after a rebuild too.
            now = {(r[0], r[1]): r for r in q(
                "SELECT instrument_id, order_id, status, filled_quantity, remaining_lots FROM exchange.orders"
                " WHERE instrument_id = %s", iid)}
            changed = [(str(k[1]), row[2:], now[k][2:] if k in now else "gone")
                       for k, row in unfinished.items() if k[0] == iid and now.get(k) != row]
            if changed:
                fail(f"{symbol}: orders not finished before the last prune are gone or changed "
                     f"(order, before, after): {changed[:5]}")
            q("SELECT exchange.rebuild(%s)", symbol)
            problems = q("SELECT * FROM exchange.verify(%s)", symbol)
            if problems:
                fail(f"{symbol}: verify() after rebuild(): {problems[:5]}")

            # 6. The last trade price.
            (ticks,), = q("SELECT exchange._last_trade_ticks(%s)", iid)
            if ticks * tick_size != last_price[iid]:
                fail(f"{symbol}: the journal's last trade price is {ticks * tick_size} after pruning, "
                     f"the last trade's {last_price[iid]}")

            # 7. The book from the journal.
            at_head = sorted(q("SELECT * FROM exchange.orderbook_at(%s, NULL, 1000)", symbol))
            book = sorted(q("SELECT * FROM exchange.orderbook(%s, 1000)", symbol))
            if at_head != book:
                fail(f"{symbol}: orderbook_at at the head {at_head[:6]} differs from orderbook {book[:6]}")
            if ps > 0:
                error = refused("SELECT * FROM exchange.orderbook_at(%s, %s, 1000)", symbol, ps)
                if error is not None:
                    fail(f"{symbol}: orderbook_at at the pruned entry {ps}: {error}")
            if ps > 1:
                error = refused("SELECT * FROM exchange.orderbook_at(%s, %s, 1000)", symbol, ps - 1)
                if error is None or error[0] != "55000" or not error[1].startswith("pruned:"):
                    fail(f"{symbol}: orderbook_at before the pruned entry {ps}: {error or 'no error'}, "
                         "not 55000 pruned")

        # 8. The dates after the pruned ones reconcile; a pruned one is refused, its positions stay.
        problems = q("SELECT * FROM exchange.reconcile()")
        if problems:
            fail(f"reconcile() after pruning through {day}: {problems[:5]}")
        error = refused("SELECT * FROM exchange.reconcile(%s)", day)
        if error is None or error[0] != "55000" or not error[1].startswith("pruned:"):
            fail(f"reconcile({day}) of a pruned date: {error or 'no error'}, not 55000 pruned")
        (stored,), = q("SELECT count(*) FROM exchange.settlements WHERE trade_date = %s", day)
        (answered,), = q("SELECT count(*) FROM exchange.settlement(%s)", day)
        if answered != stored:
            fail(f"settlement({day}) of a pruned date answers {answered} rows, {stored} are stored")

        # 9. Something was pruned.
        (entries, trades, orders), = q("SELECT sum(entries), sum(trades), sum(orders) FROM exchange.prunes")
        if not (entries and trades and orders):
            fail(f"prune removed {entries} entries, {trades} trades and {orders} orders: nothing to check")
        if stp_named == 0:
            fail("no entry after the pruned ones had stp_cancelled: self-trade prevention was not exercised")
        if makers_kept == 0:
            fail("no order placed in the pruned part traded after it: resting across dates was not exercised")
        (n_trades,), = q("SELECT max(trade_no) FROM exchange.trades")
        remaining = q("SELECT (SELECT count(*) FROM exchange.events), (SELECT count(*) FROM exchange.trades),"
                      " (SELECT count(*) FROM exchange.orders)")[0]
    print(f"prune race: {n_trades} trades on {len(INSTRUMENTS)} instruments, {prunes_during} of {len(pruned)} "
          f"prune() calls during the trading removed history; pruned through {day} "
          f"({removed_final} entries by the last call): {entries} entries, {trades} trades and {orders} orders "
          f"removed, {remaining[0]}, {remaining[1]} and {remaining[2]} remain; after the prunes during the trading "
          f"{makers_kept} makers placed before the pruned entries and {stp_named} STP cancels named after them; "
          "journals whole after the pruned entries, "
          "named orders there, fills equal trades, books verify, last prices kept, reconcile empty")


if __name__ == "__main__":
    main()
