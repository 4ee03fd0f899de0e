"""The benchmark suite's helpers (the suite itself runs in CI: ``python -m bench --quick``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from rich.console import Console

from bench.costs import cpu_bound_ratio, process_cpu_s, read_cpu
from bench.env import clones, rss_mb, wait_until
from bench.instructions import count_server_instructions, handle_events
from bench.report import Figure, at_least, at_most, figure, median_run, render, to_json, to_markdown
from bench.stats import median, percentile


def test_percentile_is_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert median([1.0, 5.0, 2.0]) == 2.0


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"percentile 50 of no samples: got \[\]"):
        percentile([], 50)


def test_wait_until_times_out_with_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="benchmark waited 0.01s for nothing: got None"):
        wait_until(lambda: None, timeout_s=0.01, what="nothing")


def test_clones_get_fresh_event_ids() -> None:
    payload = b'{"event_id":"' + b"a" * 32 + b'","seq":1}'
    copies = list(clones(payload, 3))
    assert len(set(copies)) == 3
    assert all(len(copy) == len(payload) and b"a" * 32 not in copy for copy in copies)


def test_rss_of_this_process() -> None:
    assert 1 < rss_mb(os.getpid()) < 10_000


def test_rss_of_a_process_without_vmrss_is_an_error(tmp_path: Path) -> None:
    # A kernel thread's status has no VmRSS line.
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "status").write_text("Name:\tkthreadd\nState:\tS (sleeping)\n")
    with pytest.raises(RuntimeError, match="process 2 has no VmRSS line"):
        rss_mb(2, proc=tmp_path)


def test_figures_know_their_target_and_floor_ratio() -> None:
    fast = figure("2 Engine", "per op", 0.3, "ms", check=at_most(0.4), floor=("XADD p50", 0.15))
    slow = figure("4 Worker", "rate", 900.0, "events/s", check=at_least(20_000))
    missing = figure("5 Crash", "kill", None, "ms", check=at_most(100))
    assert fast.meets is True
    assert fast.floor_ratio == pytest.approx(2.0)
    assert (slow.meets, slow.floor_ratio) == (False, None)
    assert missing.meets is None
    console = Console(width=200, record=True)
    render([fast, slow, missing], title="t", console=console)
    text = console.export_text()
    assert "2.00× XADD p50" in text and "n/a" in text
    assert "| 2 Engine | per op | 0.300 ms |" in to_markdown([fast])
    assert '"floor_name": "XADD p50"' in to_json([fast])


def test_several_runs_make_one_table_of_median_rows() -> None:
    def run(value: float, meets: float) -> list[Figure]:
        return [
            figure("2 Engine", "per op", value, "ms", check=at_most(meets), note="x"),
            figure("5 Crash", "kill", None, "ms"),
        ]

    merged = median_run([run(3.0, 1.0), run(1.0, 1.0), run(2.0, 5.0)])

    assert merged[0].value == 2.0 and merged[0].meets is True  # the median run's whole row
    assert merged[0].note == "x; median of 3 runs: 1.000 ms … 3.000 ms"
    assert merged[1].value is None


def test_the_instruction_harness_handles_every_event(
    redis_url: str, redis_client: redis.Redis, restored_gc: None
) -> None:
    # Without valgrind's counting: the same in-process run that callgrind measures.
    assert handle_events(redis_url, "sync", 50) > 0


def test_the_instruction_harness_counts_the_redis_server_around_the_handling(
    restored_gc: None,
) -> None:
    # A private redis-server under callgrind (valgrind is on every machine here). Handling
    # an event costs Redis thousands of instructions (its read, ack and record); a count
    # taken with counting never switched on raises instead.
    per_event = count_server_instructions("sync", 50)
    assert 2_000 < per_event < 1_000_000


def test_cpu_readings_grow_with_work_and_give_the_cpu_bound_ratio(
    redis_client: redis.Redis,
) -> None:
    before = read_cpu(redis_client, os.getpid())
    deadline = process_cpu_s(os.getpid()) + 0.05
    while process_cpu_s(os.getpid()) < deadline:  # 50 ms of this process's CPU
        pass
    after = read_cpu(redis_client, os.getpid())

    assert after.worker_s - before.worker_s >= 0.04  # clock ticks of 10 ms, float sums
    assert before.redis_s > 0  # the server's CPU so far (other clients' included)
    assert cpu_bound_ratio(40.0, 10.0) == pytest.approx(1.6)  # R = W / 4 is the 1.6x line
    assert cpu_bound_ratio(40.0, 0.0) == 2.0
