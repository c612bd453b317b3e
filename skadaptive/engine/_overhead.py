"""What a stage costs inside a cascade: its own time and the routing's.

At each stage the engine copies the running rows of ``X`` (unless the state
carries them), checks the stage's probabilities, lets the policy compute its
features and scores, writes the answers of the rows that exit and compacts the
others. :func:`measure_routing_seconds` times that work, so that
``costs="auto"`` includes it: on cheap stages it is a large part of a
cascade's time. Timed with the real stages, it also includes what a stage
loses by running between others (its weights or trees brought back into the
cache at every batch): on the ONNX benchmark's networks, calls in turn on
1,024-row batches took about a fifth longer than each network's calls alone.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._sklearn_private import _num_samples, _safe_indexing
from ..stages._combined import answering_source
from ..stages._costs import fastest_in_rounds, fit_call_line, timing_batches
from ._routing import route


class _Lookup:
    """Stages that return known probabilities of the rows still running."""

    def __init__(self, probas, n_stages, rows_in_state, regression=False):
        self.probas = probas
        self.n_stages = n_stages
        self.classes_ = np.arange(probas[0].shape[1])
        self.rows_in_state = rows_in_state
        self.regression = regression

    def run_stage(self, stage, X_rows, state):
        rows = np.arange(len(self.probas[0])) if state is None else state
        return self.probas[stage].take(rows, axis=0), rows

    def keep_rows(self, state, mask):
        return state[mask]


class _GoingOn:
    """Decides as ``policy`` does, then sends the rows on until ``last``.

    One row exits at each stage before ``last`` (where there are several), so
    that the others are copied and compacted as when a policy lets rows exit.
    """

    def __init__(self, policy, last):
        self.policy = policy
        self.last = last

    def exits(self, stage, history):
        decided = np.asarray(self.policy.exits(stage, history))
        if stage == self.last:
            return np.ones(len(decided), dtype=bool)
        exits = np.zeros(len(decided), dtype=bool)
        exits[0] = len(decided) > 1
        return exits


def measure_routing_seconds(
    policy,
    stage_probas: list[np.ndarray],
    X,
    *,
    n_classes: int,
    rows_in_state: bool = False,
    repeats: int = 5,
    entry=None,
    combiners=None,
    regression: bool = False,
    source=None,
    batch_size: int | None = None,
) -> Bunch:
    """Seconds per call and per row that routing adds to each stage.

    Routing through stages ``0..k`` with every row going on to stage ``k`` is
    timed for each ``k`` on the batches of
    :func:`~skadaptive.stages._costs.timing_batches` (1 to 4,096 rows of
    ``X``, and 8,192 where ``batch_size`` is larger than 4,096, repeated
    where it has fewer); stage
    ``k``'s share is the difference with routing through ``0..k-1`` (its
    rows' copy and compaction, the check of its probabilities, the policy's
    decision after it), and the line ``per_call + n * per_row`` is fitted to
    it as for the stages' own times. Stage 0's share includes ``entry(X)``,
    the estimator's own checks of a call.

    With ``source``, the stages themselves run: each stage's share is then its
    time inside the cascade, its own work and the routing's together.

    Parameters
    ----------
    policy : ExitDecider
        The policy whose decisions are timed (its decisions are not followed).
    stage_probas : list of ndarray of shape (n_rows, n_classes)
        Every stage's probabilities for the rows of ``X``.
    X : array-like
    n_classes : int
    rows_in_state : bool, default=False
        As the stage source's: whether the rows of ``X`` are copied for every
        stage or only the first.
    repeats : int, default=5
        Rounds over every timing; the fastest of each is kept.
    entry : callable, default=None
        The estimator's checks of a call, timed with stage 0.
    combiners : list of ExitCombiner, default=None
        With ``answer="combined"``: each stage's combiner, timed as part of
        the routing at that stage.
    regression : bool, default=False
        Whether ``stage_probas`` are regression answers (checked as such).
    source : StageSource, default=None
        The stages to route through; None: stand-ins that cost nothing (each
        returns its rows of ``stage_probas``).
    batch_size : int, default=None
        The rows per call the costs are for: a larger batch is timed too.

    Returns
    -------
    seconds : Bunch
        ``per_call`` and ``per_row``, each of shape (n_stages,);
        ``batch_sizes`` and ``timings`` (n_stages, n_batch_sizes), what the
        line was fitted to (see :func:`~skadaptive.stages._costs.call_line_for`).
    """
    n_stages = len(stage_probas)
    tiled, sizes = timing_batches(_num_samples(X), batch_size)
    calls = []
    for size in sizes:
        rows = tiled[:size]
        X_rows = _safe_indexing(X, rows)
        probas = [p[rows] for p in stage_probas]
        for last in range(n_stages):
            stages = source
            if stages is None:
                stages = _Lookup(probas, last + 1, rows_in_state, regression)
            if combiners is not None:
                stages = answering_source(stages, combiners)
            calls.append((stages, _GoingOn(policy, last), X_rows))
        if entry is not None:
            calls.append((None, entry, X_rows))
    per_size = n_stages + (entry is not None)
    runs = [
        (lambda d=decider, X_rows=X_rows: d(X_rows))
        if stages is None
        else (
            lambda s=stages, d=decider, X_rows=X_rows: route(
                s, d, X_rows, n_classes=n_classes
            )
        )
        for stages, decider, X_rows in calls
    ]
    best = fastest_in_rounds(runs, np.repeat(sizes, per_size), repeats)
    best = best.reshape(len(sizes), per_size)
    through = best[:, :n_stages]
    added = np.diff(through, axis=1, prepend=0.0)
    if entry is not None:
        added[:, 0] += best[:, n_stages]
    per_call, per_row = fit_call_line(sizes, added.T)
    return Bunch(per_call=per_call, per_row=per_row, batch_sizes=sizes, timings=added.T)
