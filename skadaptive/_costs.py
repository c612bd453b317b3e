"""Costs: checked, resolved in one place, and the budget they allow.

``costs`` is ``"auto"`` (seconds per call and per row, measured on the policy
rows by :func:`~skadaptive.stages.measure_exit_seconds`, one timing routine
for every stage source), ``None`` (early exits: the source's natural unit, such
as trees or multiply-accumulates, where it has one, else measured seconds) or
one incremental cost per stage. :func:`measures_costs` says before the fit
whether timing is needed (it runs inside the cached held-out step, so a grid
search with ``memory=`` times the stages once); :func:`resolve_costs` turns the
parameter and what was measured into ``costs_`` and its unit.
"""

from __future__ import annotations

import numpy as np

from .policies._thresholds import BUDGET_RTOL


def measures_costs(costs, natural_costs: bool) -> bool:
    """Whether the fit must time the stages for ``costs``.

    Parameters
    ----------
    costs : "auto", None or array-like
    natural_costs : bool
        Whether the stages have costs in a unit of their own (for ``None``).

    Returns
    -------
    measure : bool
    """
    return isinstance(costs, str) or (costs is None and not natural_costs)


def resolve_costs(costs, names, *, measured, natural=None, unit=None):
    """``costs_per_row_``, ``costs_per_call_`` and the unit, from ``costs``.

    Parameters
    ----------
    costs : "auto", None, dict or array-like
        A dict has keys ``"per_call"`` and ``"per_row"`` (the two parts of a
        measured cost, as ``costs_per_call_`` and ``costs_per_row_``).
    names : list of str
        One per stage, for messages.
    measured : Bunch or None
        ``per_call`` and ``per_row`` seconds of each stage, where
        :func:`measures_costs` asked for them.
    natural : ndarray of shape (n_stages,) or None, default=None
        The stages' own costs, used for ``costs=None``.
    unit : str or None, default=None
        The unit of ``natural``.

    Returns
    -------
    per_row : ndarray of shape (n_stages,)
        The per-row part (all of the cost for costs given per row or natural).
    per_call : ndarray of shape (n_stages,)
        The per-call part; zeros for costs given per row or natural.
    unit : str or None
        ``"seconds"`` for measured costs, ``unit`` for natural ones, else None.
    """
    if isinstance(costs, str) or (costs is None and natural is None):
        per_call = np.asarray(measured.per_call, dtype=np.float64)
        per_row = np.asarray(measured.per_row, dtype=np.float64)
        return per_row, per_call, "seconds"
    if isinstance(costs, dict):
        per_call, per_row = _check_cost_parts(costs, names)
        return per_row, per_call, None
    if costs is None:
        costs = check_costs(natural, names)
    else:
        costs, unit = check_costs(costs, names), None
    return costs, np.zeros(len(costs)), unit


def _check_cost_parts(costs: dict, names) -> tuple:
    """The ``per_call`` and ``per_row`` arrays of a ``costs`` dict, checked."""
    if set(costs) != {"per_call", "per_row"}:
        raise ValueError(
            "costs given as a dict must have exactly the keys 'per_call' and "
            f"'per_row' (a stage's seconds per call and per row, as in "
            f"costs_per_call_ and costs_per_row_); got keys {sorted(costs)}."
        )
    parts = []
    for part, what in (("per_call", "cost per call"), ("per_row", "per-row cost")):
        try:
            parts.append(
                check_costs(costs[part], names, allow_all_zero=True, what=what)
            )
        except ValueError as exc:
            raise ValueError(f"costs[{part!r}]: {exc}") from exc
    check_costs(parts[0] + parts[1], names)  # finite, not all zero
    return tuple(parts)


def check_costs(
    costs, names, *, allow_all_zero: bool = False, what: str = "per-row cost"
) -> np.ndarray:
    """``costs`` as float64, one finite non-negative cost per stage, not all 0
    (``what``: which cost, in the messages)."""
    try:
        costs = np.asarray(costs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"costs must be 'auto' or numbers, one per stage; got {costs!r}."
        ) from exc
    if costs.shape != (len(names),):
        raise ValueError(
            f"costs must give one {what} per stage ({len(names)} for stages "
            f"{names}); got shape {costs.shape}."
        )
    bad = ~np.isfinite(costs) | (costs < 0)
    if bad.any():
        raise ValueError(
            "costs must be finite and non-negative; got "
            + ", ".join(f"{n}={c}" for n, c, b in zip(names, costs, bad) if b)
            + ". Pass each stage's incremental cost per row, or costs='auto'."
        )
    with np.errstate(over="ignore"):
        total = costs.sum()
    if not np.isfinite(total):
        raise ValueError(
            f"costs={costs.tolist()} sum to {total}: the cost of running "
            "every stage must be a finite number. Express the costs in a smaller "
            "unit."
        )
    if costs.sum() == 0 and not allow_all_zero:
        raise ValueError("costs are all zero: at least one stage must cost something.")
    return costs


#: Ends a first stage's advice where its cost has a part per call.
_PER_CALL_ADVICE = (
    " (a cost per call is spread over cost_batch_size rows: larger calls cost "
    "less per row)"
)


def percent_over(cost: float, budget: float) -> str:
    """How far ``cost`` is over ``budget``, in percent of it.

    Examples
    --------
    >>> from skadaptive._costs import percent_over
    >>> percent_over(1.0, 0.5), percent_over(1.0, 0.999), percent_over(1.0, 1e-300)
    ('100.00%', '0.10%', '1e+302%')
    >>> percent_over(1.0, 5e-324)
    'more than 1e+308%'
    """
    with np.errstate(over="ignore"):
        over = 100 * (cost / budget - 1)
    if not np.isfinite(over):
        return "more than 1e+308%"  # a budget below the smallest normal float
    return f"{over:.2f}%" if over < 1e6 else f"{over:.3g}%"


def _fraction_hint(budget: float, costs) -> str:
    """Where a budget of at most 1 may be meant as a share of the full cost:
    the budget's unit, and what that share is in it."""
    full = float(np.sum(costs))
    if budget > 1 or full <= 1:
        return ""
    return (
        f" (a budget is in the units of the costs, per row, not a share of "
        f"the full cost: a share f of it is f * {full:.6g})"
    )


def check_budget(
    budget, costs, names, fix: str | None = None, first_per_call: float = 0.0
) -> None:
    """Raise if no policy can meet ``budget``: it is below the first stage's cost.

    ``fix`` ends the message with what else can be changed (the estimator's
    own advice: a cheaper first stage, or an earlier exit); None where
    nothing else can. Where the first stage's cost has a part per call
    (``first_per_call``), the advice adds that larger calls cost less per row.
    """
    # costs are incremental: costs[0] is the cost of answering at the first
    # stage. Up to the rounding allowance of the budget search: a budget equal
    # to that cost but for its last bits (0.1 + 0.2 against 0.3) is met.
    if budget is not None and costs[0] > budget * (1 + BUDGET_RTOL):
        raise ValueError(
            f"budget={budget:.10g} per row cannot be met: answering every row at "
            f"the first stage ({names[0]!r}) already costs {costs[0]:.10g}, "
            f"{costs[0] - budget:.3g} over the budget "
            f"({percent_over(costs[0], budget)}); "
            f"the stages' costs: [{', '.join(f'{c:.6g}' for c in costs)}]"
            + _fraction_hint(budget, costs)
            + f". Raise the budget to at least {costs[0]:.10g}"
            + (
                "."
                if fix is None
                else f", or {fix}{_PER_CALL_ADVICE if first_per_call > 0 else ''}."
            )
        )
