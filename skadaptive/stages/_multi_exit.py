"""Multi-exit sources: exits over one shared computation.

A cascade (:class:`~skadaptive.stages.IndependentStages`) starts every stage
from the raw rows. A *multi-exit* source instead carries the running computation
from one exit to the next: stage ``k`` continues from the state stage ``k - 1``
left, so its cost is only the increment (the next trees of an ensemble, the next
block of a chain, the next segment of a network).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import _num_samples

from ..engine import StageSource

__all__ = ["MultiExitSource", "exit_probas", "measure_exit_seconds_per_row"]


@runtime_checkable
class MultiExitSource(StageSource, Protocol):
    """A :class:`~skadaptive.engine.StageSource` whose stages share computation.

    Attributes and methods
    ----------------------
    n_stages : int
        Number of exits; the last exit always answers.
    classes_ : ndarray of shape (n_classes,)
        The labels of the probability columns, the same at every exit.
    run_stage(stage, X_rows, state) -> (proba, new_state)
        ``proba`` is a float64 array of shape ``(n_rows, n_classes)`` in the
        order of ``classes_``. At ``stage == 0`` ``state`` is ``None`` and the
        computation starts from ``X_rows``; at a later stage ``state`` is what
        stage ``stage - 1`` returned, restricted by :meth:`keep_rows` to the
        rows of ``X_rows`` (the same rows, in the same order). Only the
        increment from exit ``stage - 1`` to exit ``stage`` is computed, and
        only for these rows. ``run_stage`` never modifies ``state`` in place.
    keep_rows(state, mask) -> state
        The state of the rows where the boolean ``mask`` is true, in order.
    default_costs() -> ndarray of shape (n_stages,) or None
        Incremental cost of each exit in the source's natural unit (trees for
        tree ensembles, multiply-accumulates for an ONNX network), or None when
        it has none: then measured wall time
        (:func:`measure_exit_seconds_per_row`) is used. Optionally a
        ``cost_unit`` attribute names the unit, for plots and reports.

    Implementations
    ---------------
    - :class:`~skadaptive.stages._tree_exits.TreeEnsembleExits`: exits after
      given numbers of trees of a fitted gradient-boosting or random/extra-trees
      classifier; the state is the running raw score or vote sum.
    - :class:`~skadaptive.stages._chain_exits.ChainExits`: a chain of fitted
      transformers with a classifier head after each; the state is the current
      block's output.
    - An ONNX multi-exit network (a later adapter) plugs in the same way. A
      single ONNX graph cannot stop early -- fetching an early output still runs
      the whole graph -- so the network is split into one
      ``onnxruntime.InferenceSession`` per segment. Segment ``k`` takes the
      hidden tensor of segment ``k - 1`` (segment 0 takes ``X``) and returns the
      next hidden tensor and the exit's logits. ``run_stage`` returns the
      softmax of the logits as float64 on the host and the hidden tensor as the
      state; ``keep_rows`` gathers the hidden tensor's rows (on GPU it stays on
      the device as an ``OrtValue`` bound with IO binding; only the small
      probability vectors reach the host). ``default_costs`` can be the FLOPs
      of each segment.
    """

    n_stages: int
    classes_: np.ndarray

    def run_stage(self, stage: int, X_rows, state): ...

    def keep_rows(self, state, mask: np.ndarray): ...

    def default_costs(self) -> np.ndarray | None: ...


def exit_probas(source: MultiExitSource, X) -> list[np.ndarray]:
    """Probabilities of every row at every exit (no row leaves early).

    This is what an exit policy is fitted on: each exit's answer for each row.
    The work is shared between exits as in routing; no row is dropped.

    Parameters
    ----------
    source : MultiExitSource
    X : array-like or sparse matrix

    Returns
    -------
    probas : list of ndarray of shape (n_rows, n_classes)
        One per exit.
    """
    probas, state = [], None
    for stage in range(source.n_stages):
        proba, state = source.run_stage(stage, X, state)
        probas.append(proba)
    return probas


def measure_exit_seconds_per_row(
    source: MultiExitSource,
    X,
    *,
    max_rows: int = 1000,
    repeats: int = 5,
    random_state=None,
) -> np.ndarray:
    """Wall-clock seconds per row of each exit's *increment*, timed on ``X``.

    Stage ``k`` is timed continuing from the state stage ``k - 1`` produced, so
    the result is the incremental cost that routing pays for a row that goes
    on to exit ``k``. Each stage runs once to warm up, then ``repeats`` times;
    the fastest run is kept.

    Parameters
    ----------
    source : MultiExitSource
    X : array-like or sparse matrix
        Rows to time on; at most ``max_rows`` of them, drawn at random.
    max_rows : int, default=1000
    repeats : int, default=5
    random_state : int, RandomState instance or None

    Returns
    -------
    seconds_per_row : ndarray of shape (n_stages,)
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
