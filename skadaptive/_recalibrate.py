"""Budget recalibration without labels, and exit reports for drift monitoring.

What a row costs depends only on where it exits, never on its label, so the
average cost of a policy on new rows is known without labels. When the rows
drift (more hard rows reach the dear stages), :func:`recalibrate` moves the
exit thresholds of a fitted policy so that its average cost on unlabelled
rows meets a budget again; :func:`exit_report` compares the exit rates and
cost on new rows with what was expected, for monitoring.

How the thresholds move. Every rule of every policy family exits the rows
whose ``score(history)`` reaches its ``threshold``; recalibration keeps the
rules (their learned scores, and for a :class:`~skadaptive.policies.SkipPolicy`
its jumps and router, which choose from the rows and not from the
thresholds) and moves the thresholds only, along one path with one parameter.
Every exit's answers and scores are computed once for every row (no stage
is refitted, no label is read). For exit ``k``, let ``m_k`` be the rows that
have a score there (all rows; with skips, those whose path runs stage ``k``)
and ``n_k`` of them those that the fitted threshold exits (scores at least the
threshold, whether or not an earlier exit takes the row first). The path
moves every exit's share of exiting rows by the same amount ``shift`` on the
log-odds scale::

    share_k(shift) = expit(logit((n_k + 0.5) / (m_k + 1)) + shift)

and the threshold of exit ``k`` is the cut that exits the top
``min(floor(share_k(shift) * (m_k + 1)), m_k)`` rows by its score (fewer
where that would split rows of equal score; the fitted threshold itself
wherever the number is ``n_k``, so at ``shift = 0``). A positive shift lowers
every threshold (rows exit earlier, cost falls), a negative one raises them.
Along the path the average cost never rises as the shift grows (a row exits
at the first exit on its path whose score reaches the threshold, and no
threshold rises), so the shift kept is the smallest one whose average cost on
the rows is within the budget: the costliest policy on the path that meets
it (of shifts that cost as much, the nearest to 0: a threshold moves only
where the cost on the rows needs it). The exits keep their order of
strictness relative to each other (an exit that took few rows still takes
fewer than one that took many), which is what "keep the fitted exit-rate
ratios" can mean when the total has to change. Rows of equal score at an
exit move together, so the step of the path over the budget can be coarse;
it is then split one exit at a time, from both sides: from the point within
the budget, the single move that spends the most within it (one exit's
threshold raised, as little as that takes), again until no exit can spend
more; from the point over the budget, the single exit lowered as little as
it takes to come within it, then the same. The second moves thresholds
farther from the fitted ones (a block of tied rows flips at one exit and
another exit makes up for it), so it is kept only where it spends materially
more: by more than :data:`MATERIAL_SPEND` of the budget. Exits
at or after ``deepest_stage_`` are fixed: recalibration never sends a row to
a stage the fitted policy never calls (with per-call costs, calling it would
pay its per-call part).

What is guaranteed. The average cost on the rows passed (computed as
``expected_cost_`` is: the exits' per-row costs, and each stage's per-call
part once per batch of ``cost_batch_size_`` rows drawn like them) is within
the budget, and raising any one exit's threshold to its next cut would take
it over (``recalibration_["next_cost"]`` is the cheapest such step). A cost
on ``n`` rows moves in steps (one row exiting at another stage, or several
where scores tie), so the cost kept may be below the budget by up to one
step; it is reported as it is, never clamped. When every free exit is at its
strictest and the cost is still more than 3 % below the budget (the rows got
easier), the budget is reported as saturated. Nothing is said about accuracy
on the new rows: without labels it cannot be measured, and the fitted
estimate of accuracy is kept as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit
from sklearn.base import is_regressor
from sklearn.utils.validation import check_is_fitted

from ._dask import is_lazy
from ._sklearn_private import _num_samples, _safe_indexing
from ._warnings import warn
from .engine._routing import DEFAULT_BATCH_SIZE
from .policies._policy import (
    answer_costs,
    exit_figures,
    stage_correct,
    with_thresholds,
)
from .policies._router import carried_back, routed_walk
from .policies._selection import _standard_error, budget_status
from .policies._thresholds import BUDGET_RTOL, TIE_RTOL, first_reaching
from .stages import exit_probas

#: Single-exit moves that fill the budget after the path (each raises the cost).
_MAX_FILLS = 100
#: The share of the budget by which the result reached from over the budget
#: must spend more than the one reached from within it to be kept: where a
#: block of tied rows makes the path's step coarse, that result can flip the
#: block at one exit and make up for it at another (tens of percent of the
#: rows answered elsewhere, accuracy unknown without labels) to spend a few
#: parts per million more.
MATERIAL_SPEND = 1e-3

#: A cost below the budget by more than this share of it is worth a warning:
#: the steps of the cost on these rows are coarse (few rows, tied scores).
_WARN_GAP = 0.01
#: Rows drawn like ``X`` cost the recalibrated policy about the cost on ``X``
#: plus or minus two standard errors of that average: a warning when two
#: standard errors are more than this share of the budget...
_WARN_NOISE = 0.10
#: ... and how many rows would bring them to this share.
_AIM_NOISE = 0.05


# ------------------------------------------------------------------ answers
def exit_answers(estimator, X) -> list[np.ndarray]:
    """Every exit's answer for every row of ``X``, as the policy sees them.

    Every stage runs on every row (no early exit), in batches of the
    estimator's ``batch_size`` rows; the combiners' answers where the kept
    policy answers with them (``answer_``); for a regressor, on the policy's
    scale.
    """
    source = estimator._stage_source()
    n_rows = _num_samples(X)
    batch = estimator.batch_size or DEFAULT_BATCH_SIZE
    parts = [
        exit_probas(
            source, _safe_indexing(X, np.arange(start, min(start + batch, n_rows)))
        )
        for start in range(0, n_rows, batch)
    ]
    alone = [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]
    return estimator._fitted_answers(*estimator._exit_answers(alone))


def _thresholds_of(policy) -> np.ndarray:
    """The rules' thresholds, or a clear error for rules that have none."""
    thresholds = []
    for k, rule in enumerate(policy.rules):
        threshold = getattr(rule, "threshold", None)
        if threshold is None or not callable(getattr(rule, "score", None)):
            raise TypeError(
                "recalibrate moves the thresholds of rules that have a "
                f"score(history) and a threshold (ThresholdRule); rule {k} of "
                f"policy_, of type {type(rule).__name__}, has not. Give the "
                "custom policy ThresholdRule rules, or refit with a budget."
            )
        thresholds.append(float(threshold))
    return np.array(thresholds, dtype=np.float64)


def _exit_scores(policy, answers, X) -> tuple[np.ndarray, np.ndarray | None]:
    """Each exit's score of each row, and each row's path where rows skip.

    Returns ``(scores, path)``: ``scores`` (n_stages - 1, n_rows), NaN at
    the exits a row's path skips; ``path`` (n_stages, n_rows), the stages a
    row runs when it exits nowhere before the last (None: every stage). A
    router's first stages (from ``X``) and the jumps depend on the rows, not
    on the thresholds, so neither does a path.
    """
    router = getattr(policy, "router", None)
    if router is not None:
        start = router.first_stages(X)
        _, path, scores = policy.walk(carried_back(answers, start), start, decide=False)
        return scores, path
    if policy.skips:
        _, path, scores = policy.walk(answers, decide=False)
        return scores, path
    n_rows = len(answers[0])
    # A policy without rules answers every row at the first stage: no score.
    scores = np.empty((len(policy.rules), n_rows), dtype=np.float64)
    for k, rule in enumerate(policy.rules):
        scores[k] = np.asarray(rule.score(answers[: k + 1]), np.float64).reshape(-1)
    return scores, None


class _Path:
    """The thresholds' path and single-exit moves, and the cost on the rows.

    A free exit's threshold is given by how many of the rows with a score
    there it exits (``exiting``, one of the cuts between distinct scores);
    the path gives those numbers for every exit at once from one shift.
    """

    def __init__(self, estimator, scores, path, thresholds, free, router_cost=0.0):
        self.estimator = estimator
        self.router_cost = router_cost
        self.scores = scores
        self.path = path
        self.fitted = thresholds
        self.free = [k for k in free if (~np.isnan(scores[k])).any()]
        self.descending, self.cuts, self.n_exiting, self.breakpoints = [], [], [], []
        for k in self.free:
            valid = np.sort(scores[k][~np.isnan(scores[k])])[::-1]
            m = len(valid)
            n_k = int((valid >= thresholds[k]).sum())
            # Cuts between tied scores (to rounding) exit both rows or neither;
            # the fitted cut always counts, whatever the gap it sits in.
            cut = np.ones(m + 1, dtype=bool)
            gap = valid[:-1] - valid[1:]
            cut[1:-1] = gap > TIE_RTOL * (1.0 + np.abs(valid[:-1]))
            cut[n_k] = True
            j = np.arange(1, m + 1)
            # The count reaches j at this shift: share_k(shift) * (m + 1) - 0.5
            # >= j - 0.5, i.e. share_k(shift) >= j / (m + 1).
            breaks = logit(j / (m + 1)) - logit((n_k + 0.5) / (m + 1))
            self.descending.append(valid)
            self.cuts.append(np.flatnonzero(cut))
            self.n_exiting.append(n_k)
            self.breakpoints.append(breaks)
        self._costs = {}

    def candidates(self) -> np.ndarray:
        """Every shift at which a threshold moves, and -inf (ascending)."""
        if not self.free:
            return np.array([-np.inf])
        return np.unique(np.concatenate([[-np.inf], *self.breakpoints]))

    def exiting_at(self, shift: float) -> tuple:
        """Each free exit's number of exiting rows at ``shift``: the count the
        shift gives, down to a cut between distinct scores."""
        exiting = []
        for breaks, cuts in zip(self.breakpoints, self.cuts):
            count = int(np.searchsorted(breaks, shift, side="right"))
            exiting.append(int(cuts[np.searchsorted(cuts, count, side="right") - 1]))
        return tuple(exiting)

    def thresholds(self, exiting) -> np.ndarray:
        """The thresholds exiting these numbers of rows (the fitted threshold
        where the number is the fitted one)."""
        thresholds = self.fitted.copy()
        for i, k in enumerate(self.free):
            valid, number = self.descending[i], exiting[i]
            if number == self.n_exiting[i]:
                continue
            if number == 0:
                thresholds[k] = np.inf
            elif number == len(valid):
                thresholds[k] = -np.inf
            else:
                thresholds[k] = 0.5 * (valid[number - 1] + valid[number])
        return thresholds

    def exits(self, thresholds) -> tuple[np.ndarray, np.ndarray | None]:
        """Exit stage of each row, and the stages it runs where rows skip."""
        exit_stage = first_reaching(self.scores, thresholds)
        if self.path is None:
            return exit_stage, None
        stages = np.arange(self.path.shape[0])[:, None]
        return exit_stage, self.path & (stages <= exit_stage[None, :])

    def cost(self, exiting) -> float:
        """Average cost on the rows (per-call parts included) of ``exiting``."""
        key = tuple(exiting)
        if key not in self._costs:
            exit_stage, ran = self.exits(self.thresholds(key))
            self._costs[key] = self.router_cost + float(
                self.estimator._average_cost(exit_stage, None, ran)
            )
        return self._costs[key]

    def moved(self, exiting, i, position) -> tuple:
        """``exiting`` with free exit ``i`` at its cut number ``position``."""
        exiting = list(exiting)
        exiting[i] = int(self.cuts[i][position])
        return tuple(exiting)

    def position(self, exiting, i) -> int:
        """Which of free exit ``i``'s cuts ``exiting`` is at."""
        return int(np.searchsorted(self.cuts[i], exiting[i]))


def _first_within(cost, low, high, limit) -> int:
    """The smallest index in ``[low, high]`` whose cost is within ``limit``,
    for a cost that never rises with the index; ``cost(high)`` must be."""
    while high > low:
        middle = (low + high) // 2
        if cost(middle) <= limit:
            high = middle
        else:
            low = middle + 1
    return high


def _last_as_dear(cost, low, high) -> int:
    """The largest index in ``[low, high]`` that costs as much as ``low``."""
    target = cost(low)
    floor = target - 1e-12 * max(1.0, abs(target))
    while high > low:
        middle = (low + high + 1) // 2
        if cost(middle) >= floor:
            low = middle
        else:
            high = middle - 1
    return low


def _search(search: _Path, limit: float) -> tuple:
    """The point of the path, then the single-exit moves that fill the budget.

    Returns ``(exiting, shift, next_cost)``: the numbers of exiting rows, the
    shift of the path's point, and the cost of the cheapest single move from
    there that costs more (over the limit; nan where no exit can spend more).
    """
    candidates = search.candidates()

    def path_cost(index):
        return search.cost(search.exiting_at(candidates[index]))

    last = len(candidates) - 1
    if path_cost(last) > limit:
        return None, None, None
    first = _first_within(path_cost, 0, last, limit)
    # Of the shifts that cost as much, the nearest to the fitted thresholds:
    # a threshold moves only where the cost on the rows needs it.
    through = _last_as_dear(path_cost, first, last)
    fitted = int(np.searchsorted(candidates, 0.0, side="right")) - 1
    chosen = min(max(fitted, first), through)
    shift = float(candidates[chosen])
    # Rows of equal score at an exit move together, so the path's step over
    # the budget can be coarse. It is split from both sides, one exit at a
    # time: from the point within the budget the exits spend more (each
    # threshold raised as far as the budget allows), from the point over it
    # one exit spends less (lowered as little as it takes), then more again;
    # the second, which moves thresholds farther from the fitted ones, is
    # kept only where it spends materially more.
    best = _fill_up(search, search.exiting_at(shift), limit)
    if first > 0:
        down = _fill_down(search, search.exiting_at(candidates[first - 1]), limit)
        if down is not None:
            other = _fill_up(search, down, limit)
            if search.cost(other[0]) > search.cost(best[0]) + MATERIAL_SPEND * limit:
                best = other
    exiting, dearer = best
    return exiting, shift, (min(dearer) if dearer else np.nan)


def _fill_up(search: _Path, exiting, limit) -> tuple:
    """Single-exit moves that spend more within ``limit``, the one spending
    the most first, until none can; and the next step up of each exit."""
    dearer = []
    for _ in range(_MAX_FILLS):
        current = search.cost(exiting)
        floor = current + 1e-12 * max(1.0, abs(current))
        best, dearer = None, []
        for i in range(len(search.free)):
            at = search.position(exiting, i)

            def moved_cost(position, i=i, exiting=exiting):
                return search.cost(search.moved(exiting, i, position))

            if at == 0 or moved_cost(0) <= floor:
                continue  # already its strictest, or dearer nowhere
            # The nearest cut that costs more than now (the next step up),
            # then the farthest within the budget; a move that costs no more
            # would only move a threshold.
            dearer.append(moved_cost(_first_within(moved_cost, 0, at, floor) - 1))
            lowest = _first_within(moved_cost, 0, at, limit)
            if moved_cost(lowest) <= floor:
                continue
            position = _last_as_dear(moved_cost, lowest, at)
            gain = moved_cost(position) - current
            if best is None or gain > best[0]:
                best = (gain, search.moved(exiting, i, position))
        if best is None:
            break
        exiting = best[1]
    return exiting, dearer


def _fill_down(search: _Path, exiting, limit):
    """The single-exit move from ``exiting`` (over ``limit``) that costs the
    most within it, each exit lowered as little as it takes; None if none."""
    best = None
    for i in range(len(search.free)):
        at, last = search.position(exiting, i), len(search.cuts[i]) - 1

        def moved_cost(position, i=i):
            return search.cost(search.moved(exiting, i, position))

        if moved_cost(last) > limit:
            continue
        position = _first_within(moved_cost, at, last, limit)
        if best is None or moved_cost(position) > best[0]:
            best = (moved_cost(position), search.moved(exiting, i, position))
    return None if best is None else best[1]


def _router_cost(estimator, policy) -> float:
    """What a router in ``policy`` costs per row (0 without one)."""
    of = getattr(estimator, "_router_cost_of", None)
    return 0.0 if of is None else float(of(policy))


def _cost_at_fit(estimator) -> float:
    """The ``expected_cost_`` the fit chose: a copy recalibrated to a default
    target carries it on (its own ``expected_cost_`` is the cost measured on
    the rows it was recalibrated on, a little under the target, so aiming at
    that would drift down with every recalibration)."""
    record = getattr(estimator, "recalibration_", None)
    if record is not None and _fits_own_budget(estimator):
        return float(record["expected_cost_at_fit"])
    return float(estimator.expected_cost_)


def _fits_own_budget(estimator) -> bool:
    """Whether ``budget_`` is the fit's (not one given to a recalibration)."""
    record = getattr(estimator, "recalibration_", None)
    return record is None or record.get("requested_budget") is None


def _check_budget_value(estimator, budget) -> float:
    if budget is None:
        budget = estimator.budget_
        if budget is None:
            budget = _cost_at_fit(estimator)
        elif getattr(estimator, "budget_status_", None) == "saturated":
            # A budget the fit left unspent (more bought nothing on the policy
            # rows) is not spent now either: the cost it chose is kept.
            budget = min(budget, _cost_at_fit(estimator))
        elif _fits_own_budget(estimator):
            # With budget_confidence the fit searched a budget lowered by a
            # margin for new rows; recalibrating keeps that margin.
            search = getattr(estimator, "budget_search_", None) or {}
            budget = min(budget, search.get("searched_budget", budget))
        # A fitted cost computed as a sum can fall a rounding error below the
        # first stage's cost, which answering every row there meets.
        budget = max(float(budget), float(estimator.costs_[0]))
    elif isinstance(budget, (bool, str, bytes)):
        raise TypeError(f"budget must be a number; got {budget!r}.")
    try:
        budget = float(budget)
    except (TypeError, ValueError) as error:
        raise TypeError(f"budget must be a number; got {budget!r}.") from error
    if not np.isfinite(budget) or budget <= 0:
        raise ValueError(
            f"budget must be a positive finite number (units of costs_); got "
            f"{budget!r}."
        )
    estimator._check_budget_keeping_stages(budget)
    return budget


def recalibrate(estimator, X, budget=None):
    """A copy of ``estimator`` whose thresholds meet ``budget`` on the rows ``X``.

    See :meth:`~skadaptive.AdaptiveCascadeClassifier.recalibrate` (this is
    its body) and the module docstring for the design.
    """
    check_is_fitted(estimator)
    _refuse_lazy(X, "recalibrate")
    X = estimator._checked_rows(X)
    n_rows = _num_samples(X)
    if n_rows == 0:
        raise ValueError("recalibrate needs at least one row; X has 0 rows.")
    requested = budget
    budget = _check_budget_value(estimator, budget)
    policy = estimator.policy_
    fitted = _thresholds_of(policy)
    answers = exit_answers(estimator, X)
    scores, path = _exit_scores(policy, answers, X)
    router_cost = _router_cost(estimator, policy)
    deepest = int(getattr(estimator, "deepest_stage_", len(fitted)))
    free = range(min(deepest, len(fitted)))
    search = _Path(estimator, scores, path, fitted, free, router_cost)
    cost_before = search.cost(tuple(search.n_exiting))
    exiting, shift, next_cost = _search(search, budget * (1 + BUDGET_RTOL))
    if exiting is None:
        # Every free exit fully open and still over: where deepest_stage_
        # fixes exit 0, or a router starts rows late (check_budget allows
        # answering every row at the first stage).
        routed = getattr(estimator, "router_", None) is not None
        raise ValueError(
            f"budget={budget:g} cannot be met on these rows: the cheapest "
            "policy that moves only the thresholds costs "
            f"{search.cost(search.exiting_at(np.inf)):g} (every exit before "
            f"the fitted policy's deepest stage, {deepest}, already exits "
            "every row that reaches it"
            + (
                "; the router kept, whose choices recalibration keeps, starts "
                "rows after the exits it could open"
                if routed
                else ""
            )
            + "). Raise the budget, or learn the policy for it "
            "(with_policy(budget=...) or fit)."
        )
    thresholds = search.thresholds(exiting)
    new_policy = with_thresholds(policy, thresholds)
    # What is reported is what the new policy does on the rows, walked as
    # prediction walks it.
    exit_stage, ran = routed_walk(new_policy, answers, X)
    ran = ran if new_policy.skips else None
    cost = router_cost + estimator._average_cost(exit_stage, None, ran)
    # No step up left: saturated where that leaves the budget unspent (more
    # than 3 % below it, as a fit's budget_status_ says), else met (every
    # stage run on every row can cost the budget exactly).
    unspent = budget_status(cost, budget) == "saturated"
    status = "saturated" if np.isnan(next_cost) and unspent else "met"
    n_stages = len(estimator.cumulative_costs_)
    row_cost = answer_costs(exit_stage, ran, estimator.cumulative_costs_)
    before_stage = routed_walk(policy, answers, X)[0]
    record = {
        "budget": budget,
        "cost": float(cost),
        "next_cost": float(next_cost),
        "status": status,
        "shift": shift,
        "n_rows": int(n_rows),
        "exit_rates": np.bincount(exit_stage, minlength=n_stages) / n_rows,
        "thresholds": thresholds,
        # Unbiased, as the budget search's (0 for a single row: no spread).
        "cost_standard_error": (
            _standard_error(row_cost, np.ones(n_rows), ddof=1) if n_rows > 1 else 0.0
        ),
        "cost_before": float(cost_before),
        "exit_rates_before": np.bincount(before_stage, minlength=n_stages) / n_rows,
        "thresholds_before": fitted,
        "expected_cost_at_fit": _cost_at_fit(estimator),
    }
    record["requested_budget"] = None if requested is None else budget
    _warn_about_steps(record, estimator)
    _warn_about_noise(record)
    return _recalibrated_copy(estimator, new_policy, record)


def _warn_about_noise(record) -> None:
    """Warn when the cost on these rows says little about the next rows'."""
    budget, n_rows = record["budget"], record["n_rows"]
    noise = 2 * record["cost_standard_error"]
    if budget <= 0 or noise <= _WARN_NOISE * budget:
        return
    # The standard error falls as 1 / sqrt(rows).
    needed = int(np.ceil(n_rows * (noise / (_AIM_NOISE * budget)) ** 2))
    warn(
        f"The cost on these {n_rows} rows is one sample: rows drawn like them "
        f"would cost the recalibrated policy about {record['cost']:.4g} "
        f"+/- {noise:.3g} per row (two standard errors, {noise / budget:.0%} of "
        f"budget={budget:g}), so the budget may not hold on the next rows. "
        f"Recalibrate on more rows (about {needed:,} for +/- "
        f"{_AIM_NOISE:.0%} of the budget); recalibration_"
        '["cost_standard_error"] is the standard error.',
        UserWarning,
    )


def _refuse_lazy(X, method: str) -> None:
    """A clear error for a dask collection where rows must be in memory."""
    if is_lazy(X):
        raise TypeError(
            f"{method} needs the rows in memory (every exit's score of every "
            "row at once); got a dask collection. Pass X.compute(), or a "
            "sample of the rows that fits in memory."
        )


def met_in_steps_well_below(record) -> bool:
    """Whether the budget of a ``recalibration_`` record is met but its cost
    is well below it: the cost moves in steps on these rows, and the warning
    of :func:`_warn_about_steps` says so."""
    return record["status"] == "met" and record["cost"] < (
        (1 - _WARN_GAP) * record["budget"]
    )


def _warn_about_steps(record, estimator) -> None:
    budget, cost = record["budget"], record["cost"]
    if record["status"] == "saturated" and cost < (1 - _WARN_GAP) * budget:
        deepest = int(getattr(estimator, "deepest_stage_", -1))
        n_stages = len(estimator.cumulative_costs_)
        above = estimator._above_full_cost(budget)
        # Above the full cost no policy can spend it, refitted or not.
        advice = (
            " Refit with the budget to spend it."
            if above is None
            else (f" It is {above}")
        )
        limits = []
        if 0 <= deepest < n_stages - 1:
            limits.append(
                f"never sends rows beyond the fitted policy's deepest stage ({deepest})"
            )
        if getattr(estimator, "router_", None) is not None:
            limits.append(
                "keeps the router's choice of each row's first stage (rows it "
                "starts late never pay for the stages before)"
            )
        if getattr(estimator.policy_, "skips", False):
            limits.append("keeps the policy's jumps over stages")
        why = f"; recalibration {' and '.join(limits)}" if limits else ""
        warn(
            f"budget={budget:g} is not spent on these {record['n_rows']} rows: "
            f"with its thresholds as strict as spending more allows, the "
            f"policy costs {cost:g} ({1 - cost / budget:.1%} under it){why}."
            f"{advice}",
            UserWarning,
        )
    elif met_in_steps_well_below(record):
        warn(
            f"budget={budget:g} cannot be met closely on these "
            f"{record['n_rows']} rows: their average cost moves in steps, and "
            f"the closest within the budget is {cost:g} ({1 - cost / budget:.1%} "
            f"under it; the next step costs {record['next_cost']:g}). More rows, "
            "or scores with fewer ties, give finer steps.",
            UserWarning,
        )


def _recalibrated_copy(estimator, policy, record):
    """The fitted copy with ``policy``; its figures say what was done."""
    new = estimator._fitted_copy()  # the policy's attributes replaced below
    new.policy_ = policy
    if record["requested_budget"] is not None:
        # A budget given to recalibrate is the copy's budget; a default one
        # (the fit's budget, or the cost it chose) leaves the fit's as it was.
        new.budget_ = record["requested_budget"]
        new.budget_status_ = "spent" if record["status"] == "met" else "saturated"
    new.expected_cost_ = record["cost"]
    new.expected_exit_rates_ = np.asarray(record["exit_rates"], dtype=np.float64)
    new.recalibrated_cost_ = record["cost"]
    new.recalibration_ = record
    # The new policy on the labelled policy rows, where they are kept (the
    # rows the scores were learned on, not the rows recalibrated on).
    figures = _policy_rows_figures(estimator, policy)
    regression = is_regressor(estimator)
    accuracy_name = "policy_rows_error_" if regression else "policy_rows_accuracy_"
    if figures is None:
        n_stages = len(estimator.cumulative_costs_)
        new.exit_rates_ = np.full(n_stages, np.nan)
        new.policy_rows_cost_ = np.nan
        setattr(new, accuracy_name, np.nan)
    else:
        accuracy, cost, rates = figures
        new.exit_rates_ = rates
        new.policy_rows_cost_ = cost
        setattr(new, accuracy_name, new._error(accuracy) if regression else accuracy)
    return new


def _policy_rows_figures(estimator, policy):
    """Accuracy, cost and exit rates of ``policy`` on the kept policy rows."""
    if getattr(estimator, "_policy_data", None) is None:
        return None
    X_rows = None
    if getattr(policy, "router", None) is not None:
        # A router chooses from the rows' features, kept with the policy rows.
        X_rows = (getattr(estimator, "_router_data", None) or (None,))[0]
        if X_rows is None:
            return None
    probas, y_encoded, weight = estimator._kept_policy_rows()
    exit_stage, ran = routed_walk(policy, probas, X_rows)
    ran = ran if policy.skips else None
    correct = stage_correct(probas, y_encoded, estimator._loss())
    accuracy, _, rates = exit_figures(
        exit_stage, correct, estimator.cumulative_costs_, weight, ran
    )
    cost = _router_cost(estimator, policy) + estimator._average_cost(
        exit_stage, weight, ran
    )
    return float(accuracy), float(cost), rates


# ------------------------------------------------------------- exit reports
@dataclass(repr=False)
class ExitReport:
    """Exit rates and average cost on new rows against what was expected.

    Returned by :meth:`~skadaptive.AdaptiveCascadeClassifier.exit_report`;
    ``str()`` (and ``repr()``) of it is a table for a log.

    Parameters
    ----------
    stage_names : list of str
    n_rows : int
        Rows the report is on.
    exit_rates : ndarray of shape (n_stages,)
        Share of those rows answered at each stage.
    cost : float
        Their average cost per row, units of ``costs_`` (per-call parts once
        per batch of ``cost_batch_size_`` rows drawn like them).
    expected_exit_rates : ndarray of shape (n_stages,)
        The reference: ``expected_exit_rates_`` (out of sample, at fit, as
        ``expected_cost_``), or after :meth:`recalibrate`, the exit rates on
        the rows recalibrated on.
    expected_cost : float
        The reference cost: ``expected_cost_`` (out of sample, at fit), or
        the cost measured on the rows recalibrated on.
    budget : float or None
        ``budget_``: the budget the policy was chosen (or recalibrated) for.
    reference : str
        What the expected figures are.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive._recalibrate import ExitReport
    >>> report = ExitReport(["cheap", "dear"], 100, np.array([0.5, 0.5]), 3.0,
    ...                     np.array([0.7, 0.3]), 2.2, 2.5, "the policy rows")
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    Exit report on 100 rows (expected: the policy rows)
    stage  expected  observed  change
    cheap    70.0 %    50.0 %  -20.0 pts
    dear     30.0 %    50.0 %  +20.0 pts
    average cost: 3 per row, expected 2.2 (+36.4 %); budget 2.5: over by 20.0 %
    """

    stage_names: list
    n_rows: int
    exit_rates: np.ndarray
    cost: float
    expected_exit_rates: np.ndarray
    expected_cost: float
    budget: float | None
    reference: str

    @property
    def exit_rate_changes(self) -> np.ndarray:
        """``exit_rates - expected_exit_rates``, per stage."""
        return np.asarray(self.exit_rates) - np.asarray(self.expected_exit_rates)

    @property
    def cost_change(self) -> float:
        """``cost - expected_cost``, units of ``costs_``."""
        return float(self.cost - self.expected_cost)

    @property
    def relative_cost_change(self) -> float:
        """``cost / expected_cost - 1`` (nan where both are 0, inf where only
        the expected cost is: free stages answering every row)."""
        if self.expected_cost == 0:
            return float("nan") if self.cost == 0 else float("inf")
        return float(self.cost / self.expected_cost - 1.0)

    @property
    def over_budget(self) -> bool:
        """Whether ``cost`` exceeds ``budget`` (False without one)."""
        return self.budget is not None and self.cost > self.budget * (1 + BUDGET_RTOL)

    def __str__(self) -> str:
        from .cli._table import table

        rows = [
            (name, f"{100 * e:.1f} %", f"{100 * o:.1f} %", f"{100 * (o - e):+.1f} pts")
            for name, e, o in zip(
                self.stage_names, self.expected_exit_rates, self.exit_rates
            )
        ]
        lines = [
            f"Exit report on {self.n_rows} rows (expected: {self.reference})",
            table(rows, ("stage", "expected", "observed", "change")),
        ]
        cost = (
            f"average cost: {self.cost:.4g} per row, expected "
            f"{self.expected_cost:.4g} ({100 * self.relative_cost_change:+.1f} %)"
        )
        if self.budget is not None:
            gap = self.cost / self.budget - 1.0
            if self.over_budget:
                verdict = f"over by {100 * gap:.1f} %"
            elif gap > -5e-4:
                verdict = "at it"
            else:
                verdict = f"within it ({100 * -gap:.1f} % under)"
            cost += f"; budget {self.budget:.4g}: {verdict}"
        lines.append(cost)
        return "\n".join(lines)

    __repr__ = __str__


def exit_report(estimator, X) -> ExitReport:
    """See :meth:`~skadaptive.AdaptiveCascadeClassifier.exit_report`."""
    check_is_fitted(estimator)
    _refuse_lazy(X, "exit_report")
    if _num_samples(X) == 0:
        raise ValueError("exit_report needs at least one row; X has 0 rows.")
    result = estimator.route(X)
    ran = result.ran.T if estimator.policy_.skips else None
    n_stages = len(estimator.cumulative_costs_)
    n_rows = len(result.exit_stage)
    record = getattr(estimator, "recalibration_", None)
    if record is not None:
        expected_rates = record["exit_rates"]
        expected_cost = record["cost"]
        reference = f"the {record['n_rows']} rows recalibrated on"
    else:
        # Out of sample, as expected_cost_ is (a model saved before the
        # attribute existed has only the policy rows' in-sample rates).
        expected_rates = getattr(estimator, "expected_exit_rates_", None)
        if expected_rates is None:
            expected_rates = estimator.exit_rates_
            reference = "exit_rates_ (in sample) and expected_cost_ at fit"
        else:
            reference = "expected_exit_rates_ and expected_cost_ at fit"
        expected_cost = estimator.expected_cost_
    return ExitReport(
        stage_names=list(estimator._stage_names()),
        n_rows=int(n_rows),
        exit_rates=np.bincount(result.exit_stage, minlength=n_stages) / n_rows,
        cost=_router_cost(estimator, estimator.policy_)
        + float(estimator._average_cost(result.exit_stage, None, ran)),
        expected_exit_rates=np.asarray(expected_rates, dtype=np.float64),
        expected_cost=float(expected_cost),
        budget=None if estimator.budget_ is None else float(estimator.budget_),
        reference=reference,
    )
