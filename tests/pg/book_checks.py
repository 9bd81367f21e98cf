"""What every suite that trades checks afterwards (sql_fuzz.py,
concurrency_test.py): the books against their tables, the journals, and
the fills against the trades."""


def consistency_problems(conn):
    """(verify's problems, instruments whose journal has a gap, orders whose
    filled quantity differs from their trades); all empty or 0 when healthy."""
    problems = conn.execute("SELECT i.symbol, v.problem FROM exchange.instruments i, "
                            "exchange.verify(i.symbol) v").fetchall()
    gaps = conn.execute("SELECT instrument_id FROM exchange.events GROUP BY instrument_id "
                        "HAVING count(*) <> max(seq) OR min(seq) <> 1").fetchall()
    fills = conn.execute("SELECT count(*) FROM exchange.orders o WHERE o.filled_quantity <> coalesce("
                         "(SELECT sum(t.quantity) FROM exchange.trades t "
                         "WHERE o.order_id IN (t.buy_order_id, t.sell_order_id)), 0)").fetchone()[0]
    return problems, gaps, fills
