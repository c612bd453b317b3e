"""Stages: what can run on a batch of rows, and what it costs per row.

- :class:`IndependentStages`: the stages of a cascade, each from the raw rows
  (:class:`IndependentRegressors` for regressors, whose answers are
  :func:`regression_answers`: a prediction and the stage's uncertainty);
- multi-exit sources, whose exits share one computation:
  :class:`TreeEnsembleExits` (exits after given numbers of trees),
  :class:`BoosterExits` (after given numbers of LightGBM or XGBoost boosting
  rounds),
  :class:`ChainExits` (blocks with a classifier head after each;
  :class:`ChainExitsRegressor` with regressor heads), and any
  object following the :class:`MultiExitSource` protocol;
- ONNX models run by onnxruntime on CPU or GPU: :class:`OnnxClassifier` and
  :class:`OnnxRegressor` (stages) and :class:`OnnxMultiExit` (a multi-exit
  network split into segments);
- :class:`ExitCombiner`: how an exit answers with ``answer="combined"``;
  :class:`RegressionCombiner`, the same for regressors.
"""

from ._booster_exits import BoosterExits
from ._chain_exits import ChainExits, ChainExitsRegressor
from ._combined import ExitCombiner
from ._combined_regression import RegressionCombiner
from ._costs import (
    measure_exit_seconds,
    measure_exit_seconds_per_row,
    measure_seconds_per_row,
)
from ._independent import IndependentStages  # noqa: F401 (used by the cascade)
from ._multi_exit import MultiExitSource, exit_probas
from ._regression import (  # noqa: F401 (IndependentRegressors, ScaledPolicy)
    IndependentRegressors,
    ScaledPolicy,
    regression_answers,
    regression_scale,
)
from ._tree_exits import TreeEnsembleExits
from .onnx import OnnxClassifier, OnnxMultiExit, OnnxRegressor

__all__ = [
    "BoosterExits",
    "ChainExits",
    "ChainExitsRegressor",
    "ExitCombiner",
    "MultiExitSource",
    "OnnxClassifier",
    "OnnxMultiExit",
    "OnnxRegressor",
    "RegressionCombiner",
    "TreeEnsembleExits",
    "exit_probas",
    "measure_exit_seconds",
    "measure_exit_seconds_per_row",
    "measure_seconds_per_row",
    "regression_answers",
    "regression_scale",
]
