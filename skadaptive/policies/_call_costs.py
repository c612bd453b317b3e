"""Policies for stages that cost something per call, not only per row.

A stage called on a batch of ``B`` rows takes ``per_call + n * per_row``
seconds when ``n`` of the rows reach it. Its per-call part is paid once per
batch by every stage that at least one row reaches, so it is not a cost of a
row: a policy that sends 1 % of the rows to a stage pays that stage's whole
per-call part for them. With ``share = per_call / B`` (the per-call part
spread over a full batch), a batch drawn like the policy rows costs per row,
on average,

    sum_k exit_rate_k * variable_k  +  sum_k share_k * P(a row reaches k)

where ``variable_k`` is the per-row cost up to stage ``k`` and ``P(a row
reaches k) = 1 - (1 - reach_k) ** B`` (:func:`batch_cost`).

In a cascade every stage up to the deepest one any row reaches is called, so
:func:`choose_with_call_costs` learns policies per deepest stage ``L`` (every
row answers at ``L`` at the latest), each for per-row costs that bound the
true cost from above: the per-call parts of stages ``0..L`` set aside (taken
off the budget: right for large batches), or charged to every row reaching
their stage (exact for one-row batches). It keeps the option that does best:
with a small batch, stopping before a stage whose per-call part outweighs
what it adds is often the best policy, and no per-row cost can express it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ._bottom_up import ExitRule
from ._policy import CascadePolicy, PolicyEvaluation, stage_correct
from ._selection import budget_status, choose_policy
from ._skips import SkipPolicy


def batch_cost(
    exit_rates: np.ndarray,
    variable_cumulative: np.ndarray,
    share: np.ndarray,
    batch_size: int,
    run_rates: np.ndarray | None = None,
) -> float:
    """Average cost per row of a batch of ``batch_size`` rows with these exit rates.

    Parameters
    ----------
    exit_rates : ndarray of shape (n_stages,)
        Share of the rows answering at each stage.
    variable_cumulative : ndarray of shape (n_stages,)
        Per-row cost of a row answering at each stage, without the per-call
        parts.
    share : ndarray of shape (n_stages,)
        Each stage's per-call cost divided by ``batch_size``.
    batch_size : int
    run_rates : ndarray of shape (n_stages,), default=None
        Share of the rows that each stage runs on, for a policy that skips
        stages; None: every stage up to a row's exit.

    Returns
    -------
    cost : float

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._call_costs import batch_cost
    >>> # 10 % of a batch of 100 rows reach a stage with a per-call part of 50:
    >>> # it is called in nearly every batch and costs 0.5 per row of the batch.
    >>> round(batch_cost(np.array([0.9, 0.1]), np.array([1.0, 3.0]),
    ...                  np.array([0.0, 0.5]), 100), 3)
    1.7
    """
    exit_rates = np.asarray(exit_rates, dtype=np.float64)
    if run_rates is None:
        reach = np.clip(exit_rates[::-1].cumsum()[::-1], 0.0, 1.0)
        variable = exit_rates @ variable_cumulative
    else:
        reach = np.clip(np.asarray(run_rates, dtype=np.float64), 0.0, 1.0)
        steps = np.diff(np.asarray(variable_cumulative, dtype=np.float64), prepend=0.0)
        variable = reach @ steps
    called = 1.0 - (1.0 - reach) ** batch_size
    return float(variable + called @ share)


def stop_at(policy: CascadePolicy, deepest: int, n_stages: int) -> CascadePolicy:
    """``policy`` over stages ``0..deepest``, as a policy over ``n_stages``.

    Every row still running after stage ``deepest`` answers there.
    """
    exit_all = [ExitRule("confidence", threshold=-np.inf)]
    rules = list(policy.rules) + exit_all * (n_stages - 1 - deepest)
    if policy.skips:
        return SkipPolicy(rules, list(policy.jumps))
    return CascadePolicy(rules)


def _first_stage_accuracy(stage_probas, y_encoded, sample_weight, loss) -> float:
    """Weighted accuracy (minus the loss, for regression) of answering every
    row at the first stage."""
    weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
    correct = stage_correct(stage_probas[:1], y_encoded, loss)[0]
    return float(correct @ weight) / weight.sum()


def _padded(rates, n_stages):
    out = np.zeros(n_stages)
    out[: len(rates)] = rates
    return out


#: Per-call parts below this share of the full cost (large batches) are set
#: aside at the full depth only: stopping earlier or charging them per row
#: could save no more than this, and each option is a policy search.
_NEGLIGIBLE_SHARE = 0.02


def _depths(share) -> range:
    """The deepest stages to search a policy for (see ``_NEGLIGIBLE_SHARE``)."""
    n_stages = len(share)
    if share.sum() <= _NEGLIGIBLE_SHARE:
        return range(n_stages - 1, n_stages)
    return range(1, n_stages)


def _accountings(variable_cumulative, share, batch_size, deepest):
    """How a search over stages ``0..deepest`` counts the per-call parts.

    Two upper bounds of :func:`batch_cost`, as ``(name, cumulative per-row
    cost, part set aside)``: every call paid in full by every batch ("set
    aside", right when most batches reach the stage), or each stage after the
    first charged its whole per-call part for every row that reaches it ("per
    row", exact for batches of one row: ``(1 - (1 - r) ** B) / B <= r``). The
    first stage, which every batch calls, is set aside in both.
    """
    n = deepest + 1
    variable = np.asarray(variable_cumulative[:n], dtype=np.float64)
    per_call = np.asarray(share[:n], dtype=np.float64) * batch_size
    options = [("set aside", variable, float(share[:n].sum()))]
    if deepest > 0 and per_call[1:].any() and share.sum() > _NEGLIGIBLE_SHARE:
        reaching = variable + np.cumsum(np.r_[0.0, per_call[1:]])
        options.append(("per row", reaching, float(share[0])))
    return options


def choose_with_call_costs(
    make_search: Callable,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    sample_weight,
    *,
    variable_cumulative: np.ndarray,
    share: np.ndarray,
    batch_size: int,
    cost_weight: float,
    normalized_budget: float | None,
    confidence: float | None,
    random_state,
    cost_unit: float,
    loss: str = "zero_one",
) -> dict:
    """:func:`~skadaptive.policies._selection.choose_policy` with per-call costs.

    Costs are normalised: ``variable_cumulative`` and ``share`` are fractions
    of the cost of running every stage on a full batch (``cost_unit``).
    Without per-call parts this is ``choose_policy`` on
    ``make_search(variable_cumulative)``. With them, policies are chosen for
    each deepest stage ``L`` on the first ``L + 1`` stages, once for each
    way of counting the per-call parts (:func:`_accountings`: both are upper
    bounds of the true cost, so a budget met under either is met), and the
    option kept is, for a budget, the most accurate out of sample (then the
    cheaper); for a ``cost_weight``, the one with the lowest
    ``error + cost_weight * cost`` on the policy rows, as for ``frontier_``
    (:func:`frontier_with_call_costs`). Its costs are :func:`batch_cost` of
    its exit rates.

    Parameters
    ----------
    make_search : callable
        ``make_search(cumulative)`` returns the policy search over the first
        ``len(cumulative)`` stages, with these normalised per-row costs.
    stage_probas : list of ndarray
    y_encoded : ndarray of shape (n_rows,)
    sample_weight : ndarray of shape (n_rows,) or None
    variable_cumulative, share : ndarray of shape (n_stages,)
    batch_size : int
    cost_weight, normalized_budget, confidence, random_state, cost_unit
        As for ``choose_policy``.
    loss : str, default="zero_one"
        The searches' loss (what "accuracy" means for the first-stage option).

    Returns
    -------
    chosen : dict
        The keys of ``choose_policy``, its costs including the per-call parts,
        and ``deepest_stage``; ``budget_search`` is the kept option's, its
        costs as that search counted them (an upper bound).
    """
    n_stages = len(stage_probas)
    if not np.any(share > 0):
        chosen = choose_policy(
            make_search(variable_cumulative),
            cost_weight=cost_weight,
            normalized_budget=normalized_budget,
            confidence=confidence,
            random_state=random_state,
            cost_unit=cost_unit,
        )
        chosen["deepest_stage"] = int(np.flatnonzero(chosen["exit_rates"] > 0).max())
        return chosen
    first_accuracy = _first_stage_accuracy(stage_probas, y_encoded, sample_weight, loss)

    def cost(rates, run_rates):
        return (
            batch_cost(rates, variable_cumulative, share, batch_size, run_rates)
            * cost_unit
        )

    options = []
    first_rates = _padded([1.0], n_stages)
    first_cost = cost(first_rates, None)
    first = {
        "policy": CascadePolicy([]),
        "cost_weight": cost_weight if normalized_budget is None else np.nan,
        "exit_rates": first_rates,
        "expected_exit_rates": first_rates,
        "run_rates": first_rates,
        "expected_run_rates": first_rates,
        "policy_rows_accuracy": first_accuracy,
        "expected_accuracy": first_accuracy,
        "budget_status": None,
        "budget_search": None,
        "deepest_stage": 0,
        "held_out_exits": np.zeros(len(y_encoded), dtype=np.intp),
    }
    if normalized_budget is not None:
        first["budget_status"] = budget_status(
            first_cost, normalized_budget * cost_unit
        )
        first["budget_search"] = {
            "scores": np.array(["first stage only"]),
            "cost_weight": np.array([np.nan]),
            "policy_rows_accuracy": np.array([first_accuracy]),
            "policy_rows_cost": np.array([first_cost]),
            "expected_accuracy": np.array([first_accuracy]),
            "expected_cost": np.array([first_cost]),
            "chosen": 0,
            "searched_budget": normalized_budget * cost_unit,
            "deepest_stage": 0,
            "per_call_accounting": "set aside",
        }
    options.append(first)
    for deepest in _depths(share):
        for accounting, cumulative, aside in _accountings(
            variable_cumulative, share, batch_size, deepest
        ):
            budget = None if normalized_budget is None else normalized_budget - aside
            if budget is not None and budget < cumulative[0]:
                continue
            chosen = choose_policy(
                make_search(cumulative),
                cost_weight=cost_weight,
                normalized_budget=budget,
                confidence=confidence,
                random_state=random_state,
                cost_unit=cost_unit,
            )
            for key in (
                "exit_rates",
                "expected_exit_rates",
                "run_rates",
                "expected_run_rates",
            ):
                chosen[key] = _padded(chosen[key], n_stages)
            if chosen["budget_search"] is not None:
                search = chosen["budget_search"]
                for key in ("policy_rows_cost", "expected_cost", "searched_budget"):
                    search[key] = search[key] + aside * cost_unit
                search["deepest_stage"] = deepest
                search["per_call_accounting"] = accounting
            chosen["policy"] = stop_at(chosen["policy"], deepest, n_stages)
            chosen["deepest_stage"] = deepest
            options.append(chosen)
    for chosen in options:
        # Run rates only where rows skip stages: otherwise the exit rates say
        # it all, and the cost is computed as it always was.
        skips = chosen["policy"].skips
        chosen["policy_rows_cost"] = cost(
            chosen["exit_rates"], chosen["run_rates"] if skips else None
        )
        chosen["expected_cost"] = cost(
            chosen["expected_exit_rates"],
            chosen["expected_run_rates"] if skips else None,
        )
        if chosen["budget_search"] is not None:
            # Judged on the batch cost the rows pay, as documented: the
            # search's own cost set the per-call parts aside.
            chosen["budget_status"] = budget_status(
                chosen["policy_rows_cost"],
                chosen["budget_search"]["searched_budget"],
            )
    if normalized_budget is not None:
        return max(options, key=lambda c: (c["expected_accuracy"], -c["expected_cost"]))
    # As frontier_with_call_costs does, so that with_policy(cost_weight=)
    # gives the frontier_ point of that cost weight.
    return min(
        options,
        key=lambda c: (
            1.0
            - c["policy_rows_accuracy"]
            + cost_weight * c["policy_rows_cost"] / cost_unit,
            c["policy_rows_cost"],
        ),
    )


def frontier_with_call_costs(
    make_search: Callable,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    sample_weight,
    cost_weights: np.ndarray,
    *,
    variable_cumulative: np.ndarray,
    share: np.ndarray,
    batch_size: int,
    loss: str = "zero_one",
) -> list[PolicyEvaluation]:
    """The policies of ``frontier_``, with per-call costs.

    For each ``cost_weight``, of the policies of every deepest stage and way
    of counting the per-call parts (see :func:`choose_with_call_costs`), the
    one with the lowest ``error + cost_weight * cost`` on the policy rows, its
    cost from :func:`batch_cost`.
    """
    n_stages = len(stage_probas)
    if not np.any(share > 0):
        return make_search(variable_cumulative).frontier(cost_weights)
    first_rates = _padded([1.0], n_stages)
    first = PolicyEvaluation(
        cost_weight=np.nan,
        policy=stop_at(CascadePolicy([]), 0, n_stages),
        accuracy=_first_stage_accuracy(stage_probas, y_encoded, sample_weight, loss),
        normalized_cost=batch_cost(first_rates, variable_cumulative, share, batch_size),
        exit_rates=first_rates,
    )
    traces = [
        (deepest, make_search(cumulative).frontier(cost_weights))
        for deepest in _depths(share)
        for _, cumulative, _ in _accountings(
            variable_cumulative, share, batch_size, deepest
        )
    ]
    points = []
    for j, lam in enumerate(cost_weights):
        candidates = [replace(first, cost_weight=lam)]
        for deepest, frontier in traces:
            point = frontier[j]
            rates = _padded(point.exit_rates, n_stages)
            run_rates = _padded(point.run_rates, n_stages)
            candidates.append(
                replace(
                    point,
                    policy=stop_at(point.policy, deepest, n_stages),
                    exit_rates=rates,
                    run_rates=run_rates,
                    normalized_cost=batch_cost(
                        rates,
                        variable_cumulative,
                        share,
                        batch_size,
                        run_rates if point.policy.skips else None,
                    ),
                )
            )
        points.append(
            min(
                candidates,
                key=lambda p, lam=lam: (
                    1.0 - p.accuracy + lam * p.normalized_cost,
                    p.normalized_cost,
                ),
            )
        )
    return points
