"""Settlement (0.16) while trading goes on (part of make test).

Four sessions trade three instruments in batches, each transaction stamped
by its session's own clock: the journal's and the trades' time columns
default to the setting race.now when a session sets it (the trading
functions stamp now(); a column default is what they write). The clocks
run from 2020-01-01 over three days, each session's at its own pace and now
and then a few minutes back (a transaction that started earlier), so the
journal of an instrument gets entries stamped before midnight after entries
stamped after it, and a transaction sometimes waits a little before its
commit while holding its instrument. Two more sessions call settle() on the
dates as the traders pass them, racing each other and the traders.

Afterwards, with everything settled through 2020-01-09, for each instrument:
the settled dates' ranges cover the journal from seq 1 to its last entry,
one after the other (so no entry was settled twice or left out), the dates
grow along the journal, no entry is settled on a date before its own
stamp, the dates' trade counts, volumes and notionals add up to the trade
register's, and every client's positions summed over the dates equal its
trades; and reconcile() reports nothing. Every settle() call must succeed.

Usage: settlement_race_test.py DSN [transactions per trader]
(the database must not have the extension)
"""
import random
import sys
import threading
import time

import psycopg

from race_clock import LAST_DATE, first_clock, prepare, race, stamped, tick

INSTRUMENTS = ["R1", "R2", "R3"]


def fail(message):
    print(f"settlement race: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    dsn = sys.argv[1]
    per_trader = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    prepare(dsn, INSTRUMENTS)

    errors = []
    clocks = {}
    settled = []
    done = threading.Event()

    def trader(n):
        rng = random.Random(1000 + n)
        clock = first_clock(rng)
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for _ in range(per_trader):
                    clock, stamp = tick(rng, clock)
                    clocks[n] = clock
                    symbol = rng.choice(INSTRUMENTS)
                    orders = [{"client_id": f"t{n}c{rng.randrange(6)}", "instrument": symbol,
                               "side": rng.choice(["buy", "sell"]), "type": "limit",
                               "quantity": rng.randrange(1, 5), "price": str(100 + rng.randrange(-4, 5) / 2)}
                              for _ in range(rng.randrange(1, 12))]
                    with c.transaction():
                        stamped(c, stamp)
                        c.execute("SELECT count(*) FROM exchange.place_orders(%s::jsonb)",
                                  (psycopg.types.json.Jsonb(orders),))
                        if rng.random() < 0.1:
                            time.sleep(rng.random() * 0.005)
        except Exception as e:  # noqa: BLE001
            errors.append(f"trader {n}: {e!r}")

    race(dsn, trader, [], clocks, done, settled, errors, fail)

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SELECT count(*) FROM exchange.settle(%s)", (LAST_DATE,))
        q = lambda sql, *args: c.execute(sql, args).fetchall()  # noqa: E731
        days_during = sum(1 for _, rows in settled if rows)
        if days_during == 0:
            fail("no settle() call during the trading settled anything: the race did not happen")
        for symbol in INSTRUMENTS:
            (last_seq,), = q("SELECT max(e.seq) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)"
                             " WHERE i.symbol = %s", symbol)
            days = q("SELECT trade_date, from_seq, to_seq FROM exchange.settlement_days WHERE instrument = %s"
                     " ORDER BY from_seq", symbol)
            expect = 1
            previous = None
            for day, lo, hi in days:
                if lo != expect:
                    fail(f"{symbol}: the date {day} starts at entry {lo}, not {expect}")
                if previous is not None and day <= previous:
                    fail(f"{symbol}: the date {day} follows {previous} along the journal")
                expect, previous = hi + 1, day
            if expect != last_seq + 1:
                fail(f"{symbol}: the settled dates end at entry {expect - 1}, the journal at {last_seq}")
            early = q("SELECT d.trade_date, e.seq, e.created_at FROM exchange.settlement_days d"
                      " JOIN exchange.events e ON e.instrument_id = d.instrument_id"
                      "  AND e.seq BETWEEN d.from_seq AND d.to_seq"
                      " WHERE d.instrument = %s AND (e.created_at AT TIME ZONE 'UTC')::date > d.trade_date", symbol)
            if early:
                fail(f"{symbol}: entries settled on a date before their stamp: {early[:3]}")
            totals = q("SELECT (SELECT row(sum(trade_count), sum(volume), sum(notional))::text"
                       "          FROM exchange.settlement_days WHERE instrument = %s),"
                       "       (SELECT row(count(*), sum(quantity), sum(price * quantity))::text"
                       "          FROM exchange.trades WHERE instrument = %s)", symbol, symbol)[0]
            if totals[0] != totals[1]:
                fail(f"{symbol}: the dates' trades, volume and notional {totals[0]}, the register's {totals[1]}")
        positions = q("""
            WITH settled AS (
                SELECT instrument, client_id, sum(bought_quantity) AS b, sum(bought_notional) AS bn,
                       sum(sold_quantity) AS s, sum(sold_notional) AS sn
                  FROM exchange.settlements GROUP BY 1, 2
            ), traded AS (
                SELECT instrument, client_id, sum(q) FILTER (WHERE side = 'buy') AS b,
                       sum(q * p) FILTER (WHERE side = 'buy') AS bn,
                       sum(q) FILTER (WHERE side = 'sell') AS s, sum(q * p) FILTER (WHERE side = 'sell') AS sn
                  FROM exchange.trades t
                 CROSS JOIN LATERAL (VALUES (t.buy_client_id, 'buy', t.quantity, t.price),
                                            (t.sell_client_id, 'sell', t.quantity, t.price)) AS x(client_id, side, q, p)
                 GROUP BY 1, 2
            )
            SELECT coalesce(a.instrument, b.instrument), coalesce(a.client_id, b.client_id)
              FROM settled a FULL JOIN traded b ON a.instrument = b.instrument AND a.client_id = b.client_id
             WHERE (a.b, a.bn, a.s, a.sn) IS DISTINCT FROM
                   (coalesce(b.b, 0), coalesce(b.bn, 0), coalesce(b.s, 0), coalesce(b.sn, 0))""")
        if positions:
            fail(f"positions summed over the dates differ from the trades for {positions[:5]}")
        problems = q("SELECT * FROM exchange.reconcile()")
        if problems:
            fail(f"reconcile: {problems[:5]}")
        (n_days,), = q("SELECT count(*) FROM exchange.settlement_days")
        (n_trades,), = q("SELECT count(*) FROM exchange.trades")
        late, = q("""SELECT count(*) FROM exchange.settlement_days d
                      JOIN exchange.events e ON e.instrument_id = d.instrument_id
                       AND e.seq BETWEEN d.from_seq AND d.to_seq
                     WHERE (e.created_at AT TIME ZONE 'UTC')::date < d.trade_date""")[0]
    print(f"settlement race: {n_trades} trades on {len(INSTRUMENTS)} instruments settled on {n_days} instrument-dates, "
          f"{days_during} of {len(settled)} settle() calls during the trading settled dates, {late} entries "
          f"settled on a date after their stamp's; ranges contiguous, totals and positions equal the trades, "
          f"reconcile empty")


if __name__ == "__main__":
    main()
