"""skadaptive: adaptive inference for scikit-learn.

Cheap models (or early exits of one model) answer the rows they are sure of
(classifiers and regressors alike);
only the hard rows reach the expensive ones. One learned exit policy, one
trade-off knob (``cost_weight`` or ``budget``) that grid-searches like any other
hyperparameter.
"""

from ._cascade import AdaptiveCascadeClassifier, AdaptiveCascadeRegressor
from ._early_exit import EarlyExitClassifier, EarlyExitRegressor
from ._version import __version__

__all__ = [
    "AdaptiveCascadeClassifier",
    "AdaptiveCascadeRegressor",
    "EarlyExitClassifier",
    "EarlyExitRegressor",
    "__version__",
]
