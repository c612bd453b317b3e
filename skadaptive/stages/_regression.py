"""Regression answers: each stage's prediction and its own uncertainty.

A regression stage answers a row with two numbers: its prediction and how
unsure it is of it, where the model says so (0 where it does not). The
uncertainty of a stage is, in this order of preference:

- the standard deviation of ``predict(X, return_std=True)``, for models that
  offer it (``GaussianProcessRegressor``, ``BayesianRidge``,
  ``ARDRegression``);
- the spread (standard deviation) of the trees of a random or extra-trees
  forest, whose mean is then the forest's prediction, computed from the same
  tree predictions;
- 0 otherwise.

A :class:`~sklearn.pipeline.Pipeline` is looked through: its last step's
uncertainty is used, on the rows as the steps before it transform them.

The exit policy works on a target scale learned at fit
(:func:`regression_scale`): the policy is learned on answers centred and
scaled by it (:func:`scale_answers`), and at prediction :class:`ScaledPolicy`
shows it the stages' answers so scaled, so that its loss, features and
thresholds are unit-free while each row keeps its stage's own prediction.
"""

from __future__ import annotations

from inspect import signature

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, column_or_1d

from .. import _warnings
from .._typing import ArrayLike, Estimator, Rows
from .._validation import (
    StageOutputError,
    check_row_weights,
    rows_text,
    stage_label,
    tagged_type,
)
from ._cross_fitted import CrossFitted
from ._independent import IndependentStages
from ._tree_exits import TreeEnsembleExits

_FORESTS = (RandomForestRegressor, ExtraTreesRegressor)


def _returns_std(estimator) -> bool:
    try:
        return "return_std" in signature(estimator.predict).parameters
    except (TypeError, ValueError):
        return False


def _has_own_uncertainty(model) -> bool:
    if isinstance(model, FrozenEstimator):
        model = model.estimator
    if isinstance(model, Pipeline):
        return _has_own_uncertainty(model[-1])
    if isinstance(model, TransformedTargetRegressor):
        return hasattr(model, "regressor_") and _has_own_uncertainty(model.regressor_)
    return _returns_std(model) or (
        isinstance(model, _FORESTS) and model.n_outputs_ == 1
    )


def regression_answers(estimator: Estimator, X: Rows) -> np.ndarray:
    """A fitted regressor's prediction and uncertainty for each row of ``X``.

    Parameters
    ----------
    estimator : regressor
        Fitted (possibly in a ``FrozenEstimator``).
    X : array-like of shape (n_rows, n_features)

    Returns
    -------
    answers : ndarray of shape (n_rows, 2)
        Column 0 the prediction, column 1 the uncertainty (see the module).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge, Ridge
    >>> from skadaptive.stages import regression_answers
    >>> X, y = np.arange(20.0).reshape(-1, 1), np.arange(20.0)
    >>> bool((regression_answers(BayesianRidge().fit(X, y), X)[:, 1] > 0).all())
    True
    >>> regression_answers(Ridge().fit(X, y), X[:1]).round(2)
    array([[0.01, 0.  ]])
    """
    model = estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
    if isinstance(model, CrossFitted):
        return model.answers(regression_answers, X)
    if isinstance(model, Pipeline) and _has_own_uncertainty(model[-1]):
        # The last step's uncertainty, on the rows as the steps before it
        # pass them on (what Pipeline.predict does, without its routing).
        rows = model[:-1].transform(X) if len(model) > 1 else X
        return regression_answers(model[-1], rows)
    if isinstance(model, TransformedTargetRegressor) and _has_own_uncertainty(model):
        return _inverse_transformed(model, X)
    if isinstance(model, _FORESTS) and model.n_outputs_ == 1:
        # One exit after all the trees: their mean and spread, with the rows
        # validated as the forest's own predict validates them.
        forest = TreeEnsembleExits(model, [len(model.estimators_)])
        return forest.run_stage(0, X, None)[0]
    if _returns_std(model):
        if isinstance(X, np.ndarray) and X.dtype == object:
            # Numbers in an object array: some models' return_std path does
            # its arithmetic on X as given (BayesianRidge, scikit-learn 1.9).
            X = X.astype(np.float64)
        returned = model.predict(X, return_std=True)
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise ValueError(
                f"{type(model).__name__}.predict takes return_std, but "
                "predict(X, return_std=True) did not return a pair (prediction, "
                f"std); it returned {type(returned).__name__}. Return both there, "
                "or remove the return_std argument if the model has no "
                "uncertainty."
            )
        prediction = _one_column(returned[0], model)
        std = _one_column(returned[1], model)
        if len(std) != len(prediction):
            raise ValueError(
                f"{type(model).__name__}.predict(X, return_std=True) returned "
                f"{len(prediction)} predictions but {len(std)} standard "
                "deviations: it must return one of each per row."
            )
        answers = np.empty((len(prediction), 2))
        answers[:, 0] = prediction
        answers[:, 1] = std
        return answers
    prediction = _one_column(estimator.predict(X), model)
    answers = np.zeros((len(prediction), 2))
    answers[:, 0] = prediction
    return answers


def _inverse_transformed(model, X) -> np.ndarray:
    """A ``TransformedTargetRegressor``'s prediction, and its regressor's
    uncertainty carried back to the target's units.

    The regressor's mean ``m`` and standard deviation ``s`` are in the
    transformed units; the uncertainty in the target's is half the width of
    ``[m - s, m + s]`` mapped back by the inverse transform (exact for an
    affine transform such as ``StandardScaler``, the delta method's first
    order for a smooth monotone one such as a logarithm).
    """
    inner = regression_answers(model.regressor_, X)

    def back(values):
        return _one_column(
            model.transformer_.inverse_transform(values.reshape(-1, 1)), model
        )

    # The prediction mapped back as TransformedTargetRegressor.predict maps
    # it (without running the regressor a second time).
    mean, std = inner[:, 0], inner[:, 1]
    answers = np.empty_like(inner)
    answers[:, 0] = back(mean)
    answers[:, 1] = np.abs(back(mean + std) - back(mean - std)) / 2
    return answers


class NotOneColumn(StageOutputError):
    """A regressor returned more than one prediction per row.

    A source that knows the stage's name says which stage
    (:meth:`IndependentRegressors.run_stage`).
    """


def _one_column(values, model) -> np.ndarray:
    """One value per row, or a clear error for a multi-output regressor or
    answers that are not real numbers."""
    values = np.asarray(values)
    if values.dtype.kind in "cUS":
        kind = "complex" if values.dtype.kind == "c" else "text"
        raise StageOutputError(
            f"{type(model).__name__}.predict returned {kind} values (dtype "
            f"{values.dtype}); a regression stage must return real numbers."
        )
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise StageOutputError(
            f"{type(model).__name__}.predict returned values that are not "
            f"numbers ({error}); a regression stage must return real numbers."
        ) from None
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise NotOneColumn(
            f"{type(model).__name__}.predict returned predictions of shape "
            f"{values.shape}; a regression stage must return one prediction "
            "per row (a single-output regressor)."
        )
    return values


class IndependentRegressors(IndependentStages):
    """A :class:`~skadaptive.engine.StageSource` over fitted regressors: each
    stage answers with :func:`regression_answers`."""

    regression = True

    @property
    def classes_(self):
        raise AttributeError("A regression source has no classes_.")

    def run_stage(self, stage: int, X_rows, state):
        try:
            return regression_answers(self.estimators[stage], X_rows), None
        except StageOutputError as error:
            # Two stages may be of one class: name the stage.
            raise ValueError(f"{stage_label(self, stage)}: {error}") from None


#: A target whose spread is at most this many units in the last place of its
#: magnitude is constant (no more than rounding).
_CONSTANT_ULPS = 8


def regression_scale(
    y: ArrayLike, sample_weight: ArrayLike | None = None, loss: str = "squared_error"
) -> tuple[float, float]:
    """The centre and scale of ``y`` on which regression policies work.

    With ``loss="squared_error"``, the weighted mean and standard deviation;
    with ``loss="absolute_error"``, the weighted median and mean absolute
    deviation from it. Either way, predicting the centre for every row has a
    scaled loss of 1 on these rows, so a ``cost_weight`` means the same
    trade-off on any target scale. A constant ``y`` (see
    :func:`constant_target`) gets a scale of its magnitude, at least 1.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    sample_weight : array-like of shape (n_samples,), default=None
    loss : {"squared_error", "absolute_error"}, default="squared_error"

    Returns
    -------
    center, scale : float

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.stages import regression_scale
    >>> regression_scale(np.array([1.0, 2.0, 3.0, 10.0]))
    (4.0, 3.5355339059327378)
    >>> regression_scale(np.array([1.0, 2.0, 3.0, 10.0]), loss="absolute_error")
    (2.0, 2.5)
    >>> regression_scale(np.full(400, 0.7))[1]
    1.0
    """
    if loss not in ("squared_error", "absolute_error"):
        raise ValueError(
            f"loss must be 'squared_error' or 'absolute_error'; got {loss!r}."
        )
    y = check_array(column_or_1d(y), ensure_2d=False, dtype=np.float64, input_name="y")
    weight = check_row_weights(sample_weight, y)
    weight = np.ones(len(y)) if weight is None else weight
    weight = weight / weight.sum()
    if loss == "absolute_error":
        # The lower weighted median: the first value whose cumulative share
        # reaches one half, shares rounded so that weight k and k copies of a
        # row, or a common factor on the weights, find the same one (summed
        # shares of a twentieth fell 6e-17 short of a half at the tie).
        order = np.argsort(y, kind="stable")
        share = np.round(np.cumsum(weight[order]), 12)
        center = float(y[order][np.searchsorted(share, 0.5)])
        scale = float(weight @ np.abs(y - center))
    else:
        center = float(weight @ y)
        # Squared after dividing by the largest deviation: a target of tiny
        # (or huge) magnitude would otherwise underflow (or overflow).
        largest = float(np.max(np.abs(y - center))) if len(y) else 0.0
        scale = (
            largest * float(np.sqrt(weight @ ((y - center) / largest) ** 2))
            if largest > 0
            else 0.0
        )
    # A constant target has no scale of its own: the rounding of its
    # weighted centre (1e-16 of its magnitude) would otherwise be the scale,
    # and rounding noise would read as losses of order one. Its magnitude
    # (at least 1) keeps the stages' rounding at the rounding's size.
    if not np.isfinite(scale) or scale <= 0 or constant_target(y, weight):
        scale = max(1.0, abs(center))
    return center, scale


def constant_target(y, sample_weight=None) -> bool:
    """Whether ``y`` is constant over its rows of positive weight, up to
    rounding (a spread of at most 8 units in the last place of its
    magnitude; a target that varies by more is learnable, however little).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.stages._regression import constant_target
    >>> constant_target(np.full(3, 0.7)), constant_target(np.array([1e8, 1e8 + 1e-5]))
    (True, False)
    """
    y = np.asarray(y, dtype=np.float64)
    if sample_weight is not None:
        y = y[np.asarray(sample_weight) > 0]
    if len(y) == 0:
        return True
    return bool(np.ptp(y) <= _CONSTANT_ULPS * np.spacing(np.max(np.abs(y))))


#: Answers further than this many scales of ``y`` from its centre (a
#: prediction) or from 0 (an uncertainty) are refused: the policy squares them
#: (errors, features), beyond what float64 holds.
HUGE_SCALES = 1e150
#: Answers further than this warn at fit: they take over the policy's features.
FAR_SCALES = 1e6


def check_prediction_range(answers, name: str, scale: float, warn=True) -> None:
    """Refuse (or warn about) answers implausibly far from the target.

    ``answers`` are on the policy's scale (see :func:`scale_answers`); a
    stage that diverged on some rows is named.
    """
    if answers.ndim != 2 or not len(answers):
        return
    distance = np.max(np.abs(answers), axis=1)
    far = distance > (FAR_SCALES if warn else HUGE_SCALES)
    if not far.any():
        return
    largest = float(distance.max())
    where = (
        f"on {rows_text(int(far.sum()))} of {len(answers)} (up to {largest:.3g} "
        f"times the scale of y, {scale:.3g})"
    )
    if largest > HUGE_SCALES:
        raise ValueError(
            f"Stage {name!r} answered with predictions or uncertainties more "
            f"than {HUGE_SCALES:g} times the scale of y from its centre {where}: "
            "the policy's squared errors and features would overflow float64. "
            "Check the stage (it may have diverged on some rows) or its input."
        )
    _warnings.warn(
        f"Stage {name!r} answered with predictions or uncertainties more than "
        f"{FAR_SCALES:g} times the scale of y from its centre {where}: such rows "
        "take over the policy's features, which then cannot tell the other "
        "rows apart. Check the stage (it may have diverged on some rows) or its "
        "input.",
        UserWarning,
    )


class ScaledPolicy:
    """A fitted policy that decides on regression answers put on its scale.

    The policy was learned on answers ``((prediction - center) / scale,
    uncertainty / scale)``; routed through this wrapper it is shown the
    stages' answers so scaled, while the rows keep the stages' own answers.
    (Scaling the answers themselves and scaling them back would round every
    prediction to the spacing of ``center``: visibly wrong answers for small
    predictions next to a large centre.) Everything else is the wrapped
    policy's.
    """

    def __init__(self, policy, center: float, scale: float, names=None):
        self.policy = policy
        self.center = float(center)
        self.scale = float(scale)
        self.names = names

    def __getattr__(self, name):
        # skips, router, n_stages...: the wrapped policy's.
        if name == "policy":
            raise AttributeError(name)
        return getattr(self.policy, name)

    def _scaled(self, stage: int, history: list) -> list:
        scaled = [
            scale_answers(answers, self.center, self.scale) for answers in history
        ]
        # Refused as at fit: squared, they would overflow into the decision.
        name = self.names[stage] if self.names else f"exit {stage}"
        check_prediction_range(scaled[stage], name, self.scale, warn=False)
        return scaled

    def exits(self, stage: int, history: list) -> np.ndarray:
        return self.policy.exits(stage, self._scaled(stage, history))

    def next_stages(self, stage: int, history: list) -> np.ndarray:
        return self.policy.next_stages(stage, self._scaled(stage, history))


def scale_answers(answers, center: float, scale: float) -> np.ndarray:
    """A copy of regression ``answers`` on the policy's scale.

    ``(prediction, uncertainty)`` becomes ``((prediction - center) / scale,
    uncertainty / scale)``. An array of another shape is returned as float64,
    unscaled, for the package's checks to name.
    """
    answers = np.array(answers, dtype=np.float64)
    if answers.ndim == 2 and answers.shape[1] == 2:
        answers[:, 0] -= center
        answers /= scale
    return answers


def numeric_targets(y, estimator) -> np.ndarray:
    """``y`` as finite float64 for the regressor ``estimator``, or a clear
    error where it holds class labels (strings, objects)."""
    owner = type(estimator).__name__
    classifier = owner.replace("Regressor", "Classifier")
    if np.asarray(y).dtype.kind in "USa":
        # As scikit-learn's regressors: numbers as text are not taken for
        # numbers (nor are labels that happen to read as numbers).
        raise ValueError(
            f"y holds strings (e.g. {str(np.ravel(y)[0])!r}): {owner} predicts a "
            "numeric target; convert numbers given as text (y.astype(float)), "
            f"or use {classifier} for class labels."
        )
    try:
        return check_array(
            y,
            ensure_2d=False,
            dtype=np.float64,
            input_name="y",
            ensure_all_finite=True,
        )
    except (TypeError, ValueError) as error:
        if "convert" not in str(error).lower():
            raise
        raise ValueError(
            f"y holds values that are not numbers (e.g. {_not_a_number(y)!r}): "
            f"{owner} predicts a numeric target; use {classifier} for class "
            "labels."
        ) from error


def _not_a_number(y):
    """The first value of ``y`` that does not convert to a float."""
    for value in np.ravel(np.asarray(y, dtype=object)):
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return np.ravel(y)[0]


def check_regressor(estimator, label: str, fix: str) -> None:
    """Raise a clear error unless ``estimator`` can be a regression stage.

    It needs ``predict``, and its scikit-learn tags must not say it is
    something else (a classifier, a clusterer...); an object without tags is
    taken at its word.
    """
    name = type(estimator).__name__
    if not hasattr(estimator, "predict"):
        raise TypeError(f"{label} ({name}) has no predict: {fix}")
    estimator_type = tagged_type(estimator)
    if estimator_type not in (None, "regressor"):
        raise TypeError(f"{label} ({name}) is a {estimator_type}; {fix}")
