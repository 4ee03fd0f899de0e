"""docs/alerts.md's examples run as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
import redis

from notifiers import NotificationRule
from sensors import CodeLocation, SensorDefinition
from tests.conftest import TEST_PREFIX

DOC = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def run_block(needle: str) -> types.ModuleType:
    [source] = [block for block in BLOCKS if needle in block]
    module = types.ModuleType("alerts_doc")
    exec(compile(source, "docs/alerts.md", "exec"), module.__dict__)
    return module


def test_the_rules_example_defines_two_rules_a_worker_indexes() -> None:
    module = run_block("oncall = NotificationRule(")
    location = CodeLocation.from_module(module)
    assert sorted(location.rules) == ["local", "oncall"]
    oncall: NotificationRule = location.rules["oncall"]
    assert [d.name for d in oncall.destinations] == ["slack:#data-alerts", "webhook:pager"]


def test_the_sensor_example_defines_a_sensor() -> None:
    module = run_block("make_slack_on_run_failure_sensor(")
    sensor: SensorDefinition = module.slack_on_run_failure
    assert sensor.monitored_jobs == frozenset({"nightly_etl"})
    assert list(CodeLocation.from_module(module).sensors) == ["slack_on_run_failure"]


def test_the_receiver_example_compiles() -> None:
    assert callable(run_block("def receive(").receive)


def test_the_testing_example_passes(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKBUS_REDIS_URL", redis_url)
    monkeypatch.setenv("HOOKBUS_KEY_PREFIX", TEST_PREFIX)
    module = run_block("def test_a_failed_op_alerts_in_slack(")
    module.test_a_failed_op_alerts_in_slack()
