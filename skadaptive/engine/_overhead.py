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

import time

import numpy as np
from sklearn.utils import Bunch

from .._sklearn_private import _num_samples, _safe_indexing
from .._validation import stage_label
from ..stages._combined import answering_source
from ..stages._costs import fit_call_line, timing_batches, timing_rounds
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
    """Decides as ``policy`` does, then sends the rows on to the last stage.

    One row exits at each stage before the last (where there are several),
    so that the others are copied and compacted as when a policy lets rows
    exit. ``marks`` gets the time at which each decision ended.
    """

    def __init__(self, policy, last):
        self.policy = policy
        self.last = last
        self.marks = []

    def exits(self, stage, history):
        decided = np.asarray(self.policy.exits(stage, history))
        if stage == self.last:
            exits = np.ones(len(decided), dtype=bool)
        else:
            exits = np.zeros(len(decided), dtype=bool)
            exits[0] = len(decided) > 1
        self.marks.append(time.perf_counter())
        return exits


def _timed_pass(stages, policy, X_rows, n_classes: int) -> np.ndarray:
    """Each stage's seconds in one routing of ``X_rows`` through every stage.

    Stage ``k``'s share runs from the end of the decision after stage
    ``k - 1`` to the end of the decision after it: the copy and compaction
    of its rows, its run, the check of its answers and the decision; the last
    stage's share also holds the end of the call. One pass, no difference of
    two timings: every share is positive and the timing grows with the number
    of stages, not its square.
    """
    decider = _GoingOn(policy, stages.n_stages - 1)
    start = time.perf_counter()
    try:
        route(stages, decider, X_rows, n_classes=n_classes)
    except Exception as exc:  # any stage's error, with where it was raised
        stage = min(len(decider.marks), stages.n_stages - 1)
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(
                f"Raised while costs='auto' timed the stages inside the cascade, "
                f"at {stage_label(stages, stage)} on a batch of "
                f"{_num_samples(X_rows)} rows (some going on, as in a cascade)."
            )
        raise
    end = time.perf_counter()
    shares = np.diff([start, *decider.marks])
    shares[-1] += end - decider.marks[-1]
    return shares


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
    """Seconds per call and per row of each stage inside the cascade.

    With ``source`` (as estimators time ``costs="auto"``), each stage's whole
    time there: its own work and the routing's; with stand-in stages (no
    ``source``), the routing's alone.

    Routing through every stage, with all rows but one going on at each, is
    timed on the batches of
    :func:`~skadaptive.stages._costs.timing_batches` (1 to 4,096 rows of
    ``X``, and 8,192 where ``batch_size`` is larger than 4,096, repeated
    where it has fewer), in ``repeats`` rounds (three for calls of 1,024 rows
    or more; a small call after an untimed one like it); each stage's share
    of a pass (its rows' copy and compaction, its run, the check of its
    answers, the policy's decision after it: see :func:`_timed_pass`) is
    kept at its fastest, and the line ``per_call + n * per_row`` is fitted to
    it as for the stages' own times. Stage 0's share includes ``entry(X)``,
    the estimator's own checks of a call.

    The policy's jumps (``skips=True``) and a router's choice of first stage
    are not timed: the timing sends every row to the next stage.

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
    best = np.full((n_stages, len(sizes)), np.inf)
    checks = np.full(len(sizes), np.inf)
    for j, warm_up in timing_rounds(sizes, repeats):
        rows = tiled[: sizes[j]]
        X_rows = _safe_indexing(X, rows)
        stages = source
        if stages is None:
            probas = [p[rows] for p in stage_probas]
            stages = _Lookup(probas, n_stages, rows_in_state, regression)
        if combiners is not None:
            stages = answering_source(stages, combiners)
        if warm_up:  # a small call follows one like it, as in a run
            _timed_pass(stages, policy, X_rows, n_classes)
        shares = _timed_pass(stages, policy, X_rows, n_classes)
        best[:, j] = np.minimum(best[:, j], shares)
        if entry is not None:
            if warm_up:
                entry(X_rows)
            begin = time.perf_counter()
            entry(X_rows)
            checks[j] = min(checks[j], time.perf_counter() - begin)
    if entry is not None:
        best[0] += checks
    per_call, per_row = fit_call_line(sizes, best)
    return Bunch(per_call=per_call, per_row=per_row, batch_sizes=sizes, timings=best)
