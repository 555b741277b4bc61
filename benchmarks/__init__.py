"""Benchmarks of daskbkg (run with ``python -m benchmarks.run``)."""
