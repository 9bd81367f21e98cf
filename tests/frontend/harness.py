"""What the frontend test modules share: paths, the cluster script, a fresh cluster, waiting for a port, the servers they start."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = Path(os.environ.get("PGX_FRONTEND", ROOT / "build" / "frontend" / "pgx-frontend"))


def pg_cluster(*args):
    """scripts/pg-cluster.sh start DIR PORT [settings] | stop DIR."""
    subprocess.run([str(ROOT / "scripts" / "pg-cluster.sh"), *map(str, args)], check=True)


def fresh_cluster(pg_dir, port, *settings):
    """A new cluster in pg_dir (whatever was there is stopped and removed); the
    frontend binary must be built, since every module that needs one needs it."""
    if not FRONTEND.exists():
        pytest.fail(f"{FRONTEND} is not built")
    pg_cluster("stop", pg_dir)
    shutil.rmtree(pg_dir, ignore_errors=True)
    pg_cluster("start", pg_dir, port, *settings)


def create_instruments(conn, instruments):
    """The extension and {symbol: (tick_size, lot_size)} in a fresh database."""
    conn.execute("CREATE EXTENSION exchange")
    for symbol, (tick, lot) in instruments.items():
        conn.execute("SELECT exchange.create_instrument(%s, %s::numeric, %s::numeric)", (symbol, tick, lot))


def place_deep_book(conn, symbol, levels):
    """A new instrument (tick 0.01, lot 1) with `levels` one-lot price levels a side, placed by one
    place_orders call: bids from 1000.00 down, asks from 2000.00 up (an order book answer of ~110
    bytes per level pair)."""
    conn.execute("SELECT exchange.create_instrument(%s, 0.01, 1)", (symbol,))
    orders = [{"client_id": "deep", "instrument": symbol, "side": side, "type": "limit", "quantity": "1",
               "price": f"{cents // 100}.{cents % 100:02d}"}
              for side, first, step in (("buy", 100000, -1), ("sell", 200000, 1))
              for cents in range(first, first + step * levels, step)]
    conn.execute("SELECT count(*) FROM exchange.place_orders(%s::jsonb)", (json.dumps(orders),))


def unread_connection(port, timeout):
    """A connection to 127.0.0.1:port with a tiny receive buffer (set before connecting, so the
    window stays small), and the most the kernel may buffer on the sending side (tcp_wmem's
    maximum): what a client that does not read leaves the server to hold."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        send_buffer_max = int(f.read().split()[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock, send_buffer_max


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


class Process:
    """A server the tests start (its output to log_path), ready once it listens on 127.0.0.1:port."""

    def __init__(self, args, log_path, port):
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(port, proc=self.proc)

    def stop(self):
        """SIGTERM (SIGKILL after 15 s); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
