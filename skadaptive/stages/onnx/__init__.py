"""ONNX models as stages, on the CPU or a GPU.

All three need ``onnxruntime`` (``pip install "skadaptive[onnx]"``, or
``"skadaptive[gpu]"`` for ``onnxruntime-gpu``; the two must not be installed
together). :class:`OnnxMultiExit` also needs the ``onnx`` package to split the
graph. Neither is imported until a model is first used.

- ``_runtime``: importing onnxruntime and onnx lazily, reading a model, the
  execution providers asked for and got, creating sessions, and the
  ``_LazyRuntime`` mixin that creates them on first use;
- ``_io``: the model's input (row validation and reshaping), its output
  turned into probabilities (or a regressor's predictions), and the checks of
  ``classes`` and the options;
- ``_graph``: splitting a multi-exit graph into one model per exit, and
  counting each segment's multiply-accumulates;
- ``_classifier``: :class:`OnnxClassifier`, one ONNX model as a stage (and
  what it shares with :class:`OnnxRegressor`);
- ``_regressor``: :class:`OnnxRegressor`, one ONNX regression model (one
  output column) as a stage;
- ``_multi_exit``: :class:`OnnxMultiExit`, one ONNX network with several
  heads as a multi-exit source.
"""

from ._classifier import OnnxClassifier
from ._multi_exit import OnnxMultiExit
from ._regressor import OnnxRegressor

__all__ = ["OnnxClassifier", "OnnxMultiExit", "OnnxRegressor"]
