"""What every ``hookbus`` command shares: errors as one clear line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click
import redis
from pydantic import ValidationError

from bus.errors import HookbusError

HELP_JSON = "Print JSON instead of a table."

T = TypeVar("T")


def guard(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn hookbus's own errors into one clear line and exit code 2."""
    try:
        return action()
    except (HookbusError, ValidationError) as exc:
        fail(debug, str(exc))
    except redis.RedisError as exc:
        fail(
            debug,
            f"Redis did not answer ({type(exc).__name__}: {exc}). Check that it runs and that "
            "HOOKBUS_REDIS_URL points at it.",
        )


def fail(debug: bool, message: str) -> NoReturn:
    """Print ``message`` as one red line and exit 2 (with ``--debug``: re-raise instead)."""
    if debug:
        raise  # the exception being handled (called from an except block), with its traceback
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)
