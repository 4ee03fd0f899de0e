"""Run config: op config (pydantic models) and resource config, checked before a run starts.

The shape is Dagster's::

    ops:
      extract: {config: {limit: 10}}
    resources:
      slack: {config: {token: {env: SLACK_TOKEN}}}

An unknown op or resource, or a value that does not fit an op's config model, fails with a
``RunConfigError`` naming the op and the field, before the first event. The config that
travels in events is redacted: fields typed ``SecretStr`` and keys matching
``EngineSettings.redact_keys`` become ``"[redacted]"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, JsonValue, SecretStr, ValidationError

from bus.envvar import EnvVar
from engine.errors import RunConfigError
from engine.outputs import summarise_output

if TYPE_CHECKING:
    from engine.job import JobDefinition

#: What a redacted value reads as in an event.
REDACTED: Final = "[redacted]"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config: dict[str, Any] = {}


class RunConfig(BaseModel):
    """The run config as given (a dict or a YAML file), before it is checked against a job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ops: dict[str, _Entry] = {}
    resources: dict[str, _Entry] = {}

    @classmethod
    def load(cls, source: Mapping[str, Any] | str | Path | RunConfig | None) -> RunConfig:
        """From a dict, a YAML file path, or nothing.

        Raises:
            RunConfigError: the file cannot be read or the shape is wrong.
        """
        if isinstance(source, RunConfig):
            return source
        data: Any = source or {}
        if isinstance(source, str | Path):
            import yaml  # deferred: only a config file needs PyYAML, defining a job does not

            try:
                data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise RunConfigError(
                    f"run config file {str(source)!r} cannot be read: {exc}. Pass a YAML file "
                    "with top-level keys ops: and resources:."
                ) from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RunConfigError(
                f"run config is invalid at {where!r}: {first['msg']}: got {first.get('input')!r}. "
                "It takes ops: {<op>: {config: {...}}} and resources: {<key>: {config: {...}}}."
            ) from exc


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """The run config checked against a job.

    Attributes:
        op_values: each op's config as its function receives it (model or dict), by op name.
        op_wire: each op's config as events carry it (JSON, redacted), by op name.
        resource_configs: each resource's config from the run config, by key.
        resource_wire: the same as events carry it (redacted, ``{"env": NAME}`` kept).
    """

    op_values: Mapping[str, Any] = field(default_factory=dict)
    op_wire: Mapping[str, dict[str, JsonValue]] = field(default_factory=dict)
    resource_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resource_wire: Mapping[str, dict[str, JsonValue]] = field(default_factory=dict)


def resolve_run_config(
    job: JobDefinition, run_config: RunConfig, *, redact_keys: Iterable[str]
) -> ResolvedConfig:
    """Check ``run_config`` against ``job``.

    Raises:
        RunConfigError: an unknown op or resource, or an op config that does not fit.
    """
    for name in run_config.ops:
        if name not in job.op_defs:
            raise RunConfigError(
                f"run config names op {name!r}, which job {job.name!r} does not call: got "
                f"{name!r}. Use one of {sorted(job.op_defs)}."
            )
    for key in run_config.resources:
        if key not in job.resource_defs:
            raise RunConfigError(
                f"run config names resource {key!r}, which job {job.name!r} does not define: "
                f"got {key!r}. Use one of {sorted(job.resource_defs)}."
            )
    values: dict[str, Any] = {}
    wire: dict[str, dict[str, JsonValue]] = {}
    for name, op in job.op_defs.items():
        given = run_config.ops[name].config if name in run_config.ops else None
        if op.config_schema is None and given is None:
            continue
        values[name] = _validate(name, op.config_schema, given or {}, redact_keys)
        wire[name] = redact(_as_json(values[name]), redact_keys)
    resources = {key: entry.config for key, entry in run_config.resources.items()}
    return ResolvedConfig(
        op_values=values,
        op_wire=wire,
        resource_configs=resources,
        resource_wire={key: redact(config, redact_keys) for key, config in resources.items()},
    )


def _validate(
    op_name: str, schema: type[BaseModel] | None, given: dict[str, Any], redact_keys: Iterable[str]
) -> Any:
    if schema is None:
        return given
    try:
        return schema.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "<root>"
        value = first.get("input")
        # A secret-looking field's value (or a whole mapping) is not shown: errors are logged.
        patterns = [key.lower() for key in redact_keys]
        hidden = isinstance(value, Mapping) or _mentions(where, patterns)
        got = f"a value of type {type(value).__name__} (not shown)" if hidden else repr(value)
        raise RunConfigError(
            f"config of op {op_name!r} is invalid at field {where!r}: {first['msg']}: got "
            f"{got}. Fix ops.{op_name}.config.{where} in the run config."
        ) from (None if hidden else exc)


def _as_json(value: Any) -> dict[str, JsonValue]:
    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json")
        # SecretStr fields are secrets by type, whatever their key is called.
        for name, info in type(value).model_fields.items():
            if info.annotation is SecretStr or info.annotation == SecretStr | None:
                dumped[name] = REDACTED
        return dumped
    return {str(key): item for key, item in dict(value).items()}


def redact(config: Mapping[str, Any], redact_keys: Iterable[str]) -> dict[str, JsonValue]:
    """``config`` as events carry it: secret-looking keys' values replaced, recursively.

    An ``EnvVar("NAME")`` (or the run config's ``{"env": "NAME"}``) becomes, and stays,
    ``{"env": "NAME"}``: it names a variable, not a secret, and lets the worker resolve it
    in its own environment.
    """
    patterns = [key.lower() for key in redact_keys]
    out: dict[str, JsonValue] = {}
    for key, value in config.items():
        if isinstance(value, EnvVar):
            out[key] = {"env": value.name}
        elif isinstance(value, Mapping) and set(value) == {"env"}:
            out[key] = {"env": str(value["env"])}
        elif any(pattern in key.lower() for pattern in patterns):
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact(value, patterns)
        else:
            out[key] = summarise_output(value)
    return out


def redact_output(value: object, redact_keys: Iterable[str]) -> JsonValue:
    """An op output as events carry it: summarised, then secret-looking keys redacted.

    The same rule as for config: a key matching ``redact_keys`` (at any depth, in lists
    too) has its value replaced; a summary whose ``repr`` mentions such a key is replaced
    whole, since a repr cannot be redacted field by field.
    """
    summary = summarise_output(value)
    if not isinstance(summary, dict | list):
        return summary  # no keys, nothing to redact
    return _redact_json(summary, [key.lower() for key in redact_keys])


def _redact_json(value: JsonValue, patterns: list[str]) -> JsonValue:
    if isinstance(value, list):
        return [_redact_json(item, patterns) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, JsonValue] = {}
    for key, item in value.items():
        if any(pattern in key.lower() for pattern in patterns):
            out[key] = REDACTED
        elif key == "repr" and isinstance(item, str) and _mentions(item, patterns):
            out[key] = REDACTED
        else:
            out[key] = _redact_json(item, patterns)
    return out


def _mentions(text: str, patterns: list[str]) -> bool:
    lowered = text.lower()
    return any(pattern in lowered for pattern in patterns)
