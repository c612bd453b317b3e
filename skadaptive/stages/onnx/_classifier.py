"""One already-trained ONNX model as a stage.

:class:`OnnxClassifier` is a scikit-learn classifier over an already-trained
ONNX model: put it (or a ``FrozenEstimator`` of it) in an
:class:`~skadaptive.AdaptiveCascadeClassifier` next to any other stage.
``_OnnxModel`` is what it shares with
:class:`~skadaptive.stages.OnnxRegressor` (``_regressor``): the session on the
model's single input, the rows, the batches, the tags and pickling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from math import prod
from os import PathLike
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length

from ..._sklearn_private import _check_feature_names
from ..._typing import ArrayLike
from ._io import (
    _ORT_DTYPES,
    _check_classes,
    _check_one_column_kind,
    _check_options,
    _columns_message,
    _format_shape,
    _input_spec,
    _InputSpec,
    _pick_output,
    _prepare_rows,
    _to_proba,
)
from ._runtime import (
    _check_providers,
    _create_session,
    _import_onnxruntime,
    _LazyRuntime,
    _read_model,
    _requested_providers,
)

__all__ = ["OnnxClassifier"]

_ModelT = TypeVar("_ModelT", bound="_OnnxModel")
_ClassifierT = TypeVar("_ClassifierT", bound="OnnxClassifier")


# ------------------------------------------------------ one model, one input
class _OnnxModel(_LazyRuntime):
    """What an estimator over one already-trained ONNX model shares.

    Subclasses have the parameters ``model``, ``input_shape``, ``providers``,
    ``batch_size``, ``intra_op_num_threads`` and ``inter_op_num_threads``,
    call ``_init_runtime`` in ``__init__``, and build a runtime (a dataclass
    with at least ``session``, ``input`` and ``output``) with ``_open_session``.
    """

    def _init_runtime(self) -> None:
        # Not parameters: the lazily created session and the lock guarding it.
        self._lock = threading.Lock()
        self._runtime = None
        self._model_data = None

    def _open_session(self) -> tuple[Any, _InputSpec]:
        """An onnxruntime session on the model, and the spec of its one input."""
        owner = type(self).__name__
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
        return session, spec

    def _reset_runtime(self, model: bool) -> None:
        """Drop the session, and with ``model`` the model's bytes too."""
        with self._lock:
            self._runtime = None
            if model:
                self._model_data = None

    def _reread_model(self) -> None:
        """The model's bytes read again from ``model`` (a changed file is
        picked up); where its file is gone, the bytes held since it was last
        read or loaded (a model saved with joblib keeps them) stay."""
        try:
            data = _read_model(self.model)
        except FileNotFoundError:
            if self._model_data is None:
                raise
            data = self._model_data
        with self._lock:
            self._runtime = None
            self._model_data = data

    def __sklearn_clone__(self):
        # The clone answers with the bytes this one holds (those saved with it
        # where it was loaded), not with whatever the path holds now; its fit
        # reads the path again where the file is there.
        new = super().__sklearn_clone__()
        if self._model_data is not None and isinstance(self.model, str | PathLike):
            new._model_data = self._model_data
        return new

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

    def set_params(self: _ModelT, **params: Any) -> _ModelT:
        """Set parameters; the session is created again on next use.

        A new ``model`` is read then; other parameters (threads, providers,
        batch size) keep the model's bytes held (those saved with it, for a
        model loaded with joblib), as ``fit`` does where the file is gone.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        super().set_params(**params)
        self._reset_runtime(model="model" in params)
        return self

    def _validate_rows(self, X, runtime, reset: bool):
        plain = type(X) is np.ndarray and not hasattr(self, "feature_names_in_")
        if (reset or hasattr(self, "n_features_in_")) and not plain:
            # (an ndarray has no column names to check against none)
            _check_feature_names(self, X, reset=reset)
        rows = _prepare_rows(X, runtime.input, estimator=self)
        width = int(prod(rows.shape[1:]))
        if reset:
            self.n_features_in_ = width
        elif hasattr(self, "n_features_in_") and width != self.n_features_in_:
            # A model that does not declare its row width would fail inside
            # onnxruntime: the width it was fitted on says it first.
            raise ValueError(
                f"X has {width} features per row, but {type(self).__name__} was "
                f"fitted with {self.n_features_in_}; give rows of "
                f"{self.n_features_in_} values."
            )
        return rows

    def _fit_rows(self, X, y):
        """What ``fit`` starts with: the model read again, the rows and ``y``
        checked (``y`` as a 1-D column of one label or target per row)."""
        self._reread_model()
        runtime = self._get_runtime()
        rows = self._validate_rows(X, runtime, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(rows, y)
        return runtime, rows, y

    def _check_on_one_row(self, runtime, rows: np.ndarray, output_declared: bool):
        """Run the model on one row where its declared shapes cannot say
        whether it takes these rows (an open row shape) or answers as this
        estimator reads it (an open output width): now, at fit, not at the
        first prediction."""
        if len(rows) and (runtime.input.row_shape is None or not output_declared):
            self._predict_rows(runtime, rows[:1])

    def _run(self, runtime, chunk: np.ndarray) -> np.ndarray:
        """The model's output on ``chunk``; its refusal as a ValueError that
        says what was given and what the model declares."""
        try:
            return runtime.session.run([runtime.output], {runtime.input.name: chunk})[0]
        except Exception as error:
            if not type(error).__module__.startswith("onnxruntime"):
                raise
            raise ValueError(
                f"{type(self).__name__}: the ONNX model refused a batch of shape "
                f"{list(chunk.shape)} at its input {runtime.input.name!r} (declared "
                f"{_format_shape(runtime.input.shape)}): "
                f"{str(error).strip().rstrip('.')}. Give "
                "rows of the shape the model was exported for: with its other "
                "features, or the same columns it was trained on."
            ) from None

    def _run_batches(self, runtime, rows: np.ndarray, out: np.ndarray, convert):
        """``out`` filled with ``convert(raw, n_rows)`` of each batch's output.

        A model whose batch axis is fixed is called with that many rows, the
        last batch padded with zeros (and its padding rows dropped).
        """
        n_rows = rows.shape[0]
        step = runtime.input.fixed_batch or self.batch_size or n_rows
        for start in range(0, n_rows, step):
            chunk = rows[start : start + step]
            n_chunk = chunk.shape[0]
            if runtime.input.fixed_batch and n_chunk < step:
                padding = np.zeros((step - n_chunk, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            raw = self._run(runtime, chunk)
            out[start : start + n_chunk] = convert(
                raw[:n_chunk] if runtime.input.fixed_batch else raw, n_chunk
            )
        return out

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


class OnnxClassifier(_OnnxModel, ClassifierMixin, BaseEstimator):
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
        turned into probabilities by a softmax. A binary model with one output
        column (its second class's score, as Keras and PyTorch models often
        export) needs ``"proba"`` (a sigmoid output) or ``"logits"`` (a logit,
        turned into a probability by the sigmoid). ``"proba"``: probabilities,
        used as they are (a row that is negative or does not sum to 1 within
        1e-4 is an error). ``"auto"``: decided row by row -- a row that is
        non-negative and sums to 1 (within 1e-4; for a float16 output, the
        number of classes times float16's spacing at 1) is taken as probabilities,
        any other row as logits; name the kind to rule out ambiguity (a row
        of logits that is non-negative and sums to 1, such as a ReLU's
        ``[1, 0, 0]``, is read as probabilities under ``"auto"``). An
        output that is not finite (NaN or inf) is an error whatever the kind;
        in a cascade, the error names the stage.
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
        CUDA gets ``cudnn_conv_algo_search="HEURISTIC"`` unless its options
        say otherwise: with onnxruntime's exhaustive default, calls on an
        unfamiliar number of rows, which a cascade's later stages get at
        almost every call, were four to six times dearer on an H200.
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
        self._init_runtime()

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
        session, spec = self._open_session()
        output = _pick_output(session.get_outputs(), self.output, owner)
        n_columns = None
        if len(output.shape) == 2 and isinstance(output.shape[1], int):
            n_columns = output.shape[1]
            if n_columns == 1 and len(classes) == 2:
                _check_one_column_kind(self.output_kind, output.name)
            elif n_columns != len(classes):
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

    # ------------------------------------------------------- sklearn API
    @property
    def classes_(self) -> np.ndarray:
        """Sorted labels: the columns of :meth:`predict_proba`."""
        runtime = self._runtime
        if runtime is not None:
            return runtime.classes
        return _check_classes(self.classes)[0]

    def _classes_checked_against_model(self) -> np.ndarray:
        """``classes_``, the model read (on first use): labels that do not
        match its output columns are refused, where a cascade first asks for
        its stages' classes."""
        return self._get_runtime().classes

    def fit(self: _ClassifierT, X: ArrayLike, y: ArrayLike) -> _ClassifierT:
        """Check the model, the rows and the labels; nothing is trained.

        The model file is read again and its session created, so a changed
        file is picked up; where the file is gone, the model's bytes held
        (saved with it, for a model loaded with joblib) are used. A cascade
        uses an ONNX stage as given and never calls its ``fit`` (nor does a
        ``clone``, which keeps the bytes read): after changing the file, call
        the stage's ``fit`` or ``set_params(model=path)`` before fitting the
        cascade again.

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
        runtime, rows, y = self._fit_rows(X, y)
        check_classification_targets(y)
        labels = np.unique(y)
        unknown = labels[~np.isin(labels, runtime.classes)]
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that the model does not "
                f"predict: its classes are {runtime.classes.tolist()}."
            )
        self._check_on_one_row(runtime, rows, runtime.n_columns is not None)
        return self

    def _predict_rows(self, runtime: _ClassifierRuntime, rows: np.ndarray):
        return self._run_batches(
            runtime,
            rows,
            np.empty((rows.shape[0], len(runtime.classes))),
            lambda raw, n_rows: _to_proba(
                raw,
                self.output_kind,
                runtime.order,
                len(runtime.classes),
                n_rows,
                runtime.output,
            ),
        )

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
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

    def predict(self, X: ArrayLike) -> np.ndarray:
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
