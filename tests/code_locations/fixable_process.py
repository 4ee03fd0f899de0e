"""For a worker *process*: a hook that fails until a flag file exists (the "deployed fix").

``FIXABLE_DIR`` (set in the worker's environment by the test) holds the flag file ``fixed``
and receives ``handled-<step key>`` once the hook succeeds.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine import job, op
from sensors import HookContext, failure_hook


@failure_hook
def page_on_call(context: HookContext) -> None:
    folder = Path(os.environ["FIXABLE_DIR"])
    if not (folder / "fixed").exists():
        raise KeyError("pager_service_url")
    (folder / f"handled-{context.step_key}").write_text(context.run_id)


@op
def flaky_load() -> None:
    raise ConnectionError("warehouse unreachable")


@job(hooks={page_on_call})
def nightly() -> None:
    flaky_load()
