"""What both regressors share: targets on a learned scale, errors as figures.

A regression stage answers a row with its prediction and its uncertainty
(:func:`~skadaptive.stages.regression_answers`). The policy works on a scale of
``y`` learned at fit (:func:`~skadaptive.stages.regression_scale`): answers
and targets are centred and divided by it, so the per-row loss (squared or
absolute error) of predicting the centre is 1 on average and ``cost_weight``
means the same trade-off on any target scale. Everything the estimators report
is in the target's own units: ``expected_error_`` is a mean squared (or
absolute) error, as are ``frontier_["error"]`` and ``evaluate_frontier``'s.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import Bunch
from sklearn.utils.validation import check_memory

from ._base import BaseAdaptive, _content_groups, cached_call_seed, warn_no_combiners
from ._dask import is_lazy, lazy_predict
from ._sklearn_private import HasMethods, StrOptions
from ._typing import ArrayLike, Predictions, Rows
from .policies import REGRESSION_LOSSES, REGRESSION_POLICIES
from .policies._features import NO_CLASSES_IN_REGRESSION, REGRESSION_FEATURE_SETS
from .stages import ScaledPolicy, regression_scale
from .stages._combined_regression import RegressionCombiner, fit_regression_combiners
from .stages._regression import (
    check_prediction_range,
    numeric_targets,
    scale_answers,
)

#: Attribute and key names of the classifiers' figures, and the regressors'.
_RENAMED = (
    ("accuracies", "errors"),
    ("accuracy", "error"),
)


class _RegressionFeatureSets(StrOptions):
    """The ``policy_features`` of a regressor: every set but ``"classes"``,
    and an error that says why that one is refused."""

    def __init__(self):
        super().__init__(set(REGRESSION_FEATURE_SETS))

    def __str__(self):
        return f"{super().__str__()} ({NO_CLASSES_IN_REGRESSION})"


#: Opens the note on the unit of ``budget_search_["reason"]``'s losses.
_SCALE_WORDS = "losses on the scale the search compares"


def _renamed(name: str) -> str | None:
    """The regressor's name of a classifier's figure, or None."""
    for old, new in _RENAMED:
        if old in name:
            return name.replace(old, new)
    return None


class BaseAdaptiveRegressor(RegressorMixin, BaseAdaptive):
    """:class:`~skadaptive._base.BaseAdaptive` for regression.

    Subclasses give the members and their source as the classifiers do; the
    source's stages answer with ``(prediction, uncertainty)``.
    """

    _parameter_constraints: dict = {
        **BaseAdaptive._parameter_constraints,
        "policy": [StrOptions(set(REGRESSION_POLICIES)), HasMethods(["fit"])],
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
        "policy_features": [_RegressionFeatureSets()],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = self._stages_score_poorly()
        return tags

    # ------------------------------------------------------------ targets
    def _check_targets(self, y, sample_weight):
        y = self._numeric_targets(y)
        weight = sample_weight
        if weight is not None and not weight.sum() > 0:
            weight = None
        center, scale = regression_scale(y, weight, self.loss)
        if self.loss == "squared_error":
            _check_squared_scale(scale)
        self.target_center_, self.target_scale_ = center, scale
        return y

    def _stage_classes(self):
        return None

    def _encode_targets(self, y) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.target_center_) / (
            self.target_scale_
        )

    def _encode_new_targets(self, y) -> np.ndarray:
        return self._encode_targets(self._numeric_targets(y))

    def _numeric_targets(self, y) -> np.ndarray:
        """``y`` as finite float64, or a clear error for class labels."""
        return numeric_targets(y, self)

    def _policy_answers(self, stage_probas: list) -> list:
        scaled = [
            scale_answers(answers, self.target_center_, self.target_scale_)
            for answers in stage_probas
        ]
        names = list(self._stage_names())
        for k, answers in enumerate(scaled):
            name = names[k] if len(names) == len(scaled) else f"exit {k}"
            check_prediction_range(answers, name, self.target_scale_)
        return scaled

    def _stored_targets(self, y_encoded) -> np.ndarray:
        return np.asarray(y_encoded, dtype=np.float64)

    def _n_outputs(self) -> int:
        return 2

    def _fit_combiners(self, stage_probas, y_encoded, sample_weight, X_policy):
        if self.answer == "stage":
            return [RegressionCombiner(k) for k in range(len(stage_probas))], list(
                stage_probas
            )
        fit = check_memory(self.memory).cache(fit_regression_combiners)
        groups = _content_groups(X_policy)
        combiners, answers = fit(
            stage_probas,
            y_encoded,
            sample_weight,
            loss=self.loss,
            center=self.target_center_,
            scale=self.target_scale_,
            random_state=cached_call_seed(self.random_state),
            # Copies of a row in one fold: never both learned from and scored.
            groups=groups,
            # The routed groups: whole to a fold, one unit of evidence each.
            units=self._policy_groups,
        )
        if len(combiners) > 1 and not combiners[1].cv_error:
            warn_no_combiners(
                "predictions", y_encoded, sample_weight, groups, self._policy_groups
            )
        return combiners, answers

    def _routing_policy(self):
        return ScaledPolicy(
            self.policy_, self.target_center_, self.target_scale_, self._stage_names()
        )

    # ------------------------------------------------------------ figures
    def _error_unit(self) -> float:
        """What one unit of scaled loss is in the target's units."""
        if self._loss() == "squared_error":
            return self.target_scale_**2
        return self.target_scale_

    def _error(self, figure):
        """A classifier-style figure (minus the scaled loss) as an error."""
        return -np.asarray(figure, dtype=np.float64) * self._error_unit() + 0.0

    def _error_name(self) -> str:
        """The name of the error the estimator reports: MSE or MAE."""
        return "MSE" if self._loss() == "squared_error" else "MAE"

    def _figure_words(self, figure) -> str:
        """A classifier-style figure in words: its error, in the target's units."""
        return f"{self._error_name()} {float(self._error(figure)):.4g}"

    def _expected_figure_text(self) -> str:
        return f"expected {self._figure_words(self.expected_accuracy_)}"

    def _rename_figures(self) -> None:
        """Accuracy-named figures as errors in the target's units."""
        for name in [
            n for n in vars(self) if n.endswith("_") and not n.startswith("_")
        ]:
            new = _renamed(name)
            if new is None:
                continue
            setattr(self, new, self._error(getattr(self, name)))
            delattr(self, name)
        for name in ("budget_search_", "router_search_"):
            search = getattr(self, name, None)
            if search is not None:
                setattr(self, name, self._as_errors(search))
        if getattr(self, "budget_search_", None) is not None:
            self.budget_search_ = self._with_scale_note(self.budget_search_)

    def _as_errors(self, figures: dict) -> dict:
        """``figures`` with accuracy-named entries as errors (renamed)."""
        return {
            (_renamed(key) or key): (self._error(value) if _renamed(key) else value)
            for key, value in figures.items()
        }

    def _with_scale_note(self, search: dict) -> dict:
        """The budget search, its ``reason`` and ``answer_reason`` saying in
        which unit their losses are (those of the search: scaled, not the
        target's)."""
        figures = dict(search)
        power = "**2" if self._loss() == "squared_error" else ""
        for key in ("reason", "answer_reason"):
            if figures.get(key) and _SCALE_WORDS not in figures[key]:
                figures[key] += (
                    f" ({_SCALE_WORDS}: the {self._error_name()} divided "
                    f"by target_scale_{power} = {self._error_unit():.4g})"
                )
        return figures

    def _learn_policy_single_threaded(self, stage_probas, y_encoded, sample_weight):
        super()._learn_policy_single_threaded(stage_probas, y_encoded, sample_weight)
        self._rename_figures()

    @property
    def frontier_(self) -> dict:
        """Error against cost over a grid of ``cost_weight`` (see Attributes)."""
        return self._as_errors(BaseAdaptive.frontier_.fget(self))

    def evaluate_frontier(
        self, X: Rows, y: ArrayLike, *, sample_weight: ArrayLike | None = None
    ) -> dict:
        """Error and cost of every ``frontier_`` policy, and of each stage, on
        the rows ``X`` (e.g. a test set).

        Every stage is run once on every row (no early exit) and each frontier
        policy is applied to those answers, which is what routing the rows
        through that policy would give.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        frontier : dict
            ``cost_weight``, ``error`` (mean squared or absolute error, as
            ``loss``, in the target's units), ``expected_cost``,
            ``normalized_cost`` and ``exit_rates`` of each ``frontier_``
            policy on these rows; ``stage_errors`` and ``stage_costs`` (each
            stage on its own), ``exit_errors`` (every row answered at each
            exit as this estimator answers there: with ``answer="combined"``,
            by its combiner), ``oracle_error``, ``oracle_cost`` and
            ``oracle_exit_rates`` (the oracle answers each row at the first
            exit with the smallest error, with those answers), and
            ``error_at_fit``, ``cost_at_fit`` and ``exit_rates_at_fit`` for
            this estimator's own policy.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import RandomForestRegressor
        >>> from sklearn.linear_model import Ridge
        >>> from skadaptive import AdaptiveCascadeRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> cascade = AdaptiveCascadeRegressor(
        ...     [("ridge", Ridge()),
        ...      ("forest", RandomForestRegressor(n_estimators=20, random_state=0))],
        ...     costs=[1, 20], cv=3,
        ... ).fit(X[::2], y[::2])
        >>> test = cascade.evaluate_frontier(X[1::2], y[1::2])
        >>> len(test["error"]) == len(cascade.frontier_["error"])
        True
        """
        return self._as_errors(
            super().evaluate_frontier(X, y, sample_weight=sample_weight)
        )

    # ------------------------------------------------------------ predict
    def route(self, X: Rows) -> Bunch:
        """Answer each row at the exit the policy picks, and report where.

        Exit k+1 runs only on the rows that exit k deferred.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        result : Bunch
            ``prediction`` (n_samples,): the answering exit's prediction;
            ``uncertainty`` (n_samples,): that exit's own uncertainty (0
            where it gives none), in the target's units; ``exit_stage``
            (n_samples,): 0-based index of that exit; ``cost``
            (n_samples,): cost of the row, units of ``costs_``. For a dask
            input, each field is the matching lazy collection, all from one
            routing pass per block (see :meth:`predict`).
        """
        if is_lazy(X):
            return lazy_predict(self, X, "route")
        result = super().route(X)
        answers = result.pop("proba")
        result.prediction, result.uncertainty = answers[:, 0], answers[:, 1]
        return result

    def predict(self, X: Rows) -> Predictions:
        """Prediction of the exit that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            For a dask array, a dask array; for a dask DataFrame, a dask
            Series named ``prediction``, on its index.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict")
        return self.route(X).prediction


def _check_squared_scale(scale: float) -> None:
    """Refuse a target whose squared errors float64 cannot hold.

    An MSE is reported in the target's units squared: past about 1e154 the
    square overflows, below about 1e-162 it underflows to 0 (every error
    would read as exact).
    """
    with np.errstate(over="ignore", under="ignore"):
        square = np.float64(scale) ** 2
    if np.isfinite(square) and square > 0:
        return
    problem = "large" if scale > 1 else "small"
    raise ValueError(
        f"y's scale ({scale:.3g}) is too {problem} for its squared errors in "
        f"float64 (they would {'overflow' if problem == 'large' else 'underflow to 0'}"
        "): rescale y (divide or multiply it by a power of ten) and the "
        "predictions back, or use loss='absolute_error'."
    )
