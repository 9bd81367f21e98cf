"""Concurrent sessions trading two instruments (part of make test).

Four sessions run a fixed number of transactions each, every transaction on
one instrument: batches (place_orders), single orders with idempotency keys
(a quarter of the orders icebergs, 0.12; about one in six a stop order,
0.13, limit or market, whose stop is near the prices traded: some are
rejected as reached, the others wait and trigger as the sessions trade;
four in ten of the stop-limit ones icebergs, 2026-12-07, which rest with
their tip when they trigger)
that the sessions share (so that repeats race their originals), clients new
to the exchange picked from a shared pool (so that first uses race),
cancel_orders (without a client, or with a client per id),
cancel_all_orders of an existing client (0.14, on both instruments or
one), amend_order of orders the sessions placed, and moves of pending stop
orders' stop prices (0.14: amend_order's stop_price, mostly beyond the
last trade price; in a savepoint, some the last price already reached,
some invalid and some on orders in the book, each to be refused for its
reason unless a race below came first); most transactions are one call,
the others two or three on one instrument with clients that exist
already; a transaction of one call may cancel orders of both instruments.
A fifth session halts and resumes the second instrument now and then. A trading call takes what it may wait for in one order
(commands.cpp, TakeLocksInOrder and LockInstrumentsOf), and the
transactions of several calls here touch one instrument, so nothing here
may deadlock: every
error must be one a session can expect from a race it lost (55000
order_not_open or instrument_halted, P0002 for the id of an order whose
transaction rolled back, 22023 no_change or an amend below what filled
meanwhile, and for a move stop_would_trigger, the last price having moved
past, or invalid_stop_price for an order that triggered and rests
meanwhile), never 40P01. Afterwards every book verifies clean, the journals
are gap-free, each order's filled quantity equals its trades, no client
has two orders with one idempotency key, every committed move is in the
journal (an 'order_amended' entry of its order at its new stop), and
replaying the journal every stop order triggered only once the last price
reached its stop of the moment and none stayed pending past a command that
reached it (book_checks.stop_problems), and the stop-limit icebergs hold
(book_checks.iceberg_stop_problems: a pending one shows nothing, the
journal's entries carry their display, each journal gives its book back).
regress/specs/lock_order.spec
shows the deadlocks of the lock order before, one step at a time; with
that order a run of this test met 25 deadlocks.

Usage: concurrency_test.py DSN [transactions per session]
(the database must not have the extension)
"""
import json
import random
import sys
import threading
import time

import psycopg

from book_checks import consistency_problems, iceberg_stop_problems, stop_problems

EXPECTED = {
    ("55000", "order_not_open"), ("55000", "instrument_halted"), ("P0002", "order_not_found"),
    ("22023", "no_change"), ("22023", "invalid_quantity"),
    ("22023", "stop_would_trigger"), ("22023", "invalid_stop_price"),  # a move's races (move_stop)
}
INSTRUMENTS = ("C1", "C2")


def reason(e):
    return str(e).split(":", 1)[0].strip()


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = {i: [] for i in INSTRUMENTS}
        self.outcomes = {}
        self.unexpected = []
        self.moves = {}  # a stop price's moves: outcome -> count
        self.moved = []  # (order_id, new stop price) of the committed moves

    def count(self, key, n=1):
        with self.lock:
            self.outcomes[key] = self.outcomes.get(key, 0) + n

    def count_move(self, key):
        with self.lock:
            self.moves[key] = self.moves.get(key, 0) + 1


def order(rng, inst, new_clients):
    # New clients and keys are named after the 20 ms window they are used
    # in: the sessions meet them at the same moments, often in opposite
    # orders. (A transaction of several calls meets only clients that exist:
    # two such transactions that each inserted a client the other then
    # wants can deadlock, as two trading two instruments can.)
    window = int(time.monotonic() * 50)
    client = f"n{window}-{rng.randrange(3)}" if new_clients else f"old{rng.randrange(20)}"
    o = {"client_id": client, "instrument": inst, "side": rng.choice(["buy", "sell"]),
         "type": "limit", "quantity": rng.randint(1, 5), "price": rng.randint(95, 105)}
    if rng.random() < 0.3:
        o["idempotency_key"] = f"{inst}-{window}-{rng.randrange(3)}"
    if rng.random() < 0.25:  # an iceberg (0.12): its refills re-queue it, which the rows must follow
        o["display_quantity"] = rng.randint(1, o["quantity"])
    elif rng.random() < 0.2:  # a stop order (0.13): a buy stop above the middle price, a sell stop below
        o["stop_price"] = rng.randint(100, 106) if o["side"] == "buy" else rng.randint(94, 100)
        if rng.random() < 0.3:  # a stop-market order
            o["type"] = "market"
            del o["price"]
        elif rng.random() < 0.4:  # a stop-limit iceberg (2026-12-07)
            o["display_quantity"] = rng.randint(1, o["quantity"])
    return o


def move_stop(rng, conn, inst, shared, moved):
    """amend_order with a stop_price: a pending stop of inst to a stop
    beyond the last trade price (it may trigger, be cancelled or the price
    move past meanwhile: those errors go up to the transaction as races);
    or, in a savepoint, to one the last price reached, to an invalid one, or
    an order in the book given one, each of which must be refused for its
    reason."""
    row = conn.execute("SELECT order_id, side, stop_ticks, exchange._book_last_price(instrument_id) "
                       "FROM exchange.orders WHERE instrument = %s AND status = 'pending' ORDER BY random() LIMIT 1",
                       (inst,)).fetchone()
    w = rng.random()
    if row is None:
        return
    oid, side, stop, last = row
    if w < 0.6:
        if last == 0:
            new = rng.randint(94, 106)
        else:
            new = last + rng.randint(1, 6) if side == "buy" else max(1, last - rng.randint(1, 6))
        if new == stop:  # its own would be no_change
            new = new + 1 if side == "buy" or last == 0 else new - 1
        if new <= 0:
            return
        try:
            status = conn.execute("SELECT status FROM exchange.amend_order(%s, stop_price => %s)",
                                  (oid, new)).fetchone()[0]
        except psycopg.errors.DatabaseError as e:
            shared.count_move(f"refused {reason(e)} (beyond the last price, a race)")
            raise
        if status != "pending":
            raise AssertionError(f"a move of {oid} answered {status}")
        shared.count_move("moved")
        moved.append((oid, new))
        return
    if w < 0.75 and last != 0:
        kind, want = "reached", "stop_would_trigger"
        new = last - rng.randint(0, 3) if side == "buy" else last + rng.randint(0, 3)
        if new == stop or new <= 0:
            return
    elif w < 0.9:
        kind, want, new = "invalid", "invalid_stop_price", rng.choice(["0", "-3", "100.5", "NaN", "1e19"])
    else:
        kind, want = "in the book", "invalid_stop_price"
        row = conn.execute("SELECT order_id FROM exchange.orders WHERE instrument = %s AND status IN "
                           "('open', 'partially_filled') ORDER BY random() LIMIT 1", (inst,)).fetchone()
        if row is None:
            return
        oid, new = row[0], rng.randint(94, 106)
    try:
        with conn.transaction():  # a savepoint
            conn.execute("SELECT status FROM exchange.amend_order(%s, stop_price => %s::numeric)", (oid, new))
    except psycopg.errors.DatabaseError as e:
        if e.sqlstate == "22023" and reason(e) == want:
            shared.count_move(f"refused {want} ({kind})")
            return
        # A race: the order triggered, filled or was cancelled meanwhile, the price moved, a halt.
        if (e.sqlstate, reason(e)) in EXPECTED:
            shared.count_move(f"refused {reason(e)} ({kind}, a race)")
            return
        raise
    if kind == "reached":  # the last price moved back meanwhile (another session's trade)
        shared.count_move("reached one accepted (a race)")
        moved.append((oid, new))
        return
    raise AssertionError(f"a move ({kind}) of {oid} to {new} was accepted")


def call(rng, conn, inst, shared, placed, moved, new_clients):
    r = rng.random()
    if r < 0.4:
        rows = conn.execute("SELECT order_id FROM exchange.place_orders(%s::jsonb)",
                            (json.dumps([order(rng, inst, new_clients) for _ in range(rng.randint(1, 8))]),)).fetchall()
        placed.extend(row[0] for row in rows if row[0] is not None)
    elif r < 0.65:
        o = order(rng, inst, new_clients)
        row = conn.execute("SELECT order_id FROM exchange.place_order(%s, %s, %s, %s, %s, %s, "
                           "idempotency_key => %s, display_quantity => %s, stop_price => %s)",
                           (o["client_id"], inst, o["side"], o["type"], o["quantity"], o.get("price"),
                            o.get("idempotency_key"), o.get("display_quantity"), o.get("stop_price"))).fetchone()
        placed.append(row[0])
    elif r < 0.85 and new_clients and rng.random() < 0.05:
        # cancel_all_orders (0.14), a call of its own transaction: one of the old clients' orders on both
        # instruments or on this one, their instruments locked first as by cancel_orders. Whatever it answers
        # is cancelled; what the other sessions placed for that client meanwhile may rest.
        client = f"old{rng.randrange(20)}"
        rows = conn.execute("SELECT status FROM exchange.cancel_all_orders(%s, %s)",
                            (client, rng.choice([None, inst]))).fetchall()
        assert all(row[0] == "cancelled" for row in rows), f"cancel_all_orders({client}) answered {rows}"
        shared.count("cancel_all_orders cancelled", len(rows))
    elif r < 0.85:
        # A call of its own transaction may cancel on both instruments.
        with shared.lock:
            pool = shared.ids[inst] if not new_clients or rng.random() < 0.5 else sum(shared.ids.values(), [])
            ids = rng.sample(pool, min(6, len(pool)))
        if rng.random() < 0.5:
            conn.execute("SELECT count(*) FROM exchange.cancel_orders(%s::uuid[])", (ids,))
        else:  # a client per id (0.9): some own theirs, most do not (a refusal row), some name none
            clients = [rng.choice([None, f"old{rng.randrange(20)}"]) for _ in ids]
            conn.execute("SELECT count(*) FROM exchange.cancel_orders(%s::uuid[], %s::text[])", (ids, clients))
    elif r < 0.93:
        with shared.lock:
            oid = rng.choice(shared.ids[inst]) if shared.ids[inst] else None
        if oid is not None:
            conn.execute("SELECT status FROM exchange.amend_order(%s, quantity => %s)", (oid, rng.randint(1, 6)))
    else:
        move_stop(rng, conn, inst, shared, moved)


def trader(dsn, seed, transactions, shared):
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(transactions):
            inst = rng.choice(INSTRUMENTS)
            placed, moved = [], []
            try:
                calls = 1 if rng.random() < 0.6 else rng.randint(2, 3)
                with conn.transaction():
                    for _ in range(calls):
                        call(rng, conn, inst, shared, placed, moved, calls == 1)
                with shared.lock:
                    shared.ids[inst].extend(placed)
                    shared.moved.extend(moved)
                shared.count("ok")
            except AssertionError as e:
                with shared.lock:
                    shared.unexpected.append(f"assertion: {e}")
            except psycopg.errors.DatabaseError as e:
                key = (e.sqlstate, reason(e))
                shared.count(key)
                # invalid_stop_price is a race only for a stop that triggered and rests meanwhile
                if key not in EXPECTED or (key == ("22023", "invalid_stop_price")
                                           and "is not a pending stop order" not in str(e)):
                    with shared.lock:
                        shared.unexpected.append(f"{e.sqlstate}: {str(e).splitlines()[0]}")


def halter(dsn, done, shared):
    rng = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not done.wait(rng.random() * 0.02):
            status = rng.choice(["halted", "active", "active"])
            conn.execute("UPDATE exchange.instruments SET status = %s WHERE symbol = 'C2'", (status,))
            shared.count(f"halter {status}")
        conn.execute("UPDATE exchange.instruments SET status = 'active' WHERE symbol = 'C2'")


def main():
    dsn = sys.argv[1]
    transactions = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION exchange")
        for symbol in INSTRUMENTS:
            conn.execute("SELECT exchange.create_instrument(%s, 1, 1)", (symbol,))
        # The clients of the transactions of several calls.
        conn.execute("SELECT count(*) FROM exchange.place_orders((SELECT jsonb_agg(jsonb_build_object("
                     "'client_id', 'old' || g, 'instrument', 'C1', 'side', 'buy', 'type', 'limit', "
                     "'quantity', 1, 'price', 1)) FROM generate_series(0, 19) g))")
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    shared = Shared()
    done = threading.Event()
    traders = [threading.Thread(target=trader, args=(dsn, seed, transactions, shared)) for seed in range(4)]
    halt = threading.Thread(target=halter, args=(dsn, done, shared))
    for t in traders + [halt]:
        t.start()
    for t in traders:
        t.join()
    done.set()
    halt.join()
    with psycopg.connect(dsn, autocommit=True) as conn:
        restarted = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] != started
        problems, gaps, fills = consistency_problems(conn)
        stop_trouble = stop_problems(conn) + iceberg_stop_problems(conn)
        # Every committed move is journaled: an 'order_amended' entry of its order at its new stop.
        unjournaled = sum(1 for oid, stop in shared.moved if not conn.execute(
            "SELECT EXISTS (SELECT FROM exchange.events WHERE order_id = %s AND kind = 'order_amended' "
            "AND (payload->>'stop_price')::numeric = %s)", (oid, stop)).fetchone()[0])
        twice = conn.execute("SELECT count(*) FROM (SELECT 1 FROM exchange.orders WHERE idempotency_key IS NOT NULL "
                             "GROUP BY client_id, idempotency_key HAVING count(*) > 1) d").fetchone()[0]
        orders, trades = conn.execute("SELECT (SELECT count(*) FROM exchange.orders), "
                                      "(SELECT count(*) FROM exchange.trades)").fetchone()
        stops = dict(conn.execute(
            "SELECT 'placed', count(*) FROM exchange.orders WHERE stop_price IS NOT NULL UNION ALL "
            "SELECT 'pending', count(*) FROM exchange.orders WHERE status = 'pending' UNION ALL "
            "SELECT 'would_trigger', count(*) FROM exchange.orders WHERE reject_reason = 'stop_would_trigger' UNION ALL "
            "SELECT 'triggered', count(*) FROM exchange.events WHERE kind = 'order_triggered' UNION ALL "
            "SELECT 'iceberg_placed', count(*) FROM exchange.orders WHERE stop_price IS NOT NULL "
            "AND display_quantity IS NOT NULL AND status <> 'rejected' UNION ALL "
            "SELECT 'iceberg_triggered', count(*) FROM exchange.events e JOIN exchange.orders o USING (order_id) "
            "WHERE e.kind = 'order_triggered' AND o.display_quantity IS NOT NULL").fetchall())
    outcomes = {str(k): v for k, v in sorted(shared.outcomes.items(), key=str)}
    print(f"concurrency: 4 sessions x {transactions} transactions, {orders} orders, {trades} trades, "
          f"stop orders {stops}, outcomes {outcomes}, stop price moves {dict(sorted(shared.moves.items()))} "
          f"({len(shared.moved)} committed)")
    failed = False
    if shared.unexpected:
        print(f"FAIL: {len(shared.unexpected)} unexpected errors, first: {shared.unexpected[:3]}", file=sys.stderr)
        failed = True
    if restarted or problems or gaps or fills or twice or stop_trouble or unjournaled:
        print(f"FAIL: restarted {restarted}, verify {problems}, journal gaps {gaps}, orders whose fills disagree "
              f"with trades {fills}, idempotency keys used twice {twice}, stop orders against the journal "
              f"and stop-limit icebergs {stop_trouble}, committed moves not journaled {unjournaled}", file=sys.stderr)
        failed = True
    if shared.outcomes.get("ok", 0) < transactions or trades == 0 or stops["triggered"] == 0 or \
            stops["iceberg_triggered"] == 0 or \
            not shared.moves.get("moved") or not any(k.startswith("refused stop_would_trigger") for k in shared.moves) \
            or not shared.outcomes.get("cancel_all_orders cancelled"):
        print("FAIL: the sessions exercised too little (see outcomes)", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
