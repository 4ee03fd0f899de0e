"""The Dagster "Op Hooks" document's examples, ported to hookbus, as a code location.

The hooks use a real slack-sdk ``WebClient`` (``slack_resource``) pointed, in the worker,
at ``HOOKBUS_SLACK_BASE_URL`` (a stand-in in tests), and record what their context held
(``lifecycle.record``) so tests can check it, and the pid that ran them.
"""

from __future__ import annotations

import traceback

from pydantic import BaseModel
from slack_sdk import WebClient

from bus import ResourceInitContext
from engine import ResourceDefinition, graph, job, op
from sensors import HookContext, failure_hook, success_hook
from tests.code_locations.lifecycle import record


class SlackConfig(BaseModel):
    token: str


def _slack_client(init_context: ResourceInitContext) -> WebClient:
    base_url = init_context.env.get("HOOKBUS_SLACK_BASE_URL", "https://slack.com/api/")
    return WebClient(token=str(init_context.resource_config["token"]), base_url=base_url)


#: Dagster's ``dagster_slack.slack_resource``: a WebClient built from ``token`` config.
slack_resource = ResourceDefinition(_slack_client, config_schema=SlackConfig)


@success_hook(required_resource_keys={"slack"})
def slack_message_on_success(context: HookContext) -> None:
    message = f"Op {context.op.name} finished successfully"
    context.resources.slack.chat_postMessage(channel="#foo", text=message)
    record(
        "slack_message_on_success",
        job=context.job_name,
        run_id=context.run_id,
        step_key=context.step_key,
        outputs=dict(context.op_output_values),
        keys=sorted(context.required_resource_keys),
        hook_name=context.hook_def.name if context.hook_def else None,
    )


@failure_hook(required_resource_keys={"slack"})
def slack_message_on_failure(context: HookContext) -> None:
    message = f"Op {context.op.name} failed"
    context.resources.slack.chat_postMessage(channel="#foo", text=message)
    record("slack_message_on_failure", step_key=context.step_key, error=str(context.op_exception))


@failure_hook(name="needs_slack", required_resource_keys={"slack"})
def needs_slack(context: HookContext) -> None:
    """Only attached in a definition-error test."""


@failure_hook
def my_failure_hook(context: HookContext) -> None:
    op_exception: BaseException | None = context.op_exception
    assert op_exception is not None
    # print stack trace of exception
    text = "".join(traceback.format_exception(op_exception))
    record(
        "my_failure_hook",
        type_name=getattr(op_exception, "type_name", None),
        has_traceback="raise ValueError" in getattr(op_exception, "traceback_text", ""),
        formatted=text.splitlines()[-1],
        config=dict(context.op_config),
    )


class AConfig(BaseModel):
    greeting: str = "hi"


@op
def a(config: AConfig) -> str:
    return config.greeting


@op
def b() -> None:
    raise ValueError("b is broken")


@job(resource_defs={"slack": slack_resource}, hooks={slack_message_on_failure})
def notif_all() -> None:
    # the hook "slack_message_on_failure" is applied on every op instance within this graph
    a()
    b()


@job(
    resource_defs={"slack": slack_resource.configured({"token": {"env": "SLACK_TOKEN"}})},
    hooks={slack_message_on_failure},
)
def notif_all_configured() -> None:
    a()
    b()


@job(resource_defs={"slack": slack_resource})
def selective_notif() -> None:
    # only op "a" triggers hooks: a slack message will be sent when it fails or succeeds
    a.with_hooks({slack_message_on_failure, slack_message_on_success})()
    # op "b" won't trigger any hooks
    b()


@job(hooks={my_failure_hook})
def with_failure_info() -> None:
    a()
    b()


class _MockSlack:
    """Dev's stand-in: records instead of posting."""

    def chat_postMessage(self, channel: str, text: str) -> None:
        record("mock_slack", channel=channel, text=text)


slack_resource_mock = _MockSlack()


@graph
def slack_notif_all() -> None:
    a()
    b()


notif_all_dev = slack_notif_all.to_job(
    name="notif_all_dev",
    resource_defs={
        "slack": ResourceDefinition.hardcoded_resource(
            slack_resource_mock, "do not send messages in dev"
        )
    },
    hooks={slack_message_on_failure},
)

notif_all_prod = slack_notif_all.to_job(
    name="notif_all_prod",
    resource_defs={"slack": slack_resource},
    hooks={slack_message_on_failure},
)
