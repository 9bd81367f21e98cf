"""Commit-to-WebSocket latency with many subscribers (part of make bench).

N WebSocket clients subscribe to the `orders` channel of one instrument; one
sender places orders over REST at a fixed rate, one at a time. For every
order and every subscriber we record when its `order` message arrived, and
report the delay after the REST acknowledgement (the commit happens between
request and acknowledgement, so this is a lower bound of commit-to-receipt)
and after the request was sent (an upper bound).

The subscribers are raw sockets in one epoll loop with a minimal WebSocket
frame reader: a full client library costs ~60 us of Python per message, so
1,000 subscribers would measure the client, not the feed. Run by
scripts/bench-frontend.sh against a running pgx-frontend.
"""
import argparse
import base64
import json
import os
import resource
import select
import socket
import statistics
import threading
import time

import requests


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def masked_frame(first_byte, data):
    """A client frame (clients must mask); small payloads only."""
    mask = os.urandom(4)
    assert len(data) < 126
    return bytes([first_byte, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def masked_text_frame(text):
    return masked_frame(0x81, text.encode())


def next_frame(buf):
    """(opcode, payload, length) of the complete frame at the front of buf, or None."""
    if len(buf) < 2:
        return None
    opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < at + n:
        return None
    return opcode, buf[at:at + n], at + n


def take_frames(buf):
    """Complete frames at the front of buf: (list of (opcode, payload), rest of buf)."""
    frames = []
    while (frame := next_frame(buf)) is not None:
        frames.append(frame[:2])
        buf = buf[frame[2]:]
    return frames, buf


def subscribe(port, instrument, channels=("orders",), batch=False):
    """A subscribed non-blocking socket, and the bytes already read after the acknowledgement.
    batch: ask for the messages ready at the same time in one {"type":"batch"} message."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("the feed closed the connection during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head.splitlines()[0]!r}")
    buf = head.split(b"\r\n\r\n", 1)[1]
    request = {"type": "subscribe", "channels": list(channels), "instruments": [instrument]}
    if batch:
        request["batch"] = True
    s.sendall(masked_text_frame(json.dumps(request)))
    while (frame := next_frame(buf)) is None:  # the acknowledgement is the first frame
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("the feed closed the connection after the handshake")
        buf += chunk
    if b'"subscribed"' not in frame[1]:
        raise RuntimeError(f"expected the subscription's acknowledgement, got {frame[1][:200]!r}")
    s.setblocking(False)
    return s, buf[frame[2]:]


def send_orders(http, instrument, rate, count, sent, acked):
    session = requests.Session()
    session.headers.update({"Connection": "keep-alive", "Content-Type": "application/json"})
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {"client_id": f"ws-lat-{i % 10}", "instrument": instrument, "side": "buy" if i % 2 else "sell",
                "type": "limit", "quantity": "0.0001", "price": "90.00" if i % 2 else "110.00"}
        t0 = time.monotonic()
        r = session.post(f"{http}/orders", data=json.dumps(body), timeout=10)
        t1 = time.monotonic()
        r.raise_for_status()
        order_id = r.json()["order_id"]
        sent[order_id] = t0
        acked[order_id] = t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--ws-port", type=int, default=8001)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--instrument", default="BTC-USD")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.subscribers + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.subscribers + 1024), hard))

    subscribed = [subscribe(a.ws_port, a.instrument) for _ in range(a.subscribers)]
    socks = [s for s, _ in subscribed]
    ep = select.epoll()
    bufs = {}
    for s, rest in subscribed:
        ep.register(s.fileno(), select.EPOLLIN)
        bufs[s.fileno()] = rest
    by_fd = {s.fileno(): s for s in socks}
    arrivals = []  # (payload, time)

    sent, acked = {}, {}
    sender = threading.Thread(target=send_orders,
                              args=(f"http://127.0.0.1:{a.http_port}", a.instrument, a.rate, a.orders, sent, acked))
    sender.start()
    quiet_until = None
    while True:
        for fd, _ in ep.poll(0.05):
            now = time.monotonic()
            chunk = by_fd[fd].recv(65536)
            if not chunk:
                raise RuntimeError("the feed closed a subscriber")
            frames, bufs[fd] = take_frames(bufs[fd] + chunk)
            arrivals.extend((p, now) for op, p in frames if op == 1 and b'"type":"order"' in p)
        if not sender.is_alive():
            quiet_until = quiet_until or time.monotonic() + 2.0  # the last messages in flight
            if time.monotonic() > quiet_until:
                break
    for s in socks:
        s.close()

    ids = [(json.loads(p)["order_id"], t) for p, t in arrivals]
    after_ack = [(t - acked[o]) * 1000 for o, t in ids if o in acked]
    after_send = [(t - sent[o]) * 1000 for o, t in ids if o in sent]
    expected = a.subscribers * len(acked)
    print(f"WebSocket fan-out: {a.subscribers} subscribers, {len(acked)} orders at {a.rate:.0f}/s, "
          f"{len(after_ack)}/{expected} order messages received")
    for name, values in (("after the REST ack", after_ack), ("after the REST request", after_send)):
        if values:
            print(f"  latency {name:24s} p50 {statistics.median(values):7.2f}  p90 {percentile(values, 90):7.2f}  "
                  f"p99 {percentile(values, 99):7.2f}  max {max(values):7.2f} ms")
    return 0 if len(after_ack) == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
