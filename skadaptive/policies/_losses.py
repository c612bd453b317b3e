"""Per-row losses of a stage's answer, the first term of the exit risk."""

from __future__ import annotations

import numpy as np

#: Values of ``loss``: the per-row loss in ``loss + cost_weight * cost``.
LOSSES = ("zero_one", "log_loss")

# Probabilities are clipped before the log so that one over-confident mistake
# costs a large but finite amount (-log(1e-7) ~ 16), as sklearn's log_loss does.
_LOG_CLIP = 1e-7


def per_row_loss(proba: np.ndarray, y_encoded: np.ndarray, loss: str) -> np.ndarray:
    """Loss of answering each row with ``proba``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
    y_encoded : ndarray of shape (n_samples,)
        True classes as column indices of ``proba``.
    loss : {"zero_one", "log_loss"}
        ``"zero_one"`` is 1 where the predicted class is wrong, else 0;
        ``"log_loss"`` is the negative log probability of the true class.

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
    rows = np.arange(len(y_encoded))
    if loss == "zero_one":
        return (np.argmax(proba, axis=1) != y_encoded).astype(np.float64)
    if loss == "log_loss":
        return -np.log(np.clip(proba[rows, y_encoded], _LOG_CLIP, 1.0))
    raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}.")
