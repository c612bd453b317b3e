"""Measured per-row cost of a stage: the ``costs="auto"`` option."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _num_samples

# Each stage is timed on the same sample of rows, ``_REPEATS`` times after a
# warm-up call, and the fastest run is kept: noise from the rest of the machine
# only ever adds time, so the minimum is the most repeatable estimate.
_REPEATS = 5
_MAX_TIMING_ROWS = 1000


def measure_seconds_per_row(
    run_stages: list[Callable],
    X,
    *,
    max_rows: int = _MAX_TIMING_ROWS,
    repeats: int = _REPEATS,
    random_state=None,
) -> np.ndarray:
    """Wall-clock seconds per row of each stage, timed on a sample of ``X``.

    Parameters
    ----------
    run_stages : list of callable
        ``run_stages[k](X_rows)`` runs stage ``k`` alone on ``X_rows``.
    X : array-like
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=1000
    repeats : int, default=5
        Timed runs per stage after one warm-up run; the fastest is kept.
    random_state : int, RandomState instance or None

    Returns
    -------
    seconds_per_row : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive.stages import measure_seconds_per_row
    >>> X, y = load_iris(return_X_y=True)
    >>> lr = LogisticRegression(max_iter=1000).fit(X, y)
    >>> seconds = measure_seconds_per_row([lr.predict_proba], X)
    >>> bool(seconds[0] > 0)
    True
    """
    n_rows = _num_samples(X)
    rng = check_random_state(random_state)
    if n_rows > max_rows:
        rows = np.sort(rng.choice(n_rows, size=max_rows, replace=False))
        X = _safe_indexing(X, rows)
        n_rows = max_rows
    seconds = np.empty(len(run_stages))
    for stage, run in enumerate(run_stages):
        run(X)
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(X)
            timings.append(time.perf_counter() - start)
        seconds[stage] = min(timings) / n_rows
    return seconds
