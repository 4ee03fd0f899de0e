"""Notification rules: which events alert whom, and how quietly. Declarative, in Python.

A rule is a value in a code location; a worker that loads the location gives each rule
its own consumer group (``notify:<name>``) and runs it for every event::

    oncall = NotificationRule(
        name="oncall",
        jobs=["nightly_etl"],                    # names (or job definitions); empty: all
        tags={"tier": "gold"},                   # and/or run tags that must match
        destinations=[SlackChannel("#data-alerts"), Webhook(url=EnvVar("PAGER_URL"))],
    )

Several rules may match one event; each sends on its own. Per destination a rule
deduplicates (same job, op and error signature within ``dedupe_window_s``), groups a
burst of one run's (or job's) failures (``group_window_s``), and respects the
destination's rate limit; silences (``hookbus silences add``) apply to every rule.

A rule also alerts on the time-based checks of the jobs it watches (a run stuck, a job not
fresh, repeated failures: ``bus.events.CheckEvent``), by default every kind; ``checks=``
narrows that (``checks={CheckKind.RUN_STUCK}``) or turns it off (``checks=False``). A
rule with ``tags`` alerts on a check only when it has a run whose tags match (a stuck
run): freshness and failure counts are about a job, which has no run tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bus.errors import ConfigError
from bus.events import BusEvent, CheckEvent, CheckKind, OpEvent, RunEvent
from bus.refs import job_name_of
from bus.states import OpState, RunState
from notifiers.destinations import Destination
from notifiers.errors import NotifierConfigError

_RULE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: The run states that alert by default: a crash is a failure to the on-call.
DEFAULT_RUN_STATES = frozenset({RunState.FAILED, RunState.CRASHED})
#: The op states that alert by default (a retrying op is not a failure yet).
DEFAULT_OP_STATES = frozenset({OpState.FAILED, OpState.CRASHED})
#: The check kinds that alert by default: all of them (a check exists to be heard).
ALL_CHECKS = frozenset(CheckKind)


@dataclass(frozen=True, slots=True)
class NotificationRule:
    """Which events alert which destinations, and the noise control to apply.

    Args:
        name: unique in the code location; names the rule's consumer group.
        destinations: where matching alerts go (at least one).
        run_states: run states that alert (default failed, crashed).
        op_states: op states that alert (default failed, crashed; empty: no op alerts).
        jobs: job names or definitions to watch (default: every job).
        tags: run tags that must all match (e.g. ``{"team": "data"}``).
        dedupe_window_s: the same failure (job, op, error signature) alerts at most once in
            this many seconds per destination; 0 turns dedupe off. Default one hour.
        group_window_s: failures of one run (``group_by``) within this many seconds of the
            first are sent as one grouped message; 0 sends each. Default 2 s.
        group_by: group bursts per ``"run"`` (default) or per ``"job"``.
        thread_ttl_s: how long a run's thread is remembered for follow-ups. Default 7 days.
        checks: the kinds of time-based check events of the watched jobs that alert:
            ``True`` (default) every kind, ``False`` none, or a set of ``CheckKind``.
            Check alerts are not deduplicated or grouped (a check fires once per
            occurrence already); silences apply; they count against a destination's
            rate limit but are never held back by it.
    """

    name: str
    destinations: tuple[Destination, ...]
    run_states: frozenset[RunState] = DEFAULT_RUN_STATES
    op_states: frozenset[OpState] = DEFAULT_OP_STATES
    jobs: frozenset[str] = frozenset()
    tags: Mapping[str, str] = field(default_factory=dict)
    dedupe_window_s: float = 3600.0
    group_window_s: float = 2.0
    group_by: Literal["run", "job"] = "run"
    thread_ttl_s: int = 7 * 24 * 3600
    checks: frozenset[CheckKind] = ALL_CHECKS

    def __init__(
        self,
        *,
        name: str,
        destinations: Iterable[Destination],
        run_states: Iterable[RunState] = DEFAULT_RUN_STATES,
        op_states: Iterable[OpState] = DEFAULT_OP_STATES,
        jobs: Iterable[object] = (),
        tags: Mapping[str, str] | None = None,
        dedupe_window_s: float = 3600.0,
        group_window_s: float = 2.0,
        group_by: Literal["run", "job"] = "run",
        thread_ttl_s: int = 7 * 24 * 3600,
        checks: bool | Iterable[CheckKind] = True,
    ) -> None:
        values = {
            "name": name,
            "destinations": tuple(destinations),
            "run_states": frozenset(run_states),
            "op_states": frozenset(op_states),
            "jobs": frozenset(_job_name(job) for job in jobs),
            "tags": dict(tags or {}),
            "dedupe_window_s": dedupe_window_s,
            "group_window_s": group_window_s,
            "group_by": group_by,
            "thread_ttl_s": thread_ttl_s,
            "checks": _check_kinds(checks),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._validate()

    def _validate(self) -> None:
        if not _RULE_NAME.match(self.name):
            raise NotifierConfigError(
                f"notification rule name {self.name!r} is not allowed: got {self.name!r}. "
                "Use letters, digits, '_', '.' and '-' (it names a consumer group)."
            )
        if not self.destinations:
            raise NotifierConfigError(
                f"notification rule {self.name!r} has no destinations: got []. Add one, "
                "e.g. destinations=[SlackChannel('#alerts')]."
            )
        names = [destination.name for destination in self.destinations]
        if len(set(names)) != len(names):
            raise NotifierConfigError(
                f"notification rule {self.name!r} names a destination twice: got {names}. "
                "Give each destination a distinct channel or label."
            )
        if min(self.dedupe_window_s, self.group_window_s) < 0:
            raise NotifierConfigError(
                f"notification rule {self.name!r} has a negative window: got "
                f"dedupe_window_s={self.dedupe_window_s}, group_window_s={self.group_window_s}. "
                "Use 0 to turn one off."
            )

    def __repr__(self) -> str:
        jobs = sorted(self.jobs) or "all"
        names = [destination.name for destination in self.destinations]
        return f"<NotificationRule name={self.name!r} jobs={jobs} destinations={names}>"

    def matches(self, event: BusEvent) -> bool:
        """Whether ``event`` is one this rule alerts about."""
        if isinstance(event, CheckEvent):
            return self._matches_check(event)
        states: frozenset[RunState] | frozenset[OpState] = (
            self.op_states if isinstance(event, OpEvent) else self.run_states
        )
        return (
            event.to_state in states
            and (not self.jobs or event.job_name in self.jobs)
            and all(event.run.tags.get(key) == value for key, value in self.tags.items())
        )

    def _matches_check(self, event: CheckEvent) -> bool:
        tags = event.run.tags if event.run is not None else {}
        return (
            event.kind in self.checks
            and (not self.jobs or event.job_name in self.jobs)
            and all(tags.get(key) == value for key, value in self.tags.items())
        )

    def follows(self, event: BusEvent) -> bool:
        """Whether the rule must see ``event``: it matches, or it ends a run (which may
        close a thread the rule opened)."""
        if isinstance(event, RunEvent) and event.to_state.is_terminal:
            return not self.jobs or event.job_name in self.jobs
        return self.matches(event)

    def group_id(self, event: RunEvent | OpEvent) -> str:
        """The burst ``event`` belongs to: its run, or its job."""
        return event.run_id if self.group_by == "run" else event.job_name


def _check_kinds(checks: bool | Iterable[CheckKind]) -> frozenset[CheckKind]:
    if isinstance(checks, bool):
        return ALL_CHECKS if checks else frozenset()
    kinds = []
    for value in checks:
        try:
            kinds.append(CheckKind(value))
        except ValueError:
            raise NotifierConfigError(
                f"notification rule checks= names an unknown kind of check: got {value!r}. "
                f"Use True, False or some of {sorted(str(kind) for kind in ALL_CHECKS)}, "
                "e.g. checks={CheckKind.RUN_STUCK}."
            ) from None
    return frozenset(kinds)


def _job_name(job: object) -> str:
    """A job's name, given the name or a job definition."""
    try:
        return job_name_of(job, where="notification rule jobs=")
    except ConfigError as exc:
        raise NotifierConfigError(str(exc)) from exc
