"""The default logging setup of hookbus processes: one compact line per event."""

from __future__ import annotations

import logging.config


def configure_logging(*, verbose: bool = False) -> None:
    """Log to stderr as ``time level logger: message`` (DEBUG when ``verbose``)."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"line": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "line",
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
