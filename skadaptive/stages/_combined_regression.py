"""Regression exits that answer with every prediction computed so far.

The regressors' ``answer="combined"``: when a row reaches exit ``k``, the
predictions of exits ``0..k`` have all been paid for, and a combiner maps them
to one prediction. As for the classifiers (:mod:`._combined`), the combiners
are learned on the cross-fitted held-out answers of the policy rows (never on
a stage's training rows), chosen per exit by their 3-fold cross-validated loss
(the estimator's ``loss``) with the one-standard-error rule, and the policy is
learned on their out-of-fold answers. The kinds, from the simplest:

- ``"stage"``: exit ``k``'s own prediction (exit 0 always answers so);
- ``"blend"``: a convex combination of the predictions of exits ``0..k``
  (weights at least 0 that sum to 1: ``k + 1`` numbers, no intercept, so it
  cannot shift or stretch the target, only average what the exits said);
- ``"linear"``: a linear regression on those predictions with an intercept
  (stacking), with a small ridge penalty on the standardised predictions
  (relative to the exit's own error).

Both are fitted by weighted least squares whatever the ``loss`` (as the
classifiers' combiners are fitted by log loss whatever the ``loss``); the
``loss`` is what chooses between them and the stage's own prediction. Each
combined answer keeps the exit's own uncertainty (column 1 of the answers).

The fits work on the policy's scale of the target (centred and divided by
the scale learned at fit), so their penalty is unit-free; the fitted
combiners are then expressed in the target's units
(:meth:`RegressionCombiner.in_units`), which is where the engine runs them.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from scipy.optimize import minimize

from ._combined import (
    _folds,
    enough_rows,
    enough_units,
    fold_splits,
    one_standard_error_choice,
)

_T = TypeVar("_T", bound="RegressionCombiner")

__all__ = ["RegressionCombiner", "fit_regression_combiners"]

KINDS = ("stage", "blend", "linear")
#: Ridge penalty of the linear combiner's coefficients on the standardised
#: predictions, relative to the last exit's own weighted mean squared error
#: (unit-free, and small next to the errors a combination can fix).
LINEAR_L2 = 1e-4


class RegressionCombiner:
    """The prediction of one regression exit from those of exits ``0..exit``.

    Fitted by :class:`~skadaptive.AdaptiveCascadeRegressor` and
    :class:`~skadaptive.EarlyExitRegressor` with ``answer="combined"`` (one
    per exit, in ``combiners_``); see the user guide's "Combined answers".

    Parameters
    ----------
    exit : int
        The exit it answers at; it reads exits ``0..exit``.
    kind : {"stage", "blend", "linear"}, default="stage"
        Chosen by cross-validated ``loss`` on the policy rows: from the
        simplest kind up, a kind only where its loss is lower than the kind
        kept so far by more than one standard error of the paired per-row
        difference.
    cv_error : dict, default=None
        Out-of-fold mean squared or absolute error (as ``loss``, in the
        target's units) of each kind tried, weighted like the fit; empty where
        only ``"stage"`` was possible (exit 0, too few rows).

    Attributes
    ----------
    weights : ndarray of shape (exit + 1,) or None
        The weight of each exit's prediction (``"blend"``: at least 0,
        summing to 1). None for ``"stage"``.
    bias : float or None
        The intercept, in the target's units (0 for ``"blend"``). None for
        ``"stage"``.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from sklearn.linear_model import Ridge
    >>> from skadaptive import AdaptiveCascadeRegressor
    >>> X, y = make_friedman1(n_samples=1200, noise=1.0, random_state=0)
    >>> cascade = AdaptiveCascadeRegressor(
    ...     [("ridge", Ridge()),
    ...      ("hgb", HistGradientBoostingRegressor(max_iter=50, random_state=0))],
    ...     costs=[1, 10], answer="combined", cv=3, random_state=0,
    ... ).fit(X, y)
    >>> cascade.combiners_[0]
    RegressionCombiner(exit=0, kind='stage')
    >>> last = cascade.combiners_[1]
    >>> last
    RegressionCombiner(exit=1, kind='linear')
    >>> sorted(last.cv_error)
    ['blend', 'linear', 'stage']
    >>> bool(last.cv_error["linear"] < last.cv_error["stage"])
    True
    >>> last.weights.shape  # one weight per exit's prediction, and last.bias
    (2,)
    """

    def __init__(self, exit: int, kind: str = "stage", cv_error=None):
        self.exit = exit
        self.kind = kind
        self.cv_error = {} if cv_error is None else dict(cv_error)
        self.weights = None
        self.bias = None

    def __repr__(self) -> str:
        return f"RegressionCombiner(exit={self.exit}, kind={self.kind!r})"

    @staticmethod
    def reads(answers: np.ndarray) -> np.ndarray:
        """What the combiners read of an exit's answers: the answers as they are.

        Parameters
        ----------
        answers : ndarray of shape (n_rows, 2)
            One exit's predictions (column 0) and uncertainties (column 1).

        Returns
        -------
        answers : ndarray of shape (n_rows, 2)
            The same array.
        """
        return answers

    def fit(
        self: _T, predictions: list, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> _T:
        """Fit ``self.kind`` on the predictions of exits ``0..exit``.

        Parameters
        ----------
        predictions : list of ndarray of shape (n_rows,)
            Each exit's held-out predictions, exit 0 first.
        y : ndarray of shape (n_rows,)
        sample_weight : ndarray of shape (n_rows,) or None
            Only their ratios count (the weighted mean squared error).

        Returns
        -------
        self : RegressionCombiner
        """
        if self.kind == "stage":
            return self
        P = np.column_stack(predictions[: self.exit + 1])
        weight = np.ones(len(y)) if sample_weight is None else sample_weight
        weight = weight / weight.sum()
        if self.kind == "blend":
            self.weights, self.bias = _fit_blend(P, y, weight), 0.0
        else:
            self.weights, self.bias = _fit_linear(P, y, weight)
        return self

    def in_units(self, center: float, scale: float) -> RegressionCombiner:
        """This combiner, fitted on ``(y - center) / scale``, for ``y`` itself.

        The combination is affine in the predictions, so on answers in the
        target's units it gives ``center + scale *`` what it gave on the
        policy's scale, exactly (up to rounding). Only the intercept changes.

        Parameters
        ----------
        center, scale : float
            The target scale the combiner was fitted on.

        Returns
        -------
        self : RegressionCombiner
            Changed in place.
        """
        if self.kind != "stage":
            self.bias = float(center * (1 - self.weights.sum()) + scale * self.bias)
        return self

    def combine(self, answers: list) -> np.ndarray:
        """Combined answers from the answers of exits ``0..exit``.

        Parameters
        ----------
        answers : list of ndarray of shape (n_rows, 2)
            Each exit's prediction (column 0) and uncertainty (column 1),
            exit 0 first.

        Returns
        -------
        answers : ndarray of shape (n_rows, 2)
            The combined prediction, and the exit's own uncertainty.
        """
        own = answers[self.exit]
        combined = np.array(own, dtype=np.float64, copy=True)
        if self.kind == "stage":
            return combined
        prediction = np.full(len(own), self.bias)
        for weight, answer in zip(self.weights, answers[: self.exit + 1]):
            prediction += weight * answer[:, 0]
        combined[:, 0] = prediction
        return combined


def _fit_blend(P: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weights on the simplex minimising the weighted mean squared error.

    With weights summing to one the error of the blend is the blend of the
    exits' residuals: a quadratic programme in ``n_exits`` weights on the
    weighted Gram matrix of the residuals (never of the predictions, whose
    common part would swamp residuals many orders of magnitude smaller),
    scaled by the last exit's own error, and solved from that exit's answer.
    """
    residuals = P - y[:, None]
    gram = residuals.T @ (residuals * weight[:, None])
    n_exits = P.shape[1]
    start = np.eye(n_exits)[-1]
    own = gram[-1, -1]
    if not own > 0:
        return start  # the exit's own answer is exact on these rows
    gram = gram / own

    def objective(a):
        return a @ gram @ a, 2 * (gram @ a)

    result = minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_exits,
        constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0}],
        options={"ftol": 1e-12, "maxiter": 200},
    )
    weights = np.clip(result.x, 0.0, None)
    total = weights.sum()
    if not (np.all(np.isfinite(weights)) and total > 0):
        return start
    weights = weights / total
    # Never worse on these rows than the start (the exit's own answer).
    return weights if objective(weights)[0] <= objective(start)[0] else start


def _fit_linear(P: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple:
    """Ridge stacking: coefficients and intercept, on the predictions' units.

    The penalty is on the predictions standardised with the weights, and is
    ``LINEAR_L2`` times the last exit's own weighted mean squared error, so
    that it stays small next to the errors a combination can fix however
    accurate the exits are. Solved as a least-squares problem (not by the
    normal equations, whose conditioning is the square of it: exits that all
    answer close to ``y`` are nearly collinear). Returned folded back
    (``bias + P @ coef``).
    """
    mean = weight @ P
    centred = P - mean
    std = np.sqrt(weight @ centred**2)
    # A prediction constant on these rows (an exit that answers one value)
    # has nothing to weigh: its coefficient stays 0.
    varies = std > 1e-12 * max(1.0, float(np.abs(mean).max()))
    Z = centred[:, varies] / std[varies]
    y_mean = weight @ y
    root = np.sqrt(weight)[:, None]
    penalty = LINEAR_L2 * float(weight @ (P[:, -1] - y) ** 2)
    design = np.vstack([Z * root, np.sqrt(penalty) * np.eye(Z.shape[1])])
    target = np.concatenate([(y - y_mean) * root[:, 0], np.zeros(Z.shape[1])])
    beta = np.linalg.lstsq(design, target, rcond=None)[0]
    coef = np.zeros(P.shape[1])
    coef[varies] = beta / std[varies]
    return coef, float(y_mean - mean @ coef)


def _row_losses(prediction: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    residual = prediction - y
    return residual**2 if loss == "squared_error" else np.abs(residual)


def fit_regression_combiners(
    stage_answers: list,
    y: np.ndarray,
    sample_weight=None,
    *,
    loss: str = "squared_error",
    center: float = 0.0,
    scale: float = 1.0,
    random_state=None,
    groups=None,
    units=None,
) -> tuple[list, list]:
    """One combiner per exit, and the policy rows' out-of-fold combined answers.

    Parameters
    ----------
    stage_answers : list of ndarray of shape (n_rows, 2)
        Every exit's cross-fitted held-out answers of the policy rows, on the
        policy's scale (``(prediction - center) / scale``, uncertainty /
        ``scale``).
    y : ndarray of shape (n_rows,)
        The targets on the same scale.
    sample_weight : ndarray of shape (n_rows,), default=None
    loss : {"squared_error", "absolute_error"}, default="squared_error"
        What chooses each exit's kind (its out-of-fold mean loss, by the
        one-standard-error rule).
    center, scale : float, default=0.0, 1.0
        The target scale: the returned combiners answer in the target's units.
    random_state : int, RandomState instance or None, default=None
        Salts the order in which rows are dealt to the folds.
    groups : array-like of shape (n_rows,), default=None
        Rows of equal value are dealt to the same fold (copies of a row).
    units : array-like of shape (n_rows,), default=None
        The groups routed to the splitter: each dealt whole to a fold in
        place of ``groups``, and one unit of evidence in the choice of kind
        (see :func:`~skadaptive.stages._combined.fit_combiners`).

    Returns
    -------
    combiners : list of RegressionCombiner
        Fitted on all the rows of positive weight, in the target's units.
    combined : list of ndarray of shape (n_rows, 2)
        Each exit's answers from the combiner fitted without the row's fold,
        on the policy's scale (the stage's own where the exit answers
        ``"stage"``): what the policy is learned on.
    """
    n_rows = len(y)
    weight = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight)
    fold_of, group_of_row, positive = _folds(
        weight, groups, random_state, units, stage_answers, y
    )
    learnable = enough_rows(groups, positive) and enough_units(units, positive)
    stage_answers = [np.asarray(a) for a in stage_answers]
    predictions = [a[:, 0] for a in stage_answers]
    splits = fold_splits(fold_of, positive)
    # Each fold's rows of every exit's answers, which its combiners answer.
    answers_of_fold = [[a[test] for a in stage_answers] for _, test in splits]
    rows = np.flatnonzero(positive)
    unit = scale**2 if loss == "squared_error" else scale
    normalised = weight / weight.sum()
    combiners = [RegressionCombiner(0)]
    combined = [stage_answers[0]]
    for k in range(1, len(stage_answers)):
        if not learnable:
            combiners.append(RegressionCombiner(k))
            combined.append(stage_answers[k])
            continue
        out_of_fold = {"stage": predictions[k]}
        for kind in KINDS[1:]:
            prediction = np.empty(n_rows)
            for (train, test), answers in zip(splits, answers_of_fold):
                fold_combiner = RegressionCombiner(k, kind).fit(
                    [p[train] for p in predictions], y[train], weight[train]
                )
                prediction[test] = fold_combiner.combine(answers)[:, 0]
            out_of_fold[kind] = prediction
        row_losses = {kind: _row_losses(p, y, loss) for kind, p in out_of_fold.items()}
        best = one_standard_error_choice(row_losses, normalised, group_of_row)
        cv_error = {
            kind: float(normalised @ losses) * unit
            for kind, losses in row_losses.items()
        }
        combiner = RegressionCombiner(k, best, cv_error).fit(
            [p[rows] for p in predictions], y[rows], weight[rows]
        )
        answers = np.array(stage_answers[k], dtype=np.float64, copy=True)
        answers[:, 0] = out_of_fold[best]
        combiners.append(combiner.in_units(center, scale))
        combined.append(answers)
    return combiners, combined
