"""Scorers for cost-aware model selection with ``GridSearchCV``."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

import numpy as np
from sklearn.base import is_regressor
from sklearn.metrics import accuracy_score
from sklearn.utils.metadata_routing import UNUSED
from sklearn.utils.validation import check_array, column_or_1d

from .._dask import is_lazy
from .._sklearn_private import _MetadataRequester
from .._validation import check_row_weights
from .._wrapped import adaptive_inside
from ..stages import regression_scale
from ..stages._regression import constant_target


def _route_through(estimator, X):
    """Route ``X`` through a fitted cascade, or one inside a Pipeline, a
    fitted search or a FrozenEstimator (see :func:`adaptive_inside`)."""
    outer = estimator
    estimator, X = adaptive_inside(estimator, X)
    if not hasattr(estimator, "route"):
        refit_false = hasattr(outer, "cv_results_") and not hasattr(
            outer, "best_estimator_"
        )
        raise TypeError(
            f"{type(estimator).__name__} does not report per-row costs; cost-aware "
            "scorers need a skadaptive estimator (AdaptiveCascadeClassifier, "
            "EarlyExitClassifier or their Regressor counterparts), or a Pipeline, "
            "a fitted search or a FrozenEstimator around one"
            + (
                " (this search was fitted with refit=False: it has no "
                "best_estimator_ to score)."
                if refit_false
                else "."
            )
        )
    result = estimator.route(X)
    if is_lazy(X):
        # A Dask collection is routed lazily, block by block: one pass
        # computes every field the score needs.
        import dask

        keys = list(result)
        values = dask.compute(*(result[key] for key in keys))
        for key, value in zip(keys, values):
            result[key] = np.asarray(value)
    return estimator, result


def _weighted_mean(values, sample_weight):
    return float(np.average(values, weights=sample_weight))


def _regression_quality(loss, y, result, sample_weight) -> float:
    """1 - error / scale of ``y`` on these rows: R^2 for the squared error."""
    y = np.asarray(y, dtype=np.float64)
    error = result.prediction - y
    squared = loss == "squared_error"
    mean_loss = _weighted_mean(error**2 if squared else np.abs(error), sample_weight)
    if constant_target(y, sample_weight):
        # As scikit-learn's r2_score (and so score) has it: 1 where the
        # weighted loss is 0 (every row of positive weight exact), else 0 (no
        # scale to divide by).
        return float(mean_loss == 0)
    _, scale = regression_scale(y, sample_weight, loss)
    return 1.0 - mean_loss / (scale**2 if squared else scale)


class _CostScorer(_MetadataRequester):
    """Scorer callable ``(estimator, X, y, sample_weight=None) -> float``.

    A metadata requester like scikit-learn's own scorers: with metadata routing
    enabled, ``set_score_request(sample_weight=True)`` makes a search pass the
    weights (the ``estimator`` argument is not metadata).
    """

    __metadata_request__score = {"estimator": UNUSED}

    def __init__(self, cost_weight: float | None, normalize: bool):
        self.cost_weight = cost_weight
        self.normalize = normalize

    def __call__(self, estimator, X, y, sample_weight=None) -> float:
        return self.score(estimator, X, y, sample_weight=sample_weight)

    def score(self, estimator, X, y, sample_weight=None) -> float:
        """Score ``estimator`` on ``X``, ``y``; greater is better (``y`` may be
        None for the average cost alone, which reads no labels)."""
        if y is None and self.cost_weight is not None:
            raise ValueError(
                "y is None, and a cost-aware score weighs accuracy (or error) "
                "against cost, which needs the labels; make_average_cost_scorer "
                "scores the cost alone, without them."
            )
        if y is not None:
            y = column_or_1d(y, warn=True)
        cascade, result = _route_through(estimator, X)
        if y is not None and len(y) != len(result.cost):
            raise ValueError(
                f"y has {len(y)} rows but X has {len(result.cost)}; they must match."
            )
        sample_weight = check_row_weights(
            sample_weight, result.cost if y is None else y
        )
        regression = is_regressor(cascade)
        if regression and y is not None:
            # As score() checks it: a NaN target would make the score NaN,
            # which a search ranks silently.
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        # Per-call parts are paid once per batch, not per row (see
        # cost_batch_size): the average is the batch's, not the rows' mean.
        # A row pays for the stages it ran (not those it skipped or a router
        # started it after) and for a kept router.
        average_cost = cascade._routed_average_cost(result, sample_weight)
        if self.normalize:
            average_cost = average_cost / cascade.cumulative_costs_[-1]
        if self.cost_weight is None:
            return -average_cost
        if regression:
            quality = _regression_quality(cascade._loss(), y, result, sample_weight)
        else:
            y_pred = cascade.classes_[np.argmax(result.proba, axis=1)]
            # As score() computes it: labels of another type than classes_
            # (strings against numbers) are an error, not every row wrong.
            quality = float(accuracy_score(y, y_pred, sample_weight=sample_weight))
        return quality - self.cost_weight * average_cost

    def __repr__(self) -> str:
        if self.cost_weight is None:
            return f"make_average_cost_scorer(normalize={self.normalize})"
        return (
            f"make_cost_aware_scorer(cost_weight={self.cost_weight}, "
            f"normalize={self.normalize})"
        )


def make_cost_aware_scorer(
    cost_weight: float = 0.01, *, normalize: bool = True
) -> Callable:
    """Scorer ``accuracy - cost_weight * average cost``, greater is better.

    Routes the rows once, so accuracy and cost come from the same pass. For
    regressors, the quality is R^2 (``loss="squared_error"``) or one minus
    the mean absolute error divided by the mean absolute deviation of ``y``
    from its median (``"absolute_error"``), on the scored rows: one minus the
    loss on the scale the regressors' own ``cost_weight`` is defined on.
    Candidates with different ``loss`` are so scored on different measures,
    which give the same predictions different scores: to search over
    ``loss``, score with one of scikit-learn's metrics (e.g.
    ``"neg_mean_squared_error"``) next to :func:`make_average_cost_scorer`.

    Parameters
    ----------
    cost_weight : float, default=0.01
        Accuracy (as a fraction; for regressors, R^2) given up per unit of
        average cost.
    normalize : bool, default=True
        Measure cost as a fraction of running every stage (unit-free, the same
        scale as the estimator's ``cost_weight``); False uses the units of the
        estimator's ``costs_``, the scale on which candidates whose full costs
        differ (another stage, another size) compare.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None)``, for ``scoring=``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> from skadaptive.metrics import make_cost_aware_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("tree", DecisionTreeClassifier(max_depth=1)),
    ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3).fit(X, y)
    >>> score = make_cost_aware_scorer(0.05)(cascade, X, y)
    >>> bool(0.8 < score <= 1.0)
    True
    """
    if isinstance(cost_weight, bool) or not isinstance(cost_weight, Real):
        raise TypeError(f"cost_weight must be a number; got {cost_weight!r}.")
    if not (np.isfinite(cost_weight) and cost_weight >= 0):
        raise ValueError(f"cost_weight must be finite and >= 0; got {cost_weight!r}.")
    return _CostScorer(float(cost_weight), _checked_normalize(normalize))


def _checked_normalize(normalize) -> bool:
    if not isinstance(normalize, bool | np.bool_):
        raise TypeError(
            f"normalize must be True or False; got {normalize!r} (any other "
            "value would count as one of them)."
        )
    return bool(normalize)


def make_average_cost_scorer(*, normalize: bool = True) -> Callable:
    """Scorer returning minus the average cost per row (greater is better).

    Parameters
    ----------
    normalize : bool, default=True
        Cost as a fraction of running every stage; False: units of ``costs_``.
        Compare candidates whose full costs differ (another stage, another
        size) with False: each fraction is of its own candidate's full cost.

    Returns
    -------
    scorer : callable
        Negative average cost, like scikit-learn's ``neg_*`` scorers.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> from skadaptive.metrics import make_average_cost_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("tree", DecisionTreeClassifier(max_depth=1)),
    ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3).fit(X, y)
    >>> bool(-1.0 <= make_average_cost_scorer()(cascade, X, y) < 0)
    True
    """
    return _CostScorer(None, _checked_normalize(normalize))


def cheapest_within(
    tolerance: float = 0.005,
    *,
    score: str = "accuracy",
    cost: str = "neg_average_cost",
) -> Callable[[dict], int]:
    """``refit=`` rule: the cheapest candidate within ``tolerance`` of the best score.

    For a multi-metric search with ``scoring={score: ..., cost: ...}``.

    Parameters
    ----------
    tolerance : float, default=0.005
        Largest acceptable drop in mean test ``score`` from the best candidate
        (0.005 is half an accuracy point).
    score : str, default="accuracy"
        Name of the quality metric in ``scoring``.
    cost : str, default="neg_average_cost"
        Name of the cost metric in ``scoring``; greater must be cheaper, as with
        :func:`make_average_cost_scorer`. Where the candidates' full costs
        differ (a stage replaced or resized, another number of trees,
        ``costs="auto"`` timed per candidate), score cost with
        ``make_average_cost_scorer(normalize=False)``: a fraction of each
        candidate's own full cost is not comparable between them.

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> best_index``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> from skadaptive.metrics import cheapest_within, make_average_cost_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("tree", DecisionTreeClassifier(max_depth=1)),
    ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3)
    >>> search = GridSearchCV(
    ...     cascade, {"cost_weight": [0.0, 0.05, 0.5]}, cv=3,
    ...     scoring={"accuracy": "accuracy",
    ...              "neg_average_cost": make_average_cost_scorer()},
    ...     refit=cheapest_within(0.02)).fit(X, y)
    >>> search.best_params_["cost_weight"] in (0.0, 0.05, 0.5)
    True
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real):
        raise TypeError(f"tolerance must be a number; got {tolerance!r}.")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance!r}.")

    def refit(cv_results: dict) -> int:
        for key in (f"mean_test_{score}", f"mean_test_{cost}"):
            if key not in cv_results:
                raise KeyError(
                    f"cheapest_within needs {key!r} in cv_results_: pass scoring="
                    f"{{{score!r}: ..., {cost!r}: ...}} to the search, or name "
                    "the search's own scorers: cheapest_within(tolerance, "
                    "score=..., cost=...)."
                )
        quality = np.asarray(cv_results[f"mean_test_{score}"], dtype=float)
        cheapness = np.asarray(cv_results[f"mean_test_{cost}"], dtype=float)
        # A candidate whose fit failed (error_score=nan) on either score is
        # never chosen: argmax would take a NaN cost for the cheapest.
        scored = ~(np.isnan(quality) | np.isnan(cheapness))
        if not scored.any():
            raise ValueError(
                f"cheapest_within: no candidate has both a {score!r} and a "
                f"{cost!r} score (every one is NaN: their fits or scorers "
                "failed); see the search's error_score and the warnings it "
                "gave, and fix the failing candidates."
            )
        acceptable = scored & (quality >= np.max(quality[scored]) - tolerance)
        return int(np.flatnonzero(acceptable)[np.argmax(cheapness[acceptable])])

    return refit
