"""Settings every hookbus process shares: where Redis is and how keys are named."""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.errors import ConfigError
from bus.keys import Keys
from bus.settings_errors import describe_settings_error

#: URL schemes redis-py connects with (TCP, TLS, a Unix socket).
REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")


class BusSettings(BaseSettings):
    """Connection and naming, from ``HOOKBUS_*`` environment variables.

    Each process kind (``EngineSettings``, ``WorkerSettings``) extends this class; a
    process loads its settings once at startup and passes them down.

    Raises:
        ConfigError: a setting is invalid; the message names its ``HOOKBUS_*`` variable,
            the value and the fix (the pydantic ``ValidationError`` is its cause).
    """

    model_config = SettingsConfigDict(env_prefix="HOOKBUS_", extra="forbid", frozen=True)

    #: Redis DSN; ``rediss://`` for TLS, user and password inline for ACLs.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every key, so several hookbus deployments can share one Redis.
    key_prefix: str = Field(default="hookbus", pattern=r"^[A-Za-z0-9_.-]+$")
    #: Number of event stream shards. Changing it moves new runs to other streams;
    #: drain the old streams first.
    stream_shards: int = Field(default=1, ge=1, le=1024)
    #: Socket timeout for Redis commands, in seconds.
    redis_timeout_s: float = Field(default=5.0, gt=0)
    #: Talk to a Redis Cluster (``redis_url`` names any one node; keys carry shard hash
    #: tags so each run's events, record and liveness share a slot). Set
    #: ``stream_shards`` to at least the number of primaries to spread the load.
    redis_cluster: bool = False

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            prefix = str(self.model_config.get("env_prefix", ""))
            message = describe_settings_error(exc, prefix=prefix, fields=type(self).model_fields)
            raise ConfigError(message) from exc

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(REDIS_SCHEMES):
            raise ValueError(
                "is not a Redis URL: set it to e.g. redis://127.0.0.1:6379/0 "
                "(rediss:// for TLS, unix:///path/redis.sock for a socket)"
            )
        return value

    @property
    def keys(self) -> Keys:
        """The key names for this prefix and shard count."""
        return Keys(prefix=self.key_prefix, shards=self.stream_shards)
