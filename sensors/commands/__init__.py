"""The ``hookbus`` subcommand groups; ``sensors.cli`` registers each of them."""

from sensors.commands.dead_letters import dlq
from sensors.commands.events import events
from sensors.commands.runs import runs
from sensors.commands.sensor_state import sensors_group
from sensors.commands.silences import silences
from sensors.commands.spool import spool
from sensors.commands.support import HELP_JSON, fail, guard

__all__ = [
    "HELP_JSON",
    "dlq",
    "events",
    "fail",
    "guard",
    "runs",
    "sensors_group",
    "silences",
    "spool",
]
