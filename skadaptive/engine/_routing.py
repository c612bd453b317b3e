"""Run rows through stages; each stage sees only the rows the last one deferred."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.utils import Bunch, gen_batches
from sklearn.utils.parallel import Parallel, delayed

from .._sklearn_private import _num_samples, _safe_indexing
from .._typing import Rows, State
from .._validation import check_regression_output, check_stage_proba, stage_label

#: Rows routed together when ``batch_size`` is None: bounds the memory that
#: routing adds to the stages' own (copies of deferred rows, probabilities) to a
#: small multiple of one batch, while each stage still gets calls large enough
#: that its per-call overhead is negligible.
DEFAULT_BATCH_SIZE = 65_536


class StageSource(Protocol):
    """What the engine needs from the stages of an estimator.

    ``run_stage(stage, X_rows, state)`` returns the class probabilities of the
    rows ``X_rows`` at ``stage`` (for a source with ``regression = True``, an
    array of shape (n_rows, 2): each row's prediction and the stage's
    uncertainty about it) and the state handed to the next stage (``None``
    for independent models; the running computation for shared-computation
    exits). ``keep_rows(state, mask)`` selects the state of the rows that go on:
    a source owns the compaction of its state.

    A source whose state carries everything its later stages read (the
    validated rows, a hidden tensor) sets ``rows_in_state = True``: the engine
    then passes ``X_rows=None`` after the first stage instead of copying the
    deferred rows of ``X`` for a stage that would ignore them.
    """

    n_stages: int

    def run_stage(
        self, stage: int, X_rows: Rows | None, state: State
    ) -> tuple[np.ndarray, State]: ...

    def keep_rows(self, state: State, mask: np.ndarray) -> State: ...


class ExitDecider(Protocol):
    """``exits(stage, history)``: boolean mask of rows that answer at ``stage``."""

    def exits(self, stage: int, history: list[np.ndarray]) -> np.ndarray: ...


def _rows(X, batch: slice):
    """The rows of one batch: a view of an array, else scikit-learn's indexing."""
    if type(X) is np.ndarray or sp.issparse(X):
        return X[batch]
    return _safe_indexing(X, np.arange(batch.start, batch.stop))


def _check_exits(exits, n_rows: int, stage: int) -> np.ndarray:
    """A policy's decision: one boolean per running row, or a clear error."""
    exits = np.asarray(exits)
    if exits.dtype != bool or exits.shape != (n_rows,):
        raise ValueError(
            f"The policy's decision after stage {stage} must be a boolean array "
            f"of shape ({n_rows},), one per running row; got dtype {exits.dtype} "
            f"and shape {exits.shape}. A rule's exits() returns score >= "
            "threshold."
        )
    return exits


def _route_batch(source: StageSource, policy: ExitDecider, X, proba, exit_stage, ran):
    """Route the rows of ``X``, writing their answers into ``proba`` and
    ``exit_stage`` (views of the whole call's arrays: no copy to concatenate),
    and, for a policy that skips stages, the stages each row runs into ``ran``.

    Each stage runs once, on exactly the rows that reach it, in stage order;
    a row that skipped a stage carries its latest answer over it, so that
    every rule sees the history it was learned on."""
    n_rows, n_classes = proba.shape
    active = np.arange(n_rows)
    history: list[np.ndarray] = []
    state = None
    rows_in_state = getattr(source, "rows_in_state", False)
    regression = getattr(source, "regression", False)
    skips = getattr(policy, "skips", False)
    router = getattr(policy, "router", None) if skips else None
    # For a policy that skips: the stage each active row runs next (its
    # first, for a policy with a router).
    next_stage = None
    if skips:
        next_stage = (
            np.zeros(n_rows, dtype=np.intp)
            if router is None
            else router.first_stages(X)
        )
    # With a router: whether each active row has run a stage yet (a row that
    # starts late is given its first answer at the stages before it).
    started = None if router is None else np.zeros(n_rows, dtype=bool)
    for stage in range(source.n_stages):
        # Positions (in ``active``) of the rows that run this stage; None: all.
        here = None
        if skips and (stage > 0 or router is not None):
            here = np.flatnonzero(next_stage == stage)
            if len(here) == len(active):
                here = None
            elif len(here) == 0:
                history.append(
                    history[-1] if history else np.zeros((len(active), n_classes))
                )
                continue
        ids = active if here is None else active.take(here)
        if stage > 0 and rows_in_state:
            X_active = None
        elif len(ids) == n_rows:
            X_active = X
        elif type(X) is np.ndarray:
            # What _safe_indexing does, without its checks; take is several
            # times faster than fancy indexing on rows.
            X_active = X.take(ids, axis=0)
        else:
            X_active = _safe_indexing(X, ids)
        stage_proba, state = source.run_stage(stage, X_active, state)
        label = stage_label(source, stage)
        if regression:
            stage_proba = check_regression_output(stage_proba, len(ids), label)
        else:
            stage_proba = check_stage_proba(stage_proba, len(ids), n_classes, label)
        if started is not None:
            _carry_back(history, started, here, stage_proba)
        if here is None:
            history.append(stage_proba)
            seen = history
        else:
            column = (
                history[-1].copy() if history else np.zeros((len(active), n_classes))
            )
            column[here] = stage_proba
            history.append(column)
            seen = [h.take(here, axis=0) for h in history]
        if ran is not None:
            ran[ids, stage] = True
        exits = _check_exits(policy.exits(stage, seen), len(ids), stage)
        # Integer positions and take: several times faster than boolean masks
        # on the rows of a 2-D array, and this runs at every exit.
        exiting = np.flatnonzero(exits)
        if len(exiting):
            rows = ids.take(exiting)
            proba[rows] = stage_proba.take(exiting, axis=0)
            exit_stage[rows] = stage
        if len(exiting) == len(active):
            break
        if skips:
            going = np.flatnonzero(~exits)
            if len(going) and stage < source.n_stages - 1:
                # Only rows that go on are shown to the jump (there may be
                # none here while rows that jumped past it are still running).
                chosen = policy.next_stages(
                    stage, [h.take(going, axis=0) for h in seen]
                )
                next_stage[going if here is None else here.take(going)] = chosen
            deferred = np.ones(len(active), dtype=bool)
            deferred[exiting if here is None else here.take(exiting)] = False
        else:
            deferred = ~exits
        # Compaction: the next stage sees only the deferred rows, so its cost is
        # paid for them alone (SPEC: real speed-ups need compaction).
        going_on = np.flatnonzero(deferred)
        active = active.take(going_on)
        history = [h.take(going_on, axis=0) for h in history]
        if skips:
            next_stage = next_stage.take(going_on)
        if started is not None:
            started = started.take(going_on)
        state = source.keep_rows(state, deferred)


def _carry_back(history: list, started: np.ndarray, here, stage_proba) -> None:
    """Give the rows that run their first stage now its answer at the earlier
    stages (in place; ``started`` is updated)."""
    positions = np.arange(len(started)) if here is None else here
    fresh = ~started[positions]
    if fresh.any():
        rows = positions[fresh]
        for earlier in history:
            earlier[rows] = stage_proba[fresh]
        started[rows] = True


def route(
    source: StageSource,
    policy: ExitDecider,
    X: Rows,
    *,
    n_classes: int,
    batch_size: int | None = None,
    n_jobs: int | None = None,
) -> Bunch:
    """Answer every row of ``X`` at the stage its policy chooses.

    Parameters
    ----------
    source : StageSource
        The stages; see :class:`StageSource`.
    policy : ExitDecider
        Decides after each stage which rows answer there.
    X : array-like, sparse matrix, DataFrame or list
        Rows to answer; indexed with scikit-learn's safe indexing.
    n_classes : int
        Columns of each answer: the number of classes, or 2 for regression.
    batch_size : int, default=None
        Rows routed together; bounds the memory of one pass. ``None`` means
        ``DEFAULT_BATCH_SIZE`` (65,536). A row's answer depends on its batch
        only where a stage's own arithmetic depends on the batch's shape
        (matrix products), in the last bit.
    n_jobs : int, default=None
        Batches routed in parallel threads (stage models that release the GIL,
        as numpy and onnxruntime do, then run concurrently).

    Returns
    -------
    result : Bunch
        ``proba`` (n_rows, n_classes), the answering stage's probabilities,
        ``exit_stage`` (n_rows,), the 0-based index of the stage that answered,
        and ``ran`` (n_rows, n_stages), whether each stage ran on each row:
        every stage up to the row's exit, unless the policy skips stages.
    """
    n_rows = _num_samples(X)
    proba = np.empty((n_rows, n_classes))
    exit_stage = np.empty(n_rows, dtype=np.intp)
    skips = getattr(policy, "skips", False)
    ran = np.zeros((n_rows, source.n_stages), dtype=bool) if skips else None
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE
    if batch_size >= n_rows:
        _route_batch(source, policy, X, proba, exit_stage, ran)
    else:
        # Each batch writes its own rows' slice, so rows keep their order.
        batches = (
            (
                source,
                policy,
                _rows(X, b),
                proba[b],
                exit_stage[b],
                None if ran is None else ran[b],
            )
            for b in gen_batches(n_rows, batch_size)
        )
        if effective_n_jobs(n_jobs) == 1:
            # One job: a plain loop, without joblib's dispatch of each batch
            # (about 0.15 ms a batch, a few percent of a cascade of small
            # networks).
            for arguments in batches:
                _route_batch(*arguments)
        else:
            # Threads share the arrays whatever joblib backend or preference
            # is active (a process backend, such as dask's, would write into
            # copies; require="sharedmem" refuses prefer="processes").
            Parallel(n_jobs=n_jobs, backend="threading")(
                delayed(_route_batch)(*arguments) for arguments in batches
            )
    if ran is None:
        ran = np.arange(source.n_stages)[None, :] <= exit_stage[:, None]
    return Bunch(proba=proba, exit_stage=exit_stage, ran=ran)
