"""Children: a Ctrl-C while one starts is held until it is in hand; stopping escalates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bus.children import interrupts_held, stop_child


def test_a_ctrl_c_inside_the_block_is_raised_when_the_block_ends() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the rest of the block ran")  # e.g. storing the started child
    assert done == ["the rest of the block ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_ctrl_c_nothing_is_raised_and_the_handler_is_restored() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        with interrupts_held():
            pass
        os.kill(os.getpid(), signal.SIGINT)  # reaches the caller's own handler again
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIGINT]


def test_stop_child_kills_a_child_that_ignores_sigterm() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", IGNORE_SIGTERM_THEN_WAIT], stdout=subprocess.PIPE, text=True
    )
    with child:  # closes its pipe
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        stop_child(child, timeout_s=0.5)
    assert child.returncode == -signal.SIGKILL


IGNORE_SIGTERM_THEN_WAIT = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""
