"""What the frontend test modules share: paths, the cluster script, a fresh cluster, waiting for a port, the servers they start."""
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
