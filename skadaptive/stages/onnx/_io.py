"""The model's input and output: rows in, probabilities (or a regressor's
predictions) out; option checks."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
from scipy.special import expit
from sklearn.utils import check_array

from ..._rowwise import softmax_rows
from ..._validation import StageOutputError

_OUTPUT_KINDS = ("auto", "proba", "logits")
# A row counts as probabilities under output_kind="auto" when it is
# non-negative and sums to 1 within this tolerance (float32 softmax sums are
# within about 1e-6 of 1).
_PROBA_TOL = 1e-4
# onnxruntime's type strings of the input tensors we can feed.
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")


# ----------------------------------------------------------------- options
def _check_classes(classes) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted ``classes_`` and the column order that sorts the model's columns."""
    if classes is None:
        raise ValueError(
            "classes is required: the labels of the model's output columns, in the "
            "model's column order (e.g. classes=list(range(10)))."
        )
    labels = np.asarray(classes)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"classes must be a non-empty 1-D list of labels; got {classes!r}."
        )
    try:
        order = np.argsort(labels, kind="stable")
    except TypeError as exc:
        raise ValueError(f"classes must be sortable labels; got {classes!r}.") from exc
    sorted_labels = labels[order]
    if labels.dtype.kind in "fc" and np.isnan(labels).any():
        raise ValueError(f"classes must be labels, not NaN; got {labels.tolist()}.")
    if np.any(sorted_labels[1:] == sorted_labels[:-1]):
        raise ValueError(f"classes must be unique; got {labels.tolist()}.")
    identity = np.array_equal(order, np.arange(len(order)))
    return sorted_labels, None if identity else order


def _check_options(output_kind, batch_size, intra, inter) -> None:
    """Check the run options; ``output_kind=None``: a model without one (a
    regressor's)."""
    if output_kind is not None and not (
        isinstance(output_kind, str) and output_kind in _OUTPUT_KINDS
    ):
        raise ValueError(
            f"output_kind must be one of {_OUTPUT_KINDS}; got {output_kind!r}."
        )
    for name, value, low in [
        ("batch_size", batch_size, 1),
        ("intra_op_num_threads", intra, 0),
        ("inter_op_num_threads", inter, 0),
    ]:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < low
        ):
            raise ValueError(f"{name} must be None or an int >= {low}; got {value!r}.")


# ------------------------------------------------------------------- input
@dataclass(frozen=True)
class _InputSpec:
    """What the model's input wants of each batch of rows."""

    name: str
    shape: tuple  # the model's declared shape, batch axis first
    dtype: type
    row_shape: tuple[int, ...] | None  # None: some row dimension is not fixed
    fixed_batch: int | None  # the batch size a model without a batch axis needs


def _format_shape(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _input_spec(name, shape, dtype, input_shape, owner) -> _InputSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in shape)
    if len(shape) == 0:
        raise ValueError(
            f"{owner}: model input {name!r} is a scalar; it needs a batch axis first."
        )
    batch, dims = shape[0], shape[1:]
    if input_shape is not None:
        if isinstance(input_shape, str | bytes):
            raise ValueError(
                f"input_shape must be a tuple of ints; got the string {input_shape!r}."
            )
        try:
            row_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"input_shape must be a tuple of ints; got {input_shape!r}."
            ) from exc
        if (
            any(d <= 0 for d in row_shape)
            or len(row_shape) != len(dims)
            or any(m is not None and m != r for m, r in zip(dims, row_shape))
        ):
            raise ValueError(
                f"input_shape={tuple(input_shape)} does not fit model input {name!r} "
                f"of shape {_format_shape(shape)}: give the shape of one row, "
                "without the batch axis."
            )
    elif all(d is not None for d in dims):
        row_shape = tuple(dims)
    else:
        row_shape = None
    return _InputSpec(name, shape, dtype, row_shape, batch)


def _whole_numbers(X, dtype: np.dtype, estimator) -> np.ndarray:
    """``X`` for a model whose input is integer: refused unless every value is
    a whole number its type holds (a cast would truncate 5.1 to 5, or wrap
    around, without a word)."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and any(
        getattr(t, "kind", "") in "iu" and not isinstance(t, np.dtype)
        for t in np.atleast_1d(dtypes)
    ):
        # pandas' nullable integers: check_array would read them as float64
        # (2**53 + 1 as 2**53); as objects they stay whole (pandas' NA then
        # reads as missing, and is refused).
        X = X.to_numpy(dtype=object, na_value=np.nan)
    values = check_array(
        X, allow_nd=True, dtype=None, estimator=estimator, input_name="X"
    )
    info = np.iinfo(dtype)
    if (
        values.dtype.kind == "O"
        and values.size
        and all(isinstance(v, int | np.integer) for v in values.flat)
    ):
        # Python ints, exactly (through float64, 2**53 + 1 would be 2**53).
        ints = [int(v) for v in values.flat]
        if min(ints) >= info.min and max(ints) <= info.max:
            return np.array(ints, dtype=dtype).reshape(values.shape)
        whole, in_range = True, False
    elif values.dtype.kind in "iu":
        # Compared as integers: through float64, 2**53 + 1 would be 2**53.
        whole = True
        in_range = values.size == 0 or (
            int(values.min()) >= info.min and int(values.max()) <= info.max
        )
    else:
        values = values.astype(np.float64)
        whole = bool(np.array_equal(values, np.round(values)))
        # The bound above is exclusive and exact in float64 (2**63 for int64,
        # whose largest value itself rounds up to 2**63 there).
        in_range = values.size == 0 or (
            values.min() >= info.min and values.max() < float(int(info.max) + 1)
        )
    if not whole or not in_range:
        raise ValueError(
            f"The model's input is of type {dtype}, and X has values that are "
            + ("not whole numbers" if not whole else f"beyond {dtype}'s range")
            + "; casting would change them. Give whole numbers in range, or "
            "export the model with a float input."
        )
    return values.astype(dtype)


def _prepare_rows(X, spec: _InputSpec, estimator=None) -> np.ndarray:
    """``X`` validated, cast and reshaped to ``(n_rows, *row_shape)``."""
    if np.dtype(spec.dtype).kind in "iu":
        X = _whole_numbers(X, np.dtype(spec.dtype), estimator)
    if (
        type(X) is np.ndarray
        and X.dtype.kind in "fiu"
        and X.ndim >= 2
        and X.shape[0] > 0
        and all(X.shape[1:])
    ):
        # A plain numeric array: what check_array would do, without its
        # dataframe and sparse inspection (most of a small network's run).
        given = X
        X = np.ascontiguousarray(X, dtype=spec.dtype)
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            if given.dtype.kind == "f" and not np.isfinite(given).all():
                owner = "the model" if estimator is None else type(estimator).__name__
                raise ValueError(
                    f"Input X contains NaN or infinity; {owner} needs finite values."
                )
            limit = np.finfo(X.dtype).max
            raise ValueError(
                f"Input X has finite values beyond the range of the model's input "
                f"type {X.dtype} (|x| > {limit:.3g}), which overflow when cast to "
                "it; scale or clip the inputs."
            )
    else:
        X = check_array(
            X,
            allow_nd=True,
            dtype=spec.dtype,
            order="C",
            estimator=estimator,
            input_name="X",
        )
    n_rows = X.shape[0]
    got = f"{X.shape[1]} features" if X.ndim == 2 else f"rows of shape {X.shape[1:]}"
    if spec.row_shape is not None:
        size = prod(spec.row_shape)
        if X.shape[1:] == spec.row_shape:
            return X
        if X.ndim == 2 and X.shape[1] == size:
            return X.reshape((n_rows, *spec.row_shape))
        raise ValueError(
            f"model input {spec.name!r} expects rows of shape {spec.row_shape} = "
            f"{size} values; got {got}."
        )
    dims = spec.shape[1:]
    if X.ndim == 1 + len(dims) and all(
        d is None or d == g for d, g in zip(dims, X.shape[1:])
    ):
        return X
    raise ValueError(
        f"model input {spec.name!r} has shape {_format_shape(spec.shape)}, whose row "
        f"dimensions are not all fixed, so {got} cannot be reshaped to it: pass "
        f"rows of {len(dims)} dimensions, or input_shape=(...) with the shape of "
        "one row."
    )


# ------------------------------------------------------------------ output
def _to_proba(raw, kind: str, order, n_classes: int, n_rows: int, output: str):
    """Model scores as float64 probabilities, columns in ``classes_`` order."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[0] != n_rows:
        raise StageOutputError(
            f"model output {output!r} has shape {raw.shape} for {n_rows} rows; "
            f"expected ({n_rows}, {n_classes}): one row of class scores per input row"
            + (
                f" (a binary model's one score per row is taken as ({n_rows}, 1): "
                "export the output with that shape)."
                if raw.ndim == 1 and n_classes == 2
                else "."
            )
        )
    if raw.shape[1] == 1 and n_classes == 2:
        # A binary model's one column: the second class's probability (a
        # sigmoid output) or its logit, as output_kind says.
        _check_one_column_kind(kind, output)
        second = raw[:, 0].astype(np.float64)
        if kind == "logits":
            second = expit(second)
        raw = np.column_stack([1.0 - second, second])
        kind = "proba"
    if raw.shape[1] != n_classes:
        raise ValueError(_columns_message(output, raw.shape[1], n_classes))
    scores = raw.astype(np.float64)
    if kind == "proba":
        proba = scores
    elif kind == "logits":
        proba = softmax_rows(scores)
    else:
        # Decided row by row, so a row's answer never depends on its batch.
        # A float16 output rounds each probability by up to half its spacing,
        # and a row's sum by about its width times that.
        tolerance = _PROBA_TOL
        if np.issubdtype(raw.dtype, np.floating):
            tolerance = max(tolerance, n_classes * float(np.finfo(raw.dtype).eps))
        is_proba = scores.min(axis=1) >= -tolerance
        if is_proba.any():  # (logits rows are rarely all non-negative)
            sums = scores[is_proba].sum(axis=1)
            is_proba[is_proba] = np.abs(sums - 1) <= tolerance
        proba = scores if is_proba.all() else softmax_rows(scores)
        if is_proba.any():
            kept = np.clip(scores[is_proba], 0, None)
            proba[is_proba] = kept / kept.sum(axis=1, keepdims=True)
    _check_answers(proba, kind, output)
    if kind == "proba":
        # Within the tolerance a row may hold a value a little below 0 or sum
        # a little off 1 (float32 arithmetic): answered as a probability, as
        # "auto" answers it.
        proba = np.clip(proba, 0, None)
        proba /= proba.sum(axis=1, keepdims=True)
    return proba if order is None else proba[:, order]


def _check_answers(values, kind: str, output: str) -> None:
    """Refuse rows the package must never answer from: values that are not
    finite, and (``output_kind="proba"``) rows that are not probabilities."""
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
    what = "values that are not finite (NaN or inf)"
    if kind == "proba" and not bad.any():
        bad = (values < -_PROBA_TOL).any(axis=1) | (
            np.abs(values.sum(axis=1) - 1) > _PROBA_TOL
        )
        what = "rows that are not probabilities (negative, or not summing to 1)"
    if bad.any():
        hint = (
            " output_kind='proba' says the output holds probabilities: pass "
            "output_kind='logits' (or 'auto') for scores."
            if kind == "proba"
            else ""
        )
        raise StageOutputError(
            f"model output {output!r} gave {what} in {int(bad.sum())} of "
            f"{len(values)} rows; no answer is given from them. Check the model "
            f"and its input.{hint}"
        )


def _check_one_column_kind(kind: str, output: str) -> None:
    """A binary model with one output column must say what the column is."""
    if kind == "auto":
        raise ValueError(
            f"model output {output!r} has one column for two classes: a binary "
            "model's score of its second class (the second of classes, in the "
            "model's order). Say which score it is: output_kind='proba' for a "
            "probability (a sigmoid output), or output_kind='logits' for a logit."
        )


def _columns_message(output: str, n_columns, n_classes: int) -> str:
    return (
        f"model output {output!r} has {n_columns} columns but classes has "
        f"{n_classes} labels: pass one label per output column, in the model's "
        "column order."
    )


def _to_predictions(raw, n_rows: int, output: str, owner: str) -> np.ndarray:
    """A regressor's model output as float64 predictions of shape ``(n_rows,)``.

    The output must hold one column: shape ``(n_rows, 1)`` or ``(n_rows,)``.
    """
    raw = np.asarray(raw)
    if raw.ndim == 2 and raw.shape[0] == n_rows and raw.shape[1] != 1:
        raise ValueError(_one_column_message(owner, output, raw.shape))
    if raw.shape not in ((n_rows,), (n_rows, 1)):
        raise StageOutputError(
            f"model output {output!r} has shape {raw.shape} for {n_rows} rows; "
            f"expected ({n_rows}, 1) or ({n_rows},): one prediction per input row."
        )
    predictions = raw.reshape(n_rows).astype(np.float64)
    _check_answers(predictions, "prediction", output)
    return predictions


def _one_column_message(owner: str, output: str, shape) -> str:
    shape = _format_shape(shape)
    return (
        f"{owner} needs a model with one output column (one prediction per row), "
        f"shape [N, 1] or [N]; model output {output!r} has shape {shape}. Export "
        "a single-target model, or pass output=<name> of a one-column output."
    )


def _pick_output(outputs, output, owner: str, what: str = "class scores", ranks=(2,)):
    """The session output (an onnxruntime ``NodeArg``) that holds ``what``.

    With ``output=None``, the model's only output, or its only float output of
    one of ``ranks`` (2: class scores; 1 or 2: a regressor's predictions).
    """
    described = ", ".join(
        f"{o.name!r} {o.type} {_format_shape(o.shape)}" for o in outputs
    )
    if output is None:
        if len(outputs) == 1:
            chosen = outputs[0]
        else:
            candidates = [
                o for o in outputs if o.type in _FLOAT_OUTPUTS and len(o.shape) in ranks
            ]
            if len(candidates) != 1:
                raise ValueError(
                    f"{owner}: the model has outputs {described}; pass "
                    f"output=<name> to say which holds the {what}."
                )
            chosen = candidates[0]
    else:
        by_name = {o.name: o for o in outputs}
        if output not in by_name:
            raise ValueError(
                f"output={output!r} is not an output of the model; its outputs are "
                f"{described}."
            )
        chosen = by_name[output]
    if chosen.type not in _FLOAT_OUTPUTS:
        hint = (
            " (a ZipMap of a converted scikit-learn model: convert it with "
            "options={'zipmap': False})"
            if chosen.type.startswith("seq")
            else ""
        )
        raise ValueError(
            f"model output {chosen.name!r} has type {chosen.type}{hint}; the "
            f"{what} must be a float tensor. The model's outputs: {described}."
        )
    return chosen
