"""pandas rows kept in a fitted estimator's state, in a form skops can save.

A fit with a router keeps the policy rows' features as they were given (a
router may be a pipeline that selects columns by name), so a DataFrame or a
Series can sit in the state. skops saves no pandas object, so the state holds
such rows as their columns' values (numpy arrays), names and dtypes, and
:func:`rows_from_state` builds them again on load. The row index is not kept
(what the rows are used for, learning routers, does not read it): loaded rows
have a ``RangeIndex``. Rows with columns of other kinds than numpy dtypes,
categoricals and pandas' nullable or string dtypes (datetimes with a time
zone, periods, intervals...), or whose column names are not a flat index of
strings or integers, are kept as pandas objects, which pickle saves and skops
refuses.
"""

from __future__ import annotations

import sys

import numpy as np

#: Marks the state of pandas rows (a dict) in the estimator's state.
_KIND = "skadaptive pandas rows"

#: pandas' nullable dtypes kept as values (with None where missing).
_NULLABLE = frozenset(
    [f"{kind}{bits}" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)]
    + ["Float32", "Float64", "boolean"]
)


def rows_to_state(rows):
    """``rows`` as plain values where they are a pandas DataFrame or Series
    whose columns all can be (see the module), else as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> from skadaptive._frames import rows_from_state, rows_to_state
    >>> frame = pd.DataFrame({"x": [1.5, 2.0], "colour": pd.Categorical(["r", "g"])})
    >>> state = rows_to_state(frame)
    >>> sorted(state)
    ['columns', 'kind', 'name', 'names', 'series']
    >>> rows_from_state(state).equals(frame)
    True
    """
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(rows, pd.DataFrame | pd.Series):
        return rows
    series = isinstance(rows, pd.Series)
    frame = rows.to_frame(name=0) if series else rows
    names = frame.columns
    if (
        frame.shape[1] == 0
        or type(names) not in (pd.Index, pd.RangeIndex)
        or names.name is not None
        or not all(isinstance(name, str | int) for name in names)
    ):
        return rows  # columns of other kinds than flat names: kept as they are
    columns = [_column_state(pd, frame.iloc[:, k]) for k in range(frame.shape[1])]
    if any(column is None for column in columns) or (
        series and not isinstance(rows.name, str | int | None)
    ):
        return rows
    return {
        "kind": _KIND,
        "series": series,
        "name": rows.name if series else None,
        "names": list(names),
        "columns": columns,
    }


def rows_from_state(state):
    """The rows :func:`rows_to_state` made ``state`` of (anything else as it
    is)."""
    if not (isinstance(state, dict) and state.get("kind") == _KIND):
        return state
    import pandas as pd

    columns = [_column(pd, column) for column in state["columns"]]
    frame = pd.DataFrame(dict(enumerate(columns)))
    frame.columns = pd.Index(state["names"])
    if state["series"]:
        return frame.iloc[:, 0].rename(state["name"])
    return frame


def _column_state(pd, column) -> dict | None:
    """A column's values and dtype as numpy arrays and strings; None where
    it cannot be kept so."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _column_state(pd, pd.Series(dtype.categories))
        if categories is None:
            return None
        return {
            "codes": column.cat.codes.to_numpy(),
            "categories": categories,
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, np.dtype):
        if dtype.kind not in "biufcUSO":
            return None  # datetimes, timedeltas: kept as pandas objects
        values = column.to_numpy()
        if dtype.kind == "O" and not all(
            value is None or isinstance(value, str | int | float | bool)
            for value in values
        ):
            return None
        return {"dtype": None, "values": values}
    values = column.to_numpy(dtype=object, na_value=None)
    if isinstance(dtype, pd.StringDtype):
        # Its storage and missing value, which its name does not always say.
        missing_is_nan = dtype.na_value is not pd.NA
        return {"string": dtype.storage, "nan": missing_is_nan, "values": values}
    if dtype.name not in _NULLABLE:
        return None
    return {"dtype": str(dtype), "values": values}


def _column(pd, state):
    if "codes" in state:
        return pd.Categorical.from_codes(
            state["codes"],
            categories=pd.Index(_column(pd, state["categories"])),
            ordered=state["ordered"],
        )
    if "string" in state:
        dtype = (
            pd.StringDtype(state["string"], na_value=np.nan)
            if state["nan"]  # (pandas >= 2.3, which has such strings)
            else pd.StringDtype(state["string"])
        )
        return pd.array(list(state["values"]), dtype=dtype)
    if state["dtype"] is None:
        return state["values"]
    return pd.array(list(state["values"]), dtype=state["dtype"])
