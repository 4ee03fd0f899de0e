"""The default logging setup of hookbus processes: one compact line per notable thing.

``json=True`` (``--log-format json``) writes one JSON object per line instead, for log
shippers; the ``key=value`` fields stay in ``message``.
"""

from __future__ import annotations

import logging.config
from typing import Any

_LINE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"


def configure_logging(*, verbose: bool = False, json: bool = False) -> None:
    """Log to stderr (DEBUG when ``verbose``), as text lines or as JSON lines."""
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "format": _JSON_FIELDS}
        if json
        else {"format": _LINE_FORMAT}
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"main": formatter},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "main",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"handlers": ["stderr"], "level": "DEBUG" if verbose else "INFO"},
            # Third-party chatter (HTTP connection pools, schedulers) stays at WARNING.
            "loggers": {
                name: {"level": "WARNING"} for name in ("slack_sdk", "httpx", "apscheduler")
            },
        }
    )
