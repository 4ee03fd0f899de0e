"""Background load: ``python -m bench.load URL STREAM RATE`` XADDs events at RATE per second.

It reads one event payload on stdin, sends copies with fresh event ids (every 10 ms, in
one pipeline) until SIGTERM, then prints how many it sent and over how many seconds.
"""

from __future__ import annotations

import signal
import sys
import time

import redis

from bench.env import clones, publish_many

#: How often a batch is sent, in seconds.
TICK_S = 0.01


def main(url: str, stream: str, rate: float) -> None:
    """Publish at ``rate`` events/s until SIGTERM; print ``sent elapsed_s``."""
    payload = sys.stdin.buffer.read()
    client = redis.Redis.from_url(url)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    sent = 0
    print("ready", flush=True)
    while not stopping:
        due = int((time.monotonic() - started) * rate)
        if due > sent:
            sent += publish_many(client, stream, clones(payload, due - sent))
        time.sleep(TICK_S)
    print(sent, time.monotonic() - started, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
