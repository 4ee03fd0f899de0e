"""Settings errors in the words of the environment: ``HOOKBUS_X='bad' is not …: set it to …``.

pydantic reports ``1 validation error for WorkerSettings / concurrency / Input should be a
valid integer``; an operator set ``HOOKBUS_CONCURRENCY``, so that is the name to show,
with the value they gave and what to put instead.
"""

from __future__ import annotations

from typing import Any, Final

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

#: What a value of the wrong type is, and what to set instead, per pydantic error type.
_WRONG_TYPE: Final = {
    "int_parsing": ("is not a valid integer", "a whole number"),
    "int_from_float": ("is not a valid integer", "a whole number"),
    "float_parsing": ("is not a valid number", "a number"),
    "bool_parsing": ("is not a valid boolean", "true or false"),
    "url_parsing": ("is not a valid URL", "an http(s) URL, e.g. https://hookbus.example.com/"),
    "url_scheme": ("is not an http(s) URL", "an http(s) URL, e.g. https://hookbus.example.com/"),
}
#: Out-of-range errors: the pydantic error type, its context key, and the bound as words.
_RANGE: Final = {
    "greater_than_equal": ("ge", "≥"),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "≤"),
    "less_than": ("lt", "<"),
}
#: A field's bounds (annotated-types constraints), the attribute holding each, as words.
_BOUNDS: Final[tuple[tuple[type[Any], str, str], ...]] = (
    (Ge, "ge", "≥"),
    (Gt, "gt", ">"),
    (Le, "le", "≤"),
    (Lt, "lt", "<"),
)


def describe_settings_error(
    exc: ValidationError, *, prefix: str, fields: dict[str, FieldInfo]
) -> str:
    """Every error of ``exc`` as one sentence naming the variable, the value and the fix."""
    return "; ".join(_describe(error, prefix=prefix, fields=fields) for error in exc.errors())


def _describe(error: ErrorDetails, *, prefix: str, fields: dict[str, FieldInfo]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a check across several settings names them itself
        return message
    name = str(error["loc"][0])
    field = fields.get(name)
    variable = f"{prefix}{name.upper()}"
    shown = "'…'" if field is not None and field.annotation is SecretStr else repr(error["input"])
    kind = error["type"]
    if kind in _WRONG_TYPE:
        problem, wanted = _WRONG_TYPE[kind]
        bounds = "" if field is None else _bounds(field)
        return f"{variable}={shown} {problem}: set it to {wanted}{bounds}"
    if kind in _RANGE:
        key, sign = _RANGE[kind]
        bound = (error.get("ctx") or {}).get(key)
        return f"{variable}={shown} is out of range: set it to a value {sign} {bound}"
    if kind == "extra_forbidden":
        return f"{name!r} is not a setting of this process: remove it"
    if kind == "value_error":  # our validators say what is wrong and how to fix it
        return f"{variable}={shown} {message}"
    return f"{variable}={shown}: {message}"


def _bounds(field: FieldInfo) -> str:
    """`` ≥ 1``, `` > 0 and ≤ 1024``: the field's bounds, or nothing."""
    parts = [
        f"{sign} {getattr(constraint, attribute)}"
        for constraint in field.metadata
        for kind, attribute, sign in _BOUNDS
        if isinstance(constraint, kind)
    ]
    return f" {' and '.join(parts)}" if parts else ""
