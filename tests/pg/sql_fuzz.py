"""SQL fuzz pass over the trading functions (part of make test).

Seeded random and boundary arguments for place_order, place_orders (icebergs' display_quantity and stop
orders' stop_price included),
cancel_order, cancel_orders, amend_order and amend_orders: odd strings
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
batch writes exactly its rows that have a seq); the server must never crash
(same postmaster start time, the session still alive);
afterwards every book verifies clean, the journals are gap-free and each
order's filled quantity equals its trades.

Usage: sql_fuzz.py DSN [calls]   (the database must not have the extension)
"""
import json
import random
import sys
import uuid

import psycopg

from book_checks import consistency_problems

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
}

STRINGS = ["", " ", "x", "BUY", "Sell", "limit", "LIMIT", "market", "gtc", "IOC", "fok", "day", "none",
           "cancel_both", "Cancel_Oldest", "a'b", 'q"q', "back\\slash", "tab\there", "nl\nx", "\u00e9t\u00e9",
           "\u6f22\u5b57", "emoji\U0001F600", "x" * 128, "y" * 129, "z" * 300, "%s", "NULL", "null", "0", "-1",
           "1e5", "BTC-USD", "ETH-USD", "NOPE", "btc-usd"]
NUMERICS = ["0", "-0", "1", "-1", "0.01", "0.001", "0.0001", "0.00001", "100", "100.00", "100.001", "99.99",
            "1e18", "1e19", "1e40", "1e-40", "123456789012345678901234567890.5", "NaN", "Infinity",
            "-Infinity", "1.5", "2", "1000000000000000000", "0.3333333333333333333333", "7", "1e3", None]
JSON_VALUES = [None, True, False, 0, -1, 1.5, "1", "abc", "1e999", "1e3", " 2 ", "0x10", "+3", ".5", "5.",
               [], {}, [1], {"a": 1}, "", 10 ** 30, -(10 ** 30), "NaN", "Infinity"]
FIELDS = ["client_id", "instrument", "side", "type", "quantity", "price", "time_in_force",
          "idempotency_key", "post_only", "stp", "display_quantity", "stop_price"]


def pick(rng, values):
    return rng.choice(values)


def place_args(rng):
    good = rng.random() < 0.4
    return {
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
                       pick(rng, [None, None, None, "98", "99", "100", "101", "102", "100.5"])) if good
        else pick(rng, NUMERICS),
    }


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


def call(rng, cur, order_ids):
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
    elif kind < 0.93:
        oid = pick(rng, order_ids) if order_ids and rng.random() < 0.8 else str(uuid.uuid4())
        cur.execute("SELECT status FROM exchange.amend_order(%s, %s::numeric, %s::numeric, %s)",
                    (oid, pick(rng, NUMERICS), pick(rng, NUMERICS), pick(rng, [None, "f1", "f3", "intruder"])))
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
        outcomes, order_ids = {}, []
        for _ in range(calls):
            try:
                with conn.cursor() as cur:
                    call(rng, cur, order_ids)
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
        trades = conn.execute("SELECT count(*) FROM exchange.trades").fetchone()[0]
        stops = dict(conn.execute(
            "SELECT 'placed', count(*) FROM exchange.orders WHERE stop_price IS NOT NULL UNION ALL "
            "SELECT 'pending', count(*) FROM exchange.orders WHERE status = 'pending' UNION ALL "
            "SELECT 'would_trigger', count(*) FROM exchange.orders WHERE reject_reason = 'stop_would_trigger' UNION ALL "
            "SELECT 'triggered', count(*) FROM exchange.events WHERE kind = 'order_triggered'").fetchall())
    print(f"sql fuzz: {calls} calls, outcomes {dict(sorted(outcomes.items()))}, {len(order_ids)} orders, "
          f"{trades} trades, stop orders {stops}")
    if problems or gaps or fills:
        print(f"FAIL: verify {problems}, journal gaps {gaps}, orders whose fills disagree with trades {fills}",
              file=sys.stderr)
        return 1
    if outcomes.get("ok", 0) < calls // 10 or trades == 0 or len(outcomes) < 4 or stops["triggered"] == 0:
        print("FAIL: the fuzz pass exercised too little (see outcomes)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
