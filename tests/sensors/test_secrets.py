"""A worker's secrets stay in the worker: no event picks them, no message or event shows them."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Mapping
from typing import Any

import pytest
import redis
from pydantic import BaseModel

from bus import EnvVar, Keys, OpEvent, ResourceInitContext
from engine import EngineSettings, ResourceDefinition, RunConfigError, job, op, resource
from sensors.errors import CodeLocationError
from sensors.handlers import Handler
from sensors.registry import CodeLocation
from sensors.resources import ResourceBuilder
from tests.conftest import TEST_PREFIX
from tests.streams import read_events, read_stream

KEYS = Keys(prefix=TEST_PREFIX)
SECRET = "s3cr3t-value-of-the-worker"
WORKER_ENV = {"SECRET_TOKEN": SECRET, "SLACK_TOKEN": "xoxb-worker"}


class PortConfig(BaseModel):
    port: int = 5432


@resource(config_schema=PortConfig)
def database(init_context: ResourceInitContext) -> str:
    return f"db:{init_context.resource_config['port']}"


@resource
def slack(init_context: ResourceInitContext) -> str:
    return f"slack({init_context.resource_config['token']})"


@op
def nothing() -> None:
    return None


@job(
    resource_defs={
        "db": database,
        "slack": slack.configured({"token": EnvVar("SLACK_TOKEN")}),
    }
)
def etl() -> None:
    nothing()


def build(resource_config: Mapping[str, Mapping[str, Any]], key: str) -> Any:
    """What a worker builds for a hook of ``etl`` whose event carries ``resource_config``."""
    location = CodeLocation(module_name="tests.sensors.test_secrets", jobs={"etl": etl})
    builder = ResourceBuilder(location, env=WORKER_ENV, timeout_s=5)
    handler = Handler(
        name="hook:tests.sensors.test_secrets:alert",
        fn=print,
        build_args=lambda resources: (),
        resource_keys=frozenset({key}),
        job_name="etl",
        resource_config=resource_config,
    )
    return asyncio.run(builder.build(handler, event_id="1-0", attempt=1))[key]


def test_an_event_cannot_make_the_worker_resolve_a_variable_the_code_does_not_declare() -> None:
    with pytest.raises(
        CodeLocationError,
        match=r"resource 'db' field 'port' names environment variable 'SECRET_TOKEN', which "
        r"the code location does not declare: got \['SLACK_TOKEN'\]",
    ) as raised:
        build({"db": {"port": {"env": "SECRET_TOKEN"}}}, "db")
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def test_a_variable_the_code_declares_may_be_named_by_the_run_config() -> None:
    assert build({"slack": {"token": {"env": "SLACK_TOKEN"}}}, "slack") == "slack(xoxb-worker)"


def test_a_redacted_value_from_the_event_keeps_the_workers_configured_value() -> None:
    assert build({"slack": {"token": "[redacted]"}}, "slack") == "slack(xoxb-worker)"


def test_an_invalid_config_names_the_resource_field_and_variable_never_the_value() -> None:
    configured = database.configured({"port": EnvVar("SECRET_TOKEN")})
    assert isinstance(configured, ResourceDefinition)
    with pytest.raises(
        RunConfigError,
        match=r"config of resource 'database' is invalid: field 'port': .*: got the value of "
        r"environment variable 'SECRET_TOKEN' \(not shown\)\. Fix it",
    ) as raised:
        configured.create_resource(ResourceInitContext(env=WORKER_ENV))
    assert SECRET not in "".join(traceback.format_exception(raised.value))


@op
def fetch() -> dict[str, Any]:
    return {"rows": 3, "api_token": SECRET, "nested": [{"password": SECRET}]}


@job
def fetching() -> None:
    fetch()


def test_op_outputs_are_published_redacted_like_config(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = fetching.execute_in_process(settings=engine_settings)

    events = [e for e in read_events(redis_client, KEYS.stream_for_run(result.run_id))]
    done = [e for e in events if isinstance(e, OpEvent) and e.to_state == "completed"]
    assert done[0].op.outputs == {
        "result": {"rows": 3, "api_token": "[redacted]", "nested": [{"password": "[redacted]"}]}
    }
    assert result.ops["fetch"].output["api_token"] == SECRET  # the run itself keeps it
    assert SECRET.encode() not in b"".join(
        fields[b"event"] for _, fields in read_stream(redis_client, KEYS.events_stream(0))
    )


class PinConfig(BaseModel):
    pin_password: int


@op
def unlock(config: PinConfig) -> int:
    return config.pin_password


@job
def unlocking() -> None:
    unlock()


def test_an_invalid_op_config_does_not_show_a_secret_looking_value(
    engine_settings: EngineSettings,
) -> None:
    with pytest.raises(
        RunConfigError,
        match=r"config of op 'unlock' is invalid at field 'pin_password': .*got a value of type "
        r"str \(not shown\)\. Fix ops\.unlock\.config\.pin_password",
    ) as raised:
        unlocking.execute_in_process(
            run_config={"ops": {"unlock": {"config": {"pin_password": SECRET}}}},
            settings=engine_settings,
        )
    assert SECRET not in "".join(traceback.format_exception(raised.value))
