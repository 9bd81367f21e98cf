"""SQL fuzz pass over the trading functions (part of make test).

Seeded random and boundary arguments for place_order, place_orders (icebergs' display_quantity and stop
orders' stop_price included),
cancel_order, cancel_orders, amend_order and amend_orders (with a stop_price, 0.14): odd strings
(empty, long, quotes, control and non-ASCII characters), NULLs, zero,
negative, NaN, infinite, huge and very precise numerics, malformed and oddly
typed JSON batches, unknown and foreign order ids, id arrays and amend
batches with NULLs, repeats, nesting or no array at all, client arrays of
cancel_orders of another length, nested or NULL. Every call must
either succeed or fail with a documented SQLSTATE (cancel_orders and
amend_orders answering one row per id or item); a place_order with a
stop_price that fails changes nothing (the tables' counts, the books, their
pending stops and last trade prices as before), and a place_orders item
refused for its stop_price or its combination is written nowhere (a
batch writes exactly its rows that have a seq); moves of pending stop
orders' stop prices (amend_order's stop_price: beyond the last trade price,
already reached by it, their own, anything, and on orders that are not
pending stops): a refused one changes nothing (as above) and is refused for
the reason its kind implies (stop_would_trigger, invalid_stop_price, ...),
a move beyond the last trade price with nothing else given is accepted, and
an accepted move leaves the order pending at its new stop, last of the
orders there both in the book (_book_stops) and by the rows' priority,
with one journal entry and nothing triggered; the server must never crash
(same postmaster start time, the session still alive);
afterwards every book verifies clean, the journals are gap-free, each
order's filled quantity equals its trades, and replaying the journal every
stop order triggered only once the last price reached its stop of the
moment (a move replacing it), and none stayed pending past a command that
reached it (book_checks.stop_problems); stop-limit icebergs (a share of
the good stop-limit GTC orders carry a display_quantity, 2026-12-07): a
pending one shows nothing, the journal's entries of stop orders carry their
display, and each journal gives its book back (book_checks.iceberg_stop_problems).
Now and then (a generator of its own) settle, settlement and reconcile (0.16) and prune (0.17) with odd
trade dates (infinities, impossible days, words), clients and instruments: a refused settle() stores
nothing, a refused prune() removes nothing, and reconcile() is empty at the end.

And (a generator of its own) the TWAP functions (0.18, 0.19) with odd arguments: a refused place_twap stores
nothing, run_twaps and run_twaps_each never fail, and the TWAPs' children are checked with every other order
at the end.

Usage: sql_fuzz.py DSN [calls]   (the database must not have the extension)
"""
import json
import random
import sys
import uuid

import psycopg

from book_checks import consistency_problems, iceberg_stop_problems, stop_problems

# The extension's documented SQLSTATEs (README, "Errors") and PostgreSQL's own
# input errors for arguments that cannot even be converted to the parameter type.
DOCUMENTED = {
    "22023",  # invalid_parameter_value: the reason-coded bad input
    "42704",  # unknown_instrument
    "P0002",  # order_not_found
    "42501",  # not_order_owner
    "55000",  # order_not_open, instrument_halted
    "53000",  # capacity on amend
    "22P02",  # invalid text representation (PostgreSQL's input functions)
    "22003",  # numeric value out of range (PostgreSQL's input functions)
    "22007",  # invalid datetime format (a date argument: PostgreSQL's input function)
    "22008",  # datetime field overflow (a date argument: PostgreSQL's input function)
}
# Arguments for the settlement functions' trade dates (0.16).
DATES = [None, "2020-03-02", "1999-12-31", "0001-01-01", "4000-01-01", "2020-02-30", "2020-13-01", "infinity",
         "-infinity", "epoch", "today", "yesterday", "tomorrow", "", "x", "2020-3-4", "20200304", "1e9"]

STRINGS = ["", " ", "x", "BUY", "Sell", "limit", "LIMIT", "market", "gtc", "IOC", "fok", "day", "none",
           "cancel_both", "Cancel_Oldest", "a'b", 'q"q', "back\\slash", "tab\there", "nl\nx", "\u00e9t\u00e9",
           "\u6f22\u5b57", "emoji\U0001F600", "x" * 128, "y" * 129, "z" * 300, "%s", "NULL", "null", "0", "-1",
           "1e5", "BTC-USD", "ETH-USD", "NOPE", "btc-usd"]
NUMERICS = ["0", "-0", "1", "-1", "0.01", "0.001", "0.0001", "0.00001", "100", "100.00", "100.001", "99.99",
            "1e18", "1e19", "1e40", "1e-40", "123456789012345678901234567890.5", "NaN", "Infinity",
            "-Infinity", "1.5", "2", "1000000000000000000", "0.3333333333333333333333", "7", "1e3", None]
JSON_VALUES = [None, True, False, 0, -1, 1.5, "1", "abc", "1e999", "1e3", " 2 ", "0x10", "+3", ".5", "5.",
               [], {}, [1], {"a": 1}, "", 10 ** 30, -(10 ** 30), "NaN", "Infinity"]
STOP_PRICES = ["98", "99", "100", "101", "102", "100.5"]  # a good order's, around its prices
FIELDS = ["client_id", "instrument", "side", "type", "quantity", "price", "time_in_force",
          "idempotency_key", "post_only", "stp", "display_quantity", "stop_price"]


def pick(rng, values):
    return rng.choice(values)


def place_args(rng):
    good = rng.random() < 0.4
    a = {
        "client_id": pick(rng, ["f1", "f2", "f3"]) if good else pick(rng, STRINGS + [None]),
        "instrument": pick(rng, ["BTC-USD", "ETH-USD"]) if good else pick(rng, STRINGS + [None]),
        "side": pick(rng, ["buy", "sell"]) if good else pick(rng, STRINGS + [None]),
        "type": pick(rng, ["limit", "limit", "market"]) if good else pick(rng, STRINGS + [None]),
        "quantity": pick(rng, ["1", "2", "0.5", "3"]) if good else pick(rng, NUMERICS),
        "price": pick(rng, ["99", "100", "101", "100.5"]) if good else pick(rng, NUMERICS),
        "time_in_force": pick(rng, ["gtc", "ioc", "fok"]) if good else pick(rng, STRINGS + [None]),
        "idempotency_key": pick(rng, [None, None, "k1", "k2", "k3"]) if good else pick(rng, STRINGS + [None]),
        "post_only": pick(rng, [False, False, True, None]),
        "stp": pick(rng, [None, "none", "cancel_oldest"]) if good else pick(rng, STRINGS + [None]),
        # Icebergs: mostly none, a tip of the good orders' sizes, or anything.
        "display_quantity": pick(rng, [None, None, None, "0.5", "1", "0.1"]) if good else pick(rng, NUMERICS),
        # Stop orders: mostly none, a stop around the good prices (so that
        # they wait, are rejected as reached, and trigger), anything on an
        # otherwise good order now and then (its error alone), or anything.
        "stop_price": (pick(rng, NUMERICS) if rng.random() < 0.15 else
                       pick(rng, [None, None, None] + STOP_PRICES)) if good
        else pick(rng, NUMERICS),
    }
    # Stop-limit icebergs (2026-12-07): a good stop-limit GTC order without a display gets one half the
    # time (a tip of the good sizes or its whole quantity), so that some wait, trigger and rest as icebergs.
    if good and a["stop_price"] in STOP_PRICES and a["type"] == "limit" and a["time_in_force"] == "gtc" \
            and a["display_quantity"] is None and rng.random() < 0.5:
        a["display_quantity"] = pick(rng, ["0.5", "0.1", a["quantity"]])
    return a


def batch_item(rng):
    r = rng.random()
    if r < 0.1:
        return pick(rng, JSON_VALUES)
    item = {k: v for k, v in place_args(rng).items() if v is not None}
    for _ in range(rng.randrange(3)):
        item[pick(rng, FIELDS + ["unknown", "extra"])] = pick(rng, JSON_VALUES)
    return item


def amend_item(rng, order_ids):
    if rng.random() < 0.1:
        return pick(rng, JSON_VALUES)
    r = rng.random()
    oid = (str(pick(rng, order_ids)) if order_ids and r < 0.7 else
           str(uuid.uuid4()) if r < 0.8 else pick(rng, STRINGS + JSON_VALUES))
    item = {"order_id": oid} if rng.random() < 0.95 else {}
    for key in ("quantity", "price"):
        if rng.random() < 0.6:
            item[key] = pick(rng, ["1", "2", "0.5", "3", "99", "100.5"]) if rng.random() < 0.5 else \
                pick(rng, NUMERICS + JSON_VALUES)
    if rng.random() < 0.3:  # a stop price (0.14): for the pending stops among the ids, and any other
        item["stop_price"] = pick(rng, ["98", "99", "100", "100.5", "101", "102", "103"]) \
            if rng.random() < 0.5 else pick(rng, NUMERICS + JSON_VALUES)
    if rng.random() < 0.5:
        item["client_id"] = pick(rng, ["f1", "f2", "f3", "intruder", "", None])
    return item


# What a failed call must leave as it was: the tables' row counts, and per
# book its levels, pending stops and last trade price (_book_stops and
# _book_last_price: the superuser's).
STATE = ("SELECT (SELECT count(*) FROM exchange.orders), (SELECT count(*) FROM exchange.trades), "
         "(SELECT count(*) FROM exchange.events), "
         "(SELECT string_agg(i.symbol || ':' || exchange._book_last_price(i.instrument_id) || ':' || "
         "  (SELECT coalesce(string_agg(b::text, ','), '') FROM exchange.orderbook(i.symbol, 1000) b) || ':' || "
         "  (SELECT coalesce(string_agg(s::text, ','), '') FROM exchange._book_stops(i.instrument_id) s), ' ' "
         "  ORDER BY i.symbol) FROM exchange.instruments i)")


def move_stop(rng, cur, order_ids, moves):
    """amend_order with a stop_price (0.14): on a pending stop order (mostly)
    a stop beyond the last trade price, one it has reached, its own, or any
    numeric; else on an order in the book, or any order id. Counts the
    outcome in moves, checks it, and raises the call's error if it failed."""
    pending = cur.execute(
        "SELECT o.order_id, o.order_no, o.side, o.stop_ticks, o.priority, o.instrument_id, i.tick_size, o.client_id, "
        "exchange._book_last_price(o.instrument_id) FROM exchange.orders o JOIN exchange.instruments i "
        "USING (instrument_id) WHERE o.status = 'pending' ORDER BY o.order_no").fetchall()
    quantity = client = target = None
    r = rng.random()
    if pending and r < 0.8:
        target = pick(rng, pending)
        oid, _, side, stop, _, _, tick, owner, last = target
        w = rng.random()
        if w < 0.45 or (w < 0.7 and last == 0):
            # Beyond the last trade price (while nothing traded, any stop).
            kind = "beyond"
            if last == 0:
                ticks = max(1, stop + rng.randint(-50, 50))
            elif side == "buy":
                ticks = last + rng.randint(1, 300)
            else:
                ticks = last - rng.randint(1, 300) if last > 300 else rng.randint(1, last - 1) if last > 1 else stop
        elif w < 0.7:
            kind = "reached"
            ticks = max(1, last - rng.randint(0, 200)) if side == "buy" else last + rng.randint(0, 200)
        elif w < 0.8:
            kind, ticks = "own", stop
        else:
            kind, ticks = "any", None
        if ticks == stop:
            kind = "own"
        stop_price = pick(rng, NUMERICS) if ticks is None else str(tick * ticks)
        if kind in ("own", "any") and rng.random() < 0.5:
            quantity = pick(rng, ["1", "2", "0.5", "3"]) if rng.random() < 0.7 else pick(rng, NUMERICS)
        if rng.random() < 0.3:
            client = owner if rng.random() < 0.7 else pick(rng, ["f1", "f2", "f3", "intruder"])
    elif r < 0.9:
        kind = "not_pending"
        row = cur.execute("SELECT order_id FROM exchange.orders WHERE status IN ('open', 'partially_filled') "
                          "ORDER BY random() LIMIT 1").fetchone()
        oid = row[0] if row else str(uuid.uuid4())
        stop_price = pick(rng, ["99", "100", "100.5", "101", "102"])
        if not row:
            kind = "any"
    else:
        kind = "any"
        oid = pick(rng, order_ids) if order_ids and rng.random() < 0.8 else str(uuid.uuid4())
        stop_price = pick(rng, NUMERICS + ["99", "100.5", "101"])
    before = cur.execute(STATE).fetchone()
    seq = cur.execute("SELECT coalesce(max(seq), 0) FROM exchange.events WHERE instrument_id = %s",
                      (target[5] if target else 0,)).fetchone()[0]
    try:
        cur.execute("SELECT status, stop_price FROM exchange.amend_order(%s, %s::numeric, NULL, %s, %s::numeric)",
                    (oid, quantity, client, stop_price))
    except psycopg.errors.DatabaseError as e:
        reason = (e.diag.message_primary or "").split(":", 1)[0]
        moves["refused " + reason] = moves.get("refused " + reason, 0) + 1
        after = cur.execute(STATE).fetchone()
        if after != before:
            raise AssertionError(f"a refused move ({kind}) of {oid} to {stop_price!r} changed {before} to {after}")
        # Nothing but the stop price given (or the owner named): refused for what its kind implies.
        alone = quantity is None and (client is None or target is not None and client == target[7])
        if alone and kind == "beyond":
            raise AssertionError(f"a move of {oid} beyond the last trade price to {stop_price} was refused: {e}")
        want = {"reached": "stop_would_trigger", "not_pending": "invalid_stop_price", "own": "no_change"}.get(kind)
        if alone and want is not None and reason != want:
            raise AssertionError(f"a move ({kind}) of {oid} to {stop_price} was refused with {reason}, not {want}: {e}")
        raise
    status, new_stop = cur.fetchone()
    if kind in ("reached", "not_pending"):
        raise AssertionError(f"a move ({kind}) of {oid} to {stop_price} was accepted: {status} {new_stop}")
    if target is None or new_stop == target[6] * target[3]:
        moves["accepted, not moved"] = moves.get("accepted, not moved", 0) + 1
        return
    moves["moved"] = moves.get("moved", 0) + 1
    # Pending at its new stop, last there both in the book and by priority (a
    # new one); one journal entry, nothing triggered.
    order_no, side, stop_ticks, priority, row_status, inst = cur.execute(
        "SELECT order_no, side, stop_ticks, priority, status, instrument_id FROM exchange.orders WHERE order_id = %s",
        (oid,)).fetchone()
    queue = [n for n, sd, st in cur.execute("SELECT order_no, side, stop FROM exchange._book_stops(%s) "
                                            "ORDER BY side, rank", (inst,)).fetchall()
             if st == stop_ticks and sd == (0 if side == "buy" else 1)]
    newest = cur.execute("SELECT max(priority) FROM exchange.orders WHERE instrument_id = %s AND status = 'pending' "
                         "AND side = %s AND stop_ticks = %s", (inst, side, stop_ticks)).fetchone()[0]
    entries = [k for k, in cur.execute("SELECT kind FROM exchange.events WHERE instrument_id = %s AND seq > %s "
                                       "ORDER BY seq", (inst, seq)).fetchall()]
    if (status, row_status) != ("pending", "pending") or new_stop != target[6] * stop_ticks or not queue \
            or queue[-1] != order_no or priority != newest or priority <= target[4] or entries != ["order_amended"]:
        raise AssertionError(f"the move of {oid} to {stop_price}: {status}/{row_status} at {new_stop} "
                             f"({stop_ticks} ticks), queue there {queue} (it is {order_no}), priority {priority} "
                             f"(newest {newest}, was {target[4]}), journal entries {entries}")


def cancel_all(rng, cur, moves):
    # cancel_all_orders (0.14), now and then: a trading client, on one instrument or all, or anything. What
    # it answers is cancelled, and the client has nothing left resting or pending there.
    good = rng.random() < 0.7
    client = pick(rng, ["f1", "f2", "f3"]) if good else pick(rng, STRINGS + [None])
    instrument = pick(rng, [None, "BTC-USD", "ETH-USD"]) if good else pick(rng, STRINGS + [None])
    rows = cur.execute("SELECT status FROM exchange.cancel_all_orders(%s, %s)", (client, instrument)).fetchall()
    left = cur.execute("SELECT count(*) FROM exchange.orders WHERE client_id = %s AND (%s::text IS NULL OR "
                       "instrument = %s) AND status IN ('open', 'partially_filled', 'pending')",
                       (client, instrument, instrument)).fetchone()[0]
    if any(r[0] != "cancelled" for r in rows) or left:
        raise AssertionError(f"cancel_all_orders({client!r}, {instrument!r}) answered {rows}, left {left}")
    moves["cancel_all_orders cancelled"] = moves.get("cancel_all_orders cancelled", 0) + len(rows)


def settlement_call(rng, cur, moves):
    # settle, settlement and reconcile (0.16) with odd dates, clients and instruments: each succeeds or
    # fails with a documented SQLSTATE; a refused settle() stores nothing.
    day, what = pick(rng, DATES), rng.random()
    if what < 0.4:
        runs = cur.execute("SELECT count(*) FROM exchange.settlement_runs").fetchone()[0]
        try:
            cur.execute("SELECT count(*) FROM exchange.settle(%s::date)", (day,))
        except psycopg.errors.DatabaseError:
            if cur.connection.execute("SELECT count(*) FROM exchange.settlement_runs").fetchone()[0] != runs:
                raise AssertionError(f"a refused settle({day!r}) stored a run")
            raise
        moves["settle() calls answered"] = moves.get("settle() calls answered", 0) + 1
    elif what < 0.5:
        # prune (0.17): refused or nothing to remove (this pass's entries are stamped today; yesterday is
        # left out for a pass that runs over midnight); a refused prune() removes nothing.
        day = pick(rng, [d for d in DATES if d != "yesterday"])
        before = cur.execute("SELECT (SELECT count(*) FROM exchange.prunes), (SELECT count(*) FROM exchange.events)"
                             ).fetchone()
        try:
            removed = cur.execute("SELECT count(*) FROM exchange.prune(%s::date)", (day,)).fetchone()[0]
        except psycopg.errors.DatabaseError:
            if cur.connection.execute("SELECT (SELECT count(*) FROM exchange.prunes), "
                                      "(SELECT count(*) FROM exchange.events)").fetchone() != before:
                raise AssertionError(f"a refused prune({day!r}) removed something")
            raise
        if removed:
            raise AssertionError(f"prune({day!r}) removed entries stamped today")
        moves["prune() calls answered"] = moves.get("prune() calls answered", 0) + 1
    elif what < 0.8:
        cur.execute("SELECT count(*) FROM exchange.settlement(%s::date, %s, %s)",
                    (day, pick(rng, [None, "f1", "x" * 300, pick(rng, STRINGS)]),
                     pick(rng, [None, "BTC-USD", pick(rng, STRINGS)])))
    else:
        cur.execute("SELECT count(*) FROM exchange.reconcile(%s::date, %s)", (day, pick(rng, [None, "ETH-USD",
                                                                                          pick(rng, STRINGS)])))


INTERVALS = [None, "10 minutes", "1 second", "0.5 seconds", "0", "-1 minute", "7 days", "8 days", "1 hour", "x",
             "", "1e9 years", "P1D", "00:00:05"]


def twap_call(rng, cur, twap_ids, moves):
    # place_twap, cancel_twap, get_twap, list_twaps, twap_orders, run_twaps (0.18) and run_twaps_each (0.19)
    # with odd arguments:
    # each succeeds or fails with a documented SQLSTATE; a refused place_twap stores nothing, and run_twaps
    # never fails (a child the exchange refuses is the TWAP's last_error).
    what = rng.random()
    if what < 0.4:
        good = rng.random() < 0.6
        args = (pick(rng, ["f1", "f2", "f3"]) if good else pick(rng, STRINGS + [None]),
                pick(rng, ["BTC-USD", "ETH-USD"]) if good else pick(rng, STRINGS + [None]),
                pick(rng, ["buy", "sell"]) if good else pick(rng, STRINGS + [None]),
                pick(rng, ["1", "3", "10"]) if good else pick(rng, NUMERICS),
                pick(rng, ["10 minutes", "1 minute"]) if good else pick(rng, INTERVALS),
                pick(rng, [None, 1, 3]) if good else pick(rng, [None, 0, -1, 1, 10001, 2 ** 31 - 1]),
                pick(rng, [None, "100.00", "1000", "50"]) if good else pick(rng, NUMERICS),
                pick(rng, ["-3 minutes", "-1 hour", "0", "1 minute"]),
                pick(rng, [None, None, "k1", "k2", "", "x" * 300]))
        before = cur.execute("SELECT count(*) FROM exchange.twaps").fetchone()[0]
        try:
            row = cur.execute("SELECT twap_id FROM exchange.place_twap(%s, %s, %s, %s::numeric, %s::interval, %s, "
                              "%s::numeric, now() + %s::interval, %s)", args).fetchone()
        except psycopg.errors.DatabaseError:
            if cur.connection.execute("SELECT count(*) FROM exchange.twaps").fetchone()[0] != before:
                raise AssertionError(f"a refused place_twap{args!r} stored a TWAP")
            raise
        twap_ids.append(row[0])
        moves["place_twap answered"] = moves.get("place_twap answered", 0) + 1
    elif what < 0.6:
        # Every other run by 0.19's procedure, each TWAP in its own transaction (the connection autocommits).
        runs = moves["TWAP runs"] = moves.get("TWAP runs", 0) + 1
        if runs % 2:
            placed = cur.execute("SELECT count(*) FROM exchange.run_twaps()").fetchone()[0]
        else:
            placed = cur.execute("CALL exchange.run_twaps_each()").fetchone()[0]
        moves["TWAP children placed"] = moves.get("TWAP children placed", 0) + placed
    elif what < 0.75:
        twap_id = pick(rng, twap_ids) if twap_ids and rng.random() < 0.8 else str(uuid.uuid4())
        cur.execute("SELECT status FROM exchange.cancel_twap(%s, %s)",
                    (twap_id, pick(rng, [None, "f1", "f2", "f3", pick(rng, STRINGS)])))
        moves["cancel_twap answered"] = moves.get("cancel_twap answered", 0) + 1
    elif what < 0.85:
        twap_id = pick(rng, twap_ids) if twap_ids and rng.random() < 0.8 else str(uuid.uuid4())
        cur.execute("SELECT count(*) FROM exchange.twap_orders(%s)", (twap_id,))
        cur.execute("SELECT status FROM exchange.get_twap(%s)", (twap_id,))
    else:
        cur.execute("SELECT count(*) FROM exchange.list_twaps(%s, %s, %s)",
                    (pick(rng, ["f1", None, pick(rng, STRINGS)]), pick(rng, [None, "active", "done", ""]),
                     pick(rng, [100, 0, 10001, None])))


def call(rng, cur, order_ids, moves):
    kind = rng.random()
    if kind < 0.45:
        a = place_args(rng)
        before = cur.execute(STATE).fetchone() if a["stop_price"] is not None else None
        try:
            cur.execute("SELECT order_id FROM exchange.place_order(%(client_id)s, %(instrument)s, %(side)s, %(type)s, "
                        "%(quantity)s::numeric, %(price)s::numeric, %(time_in_force)s, %(idempotency_key)s, "
                        "%(post_only)s, %(stp)s, %(display_quantity)s::numeric, %(stop_price)s::numeric)", a)
        except psycopg.errors.DatabaseError:
            if before is not None:
                after = cur.execute(STATE).fetchone()
                if after != before:
                    raise AssertionError(f"a failed place_order with stop_price {a['stop_price']!r} changed "
                                         f"{before} to {after}")
            raise
        row = cur.fetchone()
        if row and row[0]:
            order_ids.append(row[0])
    elif kind < 0.65:
        if rng.random() < 0.1:
            batch = pick(rng, JSON_VALUES)
        else:
            batch = [batch_item(rng) for _ in range(rng.randrange(0, 12))]
        orders_before = cur.execute("SELECT count(*) FROM exchange.orders").fetchone()[0]
        cur.execute("SELECT order_id, seq, reject_reason FROM exchange.place_orders(%s::jsonb)", (json.dumps(batch),))
        rows = cur.fetchall()
        order_ids.extend(r[0] for r in rows if r[0])
        written = cur.execute("SELECT count(*) FROM exchange.orders").fetchone()[0] - orders_before
        refused = [r for r in rows if r[2] in ("invalid_stop_price", "invalid_combination") and
                   (r[0] is not None or r[1] is not None)]
        if written != sum(1 for r in rows if r[1] is not None) or refused:
            raise AssertionError(f"place_orders wrote {written} orders for the rows {rows}")
    elif kind < 0.76:
        oid = pick(rng, order_ids) if order_ids and rng.random() < 0.8 else str(uuid.uuid4())
        cur.execute("SELECT status FROM exchange.cancel_order(%s, %s)",
                    (oid, pick(rng, [None, None, "f1", "f2", "intruder", ""])))
    elif kind < 0.84:
        r = rng.random()
        if r < 0.05:
            ids = None
        elif r < 0.1:
            ids = [[str(uuid.uuid4())], [str(uuid.uuid4())]]  # two-dimensional
        else:
            ids = [str(pick(rng, order_ids)) if order_ids and rng.random() < 0.7
                   else pick(rng, [str(uuid.uuid4()), None]) for _ in range(rng.randrange(0, 20))]
            if ids and rng.random() < 0.3:
                ids.append(ids[0])  # the same id twice
        if rng.random() < 0.5:
            cur.execute("SELECT status, reject_reason FROM exchange.cancel_orders(%s::uuid[], %s)",
                        (ids, pick(rng, [None, None, "f1", "f2", "intruder"])))
        else:  # a client per id (0.9): mostly as many as ids, else NULL, nested or another length
            r = rng.random()
            n = len(ids) if isinstance(ids, list) else 1
            if r < 0.05:
                clients = None
            elif r < 0.1:
                clients = [["f1"], ["f2"]]
            elif r < 0.2:
                clients = [pick(rng, [None, "f1"]) for _ in range(max(0, n + pick(rng, [-1, 1, 3])))]
            else:
                clients = [pick(rng, [None, None, "f1", "f2", "intruder", pick(rng, STRINGS)]) for _ in range(n)]
            cur.execute("SELECT status, reject_reason FROM exchange.cancel_orders(%s::uuid[], %s::text[])",
                        (ids, clients))
        rows = cur.fetchall()
        if len(rows) != len(ids) or any((status == "rejected") != (reason is not None) for status, reason in rows):
            raise AssertionError(f"cancel_orders answered {rows} for {len(ids)} ids")
    elif kind < 0.88:
        oid = pick(rng, order_ids) if order_ids and rng.random() < 0.8 else str(uuid.uuid4())
        stop = pick(rng, NUMERICS) if rng.random() < 0.2 else None
        cur.execute("SELECT status FROM exchange.amend_order(%s, %s::numeric, %s::numeric, %s, %s::numeric)",
                    (oid, pick(rng, NUMERICS), pick(rng, NUMERICS), pick(rng, [None, "f1", "f3", "intruder"]), stop))
    elif kind < 0.95:
        move_stop(rng, cur, order_ids, moves)
    else:
        if rng.random() < 0.1:
            batch = pick(rng, JSON_VALUES)
        else:
            batch = [amend_item(rng, order_ids) for _ in range(rng.randrange(0, 12))]
            if batch and rng.random() < 0.3:
                batch.append(batch[0])  # the same amend twice
        cur.execute("SELECT status, reject_reason FROM exchange.amend_orders(%s::jsonb)", (json.dumps(batch),))
        rows = cur.fetchall()
        if len(rows) != len(batch) or any((status == "rejected") != (reason is not None) for status, reason in rows):
            raise AssertionError(f"amend_orders answered {rows} for {len(batch)} items")


def main():
    dsn = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rng = random.Random(20261125)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION exchange")
        conn.execute("SELECT exchange.create_instrument('BTC-USD', 0.01, 0.001)")
        conn.execute("SELECT exchange.create_instrument('ETH-USD', 0.5, 0.5, 1)")
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        outcomes, order_ids, moves = {}, [], {}
        # cancel_all_orders (0.14) with a generator of its own, about once in 500 calls, so that the other
        # calls' stream stays what it was.
        rng_all = random.Random(20261207)
        rng_settle = random.Random(20261208)  # and the settlement functions (0.16), about once in 100
        rng_twap, twap_ids = random.Random(20261209), []  # and the TWAP functions (0.18), about once in 50
        for _ in range(calls):
            try:
                with conn.cursor() as cur:
                    if rng_settle.random() < 0.01:
                        settlement_call(rng_settle, cur, moves)
                    elif rng_twap.random() < 0.02:
                        twap_call(rng_twap, cur, twap_ids, moves)
                    elif rng_all.random() < 0.002:
                        cancel_all(rng_all, cur, moves)
                    else:
                        call(rng, cur, order_ids, moves)
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except psycopg.errors.DatabaseError as e:
                state = e.sqlstate
                if state not in DOCUMENTED:
                    print(f"FAIL: undocumented SQLSTATE {state}: {e}", file=sys.stderr)
                    return 1
                outcomes[state] = outcomes.get(state, 0) + 1
        if conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] != started:
            print("FAIL: the server restarted during the fuzz pass", file=sys.stderr)
            return 1
        problems, gaps, fills = consistency_problems(conn)
        reconciled = conn.execute("SELECT count(*) FROM exchange.reconcile()").fetchone()[0]
        stop_trouble = stop_problems(conn) + iceberg_stop_problems(conn)
        trades = conn.execute("SELECT count(*) FROM exchange.trades").fetchone()[0]
        stops = dict(conn.execute(
            "SELECT 'placed', count(*) FROM exchange.orders WHERE stop_price IS NOT NULL UNION ALL "
            "SELECT 'pending', count(*) FROM exchange.orders WHERE status = 'pending' UNION ALL "
            "SELECT 'would_trigger', count(*) FROM exchange.orders WHERE reject_reason = 'stop_would_trigger' UNION ALL "
            "SELECT 'triggered', count(*) FROM exchange.events WHERE kind = 'order_triggered' UNION ALL "
            "SELECT 'iceberg_placed', count(*) FROM exchange.orders WHERE stop_price IS NOT NULL "
            "AND display_quantity IS NOT NULL AND status <> 'rejected' UNION ALL "
            "SELECT 'iceberg_triggered', count(*) FROM exchange.events e JOIN exchange.orders o USING (order_id) "
            "WHERE e.kind = 'order_triggered' AND o.display_quantity IS NOT NULL").fetchall())
    cancelled_all = moves.pop("cancel_all_orders cancelled", 0)
    print(f"sql fuzz: {calls} calls, outcomes {dict(sorted(outcomes.items()))}, {len(order_ids)} orders, "
          f"{trades} trades, stop orders {stops}, stop price moves {dict(sorted(moves.items()))}, "
          f"orders cancelled by cancel_all_orders {cancelled_all}")
    if reconciled:
        print(f"FAIL: reconcile() found {reconciled} problems", file=sys.stderr)
        return 1
    if problems or gaps or fills or stop_trouble:
        print(f"FAIL: verify {problems}, journal gaps {gaps}, orders whose fills disagree with trades {fills}, "
              f"stop orders against the journal, stop-limit icebergs {stop_trouble}", file=sys.stderr)
        return 1
    if outcomes.get("ok", 0) < calls // 10 or trades == 0 or len(outcomes) < 4 or stops["triggered"] == 0 or \
            stops["iceberg_triggered"] == 0 or \
            not all(moves.get(k) for k in ("moved", "refused stop_would_trigger", "refused invalid_stop_price",
                                           "settle() calls answered")):
        print("FAIL: the fuzz pass exercised too little (see outcomes)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
