"""The router of a fitted estimator: its cost, its learning on the policy
rows, and the frontier's routed points (see :mod:`skadaptive.policies._router`
for the router itself)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.utils import check_array

from ._costs import check_costs
from .policies._bottom_up import ExitRule
from .policies._router import (
    clearly_better,
    learn_router,
    routed_policy,
    routed_walk,
    row_error,
)
from .policies._selection import budget_status
from .policies._skips import _MAX_PRICE
from .stages import measure_exit_seconds
from .stages._costs import call_line_for


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
        if set(costs) != {"per_call", "per_row"}:
            raise ValueError(
                "costs given as a dict must have exactly the keys 'per_call' and "
                "'per_row' (with a router, the router's cost first in each); got "
                f"keys {sorted(map(str, costs))}."
            )
        parts = {}
        for key, value in costs.items():
            value = _numbers(value, f"costs[{key!r}]")
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
    values = _numbers(costs, "costs")
    if values.shape != (n_stages + 1,):
        raise ValueError(
            f"With a router, costs must have {expected} entries; got shape "
            f"{values.shape}. Pass costs='auto' (on the command line: leave out "
            "--costs) to measure every cost."
        )
    router = check_costs(values[:1], ["router"], allow_all_zero=True)
    return values[1:], np.array([0.0, router[0]])


def _numbers(values, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} must be numbers (with a router, its cost first, then one "
            f"per stage); got {values!r}."
        ) from exc


def check_auto_router_features(X) -> None:
    """``router="auto"`` needs numbers: say so before any stage is fitted."""
    try:
        check_array(
            X,
            accept_sparse=True,
            dtype="numeric",
            ensure_all_finite=False,
            ensure_min_samples=0,
        )
    except (TypeError, ValueError) as exc:
        # The same kind of error as scikit-learn's for such X.
        # The first line of the message only: some quote the whole input.
        said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        said = said if len(said) <= 200 else said[:197] + "..."
        raise type(exc)(
            f"router='auto' needs numeric features ({said}): it is a standardised "
            "logistic regression on X as the stages get it. Pass router= a "
            "classifier (or Pipeline) that encodes your features."
        ) from exc


def router_cost_of(estimator, policy) -> float:
    """The router's cost per row, where ``policy`` routes rows, else 0."""
    router = getattr(policy, "router", None)
    if router is None or router.learner is None:
        return 0.0
    return learned_router_cost(estimator, router)


def learned_router_cost(estimator, router) -> float:
    """Cost per row of running a learned ``router``: given in ``costs``, or
    measured. Where the fit's own router started every row at one stage
    (nothing ran, nothing was timed), the first learned one asked about (a
    point of ``frontier_``) is timed and its figures kept in
    ``router_search_`` for the others."""
    search = estimator.router_search_
    data = getattr(estimator, "_router_data", None)
    X_rows, given_cost = (None, None) if data is None else data
    if given_cost is not None:
        parts = tuple(map(float, given_cost))
    elif data is None or (
        np.isfinite(search["router_cost"]) and search["router_cost"] != 0.0
    ):
        return search["router_cost"]
    else:
        # NaN: nothing timed yet; a measured 0 (never a timing) is what
        # models saved before a constant start's cost was told apart kept.
        parts = _measured_parts(estimator, router, X_rows)
    search["router_cost_per_call"], search["router_cost_per_row"] = parts
    search["router_cost"] = _per_row(estimator, parts)
    return search["router_cost"]


def _measured_parts(estimator, router, X_rows) -> tuple[float, float]:
    """A learned router's time per call and per row, on the policy rows.

    Timed once per fit, on the first router learned that runs, and kept with
    the fitted estimator: every router learned from the fit afterwards (for a
    budget, ``frontier_``, the copies ``with_policy`` makes, before or after a
    save and load) is the same learner on the same features and is charged
    that time, so the same call gives the same figures.
    """
    timings = estimator.__dict__.setdefault("_router_timings", {})
    if "router" not in timings:
        seconds = call_line_for(
            measure_exit_seconds(
                _RouterStage(router),
                X_rows,
                random_state=estimator.random_state,
                batch_size=estimator.cost_batch_size_,
            ),
            estimator.cost_batch_size_,
        )
        timings["router"] = float(seconds.per_call[0]), float(seconds.per_row[0])
    return timings["router"]


def _per_row(estimator, parts) -> float:
    """A router's cost per row in calls of ``cost_batch_size_`` rows."""
    return parts[1] + parts[0] / estimator.cost_batch_size_


def _router_rows(estimator) -> tuple:
    """The policy rows' features and the router's given cost, kept by a fit
    with a router (``router=`` set after a fit without one finds none)."""
    data = getattr(estimator, "_router_data", None)
    if data is None:
        from ._base import PolicyRowsDiscardedError

        raise PolicyRowsDiscardedError(
            "The policy rows' features were discarded (discard_policy_rows) "
            "or never kept (router= set after a fit without one), so no "
            "router can be learned: refit the estimator."
        )
    return data


def _starts_every_row_first(router) -> bool:
    """Whether ``router`` starts every row at the first stage: it then routes
    nothing, and no fit or frontier point keeps it."""
    return router.learner is None and router.constant == 0


def routed_frontier(estimator, points, rows) -> list:
    """``frontier_``'s points with a router learned for each, where it
    lowers ``loss + cost_weight * cost`` on the policy rows."""
    X_rows, _ = _router_rows(estimator)
    total = estimator.cumulative_costs_[-1]
    cumulative = estimator.cumulative_costs_ / total
    search = estimator._policy_search_maker(*rows)(cumulative)
    everything = np.arange(len(rows[1]))
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
            _allow_nan(estimator),
        )
        exit_stage, ran = routed_walk(routed, search.stage_probas, X_rows)
        figures = search.evaluate_exits(routed, exit_stage, weight, ran)
        cost = (
            router_cost_of(estimator, routed)
            + estimator._cost_of_rates(figures.exit_rates, figures.run_rates)
        ) / total
        plain_risk = 1 - point.accuracy + weight * point.normalized_cost
        # A router that starts every row at the first stage is none (as
        # fit judges it): the point keeps its plain policy.
        trivial = routed.router is None or _starts_every_row_first(routed.router)
        if not trivial and 1 - figures.accuracy + weight * cost < plain_risk:
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
    X_rows, given_cost = _router_rows(estimator)
    # The router's cost when it runs: given, or measured once one is learned.
    parts = (np.nan, np.nan) if given_cost is None else tuple(map(float, given_cost))
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
    allow_nan = _allow_nan(estimator)
    deepest = len(estimator.policy_.rules)
    if deepest < len(stage_probas) - 1:
        # With per-call costs the policy kept may stop every row before the
        # last stage: a router would choose among stages it never runs.
        _record_no_router(
            estimator,
            parts,
            f"the policy kept answers every row by stage {deepest} "
            "(deepest_stage_: with per-call costs, each later stage costs more "
            "per call than it adds), and a router is learned only for a policy "
            "that reaches the last stage",
        )
        return
    rows = np.arange(len(y_encoded))

    def router_for(normalized_budget):
        # The router on every policy row (for a budget: learned for it).
        return routed_policy(
            estimator.policy_,
            search,
            rows,
            X_rows,
            price,
            normalized_budget,
            estimator.router,
            cumulative,
            allow_nan,
        ).router

    # Timed for its cost; without a budget, the one kept.
    router = router_for(None)
    if router.learner is not None and given_cost is None:
        parts = _measured_parts(estimator, router, X_rows)
    budget = None
    if estimator.budget is not None:
        # Exit thresholds chosen again on the routed paths, for what the
        # budget searched (lowered by budget_confidence) leaves once a
        # learned router is paid; the router kept is learned for that budget
        # (at a raised price where the budget's price starts too many rows
        # at dear stages to meet it).
        searched = (estimator.budget_search_ or {}).get(
            "searched_budget", estimator.budget
        )
        limit = min(searched, estimator.budget)
        for _ in range(2):
            run_cost = _per_row(estimator, parts)
            run_cost = run_cost if np.isfinite(run_cost) else 0.0
            budget = (limit - run_cost) / total
            if budget < cumulative[0]:
                _record_no_router(
                    estimator,
                    parts,
                    f"the budget less the router's cost ({run_cost:.4g}) is below "
                    f"the first stage's cost ({estimator.cumulative_costs_[0]:.4g})",
                )
                return
            router = router_for(budget)
            if router.learner is None or np.isfinite(_per_row(estimator, parts)):
                break
            # Measured costs, and only this router learned for the budget
            # runs: it is timed, and learned again for what its cost leaves.
            parts = _measured_parts(estimator, router, X_rows)
    # What the rows pay for the router kept: a constant start runs nothing.
    cost = 0.0 if router.learner is None else _per_row(estimator, parts)
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
        allow_nan=allow_nan,
        router=router,
    )
    with_router, without = routed.out_of_sample, routed.without_router
    figures = {
        name: (
            evaluation.accuracy,
            paid
            + estimator._cost_of_rates(evaluation.exit_rates, evaluation.run_rates),
        )
        for name, evaluation, paid in (
            ("without", without, 0.0),
            ("with", with_router, cost),
        )
    }
    # Row by row, cross-fitted (normalised costs, the router paid where it
    # runs), for the one-standard-error rule.
    rows = routed.rows
    routed_costs = rows.cost["with"] + cost / total
    # The routed policy's cost on the policy rows (in sample, router paid).
    routed_rows_cost = cost + estimator._cost_of_rates(
        routed.in_sample.exit_rates, routed.in_sample.run_rates
    )
    if _starts_every_row_first(router):
        better, reason = False, "it starts every row at the first stage"
    elif estimator.budget is not None:
        # With budget_confidence, within the budget searched (lowered for
        # the margin), as the policy's own thresholds were chosen.
        limit = estimator.budget
        if estimator.budget_confidence is not None:
            limit = min(
                limit, (estimator.budget_search_ or {}).get("searched_budget", limit)
            )
        rows_cost = {"with": routed_rows_cost, "without": estimator.policy_rows_cost_}
        errors = {name: row_error(rows, rows.cost[name]) * total for name in rows.cost}
        clear = {
            "accuracy": clearly_better(rows, rows.loss["without"] - rows.loss["with"]),
            "cost": clearly_better(rows, rows.cost["without"] - routed_costs),
        }
        better, reason = _router_at_budget(
            figures, rows_cost, errors, clear, limit, estimator._figure_words
        )
    else:
        risk = {
            name: rows.loss[name] + price * row_cost
            for name, row_cost in (
                ("with", routed_costs),
                ("without", rows.cost["without"]),
            )
        }
        clear = clearly_better(rows, risk["without"] - risk["with"])
        better, reason = _router_at_cost_weight(figures, price, total, clear)
    _record_router_search(estimator, figures, parts, better, reason)
    if not better:
        return
    in_sample = routed.in_sample
    estimator.router_ = routed.policy.router
    estimator.router_cost_ = cost
    estimator.policy_ = routed.policy
    estimator.exit_rates_ = in_sample.exit_rates
    # Thresholds chosen again on routed paths (and late starts) may send rows
    # past the deepest stage of the policy without the router.
    estimator.deepest_stage_ = int(np.flatnonzero(in_sample.exit_rates > 0).max())
    estimator.policy_rows_accuracy_ = in_sample.accuracy
    estimator.policy_rows_cost_ = routed_rows_cost
    estimator.expected_accuracy_, estimator.expected_cost_ = figures["with"]
    estimator.expected_exit_rates_ = with_router.exit_rates
    if getattr(estimator, "budget_search_", None) is not None:
        # The policy kept is the routed one: whether it spends the budget.
        estimator.budget_status_ = budget_status(
            estimator.policy_rows_cost_, estimator.budget_search_["searched_budget"]
        )


def _record_no_router(estimator, parts, reason) -> None:
    """``router_search_`` where no router could be learned: the policy's own
    figures without one, none with one, and why."""
    figures = {
        "without": (estimator.expected_accuracy_, estimator.expected_cost_),
        "with": (np.nan, np.nan),
    }
    _record_router_search(estimator, figures, parts, False, reason)


def _record_router_search(estimator, figures, parts, kept, reason) -> None:
    """``router_search_``: the figures without and with the router, and why;
    the router's cost when it runs (NaN until one learned is timed)."""
    estimator.router_search_ = {
        "router": np.array(["none", "learned"]),
        "expected_accuracy": np.array([figures["without"][0], figures["with"][0]]),
        "expected_cost": np.array([figures["without"][1], figures["with"][1]]),
        "router_cost": _per_row(estimator, parts),
        "router_cost_per_call": parts[0],
        "router_cost_per_row": parts[1],
        "kept": bool(kept),
        "reason": reason,
    }


def _allow_nan(estimator) -> bool:
    """Whether the stages take missing values (so must ``router="auto"``)."""
    return bool(estimator.__sklearn_tags__().input_tags.allow_nan)


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


def _router_at_budget(
    figures, rows_cost, errors, clear, limit, quality
) -> tuple[bool, str]:
    """Whether the router beats the policy without it at a budget, and why,
    in words.

    ``figures`` holds each side's cross-fitted ``(accuracy, cost)``,
    ``errors`` the standard error of that cost, ``rows_cost`` its cost on
    the policy rows, and ``clear`` whether the router's gain row by row is
    above one standard error in ``"accuracy"`` and in ``"cost"``;
    ``quality(accuracy)`` words a figure (the estimator's
    ``_figure_words``: a classifier's accuracy, a regressor's error). A side
    meets the budget where its policy rows do and its cross-fitted cost is
    not over the budget by more than one standard error: the policy rows'
    cost is met by construction (each side's thresholds were chosen on
    them, and a flexible router can learn them by heart), and the
    cross-fitted one is an estimate, a percent or two off for thresholds.
    Meeting the budget comes first. Where both do, the router is kept as a
    learned kind of exit score replaces the thresholds: when it is more
    accurate by more than one standard error, or no less accurate and
    cheaper by more than one. Where neither does (per-call costs may take
    both over), it is kept only if it is cheaper out of sample and no less
    accurate.
    """
    over = limit * (1 + 1e-9)
    (accuracy, cost), (accuracy_without, cost_without) = (
        figures["with"],
        figures["without"],
    )
    owners = {"with": "with it", "without": "without it"}

    def failing(name):
        # Why a side does not meet the budget, or None where it does.
        if rows_cost[name] > over:
            return (
                f"{owners[name]} the policy rows cost {rows_cost[name]:.4g}, over "
                "the budget"
            )
        if figures[name][1] > over + errors[name]:
            return (
                f"{owners[name]} the cross-fitted cost, {figures[name][1]:.4g}, is "
                f"over the budget by more than one standard error ({errors[name]:.2g})"
            )
        return None

    fails = {name: failing(name) for name in figures}
    if (fails["with"] is None) != (fails["without"] is None):
        if fails["with"] is None:
            return True, f"it meets the budget, and {fails['without']}"
        return False, f"the policy meets the budget without it, and {fails['with']}"
    if fails["with"] is None:
        if clear["accuracy"]:
            better, what = True, "more accurate out of sample by more than one"
        elif accuracy >= accuracy_without and clear["cost"]:
            better, what = (
                True,
                "as accurate out of sample and cheaper by more than one",
            )
        else:
            better, what = (
                False,
                (
                    "neither more accurate out of sample by more than one standard "
                    "error nor as accurate and cheaper by more than one"
                ),
            )
        what += " standard error" if better else ""
        note = (
            "; a cross-fitted cost over the budget by less than one standard "
            "error counts as meeting it"
            if max(cost, cost_without) > over
            else ""
        )
        return better, (
            "it and the policy without it both meet the budget, and it was "
            f"{what} (cross-fitted, with it and without: {quality(accuracy)} and "
            f"{quality(accuracy_without)}, cost {cost:.4g} and {cost_without:.4g}"
            f"{note})"
        )
    better = cost < cost_without and accuracy >= accuracy_without
    if better:
        return better, (
            "over the budget as the policy without it is, it was cheaper and "
            "no less accurate"
        )
    faults = ["no cheaper"] if cost >= cost_without else []
    faults += ["less accurate"] if accuracy < accuracy_without else []
    return better, (
        "over the budget as the policy without it is, it was " + " and ".join(faults)
    )


def _router_at_cost_weight(figures, cost_weight, total, clear) -> tuple[bool, str]:
    """Whether the router lowers the policy's cross-fitted error +
    ``cost_weight`` * cost / ``total`` (the full cost) by more than one
    standard error of the paired per-row difference (``clear``), and why,
    in words: a tie, or a difference of a row or two, keeps the policy
    without it."""
    risks = {
        name: 1 - accuracy + cost_weight * cost / total
        for name, (accuracy, cost) in figures.items()
    }
    lower = risks["with"] < risks["without"]
    better = bool(lower and clear)
    if better:
        verdict = "lower by more than one standard error"
    elif lower:
        verdict = "lower, by less than one standard error"
    else:
        verdict = "not lower"
    return better, f"its cross-fitted error + cost_weight * cost was {verdict}"


class _RouterStage:
    """A router as a one-stage source, to time it like the stages."""

    n_stages = 1

    def __init__(self, router):
        self.router = router

    def run_stage(self, stage, X_rows, state):
        return self.router.first_stages(X_rows), None

    def keep_rows(self, state, mask):
        return state
