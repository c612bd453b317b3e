"""Backbones of early exits: which models have exits, and where.

A tree ensemble gets exits after given numbers of trees
(:class:`~skadaptive.stages.TreeEnsembleExits`), a LightGBM or XGBoost model
after given numbers of boosting rounds
(:class:`~skadaptive.stages.BoosterExits`; recognised by the module of its
class, so neither library is imported here); a
:class:`~skadaptive.stages.ChainExits` or any other
:class:`~skadaptive.stages.MultiExitSource` is its own source.
"""

from __future__ import annotations

import numpy as np
from sklearn.frozen import FrozenEstimator

from ._booster_exits import (
    BoosterExits,
    fitted_rounds,
    is_booster_model,
    refuse_stopped,
)
from ._multi_exit import MultiExitSource
from ._tree_exits import _BOOSTING, _SUPPORTED, TreeEnsembleExits

TREE_ENSEMBLES = _SUPPORTED


def unwrap(estimator):
    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def n_trees_of(model) -> int:
    """Trees of a fitted ensemble, or boosting rounds of a LightGBM/XGBoost model
    (those it predicts with by default, after early stopping)."""
    if is_booster_model(model):
        return fitted_rounds(model)
    if isinstance(model, _BOOSTING):
        return model.estimators_.shape[0]
    return len(model.estimators_)


def default_exits(n_trees: int) -> tuple[int, ...]:
    """Five exits at 1/16, 1/8, 1/4, 1/2 and all of ``n_trees`` (distinct, >= 1).

    Examples
    --------
    >>> from skadaptive.stages._backbones import default_exits
    >>> default_exits(400)
    (25, 50, 100, 200, 400)
    >>> default_exits(3)
    (1, 2, 3)
    """
    counts = np.maximum(1, np.round(n_trees / 2.0 ** np.arange(4, -1, -1)))
    return tuple(int(c) for c in np.unique(counts.astype(int)))


def as_multi_exit(fitted, exits, *, fitted_here=False) -> MultiExitSource:
    """The multi-exit source of a fitted backbone.

    A tree ensemble (possibly frozen) gets exits after ``exits`` trees (or
    :func:`default_exits`), a LightGBM or XGBoost model (possibly frozen, or a
    Booster) after ``exits`` boosting rounds; a
    :class:`~skadaptive.stages.ChainExits` (possibly frozen) and any other
    :class:`~skadaptive.stages.MultiExitSource` are their own source, whose
    exits are fixed. ``fitted_here``: the backbone was fitted by the estimator
    (on a fold, or refitted), where early stopping is refused.
    """
    model = unwrap(fitted)
    if isinstance(model, TREE_ENSEMBLES):
        if fitted_here:
            refuse_stopped_trees(model)
        if exits is None:
            exits = default_exits(n_trees_of(model))
        return TreeEnsembleExits(model, exits)
    if is_booster_model(model):
        if fitted_here:
            # Early stopping set by a callback routed to fit (the model's own
            # parameters are checked before any fit), or a model that stopped
            # by itself (no split left, a callback without best_iteration).
            refuse_stopped(model)
        if exits is None:
            exits = default_exits(n_trees_of(model))
        return BoosterExits(model, exits)
    if exits is not None:
        raise ValueError(
            f"exits={exits!r} applies to tree ensembles only (scikit-learn's, "
            "LightGBM's and XGBoost's); the exits of a "
            f"{type(model).__name__} are fixed by the model itself. Leave exits "
            "as None."
        )
    return model


def refuse_stopped_trees(model) -> None:
    """Refuse a gradient-boosting model we fitted that grew fewer trees than
    ``n_estimators`` (a ``monitor`` stopped it): it would stop elsewhere in
    every cross-fitting fold."""
    grown = getattr(model, "n_estimators_", None)
    if grown is not None and grown < model.n_estimators:
        raise ValueError(
            f"{type(model).__name__} grew {grown} of its n_estimators="
            f"{model.n_estimators} trees when fitted here (something stopped "
            "it, such as a monitor), so the cross-fitting folds and the "
            "refitted model would not share the same exits. Fit it without "
            "stopping, or fit it yourself and pass FrozenEstimator(model)."
        )


def backbone_source(
    members: list, names=None, *, exits, fitted_here=False
) -> MultiExitSource:
    """The multi-exit source of the one fitted backbone in ``members``.

    ``names`` (the member's name) is not used: exits are called "exit k".
    """
    (backbone,) = members
    return as_multi_exit(backbone, exits, fitted_here=fitted_here)
