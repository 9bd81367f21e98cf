"""WebSocket subscribers for the soak run (scripts/soak.sh).

N raw-socket subscribers to `orderbook_deltas` and `trades` of one
instrument; each checks that its delta sequences are gap-free and in order.
Runs until SIGTERM or SIGINT, then prints one summary line and exits 1 on any
gap, disconnect or repeat.
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws-port", type=int, required=True)
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--instrument", default="BTC-USD")
    a = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    ep = select.epoll()
    state = {}
    for _ in range(a.subscribers):
        s, rest = subscribe(a.ws_port, a.instrument, ["orderbook_deltas", "trades"])
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
                messages += 1
                if b'"type":"delta"' in payload or b'"type":"snapshot"' in payload:
                    seq = seq_of(payload)
                    if st["seq"] is not None and seq != st["seq"] + 1 and b'"type":"delta"' in payload:
                        gaps += 1
                    st["seq"] = seq
    minutes = (time.monotonic() - started) / 60
    print(f"ws subscribers: {a.subscribers}, {messages} messages in {minutes:.1f} min, gaps {gaps}, "
          f"disconnected {closed}")
    return 1 if gaps or closed else 0


if __name__ == "__main__":
    raise SystemExit(main())
