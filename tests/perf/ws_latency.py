"""Commit-to-WebSocket latency with many subscribers (part of make bench).

N WebSocket clients subscribe to the `orders` channel of one instrument; one
sender places orders over REST at a fixed rate. For every order and every
subscriber we record when its `order` message arrived, and report the delay
after the REST acknowledgement (the commit is between the request and the
acknowledgement, so this is a lower bound of commit-to-receipt) and after the
request was sent (an upper bound). Run by scripts/bench-frontend.sh against a
running pgx-frontend; uses Debian's python3-websockets and python3-requests.
"""
import argparse
import asyncio
import json
import resource
import statistics
import threading
import time

import requests
import websockets


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def subscriber(url, instrument, ready, arrivals, stop):
    async with websockets.connect(url, max_queue=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["orders"], "instruments": [instrument]}))
        ready.release()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            now = time.monotonic()
            if '"type":"order"' not in raw:
                continue
            arrivals.append((json.loads(raw)["order_id"], now))


def send_orders(http, instrument, rate, count, sent, acked):
    session = requests.Session()
    session.headers.update({"Connection": "keep-alive", "Content-Type": "application/json"})
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
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


async def main():
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
    url = f"ws://127.0.0.1:{a.ws_port}/stream"
    http = f"http://127.0.0.1:{a.http_port}"

    ready = asyncio.Semaphore(0)
    stop = asyncio.Event()
    arrivals = []
    tasks = [asyncio.create_task(subscriber(url, a.instrument, ready, arrivals, stop)) for _ in range(a.subscribers)]
    for _ in range(a.subscribers):
        await asyncio.wait_for(ready.acquire(), timeout=60)
    await asyncio.sleep(0.5)

    sent, acked = {}, {}
    sender = threading.Thread(target=send_orders, args=(http, a.instrument, a.rate, a.orders, sent, acked))
    sender.start()
    while sender.is_alive():
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # the last messages in flight
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    after_ack = [(t - acked[o]) * 1000 for o, t in arrivals if o in acked]
    after_send = [(t - sent[o]) * 1000 for o, t in arrivals if o in sent]
    expected = a.subscribers * len(acked)
    print(f"WebSocket fan-out: {a.subscribers} subscribers, {len(acked)} orders at {a.rate:.0f}/s, "
          f"{len(after_ack)}/{expected} order messages received")
    for name, values in (("after the REST ack", after_ack), ("after the REST request", after_send)):
        if values:
            print(f"  latency {name:24s} p50 {statistics.median(values):7.2f}  p90 {percentile(values, 90):7.2f}  "
                  f"p99 {percentile(values, 99):7.2f}  max {max(values):7.2f} ms")
    return 0 if len(after_ack) == expected else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
