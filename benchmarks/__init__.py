"""Load benchmarks for cors-edge, run on demand: ``python -m benchmarks.run``."""
