"""How far an accuracy (or a regressor's error) measured on a few held-out
rows can be trusted."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 1000
# Below this many held-out rows the percentile bootstrap is itself unreliable
# (it under-covers), and one row moves an accuracy by more than a point.
MIN_EVALUATION_ROWS = 100
#: Below this many policy rows, the policy's thresholds and its choice among
#: kinds of exit score rest on a handful of rows each.
MIN_POLICY_ROWS = 100
# Bound on the resampled row indices held at once (int64), about 32 MB.
_MAX_INDICES = 2**22


def bootstrap_intervals(
    correct: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> np.ndarray:
    """Percentile bootstrap interval of the accuracy of each point.

    Any figure that is a mean over the rows works the same way: pass each
    row's error (a regressor's squared or absolute error) for intervals of
    the mean error.

    Parameters
    ----------
    correct : ndarray of bool or float of shape (n_points, n_rows)
        Whether each point (a stage, a policy) answers each row right, or
        each row's figure.
    n_resamples : int, default=1000
        Resamples of the rows, drawn with replacement; every point is scored
        on the same resamples.
    confidence : float, default=0.95
    seed : int, default=0

    Returns
    -------
    intervals : ndarray of shape (n_points, 2)
        Lower and upper bounds of each point's accuracy (mean figure).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.cli._intervals import bootstrap_intervals
    >>> correct = np.array([[True] * 90 + [False] * 10, [True] * 100])
    >>> bootstrap_intervals(correct).round(2).tolist()
    [[0.84, 0.96], [1.0, 1.0]]
    """
    correct = np.asarray(correct, dtype=np.float64)
    n_points, n_rows = correct.shape
    rng = np.random.default_rng(seed)
    accuracies = np.empty((n_resamples, n_points))
    chunk = max(1, min(n_resamples, _MAX_INDICES // n_rows))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        rows = rng.integers(0, n_rows, size=(size, n_rows))
        # How often each row is drawn in each resample: one matrix product
        # then scores every point on every resample.
        offsets = np.arange(size)[:, None] * n_rows
        counts = np.bincount((rows + offsets).ravel(), minlength=size * n_rows)
        counts = counts.reshape(size, n_rows).astype(np.float64)
        accuracies[start : start + size] = counts @ correct.T / n_rows
    tail = (1 - confidence) / 2
    return np.quantile(accuracies, [tail, 1 - tail], axis=0).T


def too_few_rows_warning(
    n_rows: int, cheapest: np.ndarray, full_cost: np.ndarray, fmt=None
) -> str | None:
    """Why the held-out rows cannot separate the points of the frontier, or None.

    The rule: fewer than :data:`MIN_EVALUATION_ROWS` rows, or the intervals of
    the cheapest stage and of the full-cost stage overlap -- then the rows
    cannot tell the two ends of the frontier apart, let alone the points
    between them. ``fmt`` writes an interval (default: :func:`format_interval`).
    """
    fmt = format_interval if fmt is None else fmt
    reasons = []
    if n_rows < MIN_EVALUATION_ROWS:
        reasons.append(f"fewer than {MIN_EVALUATION_ROWS}")
    if cheapest[0] <= full_cost[1] and full_cost[0] <= cheapest[1]:
        reasons.append(
            f"the {CONFIDENCE:.0%} intervals of the cheapest stage "
            f"({fmt(cheapest)}) and of the full cost ({fmt(full_cost)}) overlap"
        )
    if not reasons:
        return None
    if n_rows >= MIN_EVALUATION_ROWS:
        # Rows enough by count: the ends may overlap because the stages are
        # about as accurate, which more rows would not change.
        return (
            f"on {n_rows} held-out rows {reasons[0]}: the rows cannot tell the "
            "two ends of the frontier apart, so differences between rows of the "
            "table may be noise. The stages may be about as accurate (then a "
            "cascade saves cost, not errors), or the rows too few: more "
            "labelled rows or a larger --test-size would tell."
        )
    return (
        f"only {n_rows} held-out rows ({'; '.join(reasons)}): too few to separate "
        "the points, so differences between rows of the table may be noise. Use "
        "more labelled rows or a larger --test-size."
    )


def too_few_policy_rows_warning(n_policy: int) -> str | None:
    """Why the policy itself may be noise, or None."""
    if n_policy >= MIN_POLICY_ROWS:
        return None
    return (
        f"the policy is learned on only {n_policy} rows (fewer than "
        f"{MIN_POLICY_ROWS}): its thresholds and its choice among kinds of exit "
        "score rest on a few rows each, and may do worse than a single stage "
        "on new rows. Use more labelled rows (a smaller --test-size moves "
        "rows from the evaluation to the policy, where those can spare them)."
    )


def format_interval(bounds) -> str:
    """``low-high`` with three decimals."""
    return f"{bounds[0]:.3f}-{bounds[1]:.3f}"


def format_error_interval(bounds) -> str:
    """``low-high`` with four significant digits: errors are in the target's
    units, of any size."""
    return f"{bounds[0]:.4g}-{bounds[1]:.4g}"
