"""Package exports that are imported on first use, so ``import engine`` stays cheap.

A package's ``__init__`` lists its public names (under ``if TYPE_CHECKING:`` for type
checkers and readers, and in an export table for the interpreter); ``lazy_exports``
gives it a PEP 562 module ``__getattr__`` that imports a name's module the first time the
name is used. Importing ``bus.events`` then no longer runs every ``bus`` module (redis-py,
pydantic-settings …) through ``bus/__init__.py``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which exports ``exports``.

    Args:
        package: the package's ``__name__``.
        exports: each public name and the module that defines it.

    Example:
        ``__getattr__, __dir__ = lazy_exports(__name__, {"Keys": "bus.keys"})``
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        # Cached in the package, so the next look-up does not come back here.
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
