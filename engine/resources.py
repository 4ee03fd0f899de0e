"""Resources with Dagster's names: ``@resource``, ``ResourceDefinition``, ``.configured``.

A ``ResourceDefinition`` is a factory (``bus.types.ResourceFactory``): the process that
needs the resource builds it — the engine for ops, the worker for hooks — with that
process's environment, so ``EnvVar("SLACK_TOKEN")`` in config is resolved where the
resource is built and a token never travels in an event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ValidationError

from bus.envvar import EnvVar
from bus.types import ResourceInitContext
from engine.errors import RunConfigError

ResourceFn = Callable[[ResourceInitContext], Any]


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    """A resource: a function that builds it from its config, per process.

    Attributes:
        resource_fn: ``fn(init_context)``; ``init_context.resource_config`` is the config.
        config_schema: a pydantic model the config must fit (``None``: any dict).
        description: what it is, e.g. ``"do not send messages in dev"``.
        config: config bound with ``.configured({...})``; run config goes on top.
    """

    resource_fn: ResourceFn
    config_schema: type[BaseModel] | None = None
    description: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        name = getattr(self.resource_fn, "__name__", "hardcoded")
        return f"<ResourceDefinition {name} configured={sorted(self.config)}>"

    def configured(self, config: Mapping[str, Any]) -> ResourceDefinition:
        """A copy with ``config`` bound (values may be ``EnvVar``)."""
        return dataclasses.replace(self, config={**self.config, **config})

    @staticmethod
    def hardcoded_resource(value: Any, description: str | None = None) -> ResourceDefinition:
        """A resource that is always ``value`` (a mock in dev, as in Dagster)."""
        return ResourceDefinition(_Constant(value), description=description)

    @staticmethod
    def none_resource(description: str | None = None) -> ResourceDefinition:
        """A resource that is ``None``."""
        return ResourceDefinition.hardcoded_resource(None, description)

    def create_resource(self, context: ResourceInitContext) -> Any:
        """Build the resource: merge config, resolve ``EnvVar``s, validate, call the function.

        Raises:
            RunConfigError: the merged config does not fit ``config_schema``.
        """
        merged = {**self.config, **context.config}
        resolved = {key: _resolve(value, context.env) for key, value in merged.items()}
        if self.config_schema is not None:
            try:
                resolved = self.config_schema.model_validate(resolved).model_dump()
            except ValidationError as exc:
                name = getattr(self.resource_fn, "__name__", "resource")
                raise RunConfigError(
                    f"config of resource {name!r} is invalid: {_first_error(exc)}. Fix it in "
                    "the run config (resources.<key>.config) or in .configured({...})."
                ) from exc
        return self.resource_fn(ResourceInitContext(config=resolved, env=context.env))


@dataclass(frozen=True, slots=True)
class _Constant:
    value: Any

    def __call__(self, context: ResourceInitContext) -> Any:
        return self.value


def _resolve(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, EnvVar):
        return value.resolve(env)
    if isinstance(value, dict) and set(value) == {"env"}:
        return EnvVar(str(value["env"])).resolve(env)  # run config's {"env": "NAME"}
    return value


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "<root>"
    return f"field {where!r}: {first['msg']}: got {first.get('input')!r}"


@overload
def resource(fn: ResourceFn, /) -> ResourceDefinition: ...


@overload
def resource(
    *, config_schema: type[BaseModel] | None = None, description: str | None = None
) -> Callable[[ResourceFn], ResourceDefinition]: ...


def resource(
    fn: ResourceFn | None = None,
    /,
    *,
    config_schema: type[BaseModel] | None = None,
    description: str | None = None,
) -> ResourceDefinition | Callable[[ResourceFn], ResourceDefinition]:
    """Declare a resource, bare (``@resource``) or with a config schema.

    Args:
        config_schema: a pydantic model its config must fit.
        description: what it is.
    """

    def decorate(func: ResourceFn) -> ResourceDefinition:
        return ResourceDefinition(
            func, config_schema=config_schema, description=description or func.__doc__
        )

    return decorate(fn) if fn is not None else decorate
