"""The server's CPU time per journal read, the way the WebSocket feed reads (a diagnostic).

The feed reads the journal after every notification: at low rates two
entries a read, at high rates dozens. This measures, for reads of a given
width, the CPU time of the backend (from /proc/<pid>/stat, so the server
must run on this machine) per read, for the read through exchange.journal()
(what the feed did before extension 0.8) and through the view
exchange.journal_entries (0.8), each with the plan cache's default choice
and with plan_cache_mode = force_generic_plan, plus a trivial prepared
statement with the same parameters (the cost of a round trip). Variants
alternate in rounds; medians are printed.

  python3 tests/perf/journal_read.py DSN [--orders 20000] [--widths 2 40] [--rounds 5] [--reads 3000]

DSN must name a database where the script may create the extension (if it
is missing) and an instrument JR-USD, which it fills with orders and
cancels on its first run. scripts/pg-cluster.sh starts a suitable cluster:
  scripts/pg-cluster.sh start build/jrbench 25390
  python3 tests/perf/journal_read.py "host=127.0.0.1 port=25390 user=postgres dbname=postgres"
  scripts/pg-cluster.sh stop build/jrbench
"""
import argparse
import os
import random
import statistics

import psycopg
from psycopg.types.json import Jsonb

COLUMNS = "seq, kind, payload::text, side, type, price::text, quantity::text, filled_quantity::text"
VARIANTS = {
    "function": f"SELECT {COLUMNS}, created_us FROM exchange.journal(%s, %s, %s, %s)",
    "view": f"SELECT {COLUMNS}, created_us FROM exchange.journal_entries "
            "WHERE instrument_id = %s AND seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
    "round trip": "SELECT %s::int, %s::bigint, %s::bigint, %s::int",
}


def fill(conn, orders):
    conn.execute("CREATE EXTENSION IF NOT EXISTS exchange")
    if conn.execute("SELECT count(*) FROM exchange.instruments WHERE symbol = 'JR-USD'").fetchone()[0] == 0:
        conn.execute("SELECT exchange.create_instrument('JR-USD', 0.01, 0.0001)")
    have = conn.execute("SELECT count(*) FROM exchange.orders WHERE instrument = 'JR-USD'").fetchone()[0]
    if have >= orders:
        return
    rng = random.Random(1)
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        while have < orders:
            batch = []
            for _ in range(100):
                ticks, lots = rng.randint(9950, 10049), rng.randint(1, 10)
                batch.append({"client_id": f"c{rng.randrange(50)}", "instrument": "JR-USD",
                              "side": rng.choice(("buy", "sell")), "type": "limit",
                              "price": f"{ticks // 100}.{ticks % 100:02d}", "quantity": f"0.{lots:04d}"})
            conn.execute("SELECT count(*) FROM exchange.place_orders(%s::jsonb)", (Jsonb(batch),))
            have += 100
    # Then cancels of a third of what rests (the journal's last entries): their entries read the
    # order's row. Reads start anywhere, so most hold placed orders only, as in live trading.
    ids = [r[0] for r in conn.execute("SELECT order_id FROM exchange.orders WHERE instrument = 'JR-USD' "
                                      "AND status IN ('open', 'partially_filled')").fetchall()]
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        for order_id in ids[: len(ids) // 3]:
            conn.execute("SELECT exchange.cancel_order(%s)", (order_id,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 40])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reads", type=int, default=3000)
    args = ap.parse_args()

    setup = psycopg.connect(args.dsn, autocommit=True)
    fill(setup, args.orders)
    # Statistics, as autovacuum soon has them on a live system: with them a custom plan of the
    # range condition estimates a few rows, the generic plan more, and the plan cache keeps
    # planning every read anew unless told otherwise.
    setup.execute("ANALYZE exchange.events, exchange.orders")
    instrument, last = setup.execute("SELECT instrument_id, (SELECT max(seq) FROM exchange.events e "
                                     " WHERE e.instrument_id = i.instrument_id) FROM exchange.instruments i "
                                     "WHERE symbol = 'JR-USD'").fetchone()
    setup.close()

    # One connection per variant and plan mode, so that each keeps its prepared statement.
    conns = {}
    for name in VARIANTS:
        for mode in ("auto", "force_generic_plan"):
            c = psycopg.connect(args.dsn, autocommit=True)
            c.execute(f"SET plan_cache_mode = {mode}")
            conns[(name, mode)] = (c, c.execute("SELECT pg_backend_pid()").fetchone()[0])

    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    ticks_per_s = os.sysconf("SC_CLK_TCK")
    print(f"journal of {last} entries; backend CPU per read, median of {args.rounds} rounds of {args.reads} reads")
    for width in args.widths:
        results = {key: [] for key in conns}
        rng = random.Random(width)
        for _ in range(args.rounds):
            for key, (c, pid) in conns.items():
                sql = VARIANTS[key[0]]
                before = cpu_ticks(pid)
                for _ in range(args.reads):
                    after = rng.randint(0, max(0, last - width))
                    c.execute(sql, (instrument, after, after + width, 1000), prepare=True).fetchall()
                results[key].append((cpu_ticks(pid) - before) * 1e6 / ticks_per_s / args.reads)
        for (name, mode), values in results.items():
            print(f"width {width:3d}  {name:10s} {mode:18s} {statistics.median(values):7.1f} us "
                  f"(rounds {' '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
