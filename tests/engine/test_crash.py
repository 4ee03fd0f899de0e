"""The crash contract: a killed job's crash is published once, by whoever sees it first."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from click.testing import CliRunner

from bus import Keys, OpEvent, RunEvent, RunInfo, RunState, encode_event
from bus.events import CrashInfo
from bus.runs import RunRecord
from bus.spool import SpoolFile
from engine import EngineSettings
from engine.supervise import claim_and_publish, publish_crash_after_exit
from sensors.cli import main
from sensors.crash_detection import publish_lost_runs
from tests.code_locations import lifecycle
from tests.conftest import TEST_PREFIX
from tests.processes import ROOT, wait_until, worker_process
from tests.streams import read_events

KEYS = Keys(prefix=TEST_PREFIX)


def run_config(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "hang.marker"
    config = tmp_path / "run.yaml"
    config.write_text(f"ops:\n  hang:\n    config:\n      marker: {marker}\n")
    return config, marker


@contextmanager
def hookbus_run(
    redis_url: str, tmp_path: Path, config: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``hookbus run tests.code_locations.lifecycle hanging`` in its own process group."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sensors", "run", "--config", str(config)]
        + ["tests.code_locations.lifecycle", "hanging"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOOKBUS_REDIS_URL": redis_url,
            "HOOKBUS_KEY_PREFIX": TEST_PREFIX,
            "HOOKBUS_SPOOL_DIR": str(tmp_path / "spool"),
            **(env or {}),
        },
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def live_record(client: redis.Redis) -> RunRecord:
    """The one live run's record, once its ``hang`` op runs."""

    def find() -> RunRecord | None:
        run_ids = cast(list[bytes], client.zrange(KEYS.runs_alive(0), 0, -1))
        for run_id in run_ids:
            fields = cast(dict[bytes, bytes], client.hgetall(KEYS.run_record(run_id.decode())))
            record = RunRecord.from_hash(fields)
            if record is not None and "hang" in record.running:
                return record
        return None

    found = wait_until(find, timeout_s=20, what="the hang op to run")
    assert found is not None
    return found


def run_events(client: redis.Redis, run_id: str) -> list[RunEvent | OpEvent]:
    return [e for e in read_events(client, KEYS.stream_for_run(run_id)) if e.run_id == run_id]


def crashed(client: redis.Redis, run_id: str) -> RunEvent | None:
    for event in run_events(client, run_id):
        if isinstance(event, RunEvent) and event.to_state == "crashed":
            return event
    return None


def test_sigkill_of_the_child_is_published_by_the_supervisor_within_a_second(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, marker = run_config(tmp_path)
    with hookbus_run(redis_url, tmp_path, config) as parent:
        record = live_record(redis_client)
        assert record.pid is not None and record.pid != parent.pid
        os.kill(record.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        event = wait_until(
            lambda: crashed(redis_client, record.run.run_id), timeout_s=5, what="crashed event"
        )
        took_s = time.monotonic() - killed_at
        assert event is not None
        assert parent.wait(timeout=10) == 128 + signal.SIGKILL

    assert took_s < 1.0
    assert event.crash is not None
    assert (event.crash.reason, event.crash.signal, event.crash.exit_code) == (
        "signal",
        "SIGKILL",
        -signal.SIGKILL,
    )
    assert event.crash.detected_by == "supervisor"
    assert event.error is not None and "SIGKILL" in event.error.message
    # As alerts show it, "Crashed: <message>", the crash is said once.
    shown = f"{event.error.type}: {event.error.message}"
    assert shown.lower().count("crash") == 1, shown
    assert f"process {record.pid} on " in shown and record.run.run_id in shown
    assert [hook.name for hook in event.hooks_triggered()] == ["cleanup"]
    events = run_events(redis_client, record.run.run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    op_crash = events[-2]
    assert isinstance(op_crash, OpEvent)
    assert (op_crash.op.step_key, op_crash.from_state, op_crash.to_state) == (
        "hang",
        "running",
        "crashed",
    )
    assert op_crash.op.config == {"marker": str(marker)}
    assert not redis_client.zscore(KEYS.runs_alive(0), record.run.run_id)


def test_when_the_whole_process_group_dies_a_worker_publishes_the_crash_and_runs_on_crashed(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, _ = run_config(tmp_path)
    # The job starts first so that both processes start up at the same time.
    with (
        hookbus_run(
            redis_url,
            tmp_path,
            config,
            env={"HOOKBUS_HEARTBEAT_INTERVAL_S": "0.1", "HOOKBUS_HEARTBEAT_TIMEOUT_S": "0.6"},
        ) as parent,
        worker_process(
            "tests.code_locations.lifecycle",
            redis_url=redis_url,
            prefix=TEST_PREFIX,
            # The engines' heartbeat timeout, as a deployment sets it for workers too: a
            # worker claims no crash before its link was steady that long (the default
            # 10 s left this test about 1 s of its 10 s wait).
            env={"HOOKBUS_CRASH_CHECK_INTERVAL_S": "0.1", "HOOKBUS_HEARTBEAT_TIMEOUT_S": "0.6"},
        ) as worker,
    ):
        record = live_record(redis_client)
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        event = wait_until(
            lambda: crashed(redis_client, record.run.run_id), timeout_s=10, what="crashed event"
        )
        assert event is not None
        hook_calls = wait_until(
            lambda: lifecycle.calls(redis_client), timeout_s=10, what="the on_crashed hook"
        )

    assert event.crash is not None
    assert event.crash.reason == "heartbeat_lost"
    assert event.crash.detected_by == "worker:proc-worker"
    assert event.crash.pid == record.pid
    assert hook_calls == [
        {
            "hook": "cleanup",
            "pid": worker.pid,
            "job": "hanging",
            "run_id": record.run.run_id,
            "state": "Crashed",
            "message": event.message,
        }
    ]


def test_a_crash_is_claimed_once_whoever_looks(redis_client: redis.Redis, redis_url: str) -> None:
    run = RunInfo(run_id="r-lost", run_name="hanging-r-lost", job_name="hanging")
    record = RunRecord(run=run, seq=3, state=RunState.RUNNING, pid=1, host="gone")
    redis_client.hset(KEYS.run_record("r-lost"), mapping=cast(Any, record.to_hash()))
    redis_client.zadd(KEYS.runs_alive(0), {"r-lost": time.time() - 1})

    async def detect() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await publish_lost_runs(client, KEYS, consumer="w1")
        finally:
            await client.aclose()

    assert asyncio.run(detect()) == ["r-lost"]
    assert asyncio.run(detect()) == []
    event = crashed(redis_client, "r-lost")
    assert event is not None and event.seq == 4 and event.crash is not None
    assert claim_and_publish(redis_client, KEYS, "r-lost", event.crash) is False
    assert len(run_events(redis_client, "r-lost")) == 1


def test_sigterm_to_hookbus_run_ends_the_run_as_crashed_by_the_engine_itself(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, _ = run_config(tmp_path)
    with hookbus_run(redis_url, tmp_path, config) as parent:
        record = live_record(redis_client)
        parent.send_signal(signal.SIGTERM)  # forwarded to the child
        assert parent.wait(timeout=10) == 128 + signal.SIGTERM

    events = run_events(redis_client, record.run.run_id)
    last = events[-1]
    assert isinstance(last, RunEvent) and last.to_state == "crashed"
    assert last.crash is not None
    assert (last.crash.signal, last.crash.detected_by) == ("SIGTERM", "engine")
    assert isinstance(events[-2], OpEvent) and events[-2].to_state == "crashed"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_a_run_cancelled_from_another_process_stops_at_the_next_op_and_runs_on_cancellation(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, marker = run_config(tmp_path)
    with (
        hookbus_run(
            redis_url, tmp_path, config, env={"HOOKBUS_HEARTBEAT_INTERVAL_S": "0.1"}
        ) as parent,
        worker_process(
            "tests.code_locations.lifecycle", redis_url=redis_url, prefix=TEST_PREFIX
        ) as worker,
    ):
        run_id = live_record(redis_client).run.run_id
        # `hookbus runs cancel` from this process; the run lives in the supervised child.
        runner = CliRunner(env={"HOOKBUS_REDIS_URL": redis_url, "HOOKBUS_KEY_PREFIX": TEST_PREFIX})
        cancel = runner.invoke(main, ["runs", "cancel", run_id])
        assert cancel.exit_code == 0, cancel.output
        assert f"cancel requested for run {run_id}" in cancel.output
        wait_until(
            lambda: any(e.to_state == "cancelling" for e in run_events(redis_client, run_id)),
            timeout_s=20,
            what="the run to go cancelling",
        )
        marker.unlink()  # let the running op finish: the run stops at the next op
        assert parent.wait(timeout=20) == 1
        hook_calls = wait_until(
            lambda: lifecycle.calls(redis_client), timeout_s=20, what="the on_cancellation hook"
        )

    steps = [
        (e.op.step_key if isinstance(e, OpEvent) else "run", e.from_state, e.to_state)
        for e in run_events(redis_client, run_id)
    ]
    assert steps[-4:] == [
        ("run", "running", "cancelling"),
        ("hang", "running", "completed"),
        ("after", None, "skipped"),
        ("run", "cancelling", "cancelled"),
    ]
    assert hook_calls == [
        {
            "hook": "on_cancel",
            "pid": worker.pid,
            "job": "hanging",
            "run_id": run_id,
            "state": "Cancelling",
        }
    ]


def test_ctrl_c_crashes_the_run_once_with_keyboard_interrupt(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, _ = run_config(tmp_path)
    with hookbus_run(redis_url, tmp_path, config) as parent:
        record = live_record(redis_client)
        os.killpg(parent.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert parent.wait(timeout=10) != 0

    events = run_events(redis_client, record.run.run_id)
    crashes = [e for e in events if isinstance(e, RunEvent) and e.to_state == "crashed"]
    assert len(crashes) == 1 and crashes[0].crash is not None
    assert (crashes[0].crash.signal, crashes[0].crash.detected_by) == (
        "KeyboardInterrupt",
        "engine",
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_hookbus_run_refuses_a_bad_config_before_any_child_starts(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ops:\n  hang:\n    config:\n      marker: [1, 2]\n")
    runner = CliRunner(env={"HOOKBUS_REDIS_URL": redis_url, "HOOKBUS_KEY_PREFIX": TEST_PREFIX})

    result = runner.invoke(
        main, ["run", "--config", str(bad), "tests.code_locations.lifecycle", "hanging"]
    )

    assert result.exit_code == 2
    assert "config of op 'hang' is invalid at field 'marker'" in result.output
    assert redis_client.keys("*") == []


def test_the_supervisor_continues_the_sequence_after_what_the_child_spooled(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = EngineSettings(redis_url=redis_url, key_prefix=TEST_PREFIX, spool_dir=tmp_path)
    run = RunInfo(run_id="r-spooled", run_name="hanging-r-spooled", job_name="hanging")
    record = RunRecord(run=run, seq=3, state=RunState.RUNNING, pid=1, host="here")
    redis_client.hset(KEYS.run_record("r-spooled"), mapping=cast(Any, record.to_hash()))
    redis_client.zadd(KEYS.runs_alive(0), {"r-spooled": time.time() + 60})
    # Redis was away for events 4 and 5: they are in the dead child's spool only.
    spool = SpoolFile(tmp_path, "r-spooled")
    for seq in (4, 5):
        event = RunEvent(seq=seq, run=run, from_state=RunState.RUNNING, to_state=RunState.RUNNING)
        spool.append(KEYS.stream_for_run("r-spooled"), encode_event(event), fsync=False)
    spool.close()
    crash = CrashInfo(reason="signal", signal="SIGKILL", exit_code=-9, detected_by="supervisor")

    assert publish_crash_after_exit("r-spooled", crash, settings=settings) is True

    assert [e.seq for e in run_events(redis_client, "r-spooled")] == [4, 5, 6]
