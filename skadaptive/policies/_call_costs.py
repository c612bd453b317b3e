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
:func:`choose_with_call_costs` learns one policy per deepest stage ``L``
(every row answers at ``L`` at the latest), each for the per-row costs with
the per-call parts of stages ``0..L`` set aside (taken off the budget), and
keeps the depth that does best out of sample: with a small batch, stopping
before a stage whose per-call part outweighs what it adds is often the best
policy, and no per-row cost can express it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ._bottom_up import ExitRule
from ._policy import CascadePolicy, PolicyEvaluation, stage_correct
from ._selection import choose_policy


def batch_cost(
    exit_rates: np.ndarray,
    variable_cumulative: np.ndarray,
    share: np.ndarray,
    batch_size: int,
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
    reach = np.clip(exit_rates[::-1].cumsum()[::-1], 0.0, 1.0)
    called = 1.0 - (1.0 - reach) ** batch_size
    return float(exit_rates @ variable_cumulative + called @ share)


def stop_at(policy: CascadePolicy, deepest: int, n_stages: int) -> CascadePolicy:
    """``policy`` over stages ``0..deepest``, as a policy over ``n_stages``.

    Every row still running after stage ``deepest`` answers there.
    """
    exit_all = [ExitRule("confidence", threshold=-np.inf)]
    return CascadePolicy(list(policy.rules) + exit_all * (n_stages - 1 - deepest))


def _first_stage_accuracy(stage_probas, y_encoded, sample_weight) -> float:
    """Weighted accuracy of answering every row at the first stage."""
    weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
    return float(stage_correct(stage_probas[:1], y_encoded)[0] @ weight) / weight.sum()


def _padded(rates, n_stages):
    out = np.zeros(n_stages)
    out[: len(rates)] = rates
    return out


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
) -> dict:
    """:func:`~skadaptive.policies._selection.choose_policy` with per-call costs.

    Costs are normalised: ``variable_cumulative`` and ``share`` are fractions
    of the cost of running every stage on a full batch (``cost_unit``).
    Without per-call parts this is ``choose_policy`` on ``make_search(n)``.
    With them, one policy is chosen per deepest stage ``L`` on the first
    ``L + 1`` stages (for a budget, the budget less the per-call parts of
    stages ``0..L``), and the depth kept is, for a budget, the most accurate
    out of sample (then the cheaper); for a ``cost_weight``, the one with the
    lowest ``error + cost_weight * cost`` on the policy rows, as for
    ``frontier_`` (:func:`frontier_with_call_costs`). Its costs are
    :func:`batch_cost` of its exit rates.

    Parameters
    ----------
    make_search : callable
        ``make_search(n)`` returns the policy search over the first ``n``
        stages, with the per-row costs ``variable_cumulative[:n]``.
    stage_probas : list of ndarray
    y_encoded : ndarray of shape (n_rows,)
    sample_weight : ndarray of shape (n_rows,) or None
    variable_cumulative, share : ndarray of shape (n_stages,)
    batch_size : int
    cost_weight, normalized_budget, confidence, random_state, cost_unit
        As for ``choose_policy``.

    Returns
    -------
    chosen : dict
        The keys of ``choose_policy``, its costs including the per-call parts,
        and ``deepest_stage``; ``budget_search`` is the kept depth's.
    """
    n_stages = len(stage_probas)
    if not np.any(share > 0):
        chosen = choose_policy(
            make_search(n_stages),
            cost_weight=cost_weight,
            normalized_budget=normalized_budget,
            confidence=confidence,
            random_state=random_state,
            cost_unit=cost_unit,
        )
        chosen["deepest_stage"] = int(np.flatnonzero(chosen["exit_rates"] > 0).max())
        return chosen
    first_accuracy = _first_stage_accuracy(stage_probas, y_encoded, sample_weight)

    def cost(rates):
        return batch_cost(rates, variable_cumulative, share, batch_size) * cost_unit

    options = []
    for deepest in range(n_stages):
        fixed = share[: deepest + 1].sum()
        if deepest == 0:
            rates = _padded([1.0], n_stages)
            chosen = {
                "policy": CascadePolicy([]),
                "cost_weight": cost_weight if normalized_budget is None else np.nan,
                "exit_rates": rates,
                "expected_exit_rates": rates,
                "policy_rows_accuracy": first_accuracy,
                "expected_accuracy": first_accuracy,
                "budget_status": None if normalized_budget is None else "spent",
                "budget_search": None,
            }
        else:
            budget = None if normalized_budget is None else normalized_budget - fixed
            if budget is not None and budget < variable_cumulative[0]:
                continue
            chosen = choose_policy(
                make_search(deepest + 1),
                cost_weight=cost_weight,
                normalized_budget=budget,
                confidence=confidence,
                random_state=random_state,
                cost_unit=cost_unit,
            )
            chosen["exit_rates"] = _padded(chosen["exit_rates"], n_stages)
            chosen["expected_exit_rates"] = _padded(
                chosen["expected_exit_rates"], n_stages
            )
            if chosen["budget_search"] is not None:
                search = chosen["budget_search"]
                for key in ("policy_rows_cost", "expected_cost", "searched_budget"):
                    search[key] = search[key] + fixed * cost_unit
                search["deepest_stage"] = deepest
        chosen["policy"] = stop_at(chosen["policy"], deepest, n_stages)
        chosen["policy_rows_cost"] = cost(chosen["exit_rates"])
        chosen["expected_cost"] = cost(chosen["expected_exit_rates"])
        chosen["deepest_stage"] = deepest
        options.append(chosen)
    if normalized_budget is not None:
        if normalized_budget - share[0] < variable_cumulative[0]:
            # Only the first stage alone fits: its option is the one above.
            return options[0]
        kept = max(options, key=lambda c: (c["expected_accuracy"], -c["expected_cost"]))
    else:
        # As frontier_with_call_costs does, so that with_policy(cost_weight=)
        # gives the frontier_ point of that cost weight.
        kept = min(
            options,
            key=lambda c: (
                1.0
                - c["policy_rows_accuracy"]
                + cost_weight * c["policy_rows_cost"] / cost_unit,
                c["policy_rows_cost"],
            ),
        )
    return kept


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
) -> list[PolicyEvaluation]:
    """The policies of ``frontier_``, with per-call costs.

    See :func:`choose_with_call_costs`.

    For each ``cost_weight``, the depth whose policy has the lowest
    ``error + cost_weight * cost`` on the policy rows, its cost from
    :func:`batch_cost`.
    """
    n_stages = len(stage_probas)
    if not np.any(share > 0):
        return make_search(n_stages).frontier(cost_weights)
    first_rates = _padded([1.0], n_stages)
    first = PolicyEvaluation(
        cost_weight=np.nan,
        policy=stop_at(CascadePolicy([]), 0, n_stages),
        accuracy=_first_stage_accuracy(stage_probas, y_encoded, sample_weight),
        normalized_cost=batch_cost(first_rates, variable_cumulative, share, batch_size),
        exit_rates=first_rates,
    )
    by_depth = [make_search(n).frontier(cost_weights) for n in range(2, n_stages + 1)]
    points = []
    for j, lam in enumerate(cost_weights):
        candidates = [replace(first, cost_weight=lam)]
        for deepest, frontier in enumerate(by_depth, start=1):
            point = frontier[j]
            rates = _padded(point.exit_rates, n_stages)
            candidates.append(
                replace(
                    point,
                    policy=stop_at(point.policy, deepest, n_stages),
                    exit_rates=rates,
                    normalized_cost=batch_cost(
                        rates, variable_cumulative, share, batch_size
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
