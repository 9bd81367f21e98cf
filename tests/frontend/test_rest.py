"""The REST API of pgx-frontend against a real PostgreSQL, Redis and HTTP.

Tests run in file order; the outage tests (Redis, then PostgreSQL) come last.
"""
import asyncio
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pytest
import requests
import websockets

from feed_fixtures import BookCopy
from harness import FRONTEND, Process, place_deep_book, unread_connection, wait_for_port  # noqa: F401
from rest_fixtures import (BASE, DSN, MAX_BODY, MAX_INSTRUMENTS, PG_DIR, PG_PORT, REDIS_PORT, api,  # noqa: F401
                           fresh_client, metric, metrics_text, order, pg, post_order, redis)

JSON = {"Content-Type": "application/json"}


def error_of(r):
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def test_health_ready_and_cors(api):
    r = requests.get(f"{api}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = requests.get(f"{api}/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    r = requests.options(f"{api}/orders", headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert "Idempotency-Key" in r.headers["Access-Control-Allow-Headers"]


def test_place_order_returns_the_order_with_exact_decimals(api, pg):
    client = fresh_client()
    r = post_order(order(client, side="sell", price="100.10", quantity=0.3))
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["client_id"] == client and o["status"] == "open" and o["side"] == "sell" and o["type"] == "limit"
    assert o["price"] == "100.10" and o["quantity"] == "0.3"  # 0.3 sent as a JSON number stays exact
    assert o["filled_quantity"] == "0.0000" and o["remaining_quantity"] == "0.3000"
    assert o["trades"] == [] and isinstance(o["seq"], int) and o["created_at"]
    assert uuid.UUID(o["order_id"])
    assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "99"
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE order_id = %s", (o["order_id"],)) == 1


def test_crossing_order_trades_and_read_routes(api):
    seller, buyer = fresh_client("s"), fresh_client("b")
    maker = post_order(order(seller, side="sell", price="101.00", quantity="2", instrument="ETH-USD")).json()
    r = post_order(order(buyer, side="buy", price="101.50", quantity="0.5", instrument="ETH-USD"))
    assert r.status_code == 201
    taker = r.json()
    assert taker["status"] == "filled" and taker["filled_quantity"] == "0.500"
    assert len(taker["trades"]) == 1
    trade = taker["trades"][0]
    assert trade["price"] == "101.00" and trade["quantity"] == "0.500"
    assert trade["maker_order_id"] == maker["order_id"]

    got = requests.get(f"{api}/orders/{maker['order_id']}").json()
    assert got["status"] == "partially_filled" and got["remaining_quantity"] == "1.500" and got["seq"] is None
    assert [t["trade_id"] for t in got["trades"]] == [trade["trade_id"]]

    listed = requests.get(f"{api}/orders", params={"client_id": seller}).json()["orders"]
    assert [o["order_id"] for o in listed] == [maker["order_id"]]
    assert requests.get(f"{api}/orders", params={"client_id": buyer}).json()["orders"] == []
    filled = requests.get(f"{api}/orders", params={"client_id": buyer, "status": "filled"}).json()["orders"]
    assert [o["order_id"] for o in filled] == [taker["order_id"]]
    r = requests.get(f"{api}/orders", params={"client_id": buyer, "status": "bogus"})
    assert r.status_code == 400 and error_of(r) == "invalid_status"

    book = requests.get(f"{api}/orderbook", params={"instrument": "ETH-USD", "levels": 5}).json()
    assert book["instrument"] == "ETH-USD" and isinstance(book["seq"], int)
    assert book["asks"][0] == {"price": "101.00", "quantity": "1.500", "order_count": 1}

    trades = requests.get(f"{api}/trades", params={"instrument": "ETH-USD", "limit": 10}).json()["trades"]
    assert trades[0]["trade_id"] == trade["trade_id"] and trades[0]["price"] == "101.00"
    assert trades[0]["buy_client_id"] == buyer and trades[0]["sell_client_id"] == seller
    stats = requests.get(f"{api}/trades/stats", params={"instrument": "ETH-USD", "minutes": 5}).json()
    assert stats["trade_count"] >= 1 and stats["instrument"] == "ETH-USD" and isinstance(stats["volume"], str)

    r = requests.post(f"{api}/orderbook/snapshot", json={"instrument": "ETH-USD"})
    assert r.status_code == 201 and isinstance(r.json()["snapshot_id"], int)
    symbols = [i["symbol"] for i in requests.get(f"{api}/instruments").json()["instruments"]]
    assert symbols == ["BTC-USD", "ETH-USD"]


def test_candles_are_the_trades_in_buckets_with_exact_decimals(api, pg):
    """GET /candles answers exchange.candles (extension 0.11): one bucket per interval, oldest first, empty
    ones carrying the last price; then the bucket in progress after real trades; and every bad parameter."""
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument('CNDL-USD', 0.01, 0.001)")
        # Trades at fixed times (the trading functions stamp now()), in trade_no order.
        conn.execute("""
            INSERT INTO exchange.trades (instrument, instrument_id, seq, price, quantity, buy_order_id, sell_order_id,
                                         buy_client_id, sell_client_id, maker_side, executed_at)
            SELECT 'CNDL-USD', (SELECT instrument_id FROM exchange.instruments WHERE symbol = 'CNDL-USD'), seq,
                   price, quantity, gen_random_uuid(), gen_random_uuid(), 'b', 's', 'sell', at
              FROM (VALUES (1, '2026-01-05 10:00:05+00'::timestamptz, 1, 100.00, 0.500),
                           (2, '2026-01-05 10:00:30+00', 2, 101.50, 0.250),
                           (3, '2026-01-05 10:00:30+00', 2, 99.50, 0.250),
                           (4, '2026-01-05 10:00:59+00', 3, 100.25, 1.000),
                           (5, '2026-01-05 10:02:10+00', 4, 102.00, 0.125)) v(n, at, seq, price, quantity)
             ORDER BY n""")
    # Against a database whose extension predates 0.11 (the function hidden by a rename): 501, which says so.
    signature = "exchange.candles(text, interval, timestamptz, timestamptz, int)"
    with pg.connect() as conn:
        conn.execute(f"ALTER FUNCTION {signature} RENAME TO candles_hidden")
    try:
        r = requests.get(f"{api}/candles", params={"instrument": "CNDL-USD"})
        assert r.status_code == 501 and error_of(r) == "extension_outdated", r.text
    finally:
        with pg.connect() as conn:
            conn.execute("ALTER FUNCTION exchange.candles_hidden(text, interval, timestamptz, timestamptz, int) "
                         "RENAME TO candles")
    r = requests.get(f"{api}/candles", params={"instrument": "CNDL-USD", "interval": "1m",
                                               "since": "2026-01-05T11:00:00+01:00", "until": "2026-01-05T10:04:00Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["instrument"] == "CNDL-USD" and body["interval"] == "1m"
    starts = [datetime.fromisoformat(c.pop("start")) for c in body["candles"]]
    assert starts == [datetime(2026, 1, 5, 10, m, tzinfo=timezone.utc) for m in range(4)]
    assert body["candles"] == [
        {"open": "100.00", "high": "101.50", "low": "99.50", "close": "100.25", "volume": "2.000",
         "notional": "200.50000", "trade_count": 4},
        {"open": "100.25", "high": "100.25", "low": "100.25", "close": "100.25", "volume": "0", "notional": "0",
         "trade_count": 0},
        {"open": "102.00", "high": "102.00", "low": "102.00", "close": "102.00", "volume": "0.125",
         "notional": "12.75000", "trade_count": 1},
        {"open": "102.00", "high": "102.00", "low": "102.00", "close": "102.00", "volume": "0", "notional": "0",
         "trade_count": 0}]
    # limit bounds the window from since; the next page starts where it ended.
    page = requests.get(f"{api}/candles", params={"instrument": "CNDL-USD", "interval": "60s", "limit": 2,
                                                  "since": "2026-01-05T10:02:00Z"}).json()["candles"]
    assert [(c["close"], c["trade_count"]) for c in page] == [("102.00", 1), ("102.00", 0)]

    # Real trades land in the bucket in progress (default window: the last `limit` buckets up to now).
    seller, buyer = fresh_client(), fresh_client()
    assert post_order(order(seller, instrument="CNDL-USD", side="sell", price="50.00", quantity="2")).status_code == 201
    assert post_order(order(buyer, instrument="CNDL-USD", side="buy", price="50.00", quantity="0.5")).status_code == 201
    assert post_order(order(buyer, instrument="CNDL-USD", side="buy", price="50.00", quantity="1")).status_code == 201
    week = requests.get(f"{api}/candles", params={"instrument": "CNDL-USD", "interval": "1w"}).json()["candles"]
    assert week[-1]["close"] == "50.00" and week[-1]["volume"] == "1.500" and week[-1]["trade_count"] == 2
    assert sum(c["trade_count"] for c in week) == 7
    assert all(isinstance(c[k], str) for c in week for k in ("open", "high", "low", "close", "volume", "notional"))

    def refused(params):
        r = requests.get(f"{api}/candles", params={"instrument": "CNDL-USD", **params})
        assert r.status_code == 400, (params, r.text)
        return error_of(r)

    for interval in ("0m", "1x", "8d", "m", "1.5m", "-1m", "1m ", "604801s", "99999999999w"):
        assert refused({"interval": interval}) == "invalid_interval", interval
    for interval in ("1s", "7d", "1w", "604800s"):  # the narrowest and the widest
        assert requests.get(f"{api}/candles", params={"instrument": "CNDL-USD", "interval": interval,
                                                      "limit": 1}).status_code == 200, interval
    for since in ("yesterday", "2026-01-05", "2026-01-05T10:00:00", "2026-01-05T10:00:00+0100", "now",
                  "2026-01-05T10:00:00.1234567Z"):
        assert refused({"since": since, "interval": "7d"}) == "invalid_time", since
    assert refused({"since": "2026-13-05T10:00:00Z"}) == "invalid_value"
    assert refused({"since": "2026-01-05T10:00:00Z", "until": "2026-01-05T10:00:00Z"}) == "invalid_range"
    assert refused({"limit": "0"}) == "invalid_parameter"
    assert refused({"limit": "1001"}) == "invalid_parameter"
    r = requests.get(f"{api}/candles", params={"instrument": "NOPE-USD"})
    assert r.status_code == 400 and error_of(r) == "unknown_instrument"
    r = requests.get(f"{api}/candles")
    assert r.status_code == 400 and error_of(r) == "missing_parameter"


def test_the_orderbook_at_a_past_sequence_is_the_book_as_it_was_then(api, pg):
    """GET /orderbook?seq= answers exchange.orderbook_at (0.11): after more trading, each book seen before comes
    back exactly, read from the journal; seq 0 is the empty book; a seq the journal does not have is 400."""
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument('HIST-USD', 0.01, 0.001)")
    rng = random.Random(7)
    seen = []
    for _ in range(40):
        body = order(fresh_client(), instrument="HIST-USD", side=rng.choice(["buy", "sell"]),
                     price=f"{rng.randint(9990, 10010) / 100:.2f}", quantity=str(rng.randint(1, 5)))
        assert post_order(body).status_code == 201
        book = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "levels": 1000}).json()
        seen.append(book)
    assert seen[-1]["bids"] or seen[-1]["asks"]
    for book in seen:
        r = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "levels": 1000, "seq": book["seq"]})
        assert r.status_code == 200 and r.json() == book, (book["seq"], r.text)
    top = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "levels": 1, "seq": seen[20]["seq"]})
    assert top.json() == {**seen[20], "bids": seen[20]["bids"][:1], "asks": seen[20]["asks"][:1]}
    empty = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "seq": 0}).json()
    assert empty == {"instrument": "HIST-USD", "seq": 0, "bids": [], "asks": []}
    r = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "seq": seen[-1]["seq"] + 1})
    assert r.status_code == 400 and error_of(r) == "invalid_seq", r.text
    for bad in ("-1", "x", "1.5", "99999999999999999999"):
        r = requests.get(f"{api}/orderbook", params={"instrument": "HIST-USD", "seq": bad})
        assert r.status_code == 400 and error_of(r) == "invalid_parameter", (bad, r.text)


def test_orders_and_trades_page_with_before(api, pg):
    """GET /orders and GET /trades take `before` (the last order or trade seen, 0.11) and answer the older ones:
    paging through all of them gives what the tables hold, in order, each once."""
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument('PAGE-USD', 0.01, 0.001)")
    client = fresh_client()
    for i in range(23):  # the client trades with itself (stp none): open, filled and partially filled orders
        r = post_order(order(client, instrument="PAGE-USD", side="buy" if i % 3 else "sell",
                             price=f"{100 + i % 4}.00", quantity=str(1 + i % 3), stp="none"))
        assert r.status_code == 201, r.text

    def walk(path, params, key, page):
        seen, before = [], None
        while True:
            r = requests.get(f"{api}{path}", params={**params, "limit": page, **({"before": before} if before else {})})
            assert r.status_code == 200, r.text
            rows = r.json()[key]
            seen += rows
            if len(rows) < page:
                return seen
            before = rows[-1]["order_id" if key == "orders" else "trade_id"]

    for status in (None, "open", "filled", "partially_filled"):
        params = {"client_id": client, **({"status": status} if status else {})}
        got = [o["order_id"] for o in walk("/orders", params, "orders", 4)]
        where = "status IN ('open', 'partially_filled')" if status is None else "status = %s"
        with pg.connect() as conn:
            want = [str(row[0]) for row in conn.execute(
                f"SELECT order_id FROM exchange.orders WHERE client_id = %s AND {where} ORDER BY order_no DESC",
                (client,) if status is None else (client, status))]
        assert got == want and len(set(got)) == len(got), status
    trades = [t["trade_id"] for t in walk("/trades", {"instrument": "PAGE-USD"}, "trades", 5)]
    with pg.connect() as conn:
        want = [str(row[0]) for row in conn.execute(
            "SELECT trade_id FROM exchange.trades WHERE instrument = 'PAGE-USD' "
            "ORDER BY executed_at DESC, seq DESC, trade_no DESC")]
    assert trades == want and len(trades) >= 5

    r = requests.get(f"{api}/orders", params={"client_id": client, "before": "nope"})
    assert r.status_code == 400 and error_of(r) == "invalid_parameter"
    r = requests.get(f"{api}/orders", params={"client_id": client, "before": str(uuid.uuid4())})
    assert r.status_code == 404 and error_of(r) == "order_not_found"
    r = requests.get(f"{api}/orders", params={"client_id": fresh_client(), "before": want_first_order(pg, client)})
    assert r.status_code == 404 and error_of(r) == "order_not_found"  # another client's order is no cursor
    r = requests.get(f"{api}/trades", params={"instrument": "PAGE-USD", "before": "1"})
    assert r.status_code == 400 and error_of(r) == "invalid_parameter"
    r = requests.get(f"{api}/trades", params={"instrument": "BTC-USD", "before": trades[0]})
    assert r.status_code == 404 and error_of(r) == "trade_not_found"


def want_first_order(pg, client):
    return str(pg.scalar("SELECT order_id FROM exchange.orders WHERE client_id = %s LIMIT 1", (client,)))


def test_engine_reject_is_a_201_order_and_validation_reject_is_400(api):
    client = fresh_client()
    assert post_order(order(client, side="sell", price="99.00")).status_code == 201
    r = post_order(order(client, side="buy", price="99.00", post_only=True))
    assert r.status_code == 201
    assert r.json()["status"] == "rejected" and r.json()["reject_reason"] == "post_only_would_take"
    r = post_order(order(client, price="1.001"))
    assert r.status_code == 400 and error_of(r) == "invalid_price"
    # The message is the one exchange.place_order raises, though the order went through a place_orders batch.
    assert r.json()["error"]["message"] == "invalid_price: price 1.001 is not a multiple of 0.01"
    r = post_order(order(client, instrument="NOPE-USD"))
    assert r.status_code == 400 and error_of(r) == "unknown_instrument"
    assert r.json()["error"]["message"] == "unknown_instrument: instrument 'NOPE-USD' does not exist"


@pytest.mark.parametrize("body, code", [
    ('{"client_id": "x",', "malformed_json"),
    ('[1, 2]', "malformed_json"),
    # Text PostgreSQL cannot store would fail the whole group-commit batch: refused up front.
    ('{"client_id": "x\\u0000y", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1"}',
     "malformed_json"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1", '
     '"idempotency_key": "\\udc00"}', "malformed_json"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit"}', "missing_field"),
    ('{"client_id": 7, "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1"}',
     "invalid_field"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": true}',
     "invalid_field"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1", '
     '"post_only": "yes"}', "invalid_field"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "abc"}',
     "invalid_quantity"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1", '
     '"price": "NaN"}', "invalid_price"),
    ('{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1", "colour": 1}',
     "unknown_field"),
    ('{"client_id": "x", "client_id": "y", "instrument": "BTC-USD", "side": "buy", "type": "limit", '
     '"quantity": "1"}', "duplicate_field"),
    # the empty key twice (http_fuzz found it reported as unknown_field)
    ('{"": 1, "": 2, "client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", '
     '"quantity": "1"}', "duplicate_field"),
])
def test_bad_order_bodies_are_400(api, body, code):
    r = requests.post(f"{api}/orders", data=body, headers=JSON)
    assert r.status_code == 400, r.text
    assert error_of(r) == code


# The iceberg tests trade ETH-USD (lot 0.001): the test cluster's exchange.max_instruments books are all taken
# by this module's instruments (STOP-USD, the stop order tests', is the last). Its bids at 80.00 to 90.00 are
# theirs alone.
ICE = "ETH-USD"


def test_an_iceberg_shows_only_its_tip_and_refills_it(api, pg):
    """display_quantity (extension 0.12), as a JSON string or number: the order answers it as an exact decimal
    (the lot's scale), the book shows only the tip, and a taker that takes the tip exactly leaves the rest with
    a new tip shown."""
    buyer, seller = fresh_client("ice"), fresh_client("ice")

    def my_bids():
        book = requests.get(f"{api}/orderbook", params={"instrument": ICE, "levels": 1000}).json()
        return [level for level in book["bids"] if Decimal("80.00") <= Decimal(level["price"]) <= Decimal("90.00")]

    r = post_order(order(buyer, instrument=ICE, price="90.00", quantity="10", display_quantity="2.5"))
    assert r.status_code == 201, r.text
    iceberg = r.json()
    assert (iceberg["status"], iceberg["quantity"], iceberg["remaining_quantity"], iceberg["display_quantity"]) == \
        ("open", "10", "10.000", "2.500")
    # A JSON number that binary floating point cannot hold (0.3) stays exact.
    body = json.dumps(order(buyer, instrument=ICE, price="89.00", quantity="3"))[:-1] + ', "display_quantity": 0.3}'
    r = requests.post(f"{api}/orders", data=body, headers=JSON)
    assert r.status_code == 201, r.text
    small = r.json()
    assert (small["status"], small["quantity"], small["display_quantity"]) == ("open", "3", "0.300")

    assert my_bids() == [{"price": "90.00", "quantity": "2.500", "order_count": 1},
                         {"price": "89.00", "quantity": "0.300", "order_count": 1}]
    got = requests.get(f"{api}/orders/{iceberg['order_id']}").json()
    assert (got["remaining_quantity"], got["display_quantity"]) == ("10.000", "2.500")
    listed = requests.get(f"{api}/orders", params={"client_id": buyer}).json()["orders"]
    assert [(o["order_id"], o["display_quantity"]) for o in listed] == \
        [(small["order_id"], "0.300"), (iceberg["order_id"], "2.500")]

    # A taker that takes the tip exactly: the iceberg keeps 7.5, of which a new tip of 2.5 is shown.
    r = post_order(order(seller, instrument=ICE, side="sell", price="90.00", quantity="2.5"))
    assert r.status_code == 201, r.text
    taker = r.json()
    assert taker["status"] == "filled" and taker["display_quantity"] is None
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for t in taker["trades"]] == \
        [("90.00", "2.500", iceberg["order_id"])]
    got = requests.get(f"{api}/orders/{iceberg['order_id']}").json()
    assert (got["status"], got["filled_quantity"], got["remaining_quantity"], got["display_quantity"]) == \
        ("partially_filled", "2.500", "7.500", "2.500")
    assert [t["quantity"] for t in got["trades"]] == ["2.500"]
    assert my_bids() == [{"price": "90.00", "quantity": "2.500", "order_count": 1},
                         {"price": "89.00", "quantity": "0.300", "order_count": 1}]

    # A cancel answers the order as it is, display_quantity and all; its tip leaves the book.
    r = requests.delete(f"{api}/orders/{iceberg['order_id']}", params={"client_id": buyer})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["filled_quantity"], r.json()["display_quantity"]) == \
        ("cancelled", "2.500", "2.500")
    assert my_bids() == [{"price": "89.00", "quantity": "0.300", "order_count": 1}]
    assert requests.delete(f"{api}/orders/{small['order_id']}").status_code == 200
    assert my_bids() == []
    with pg.connect() as conn:
        assert conn.execute("SELECT problem FROM exchange.verify(%s)", (ICE,)).fetchall() == []


@pytest.mark.parametrize("extra, code", [
    ({"quantity": "1", "display_quantity": "2"}, "invalid_display"),  # more than the quantity
    ({"display_quantity": "0.0005"}, "invalid_display"),  # not a multiple of the lot 0.001
    ({"display_quantity": "0"}, "invalid_display"),
    ({"display_quantity": "-1"}, "invalid_display"),
    ({"quantity": "10", "display_quantity": "0.099"}, "invalid_display"),  # more than 100 times the display
    ({"type": "market", "price": None, "display_quantity": "1"}, "invalid_combination"),
    ({"time_in_force": "ioc", "display_quantity": "1"}, "invalid_combination"),
    ({"time_in_force": "fok", "display_quantity": "1"}, "invalid_combination"),
    ({"display_quantity": "abc"}, "invalid_display"),  # refused by the frontend itself, like a price "abc"
    ({"display_quantity": "NaN"}, "invalid_display"),
    ({"display_quantity": True}, "invalid_field"),
    ({"display_quantity": {"value": "1"}}, "invalid_field"),
    ({"display_quantity": ["1"]}, "invalid_field"),
])
def test_bad_display_quantities_are_400_and_place_nothing(api, pg, extra, code):
    client = fresh_client("icebad")
    body = {k: v for k, v in {**order(client, instrument=ICE, price="85.00", quantity="5"), **extra}.items()
            if v is not None}
    r = post_order(body)
    assert r.status_code == 400 and error_of(r) == code, r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 0


def test_display_quantity_errors_say_what_is_wrong(api, pg):
    """The messages are the ones exchange.place_order raises; a JSON number is never rounded through a binary
    double (0.30000000000000001 is not a multiple of the lot, though its nearest double is 0.3's)."""
    client = fresh_client("icemsg")
    r = post_order(order(client, instrument=ICE, price="85.00", quantity="1", display_quantity="2"))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "invalid_display",
                                 "message": "invalid_display: display_quantity 2 exceeds the quantity 1"}
    r = post_order({**order(client, instrument=ICE, type="market", quantity="1", display_quantity="1"), "price": None})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "invalid_combination",
                                 "message": "invalid_combination: display_quantity needs a gtc limit order"}
    body = json.dumps(order(client, instrument=ICE, price="85.00", quantity="3"))[:-1] + \
        ', "display_quantity": 0.30000000000000001}'
    r = requests.post(f"{api}/orders", data=body, headers=JSON)
    assert r.status_code == 400 and error_of(r) == "invalid_display", r.text
    assert "0.30000000000000001" in r.json()["error"]["message"], r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 0


def test_a_plain_order_has_a_null_display_quantity_and_stop_price_in_every_answer(api):
    client = fresh_client()
    # null is no display_quantity, no stop_price
    r = post_order(order(client, price="30.00", display_quantity=None, stop_price=None))
    assert r.status_code == 201, r.text
    placed = r.json()
    nulls = {"display_quantity": None, "stop_price": None}

    def optional_fields(o):
        return {k: o[k] for k in nulls if k in o}
    assert optional_fields(placed) == nulls
    order_id = placed["order_id"]
    got = requests.get(f"{api}/orders/{order_id}").json()
    assert optional_fields(got) == nulls
    listed = requests.get(f"{api}/orders", params={"client_id": client}).json()["orders"]
    assert [(o["order_id"], optional_fields(o)) for o in listed] == [(order_id, nulls)]
    r = requests.patch(f"{api}/orders/{order_id}", json={"quantity": "2"})
    assert r.status_code == 200 and optional_fields(r.json()) == nulls
    r = requests.delete(f"{api}/orders/{order_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert optional_fields(r.json()) == nulls


# The stop order tests trade STOP-USD (tick 0.01, lot 0.001), theirs alone (rest_fixtures makes room for it):
# whether a stop order waits, triggers or is rejected depends on the instrument's last trade price, which each
# test sets first (last_trade_at) on a book that stop_book emptied.
STOP = "STOP-USD"


@pytest.fixture
def stop_book(api, pg):
    """STOP-USD with nothing resting or pending (what an earlier test left is cancelled); verify is clean after."""
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument(%s, 0.01, 0.001) "
                     "WHERE NOT EXISTS (SELECT FROM exchange.instruments WHERE symbol = %s)", (STOP, STOP))
        conn.execute("SELECT exchange.cancel_order(order_id) FROM exchange.orders "
                     "WHERE instrument = %s AND status IN ('open', 'partially_filled', 'pending')", (STOP,))
    yield STOP
    with pg.connect() as conn:
        assert conn.execute("SELECT problem FROM exchange.verify(%s)", (STOP,)).fetchall() == []


def last_trade_at(price):
    """A trade of two fresh clients at `price` on STOP-USD (whose book holds no better ask): the last price."""
    seller, buyer = fresh_client("stopx"), fresh_client("stopx")
    assert post_order(order(seller, instrument=STOP, side="sell", price=price)).status_code == 201
    r = post_order(order(buyer, instrument=STOP, price=price))
    assert r.status_code == 201 and [t["price"] for t in r.json()["trades"]] == [price], r.text


def stop_order(client, side="buy", price=None, quantity="1", **extra):
    """A stop order's body: a stop-limit with a price, else a stop-market."""
    body = order(client, instrument=STOP, side=side, price=price, quantity=quantity, **extra)
    if price is None:
        body.update(type="market")
        del body["price"]
    return body


def stop_levels():
    book = requests.get(f"{BASE}/orderbook", params={"instrument": STOP, "levels": 1000}).json()
    return book["bids"], book["asks"]


def test_stop_orders_wait_pending_and_answer_their_stop_price(api, pg, stop_book):
    """stop_price (extension 0.13), as a JSON string or number: a stop-limit and a stop-market order are placed
    pending, outside the book, and every answer has the stop price as an exact decimal (the tick's scale); they
    are listed among the client's open orders and with status pending, and can be amended and cancelled."""
    last_trade_at("100.00")
    client = fresh_client("stop")
    r = post_order(stop_order(client, price="105.00", quantity="2", stop_price="104.50"))
    assert r.status_code == 201, r.text
    limit = r.json()
    assert (limit["status"], limit["type"], limit["price"], limit["stop_price"], limit["filled_quantity"],
            limit["remaining_quantity"], limit["trades"], limit["display_quantity"]) == \
        ("pending", "limit", "105.00", "104.50", "0.000", "2.000", [], None), r.text
    assert isinstance(limit["seq"], int)
    # A stop-market order whose stop price is a JSON number that binary floating point cannot hold (95.1).
    body = json.dumps(stop_order(client, side="sell", quantity="1.5"))[:-1] + ', "stop_price": 95.1}'
    r = requests.post(f"{api}/orders", data=body, headers=JSON)
    assert r.status_code == 201, r.text
    market = r.json()
    assert (market["status"], market["type"], market["side"], market["price"], market["stop_price"],
            market["remaining_quantity"]) == ("pending", "market", "sell", None, "95.10", "1.500"), r.text
    assert stop_levels() == ([], [])  # pending stops are in no level

    got = requests.get(f"{api}/orders/{limit['order_id']}").json()
    assert (got["status"], got["price"], got["stop_price"], got["seq"]) == ("pending", "105.00", "104.50", None)
    got = requests.get(f"{api}/orders/{market['order_id']}").json()
    assert (got["status"], got["price"], got["stop_price"]) == ("pending", None, "95.10")

    def listed(**params):
        r = requests.get(f"{api}/orders", params={"client_id": client, **params})
        assert r.status_code == 200, r.text
        return [(o["order_id"], o["status"], o["stop_price"]) for o in r.json()["orders"]]
    both = [(market["order_id"], "pending", "95.10"), (limit["order_id"], "pending", "104.50")]
    assert listed() == both
    assert listed(status="pending") == both
    assert listed(status="open") == []

    # An amend changes the quantity (and a stop-limit's price); the order stays pending, its stop price stays.
    r = requests.patch(f"{api}/orders/{limit['order_id']}", json={"quantity": "3"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["remaining_quantity"], r.json()["price"], r.json()["stop_price"]) == \
        ("pending", "3.000", "105.00", "104.50")
    r = requests.patch(f"{api}/orders/{limit['order_id']}", json={"price": "106.00"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["price"], r.json()["stop_price"]) == ("pending", "106.00", "104.50")
    r = requests.patch(f"{api}/orders/{market['order_id']}", json={"quantity": "1"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["remaining_quantity"], r.json()["stop_price"]) == \
        ("pending", "1.000", "95.10")
    r = requests.patch(f"{api}/orders/{market['order_id']}", json={"price": "96.00"})
    assert r.status_code == 400 and error_of(r) == "invalid_price", r.text  # a stop-market order has no price
    assert stop_levels() == ([], [])

    r = requests.delete(f"{api}/orders/{limit['order_id']}")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"], r.json()["stop_price"]) == ("cancelled", "user", "104.50")
    r = requests.post(f"{api}/orders/{market['order_id']}/cancel", json={"client_id": client})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["stop_price"]) == ("cancelled", "95.10")
    r = requests.delete(f"{api}/orders/{market['order_id']}")
    assert r.status_code == 409 and error_of(r) == "order_not_open", r.text
    assert listed(status="pending") == []
    assert listed(status="cancelled") == [(market["order_id"], "cancelled", "95.10"),
                                          (limit["order_id"], "cancelled", "104.50")]
    assert stop_levels() == ([], [])


def test_a_trade_at_the_stop_price_triggers_the_stop_order(api, pg, stop_book):
    """A buy stop-market order triggers when a trade prints at its stop price: it trades as a market order, in
    the journal entry after the trigger's ('order_triggered'). The triggering order's answer has only its own
    trade; the stop order's GET has its fills; a sell stop below the price stays pending."""
    last_trade_at("100.00")
    maker, stopper, taker = fresh_client("stopm"), fresh_client("stops"), fresh_client("stopt")
    ask = post_order(order(maker, instrument=STOP, side="sell", price="101.00", quantity="3")).json()
    assert ask["status"] == "open"
    assert post_order(order(maker, instrument=STOP, side="sell", price="102.00", quantity="2")).json()["status"] == "open"
    r = post_order(stop_order(stopper, quantity="2", stop_price="101.00"))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    stop = r.json()
    r = post_order(stop_order(stopper, side="sell", price="90.00", stop_price="95.00"))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    sell_stop = r.json()

    r = post_order(order(taker, instrument=STOP, price="101.00", quantity="1"))
    assert r.status_code == 201, r.text
    trigger = r.json()
    assert trigger["status"] == "filled" and trigger["stop_price"] is None
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for t in trigger["trades"]] == \
        [("101.00", "1.000", ask["order_id"])]

    got = requests.get(f"{api}/orders/{stop['order_id']}").json()
    assert (got["status"], got["type"], got["price"], got["stop_price"], got["filled_quantity"],
            got["remaining_quantity"], got["cancel_reason"]) == \
        ("filled", "market", None, "101.00", "2.000", "0.000", None), got
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for t in got["trades"]] == \
        [("101.00", "2.000", ask["order_id"])]
    assert requests.get(f"{api}/orders/{ask['order_id']}").json()["status"] == "filled"
    got = requests.get(f"{api}/orders/{sell_stop['order_id']}").json()
    assert (got["status"], got["stop_price"], got["trades"]) == ("pending", "95.00", [])
    assert stop_levels() == ([], [{"price": "102.00", "quantity": "2.000", "order_count": 1}])

    listed = requests.get(f"{api}/orders", params={"client_id": stopper}).json()["orders"]
    assert [(o["order_id"], o["status"]) for o in listed] == [(sell_stop["order_id"], "pending")]
    listed = requests.get(f"{api}/orders", params={"client_id": stopper, "status": "filled"}).json()["orders"]
    assert [(o["order_id"], o["stop_price"]) for o in listed] == [(stop["order_id"], "101.00")]
    with pg.connect() as conn:
        entries = conn.execute(
            "SELECT e.seq, e.kind, e.order_id::text FROM exchange.events e JOIN exchange.instruments i "
            "USING (instrument_id) WHERE i.symbol = %s AND e.seq >= %s ORDER BY e.seq", (STOP, trigger["seq"]))
        assert entries.fetchall() == [(trigger["seq"], "order_placed", trigger["order_id"]),
                                      (trigger["seq"] + 1, "order_triggered", stop["order_id"])]
    trades = requests.get(f"{api}/trades", params={"instrument": STOP, "limit": 2}).json()["trades"]
    assert [(t["buy_order_id"], t["sell_order_id"], t["price"], t["quantity"], t["maker_side"], t["seq"])
            for t in trades] == [
        (stop["order_id"], ask["order_id"], "101.00", "2.000", "sell", trigger["seq"] + 1),
        (trigger["order_id"], ask["order_id"], "101.00", "1.000", "sell", trigger["seq"])]


def test_a_stop_order_the_last_trade_already_reached_is_a_rejected_order(api, pg, stop_book):
    """Its stop is at or through the last trade price (buy: at or below it; sell: at or above): a recorded order,
    201 with status rejected and reject_reason stop_would_trigger, as the engine's other rejects."""
    last_trade_at("100.00")
    client = fresh_client("stoprej")
    for side, stop in (("buy", "99.00"), ("buy", "100.00"), ("sell", "100.00"), ("sell", "100.01")):
        r = post_order(stop_order(client, side=side, price="100.00", stop_price=stop))
        assert r.status_code == 201, r.text
        rejected = r.json()
        assert (rejected["status"], rejected["reject_reason"], rejected["stop_price"], rejected["trades"]) == \
            ("rejected", "stop_would_trigger", stop, []), (side, stop, r.text)
        got = requests.get(f"{api}/orders/{rejected['order_id']}").json()
        assert (got["status"], got["reject_reason"], got["stop_price"]) == ("rejected", "stop_would_trigger", stop)
    for side, stop in (("buy", "100.01"), ("sell", "99.99")):
        r = post_order(stop_order(client, side=side, stop_price=stop))
        assert r.status_code == 201 and r.json()["status"] == "pending", (side, stop, r.text)
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s AND status = 'rejected'",
                     (client,)) == 4
    assert stop_levels() == ([], [])


@pytest.mark.parametrize("extra, code", [
    ({"stop_price": "0"}, "invalid_stop_price"),
    ({"stop_price": "-1"}, "invalid_stop_price"),
    ({"stop_price": "1.001"}, "invalid_stop_price"),  # not a multiple of the tick 0.01
    ({"stop_price": 0}, "invalid_stop_price"),
    ({"stop_price": "abc"}, "invalid_stop_price"),  # refused by the frontend itself, like a price "abc"
    ({"stop_price": "NaN"}, "invalid_stop_price"),
    ({"stop_price": True}, "invalid_field"),
    ({"stop_price": {"value": "1"}}, "invalid_field"),
    ({"stop_price": ["1"]}, "invalid_field"),
    ({"stop_price": "101.00", "post_only": True}, "invalid_combination"),
    ({"stop_price": "101.00", "post_only": True, "display_quantity": "0.5"}, "invalid_combination"),
    # A display_quantity needs a GTC limit order, as without a stop (a stop-limit GTC iceberg is placed:
    # test_a_stop_limit_iceberg_waits_then_rests_showing_only_its_tip).
    ({"stop_price": "101.00", "type": "market", "price": None, "display_quantity": "0.5"}, "invalid_combination"),
    ({"stop_price": "101.00", "time_in_force": "ioc", "display_quantity": "0.5"}, "invalid_combination"),
    ({"stop_price": "101.00", "time_in_force": "fok", "display_quantity": "0.5"}, "invalid_combination"),
    ({"stop_price": "101.00", "display_quantity": "3"}, "invalid_display"),  # more than the quantity 2
])
def test_bad_stop_prices_are_400_and_place_nothing(api, pg, stop_book, extra, code):
    client = fresh_client("stopbad")
    r = post_order({**stop_order(client, price="100.00", quantity="2"), **extra})
    assert r.status_code == 400 and error_of(r) == code, r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 0


def test_stop_price_errors_say_what_is_wrong(api, pg, stop_book):
    """The messages are the ones exchange.place_order raises; a JSON number is never rounded through a binary
    double (100.000000000000001 is not a multiple of the tick, though its nearest double is 100's)."""
    client = fresh_client("stopmsg")
    r = post_order(stop_order(client, price="100.00", stop_price="1.001"))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "invalid_stop_price",
                                 "message": "invalid_stop_price: stop_price 1.001 is not a multiple of 0.01"}
    r = post_order(stop_order(client, stop_price="-1"))
    assert r.json()["error"] == {"code": "invalid_stop_price",
                                 "message": "invalid_stop_price: stop_price -1 must be positive"}, r.text
    r = post_order(stop_order(client, price="100.00", stop_price="101.00", post_only=True))
    assert r.json()["error"] == {"code": "invalid_combination",
                                 "message": "invalid_combination: a stop order cannot be post_only"}, r.text
    r = post_order(stop_order(client, stop_price="101.00", display_quantity="0.5"))  # a stop-market order
    assert r.json()["error"] == {"code": "invalid_combination",
                                 "message": "invalid_combination: display_quantity needs a gtc limit order"}, r.text
    body = json.dumps(stop_order(client, price="100.00"))[:-1] + ', "stop_price": 100.000000000000001}'
    r = requests.post(f"{api}/orders", data=body, headers=JSON)
    assert r.status_code == 400 and error_of(r) == "invalid_stop_price", r.text
    assert "100.000000000000001" in r.json()["error"]["message"], r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 0


def test_a_stop_limit_iceberg_waits_then_rests_showing_only_its_tip(api, pg, stop_book):
    """stop_price with display_quantity on a limit GTC order (a stop-limit iceberg): 201 pending with both as
    exact decimals, in no level, its row showing nothing. A trade at its stop triggers it: it buys its whole
    quantity's worth as a taker (more than its display), GET has it resting with the rest, the book shows only
    its tip (min(display, remaining)) and, once a fill takes the tip, the next one. An amend to more than 100
    times its display while it waits is 400 invalid_display, saying so."""
    last_trade_at("100.00")
    maker, stopper, taker = fresh_client("sicem"), fresh_client("sices"), fresh_client("sicet")
    low = post_order(order(maker, instrument=STOP, side="sell", price="101.00", quantity="1")).json()
    high = post_order(order(maker, instrument=STOP, side="sell", price="102.00", quantity="2")).json()
    assert (low["status"], high["status"]) == ("open", "open")
    r = post_order(stop_order(stopper, price="102.00", quantity="5", stop_price="101.00", display_quantity="1.5"))
    assert r.status_code == 201, r.text
    ice = r.json()
    assert (ice["status"], ice["type"], ice["price"], ice["quantity"], ice["remaining_quantity"],
            ice["stop_price"], ice["display_quantity"], ice["trades"]) == \
        ("pending", "limit", "102.00", "5", "5.000", "101.00", "1.500", []), r.text
    got = requests.get(f"{api}/orders/{ice['order_id']}").json()
    assert (got["status"], got["stop_price"], got["display_quantity"], got["remaining_quantity"]) == \
        ("pending", "101.00", "1.500", "5.000"), got
    assert stop_levels() == ([], [{"price": "101.00", "quantity": "1.000", "order_count": 1},
                                  {"price": "102.00", "quantity": "2.000", "order_count": 1}])
    with pg.connect() as conn:
        assert conn.execute("SELECT status, remaining_lots, display_lots, visible_lots FROM exchange.orders "
                            "WHERE order_id = %s", (ice["order_id"],)).fetchone() == ("pending", 5000, 1500, 0)
    r = requests.patch(f"{api}/orders/{ice['order_id']}", json={"quantity": "151"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {
        "code": "invalid_display",
        "message": f"amend of order {ice['order_id']} rejected: the remaining quantity 151.000 "
                   f"would be more than 100 times its display_quantity 1.500"}, r.text

    # 0.5 at 101.00 triggers it: it buys the other 0.5 at 101.00 and 2 at 102.00, and rests 2.5 showing 1.5.
    r = post_order(order(taker, instrument=STOP, price="101.00", quantity="0.5"))
    assert r.status_code == 201 and [t["price"] for t in r.json()["trades"]] == ["101.00"], r.text
    trigger = r.json()
    got = requests.get(f"{api}/orders/{ice['order_id']}").json()
    assert (got["status"], got["price"], got["stop_price"], got["display_quantity"], got["filled_quantity"],
            got["remaining_quantity"]) == ("partially_filled", "102.00", "101.00", "1.500", "2.500", "2.500"), got
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for t in got["trades"]] == \
        [("101.00", "0.500", low["order_id"]), ("102.00", "2.000", high["order_id"])]
    assert stop_levels() == ([{"price": "102.00", "quantity": "1.500", "order_count": 1}], [])
    listed = requests.get(f"{api}/orders", params={"client_id": stopper}).json()["orders"]
    assert [(o["order_id"], o["status"], o["display_quantity"]) for o in listed] == \
        [(ice["order_id"], "partially_filled", "1.500")]
    with pg.connect() as conn:
        assert conn.execute("SELECT remaining_lots, visible_lots FROM exchange.orders WHERE order_id = %s",
                            (ice["order_id"],)).fetchone() == (2500, 1500)
        assert conn.execute("SELECT seq, payload->>'display_quantity' FROM exchange.events "
                            "WHERE kind = 'order_triggered' AND order_id = %s", (ice["order_id"],)).fetchall() == \
            [(trigger["seq"] + 1, "1.500")]

    # A fill of the whole tip: the next one is the 1.0 left.
    r = post_order(order(taker, instrument=STOP, side="sell", price="102.00", quantity="1.5"))
    assert r.status_code == 201 and [(t["quantity"], t["maker_order_id"]) for t in r.json()["trades"]] == \
        [("1.500", ice["order_id"])], r.text
    got = requests.get(f"{api}/orders/{ice['order_id']}").json()
    assert (got["status"], got["filled_quantity"], got["remaining_quantity"]) == \
        ("partially_filled", "4.000", "1.000"), got
    assert stop_levels() == ([{"price": "102.00", "quantity": "1.000", "order_count": 1}], [])


def test_stop_orders_and_plain_orders_share_place_orders_batches(api, pg, stop_book):
    """Stop orders sent at once with plain orders go through the group-commit batches (stop_price in the
    place_orders items): each gets its own answer, no batch fails, and the table has each stop price."""
    last_trade_at("100.00")
    log = (PG_DIR / "frontend.log").read_text()
    before = metrics_text()
    calls = [stop_order(fresh_client("stopgc"), price="120.00", stop_price=f"{110 + i}.00") if i % 2 else
             order(fresh_client("stopgc"), instrument=STOP, price=f"{90 + i}.00") for i in range(16)]
    gate = threading.Barrier(len(calls))

    def send(call):
        gate.wait()
        return post_order(call)
    with ThreadPoolExecutor(len(calls)) as pool:
        replies = list(pool.map(send, calls))
    for call, r in zip(calls, replies):
        assert r.status_code == 201, r.text
        want = ("pending", call["stop_price"]) if "stop_price" in call else ("open", None)
        assert (r.json()["status"], r.json()["stop_price"]) == want, r.text
        assert pg.scalar("SELECT stop_price::text FROM exchange.orders WHERE order_id = %s",
                         (r.json()["order_id"],)) == want[1]
    after = metrics_text()
    batches = metric(after, "group_commit_batch_size_count") - metric(before, "group_commit_batch_size_count")
    assert batches < len(calls), "no place_orders call carried more than one order"
    assert "placing them one by one" not in (PG_DIR / "frontend.log").read_text()[len(log):]


def amended_events(pg, order_id):
    """The stop_price of each order_amended journal entry of the order, oldest first (None: the payload has none)."""
    with pg.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT payload->>'stop_price' FROM exchange.events WHERE kind = 'order_amended' AND order_id = %s "
            "ORDER BY seq", (order_id,))]


def test_an_amend_moves_a_pending_stop_orders_stop_price(api, pg, stop_book):
    """PATCH stop_price (extension 0.14), alone, as a JSON number that binary floating point cannot hold: 200 with
    the order still pending at the new stop price (a decimal string at the tick's scale), which GET, the list and
    the table show too. A trade at the old stop price then leaves it pending; a trade at the new one triggers it."""
    last_trade_at("100.00")
    maker, stopper, taker = fresh_client("samk"), fresh_client("sams"), fresh_client("samt")
    low = post_order(order(maker, instrument=STOP, side="sell", price="102.00", quantity="1")).json()
    high = post_order(order(maker, instrument=STOP, side="sell", price="104.10", quantity="3")).json()
    assert (low["status"], high["status"]) == ("open", "open")
    r = post_order(stop_order(stopper, quantity="2", stop_price="102.00"))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    stop = r.json()

    r = requests.patch(f"{api}/orders/{stop['order_id']}", data='{"stop_price": 104.1}', headers=JSON)
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["order_id"], moved["status"], moved["type"], moved["price"], moved["stop_price"],
            moved["quantity"], moved["remaining_quantity"], moved["filled_quantity"], moved["trades"]) == \
        (stop["order_id"], "pending", "market", None, "104.10", "2.000", "2.000", "0.000", []), r.text
    assert isinstance(moved["seq"], int) and moved["seq"] > stop["seq"]
    got = requests.get(f"{api}/orders/{stop['order_id']}").json()
    assert (got["status"], got["stop_price"], got["seq"]) == ("pending", "104.10", None), got
    listed = requests.get(f"{api}/orders", params={"client_id": stopper, "status": "pending"}).json()["orders"]
    assert [(o["order_id"], o["stop_price"]) for o in listed] == [(stop["order_id"], "104.10")]
    assert pg.scalar("SELECT stop_price::text FROM exchange.orders WHERE order_id = %s", (stop["order_id"],)) == \
        "104.10"
    assert amended_events(pg, stop["order_id"]) == ["104.10"]
    assert stop_levels() == ([], [{"price": "102.00", "quantity": "1.000", "order_count": 1},
                                  {"price": "104.10", "quantity": "3.000", "order_count": 1}])

    # A trade at the old stop price: it would have triggered the order before the amend.
    r = post_order(order(taker, instrument=STOP, price="102.00", quantity="1"))
    assert r.status_code == 201 and [t["price"] for t in r.json()["trades"]] == ["102.00"], r.text
    got = requests.get(f"{api}/orders/{stop['order_id']}").json()
    assert (got["status"], got["stop_price"], got["trades"]) == ("pending", "104.10", []), got

    # A trade at the new one triggers it: it buys 2 of the 104.10 ask's other 2.
    r = post_order(order(taker, instrument=STOP, price="104.10", quantity="1"))
    assert r.status_code == 201 and [t["price"] for t in r.json()["trades"]] == ["104.10"], r.text
    trigger = r.json()
    got = requests.get(f"{api}/orders/{stop['order_id']}").json()
    assert (got["status"], got["stop_price"], got["filled_quantity"], got["remaining_quantity"]) == \
        ("filled", "104.10", "2.000", "0.000"), got
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for t in got["trades"]] == \
        [("104.10", "2.000", high["order_id"])]
    with pg.connect() as conn:
        assert conn.execute("SELECT kind FROM exchange.events WHERE order_id = %s AND seq > %s",
                            (stop["order_id"], trigger["seq"])).fetchall() == [("order_triggered",)]
    assert stop_levels() == ([], [])
    r = requests.patch(f"{api}/orders/{stop['order_id']}", json={"stop_price": "105.00"})
    assert r.status_code == 409 and error_of(r) == "order_not_open", r.text  # filled: nothing to amend


def test_an_amend_changes_a_stop_orders_quantity_price_and_stop_price_together(api, pg, stop_book):
    """stop_price with quantity and/or price in one PATCH changes them all at once (a sell stop-limit moved down
    and up); the same stop price with nothing else is 400 no_change, with a new quantity only the quantity
    changes. Each amend's journal entry carries the order's stop price."""
    last_trade_at("100.00")
    client = fresh_client("samq")
    r = post_order(stop_order(client, side="sell", price="97.00", quantity="2", stop_price="98.00"))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    order_id = r.json()["order_id"]

    def amend(body):
        r = requests.patch(f"{api}/orders/{order_id}", json=body)
        assert r.status_code == 200, (body, r.text)
        o = r.json()
        return o["status"], o["side"], o["price"], o["stop_price"], o["quantity"], o["remaining_quantity"]
    assert amend({"quantity": "3", "stop_price": "96.50"}) == ("pending", "sell", "97.00", "96.50", "3.000", "3.000")
    assert amend({"quantity": 1.5, "price": "95.00", "stop_price": 99.99}) == \
        ("pending", "sell", "95.00", "99.99", "1.500", "1.500")
    assert amend({"price": "96.00", "stop_price": "99.00"}) == ("pending", "sell", "96.00", "99.00", "1.500", "1.500")
    r = requests.patch(f"{api}/orders/{order_id}", json={"stop_price": "99.00"})
    assert r.status_code == 400 and error_of(r) == "no_change", r.text
    assert amend({"stop_price": "99.00", "quantity": "1"}) == ("pending", "sell", "96.00", "99.00", "1.000", "1.000")
    got = requests.get(f"{api}/orders/{order_id}").json()
    assert (got["status"], got["price"], got["stop_price"], got["quantity"]) == ("pending", "96.00", "99.00", "1.000")
    assert amended_events(pg, order_id) == ["96.50", "99.99", "99.00", "99.00"]
    assert stop_levels() == ([], [])


@pytest.mark.parametrize("body, code", [
    ({"stop_price": "0"}, "invalid_stop_price"),
    ({"stop_price": "-1"}, "invalid_stop_price"),
    ({"stop_price": "103.001"}, "invalid_stop_price"),  # not a multiple of the tick 0.01
    ({"stop_price": 0}, "invalid_stop_price"),
    ({"stop_price": -103}, "invalid_stop_price"),
    ({"stop_price": "abc"}, "invalid_stop_price"),  # refused by the frontend itself
    ({"stop_price": "NaN"}, "invalid_stop_price"),
    ({"stop_price": ""}, "invalid_stop_price"),
    ({"stop_price": True}, "invalid_field"),
    ({"stop_price": {"value": "103.00"}}, "invalid_field"),
    ({"stop_price": ["103.00"]}, "invalid_field"),
    ({"stop_price": "103.00", "quantity": "0.0001"}, "invalid_quantity"),  # nothing of a refused amend happens
    ({"stop_price": "103.00", "price": "1.001"}, "invalid_price"),
    ({"stop_prise": "103.00"}, "unknown_field"),
    ({"stop_price": "100.00"}, "stop_would_trigger"),  # the last trade price reached it: 400 like no_change
    ({"stop_price": None}, "no_change"),  # null is no field
])
def test_bad_stop_price_amends_are_400_and_change_nothing(api, pg, stop_book, body, code):
    last_trade_at("100.00")
    client = fresh_client("sabad")
    r = post_order(stop_order(client, price="102.00", quantity="2", stop_price="101.00"))
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    order_id = r.json()["order_id"]
    r = requests.patch(f"{api}/orders/{order_id}", json=body)
    assert r.status_code == 400 and error_of(r) == code, r.text
    got = requests.get(f"{api}/orders/{order_id}").json()
    assert (got["status"], got["price"], got["stop_price"], got["quantity"]) == ("pending", "102.00", "101.00", "2")
    assert amended_events(pg, order_id) == []


def test_stop_price_amend_errors_say_what_is_wrong(api, pg, stop_book):
    """The messages are the ones exchange.amend_order raises: a bad value; an order that is not a pending stop
    order (a resting limit order; a cancelled stop order is 409 order_not_open as for any amend); a new stop
    price the last trade price has already reached, buy and sell (at the price and through it)."""
    last_trade_at("100.00")
    client = fresh_client("samsg")
    stop = post_order(stop_order(client, price="102.00", stop_price="101.00")).json()
    sell = post_order(stop_order(client, side="sell", stop_price="99.00")).json()
    plain = post_order(order(client, instrument=STOP, price="95.00")).json()
    assert (stop["status"], sell["status"], plain["status"]) == ("pending", "pending", "open")

    def refusal(order_id, body):
        r = requests.patch(f"{api}/orders/{order_id}", json=body)
        assert r.status_code == 400, r.text
        return error_of(r), r.json()["error"]["message"]
    assert refusal(stop["order_id"], {"stop_price": "101.005"}) == \
        ("invalid_stop_price", "stop_price 101.005 is not a multiple of 0.01")
    assert refusal(stop["order_id"], {"stop_price": "-2"}) == ("invalid_stop_price", "stop_price -2 must be positive")
    assert refusal(plain["order_id"], {"stop_price": "96.00"}) == (
        "invalid_stop_price",
        f"order {plain['order_id']} is not a pending stop order: it has no stop_price to amend")
    for order_id, new_stop in ((stop["order_id"], "100.00"), (stop["order_id"], "99.50"),
                               (sell["order_id"], "100.00"), (sell["order_id"], "100.50")):
        assert refusal(order_id, {"stop_price": new_stop}) == (
            "stop_would_trigger",
            f"amend of order {order_id} rejected: the last trade price 100.00 has already reached stop_price "
            f"{new_stop}")
    assert refusal(stop["order_id"], {"stop_price": "101.00"})[0] == "no_change"  # its own stop price
    # stop_would_trigger is 400 as the other amend refusals that depend on the market: a post-only order's new
    # price that would take.
    post_only = post_order(order(client, instrument=STOP, side="sell", price="101.00", post_only=True)).json()
    assert post_only["status"] == "open", post_only
    assert refusal(post_only["order_id"], {"price": "95.00"})[0] == "post_only_would_take"
    got = requests.get(f"{api}/orders/{plain['order_id']}").json()
    assert (got["status"], got["price"], got["stop_price"]) == ("open", "95.00", None)
    for o, want in ((stop, "101.00"), (sell, "99.00")):
        got = requests.get(f"{api}/orders/{o['order_id']}").json()
        assert (got["status"], got["stop_price"]) == ("pending", want), got
    r = requests.delete(f"{api}/orders/{sell['order_id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = requests.patch(f"{api}/orders/{sell['order_id']}", json={"stop_price": "98.00"})
    assert r.status_code == 409 and error_of(r) == "order_not_open", r.text
    assert pg.scalar("SELECT count(*) FROM exchange.events WHERE kind = 'order_amended' AND "
                     "order_id = ANY(%s::uuid[])",
                     ([stop["order_id"], sell["order_id"], plain["order_id"], post_only["order_id"]],)) == 0


def test_concurrent_stop_price_amends_go_through_amend_orders(api, pg, stop_book):
    """PATCHes of stop prices fired at once meet in amend_orders batches (stop_price in the items): each gets the
    answer an amend_order of its own would give, moves included (200 with the new stop price, in the table and
    the journal), and the refusals with the single function's code and message: stop_would_trigger,
    invalid_stop_price (a plain order; a bad value), no_change."""
    last_trade_at("100.00")
    clients = [fresh_client("saconc") for _ in range(4)]
    stops, plains = [], []
    with requests.Session() as s:
        for i in range(24):
            r = post_order(stop_order(clients[i % 4], price="120.00", stop_price=f"{101 + i}.00"), session=s)
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
            stops.append(r.json()["order_id"])
        for i in range(4):
            r = post_order(order(clients[i], instrument=STOP, price=f"{90 + i}.00"), session=s)
            assert r.status_code == 201 and r.json()["status"] == "open", r.text
            plains.append(r.json()["order_id"])
    calls = []  # (status, code, message or None, order_id, body)
    for i, order_id in enumerate(stops):
        if i % 6 == 5:
            calls.append((400, "stop_would_trigger", f"amend of order {order_id} rejected: the last trade price "
                          "100.00 has already reached stop_price 99.00", order_id, {"stop_price": "99.00"}))
        elif i % 6 == 4:
            calls.append((400, "no_change", None, order_id, {"stop_price": f"{101 + i}.00"}))
        elif i % 6 == 3:
            calls.append((400, "invalid_stop_price", "stop_price 150.001 is not a multiple of 0.01", order_id,
                          {"stop_price": "150.001"}))
        else:
            body = {"stop_price": f"{130 + i}.50"}
            if i % 2:
                body["quantity"] = "2"
            calls.append((200, None, None, order_id, body))
    for order_id in plains:
        calls.append((400, "invalid_stop_price",
                      f"order {order_id} is not a pending stop order: it has no stop_price to amend", order_id,
                      {"stop_price": "130.00"}))
    seed = random.randrange(1 << 32)
    random.Random(seed).shuffle(calls)
    before = metrics_text()

    replies = all_at_once(api, 24, calls,
                          lambda session, call: session.patch(f"{api}/orders/{call[3]}", json=call[4], timeout=10))

    moved = {}
    for (status, code, message, order_id, body), r in zip(calls, replies):
        where = (seed, order_id, body, r.status_code, r.text)
        assert r.status_code == status, where
        if code is not None:
            assert error_of(r) == code, where
            if message is not None:
                assert r.json()["error"]["message"] == message, where
            continue
        o = r.json()
        assert (o["order_id"], o["status"], o["stop_price"], o["remaining_quantity"]) == \
            (order_id, "pending", body["stop_price"], "2.000" if "quantity" in body else "1.000"), where
        moved[order_id] = body["stop_price"]
    with pg.connect() as conn:
        rows = dict(conn.execute("SELECT order_id::text, stop_price::text FROM exchange.orders "
                                 "WHERE order_id = ANY(%s::uuid[])", (stops,)).fetchall())
        assert rows == {order_id: moved.get(order_id, f"{101 + i}.00") for i, order_id in enumerate(stops)}, seed
        events = conn.execute("SELECT order_id::text, payload->>'stop_price' FROM exchange.events "
                              "WHERE kind = 'order_amended' AND order_id = ANY(%s::uuid[])",
                              (stops + plains,)).fetchall()
        assert sorted(events) == sorted(moved.items()), seed
    assert_grouped("amend_batch_size", before, len(calls))


def test_idempotency_header_must_be_text(api):
    body = '{"client_id": "x", "instrument": "BTC-USD", "side": "buy", "type": "limit", "quantity": "1", "price": "1"}'
    r = requests.post(f"{api}/orders", data=body, headers={**JSON, "Idempotency-Key": b"\xff\xfe"})
    assert r.status_code == 400 and error_of(r) == "invalid_field", r.text


def test_http_level_errors(api):
    r = requests.post(f"{api}/orders", data='{"client_id": "' + "x" * MAX_BODY + '"}', headers=JSON)
    assert r.status_code == 413 and error_of(r) == "payload_too_large"
    r = requests.post(f"{api}/orders", data="client_id=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and error_of(r) == "unsupported_media_type"
    r = requests.get(f"{api}/no/such/route")
    assert r.status_code == 404 and error_of(r) == "not_found"
    r = requests.put(f"{api}/orders")
    assert r.status_code == 405 and error_of(r) == "method_not_allowed"
    assert "POST" in r.headers["Allow"]
    r = requests.get(f"{api}/orders/{uuid.uuid4()}")
    assert r.status_code == 404 and error_of(r) == "order_not_found"
    r = requests.get(f"{api}/orders/not-a-uuid")
    assert r.status_code == 400 and error_of(r) == "invalid_order_id"
    r = requests.get(f"{api}/orders")
    assert r.status_code == 400 and error_of(r) == "missing_parameter"
    r = requests.get(f"{api}/orderbook", params={"instrument": "BTC-USD", "levels": "ten"})
    assert r.status_code == 400 and error_of(r) == "invalid_parameter"
    r = requests.get(f"{api}/orderbook", params={"instrument": "NOPE"})
    assert r.status_code == 400 and error_of(r) == "unknown_instrument"


def read_http_answer(sock_file):
    """One HTTP/1.1 answer from a socket's file: (status, headers, body bytes)."""
    status_line = sock_file.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers = {}
    while True:
        line = sock_file.readline()
        assert line, "the connection ended inside the headers"
        if line == b"\r\n":
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = sock_file.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def test_answers_larger_than_the_socket_holds_arrive_whole(api, pg):
    """A client that does not read: the answers go on after the socket buffer is full.

    The frontend writes an answer to the socket itself and keeps what the socket cannot take in the
    connection's queue; later answers on that connection must wait behind it. Order books of
    ~20,000 levels (about 1 MB each) are asked for, one every 0.3 s, until they exceed what the
    kernel can buffer (the largest send buffer, tcp_wmem's maximum, and this client's receive
    buffer, made tiny). An answer that lost its remainder, or whose bytes were mixed with the
    next one's, fails the checks below; the counter shows that the queue was used.
    """
    symbol = f"DEEP-{uuid.uuid4().hex[:6]}".upper()
    levels = 10000
    with pg.connect() as conn:
        place_deep_book(conn, symbol, levels)
    r = requests.get(f"{api}/orderbook", params={"instrument": symbol, "levels": levels}, timeout=10)
    assert r.status_code == 200 and len(r.json()["bids"]) == levels, r.text[:200]
    one = len(r.content)
    queued_before = metric(metrics_text(), "http_answers_queued_total")
    sock, send_buffer_max = unread_connection(int(api.rsplit(":", 1)[1]), 60)
    asked = [levels - k for k in range(send_buffer_max // one + 8)]
    received = bytearray()

    def read_slowly():
        # ~1 MB/s, slower than the answers come: the queue stays non-empty, yet the socket keeps
        # having a little room, which an answer that skipped the queue would take. Stops after as
        # many answers as asked for, counted by their Content-Length (or at the end of the stream).
        answers, pos = 0, 0
        while answers < len(asked):
            chunk = sock.recv(4096)
            if not chunk:
                return
            received.extend(chunk)
            while True:
                end = received.find(b"\r\n\r\n", pos, pos + 4096)
                if end < 0:
                    break
                length = re.search(rb"\r\nContent-Length: (\d+)\r\n", bytes(received[pos:end + 2]))
                if not length or end + 4 + int(length.group(1)) > len(received):
                    break
                answers, pos = answers + 1, end + 4 + int(length.group(1))
            time.sleep(0.004)

    try:
        # One at a time (Pistache 0.0.5 parses one request per read), each answered before the next
        # arrives: the frontend answers concurrent requests on one connection in the order their
        # answers are ready, not in the order asked (frontend/README.md, Answers).
        for n in asked[:send_buffer_max // one + 1]:
            sock.sendall(f"GET /orderbook?instrument={symbol}&levels={n} HTTP/1.1\r\nHost: x\r\n"
                         "Connection: keep-alive\r\n\r\n".encode())
            time.sleep(0.3)
        reader = threading.Thread(target=read_slowly)
        reader.start()
        for n in asked[send_buffer_max // one + 1:]:
            sock.sendall(f"GET /orderbook?instrument={symbol}&levels={n} HTTP/1.1\r\nHost: x\r\n"
                         "Connection: keep-alive\r\n\r\n".encode())
            time.sleep(0.3)
        reader.join(120)
        assert not reader.is_alive()
        stream = io.BufferedReader(io.BytesIO(bytes(received)))
        got = []
        for _ in asked:
            status, headers, body = read_http_answer(stream)
            assert status == 200 and headers["content-type"] == "application/json"
            book = json.loads(body)
            assert len(book["bids"]) == len(book["asks"]), (len(book["bids"]), len(book["asks"]))
            got.append(len(book["bids"]))
        assert sorted(got) == sorted(asked)
        assert metric(metrics_text(), "http_answers_queued_total") > queued_before
        # Once the queue is written, the next answer goes straight to the socket again.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        status, _, body = read_http_answer(sock.makefile("rb"))
        assert status == 200 and json.loads(body) == {"status": "ok"}
    finally:
        sock.close()


def test_cancel_and_amend(api):
    owner, other = fresh_client(), fresh_client()
    a = post_order(order(owner, side="buy", price="90.00", quantity="3")).json()
    b = post_order(order(owner, side="buy", price="90.00", quantity="1")).json()

    r = requests.patch(f"{api}/orders/{a['order_id']}", json={"quantity": "2", "client_id": owner})
    assert r.status_code == 200 and Decimal(r.json()["quantity"]) == 2 and r.json()["status"] == "open"
    r = requests.patch(f"{api}/orders/{a['order_id']}", json={"price": 90.05})
    assert r.status_code == 200 and r.json()["price"] == "90.05"
    r = requests.patch(f"{api}/orders/{a['order_id']}", json={"quantity": "x"})
    assert r.status_code == 400 and error_of(r) == "invalid_quantity"
    r = requests.patch(f"{api}/orders/{a['order_id']}", json={})
    assert r.status_code == 400 and error_of(r) == "no_change"

    r = requests.post(f"{api}/orders/{a['order_id']}/cancel", json={"client_id": other})
    assert r.status_code == 403 and error_of(r) == "not_order_owner"
    r = requests.post(f"{api}/orders/{a['order_id']}/cancel", json={"client_id": owner})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["cancel_reason"] == "user"
    r = requests.post(f"{api}/orders/{a['order_id']}/cancel")
    assert r.status_code == 409 and error_of(r) == "order_not_open"
    r = requests.delete(f"{api}/orders/{b['order_id']}", params={"client_id": owner})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = requests.delete(f"{api}/orders/{uuid.uuid4()}")
    assert r.status_code == 404 and error_of(r) == "order_not_found"


def placed(body):
    """POST /orders, which must answer 201: the order."""
    r = post_order(body)
    assert r.status_code == 201, r.text
    return r.json()


def open_orders(api, client):
    r = requests.get(f"{api}/orders", params={"client_id": client})
    assert r.status_code == 200, r.text
    return [(o["order_id"], o["status"]) for o in r.json()["orders"]]


def test_delete_orders_cancels_every_resting_and_pending_order_of_the_client(api, pg, stop_book):
    """DELETE /orders (extension 0.14's cancel_all_orders): a client's resting orders on two instruments, a
    partially filled one and a pending stop order are cancelled by one request, which answers exactly those,
    oldest first, in the order JSON of the other order routes (status cancelled, exact decimals, the stop
    order's stop_price); its filled and already cancelled orders are not touched, nor is another client's on
    the same instruments and levels. One request for the rate limit; the same again answers no orders; a
    DELETE /orders/{id} still cancels that one order."""
    last_trade_at("100.00")
    client, other = fresh_client("ca"), fresh_client("ca")
    btc = placed(order(client, price="7.00", quantity="0.5"))
    theirs = [placed(order(other, price="7.00")), placed(order(other, instrument="ETH-USD", price="1.00")),
              placed(stop_order(other, side="sell", stop_price="90.00"))]
    filled = placed(order(client, instrument=STOP, side="sell", price="101.00"))
    assert placed(order(other, instrument=STOP, price="101.00"))["status"] == "filled"
    partial = placed(order(client, instrument=STOP, side="sell", price="102.00", quantity="2"))
    assert placed(order(other, instrument=STOP, price="102.00"))["status"] == "filled"
    eth = placed(order(client, instrument="ETH-USD", price="1.00", quantity="0.25"))
    gone = placed(order(client, price="7.01"))
    assert requests.delete(f"{api}/orders/{gone['order_id']}").json()["status"] == "cancelled"
    stop = placed(stop_order(client, price="111.00", stop_price="110.00"))
    assert stop["status"] == "pending"
    want = [btc, partial, eth, stop]  # oldest first
    assert [s for _, s in open_orders(api, client)] == ["pending", "open", "partially_filled", "open"]

    remaining = int(requests.get(f"{api}/orders", params={"client_id": client}).headers["X-RateLimit-Remaining"])
    r = requests.delete(f"{api}/orders", params={"client_id": client})
    assert r.status_code == 200, r.text
    assert r.headers["X-RateLimit-Remaining"] == str(remaining - 1)
    got = r.json()
    assert list(got) == ["orders"] and [o["order_id"] for o in got["orders"]] == [o["order_id"] for o in want]
    for o, before in zip(got["orders"], want):
        now = requests.get(f"{api}/orders/{o['order_id']}").json()
        assert set(o) == set(before), o
        assert (o["status"], o["cancel_reason"], o["client_id"], o["reject_reason"]) == \
            ("cancelled", "user", client, None), o
        for field in ("instrument", "side", "type", "time_in_force", "price", "quantity", "display_quantity",
                      "stop_price", "created_at"):
            assert o[field] == before[field], (field, o)
        for field in ("status", "filled_quantity", "remaining_quantity", "cancel_reason"):
            assert o[field] == now[field], (field, o, now)
        assert isinstance(o["seq"], int)
    answered = {o["order_id"]: o for o in got["orders"]}
    assert answered[partial["order_id"]]["filled_quantity"] == "1.000"  # exact decimals, never floats
    assert answered[btc["order_id"]]["price"] == "7.00" and answered[btc["order_id"]]["quantity"] == "0.5"
    assert answered[stop["order_id"]]["stop_price"] == "110.00"

    assert open_orders(api, client) == []
    assert requests.get(f"{api}/orders/{filled['order_id']}").json()["status"] == "filled"
    assert requests.get(f"{api}/orders/{gone['order_id']}").json()["status"] == "cancelled"
    assert open_orders(api, other) == [(theirs[2]["order_id"], "pending"), (theirs[1]["order_id"], "open"),
                                       (theirs[0]["order_id"], "open")]
    book = requests.get(f"{api}/orderbook", params={"instrument": "BTC-USD", "levels": 1000}).json()
    assert [lv for lv in book["bids"] if lv["price"] in ("7.00", "7.01")] == \
        [{"price": "7.00", "quantity": "1.0000", "order_count": 1}]
    assert stop_levels() == ([], [])
    with pg.connect() as conn:
        ids = [o["order_id"] for o in want]
        events = conn.execute("SELECT order_id::text, count(*) FROM exchange.events WHERE kind = 'order_cancelled' "
                              "AND order_id = ANY(%s::uuid[]) GROUP BY 1", (ids,)).fetchall()
        assert sorted(events) == sorted((i, 1) for i in ids)
        for symbol in ("BTC-USD", "ETH-USD"):
            assert conn.execute("SELECT problem FROM exchange.verify(%s)", (symbol,)).fetchall() == []

    r = requests.delete(f"{api}/orders", params={"client_id": client})
    assert r.status_code == 200 and r.json() == {"orders": []}, r.text
    # DELETE /orders/{id}: one order, answered as itself.
    r = requests.delete(f"{api}/orders/{theirs[0]['order_id']}")
    assert r.status_code == 200 and r.json()["order_id"] == theirs[0]["order_id"], r.text
    assert r.json()["status"] == "cancelled"
    assert open_orders(api, other) == [(theirs[2]["order_id"], "pending"), (theirs[1]["order_id"], "open")]
    requests.delete(f"{api}/orders", params={"client_id": other})  # leaves STOP-USD empty for the fixture


def test_delete_orders_with_an_instrument_cancels_only_that_instruments_orders(api):
    """`instrument` (query or body): only the client's orders of that instrument, oldest first; the others stay."""
    client = fresh_client("ci")
    b1 = placed(order(client, price="6.00"))
    e1 = placed(order(client, instrument="ETH-USD", price="1.10"))
    b2 = placed(order(client, price="6.50"))
    e2 = placed(order(client, instrument="ETH-USD", side="sell", price="9000.00"))
    r = requests.delete(f"{api}/orders", params={"client_id": client, "instrument": "ETH-USD"})
    assert r.status_code == 200, r.text
    assert [(o["order_id"], o["instrument"], o["status"]) for o in r.json()["orders"]] == \
        [(e1["order_id"], "ETH-USD", "cancelled"), (e2["order_id"], "ETH-USD", "cancelled")]
    assert open_orders(api, client) == [(b2["order_id"], "open"), (b1["order_id"], "open")]
    r = requests.delete(f"{api}/orders", params={"client_id": client, "instrument": "ETH-USD"})
    assert r.status_code == 200 and r.json() == {"orders": []}, r.text
    assert open_orders(api, client) == [(b2["order_id"], "open"), (b1["order_id"], "open")]
    # The instrument in a JSON body, and the client_id there too.
    r = requests.delete(f"{api}/orders", json={"client_id": client, "instrument": "BTC-USD"})
    assert r.status_code == 200, r.text
    assert [(o["order_id"], o["status"]) for o in r.json()["orders"]] == \
        [(b1["order_id"], "cancelled"), (b2["order_id"], "cancelled")]
    assert open_orders(api, client) == []


def test_delete_orders_refusals_cancel_nothing(api):
    """Every refusal of DELETE /orders leaves the orders as they were: an unknown instrument (400
    unknown_instrument, from the function's 42704), an empty one (never "every instrument"), one with a NUL,
    no client_id, conflicting body and query, unknown or mistyped body fields, a body that is not JSON. A client
    without orders gets 200 and none; OPTIONS and 405 name DELETE among /orders' methods."""
    client = fresh_client("ce")
    mine = placed(order(client, price="6.00"))
    cases = [
        ({"params": {"client_id": client, "instrument": "NOPE-USD"}}, 400, "unknown_instrument"),
        ({"params": {"client_id": client, "instrument": ""}}, 400, "invalid_parameter"),
        ({"params": {"client_id": client}, "json": {"instrument": ""}}, 400, "invalid_parameter"),
        ({"url": f"{api}/orders?client_id={client}&instrument=BTC-USD%00"}, 400, "invalid_parameter"),
        ({"url": f"{api}/orders?client_id={client}%00x"}, 400, "invalid_parameter"),
        ({}, 400, "missing_parameter"),
        ({"params": {"client_id": ""}}, 400, "missing_parameter"),
        ({"params": {"client_id": client}, "json": {"client_id": client + "x"}}, 400, "conflicting_client_id"),
        ({"params": {"client_id": client, "instrument": "BTC-USD"}, "json": {"instrument": "ETH-USD"}}, 400,
         "conflicting_instrument"),
        ({"params": {"client_id": client}, "json": {"side": "buy"}}, 400, "unknown_field"),
        ({"params": {"client_id": client}, "json": {"instrument": 5}}, 400, "invalid_field"),
        ({"params": {"client_id": client}, "data": "{", "headers": JSON}, 400, "malformed_json"),
        ({"params": {"client_id": client}, "data": "instrument=BTC-USD"}, 415, "unsupported_media_type"),
    ]
    for kwargs, status, code in cases:
        url = kwargs.pop("url", f"{api}/orders")
        r = requests.delete(url, timeout=10, **kwargs)
        assert r.status_code == status and error_of(r) == code, (kwargs, r.text)
        if code == "unknown_instrument":
            assert "NOPE-USD" in r.json()["error"]["message"], r.text
    assert open_orders(api, client) == [(mine["order_id"], "open")]

    r = requests.delete(f"{api}/orders", params={"client_id": fresh_client("none")})
    assert r.status_code == 200 and r.json() == {"orders": []}, r.text
    r = requests.options(f"{api}/orders", headers={"Origin": "http://x", "Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 204
    assert {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")} == \
        {"GET", "POST", "DELETE", "OPTIONS"}
    r = requests.put(f"{api}/orders")
    assert r.status_code == 405 and "DELETE" in r.headers["Allow"]
    assert open_orders(api, client) == [(mine["order_id"], "open")]
    text = metrics_text()
    assert metric(text, "http_requests_total", {"route": "/orders", "method": "DELETE", "status": "200"}) >= 1
    assert metric(text, "http_requests_total", {"route": "/orders", "method": "DELETE", "status": "400"}) >= 11


def test_delete_orders_is_rate_limited_as_one_request(api, pg):
    """A client over its limit gets 429 (with the rate headers) and keeps its orders."""
    client = fresh_client("crl")
    with pg.connect() as conn:
        ids = [conn.execute("SELECT order_id::text FROM exchange.place_order(%s, 'BTC-USD', 'buy', 'limit', 1, "
                            "%s::numeric)", (client, price)).fetchone()[0] for price in ("5.00", "5.01")]
    with requests.Session() as s:
        for i in range(100):
            assert s.get(f"{api}/orders", params={"client_id": client}).status_code == 200, i
        r = s.delete(f"{api}/orders", params={"client_id": client})
    assert r.status_code == 429 and error_of(r) == "rate_limited", r.text
    assert r.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in r.headers
    with pg.connect() as conn:
        rows = conn.execute("SELECT order_id::text, status FROM exchange.orders WHERE client_id = %s",
                            (client,)).fetchall()
    assert sorted(rows) == sorted((i, "open") for i in ids)


def all_at_once(api, threads, calls, send):
    """send(session, call) for every call from `threads` threads, each with its
    own keep-alive connection (opened by a /healthz before a barrier), so that
    their first calls go out together; the responses in the calls' order."""
    local, sessions, lock = threading.local(), [], threading.Lock()
    gate = threading.Barrier(threads, timeout=30)

    def start():
        local.session = requests.Session()
        with lock:
            sessions.append(local.session)
        assert local.session.get(f"{api}/healthz", timeout=10).status_code == 200
        gate.wait()

    try:
        with ThreadPoolExecutor(threads, initializer=start) as pool:
            return list(pool.map(lambda call: send(local.session, call), calls))
    finally:
        for s in sessions:
            s.close()


def assert_grouped(histogram, before, sent):
    """Since the /metrics text `before`, the `sent` requests went to the database group-committed:
    in fewer statements than requests (the histogram counts one sample per statement, the size),
    at least one of them with several."""
    after = metrics_text()

    def grew(name, labels=None):
        return metric(after, name, labels) - metric(before, name, labels)
    assert grew(f"{histogram}_sum") == sent
    assert grew(f"{histogram}_count") < sent
    assert grew(f"{histogram}_bucket", {"le": "1"}) < grew(f"{histogram}_count")


def test_a_nul_in_a_query_parameter_is_refused(api):
    # Parameters reach PostgreSQL as C strings: "owner%00x" would have been
    # client "owner", passing the ownership check of its cancel.
    owner = fresh_client()
    o = post_order(order(owner, side="buy", price="20.00")).json()
    r = requests.delete(f"{api}/orders/{o['order_id']}?client_id={owner}%00x")
    assert r.status_code == 400 and error_of(r) == "invalid_parameter", r.text
    r = requests.get(f"{api}/orderbook?instrument=BTC-USD%00x")
    assert r.status_code == 400 and error_of(r) == "invalid_parameter", r.text
    r = requests.get(f"{api}/orders?client_id={owner}%00")
    assert r.status_code == 400 and error_of(r) == "invalid_parameter", r.text
    assert requests.get(f"{api}/orders/{o['order_id']}").json()["status"] == "open"
    r = requests.delete(f"{api}/orders/{o['order_id']}?client_id={owner}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_concurrent_cancels_each_get_their_own_answer(api, pg):
    # ~150 cancels (DELETE and POST .../cancel) fired at once, so that many are
    # answered from the same moment's work: each must still get the answer it
    # would get alone. Pinned: the owner's cancel 200 with the cancelled order;
    # another client's 403 not_order_owner whether it comes before or after the
    # owner's (ownership is checked before the status); of the owner's two
    # cancels exactly one 200 and one 409 order_not_open (which one is timing);
    # unknown ids 404 order_not_found, malformed ids 400 invalid_order_id; and
    # every order cancelled exactly once, in the table and in the journal.
    # The frontend runs with the default --rate-limit 100 per client and minute:
    # 6 clients with 14 orders each make ~35 limited requests per client.
    clients = [fresh_client("cc") for _ in range(6)]
    orders = []  # (order_id, owner)
    with requests.Session() as s:
        for i in range(84):
            owner = clients[i % len(clients)]
            # Bids far below every ask in the tests: they rest, nothing trades.
            r = post_order(order(owner, price=str(Decimal("10.00") + Decimal("0.11") * i)), session=s)
            assert r.status_code == 201 and r.json()["status"] == "open", r.text
            orders.append((r.json()["order_id"], owner))

    def cancel(order_id, form, client=None):
        """(method, url, requests kwargs): 0 DELETE ?client_id=, 1 DELETE bare, 2 POST .../cancel with a body."""
        if form == 0:
            return "DELETE", f"{api}/orders/{order_id}", {"params": {"client_id": client}} if client else {}
        if form == 1:
            return "DELETE", f"{api}/orders/{order_id}", {}
        return "POST", f"{api}/orders/{order_id}/cancel", {"json": {"client_id": client}} if client else {}

    calls = []  # (what, order_id or None, (method, url, kwargs))
    for i, (order_id, owner) in enumerate(orders):
        form = (i + i // 6) % 3  # every form, also in each pair of the owner's two
        calls.append(("owner", order_id, cancel(order_id, form, owner)))
        if i % 3 == 0:
            other = clients[(clients.index(owner) + 1 + i % 5) % len(clients)]
            calls.append(("other", order_id, cancel(order_id, 0 if i % 2 else 2, other)))
        if i % 6 == 1:
            calls.append(("owner", order_id, cancel(order_id, (form + 1) % 3, owner)))
    for i in range(15):
        calls.append(("unknown", None, cancel(uuid.uuid4(), i % 3, clients[i % len(clients)] if i % 2 else None)))
    for bad in ("not-a-uuid", "0123456789abcdef0123456789abcdef0123", "0123456g-89ab-cdef-0123-456789abcdef"):
        calls.append(("malformed", None, cancel(bad, 1)))
        calls.append(("malformed", None, cancel(bad, 2, clients[0])))
    seed = random.randrange(1 << 32)
    random.Random(seed).shuffle(calls)
    before = metrics_text()

    replies = all_at_once(api, 48, calls, lambda session, call: session.request(call[2][0], call[2][1], timeout=10,
                                                                                 **call[2][2]))

    owners = {order_id: [] for order_id, _ in orders}
    for (what, order_id, (method, url, kwargs)), r in zip(calls, replies):
        where = (seed, what, method, url, kwargs, r.status_code, r.text)
        if what == "owner":
            owners[order_id].append(r)
        elif what == "other":
            assert r.status_code == 403 and error_of(r) == "not_order_owner", where
        elif what == "unknown":
            assert r.status_code == 404 and error_of(r) == "order_not_found", where
        else:
            assert r.status_code == 400 and error_of(r) == "invalid_order_id", where
    owner_of = dict(orders)
    for order_id, rs in owners.items():
        statuses = sorted(r.status_code for r in rs)
        assert statuses == ([200, 409] if len(rs) == 2 else [200]), (seed, order_id, [r.text for r in rs])
        for r in rs:
            if r.status_code == 200:
                o = r.json()
                assert o["order_id"] == order_id and o["client_id"] == owner_of[order_id], (seed, r.text)
                assert o["status"] == "cancelled" and o["cancel_reason"] == "user", (seed, r.text)
            else:
                assert error_of(r) == "order_not_open", (seed, r.text)

    ids = list(owners)
    for order_id in ids:
        got = requests.get(f"{api}/orders/{order_id}", timeout=10).json()
        assert got["status"] == "cancelled" and got["cancel_reason"] == "user", got
    with pg.connect() as conn:
        rows = conn.execute("SELECT order_id::text, status, cancel_reason FROM exchange.orders "
                            "WHERE order_id = ANY(%s::uuid[])", (ids,)).fetchall()
        assert sorted(rows) == sorted((i, "cancelled", "user") for i in ids)
        events = conn.execute("SELECT order_id::text, count(*) FROM exchange.events "
                              "WHERE kind = 'order_cancelled' AND order_id = ANY(%s::uuid[]) GROUP BY 1",
                              (ids,)).fetchall()
        assert sorted(events) == sorted((i, 1) for i in ids)
        assert conn.execute("SELECT problem FROM exchange.verify('BTC-USD')").fetchall() == []

    # The malformed ones never reach the database.
    assert_grouped("cancel_batch_size", before, sum(1 for what, _, _ in calls if what != "malformed"))


def test_concurrent_amends_each_get_their_own_answer(api, pg):
    # ~100 PATCHes fired at once (group-committed with amend_orders): each gets
    # the answer an amend_order of its own would give. Pinned: the owner's
    # amend 200 with the new quantity or price; another client's 403
    # not_order_owner; no field 400 no_change, a quantity that is not a
    # multiple of the lot 400 invalid_quantity; a cancelled order 409
    # order_not_open; an unknown id 404; and the journal has exactly one
    # order_amended entry per 200.
    clients = [fresh_client("ca") for _ in range(5)]
    orders = []
    with requests.Session() as s:
        for i in range(40):
            owner = clients[i % len(clients)]
            r = post_order(order(owner, price=str(Decimal("11.00") + Decimal("0.13") * i), quantity="2"), session=s)
            assert r.status_code == 201 and r.json()["status"] == "open", r.text
            orders.append((r.json()["order_id"], owner))
        cancelled = orders[-5:]
        for order_id, owner in cancelled:
            assert s.delete(f"{api}/orders/{order_id}", params={"client_id": owner}).status_code == 200
    live = orders[:-5]

    calls = []  # (expected status, expected code or None, order_id, body)
    for i, (order_id, owner) in enumerate(live):
        body = [{"quantity": "3"}, {"quantity": "1", "client_id": owner},
                {"price": str(Decimal("10.00") + Decimal("0.01") * i)}, {"quantity": "4", "price": "9.50"}][i % 4]
        calls.append((200, None, order_id, body))
        if i % 3 == 0:
            calls.append((403, "not_order_owner", order_id, {"quantity": "5", "client_id": clients[(i + 1) % 5]}))
        if i % 5 == 0:
            calls.append((400, "no_change", order_id, {}))
        if i % 7 == 0:
            calls.append((400, "invalid_quantity", order_id, {"quantity": "0.00001"}))
    for order_id, owner in cancelled:
        calls.append((409, "order_not_open", order_id, {"quantity": "3", "client_id": owner}))
    for _ in range(8):
        calls.append((404, "order_not_found", str(uuid.uuid4()), {"quantity": "3"}))
    seed = random.randrange(1 << 32)
    random.Random(seed).shuffle(calls)
    before = metrics_text()

    replies = all_at_once(api, 32, calls,
                          lambda session, call: session.patch(f"{api}/orders/{call[2]}", json=call[3], timeout=10))

    amended = {}
    for (status, code, order_id, body), r in zip(calls, replies):
        assert r.status_code == status, (seed, order_id, body, r.status_code, r.text)
        if code is not None:
            assert error_of(r) == code, (seed, order_id, body, r.text)
            continue
        o = r.json()
        assert o["order_id"] == order_id and o["status"] in ("open", "partially_filled"), (seed, r.text)
        if "quantity" in body:
            assert Decimal(o["quantity"]) == Decimal(body["quantity"]), (seed, body, r.text)
        if "price" in body:
            assert Decimal(o["price"]) == Decimal(body["price"]), (seed, body, r.text)
        amended[order_id] = o
    assert len(amended) == len(live)
    for order_id, o in amended.items():
        got = requests.get(f"{api}/orders/{order_id}", timeout=10).json()
        assert (got["quantity"], got["price"]) == (o["quantity"], o["price"]), (got, o)
    with pg.connect() as conn:
        events = conn.execute("SELECT order_id::text, count(*) FROM exchange.events "
                              "WHERE kind = 'order_amended' AND order_id = ANY(%s::uuid[]) GROUP BY 1",
                              (list(amended),)).fetchall()
        assert sorted(events) == sorted((i, 1) for i in amended)
        assert conn.execute("SELECT problem FROM exchange.verify('BTC-USD')").fetchall() == []

    assert_grouped("amend_batch_size", before, len(calls))


def test_idempotency_header_body_and_conflict(api, pg, redis):
    client = fresh_client()
    first = post_order(order(client, price="80.00"), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = post_order(order(client, price="80.00", idempotency_key="k-1"))
    assert again.status_code == 200 and again.json()["order_id"] == first.json()["order_id"]
    assert again.json()["seq"] is None
    r = post_order(order(client, idempotency_key="k-2"), headers={"Idempotency-Key": "k-3"})
    assert r.status_code == 400 and error_of(r) == "conflicting_idempotency_key"
    # The same key for another client is another order.
    other = post_order(order(fresh_client(), price="80.00"), headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 201 and other.json()["order_id"] != first.json()["order_id"]
    # Redis holds the fast path: client/key -> order_id.
    keys = redis.cli("--scan", "--pattern", "pgx:idem:*").split()
    assert any(k.endswith(f"{client}:k-1") for k in keys)


def test_idempotency_race_creates_one_order(api, pg):
    client = fresh_client("race")
    body = order(client, price="70.00", idempotency_key="race-1")
    gate = threading.Barrier(100)

    def send(_):
        gate.wait()
        return post_order(body)

    with ThreadPoolExecutor(100) as pool:
        replies = list(pool.map(send, range(100)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 99 + [201], statuses
    assert len({r.json()["order_id"] for r in replies}) == 1
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 1


def test_rate_limit_429_with_headers(api):
    client = fresh_client("rl")
    with requests.Session() as s:
        for i in range(100):
            r = s.get(f"{api}/orders", params={"client_id": client})
            assert r.status_code == 200, (i, r.text)
            assert r.headers["X-RateLimit-Remaining"] == str(99 - i)
        r = s.get(f"{api}/orders", params={"client_id": client})
        assert r.status_code == 429 and error_of(r) == "rate_limited"
        assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        r = s.post(f"{api}/orders", json=order(client))
        assert r.status_code == 429
        # Another client is not affected.
        assert s.get(f"{api}/orders", params={"client_id": fresh_client("rl")}).status_code == 200


def test_group_commit_batches_concurrent_orders(api):
    before = metrics_text()
    gate = threading.Barrier(32)

    def send(i):
        gate.wait()
        return post_order(order(fresh_client("gc"), side="buy", price=f"{50 + i % 5}.00"))

    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(send, range(32)))
    assert [r.status_code for r in replies] == [201] * 32
    after = metrics_text()
    orders = metric(after, "group_commit_batch_size_sum") - metric(before, "group_commit_batch_size_sum")
    batches = metric(after, "group_commit_batch_size_count") - metric(before, "group_commit_batch_size_count")
    assert orders == 32
    assert batches < 32, "no place_orders call carried more than one order"


def test_an_instrument_held_by_another_transaction_fails_only_its_own_orders(api, pg):
    # A SQL session holds LT1-USD's instrument lock. Orders of LT1-USD and of
    # the free LT2-USD are sent together: the LT2-USD ones are placed, the
    # LT1-USD ones wait --lock-timeout-ms, then answer 503 instrument_busy
    # (each batch once, not once per order) and were not placed. A cancel
    # and a DELETE /orders of a client with orders on both fail alike, whole.
    for symbol in ("LT1-USD", "LT2-USD"):
        pg.scalar("SELECT symbol FROM exchange.create_instrument(%s, 0.01, 0.0001)", (symbol,))
    resting_client = fresh_client("lr")
    resting = post_order(order(resting_client, instrument="LT1-USD", price="1.00")).json()
    resting_free = post_order(order(resting_client, instrument="LT2-USD", price="1.00")).json()
    holder = pg.connect()
    holder.execute("BEGIN")
    holder.execute("SELECT exchange.place_order('lt-holder', 'LT1-USD', 'buy', 'limit', 1, 1.00)")
    held = [fresh_client("lt") for _ in range(4)]
    free = [fresh_client("lf") for _ in range(4)]
    gate = threading.Barrier(8)

    def send(body):
        gate.wait()
        return post_order(body)

    try:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(send, [order(c, instrument="LT1-USD", price="1.00") for c in held] +
                                    [order(c, instrument="LT2-USD", price="1.00") for c in free]))
        # A cancel waits as long, then gives the same answer, and the order stays open.
        cancel = requests.post(f"{api}/orders/{resting['order_id']}/cancel", timeout=10)
        assert cancel.status_code == 503 and error_of(cancel) == "instrument_busy", cancel.text
        cancel = requests.delete(f"{api}/orders", params={"client_id": resting_client}, timeout=10)
        assert cancel.status_code == 503 and error_of(cancel) == "instrument_busy", cancel.text
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert [r.status_code for r in replies[4:]] == [201] * 4, [r.text for r in replies[4:]]
    for r in replies[:4]:
        assert r.status_code == 503 and error_of(r) == "instrument_busy", r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = ANY(%s)", (held,)) == 0
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = ANY(%s)", (free,)) == 4
    # Once the holder is gone the instrument trades again.
    assert post_order(order(held[0], instrument="LT1-USD", price="1.00")).status_code == 201
    assert requests.get(f"{api}/orders/{resting_free['order_id']}").json()["status"] == "open"
    cancel = requests.post(f"{api}/orders/{resting['order_id']}/cancel", timeout=10)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    cancel = requests.delete(f"{api}/orders", params={"client_id": resting_client}, timeout=10)
    assert cancel.status_code == 200 and [o["order_id"] for o in cancel.json()["orders"]] == \
        [resting_free["order_id"]], cancel.text


SHUTDOWN_HTTP, SHUTDOWN_WS = 18030, 18031


def test_sigterm_with_orders_still_queued_places_them_and_exits(api, pg):
    """A second frontend with two database workers (so one order writer at a time) and a short
    --shutdown-timeout-ms. A SQL session holds ETH-USD's instrument lock: the batch of ETH-USD orders waits in
    PostgreSQL, the BTC-USD orders queue behind it (no second order writer may start) and the other worker,
    with nothing it may take, sleeps. SIGTERM comes then, and the lock is released only after the shutdown
    timeout has passed, so the pool stops with orders still queued. They are placed all the same (the pool
    works off its queue before the workers end, and the worker that slept while the last order was taken
    ends too), and the process exits 0 by itself. (The module's own instruments: a new one would take one of
    the cluster's few book slots, exchange.max_instruments, which later tests need.)"""
    holder = pg.connect()
    holder.execute("BEGIN")
    holder.execute("SELECT exchange.place_order('sd-holder', 'ETH-USD', 'buy', 'limit', 1, 1.00)")
    fe = Process([str(FRONTEND), "--db", DSN, "--http-host", "127.0.0.1", "--http-port", str(SHUTDOWN_HTTP),
                  "--ws-port", str(SHUTDOWN_WS), "--redis", f"127.0.0.1:{REDIS_PORT}", "--log-level", "info",
                  "--no-auth", "--db-workers", "2", "--shutdown-timeout-ms", "300", "--lock-timeout-ms", "10000"],
                 PG_DIR / "frontend-shutdown.log", SHUTDOWN_HTTP)
    base = f"http://127.0.0.1:{SHUTDOWN_HTTP}"
    held = [fresh_client("sd") for _ in range(3)]
    queued = [fresh_client("sq") for _ in range(3)]

    def send(body):
        try:
            return requests.post(f"{base}/orders", json=body, timeout=60).status_code
        except requests.RequestException:
            return None  # the server stopped taking requests before this one was answered

    committed = False
    try:
        with ThreadPoolExecutor(len(held) + len(queued)) as pool:
            for c in held:
                pool.submit(send, order(c, instrument="ETH-USD", price="1.00"))
            deadline = time.monotonic() + 20
            while pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND position('place_orders' in query) > 0") == 0:
                assert time.monotonic() < deadline, "the ETH-USD batch never waited for the instrument lock"
                time.sleep(0.05)
            for c in queued:
                pool.submit(send, order(c, instrument="BTC-USD", price="1.00"))
            # Queued in the frontend, where nothing shows them without a worker (GET /metrics reads the
            # books, ETH-USD's too, which waits for the lock): given a second to arrive. Had one come late,
            # after SIGTERM, it would be refused and the count of placed orders below would fail.
            time.sleep(1.0)
            fe.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # past --shutdown-timeout-ms: the HTTP server is gone, the pool is stopping
            assert fe.proc.poll() is None, "the frontend ended with orders still queued"
            holder.execute("COMMIT")
            committed = True
            code = fe.proc.wait(30)
    finally:
        if not committed:
            holder.execute("ROLLBACK")
        holder.close()
        fe.stop()
    assert code == 0, f"pgx-frontend exited with {code}, see {fe.log_path}"
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = ANY(%s)", (held,)) == len(held)
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = ANY(%s)", (queued,)) == len(queued)


def test_metrics_have_the_design_names(api):
    text = metrics_text()
    for name in ["orders_received_total", "orders_matched_total", "orders_rejected_total", "trades_total",
                 "order_latency_seconds_bucket", "current_orderbook_depth", "websocket_connections",
                 "http_requests_total", "http_request_duration_seconds_bucket", "db_pool_connections",
                 "db_pool_queued_orders",
                 "group_commit_batch_size_bucket", "notify_lag_seconds", "redis_errors_total"]:
        assert f"\n{name}" in text, name
    assert metric(text, "orders_rejected_total", {"reason": "post_only_would_take"}) >= 1
    assert metric(text, "http_requests_total", {"route": "/orders/{id}", "method": "GET", "status": "200"}) >= 1
    assert metric(text, "current_orderbook_depth", {"instrument": "BTC-USD", "side": "buy"}) >= 1
    assert metric(text, "db_pool_connections", {"state": "connected"}) >= 1


def test_order_metrics_move_by_exactly_the_orders_answered(api, pg):
    """Each answered order counts once in its instrument's series (found once, then reused); the matched
    and trades series appear with the instrument's first trade; trades in the answer are exact strings."""
    symbol = "MTR-USD"
    with pg.connect() as conn:
        conn.execute("SELECT exchange.create_instrument(%s, 0.01, 1)", (symbol,))
    before = metrics_text()
    created = {"route": "/orders", "method": "POST", "status": "201"}
    assert metric(before, "orders_received_total", {"instrument": symbol}) == 0
    maker, taker = fresh_client("mtr"), fresh_client("mtr")
    first = post_order(order(maker, side="sell", price="10.00", quantity="3", instrument=symbol))
    assert first.status_code == 201 and first.json()["trades"] == [], first.text
    rested = metrics_text()
    assert metric(rested, "orders_received_total", {"instrument": symbol, "type": "limit", "side": "sell"}) == 1
    assert f'orders_matched_total{{instrument="{symbol}"}}' not in rested
    assert f'trades_total{{instrument="{symbol}"}}' not in rested
    answers = [post_order(order(taker, price="10.00", quantity="2", instrument=symbol)) for _ in range(2)]
    assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
    assert [(t["price"], t["quantity"], t["maker_order_id"]) for r in answers for t in r.json()["trades"]] == \
        [("10.00", "2", first.json()["order_id"]), ("10.00", "1", first.json()["order_id"])]
    after = metrics_text()
    assert metric(after, "orders_received_total", {"instrument": symbol, "type": "limit", "side": "buy"}) == 2
    assert metric(after, "orders_received_total", {"instrument": symbol, "type": "limit", "side": "sell"}) == 1
    assert metric(after, "orders_matched_total", {"instrument": symbol}) == 2
    assert metric(after, "trades_total", {"instrument": symbol}) == 2
    assert metric(after, "order_latency_seconds_count", {"instrument": symbol, "type": "limit"}) == 3
    assert metric(after, "http_requests_total", created) == metric(before, "http_requests_total", created) + 3


def test_an_instrument_beyond_the_servers_book_slots_answers_503_instrument_capacity(api, pg):
    """The test cluster keeps MAX_INSTRUMENTS order books in shared memory (exchange.max_instruments); an
    instrument takes a slot at its first order. New instruments, each with an order, until one finds no slot
    left: its order is 503 instrument_capacity (the extension's SQLSTATE 53400), saying what to raise, and
    nothing of it is written; an instrument with a book still trades. Late in the module: the slots stay
    taken until the server restarts."""
    assert post_order(order(fresh_client("cap"), price="1.00")).status_code == 201  # BTC-USD has its book
    for k in range(MAX_INSTRUMENTS + 1):
        symbol = f"CAP{k}-USD"
        pg.scalar("SELECT symbol FROM exchange.create_instrument(%s, 0.01, 0.0001)", (symbol,))
        client = fresh_client("cap")
        r = post_order(order(client, instrument=symbol, price="1.00"))
        if r.status_code != 201:
            break
    assert r.status_code == 503 and error_of(r) == "instrument_capacity", r.text
    assert "exchange.max_instruments" in r.json()["error"]["message"], r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 0
    assert post_order(order(fresh_client("cap"), price="1.00")).status_code == 201


def test_redis_outage_keeps_orders_and_idempotency_correct(api, pg, redis):
    client = fresh_client("nored")
    redis.stop()
    try:
        errors_before = metric(metrics_text(), "redis_errors_total")
        first = post_order(order(client, price="60.00", idempotency_key="r-1"))
        assert first.status_code == 201
        again = post_order(order(client, price="60.00", idempotency_key="r-1"))
        assert again.status_code == 200 and again.json()["order_id"] == first.json()["order_id"]
        assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 1
        assert metric(metrics_text(), "redis_errors_total") > errors_before
        # The in-process rate limit takes over.
        limited = fresh_client("nored-rl")
        with requests.Session() as s:
            codes = [s.get(f"{api}/orders", params={"client_id": limited}).status_code for _ in range(101)]
        assert codes == [200] * 100 + [429]
    finally:
        redis.start()
    # Reconnects by itself: the restarted Redis (empty) gets this client's keys again.
    deadline = time.monotonic() + 10
    for attempt in range(1000):
        r = post_order(order(client, price="60.00", idempotency_key=f"after-{attempt}"))
        assert r.status_code == 201
        if redis.cli("--scan", "--pattern", f"pgx:idem:*{client}:*"):
            break
        assert time.monotonic() < deadline, "the frontend did not reconnect to Redis"
        time.sleep(0.3)


def test_postgres_outage_is_a_fast_503_then_recovers(api, pg):
    client = fresh_client("nopg")
    pg.stop()
    try:
        for _ in range(3):
            started = time.monotonic()
            r = post_order(order(client))
            assert r.status_code == 503 and error_of(r) == "database_unavailable", r.text
            assert time.monotonic() - started < 2
        started = time.monotonic()
        r = requests.get(f"{api}/orders/{uuid.uuid4()}")
        assert r.status_code == 503 and time.monotonic() - started < 2
        started = time.monotonic()
        r = requests.delete(f"{api}/orders", params={"client_id": client})
        assert r.status_code == 503 and error_of(r) == "database_unavailable", r.text
        assert time.monotonic() - started < 2
        assert requests.get(f"{api}/readyz").status_code == 503
        assert requests.get(f"{api}/healthz").status_code == 200
    finally:
        pg.start()
    deadline = time.monotonic() + 15
    while True:
        r = post_order(order(client, idempotency_key="after-restart"))
        if r.status_code == 201:
            break
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        time.sleep(0.2)
    assert requests.get(f"{api}/readyz").status_code == 200


def test_a_read_only_database_answers_503_database_read_only(api, pg):
    """A database that takes no writes (a standby, or default_transaction_read_only, as when the frontend is
    pointed at the wrong server after a failover): POST /orders is 503 database_read_only (the trading
    function's own 25006, raised before it reads anything), not 500, and writes nothing; once the database
    takes writes again the same request places the order."""
    client = fresh_client("ro")
    body = order(client, side="buy", price="1.00")
    with pg.connect() as admin:  # read-write: opened before the setting
        admin.execute("ALTER DATABASE postgres SET default_transaction_read_only = on")
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'pgx-frontend'")
            deadline = time.time() + 20
            while True:  # the workers notice their lost connections, then connect again, read-only
                r = post_order(body)
                if r.status_code != 503 or error_of(r) != "database_unavailable" or time.time() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_read_only", r.text
            assert "read-only" in r.json()["error"]["message"], r.text
            assert admin.execute("SELECT count(*) FROM exchange.orders WHERE client_id = %s",
                                 (client,)).fetchone()[0] == 0
        finally:
            admin.execute("ALTER DATABASE postgres RESET default_transaction_read_only")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'pgx-frontend'")
    deadline = time.time() + 20
    while True:
        r = post_order(body)
        if r.status_code == 201 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201 and r.json()["status"] == "open", r.text


STANDBY_DIR = PG_DIR.parent / "fetest-standby"
STANDBY_PORT, STANDBY_HTTP, STANDBY_WS = PG_PORT + 3, 18040, 18041
STANDBY_POLL_MS = 20  # the standby frontend's --feed-poll-ms


class Standby:
    """A streaming standby of the test cluster and a pgx-frontend pointed at it."""
    dsn = f"host=127.0.0.1 port={STANDBY_PORT} user=postgres dbname=postgres"
    base = f"http://127.0.0.1:{STANDBY_HTTP}"
    ws_url = f"ws://127.0.0.1:{STANDBY_WS}/stream"
    log_path = PG_DIR.parent / "fetest-standby-frontend.log"  # kept for a post-mortem

    def journal_head(self, symbol="BTC-USD"):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute("SELECT seq FROM exchange.journal_heads() WHERE symbol = %s", (symbol,)).fetchone()[0]


def primary_journal_head(pg, symbol="BTC-USD"):
    return pg.scalar("SELECT seq FROM exchange.journal_heads() WHERE symbol = %s", (symbol,))


@pytest.fixture(scope="module")
def standby(api, pg):
    """One standby per module run (pg_basebackup -R of the test cluster, a read replica, on 127.0.0.1:PG_PORT+3)
    with its own pgx-frontend (REST 18040, WebSocket 18041, --feed-poll-ms 20); both stopped at the end, the
    frontend by SIGTERM, which it must survive with exit code 0."""
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    shutil.rmtree(STANDBY_DIR, ignore_errors=True)
    STANDBY_DIR.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(STANDBY_DIR, "postgres", "postgres")
    pg_bin = "/usr/lib/postgresql/15/bin"
    data = STANDBY_DIR / "data"
    fe = None
    try:
        subprocess.run(as_pg + [f"{pg_bin}/pg_basebackup", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
                                "-D", str(data), "-R", "-X", "stream", "-c", "fast"], check=True)
        subprocess.run(as_pg + ["tee", "-a", str(data / "postgresql.conf")], check=True, stdout=subprocess.DEVNULL,
                       input=f"port = {STANDBY_PORT}\nunix_socket_directories = '{STANDBY_DIR}'\n", text=True)
        subprocess.run(as_pg + [f"{pg_bin}/pg_ctl", "-D", str(data), "-l", str(STANDBY_DIR / "server.log"), "-o",
                                f"-p {STANDBY_PORT}", "-w", "-t", "60", "start"], check=True, stdout=subprocess.DEVNULL)
        fe = Process([str(FRONTEND), "--db", Standby.dsn, "--http-host", "127.0.0.1", "--http-port", str(STANDBY_HTTP),
                      "--ws-port", str(STANDBY_WS), "--redis", f"127.0.0.1:{REDIS_PORT}", "--log-level", "info",
                      "--no-auth", "--feed-poll-ms", str(STANDBY_POLL_MS)],
                     Standby.log_path, STANDBY_HTTP)
        yield Standby()
    finally:
        try:
            if fe is not None:
                assert fe.stop() == 0, f"the standby's frontend did not exit cleanly, see {fe.log_path}"
        finally:
            if (data / "postmaster.pid").exists():
                subprocess.run(as_pg + [f"{pg_bin}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                               stdout=subprocess.DEVNULL)
            shutil.rmtree(STANDBY_DIR, ignore_errors=True)


def test_a_frontend_on_a_standby_reads_and_refuses_what_needs_the_primary(api, pg, standby):
    """A second pgx-frontend pointed at a streaming standby of the test cluster (a read replica): what reads
    the tables answers as on the primary (GET /orders/{id}, GET /candles), and so does GET /orderbook (the
    extension, 0.16, answers a standby's book from the stored snapshots and the replicated journal): once the
    standby has replayed, the same levels, exact decimals and `seq` as the primary's frontend. An order is 503
    database_read_only (25006), saying why, with nothing written anywhere."""
    client = fresh_client("sb")
    placed = post_order(order(client, side="sell", price="999.00")).json()
    assert placed["status"] == "open", placed
    base = standby.base
    deadline = time.time() + 20
    while True:  # the standby has replayed the order
        got = requests.get(f"{base}/orders/{placed['order_id']}", timeout=10)
        if got.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert got.status_code == 200 and (got.json()["status"], got.json()["price"]) == ("open", "999.00"), got.text
    r = requests.get(f"{base}/candles", params={"instrument": "BTC-USD", "interval": "1d"}, timeout=10)
    assert r.status_code == 200 and "candles" in r.json(), r.text

    book = {"instrument": "BTC-USD", "levels": 10000}
    primary = requests.get(f"{BASE}/orderbook", params=book, timeout=10)
    assert primary.status_code == 200, primary.text
    primary = primary.json()
    assert primary["seq"] >= placed["seq"] and primary["asks"], primary
    assert any(level["price"] == "999.00" for level in primary["asks"]), primary
    deadline = time.time() + 20
    while True:  # the standby has replayed up to the primary's book
        r = requests.get(f"{base}/orderbook", params=book, timeout=10)
        if r.status_code != 200 or r.json()["seq"] >= primary["seq"] or time.time() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, f"GET /orderbook on the standby: {r.status_code} {r.text}"
    assert r.json() == primary, (r.json(), primary)

    r = requests.post(f"{base}/orders", json=order(client, side="buy", price="1.00"), timeout=10)
    assert r.status_code == 503 and error_of(r) == "database_read_only", r.text
    assert "read-only" in r.json()["error"]["message"], r.text
    assert pg.scalar("SELECT count(*) FROM exchange.orders WHERE client_id = %s", (client,)) == 1


def standby_burst(seed, midway, orders=40, cancels=2):
    """`orders` limit orders on BTC-USD through the primary's frontend, around 500.00 from a few clients (buys
    and sells overlapping by up to 1.80, so some cross), each placed alone, and `cancels` of them, open when
    placed, cancelled right after (at orders 15 and 30 or the next open one); midway() is called after half
    the orders. Returns the POST /orders answers, in order."""
    rng = random.Random(seed)
    clients = [fresh_client("sbf") for _ in range(4)]
    placed, cancelled = [], 0
    for i in range(orders):
        side = rng.choice(["buy", "sell"])
        cents = 50000 + rng.randint(-120, 120) + (-30 if side == "buy" else 30)
        r = post_order(order(rng.choice(clients), side=side, price=f"{cents // 100}.{cents % 100:02d}",
                             quantity=str(Decimal(rng.randint(1, 20000)) / 10000)))
        assert r.status_code == 201, r.text
        placed.append(r.json())
        if cancelled < cancels and i >= 15 * (cancelled + 1) and placed[-1]["status"] == "open":
            r = requests.delete(f"{BASE}/orders/{placed[-1]['order_id']}", timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
            cancelled += 1
        if i == orders // 2:
            midway()
        time.sleep(0.01)  # over half a second or so: several polls of the standby's feed
    assert cancelled == cancels, "not enough open orders to cancel"
    return placed


def test_the_feed_of_a_frontend_on_a_standby_follows_the_journal_by_polling(api, pg, standby):
    """The standby refuses LISTEN (25006 during recovery), so its frontend's feed polls the replicated journal
    (--feed-poll-ms) instead and says so once in its log: a WebSocket client of the standby's frontend gets a
    snapshot, then every entry of a burst placed on the primary (40 limit orders, some crossing, and 2 cancels)
    as deltas without a gap, and the trades; its book is then the primary's exchange.orderbook, its trades the
    primary's exchange.trades rows, in order. The feed's connection to the standby is killed in the middle of
    the burst: it connects again, is refused LISTEN again and catches up from where it was, polling on (the
    entries committed meanwhile are not missed). No notification is counted."""
    deadline = time.monotonic() + 20
    while standby.journal_head() != (head_before := primary_journal_head(pg)):  # the standby has replayed
        assert time.monotonic() < deadline, "the standby did not replay the primary's journal"
        time.sleep(0.1)

    def kill_the_feeds_connection():
        with psycopg.connect(standby.dsn, autocommit=True) as conn:
            killed = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  " WHERE application_name = 'pgx-feed-listen'").fetchall()
        assert killed == [(True,)], killed

    async def recv_json(ws, timeout=10.0):
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))

    async def scenario():
        ws = await websockets.connect(standby.ws_url, max_size=1 << 24, max_queue=None)
        await ws.send(json.dumps({"type": "subscribe", "channels": ["orderbook_deltas", "trades"],
                                  "instruments": ["BTC-USD"]}))
        ack = await recv_json(ws)
        assert ack["type"] == "subscribed", ack
        try:  # the loader answers once the feed is ready: follows the journal
            first = await recv_json(ws)
        except asyncio.TimeoutError:
            raise AssertionError(f"no snapshot from the standby's feed in 10 s, see {standby.log_path}") from None
        assert first["type"] == "snapshot" and first["instrument"] == "BTC-USD", (
            f"no snapshot from the standby's feed: {first}")
        book = BookCopy(first)
        assert book.seq == head_before, (book.seq, head_before)
        placed = await asyncio.to_thread(standby_burst, 11, kill_the_feeds_connection)
        head = primary_journal_head(pg)
        assert head == head_before + 42, (head_before, head)  # one journal entry per order and per cancel
        deltas, trades = [], []
        loop = asyncio.get_running_loop()
        until = loop.time() + 20
        while book.seq < head:  # deltas and trades until the client has the primary's journal head
            assert loop.time() < until, f"the standby's feed stopped at {book.seq}, the primary is at {head}"
            msg = await recv_json(ws, max(0.1, until - loop.time()))
            if msg["type"] == "delta":
                deltas.append(msg["seq"])
                book.apply(msg)  # asserts the sequence has no gap
            elif msg["type"] == "trade":
                trades.append(msg)
            else:
                raise AssertionError(f"unexpected {msg}")
        await ws.send(json.dumps({"type": "ping"}))  # the trades of the last entry, up to the pong
        while (msg := await recv_json(ws))["type"] != "pong":
            assert msg["type"] == "trade", msg
            trades.append(msg)
        await ws.close()
        return book, deltas, trades, placed, head

    book, deltas, trades, placed, head = asyncio.run(scenario())
    assert deltas == list(range(head_before + 1, head + 1))
    with pg.connect() as conn:
        rows = conn.execute("SELECT side, price, quantity, order_count FROM exchange.orderbook('BTC-USD', 1000)")
        expected = {(side, Decimal(price)): (Decimal(qty), count) for side, price, qty, count in rows.fetchall()}
        primary_trades = conn.execute(
            "SELECT trade_id::text, price, quantity, seq FROM exchange.trades "
            " WHERE instrument = 'BTC-USD' AND seq > %s ORDER BY seq, trade_no", (head_before,)).fetchall()
    assert all(sum(1 for s, _ in expected if s == side) < 1000 for side in ("buy", "sell"))  # not cut at 1000
    assert any(Decimal("498") <= price <= Decimal("502") for _, price in expected), expected  # the burst's levels
    assert book.levels == expected
    assert len(primary_trades) >= 3, primary_trades  # some crossed
    assert [(t["trade_id"], Decimal(t["price"]), Decimal(t["quantity"]), t["seq"]) for t in trades] == [
        tuple(row) for row in primary_trades]
    assert all(isinstance(t["price"], str) and isinstance(t["quantity"], str) for t in trades)
    assert [t["trade_id"] for t in trades] == [t["trade_id"] for o in placed for t in o["trades"]]

    text = requests.get(f"{standby.base}/metrics", timeout=10).text
    assert "\nfeed_notifications_total " in text and "\nfeed_listen_reconnects_total " in text, text
    assert metric(text, "feed_notifications_total") == 0
    assert metric(text, "feed_listen_reconnects_total") == 1
    assert metric(text, "feed_journal_entries_read_total") >= 42
    log = standby.log_path.read_text()
    announced = (r" info \[\d+\] feed: the database is in recovery \(a standby\): LISTEN refused, following the "
                 rf"journal every {STANDBY_POLL_MS} ms\n")
    assert len(re.findall(announced, log)) == 1, log  # once, not again on reconnecting
    assert len(re.findall(r" warning \[\d+\] feed: LISTEN connection lost", log)) == 1, log
    assert len(re.findall(r" info \[\d+\] feed: following the journal of \d+ instruments every "
                          rf"{STANDBY_POLL_MS} ms \(reconnected, caught up\)\n", log)) == 1, log
    assert "listening on exchange_events" not in log, log
