"""Run config (dict or YAML) is checked before the run; resources by Dagster's names."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from pydantic import BaseModel

from bus import EnvVar, Keys, OpEvent, ResourceInitContext
from engine import (
    DefinitionError,
    EngineSettings,
    ResourceDefinition,
    RunConfigError,
    graph,
    job,
    op,
    resource,
)
from tests.code_locations import flows, seeds_dagster
from tests.conftest import TEST_PREFIX
from tests.streams import read_events, read_stream

KEYS = Keys(prefix=TEST_PREFIX)


def op_events(client: redis.Redis, run_id: str) -> list[OpEvent]:
    return [e for e in read_events(client, KEYS.stream_for_run(run_id)) if isinstance(e, OpEvent)]


def test_op_config_reaches_the_op_and_travels_redacted(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = flows.configured_job.execute_in_process(
        run_config={"ops": {"limited": {"config": {"limit": 5, "api_token": "xoxp-1"}}}},
        settings=engine_settings,
    )

    assert result.output == 5
    assert result.ops["use_store"].output == {"kind": "mock"}
    limited = [e for e in op_events(redis_client, result.run_id) if e.op.name == "limited"]
    assert limited[0].op.config == {"limit": 5, "api_token": "[redacted]", "region": "eu"}
    assert b"xoxp-1" not in b"".join(
        fields[b"event"] for _, fields in read_stream(redis_client, KEYS.events_stream(0))
    )


def test_run_config_from_a_yaml_file(engine_settings: EngineSettings, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("ops:\n  limited:\n    config:\n      limit: 9\n")

    result = flows.configured_job.execute_in_process(run_config=str(path), settings=engine_settings)

    assert result.output == 9


def test_invalid_config_fails_before_the_run_naming_the_op_and_the_field(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    with pytest.raises(
        RunConfigError,
        match=r"config of op 'limited' is invalid at field 'limit': .*got 'many'\. "
        r"Fix ops\.limited\.config\.limit",
    ):
        flows.configured_job.execute_in_process(
            run_config={"ops": {"limited": {"config": {"limit": "many"}}}},
            settings=engine_settings,
        )
    with pytest.raises(RunConfigError, match=r"config of op 'limited' is invalid at field 'limit'"):
        flows.configured_job.execute_in_process(settings=engine_settings)
    assert redis_client.keys("*") == []  # nothing was published


def test_unknown_ops_resources_and_keys_in_run_config_are_refused(
    engine_settings: EngineSettings, tmp_path: Path
) -> None:
    with pytest.raises(
        RunConfigError,
        match=r"names op 'limitd', which job 'configured_job' does not call: got 'limitd'\. "
        r"Use one of \['limited', 'use_store'\]",
    ):
        flows.configured_job.execute_in_process(
            run_config={"ops": {"limitd": {"config": {}}}}, settings=engine_settings
        )
    with pytest.raises(RunConfigError, match=r"names resource 'slack', which job"):
        flows.configured_job.execute_in_process(
            run_config={"resources": {"slack": {"config": {}}}}, settings=engine_settings
        )
    with pytest.raises(RunConfigError, match=r"run config is invalid at 'solids'"):
        flows.configured_job.execute_in_process(run_config={"solids": {}}, settings=engine_settings)
    with pytest.raises(RunConfigError, match=r"run config file .* cannot be read"):
        flows.configured_job.execute_in_process(
            run_config=str(tmp_path / "missing.yaml"), settings=engine_settings
        )


class TokenConfig(BaseModel):
    token: str


@resource(config_schema=TokenConfig)
def token_client(init_context: ResourceInitContext) -> str:
    return f"client({init_context.resource_config['token']})"


@op(required_resource_keys={"slack"})
def whoami(context: object) -> str:
    return context.resources.slack  # type: ignore[attr-defined, no-any-return]


def test_resource_config_comes_from_run_config_or_configured_and_env_vars_resolve_late(
    engine_settings: EngineSettings,
) -> None:
    @job(resource_defs={"slack": token_client})
    def from_run_config() -> str:
        return whoami()  # type: ignore[no-any-return]

    @job(resource_defs={"slack": token_client.configured({"token": EnvVar("SLACK_TOKEN")})})
    def from_configured() -> str:
        return whoami()  # type: ignore[no-any-return]

    by_run_config = from_run_config.execute_in_process(
        run_config={"resources": {"slack": {"config": {"token": {"env": "T1"}}}}},
        settings=engine_settings,
        env={"T1": "abc"},
    )
    by_configured = from_configured.execute_in_process(
        settings=engine_settings, env={"SLACK_TOKEN": "xyz"}
    )
    assert (by_run_config.output, by_configured.output) == ("client(abc)", "client(xyz)")
    with pytest.raises(RunConfigError, match=r"config of resource 'token_client' is invalid"):
        token_client.create_resource(ResourceInitContext(config={}))


def test_a_missing_resource_is_a_definition_error() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"op 'whoami' in job 'no_slack' requires resources \['slack'\] that the job "
        r"does not define",
    ):

        @job
        def no_slack() -> None:
            whoami()

    with pytest.raises(DefinitionError, match=r"hook 'needs_slack' in job 'hooked'"):
        job(name="hooked", hooks={seeds_dagster.needs_slack})(flows.retries_skip_failure.fn)


def test_one_graph_becomes_a_dev_and_a_prod_job(engine_settings: EngineSettings) -> None:
    @graph
    def notify_all() -> str:
        return whoami()  # type: ignore[no-any-return]

    dev = notify_all.to_job(
        name="notify_dev",
        resource_defs={
            "slack": ResourceDefinition.hardcoded_resource("mock", "no messages in dev")
        },
    )
    prod = notify_all.to_job(name="notify_prod", resource_defs={"slack": token_client})

    assert dev.execute_in_process(settings=engine_settings).output == "mock"
    prod_result = prod.execute_in_process(
        run_config={"resources": {"slack": {"config": {"token": "t"}}}}, settings=engine_settings
    )
    assert prod_result.output == "client(t)"
    assert sorted(dev.op_defs) == ["whoami"]


def test_negative_retries_are_refused() -> None:
    with pytest.raises(DefinitionError, match=r"op 'f' has a negative retries: got -1"):

        @op(retries=-1)
        def f() -> None: ...


def test_job_parameters_with_secret_names_are_redacted_in_events(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    @job
    def with_params(table: str, db_password: str = "hunter2") -> str:
        return table

    result = with_params.execute_in_process("orders", settings=engine_settings)

    [first, *_] = read_events(redis_client, KEYS.stream_for_run(result.run_id))
    assert first.run.parameters == {"table": "orders", "db_password": "[redacted]"}
