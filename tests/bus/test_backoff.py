"""The retry/backoff policy: exponential, capped, jittered, and limited in attempts."""

from __future__ import annotations

from bus.backoff import Backoff


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    policy = Backoff(base_s=0.5, max_s=3.0, jitter=0.0)
    assert [policy.delay_s(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    policy = Backoff(base_s=1.0, max_s=8.0)
    delays = [policy.delay_s(3) for _ in range(200)]
    assert all(delay is not None and 0 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 1


def test_the_policy_gives_up_after_max_attempts() -> None:
    policy = Backoff(base_s=0.1, max_attempts=3, jitter=0.0)
    assert policy.delay_s(1) == 0.1
    assert policy.delay_s(2) == 0.2
    assert policy.delay_s(3) is None


def test_repr() -> None:
    assert repr(Backoff(max_attempts=3)) == (
        "<Backoff base_s=0.5 max_s=30.0 max_attempts=3 jitter=1.0>"
    )
