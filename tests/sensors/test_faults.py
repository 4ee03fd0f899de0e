"""Fault tests: real worker processes, a real Redis, SIGKILL and SIGTERM.

Each test starts ``hookbus worker tests.code_locations.faults`` subprocesses whose hooks
write to Redis which process ran them, then breaks something and checks that every hook
ran to completion exactly once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from pathlib import Path

import redis

from bus import HOOKS_GROUP, Keys
from bus.redis_server import RedisServer
from engine import EngineSettings
from tests.code_locations import faults
from tests.code_locations.faults import HOLD, key
from tests.conftest import TEST_PREFIX
from tests.ledger_records import recorded_handlers
from tests.processes import wait_until, worker_process
from tests.streams import read_stream

LOCATION = "tests.code_locations.faults"
KEYS = Keys(prefix=TEST_PREFIX)
#: Short idle and sweep times so a dead worker's entries move within a second.
FAST: Mapping[str, str] = {
    "HOOKBUS_CLAIM_IDLE_MS": "600",
    "HOOKBUS_RECLAIM_INTERVAL_S": "0.2",
    "HOOKBUS_RETRY_BASE_S": "0.01",
    "HOOKBUS_RECONNECT_MAX_S": "0.3",
}


def pids(client: redis.Redis, name: str) -> list[int]:
    return [int(pid) for pid in client.lrange(key(name), 0, -1)]


def start_held_alert(redis_client: redis.Redis, engine_settings: EngineSettings) -> str:
    """Run ``slow_alert``; return its run id once the worker's (held) hook has started."""
    result = faults.slow_alert.execute_in_process(raise_on_error=False, settings=engine_settings)
    wait_until(lambda: pids(redis_client, f"faults:started:{result.run_id}"))
    return result.run_id


def pending(client: redis.Redis, group: str = HOOKS_GROUP) -> int:
    return int(client.xpending(KEYS.events_stream(0), group)["pending"])


def counts(client: redis.Redis, run_ids: list[str]) -> list[dict[bytes | str, bytes | str]]:
    return [client.hgetall(key(f"faults:count:{run_id}")) for run_id in run_ids]


def run_counted(settings: EngineSettings, times: int) -> list[str]:
    return [
        faults.counted.execute_in_process(raise_on_error=False, settings=settings).run_id
        for _ in range(times)
    ]


def recorded(client: redis.Redis) -> int:
    hook = ":hook:tests.code_locations.faults:count_hook"
    return sum(1 for field in recorded_handlers(client, KEYS) if field.endswith(hook))


def all_counted(client: redis.Redis, run_ids: list[str]) -> bool:
    return all(counts(client, run_ids))


def test_a_worker_killed_mid_hook_leaves_it_to_another_which_runs_it_once(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    redis_client.set(key(HOLD), 1)
    with (
        worker_process(
            LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w1", env=FAST
        ) as w1,
        worker_process(
            LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w2", env=FAST
        ) as w2,
    ):
        run_id = faults.slow_alert.execute_in_process(
            raise_on_error=False, settings=engine_settings
        ).run_id
        [first] = wait_until(lambda: pids(redis_client, f"faults:started:{run_id}"))
        victim, survivor = (w1, w2) if first == w1.pid else (w2, w1)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        redis_client.delete(key(HOLD))

        done = wait_until(lambda: pids(redis_client, f"faults:done:{run_id}"), what="reclaim")
        wait_until(lambda: pending(redis_client) == 0, what="the ack")

        assert done == [survivor.pid]
        assert pids(redis_client, f"faults:started:{run_id}") == [victim.pid, survivor.pid]
        assert pids(redis_client, f"faults:done:{run_id}") == [survivor.pid]


def test_a_long_hook_is_refreshed_and_never_taken_by_another_worker(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    redis_client.set(key(HOLD), 1)
    with (
        worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w1", env=FAST),
        worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w2", env=FAST),
    ):
        run_id = start_held_alert(redis_client, engine_settings)
        time.sleep(2.0)  # more than three claim idle times: a reclaim would happen by now
        redis_client.delete(key(HOLD))
        wait_until(lambda: pids(redis_client, f"faults:done:{run_id}"))
        wait_until(lambda: pending(redis_client) == 0, what="the ack")

        assert len(pids(redis_client, f"faults:started:{run_id}")) == 1
        assert len(pids(redis_client, f"faults:done:{run_id}")) == 1


def test_two_workers_share_the_load_and_handle_every_event_once(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    env = {**FAST, "HOOKBUS_READ_COUNT": "1"}
    with (
        worker_process(
            LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w1", env=env
        ) as w1,
        worker_process(
            LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w2", env=env
        ) as w2,
    ):
        run_ids = run_counted(engine_settings, 30)
        wait_until(lambda: all_counted(redis_client, run_ids), what="every hook")
        wait_until(lambda: redis_client.hlen(key("faults:sensor")) == 30, what="the sensor")
        wait_until(lambda: pending(redis_client) == 0, what="every ack")

        assert counts(redis_client, run_ids) == [{b"explode": b"1"}] * 30
        assert set(redis_client.hvals(key("faults:sensor"))) == {b"1"}
        assert {int(pid) for pid in redis_client.smembers(key("faults:pids"))} == {
            w1.pid,
            w2.pid,
        }


def test_a_restarted_worker_repeats_nothing(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    def start() -> object:
        redis_client.delete(KEYS.worker_heartbeat("w1"))
        return worker_process(
            LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w1", env=FAST
        )

    with start() as first:  # type: ignore[attr-defined]
        before = run_counted(engine_settings, 5)
        wait_until(lambda: all_counted(redis_client, before), what="the first runs")
        # Kill only once the successes are recorded (acks may still be missing): a kill
        # between a hook's side effect and its record is the one documented window.
        wait_until(lambda: recorded(redis_client) == 5, what="the ledger records")
        first.send_signal(signal.SIGKILL)
        first.wait()
    with start():  # type: ignore[attr-defined]
        after = run_counted(engine_settings, 5)
        wait_until(lambda: all_counted(redis_client, after), what="the runs after restart")
        wait_until(lambda: pending(redis_client) == 0, what="every ack")

    assert counts(redis_client, before + after) == [{b"explode": b"1"}] * 10


def test_garbage_in_the_stream_is_dead_lettered_and_the_worker_keeps_going(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    with worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, env=FAST) as worker:
        redis_client.xadd(KEYS.events_stream(0), {b"event": b"\x00\xffnot json"})
        redis_client.xadd(
            KEYS.events_stream(0), {b"event": b'{"type": "run", "schema_version": 99}'}
        )
        run_ids = run_counted(engine_settings, 1)

        wait_until(lambda: all_counted(redis_client, run_ids), what="the hook after garbage")
        letters = wait_until(
            lambda: read_stream(redis_client, KEYS.dead_letter_stream(0))[1:], what="letters"
        )
        assert worker.poll() is None

    reasons = sorted(
        fields[b"reason"] for _, fields in read_stream(redis_client, KEYS.dead_letter_stream(0))
    )
    assert reasons == [b"invalid_json", b"unknown_schema_version"]
    assert letters


def test_sigterm_lets_a_running_hook_finish_and_acks_it(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    redis_client.set(key(HOLD), 1)
    with worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, env=FAST) as worker:
        run_id = start_held_alert(redis_client, engine_settings)
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the worker is now draining, not yet done
        assert worker.poll() is None
        redis_client.delete(key(HOLD))
        assert worker.wait(timeout=10) == 0

    assert pids(redis_client, f"faults:done:{run_id}") == [worker.pid]
    assert pending(redis_client) == 0


def test_sigterm_hands_back_what_outlasts_the_grace_period(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    redis_client.set(key(HOLD), 1)
    env = {**FAST, "HOOKBUS_SHUTDOWN_GRACE_S": "0.5"}
    with worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, env=env) as worker:
        run_id = start_held_alert(redis_client, engine_settings)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        assert time.monotonic() - started < 3.0

    assert pending(redis_client) == 1  # handed back: left pending for another worker
    redis_client.delete(key(HOLD))
    with worker_process(
        LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, consumer="w2", env=FAST
    ) as other:
        wait_until(lambda: pids(redis_client, f"faults:done:{run_id}") == [other.pid])
        wait_until(lambda: pending(redis_client) == 0, what="the ack")


def test_a_second_signal_exits_at_once_leaving_the_entry_for_another_worker(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    redis_client.set(key(HOLD), 1)
    with worker_process(LOCATION, redis_url=redis_url, prefix=TEST_PREFIX, env=FAST) as worker:
        start_held_alert(redis_client, engine_settings)
        worker.send_signal(signal.SIGTERM)  # graceful: would wait up to the 25 s grace
        time.sleep(0.3)
        assert worker.poll() is None
        started = time.monotonic()
        worker.send_signal(signal.SIGINT)  # the operator's second Ctrl-C
        assert worker.wait(timeout=10) == 1
        assert time.monotonic() - started < 3.0

    assert pending(redis_client) == 1  # still pending: another worker will reclaim it
    redis_client.delete(key(HOLD))


def test_workers_resume_after_redis_restarts(tmp_path: Path, redis_client: redis.Redis) -> None:
    # Its own directory: the demo tests look for leftover temporary Redis directories.
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url)
        settings = EngineSettings(
            redis_url=server.url, key_prefix=TEST_PREFIX, spool_dir=tmp_path / "spool"
        )
        with worker_process(LOCATION, redis_url=server.url, prefix=TEST_PREFIX, env=FAST):
            before = run_counted(settings, 2)
            wait_until(lambda: all_counted(client, before), what="hooks before the restart")
            wait_until(lambda: pending(client) == 0, what="acks before the restart")
            server.stop()
            time.sleep(0.5)  # the worker is now failing to read, and backing off
            server.start()
            after = run_counted(settings, 2)
            wait_until(lambda: all_counted(client, after), timeout_s=15, what="hooks after")
            wait_until(lambda: pending(client) == 0, what="acks after the restart")

        assert counts(client, before + after) == [{b"explode": b"1"}] * 4
        client.close()
