"""Per-row losses of a stage's answer, the first term of the exit risk.

Classification answers are probability vectors; regression answers are
``(prediction, uncertainty)`` pairs on the target's scale learned at fit (see
:func:`skadaptive.stages.regression_scale`), so that a regression loss of 1 is
the loss of predicting a constant and ``cost_weight`` means the same on any
target scale.
"""

from __future__ import annotations

import numpy as np

#: Values of ``loss`` for classifiers: the per-row loss in
#: ``loss + cost_weight * cost``.
LOSSES = ("zero_one", "log_loss")

#: Values of ``loss`` for regressors.
REGRESSION_LOSSES = ("squared_error", "absolute_error")


def is_regression_loss(loss: str) -> bool:
    """Whether ``loss`` scores regression answers (a prediction per row).

    The regressors' losses are :data:`REGRESSION_LOSSES`; every other loss
    scores class probabilities.

    Parameters
    ----------
    loss : str
        A value of the estimators' ``loss`` parameter.

    Returns
    -------
    regression : bool

    See Also
    --------
    per_row_loss : The loss of each row's answer.

    Examples
    --------
    >>> from skadaptive.policies import is_regression_loss
    >>> is_regression_loss("squared_error"), is_regression_loss("zero_one")
    (True, False)
    """
    return loss in REGRESSION_LOSSES


# Probabilities are clipped before the log so that one over-confident mistake
# costs a large but finite amount (-log(1e-7) ~ 16), as sklearn's log_loss does.
_LOG_CLIP = 1e-7


def per_row_loss(proba: np.ndarray, y_encoded: np.ndarray, loss: str) -> np.ndarray:
    """Loss of answering each row with ``proba``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes) or (n_samples, 2)
        Class probabilities, or for a regression loss the scaled prediction
        (column 0) and its uncertainty (column 1).
    y_encoded : ndarray of shape (n_samples,)
        True classes as column indices of ``proba``, or the scaled targets.
    loss : {"zero_one", "log_loss", "squared_error", "absolute_error"}
        ``"zero_one"`` is 1 where the predicted class is wrong, else 0;
        ``"log_loss"`` is the negative log probability of the true class;
        ``"squared_error"`` and ``"absolute_error"`` are the squared and
        absolute difference between prediction and target.

    Returns
    -------
    loss : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import per_row_loss
    >>> per_row_loss(np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0, 0]), "zero_one")
    array([0., 1.])
    """
    if loss == "squared_error":
        return (proba[:, 0] - y_encoded) ** 2
    if loss == "absolute_error":
        return np.abs(proba[:, 0] - y_encoded)
    rows = np.arange(len(y_encoded))
    if loss == "zero_one":
        return (np.argmax(proba, axis=1) != y_encoded).astype(np.float64)
    if loss == "log_loss":
        return -np.log(np.clip(proba[rows, y_encoded], _LOG_CLIP, 1.0))
    raise ValueError(
        f"Unknown loss {loss!r}; expected one of {LOSSES + REGRESSION_LOSSES}."
    )
