"""``hookbus demo`` works with and without a Redis, and leaves nothing behind, Ctrl-C too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from bus.redis_server import free_port
from tests.processes import ROOT, wait_until


def demo(env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "sensors", "demo", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def processes_mentioning(text: str, *, session: int | None = None) -> list[int]:
    """Live processes whose command line contains ``text`` (in ``session``, if given)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            # Field 6 of /proc/<pid>/stat is the session id (after the ")" of the name).
            stat_fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if text in cmdline and (session is None or int(stat_fields[3]) == session):
            found.append(int(entry.name))
    return found


def private_redis_dirs(port: str) -> set[str]:
    """The temporary directories of the private redis-server on ``port`` (others run too)."""
    prefix = f"hookbus-redis-{port}-"
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith(prefix)}


def test_demo_against_a_running_redis_shows_the_alert_and_cleans_its_keys(
    redis_url: str, redis_client: redis.Redis
) -> None:
    process = demo({"HOOKBUS_REDIS_URL": redis_url})
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    assert f"Using the Redis at {redis_url}" in output
    assert "Op transform failed in job nightly_etl" in output
    assert re.search(r"started in the worker [\d.]+ ms after the op raised", output)
    # scene 2: SIGKILL in the middle of an op; the supervisor publishes, the worker alerts
    assert re.search(r"crash published by the supervisor [\d.]+ ms after the kill", output)
    assert "was killed by SIGKILL" in output
    assert re.search(r"on_crashed hook release_warehouse_lock started [\d.]+ ms", output)
    assert redis_client.keys("*hookbus-demo-*") == []


def test_demo_without_redis_starts_a_private_one_and_removes_it() -> None:
    # Scene 2 is shown by the test above; here only the private Redis matters.
    process = demo({"HOOKBUS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, "--no-crash-scene")
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    port = re.search(r"started a private one \(.*\) on port (\d+)", output)
    assert port, output
    assert processes_mentioning(f"--port {port.group(1)}") == []
    assert private_redis_dirs(port.group(1)) == set()


def test_ctrl_c_during_the_demo_leaves_no_process_or_directory_behind() -> None:
    process = demo(
        {"HOOKBUS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, start_new_session=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "Starting a worker process" in line:
            break
    port = re.search(r"on port (\d+)", "".join(lines))
    assert port, lines
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    process.communicate(timeout=30)

    wait_until(
        lambda: (
            not processes_mentioning(f"--port {port.group(1)}")
            and not processes_mentioning("sensors worker", session=process.pid)
        ),
        timeout_s=10,
        what="the demo's redis-server and worker to be gone",
    )
    assert private_redis_dirs(port.group(1)) == set()
