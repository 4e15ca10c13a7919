"""Benchmarks: each script prints its figures; ``python -m bench`` will gather them."""
