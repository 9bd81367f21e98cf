"""GET /settlements: a client's positions on a settled trade date (extension 0.16), end to end.

The module's trades are placed through POST /orders on two past UTC trade dates (2020-03-02 and
2020-03-03: the trading functions stamp now(), so the journal's and the trade register's column
defaults are set to those times around the orders, as the regress tests do), then settled once
through 2020-03-03 by the administrator. A settled date never changes and settle() settles every
instrument, so nothing else in this module trades on those dates.

The REST cluster, Redis and frontend (no API keys) of rest_fixtures.py; the API key tests start a
second frontend on the same database and Redis with keys on (REST 18020, WS 18021), logged in as a
member of exchange_trader, the role exchange.settlement is granted to.
"""
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from harness import FRONTEND, Process
from rest_fixtures import (BASE, PG_DIR, PG_PORT, REDIS_PORT, api, fresh_client, order, pg, post_order,  # noqa: F401
                           redis)

DAY1, DAY2 = "2020-03-02", "2020-03-03"
STLA, STLB = "STLA-USD", "STLB-USD"  # names that sort the same in every collation
INSTRUMENTS = {STLA: ("0.01", "0.001"), STLB: ("0.5", "1")}
KEYED_HTTP_PORT, KEYED_WS_PORT = 18020, 18021
KEYED_ROLE = "pgx_settlement_test"
KEYED_BASE = f"http://127.0.0.1:{KEYED_HTTP_PORT}"
NUMERIC_COLUMNS = ("bought_quantity", "bought_notional", "sold_quantity", "sold_notional", "net_quantity",
                   "net_notional", "maker_quantity", "taker_quantity")


def error_of(r):
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def get(params, base=BASE, headers=None):
    return requests.get(f"{base}/settlements", params=params, headers=headers or {}, timeout=10)


def set_clock(conn, ts):
    """The time the journal entries and trades written from now on are stamped with (None: now())."""
    value = "now()" if ts is None else f"'{ts}'::timestamptz"
    conn.execute(f"ALTER TABLE exchange.events ALTER created_at SET DEFAULT {value}")
    conn.execute(f"ALTER TABLE exchange.trades ALTER executed_at SET DEFAULT {value}")


def test_settlements_before_extension_0_16_is_501(api, pg):
    """Against a database whose extension predates 0.16 (the function hidden by a rename): 501
    extension_outdated; once it is back, the same request is answered (here: nothing settled yet)."""
    params = {"date": DAY1, "client_id": fresh_client("old")}
    with pg.connect() as conn:
        conn.execute("ALTER FUNCTION exchange.settlement(date, text, text) RENAME TO settlement_hidden")
    try:
        r = get(params)
        assert r.status_code == 501 and error_of(r) == "extension_outdated", r.text
    finally:
        with pg.connect() as conn:
            conn.execute("ALTER FUNCTION exchange.settlement_hidden(date, text, text) RENAME TO settlement")
    r = get(params)
    assert r.status_code == 404 and error_of(r) == "not_settled", r.text
    assert "none" in r.json()["error"]["message"], r.text  # settled through: none yet


# Each step: (trade date, client, instrument, side, price, quantity, the trades it makes as
# (price, quantity, the resting order's client)). The resting order's side is the maker side.
def plan(buyer, seller, third):
    b, s, c = buyer, seller, third
    return [
        (DAY1, s, STLA, "sell", "50.25", "2.000", []),
        (DAY1, b, STLA, "buy", "50.50", "0.500", [("50.25", "0.500", s)]),
        (DAY1, b, STLA, "buy", "50.25", "0.250", [("50.25", "0.250", s)]),
        (DAY1, b, STLB, "sell", "10.5", "3", []),
        (DAY1, s, STLB, "buy", "11.0", "1", [("10.5", "1", b)]),
        # s's sell from DAY1 goes on trading on DAY2: its trades are DAY2's.
        (DAY2, c, STLA, "buy", "50.25", "1.000", [("50.25", "1.000", s)]),
        (DAY2, b, STLA, "buy", "50.30", "0.125", [("50.25", "0.125", s)]),
        (DAY2, b, STLA, "sell", "51.10", "0.200", []),
        (DAY2, c, STLA, "buy", "51.15", "0.300", [("50.25", "0.125", s), ("51.10", "0.175", b)]),
        (DAY2, c, STLB, "buy", "10.5", "2", [("10.5", "2", b)]),
    ]


def expected_positions(steps):
    """{(date, client): [row, ...]} computed from the planned trades as exchange.settlements defines
    them (Decimal keeps PostgreSQL's numeric scales: a product adds them, a sum keeps the largest)."""
    zero = Decimal("0")
    acc = defaultdict(lambda: {"bought_quantity": zero, "bought_notional": zero, "sold_quantity": zero,
                               "sold_notional": zero, "maker_quantity": zero, "taker_quantity": zero,
                               "trade_count": 0})
    for day, client, instrument, side, _, _, trades in steps:
        for price, quantity, maker in trades:
            p, q = Decimal(price), Decimal(quantity)
            buyer, seller = (client, maker) if side == "buy" else (maker, client)
            for who, bought in ((buyer, True), (seller, False)):
                a = acc[(day, who, instrument)]
                a["bought_quantity" if bought else "sold_quantity"] += q
                a["bought_notional" if bought else "sold_notional"] += q * p
                a["taker_quantity" if who == client else "maker_quantity"] += q
                a["trade_count"] += 1
    out = defaultdict(list)
    for (day, client, instrument), a in sorted(acc.items()):
        row = {"instrument": instrument, **a}
        row["net_quantity"] = a["bought_quantity"] - a["sold_quantity"]
        row["net_notional"] = a["sold_notional"] - a["bought_notional"]
        out[(day, client)].append({k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in row.items()})
    return out


@pytest.fixture(scope="module")
def settled(api, pg):
    """The planned orders placed on DAY1 and DAY2 through the frontend, then settled through DAY2:
    the clients and the expected positions."""
    clients = {"buyer": fresh_client("sb"), "seller": fresh_client("ss"), "third": fresh_client("st"),
               "idle": fresh_client("si")}
    steps = plan(clients["buyer"], clients["seller"], clients["third"])
    with pg.connect() as conn:
        for symbol, (tick, lot) in INSTRUMENTS.items():
            conn.execute("SELECT exchange.create_instrument(%s, %s::numeric, %s::numeric)", (symbol, tick, lot))
    with pg.connect() as conn:
        try:
            clock = None
            for day, client, instrument, side, price, quantity, trades in steps:
                if day != clock:
                    set_clock(conn, f"{day} {'10:00' if day == DAY1 else '09:00'}+00")
                    clock = day
                r = post_order(order(client, side=side, price=price, quantity=quantity, instrument=instrument))
                assert r.status_code == 201, r.text
                made = [(t["price"], t["quantity"]) for t in r.json()["trades"]]
                assert made == [(p, q) for p, q, _ in trades], (day, client, side, r.text)
        finally:
            set_clock(conn, None)
        # Every entry of the two instruments carries its planned date.
        dates = conn.execute(
            "SELECT i.symbol, (e.created_at AT TIME ZONE 'UTC')::date::text, count(*) FROM exchange.events e "
            "JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol LIKE 'STL%%' GROUP BY 1, 2 "
            "ORDER BY 1, 2").fetchall()
        assert [(s, d) for s, d, _ in dates] == [(STLA, DAY1), (STLA, DAY2), (STLB, DAY1), (STLB, DAY2)], dates
        days = conn.execute("SELECT instrument, trade_date::text FROM exchange.settle(%s) ORDER BY 1, 2",
                            (DAY2,)).fetchall()
        assert days == [(STLA, DAY1), (STLA, DAY2), (STLB, DAY1), (STLB, DAY2)], days
    return clients, expected_positions(steps)


def test_each_clients_positions_on_each_date_are_its_trades(settled):
    """The buyer's, the seller's and the third client's answer for each date: every quantity and notional
    as the exact decimal its trades make, trade_count a number; a client without trades that day has an
    empty list, also on a settled date before the first trade."""
    clients, expected = settled
    b, s, c = clients["buyer"], clients["seller"], clients["third"]
    # The plan gives each of them rows where the test expects them (a wrong plan would pass vacuously).
    assert [row["instrument"] for row in expected[(DAY1, b)]] == [STLA, STLB]
    assert [row["instrument"] for row in expected[(DAY2, b)]] == [STLA, STLB]
    assert [row["instrument"] for row in expected[(DAY2, s)]] == [STLA]
    assert (DAY1, c) not in expected and [row["instrument"] for row in expected[(DAY2, c)]] == [STLA, STLB]
    for day in (DAY1, DAY2):
        for client in (b, s, c):
            r = get({"date": day, "client_id": client})
            assert r.status_code == 200, r.text
            assert r.json() == {"trade_date": day, "client_id": client,
                                "settlements": expected.get((day, client), [])}, (day, client)
            for row in r.json()["settlements"]:
                assert all(isinstance(row[k], str) for k in NUMERIC_COLUMNS) and type(row["trade_count"]) is int

    # A few values spelled out, so that a mistake shared by the computation and the server shows.
    day1_buyer = get({"date": DAY1, "client_id": b}).json()["settlements"]
    assert day1_buyer[0] == {"instrument": STLA, "bought_quantity": "0.750", "bought_notional": "37.68750",
                             "sold_quantity": "0", "sold_notional": "0", "net_quantity": "0.750",
                             "net_notional": "-37.68750", "maker_quantity": "0", "taker_quantity": "0.750",
                             "trade_count": 2}
    assert day1_buyer[1]["sold_notional"] == "10.5" and day1_buyer[1]["maker_quantity"] == "1"
    day2_buyer = get({"date": DAY2, "client_id": b}).json()["settlements"]
    assert day2_buyer[0]["net_quantity"] == "-0.050" and day2_buyer[0]["trade_count"] == 2

    for day in ("2020-03-01", DAY1, DAY2):
        r = get({"date": day, "client_id": clients["idle"]})
        assert r.status_code == 200 and r.json() == {"trade_date": day, "client_id": clients["idle"],
                                                     "settlements": []}, r.text
    r = get({"date": "2020-03-01", "client_id": b})
    assert r.status_code == 200 and r.json()["settlements"] == [], r.text


def test_the_instrument_filter(settled):
    clients, expected = settled
    b, s = clients["buyer"], clients["seller"]
    for day, client, instrument in ((DAY1, b, STLA), (DAY1, b, STLB), (DAY2, b, STLB), (DAY2, s, STLA)):
        r = get({"date": day, "client_id": client, "instrument": instrument})
        want = [row for row in expected[(day, client)] if row["instrument"] == instrument]
        assert len(want) == 1 and r.status_code == 200 and r.json()["settlements"] == want, r.text
    # The seller did not trade STLB-USD on DAY2: an empty list, not the other instrument's row.
    r = get({"date": DAY2, "client_id": s, "instrument": STLB})
    assert r.status_code == 200 and r.json()["settlements"] == [], r.text


def test_the_answer_is_the_databases_settlement(settled, pg):
    """Each row is exchange.settlement's, read directly, with every numeric as PostgreSQL prints it."""
    clients, _ = settled
    compared = 0
    for day in (DAY1, DAY2):
        for client in (clients["buyer"], clients["seller"], clients["third"]):
            with pg.connect() as conn:
                rows = conn.execute(
                    "SELECT instrument, bought_quantity::text, bought_notional::text, sold_quantity::text, "
                    "sold_notional::text, net_quantity::text, net_notional::text, maker_quantity::text, "
                    "taker_quantity::text, trade_count FROM exchange.settlement(%s::date, %s)",
                    (day, client)).fetchall()
            got = get({"date": day, "client_id": client}).json()["settlements"]
            assert [tuple(row.values()) for row in got] == [tuple(row) for row in rows], (day, client)
            compared += len(rows)
    assert compared == 9  # the plan's rows: 2 + 2 + 0 on DAY1, 2 + 1 + 2 on DAY2


def test_refusals(settled):
    """A date not settled yet is 404 not_settled (naming the date settled through); a missing or malformed
    date 400; an unknown instrument the routes' unknown_instrument; no client_id (no API keys) 400."""
    clients, _ = settled
    client = clients["seller"]
    today = datetime.now(timezone.utc).date()
    for day in ("2020-03-04", str(today - timedelta(days=1)), str(today), "9999-12-31"):
        r = get({"date": day, "client_id": client})
        assert r.status_code == 404 and error_of(r) == "not_settled", (day, r.text)
        assert day in r.json()["error"]["message"] and DAY2 in r.json()["error"]["message"], r.text
    for params in ({"client_id": client}, {"client_id": client, "date": ""}):
        r = get(params)
        assert r.status_code == 400 and error_of(r) == "missing_parameter", (params, r.text)
        assert "'date'" in r.json()["error"]["message"]
    for day in ("2020-13-01", "2020-02-30", "2019-02-29", "2020-00-10", "2020-03-00", "0000-01-01", "yesterday",
                "2020-3-4", "2020-03-4", "2020/03/02", "20200302", "2020-03-02T00:00:00Z", " 2020-03-02",
                "2020-03-02 ", "+020-03-02", "2020-03-0x"):
        r = get({"date": day, "client_id": client})
        assert r.status_code == 400 and error_of(r) == "invalid_date", (day, r.text)
        assert "YYYY-MM-DD" in r.json()["error"]["message"], r.text
    # 2020 is a leap year: its 29 February is a (settled, here empty) trade date.
    r = get({"date": "2020-02-29", "client_id": client})
    assert r.status_code == 200 and r.json()["settlements"] == [], r.text
    for day in (DAY1, "2020-03-04"):  # before the date is looked at
        r = get({"date": day, "client_id": client, "instrument": "NOPE-USD"})
        assert r.status_code == 400 and error_of(r) == "unknown_instrument", r.text
        assert "NOPE-USD" in r.json()["error"]["message"]
    # An empty instrument is no instrument, never "every instrument".
    r = get({"date": DAY1, "client_id": client, "instrument": ""})
    assert r.status_code == 400 and error_of(r) == "unknown_instrument", r.text
    for params in ({"date": DAY1}, {"date": DAY1, "client_id": ""}):
        r = get(params)
        assert r.status_code == 400 and error_of(r) == "missing_parameter", (params, r.text)
        assert "'client_id'" in r.json()["error"]["message"]
    r = requests.post(f"{BASE}/settlements", params={"date": DAY1, "client_id": client}, timeout=10)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


@pytest.fixture(scope="module")
def keyed(settled, pg, redis):
    """A second frontend with API keys on, logged in as a member of exchange_trader, and keys of the
    buyer and the seller."""
    clients, _ = settled
    with pg.connect() as conn:
        conn.execute(f"CREATE ROLE {KEYED_ROLE} LOGIN IN ROLE exchange_trader")
        keys = {who: conn.execute("SELECT api_key FROM exchange.create_api_key(%s)", (clients[who],)).fetchone()[0]
                for who in ("buyer", "seller")}
    dsn = f"host=127.0.0.1 port={PG_PORT} user={KEYED_ROLE} dbname=postgres"
    fe = Process([str(FRONTEND), "--db", dsn, "--http-host", "127.0.0.1", "--http-port", str(KEYED_HTTP_PORT),
                  "--ws-port", str(KEYED_WS_PORT), "--redis", f"127.0.0.1:{REDIS_PORT}", "--log-level", "info"],
                 PG_DIR / "settlement-keyed-frontend.log", KEYED_HTTP_PORT)
    try:
        yield keys
    finally:
        code = fe.stop()
        assert code == 0, f"pgx-frontend exited with {code}, see {fe.log_path}"


def test_with_api_keys_a_client_sees_only_its_own_settlement(settled, keyed):
    """With a key, the key's client's positions (the trader role may call exchange.settlement); another
    client's client_id is 403 client_mismatch, its own is allowed; without a key 401."""
    clients, expected = settled
    for who in ("buyer", "seller"):
        client, key = clients[who], {"X-API-Key": keyed[who]}
        for day in (DAY1, DAY2):
            for params in ({"date": day}, {"date": day, "client_id": client}):
                r = get(params, base=KEYED_BASE, headers=key)
                assert r.status_code == 200, r.text
                assert r.json() == {"trade_date": day, "client_id": client,
                                    "settlements": expected[(day, client)]}, (who, params)
        other = clients["seller" if who == "buyer" else "buyer"]
        r = get({"date": DAY1, "client_id": other}, base=KEYED_BASE, headers=key)
        assert r.status_code == 403 and error_of(r) == "client_mismatch", r.text
        r = get({"date": "2020-03-04"}, base=KEYED_BASE, headers=key)
        assert r.status_code == 404 and error_of(r) == "not_settled", r.text
    r = get({"date": DAY1, "client_id": clients["buyer"]}, base=KEYED_BASE)
    assert r.status_code == 401 and error_of(r) == "missing_api_key", r.text
