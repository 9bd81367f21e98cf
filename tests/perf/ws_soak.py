"""WebSocket subscribers for the soak run (scripts/soak.sh).

N raw-socket subscribers to `orderbook_deltas` and `trades` of one
instrument; each checks that its delta sequences are gap-free and in order.
--batch: the subscribers ask for batches ({"type":"batch","messages":[...]}),
whose messages are counted and checked one by one.
Runs until SIGTERM or SIGINT, then prints one summary line and exits 1 on any
gap, disconnect or repeat.
"""
import argparse
import json
import select
import signal
import time

from ws_latency import masked_frame, subscribe, take_frames


def seq_of(payload):
    """The "seq" of a message without parsing all of it (the subscribers must keep up)."""
    at = payload.find(b'"seq":') + 6
    while payload[at:at + 1] == b" ":
        at += 1
    end = at
    while payload[end:end + 1].isdigit():
        end += 1
    return int(payload[at:end])


def observe(st, is_delta, seq):
    """Records a delta's or snapshot's sequence; 1 when a delta does not follow the last one."""
    gap = int(is_delta and st["seq"] is not None and seq != st["seq"] + 1)
    st["seq"] = seq
    return gap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws-port", type=int, required=True)
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--instrument", default="BTC-USD")
    ap.add_argument("--batch", action="store_true")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    ep = select.epoll()
    state = {}
    for _ in range(a.subscribers):
        s, rest = subscribe(a.ws_port, a.instrument, ["orderbook_deltas", "trades"], batch=a.batch)
        ep.register(s.fileno(), select.EPOLLIN)
        state[s.fileno()] = {"sock": s, "buf": rest, "seq": None}
    messages = gaps = closed = 0
    started = time.monotonic()
    while not stop:
        for fd, _ in ep.poll(0.2):
            st = state[fd]
            chunk = st["sock"].recv(1 << 16)
            if not chunk:
                closed += 1
                ep.unregister(fd)
                continue
            frames, st["buf"] = take_frames(st["buf"] + chunk)
            for opcode, payload in frames:
                if opcode == 9:  # the feed drops clients that do not answer its pings
                    st["sock"].send(masked_frame(0x8A, payload))
                if opcode != 1:
                    continue
                if payload.startswith(b'{"type":"batch"'):
                    for m in json.loads(payload)["messages"]:
                        messages += 1
                        if m["type"] in ("delta", "snapshot"):
                            gaps += observe(st, m["type"] == "delta", m["seq"])
                    continue
                messages += 1
                delta = b'"type":"delta"' in payload
                if delta or b'"type":"snapshot"' in payload:
                    gaps += observe(st, delta, seq_of(payload))
    minutes = (time.monotonic() - started) / 60
    print(f"ws subscribers: {a.subscribers}, {messages} messages in {minutes:.1f} min, gaps {gaps}, "
          f"disconnected {closed}")
    return 1 if gaps or closed else 0


if __name__ == "__main__":
    raise SystemExit(main())
