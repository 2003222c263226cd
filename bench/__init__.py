"""Benchmarks (not tests): `python -m bench.run` / `make bench`. See bench/README.md."""
