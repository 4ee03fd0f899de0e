"""The worker process's garbage-collector tuning (``sensors.runner.tune_garbage_collector``)."""

from __future__ import annotations

import gc

from sensors.runner import GC_GEN0_THRESHOLD, tune_garbage_collector


def test_startup_objects_are_frozen_and_young_collections_are_rarer(restored_gc: None) -> None:
    survivor = [object() for _ in range(10)]  # lives on: what a worker imported at start
    tune_garbage_collector()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD


def test_cycles_made_after_tuning_are_still_collected(restored_gc: None) -> None:
    tune_garbage_collector()

    class Node:
        def __init__(self) -> None:
            self.me = self

    import weakref

    node = Node()
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None
