"""Settings of a process that runs jobs (``hookbus run``, ``execute_in_process``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bus.settings import BusSettings


class EngineSettings(BusSettings):
    """``HOOKBUS_*`` settings for running jobs; loaded once per process.

    Example:
        ``HOOKBUS_REDIS_URL=redis://redis:6379/0 hookbus run my_pipelines nightly_etl``
    """

    #: Where events wait on disk while Redis is unreachable.
    spool_dir: Path = Path(".hookbus/spool")
    #: How often a running job refreshes its heartbeat key, in seconds.
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    #: How long an op event that alerts nobody urgently (op running/completed, run
    #: pending/running) may wait to share one round trip with the events after it, in
    #: milliseconds; failures, retries, cancels and terminal events never wait. 0 sends
    #: every event before the engine moves on.
    publish_linger_ms: float = Field(default=2.0, ge=0, le=1000)
    #: How long after the last heartbeat a run counts as lost (workers then publish a
    #: crash), in seconds. Must be several intervals, so a slow run is not called dead.
    heartbeat_timeout_s: float = Field(default=10.0, ge=0.5)
    #: Config keys whose values never go into events (matched case-insensitively as
    #: substrings: ``slack_token`` matches ``token``).
    redact_keys: tuple[str, ...] = (
        "token",
        "password",
        "secret",
        "api_key",
        "apikey",
        "credential",
    )
