"""Jobs for in-process lifecycle tests: retries, skips, submits, config, resources."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import BaseModel, SecretStr

from engine import OpExecutionContext, ResourceDefinition, RunCancelled, job, op
from sensors import HookContext, failure_hook, success_hook

#: Attempts per op name, so a flaky op can fail a given number of times.
ATTEMPTS: dict[str, int] = {}
_LOCK = threading.Lock()


def count(name: str) -> int:
    with _LOCK:
        ATTEMPTS[name] = ATTEMPTS.get(name, 0) + 1
        return ATTEMPTS[name]


@failure_hook
def on_fail(context: HookContext) -> None:
    """Recorded by the worker tests; here only attached."""


@success_hook
def on_ok(context: HookContext) -> None:
    """Recorded by the worker tests; here only attached."""


@op(retries=2)
def flaky() -> int:
    """Fails twice, then returns."""
    if count("flaky") < 3:
        raise ConnectionError("warehouse busy")
    return 7


@op(retries=1)
def broken(value: int) -> int:
    raise ValueError(f"cannot use {value}")


@op
def downstream(value: int) -> int:
    return value + 1


@job(hooks={on_fail, on_ok})
def retries_skip_failure() -> None:
    value = flaky()
    state = broken(value, return_state=True)
    downstream(state, return_state=True)
    broken(value)


@op
def square(value: int) -> int:
    return value * value


@op
def add(left: int, right: int) -> int:
    return left + right


@job(max_concurrency=4)
def fan_out() -> int:
    futures = [square.submit(n) for n in range(4)]
    return add(add(futures[0], futures[1]), add(futures[2], futures[3]))  # type: ignore[no-any-return]


class LimitConfig(BaseModel):
    limit: int
    api_token: SecretStr = SecretStr("s3cret")
    region: str = "eu"


@op
def limited(context: OpExecutionContext, config: LimitConfig) -> int:
    assert context.op_config is config
    return int(config.limit)


@op(required_resource_keys={"store"})
def use_store(context: OpExecutionContext) -> Any:
    return context.resources.store


@job(resource_defs={"store": ResourceDefinition.hardcoded_resource({"kind": "mock"}, "dev")})
def configured_job() -> int:
    use_store()
    return limited()  # type: ignore[no-any-return]


@op
def exits() -> None:
    raise SystemExit("Crashing on purpose!")


@job
def crashing() -> None:
    exits()


FLAKY_BODY: dict[str, int] = {}


@job(retries=1)
def flaky_body() -> str:
    FLAKY_BODY["calls"] = FLAKY_BODY.get("calls", 0) + 1
    if FLAKY_BODY["calls"] == 1:
        raise RuntimeError("first attempt fails")
    return "done"


@job
def skip_raises() -> None:
    state = broken(1, return_state=True)
    downstream(state)


RELEASE = threading.Event()
SEEN: list[str] = []


@op
def wait_for_release() -> None:
    RELEASE.wait(timeout=20)


@job
def cancellable() -> None:
    wait_for_release()
    try:
        downstream(1)
    except RunCancelled as exc:
        SEEN.append(str(exc))
        raise


@op(interruptible=True)
def long_sleep() -> None:
    time.sleep(20)


@job
def interruptible_job() -> None:
    long_sleep()
    downstream(1)
