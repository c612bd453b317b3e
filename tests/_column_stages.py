"""Stages whose answers a test states exactly, and the rows of the
skipping and routing tests (a middle stage right only where the first is)."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ColumnStage(ClassifierMixin, BaseEstimator):
    """A binary "model" whose probability of class 1 is column ``column`` of X.

    Lets a test say exactly what each stage answers on each row.
    """

    def __init__(self, column=0):
        self.column = column

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        p1 = np.asarray(X, dtype=np.float64)[:, self.column]
        return np.column_stack([1 - p1, p1])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _middle_is_useless(n_rows, seed):
    """Rows where the middle stage is right only where the first already is.

    Half the rows are easy: every stage is confidently right. On the other
    half the first stage is unsure (right on half of them), the middle stage
    knows nothing (0.5 give or take noise) and the last stage is right.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    hard = np.arange(n_rows) % 2 == 1
    sign = np.where(y == 1, 1.0, -1.0)
    first = np.where(
        hard, 0.5 + 0.05 * rng.choice([-1.0, 1.0], n_rows), 0.5 + 0.45 * sign
    )
    middle = np.where(hard, 0.5 + 0.01 * rng.uniform(-1, 1, n_rows), 0.5 + 0.45 * sign)
    last = 0.5 + 0.4 * sign
    return np.column_stack([first, middle, last]), y, hard
