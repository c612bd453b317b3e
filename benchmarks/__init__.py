"""Benchmarks of skadaptive: cascades, early exits and ONNX stages.

Runs, each with ``--quick`` for a smoke run and its own results file:

- ``python -m benchmarks.run_cascade``: cascades against the tuned threshold
  heuristic (``RESULTS.md``);
- ``python -m benchmarks.run_early_exit``: early-exit gradient boosting and
  random forests, every policy family at 25/50/75 % budgets, wall clock
  (``EARLY_EXIT_RESULTS.md``; modules ``early_exit_data``, ``early_exit_report``);
- ``python -m benchmarks.run_onnx``: ONNX CNN cascade and split multi-exit
  network on CPU at batch sizes 1, 64, 1024 (``ONNX_RESULTS.md``; modules
  ``onnx_bench``, ``onnx_report``); ``python -m benchmarks.run_onnx_gpu`` the
  same with CUDA and IO binding, where a CUDA GPU and onnxruntime-gpu exist.
- ``python -m benchmarks.run_budgets``: the default estimator with ``budget=``
  against tuned per-stage thresholds (budget sections of ``RESULTS.md`` and
  ``EARLY_EXIT_RESULTS.md``);
- ``python -m benchmarks.run_memory``: peak memory and time of predict on 10
  million rows against the stages' own (``MEMORY_RESULTS.md``).

The cascade benchmark's modules are importable so that their pieces can be
tested on their own:

- :mod:`benchmarks.datasets`: the datasets, their splits and 3-stage cascades;
- :mod:`benchmarks.frontier`: operating points and the summary metrics
  (speed-up within an accuracy loss, accuracy at a budget, normalised area);
- :mod:`benchmarks.baseline`: the tuned max-probability threshold cascade;
- :mod:`benchmarks.ours`: ``AdaptiveCascadeClassifier`` fitted once, swept over
  ``cost_weight`` and ``budget``, and the policy variants;
- :mod:`benchmarks.timing`: wall-clock, grid-search and policy-learning times;
- :mod:`benchmarks.report`: tables, targets and ``RESULTS.md``.

Every report builds on :mod:`benchmarks._tables`: Markdown tables, number
formats, the machine line, results files and JSON clean-up.
"""
