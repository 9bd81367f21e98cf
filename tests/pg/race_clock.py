"""What the settlement and prune race tests share (settlement_race_test.py, prune_race_test.py).

Each session stamps its transactions with its own clock: the journal's and the trades' time columns
default to the setting race.now when a session sets it (the trading functions stamp now(); a column
default is what they write). The clocks run from START, each at its own pace and now and then a few
minutes back (a transaction that started earlier), and must stay before LAST_DATE. Settlers call
settle() on the dates the traders are on or have just left.
"""
import datetime
import random
import threading
import time

import psycopg

START = datetime.datetime(2020, 1, 1, 20, 0, tzinfo=datetime.timezone.utc)
LAST_DATE = datetime.date(2020, 1, 9)


def prepare(dsn, instruments):
    """The extension, the instruments (tick 0.5, lot 1) and the clock defaults."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION exchange")
        for s in instruments:
            c.execute("SELECT exchange.create_instrument(%s, 0.5, 1)", (s,))
        for table, column in (("events", "created_at"), ("trades", "executed_at")):
            c.execute(f"ALTER TABLE exchange.{table} ALTER {column} SET DEFAULT "
                      "coalesce(nullif(current_setting('race.now', true), '')::timestamptz, now())")


def first_clock(rng):
    return START + datetime.timedelta(minutes=rng.randrange(0, 90))


def tick(rng, clock):
    """The session's clock moved on, and the stamp of its next transaction: now and then a transaction
    that started a little earlier."""
    clock += datetime.timedelta(minutes=rng.randrange(0, 60))
    stamp = clock - datetime.timedelta(minutes=rng.randrange(1, 20)) if rng.random() < 0.2 else clock
    return clock, stamp


def stamped(c, stamp):
    """In a transaction: what it writes from now on is stamped `stamp`."""
    c.execute("SELECT set_config('race.now', %s, true)", (stamp.isoformat(),))


def settler(dsn, n, clocks, done, settled, errors):
    """Till `done`: settle() a date some trader (its clock in `clocks`) is still on, or has just left;
    appends (date, rows) to `settled`, an error to `errors`."""
    rng = random.Random(2000 + n)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            while not done.is_set():
                time.sleep(rng.random() * 0.05)
                if not clocks:
                    continue
                day = min(clocks.values()).date() - datetime.timedelta(days=rng.randrange(0, 2))
                rows = c.execute("SELECT trade_date, instrument FROM exchange.settle(%s)", (day,)).fetchall()
                settled.append((day, len(rows)))
    except Exception as e:  # noqa: BLE001
        errors.append(f"settler {n}: {e!r}")


def race(dsn, trader, others, clocks, done, settled, errors, fail):
    """Four traders (trader(n)), two settlers and the `others` (functions of no argument) at once, until
    the traders are done; then fails on any session's error or a clock past LAST_DATE."""
    traders = [threading.Thread(target=trader, args=(n,)) for n in range(4)]
    rest = [threading.Thread(target=settler, args=(dsn, n, clocks, done, settled, errors)) for n in range(2)]
    rest += [threading.Thread(target=f) for f in others]
    for t in traders + rest:
        t.start()
    for t in traders:
        t.join()
    done.set()
    for t in rest:
        t.join()
    if errors:
        fail("; ".join(errors))
    if max(clocks.values()).date() >= LAST_DATE:
        fail(f"the clocks ran past {LAST_DATE}: {max(clocks.values())}")
