"""Refusing ``HOOKBUS_*`` variables that no setting reads: a typo must not pass silently.

pydantic-settings reads only the variables of the fields it knows, so
``HOOKBUS_REDIS_ULR=...`` would be ignored and the default used. The CLI calls
``check_environment`` once at startup with the process environment, then
``check_values``, so a bad value fails every command, not only the one that reads it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Final

from pydantic_settings import BaseSettings

from bus.errors import ConfigError
from engine.settings import EngineSettings
from sensors.settings import WatchSettings, WorkerSettings

#: Every settings class a hookbus process loads; their fields are the known variables.
SETTINGS_CLASSES: Final[tuple[type[BaseSettings], ...]] = (
    EngineSettings,
    WorkerSettings,
    WatchSettings,
)
PREFIX: Final = "HOOKBUS_"
#: Variables under the prefix that are not settings: the test suite's own.
NOT_SETTINGS: Final = ("HOOKBUS_TEST_",)


def known_variables() -> frozenset[str]:
    """``HOOKBUS_<FIELD>`` for every field of every settings class."""
    return frozenset(
        f"{PREFIX}{name.upper()}" for cls in SETTINGS_CLASSES for name in cls.model_fields
    )


def check_environment(env: Mapping[str, str]) -> None:
    """Fail on the first ``HOOKBUS_*`` variable that no setting reads.

    Raises:
        ConfigError: naming the variable and the closest known one.
    """
    known = known_variables()
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known or name.startswith(NOT_SETTINGS):
            continue
        guess = difflib.get_close_matches(name, known, n=1)
        hint = f"Did you mean {guess[0]}?" if guess else "See docs/operations.md for the list."
        raise ConfigError(
            f"environment variable {name!r} is not a hookbus setting: got {name}="
            f"{'…' if env[name] else repr('')}. {hint} Fix or unset it."
        )


def check_values() -> None:
    """Fail on the first ``HOOKBUS_*`` value that some process kind would refuse.

    Every command checks every settings class, so ``HOOKBUS_CONCURRENCY=lots`` fails
    ``hookbus status`` too, not only the worker it is meant for.

    Raises:
        ConfigError: naming the variable, its value and the fix.
    """
    for cls in SETTINGS_CLASSES:
        cls()
