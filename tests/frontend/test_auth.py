"""API keys, the frontend's database role and the request limits, end to end.

A throwaway PostgreSQL cluster (build/authtest, 127.0.0.1:25389), a private
Redis (63797) and pgx-frontend with authentication on (REST 18300, WS 18301),
connected as a LOGIN role that is only a member of exchange_trader. The limit
tests start a second frontend with small limits (18302/18303). Everything is
stopped by the module's fixtures.
"""
import asyncio
import json
import socket
import time

import psycopg
import pytest
import requests
import websockets

from harness import (FRONTEND, ROOT, Process, create_instruments, fresh_cluster, pg_cluster, place_deep_book,
                     unread_connection)

PG_DIR = ROOT / "build" / "authtest"
PG_PORT = 25389
REDIS_PORT = 63797
HTTP_PORT, WS_PORT = 18300, 18301
LIMITS_HTTP_PORT, LIMITS_WS_PORT = 18302, 18303
ADMIN_DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
FRONTEND_ROLE = "pgx_frontend_test"
FRONTEND_DSN = f"host=127.0.0.1 port={PG_PORT} user={FRONTEND_ROLE} dbname=postgres"
BASE = f"http://127.0.0.1:{HTTP_PORT}"
CACHE_MS = 300
INSTRUMENT = "AUTH-USD"


def start_frontend(http_port, ws_port, log_name, *extra):
    return Process([str(FRONTEND), "--db", FRONTEND_DSN, "--http-host", "127.0.0.1", "--http-port", str(http_port),
                    "--ws-port", str(ws_port), "--redis", f"127.0.0.1:{REDIS_PORT}", "--rate-limit", "0",
                    "--auth-cache-ms", str(CACHE_MS), *extra], PG_DIR / log_name, http_port)


@pytest.fixture(scope="module")
def db():
    fresh_cluster(PG_DIR, PG_PORT, "fsync=off")
    redis = None
    try:
        conn = psycopg.connect(ADMIN_DSN, autocommit=True)
        create_instruments(conn, {INSTRUMENT: ("0.01", "1")})
        conn.execute(f"CREATE ROLE {FRONTEND_ROLE} LOGIN IN ROLE exchange_trader")
        (PG_DIR / "redis").mkdir()
        redis = Process(["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--dir",
                         str(PG_DIR / "redis"), "--save", "", "--appendonly", "no"], PG_DIR / "redis.log", REDIS_PORT)
        yield conn
        conn.close()
    finally:
        if redis:
            redis.stop()
        pg_cluster("stop", PG_DIR)


@pytest.fixture(scope="module")
def keys(db):
    """client -> API key, created by the administrator."""
    return {client: db.execute("SELECT api_key FROM exchange.create_api_key(%s)", (client,)).fetchone()[0]
            for client in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def frontend(db, keys):
    fe = start_frontend(HTTP_PORT, WS_PORT, "frontend.log")
    try:
        yield fe
    finally:
        code = fe.stop()
        assert code == 0, f"pgx-frontend exited with {code}"
        # No secret ever reaches the log: only key ids.
        log = fe.log_path.read_text()
        for key in keys.values():
            assert key not in log and key[21:] not in log


def h(key):
    return {"X-API-Key": key}


def order(**fields):
    body = {"instrument": INSTRUMENT, "side": "buy", "type": "limit", "quantity": "1", "price": "10"}
    body.update(fields)
    return body


def count_orders(db):
    return db.execute("SELECT count(*) FROM exchange.orders").fetchone()[0]


def test_frontend_connects_as_the_trader_role(db, frontend):
    assert requests.get(BASE + "/readyz", timeout=10).status_code == 200  # a worker has connected
    deadline = time.monotonic() + 10
    while True:  # and the feed's LISTEN connection too
        users = [r[0] for r in db.execute(
            "SELECT usename FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")]
        if len(users) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(users) >= 2 and set(users) == {FRONTEND_ROLE}, users
    # ... a role that can only execute the functions, not read or write the tables.
    with psycopg.connect(FRONTEND_DSN, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM exchange.orders")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT exchange.create_api_key('mallory')")


def test_public_routes_need_no_key(frontend):
    for path in ("/instruments", f"/orderbook?instrument={INSTRUMENT}", f"/trades?instrument={INSTRUMENT}",
                 f"/trades/stats?instrument={INSTRUMENT}", "/healthz", "/readyz", "/metrics"):
        assert requests.get(BASE + path, timeout=10).status_code == 200, path


@pytest.mark.parametrize("headers,code", [
    ({}, "missing_api_key"),
    ({"X-API-Key": ""}, "invalid_api_key"),
    ({"X-API-Key": "secret"}, "invalid_api_key"),
    ({"X-API-Key": "pgx_0123456789abcdef_" + "0" * 64}, "invalid_api_key"),
    ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, "invalid_api_key"),
])
def test_trading_without_a_valid_key_is_refused_and_changes_nothing(db, frontend, headers, code):
    before = count_orders(db)
    r = requests.post(BASE + "/orders", json=order(client_id="alice"), headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == code
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for method, path in (("GET", "/orders"), ("GET", "/orders/00000000-0000-0000-0000-000000000000"),
                         ("DELETE", "/orders/00000000-0000-0000-0000-000000000000"),
                         ("DELETE", "/orders"), ("DELETE", "/orders?client_id=alice"),
                         ("POST", "/orderbook/snapshot")):
        assert requests.request(method, BASE + path, headers=headers, timeout=10).status_code == 401, path
    assert count_orders(db) == before


def test_a_tampered_key_is_refused(keys, frontend):
    good = keys["alice"]
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert requests.post(BASE + "/orders", json=order(), headers=h(bad), timeout=10).status_code == 401
    assert requests.post(BASE + "/orders", json=order(), headers=h(good.upper()), timeout=10).status_code == 401


def test_orders_belong_to_the_key_client(db, keys, frontend):
    r = requests.post(BASE + "/orders", json=order(), headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["client_id"] == "alice"
    r = requests.post(BASE + "/orders", json=order(client_id="alice", price="11"),
                      headers={"Authorization": "Bearer " + keys["alice"]}, timeout=10)
    assert r.status_code == 201 and r.json()["client_id"] == "alice"
    before = count_orders(db)
    r = requests.post(BASE + "/orders", json=order(client_id="bob"), headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "client_mismatch"
    assert count_orders(db) == before


def test_a_client_reads_cancels_and_amends_only_its_own_orders(db, keys, frontend):
    bobs = requests.post(BASE + "/orders", json=order(side="sell", price="50"), headers=h(keys["bob"]),
                         timeout=10).json()
    alices = requests.post(BASE + "/orders", json=order(price="5"), headers=h(keys["alice"]), timeout=10).json()
    oid = bobs["order_id"]

    listed = requests.get(BASE + "/orders", headers=h(keys["alice"]), timeout=10).json()["orders"]
    assert listed and {o["client_id"] for o in listed} == {"alice"}
    assert alices["order_id"] in {o["order_id"] for o in listed}
    r = requests.get(BASE + "/orders?client_id=bob", headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "client_mismatch"

    for method, path, body in (("GET", f"/orders/{oid}", None), ("DELETE", f"/orders/{oid}", None),
                               ("POST", f"/orders/{oid}/cancel", None),
                               ("PATCH", f"/orders/{oid}", {"quantity": "2"})):
        r = requests.request(method, BASE + path, json=body, headers=h(keys["alice"]), timeout=10)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_order_owner"
    r = requests.delete(BASE + f"/orders/{oid}", json={"client_id": "bob"}, headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "client_mismatch"
    row = db.execute("SELECT status, quantity FROM exchange.orders WHERE order_id = %s", (oid,)).fetchone()
    assert row[0] == "open" and row[1] == 1

    assert requests.get(BASE + f"/orders/{oid}", headers=h(keys["bob"]), timeout=10).status_code == 200
    r = requests.patch(BASE + f"/orders/{oid}", json={"quantity": "3"}, headers=h(keys["bob"]), timeout=10)
    assert r.status_code == 200 and r.json()["quantity"] == "3"
    r = requests.delete(BASE + f"/orders/{oid}", headers=h(keys["bob"]), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def resting_orders(db, client):
    """The client's resting and pending orders, oldest first (order ids)."""
    return [r[0] for r in db.execute(
        "SELECT order_id::text FROM exchange.orders WHERE client_id = %s AND "
        "status IN ('open', 'partially_filled', 'pending') ORDER BY order_no", (client,))]


def test_delete_orders_cancels_the_key_clients_orders_only(db, keys, frontend):
    """DELETE /orders cancels the API key's client's orders (the frontend's role, a member of exchange_trader,
    may call cancel_all_orders): another client's client_id, in the query or the body, is 403 client_mismatch
    and cancels nothing; without a key 401 (above); the other clients' orders stay."""
    for client, price in (("alice", "3"), ("bob", "3"), ("alice", "4"), ("carol", "2"), ("bob", "12")):
        side = "sell" if price == "12" else "buy"
        r = requests.post(BASE + "/orders", json=order(side=side, price=price), headers=h(keys[client]), timeout=10)
        assert r.status_code == 201 and r.json()["status"] == "open", r.text
    before = {client: resting_orders(db, client) for client in ("alice", "bob", "carol")}
    assert len(before["alice"]) >= 2 and len(before["bob"]) >= 2 and before["carol"]

    for kwargs in ({"params": {"client_id": "bob"}}, {"json": {"client_id": "bob"}},
                   {"params": {"client_id": "bob", "instrument": INSTRUMENT}}):
        r = requests.delete(BASE + "/orders", headers=h(keys["alice"]), timeout=10, **kwargs)
        assert r.status_code == 403 and r.json()["error"]["code"] == "client_mismatch", (kwargs, r.text)
    assert {client: resting_orders(db, client) for client in before} == before

    r = requests.delete(BASE + "/orders", headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 200, r.text
    got = r.json()["orders"]
    assert [o["order_id"] for o in got] == before["alice"], got
    assert {(o["client_id"], o["status"]) for o in got} == {("alice", "cancelled")}
    assert resting_orders(db, "alice") == []
    assert resting_orders(db, "bob") == before["bob"] and resting_orders(db, "carol") == before["carol"]
    listed = requests.get(BASE + "/orders", headers=h(keys["alice"]), timeout=10)
    assert listed.status_code == 200 and listed.json()["orders"] == []
    # The key's own client_id, as a Bearer token, with an instrument: nothing left to cancel.
    r = requests.delete(BASE + "/orders", params={"client_id": "alice", "instrument": INSTRUMENT},
                        headers={"Authorization": "Bearer " + keys["alice"]}, timeout=10)
    assert r.status_code == 200 and r.json() == {"orders": []}, r.text
    r = requests.delete(BASE + "/orders", params={"instrument": "NOPE-USD"}, headers=h(keys["bob"]), timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_instrument", r.text
    assert resting_orders(db, "bob") == before["bob"]


def test_a_revoked_key_stops_working(db, frontend):
    key = db.execute("SELECT api_key FROM exchange.create_api_key('dave')").fetchone()[0]
    assert requests.get(BASE + "/orders", headers=h(key), timeout=10).status_code == 200
    assert db.execute("SELECT exchange.revoke_api_key(%s)", (key,)).fetchone()[0] is True
    time.sleep(CACHE_MS / 1000 + 0.2)
    r = requests.get(BASE + "/orders", headers=h(key), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


# ------------------------------------------------------------------ WebSocket

WS_URL = f"ws://127.0.0.1:{WS_PORT}/stream"


async def recv_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def order_updates(ws, wanted, timeout=10.0):
    """Order messages until `wanted` order ids were all seen; returns every order message."""
    seen, out = set(), []
    deadline = time.monotonic() + timeout
    while not wanted <= seen:
        msg = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if msg["type"] == "order":
            out.append(msg)
            seen.add(msg["order_id"])
    return out


def test_websocket_orders_channel_is_private(keys, frontend):
    async def scenario():
        async with websockets.connect(WS_URL, extra_headers=h(keys["alice"])) as alice, \
                websockets.connect(WS_URL + "?api_key=" + keys["bob"]) as bob, \
                websockets.connect(WS_URL) as anonymous:
            for ws in (alice, bob):
                await ws.send(json.dumps({"type": "subscribe", "channels": ["orders"], "instruments": [INSTRUMENT]}))
                assert (await recv_json(ws))["type"] == "subscribed"
            # Without a key: the orders channel is refused, market data is public.
            await anonymous.send(json.dumps({"type": "subscribe", "channels": ["trades", "orders"]}))
            err = await recv_json(anonymous)
            assert err["type"] == "error" and err["code"] == "unauthorized"
            await anonymous.send(json.dumps({"type": "subscribe", "channels": ["orderbook_deltas", "trades"],
                                             "instruments": [INSTRUMENT]}))
            ack = await recv_json(anonymous)
            assert ack["type"] == "subscribed" and ack["channels"] == ["orderbook_deltas", "trades"]
            assert (await recv_json(anonymous))["type"] == "snapshot"

            placed = {}
            for client, price in (("alice", "7"), ("bob", "8"), ("carol", "9"), ("alice", "6")):
                r = requests.post(BASE + "/orders", json=order(price=price), headers=h(keys[client]), timeout=10)
                assert r.status_code == 201
                placed.setdefault(client, set()).add(r.json()["order_id"])
            got_alice = await order_updates(alice, placed["alice"])
            got_bob = await order_updates(bob, placed["bob"])
            assert {m["client_id"] for m in got_alice} == {"alice"}
            assert {m["client_id"] for m in got_bob} == {"bob"}
            # Nothing of carol's, and nothing more of alice's, reaches bob afterwards.
            try:
                while True:
                    msg = await recv_json(bob, 0.5)
                    assert msg["type"] != "order" or msg["client_id"] == "bob", msg
            except asyncio.TimeoutError:
                pass

    asyncio.run(scenario())


@pytest.mark.parametrize("headers,query", [({"X-API-Key": "pgx_0123456789abcdef_" + "0" * 64}, ""),
                                           ({}, "?api_key=nonsense"),
                                           ({"Authorization": "Basic eDp5"}, "")])
def test_websocket_with_an_invalid_key_is_refused(frontend, headers, query):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
            async with websockets.connect(WS_URL + query, extra_headers=headers):
                pass
        assert refused.value.status_code == 401

    asyncio.run(scenario())


# --------------------------------------------------------------------- limits

@pytest.fixture(scope="module")
def limited(db, keys, frontend):
    fe = start_frontend(LIMITS_HTTP_PORT, LIMITS_WS_PORT, "frontend-limits.log", "--http-max-connections", "3",
                        "--max-header-bytes", "2048", "--max-body-bytes", "1024", "--ws-max-message-bytes", "1024",
                        "--ws-max-messages-per-second", "5", "--http-max-queued-bytes", "65536")
    try:
        yield fe
    finally:
        assert fe.stop() == 0


def raw_request(sock, path, extra=""):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ")[1]), json.loads(rest[:length])


def test_limits_headers_and_body(keys, limited):
    base = f"http://127.0.0.1:{LIMITS_HTTP_PORT}"
    r = requests.get(base + "/instruments", headers={"X-Filler": "x" * 3000}, timeout=10)
    assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
    r = requests.get(base + "/instruments?pad=" + "y" * 3000, timeout=10)
    assert r.status_code == 431
    r = requests.post(base + "/orders", json=order(client_id="z" * 2000), headers=h(keys["alice"]), timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert requests.get(base + "/instruments", timeout=10).status_code == 200
    log = limited.log_path.read_text()
    assert "headers over 2048 bytes refused" in log and "body of" in log


def test_limits_connections(limited):
    socks = [socket.create_connection(("127.0.0.1", LIMITS_HTTP_PORT)) for _ in range(4)]
    try:
        statuses = [raw_request(s, "/healthz")[0] for s in socks[:3]]
        assert statuses == [200, 200, 200]
        status, body = raw_request(socks[3], "/healthz")
        assert status == 503 and body["error"]["code"] == "too_many_connections"
        # The refused connection stays refused; an admitted one keeps working.
        assert raw_request(socks[3], "/healthz")[0] == 503
        assert raw_request(socks[0], "/healthz")[0] == 200
        socks[1].close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the close shortly
            with socket.create_connection(("127.0.0.1", LIMITS_HTTP_PORT)) as s:
                if raw_request(s, "/healthz")[0] == 200:
                    break
            assert time.monotonic() < deadline, "a freed connection slot was never reused"
            time.sleep(0.1)
    finally:
        for s in socks:
            s.close()
    assert "refused a connection" in limited.log_path.read_text()


def test_limits_a_client_that_does_not_read_is_closed(db, limited):
    """Answers a client does not read wait for it up to --http-max-queued-bytes, then it is closed.

    What the kernel buffers does not count (up to tcp_wmem's maximum on loopback): order books of
    ~1 MB each are asked for, one every 0.2 s, until more than that waits.
    """
    symbol = "DEEP-LIMITS"
    place_deep_book(db, symbol, 10000)
    path = f"/orderbook?instrument={symbol}&levels=10000"
    r = requests.get(f"http://127.0.0.1:{LIMITS_HTTP_PORT}{path}", timeout=10)
    assert r.status_code == 200, r.text
    one = len(r.content)
    sock, send_buffer_max = unread_connection(LIMITS_HTTP_PORT, 30)
    try:
        for _ in range(send_buffer_max // one + 3):
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break  # closed already
            time.sleep(0.2)
        received = 0
        while True:  # what was sent before the close, then the end of the stream
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
        assert received < (send_buffer_max // one + 3) * one
    finally:
        sock.close()
    assert "closed a connection that did not read its answers (over 65536 bytes waiting)" in \
        limited.log_path.read_text()
    with socket.create_connection(("127.0.0.1", LIMITS_HTTP_PORT)) as s:  # the others are served
        assert raw_request(s, "/healthz")[0] == 200


def test_limits_websocket_message_size_and_rate(limited):
    url = f"ws://127.0.0.1:{LIMITS_WS_PORT}/stream"

    async def scenario():
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "ping", "pad": "p" * 2000}))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await recv_json(ws)
            assert ws.close_code == 1009
        async with websockets.connect(url) as ws:
            for _ in range(40):
                await ws.send(json.dumps({"type": "ping"}))
            replies = []
            try:
                while True:
                    replies.append(await recv_json(ws, 2.0))
            except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError):
                pass
            pongs = sum(m["type"] == "pong" for m in replies)
            limited_ = sum(m.get("code") == "rate_limited" for m in replies)
            # A burst of twice the rate passes, the rest is refused; over 20 refusals close the connection
            # (the answers still queued then are dropped).
            assert 10 <= pongs <= 12, replies
            assert limited_ >= 1
            assert ws.close_code == 1008
        async with websockets.connect(url) as ws:  # another client is not affected
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"

    asyncio.run(scenario())
    log = limited.log_path.read_text()
    assert "message over 1024 bytes" in log and "messages/s" in log
