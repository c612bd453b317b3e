"""The skadaptive estimator inside the wrappers scikit-learn puts around it."""

from __future__ import annotations

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline


def adaptive_inside(estimator, X=None):
    """``(inner, X)``: the estimator that ``estimator`` answers with, and the
    rows as it sees them.

    Looks through a Pipeline (``X`` transformed by every step but the last),
    a fitted search's ``best_estimator_`` (GridSearchCV and the like, as its
    ``predict`` does) and a FrozenEstimator's model; anything else is
    returned as it is, with ``X``.
    """
    while True:
        if isinstance(estimator, Pipeline):
            if len(estimator.steps) > 1 and X is not None:
                X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        elif isinstance(estimator, FrozenEstimator):
            estimator = estimator.estimator
        elif hasattr(estimator, "cv_results_") and hasattr(
            estimator, "best_estimator_"
        ):
            estimator = estimator.best_estimator_
        else:
            return estimator, X
