"""A mistyped HOOKBUS_* variable stops every command at startup, naming the fix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bus import ConfigError
from sensors.cli import main
from sensors.settings_check import check_environment


def test_a_typo_is_refused_with_the_closest_setting() -> None:
    with pytest.raises(ConfigError, match="'HOOKBUS_BLOK_MS' .* Did you mean HOOKBUS_BLOCK_MS?"):
        check_environment({"HOOKBUS_BLOK_MS": "5", "HOOKBUS_REDIS_URL": "redis://x"})


def test_the_value_is_not_echoed_since_it_may_be_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        check_environment({"HOOKBUS_SLACK_TOKN": "xoxb-secret"})
    assert "xoxb-secret" not in str(info.value)


def test_known_settings_other_variables_and_test_variables_pass() -> None:
    check_environment(
        {"HOOKBUS_REDIS_URL": "redis://x", "HOOKBUS_TEST_REDIS_URL": "y", "PATH": "/bin"}
    )


def test_every_command_refuses_to_start() -> None:
    result = CliRunner(env={"HOOKBUS_REDIS_ULR": "redis://x"}).invoke(main, ["status"])
    assert result.exit_code == 2
    assert "Did you mean HOOKBUS_REDIS_URL?" in result.output


def test_a_read_batch_larger_than_what_a_worker_may_hold_is_refused() -> None:
    from sensors.settings import WorkerSettings

    with pytest.raises(ConfigError, match="Lower HOOKBUS_READ_COUNT or raise"):
        WorkerSettings(read_count=512, max_in_flight=256)
    assert WorkerSettings(read_count=256, max_in_flight=256).read_count == 256


@pytest.mark.parametrize("command", [["status"], ["worker", "tests.code_locations.alerting"]])
def test_a_value_of_the_wrong_type_names_the_variable_in_every_command(
    command: list[str],
) -> None:
    result = CliRunner(env={"HOOKBUS_CONCURRENCY": "lots"}).invoke(main, command)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: HOOKBUS_CONCURRENCY='lots' is not a valid integer: set it to a whole number ≥ 1"
    )


def test_a_redis_url_without_a_scheme_is_one_line_naming_the_fix() -> None:
    result = CliRunner(env={"HOOKBUS_REDIS_URL": "127.0.0.1:6379"}).invoke(main, ["status"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: HOOKBUS_REDIS_URL='127.0.0.1:6379' is not a Redis URL")
    assert "redis://127.0.0.1:6379/0" in line


def test_the_engine_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.settings import EngineSettings

    monkeypatch.setenv("HOOKBUS_STREAM_SHARDS", "many")
    with pytest.raises(ConfigError, match=r"^HOOKBUS_STREAM_SHARDS='many' is not a valid integer"):
        EngineSettings()
    monkeypatch.setenv("HOOKBUS_STREAM_SHARDS", "0")
    with pytest.raises(ConfigError, match=r"HOOKBUS_STREAM_SHARDS='0' is out of range: .* ≥ 1"):
        EngineSettings()
