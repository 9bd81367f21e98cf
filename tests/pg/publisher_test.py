"""The NOTIFY publisher (extension/pg/publisher.h), part of make test.

A committing transaction that changed a book need not send NOTIFY itself (it
would take PostgreSQL's NOTIFY lock); its database's background worker sends
"instrument_id:first_seq:last_seq" for everything committed since its last
notification. Checked here, against the real server:
  - with exchange.notify_publisher = always the notifications come from the
    publisher, not from the trader, and name exactly the committed ranges:
    nothing of an aborted transaction or a rolled-back savepoint;
  - under four concurrent traders on two instruments the ranges of each
    instrument are contiguous, cover its whole journal, and never repeat,
    both with `always` and with `auto`;
  - with `auto` a lone trader notifies by itself, and one that finds the
    NOTIFY lock held by another session (whose commit waits for a
    synchronous standby) leaves its ranges to the publisher, which sends
    them once the lock is free; exchange.stats() shows them as not yet
    announced (seq - published_seq) meanwhile, and 0 after;
  - commits at uneven gaps are each announced well before the publisher's
    500 ms fallback look (no lost wake-up), with the publisher polling
    (exchange.publisher_poll_ms 1, the default, and 10) between rounds; with
    50 ms a second of commits is announced in a notification per 50 ms;
  - with `off` the transaction notifies by itself;
  - a publisher terminated with a range still to send is started again by
    the postmaster, and the range goes out without another commit;
  - a publisher terminated by an administrator is replaced at the next
    commit, and what was committed meanwhile is still announced;
  - an idle publisher leaves its database within a few seconds, and the
    next commit starts a new one;
  - DROP DATABASE of a database whose publisher is connected works (the
    publisher leaves at once instead of after its idle time).

Usage: publisher_test.py DSN   (DSN of a maintenance database; the test
creates and drops database exchange_publisher)
"""
import os
import random
import select
import signal
import sys
import threading
import time

import psycopg

DB = "exchange_publisher"


def fail(msg):
    if len(msg) > 2000:
        msg = msg[:2000] + f"... ({len(msg)} characters)"
    print(f"FAIL: publisher: {msg}", file=sys.stderr)
    sys.exit(1)


def connect(dsn, mode=None, **kw):
    if mode is not None:
        dsn += f" options='-c exchange.notify_publisher={mode}'"
    return psycopg.connect(dsn, autocommit=True, **kw)


class Listener:
    def __init__(self, dsn):
        self.conn = connect(dsn)
        self.got = []
        self.conn.add_notify_handler(lambda n: self.got.append((n.pid, n.payload)))
        self.conn.execute("LISTEN exchange_events")

    def collect(self, seconds, until=None):
        """Notifications received within `seconds` (or until `until(got)`)."""
        deadline = time.time() + seconds
        while time.time() < deadline and not (until and until(self.got)):
            select.select([self.conn.fileno()], [], [], 0.05)
            self.conn.execute("SELECT 1")
        out, self.got = self.got, []
        return out


def ranges(notes):
    out = {}
    for _, payload in notes:
        inst, first, last = (int(x) for x in payload.split(":"))
        out.setdefault(inst, []).append((first, last))
    return out


def covered(notes, inst, last):
    return any(r[1] >= last for r in ranges(notes).get(inst, []))


def unannounced(conn, symbol, settle=False):
    """exchange.stats(): journal entries of the instrument not yet announced.
    With settle, waits up to 5 s for 0 (the publisher records a range as
    sent just after its notifying transaction commits)."""
    deadline = time.time() + 5
    while True:
        n = conn.execute("SELECT seq - published_seq FROM exchange.stats() WHERE instrument = %s",
                         (symbol,)).fetchone()[0]
        if not settle or n == 0 or time.time() > deadline:
            return n
        time.sleep(0.02)


def publisher_pids(conn):
    return [r[0] for r in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'exchange notify publisher'")]


def main(dsn_admin):
    admin = connect(dsn_admin)
    admin.execute(f"DROP DATABASE IF EXISTS {DB}")
    admin.execute(f"CREATE DATABASE {DB}")
    dsn = dsn_admin + f" dbname={DB}"
    trader = connect(dsn, "always")
    trader.execute("CREATE EXTENSION exchange")
    ids = {}
    for sym in ("P1", "P2"):
        trader.execute("SELECT exchange.create_instrument(%s, 1, 1)", (sym,))
        ids[sym] = trader.execute("SELECT instrument_id FROM exchange.instruments WHERE symbol = %s",
                                  (sym,)).fetchone()[0]
    trader_pid = trader.execute("SELECT pg_backend_pid()").fetchone()[0]
    listener = Listener(dsn)
    place = "SELECT status FROM exchange.place_order(%s, %s, %s, 'limit', 1, %s)"

    # One transaction, three orders on two instruments: 1:1:2 and 2:1:1, from the publisher.
    with trader.transaction():
        trader.execute(place, ("a", "P1", "buy", 10))
        trader.execute(place, ("a", "P1", "sell", 12))
        trader.execute(place, ("a", "P2", "buy", 10))
    got = listener.collect(10, lambda g: covered(g, ids["P1"], 2) and covered(g, ids["P2"], 1))
    if ranges(got) != {ids["P1"]: [(1, 2)], ids["P2"]: [(1, 1)]}:
        fail(f"one transaction: got {got}")
    senders = {pid for pid, _ in got}
    if trader_pid in senders or senders - set(publisher_pids(admin)):
        fail(f"sent by {senders}, trader {trader_pid}, publishers {publisher_pids(admin)}")
    if unannounced(trader, "P1", True) != 0 or unannounced(trader, "P2", True) != 0:
        fail(f"stats() after the notifications: {trader.execute('SELECT * FROM exchange.stats()').fetchall()}")

    # Aborted: nothing. A rolled-back savepoint: only what stayed.
    trader.execute("BEGIN")
    trader.execute(place, ("a", "P1", "buy", 9))
    trader.execute("ROLLBACK")
    got = listener.collect(1.5)
    if got:
        fail(f"aborted transaction published {got}")
    trader.execute("BEGIN")
    trader.execute(place, ("a", "P1", "buy", 9))
    trader.execute("SAVEPOINT s")
    trader.execute(place, ("a", "P1", "buy", 8))
    trader.execute("ROLLBACK TO SAVEPOINT s")
    trader.execute("COMMIT")
    got = listener.collect(10, lambda g: covered(g, ids["P1"], 3))
    if ranges(got) != {ids["P1"]: [(3, 3)]}:
        fail(f"savepoint: got {got}")
    extra = listener.collect(1)
    if extra:
        fail(f"rolled-back savepoint published {extra}")

    # Four traders at once, autocommitted orders on both instruments: per
    # instrument the ranges are contiguous, cover the journal, never repeat,
    # and arrive in order.
    def concurrent(mode):
        before = dict(trader.execute("SELECT instrument_id, max(seq) FROM exchange.events GROUP BY 1").fetchall())
        pids = []

        def trade(n, who):
            c = connect(dsn, mode)
            pids.append(c.execute("SELECT pg_backend_pid()").fetchone()[0])
            for i in range(n):
                c.execute(place, (who, "P1" if i % 2 else "P2", "buy" if (i // 2) % 2 else "sell", 10 + i % 3))
            c.close()
        threads = [threading.Thread(target=trade, args=(150, f"t{k}")) for k in range(4)]
        for t in threads:
            t.start()
        notes = []
        while any(t.is_alive() for t in threads):
            notes += listener.collect(0.2)
        for t in threads:
            t.join()
        last = dict(trader.execute("SELECT instrument_id, max(seq) FROM exchange.events GROUP BY 1").fetchall())
        notes += listener.collect(10, lambda g: all(covered(notes + g, i, last[i]) for i in last))
        for inst, rs in ranges(notes).items():
            expect = before[inst] + 1
            for first, end in rs:  # in the order received
                if first != expect or end < first:
                    fail(f"{mode}: instrument {inst}: ranges {rs} not contiguous from {expect}")
                expect = end + 1
            if expect != last[inst] + 1:
                fail(f"{mode}: instrument {inst}: ranges end at {expect - 1}, journal at {last[inst]}")
        by_traders = sum(1 for pid, _ in notes if pid in pids)
        print(f"publisher ({mode}): 600 orders from 4 traders announced in {len(notes)} notifications "
              f"({by_traders} sent by the traders), contiguous and in order")
        return notes, by_traders
    notes, by_traders = concurrent("always")
    if by_traders:
        fail(f"always: {by_traders} notifications sent by the traders")

    # Commits at uneven gaps of 0 to 20 ms (the publisher found awake, just
    # asleep, long asleep; polling, just stopped polling), each announced long
    # before the worker's own look every 500 ms, which is all a commit whose
    # wake-up was lost would get. While the publisher polls
    # (exchange.publisher_poll_ms) commits do not wake it: with the default
    # 1 ms, and with 10 ms, where the 20 ms gaps end its polling and the
    # shorter ones do not.
    rng = random.Random(7)
    p1 = ids["P1"]

    def poll_ms(ms):
        admin.execute(f"ALTER SYSTEM SET exchange.publisher_poll_ms = {ms}" if ms is not None
                      else "ALTER SYSTEM RESET exchange.publisher_poll_ms")
        admin.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)  # the publisher reads it at its next look

    def paced(label):
        delays = []
        for i in range(200):
            time.sleep(rng.choice([0, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.006, 0.02]))
            seq = trader.execute("SELECT seq FROM exchange.place_order('pace', 'P1', 'buy', 'limit', 1, 5)").fetchone()[0]
            t0 = time.monotonic()
            got = listener.collect(5, lambda g: covered(g, p1, seq))
            delays.append(time.monotonic() - t0)
            if not covered(got, p1, seq):
                fail(f"paced commits ({label}): seq {seq} of P1 not announced within 5 s")
        if max(delays) > 0.25:
            fail(f"paced commits ({label}): an announcement took {max(delays) * 1000:.0f} ms (a lost wake-up waits "
                 f"for the publisher's 500 ms look); delays over 50 ms: "
                 f"{[round(d * 1000) for d in delays if d > 0.05]}")
        delays.sort()
        print(f"publisher: 200 paced commits announced ({label}), median {delays[100] * 1000:.1f} ms, "
              f"max {delays[-1] * 1000:.1f} ms after the commit returned")
    paced("poll 1 ms, the default")
    poll_ms(10)
    paced("poll 10 ms")

    # Polling coalesces: with 50 ms, commits every ~1 ms for about a second
    # are announced in at most one notification per 50 ms, contiguous. Also
    # allowed: the first round (woken by the first commit), the last, and a
    # round for each pause of the commits long enough to end the polling
    # (a stall of this machine).
    poll_ms(50)
    listener.collect(0.5)
    first = trader.execute("SELECT max(seq) FROM exchange.events WHERE instrument_id = %s", (p1,)).fetchone()[0] + 1
    t0 = last_commit = time.monotonic()
    pauses = 0
    for i in range(800):
        seq = trader.execute("SELECT seq FROM exchange.place_order('pace', 'P1', 'buy', 'limit', 1, 5)").fetchone()[0]
        now = time.monotonic()
        pauses += now - last_commit > 0.04
        last_commit = now
        if i % 4 == 0:
            time.sleep(0.003)
        if now - t0 > 1.0:
            break
    elapsed = time.monotonic() - t0
    allowed = int(elapsed / 0.05) + 3 + pauses
    got = listener.collect(5, lambda g: covered(g, p1, seq))
    rs = ranges(got).get(p1, [])
    expect = first
    for a, b in rs:
        if a != expect:
            fail(f"poll 50 ms: ranges {rs} not contiguous from {first}")
        expect = b + 1
    if expect != seq + 1:
        fail(f"poll 50 ms: ranges {rs} end at {expect - 1}, journal at {seq}")
    if len(rs) > allowed:
        fail(f"poll 50 ms: {seq - first + 1} commits in {elapsed * 1000:.0f} ms announced in {len(rs)} "
             f"notifications (a poll every 50 ms allows {allowed}; {pauses} pauses over 40 ms)")
    print(f"publisher: poll 50 ms: {seq - first + 1} commits in {elapsed * 1000:.0f} ms announced in "
          f"{len(rs)} notifications")
    poll_ms(None)
    last = dict(trader.execute("SELECT instrument_id, max(seq) FROM exchange.events GROUP BY 1").fetchall())

    # Publisher off for a session: it notifies by itself.
    trader.execute("SET exchange.notify_publisher = off")
    trader.execute(place, ("a", "P2", "buy", 7))
    p2 = last[ids["P2"]] + 1
    got = listener.collect(10, lambda g: covered(g, ids["P2"], p2))
    if got != [(trader_pid, f"{ids['P2']}:{p2}:{p2}")]:
        fail(f"notify_publisher off: got {got}, trader {trader_pid}")
    trader.execute("RESET exchange.notify_publisher")

    # auto, one trader alone: the NOTIFY lock is free, it notifies by itself.
    trader.execute("SET exchange.notify_publisher = auto")
    got = []
    for k in range(1, 4):
        trader.execute(place, ("a", "P2", "buy", 7))
        got += listener.collect(10, lambda g: covered(g, ids["P2"], p2 + k))
    if got != [(trader_pid, f"{ids['P2']}:{p2 + k}:{p2 + k}") for k in range(1, 4)]:
        fail(f"auto, one trader: got {got}, trader {trader_pid}")
    p2 += 3
    # auto, four traders: whoever finds the lock taken leaves it to the
    # publisher (how many do depends on timing; the ranges stay in order).
    concurrent("auto")
    p2 = trader.execute("SELECT max(seq) FROM exchange.events WHERE instrument_id = %s", (ids["P2"],)).fetchone()[0]

    # auto with the NOTIFY lock held by another session: one whose commit
    # waits for a synchronous standby that does not exist holds it (from its
    # PreCommit_Notify to the end of its commit). A trader's commits then go
    # through (synchronous_commit = local) and leave their ranges to the
    # publisher, which can send them once the lock is free.
    admin.execute("CREATE TABLE exchange_test_blocker (a int)")
    admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'exchange_test_nobody'")
    admin.execute("SELECT pg_reload_conf()")
    blocker = connect(dsn_admin)
    blocker_pid = blocker.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        def block():
            blocker.execute("BEGIN")
            blocker.execute("NOTIFY exchange_test_block")
            blocker.execute("INSERT INTO exchange_test_blocker VALUES (1)")  # WAL to wait for
            blocker.execute("COMMIT")  # waits for the standby until cancelled
        t = threading.Thread(target=block)
        t.start()
        deadline = time.time() + 10
        while admin.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                            (blocker_pid,)).fetchone()[0] != "SyncRep":
            if time.time() > deadline:
                fail("the blocking session never waited for its synchronous standby")
            time.sleep(0.05)
        trader.execute("SET synchronous_commit = local")

        def place3():
            for _ in range(3):
                trader.execute(place, ("a", "P2", "buy", 7))
        pt = threading.Thread(target=place3)
        pt.start()
        pt.join(10)
        if pt.is_alive():  # its commit waits for the lock (no statement_timeout covers a commit)
            admin.execute("SELECT pg_cancel_backend(%s)", (blocker_pid,))
            pt.join(10)
            fail("with auto a commit waited for the NOTIFY lock another session held")
        early = listener.collect(1)
        if early:
            fail(f"notified while another session held the NOTIFY lock: {early}")
        if unannounced(trader, "P2") != 3:
            fail(f"stats() with 3 ranges waiting for the lock: {trader.execute('SELECT * FROM exchange.stats()').fetchall()}")
        admin.execute("SELECT pg_cancel_backend(%s)", (blocker_pid,))
        t.join(10)
        got = listener.collect(10, lambda g: covered(g, ids["P2"], p2 + 3))
        senders = {pid for pid, _ in got}
        if sum((e - f + 1 for f, e in ranges(got).get(ids["P2"], [])), 0) != 3 or trader_pid in senders \
                or senders - set(publisher_pids(admin)):
            fail(f"auto with the lock taken: got {got}, trader {trader_pid}, publishers {publisher_pids(admin)}")
        first = min(f for f, _ in ranges(got)[ids["P2"]])
        if first != p2 + 1:
            fail(f"auto with the lock taken: ranges {ranges(got)} do not start at {p2 + 1}")
        if unannounced(trader, "P2", True) != 0:
            fail(f"stats() after the lock was freed: {trader.execute('SELECT * FROM exchange.stats()').fetchall()}")
        p2 += 3
    finally:
        admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
        admin.execute("SELECT pg_reload_conf()")
        admin.execute("SELECT pg_cancel_backend(%s)", (blocker_pid,))
        blocker.close()
        admin.execute("DROP TABLE exchange_test_blocker")
    trader.execute("RESET synchronous_commit")
    trader.execute("SET exchange.notify_publisher = always")

    # A publisher stopped (SIGSTOP) while a commit waits for it, then
    # terminated: the postmaster starts it again, the range still goes out.
    trader.execute(place, ("a", "P2", "buy", 6))
    got = listener.collect(10, lambda g: covered(g, ids["P2"], p2 + 1))
    pids = publisher_pids(admin)
    if ranges(got) != {ids["P2"]: [(p2 + 1, p2 + 1)]} or len(pids) != 1:
        fail(f"before the stop: got {got}, publishers {pids}")
    os.kill(pids[0], signal.SIGSTOP)
    try:
        trader.execute(place, ("a", "P2", "buy", 6))
        admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
    finally:
        os.kill(pids[0], signal.SIGCONT)
    got = listener.collect(15, lambda g: covered(g, ids["P2"], p2 + 2))
    if ranges(got) != {ids["P2"]: [(p2 + 2, p2 + 2)]} or got[0][0] in (pids[0], trader_pid):
        fail(f"after the stopped publisher was terminated: got {got} (old publisher {pids[0]})")
    p2 += 2

    # Terminated publisher: replaced at the next commit; the range is whole.
    for pid in publisher_pids(admin):
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.3)
    trader.execute(place, ("a", "P2", "buy", 6))
    got = listener.collect(10, lambda g: covered(g, ids["P2"], p2 + 1))
    if ranges(got) != {ids["P2"]: [(p2 + 1, p2 + 1)]}:
        fail(f"after pg_terminate_backend: got {got}")

    # Idle: the publisher leaves the database; the next commit brings it back.
    deadline = time.time() + 10
    while publisher_pids(admin) and time.time() < deadline:
        time.sleep(0.2)
    if publisher_pids(admin):
        fail("the publisher is still connected after 10 idle seconds")
    trader.execute(place, ("a", "P2", "buy", 5))
    got = listener.collect(10, lambda g: covered(g, ids["P2"], p2 + 2))
    if ranges(got) != {ids["P2"]: [(p2 + 2, p2 + 2)]}:
        fail(f"after an idle exit: got {got}")
    trader.close()
    listener.conn.close()
    if not publisher_pids(admin):
        fail("no publisher connected before DROP DATABASE")
    started = time.time()
    admin.execute(f"DROP DATABASE {DB}")
    print(f"publisher: idle exit, restart, terminate and DROP DATABASE ({time.time() - started:.1f} s) ok")


if __name__ == "__main__":
    main(sys.argv[1])
