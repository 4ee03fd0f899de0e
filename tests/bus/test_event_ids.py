"""Event ids: unique 128-bit hex, also across threads and a fork."""

from __future__ import annotations

import os
import re
import threading

from bus.events import new_event_id


def test_ids_are_32_hex_characters_and_never_repeat() -> None:
    ids = [new_event_id() for _ in range(5_000)]  # several batches drawn from the OS
    assert all(re.fullmatch(r"[0-9a-f]{32}", event_id) for event_id in ids)
    assert len(set(ids)) == len(ids)


def test_threads_never_get_the_same_id() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_event_id() for _ in range(2_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [event_id for into in results for event_id in into]
    assert len(set(ids)) == len(ids) == 8_000


def test_a_forked_child_does_not_reuse_its_parents_ids() -> None:
    new_event_id()  # the parent now holds a batch of ids
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write_end, ",".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split(","))
    parent_ids = {new_event_id() for _ in range(300)}
    assert len(child_ids) == 10
    assert not child_ids & parent_ids
