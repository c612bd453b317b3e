"""Independent checks that a fitted budget is met and spent where it helps.

Every test that fits with ``budget=`` asserts :func:`assert_budget_spent_well`.
It recomputes everything from the policy rows kept by ``fit`` and the fitted
rules' own scores, without the package's search: the cost of the fitted
policy must be within the budget, and no per-exit thresholds on the same
scores (tried exhaustively) may be more accurate within the budget. A search
that ignores the budget fails the first check; one that spends only part of
it fails the second wherever more budget buys accuracy. ``test_budgets.py``
runs every test marked ``budget`` against such broken searches and requires
each of them to fail.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from skadaptive.policies import is_regression_loss, per_row_loss

_RTOL = 1e-9
# Exhaustive over every distinct score up to this many per exit, else over
# this many quantiles of them (then only "at least as accurate as the grid").
_MAX_VALUES = 60


def policy_rows(estimator):
    """Stage probabilities, encoded labels and weights of the policy rows."""
    probas, y_encoded, weight = estimator._policy_rows()
    weight = np.ones(len(y_encoded)) if weight is None else np.asarray(weight)
    return [np.asarray(p) for p in probas], y_encoded, weight


def exit_scores(policy, probas) -> np.ndarray:
    """Each fitted rule's own score of every policy row."""
    return np.stack(
        [rule.score(probas[: stage + 1]) for stage, rule in enumerate(policy.rules)]
    )


def first_reaching(scores, thresholds) -> np.ndarray:
    exit_stage = np.full(scores.shape[1], len(scores))
    for stage in range(len(scores) - 1, -1, -1):
        exit_stage[scores[stage] >= thresholds[stage]] = stage
    return exit_stage


def best_thresholds_within(scores, correct, cumulative, weight, budget):
    """The most accurate per-exit thresholds on ``scores`` within ``budget``.

    Every combination of the earlier exits' thresholds, and for each every
    threshold of the last decision at once. Returns ``(accuracy, cost,
    exact)``; ``exact`` is False when a grid had to be thinned.
    """
    positive = weight > 0
    n_values = _MAX_VALUES if len(scores) <= 2 else 16
    grids, exact = [], True
    for score in scores:
        values = np.unique(score[positive])
        if len(values) > n_values:
            exact = False
            values = np.unique(np.quantile(values, np.linspace(0, 1, n_values)))
        grids.append(np.concatenate([[-np.inf], values, [np.inf]]))
    rows = np.arange(scores.shape[1])
    weight = weight / weight.sum()
    last = len(scores) - 1
    best = (-np.inf, np.inf)
    for earlier in product(*grids[:last]):
        thresholds = np.array([*earlier, np.inf])
        before = first_reaching(scores, thresholds)  # last decision defers all
        reaches = before >= last
        # (n_rows, n_values): where each row answers for each last threshold.
        exits_last = scores[last][:, None] >= grids[last][None, :]
        stage = np.where(reaches[:, None] & exits_last, last, before[:, None])
        cost = weight @ cumulative[stage]
        accuracy = weight @ correct[stage, rows[:, None]]
        affordable = cost <= budget * (1 + _RTOL)
        if not affordable.any():
            continue
        index = np.flatnonzero(affordable)
        pick = index[np.lexsort((cost[index], -accuracy[index]))[0]]
        if (accuracy[pick], -cost[pick]) > (best[0], -best[1]):
            best = (float(accuracy[pick]), float(cost[pick]))
    return best[0], best[1], exact


def assert_budget_spent_well(estimator) -> None:
    """The fitted policy meets ``budget_`` on its rows and wastes none of it."""
    budget = estimator.budget_
    assert budget is not None
    probas, y_encoded, weight = policy_rows(estimator)
    cumulative = np.asarray(estimator.cumulative_costs_)
    regression = is_regression_loss(estimator.loss)
    if regression:
        # Minus the scaled per-row loss: what the search maximises.
        correct = np.stack(
            [-per_row_loss(p, y_encoded, estimator.loss) for p in probas]
        )
    else:
        correct = np.stack([np.argmax(p, axis=1) == y_encoded for p in probas])
    rows = np.arange(len(y_encoded))
    normalized = weight / weight.sum()

    exit_stage = estimator.policy_.exit_stage(probas)
    cost = float(normalized @ cumulative[exit_stage])
    accuracy = float(normalized @ correct[exit_stage, rows])
    # Within budget, recomputed without the estimator's own figures.
    assert cost <= budget * (1 + _RTOL), (cost, budget)
    assert np.isclose(cost, estimator.policy_rows_cost_, rtol=1e-9, atol=1e-12)
    if regression:
        error = -accuracy * estimator._error_unit()
        assert np.isclose(error, estimator.policy_rows_error_, rtol=1e-9)
    else:
        assert np.isclose(accuracy, estimator.policy_rows_accuracy_, rtol=1e-9)

    # Spent where it helps: no thresholds on the same scores are more accurate
    # within the budget (exhaustively where the grid is complete). With a
    # confidence margin, none is more accurate at no more than the policy's
    # own cost.
    limit = budget if estimator.budget_confidence is None else cost
    if len(probas) > 1:
        scores = exit_scores(estimator.policy_, probas)
        best_accuracy, _, exact = best_thresholds_within(
            scores, correct, cumulative, weight, limit
        )
        if estimator.loss == "zero_one" or regression:
            assert accuracy >= best_accuracy - 1e-12, (accuracy, best_accuracy, exact)

    # The status says honestly whether the budget was spent.
    spent = cost >= 0.97 * budget
    if estimator.budget_confidence is None:
        assert estimator.budget_status_ == ("spent" if spent else "saturated")
    # The out-of-sample figure is reported as measured, never clamped to it.
    assert np.isfinite(estimator.expected_cost_)
