"""TWAP orders (extension 0.18) end to end: POST /twaps, GET /twaps/{id}, GET /twaps/{id}/orders,
DELETE /twaps/{id} and POST /twaps/{id}/cancel, GET /twaps, and the frontend's ticker, which calls
exchange.run_twaps_each() (0.19) every --twap-tick-ms (the default, 1 s, here) to place the child orders
that are due.

The REST cluster, Redis and frontend (no API keys) of rest_fixtures.py. Each test trades instruments of its
own (the cluster has room for 10: BTC-USD, ETH-USD and the seven here), so that none sees another's orders.
The API key test starts a second frontend on the same database with keys on (REST 18060, WS 18061), logged
in as a member of exchange_trader; the test of a database at 0.17 a third one on a database of its own
(18062, 18063).
"""
import contextlib
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import requests

from harness import FRONTEND, Process
from rest_fixtures import (BASE, DSN, PG_DIR, PG_PORT, REDIS_PORT, api, fresh_client, metric,  # noqa: F401
                           metrics_text, order, pg, post_order, redis)

KEYED_HTTP_PORT, KEYED_WS_PORT = 18060, 18061
KEYED_BASE = f"http://127.0.0.1:{KEYED_HTTP_PORT}"
KEYED_ROLE = "pgx_twap_test"
OLD_HTTP_PORT, OLD_WS_PORT = 18062, 18063
TWAP_FIELDS = {"twap_id", "client_id", "instrument", "side", "quantity", "price", "start_at", "end_at", "slices",
               "filled_quantity", "remaining_quantity", "slices_done", "children", "status", "last_error",
               "created_at", "updated_at"}
# exchange.place_twap and the other functions of the routes (not run_twaps: the ticker would stop for good).
TWAP_FUNCTIONS = ("place_twap(text, text, text, numeric, interval, int, numeric, timestamptz, text)",
                  "get_twap(uuid)", "list_twaps(text, text, int)", "cancel_twap(uuid, text)", "twap_orders(uuid)")


def error_of(r):
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def new_instrument(pg, symbol, tick="0.01", lot="0.001"):
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument(%s, %s::numeric, %s::numeric)", (symbol, tick, lot))


def now():
    return datetime.now(timezone.utc)


def post_twap(body, headers=None, base=BASE):
    return requests.post(f"{base}/twaps", json=body, headers=headers or {}, timeout=10)


def get_twap(twap_id, base=BASE, headers=None):
    return requests.get(f"{base}/twaps/{twap_id}", headers=headers or {}, timeout=10)


def twap_orders(twap_id, base=BASE, headers=None):
    return requests.get(f"{base}/twaps/{twap_id}/orders", headers=headers or {}, timeout=10)


def delete_twap(twap_id, base=BASE, headers=None, params=None):
    return requests.delete(f"{base}/twaps/{twap_id}", headers=headers or {}, params=params or {}, timeout=10)


def list_twaps(params, base=BASE, headers=None):
    return requests.get(f"{base}/twaps", params=params, headers=headers or {}, timeout=10)


def wait_for(twap_id, done, what, timeout=15.0):
    """GET /twaps/{id} every 0.1 s until done(twap) holds (at most `timeout` seconds); the TWAP."""
    deadline = time.monotonic() + timeout
    while True:
        r = get_twap(twap_id)
        assert r.status_code == 200, r.text
        twap = r.json()
        if done(twap):
            return twap
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s: {twap}")
        time.sleep(0.1)


def test_the_ticker_places_the_due_slices(api, pg):
    """A TWAP that started 5 minutes ago over 10 minutes in 5 slices: slices 1 to 3 are due, and the ticker
    places them as one market IOC child for 3/5 of the quantity, which a resting sell fills; the TWAP stays
    active. One that started an hour ago and ended 50 minutes ago gets everything in one child and is
    completed. Every quantity the exact decimal the lot makes of it (\"1\" is \"1.000\")."""
    symbol = "TWA-USD"
    new_instrument(pg, symbol)
    maker, buyer = fresh_client("twm"), fresh_client("twb")
    r = post_order(order(maker, side="sell", price="100.00", quantity="5", instrument=symbol))
    assert r.status_code == 201 and r.json()["status"] == "open", r.text
    placed_before = metric(metrics_text(), "twap_child_orders_total")

    start = now() - timedelta(minutes=5)
    r = post_twap({"client_id": buyer, "instrument": symbol, "side": "buy", "quantity": 1, "duration_seconds": 600,
                   "slices": 5, "start_at": start.isoformat()})
    assert r.status_code == 201, r.text
    twap = r.json()
    assert set(twap) == TWAP_FIELDS, twap
    twap_id = twap["twap_id"]
    assert uuid.UUID(twap_id)
    assert {k: twap[k] for k in TWAP_FIELDS - {"twap_id", "start_at", "end_at", "created_at", "updated_at"}} == {
        "client_id": buyer, "instrument": symbol, "side": "buy", "quantity": "1.000", "price": None, "slices": 5,
        "filled_quantity": "0.000", "remaining_quantity": "1.000", "slices_done": 0, "children": 0, "status": "active",
        "last_error": None}
    assert datetime.fromisoformat(twap["start_at"]) == start
    assert datetime.fromisoformat(twap["end_at"]) == start + timedelta(minutes=10)

    twap = wait_for(twap_id, lambda t: t["children"] >= 1, "child order")
    assert {k: twap[k] for k in ("filled_quantity", "remaining_quantity", "slices_done", "children", "status",
                                 "last_error")} == {
        "filled_quantity": "0.600", "remaining_quantity": "0.400", "slices_done": 3, "children": 1,
        "status": "active", "last_error": None}, twap
    assert datetime.fromisoformat(twap["updated_at"]) > datetime.fromisoformat(twap["created_at"])

    r = twap_orders(twap_id)
    assert r.status_code == 200 and set(r.json()) == {"orders"}, r.text
    [child] = r.json()["orders"]
    assert {k: child[k] for k in ("client_id", "instrument", "side", "type", "time_in_force", "price", "quantity",
                                  "filled_quantity", "remaining_quantity", "status")} == {
        "client_id": buyer, "instrument": symbol, "side": "buy", "type": "market", "time_in_force": "ioc",
        "price": None, "quantity": "0.600", "filled_quantity": "0.600", "remaining_quantity": "0.000",
        "status": "filled"}, child
    # The child with its trades, as GET /orders/{id} has it.
    assert [(t["price"], t["quantity"]) for t in child["trades"]] == [("100.00", "0.600")], child
    r = requests.get(f"{BASE}/orders/{child['order_id']}", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "filled", r.text
    assert r.json()["trades"] == child["trades"], r.text
    assert metric(metrics_text(), "twap_child_orders_total") >= placed_before + 1

    # Ended before it was placed: the first run places all of it and completes it.
    start = now() - timedelta(hours=1)
    r = post_twap({"client_id": buyer, "instrument": symbol, "side": "buy", "quantity": "1.5",
                   "duration_seconds": "600", "slices": "5", "start_at": start.isoformat()})
    assert r.status_code == 201, r.text
    ended_id = r.json()["twap_id"]
    twap = wait_for(ended_id, lambda t: t["status"] != "active", "completion")
    assert {k: twap[k] for k in ("quantity", "filled_quantity", "remaining_quantity", "slices_done", "children",
                                 "status", "last_error")} == {
        "quantity": "1.500", "filled_quantity": "1.500", "remaining_quantity": "0.000", "slices_done": 5,
        "children": 1, "status": "completed", "last_error": None}, twap
    [child] = twap_orders(ended_id).json()["orders"]
    assert (child["quantity"], child["filled_quantity"], child["status"]) == ("1.500", "1.500", "filled"), child
    # The maker's order has what the two TWAPs left of it.
    with pg.connect() as conn:
        left = conn.execute("SELECT (quantity - filled_quantity)::text FROM exchange.orders WHERE client_id = %s",
                            (maker,)).fetchone()[0]
    assert left == "2.900"
    r = list_twaps({"client_id": buyer})
    assert r.status_code == 200 and [t["twap_id"] for t in r.json()["twaps"]] == [ended_id, twap_id], r.text
    r = list_twaps({"client_id": buyer, "status": "completed"})
    assert [t["twap_id"] for t in r.json()["twaps"]] == [ended_id], r.text
    r = list_twaps({"client_id": buyer, "status": "active", "limit": 1})
    assert [t["twap_id"] for t in r.json()["twaps"]] == [twap_id], r.text


def test_a_price_cap_without_liquidity_places_ioc_children_that_rest_nowhere(api, pg):
    """A buy capped at 100.00 with the only ask at 101.00: the due child is a limit IOC at the cap, fills
    nothing and is cancelled, so nothing of the TWAP rests; the TWAP stays active until its end, and a tick
    later (no new slice due) it has placed nothing more."""
    symbol = "TWB-USD"
    new_instrument(pg, symbol)
    maker, buyer = fresh_client("twm"), fresh_client("twb")
    assert post_order(order(maker, side="sell", price="101.00", quantity="5", instrument=symbol)).status_code == 201
    r = post_twap({"client_id": buyer, "instrument": symbol, "side": "buy", "quantity": "1", "price": "100.00",
                   "duration_seconds": 600, "slices": 5, "start_at": (now() - timedelta(minutes=5)).isoformat()})
    assert r.status_code == 201 and r.json()["price"] == "100.00", r.text
    twap_id = r.json()["twap_id"]
    twap = wait_for(twap_id, lambda t: t["children"] >= 1, "child order")
    assert {k: twap[k] for k in ("price", "filled_quantity", "remaining_quantity", "slices_done", "children",
                                 "status", "last_error")} == {
        "price": "100.00", "filled_quantity": "0.000", "remaining_quantity": "1.000", "slices_done": 3,
        "children": 1, "status": "active", "last_error": None}, twap
    [child] = twap_orders(twap_id).json()["orders"]
    assert {k: child[k] for k in ("client_id", "type", "time_in_force", "price", "quantity", "status",
                                  "trades")} == {
        "client_id": buyer, "type": "limit", "time_in_force": "ioc", "price": "100.00", "quantity": "0.600",
        "status": "cancelled", "trades": []}, child
    assert Decimal(child["filled_quantity"]) == 0
    book = requests.get(f"{BASE}/orderbook", params={"instrument": symbol}, timeout=10).json()
    assert book["bids"] == [] and [(a["price"], a["quantity"]) for a in book["asks"]] == [("101.00", "5.000")], book
    with pg.connect() as conn:
        resting = conn.execute("SELECT count(*) FROM exchange.orders WHERE client_id = %s AND status IN "
                               "('open', 'partially_filled', 'pending')", (buyer,)).fetchone()[0]
    assert resting == 0
    time.sleep(1.5)
    twap = get_twap(twap_id).json()
    assert (twap["status"], twap["children"], twap["slices_done"]) == ("active", 1, 3), twap


def test_validation(api, pg):
    """Each bad request is 400 (404 for no such route) with the one error shape and its code, from the
    frontend or from place_twap; none stores a TWAP."""
    symbol = "TWC-USD"
    new_instrument(pg, symbol)
    client = fresh_client("twv")
    valid = {"client_id": client, "instrument": symbol, "side": "buy", "quantity": "1", "duration_seconds": 600,
             "slices": 5, "start_at": (now() + timedelta(hours=1)).isoformat()}

    def without(name):
        return {k: v for k, v in valid.items() if k != name}

    cases = [(without(name), "missing_field") for name in ("client_id", "instrument", "side", "quantity",
                                                           "duration_seconds")]
    cases += [({**valid, "duration_seconds": None}, "missing_field")]
    cases += [({**valid, "side": side}, "invalid_side") for side in ("hold", "BUY ", "")]
    cases += [({**valid, "quantity": q}, "invalid_quantity") for q in ("1.0005", "0", "-1", "abc", "NaN", 1e-4)]
    cases += [({**valid, "duration_seconds": d}, "invalid_duration")
              for d in (0, 604801, 1.5, "ten", "600.0", "6e2", -5, "", 10 ** 30)]
    cases += [({**valid, "duration_seconds": d}, "invalid_field") for d in (True, [600], {"s": 600})]
    cases += [({**valid, "slices": s}, "invalid_slices") for s in (0, 10001, 2.5, "five")]
    # 2000 slices of 1.000 (1000 lots) would be less than a lot each: place_twap refuses it.
    cases += [({**valid, "slices": 2000}, "invalid_slices")]
    cases += [({**valid, "price": p}, "invalid_price") for p in ("100.001", "0", "abc")]
    cases += [({**valid, "start_at": s}, "invalid_start_at")
              for s in ("yesterday", "now", "infinity", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z",
                        "2026-01-05T10:00:00", "2026-01-05", "")]
    cases += [({**valid, "start_at": 1767607200}, "invalid_field")]
    cases += [({**valid, "instrument": "NOPE-USD"}, "unknown_instrument")]
    cases += [({**valid, "prise": "100.00"}, "unknown_field")]
    cases += [({**valid, "client_id": ""}, "invalid_client_id")]
    for body, code in cases:
        r = post_twap(body)
        assert r.status_code == 400 and error_of(r) == code, (body, r.text)
    r = requests.post(f"{BASE}/twaps", data="{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and error_of(r) == "malformed_json", r.text
    r = post_twap({**valid, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"})
    assert r.status_code == 400 and error_of(r) == "conflicting_idempotency_key", r.text
    r = post_twap({**valid, "duration_seconds": 0})
    assert "604800" in r.json()["error"]["message"], r.text

    # The reads and cancels of the routes refuse their bad parameters alike.
    for params, code in (({}, "missing_parameter"), ({"client_id": client, "status": "done"}, "invalid_status"),
                         ({"client_id": client, "limit": 0}, "invalid_parameter")):
        r = list_twaps(params)
        assert r.status_code == 400 and error_of(r) == code, (params, r.text)
    for bad in (str(uuid.uuid4()), "not-a-uuid", "0"):
        for r in (get_twap(bad), twap_orders(bad), delete_twap(bad)):
            assert r.status_code == 404 and error_of(r) == "twap_not_found", (bad, r.text)
    r = requests.patch(f"{BASE}/twaps/{uuid.uuid4()}", json={}, timeout=10)
    assert r.status_code == 405 and "DELETE" in r.headers["Allow"], r.text

    r = list_twaps({"client_id": client})
    assert r.status_code == 200 and r.json() == {"twaps": []}, r.text
    assert pg.scalar("SELECT count(*) FROM exchange.twaps WHERE client_id = %s", (client,)) == 0
    # The valid body itself is accepted.
    r = post_twap(valid)
    assert r.status_code == 201 and r.json()["quantity"] == "1.000", r.text


def test_idempotency(api, pg):
    """The same Idempotency-Key (header or field) gives the same TWAP again: 201, then 200 with the TWAP as
    it is; 20 identical requests at once make one TWAP, one 201 and nineteen 200."""
    symbol = "TWD-USD"
    new_instrument(pg, symbol)
    client = fresh_client("twi")
    body = {"client_id": client, "instrument": symbol, "side": "sell", "quantity": "2", "duration_seconds": 3600,
            "slices": 4, "price": "99.50", "start_at": (now() + timedelta(hours=1)).isoformat()}
    first = post_twap(body, headers={"Idempotency-Key": "twap-1"})
    assert first.status_code == 201, first.text
    again = post_twap(body, headers={"Idempotency-Key": "twap-1"})
    assert again.status_code == 200 and again.json() == first.json(), again.text
    assert "replayed" not in again.json()
    field = post_twap({**body, "idempotency_key": "twap-1"})
    assert field.status_code == 200 and field.json()["twap_id"] == first.json()["twap_id"], field.text
    other = post_twap(body, headers={"Idempotency-Key": "twap-2"})
    assert other.status_code == 201 and other.json()["twap_id"] != first.json()["twap_id"], other.text

    racer = fresh_client("twr")
    gate = threading.Barrier(20)
    answers = [None] * 20

    def send(i):
        gate.wait()
        answers[i] = post_twap({**body, "client_id": racer}, headers={"Idempotency-Key": "race"})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200] * 19 + [201], [r.text for r in answers]
    assert len({r.json()["twap_id"] for r in answers}) == 1
    assert pg.scalar("SELECT count(*) FROM exchange.twaps WHERE client_id = %s", (racer,)) == 1
    assert len(list_twaps({"client_id": racer}).json()["twaps"]) == 1
    assert len(list_twaps({"client_id": client}).json()["twaps"]) == 2


def test_cancel(api, pg):
    """Two TWAPs placing a child a second (60 slices over 60 s, capped below any ask): the one cancelled
    is answered with status cancelled and places nothing more, while the other goes on; cancelling again is
    409 twap_not_active, another client's (no API keys: client_id in the query) 403 not_twap_owner, an
    unknown id 404."""
    symbol = "TWE-USD"
    new_instrument(pg, symbol, tick="0.01", lot="1")
    a, b = fresh_client("twca"), fresh_client("twcb")
    ids = {}
    for client in (a, b):
        r = post_twap({"client_id": client, "instrument": symbol, "side": "buy", "quantity": 60,
                       "duration_seconds": 60, "slices": 60, "price": "10.00"})
        assert r.status_code == 201 and r.json()["quantity"] == "60", r.text
        ids[client] = r.json()["twap_id"]
    wait_for(ids[a], lambda t: t["children"] >= 1, "child order")

    r = delete_twap(ids[b], params={"client_id": a})
    assert r.status_code == 403 and error_of(r) == "not_twap_owner", r.text
    r = delete_twap(ids[a], params={"client_id": a})
    assert r.status_code == 200 and set(r.json()) == TWAP_FIELDS and r.json()["status"] == "cancelled", r.text
    children = r.json()["children"]
    assert children >= 1
    for r in (delete_twap(ids[a]), requests.post(f"{BASE}/twaps/{ids[a]}/cancel", timeout=10)):
        assert r.status_code == 409 and error_of(r) == "twap_not_active", r.text
    r = delete_twap(str(uuid.uuid4()))
    assert r.status_code == 404 and error_of(r) == "twap_not_found", r.text

    # While the ticker runs on (the other TWAP gets a child for each new slice, one a second), the
    # cancelled one gets none.
    others = get_twap(ids[b]).json()["children"]
    twap = wait_for(ids[b], lambda t: t["children"] >= others + 2, "two more child orders of the other TWAP")
    assert twap["status"] == "active", twap
    twap = get_twap(ids[a]).json()
    assert (twap["status"], twap["children"]) == ("cancelled", children), twap
    assert len(twap_orders(ids[a]).json()["orders"]) == children
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (a,)) == children
    r = requests.post(f"{BASE}/twaps/{ids[b]}/cancel", json={"client_id": b}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    orders = twap_orders(ids[b]).json()["orders"]
    assert len(orders) == r.json()["children"]
    assert {(o["type"], o["time_in_force"], o["status"], o["filled_quantity"]) for o in orders} == {
        ("limit", "ioc", "cancelled", "0")}, orders
    assert requests.get(f"{BASE}/orderbook", params={"instrument": symbol}, timeout=10).json()["bids"] == []


def test_before_extension_0_18_every_route_is_501(api, pg):
    """With the TWAP functions hidden by a rename (a database before 0.18), every TWAP route is 501
    extension_outdated; once they are back, a TWAP is placed."""
    symbol = "TWF-USD"
    new_instrument(pg, symbol)
    client = fresh_client("two")
    body = {"client_id": client, "instrument": symbol, "side": "buy", "quantity": "1", "duration_seconds": 60}
    some_id = str(uuid.uuid4())
    with pg.connect() as conn:
        with conn.transaction():
            for function in TWAP_FUNCTIONS:
                name = function[:function.index("(")]
                conn.execute(f"ALTER FUNCTION exchange.{function} RENAME TO {name}_hidden")
    try:
        answers = [post_twap(body), get_twap(some_id), twap_orders(some_id), delete_twap(some_id),
                   requests.post(f"{BASE}/twaps/{some_id}/cancel", timeout=10), list_twaps({"client_id": client})]
        for r in answers:
            assert r.status_code == 501 and error_of(r) == "extension_outdated", (r.request.method, r.url, r.text)
    finally:
        with pg.connect() as conn:
            with conn.transaction():
                for function in TWAP_FUNCTIONS:
                    name = function[:function.index("(")]
                    hidden = f"{name}_hidden{function[function.index('('):]}"
                    conn.execute(f"ALTER FUNCTION exchange.{hidden} RENAME TO {name}")
    r = post_twap(body)
    assert r.status_code == 201 and r.json()["slices"] == 1, r.text  # one a minute by default
    assert list_twaps({"client_id": client}).json()["twaps"] == [r.json()]


def test_with_api_keys_a_client_sees_and_cancels_only_its_own_twaps(api, pg, redis):
    """A second frontend with API keys on: a TWAP placed with alice's key is alice's (client_id may be left
    out); bob's key gets 404 twap_not_found for it on every route (it exists for no one else), 403
    client_mismatch for alice's client_id; alice reads, lists and cancels it. The ticker of that frontend runs
    as a member of exchange_trader."""
    symbol = "TWG-USD"
    new_instrument(pg, symbol)
    alice, bob = fresh_client("twka"), fresh_client("twkb")
    with pg.connect() as conn:
        conn.execute(f"CREATE ROLE {KEYED_ROLE} LOGIN IN ROLE exchange_trader")
        keys = {c: {"X-API-Key": conn.execute("SELECT api_key FROM exchange.create_api_key(%s)", (c,)).fetchone()[0]}
                for c in (alice, bob)}
    dsn = f"host=127.0.0.1 port={PG_PORT} user={KEYED_ROLE} dbname=postgres"
    fe = Process([str(FRONTEND), "--db", dsn, "--http-host", "127.0.0.1", "--http-port", str(KEYED_HTTP_PORT),
                  "--ws-port", str(KEYED_WS_PORT), "--redis", f"127.0.0.1:{REDIS_PORT}", "--log-level", "info"],
                 PG_DIR / "twap-keyed-frontend.log", KEYED_HTTP_PORT)
    try:
        body = {"instrument": symbol, "side": "buy", "quantity": "1", "duration_seconds": 600,
                "start_at": (now() + timedelta(hours=1)).isoformat()}
        r = post_twap(body, base=KEYED_BASE)
        assert r.status_code == 401 and error_of(r) == "missing_api_key", r.text
        r = post_twap({**body, "client_id": bob}, base=KEYED_BASE, headers=keys[alice])
        assert r.status_code == 403 and error_of(r) == "client_mismatch", r.text
        r = post_twap(body, base=KEYED_BASE, headers=keys[alice])
        assert r.status_code == 201 and r.json()["client_id"] == alice and r.json()["slices"] == 10, r.text
        twap = r.json()
        twap_id = twap["twap_id"]

        bobs = keys[bob]
        for r in (get_twap(twap_id, KEYED_BASE, bobs), twap_orders(twap_id, KEYED_BASE, bobs),
                  delete_twap(twap_id, KEYED_BASE, bobs),
                  requests.post(f"{KEYED_BASE}/twaps/{twap_id}/cancel", headers=bobs, timeout=10)):
            assert r.status_code == 404 and error_of(r) == "twap_not_found", (r.request.method, r.url, r.text)
        r = list_twaps({"client_id": alice}, KEYED_BASE, bobs)
        assert r.status_code == 403 and error_of(r) == "client_mismatch", r.text
        r = list_twaps({}, KEYED_BASE, bobs)
        assert r.status_code == 200 and r.json() == {"twaps": []}, r.text
        r = get_twap(twap_id, KEYED_BASE)
        assert r.status_code == 401, r.text

        r = get_twap(twap_id, KEYED_BASE, keys[alice])
        assert r.status_code == 200 and r.json() == twap, r.text  # bob's attempts changed nothing
        r = twap_orders(twap_id, KEYED_BASE, keys[alice])
        assert r.status_code == 200 and r.json() == {"orders": []}, r.text
        r = list_twaps({}, KEYED_BASE, keys[alice])
        assert r.status_code == 200 and r.json() == {"twaps": [twap]}, r.text
        r = delete_twap(twap_id, KEYED_BASE, keys[alice])
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    finally:
        code = fe.stop()
        assert code == 0, f"pgx-frontend exited with {code}, see {fe.log_path}"
    log = fe.log_path.read_text()
    assert "twap ticker: the due TWAP orders every 1000 ms" in log, log
    assert "twap ticker: running the TWAP orders failed" not in log, log
    assert "older than 0.19" not in log, log  # it ran them with exchange.run_twaps_each()


@contextlib.contextmanager
def frontend_on_old_database(pg, name, version):
    """A database of its own whose extension is at version, and a frontend on it (REST 18062, WS 18063)
    whose ticker runs every 100 ms; yields (dsn, the frontend), then stops it and drops the database."""
    with pg.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    dsn = DSN.replace("dbname=postgres", f"dbname={name}")
    fe = None
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE EXTENSION exchange VERSION '{version}'")
        fe = Process([str(FRONTEND), "--db", dsn, "--http-host", "127.0.0.1", "--http-port", str(OLD_HTTP_PORT),
                      "--ws-port", str(OLD_WS_PORT), "--redis", f"127.0.0.1:{REDIS_PORT}", "--no-auth",
                      "--twap-tick-ms", "100"], PG_DIR / f"{name.replace('_', '-')}-frontend.log", OLD_HTTP_PORT)
        yield dsn, fe
    finally:
        if fe is not None:
            code = fe.stop()
            assert code == 0, f"pgx-frontend exited with {code}, see {fe.log_path}"
        with pg.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def ticker_lines(fe):
    return [ln for ln in fe.log_path.read_text().splitlines() if "twap ticker" in ln]


def test_the_ticker_stops_on_a_database_before_0_18(api, pg):
    """A frontend on a database whose extension is 0.17: its ticker logs once, at INFO, that TWAPs are not
    run, and stops; the TWAP routes are 501 there; the frontend still stops cleanly."""
    with frontend_on_old_database(pg, "twap_v017", "0.17") as (_, fe):
        r = post_twap({"client_id": "x", "instrument": "X", "side": "buy", "quantity": "1", "duration_seconds": 60},
                      base=f"http://127.0.0.1:{OLD_HTTP_PORT}")
        assert r.status_code == 501 and error_of(r) == "extension_outdated", r.text
        deadline = time.monotonic() + 5
        while "older than 0.18" not in fe.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # five ticks more, were it still ticking
        lines = ticker_lines(fe)
        assert len(lines) == 3 and " info [" in lines[0] and "every 100 ms" in lines[0], lines
        assert " info [" in lines[1] and "older than 0.19 (no exchange.run_twaps_each())" in lines[1], lines
        assert " info [" in lines[2] and "older than 0.18 (no exchange.run_twaps())" in lines[2], lines


def test_the_ticker_runs_a_0_18_database_in_one_transaction(api, pg):
    """A frontend on a database whose extension is 0.18 (no exchange.run_twaps_each, 0.19): its ticker logs
    once, at INFO, that it runs the TWAPs with exchange.run_twaps(), and does: a TWAP placed there completes."""
    with frontend_on_old_database(pg, "twap_v018", "0.18") as (dsn, fe), \
            psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT exchange.create_instrument('T18-USD', 1, 1)")
        conn.execute("SELECT exchange.place_order('m18', 'T18-USD', 'sell', 'limit', 10, 100)")
        twap_id = conn.execute("SELECT twap_id FROM exchange.place_twap('b18', 'T18-USD', 'buy', 4, "
                               "'10 minutes', 2, 100, now() - interval '6 minutes')").fetchone()[0]
        deadline = time.monotonic() + 10
        while (row := conn.execute("SELECT status, children, filled_quantity FROM exchange.get_twap(%s)",
                                   (twap_id,)).fetchone())[0] == "active" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert row == ("completed", 1, 4), row
        lines = ticker_lines(fe)
        assert len(lines) == 2 and "every 100 ms" in lines[0], lines
        assert " info [" in lines[1] and "older than 0.19 (no exchange.run_twaps_each())" in lines[1], lines
        assert "(exchange.run_twaps())" in lines[1], lines


def test_the_ticker_reconnects_after_a_database_restart(api, pg):
    """PostgreSQL stopped for longer than a tick and started again: the ticker warns once for the outage,
    reconnects by itself and places the children of a TWAP placed after the restart."""
    symbol = "TWH-USD"
    new_instrument(pg, symbol)
    log_path = PG_DIR / "frontend.log"
    seen = len(log_path.read_text())
    pg.stop()
    time.sleep(2.5)
    pg.start()
    maker, buyer = fresh_client("twm"), fresh_client("twb")
    deadline = time.monotonic() + 10
    while (r := post_order(order(maker, side="sell", price="100.00", quantity="1", instrument=symbol))).status_code \
            == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 201, r.text
    r = post_twap({"client_id": buyer, "instrument": symbol, "side": "buy", "quantity": "0.5", "duration_seconds": 60,
                   "slices": 2, "start_at": (now() - timedelta(minutes=5)).isoformat()})
    assert r.status_code == 201, r.text
    twap = wait_for(r.json()["twap_id"], lambda t: t["status"] != "active", "completion")
    assert (twap["status"], twap["filled_quantity"], twap["children"]) == ("completed", "0.500", 1), twap
    lines = [ln for ln in log_path.read_text()[seen:].splitlines() if "twap ticker" in ln]
    assert len(lines) == 2, lines
    assert " warning [" in lines[0] and "twap ticker: running the TWAP orders failed" in lines[0], lines
    assert " info [" in lines[1] and lines[1].endswith("twap ticker: running again"), lines
