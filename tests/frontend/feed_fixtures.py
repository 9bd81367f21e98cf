"""Fixtures and helpers for the WebSocket feed tests (test_feed.py).

A throwaway PostgreSQL cluster (build/feedtest, 127.0.0.1:25359) with the
exchange extension, and pgx-frontend on 127.0.0.1 (REST 18100, WS 18101).
Both are stopped when the module's tests are done.
"""
import asyncio
import json
import shutil
import time
from decimal import Decimal

import psycopg
import pytest
import websockets

from harness import FRONTEND, ROOT, Process, create_instruments, fresh_cluster, pg_cluster

PG_DIR = ROOT / "build" / "feedtest"
PG_PORT = 25359
HTTP_PORT = 18100
WS_PORT = 18101
DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
WS_URL = f"ws://127.0.0.1:{WS_PORT}/stream"
INSTRUMENTS = {"BTC-USD": ("0.01", "0.0001"), "ETH-USD": ("0.01", "0.001"), "SLOW-USD": ("0.01", "1")}




@pytest.fixture(scope="module")
def db():
    """A fresh cluster with the extension and the test instruments; yields a psycopg connection."""
    fresh_cluster(PG_DIR, PG_PORT,
                  "exchange.max_orders_per_instrument=100000", "exchange.max_levels_per_instrument=20000",
                  "exchange.max_instruments=16",  # the module's instruments and those of its older-version databases
                  "fsync=off", "synchronous_commit=off")  # the feed is under test here, not durability
    try:
        conn = psycopg.connect(DSN, autocommit=True)
        create_instruments(conn, INSTRUMENTS)
        yield conn
        conn.close()
    finally:
        pg_cluster("stop", PG_DIR)
        shutil.rmtree(PG_DIR, ignore_errors=True)


class Frontend(Process):
    def __init__(self, http_port=HTTP_PORT, ws_port=WS_PORT, extra=(), log_name="feedtest-frontend.log", dsn=DSN):
        super().__init__(  # the log is kept for a post-mortem
            [str(FRONTEND), "--db", dsn, "--http-port", str(http_port), "--ws-port", str(ws_port),
             "--redis", "", "--rate-limit", "0", "--no-auth", *extra],
            ROOT / "build" / log_name, ws_port)


@pytest.fixture(scope="module")
def frontend(db):
    fe = Frontend()
    # The LISTEN connection is up once its backend shows in pg_stat_activity.
    deadline = time.monotonic() + 10
    while listener_pid(db) is None:
        assert time.monotonic() < deadline, "the feed never LISTENed"
        time.sleep(0.05)
    yield fe
    fe.stop()


def listener_pid(db):
    row = db.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgx-feed-listen'").fetchone()
    return row[0] if row else None


def run(coro):
    return asyncio.run(coro)


async def connect(**kwargs):
    kwargs.setdefault("max_size", 1 << 24)
    kwargs.setdefault("max_queue", None)  # else close() can wait behind unread messages
    return await websockets.connect(WS_URL, **kwargs)


async def recv_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def subscribe(ws, channels, instruments=None, from_seq=None):
    msg = {"type": "subscribe", "channels": channels}
    if instruments is not None:
        msg["instruments"] = instruments
    if from_seq is not None:
        msg["from_seq"] = from_seq
    await ws.send(json.dumps(msg))
    ack = await recv_json(ws)
    assert ack["type"] == "subscribed", ack
    return ack


async def until_pong(ws, timeout=5.0):
    """Every message the client receives before the answer to a ping."""
    await ws.send(json.dumps({"type": "ping"}))
    out = []
    while (msg := await recv_json(ws, timeout))["type"] != "pong":
        out.append(msg)
    return out


def place(db, orders):
    """place_orders in one transaction; returns the result rows as dicts."""
    cur = db.execute("SELECT order_id, status, seq FROM exchange.place_orders(%s::jsonb)", (json.dumps(orders),))
    return [dict(zip(("order_id", "status", "seq"), r)) for r in cur.fetchall()]


def journal_seq(db, instrument):
    return db.execute("SELECT coalesce(max(e.seq), 0) FROM exchange.events e JOIN exchange.instruments i "
                      "USING (instrument_id) WHERE i.symbol = %s", (instrument,)).fetchone()[0]


def orderbook(db, instrument):
    """exchange.orderbook as {(side, Decimal price): (Decimal quantity, order_count)}."""
    rows = db.execute("SELECT side, price, quantity, order_count FROM exchange.orderbook(%s, 100000)", (instrument,))
    return {(side, Decimal(price)): (Decimal(qty), count) for side, price, qty, count in rows.fetchall()}


class BookCopy:
    """A client's copy of one book, kept from a snapshot and deltas."""

    def __init__(self, snapshot):
        assert snapshot["type"] == "snapshot", snapshot
        self.seq = snapshot["seq"]
        self.levels = {}
        for side, key in (("buy", "bids"), ("sell", "asks")):
            for level in snapshot[key]:
                assert isinstance(level["price"], str) and isinstance(level["quantity"], str)
                self.levels[(side, Decimal(level["price"]))] = (Decimal(level["quantity"]), level["order_count"])

    def apply(self, delta):
        assert delta["type"] == "delta", delta
        assert delta["seq"] == self.seq + 1, f"gap: {self.seq} then {delta['seq']}"
        self.seq = delta["seq"]
        for change in delta["changes"]:
            assert isinstance(change["price"], str) and isinstance(change["quantity"], str)
            key = (change["side"], Decimal(change["price"]))
            if Decimal(change["quantity"]) == 0:
                self.levels.pop(key, None)
            else:
                self.levels[key] = (Decimal(change["quantity"]), change["order_count"])
