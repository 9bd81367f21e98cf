"""What both frontend suites need: paths, the cluster script, waiting for a port."""
import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = Path(os.environ.get("PGX_FRONTEND", ROOT / "build" / "frontend" / "pgx-frontend"))


def pg_cluster(*args):
    """scripts/pg-cluster.sh start DIR PORT [settings] | stop DIR."""
    subprocess.run([str(ROOT / "scripts" / "pg-cluster.sh"), *map(str, args)], check=True)


def create_instruments(conn, instruments):
    """The extension and {symbol: (tick_size, lot_size)} in a fresh database."""
    conn.execute("CREATE EXTENSION exchange")
    for symbol, (tick, lot) in instruments.items():
        conn.execute("SELECT exchange.create_instrument(%s, %s::numeric, %s::numeric)", (symbol, tick, lot))


def wait_for_port(port, timeout=20.0, proc=None):
    """Returns once 127.0.0.1:port accepts connections; fails early if proc exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
