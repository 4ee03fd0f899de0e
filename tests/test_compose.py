"""docker-compose.yml is structurally valid and only runs real hookbus commands.

No Docker engine runs in CI, so this checks the file's structure and runs each service's
command against our CLI with ``--help`` (which fails for an unknown subcommand or option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sensors.cli import main

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    return dict(document["services"])


def test_redis_persists_with_aof_and_has_a_healthcheck(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert redis["healthcheck"]["test"][-1] == "ping"


def test_workers_are_replicated_and_health_checked(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["healthcheck"]["test"][1:3] == ["hookbus", "worker"]
    assert "--check" in worker["healthcheck"]["test"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["worker", "watcher", "example"])
def test_service_commands_are_real_hookbus_commands(services: dict[str, Any], service: str) -> None:
    config = services[service]
    assert "HOOKBUS_REDIS_URL" in config["environment"]
    commands = [config["command"]]
    if "healthcheck" in config:
        commands.append(config["healthcheck"]["test"][2:])
    for command in commands:
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0, (
            f"{service}: {command} is not a hookbus command: {result.output}"
        )
