"""A Ctrl-C while a child process starts is held until the child is in hand."""

from __future__ import annotations

import os
import signal

import pytest

from bus.interrupts import interrupts_held


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
