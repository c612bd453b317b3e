"""Evaluate policies on held-out rows: the frontier over ``cost_weight`` and budgets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._bottom_up import CascadePolicy, ExitRule, fit_bottom_up_policy

# cost_weight grid of the fitted frontier. Normalised costs lie in [0, 1] and a
# 0/1 loss in {0, 1}, so beyond ~10 every policy exits at the first stage.
DEFAULT_COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 30)])
_BUDGET_RTOL = 1e-9


@dataclass
class PolicyEvaluation:
    """A policy and what it achieves on the rows it was evaluated on."""

    cost_weight: float
    policy: CascadePolicy
    accuracy: float
    normalized_cost: float
    exit_rates: np.ndarray


def evaluate_policy(
    policy: CascadePolicy,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    cumulative_cost: np.ndarray,
    sample_weight: np.ndarray | None = None,
    cost_weight: float = np.nan,
) -> PolicyEvaluation:
    """Weighted accuracy, average normalised cost and exit rates of ``policy``."""
    exit_stage = policy.exit_stage(stage_probas)
    stacked = np.stack(stage_probas)  # (n_stages, n_rows, n_classes)
    answered = stacked[exit_stage, np.arange(len(y_encoded))]
    correct = np.argmax(answered, axis=1) == y_encoded
    weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
    total = weight.sum()
    exit_rates = np.bincount(exit_stage, weights=weight, minlength=len(stage_probas))
    return PolicyEvaluation(
        cost_weight=float(cost_weight),
        policy=policy,
        accuracy=float(np.dot(weight, correct) / total),
        normalized_cost=float(np.dot(weight, cumulative_cost[exit_stage]) / total),
        exit_rates=exit_rates / total,
    )


def first_stage_policy(n_stages: int) -> CascadePolicy:
    """The cheapest policy: every row exits at the first stage."""
    rules = [ExitRule("confidence", threshold=-np.inf)]
    rules += [ExitRule("confidence", threshold=np.inf) for _ in range(n_stages - 2)]
    return CascadePolicy(rules)


def policy_frontier(
    stage_probas, y_encoded, cumulative_cost, cost_weights, sample_weight=None, **fit
) -> list[PolicyEvaluation]:
    """Fit and evaluate one policy per value of ``cost_weights``."""
    return [
        evaluate_policy(
            fit_bottom_up_policy(
                stage_probas,
                y_encoded,
                cumulative_cost,
                lam,
                sample_weight=sample_weight,
                **fit,
            ),
            stage_probas,
            y_encoded,
            cumulative_cost,
            sample_weight,
            lam,
        )
        for lam in cost_weights
    ]


def most_accurate_within_budget(
    frontier: list[PolicyEvaluation],
    normalized_budget: float,
    stage_probas,
    y_encoded,
    cumulative_cost,
    sample_weight=None,
    n_refinements: int = 8,
    **fit,
) -> PolicyEvaluation:
    """The most accurate policy whose held-out average cost is within the budget.

    Starts from the frontier's candidates, then bisects ``cost_weight`` (on a log
    scale) between the most accurate affordable candidate and the nearest cheaper
    -weighted candidate that is over budget, since the best affordable policy
    usually lies between two grid points. Every row exiting at the first stage is
    always a candidate, so any budget of at least the first stage's cost is met.
    """

    def evaluate(lam):
        policy = fit_bottom_up_policy(
            stage_probas,
            y_encoded,
            cumulative_cost,
            lam,
            sample_weight=sample_weight,
            **fit,
        )
        return evaluate_policy(
            policy, stage_probas, y_encoded, cumulative_cost, sample_weight, lam
        )

    # Average costs are sums of floats: a policy exactly at the budget may look
    # over it by the last bit, so the comparison allows for rounding.
    normalized_budget = normalized_budget * (1 + _BUDGET_RTOL)
    n_stages = len(stage_probas)
    cheapest = evaluate_policy(
        first_stage_policy(n_stages),
        stage_probas,
        y_encoded,
        cumulative_cost,
        sample_weight,
        np.inf,
    )
    candidates = [*frontier, cheapest]

    def best_affordable():
        affordable = [c for c in candidates if c.normalized_cost <= normalized_budget]
        # Ties in accuracy go to the cheaper policy.
        return max(affordable, key=lambda c: (c.accuracy, -c.normalized_cost))

    best = best_affordable()
    over_budget = [
        c.cost_weight
        for c in candidates
        if c.normalized_cost > normalized_budget and c.cost_weight < best.cost_weight
    ]
    if over_budget and np.isfinite(best.cost_weight):
        low, high = max(over_budget), best.cost_weight
        for _ in range(n_refinements):
            mid = np.sqrt(low * high) if low > 0 else high / 10.0
            candidate = evaluate(mid)
            candidates.append(candidate)
            if candidate.normalized_cost <= normalized_budget:
                high = mid
            else:
                low = mid
        best = best_affordable()
    return best
