"""The worker's code location: the one place hook references are resolved to code.

``CodeLocation.load("my_pipelines.definitions")`` imports the user's module once, at
startup, and indexes what it defines: jobs by name, sensors by name, and hooks by
reference. An event can only select among these; a reference that is not here is an
error (``HookNotFoundError``), never an import.

Hooks indexed: every ``@success_hook``/``@failure_hook`` in the module; every hook
attached to a job or op defined there; and the module-level functions of the code
location's own package that a job body names (Prefect-style hooks attached at run time
with ``op.with_options(on_failure=[...])`` inside the body). Nothing else: an event cannot
make a worker run a helper function that no job attaches.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import Any

from bus.refs import callable_ref
from engine.job import GraphDefinition, JobDefinition
from engine.op import OpDefinition
from notifiers.rules import NotificationRule
from sensors.checks import CheckDefinition
from sensors.definitions import Definitions
from sensors.errors import CodeLocationError, HookNotFoundError
from sensors.hooks import HookDefinition
from sensors.run_status import SensorDefinition

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CodeLocation:
    """What one loaded code location defines, by name and by reference."""

    module_name: str
    jobs: Mapping[str, JobDefinition] = field(default_factory=dict)
    ops: Mapping[str, OpDefinition] = field(default_factory=dict)
    hooks: Mapping[str, object] = field(default_factory=dict)
    sensors: Mapping[str, SensorDefinition] = field(default_factory=dict)
    resources: Mapping[str, object] = field(default_factory=dict)
    checks: Mapping[str, CheckDefinition] = field(default_factory=dict)
    #: Notification rules by name (``notifiers.NotificationRule``), each its own group.
    rules: Mapping[str, NotificationRule] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<CodeLocation module={self.module_name!r} jobs={len(self.jobs)} "
            f"hooks={len(self.hooks)} sensors={len(self.sensors)}>"
        )

    @classmethod
    def load(cls, module_name: str) -> CodeLocation:
        """Import ``module_name`` and index it.

        Raises:
            CodeLocationError: the module cannot be imported, or two sensors share a name.
        """
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise CodeLocationError(
                f"code location {module_name!r} cannot be imported: {exc}. Pass an importable "
                "module path (e.g. my_pipelines.definitions) and run from the directory that "
                "contains it, or install it in this environment."
            ) from exc
        return cls.from_module(module)

    @classmethod
    def from_module(cls, module: ModuleType) -> CodeLocation:
        """Index an already imported module."""
        objects = list(vars(module).values())
        definitions = [obj for obj in objects if isinstance(obj, Definitions)]
        for defs in definitions:
            objects.extend([*defs.jobs, *defs.sensors, *defs.notification_rules])
        jobs = {obj.name: obj for obj in objects if isinstance(obj, JobDefinition)}
        return cls(
            module_name=module.__name__,
            jobs=jobs,
            ops={obj.name: obj for obj in objects if isinstance(obj, OpDefinition)},
            hooks=_index_hooks(module, objects),
            sensors=_index_sensors(module.__name__, objects),
            resources=_index_resources(objects, definitions),
            rules=_index_rules(module.__name__, objects),
            checks={obj.name: obj for obj in objects if isinstance(obj, CheckDefinition)},
        )

    def hook(self, ref: str) -> object:
        """The hook registered as ``ref``.

        Raises:
            HookNotFoundError: when this code location has no such hook.
        """
        try:
            return self.hooks[ref]
        except KeyError:
            raise self.hook_not_found(ref) from None

    def hook_not_found(self, ref: str) -> HookNotFoundError:
        """The error for a hook ``ref`` this code location does not define."""
        return HookNotFoundError(
            f"hook {ref!r} is not defined in code location {self.module_name!r}. Start the "
            "worker with the code location that defines the job, or deploy the new code."
        )

    def job(self, name: str) -> JobDefinition | None:
        """The job called ``name``, if this code location defines it."""
        return self.jobs.get(name)


def _index_hooks(module: ModuleType, objects: list[object]) -> dict[str, object]:
    hooks: dict[str, object] = {}
    package = module.__name__.split(".")[0]
    for obj in objects:
        if isinstance(obj, HookDefinition):
            hooks[obj.ref] = obj
        elif isinstance(obj, JobDefinition | OpDefinition):
            hooks.update(obj.hook_targets)
        if isinstance(obj, JobDefinition | GraphDefinition):
            hooks.update(_functions_named_in(obj.fn, package))
    return hooks


def _functions_named_in(body: Callable[..., Any], package: str) -> dict[str, object]:
    """Module-level functions of ``package`` that a job body names.

    A Prefect-style hook attached at run time (``op.with_options(on_failure=[partial(h,
    x=1)])`` inside the body) is named by the body's code, so it is found here; a helper
    function no job body mentions can never be run from an event.
    """
    found: dict[str, object] = {}
    namespace = getattr(body, "__globals__", {})
    for name in _names_used(getattr(body, "__code__", None)):
        value = namespace.get(name)
        if (
            inspect.isfunction(value)
            and value.__module__.split(".")[0] == package
            and "<" not in value.__qualname__
        ):
            found[callable_ref(value)] = value
    return found


def _names_used(code: CodeType | None) -> set[str]:
    if code is None:
        return set()
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):  # nested functions and comprehensions
            names |= _names_used(const)
    return names


def _index_sensors(module_name: str, objects: list[object]) -> dict[str, SensorDefinition]:
    sensors: dict[str, SensorDefinition] = {}
    for obj in objects:
        if not isinstance(obj, SensorDefinition) or sensors.get(obj.name) is obj:
            continue
        if obj.name in sensors:
            raise CodeLocationError(
                f"sensor name {obj.name!r} is used twice in code location {module_name!r}. "
                "Give each sensor a unique name= (it names the sensor's consumer group)."
            )
        sensors[obj.name] = obj
    return sensors


def _index_rules(module_name: str, objects: list[object]) -> dict[str, NotificationRule]:
    rules: dict[str, NotificationRule] = {}
    for obj in objects:
        if not isinstance(obj, NotificationRule) or rules.get(obj.name) is obj:
            continue
        if obj.name in rules:
            raise CodeLocationError(
                f"notification rule name {obj.name!r} is used twice in code location "
                f"{module_name!r}. Give each rule a unique name= (it names its consumer group)."
            )
        rules[obj.name] = obj
    return rules


def _index_resources(objects: list[object], definitions: list[Definitions]) -> dict[str, object]:
    """Resources for sensors: those ready-made sensors bring, then ``Definitions``' own."""
    resources: dict[str, object] = {}
    for obj in objects:
        if isinstance(obj, SensorDefinition):
            resources.update(obj.resource_defs)
    for defs in definitions:
        resources.update(defs.resources)
    return resources
