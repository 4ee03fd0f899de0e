"""The traceback text of failure events: Python's own, less the column markers."""

from __future__ import annotations

import sys
import traceback

import pytest

from bus.tracebacks import traceback_text


def _raise_in_nested_calls() -> None:
    def inner(values: dict[str, int]) -> int:
        return values["a"] + values["b"]

    def outer() -> int:
        return inner({"a": 1}) * 2

    outer()


def _python_text_without_markers(exc: BaseException) -> str:
    lines = traceback.format_exception(exc, chain=False)
    text = "".join(lines)
    return "".join(line + "\n" for line in text.splitlines() if line.strip().strip("^~") != "")


def test_the_text_is_pythons_own_without_the_column_markers() -> None:
    with pytest.raises(KeyError) as caught:
        _raise_in_nested_calls()

    text = traceback_text(caught.value)

    assert text == _python_text_without_markers(caught.value)
    assert 'return values["a"] + values["b"]' in text and text.endswith("KeyError: 'b'\n")


def test_a_frame_without_source_shows_its_file_line_alone() -> None:
    namespace: dict[str, object] = {}
    exec(
        compile("def fail():\n    raise ValueError('from exec')\n", "<generated>", "exec"),
        namespace,
    )
    with pytest.raises(ValueError) as caught:
        namespace["fail"]()  # type: ignore[operator]

    lines = traceback_text(caught.value).splitlines()

    assert lines[-2] == '  File "<generated>", line 2, in fail'
    assert lines[-1] == "ValueError: from exec"


def test_a_recursion_error_shows_the_recursing_frames_and_the_error() -> None:
    def recurse(depth: int) -> int:
        return recurse(depth + 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(RecursionError) as caught:
            recurse(0)
    finally:
        sys.setrecursionlimit(limit)

    text = traceback_text(caught.value)

    assert text.count("return recurse(depth + 1)") > 100
    assert text.endswith("RecursionError: maximum recursion depth exceeded\n")


def test_a_frame_without_line_numbers_shows_line_none() -> None:
    def fail() -> None:
        raise ValueError("no lines")

    fail.__code__ = fail.__code__.replace(co_linetable=b"")
    with pytest.raises(ValueError) as caught:
        fail()

    text = traceback_text(caught.value)

    assert ", line None, in fail\n" in text and text.endswith("ValueError: no lines\n")
