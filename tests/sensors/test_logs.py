"""Logging: compact text lines by default, JSON lines on request."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from sensors.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_format_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    logging.getLogger("sensors.test").info("handler started handler=%s", "hook:m:f")
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["message"] == "handler started handler=hook:m:f"
    assert record["levelname"] == "INFO" and record["name"] == "sensors.test"


def test_text_format_is_one_compact_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    logging.getLogger("sensors.test").warning("redis unavailable group=%s", "hooks")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING sensors.test: redis unavailable group=hooks")
