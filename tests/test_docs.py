"""The docs follow the code: every setting is documented in docs/operations.md."""

from __future__ import annotations

import importlib
import re
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


CONCEPTS = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()


def test_the_import_table_names_only_what_each_module_exports() -> None:
    section = CONCEPTS.split("## Where to import from")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([a-z.]+)` \| (.+) \|$", section, flags=re.M)
    assert [module for module, _ in rows] == [
        "engine",
        "sensors",
        "bus",
        "notifiers",
        "notifiers.testing",
    ]
    for module_name, names in rows:
        module = importlib.import_module(module_name)
        missing = [name for name in re.findall(r"`(\w+)`", names) if not hasattr(module, name)]
        assert missing == [], f"{module_name} does not export {missing}"
