"""Operating points of a cascade and the summary metrics of the field.

Costs here are *normalised*: a fraction of the cost of running every stage
(``cumulative_costs_[-1]``), so that methods and datasets compare directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class StageOutputs:
    """Every stage's probabilities on the same rows, and the true classes.

    ``y`` holds class indices (columns of the probabilities).
    """

    probas: list[np.ndarray]
    y: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """(n_stages, n_rows) boolean: is each stage right on each row."""
        return np.stack([np.argmax(p, axis=1) == self.y for p in self.probas])

    def evaluate(self, exit_stage: np.ndarray, cumulative: np.ndarray) -> dict:
        """Accuracy, average normalised cost and exit rates of given exits."""
        correct = self.correct[exit_stage, np.arange(len(self.y))]
        rates = np.bincount(exit_stage, minlength=len(self.probas)) / len(self.y)
        return {
            "accuracy": float(correct.mean()),
            "cost": float(cumulative[exit_stage].mean()),
            "exit_rates": rates.round(4).tolist(),
        }

    def oracle(self, cumulative: np.ndarray) -> dict:
        """Exit at the first stage that is right (the last if none is)."""
        correct = self.correct
        first = np.where(
            correct.any(axis=0), np.argmax(correct, axis=0), len(self.probas) - 1
        )
        return self.evaluate(first, cumulative)


@dataclass
class Point:
    """One operating point: test accuracy/cost, and held-out ones that chose it."""

    setting: str
    accuracy: float
    cost: float
    held_out_accuracy: float
    held_out_cost: float
    exit_rates: list
    params: dict = field(default_factory=dict)
    test_exits: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-friendly copy (without the per-row exits)."""
        out = asdict(self)
        del out["test_exits"]
        return out


def make_point(
    setting: str,
    test: StageOutputs,
    test_exits: np.ndarray,
    cumulative: np.ndarray,
    held_out_accuracy: float,
    held_out_cost: float,
    params: dict | None = None,
) -> Point:
    """Evaluate ``test_exits`` on ``test`` and attach the held-out figures.

    ``params`` are what reproduces the point (estimator parameters, thresholds).
    """
    scores = test.evaluate(test_exits, cumulative)
    return Point(
        setting,
        scores["accuracy"],
        scores["cost"],
        float(held_out_accuracy),
        float(held_out_cost),
        scores["exit_rates"],
        dict(params or {}),
        np.asarray(test_exits),
    )


def cheapest_within_loss(
    points: list[Point], reference: float, loss: float, held_out: bool = False
) -> Point | None:
    """Cheapest point whose accuracy is at least ``reference - loss``.

    With ``held_out=True`` accuracy and cost are the held-out ones (a choice that
    could be made before seeing the test rows); the point is still reported with
    its test figures.
    """
    key_acc = "held_out_accuracy" if held_out else "accuracy"
    key_cost = "held_out_cost" if held_out else "cost"
    within = [p for p in points if getattr(p, key_acc) >= reference - loss - 1e-12]
    if not within:
        return None
    return min(within, key=lambda p: (getattr(p, key_cost), -getattr(p, key_acc)))


def speed_up(point: Point | None, reference_cost: float) -> float:
    """``reference_cost / point.cost`` (test), or NaN when there is no point."""
    if point is None or point.cost <= 0:
        return float("nan")
    return reference_cost / point.cost


def normalized_auc(points: list[Point], low: float, high: float = 1.0) -> float:
    """Mean of the best test accuracy affordable at each cost in ``[low, high]``.

    The curve is the upper envelope of the points (a step function: the most
    accurate point whose test cost is at most ``x``), integrated over normalised
    cost from ``low`` (the first stage's cost) to ``high`` and divided by the
    width, so it is an accuracy in [0, 1]. Costs below every point count as the
    lowest point's accuracy.

    Examples
    --------
    >>> from benchmarks.frontier import Point, normalized_auc
    >>> cheap = Point("a", accuracy=0.8, cost=0.2, held_out_accuracy=0.8,
    ...               held_out_cost=0.2, exit_rates=[])
    >>> costly = Point("b", 0.9, 0.6, 0.9, 0.6, [])
    >>> round(normalized_auc([cheap, costly], low=0.2), 3)
    0.85
    """
    order = sorted(points, key=lambda p: p.cost)
    costs = np.array([min(max(p.cost, low), high) for p in order])
    best = np.maximum.accumulate([p.accuracy for p in order])
    edges = np.concatenate([[low], costs[1:], [high]])
    widths = np.diff(edges).clip(min=0)
    return float(np.dot(best, widths) / (high - low))


def summarise(
    points: list[Point],
    reference_accuracy: float,
    reference_cost: float,
    held_out_reference: float,
    low: float,
) -> dict:
    """Speed-ups at <= 0.5 and <= 1 point loss, and the normalised area.

    ``reference_*`` are the most accurate single stage's test accuracy and
    normalised cost; ``held_out_reference`` its held-out accuracy; ``low`` the
    first stage's normalised cost.
    """
    summary = {}
    for loss, tag in ((0.005, "0.5"), (0.01, "1")):
        point = cheapest_within_loss(points, reference_accuracy, loss)
        chosen = cheapest_within_loss(points, held_out_reference, loss, held_out=True)
        summary[f"speed_up_{tag}"] = speed_up(point, reference_cost)
        summary[f"point_{tag}"] = None if point is None else point.to_dict()
        summary[f"held_out_selected_speed_up_{tag}"] = speed_up(chosen, reference_cost)
        summary[f"held_out_selected_point_{tag}"] = (
            None if chosen is None else chosen.to_dict()
        )
    summary["normalized_auc"] = normalized_auc(points, low)
    return summary


def _bootstrap_speed_ups(correct, cost, reference, reference_cost, loss, idx):
    """Speed-up within ``loss`` of the reference on the resampled rows ``idx``."""
    accuracy = correct[:, idx].mean(axis=1)
    average = cost[:, idx].mean(axis=1)
    within = accuracy >= reference[idx].mean() - loss - 1e-12
    return reference_cost / average[within].min() if within.any() else 0.0


def bootstrap_ratio(
    ours: list[Point],
    theirs: list[Point],
    test: StageOutputs,
    cumulative: np.ndarray,
    reference_stage: int,
    loss: float = 0.005,
    n_boot: int = 500,
    seed: int = 0,
) -> dict:
    """Paired bootstrap of the test rows: speed-up of ``ours`` over ``theirs``.

    Each resample recomputes both methods' speed-up at ``<= loss`` (the reference
    accuracy is resampled too) on the same rows. Returns the 5 / 50 / 95 %
    quantiles of the ratio and how often ours is at least as fast. A method
    with no point within the loss on a resample counts as speed-up 0.
    """
    rows = np.arange(len(test.y))
    reference = test.correct[reference_stage]
    reference_cost = cumulative[reference_stage] - (
        cumulative[reference_stage - 1] if reference_stage else 0.0
    )

    def tables(points):
        correct = np.stack([test.correct[p.test_exits, rows] for p in points])
        return correct, np.stack([cumulative[p.test_exits] for p in points])

    ours_tables, theirs_tables = tables(ours), tables(theirs)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(rows), len(rows))
        mine = _bootstrap_speed_ups(*ours_tables, reference, reference_cost, loss, idx)
        other = _bootstrap_speed_ups(
            *theirs_tables, reference, reference_cost, loss, idx
        )
        if other > 0:
            ratios[b] = mine / other
        else:  # neither within the loss is a tie
            ratios[b] = np.inf if mine > 0 else 1.0
    # "nearest" keeps an infinite ratio (only ours within the loss) infinite.
    q05, q50, q95 = np.quantile(ratios, [0.05, 0.5, 0.95], method="nearest")
    return {
        "loss": loss,
        "n_boot": n_boot,
        "seed": seed,
        "ratio_q05": float(q05),
        "ratio_median": float(q50),
        "ratio_q95": float(q95),
        "p_ours_at_least_as_fast": float(np.mean(ratios >= 1.0)),
    }
