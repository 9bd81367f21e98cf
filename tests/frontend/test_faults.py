"""Faults under load, end to end: nothing acknowledged is lost, nothing is duplicated.

PostgreSQL (build/faulttest, 127.0.0.1:25399, durable), Redis (63795) and
pgx-frontend (18400/18401). Eight client threads place orders over REST, each
with its own idempotency key, and keep a ledger of every acknowledgement;
an order whose request failed (503, timeout, connection refused) is retried
with the same key until acknowledged, as a careful client would. During the
load each scenario injects one fault:

- kill -9 of the frontend, then a new frontend process;
- kill -9 of Redis, then a new Redis;
- PostgreSQL stopped for 3 s: requests fail fast with 503, then recover
  without restarting the frontend;
- kill -9 of the postmaster, then crash recovery: the frontend reconnects by
  itself.
- kill -9 of a backend holding the instrument lock mid-transaction while the
  frontend's batches wait behind it: PostgreSQL resets every backend, the
  holder's uncommitted order is gone, the frontend reconnects by itself.

Afterwards every acknowledged order is in exchange.orders under its key with
the acknowledged order_id (lost = 0), no key has two orders (duplicated = 0),
the book verifies clean and the journal is gap-free; a WebSocket client
subscribed across the PostgreSQL faults saw every journal sequence once, in
order. Each scenario prints its counts.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import psycopg
import pytest
import requests
import websockets

from harness import FRONTEND, ROOT, create_instruments, pg_cluster, wait_for_port

PG_DIR = ROOT / "build" / "faulttest"
PG_PORT, REDIS_PORT, HTTP_PORT, WS_PORT = 25399, 63795, 18400, 18401
DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
BASE = f"http://127.0.0.1:{HTTP_PORT}"
SYMBOL = "FLT-USD"


class Stack:
    """The processes under test; each can be killed and started again."""

    def __init__(self):
        pg_cluster("stop", PG_DIR)
        shutil.rmtree(PG_DIR, ignore_errors=True)
        pg_cluster("start", PG_DIR, PG_PORT)
        with psycopg.connect(DSN, autocommit=True) as conn:
            create_instruments(conn, {SYMBOL: ("0.01", "1")})
        (PG_DIR / "redis").mkdir()
        self.redis = self.frontend = None
        self.start_redis()
        self.start_frontend()

    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--dir", str(PG_DIR / "redis"),
             "--save", "", "--appendonly", "no", "--logfile", str(PG_DIR / "redis" / "redis.log")])
        wait_for_port(REDIS_PORT, proc=self.redis)

    def start_frontend(self):
        log = open(PG_DIR / "frontend.log", "a")
        self.frontend = subprocess.Popen(
            [str(FRONTEND), "--db", DSN, "--http-port", str(HTTP_PORT), "--ws-port", str(WS_PORT),
             "--redis", f"127.0.0.1:{REDIS_PORT}", "--rate-limit", "0", "--no-auth"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(HTTP_PORT, proc=self.frontend)

    @staticmethod
    def kill(proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self):
        for proc in (self.frontend, self.redis):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
        pg_cluster("stop", PG_DIR)


class Load:
    """Client threads with a ledger: key -> acknowledged order_id."""

    def __init__(self, name, threads=8):
        self.name, self.ledger, self.lock = name, {}, threading.Lock()
        self.failures = []      # (status or exception name, seconds the request took)
        self.unexpected = []    # answers no retry can fix
        self.stop_at = None
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self, seconds=1.0, deadline=60.0):
        """Keep sending new orders for `seconds`, then retry what is unacknowledged until `deadline`."""
        self.stop_at = time.monotonic() + seconds
        for t in self.threads:
            t.join(deadline)
        assert not any(t.is_alive() for t in self.threads), "some orders were never acknowledged"

    def _client(self, i):
        session = requests.Session()
        session.headers.update({"Connection": "keep-alive", "Content-Type": "application/json"})
        n = 0
        while self.stop_at is None or time.monotonic() < self.stop_at:
            n += 1
            key = f"{self.name}-{i}-{n}"
            body = {"client_id": f"fault-{i}", "instrument": SYMBOL, "side": "buy" if (i + n) % 2 else "sell",
                    "type": "limit", "price": f"{100 + (n * 7 + i) % 5 - 2}.00", "quantity": str(1 + n % 3)}
            while True:  # the same key until acknowledged
                started = time.monotonic()
                try:
                    r = session.post(f"{BASE}/orders", data=json.dumps(body), headers={"Idempotency-Key": key},
                                     timeout=5)
                except requests.RequestException as e:
                    self.failures.append((type(e).__name__, time.monotonic() - started))
                    session = requests.Session()
                    session.headers.update({"Connection": "keep-alive", "Content-Type": "application/json"})
                    time.sleep(0.05)
                    continue
                if r.status_code in (200, 201):
                    with self.lock:
                        self.ledger[key] = r.json()["order_id"]
                    break
                if r.status_code == 503:
                    self.failures.append((503, time.monotonic() - started))
                    time.sleep(0.05)
                    continue
                self.unexpected.append((r.status_code, r.text))
                break

    def check(self):
        """The ledger against the database; returns (acknowledged, lost, duplicated)."""
        with psycopg.connect(DSN, autocommit=True) as conn:
            rows = conn.execute("SELECT idempotency_key, order_id::text FROM exchange.orders "
                                "WHERE idempotency_key LIKE %s", (self.name + "-%",)).fetchall()
            problems = conn.execute("SELECT problem FROM exchange.verify(%s)", (SYMBOL,)).fetchall()
            gaps = conn.execute("SELECT count(*) <> max(seq) OR min(seq) <> 1 FROM exchange.events e "
                                "JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = %s",
                                (SYMBOL,)).fetchone()[0]
        stored = {}
        for key, order_id in rows:
            stored.setdefault(key, []).append(order_id)
        lost = sum(1 for key, order_id in self.ledger.items() if order_id not in stored.get(key, []))
        duplicated = sum(len(ids) - 1 for ids in stored.values()) + sum(
            1 for key in stored if key not in self.ledger)  # an order nobody was told about would be a duplicate
        print(f"\n{self.name}: acknowledged {len(self.ledger)}, lost {lost}, duplicated {duplicated}, "
              f"failed attempts {len(self.failures)}")
        assert not self.unexpected, self.unexpected[:3]
        assert problems == [], problems
        assert not gaps, "the journal has gaps"
        return len(self.ledger), lost, duplicated


class Watcher:
    """A WebSocket client on the orderbook_deltas channel, collecting sequences in a thread."""

    def __init__(self):
        self.seqs, self.ready, self.done = [], threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))
        self.thread.start()
        assert self.ready.wait(10), "the WebSocket client did not subscribe"

    async def _run(self):
        async with websockets.connect(f"ws://127.0.0.1:{WS_PORT}/stream", max_queue=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channels": ["orderbook_deltas"],
                                      "instruments": [SYMBOL]}))
            while not self.done.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                if msg["type"] == "subscribed":
                    continue
                self.seqs.append(msg["seq"])
                if msg["type"] == "snapshot":
                    self.ready.set()

    def until(self, seq, timeout=20):
        deadline = time.monotonic() + timeout
        while (not self.seqs or self.seqs[-1] < seq) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.done.set()
        self.thread.join(5)
        return self.seqs


@pytest.fixture(scope="module")
def stack():
    if not FRONTEND.exists():
        pytest.fail(f"{FRONTEND} is not built")
    s = Stack()
    try:
        yield s
    finally:
        s.stop()


def journal_end():
    with psycopg.connect(DSN, autocommit=True) as conn:
        return conn.execute("SELECT max(seq) FROM exchange.events").fetchone()[0] or 0


def assert_nothing_lost(load, watcher=None):
    """The ledger matches the database; the WebSocket client saw every journal sequence once, in order."""
    acknowledged, lost, duplicated = load.check()
    assert acknowledged > 0 and lost == 0 and duplicated == 0
    if watcher is not None:
        end = journal_end()
        seqs = watcher.until(end)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the feed skipped or repeated a sequence"
        assert seqs[-1] == end


def test_frontend_killed_mid_load(stack):
    load = Load("frontend-kill")
    load.start()
    time.sleep(1.0)
    Stack.kill(stack.frontend)
    time.sleep(0.5)
    stack.start_frontend()
    load.finish()
    assert_nothing_lost(load)
    assert load.failures, "the kill interrupted nothing"


def test_redis_killed_mid_load(stack):
    load = Load("redis-kill")
    load.start()
    time.sleep(1.0)
    Stack.kill(stack.redis)
    time.sleep(1.0)
    stack.start_redis()
    load.finish()
    assert_nothing_lost(load)
    assert load.failures == [], "Redis being down must only cost performance"


def test_postgres_stopped_for_seconds(stack):
    watcher = Watcher()
    load = Load("pg-stop")
    load.start()
    time.sleep(1.0)
    pg_cluster("stop", PG_DIR)
    time.sleep(3.0)
    pg_cluster("start", PG_DIR, PG_PORT)
    load.finish()
    assert_nothing_lost(load, watcher)
    refused = [seconds for status, seconds in load.failures if status == 503]
    assert refused, "no request met the outage"
    assert max(refused) < 2.0, f"a 503 took {max(refused):.2f} s"


def test_postmaster_killed_mid_load(stack):
    watcher = Watcher()
    load = Load("pg-crash")
    load.start()
    time.sleep(1.0)
    pg_cluster("crash", PG_DIR)
    pg_cluster("start", PG_DIR, PG_PORT)
    load.finish()
    assert_nothing_lost(load, watcher)
    assert load.failures, "the crash interrupted nothing"


def test_lock_holder_killed_mid_load(stack):
    watcher = Watcher()
    load = Load("lock-kill")
    load.start()
    time.sleep(1.0)
    holder = psycopg.connect(DSN)  # one open transaction: it keeps the instrument lock until it ends
    pid = holder.info.backend_pid
    holder.execute("SELECT status FROM exchange.place_order(client_id => 'lock-holder', instrument => %s, "
                   "side => 'buy', type => 'limit', quantity => 1, price => 90)", (SYMBOL,))
    with psycopg.connect(DSN, autocommit=True) as conn:
        held = waiting = 0
        for _ in range(100):  # until the load's batches queue behind the holder
            held, waiting = conn.execute(
                "SELECT count(*) FILTER (WHERE pid = %s AND granted), count(*) FILTER (WHERE NOT granted) "
                "FROM pg_locks WHERE locktype = 'object' AND mode = 'ExclusiveLock'", (pid,)).fetchone()
            if held and waiting:
                break
            time.sleep(0.02)
    assert held == 1 and waiting >= 1, f"holder has the lock: {held}, waiting: {waiting}"
    os.kill(pid, signal.SIGKILL)
    try:
        holder.close()
    except psycopg.Error:
        pass
    load.finish()
    assert_nothing_lost(load, watcher)
    assert load.failures, "the crash reset interrupted nothing"
    with psycopg.connect(DSN, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM exchange.orders WHERE client_id = 'lock-holder'").fetchone()[0] == 0
