"""The code locations the benchmarks run: importable by the bench process and by workers."""
