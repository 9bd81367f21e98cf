"""The READMEs' examples work as printed.

README.md's psql session ("Trying it"), the curl and WebSocket blocks of its
section "The frontend: REST and WebSocket", and frontend/README.md's Routes
example run as written against a setup like `make run`'s, on this module's
own ports: a throwaway PostgreSQL cluster (build/readmetest, 127.0.0.1:25439)
set up by scripts/run-setup.sql (the demo instrument BTC-USD, tick 0.01, lot
0.0001, and the frontend's role), a private Redis (63839) and pgx-frontend
with API keys on, logged in as that member of exchange_trader (REST 18700,
WS 18701). Only the ports in the commands are rewritten (and each rewrite
must apply, so that the test never reaches a `make run` instance).

Every printed answer ("# 201 {...}", "-- status | ...") must match what the
command answered: the status code when one is printed, and the body, where
"…" stands for anything and a uuid printed as "070b3c06-…" for any uuid.
Everything is stopped by the module's fixture.
"""
import json
import os
import queue
import re
import subprocess
import threading

import psycopg
import pytest

from harness import FRONTEND, ROOT, Process, fresh_cluster, pg_cluster, wait_for_port

PG_DIR = ROOT / "build" / "readmetest"
PG_PORT = 25439
REDIS_PORT = 63839
HTTP_PORT, WS_PORT = 18700, 18701
ADMIN_DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
FRONTEND_DSN = f"host=127.0.0.1 port={PG_PORT} user=pgx_frontend dbname=postgres"
SECTION = "## The frontend: REST and WebSocket"
# What make run's setup points the README at, and what this module uses instead.
PORT_REWRITES = [("-h 127.0.0.1 -p 15432 ", f"-h 127.0.0.1 -p {PG_PORT} "),
                 ("http://127.0.0.1:8000/", f"http://127.0.0.1:{HTTP_PORT}/"),
                 ("ws://127.0.0.1:8001/", f"ws://127.0.0.1:{WS_PORT}/")]
ORDER_ID = re.compile(r'"order_id":"([0-9a-f-]{36})"')


def psql(dbname):
    """psql as the administrator, stopping at the first error."""
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
            "-d", dbname]


def new_api_key(client):
    """A new API key of client (the README's $ALICE)."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        return conn.execute("SELECT api_key FROM exchange.create_api_key(%s)", (client,)).fetchone()[0]


def set_up_like_make_run(dbname):
    """scripts/run-setup.sql: the extension, the demo instrument BTC-USD and the frontend's role."""
    subprocess.run([*psql(dbname), "-f", str(ROOT / "scripts" / "run-setup.sql")], check=True, capture_output=True)


@pytest.fixture(scope="module")
def exchange():
    """The cluster, set up the way scripts/run-setup.sql sets up make run's, Redis and the frontend."""
    fresh_cluster(PG_DIR, PG_PORT, "fsync=off")
    redis = frontend = None
    try:
        set_up_like_make_run("postgres")
        (PG_DIR / "redis").mkdir()
        redis = Process(["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--dir",
                         str(PG_DIR / "redis"), "--save", "", "--appendonly", "no"], PG_DIR / "redis.log", REDIS_PORT)
        frontend = Process([str(FRONTEND), "--db", FRONTEND_DSN, "--http-host", "127.0.0.1", "--http-port",
                            str(HTTP_PORT), "--ws-port", str(WS_PORT), "--redis", f"127.0.0.1:{REDIS_PORT}"],
                           PG_DIR / "frontend.log", HTTP_PORT)
        wait_for_port(WS_PORT, proc=frontend.proc)
        yield
        assert frontend.stop() == 0, f"pgx-frontend did not exit cleanly, see {frontend.log_path}"
        frontend = None
    finally:
        if frontend:
            frontend.stop()
        if redis:
            redis.stop()
        pg_cluster("stop", PG_DIR)


def section_blocks():
    """The ```sh blocks of the README's frontend section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


def rewrite_ports(text):
    for old, new in PORT_REWRITES:
        text = text.replace(old, new)
    for old, _ in PORT_REWRITES:
        assert old not in text
    return text


def printed_pattern(printed):
    """A regex for a printed answer: "…" is anything, a uuid shown as 070b3c06-… any uuid."""
    printed = re.sub(r"[0-9a-f]{8}-…", "…", printed)
    return re.compile(".*?".join(re.escape(part) for part in printed.split("…")), re.S)


def printed_answers(lines):
    """The answers printed in comment lines ("# ..."): a line indented further
    than one space continues the answer before it."""
    printed = []
    for line in lines:
        body = line[1:]
        if printed and len(body) - len(body.lstrip()) > 1:
            printed[-1] += body.strip()
        else:
            printed.append(body.strip())
    return printed


def steps(block):
    """(command, printed answers) pairs of a shell block: a command's lines end
    with a backslash to continue; the comment lines after it are its answers
    (none for most commands)."""
    out, lines, i = [], block.splitlines(), 0
    while i < len(lines):
        command = [lines[i]]
        while command[-1].endswith("\\"):
            i += 1
            command.append(lines[i])
        i += 1
        start = i
        while i < len(lines) and lines[i].startswith("#"):
            i += 1
        out.append(("\n".join(command), printed_answers(lines[start:i])))
    return out


def check_answer(what, printed, answer):
    """printed: "[CODE ]BODY"; answer: (code, body)."""
    m = re.match(r"(\d{3}) (.*)", printed, re.S)
    code, body = (int(m.group(1)), m.group(2)) if m else (None, printed)
    if code is not None:
        assert answer[0] == code, f"{what}: answered {answer[0]} {answer[1]}, the README prints {code}"
    assert printed_pattern(body).fullmatch(answer[1].strip()), \
        f"{what}: answered\n  {answer[1].strip()}\nthe README prints\n  {body}"


def test_the_frontend_section_answers_as_printed(exchange):
    """The curl block, the repeated first request, then the WebSocket block,
    whose printed snapshot is the book the curl block left."""
    check_rest_example()
    check_websocket_example()


def check_rest_example():
    block = rewrite_ports(section_blocks()[0])
    pairs = steps(block)
    assert sum(1 for _, printed in pairs if printed) >= 4
    # One shell runs the block, so that ALICE and BOB carry over; each curl also
    # prints its status after a marker, and the markers split the output.
    script = ["set -e"]
    for n, (command, _) in enumerate(pairs):
        command = re.sub(r"\s+# [^'\"]*$", "", command)  # a trailing comment
        if command.startswith("curl "):
            command += f" -w '\\n@@{n} %{{http_code}}\\n'"
        script.append(command)
    run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    answers = {int(n): (int(code), body) for body, n, code in
               re.findall(r"(.*?)\n@@(\d+) (\d{3})\n", run.stdout, re.S)}
    for n, (command, printed) in enumerate(pairs):
        if printed:
            assert n in answers and len(printed) == 1, f"no answer, or more than one printed, for\n{command}"
            check_answer(command.splitlines()[0], printed[0], answers[n])

    # "Repeating the first request (same client and Idempotency-Key) answers
    # 200 with the same order and creates nothing." (The block again up to that
    # request: its first lines make new keys for the same clients.)
    first = next(n for n, (c, p) in enumerate(pairs) if c.startswith("curl ") and p)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        orders_before = conn.execute("SELECT count(*) FROM exchange.orders").fetchone()[0]
    again = subprocess.run(["bash", "-c", "\n".join(script[:first + 2])], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    body, code = re.search(rf"(.*?)\n@@{first} (\d{{3}})\n", again.stdout, re.S).groups()
    assert int(code) == 200, body
    assert ORDER_ID.search(body).group(1) == ORDER_ID.search(answers[first][1]).group(1)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM exchange.orders").fetchone()[0] == orders_before


def check_websocket_example():
    block = rewrite_ports(section_blocks()[1])
    # The block: the python program, the messages it prints, and, among them,
    # the curl "in another shell" (after "# then, ...") that causes the rest.
    program, _, printed_part = block.partition("PY\n")
    program += "PY\n"
    lines = printed_part.splitlines()
    split = next(i for i, line in enumerate(lines) if line.startswith("# then,"))
    other = [line[1:].strip() for line in lines[split + 1:] if line.startswith("#   ")]
    other_shell = " ".join(part.rstrip("\\").strip() for part in other)
    before = printed_answers(lines[:split])
    after = printed_answers([line for line in lines[split + 1:] if not line.startswith("#   ")])
    assert len(before) == 2 and len(after) == 2 and other_shell.startswith("curl ")

    alice = new_api_key("alice")
    # A terminal shows each message as it comes: unbuffered, as there.
    listener = subprocess.Popen(["bash", "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines_out = queue.Queue()
    threading.Thread(target=lambda: [lines_out.put(line) for line in listener.stdout], daemon=True).start()

    def next_line():
        try:
            return lines_out.get(timeout=20)
        except queue.Empty:
            pytest.fail("the WebSocket example printed nothing more for 20 s")

    try:
        for printed in before:
            check_answer("the WebSocket example", printed, (None, next_line()))
        sent = subprocess.run(["bash", "-c", f"ALICE={alice}\n{other_shell}"], capture_output=True, text=True,
                              timeout=30)
        assert sent.returncode == 0 and '"status":' in sent.stdout, sent.stdout + sent.stderr
        for printed in after:
            check_answer("the WebSocket example", printed, (None, next_line()))
        # The program prints as many messages as the README shows, and ends.
        assert listener.wait(20) == 0, listener.stderr.read()
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert lines_out.empty()
    assert len(before) + len(after) == int(re.search(r"for _ in range\((\d+)\)", program).group(1))


def sql_statements(block):
    """(statement, printed answer lines) pairs of an SQL block: a statement
    ends with a line whose code (before a trailing "--" comment) ends with
    ";"; the lines after it that begin with "--" are its printed answer."""
    out, current = [], []
    for line in block.splitlines():
        if line.startswith("--") and not current and out:
            out[-1][1].append(line[2:])
            continue
        current.append(line)
        if re.sub(r"\s+--\s.*$", "", line).rstrip().endswith(";"):
            out.append(("\n".join(current), []))
            current = []
    assert not current, f"an unfinished statement: {current}"
    return out


def test_the_sql_example_answers_as_printed(exchange):
    """README "Trying it": the psql session, in a database of its own set up
    like make run's (a fresh book: the other tests trade BTC-USD here too)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("### Trying it")
    block = re.search(r"```sql\n(.*?)```", text[start:], re.S).group(1)
    statements = sql_statements(block)
    assert any(printed for _, printed in statements)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS readme_sql")
        conn.execute("CREATE DATABASE readme_sql")
    set_up_like_make_run("readme_sql")
    # Unaligned output with headers; a marker after each statement's answer.
    script = ["\\pset format unaligned", "\\pset fieldsep '|'", "\\pset footer off"]
    for n, (statement, _) in enumerate(statements):
        script += [statement, f"\\echo @@{n}"]
    run = subprocess.run(psql("readme_sql"), input="\n".join(script), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    answers = re.split(r"^@@\d+\n", run.stdout, flags=re.M)[:len(statements)]
    assert len(answers) == len(statements)
    for (statement, printed), answer in zip(statements, answers):
        if not printed:
            continue
        rows = [line.split("|") for line in answer.strip().splitlines()]
        want = [[cell.strip() for cell in line.split("|")] for line in printed]
        assert len(rows) == len(want), f"{statement}\nanswered {answer}"
        for got_row, want_row in zip(rows, want):
            assert len(got_row) == len(want_row), f"{statement}\nanswered {answer}"
            for got, pattern in zip(got_row, want_row):
                assert printed_pattern(pattern).fullmatch(got), f"{statement}\nanswered {got}, printed {pattern}"

    # The comments' claims: ROLLBACK leaves the book as the orderbook query
    # before BEGIN showed it, and verify returns no rows.
    book = next(i for i, (s, _) in enumerate(statements) if "exchange.orderbook(" in s)
    check = subprocess.run(psql("readme_sql"), input="\n".join(script[:3] + [statements[book][0]]), capture_output=True, text=True,
                           check=True)
    assert check.stdout == answers[book] and answers[book].count("\n") >= 2  # a header and a level
    verify = next(i for i, (s, _) in enumerate(statements) if "exchange.verify(" in s)
    assert answers[verify].strip().count("\n") == 0  # the header only
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute("DROP DATABASE readme_sql WITH (FORCE)")


def test_the_frontend_readme_example_runs(exchange):
    """frontend/README.md, Routes: place, read the book, cancel (the order id
    from the first answer in place of <order_id>), cancel all of alice's
    BTC-USD orders (after this test placed one more); no answers are printed
    there, so the statuses and the orders are checked."""
    text = (ROOT / "frontend" / "README.md").read_text()
    start = text.index("## Routes")
    block = rewrite_ports(re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1))
    commands = [c for c, _ in steps(block)]
    assert len(commands) == 4 and all(c.startswith("curl ") for c in commands)
    alice = new_api_key("alice")

    def run(command):
        out = subprocess.run(["bash", "-c", f"ALICE={alice}\n{command} -w '\\n%{{http_code}}'"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        body, _, code = out.rpartition("\n")
        return int(code), body

    code, placed = run(commands[0])
    assert code == 201, placed
    order_id = ORDER_ID.search(placed).group(1)
    code, book = run(commands[1])
    assert code == 200 and '"instrument":"BTC-USD"' in book.replace(" ", ""), book
    assert "<order_id>" in commands[2]
    code, cancelled = run(commands[2].replace("<order_id>", order_id))
    assert code == 200 and '"status":"cancelled"' in cancelled, cancelled

    # Cancel all: whatever alice still has on BTC-USD (the top-level README's examples may have left
    # orders of hers too), among them one placed now; afterwards she has none there.
    def resting():
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            return [r[0] for r in conn.execute(
                "SELECT order_id::text FROM exchange.orders WHERE client_id = 'alice' AND instrument = 'BTC-USD' "
                "AND status IN ('open', 'partially_filled', 'pending') ORDER BY order_no")]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        extra = conn.execute("SELECT order_id::text FROM exchange.place_order('alice', 'BTC-USD', 'buy', 'limit', "
                             "1, 1.00)").fetchone()[0]
    before = resting()
    assert extra in before
    code, body = run(commands[3])
    assert code == 200, body
    orders = json.loads(body)["orders"]
    assert [o["order_id"] for o in orders] == before and {o["status"] for o in orders} == {"cancelled"}, body
    assert resting() == []
