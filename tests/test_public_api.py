"""Each package's ``__init__`` is its table of contents; dependencies point one way."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

PACKAGES = ["bus", "engine", "sensors", "notifiers"]
ROOT = Path(__file__).resolve().parents[1]
#: Which of our packages each package may import. ``bus`` is the bottom of the graph.
ALLOWED_IMPORTS = {
    "bus": set(),
    "engine": {"bus"},
    "notifiers": {"bus"},
    "sensors": {"bus", "engine", "notifiers"},
}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    # ``dir`` includes the names a package imports on first use (``bus.lazy``), and
    # ``getattr`` imports them: each one must resolve.
    public = {
        attr
        for attr in dir(module)
        if not attr.startswith("_") and not isinstance(getattr(module, attr), types.ModuleType)
    }
    assert set(exported) == public


@pytest.mark.parametrize("name", PACKAGES)
def test_no_lazy_export_is_named_like_a_submodule(name: str) -> None:
    # Importing ``pkg.x`` sets the attribute ``pkg.x`` to the module; a lazily exported
    # ``x`` would then never reach ``__getattr__`` (``from engine import op`` would give
    # the module ``engine.op``). Such names must be imported eagerly.
    lazy_names = getattr(importlib.import_module(name), "_LAZY", {})
    clashes = [attr for attr in lazy_names if (ROOT / name / f"{attr}.py").exists()]
    clashes += [attr for attr in lazy_names if (ROOT / name / attr).is_dir()]
    assert clashes == []


def test_defining_jobs_does_not_import_what_running_them_needs() -> None:
    """``import engine`` ≤ 0.3 s (issue 8): a module of jobs and ops loads no Redis client,
    settings loader or YAML parser until a run starts."""
    code = (
        "import sys\n"
        "import engine\n"
        "from engine import GraphDefinition, JobDefinition, RunConfig, graph, job, op\n"
        "heavy = ['redis', 'pydantic_settings', 'yaml', 'bus.connection', 'engine.run']\n"
        "print(sorted(name for name in heavy if name in sys.modules))"
    )
    assert _fresh_interpreter(code) == "[]"


def test_a_worker_loads_no_http_client_until_a_destination_needs_one() -> None:
    """Worker idle RSS ≤ 60 MB (issue 8): httpx (with its CLI) and slack-sdk are about 6 MB,
    so the CLI and every worker module load them only when a Slack or webhook destination
    is built."""
    code = (
        "import sys\n"
        "import sensors.cli, sensors.worker, notifiers\n"
        "from notifiers import SlackNotifier, WebhookNotifier, SlackWebhookNotifier\n"
        "heavy = ['httpx', 'slack_sdk', 'pygments']\n"
        "before = sorted(name for name in heavy if name in sys.modules)\n"
        "WebhookNotifier('http://127.0.0.1:9/hook').close()\n"
        "SlackWebhookNotifier('http://127.0.0.1:9/hook')\n"
        "after = sorted(name for name in heavy if name in sys.modules)\n"
        "print(before, after)"
    )
    before, after = _fresh_interpreter(code).split(" ", 1)
    assert before == "[]"
    assert "'httpx'" in after and "'slack_sdk'" in after  # the test does load them


def _fresh_interpreter(code: str) -> str:
    """What ``code`` prints in a new interpreter (nothing imported before it)."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize("name", PACKAGES)
def test_dependencies_point_one_way(name: str) -> None:
    offenders = []
    for path in sorted((ROOT / name).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            for target in targets:
                top = target.split(".")[0]
                if top in PACKAGES and top != name and top not in ALLOWED_IMPORTS[name]:
                    offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert offenders == []
