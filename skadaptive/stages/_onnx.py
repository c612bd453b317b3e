"""ONNX models as stages, on the CPU or a GPU.

:class:`OnnxClassifier` is a scikit-learn classifier over an already-trained
ONNX model: put it (or a ``FrozenEstimator`` of it) in an
:class:`~skadaptive.AdaptiveCascadeClassifier` next to any other stage.

:class:`OnnxMultiExit` turns one ONNX network with several classifier heads into
a :class:`~skadaptive.stages._multi_exit.MultiExitSource`. A single ONNX graph
cannot stop early -- fetching only an early output still runs everything the
graph computes -- so the graph is split into one ``InferenceSession`` per exit:
segment ``k`` computes only what exit ``k`` needs beyond the earlier segments,
and the tensors that later segments read are handed on as the state. With the
CUDA execution provider the handed-on tensors stay on the GPU (onnxruntime IO
binding); only each exit's small score matrix is copied to the host.

Both need ``onnxruntime`` (``pip install "skadaptive[onnx]"``, or
``"skadaptive[gpu]"`` for ``onnxruntime-gpu``; the two must not be installed
together). :class:`OnnxMultiExit` also needs the ``onnx`` package to split the
graph. Neither is imported until a model is first used.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    _num_samples,
    check_consistent_length,
)

from ._multi_exit import MultiExitSource

__all__ = ["OnnxClassifier", "OnnxMultiExit"]

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
_INSTALL_HINT = (
    'pip install "skadaptive[onnx]" (onnxruntime, CPU) or pip install '
    '"skadaptive[gpu]" (onnxruntime-gpu, CUDA) -- one of the two, never both'
)
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
# Operators whose output is not a function of their inputs: never treated as
# constants that may be recomputed in several segments.
_RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


# ----------------------------------------------------------------- imports
def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"ONNX stages need onnxruntime, which is not installed: {_INSTALL_HINT}."
        ) from exc
    return onnxruntime


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "OnnxMultiExit splits the network with the onnx package, which is not "
            f"installed: {_INSTALL_HINT}."
        ) from exc
    return onnx


# ------------------------------------------------------------------ models
def _read_model(model) -> tuple[bytes, str]:
    """The model's bytes and a description of it for error messages."""
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model), "the given ONNX model bytes"
    if isinstance(model, str | os.PathLike):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model file not found: {path!r}.")
        with open(path, "rb") as file:
            return file.read(), f"ONNX model file {path!r}"
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return serialize(), "the given ONNX ModelProto"
    raise TypeError(
        "model must be the path of an .onnx file, the model's bytes or an "
        f"onnx.ModelProto; got {type(model).__name__}."
    )


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
    if np.any(sorted_labels[1:] == sorted_labels[:-1]):
        raise ValueError(f"classes must be unique; got {labels.tolist()}.")
    identity = np.array_equal(order, np.arange(len(order)))
    return sorted_labels, None if identity else order


def _check_options(output_kind, batch_size, intra, inter) -> None:
    if not (isinstance(output_kind, str) and output_kind in _OUTPUT_KINDS):
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


# --------------------------------------------------------------- providers
def _requested_providers(ort, providers) -> tuple[list, bool]:
    """The provider list for onnxruntime, and whether the user named it."""
    if isinstance(providers, str):
        if providers == "auto":
            available = ort.get_available_providers()
            return ([_CUDA, _CPU] if _CUDA in available else [_CPU]), False
        providers = [providers]
    valid = isinstance(providers, Sequence) and len(providers) > 0
    if valid:
        for item in providers:
            if not (
                isinstance(item, str)
                or (
                    isinstance(item, tuple)
                    and len(item) == 2
                    and isinstance(item[0], str)
                    and isinstance(item[1], dict)
                )
            ):
                valid = False
    if not valid:
        raise ValueError(
            "providers must be 'auto' or a list of onnxruntime execution provider "
            "names or (name, options) tuples, e.g. ['CUDAExecutionProvider', "
            f"'CPUExecutionProvider']; got {providers!r}."
        )
    return list(providers), True


def _provider_name(provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


def _create_session(ort, data: bytes, description: str, requested, intra, inter):
    options = ort.SessionOptions()
    if intra is not None:
        options.intra_op_num_threads = int(intra)
    if inter is not None:
        options.inter_op_num_threads = int(inter)
    try:
        return ort.InferenceSession(data, sess_options=options, providers=requested)
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        raise ValueError(
            f"{description} is not an ONNX model that onnxruntime {ort.__version__} "
            f"can load: {exc}"
        ) from exc


def _check_providers(ort, requested, explicit: bool, session, owner: str) -> None:
    """Warn or fail where the session did not get the providers asked for.

    With ``providers="auto"`` the session is used as it comes: CUDA where it
    could be set up, else the CPU.
    """
    if not explicit:
        return
    got = session.get_providers()
    asked = [_provider_name(p) for p in requested]
    missing = [p for p in asked if p not in got]
    if not missing:
        return
    message = (
        f"{owner} asked for execution providers {asked} but the onnxruntime session "
        f"got {got}: {', '.join(missing)} could not be used (onnxruntime "
        f"{ort.__version__} lists {ort.get_available_providers()} as available)"
    )
    if _CPU in asked:
        warnings.warn(f"{message}; running on {got}.", UserWarning, stacklevel=5)
        return
    raise RuntimeError(
        f"{message}. For CUDA install onnxruntime-gpu (pip install "
        '"skadaptive[gpu]", without the CPU onnxruntime) with matching CUDA and '
        "cuDNN libraries, or add 'CPUExecutionProvider' to providers to fall back "
        "to the CPU with a warning."
    )


def _cuda_device_id(requested) -> int:
    for provider in requested:
        if _provider_name(provider) == _CUDA and not isinstance(provider, str):
            return int(provider[1].get("device_id", 0))
    return 0


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


def _prepare_rows(X, spec: _InputSpec, estimator=None) -> np.ndarray:
    """``X`` validated, cast and reshaped to ``(n_rows, *row_shape)``."""
    if (
        type(X) is np.ndarray
        and X.dtype.kind in "fiu"
        and X.ndim >= 2
        and X.shape[0] > 0
        and all(X.shape[1:])
    ):
        # A plain numeric array: what check_array would do, without its
        # dataframe and sparse inspection (most of a small network's run).
        X = np.ascontiguousarray(X, dtype=spec.dtype)
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise ValueError(
                f"Input X contains NaN or infinity; {type(estimator).__name__} "
                "needs finite values."
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
        raise ValueError(
            f"model output {output!r} has shape {raw.shape} for {n_rows} rows; "
            f"expected ({n_rows}, {n_classes}): one row of class scores per input row."
        )
    if raw.shape[1] != n_classes:
        raise ValueError(_columns_message(output, raw.shape[1], n_classes))
    scores = raw.astype(np.float64)
    if kind == "proba":
        proba = scores
    elif kind == "logits":
        proba = _softmax(scores)
    else:
        # Decided row by row, so a row's answer never depends on its batch.
        is_proba = scores.min(axis=1) >= -_PROBA_TOL
        if is_proba.any():  # (logits rows are rarely all non-negative)
            sums = scores[is_proba].sum(axis=1)
            is_proba[is_proba] = np.abs(sums - 1) <= _PROBA_TOL
        proba = scores if is_proba.all() else _softmax(scores.copy())
        if is_proba.any():
            kept = np.clip(scores[is_proba], 0, None)
            proba[is_proba] = kept / kept.sum(axis=1, keepdims=True)
    return proba if order is None else proba[:, order]


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a float64 array, computed in place."""
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


def _columns_message(output: str, n_columns, n_classes: int) -> str:
    return (
        f"model output {output!r} has {n_columns} columns but classes has "
        f"{n_classes} labels: pass one label per output column, in the model's "
        "column order."
    )


def _pick_output(outputs, output, owner: str):
    """The session output (an onnxruntime ``NodeArg``) that holds class scores."""
    described = ", ".join(
        f"{o.name!r} {o.type} {_format_shape(o.shape)}" for o in outputs
    )
    if output is None:
        if len(outputs) == 1:
            chosen = outputs[0]
        else:
            candidates = [
                o for o in outputs if o.type in _FLOAT_OUTPUTS and len(o.shape) == 2
            ]
            if len(candidates) != 1:
                raise ValueError(
                    f"{owner}: the model has outputs {described}; pass "
                    "output=<name> to say which holds the class scores."
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
            f"model output {chosen.name!r} has type {chosen.type}{hint}; the class "
            f"scores must be a float tensor. The model's outputs: {described}."
        )
    return chosen


# ---------------------------------------------------------- OnnxClassifier
@dataclass
class _ClassifierRuntime:
    session: Any
    input: _InputSpec
    output: str
    n_columns: int | None
    classes: np.ndarray
    order: np.ndarray | None
    providers: list[str]


class _LazyRuntime:
    """Creates the onnxruntime sessions on first use, once, under ``_lock``.

    Subclasses set ``_lock`` and ``_runtime = None`` and define
    ``_build_runtime``; sessions are never pickled, so they are built again
    after unpickling.
    """

    def _get_runtime(self):
        runtime = self._runtime
        if runtime is not None:
            return runtime
        with self._lock:
            if self._runtime is None:
                self._runtime = self._build_runtime()
            return self._runtime


class OnnxClassifier(_LazyRuntime, ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier over an already-trained ONNX model.

    ``fit`` never trains: it checks the model, the rows and the labels, so the
    classifier can be used as it is, wrapped in
    :class:`~sklearn.frozen.FrozenEstimator`, or cloned and "fitted" by a
    cascade. The model is trained already, so the classifier counts as fitted
    from the start (``predict_proba`` works without ``fit``).

    Parameters
    ----------
    model : str, path-like, bytes or onnx.ModelProto
        The ONNX model: a file path, or its serialised bytes. The bytes are
        read on first use and kept, so a pickled classifier does not need the
        file any more.
    classes : array-like of shape (n_classes,)
        The label of each column of the model's output, in the model's column
        order. ``classes_`` is their sorted order, and ``predict_proba``
        columns follow it.
    output : str, default=None
        Name of the output that holds the class scores. ``None``: the model's
        only output, or its only 2-D float output.
    output_kind : {"auto", "proba", "logits"}, default="auto"
        What the output holds. ``"logits"``: raw scores (or log-probabilities),
        turned into probabilities by a softmax. ``"proba"``: probabilities,
        used as they are. ``"auto"``: decided row by row -- a row that is
        non-negative and sums to 1 (within 1e-4) is taken as probabilities,
        any other row as logits; name the kind to rule out ambiguity.
    input_shape : tuple of int, default=None
        Shape of one row as the model wants it, without the batch axis, e.g.
        ``(1, 8, 8)``. Needed only when the model does not declare fixed row
        dimensions. Rows given flat (``n_rows x prod(input_shape)``) are
        reshaped to it; rows given in that shape are used as they are.
    providers : "auto" or list, default="auto"
        onnxruntime execution providers. ``"auto"``: CUDA when onnxruntime
        lists ``CUDAExecutionProvider`` and the session really gets it, else
        the CPU. A list (names or ``(name, options)`` tuples) is passed on; a
        provider the session did not get raises a ``UserWarning`` when
        ``"CPUExecutionProvider"`` is in the list, else a ``RuntimeError``.
    batch_size : int, default=None
        Rows per call to the model; ``None`` runs all rows at once. A model
        whose batch axis is fixed (exported for batches of, say, 1) is always
        called with that many rows, the last batch padded with zeros.
    intra_op_num_threads, inter_op_num_threads : int, default=None
        onnxruntime thread pool sizes; ``None`` leaves onnxruntime's defaults.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Sorted labels, the columns of ``predict_proba``.
    n_features_in_ : int
        Values per row (``prod`` of the row shape), set by ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Set by ``fit`` when ``X`` has feature names.
    providers_ : list of str
        The execution providers the onnxruntime session got.

    Notes
    -----
    ``predict_proba`` may be called from several threads at once: onnxruntime
    sessions run concurrently, and the session is created once, under a lock.
    The session is not pickled; it is created again on first use after
    unpickling (on the providers available there).

    Examples
    --------
    A logistic regression exported as a one-node ONNX graph (``Gemm``):

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> _ = pytest.importorskip("onnxruntime")
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skadaptive.stages import OnnxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> lr = LogisticRegression(max_iter=1000).fit(X, y)
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Gemm", ["x", "W", "b"], ["logits"], transB=1)],
    ...     "iris",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
    ...     [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
    ...     [numpy_helper.from_array(lr.coef_.astype(np.float32), "W"),
    ...      numpy_helper.from_array(lr.intercept_.astype(np.float32), "b")],
    ... )
    >>> model = helper.make_model(
    ...     graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ... )
    >>> clf = OnnxClassifier(model.SerializeToString(), classes=[0, 1, 2])
    >>> clf = clf.fit(X, y)  # checks only: nothing is trained
    >>> bool(np.allclose(clf.predict_proba(X), lr.predict_proba(X), atol=1e-5))
    True
    >>> bool((clf.predict(X) == lr.predict(X)).all())
    True
    """

    def __init__(
        self,
        model,
        *,
        classes,
        output: str | None = None,
        output_kind: str = "auto",
        input_shape: tuple[int, ...] | None = None,
        providers="auto",
        batch_size: int | None = None,
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ):
        self.model = model
        self.classes = classes
        self.output = output
        self.output_kind = output_kind
        self.input_shape = input_shape
        self.providers = providers
        self.batch_size = batch_size
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        # Not parameters: the lazily created session and the lock guarding it.
        self._lock = threading.Lock()
        self._runtime = None
        self._model_data = None

    # ------------------------------------------------------------ runtime
    def _build_runtime(self) -> _ClassifierRuntime:
        owner = type(self).__name__
        classes, order = _check_classes(self.classes)
        _check_options(
            self.output_kind,
            self.batch_size,
            self.intra_op_num_threads,
            self.inter_op_num_threads,
        )
        ort = _import_onnxruntime()
        requested, explicit = _requested_providers(ort, self.providers)
        if self._model_data is None:
            self._model_data = _read_model(self.model)
        data, description = self._model_data
        session = _create_session(
            ort,
            data,
            description,
            requested,
            self.intra_op_num_threads,
            self.inter_op_num_threads,
        )
        _check_providers(ort, requested, explicit, session, owner)
        inputs = session.get_inputs()
        if len(inputs) != 1:
            described = ", ".join(
                f"{i.name!r} {i.type} {_format_shape(i.shape)}" for i in inputs
            )
            raise ValueError(
                f"{owner} feeds a single input tensor, but {description} has "
                f"{len(inputs)} inputs: {described}. Export the model with one "
                "input (e.g. the features concatenated), or wrap it in a model "
                "that has one."
            )
        node = inputs[0]
        if node.type not in _ORT_DTYPES:
            raise ValueError(
                f"model input {node.name!r} has type {node.type}; {owner} feeds "
                f"{', '.join(_ORT_DTYPES)} tensors."
            )
        spec = _input_spec(
            node.name, node.shape, _ORT_DTYPES[node.type], self.input_shape, owner
        )
        output = _pick_output(session.get_outputs(), self.output, owner)
        n_columns = None
        if len(output.shape) == 2 and isinstance(output.shape[1], int):
            n_columns = output.shape[1]
            if n_columns != len(classes):
                raise ValueError(_columns_message(output.name, n_columns, len(classes)))
        return _ClassifierRuntime(
            session=session,
            input=spec,
            output=output.name,
            n_columns=n_columns,
            classes=classes,
            order=order,
            providers=list(session.get_providers()),
        )

    def _reset_runtime(self) -> None:
        with self._lock:
            self._runtime = None
            self._model_data = None

    # ------------------------------------------------------- sklearn API
    @property
    def classes_(self) -> np.ndarray:
        """Sorted labels: the columns of :meth:`predict_proba`."""
        runtime = self._runtime
        if runtime is not None:
            return runtime.classes
        return _check_classes(self.classes)[0]

    @property
    def providers_(self) -> list[str]:
        """Execution providers of the onnxruntime session, in priority order."""
        return list(self._get_runtime().providers)

    def __sklearn_is_fitted__(self) -> bool:
        # The ONNX model is trained already; fit only checks inputs.
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def set_params(self, **params):
        """Set parameters; the model is read and the session created again.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : OnnxClassifier
        """
        super().set_params(**params)
        self._reset_runtime()
        return self

    def _validate_rows(self, X, runtime: _ClassifierRuntime, reset: bool):
        plain = type(X) is np.ndarray and not hasattr(self, "feature_names_in_")
        if (reset or hasattr(self, "n_features_in_")) and not plain:
            # (an ndarray has no column names to check against none)
            _check_feature_names(self, X, reset=reset)
        rows = _prepare_rows(X, runtime.input, estimator=self)
        if reset:
            self.n_features_in_ = int(prod(rows.shape[1:]))
        return rows

    def fit(self, X, y) -> OnnxClassifier:
        """Check the model, the rows and the labels; nothing is trained.

        The model file is read again and its session created, so a changed
        file is picked up.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or ``(n_samples, *row_shape)``
            Rows as :meth:`predict_proba` takes them.
        y : array-like of shape (n_samples,)
            Labels; each must be one of ``classes``.

        Returns
        -------
        self : OnnxClassifier
        """
        self._reset_runtime()
        runtime = self._get_runtime()
        rows = self._validate_rows(X, runtime, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(rows, y)
        check_classification_targets(y)
        labels = np.unique(y)
        unknown = labels[~np.isin(labels, runtime.classes)]
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that the model does not "
                f"predict: its classes are {runtime.classes.tolist()}."
            )
        if runtime.n_columns is None:
            # The output width is not declared: check it on one row.
            self._predict_rows(runtime, rows[:1])
        return self

    def _predict_rows(self, runtime: _ClassifierRuntime, rows: np.ndarray):
        n_rows = rows.shape[0]
        step = runtime.input.fixed_batch or self.batch_size or n_rows
        proba = np.empty((n_rows, len(runtime.classes)))
        for start in range(0, n_rows, step):
            chunk = rows[start : start + step]
            n_chunk = chunk.shape[0]
            if runtime.input.fixed_batch and n_chunk < step:
                padding = np.zeros((step - n_chunk, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            raw = runtime.session.run([runtime.output], {runtime.input.name: chunk})[0]
            proba[start : start + n_chunk] = _to_proba(
                raw[:n_chunk] if runtime.input.fixed_batch else raw,
                self.output_kind,
                runtime.order,
                len(runtime.classes),
                n_chunk,
                runtime.output,
            )
        return proba

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities from the model, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or ``(n_samples, *row_shape)``
            Flat rows are reshaped to the model's row shape; values are cast
            to the model's input type (float32 for most networks).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            float64.
        """
        runtime = self._get_runtime()
        return self._predict_rows(runtime, self._validate_rows(X, runtime, False))

    def predict(self, X) -> np.ndarray:
        """Most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or ``(n_samples, *row_shape)``

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(super().__getstate__())
        if state.get("_model_data") is None:
            try:
                state["_model_data"] = _read_model(self.model)
            except (OSError, TypeError):
                pass  # reported on first use after unpickling
        state.pop("_lock", None)
        state.pop("_runtime", None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("_model_data", None)
        super().__setstate__(state)
        self._lock = threading.Lock()
        self._runtime = None


# ------------------------------------------------------------ graph split
def _subgraph_free_names(graph) -> set[str]:
    """Names a subgraph (of ``If``, ``Loop``, ``Scan``) reads from outside."""
    defined = {i.name for i in graph.input}
    defined.update(t.name for t in graph.initializer)
    defined.update(t.values.name for t in graph.sparse_initializer)
    free: set[str] = set()
    for node in graph.node:
        free.update(name for name in _node_inputs(node) if name not in defined)
        defined.update(node.output)
    free.update(o.name for o in graph.output if o.name not in defined)
    return free


def _node_inputs(node) -> list[str]:
    """The tensors a node reads, including those its subgraphs read."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        subgraphs = ([attribute.g] if attribute.HasField("g") else []) + list(
            attribute.graphs
        )
        for subgraph in subgraphs:
            names.extend(sorted(_subgraph_free_names(subgraph)))
    return names


def _has_subgraph(node) -> bool:
    return any(a.HasField("g") or len(a.graphs) for a in node.attribute)


def _dims(value_info) -> tuple | None:
    """Dimensions of a tensor value info (None for unknown ones), or None."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(
        d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
    )


def _node_macs(node, shapes: dict) -> int | None:
    """Multiply-accumulates per row of a Conv, Gemm or MatMul node.

    ``None`` when a shape it needs is unknown; 0 for other operators.
    """

    def known(name):
        dims = shapes.get(name)
        return dims if dims is not None and all(d is not None for d in dims) else None

    def known_after_batch(name):
        dims = shapes.get(name)
        if dims is None or len(dims) < 1 or any(d is None for d in dims[1:]):
            return None
        return dims[1:]

    if node.op_type == "Conv":
        weight, out = known(node.input[1]), known_after_batch(node.output[0])
        if weight is None or out is None:
            return None
        return int(prod(out) * prod(weight[1:]))
    if node.op_type == "Gemm":
        weight = known(node.input[1])
        return None if weight is None else int(prod(weight))
    if node.op_type == "MatMul":
        left, out = shapes.get(node.input[0]), known_after_batch(node.output[0])
        if left is None or len(left) < 2 or left[-1] is None or out is None:
            return None
        return int(prod(out) * left[-1])
    return 0


@dataclass
class _Segment:
    """One part of the split graph: what it reads, returns and hands on."""

    model: bytes
    exit: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # the exit first, then the tensors it hands on
    carry: frozenset[str]  # tensors later segments read, kept in the state
    n_nodes: int
    macs: int | None


def _split_graph(onnx, proto, exit_outputs, n_classes: int, description: str):
    """Split ``proto`` into one model per exit; see :class:`OnnxMultiExit`."""
    graph = proto.graph
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(
                f"{description} keeps its weights in external data files; "
                "OnnxMultiExit needs a self-contained model (under 2 GB)."
            )
    initializers = {t.name for t in graph.initializer}
    initializers.update(t.values.name for t in graph.sparse_initializer)
    graph_inputs = [i for i in graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        raise ValueError(
            f"{description} has {len(graph_inputs)} inputs "
            f"{[i.name for i in graph_inputs]}; OnnxMultiExit feeds one input tensor."
        )
    graph_input = graph_inputs[0].name
    nodes = list(graph.node)
    node_inputs = [_node_inputs(node) for node in nodes]
    producer = {out: k for k, node in enumerate(nodes) for out in node.output if out}

    # Tensors that do not depend on the input (weights, Constant nodes and what
    # is computed from them alone) are recomputed in each segment that needs
    # them rather than handed on: they have no batch axis to select rows from.
    constant = set(initializers)
    is_constant = []
    for node, names in zip(nodes, node_inputs):
        flag = (
            node.op_type not in _RANDOM_OPS
            and node.domain in ("", "ai.onnx")
            and not _has_subgraph(node)
            and all(name in constant for name in names)
        )
        is_constant.append(flag)
        if flag:
            constant.update(out for out in node.output if out)

    graph_outputs = [o.name for o in graph.output]
    for name in exit_outputs:
        if name not in producer or is_constant[producer[name]]:
            raise ValueError(
                f"exit output {name!r} is not computed from the input by "
                f"{description}; its outputs are {graph_outputs}."
            )

    def ancestors(names, through_constants_only=False) -> set[int]:
        found: set[int] = set()
        stack = list(names)
        while stack:
            k = producer.get(stack.pop())
            if k is None or k in found:
                continue
            if through_constants_only and not is_constant[k]:
                continue
            found.add(k)
            stack.extend(node_inputs[k])
        return found

    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False)
    except Exception:  # the split still works where the model declares types
        inferred = proto
    value_infos = {}
    for value_info in [
        *inferred.graph.value_info,
        *inferred.graph.input,
        *inferred.graph.output,
    ]:
        value_infos[value_info.name] = value_info
    shapes = {name: _dims(vi) for name, vi in value_infos.items()}
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})

    def value_info(name, k):
        info = value_infos.get(name)
        if info is None or not info.type.tensor_type.elem_type:
            raise ValueError(
                f"ONNX shape inference could not tell the type of tensor {name!r}, "
                f"which segment {k} of {description} reads or returns; give the "
                "model value_info for it (e.g. run onnx.shape_inference on it)."
            )
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(info)
        return copy

    computed: set[int] = set()
    plans = []
    for k, name in enumerate(exit_outputs):
        own = {i for i in ancestors([name]) if not is_constant[i] and i not in computed}
        if not own:
            raise ValueError(
                f"exit {name!r} needs nothing beyond what the exits before it "
                f"({list(exit_outputs[:k])}) compute: list exit_outputs in the "
                "order the network computes them."
            )
        computed |= own
        needed = {t for i in own for t in node_inputs[i]}
        members = sorted(own | ancestors(needed, through_constants_only=True))
        produced = {out for i in members for out in nodes[i].output if out}
        reads = []
        for i in members:
            for t in node_inputs[i]:
                if t not in produced and t not in initializers and t not in reads:
                    reads.append(t)
        plans.append((name, members, produced, reads))

    segments = []
    for k, (name, members, _produced, reads) in enumerate(plans):
        carry = frozenset(t for plan in plans[k + 1 :] for t in plan[3])
        hand_on = [
            out
            for i in members
            for out in nodes[i].output
            if out and out in carry and out != name
        ]
        outputs = [name, *hand_on]
        for t in reads:
            assert t == graph_input or any(t in p[2] for p in plans[:k]), t
        used = {t for i in members for t in node_inputs[i]}
        segment_graph = onnx.helper.make_graph(
            [nodes[i] for i in members],
            f"{graph.name or 'graph'}_exit{k}",
            [value_info(t, k) for t in reads],
            [value_info(t, k) for t in outputs],
            initializer=[t for t in graph.initializer if t.name in used],
            sparse_initializer=[
                t for t in graph.sparse_initializer if t.values.name in used
            ],
        )
        segment = onnx.ModelProto(
            ir_version=proto.ir_version,
            producer_name="skadaptive",
            graph=segment_graph,
        )
        segment.opset_import.extend(proto.opset_import)
        segment.functions.extend(proto.functions)
        macs = [_node_macs(nodes[i], shapes) for i in members]
        segments.append(
            _Segment(
                model=segment.SerializeToString(),
                exit=name,
                inputs=tuple(reads),
                outputs=tuple(outputs),
                carry=carry,
                n_nodes=len(members),
                macs=None if any(m is None for m in macs) else int(sum(macs)),
            )
        )
        dims = shapes.get(name)
        if dims is not None and len(dims) == 2 and dims[1] not in (None, n_classes):
            raise ValueError(_columns_message(name, dims[1], n_classes))
    hand_on_types = {
        value_infos[t].type.tensor_type.elem_type
        for s in segments
        for t in s.outputs[1:]
    }
    return graph_inputs[0], segments, hand_on_types


def _gather_model(onnx, elem_type: int) -> bytes:
    """A model selecting rows (``Gather`` on axis 0) of a tensor of one type."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Gather", ["data", "rows"], ["selected"], axis=0)],
        "skadaptive_keep_rows",
        [
            helper.make_tensor_value_info("data", elem_type, None),
            helper.make_tensor_value_info("rows", onnx.TensorProto.INT64, ["k"]),
        ],
        [helper.make_tensor_value_info("selected", elem_type, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # the IR version of opset 13, read by any onnxruntime
    return model.SerializeToString()


# ----------------------------------------------------------- OnnxMultiExit
@dataclass
class _OnnxExitState:
    """Rows still running and the tensors later segments read, for those rows.

    A tensor is a numpy array, or an ``onnxruntime.OrtValue`` on the session's
    device when IO binding is used.
    """

    n_rows: int
    tensors: dict = field(default_factory=dict)


@dataclass
class _ExitRuntime:
    ort: Any
    sessions: list
    providers: list[str]
    device: tuple[str, int]
    io_binding: bool
    gathers: dict
    unsplit: Any = None


class OnnxMultiExit(_LazyRuntime, MultiExitSource):
    """Exits of one ONNX network with several classifier heads, run apart.

    The graph is split into one onnxruntime session per exit. Segment ``k``
    holds the nodes exit ``k`` needs that no earlier exit needs; the tensors it
    reads from earlier segments (and the input, where a later part reads it)
    are found from the graph and carried in the state, so a row that exits at
    ``k`` never pays for the later segments and a row that goes on never
    recomputes the earlier ones. Nodes that depend on no input (weights,
    constants) are recomputed in each segment that needs them.

    Parameters
    ----------
    model : str, path-like, bytes or onnx.ModelProto
        The network, one ONNX graph with one input (batch axis first, dynamic)
        and an output per exit.
    exit_outputs : list of str
        The exits' output names, in the order the network computes them.
    classes : array-like of shape (n_classes,)
        Label of each output column, in the model's column order (the same at
        every exit). ``classes_`` is their sorted order.
    output_kind : {"auto", "proba", "logits"}, default="auto"
        What every exit outputs; as in :class:`OnnxClassifier`.
    input_shape : tuple of int, default=None
        Shape of one row without the batch axis, where the model does not
        declare it; as in :class:`OnnxClassifier`.
    providers : "auto" or list, default="auto"
        onnxruntime execution providers; as in :class:`OnnxClassifier`.
    io_binding : "auto" or bool, default="auto"
        Run the segments with onnxruntime IO binding, keeping the handed-on
        tensors as ``OrtValue`` s on the session's device; rows are selected
        on the device too (a one-node ``Gather`` session). Only each exit's
        scores are copied to the host. ``"auto"``: on when the sessions got
        the CUDA provider. ``True`` also works on the CPU (the same code path,
        for testing); ``False`` hands numpy arrays on (on a GPU this copies
        every handed-on tensor to the host and back).
    intra_op_num_threads, inter_op_num_threads : int, default=None
        onnxruntime thread pool sizes of each session.

    Attributes
    ----------
    n_stages : int
    classes_ : ndarray of shape (n_classes,)
    exit_outputs : tuple of str
    input_name : str
        The graph input fed at the first exit.
    segment_inputs : list of tuple of str
        Tensors each segment reads: the graph input or earlier segments' ones.
    segment_outputs : list of tuple of str
        What each segment returns: its exit's scores, then the tensors it
        hands on to later segments.
    segment_macs : ndarray of shape (n_stages,) or None
        Multiply-accumulates per row of each segment's ``Conv``, ``Gemm`` and
        ``MatMul`` nodes (from the static shapes onnx shape inference finds;
        other operators count 0). ``None`` when a shape needed is unknown.
    providers_ : list of str
        The execution providers the sessions got.

    Notes
    -----
    Only the CPU provider is tested here; the CUDA path is the same code with
    the device set to ``"cuda"``. Each run with IO binding synchronises the
    device at its end (onnxruntime's default), so handed-on tensors are ready
    for the next segment. The sessions are not pickled; they are created again
    on first use after unpickling. ``run_stage`` and ``keep_rows`` may be
    called from several threads at once.

    Examples
    --------
    A two-exit network: a hidden layer with a head, then a second layer with
    another head.

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> _ = pytest.importorskip("onnxruntime")
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> from skadaptive.stages import OnnxMultiExit
    >>> rng = np.random.RandomState(0)
    >>> weights = {name: rng.normal(size=shape).astype(np.float32) for name, shape
    ...            in [("W1", (4, 8)), ("H1", (8, 3)), ("W2", (8, 8)), ("H2", (8, 3))]}
    >>> nodes = [
    ...     helper.make_node("MatMul", ["x", "W1"], ["a1"]),
    ...     helper.make_node("Relu", ["a1"], ["h1"]),
    ...     helper.make_node("MatMul", ["h1", "H1"], ["exit1"]),
    ...     helper.make_node("MatMul", ["h1", "W2"], ["a2"]),
    ...     helper.make_node("Relu", ["a2"], ["h2"]),
    ...     helper.make_node("MatMul", ["h2", "H2"], ["exit2"]),
    ... ]
    >>> graph = helper.make_graph(
    ...     nodes, "two_exits",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
    ...     [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3])
    ...      for name in ["exit1", "exit2"]],
    ...     [numpy_helper.from_array(w, name) for name, w in weights.items()],
    ... )
    >>> model = helper.make_model(
    ...     graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ... )
    >>> source = OnnxMultiExit(
    ...     model, exit_outputs=["exit1", "exit2"], classes=["a", "b", "c"]
    ... )
    >>> source.segment_inputs, source.segment_outputs
    ([('x',), ('h1',)], [('exit1', 'h1'), ('exit2',)])
    >>> source.default_costs()
    array([56., 88.])
    >>> X = rng.normal(size=(5, 4))
    >>> proba1, state = source.run_stage(0, X, None)
    >>> goes_on = proba1.max(axis=1) < 0.9
    >>> state = source.keep_rows(state, goes_on)
    >>> proba2, _ = source.run_stage(1, X[goes_on], state)
    >>> unsplit = source.run_unsplit(X)
    >>> bool(np.allclose(proba2, unsplit[1][goes_on], atol=1e-6))
    True
    """

    def __init__(
        self,
        model,
        *,
        exit_outputs: Sequence[str],
        classes,
        output_kind: str = "auto",
        input_shape: tuple[int, ...] | None = None,
        providers="auto",
        io_binding: bool | str = "auto",
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ):
        onnx = _import_onnx()
        ort = _import_onnxruntime()
        owner = type(self).__name__
        _check_options(output_kind, None, intra_op_num_threads, inter_op_num_threads)
        if not (io_binding == "auto" or isinstance(io_binding, bool)):
            raise ValueError(
                f"io_binding must be 'auto', True or False; got {io_binding!r}."
            )
        _requested_providers(ort, providers)  # checks the format only
        if isinstance(exit_outputs, str) or not all(
            isinstance(name, str) for name in exit_outputs
        ):
            raise ValueError(
                f"exit_outputs must be a list of output names; got {exit_outputs!r}."
            )
        exit_outputs = tuple(exit_outputs)
        if len(exit_outputs) == 0 or len(set(exit_outputs)) != len(exit_outputs):
            raise ValueError(
                "exit_outputs must name at least one output, each once; got "
                f"{list(exit_outputs)}."
            )
        self.classes_, self._order = _check_classes(classes)
        data, description = _read_model(model)
        try:
            proto = onnx.load_from_string(data)
        except Exception as exc:
            raise ValueError(f"{description} is not an ONNX model: {exc}") from exc
        graph_input, segments, hand_on_types = _split_graph(
            onnx, proto, exit_outputs, len(self.classes_), description
        )
        tensor_type = graph_input.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).type
        if dtype not in _ORT_DTYPES.values():
            raise ValueError(
                f"model input {graph_input.name!r} has type {np.dtype(dtype)}; "
                f"{owner} feeds float32, float64, float16, int32 or int64 tensors."
            )
        dims = _dims(graph_input) or ()
        self._input = _input_spec(graph_input.name, dims, dtype, input_shape, owner)
        if self._input.fixed_batch is not None:
            raise ValueError(
                f"model input {graph_input.name!r} has a fixed batch size "
                f"({self._input.fixed_batch}); {owner} passes on only the rows that "
                "continue, so it needs a dynamic batch axis (e.g. torch.onnx.export "
                "with dynamic_axes={'input': {0: 'batch'}, ...})."
            )
        self.exit_outputs = exit_outputs
        self.output_kind = output_kind
        self.input_shape = input_shape
        self.providers = providers
        self.io_binding = io_binding
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        self._description = description
        self._model_data = data
        self._segments = segments
        self._gather_models = {t: _gather_model(onnx, t) for t in hand_on_types}
        self._lock = threading.Lock()
        self._runtime = None
        self._unsplit_lock = threading.Lock()

    # ------------------------------------------------------------ describe
    @property
    def n_stages(self) -> int:
        """Number of exits (segments)."""
        return len(self._segments)

    @property
    def input_name(self) -> str:
        """The graph input fed at the first exit."""
        return self._input.name

    @property
    def segment_inputs(self) -> list[tuple[str, ...]]:
        """Tensors each segment reads: the graph input or earlier segments' ones."""
        return [s.inputs for s in self._segments]

    @property
    def segment_outputs(self) -> list[tuple[str, ...]]:
        """What each segment returns: its exit's scores, then what it hands on."""
        return [s.outputs for s in self._segments]

    @property
    def segment_macs(self) -> np.ndarray | None:
        """Multiply-accumulates per row of each segment, None if unknown."""
        macs = [s.macs for s in self._segments]
        if any(m is None for m in macs):
            return None
        return np.asarray(macs, dtype=np.int64)

    @property
    def segment_models(self) -> list[bytes]:
        """The serialised ONNX model of each segment."""
        return [s.model for s in self._segments]

    @property
    def providers_(self) -> list[str]:
        """The execution providers the sessions got."""
        return list(self._get_runtime().providers)

    def default_costs(self) -> np.ndarray:
        """Incremental cost of each exit: its segment's multiply-accumulates.

        The multiply-accumulates per row of the segment's ``Conv``, ``Gemm``
        and ``MatMul`` nodes, from static shapes (``segment_macs``). Where a
        shape is unknown, or no segment has such nodes, there is no count to
        trust and None is returned: :class:`~skadaptive.EarlyExitClassifier`
        then measures each segment's wall time instead.

        Returns
        -------
        costs : ndarray of shape (n_stages,) or None
        """
        macs = self.segment_macs
        if macs is None or macs.sum() == 0:
            return None
        return macs.astype(np.float64)

    @property
    def cost_unit(self) -> str | None:
        """The unit of :meth:`default_costs`, or None when there is none."""
        return None if self.default_costs() is None else "multiply-accumulates"

    # ------------------------------------------------------------- runtime
    def _build_runtime(self) -> _ExitRuntime:
        ort = _import_onnxruntime()
        requested, explicit = _requested_providers(ort, self.providers)
        sessions = []
        for k, segment in enumerate(self._segments):
            session = _create_session(
                ort,
                segment.model,
                f"segment {k} of {self._description}",
                requested,
                self.intra_op_num_threads,
                self.inter_op_num_threads,
            )
            if k == 0:
                _check_providers(ort, requested, explicit, session, type(self).__name__)
            sessions.append(session)
        providers = list(sessions[0].get_providers())
        on_cuda = _CUDA in providers
        device = ("cuda", _cuda_device_id(requested)) if on_cuda else ("cpu", 0)
        io_binding = on_cuda if self.io_binding == "auto" else bool(self.io_binding)
        gathers = {}
        if io_binding:
            gathers = {
                elem_type: _create_session(
                    ort, model, "the row-selection model", requested, 1, 1
                )
                for elem_type, model in self._gather_models.items()
            }
        return _ExitRuntime(ort, sessions, providers, device, io_binding, gathers)

    # --------------------------------------------------------- MultiExit
    def run_stage(
        self, stage: int, X_rows, state: _OnnxExitState | None
    ) -> tuple[np.ndarray, _OnnxExitState]:
        """Run exit ``stage``'s segment on the rows still running.

        At ``stage == 0`` ``X_rows`` is validated, cast to the input's type and
        reshaped to its row shape (as in :class:`OnnxClassifier`); later
        stages read the state, so ``X_rows`` only has to have as many rows.

        Parameters
        ----------
        stage : int
        X_rows : array-like of shape (n_rows, n_features) or ``(n_rows, *row_shape)``
        state : _OnnxExitState or None
            ``None`` at stage 0, else the previous stage's state, restricted
            with :meth:`keep_rows` to these rows.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes)
            float64, columns in ``classes_`` order.
        state : _OnnxExitState
        """
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of range [0, {self.n_stages}).")
        runtime = self._get_runtime()
        if stage == 0:
            rows = _prepare_rows(X_rows, self._input)
            n_rows, tensors = rows.shape[0], {self._input.name: rows}
        else:
            if state is None:
                raise ValueError(
                    f"Stage {stage} continues from stage {stage - 1}'s state; got None."
                )
            n_rows, tensors = state.n_rows, state.tensors
            if _num_samples(X_rows) != n_rows:
                raise ValueError(
                    f"X_rows has {_num_samples(X_rows)} rows but the state has "
                    f"{n_rows}: pass the state of the same rows (see keep_rows)."
                )
        if n_rows == 0:
            return np.empty((0, len(self.classes_))), _OnnxExitState(0)
        segment = self._segments[stage]
        feeds = {name: tensors[name] for name in segment.inputs}
        if runtime.io_binding:
            raw, handed_on = self._run_bound(runtime, stage, feeds)
        else:
            values = runtime.sessions[stage].run(list(segment.outputs), feeds)
            raw, handed_on = values[0], dict(zip(segment.outputs[1:], values[1:]))
        proba = _to_proba(
            raw, self.output_kind, self._order, len(self.classes_), n_rows, segment.exit
        )
        carried = {name: t for name, t in tensors.items() if name in segment.carry}
        for name, tensor in handed_on.items():
            rows_here = tensor.shape()[0] if callable(tensor.shape) else tensor.shape[0]
            if rows_here != n_rows:
                raise ValueError(
                    f"tensor {name!r}, handed from segment {stage} to a later one, "
                    f"has {rows_here} rows for {n_rows} input rows: OnnxMultiExit "
                    "can only hand on tensors whose first axis is the batch."
                )
            carried[name] = tensor
        if segment.exit in segment.carry:
            carried[segment.exit] = raw
        return proba, _OnnxExitState(n_rows, carried)

    def _run_bound(self, runtime: _ExitRuntime, stage: int, feeds: dict):
        """Run a segment with IO binding: hand-on tensors stay on the device."""
        segment = self._segments[stage]
        session = runtime.sessions[stage]
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, runtime.ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_output(segment.exit, "cpu")
        for name in segment.outputs[1:]:
            binding.bind_output(name, *runtime.device)
        session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return values[0].numpy(), dict(zip(segment.outputs[1:], values[1:]))

    def keep_rows(self, state: _OnnxExitState | None, mask) -> _OnnxExitState | None:
        """The state of the rows where ``mask`` is true, in order.

        Numpy tensors are indexed on the host; ``OrtValue`` s are gathered on
        their device by a one-node ``Gather`` session.

        Parameters
        ----------
        state : _OnnxExitState or None
        mask : array-like of bool, shape (state.n_rows,)

        Returns
        -------
        state : _OnnxExitState or None
        """
        if state is None:
            return None
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (state.n_rows,):
            raise ValueError(
                f"mask has shape {mask.shape}; the state has {state.n_rows} rows."
            )
        rows = np.flatnonzero(mask)
        if len(rows) == state.n_rows:
            return state
        if len(rows) == 0:
            return _OnnxExitState(0)
        runtime = self._get_runtime()
        tensors = {
            name: self._gather(runtime, tensor, rows)
            for name, tensor in state.tensors.items()
        }
        return _OnnxExitState(len(rows), tensors)

    def _gather(self, runtime: _ExitRuntime, tensor, rows: np.ndarray):
        if not isinstance(tensor, runtime.ort.OrtValue):
            return tensor[rows]
        session = runtime.gathers[tensor.element_type()]
        binding = session.io_binding()
        binding.bind_ortvalue_input("data", tensor)
        binding.bind_cpu_input("rows", rows.astype(np.int64))
        binding.bind_output("selected", *runtime.device)
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def run_unsplit(self, X, *, raw: bool = False) -> list[np.ndarray]:
        """Every exit's output for every row, from the original unsplit graph.

        One session of the whole network; what routing would give with no row
        leaving early. For checks and for comparison.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features) or ``(n_rows, *row_shape)``
        raw : bool, default=False
            Return the outputs as the model gives them (scores, columns in the
            model's order) instead of probabilities in ``classes_`` order.

        Returns
        -------
        outputs : list of ndarray of shape (n_rows, n_classes)
            One per exit, in the order of ``exit_outputs``.
        """
        runtime = self._get_runtime()
        with self._unsplit_lock:
            if runtime.unsplit is None:
                requested, _ = _requested_providers(runtime.ort, self.providers)
                runtime.unsplit = _create_session(
                    runtime.ort,
                    self._model_data,
                    self._description,
                    requested,
                    self.intra_op_num_threads,
                    self.inter_op_num_threads,
                )
            session = runtime.unsplit
        rows = _prepare_rows(X, self._input)
        values = session.run(list(self.exit_outputs), {self._input.name: rows})
        if raw:
            return values
        return [
            _to_proba(
                v, self.output_kind, self._order, len(self.classes_), len(rows), name
            )
            for v, name in zip(values, self.exit_outputs)
        ]

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_lock", "_unsplit_lock", "_runtime"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._unsplit_lock = threading.Lock()
        self._runtime = None
