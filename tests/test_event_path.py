"""The event's path is written down twice (bus docstring, docs/architecture.md) and every
function it names exists, so a newcomer who greps for a hop finds it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import bus

ARCHITECTURE = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
PATH_SECTION = ARCHITECTURE.split("## The path of an event")[1].split("\n## ")[0]
DOTTED = re.compile(r"`{1,2}((?:bus|engine|sensors|notifiers)(?:\.\w+)+)`{1,2}")


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


@pytest.mark.parametrize(
    "text", [PATH_SECTION, bus.__doc__ or ""], ids=["docs/architecture.md", "bus docstring"]
)
def test_every_hop_named_on_the_path_exists(text: str) -> None:
    names = DOTTED.findall(text)
    assert len(names) >= 7
    missing = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert missing == []
