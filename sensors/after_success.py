"""What follows a handler's success: a sensor's run requests, launched."""

from __future__ import annotations

from sensors.errors import CodeLocationError, HookExecutionError
from sensors.handlers import Handler
from sensors.hook_threads import Outcome
from sensors.work import Work


async def after_success(work: Work, handler: Handler, outcome: Outcome, attempt: int) -> Outcome:
    """Run what follows a handler's success (a sensor's run requests); a failed outcome if
    that raised, whatever it raised (Redis away, a launch failing): the handler is then
    retried like any failure, and the rest of its batch goes on."""
    if handler.after is None:
        return outcome
    try:
        await handler.after(outcome.value)
    except (HookExecutionError, CodeLocationError) as exc:
        return Outcome(False, exc)
    except Exception as exc:
        error = HookExecutionError(
            handler=handler.name, event_id=work.event.event_id, attempt=attempt, cause=exc
        )
        error.__cause__ = exc
        return Outcome(False, error)
    return outcome
