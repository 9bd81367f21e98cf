"""The WebSocket market-data feed against a real PostgreSQL and pgx-frontend.

Clients are python3-websockets; orders go in through psql-level calls to
exchange.place_orders / cancel_order. Fixtures: feed_fixtures.py.
"""
import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest
import requests
import websockets

from harness import wait_for_port
from feed_fixtures import (DSN, HTTP_PORT, WS_URL, BookCopy, Frontend, connect, db, frontend,  # noqa: F401
                           journal_seq, listener_pid, orderbook, place, recv_json, run, subscribe, until_pong)
from rest_fixtures import metric


def random_burst(operations, seed, instrument="BTC-USD", dsn=DSN):
    """~`operations` random orders (limit, market, IOC) and cancels around 100.00, in small transactions."""
    rng = random.Random(seed)
    conn = psycopg.connect(dsn, autocommit=True)
    resting = []
    done = 0
    while done < operations:
        if resting and rng.random() < 0.3:
            order_id = resting.pop(rng.randrange(len(resting)))
            try:
                conn.execute("SELECT exchange.cancel_order(%s)", (order_id,))
            except psycopg.errors.ObjectNotInPrerequisiteState:
                pass  # filled in the meantime
            done += 1
            continue
        batch = []
        for _ in range(rng.randint(1, 8)):
            side = rng.choice(["buy", "sell"])
            order = {"client_id": f"c{rng.randint(1, 6)}", "instrument": instrument, "side": side,
                     "quantity": str(Decimal(rng.randint(1, 30000)) / 10000), "stp": "none"}
            if rng.random() < 0.08:
                order["type"] = "market"
            else:
                order["type"] = "limit"
                offset = rng.randint(-30, 30) + (-8 if side == "buy" else 8)
                order["price"] = str(Decimal(10000 + offset) / 100)
                order["time_in_force"] = "ioc" if rng.random() < 0.1 else "gtc"
            batch.append(order)
        for row in place(conn, batch):
            if row["status"] in ("open", "partially_filled"):
                resting.append(row["order_id"])
        done += len(batch)
        time.sleep(0.004)  # spread over a second or two, so that a client can join mid-burst
    conn.close()


async def follow(ws, book, until_seq, trades=None, orders=None, timeout=20.0):
    """Applies deltas (and collects trades/orders) until the book reaches until_seq."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while book.seq < until_seq:
        msg = await recv_json(ws, max(0.1, deadline - loop.time()))
        if msg["type"] == "delta":
            book.apply(msg)
        elif msg["type"] == "trade" and trades is not None:
            trades.append(msg)
        elif msg["type"] == "order" and orders is not None:
            orders.append(msg)
        elif msg["type"] not in ("trade", "order"):
            raise AssertionError(f"unexpected {msg}")


async def messages_until(ws, book, target):
    """Every message until the book reaches target (its deltas applied), then those up to a pong."""
    messages = []
    while book.seq < target:
        msg = await recv_json(ws)
        messages.append(msg)
        if msg["type"] == "delta":
            book.apply(msg)
    return messages + await until_pong(ws)


def test_ping_pong_and_bad_messages(frontend):
    async def scenario():
        ws = await connect()
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
        bad_messages = [
            ("not json", "invalid_json"),
            ("[1]", "invalid_message"),
            ('{"type":"dance"}', "unknown_type"),
            ('{"type":"subscribe"}', "invalid_channels"),
            ('{"type":"subscribe","channels":["gossip"]}', "invalid_channels"),
            ('{"type":"subscribe","channels":["trades"],"instruments":"BTC-USD"}', "invalid_instruments"),
            ('{"type":"subscribe","channels":["trades"],"from_seq":{"BTC-USD":1.5}}', "invalid_from_seq"),
            ('{"type":"subscribe","channels":["trades"],"batch":"yes"}', "invalid_batch"),
        ]
        for bad, code in bad_messages:
            await ws.send(bad)
            reply = await recv_json(ws)
            assert reply["type"] == "error" and reply["code"] == code, (bad, reply)
        await ws.send(b"\x01binary")
        assert (await recv_json(ws))["code"] == "invalid_message"
        await ws.send(json.dumps({"type": "subscribe", "channels": ["orderbook_deltas"], "instruments": ["NOPE-USD"]}))
        assert (await recv_json(ws))["type"] == "subscribed"
        assert (await recv_json(ws))["code"] == "unknown_instrument"
        await ws.send(json.dumps({"type": "ping"}))  # the connection survived all of that
        assert await recv_json(ws) == {"type": "pong"}
        # A protocol-level ping is answered too.
        await asyncio.wait_for(await ws.ping(), 5)
        await ws.close()

        ws = await connect()  # oversized: 1009
        await ws.send("x" * (100 << 10))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.code == 1009

        ws = await connect()  # abusive: closed with 1008 after a run of errors
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(100):
                await ws.send("nonsense")
                await recv_json(ws)
        assert closed.value.code == 1008

        with pytest.raises(websockets.InvalidStatusCode) as wrong_path:
            await websockets.connect(WS_URL.replace("/stream", "/elsewhere"))
        assert wrong_path.value.status_code == 404

    run(scenario())


def test_book_from_snapshot_and_deltas_matches_the_exchange(db, frontend):
    async def scenario():
        early = await connect()
        await subscribe(early, ["orderbook_deltas", "trades", "orders"], ["BTC-USD"])
        early_book = BookCopy(await recv_json(early))
        snapshot_seq = early_book.seq
        burst = asyncio.create_task(asyncio.to_thread(random_burst, 500, 4))
        await asyncio.sleep(0.3)
        late = await connect()  # joins in the middle of the burst
        await subscribe(late, ["orderbook_deltas"], ["BTC-USD"])
        late_book = BookCopy(await recv_json(late))
        await burst
        target = journal_seq(db, "BTC-USD")
        assert target > snapshot_seq + 300
        assert snapshot_seq < late_book.seq < target  # really joined mid-burst
        trades, orders = [], []
        await follow(early, early_book, target, trades, orders)
        await follow(late, late_book, target)
        rest = await until_pong(early)
        trades += [m for m in rest if m["type"] == "trade"]
        orders += [m for m in rest if m["type"] == "order"]
        expected = orderbook(db, "BTC-USD")
        assert len(expected) > 10
        assert early_book.levels == expected
        assert late_book.levels == expected

        # One order update per journal entry, in sequence order.
        assert [o["seq"] for o in orders] == list(range(snapshot_seq + 1, target + 1))
        assert {o["event"] for o in orders} >= {"placed", "cancelled"}
        cancels = [o for o in orders if o["event"] == "cancelled"]
        assert all(o["status"] == "cancelled" and o["remaining_quantity"] == "0" and o["side"] in ("buy", "sell")
                   for o in cancels)
        # Side and type as the order's row has them, whether the entry's
        # payload carries them (placed) or the row is read (cancelled).
        kinds = dict(db.execute("SELECT order_id::text, side || ' ' || type FROM exchange.orders "
                                " WHERE instrument = 'BTC-USD'").fetchall())
        assert [f'{o["side"]} {o["order_type"]}' for o in orders] == [kinds[o["order_id"]] for o in orders]
        rows = db.execute(
            "SELECT trade_id::text, price, quantity, seq, "
            "       (CASE maker_side WHEN 'buy' THEN buy_order_id ELSE sell_order_id END)::text, "
            "       CASE maker_side WHEN 'buy' THEN 'sell' ELSE 'buy' END "
            "  FROM exchange.trades WHERE instrument = 'BTC-USD' AND seq > %s ORDER BY seq, trade_no",
            (snapshot_seq,)).fetchall()
        assert len(rows) > 20
        got = [(t["trade_id"], Decimal(t["price"]), Decimal(t["quantity"]), t["seq"], t["maker_order_id"],
                t["taker_side"]) for t in trades]
        assert got == [tuple(r) for r in rows]
        assert all(isinstance(t["price"], str) and isinstance(t["quantity"], str) for t in trades)
        await early.close()
        await late.close()

    run(scenario())


def test_resume_from_a_sequence_delivers_exactly_the_missed_entries(db, frontend):
    async def scenario():
        witness = await connect()  # stays connected: its deltas are the reference
        await subscribe(witness, ["orderbook_deltas", "trades"], ["BTC-USD"])
        book = BookCopy(await recv_json(witness))
        first = await connect()
        await subscribe(first, ["orderbook_deltas"], ["BTC-USD"])
        first_book = BookCopy(await recv_json(first))
        random_burst(40, 11)
        await follow(first, first_book, first_book.seq + 10)
        left_at = first_book.seq
        await first.close()
        random_burst(60, 12)  # missed while away
        target = journal_seq(db, "BTC-USD")
        seen = await messages_until(witness, book, target)
        expected = [m for m in seen if m["type"] in ("delta", "trade") and m["seq"] > left_at]

        back = await connect()
        await subscribe(back, ["orderbook_deltas", "trades"], ["BTC-USD"], from_seq={"BTC-USD": left_at})
        got = []
        while not got or got[-1]["type"] != "delta" or got[-1]["seq"] < target:
            got.append(await recv_json(back))
        got += await until_pong(back)
        assert got == expected  # no snapshot, nothing twice, nothing missing
        assert [m["seq"] for m in got if m["type"] == "delta"] == list(range(left_at + 1, target + 1))

        place(db, [{"client_id": "r", "instrument": "BTC-USD", "side": "buy", "type": "limit",
                    "quantity": "0.1", "price": "1.00"}])
        live = await recv_json(back)
        assert live["type"] == "delta" and live["seq"] == target + 1

        # A sequence the journal never had: a snapshot instead.
        future = await connect()
        await subscribe(future, ["orderbook_deltas"], ["BTC-USD"], from_seq={"BTC-USD": 10 ** 12})
        snapshot = await recv_json(future)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == target + 1
        for ws in (witness, back, future):
            await ws.close()

    run(scenario())


def test_a_resume_across_entries_removed_from_the_journal_gets_a_snapshot(db, frontend):
    """The journal refuses DELETE (extension 0.10); an owner who disables the trigger and removes
    entries anyway leaves a hole in the sequence. A client resuming from before the hole gets a
    snapshot, not a replay with a gap; one resuming after it still gets the replay."""
    db.execute("SELECT exchange.create_instrument('HOLE-USD', 0.01, 0.0001)")
    random_burst(40, 41, "HOLE-USD")
    left_at = journal_seq(db, "HOLE-USD")
    random_burst(40, 42, "HOLE-USD")
    end = journal_seq(db, "HOLE-USD")
    assert end > left_at + 10
    remove = ("DELETE FROM exchange.events WHERE seq = %s AND instrument_id = "
              "(SELECT instrument_id FROM exchange.instruments WHERE symbol = 'HOLE-USD')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        db.execute(remove, (left_at + 3,))
    with db.transaction():
        db.execute("ALTER TABLE exchange.events DISABLE TRIGGER events_append_only")
        assert db.execute(remove, (left_at + 3,)).rowcount == 1
        db.execute("ALTER TABLE exchange.events ENABLE ALWAYS TRIGGER events_append_only")

    async def scenario():
        before = await connect()
        await subscribe(before, ["orderbook_deltas"], ["HOLE-USD"], from_seq={"HOLE-USD": left_at})
        first = await recv_json(before)
        assert first["type"] == "snapshot" and first["seq"] == end
        assert BookCopy(first).levels == orderbook(db, "HOLE-USD")
        after = await connect()
        await subscribe(after, ["orderbook_deltas"], ["HOLE-USD"], from_seq={"HOLE-USD": left_at + 3})
        got = []
        while not got or got[-1]["seq"] < end:
            got.append(await recv_json(after))
        assert [m["seq"] for m in got] == list(range(left_at + 4, end + 1))
        assert {m["type"] for m in got} == {"delta"}
        for ws in (before, after):
            await ws.close()

    run(scenario())


def test_a_resume_from_inside_a_pruned_date_gets_a_snapshot(db, frontend):
    """exchange.prune (extension 0.17) removes a settled trade date's journal entries (all but the
    newest and the newest with a trade) and its finished orders. A client resuming from inside the
    pruned entries gets a snapshot equal to the book, one resuming from the last pruned entry the
    replay of what came after; GET /orders/{id} of a removed order is 404, of an order resting since
    that date 200. (The date's entries are stamped 2019-01-02 through the columns' defaults: the
    trading functions stamp now(). Nothing else in this module trades on a past date.)"""
    db.execute("SELECT exchange.create_instrument('PRUNE-USD', 0.01, 0.0001)")
    try:
        for table, column in (("events", "created_at"), ("trades", "executed_at")):
            db.execute(f"ALTER TABLE exchange.{table} ALTER {column} SET DEFAULT '2019-01-02 12:00+00'")
        random_burst(60, 44, "PRUNE-USD")
    finally:
        for table, column in (("events", "created_at"), ("trades", "executed_at")):
            db.execute(f"ALTER TABLE exchange.{table} ALTER {column} SET DEFAULT now()")
    day_end = journal_seq(db, "PRUNE-USD")
    day_resting = {o for (o,) in db.execute("SELECT order_id FROM exchange.orders WHERE instrument = 'PRUNE-USD' "
                                            "AND status IN ('open', 'partially_filled')").fetchall()}
    [settled] = db.execute("SELECT to_seq FROM exchange.settle('2019-01-02') WHERE instrument = 'PRUNE-USD'"
                           ).fetchone()
    assert settled == day_end
    random_burst(30, 45, "PRUNE-USD")
    end = journal_seq(db, "PRUNE-USD")
    assert end > day_end + 5
    query = "SELECT order_id, status FROM exchange.orders WHERE instrument = 'PRUNE-USD'"
    before = dict(db.execute(query).fetchall())
    [(through_seq, entries, orders)] = db.execute(
        "SELECT through_seq, entries, orders FROM exchange.prune('2019-01-02') WHERE instrument = 'PRUNE-USD'"
    ).fetchall()
    assert through_seq == day_end and entries >= day_end - 2 and orders > 0
    after = dict(db.execute(query).fetchall())
    gone = set(before) - set(after)
    assert len(gone) == orders and all(before[o] in ("filled", "cancelled", "rejected") for o in gone)
    # An order resting at the end of the date stays, whether it rests on or finished after the date.
    assert day_resting and day_resting <= set(after)
    base = f"http://127.0.0.1:{HTTP_PORT}"
    r = requests.get(f"{base}/orders/{next(iter(gone))}", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "order_not_found", r.text
    for order_id in sorted(day_resting)[:3]:
        r = requests.get(f"{base}/orders/{order_id}", timeout=10)
        assert r.status_code == 200 and r.json()["order_id"] == str(order_id), r.text

    async def scenario():
        inside = await connect()
        await subscribe(inside, ["orderbook_deltas"], ["PRUNE-USD"], from_seq={"PRUNE-USD": 1})
        first = await recv_json(inside)
        assert first["type"] == "snapshot" and first["seq"] == end
        assert BookCopy(first).levels == orderbook(db, "PRUNE-USD")
        after_it = await connect()
        await subscribe(after_it, ["orderbook_deltas"], ["PRUNE-USD"], from_seq={"PRUNE-USD": day_end})
        got = []
        while not got or got[-1]["seq"] < end:
            got.append(await recv_json(after_it))
        assert [m["seq"] for m in got] == list(range(day_end + 1, end + 1))
        assert {m["type"] for m in got} == {"delta"}
        for ws in (inside, after_it):
            await ws.close()

    run(scenario())


def test_a_client_that_asks_for_batches_gets_the_same_messages_batched(db, frontend):
    """With "batch": true in its subscribe, the messages ready for a client at the same time come as
    one {"type":"batch","messages":[...]} (never a batch of one); flattened, its stream is exactly
    that of a client without batches, snapshot included."""
    async def flat(ws, pending, sizes):
        while not pending:
            msg = await recv_json(ws)
            if msg["type"] == "batch":
                assert len(msg["messages"]) > 1, msg
                sizes.append(len(msg["messages"]))
                pending.extend(msg["messages"])
            else:
                pending.append(msg)
        return pending.pop(0)

    async def scenario():
        channels = ["orderbook_deltas", "trades"]
        plain = await connect()
        await subscribe(plain, channels, ["BTC-USD"])
        plain_snapshot = await recv_json(plain)
        batched, pending, sizes = await connect(), [], []
        await batched.send(json.dumps({"type": "subscribe", "channels": channels, "instruments": ["BTC-USD"],
                                       "batch": True}))
        ack = await flat(batched, pending, sizes)
        assert ack["type"] == "subscribed" and ack["batch"] is True
        assert await flat(batched, pending, sizes) == plain_snapshot  # nothing traded in between
        await asyncio.to_thread(random_burst, 300, 51)
        target = journal_seq(db, "BTC-USD")
        assert target > plain_snapshot["seq"] + 100

        def done(msgs):
            return any(m["type"] == "delta" and m["seq"] == target for m in msgs)

        expected = []
        while not done(expected):
            expected.append(await recv_json(plain))
        expected += await until_pong(plain)
        got = []
        while not done(got):
            got.append(await flat(batched, pending, sizes))
        await batched.send(json.dumps({"type": "ping"}))
        while (msg := await flat(batched, pending, sizes))["type"] != "pong":
            got.append(msg)
        assert got == expected
        assert sizes, "no message came in a batch"
        for ws in (plain, batched):
            await ws.close()

    run(scenario())


def test_instrument_filter(db, frontend):
    async def scenario():
        eth = await connect()
        await subscribe(eth, ["trades", "orders"], ["ETH-USD"])
        everything = await connect()
        await subscribe(everything, ["orders"])
        place(db, [{"client_id": "f1", "instrument": "BTC-USD", "side": "buy", "type": "limit",
                    "quantity": "0.5", "price": "2.00"}])
        place(db, [{"client_id": "f2", "instrument": "ETH-USD", "side": "sell", "type": "limit",
                    "quantity": "0.5", "price": "3000.00"},
                   {"client_id": "f3", "instrument": "ETH-USD", "side": "buy", "type": "limit",
                    "quantity": "0.2", "price": "3000.00"}])
        got = [await recv_json(eth) for _ in range(3)] + await until_pong(eth)
        assert [m["type"] for m in got] == ["order", "trade", "order"]
        assert {m["instrument"] for m in got} == {"ETH-USD"}
        assert got[1]["price"] == "3000.00" and Decimal(got[1]["quantity"]) == Decimal("0.2")
        assert got[2]["client_id"] == "f3" and got[2]["status"] == "filled"
        all_orders = [await recv_json(everything) for _ in range(3)]
        assert sorted(m["client_id"] for m in all_orders) == ["f1", "f2", "f3"]

        await everything.send(json.dumps({"type": "unsubscribe", "channels": ["orders"]}))
        assert (await recv_json(everything))["type"] == "unsubscribed"
        place(db, [{"client_id": "f4", "instrument": "ETH-USD", "side": "buy", "type": "limit",
                    "quantity": "0.1", "price": "1.00"}])
        assert (await recv_json(eth))["client_id"] == "f4"  # committed and published by now
        assert await until_pong(everything) == []
        await eth.close()
        await everything.close()

    run(scenario())


def test_a_client_that_never_reads_is_disconnected_and_others_keep_receiving(db, frontend):
    def ladder():  # 2,000 resting levels
        return [{"client_id": "maker", "instrument": "SLOW-USD", "side": "buy", "type": "limit", "quantity": "1",
                 "price": str(Decimal(100 + i) / 100)} for i in range(2000)]

    sweep = [{"client_id": "taker", "instrument": "SLOW-USD", "side": "sell", "type": "market", "quantity": "2000"}]

    async def scenario():
        normal = await connect()
        await subscribe(normal, ["orderbook_deltas", "trades", "orders"], ["SLOW-USD"])
        book = BookCopy(await recv_json(normal))
        slow = await connect(max_queue=1)  # the library stops reading the socket after one message
        await subscribe(slow, ["orderbook_deltas", "trades", "orders"])
        received = 1
        # Each round is ~1.6 MB of messages (2,000 orders, then one sweep with
        # 2,000 trades): far beyond the 4 MB queue and the socket buffers.
        for _ in range(5):
            await asyncio.to_thread(place, db, ladder())
            await asyncio.to_thread(place, db, sweep)
            await follow(normal, book, journal_seq(db, "SLOW-USD"), timeout=20)
        assert book.levels == orderbook(db, "SLOW-USD")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
                received += 1
        assert closed.value.code not in (1000, 1001)
        assert received < 5 * 4002  # it was cut off, not served
        await normal.close()

    run(scenario())


def test_feed_catches_up_after_its_listen_connection_is_killed(db, frontend):
    async def scenario():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas"], ["BTC-USD"])
        book = BookCopy(await recv_json(ws))
        random_burst(30, 21)
        old = listener_pid(db)
        db.execute("SELECT pg_terminate_backend(%s)", (old,))
        random_burst(60, 22)  # committed while the feed is reconnecting
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while listener_pid(db) in (None, old):
            assert loop.time() < deadline, "the feed did not reconnect"
            await asyncio.sleep(0.05)
        random_burst(30, 23)
        await follow(ws, book, journal_seq(db, "BTC-USD"))
        assert book.levels == orderbook(db, "BTC-USD")
        await ws.close()

    run(scenario())


def feed_counters():
    """(notifications received, journal entries read, open WebSocket connections) from /metrics."""
    text = requests.get(f"http://127.0.0.1:{HTTP_PORT}/metrics", timeout=10).text
    return (metric(text, "feed_notifications_total"), metric(text, "feed_journal_entries_read_total"),
            metric(text, "websocket_connections"))


def settled_counters(since_notifications):
    """feed_counters() once no client is connected, a notification after `since_notifications` has
    arrived and none has for 0.3 s (the listener has acted on what it got)."""
    deadline = time.monotonic() + 10
    last = None
    while True:
        now = feed_counters()
        if now[2] == 0 and now[0] > since_notifications and last is not None and now[:2] == last[:2]:
            return now
        assert time.monotonic() < deadline, f"the feed did not settle: {now}"
        last = now
        time.sleep(0.3)


def test_an_instrument_nobody_follows_is_not_read_and_joining_it_misses_nothing(db, frontend):
    """The feed reads no journal entry of an instrument without subscribers (its notifications only
    move the feed's position); a client that joins it mid-burst, and one that resumes from a
    sequence passed while nobody followed, still get every entry after their starting point."""
    db.execute("SELECT exchange.create_instrument('QUIET-USD', 0.01, 0.0001)")
    start = feed_counters()
    random_burst(200, 31, "QUIET-USD")  # a new instrument, first seen by the feed in a notification
    notified, read, _ = settled_counters(start[0])
    assert read == start[1], "entries of an instrument nobody follows were read"
    first_end = journal_seq(db, "QUIET-USD")
    assert first_end > 100

    async def scenario():
        burst = asyncio.create_task(asyncio.to_thread(random_burst, 500, 32, "QUIET-USD"))
        await asyncio.sleep(0.3)
        ws = await connect()  # the first client of QUIET-USD, mid-burst
        await subscribe(ws, ["orderbook_deltas", "orders"], ["QUIET-USD"])
        book = BookCopy(await recv_json(ws))
        snapshot_seq = book.seq
        await burst
        target = journal_seq(db, "QUIET-USD")
        assert first_end < snapshot_seq < target  # really joined mid-burst
        orders = []
        await follow(ws, book, target, orders=orders)
        orders += [m for m in await until_pong(ws) if m["type"] == "order"]
        assert book.levels == orderbook(db, "QUIET-USD")
        # Order updates have no snapshot: consecutive from where the feed began reading, which is
        # at or before the snapshot, through the last entry.
        seqs = [o["seq"] for o in orders]
        assert seqs == list(range(seqs[0], target + 1)) and seqs[0] <= snapshot_seq + 1
        await ws.close()
        return snapshot_seq

    joined_at = run(scenario())
    after_join = settled_counters(notified)
    target = journal_seq(db, "QUIET-USD")
    # Read: what followed the client's join (and a little before it), none of the first burst.
    assert target - joined_at <= after_join[1] - read <= target - first_end

    # Nobody follows it again: more entries, none read; a client resuming from where the last
    # one left gets exactly the entries after it from the journal, then the live ones.
    random_burst(100, 33, "QUIET-USD")
    final = settled_counters(after_join[0])
    assert final[1] == after_join[1], "entries were read after the last client left"
    end = journal_seq(db, "QUIET-USD")

    async def resume():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas"], ["QUIET-USD"], from_seq={"QUIET-USD": target})
        got = []
        while not got or got[-1]["seq"] < end:
            got.append(await recv_json(ws))
        assert [m["seq"] for m in got] == list(range(target + 1, end + 1))
        assert {m["type"] for m in got} == {"delta"}
        place(db, [{"client_id": "q", "instrument": "QUIET-USD", "side": "buy", "type": "limit",
                    "quantity": "0.1", "price": "1.00"}])
        live = await recv_json(ws)
        assert live["type"] == "delta" and live["seq"] == end + 1
        await ws.close()

    run(resume())


def test_clients_coming_and_going_on_two_busy_instruments_see_no_gap(db, frontend):
    """Three clients keep subscribing, unsubscribing, reconnecting and pausing on two instruments
    while both trade, so each instrument is followed, then not, then again many times: every
    snapshot is followed by the next sequence without a gap, and each client's last book equals
    the exchange's. Some entries were never read (nobody followed them)."""
    symbols = ["BTC-USD", "ETH-USD"]
    before = {sym: journal_seq(db, sym) for sym in symbols}
    read_before = feed_counters()[1]

    async def client(n, rng, stop):
        ws, periods, last = None, 0, None
        while True:
            if ws is None:
                ws = await connect()
            sym = rng.choice(symbols)
            await ws.send(json.dumps({"type": "subscribe", "channels": ["orderbook_deltas"], "instruments": [sym]}))
            assert (await recv_json(ws))["type"] == "subscribed"
            book = BookCopy(await recv_json(ws))
            last = (ws, sym, book)
            if stop.is_set():
                return last, periods
            loop = asyncio.get_running_loop()
            until = loop.time() + rng.uniform(0.05, 0.4)
            got = 0
            while loop.time() < until:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, until - loop.time())))
                except asyncio.TimeoutError:
                    break
                book.apply(msg)  # asserts the next sequence: no gap after the snapshot or between deltas
                got += 1
            periods += got > 0
            if rng.random() < 0.5:
                await ws.send(json.dumps({"type": "unsubscribe", "channels": ["orderbook_deltas"],
                                          "instruments": [sym]}))
                while (msg := await recv_json(ws))["type"] != "unsubscribed":
                    book.apply(msg)  # deltas sent before the unsubscribe took effect
            else:
                await ws.close()
                ws = None
            await asyncio.sleep(rng.uniform(0.02, 0.3))  # often nobody follows an instrument meanwhile

    async def scenario():
        bursts = [asyncio.create_task(asyncio.to_thread(random_burst, 1500, 40 + i, sym))
                  for i, sym in enumerate(symbols)]
        await asyncio.sleep(0.3)  # the first entries of both with nobody following
        stop = asyncio.Event()
        clients = [asyncio.create_task(client(n, random.Random(50 + n), stop)) for n in range(3)]
        await asyncio.gather(*bursts)
        stop.set()
        results = await asyncio.gather(*clients)
        for (ws, sym, book), periods in results:
            await follow(ws, book, journal_seq(db, sym))
            assert book.levels == orderbook(db, sym)
            assert periods >= 3, periods  # it really followed the trading several times
            await ws.close()

    run(scenario())
    written = sum(journal_seq(db, sym) - before[sym] for sym in symbols)
    read = settled_counters(0)[1] - read_before
    assert 0 < read < written, (read, written)


def post_order(api, client, symbol, side, quantity, price=None, **extra):
    """POST /orders: a limit order at price, a market order without one; 201 asserted, the order returned."""
    body = {"client_id": client, "instrument": symbol, "side": side, "quantity": quantity,
            "type": "market" if price is None else "limit", **({"price": price} if price else {}), **extra}
    r = requests.post(f"{api}/orders", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_triggered_stop_orders_are_entries_of_their_own_with_their_trades_and_updates(db, frontend):
    """Stop orders (extension 0.13) wait outside the book: placing one is an entry without level changes, its
    order update pending with its stop_price. A trade at the stop price triggers it: its run is the next entry,
    'order_triggered', whose delta has its level changes, whose trades name it as the taker with its side, and
    whose order update has event "triggered"; a cascade (a triggered order's trade triggering the next stop)
    is one entry per stop order. Buy and sell stops, stop-market and stop-limit; the client's book copy stays
    the exchange's (GET /orderbook's too)."""
    symbol = "STOP-USD"
    db.execute("SELECT exchange.create_instrument(%s, 0.01, 0.001)", (symbol,))
    api = f"http://127.0.0.1:{HTTP_PORT}"

    def post(client, side, quantity, price=None, **extra):
        return post_order(api, client, symbol, side, quantity, price, **extra)

    async def scenario():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas", "trades", "orders"], [symbol])
        book = BookCopy(await recv_json(ws))
        start = book.seq
        post("x", "sell", "1", "100.00")
        post("y", "buy", "1", "100.00")  # the last trade price: 100.00
        maker = post("m", "sell", "3", "101.00")
        high = post("m", "sell", "2", "102.00")
        post("m", "sell", "1", "103.00")
        bid = post("b", "buy", "2", "99.00")
        post("b", "buy", "1", "98.00")
        first = post("s", "buy", "3", stop_price="101.00")  # a stop-market order
        second = post("s", "buy", "1", "103.00", stop_price="101.50")  # a stop-limit order
        down = post("s", "sell", "1", stop_price="99.50")
        assert [o["status"] for o in (first, second, down)] == ["pending"] * 3
        # 1 at 101.00: the first stop triggers and takes 2 at 101.00 and 1 at 102.00, which triggers the second
        # (1 at 102.00).
        up = post("t", "buy", "1", "101.00")
        # 1 at 99.00: the sell stop triggers and takes the bid's other lot at 99.00.
        fall = post("u", "sell", "1", "99.00")
        assert [(t["price"], t["quantity"]) for t in up["trades"] + fall["trades"]] == \
            [("101.00", "1.000"), ("99.00", "1.000")]
        target = journal_seq(db, symbol)
        assert target == fall["seq"] + 1 == up["seq"] + 4
        messages = await messages_until(ws, book, target)
        assert book.levels == orderbook(db, symbol)
        rest = requests.get(f"{api}/orderbook", params={"instrument": symbol, "levels": 100}, timeout=10).json()
        assert rest["seq"] == book.seq
        assert book.levels == {(side, Decimal(level["price"])): (Decimal(level["quantity"]), level["order_count"])
                               for side, key in (("buy", "bids"), ("sell", "asks")) for level in rest[key]}
        assert book.levels == {("sell", Decimal("103.00")): (Decimal("1"), 1),
                               ("buy", Decimal("98.00")): (Decimal("1"), 1)}

        deltas = {m["seq"]: m["changes"] for m in messages if m["type"] == "delta"}
        orders = [m for m in messages if m["type"] == "order"]
        trades = [m for m in messages if m["type"] == "trade"]
        assert list(deltas) == [o["seq"] for o in orders] == list(range(start + 1, target + 1))
        for placed in (first, second, down):  # pending: no level changed
            assert deltas[placed["seq"]] == []
            update = next(o for o in orders if o["seq"] == placed["seq"])
            assert (update["event"], update["order_id"], update["status"], update["stop_price"]) == \
                ("placed", placed["order_id"], "pending", placed["stop_price"])
        assert "stop_price" not in next(o for o in orders if o["seq"] == up["seq"])  # a plain order's

        triggered = [(o["seq"], o["order_id"], o["client_id"], o["side"], o["order_type"], o["price"],
                      o["stop_price"], o["status"], o["quantity"], o["filled_quantity"], o["remaining_quantity"])
                     for o in orders if o["event"] == "triggered"]
        assert triggered == [
            (up["seq"] + 1, first["order_id"], "s", "buy", "market", None, "101.00", "filled", "3", "3.000", "0.000"),
            (up["seq"] + 2, second["order_id"], "s", "buy", "limit", "103.00", "101.50", "filled", "1", "1.000",
             "0.000"),
            (fall["seq"] + 1, down["order_id"], "s", "sell", "market", None, "99.50", "filled", "1", "1.000",
             "0.000")]
        assert deltas[up["seq"] + 1] == [
            {"side": "sell", "price": "101.00", "quantity": "0", "order_count": 0},
            {"side": "sell", "price": "102.00", "quantity": "1.000", "order_count": 1}]
        assert deltas[up["seq"] + 2] == [{"side": "sell", "price": "102.00", "quantity": "0", "order_count": 0}]
        assert deltas[fall["seq"] + 1] == [{"side": "buy", "price": "99.00", "quantity": "0", "order_count": 0}]

        got = [(t["seq"], t["price"], t["quantity"], t["maker_order_id"], t["taker_order_id"], t["taker_side"])
               for t in trades if t["seq"] >= up["seq"]]
        assert got == [
            (up["seq"], "101.00", "1.000", maker["order_id"], up["order_id"], "buy"),
            (up["seq"] + 1, "101.00", "2.000", maker["order_id"], first["order_id"], "buy"),
            (up["seq"] + 1, "102.00", "1.000", high["order_id"], first["order_id"], "buy"),
            (up["seq"] + 2, "102.00", "1.000", high["order_id"], second["order_id"], "buy"),
            (fall["seq"], "99.00", "1.000", bid["order_id"], fall["order_id"], "sell"),
            (fall["seq"] + 1, "99.00", "1.000", bid["order_id"], down["order_id"], "sell")]
        # What the exchange recorded: the trades table's takers and sequences.
        rows = db.execute(
            "SELECT trade_id::text, seq, CASE maker_side WHEN 'buy' THEN sell_order_id ELSE buy_order_id END::text, "
            "CASE maker_side WHEN 'buy' THEN 'sell' ELSE 'buy' END FROM exchange.trades "
            "WHERE instrument = %s AND seq > %s ORDER BY seq, trade_no", (symbol, start)).fetchall()
        assert [(t["trade_id"], t["seq"], t["taker_order_id"], t["taker_side"]) for t in trades] == \
            [tuple(r) for r in rows]
        await ws.close()

    run(scenario())
    assert db.execute("SELECT problem FROM exchange.verify(%s)", (symbol,)).fetchall() == []


def test_an_amended_stop_orders_update_carries_its_stop_price(db, frontend):
    """A stop order's amend (extension 0.14 moves its stop price) is an 'amended' order update with the order's
    stop_price: the new one after a move (alone, with a new quantity, as a JSON number), the same one after an
    amend of its quantity only; a plain order's amend has none. The delta has no level changes (pending stops
    are in no level), the update's seq is the PATCH answer's, and a trade at the new stop prices triggers both
    orders, whose triggered updates carry the new stop prices too."""
    symbol = "STOP-USD"  # test_triggered_stop_orders_...'s instrument: the cluster has room for few more
    db.execute("SELECT exchange.create_instrument(%s, 0.01, 0.001) "
               "WHERE NOT EXISTS (SELECT FROM exchange.instruments WHERE symbol = %s)", (symbol, symbol))
    db.execute("SELECT exchange.cancel_order(order_id) FROM exchange.orders "
               "WHERE instrument = %s AND status IN ('open', 'partially_filled', 'pending')", (symbol,))
    api = f"http://127.0.0.1:{HTTP_PORT}"

    def post(client, side, quantity, price=None, **extra):
        return post_order(api, client, symbol, side, quantity, price, **extra)

    def patch(order_id, body):
        r = requests.patch(f"{api}/orders/{order_id}", data=body, headers={"Content-Type": "application/json"},
                           timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    async def scenario():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas", "trades", "orders"], [symbol])
        book = BookCopy(await recv_json(ws))
        post("x", "sell", "1", "100.00")
        post("y", "buy", "1", "100.00")  # the last trade price: 100.00
        maker = post("m", "sell", "5", "102.00")
        bid = post("b", "buy", "1", "95.00")
        market = post("s", "buy", "2", stop_price="101.00")  # a stop-market order
        limit = post("s", "buy", "1", "103.00", stop_price="101.50")  # a stop-limit order
        amends = [
            patch(market["order_id"], '{"stop_price": "102.00"}'),
            patch(limit["order_id"], '{"quantity": "2", "stop_price": 101.2}'),
            patch(limit["order_id"], '{"quantity": "1.5"}'),
            patch(bid["order_id"], '{"quantity": "2"}'),
        ]
        assert [(a["status"], a["stop_price"]) for a in amends] == \
            [("pending", "102.00"), ("pending", "101.20"), ("pending", "101.20"), ("open", None)]
        up = post("t", "buy", "1", "102.00")  # triggers both
        target = journal_seq(db, symbol)
        assert target == up["seq"] + 2
        messages = await messages_until(ws, book, target)
        assert book.levels == orderbook(db, symbol)
        deltas = {m["seq"]: m["changes"] for m in messages if m["type"] == "delta"}
        updates = {m["seq"]: m for m in messages if m["type"] == "order"}

        got = [updates[a["seq"]] for a in amends]
        assert [(u["event"], u["order_id"], u["client_id"], u["side"], u["order_type"], u["status"], u["price"],
                 u.get("stop_price", "absent"), u["quantity"], u["filled_quantity"], u["remaining_quantity"])
                for u in got] == [
            ("amended", market["order_id"], "s", "buy", "market", "pending", None, "102.00", "2.000", "0.000",
             "2.000"),
            ("amended", limit["order_id"], "s", "buy", "limit", "pending", "103.00", "101.20", "2.000", "0.000",
             "2.000"),
            ("amended", limit["order_id"], "s", "buy", "limit", "pending", "103.00", "101.20", "1.500", "0.000",
             "1.500"),
            ("amended", bid["order_id"], "b", "buy", "limit", "open", "95.00", "absent", "2.000", "0.000",
             "2.000")]
        assert [deltas[a["seq"]] for a in amends[:3]] == [[], [], []]
        triggered = sorted((u["order_id"], u["stop_price"], u["status"], u["filled_quantity"])
                           for u in updates.values() if u["event"] == "triggered")
        assert triggered == sorted([(market["order_id"], "102.00", "filled", "2.000"),
                                    (limit["order_id"], "101.20", "filled", "1.500")])
        assert sorted((t["taker_order_id"], t["price"], t["quantity"], t["maker_order_id"]) for t in messages
                      if t["type"] == "trade" and t["seq"] > up["seq"]) == \
            sorted([(market["order_id"], "102.00", "2.000", maker["order_id"]),
                    (limit["order_id"], "102.00", "1.500", maker["order_id"])])
        assert book.levels[("sell", Decimal("102.00"))] == (Decimal("0.5"), 1), maker
        await ws.close()

    run(scenario())
    assert db.execute("SELECT problem FROM exchange.verify(%s)", (symbol,)).fetchall() == []


def test_a_triggered_stop_limit_iceberg_shows_only_its_tip_in_the_delta(db, frontend):
    """A stop-limit iceberg (stop_price with display_quantity) waits in no level: its placing entry's delta is
    empty. Triggered, it buys its whole quantity's worth as a taker and rests the rest: the delta of its
    'order_triggered' entry gives its level the tip (min(display, remaining)), not all it rests, and a fill of
    the tip is a delta with the next one; the client's copy stays the exchange's (GET /orderbook's too)."""
    symbol = "STOP-USD"  # the stop order tests' instrument: the cluster has room for few more
    db.execute("SELECT exchange.create_instrument(%s, 0.01, 0.001) "
               "WHERE NOT EXISTS (SELECT FROM exchange.instruments WHERE symbol = %s)", (symbol, symbol))
    db.execute("SELECT exchange.cancel_order(order_id) FROM exchange.orders "
               "WHERE instrument = %s AND status IN ('open', 'partially_filled', 'pending')", (symbol,))
    api = f"http://127.0.0.1:{HTTP_PORT}"

    def post(client, side, quantity, price=None, **extra):
        return post_order(api, client, symbol, side, quantity, price, **extra)

    async def scenario():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas", "trades", "orders"], [symbol])
        book = BookCopy(await recv_json(ws))
        post("x", "sell", "1", "100.00")
        post("y", "buy", "1", "100.00")  # the last trade price: 100.00
        low = post("m", "sell", "1", "101.00")
        high = post("m", "sell", "2", "102.00")
        ice = post("s", "buy", "5", "102.00", stop_price="101.00", display_quantity="1.5")
        assert (ice["status"], ice["stop_price"], ice["display_quantity"]) == ("pending", "101.00", "1.500")
        # 0.5 at 101.00 triggers it: it buys 0.5 at 101.00 and 2 at 102.00, and rests 2.5 showing 1.5.
        up = post("t", "buy", "0.5", "101.00")
        # 1.5 at 102.00 takes the tip: the next one is the 1.0 left.
        fill = post("u", "sell", "1.5", "102.00")
        target = journal_seq(db, symbol)
        assert target == fill["seq"] == up["seq"] + 2
        messages = await messages_until(ws, book, target)
        deltas = {m["seq"]: m["changes"] for m in messages if m["type"] == "delta"}
        updates = {m["seq"]: m for m in messages if m["type"] == "order"}

        assert deltas[ice["seq"]] == []
        assert (updates[ice["seq"]]["event"], updates[ice["seq"]]["status"],
                updates[ice["seq"]]["display_quantity"]) == ("placed", "pending", "1.500")
        assert deltas[up["seq"]] == [{"side": "sell", "price": "101.00", "quantity": "0.500", "order_count": 1}]
        assert deltas[up["seq"] + 1] == [
            {"side": "sell", "price": "101.00", "quantity": "0", "order_count": 0},
            {"side": "sell", "price": "102.00", "quantity": "0", "order_count": 0},
            {"side": "buy", "price": "102.00", "quantity": "1.500", "order_count": 1}]
        triggered = updates[up["seq"] + 1]
        assert (triggered["event"], triggered["order_id"], triggered["status"], triggered["stop_price"],
                triggered["display_quantity"], triggered["filled_quantity"], triggered["remaining_quantity"]) == \
            ("triggered", ice["order_id"], "partially_filled", "101.00", "1.500", "2.500", "2.500")
        assert all("display_quantity" not in m for m in messages if m["type"] == "order"
                   and m["order_id"] != ice["order_id"]), "a plain order's update has no display_quantity"
        assert sorted((t["seq"], t["price"], t["quantity"], t["maker_order_id"]) for t in messages
                      if t["type"] == "trade" and t["taker_order_id"] == ice["order_id"]) == \
            [(up["seq"] + 1, "101.00", "0.500", low["order_id"]), (up["seq"] + 1, "102.00", "2.000", high["order_id"])]
        assert deltas[fill["seq"]] == [{"side": "buy", "price": "102.00", "quantity": "1.000", "order_count": 1}]

        assert book.levels == orderbook(db, symbol) == {("buy", Decimal("102.00")): (Decimal("1"), 1)}
        rest = requests.get(f"{api}/orderbook", params={"instrument": symbol, "levels": 100}, timeout=10).json()
        assert (rest["seq"], rest["bids"], rest["asks"]) == \
            (book.seq, [{"price": "102.00", "quantity": "1.000", "order_count": 1}], [])
        await ws.close()

    run(scenario())
    assert db.execute("SELECT problem FROM exchange.verify(%s)", (symbol,)).fetchall() == []
    assert db.execute("SELECT remaining_lots, visible_lots FROM exchange.orders WHERE client_id = 's' "
                      "AND instrument = %s AND display_lots IS NOT NULL", (symbol,)).fetchall() == [(1000, 1000)]


def test_delete_orders_cancellations_reach_the_feed_like_single_cancels(db, frontend):
    """DELETE /orders (extension 0.14's cancel_all_orders) on three instruments: each cancelled order is a
    'cancelled' order update (status cancelled, cancelled_quantity what rested) with the seq of its answer,
    shaped as a DELETE /orders/{id}'s, whose delta removes it from its level (a level another client's order
    keeps has that order left; a pending stop order's cancel changes no level); the book copies stay the
    exchange's, and the other client's orders get no update but their own cancel's."""
    api = f"http://127.0.0.1:{HTTP_PORT}"
    symbols = ["BTC-USD", "ETH-USD", "STOP-USD"]
    db.execute("SELECT exchange.create_instrument('STOP-USD', 0.01, 0.001) "
               "WHERE NOT EXISTS (SELECT FROM exchange.instruments WHERE symbol = 'STOP-USD')")
    db.execute("SELECT exchange.cancel_order(order_id) FROM exchange.orders "
               "WHERE instrument = 'STOP-USD' AND status IN ('open', 'partially_filled', 'pending')")
    before = {symbol: journal_seq(db, symbol) for symbol in symbols}

    def post(client, symbol, side, quantity, price, **extra):
        return post_order(api, client, symbol, side, quantity, price, **extra)

    async def scenario():
        ws = await connect()
        await subscribe(ws, ["orderbook_deltas", "orders"], symbols)
        books = {}
        for _ in symbols:
            snapshot = await recv_json(ws)
            books[snapshot["instrument"]] = BookCopy(snapshot)

        async def until(targets):
            """Every message until each book copy reaches its instrument's target, its deltas applied."""
            got = []
            while any(books[symbol].seq < seq for symbol, seq in targets.items()):
                got.append(msg := await recv_json(ws))
                if msg["type"] == "delta":
                    books[msg["instrument"]].apply(msg)
            return got

        # A snapshot the feed took before the cancels above reached it is followed by those cancels, as
        # updates of their own: they are not this test's, so the copies are brought past them first.
        await until(before)
        post("x", "STOP-USD", "sell", "1", "100.00")
        post("y", "STOP-USD", "buy", "1", "100.00")  # STOP-USD's last trade price: 100.00
        mine = [post("mass", "BTC-USD", "buy", "2", "50.00"), post("mass", "ETH-USD", "sell", "1", "9000.00"),
                post("mass", "BTC-USD", "buy", "1", "49.00"),
                post("mass", "STOP-USD", "buy", "1", "501.00", stop_price="500.00")]
        theirs = [post("keep", "BTC-USD", "buy", "1", "50.00"), post("keep", "ETH-USD", "sell", "0.5", "9000.00")]
        assert [o["status"] for o in mine] == ["open", "open", "open", "pending"]
        r = requests.delete(f"{api}/orders", params={"client_id": "mass"}, timeout=10)
        assert r.status_code == 200, r.text
        cancelled = r.json()["orders"]
        assert [(o["order_id"], o["status"]) for o in cancelled] == [(o["order_id"], "cancelled") for o in mine]
        single = requests.delete(f"{api}/orders/{theirs[1]['order_id']}", timeout=10)
        assert single.status_code == 200 and single.json()["order_id"] == theirs[1]["order_id"], single.text
        single = single.json()
        messages = await until({symbol: journal_seq(db, symbol) for symbol in symbols})
        messages += await until_pong(ws)
        for symbol in symbols:
            assert books[symbol].levels == orderbook(db, symbol), symbol

        updates = {m["order_id"]: m for m in messages if m["type"] == "order" and m["event"] == "cancelled"}
        assert set(updates) == {o["order_id"] for o in mine + [single]}
        alone = updates.pop(single["order_id"])
        assert (alone["client_id"], alone["status"], alone["seq"]) == ("keep", "cancelled", single["seq"])
        for o in cancelled:
            u = updates[o["order_id"]]
            assert (u["instrument"], u["client_id"], u["status"], u["seq"]) == \
                (o["instrument"], "mass", "cancelled", o["seq"]), (u, o)
            assert {k: type(v) for k, v in u.items() if k not in ("price",)} == \
                {k: type(v) for k, v in alone.items() if k not in ("price",)}, (u, alone)
            assert u["cancel_reason"] == alone["cancel_reason"]
        assert [Decimal(updates[o["order_id"]]["cancelled_quantity"]) for o in mine] == \
            [Decimal("2"), Decimal("1"), Decimal("1"), Decimal("1")]
        assert [m["order_id"] for m in messages if m["type"] == "order" and m["client_id"] == "keep"] == \
            [o["order_id"] for o in theirs] + [single["order_id"]]
        deltas = {(m["instrument"], m["seq"]): m["changes"] for m in messages if m["type"] == "delta"}
        assert [deltas[(o["instrument"], o["seq"])] for o in cancelled] == [
            [{"side": "buy", "price": "50.00", "quantity": "1.0000", "order_count": 1}],
            [{"side": "sell", "price": "9000.00", "quantity": "0.500", "order_count": 1}],
            [{"side": "buy", "price": "49.00", "quantity": "0", "order_count": 0}],
            []]
        assert deltas[("ETH-USD", single["seq"])] == [{"side": "sell", "price": "9000.00", "quantity": "0",
                                                       "order_count": 0}]
        await ws.close()

    run(scenario())
    for symbol in symbols:
        assert db.execute("SELECT problem FROM exchange.verify(%s)", (symbol,)).fetchall() == []
    db.execute("SELECT exchange.cancel_order(order_id) FROM exchange.orders "
               "WHERE client_id = 'keep' AND status IN ('open', 'partially_filled', 'pending')")


@contextlib.contextmanager
def older_version(db, version, instruments, http_port, ws_port):
    """A database of its own with the extension at an older version and the instruments (tick 0.01,
    lot 0.0001), and a frontend on it: yields (dsn, connection, frontend); all dropped after."""
    name = "feed_v" + version.replace(".", "")
    db.execute(f"DROP DATABASE IF EXISTS {name}")
    db.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    dsn = DSN.replace("dbname=postgres", f"dbname={name}")
    conn = psycopg.connect(dsn, autocommit=True)
    fe = None
    try:
        conn.execute(f"CREATE EXTENSION exchange VERSION '{version}'")
        for symbol in instruments:
            conn.execute("SELECT exchange.create_instrument(%s, 0.01, 0.0001)", (symbol,))
        fe = Frontend(http_port, ws_port, log_name=f"feedtest-{name}-frontend.log", dsn=dsn)
        wait_for_port(http_port, proc=fe.proc)
        yield dsn, conn, fe
    finally:
        if fe is not None:
            fe.stop()
        conn.close()
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_database_before_0_8_is_read_through_the_journal_function(db):
    """Extension 0.7 has no view exchange.journal_entries: the feed reads exchange.journal() there, and
    its book copy, trades and order updates are as complete as with the view."""
    with older_version(db, "0.7", ["OLD-USD"], 18104, 18105) as (dsn, old, fe):
        assert old.execute("SELECT to_regclass('exchange.journal_entries')").fetchone()[0] is None

        async def scenario():
            ws = await websockets.connect("ws://127.0.0.1:18105/stream", max_size=1 << 24, max_queue=None)
            await subscribe(ws, ["orderbook_deltas", "trades", "orders"], ["OLD-USD"])
            book = BookCopy(await recv_json(ws))
            start = book.seq
            random_burst(150, 31, "OLD-USD", dsn)
            trades, orders = [], []
            await follow(ws, book, journal_seq(old, "OLD-USD"), trades, orders)
            orders += [m for m in await until_pong(ws) if m["type"] == "order"]
            assert book.levels == orderbook(old, "OLD-USD")
            assert [o["seq"] for o in orders] == list(range(start + 1, book.seq + 1))
            assert {o["event"] for o in orders} >= {"placed", "cancelled"}
            kinds = dict(old.execute("SELECT order_id::text, side || ' ' || type FROM exchange.orders").fetchall())
            assert [f'{o["side"]} {o["order_type"]}' for o in orders] == [kinds[o["order_id"]] for o in orders]
            assert len(trades) > 5
            await ws.close()

        run(scenario())


def test_a_database_before_0_9_cancels_with_one_call_per_client(db):
    """Extension 0.8 has no cancel_orders(uuid[], text[]): the frontend's cancel batches call the
    one-client form once per client there. Concurrent DELETEs of three clients' orders on two
    instruments, some by another client: each owner's 200, the other's 403, every order cancelled
    once, and no batch statement failed (a failed one would be retried one by one, with the same
    answers: its warning is the only trace)."""
    with older_version(db, "0.8", ["OLD-USD", "OLD-EUR"], 18106, 18107) as (dsn, old, fe):
        assert old.execute("SELECT to_regprocedure('exchange.cancel_orders(uuid[], text[])')").fetchone()[0] is None
        api = "http://127.0.0.1:18106"
        orders = []  # (order_id, owner)
        with requests.Session() as s:
            for i in range(24):
                owner = ("ann", "bob", "cy")[i % 3]
                r = s.post(f"{api}/orders", json={"client_id": owner, "instrument": ("OLD-USD", "OLD-EUR")[i % 2],
                                                  "side": "buy", "type": "limit", "quantity": "1",
                                                  "price": f"{10 + i}.00"}, timeout=10)
                assert r.status_code == 201 and r.json()["status"] == "open", r.text
                orders.append((r.json()["order_id"], owner))
        calls = [(order_id, owner, True) for order_id, owner in orders]
        calls += [(order_id, "bob" if owner != "bob" else "ann", False) for order_id, owner in orders[::4]]
        random.Random(5).shuffle(calls)

        def cancel(call):
            with requests.Session() as s:
                return s.delete(f"{api}/orders/{call[0]}", params={"client_id": call[1]}, timeout=10)
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(cancel, calls))
        for (order_id, client, owns), r in zip(calls, replies):
            if owns:
                assert r.status_code == 200 and r.json()["status"] == "cancelled", (order_id, client, r.text)
            else:
                assert r.status_code == 403 and r.json()["error"]["code"] == "not_order_owner", (client, r.text)
        ids = [order_id for order_id, _ in orders]
        assert old.execute("SELECT count(*) FROM exchange.orders WHERE order_id = ANY(%s::uuid[]) AND "
                           "status = 'cancelled'", (ids,)).fetchone()[0] == len(ids)
        assert old.execute("SELECT count(*) FROM exchange.events WHERE kind = 'order_cancelled'").fetchone()[0] \
            == len(ids)
        fe.stop()
        log = fe.log_path.read_text()
        assert "failed, writing them one by one" not in log, log[-3000:]


def post_together(api, calls):
    """POST /orders with each body in `calls` at once (so that they meet in group-commit batches); the answers."""
    gate = threading.Barrier(len(calls))

    def send(call):
        gate.wait()
        return requests.post(f"{api}/orders", json=call, timeout=10)
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))


def refused_beside_plain_orders(api, body, field, value):
    """Eight orders at once, bob's four with `field` (value(i)), which the database's extension lacks, and
    cy's four without: each of bob's is 501 extension_outdated, each of cy's 201 with `field` null."""
    calls = [body("bob", f"{12 + i}.00", **{field: value(i)}) if i % 2 else body("cy", f"{12 + i}.00")
             for i in range(8)]
    for call, r in zip(calls, post_together(api, calls)):
        if field in call:
            assert r.status_code == 501 and r.json()["error"]["code"] == "extension_outdated", r.text
        else:
            assert r.status_code == 201 and r.json()[field] is None, r.text


def test_a_database_before_0_12_trades_plain_orders_and_refuses_icebergs(db):
    """Extension 0.11's order_result has no display_quantity: the frontend reads it as null there, so every
    order route answers as before; an order with display_quantity is 501 extension_outdated and places
    nothing, also when it shares a place_orders batch with plain orders (which are placed)."""
    with older_version(db, "0.11", ["OLD-ICE"], 18108, 18109) as (dsn, old, fe):
        assert old.execute("SELECT count(*) FROM pg_attribute WHERE attname = 'display_quantity' AND "
                           "attrelid = 'exchange.order_result'::regclass").fetchone()[0] == 0
        api = "http://127.0.0.1:18108"

        def body(client, price, **extra):
            return {"client_id": client, "instrument": "OLD-ICE", "side": "buy", "type": "limit", "quantity": "2",
                    "price": price, **extra}

        r = requests.post(f"{api}/orders", json=body("ann", "10.00"), timeout=10)
        assert r.status_code == 201 and r.json()["status"] == "open", r.text
        assert "display_quantity" in r.json() and r.json()["display_quantity"] is None
        order_id = r.json()["order_id"]
        r = requests.get(f"{api}/orders/{order_id}", timeout=10)
        assert r.status_code == 200 and r.json()["display_quantity"] is None, r.text
        r = requests.get(f"{api}/orders", params={"client_id": "ann"}, timeout=10)
        assert r.status_code == 200 and [(o["order_id"], o["display_quantity"]) for o in r.json()["orders"]] == \
            [(order_id, None)], r.text
        r = requests.patch(f"{api}/orders/{order_id}", json={"quantity": "1"}, timeout=10)
        assert r.status_code == 200, r.text
        assert (r.json()["quantity"], r.json()["display_quantity"]) == ("1.0000", None)
        r = requests.delete(f"{api}/orders/{order_id}", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        assert r.json()["display_quantity"] is None

        r = requests.post(f"{api}/orders", json=body("bob", "11.00", display_quantity="1"), timeout=10)
        assert r.status_code == 501 and r.json()["error"]["code"] == "extension_outdated", r.text
        # Icebergs and plain orders at once (some in one batch): each gets its own answer.
        refused_beside_plain_orders(api, body, "display_quantity", lambda i: "1")
        counts = dict(old.execute("SELECT client_id, count(*) FROM exchange.orders GROUP BY 1").fetchall())
        assert counts == {"ann": 1, "cy": 4}
        assert old.execute("SELECT problem FROM exchange.verify('OLD-ICE')").fetchall() == []


def test_a_database_before_0_13_trades_plain_orders_and_icebergs_and_refuses_stop_orders(db):
    """Extension 0.12's order_result has display_quantity but no stop_price: the frontend reads stop_price as
    null there, so every order route answers as before (an iceberg with its display_quantity); an order with
    stop_price is 501 extension_outdated and places nothing, also when it shares a place_orders batch with
    plain orders (which are placed)."""
    with older_version(db, "0.12", ["OLD-STOP"], 18110, 18111) as (dsn, old, fe):
        columns = [r[0] for r in old.execute("SELECT attname FROM pg_attribute WHERE attrelid = "
                                             "'exchange.order_result'::regclass AND attnum > 0 AND NOT attisdropped")]
        assert "display_quantity" in columns and "stop_price" not in columns
        api = "http://127.0.0.1:18110"

        def body(client, price, **extra):
            return {"client_id": client, "instrument": "OLD-STOP", "side": "buy", "type": "limit", "quantity": "2",
                    "price": price, **extra}

        r = requests.post(f"{api}/orders", json=body("ann", "10.00", display_quantity="0.5"), timeout=10)
        assert r.status_code == 201 and r.json()["status"] == "open", r.text
        assert (r.json()["display_quantity"], r.json()["stop_price"]) == ("0.5000", None)
        assert "stop_price" in r.json()
        order_id = r.json()["order_id"]
        r = requests.get(f"{api}/orders/{order_id}", timeout=10)
        assert r.status_code == 200 and (r.json()["display_quantity"], r.json()["stop_price"]) == ("0.5000", None)
        r = requests.get(f"{api}/orders", params={"client_id": "ann"}, timeout=10)
        assert r.status_code == 200 and [(o["order_id"], o["stop_price"]) for o in r.json()["orders"]] == \
            [(order_id, None)], r.text
        r = requests.get(f"{api}/orders", params={"client_id": "ann", "status": "pending"}, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_status", r.text  # 0.12's statuses
        r = requests.patch(f"{api}/orders/{order_id}", json={"quantity": "1"}, timeout=10)
        assert r.status_code == 200, r.text
        assert (r.json()["quantity"], r.json()["stop_price"]) == ("1.0000", None)
        r = requests.delete(f"{api}/orders/{order_id}", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        assert r.json()["stop_price"] is None

        r = requests.post(f"{api}/orders", json=body("bob", "11.00", stop_price="12.00"), timeout=10)
        assert r.status_code == 501 and r.json()["error"] == {
            "code": "extension_outdated",
            "message": "stop orders need the exchange extension 0.13"}, r.text
        # Stop orders and plain orders at once (some in one batch): each gets its own answer.
        refused_beside_plain_orders(api, body, "stop_price", lambda i: f"{20 + i}.00")
        counts = dict(old.execute("SELECT client_id, count(*) FROM exchange.orders GROUP BY 1").fetchall())
        assert counts == {"ann": 1, "cy": 4}
        assert old.execute("SELECT problem FROM exchange.verify('OLD-STOP')").fetchall() == []


def test_a_database_before_0_14_amends_stop_orders_but_refuses_to_move_their_stop_price(db):
    """Extension 0.13's amend_order has no stop_price argument: a PATCH with stop_price is 501
    extension_outdated there and changes nothing, alone and when sent at once with amends of quantities
    (so that they can meet in one amend_orders batch, which on 0.13 would move the stop); the quantities are
    amended (0.13's amend_order and amend_orders serve them as before). 0.13 has no cancel_all_orders either:
    DELETE /orders is 501 extension_outdated and cancels nothing. After ALTER EXTENSION UPDATE the same
    frontend, not restarted, moves stop prices, still amends quantities, and cancels all the client's orders."""
    with older_version(db, "0.13", ["OLD-AMD"], 18112, 18113) as (dsn, old, fe):
        assert old.execute("SELECT to_regprocedure('exchange.amend_order(uuid, numeric, numeric, text, numeric)')"
                           ).fetchone()[0] is None
        api = "http://127.0.0.1:18112"

        def post(client, side, price, **extra):
            r = requests.post(f"{api}/orders", json={"client_id": client, "instrument": "OLD-AMD", "side": side,
                                                     "type": "limit", "quantity": "1", "price": price, **extra},
                              timeout=10)
            assert r.status_code == 201, r.text
            return r.json()

        def stop_prices(ids):
            rows = old.execute("SELECT order_id::text, stop_price::text, quantity::text FROM exchange.orders "
                               "WHERE order_id = ANY(%s::uuid[])", (ids,)).fetchall()
            return {order_id: (stop, quantity) for order_id, stop, quantity in rows}

        def amended():
            return old.execute("SELECT count(*) FROM exchange.events WHERE kind = 'order_amended'").fetchone()[0]

        post("x", "sell", "10.00")
        assert post("y", "buy", "10.00")["status"] == "filled"  # the last trade price: 10.00
        stops = [post("s", "buy", "30.00", stop_price=f"{11 + i}.00") for i in range(9)]
        assert {o["status"] for o in stops} == {"pending"}
        ids = [o["order_id"] for o in stops]
        r = requests.patch(f"{api}/orders/{ids[0]}", json={"quantity": "2"}, timeout=10)
        assert r.status_code == 200 and (r.json()["quantity"], r.json()["stop_price"]) == ("2.0000", "11.00"), r.text
        for body in ({"stop_price": "12.50"}, {"stop_price": "12.50", "quantity": "3"}):
            r = requests.patch(f"{api}/orders/{ids[0]}", json=body, timeout=10)
            assert r.status_code == 501 and r.json()["error"] == {
                "code": "extension_outdated",
                "message": "amending a stop_price needs the exchange extension 0.14"}, r.text
        assert stop_prices(ids[:1]) == {ids[0]: ("11.00", "2.0000")} and amended() == 1
        for params in ({"client_id": "s"}, {"client_id": "s", "instrument": "OLD-AMD"}):
            r = requests.delete(f"{api}/orders", params=params, timeout=10)
            assert r.status_code == 501 and r.json()["error"]["code"] == "extension_outdated", r.text
        assert old.execute("SELECT count(*) FROM exchange.orders WHERE status = 'pending'").fetchone()[0] == len(ids)

        # Moves and quantity amends at once (meeting in amend_orders batches): each gets its own answer.
        calls = [(order_id, {"stop_price": f"{20 + i}.00"} if i % 2 else {"quantity": "2"})
                 for i, order_id in enumerate(ids[1:])]
        gate = threading.Barrier(len(calls))

        def send(call):
            gate.wait()
            return requests.patch(f"{api}/orders/{call[0]}", json=call[1], timeout=10)
        with ThreadPoolExecutor(len(calls)) as pool:
            replies = list(pool.map(send, calls))
        for (order_id, body), r in zip(calls, replies):
            if "stop_price" in body:
                assert r.status_code == 501 and r.json()["error"]["code"] == "extension_outdated", r.text
            else:
                assert r.status_code == 200 and r.json()["quantity"] == "2.0000", r.text
        assert stop_prices(ids) == {o["order_id"]: (o["stop_price"], "2.0000" if i == 0 or i % 2 else "1")
                                    for i, o in enumerate(stops)}
        assert amended() == 1 + len(calls) // 2

        old.execute("ALTER EXTENSION exchange UPDATE TO '0.14'")
        r = requests.patch(f"{api}/orders/{ids[0]}", json={"stop_price": "12.50"}, timeout=10)
        assert r.status_code == 200 and (r.json()["status"], r.json()["stop_price"]) == ("pending", "12.50"), r.text
        r = requests.patch(f"{api}/orders/{ids[0]}", json={"quantity": "3"}, timeout=10)
        assert r.status_code == 200 and (r.json()["quantity"], r.json()["stop_price"]) == ("3.0000", "12.50"), r.text
        assert stop_prices(ids[:1]) == {ids[0]: ("12.50", "3.0000")}
        r = requests.delete(f"{api}/orders", params={"client_id": "s", "instrument": "OLD-AMD"}, timeout=10)
        assert r.status_code == 200, r.text
        assert [(o["order_id"], o["status"]) for o in r.json()["orders"]] == [(i, "cancelled") for i in ids]
        assert old.execute("SELECT count(*) FROM exchange.orders WHERE status = 'pending'").fetchone()[0] == 0
        assert old.execute("SELECT problem FROM exchange.verify('OLD-AMD')").fetchall() == []
        fe.stop()
        log = fe.log_path.read_text()
        assert "failed, writing them one by one" not in log, log[-3000:]


def test_silent_clients_are_dropped_and_connections_are_limited(db):
    """A second process with a 300 ms ping interval and room for two clients: a client that never
    answers pings is closed within about twice the interval, one that answers stays, and a third
    connection is refused with 503."""
    http_port, ws_port = 18102, 18103
    fe = Frontend(http_port, ws_port, ["--ws-ping-interval-ms", "300", "--ws-max-connections", "2"],
                  "feedtest-limits-frontend.log")
    try:
        # A raw TCP client that completes the handshake and then never reads nor answers.
        silent = socket.create_connection(("127.0.0.1", ws_port))
        silent.sendall((f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"
                        f"\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        assert b" 101 " in silent.recv(4096).split(b"\r\n", 1)[0]

        async def scenario():
            # websockets answers pings by itself: this client must stay connected.
            ws = await websockets.connect(f"ws://127.0.0.1:{ws_port}/stream", ping_interval=None)
            with pytest.raises(websockets.InvalidStatusCode) as refused:
                await websockets.connect(f"ws://127.0.0.1:{ws_port}/stream")
            assert refused.value.status_code == 503
            await asyncio.sleep(1.5)  # five ping intervals
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
            await ws.close()

        run(scenario())
        # By now the silent client was pinged and dropped: the socket reads its end.
        silent.settimeout(2.0)
        received = b""
        while chunk := silent.recv(4096):
            received += chunk
        assert len(received) > 0, "the server sent no ping before closing"
        silent.close()
    finally:
        fe.stop()


def test_sigterm_closes_clients_with_going_away(db, frontend):
    async def scenario():
        ws = await connect()
        await subscribe(ws, ["trades"])
        await asyncio.to_thread(frontend.stop)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.code == 1001

    run(scenario())
