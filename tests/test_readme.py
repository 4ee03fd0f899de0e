"""The README's examples run as written: the code location, its hooks, the hook test."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.fixture
def readme_location() -> Iterator[types.ModuleType]:
    """The README's code location, importable as ``readme_definitions``."""
    [source] = [block for block in BLOCKS if "my_pipelines/definitions.py" in block]
    module = types.ModuleType("readme_definitions")
    sys.modules[module.__name__] = module
    exec(compile(source, "README.md", "exec"), module.__dict__)
    yield module
    del sys.modules[module.__name__]


def test_the_readme_code_location_alerts_from_the_worker(
    readme_location: types.ModuleType,
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    location = CodeLocation.from_module(readme_location)

    async def burst() -> None:
        worker = Worker(location, worker_settings)
        try:
            await worker.start()
            readme_location.nightly_etl.execute_in_process(
                raise_on_error=False, settings=engine_settings
            )
            await worker.run_until_idle()
        finally:
            await worker.close()

    asyncio.run(burst())

    printed = capsys.readouterr().out
    assert "Op load failed: ValueError: warehouse is read-only" in printed
    assert "entered Failed" in printed
    assert any(
        "failed" in record.getMessage()
        for record in caplog.records
        if record.name == "hookbus.sensors.report"
    )


def test_the_readme_hook_test_passes(readme_location: types.ModuleType) -> None:
    [source] = [block for block in BLOCKS if "def test_slack_on_failure" in block]
    namespace = dict(readme_location.__dict__)
    exec(compile(source, "README.md", "exec"), namespace)
    namespace["test_slack_on_failure"]()


def test_the_readme_checks_example_defines_four_checks(readme_location: types.ModuleType) -> None:
    [source] = [block for block in BLOCKS if "@run_stuck_check(" in block]
    namespace = dict(readme_location.__dict__)
    exec(compile(source, "README.md", "exec"), namespace)
    module = types.ModuleType("readme_checks")
    module.__dict__.update(namespace)
    checks = CodeLocation.from_module(module).checks
    assert sorted(checks) == [
        "nightly_keeps_failing",
        "nightly_never_started",
        "nightly_stale",
        "nightly_stuck",
    ]


def test_a_fresh_clone_can_make_its_own_virtualenv() -> None:
    # The README's commands create .venv; a tracked .venv (a symlink committed by mistake)
    # made `python3 -m venv .venv` fail in every fresh clone.
    tracked = subprocess.run(
        ["git", "ls-files", "--", ".venv", "venv"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == "", f"the repository tracks a virtualenv: {tracked!r}; git rm --cached it"
