"""Retry and backoff as a small policy that returns a delay; the caller does the sleeping.

The same shape serves a handler that raised (a few attempts, then the dead-letter stream)
and a Redis that went away (retry for ever, the delay capped). It follows slack-sdk's
``http_retry`` interval calculator: exponential growth, a cap, and full jitter so that
many workers retrying at once do not retry in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter and an attempt limit.

    Attributes:
        base_s: the delay after the first failure, before jitter, in seconds.
        max_s: the largest delay, in seconds.
        max_attempts: how many attempts in total (``None``: unlimited); the policy
            returns ``None`` once they are used up.
        jitter: the fraction of each delay that is random (0: none, 1: full jitter).
    """

    base_s: float = 0.5
    max_s: float = 30.0
    max_attempts: int | None = None
    jitter: float = 1.0

    def delay_s(self, attempt: int) -> float | None:
        """How long to wait after failed ``attempt`` (from 1), or ``None`` to give up."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return None
        ceiling = min(self.max_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling * (1 - self.jitter) + random.uniform(0, ceiling * self.jitter)

    def delay_after(self, attempt: int, error: BaseException | None) -> float | None:
        """``delay_s``, as far as the ``error`` of failed ``attempt`` allows.

        An error may say no with ``retryable = False``
        (``notifiers.PermanentNotifierError``: a bad token, an unknown channel), so it is
        given up at once instead of hammering the destination; and it may ask for a
        longer wait with ``retry_after_s`` (a Slack 429's ``Retry-After``), honoured up to
        ``max_s``.
        """
        if not getattr(error, "retryable", True):
            return None
        delay_s = self.delay_s(attempt)
        hint = getattr(error, "retry_after_s", None)
        if delay_s is None or not isinstance(hint, int | float):
            return delay_s
        return max(delay_s, min(float(hint), self.max_s))

    def __repr__(self) -> str:
        return (
            f"<Backoff base_s={self.base_s} max_s={self.max_s} "
            f"max_attempts={self.max_attempts} jitter={self.jitter}>"
        )
