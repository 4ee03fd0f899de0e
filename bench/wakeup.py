"""The other end of the wake-up latency floor: a process blocked in XREADGROUP.

``python -m bench.wakeup URL STREAM GROUP`` reads entries one at a time; each carries the
sender's ``time.time()``, and the reader notes how long after that it woke up. An entry
with ``stop`` ends the run; the latencies (seconds) are printed as one JSON list.
"""

from __future__ import annotations

import json
import sys
import time

import redis

from bench.env import read_entries


def main(url: str, stream: str, group: str) -> None:
    """Read until a ``stop`` entry; print the wake-up latencies as JSON."""
    client = redis.Redis.from_url(url)
    latencies: list[float] = []
    print("ready", flush=True)
    while True:
        reply = client.xreadgroup(group, "wakeup", {stream: ">"}, count=1, block=0)
        received = time.time()
        for _, batch in read_entries(reply):
            for entry_id, fields in batch:
                client.xack(stream, group, entry_id)
                if b"stop" in fields:
                    print(json.dumps(latencies), flush=True)
                    return
                latencies.append(received - float(fields[b"t"]))


if __name__ == "__main__":
    main(*sys.argv[1:4])
