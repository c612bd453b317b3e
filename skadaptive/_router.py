"""The router of a fitted estimator: its cost, its learning on the policy
rows, and the frontier's routed points (see :mod:`skadaptive.policies._router`
for the router itself)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._costs import check_costs
from .policies._bottom_up import ExitRule
from .policies._router import learn_router, routed_policy, routed_walk
from .policies._skips import _MAX_PRICE
from .stages import measure_exit_seconds


def split_router_cost(estimator, names):
    """``costs`` of the stages, and the router's (None: measured).

    With a router, numeric ``costs`` give the router's cost first."""
    costs = estimator.costs
    if (
        getattr(estimator, "router", None) is None
        or costs is None
        or isinstance(costs, str)
        or names is None
    ):
        return costs, None
    n_stages = len(names)
    expected = f"{n_stages + 1} (the router's cost, then one per stage {names})"
    if isinstance(costs, dict):
        parts = {}
        for key, value in costs.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (n_stages + 1,):
                raise ValueError(
                    f"With a router, costs[{key!r}] must have {expected} "
                    f"entries; got shape {value.shape}."
                )
            parts[key] = value
        router = check_costs(
            [parts.get("per_call", [0])[0], parts.get("per_row", [0])[0]],
            ["router per call", "router per row"],
            allow_all_zero=True,
        )
        return {k: v[1:] for k, v in parts.items()}, router
    values = np.asarray(costs, dtype=np.float64)
    if values.shape != (n_stages + 1,):
        raise ValueError(
            f"With a router, costs must have {expected} entries; got shape "
            f"{values.shape}. Pass costs='auto' to measure every cost."
        )
    router = check_costs(values[:1], ["router"], allow_all_zero=True)
    return values[1:], np.array([0.0, router[0]])


def router_cost_of(estimator, policy) -> float:
    """The router's cost per row, where ``policy`` routes rows, else 0."""
    router = getattr(policy, "router", None)
    if router is None or router.learner is None:
        return 0.0
    return estimator.router_search_["router_cost"]


def routed_frontier(estimator, points, rows) -> list:
    """``frontier_``'s points with a router learned for each, where it
    lowers ``loss + cost_weight * cost`` on the policy rows."""
    X_rows, _ = estimator._router_data
    total = estimator.cumulative_costs_[-1]
    cumulative = estimator.cumulative_costs_ / total
    search = estimator._policy_search_maker(*rows)(cumulative)
    everything = np.arange(len(rows[1]))
    router_cost = estimator.router_search_["router_cost"] / total
    routed_points = []
    for point in points:
        weight = point.cost_weight
        routed = routed_policy(
            point.policy,
            search,
            everything,
            X_rows,
            weight,
            None,
            estimator.router,
            cumulative,
        )
        exit_stage, ran = routed_walk(routed, search.stage_probas, X_rows)
        figures = search.evaluate_exits(routed, exit_stage, weight, ran)
        cost = router_cost * (routed.router.learner is not None) + (
            estimator._cost_of_rates(figures.exit_rates, figures.run_rates) / total
        )
        plain_risk = 1 - point.accuracy + weight * point.normalized_cost
        if 1 - figures.accuracy + weight * cost < plain_risk:
            point = replace(figures, normalized_cost=cost)
        routed_points.append(point)
    return routed_points


def learn_estimator_router(estimator, stage_probas, y_encoded, sample_weight) -> None:
    """Learn the router for ``policy_`` and keep it where it does better."""
    if not hasattr(estimator, "router"):
        return  # early exits: no router
    estimator.router_ = None
    estimator.router_cost_ = 0.0
    estimator.router_search_ = None
    if getattr(estimator, "router", None) is None:
        return
    data = getattr(estimator, "_router_data", None)
    if data is None:
        from ._base import PolicyRowsDiscardedError

        raise PolicyRowsDiscardedError(
            "The policy rows' features were discarded (discard_policy_rows) "
            "or never kept, so no router can be learned: refit the estimator."
        )
    X_rows, given_cost = data
    total = estimator.cumulative_costs_[-1]
    cumulative = estimator.cumulative_costs_ / total
    search = estimator._policy_search_maker(stage_probas, y_encoded, sample_weight)(
        cumulative
    )
    budget = None
    if estimator.budget is not None:
        price = estimator.cost_weight_
        if not np.isfinite(price):
            price = min(search.budget_weight(estimator.budget / total), _MAX_PRICE)
    else:
        price = estimator.cost_weight
    rows = np.arange(len(y_encoded))
    router = routed_policy(
        estimator.policy_,
        search,
        rows,
        X_rows,
        price,
        None,
        estimator.router,
        cumulative,
    ).router
    if router.learner is None:
        cost = 0.0  # a constant start: nothing runs
    elif given_cost is not None:
        cost = float(given_cost[1] + given_cost[0] / estimator.cost_batch_size_)
    else:
        seconds = measure_exit_seconds(
            _RouterStage(router), X_rows, random_state=estimator.random_state
        )
        cost = float(
            seconds.per_row[0] + seconds.per_call[0] / estimator.cost_batch_size_
        )
    budget = None
    if estimator.budget is not None:
        # Exit thresholds chosen again on the routed paths, for what the
        # budget leaves once the router is paid.
        budget = (estimator.budget - cost) / total
        if budget < cumulative[0]:
            estimator.router_search_ = {
                "router": np.array(["none", "learned"]),
                "expected_accuracy": np.array([estimator.expected_accuracy_, np.nan]),
                "expected_cost": np.array([estimator.expected_cost_, np.nan]),
                "router_cost": cost,
                "kept": False,
            }
            return
    routed = learn_router(
        estimator.policy_,
        search,
        X_rows,
        learner=estimator.router,
        price=price,
        normalized_budget=budget,
        cumulative_cost=cumulative,
        random_state=estimator.random_state,
        relearn=_relearner(estimator, search, cumulative),
    )
    with_router = routed.out_of_sample
    expected_cost = cost + estimator._cost_of_rates(
        with_router.exit_rates, with_router.run_rates
    )
    if router.learner is None and router.constant == 0:
        better = False  # every row starts at the first stage: no router
    elif estimator.budget is not None:
        better = _better_within_budget(
            (with_router.accuracy, expected_cost),
            (estimator.expected_accuracy_, estimator.expected_cost_),
            estimator.budget,
        )
    else:
        before = (
            1 - estimator.expected_accuracy_ + price * estimator.expected_cost_ / total
        )
        after = 1 - with_router.accuracy + price * expected_cost / total
        better = after < before
    estimator.router_search_ = {
        "router": np.array(["none", "learned"]),
        "expected_accuracy": np.array(
            [estimator.expected_accuracy_, with_router.accuracy]
        ),
        "expected_cost": np.array([estimator.expected_cost_, expected_cost]),
        "router_cost": cost,
        "kept": bool(better),
    }
    if not better:
        return
    in_sample = routed.in_sample
    estimator.router_ = router
    estimator.router_cost_ = cost
    estimator.policy_ = routed.policy
    estimator.exit_rates_ = in_sample.exit_rates
    estimator.policy_rows_accuracy_ = in_sample.accuracy
    estimator.policy_rows_cost_ = cost + estimator._cost_of_rates(
        in_sample.exit_rates, in_sample.run_rates
    )
    estimator.expected_accuracy_ = with_router.accuracy
    estimator.expected_cost_ = expected_cost


def _relearner(estimator, search, cumulative):
    """``relearn(rows)``: ``policy_``'s kind of policy, learned on ``rows``.

    For a ``cost_weight``, the family's policy for it; for a budget, the
    budget search's candidate of the kind kept (candidates come in the same
    order on any rows), for the budget it searched; stopped at
    ``deepest_stage_`` as ``policy_`` is. (With per-call costs ``policy_``
    was searched over its deepest stages with their costs counted one of two
    ways; here over every stage with ``costs_``.)
    """
    n_stages = len(cumulative)
    deepest = getattr(estimator, "deepest_stage_", n_stages - 1)
    if estimator.budget is None:

        def learn(rows):
            return search.subset(rows).at_cost_weight(estimator.cost_weight).policy

    else:
        searched = estimator.budget_search_
        chosen = int(searched["chosen"])
        if str(searched["scores"][chosen]) == "first stage only":
            return None  # nothing learned: the same policy on any rows
        target = searched["searched_budget"] / estimator.cumulative_costs_[-1]

        def learn(rows):
            return search.subset(rows).budget_candidates(target)[chosen].policy

    if deepest >= n_stages - 1:
        return learn

    def stopped(rows):
        policy = learn(rows)
        exit_all = [ExitRule("confidence", threshold=-np.inf)]
        rules = list(policy.rules[:deepest]) + exit_all * (n_stages - 1 - deepest)
        return replace(policy, rules=rules)

    return stopped


def _better_within_budget(challenger, incumbent, budget) -> bool:
    """Whether ``(accuracy, cost)`` ``challenger`` beats ``incumbent`` at a
    budget: within it before over it, then more accurate, then cheaper; of
    two over it, only one cheaper and no less accurate."""
    within = [cost <= budget * (1 + 1e-9) for _, cost in (challenger, incumbent)]
    if within[0] != within[1]:
        return within[0]
    if not within[0]:
        return challenger[1] < incumbent[1] and challenger[0] >= incumbent[0]
    return (challenger[0], -challenger[1]) > (incumbent[0], -incumbent[1])


class _RouterStage:
    """A router as a one-stage source, to time it like the stages."""

    n_stages = 1

    def __init__(self, router):
        self.router = router

    def run_stage(self, stage, X_rows, state):
        return self.router.first_stages(X_rows), None

    def keep_rows(self, state, mask):
        return state
