"""``hookbus worker --processes 2 --concurrency 4``: supervised worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import redis

from bus import Keys
from engine import EngineSettings
from tests.code_locations.faults import key
from tests.conftest import TEST_PREFIX
from tests.processes import ROOT, wait_until
from tests.sensors.test_faults import FAST, all_counted, counts, run_counted

KEYS = Keys(prefix=TEST_PREFIX)


def children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(line) for line in found.split()}


def test_a_supervisor_runs_and_restarts_worker_processes_and_stops_them_on_sigterm(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    env = {
        **os.environ,
        **FAST,
        "PYTHONPATH": str(ROOT),
        "HOOKBUS_REDIS_URL": redis_url,
        "HOOKBUS_KEY_PREFIX": TEST_PREFIX,
        "HOOKBUS_CONSUMER_NAME": "sup",
        "HOOKBUS_BLOCK_MS": "200",
        "HOOKBUS_READ_COUNT": "1",
    }
    command = [sys.executable, "-m", "sensors", "worker", "--processes", "2"]
    command += ["--concurrency", "4", "tests.code_locations.faults"]
    supervisor = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        beats = [KEYS.worker_heartbeat("sup-0"), KEYS.worker_heartbeat("sup-1")]
        wait_until(lambda: redis_client.exists(*beats) == 2, timeout_s=20, what="two workers")
        first = children(supervisor.pid)
        assert len(first) == 2

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(children(supervisor.pid) - {victim}) == 2, what="the restarted worker"
        )

        run_ids = run_counted(engine_settings, 10)
        wait_until(lambda: all_counted(redis_client, run_ids), timeout_s=15, what="every hook")
        assert counts(redis_client, run_ids) == [{b"explode": b"1"}] * 10
        assert len(redis_client.smembers(key("faults:pids"))) >= 1

        survivors = children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
        assert all(not os.path.exists(f"/proc/{pid}") for pid in survivors)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        for pid in children(supervisor.pid):
            os.kill(pid, signal.SIGKILL)
