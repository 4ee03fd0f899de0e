"""Stopping, starting and replaying sensors from the command line (state in Redis).

A sensor is its own consumer group (``sensor:<name>``) on every event stream, so it has its
own position. ``stop`` sets a flag workers check before each read of that group (they
skip it within a second); ``start`` clears it and moves the group to "now" (events that
happened while it was stopped are skipped, unless ``resume``); ``replay`` moves the group
back in time, so a sensor (a new one included, before any worker runs it) receives past
events again. Handlers that already succeeded on an event are still skipped by the ledger.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from datetime import timedelta

import redis
from pydantic import BaseModel, ConfigDict

from bus.errors import ConfigError
from bus.groups import ensure_group, missing_group
from bus.keys import Keys
from bus.utils import text
from sensors.errors import SensorNotFoundError

logger = logging.getLogger(__name__)

_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class SensorState(BaseModel):
    """A sensor as the bus sees it (``hookbus sensors list``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    stopped: bool
    #: Entries not yet delivered to the sensor, over every shard (``None``: unknown).
    lag: int | None
    #: Entries delivered and not yet acknowledged, over every shard.
    pending: int


def parse_since(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"`` or ``"7d"`` as a duration.

    Raises:
        ConfigError: for anything else.
    """
    match = _SINCE.match(text.strip())
    if match is None:
        raise ConfigError(
            f"duration {text!r} is not understood: got {text!r}. Write a number and a unit "
            "s, m, h or d, e.g. --since 2h."
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def stop_sensor(client: redis.Redis, keys: Keys, name: str) -> None:
    """Stop sensor ``name`` on every worker (within a second); its position is kept.

    Raises:
        SensorNotFoundError: no worker ever created the sensor's consumer group.
    """
    _require_group(client, keys, name)
    client.set(keys.sensor_stopped(name), str(int(time.time())))
    logger.info("sensor stopped sensor=%s", name)


def start_sensor(client: redis.Redis, keys: Keys, name: str, *, resume: bool = False) -> None:
    """Start sensor ``name`` again, from now (or from where it stopped, with ``resume``).

    Raises:
        SensorNotFoundError: no worker ever created the sensor's consumer group.
    """
    _require_group(client, keys, name)
    if not resume:
        _move(client, keys, name, "$")
    client.delete(keys.sensor_stopped(name))
    logger.info("sensor started sensor=%s from=%s", name, "stop" if resume else "now")


def replay_sensor(
    client: redis.Redis, keys: Keys, name: str, *, since: timedelta, now_s: float | None = None
) -> str:
    """Deliver to sensor ``name`` every event of the last ``since`` again; start it.

    Works for a sensor no worker has run yet: its group is created at that point, and the
    first worker that defines it starts there. Returns the stream id it starts from.
    """
    start_ms = int(((time.time() if now_s is None else now_s) - since.total_seconds()) * 1000)
    start_id = f"{max(start_ms, 0)}-0"
    _move(client, keys, name, start_id)
    client.delete(keys.sensor_stopped(name))
    logger.info("sensor replay sensor=%s from=%s", name, start_id)
    return start_id


def sensor_states(client: redis.Redis, keys: Keys) -> list[SensorState]:
    """Every sensor that has a consumer group, with its lag, pending count and state."""
    lags: dict[str, int | None] = {}
    pending: Counter[str] = Counter()
    prefix = keys.sensor_group("")
    for stream in keys.all_event_streams():
        groups = client.xinfo_groups(stream) if client.exists(stream) else []
        for group in groups:
            sensor = text(group["name"]).removeprefix(prefix)
            if sensor == text(group["name"]):
                continue  # not a sensor's group
            previous, group_lag = lags.get(sensor, 0), group.get("lag")
            lags[sensor] = None if previous is None or group_lag is None else previous + group_lag
            pending[sensor] += int(group["pending"])
    return [
        SensorState(
            name=name,
            stopped=bool(client.exists(keys.sensor_stopped(name))),
            lag=lags[name],
            pending=pending[name],
        )
        for name in sorted(lags)
    ]


def _require_group(client: redis.Redis, keys: Keys, name: str) -> None:
    if any(state.name == name for state in sensor_states(client, keys)):
        return
    raise SensorNotFoundError(
        f"sensor {name!r} has no consumer group on the bus: got {name!r}. Check the name "
        "with 'hookbus sensors list', or start a worker whose code location defines it."
    )


def _move(client: redis.Redis, keys: Keys, name: str, start_id: str) -> None:
    group = keys.sensor_group(name)
    for stream in keys.all_event_streams():
        try:
            client.xgroup_setid(stream, group, start_id)
        except redis.ResponseError as exc:
            if not missing_group(exc):
                raise
            ensure_group(client, stream, group, start_id=start_id)
