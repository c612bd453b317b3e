"""Backbones of early exits: which models have exits, and where.

A tree ensemble gets exits after given numbers of trees
(:class:`~skadaptive.stages.TreeEnsembleExits`); a
:class:`~skadaptive.stages.ChainExits` or any other
:class:`~skadaptive.stages.MultiExitSource` is its own source.
"""

from __future__ import annotations

import numpy as np
from sklearn.frozen import FrozenEstimator

from ._multi_exit import MultiExitSource
from ._tree_exits import _BOOSTING, _SUPPORTED, TreeEnsembleExits

TREE_ENSEMBLES = _SUPPORTED


def unwrap(estimator):
    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def n_trees_of(model) -> int:
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


def as_multi_exit(fitted, exits) -> MultiExitSource:
    """The multi-exit source of a fitted backbone.

    A tree ensemble (possibly frozen) gets exits after ``exits`` trees (or
    :func:`default_exits`); a :class:`~skadaptive.stages.ChainExits` (possibly
    frozen) and any other :class:`~skadaptive.stages.MultiExitSource` are
    their own source, whose exits are fixed.
    """
    model = unwrap(fitted)
    if isinstance(model, TREE_ENSEMBLES):
        if exits is None:
            exits = default_exits(n_trees_of(model))
        return TreeEnsembleExits(model, exits)
    if exits is not None:
        raise ValueError(
            f"exits={exits!r} applies to tree ensembles only; the exits of a "
            f"{type(model).__name__} are fixed by the model itself. Leave exits "
            "as None."
        )
    return model


def backbone_source(members: list, names=None, *, exits) -> MultiExitSource:
    """The multi-exit source of the one fitted backbone in ``members``.

    ``names`` (the member's name) is not used: exits are called "exit k".
    """
    (backbone,) = members
    return as_multi_exit(backbone, exits)
