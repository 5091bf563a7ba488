"""Benchmarks of genjobs: `make bench` (or `python -m bench`, PART=all|roundtrips|overhead|lifecycle|coldstart|scale).

Every figure is measured side by side in one run on the same database (this machine is noisy: ratios and
medians taken in one run mean more than absolute times). Results are printed and appended to
bench/RESULTS.md. Bench-only libraries (pgqueuer, procrastinate) live in .venv-bench, never in .venv.
"""
