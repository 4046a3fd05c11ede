"""The benchmark harness behind ``benchmarks/bench.py``: propylon against nginx, one run."""
