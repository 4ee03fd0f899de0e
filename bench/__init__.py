"""Benchmarks that show what hookbus costs a pipeline and how fast alerts arrive.

``python -m bench`` (``--quick`` for the CI smoke run) measures, against a real Redis, the
bus's own physical limits first (the "Redis floor") and then each hookbus figure, and
prints every figure with its target and its ratio to the floor measured in the same run,
so the numbers mean something on a noisy, shared machine. See ``docs/performance.md``.

The benchmarks use only what a user has: ``@job``/``@op`` and ``execute_in_process``,
``EngineSettings``, and ``hookbus worker`` processes (``python -m sensors worker``) on the
code locations in ``bench.locations``.
"""
