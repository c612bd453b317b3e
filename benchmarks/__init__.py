"""Benchmarks of skadaptive's cascades against the tuned threshold heuristic.

Run ``python -m benchmarks.run_cascade`` (``--quick`` for a smoke run). The
modules are importable so that their pieces can be tested on their own:

- :mod:`benchmarks.datasets`: the datasets, their splits and 3-stage cascades;
- :mod:`benchmarks.frontier`: operating points and the summary metrics
  (speed-up within an accuracy loss, accuracy at a budget, normalised area);
- :mod:`benchmarks.baseline`: the tuned max-probability threshold cascade;
- :mod:`benchmarks.ours`: ``AdaptiveCascadeClassifier`` fitted once, swept over
  ``cost_weight`` and ``budget``, and the policy variants;
- :mod:`benchmarks.timing`: wall-clock, grid-search and policy-learning times;
- :mod:`benchmarks.report`: tables, JSON and ``RESULTS.md``.
"""
