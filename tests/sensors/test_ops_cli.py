"""The operator commands against a real Redis: status, events tail, dlq, worker --check."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis
from click.testing import CliRunner, Result

from bus import RunInfo, RunState
from bus.runs import RunRecord
from engine import EngineSettings, RunResult, job, op
from sensors import WorkerSettings
from sensors.check_runner import CheckRunner
from sensors.cli import main
from tests.code_locations import basic, checked, fixable
from tests.code_locations.fixable_process import nightly
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until, worker_process
from tests.workers import burst


@pytest.fixture
def cli(redis_url: str, redis_client: redis.Redis) -> Iterator[CliRunner]:
    yield CliRunner(env={"HOOKBUS_REDIS_URL": redis_url, "HOOKBUS_KEY_PREFIX": TEST_PREFIX})


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=False)


def test_status_is_unhealthy_without_a_live_worker(cli: CliRunner) -> None:
    result = invoke(cli, "status", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["workers"] == []
    assert report["problems"] == [
        "0 live worker(s), 1 required: start one with: hookbus worker <code location>"
    ]


def test_status_reports_groups_and_is_healthy_with_a_live_worker(
    cli: CliRunner,
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
) -> None:
    burst("tests.code_locations.basic", worker_settings)
    basic.quiet.execute_in_process(settings=engine_settings)
    heartbeat = engine_settings.keys.worker_heartbeat(f"{socket.gethostname()}-1")
    redis_client.set(heartbeat, "tests.code_locations.basic", ex=30)

    result = invoke(cli, "status", "--json")

    report = json.loads(result.output)
    assert result.exit_code == 0, report["problems"]
    [stream] = report["streams"]
    assert stream["length"] == 7
    groups = {group["name"]: group for group in stream["groups"]}
    assert groups["hooks"]["lag"] == 7 and groups["hooks"]["pending"] == 0
    assert "sensor:etl_failures" in groups
    assert [worker["location"] for worker in report["workers"]] == ["tests.code_locations.basic"]
    assert invoke(cli, "worker", "tests.code_locations.basic", "--check").exit_code == 0


def test_worker_check_fails_when_no_worker_on_this_host_is_alive(cli: CliRunner) -> None:
    assert invoke(cli, "worker", "tests.code_locations.basic", "--check").exit_code == 1


def test_events_tail_filters_and_prints_json_lines(
    cli: CliRunner, engine_settings: EngineSettings
) -> None:
    failed = basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    basic.quiet.execute_in_process(settings=engine_settings)

    result = invoke(cli, "events", "tail", "-n", "50", "--state", "failed", "--json")

    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(line["type"], line["run"]["run_id"]) for line in lines] == [
        ("op", failed.run_id),
        ("run", failed.run_id),
    ]
    readable = invoke(cli, "events", "tail", "--job", "quiet").output
    assert "quiet.total  running → completed" in readable
    assert "etl" not in readable.replace("quiet", "")


def test_a_dead_letter_is_listed_shown_replayed_after_the_fix_and_handled(
    cli: CliRunner, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    fixable.BROKEN, fixable.HANDLED[:] = True, []
    burst("tests.code_locations.fixable", worker_settings)
    fixable.nightly.execute_in_process(raise_on_error=False, settings=engine_settings)
    burst("tests.code_locations.fixable", worker_settings)

    [letter] = json.loads(invoke(cli, "dlq", "list", "--json").output)
    assert letter["handler"] == "hook:tests.code_locations.fixable:page_on_call"
    narrow = cli.invoke(main, ["dlq", "list"], env={"COLUMNS": "80"}, catch_exceptions=False)
    assert letter["id"] in narrow.output  # an 80-column terminal shows the id whole
    assert "KeyError: 'pager_service_url'" in letter["error"]
    shown = json.loads(invoke(cli, "dlq", "show", letter["id"]).output)
    assert shown["event_id"] == letter["event_id"]

    fixable.BROKEN = False
    assert invoke(cli, "dlq", "replay", letter["id"]).exit_code == 0
    burst("tests.code_locations.fixable", worker_settings)

    assert fixable.HANDLED == ["flaky_load"]
    assert json.loads(invoke(cli, "dlq", "list", "--json").output) == []


def test_dlq_show_of_an_unknown_id_is_one_clear_line(cli: CliRunner) -> None:
    result = cli.invoke(main, ["dlq", "show", "1-1"])
    assert result.exit_code == 2
    assert "dead letter '1-1' does not exist. List them with: hookbus dlq list" in result.output


def test_dlq_purge_needs_ids_or_all(cli: CliRunner, redis_client: redis.Redis) -> None:
    assert cli.invoke(main, ["dlq", "purge"]).exit_code == 2
    redis_client.xadd("{hookbus-test:s0}:dead", {"reason": "invalid_json", "payload": ""})
    assert "purged 1 dead letter(s)" in invoke(cli, "dlq", "purge", "--all").output


def test_an_unreachable_redis_is_one_clear_line_not_a_traceback() -> None:
    cli = CliRunner(env={"HOOKBUS_REDIS_URL": "redis://127.0.0.1:1/0"})
    result = cli.invoke(main, ["dlq", "list"])
    assert result.exit_code == 2
    assert "Redis did not answer" in result.output
    assert "HOOKBUS_REDIS_URL points at it" in result.output
    assert "Traceback" not in result.output


RELEASE = threading.Event()


@op
def wait_for_release() -> None:
    RELEASE.wait(timeout=20)


@job
def held_open() -> None:
    wait_for_release()


def test_runs_list_shows_an_active_run_and_runs_show_its_events(
    cli: CliRunner, engine_settings: EngineSettings
) -> None:
    RELEASE.clear()
    results: list[RunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(held_open.execute_in_process(settings=engine_settings))
    )
    runner.start()
    try:
        # The run is listed from its first (pending) event; wait until its op runs.
        active = wait_until(
            lambda: [
                run
                for run in json.loads(invoke(cli, "runs", "list", "--json").output)
                if run["running_ops"]
            ],
            what="the run to appear in runs list",
        )
    finally:
        RELEASE.set()
        runner.join(timeout=20)

    [run] = active
    assert run["job_name"] == "held_open" and run["state"] == "running"
    assert run["running_ops"] == ["wait_for_release"]
    assert run["deadline_in_s"] > 0
    shown = invoke(cli, "runs", "show", results[0].run_id, "--json").output.splitlines()
    assert [json.loads(line)["seq"] for line in shown] == [1, 2, 3, 4, 5]
    assert json.loads(invoke(cli, "runs", "list", "--json").output) == []


def test_events_tail_and_runs_show_take_check_events_in_their_stride(
    cli: CliRunner, engine_settings: EngineSettings, redis_client: redis.Redis, redis_url: str
) -> None:
    result = basic.quiet.execute_in_process(settings=engine_settings)
    stale = replace(checked.quiet_is_stale, job_name="nightly")
    # The run's record as if it were still running (since 2020): its stuck check fires.
    run = RunInfo(run_id=result.run_id, run_name="r", job_name="quiet")
    record = RunRecord(
        run=run, seq=9, state=RunState.RUNNING, state_since=datetime(2020, 1, 1, tzinfo=UTC)
    )
    redis_client.hset(
        engine_settings.keys.run_record(result.run_id), mapping=cast(Any, record.to_hash())
    )
    redis_client.zadd(engine_settings.keys.runs_alive_for_run(result.run_id), {result.run_id: 1e10})
    stuck = replace(checked.hanging_too_long, job_name="quiet")

    async def fire() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            runner = CheckRunner(client, keys=engine_settings.keys, checks=[stale, stuck])
            # Freshness fires a full window after it began watching (its first evaluation).
            now = datetime.now(UTC)
            await runner.run_once(now=now)
            await runner.run_once(now=now + timedelta(hours=2))
        finally:
            await client.aclose()

    asyncio.run(fire())

    lines = invoke(cli, "events", "tail", "-n", "50").output.splitlines()
    assert any(
        "nightly  check quiet_is_stale (not_fresh) fired  job nightly has" in line for line in lines
    )
    assert any(
        f"{result.run_id[:8]}  quiet  check hanging_too_long (run_stuck) fired" in line
        for line in lines
    )
    only = invoke(cli, "events", "tail", "--state", "check", "--json").output.splitlines()
    assert [json.loads(line)["check_name"] for line in only] == [
        "hanging_too_long",
        "quiet_is_stale",
    ]
    shown = invoke(cli, "runs", "show", result.run_id, "--json").output.splitlines()
    # Its transitions only: the check event about the run is not one of them.
    assert [json.loads(line)["seq"] for line in shown] == [1, 2, 3, 4, 5, 6, 7]


def test_runs_show_of_an_unknown_run_says_what_to_do(cli: CliRunner) -> None:
    result = cli.invoke(main, ["runs", "show", "nope"])
    assert result.exit_code == 2
    assert "run 'nope' has no events on the bus" in result.output


def test_runs_show_accepts_the_short_id_events_tail_prints(
    cli: CliRunner, engine_settings: EngineSettings
) -> None:
    result = basic.quiet.execute_in_process(settings=engine_settings)
    shown = invoke(cli, "runs", "show", result.run_id[:8], "--json").output.splitlines()
    assert {json.loads(line)["run"]["run_id"] for line in shown} == {result.run_id}


def test_hookbus_run_shows_why_the_job_failed(cli: CliRunner) -> None:
    result = cli.invoke(main, ["run", "tests.code_locations.basic", "etl", "--in-process"])
    assert result.exit_code == 1
    assert "ValueError: cannot load 6" in result.output
    assert "Traceback (most recent call last)" in result.output


def test_dlq_replay_with_a_real_worker_after_deploying_the_fix(
    cli: CliRunner, redis_url: str, engine_settings: EngineSettings, tmp_path: Path
) -> None:
    env = {"FIXABLE_DIR": str(tmp_path), "HOOKBUS_HANDLER_MAX_ATTEMPTS": "1"}
    with worker_process(
        "tests.code_locations.fixable_process", redis_url=redis_url, prefix=TEST_PREFIX, env=env
    ):
        run = nightly.execute_in_process(raise_on_error=False, settings=engine_settings)
        [letter] = wait_until(
            lambda: json.loads(invoke(cli, "dlq", "list", "--json").output),
            what="the failing hook's dead letter",
        )
        assert "KeyError: 'pager_service_url'" in letter["error"]

        (tmp_path / "fixed").touch()  # deploy the fix
        assert invoke(cli, "dlq", "replay", letter["id"]).exit_code == 0

        handled = wait_until(
            lambda: (tmp_path / "handled-flaky_load").exists(), what="the replayed hook"
        )
    assert handled and (tmp_path / "handled-flaky_load").read_text() == run.run_id
    assert json.loads(invoke(cli, "dlq", "list", "--json").output) == []


def test_a_dead_letter_without_payload_cannot_be_replayed(
    cli: CliRunner, redis_client: redis.Redis
) -> None:
    added = redis_client.xadd(
        "{hookbus-test:s0}:dead", {"reason": "missing_event_field", "payload": ""}
    )
    letter_id = added.decode() if isinstance(added, bytes) else str(added)
    result = cli.invoke(main, ["dlq", "replay", letter_id])
    assert result.exit_code == 2
    assert f"dead letter '{letter_id}' has no payload to replay" in result.output
