"""Hook references: every refusal names the hook and the fix."""

from __future__ import annotations

import types
from functools import partial

import pytest

from bus import HookAttachError, callable_ref
from bus.refs import split_partial


def module_level(job: object, run: object, state: object, **kwargs: object) -> None: ...


def test_a_module_level_function_is_referenced_by_module_and_qualname() -> None:
    assert callable_ref(module_level) == "tests.bus.test_refs:module_level"


def test_an_object_without_a_name_is_refused() -> None:
    nameless = types.SimpleNamespace(__call__=None)
    with pytest.raises(HookAttachError, match="has no module-level name: got a SimpleNamespace"):
        callable_ref(nameless)  # type: ignore[arg-type]


def test_something_not_callable_is_refused() -> None:
    with pytest.raises(HookAttachError, match="is not callable. Pass a function or a hook"):
        split_partial(42)


def test_partial_keyword_arguments_travel_as_json() -> None:
    fn, kwargs = split_partial(partial(partial(module_level, x=1), y="two"))
    assert fn is module_level and kwargs == {"x": 1, "y": "two"}
