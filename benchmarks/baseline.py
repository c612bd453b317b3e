"""The tuned max-probability threshold cascade, the heuristic to beat.

After stage k (all but the last) a row exits when stage k's max probability is at
least ``t_k``. Like scikit-fallback's ``ThresholdCascadeClassifierCV``, the
thresholds are searched on a grid (here: held-out quantiles of each stage's max
probability, every combination) using the *same* held-out policy probabilities
that ``AdaptiveCascadeClassifier`` learns its policy from. For a target cost the
most accurate combination whose held-out cost is within it is kept.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from .frontier import Point, StageOutputs, make_point


def threshold_grid(held_out: StageOutputs, n_quantiles: int = 41) -> list[np.ndarray]:
    """Candidate thresholds for each stage but the last.

    Held-out quantiles of the stage's max probability (the 0-quantile exits
    every row), plus ``inf`` (defer every row).
    """
    grids = []
    for proba in held_out.probas[:-1]:
        levels = np.quantile(proba.max(axis=1), np.linspace(0, 1, n_quantiles))
        grids.append(np.concatenate([np.unique(levels), [np.inf]]))
    return grids


def threshold_exits(max_probas: list[np.ndarray], thresholds) -> np.ndarray:
    """Stage (0-based) at which each row exits under per-stage ``thresholds``.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks.baseline import threshold_exits
    >>> first, second = np.array([0.9, 0.5, 0.5]), np.array([0.1, 0.8, 0.6])
    >>> threshold_exits([first, second], (0.7, 0.7)).tolist()
    [0, 1, 2]
    """
    n_rows = len(max_probas[0])
    exit_stage = np.full(n_rows, len(max_probas))
    undecided = np.ones(n_rows, dtype=bool)
    for stage, threshold in enumerate(thresholds):
        exits = undecided & (max_probas[stage] >= threshold)
        exit_stage[exits] = stage
        undecided &= ~exits
    return exit_stage


def _max_probas(outputs: StageOutputs) -> list[np.ndarray]:
    return [p.max(axis=1) for p in outputs.probas[:-1]]


def evaluate_grid(
    held_out: StageOutputs, cumulative: np.ndarray, grids: list[np.ndarray]
) -> tuple[list[tuple], np.ndarray, np.ndarray]:
    """Held-out accuracy and normalised cost of every threshold combination."""
    max_probas = _max_probas(held_out)
    correct = held_out.correct
    rows = np.arange(len(held_out.y))
    combos = list(product(*grids))
    accuracy = np.empty(len(combos))
    cost = np.empty(len(combos))
    for i, thresholds in enumerate(combos):
        exits = threshold_exits(max_probas, thresholds)
        accuracy[i] = correct[exits, rows].mean()
        cost[i] = cumulative[exits].mean()
    return combos, accuracy, cost


def best_within(accuracy: np.ndarray, cost: np.ndarray, target: float) -> int | None:
    """Most accurate combination with cost <= ``target`` (ties: the cheaper)."""
    affordable = np.flatnonzero(cost <= target + 1e-12)
    if len(affordable) == 0:
        return None
    return int(affordable[np.lexsort((cost[affordable], -accuracy[affordable]))[0]])


def tuned_threshold_points(
    held_out: StageOutputs,
    test: StageOutputs,
    cumulative: np.ndarray,
    targets: np.ndarray,
    n_quantiles: int = 41,
) -> list[Point]:
    """For each target cost, the tuned thresholds evaluated on the test rows."""
    combos, accuracy, cost = evaluate_grid(
        held_out, cumulative, threshold_grid(held_out, n_quantiles)
    )
    test_max = _max_probas(test)
    points, seen = [], set()
    for target in targets:
        best = best_within(accuracy, cost, target)
        if best is None or best in seen:
            continue
        seen.add(best)
        thresholds = combos[best]
        label = "t=(" + ", ".join(f"{t:.4g}" for t in thresholds) + ")"
        label += f" for target {target:.3f}"
        exits = threshold_exits(test_max, thresholds)
        points.append(
            make_point(
                label,
                test,
                exits,
                cumulative,
                accuracy[best],
                cost[best],
                {"thresholds": [float(t) for t in thresholds]},
            )
        )
    return points
