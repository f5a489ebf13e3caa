"""Benchmarks of twinstream against its peers (issue #7): ``python -m bench.run [--quick]``.

See ``bench/README.md`` for what is measured and how.
"""
