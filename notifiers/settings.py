"""Settings notifiers read in a worker: where Slack is and where a run can be viewed.

``WorkerSettings`` extends this class, so a worker loads them once, with every other
``HOOKBUS_*`` setting, and passes them to the resources it builds
(``bus.types.ResourceInitContext.settings``). Tokens are not here: each Slack resource or
destination names its token as an ``EnvVar``, resolved in the worker, never logged.
"""

from __future__ import annotations

from typing import Final

from pydantic import AnyHttpUrl, Field, field_validator

from bus.settings import BusSettings

#: The public Slack Web API.
DEFAULT_SLACK_BASE_URL: Final = "https://slack.com/api/"


class NotifierSettings(BusSettings):
    """``HOOKBUS_*`` settings for alerts.

    Example:
        ``HOOKBUS_SLACK_BASE_URL=https://slack-gov.com/api/ hookbus worker my_pipelines``
    """

    #: The Slack Web API base URL: ``https://slack-gov.com/api/`` for GovSlack, a corporate
    #: proxy, or a stand-in (``notifiers.testing.FakeSlackServer.base_url``).
    slack_base_url: str = DEFAULT_SLACK_BASE_URL
    #: How many times slack-sdk retries one call on 429 (honouring ``Retry-After``), 5xx and
    #: dropped connections before the alert counts as failed (and is retried later).
    slack_max_retries: int = Field(default=3, ge=0, le=10)
    #: Timeout of one Slack or webhook HTTP call, in seconds.
    notifier_timeout_s: float = Field(default=10.0, gt=0)
    #: Where runs can be viewed; alerts get a "View run" button to
    #: ``<webserver_base_url>/runs/<run_id>``. Unset: no button.
    webserver_base_url: str | None = None

    @field_validator("slack_base_url", "webserver_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            AnyHttpUrl(value)  # raises a ValidationError naming the field
        return value

    @field_validator("slack_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack-sdk joins the method name onto the base URL as is.
        return value if value.endswith("/") else value + "/"
