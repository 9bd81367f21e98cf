"""Fixtures and helpers for the REST tests (test_rest.py).

A throwaway PostgreSQL cluster (build/fetest, 127.0.0.1:25349) with the
exchange extension and two instruments, Redis on 127.0.0.1:63790 (data in
build/fetest-redis), and pgx-frontend on 127.0.0.1 (REST 18000, WS 18001).
Tests may stop and start PostgreSQL and Redis; everything is stopped when the
module's tests are done, and the frontend must then exit 0 on SIGTERM.
"""
import os
import re
import shutil
import subprocess

import psycopg
import pytest
import requests

from harness import FRONTEND, ROOT, Process, create_instruments, pg_cluster, wait_for_port

PG_DIR = ROOT / "build" / "fetest"
REDIS_DIR = ROOT / "build" / "fetest-redis"
PG_PORT = 25349
REDIS_PORT = 63790
HTTP_PORT = 18000
WS_PORT = 18001
MAX_BODY = 4096
DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
BASE = f"http://127.0.0.1:{HTTP_PORT}"
LOCK_TIMEOUT_MS = 1000  # the frontend's --lock-timeout-ms
INSTRUMENTS = {"BTC-USD": ("0.01", "0.0001"), "ETH-USD": ("0.01", "0.001")}
MAX_INSTRUMENTS = 10  # exchange.max_instruments: a book in shared memory for each




class Postgres:
    """The test cluster; stop() and start() simulate an outage."""

    def __init__(self):
        self.stop()
        shutil.rmtree(PG_DIR, ignore_errors=True)
        self.start()
        with self.connect() as conn:
            create_instruments(conn, INSTRUMENTS)

    def start(self):
        # Nine instruments (two here, six tests' own, STOP-USD of the stop order tests): room for them and one more.
        pg_cluster("start", PG_DIR, PG_PORT, f"exchange.max_instruments = {MAX_INSTRUMENTS}")

    def stop(self):
        pg_cluster("stop", PG_DIR)

    def connect(self):
        return psycopg.connect(DSN, autocommit=True)

    def scalar(self, sql, params=()):
        with self.connect() as conn:
            return conn.execute(sql, params).fetchone()[0]


class Redis:
    """A private redis-server; stop() and start() simulate an outage."""

    def __init__(self):
        shutil.rmtree(REDIS_DIR, ignore_errors=True)
        REDIS_DIR.mkdir(parents=True)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--dir", str(REDIS_DIR),
             "--save", "", "--appendonly", "no", "--logfile", str(REDIS_DIR / "redis.log")])
        wait_for_port(REDIS_PORT, proc=self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), *args],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()


class Frontend(Process):
    def __init__(self):
        super().__init__(
            [str(FRONTEND), "--db", DSN, "--http-host", "127.0.0.1", "--http-port", str(HTTP_PORT),
             "--ws-port", str(WS_PORT), "--redis", f"127.0.0.1:{REDIS_PORT}", "--max-body-bytes", str(MAX_BODY),
             "--log-level", "info", "--no-auth", "--lock-timeout-ms", str(LOCK_TIMEOUT_MS)],
            PG_DIR / "frontend.log", HTTP_PORT)


@pytest.fixture(scope="module")
def pg():
    if not FRONTEND.exists():
        pytest.fail(f"{FRONTEND} is not built")
    cluster = Postgres()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def redis():
    server = Redis()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(REDIS_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def api(pg, redis):
    """The running frontend's base URL; on teardown SIGTERM must end it with exit code 0."""
    fe = Frontend()
    try:
        yield BASE
    finally:
        code = fe.stop()
        assert code == 0, f"pgx-frontend exited with {code}, see {fe.log_path}"


_ids = iter(range(1, 1 << 30))


def fresh_client(prefix="c"):
    """A client_id no other test uses (rate limits are per client_id)."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


def order(client_id, side="buy", price="100.00", quantity="1", instrument="BTC-USD", **extra):
    body = {"client_id": client_id, "instrument": instrument, "side": side, "type": "limit",
            "quantity": quantity, "price": price}
    body.update(extra)
    return body


def post_order(body, headers=None, session=None):
    return (session or requests).post(f"{BASE}/orders", json=body, headers=headers or {}, timeout=10)


def metric(text, name, labels=None):
    """Sum of the samples of `name` whose labels include `labels` in a /metrics text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in (labels or {}).items()):
            total += float(m.group(3))
    return total


def metrics_text():
    r = requests.get(f"{BASE}/metrics", timeout=10)
    assert r.status_code == 200
    return r.text
