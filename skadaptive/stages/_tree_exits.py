"""Exits after given numbers of trees of one fitted tree ensemble.

Stage ``k`` evaluates only the trees ``exits[k-1]:exits[k]`` on the rows still
running and adds them to the carried state: the raw score for gradient boosting,
the sum of the trees' class probabilities for random and extra-trees forests.
With all trees the result equals the ensemble's own ``predict_proba``; at each
exit it equals ``staged_predict_proba`` (boosting) or a forest made of the first
``exits[k]`` trees.

Public attributes and methods give every answer: ``estimators_``, ``init_``,
``learning_rate``, ``loss``, ``classes_``, ``n_classes_``, ``n_outputs_``, each
forest tree's ``predict_proba(X, check_input=False)`` and each boosting tree's
documented ``tree_.predict``. For speed, gradient boosting sums its trees with
the compiled loop of scikit-learn's own ``predict_proba`` where that loop is
present and agrees exactly with the public path on the first rows it sees;
otherwise the public path is used (same answers, more Python per tree). The rows
are validated once, at the first exit, as the ensemble itself does.

Why not ``HistGradientBoostingClassifier``
------------------------------------------
Its public API offers ``staged_predict_proba`` and ``staged_decision_function``,
but these are generators over a fixed set of rows: dropping the rows that exited
means starting again from the first iteration, so exit ``k`` would cost all
trees up to ``exits[k]`` instead of its increment. Carrying the raw score
between exits would need its private ``_predictors``, ``_baseline_prediction``,
``_bin_mapper`` (categorical bitsets) and ``_preprocess_X`` (pandas categorical
encoding), which are undocumented and may change in any release without a
deprecation, so a model saved with one version could silently break or answer
differently with the next. It is refused with a ``TypeError`` that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sklearn
from scipy.special import expit, logit
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.utils import get_tags
from sklearn.utils.fixes import parse_version
from sklearn.utils.validation import check_is_fitted, validate_data

from .._rowwise import softmax_rows
from .._sklearn_private import _num_samples
from .._sklearn_private import predict_stages as _predict_stages
from .._typing import Rows
from ._multi_exit import MultiExitSource

__all__ = ["TreeEnsembleExits"]

_INIT_EPS = (
    np.finfo(np.float64).eps
    if parse_version(sklearn.__version__) >= parse_version("1.8")
    else np.finfo(np.float32).eps
)
_SUPPORTED = (
    GradientBoostingClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
    GradientBoostingRegressor,
    RandomForestRegressor,
    ExtraTreesRegressor,
)
_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
_REGRESSORS = (GradientBoostingRegressor, RandomForestRegressor, ExtraTreesRegressor)
_SUPPORTED_NAMES = ", ".join(cls.__name__ for cls in _SUPPORTED)


@dataclass
class _TreeState:
    """The running rows, validated once, and their running score."""

    X: np.ndarray | sp.csr_matrix | sp.csr_array
    score: np.ndarray


def check_tree_exits(
    exits, n_trees: int, *, counts="tree", total="the ensemble's number of trees"
) -> tuple[int, ...]:
    """``exits`` as a tuple of ints: strictly increasing, from >= 1 to ``n_trees``.

    ``counts`` and ``total`` name what is counted in the messages (``"round"``
    and ``"the model's number of boosting rounds"`` for a booster). Booleans,
    which NumPy would read as 0 and 1, are refused.
    """
    items = exits if isinstance(exits, list | tuple) else [exits]
    if any(
        isinstance(value, bool | np.bool_) or getattr(value, "dtype", None) == np.bool_
        for value in items
    ):
        raise ValueError(
            f"exits must be {counts} counts (integers); got {exits!r}, which has "
            "booleans."
        )
    values = np.asarray(exits)
    if (
        values.ndim != 1
        or values.size == 0
        or not (
            np.issubdtype(values.dtype, np.integer)
            or (
                np.issubdtype(values.dtype, np.floating)
                and np.all(np.isfinite(values))
                and np.all(values == np.round(values))
                # beyond this a float is no count int64 holds
                and np.all(np.abs(values) < 2.0**62)
            )
        )
    ):
        raise ValueError(
            f"exits must be a non-empty list of {counts} counts; got {exits!r}."
        )
    values = values.astype(np.int64)
    if values[0] < 1 or np.any(np.diff(values) <= 0) or values[-1] != n_trees:
        raise ValueError(
            f"exits must be strictly increasing {counts} counts, the first at least "
            f"1 and the last equal to {total} ({n_trees}); got {values.tolist()}."
        )
    return tuple(int(v) for v in values)


class TreeEnsembleExits(MultiExitSource):
    """Exits after given numbers of trees of a fitted tree ensemble.

    Parameters
    ----------
    estimator : GradientBoostingClassifier, RandomForestClassifier, \
            ExtraTreesClassifier or their Regressor counterparts
        A fitted ensemble, possibly wrapped in a ``FrozenEstimator``. It is used
        as given and never refitted. For a regressor each exit answers with
        its prediction and uncertainty (``regression`` is True): the mean of
        a forest's first trees and their spread (standard deviation), or a
        boosted model's running prediction and 0.
    exits : list of int
        Strictly increasing tree counts ending at the number of trees, e.g.
        ``[25, 50, 100, 200, 400]``: exit ``k`` answers with the first
        ``exits[k]`` trees. For gradient boosting a count is a number of boosting
        iterations (``n_classes_`` regression trees each in the multiclass case,
        as in ``n_estimators``); after early stopping the total is
        ``n_estimators_``.

    Attributes
    ----------
    n_stages : int
    classes_ : ndarray of shape (n_classes,)
        Classifiers only.
    regression : bool
        Whether the ensemble is a regressor.
    tree_counts : ndarray of shape (n_stages,)
        Trees evaluated by each exit: the increments of ``exits``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skadaptive.stages import TreeEnsembleExits
    >>> X, y = load_iris(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> source = TreeEnsembleExits(forest, [5, 20])
    >>> source.tree_counts
    array([ 5, 15])
    >>> proba_5, state = source.run_stage(0, X, None)
    >>> proba_20, _ = source.run_stage(1, X, state)
    >>> bool(np.allclose(proba_20, forest.predict_proba(X)))
    True
    """

    #: Whether the ensemble is a regressor (set for each instance).
    regression = False

    @property
    def rows_in_state(self) -> bool:
        """Whether later stages read the state only (the engine then passes
        them no rows): true unless a subclass overrides ``run_stage``."""
        return type(self).run_stage is TreeEnsembleExits.run_stage

    def __init__(self, estimator, exits):
        model = (
            estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
        )
        if isinstance(
            model, HistGradientBoostingClassifier | HistGradientBoostingRegressor
        ):
            raise TypeError(
                f"{type(model).__name__} is not supported as a multi-exit "
                "source: its public staged_predict_proba cannot drop rows between "
                "iterations (every exit would restart from the first tree), and "
                "carrying its raw score would rely on private attributes "
                "(_predictors, _baseline_prediction, _bin_mapper) that may change "
                f"in any scikit-learn release. Supported: {_SUPPORTED_NAMES}. To "
                "use histogram boosting, put models of growing max_iter in an "
                "AdaptiveCascadeClassifier (or AdaptiveCascadeRegressor)."
            )
        if not isinstance(model, _SUPPORTED):
            raise TypeError(
                f"TreeEnsembleExits supports {_SUPPORTED_NAMES}; got "
                f"{type(model).__name__}."
            )
        check_is_fitted(model)
        self.estimator = estimator
        self._model = model
        self._boosting = isinstance(model, _BOOSTING)
        self.regression = isinstance(model, _REGRESSORS)
        self._compiled = None  # decided on first use: _compiled_loop_agrees
        self._direct = None  # decided on first use: _direct_trees_agree
        if self._boosting and self.regression:
            # Every regression loss of GradientBoostingRegressor has the
            # identity link: the prediction is the raw score itself.
            n_trees = model.estimators_.shape[0]
        elif self._boosting:
            if model.loss not in ("log_loss", "exponential"):
                raise ValueError(
                    "Only loss='log_loss' or 'exponential' gradient boosting is "
                    f"supported; got loss={model.loss!r}."
                )
            n_trees = model.estimators_.shape[0]
        else:
            if model.n_outputs_ != 1:
                raise ValueError(
                    "Multi-output forests are not supported: exits need one "
                    "probability vector (or one prediction) per row."
                )
            n_trees = len(model.estimators_)
        if not self._boosting and not self.regression:
            # Forest trees are fitted on the class indices 0..n_classes-1, so a
            # tree's probability column j is the forest's classes_[j]. A tree
            # that saw fewer classes (not the case for scikit-learn's own
            # bootstrap, which keeps all rows) is mapped by its classes_.
            n_classes = model.n_classes_
            self._columns = [
                None
                if tree.n_classes_ == n_classes
                else np.asarray(tree.classes_).astype(np.intp)
                for tree in model.estimators_
            ]
        self.exits = check_tree_exits(exits, n_trees)
        if not self.regression:
            self.classes_ = model.classes_

    def __setstate__(self, state):
        # Whether the compiled loop (and a tree's tree_) agrees is a property
        # of the scikit-learn that runs the model, which may not be the one
        # that pickled it.
        self.__dict__.update(state)
        self._compiled = None
        self._direct = None

    @property
    def n_stages(self) -> int:
        """Number of exits."""
        return len(self.exits)

    @property
    def tree_counts(self) -> np.ndarray:
        """Trees evaluated by each exit: the increments of ``exits``."""
        return np.diff(self.exits, prepend=0)

    #: The unit of :meth:`default_costs`.
    cost_unit = "trees"

    def default_costs(self) -> np.ndarray:
        """Incremental cost of each exit in trees (``tree_counts``).

        Returns
        -------
        costs : ndarray of shape (n_stages,)
        """
        return self.tree_counts.astype(np.float64)

    # -- rows ------------------------------------------------------------------

    def _validate(self, X):
        """Validate ``X`` once, as the ensemble's own ``predict_proba`` does."""
        model = self._model
        if self._boosting:
            allow_nan = False
        else:
            first_tree = model.estimators_[0]
            allow_nan = (
                not sp.issparse(X)
                and get_tags(first_tree).input_tags.allow_nan
                and getattr(first_tree, "monotonic_cst", None) is None
            )
        X = validate_data(
            model,
            X,
            dtype=np.float32,
            order="C",
            accept_sparse="csr",
            reset=False,
            ensure_all_finite="allow-nan" if allow_nan else True,
        )
        if sp.issparse(X) and (X.indices.dtype != np.intc or X.indptr.dtype != np.intc):
            raise ValueError("No support for np.int64 index based sparse matrices")
        return X

    def _initial_score(self, X):
        model = self._model
        n_rows = X.shape[0]
        if not self._boosting:
            # Regression forests: the running sum of the trees' predictions,
            # and the sums of their differences from the first tree's and of
            # those differences' squares (the spread of the trees, without
            # the cancellation of large values: a target near 1e9 with a
            # spread of 0.1), then the first tree's prediction.
            return np.zeros((n_rows, 4 if self.regression else model.n_classes_))
        n_columns = model.estimators_.shape[1]
        if isinstance(model.init_, str) and model.init_ == "zero":
            return np.zeros((n_rows, n_columns))
        if self.regression:
            # The identity link: the init estimator's predictions, as
            # scikit-learn's gradient boosting starts from them.
            return model.init_.predict(X).astype(np.float64).reshape(-1, 1)
        # The init estimator's probabilities mapped to raw scores by the loss's
        # link, as in scikit-learn's gradient boosting.
        proba = model.init_.predict_proba(X)
        if n_columns == 1:
            proba = proba[:, 1]
        # Clipped as this scikit-learn clips (float64 eps from 1.8, float32 eps
        # before). This only matters for an init estimator that gives a class
        # probability within 1e-7 of 0 or 1 (never the default prior).
        proba = np.clip(proba, _INIT_EPS, 1 - _INIT_EPS, dtype=np.float64)
        if n_columns == 1:
            raw = logit(proba)
            if model.loss == "exponential":
                raw = 0.5 * raw
            return raw.reshape(-1, 1)
        log_proba = np.log(proba)
        return log_proba - log_proba.mean(axis=1, keepdims=True)

    def _add_trees(self, X, score, start: int, stop: int) -> None:
        model = self._model
        if self._boosting:
            if self._compiled is None:
                self._compiled = self._compiled_loop_agrees(X, start)
            if self._compiled:
                _predict_stages(
                    model.estimators_[start:stop], X, model.learning_rate, score
                )
            else:
                self._add_boosting_trees(X, score, start, stop)
        elif self.regression:
            direct = self._direct_trees_agree(X, start)
            for k, tree in enumerate(model.estimators_[start:stop], start):
                prediction = (
                    tree.tree_.predict(X)[:, 0]
                    if direct
                    else tree.predict(X, check_input=False)
                )
                if k == 0:
                    score[:, 3] = prediction
                score[:, 0] += prediction
                shifted = prediction - score[:, 3]
                score[:, 1] += shifted
                score[:, 2] += shifted**2
        else:
            direct = self._direct_trees_agree(X, start)
            for tree, columns in zip(
                model.estimators_[start:stop], self._columns[start:stop]
            ):
                proba = (
                    tree.tree_.predict(X)[:, : tree.n_classes_]
                    if direct
                    else tree.predict_proba(X, check_input=False)
                )
                if columns is None:
                    score += proba
                else:
                    score[:, columns] += proba

    def _add_boosting_trees(self, X, score, start: int, stop: int) -> None:
        # ``tree_.predict`` (the documented ``tree_`` of each regression tree;
        # ``tree.predict`` returns its column 0) skips the per-call checks of
        # ``tree.predict(X, check_input=False)``. The arithmetic
        # (``score += learning_rate * leaf value``, tree by tree) is that of
        # scikit-learn's own prediction.
        learning_rate = self._model.learning_rate
        for stage_trees in self._model.estimators_[start:stop]:
            for k, tree in enumerate(stage_trees):
                score[:, k] += learning_rate * tree.tree_.predict(X)[:, 0]

    def _direct_trees_agree(self, X, start: int) -> bool:
        """Whether a forest's trees can be called through their ``tree_``.

        ``tree.predict_proba(X, check_input=False)`` (``predict`` for a
        regression tree) checks that the tree is fitted and counts the
        features of ``X`` at every call: about 50 microseconds per tree, a
        tenth of a 200-tree forest's time on 10,000 rows. ``X`` was validated
        against the forest once, so the trees' documented ``tree_.predict``
        is called directly where, for the first tree called and up to eight
        rows, it gives exactly what the public method gives (decided on first
        use, per source; in scikit-learn 1.6 to 1.9 the public method returns
        ``tree_.predict``'s values as they are).
        """
        if self._direct is None:
            if X.shape[0] == 0:
                return False  # decided on rows, not on an empty batch
            tree = self._model.estimators_[start]
            rows = X[: min(8, X.shape[0])]
            if self.regression:
                public = tree.predict(rows, check_input=False)
                direct = tree.tree_.predict(rows)[:, 0]
            else:
                public = tree.predict_proba(rows, check_input=False)
                direct = tree.tree_.predict(rows)[:, : tree.n_classes_]
            self._direct = bool(
                public.shape == direct.shape and np.array_equal(public, direct)
            )
        return self._direct

    def _compiled_loop_agrees(self, X, start: int) -> bool:
        """Whether scikit-learn's compiled stage loop can be used here.

        ``GradientBoostingClassifier.predict_proba`` sums its trees with a
        compiled loop (``predict_stages``); a Python loop over the trees costs
        one call per tree and class, often more than the trees themselves.
        That loop is not public API, so it is used only where it imports and
        gives, on a few of the rows, exactly what the public per-tree path
        gives; otherwise the public path is used.
        """
        if _predict_stages is None:
            return False
        rows = X[: min(8, X.shape[0])]
        expected = np.zeros((rows.shape[0], self._model.estimators_.shape[1]))
        got = expected.copy()
        self._add_boosting_trees(rows, expected, start, start + 1)
        try:
            _predict_stages(
                self._model.estimators_[start : start + 1],
                rows,
                self._model.learning_rate,
                got,
            )
        except Exception:  # a changed private signature: use the public path
            return False
        return bool(np.array_equal(got, expected))

    def _proba(self, score, n_trees: int) -> np.ndarray:
        if self.regression:
            # (prediction, uncertainty): a forest's mean and the spread of its
            # trees so far; boosting gives no uncertainty of its own.
            answer = np.zeros((score.shape[0], 2))
            if self._boosting:
                answer[:, 0] = score[:, 0]
                return answer
            shifted_mean = score[:, 1] / n_trees
            answer[:, 0] = score[:, 0] / n_trees
            answer[:, 1] = np.sqrt(
                np.maximum(score[:, 2] / n_trees - shifted_mean**2, 0.0)
            )
            return answer
        if not self._boosting:
            return score / n_trees
        if score.shape[1] > 1:
            return softmax_rows(score)
        raw = score[:, 0]
        positive = expit(2 * raw if self._model.loss == "exponential" else raw)
        proba = np.empty((score.shape[0], 2))
        proba[:, 1] = positive
        proba[:, 0] = 1 - positive
        return proba

    # -- StageSource -----------------------------------------------------------

    def run_stage(
        self, stage: int, X_rows: Rows | None, state: _TreeState | None
    ) -> tuple[np.ndarray, _TreeState]:
        """Add the trees of exit ``stage`` for the running rows.

        At ``stage == 0`` ``X_rows`` is validated (float32, CSR) and kept in the
        state; later stages use the validated rows from the state, so
        ``X_rows`` may be None there (as the engine passes it) or must have
        the same number of rows.

        Parameters
        ----------
        stage : int
        X_rows : array-like or sparse matrix of shape (n_rows, n_features)
        state : object or None
            None at stage 0, else the previous stage's state for these rows.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes) or (n_rows, 2)
            Class probabilities; for a regressor, the prediction and the
            uncertainty (the spread of a forest's trees so far, 0 for
            boosting).
        state : object
            The validated rows and their running score.
        """
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of range [0, {self.n_stages}).")
        if stage == 0:
            X = self._validate(X_rows)
            score = self._initial_score(X)
            start = 0
        else:
            if state is None:
                raise ValueError(
                    f"Stage {stage} continues from stage {stage - 1}'s state; got None."
                )
            if X_rows is not None and _num_samples(X_rows) != state.X.shape[0]:
                raise ValueError(
                    f"X_rows has {_num_samples(X_rows)} rows but the state has "
                    f"{state.X.shape[0]}: pass the state of the same rows "
                    "(see keep_rows)."
                )
            X = state.X
            score = state.score.copy()
            start = self.exits[stage - 1]
        stop = self.exits[stage]
        self._add_trees(X, score, start, stop)
        return self._proba(score, stop), _TreeState(X, score)

    def keep_rows(
        self, state: _TreeState | None, mask: np.ndarray
    ) -> _TreeState | None:
        """The state of the rows where the boolean ``mask`` is true, in order.

        Parameters
        ----------
        state : object or None
            What :meth:`run_stage` returned.
        mask : ndarray of bool of shape (n_rows,)

        Returns
        -------
        state : object or None
        """
        if state is None:
            return None
        rows = np.flatnonzero(mask)
        X = state.X[rows] if sp.issparse(state.X) else state.X.take(rows, axis=0)
        return _TreeState(X, state.score.take(rows, axis=0))
