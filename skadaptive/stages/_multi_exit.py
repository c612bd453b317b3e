"""Multi-exit sources: exits over one shared computation.

A cascade (:class:`~skadaptive.stages.IndependentStages`) starts every stage
from the raw rows. A *multi-exit* source instead carries the running computation
from one exit to the next: stage ``k`` continues from the state stage ``k - 1``
left, so its cost is only the increment (the next trees of an ensemble, the next
block of a chain, the next segment of a network).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .._sklearn_private import _num_samples
from .._typing import Rows, State
from .._validation import check_exit_output, stage_label
from ..engine import StageSource

__all__ = ["MultiExitSource", "exit_probas"]


@runtime_checkable
class MultiExitSource(StageSource, Protocol):  # numpydoc ignore=PR01
    """A :class:`~skadaptive.engine.StageSource` whose stages share computation.

    The protocol every backbone of :class:`~skadaptive.EarlyExitClassifier`
    follows; an object with these members plugs in without being an estimator.

    Implementations: :class:`~skadaptive.stages.TreeEnsembleExits` (exits
    after given numbers of trees; the state is the running raw score or vote
    sum), :class:`~skadaptive.stages.ChainExits` (blocks with a head after
    each; the state is the current block's output) and
    :class:`~skadaptive.stages.OnnxMultiExit` (a network split into one
    onnxruntime session per segment, since a single ONNX graph cannot stop
    early; the state is the hidden tensors, kept on the GPU with IO binding).

    Attributes
    ----------
    n_stages : int
        Number of exits; the last exit always answers.
    classes_ : ndarray of shape (n_classes,)
        The labels of the probability columns, the same at every exit.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skadaptive.stages import MultiExitSource, TreeEnsembleExits
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)
    >>> isinstance(TreeEnsembleExits(forest, [2, 8]), MultiExitSource)
    True
    """

    n_stages: int
    classes_: np.ndarray

    def run_stage(
        self, stage: int, X_rows: Rows | None, state: State
    ) -> tuple[np.ndarray, State]:
        """Compute exit ``stage`` for the rows still running.

        Only the increment from exit ``stage - 1`` to exit ``stage`` is
        computed, and only for these rows; ``state`` is never modified.

        Parameters
        ----------
        stage : int
        X_rows : array-like of shape (n_rows, ...)
            The rows; at ``stage == 0`` the computation starts from them.
        state : object or None
            None at stage 0; else what stage ``stage - 1`` returned,
            restricted by :meth:`keep_rows` to these rows, in order.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes)
            float64, columns in the order of ``classes_``.
        state : object
            Handed to the next exit.
        """

    def keep_rows(self, state: State, mask: np.ndarray) -> State:
        """The state of the rows where the boolean ``mask`` is true, in order.

        Parameters
        ----------
        state : object or None
        mask : ndarray of bool of shape (n_rows,)

        Returns
        -------
        state : object or None
        """

    def default_costs(self) -> np.ndarray | None:
        """Incremental cost of each exit in the source's natural unit, or None.

        Trees for tree ensembles, multiply-accumulates for an ONNX network;
        None when there is no natural unit, and then wall time is measured
        (:func:`measure_exit_seconds_per_row`). A ``cost_unit`` attribute may
        name the unit, for plots and reports.

        Returns
        -------
        costs : ndarray of shape (n_stages,) or None
        """


def exit_probas(source: MultiExitSource, X: Rows) -> list[np.ndarray]:
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
        One per exit (for a regression source, of shape (n_rows, 2):
        prediction and uncertainty).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> from skadaptive.stages import TreeEnsembleExits, exit_probas
    >>> X, y = load_iris(return_X_y=True)
    >>> model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> first, last = exit_probas(TreeEnsembleExits(model, [3, 10]), X)
    >>> bool(np.allclose(last, model.predict_proba(X)))
    True
    """
    n_rows = _num_samples(X)
    probas, state = [], None
    for stage in range(source.n_stages):
        proba, state = source.run_stage(stage, X, state)
        label = stage_label(source, stage)
        probas.append(check_exit_output(source, proba, n_rows, label))
    return probas
