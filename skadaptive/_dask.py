"""Prediction on Dask collections: lazy, block by block, one estimator copy.

The prediction methods of every estimator (``route``, ``predict``,
``predict_proba``, ``predict_log_proba``, ``predict_path``, ``predict_exit``,
``predict_cost``) hand a Dask input to :func:`lazy_predict` (see
:func:`is_lazy`) and return the matching lazy collection:

- a ``dask.array.Array`` of rows (chunked along rows; chunks along other axes
  are merged first) gives a ``dask.array.Array`` with the same row chunks, row
  chunks of unknown size included;
- a ``dask.dataframe.DataFrame`` (or a ``Series`` of texts) gives a dask
  ``Series`` (``predict``, ``predict_exit``, ``predict_cost``) or
  ``DataFrame`` (``predict_proba`` and ``predict_log_proba``, one column per
  class; ``predict_path``, one per stage) with the input's index and
  partitions;
- ``route`` gives a :class:`~sklearn.utils.Bunch` of such collections that
  share one routing pass per block.

Each block is answered by the same method of the same fitted estimator on that
block in memory, which routes its rows in batches of ``batch_size``: the
results equal the in-memory ones bit for bit when every chunk but the last is
a whole number of batches (each block's batches are then the in-memory
call's). With other chunks a stage whose arithmetic depends on its batch's
shape (a BLAS matrix product) may round a probability differently in the last
bit, as another ``batch_size`` does in memory.

The estimator is one node of the task graph (a :func:`dask.delayed` of it)
that every block's task depends on, not an argument copied into each task: a
distributed scheduler sends it to each worker once, whatever the number of
blocks. It is read when the graph is computed, so refitting the estimator
before then changes the answers.

Dask is imported only here, and only for a Dask input: for any other input
:func:`is_lazy` looks ``dask`` up in :data:`sys.modules` and nothing more.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

# Methods whose answers have one row per row of X.
LAZY_METHODS = (
    "route",
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_path",
    "predict_exit",
    "predict_cost",
)


def is_lazy(X) -> bool:
    """Whether ``X`` is a Dask collection, to be predicted lazily.

    Only looked for once ``dask`` is imported (a Dask collection cannot exist
    before), so that other inputs pay one dictionary look-up.

    Parameters
    ----------
    X : object
        The input of a prediction method.

    Returns
    -------
    lazy : bool
    """
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


@dataclass(frozen=True)
class _Answer:
    """What one answer of a method is: its dtype, and its columns.

    ``columns`` is None for one value per row (a 1-D array, a Series named
    ``name``), else the column labels of a 2-D answer (a DataFrame's columns).
    """

    dtype: np.dtype
    columns: tuple | None
    name: str

    def empty(self) -> np.ndarray:
        shape = (0,) if self.columns is None else (0, len(self.columns))
        return np.empty(shape, dtype=self.dtype)


def _answers(estimator, method: str):
    """The :class:`_Answer` of ``method``; for ``route``, a dict of them in the
    order of the in-memory Bunch's fields."""
    stages = tuple(estimator._stage_names())
    exit_stage = _Answer(np.dtype(np.intp), None, "exit_stage")
    ran = _Answer(np.dtype(bool), stages, "ran")
    cost = _Answer(np.dtype(np.float64), None, "cost")
    if is_regressor(estimator):
        prediction = _Answer(np.dtype(np.float64), None, "prediction")
        route = {
            "exit_stage": exit_stage,
            "ran": ran,
            "cost": cost,
            "prediction": prediction,
            "uncertainty": _Answer(np.dtype(np.float64), None, "uncertainty"),
        }
        proba = None
    else:
        classes = tuple(estimator.classes_.tolist())
        proba = _Answer(np.dtype(np.float64), classes, "proba")
        prediction = _Answer(estimator.classes_.dtype, None, "prediction")
        route = {"proba": proba, "exit_stage": exit_stage, "ran": ran, "cost": cost}
    return {
        "route": route,
        "predict": prediction,
        "predict_proba": proba,
        "predict_log_proba": proba,
        "predict_path": ran,
        "predict_exit": exit_stage,
        "predict_cost": cost,
    }[method]


def _answer_block(block, estimator, method: str):
    """``estimator.method`` on one block of rows (arrays, or a Bunch of them).

    A block without rows (an empty partition, a filtered chunk) is answered
    with empty arrays of the answer's dtype and columns: the stages would
    refuse it.
    """
    if block.shape[0]:
        return getattr(estimator, method)(block)
    answer = _answers(estimator, method)
    if isinstance(answer, dict):
        return Bunch(**{field: a.empty() for field, a in answer.items()})
    return answer.empty()


def _field(bunch, field: str):
    """One field of a block's routing Bunch."""
    return bunch[field]


def _as_pandas(values, index, answer: _Answer):
    import pandas as pd

    if answer.columns is None:
        return pd.Series(values, index=index, name=answer.name, dtype=values.dtype)
    return pd.DataFrame(values, index=index, columns=pd.Index(answer.columns))


def _answer_partition(partition, estimator, method: str):
    """:func:`_answer_block` on a pandas partition, as a Series or DataFrame on
    the partition's index."""
    values = _answer_block(partition, estimator, method)
    return _as_pandas(values, partition.index, _answers(estimator, method))


def _route_partition(partition, estimator):
    """``estimator.route`` on a pandas partition, every field's columns side by
    side in one DataFrame (positional column labels; see :func:`_unpack`)."""
    import pandas as pd

    result = _answer_block(partition, estimator, "route")
    columns = {}
    for field in _answers(estimator, "route"):
        values = result[field]
        for column in values.T if values.ndim == 2 else [values]:
            columns[len(columns)] = column
    return pd.DataFrame(columns, index=partition.index)


def _unpack(frame, start: int, answer: _Answer):
    """One field of :func:`_route_partition`'s DataFrame, from column ``start``."""
    if answer.columns is None:
        return frame.iloc[:, start].rename(answer.name)
    import pandas as pd

    stop = start + len(answer.columns)
    return frame.iloc[:, start:stop].set_axis(pd.Index(answer.columns), axis=1)


def _check_rows(estimator, probe) -> None:
    """The checks a prediction makes before any block runs: fitted, and where
    they are known, the feature count and names (on ``probe``, no rows of
    ``X``'s columns)."""
    check_is_fitted(estimator)
    if probe is not None:
        estimator._checked_rows(probe, count_rows=False)


def lazy_predict(estimator, X, method: str):
    """``estimator.method(X)`` for a Dask collection, as a lazy collection.

    Parameters
    ----------
    estimator : fitted estimator of skadaptive
        Its prediction methods answer each block in memory.
    X : dask.array.Array, dask.dataframe.DataFrame or dask.dataframe.Series
        Rows: an array chunked along its first axis (chunks along the others
        are merged), or a dataframe (a Series for a stage that takes texts).
    method : str
        One of ``route``, ``predict``, ``predict_proba``,
        ``predict_log_proba``, ``predict_path``, ``predict_exit`` and
        ``predict_cost``.

    Returns
    -------
    result : dask.array.Array, dask.dataframe.Series, dask.dataframe.DataFrame or Bunch
        For an array, an array with ``X``'s row chunks; for a dataframe, a
        Series or DataFrame with its index and partitions; for ``route``, a
        Bunch of these that share one routing pass per block.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skadaptive import AdaptiveCascadeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> cascade = AdaptiveCascadeClassifier(
    ...     [("stump", DecisionTreeClassifier(max_depth=1)),
    ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3,
    ... ).fit(X, y)
    >>> lazy = cascade.predict_proba(da.from_array(X, chunks=(50, 4)))
    >>> lazy.chunks
    ((50, 50, 50), (3,))
    >>> bool((lazy.compute(scheduler="sync") == cascade.predict_proba(X)).all())
    True
    """
    if method not in LAZY_METHODS:
        raise ValueError(f"{method!r} is not one of {LAZY_METHODS}.")
    import dask
    import dask.array as da

    if isinstance(X, da.Array):
        return _lazy_array(estimator, X, method, dask, da)
    dd = sys.modules.get("dask.dataframe")
    if dd is not None and isinstance(X, dd.DataFrame | dd.Series):
        return _lazy_frame(estimator, X, method, dask)
    raise TypeError(
        f"{type(estimator).__name__}.{method} takes a dask.array.Array or a "
        "dask.dataframe.DataFrame (or Series) as a lazy input; got a "
        f"{type(X).__module__}.{type(X).__name__}. Convert it to one of them "
        "first (e.g. Bag.to_dataframe(), or dask.array.from_delayed)."
    )


def _shipped(estimator, dask):
    """The estimator as one node of the graph (a Delayed of it, unique key)."""
    return dask.delayed(estimator, traverse=False)


def _lazy_array(estimator, X, method, dask, da):
    if X.ndim == 0:
        raise ValueError(f"Expected rows, got a 0-d dask array {X!r}.")
    probe = None
    if not any(np.isnan(X.shape[1:])):
        probe = np.empty((0, *X.shape[1:]), dtype=X.dtype)
    _check_rows(estimator, probe)
    if any(n > 1 for n in X.numblocks[1:]):
        # A block must hold whole rows.
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    in_index = "i" + "".join(chr(ord("a") + k) for k in range(X.ndim - 1))
    shipped = _shipped(estimator, dask)
    answer = _answers(estimator, method)

    def blocks(func, *args, answer, token):
        """One task per row chunk: ``func(chunk, *args)``."""
        if answer.columns is None:
            out_index, new_axes = "i", {}
        else:
            out_index, new_axes = "iz", {"z": len(answer.columns)}
        return da.blockwise(
            func,
            out_index,
            *args,
            concatenate=True,
            new_axes=new_axes,
            meta=answer.empty(),
            token=token,
        )

    if not isinstance(answer, dict):
        return blocks(
            _answer_block,
            X,
            in_index,
            shipped,
            None,
            method,
            None,
            answer=answer,
            token=method.replace("_", "-"),
        )
    routed = da.blockwise(
        _answer_block,
        "i",
        X,
        in_index,
        shipped,
        None,
        method,
        None,
        concatenate=True,
        meta=np.empty((0,), dtype=object),
        token="route",
    )
    return Bunch(
        **{
            field: blocks(
                _field,
                routed,
                "i",
                field,
                None,
                answer=a,
                token=f"route-{field.replace('_', '-')}",
            )
            for field, a in answer.items()
        }
    )


def _lazy_frame(estimator, X, method, dask):
    meta = X._meta
    _check_rows(estimator, meta)
    shipped = _shipped(estimator, dask)
    answer = _answers(estimator, method)
    if not isinstance(answer, dict):
        return X.map_partitions(
            _answer_partition,
            shipped,
            method,
            meta=_answer_partition(meta, estimator, method),
            token=method.replace("_", "-"),
        )
    packed = X.map_partitions(
        _route_partition,
        shipped,
        meta=_route_partition(meta, estimator),
        token="route",
    )
    fields = {}
    start = 0
    for field, a in answer.items():
        fields[field] = packed.map_partitions(
            _unpack,
            start,
            a,
            meta=_unpack(packed._meta, start, a),
            token=f"route-{field.replace('_', '-')}",
        )
        start += 1 if a.columns is None else len(a.columns)
    return Bunch(**fields)
