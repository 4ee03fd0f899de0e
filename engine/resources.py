"""Resources with Dagster's names: ``@resource``, ``ResourceDefinition``, ``.configured``.

A ``ResourceDefinition`` is a factory (``bus.types.ResourceFactory``): the process that
needs the resource builds it — the engine for ops, the worker for hooks — with that
process's environment, so ``EnvVar("SLACK_TOKEN")`` in config is resolved where the
resource is built and a token never travels in an event.

A worker takes a run's resource config from the event (``wire_config``) only as far as
it is safe: a ``"[redacted]"`` value is dropped (the worker's own ``.configured`` value
stays), and an ``{"env": NAME}`` is resolved only if the code location itself declares
``NAME`` for a resource — an event never picks which of the worker's environment
variables get read. An invalid config's error names the resource, the field and the
variable, never a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ValidationError

from bus.envvar import EnvVar
from bus.types import ResourceInitContext
from engine.config import REDACTED
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
                    f"config of resource {name!r} is invalid: {_first_error(exc, merged)}. "
                    "Fix it in the run config (resources.<key>.config) or in .configured({...})."
                ) from None
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


def _env_name(value: Any) -> str | None:
    """The variable ``value`` names (``EnvVar`` or ``{"env": NAME}``), else ``None``."""
    if isinstance(value, EnvVar):
        return value.name
    if isinstance(value, Mapping) and set(value) == {"env"}:
        return str(value["env"])
    return None


def _first_error(exc: ValidationError, config: Mapping[str, Any]) -> str:
    # Never the value: it may be a resolved secret. Its type and, if it came from the
    # environment, the variable's name are enough to fix it.
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "<root>"
    source = config.get(str(first["loc"][0])) if first["loc"] else None
    variable = _env_name(source)
    if variable is not None:
        got = f"the value of environment variable {variable!r} (not shown)"
    else:
        got = f"a value of type {type(first.get('input')).__name__} (not shown)"
    return f"field {where!r}: {first['msg']}: got {got}"


def declared_env_names(definitions: Iterable[object]) -> frozenset[str]:
    """The environment variables resource definitions declare in their (``.configured``) config.

    Only these may be named by a run config that reaches a worker in an event.
    """
    names: set[str] = set()
    for definition in definitions:
        if isinstance(definition, ResourceDefinition):
            names.update(_env_names_in(definition.config))
    return frozenset(names)


def _env_names_in(config: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for value in config.values():
        name = _env_name(value)
        if name is not None:
            names.add(name)
        elif isinstance(value, Mapping):
            names |= _env_names_in(value)
    return names


def wire_config(
    resource: str, config: Mapping[str, Any], *, declared_env: Collection[str]
) -> dict[str, Any]:
    """A resource's run config from an event, as a worker may use it.

    ``"[redacted]"`` values are dropped, so the worker's own (``.configured``) value is
    kept; an ``{"env": NAME}`` stays only if the code location declares ``NAME``.

    Raises:
        RunConfigError: the config names an environment variable the code does not declare.
    """
    safe: dict[str, Any] = {}
    for key, value in config.items():
        if value == REDACTED:
            continue
        name = _env_name(value)
        if name is not None and name not in declared_env:
            raise RunConfigError(
                f"run config of resource {resource!r} field {key!r} names environment variable "
                f"{name!r}, which the code location does not declare: got {sorted(declared_env)}. "
                f"Declare it in the code, e.g. .configured({{{key!r}: EnvVar({name!r})}})."
            )
        safe[key] = (
            wire_config(resource, value, declared_env=declared_env)
            if name is None and isinstance(value, Mapping)
            else value
        )
    return safe


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
