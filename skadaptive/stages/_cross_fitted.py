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

import datetime
import functools
import hashlib
import numbers
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.validation import check_is_fitted

try:  # pandas' NA, where pandas is installed
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

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


def _scalar_term(value, column: int, strict: bool = False) -> np.uint64:
    """One value's share of its row's hash, by content: a number (bool, int
    or float, in any container) as its float64 value, a missing one as NaN,
    a string by its text, a mapping by its sorted items, a sequence by its
    elements; anything else by its ``repr`` (with ``strict``, a ``repr``
    that is object's own, which holds the address, raises ValueError)."""
    if value is None or (pd is not None and (value is pd.NA or value is pd.NaT)):
        value = np.nan
    if isinstance(value, np.datetime64) and np.isnat(value):
        value = np.nan
    if _is_real(value):
        return _value_terms(np.array([float(value)]), np.array([column]))[0]
    if isinstance(value, np.datetime64 | datetime.date):
        # A moment, whichever type holds it: its nanoseconds since the epoch
        # (by its repr where NumPy cannot read it, e.g. with a time zone).
        try:
            if pd is not None and isinstance(value, datetime.datetime):
                stamp = pd.Timestamp(value).value  # time zones: as UTC
            else:
                stamp = np.datetime64(value, "ns").astype(np.int64)
            data = b"t" + str(int(stamp)).encode()
        except (TypeError, ValueError):
            data = b"r" + repr(value).encode()
    elif isinstance(value, str | bytes):
        data = b"s" + (value.encode() if isinstance(value, str) else value)
    elif isinstance(value, Mapping):
        items = sorted((repr(k), _scalar_term(v, 0, strict)) for k, v in value.items())
        data = b"m" + repr(items).encode()
    elif isinstance(value, list | tuple | np.ndarray):
        terms = [int(_scalar_term(v, 0, strict)) for v in np.ravel(value)]
        data = b"l" + repr(terms).encode()
    else:
        if strict and type(value).__repr__ is object.__repr__:
            raise ValueError(
                f"A {type(value).__name__} has no content to hash: its repr is "
                "its address."
            )
        data = b"r" + repr(value).encode()
    digest = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest())
    # Mixed with the column, as a number's term is: the same text in two
    # columns tells rows apart.
    keys = np.array([digest, column], dtype=np.uint64)
    return _mix(keys[:1] ^ _mix(keys[1:]))[0]


def _is_real(value) -> bool:
    """A number of any type (bool, int, float, NumPy's), not a complex one."""
    return isinstance(value, numbers.Real | np.bool_)


def _numeric(values) -> bool:
    """Whether an array holds numbers (or booleans) only, by its dtype."""
    return np.asarray(values).dtype.kind in "biuf"


def _block_terms(block, columns) -> np.ndarray:
    """Every row's share of its hash from numeric columns (vectorised)."""
    block = np.asarray(block, dtype=np.float64).reshape(len(block), -1)
    indices = np.broadcast_to(np.asarray(columns), block.shape)
    with np.errstate(over="ignore"):
        return _value_terms(block, indices).sum(axis=1, dtype=np.uint64)


def _column_terms(column, index: int, strict: bool = False) -> np.ndarray:
    """Every row's share of its hash from one column of any values: at once
    where they are all numbers, else one by one."""
    column = np.asarray(column)
    if _numeric(column) or all(_is_real(v) for v in column):
        return _block_terms(column.astype(np.float64)[:, None], [index])
    return np.array([_scalar_term(v, index, strict) for v in column], dtype=np.uint64)


def row_hashes(X, *, strict: bool = False) -> np.ndarray:
    """A 64-bit hash of each row's content.

    Equal rows get the same fold whether they come in an array, a DataFrame,
    a list or a sparse matrix, and whatever the type that holds a number
    (1, 1.0 and True alike; -0.0 as 0.0; None, NaN and pandas' NA alike);
    texts by their text, mappings by their sorted items.

    Other objects are hashed by their ``repr``: where that is object's own
    (it holds the address), equal objects hash apart, and differently on
    every run.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, ...)
    strict : bool, default=False
        Raise ValueError on an object that would be hashed by its address.

    Returns
    -------
    hashes : ndarray of uint64 of shape (n_rows,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skadaptive.stages._cross_fitted import row_hashes
    >>> X = np.array([[0.0, 1.5], [2.0, 0.0], [0.0, 1.5], [-0.0, 1.5]])
    >>> hashes = row_hashes(X)
    >>> bool(hashes[0] == hashes[2] == hashes[3] != hashes[1])
    True
    >>> bool((row_hashes(sp.csr_matrix(X)) == hashes).all())
    True
    >>> texts = ["a cat", "a dog", "a cat"]
    >>> bool((row_hashes(texts) == row_hashes(np.array(texts))).all())
    True
    """
    if _num_samples(X) == 0:
        return np.zeros(0, dtype=np.uint64)
    if sp.issparse(X):
        values = sp.csr_matrix(X, dtype=np.float64)  # duplicates summed
        values.sum_duplicates()
        values.eliminate_zeros()
        terms = _value_terms(values.data, values.indices)
        row_of_value = np.repeat(np.arange(values.shape[0]), np.diff(values.indptr))
        hashes = np.zeros(values.shape[0], dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.add.at(hashes, row_of_value, terms)
    else:
        hashes = np.zeros(_num_samples(X), dtype=np.uint64)
        if hasattr(X, "iloc"):  # a DataFrame (or Series): numeric columns at once
            frame = X.to_frame() if X.ndim == 1 else X
            kinds = [_numeric(frame.iloc[:, j]) for j in range(frame.shape[1])]
            numeric = [j for j, kind in enumerate(kinds) if kind]
            block = frame.iloc[:, numeric].to_numpy(dtype=np.float64, na_value=np.nan)
            parts = [_block_terms(block, numeric)]
            parts += [
                _column_terms(frame.iloc[:, j].to_numpy(), j, strict)
                for j, kind in enumerate(kinds)
                if not kind
            ]
        else:
            array = X if isinstance(X, np.ndarray) else np.asarray(X)
            if _numeric(array):
                # Numbers in any shape (images too): one row each, at once.
                flat = array.reshape(len(array), -1)
                parts = [_block_terms(flat, np.arange(flat.shape[1]))]
            else:
                # Texts, mappings, mixed columns: each value as it was given.
                if not isinstance(X, np.ndarray):
                    array = np.asarray(X, dtype=object)
                flat = array.reshape(len(array), -1)
                parts = [
                    _column_terms(flat[:, j], j, strict) for j in range(flat.shape[1])
                ]
        with np.errstate(over="ignore"):
            for part in parts:
                hashes += part
    return _mix(hashes)


def content_folds(
    X, n_folds: int, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Folds of nearly equal size drawn from the rows' hashes.

    The rows are ordered by :func:`row_hashes` and cut in ``n_folds`` runs of
    nearly equal weight, never between equal hashes; a row's fold is the run
    its hash falls in, so a new row goes to the fold of the rows equal to it
    (see :func:`fold_of_hashes`), and each fold takes the share of new rows
    it took of these. The runs are measured in weight, so that weight k on a
    row cuts the folds where k copies of it would, and a row of weight 0
    where the rows without it would.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, ...)
    n_folds : int
    sample_weight : ndarray of shape (n_rows,), default=None
        Non-negative row weights, not all zero; None: one each.

    Returns
    -------
    folds : ndarray of int of shape (n_rows,)
    boundaries : ndarray of uint64 of shape (n_folds - 1,)
        The first hash of each fold but the first.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.stages._cross_fitted import content_folds
    >>> X = np.arange(30.0).reshape(-1, 1)
    >>> folds, boundaries = content_folds(X, 3)
    >>> np.bincount(folds).tolist()
    [10, 10, 10]
    >>> folds, _ = content_folds(np.vstack([X, X[:3]]), 3)  # copies together
    >>> bool((folds[30:] == folds[:3]).all())
    True
    >>> twice = np.r_[np.full(3, 2.0), np.ones(27)]  # as the copies cut them
    >>> bool((content_folds(X, 3, twice)[1] == content_folds(
    ...     np.vstack([X, X[:3]]), 3)[1]).all())
    True
    """
    hashes = row_hashes(X)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    n_rows = len(ordered)
    weight = (
        np.ones(n_rows)
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64)[order]
    )
    # Scale-free (and no overflow): weights of any common factor cut alike.
    weight = weight / weight.max()
    # Fold f starts at the first row whose weight, with the rows before it,
    # exceeds f / n_folds of the total (with weights of one, row f n // n_folds);
    # within rounding of the total's share it does not exceed it, so that
    # integer weights (inexact once divided by the largest) cut where their
    # copies (exact) do.
    mass = np.cumsum(weight) * n_folds
    targets = np.arange(1, n_folds) * (mass[-1] / n_folds)
    starts = np.searchsorted(mass, targets * (1 + 1e-9), side="right")
    boundaries = ordered[np.minimum(starts, n_rows - 1)].astype(np.uint64)
    # A fold starts with the rows equal to its first row. Where that leaves
    # a fold empty (a heavy row, or many copies of one, across a cut), the
    # cut moves to the nearest distinct rows that leave every fold some,
    # where there are enough distinct rows of positive weight; rows of weight
    # 0 start no fold (they go where their hashes fall).
    distinct = np.unique(ordered[weight > 0])
    group = np.searchsorted(distinct, boundaries)
    previous = 0
    for f in range(n_folds - 1):
        lowest, highest = previous + 1, len(distinct) - (n_folds - 1 - f)
        if lowest <= highest:
            group[f] = min(max(group[f], lowest), highest)
        else:
            group[f] = max(group[f], previous)  # too few: a fold stays empty
        previous = group[f]
    boundaries = distinct[np.minimum(group, len(distinct) - 1)].astype(np.uint64)
    return fold_of_hashes(hashes, boundaries), boundaries


def fold_of_hashes(hashes: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """The fold of each hash, between :func:`content_folds`' boundaries."""
    return np.searchsorted(boundaries, hashes, side="right").astype(np.intp)


#: What the fold models share and a cascade reads from a stage.
_SHARED = ("classes_", "n_features_in_", "feature_names_in_", "n_outputs_")
#: Answering methods, each row's from its fold model where the models have it.
_ANSWERS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


class CrossFitted(BaseEstimator):
    """One stage as the models fitted on its cross-fitting folds.

    Each row is answered by the model of the fold its hash falls in
    (:func:`content_folds`), the model that held out the training rows equal
    to it, so that on new rows the answers are drawn like the held-out
    answers the policy learned from. The answering methods the models have
    (``predict``, ``predict_proba``, ``predict_log_proba``,
    ``decision_function``) and ``score`` go to each row's fold model; other
    fitted attributes differ by fold: read them from ``models[k]``.

    Parameters
    ----------
    models : list of fitted estimators
        One per fold, in fold order.
    boundaries : ndarray of uint64 of shape (len(models) - 1,)
        The folds' boundaries of :func:`content_folds`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive.stages._cross_fitted import CrossFitted, content_folds
    >>> X = np.arange(40.0).reshape(-1, 2)
    >>> y = (np.arange(20) // 2) % 2
    >>> folds, boundaries = content_folds(X, 2)
    >>> stage = CrossFitted([LogisticRegression().fit(X[folds != f], y[folds != f])
    ...                      for f in range(2)], boundaries)
    >>> stage.predict_proba(X).shape, stage.classes_.tolist()
    ((20, 2), [0, 1])
    """

    def __init__(self, models, boundaries):
        self.models = models
        self.boundaries = boundaries

    def fold_of(self, X) -> np.ndarray:
        """The fold model that answers each row."""
        return fold_of_hashes(row_hashes(X), self.boundaries)

    def __repr__(self, N_CHAR_MAX=700) -> str:
        return f"CrossFitted({len(self.models)} x {self.models[0]!r})"

    def __getattr__(self, name):
        models = self.__dict__.get("models")
        if models:
            if name in _SHARED:
                return getattr(models[0], name)
            if name in _ANSWERS and hasattr(models[0], name):
                return functools.partial(self._answer_with, name)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
            + (
                f" (it keeps one model per fold: read models[k].{name})"
                if models and hasattr(models[0], name)
                else ""
            )
        )

    def _answer_with(self, method: str, X) -> np.ndarray:
        return self.answers(lambda model, rows: getattr(model, method)(rows), X)

    def __sklearn_is_fitted__(self) -> bool:
        # Fitted where every fold model is (a clone's are not).
        for model in self.models:
            try:
                check_is_fitted(model)
            except NotFittedError:
                return False
        return True

    def fit(self, X, y=None, **params):
        """Refused: the fold models are kept as the cross-fitting fitted
        them (on folds of the rows the policy was learned on)."""
        raise TypeError(
            "A CrossFitted stage keeps the models of its cross-fitting folds "
            "as fitted; it is not fitted again. Fit the cascade again (with "
            "refit=False and an int cv) to get new fold models."
        )

    def __sklearn_tags__(self):
        return self.models[0].__sklearn_tags__()

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
        folds = self.fold_of(X)
        parts = {}
        for fold in np.unique(folds):
            rows = np.flatnonzero(folds == fold)
            parts[fold] = (
                rows,
                np.asarray(answer(self.models[fold], _safe_indexing(X, rows))),
            )
        # One dtype whichever folds a batch reaches.
        dtype = np.result_type(*(part.dtype for _, part in parts.values()))
        first = next(iter(parts.values()))[1]
        result = np.empty((n_rows, *first.shape[1:]), dtype=dtype)
        for rows, part in parts.values():
            result[rows] = part
        return result

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classifiers) or R^2 (regressors) of :meth:`predict`."""
        metric = r2_score if is_regressor(self.models[0]) else accuracy_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))
