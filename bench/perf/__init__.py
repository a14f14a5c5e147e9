"""Cost benchmarks that print ratios measured in one run (`python -m bench.perf NAME`).

Speed goals live here, not in timed tests: a ratio taken in one process on one
machine survives the noise of shared CI machines; an absolute time does not.
How well the searchers find good configurations is another question, with its
own package: bench.hpo.
"""
