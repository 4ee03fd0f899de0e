"""``hookbus run``: the job runs in a child process that this parent watches.

When the child dies abnormally (SIGKILL, the kernel's OOM killer, a segfault) it cannot
publish anything; the parent can, at once: it first delivers what the child left in the
spool, then claims the run (``bus.runs.CLAIM_SCRIPT``) and publishes op ``crashed`` for
the ops that were running and run ``crashed``, with the signal and the exit code. If the
child ended the run itself (any terminal state), the claim finds nothing and the parent
publishes nothing. SIGTERM sent to the parent is passed on to the child, which then
publishes its own crash; Ctrl-C (SIGINT to the process group) reaches the child directly.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import redis

from bus.connection import connect
from bus.events import CrashInfo
from bus.keys import Keys
from bus.runs import (
    CLAIM_NUMKEYS,
    CLAIM_SCRIPT,
    claim_args,
    crash_events,
    parse_claim,
    queue_events,
)
from bus.spool import flush_spool
from engine.settings import EngineSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisedExit:
    """How a supervised run ended.

    Attributes:
        run_id: the run.
        exit_code: the child's exit status (negative: killed by that signal).
        crash_published: whether this parent published the run's crash.
    """

    run_id: str
    exit_code: int
    crash_published: bool

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(-self.exit_code).name if self.exit_code < 0 else None


def supervise(command: Sequence[str], *, run_id: str, settings: EngineSettings) -> SupervisedExit:
    """Run ``command`` (a child that executes run ``run_id``) and publish its crash if it dies.

    Args:
        command: the child's argv; it must run the job with ``run_id``.
        run_id: the run the child executes.
        settings: where to publish; ``spool_dir`` is flushed after the child ends.
    """
    child = subprocess.Popen(list(command))
    previous = {
        # SIGTERM (docker stop, systemd, kill) is meant for us: pass it on to the child.
        signal.SIGTERM: signal.signal(signal.SIGTERM, _forward_to(child)),
        # Ctrl-C reaches the whole process group, the child included: forwarding it would
        # interrupt the child a second time while it publishes its own crash.
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    try:
        exit_code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    crash = CrashInfo(
        reason="signal" if exit_code < 0 else "exit",
        signal=signal.Signals(-exit_code).name if exit_code < 0 else None,
        exit_code=exit_code,
        pid=child.pid,
        host=socket.gethostname(),
        detected_by="supervisor",
    )
    published = publish_crash_after_exit(run_id, crash, settings=settings)
    return SupervisedExit(run_id=run_id, exit_code=exit_code, crash_published=published)


def publish_crash_after_exit(run_id: str, crash: CrashInfo, *, settings: EngineSettings) -> bool:
    """Deliver the child's spool, then claim and publish the crash if the run is not over.

    Returns:
        Whether a crash was published (``False``: the run had ended, or Redis is away —
        then the workers publish it when the heartbeat deadline passes).
    """
    client = connect(settings)
    try:
        last_seqs: dict[str, int] = {}
        flush_spool(client, settings.spool_dir, last_seqs=last_seqs, keys=settings.keys)
        return claim_and_publish(
            client, settings.keys, run_id, crash, after_seq=last_seqs.get(run_id, 0)
        )
    except redis.RedisError as exc:
        logger.warning(
            "could not publish the crash of run_id=%s (%s); the workers will when its "
            "heartbeat deadline passes",
            run_id,
            type(exc).__name__,
        )
        return False
    finally:
        client.close()


def claim_and_publish(
    client: redis.Redis, keys: Keys, run_id: str, crash: CrashInfo, *, after_seq: int = 0
) -> bool:
    """Claim ``run_id`` and publish its crash events; ``False`` if someone else had it.

    Args:
        after_seq: the run's last ``seq`` known from elsewhere (its spool, written while
            Redis was away and the record could not follow); the crash continues after it.
    """
    reply = client.eval(CLAIM_SCRIPT, CLAIM_NUMKEYS, *claim_args(keys, run_id))
    claimed, record = parse_claim(reply)
    if not claimed:
        return False
    if record is None:
        logger.warning("claimed run_id=%s without a run record; nothing to publish", run_id)
        return False
    if after_seq > record.seq:
        record = record.model_copy(update={"seq": after_seq})
    events = crash_events(record, crash)
    pipe = client.pipeline(transaction=True)
    queue_events(pipe, keys, events)
    pipe.execute()
    logger.error("run crashed run_id=%s %s", run_id, events[-1].message)
    return True


def _forward_to(child: subprocess.Popen[bytes]) -> Callable[[int, FrameType | None], None]:
    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    return forward
