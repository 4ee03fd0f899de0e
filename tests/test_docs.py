"""The docs follow the code: every setting is documented in docs/operations.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from bus.settings import BusSettings
from engine.settings import EngineSettings
from sensors.settings import HealthThresholds, WatchSettings, WorkerSettings

OPERATIONS = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()


@pytest.mark.parametrize(
    "settings_class",
    [BusSettings, EngineSettings, WorkerSettings, HealthThresholds, WatchSettings],
)
def test_every_setting_is_in_the_operations_table(settings_class: type[BaseSettings]) -> None:
    missing = [
        f"HOOKBUS_{name.upper()}"
        for name in settings_class.model_fields
        if f"`HOOKBUS_{name.upper()}`" not in OPERATIONS
    ]
    assert missing == [], f"document these in docs/operations.md: {missing}"
