"""A cascade stage kept as its cross-fitting fold models (``refit=False``).

With ``refit=False`` and several splits, each stage keeps the models fitted
on its folds' training rows: the policy learned from their answers on held-out
rows, and a new row is answered by one of them, chosen by a hash of the row's
content. No fold model saw a new row, so its answers are drawn like the
held-out answers the policy learned from, and the budget holds on new rows as
it does on the policy rows. The hash makes a row's fold independent of its
batch, of the order of the rows and of the container that holds it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array

from .._sklearn_private import _num_samples, _safe_indexing

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _value_terms(values: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Each value's share of its row's hash: 0 for a zero, whatever its column."""
    # +0.0 turns -0.0 into 0.0; NaNs are made one NaN.
    values = np.where(np.isnan(values), np.nan, values + 0.0)
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    column_keys = _mix(columns.astype(np.uint64))
    with np.errstate(over="ignore"):
        return _mix(bits ^ column_keys) - _mix(column_keys)


def fold_of_rows(X, n_folds: int) -> np.ndarray:
    """The fold model that answers each row: a hash of the row's content.

    Equal rows get the same fold whether they come in an array, a DataFrame,
    a list or a sparse matrix; rows of other things (texts, mixed columns)
    are hashed by their ``repr``.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, ...)
    n_folds : int

    Returns
    -------
    folds : ndarray of int of shape (n_rows,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skadaptive.stages._cross_fitted import fold_of_rows
    >>> X = np.array([[0.0, 1.5], [2.0, 0.0], [0.0, 1.5], [-0.0, 1.5]])
    >>> folds = fold_of_rows(X, 5)
    >>> bool(folds[0] == folds[2] == folds[3])
    True
    >>> bool((fold_of_rows(sp.csr_matrix(X), 5) == folds).all())
    True
    """
    try:
        values = check_array(
            X,
            accept_sparse="csr",
            dtype=np.float64,
            ensure_all_finite=False,
            ensure_2d=True,
            ensure_min_samples=0,
        )
    except (TypeError, ValueError):
        rows = X.itertuples(index=False) if hasattr(X, "itertuples") else X
        keys = [
            int.from_bytes(
                hashlib.blake2b(
                    repr(tuple(np.ravel(r)) if np.ndim(r) else r).encode(),
                    digest_size=8,
                ).digest()
            )
            for r in rows
        ]
        return np.array([key % n_folds for key in keys], dtype=np.intp)
    if sp.issparse(values):
        values = values.tocsr(copy=True)
        values.eliminate_zeros()
        terms = _value_terms(values.data, values.indices)
        row_of_value = np.repeat(np.arange(values.shape[0]), np.diff(values.indptr))
        hashes = np.zeros(values.shape[0], dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.add.at(hashes, row_of_value, terms)
    else:
        columns = np.broadcast_to(np.arange(values.shape[1]), values.shape)
        with np.errstate(over="ignore"):
            hashes = _value_terms(values, columns).sum(axis=1, dtype=np.uint64)
    return (_mix(hashes) % np.uint64(n_folds)).astype(np.intp)


class CrossFitted:
    """One stage as the models fitted on its cross-fitting folds.

    Each row is answered by the model of :func:`fold_of_rows`; none of them
    was fitted on a row it was not given at fit, so on new rows their answers
    are drawn like the held-out answers the policy learned from.

    Parameters
    ----------
    models : list of fitted estimators
        One per fold, in fold order.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive.stages._cross_fitted import CrossFitted
    >>> X = np.arange(40.0).reshape(-1, 2)
    >>> y = (np.arange(20) // 2) % 2
    >>> stage = CrossFitted([LogisticRegression().fit(X[i::2], y[i::2])
    ...                      for i in range(2)])
    >>> stage.predict_proba(X).shape, stage.classes_.tolist()
    ((20, 2), [0, 1])
    """

    def __init__(self, models: list):
        self.models = list(models)

    def __repr__(self) -> str:
        return f"CrossFitted({len(self.models)} x {self.models[0]!r})"

    def __getattr__(self, name):
        # What the fitted models share (classes_, n_features_in_,
        # feature_names_in_...): the first one's.
        if name.startswith("__") or name == "models":
            raise AttributeError(name)
        return getattr(self.models[0], name)

    def answers(self, answer, X) -> np.ndarray:
        """``answer(model, rows)`` for each row, from the row's fold model.

        Parameters
        ----------
        answer : callable
            ``answer(model, X_rows) -> ndarray of shape (n_rows, ...)``.
        X : array-like of shape (n_rows, ...)

        Returns
        -------
        answers : ndarray of shape (n_rows, ...)
        """
        n_rows = _num_samples(X)
        if n_rows == 0:
            return answer(self.models[0], X)
        folds = fold_of_rows(X, len(self.models))
        result = None
        for fold in np.unique(folds):
            rows = np.flatnonzero(folds == fold)
            part = np.asarray(answer(self.models[fold], _safe_indexing(X, rows)))
            if result is None:
                result = np.empty((n_rows, *part.shape[1:]), dtype=part.dtype)
            result[rows] = part
        return result

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, each row's from its fold model."""
        return self.answers(lambda model, rows: model.predict_proba(rows), X)

    def predict(self, X) -> np.ndarray:
        """Predictions, each row's from its fold model."""
        return self.answers(lambda model, rows: model.predict(rows), X)
