"""Measured per-row cost of a stage: the ``costs="auto"`` option.

One timing routine, :func:`measure_exit_seconds_per_row`, over any stage
source (independent stages, whose state is None, or exits that share
computation); :func:`measure_seconds_per_row` times plain callables with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.utils import check_random_state

from .._sklearn_private import _num_samples, _safe_indexing

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
    return measure_exit_seconds_per_row(
        _EachAlone(run_stages),
        X,
        max_rows=max_rows,
        repeats=repeats,
        random_state=random_state,
    )


class _EachAlone:
    """Callables as a stage source whose stages run alone (state is None)."""

    def __init__(self, run_stages):
        self.run_stages = run_stages
        self.n_stages = len(run_stages)

    def run_stage(self, stage, X_rows, state):
        return self.run_stages[stage](X_rows), None


def measure_exit_seconds_per_row(
    source,
    X,
    *,
    max_rows: int = _MAX_TIMING_ROWS,
    repeats: int = _REPEATS,
    random_state=None,
) -> np.ndarray:
    """Wall-clock seconds per row of each exit's *increment*, timed on ``X``.

    Stage ``k`` is timed continuing from the state stage ``k - 1`` produced, so
    the result is the incremental cost that routing pays for a row that goes
    on to exit ``k``. Each stage runs once to warm up, then ``repeats`` times;
    the fastest run is kept.

    Parameters
    ----------
    source : StageSource
        Anything with ``n_stages`` and ``run_stage`` (see
        :class:`~skadaptive.engine.StageSource`).
    X : array-like or sparse matrix
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=1000
    repeats : int, default=5
    random_state : int, RandomState instance or None

    Returns
    -------
    seconds_per_row : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skadaptive.stages import TreeEnsembleExits, measure_exit_seconds_per_row
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> seconds = measure_exit_seconds_per_row(TreeEnsembleExits(forest, [5, 20]), X)
    >>> bool(seconds[1] > 0)   # the 15 trees after the first exit
    True
    """
    n_rows = _num_samples(X)
    if n_rows > max_rows:
        rng = check_random_state(random_state)
        X = _safe_indexing(X, np.sort(rng.choice(n_rows, size=max_rows, replace=False)))
        n_rows = max_rows
    seconds = np.empty(source.n_stages)
    state = None
    for stage in range(source.n_stages):
        _, next_state = source.run_stage(stage, X, state)
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            source.run_stage(stage, X, state)
            timings.append(time.perf_counter() - start)
        seconds[stage] = min(timings) / n_rows
        state = next_state
    return seconds
