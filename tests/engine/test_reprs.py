"""Long-lived engine objects say what they are in logs and debuggers."""

from __future__ import annotations

from concurrent.futures import Future

import redis

from bus import Keys, OpInfo, OpState, RunState
from bus.publisher import Publisher
from engine import (
    OpExecutionContext,
    OpFuture,
    ResourceDefinition,
    RunResult,
    State,
    graph,
)
from engine.heartbeat import Heartbeat
from engine.interrupt import Interrupter
from engine.supervise import SupervisedExit
from tests.code_locations import flows


def test_reprs(redis_client: redis.Redis) -> None:
    publisher = Publisher(redis_client, keys=Keys())
    heartbeat = Heartbeat(
        publisher, keys=Keys(), run_id="r1", interval_s=1, timeout_s=5, on_cancel=print
    )
    future: Future[State] = Future()
    op = OpInfo(name="extract", step_key="extract_2", attempt=2)

    assert repr(publisher) == "<Publisher published=0 backlog=0>"
    assert repr(heartbeat) == "<Heartbeat run_id='r1' beats=0>"
    assert repr(Interrupter()) == "<Interrupter armed=False>"
    assert repr(OpFuture(future, "square_2")) == "<OpFuture step_key='square_2' done=False>"
    assert repr(OpExecutionContext(run_id="r1", job_name="j", op=op)) == (
        "<OpExecutionContext run_id='r1' step_key='extract_2' attempt=2>"
    )
    assert (
        repr(graph(flows.retries_skip_failure.fn))
        == "<GraphDefinition name='retries_skip_failure'>"
    )
    assert (
        repr(ResourceDefinition.hardcoded_resource(1))
        == "<ResourceDefinition hardcoded configured=[]>"
    )
    assert repr(RunResult(run_id="r1", job_name="j", state=RunState.FAILED)) == (
        "<RunResult run_id='r1' job='j' state=failed ops=0>"
    )
    assert State(OpState.FAILED).name == "Failed"
    assert SupervisedExit(run_id="r1", exit_code=-9, crash_published=True).signal_name == "SIGKILL"
