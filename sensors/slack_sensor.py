"""``make_slack_on_run_failure_sensor``: a ready-made run failure sensor that posts to Slack.

The shape dagster-slack users know, without its two traps: the token is never captured
when the sensor is defined (it is an ``EnvVar`` resolved in the worker, or a ``SecretStr``),
and the default message escapes everything that came from user code (a Block Kit alert
from ``notifiers.format.alert_message``).

    slack_on_failure = make_slack_on_run_failure_sensor(
        "#data-alerts", monitored_jobs=[nightly_etl], webserver_base_url="https://hookbus.example.com"
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from bus.envvar import EnvVar
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.format import alert_message
from notifiers.resource import SlackResource, notifier_settings
from notifiers.slack import SlackNotifier
from sensors.errors import CodeLocationError
from sensors.run_status import FAILURE_STATES, RunFailureSensorContext, SensorDefinition

TextFn = Callable[[RunFailureSensorContext], str]
BlocksFn = Callable[[RunFailureSensorContext], Sequence[dict[str, Any]]]


def _resource_key(sensor_name: str) -> str:
    return f"hookbus_slack_sensor:{sensor_name}"


@dataclass(frozen=True, slots=True)
class _RunFailurePoster:
    """What the sensor posts with, built in the worker."""

    notifier: SlackNotifier | ConsoleNotifier
    text_fn: TextFn | None
    blocks_fn: BlocksFn | None
    webserver_base_url: str | None

    def post(self, context: RunFailureSensorContext) -> None:
        default = alert_message(context.failure_event, webserver_base_url=self.webserver_base_url)
        text = self.text_fn(context) if self.text_fn else default.text
        if self.blocks_fn is not None:
            blocks: Sequence[dict[str, Any]] | None = self.blocks_fn(context)
        else:
            blocks = default.blocks if self.text_fn is None else None
        self.notifier.post(text, blocks=blocks)


@dataclass(frozen=True, slots=True)
class SlackRunFailureResource:
    """Builds the sensor's Slack client in the worker (``ResourceFactory``)."""

    channel: str
    token: SecretStr | EnvVar
    text_fn: TextFn | None = None
    blocks_fn: BlocksFn | None = None
    webserver_base_url: str | None = field(default=None)

    def create_resource(self, context: ResourceInitContext) -> _RunFailurePoster:
        notifier = SlackResource(channel=self.channel, token=self.token).create_resource(context)
        base_url = self.webserver_base_url or notifier_settings(context).webserver_base_url
        return _RunFailurePoster(notifier, self.text_fn, self.blocks_fn, base_url)


def post_run_failure_to_slack(context: RunFailureSensorContext) -> None:
    """The sensor function of every ``make_slack_on_run_failure_sensor`` sensor."""
    poster: _RunFailurePoster = getattr(context.resources, _resource_key(context.sensor_name))
    poster.post(context)


def make_slack_on_run_failure_sensor(
    channel: str,
    slack_token: SecretStr | EnvVar | None = None,
    *,
    text_fn: TextFn | None = None,
    blocks_fn: BlocksFn | None = None,
    name: str | None = None,
    monitored_jobs: Iterable[object] | None = None,
    webserver_base_url: str | None = None,
) -> SensorDefinition:
    """A run failure sensor that posts each failed or crashed run to a Slack channel.

    Args:
        channel: ``#name`` or a channel id.
        slack_token: the bot token as ``EnvVar("NAME")`` (default ``EnvVar("SLACK_BOT_TOKEN")``)
            or a ``SecretStr``; a plain string is refused so a token cannot end up in code.
            Without a token in the worker, alerts go to the worker's console.
        text_fn: ``text_fn(context) -> str``, the message text (escape user text with
            ``escape_mrkdwn``). Default: the escaped one-glance summary.
        blocks_fn: ``blocks_fn(context) -> list of Block Kit blocks``. Default: hookbus's
            alert (job, run, state, error, traceback tail, tags, "View run") unless a
            ``text_fn`` is given.
        name: the sensor's name (default ``slack_on_run_failure``); unique per location.
        monitored_jobs: jobs (definitions or names) to watch; default all.
        webserver_base_url: for the "View run" button (default: the
            ``HOOKBUS_WEBSERVER_BASE_URL`` setting).

    Raises:
        CodeLocationError: ``slack_token`` is a plain string.
    """
    if isinstance(slack_token, str):
        raise CodeLocationError(
            "make_slack_on_run_failure_sensor slack_token must not be the token itself: got a "
            "str. Pass EnvVar('SLACK_BOT_TOKEN') so the worker reads it from its environment."
        )
    sensor_name = name or "slack_on_run_failure"
    key = _resource_key(sensor_name)
    factory = SlackRunFailureResource(
        channel=channel,
        token=slack_token or EnvVar("SLACK_BOT_TOKEN"),
        text_fn=text_fn,
        blocks_fn=blocks_fn,
        webserver_base_url=webserver_base_url,
    )
    return SensorDefinition(
        name=sensor_name,
        fn=post_run_failure_to_slack,
        run_states=FAILURE_STATES,
        monitored_jobs=frozenset(
            job if isinstance(job, str) else str(getattr(job, "name", job))
            for job in monitored_jobs or ()
        ),
        required_resource_keys=frozenset({key}),
        failure=True,
        resource_defs={key: factory},
    )
