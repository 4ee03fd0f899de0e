"""A config value that names an environment variable, resolved where it is used.

So that a token in config is never captured at definition time and never travels in an
event: ``SlackResource(token=EnvVar("SLACK_BOT_TOKEN"))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bus.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EnvVar:
    """The value of environment variable ``name`` (or ``default`` when it is unset)."""

    name: str
    default: str | None = None

    def __repr__(self) -> str:
        # Never show the value: this repr may end up in logs.
        return f"EnvVar({self.name!r})"

    def resolve(self, env: Mapping[str, str]) -> str:
        """The value from ``env``.

        Raises:
            ConfigError: when the variable is unset and there is no default.
        """
        value = env.get(self.name, self.default)
        if value is None:
            raise ConfigError(
                f"environment variable {self.name!r} is not set. Set it in the environment "
                "of the process that builds this resource (the worker, for hooks)."
            )
        return value

    def resolve_optional(self, env: Mapping[str, str]) -> str | None:
        """The value from ``env``, or ``default`` (possibly ``None``)."""
        return env.get(self.name, self.default)
