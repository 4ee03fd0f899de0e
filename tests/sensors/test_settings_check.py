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
    from pydantic import ValidationError

    from sensors.settings import WorkerSettings

    with pytest.raises(ValidationError, match="Lower HOOKBUS_READ_COUNT or raise"):
        WorkerSettings(read_count=512, max_in_flight=256)
    assert WorkerSettings(read_count=256, max_in_flight=256).read_count == 256
