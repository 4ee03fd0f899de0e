"""Sensors as independent subscribers: stop, start, replay (CLI and functions), new sensors
starting at "now"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from click.testing import CliRunner, Result

from bus import HOOKS_GROUP, Keys
from bus.errors import ConfigError
from bus.utils import text
from engine import EngineSettings
from sensors import SensorNotFoundError, WorkerSettings
from sensors.cli import main
from sensors.control import parse_since, replay_sensor, sensor_states, stop_sensor
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.workers import burst

KEYS = Keys(prefix=TEST_PREFIX)
SENSOR = "etl_failures"


@pytest.fixture(autouse=True)
def clear_calls() -> Iterator[None]:
    basic.CALLS.clear()
    yield
    basic.CALLS.clear()


@pytest.fixture
def cli(redis_url: str, redis_client: redis.Redis) -> CliRunner:
    return CliRunner(env={"HOOKBUS_REDIS_URL": redis_url, "HOOKBUS_KEY_PREFIX": TEST_PREFIX})


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=False)


def sensor_calls() -> list[str]:
    return [details["run_id"] for name, details in basic.CALLS if name == SENSOR]


def failing_run(settings: EngineSettings) -> str:
    return basic.etl.execute_in_process(raise_on_error=False, settings=settings).run_id


def test_a_stopped_sensor_skips_events_and_starts_again_from_now(
    cli: CliRunner, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    burst("tests.code_locations.basic", worker_settings)  # the worker creates the sensor's group
    assert invoke(cli, "sensors", "stop", SENSOR).output == f"sensor {SENSOR} stopped\n"

    while_stopped = failing_run(engine_settings)
    burst("tests.code_locations.basic", worker_settings)
    assert sensor_calls() == []
    assert ("notify", while_stopped) in [(n, d.get("run_id")) for n, d in basic.CALLS]

    assert invoke(cli, "sensors", "start", SENSOR).exit_code == 0
    after = failing_run(engine_settings)
    burst("tests.code_locations.basic", worker_settings)

    assert sensor_calls() == [after]


def test_start_resume_delivers_what_happened_while_stopped(
    cli: CliRunner, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    burst("tests.code_locations.basic", worker_settings)
    invoke(cli, "sensors", "stop", SENSOR)
    while_stopped = failing_run(engine_settings)
    burst("tests.code_locations.basic", worker_settings)

    invoke(cli, "sensors", "start", "--resume", SENSOR)
    burst("tests.code_locations.basic", worker_settings)

    assert sensor_calls() == [while_stopped]


def test_a_new_sensor_starts_at_now_and_replay_delivers_history(
    cli: CliRunner, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    before_any_worker = failing_run(engine_settings)
    burst("tests.code_locations.basic", worker_settings)
    assert sensor_calls() == []  # a new sensor starts at "now"

    result = invoke(cli, "sensors", "replay", SENSOR, "--since", "2h")
    assert result.output.startswith(f"sensor {SENSOR} replays from ")
    burst("tests.code_locations.basic", worker_settings)

    assert sensor_calls() == [before_any_worker]


def test_replay_before_any_worker_runs_the_sensor(
    redis_client: redis.Redis, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    old = failing_run(engine_settings)
    replay_sensor(redis_client, KEYS, SENSOR, since=timedelta(hours=1))
    burst("tests.code_locations.basic", worker_settings)

    assert sensor_calls() == [old]


def test_replay_works_on_shards_nothing_was_published_to(redis_client: redis.Redis) -> None:
    keys = Keys(prefix=TEST_PREFIX, shards=2)
    replay_sensor(redis_client, keys, SENSOR, since=timedelta(hours=1))

    for stream in keys.all_event_streams():
        groups = {text(group["name"]) for group in redis_client.xinfo_groups(stream)}
        assert groups == {HOOKS_GROUP, keys.sensor_group(SENSOR)}


def test_replay_leaves_out_what_is_older_than_since(
    redis_client: redis.Redis, engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    failing_run(engine_settings)
    replay_sensor(redis_client, KEYS, SENSOR, since=timedelta(seconds=1), now_s=time.time() + 3600)
    burst("tests.code_locations.basic", worker_settings)

    assert sensor_calls() == []


def test_sensors_list_shows_state_lag_and_pending(
    cli: CliRunner,
    redis_client: redis.Redis,
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
) -> None:
    burst("tests.code_locations.basic", worker_settings)
    stop_sensor(redis_client, KEYS, SENSOR)
    failing_run(engine_settings)

    [state] = sensor_states(redis_client, KEYS)
    output = invoke(cli, "sensors", "list").output

    assert (state.name, state.stopped, state.pending) == (SENSOR, True, 0)
    assert state.lag is not None and state.lag > 0
    assert SENSOR in output and "stopped" in output
    [listed] = json.loads(invoke(cli, "sensors", "list", "--json").output)
    assert listed == state.model_dump(mode="json")


def test_stopping_an_unknown_sensor_names_it_and_the_fix(
    cli: CliRunner, redis_client: redis.Redis
) -> None:
    with pytest.raises(SensorNotFoundError, match=r"sensor 'nope' has no consumer group"):
        stop_sensor(redis_client, KEYS, "nope")
    result = cli.invoke(main, ["sensors", "start", "nope"])
    assert result.exit_code == 2
    assert "hookbus sensors list" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2))],
)
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


def test_parse_since_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(ConfigError, match=r"duration '2 weeks' is not understood.*--since 2h"):
        parse_since("2 weeks")
