"""The wire between the engine and the workers: events on Redis Streams.

The path of an event, hop by hop (each function adds one thing; the full story, with the
notification rules, is in ``docs/architecture.md``):

1. ``engine.run.Run.transition`` / ``engine.run.Run.op_transition`` — a state change
   becomes a validated ``RunEvent`` / ``OpEvent`` with the run's next ``seq``.
2. ``bus.publisher.Publisher.publish`` — JSON, ``XADD`` to the run's shard stream
   (``bus.keys.Keys.stream_for_run``); kept in order while Redis is away.
3. ``bus.consumer.Consumer.read`` — ``XREADGROUP`` in the ``hooks`` group, one group per
   sensor and one per notification rule, in a worker process.
4. ``sensors.intake.Intake.process`` — decode a read batch (``bus.events.decode_event``),
   pick each event's handlers (``sensors.handlers.hook_handlers``, resolved in
   ``sensors.registry.CodeLocation``).
5. ``sensors.dispatch.Dispatcher.first_attempts`` — skip what already succeeded
   (``bus.ledger.Ledger``), call user code through ``sensors.boundary.call_user_code_many``,
   record the successes; what failed goes on in ``sensors.dispatch.Dispatcher.finish``.
6. ``notifiers.slack.SlackNotifier.post`` — ``chat.postMessage`` via slack-sdk.
7. ``bus.consumer.Consumer.ack`` — ``XACK`` once every handler is done.

A time-based check's event (``bus.events.CheckEvent``) starts at
``sensors.check_runner.CheckRunner.run_once`` (the check history kept by
``sensors.check_index.HistoryIndex``) — ``bus.checks.FIRE_SCRIPT`` (check a stuck run
is still as read, mark the occurrence and ``XADD``, atomically) — and then takes hops
3–7 like any other, its handler being the check's own function
(``sensors.handlers.check_handlers``).
"""

import typing

from bus import lazy

if typing.TYPE_CHECKING:
    from bus.connection import connect, connect_async
    from bus.consumer import Consumer, Delivery
    from bus.envvar import EnvVar
    from bus.errors import (
        BusError,
        BusUnavailableError,
        ConfigError,
        EventValidationError,
        HookbusError,
    )
    from bus.events import (
        SCHEMA_VERSION,
        BusEvent,
        CheckEvent,
        CheckKind,
        ErrorInfo,
        Event,
        HookRef,
        OpEvent,
        OpInfo,
        RunEvent,
        RunInfo,
        decode_event,
        encode_event,
    )
    from bus.keys import HOOKS_GROUP, Keys
    from bus.publisher import Publisher
    from bus.refs import DeclaredHook, HookAttachError, callable_ref, hook_ref
    from bus.settings import BusSettings
    from bus.states import OpState, RunState
    from bus.types import ResourceFactory, ResourceInitContext

__all__ = [
    "BusError",
    "BusEvent",
    "BusSettings",
    "BusUnavailableError",
    "CheckEvent",
    "CheckKind",
    "ConfigError",
    "Consumer",
    "DeclaredHook",
    "Delivery",
    "EnvVar",
    "ErrorInfo",
    "Event",
    "EventValidationError",
    "HOOKS_GROUP",
    "HookAttachError",
    "HookRef",
    "HookbusError",
    "Keys",
    "OpEvent",
    "OpInfo",
    "OpState",
    "Publisher",
    "ResourceFactory",
    "ResourceInitContext",
    "RunEvent",
    "RunInfo",
    "RunState",
    "SCHEMA_VERSION",
    "callable_ref",
    "connect",
    "connect_async",
    "decode_event",
    "encode_event",
    "hook_ref",
]

# Each public name and its module, imported on first use (``bus.lazy``): importing one
# ``bus`` module (the engine needs ``bus.events``) must not load redis-py and the rest.
_LAZY = {
    "BusError": "bus.errors",
    "BusEvent": "bus.events",
    "BusSettings": "bus.settings",
    "BusUnavailableError": "bus.errors",
    "CheckEvent": "bus.events",
    "CheckKind": "bus.events",
    "ConfigError": "bus.errors",
    "Consumer": "bus.consumer",
    "DeclaredHook": "bus.refs",
    "Delivery": "bus.consumer",
    "EnvVar": "bus.envvar",
    "ErrorInfo": "bus.events",
    "Event": "bus.events",
    "EventValidationError": "bus.errors",
    "HOOKS_GROUP": "bus.keys",
    "HookAttachError": "bus.refs",
    "HookRef": "bus.events",
    "HookbusError": "bus.errors",
    "Keys": "bus.keys",
    "OpEvent": "bus.events",
    "OpInfo": "bus.events",
    "OpState": "bus.states",
    "Publisher": "bus.publisher",
    "ResourceFactory": "bus.types",
    "ResourceInitContext": "bus.types",
    "RunEvent": "bus.events",
    "RunInfo": "bus.events",
    "RunState": "bus.states",
    "SCHEMA_VERSION": "bus.events",
    "callable_ref": "bus.refs",
    "connect": "bus.connection",
    "connect_async": "bus.connection",
    "decode_event": "bus.events",
    "encode_event": "bus.events",
    "hook_ref": "bus.refs",
}
__getattr__, __dir__ = lazy.lazy_exports(__name__, _LAZY)
