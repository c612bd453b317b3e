"""One already-trained ONNX regression model as a stage.

:class:`OnnxRegressor` is a scikit-learn regressor over an already-trained
ONNX model with one output column: put it (or a ``FrozenEstimator`` of it) in
an :class:`~skadaptive.AdaptiveCascadeRegressor` next to any other stage. It
shares the session, rows, batches, tags and pickling of
:class:`~skadaptive.stages.OnnxClassifier` (``_classifier._OnnxModel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..._typing import ArrayLike
from .._regression import numeric_targets
from ._classifier import _OnnxModel
from ._io import (
    _check_options,
    _InputSpec,
    _one_column_message,
    _pick_output,
    _to_predictions,
)

__all__ = ["OnnxRegressor"]

_T = TypeVar("_T", bound="OnnxRegressor")


@dataclass
class _RegressorRuntime:
    session: Any
    input: _InputSpec
    output: str
    declared: bool  # whether the output's shape says it has one column
    providers: list[str]


class OnnxRegressor(_OnnxModel, RegressorMixin, BaseEstimator):
    """A scikit-learn regressor over an already-trained ONNX model.

    The model answers each row with one number: its output has one column,
    shape ``[N, 1]`` or ``[N]``. ``fit`` never trains: it checks the model, the
    rows and the targets, so the regressor can be used as it is, wrapped in
    :class:`~sklearn.frozen.FrozenEstimator`, or cloned and "fitted" by a
    cascade. The model is trained already, so the regressor counts as fitted
    from the start (``predict`` works without ``fit``).

    Parameters
    ----------
    model : str, path-like, bytes or onnx.ModelProto
        The ONNX model: a file path, or its serialised bytes. The bytes are
        read on first use and kept, so a pickled regressor does not need the
        file any more.
    output : str, default=None
        Name of the output that holds the predictions. ``None``: the model's
        only output, or its only 1-D or 2-D float output.
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
    n_features_in_ : int
        Values per row (``prod`` of the row shape), set by ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Set by ``fit`` when ``X`` has feature names.
    providers_ : list of str
        The execution providers the onnxruntime session got.

    See Also
    --------
    OnnxClassifier : The same for a classifier's model.
    skadaptive.AdaptiveCascadeRegressor : A cascade of regressors.

    Notes
    -----
    A cascade's policy sees no uncertainty from an ONNX regressor (0 for every
    row, see :func:`~skadaptive.stages.regression_answers`), only its
    prediction and how it differs from the other stages' predictions.

    ``predict`` may be called from several threads at once: onnxruntime
    sessions run concurrently, and the session is created once, under a lock.
    The session is not pickled; it is created again on first use after
    unpickling (on the providers available there).

    Examples
    --------
    A least-squares linear model exported as an ONNX graph (``MatMul`` and
    ``Add``):

    >>> import pytest; onnx = pytest.importorskip("onnx")
    >>> _ = pytest.importorskip("onnxruntime")
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import LinearRegression
    >>> from skadaptive.stages import OnnxRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> lr = LinearRegression().fit(X, y)
    >>> graph = helper.make_graph(
    ...     [helper.make_node("MatMul", ["x", "W"], ["xW"]),
    ...      helper.make_node("Add", ["xW", "b"], ["y"])],
    ...     "diabetes",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    ...     [numpy_helper.from_array(lr.coef_.astype(np.float32)[:, None], "W"),
    ...      numpy_helper.from_array(np.float32([lr.intercept_]), "b")],
    ... )
    >>> model = helper.make_model(
    ...     graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    ... )
    >>> reg = OnnxRegressor(model.SerializeToString())
    >>> reg = reg.fit(X, y)  # checks only: nothing is trained
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> bool(np.allclose(reg.predict(X), lr.predict(X), atol=1e-3))
    True
    >>> bool(abs(reg.score(X, y) - lr.score(X, y)) < 1e-6)  # R^2
    True
    """

    def __init__(
        self,
        model,
        *,
        output: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        providers="auto",
        batch_size: int | None = None,
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ):
        self.model = model
        self.output = output
        self.input_shape = input_shape
        self.providers = providers
        self.batch_size = batch_size
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        self._init_runtime()

    # ------------------------------------------------------------ runtime
    def _build_runtime(self) -> _RegressorRuntime:
        owner = type(self).__name__
        _check_options(
            None,
            self.batch_size,
            self.intra_op_num_threads,
            self.inter_op_num_threads,
        )
        session, spec = self._open_session()
        output = _pick_output(
            session.get_outputs(), self.output, owner, "predictions", ranks=(1, 2)
        )
        shape = output.shape
        rank = len(shape)
        if rank > 2 or (rank == 2 and isinstance(shape[1], int) and shape[1] != 1):
            raise ValueError(_one_column_message(owner, output.name, shape))
        return _RegressorRuntime(
            session=session,
            input=spec,
            output=output.name,
            declared=rank == 1 or (rank == 2 and shape[1] == 1),
            providers=list(session.get_providers()),
        )

    # ------------------------------------------------------- sklearn API
    def fit(self: _T, X: ArrayLike, y: ArrayLike) -> _T:
        """Check the model, the rows and the targets; nothing is trained.

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
            Rows as :meth:`predict` takes them.
        y : array-like of shape (n_samples,)
            Targets: finite numbers, one per row.

        Returns
        -------
        self : OnnxRegressor
            The regressor.
        """
        runtime, rows, y = self._fit_rows(X, y)
        numeric_targets(y, self)
        self._check_on_one_row(runtime, rows, runtime.declared)
        return self

    def _predict_rows(self, runtime: _RegressorRuntime, rows: np.ndarray):
        owner = type(self).__name__
        return self._run_batches(
            runtime,
            rows,
            np.empty(rows.shape[0]),
            lambda raw, n_rows: _to_predictions(raw, n_rows, runtime.output, owner),
        )

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The model's prediction for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or ``(n_samples, *row_shape)``
            Flat rows are reshaped to the model's row shape; values are cast
            to the model's input type (float32 for most networks).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            float64.
        """
        runtime = self._get_runtime()
        return self._predict_rows(runtime, self._validate_rows(X, runtime, False))
