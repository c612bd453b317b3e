"""Per-exit thresholds on exit scores, chosen for a budget or a cost weight.

Every policy family ends the same way: each exit but the last has a score per
row (a rule's learned score, a correctness estimate, a heuristic confidence),
and a row answers at the first exit whose score reaches that exit's threshold.
This module chooses the thresholds:

- :func:`lagrangian_thresholds` minimises ``loss + cost_weight * cost``;
- :func:`budget_thresholds` minimises the loss subject to an average cost
  within a budget. With several exits the constraint couples them (cost saved
  at one exit can be spent at another), so a search along ``cost_weight``
  alone reaches only the points of that path and can leave much of a budget
  unspent. Here the thresholds are moved directly, each step exact in one
  threshold (the weighted loss and cost are step functions of it, tabulated by
  one sort) or in a pair of thresholds (a grid on one, exact on the other),
  starting from the cheapest policy and from the cost weight that just meets
  the budget, until no move within the budget lowers the loss.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ._features import policy_features
from ._policy import first_exit

# Scores closer than this (relative) count as tied: a cut between them would
# depend on the last bits of a floating-point sum, which can differ between
# batches, and their midpoint can round onto one of them.
TIE_RTOL = 1e-9
# Average costs are sums of floats: a policy exactly at the budget may look
# over it by the last bit.
BUDGET_RTOL = 1e-9
_MAX_SWEEPS = 20
# Values of the first threshold tried in a pair move (quantiles of its scores).
_PAIR_GRID = 16
# A pair move tries every value of the first threshold up to this many
# distinct scores, or where their number times the rows with distinct scores
# is at most _EXACT_PAIR_CELLS (the tables of every pair's loss and cost,
# about 14 MB at the peak: about 700 rows with as many distinct scores)...
_EXACT_PAIR_LIMIT = 256
_EXACT_PAIR_CELLS = 2**19
# ... and the tables, a column per row of positive weight (copies included),
# at most this many cells (about 50 MB at the peak: four copies of every row
# at the largest exact size).
_EXACT_PAIR_ALLOCATED = 2**21
_BISECTION_STEPS = 30
# A threshold problem remembers what it computed for given thresholds (the
# searches ask again and again: every cost weight of a bisection starts from
# the same thresholds, and a pair move refines with the others fixed), up to
# about this many array cells (32 MB), the least recently used forgotten.
_MEMO_CELLS = 2**22


def cuts_between(distinct: np.ndarray) -> np.ndarray:
    """Thresholds between consecutive distinct scores (sorted ascending).

    The threshold that exits exactly the rows scoring at least ``distinct[j]``
    is put halfway to ``distinct[j - 1]`` (``-inf`` for ``j = 0``), never on a
    score: a row whose score is recomputed a last bit lower in another batch
    keeps its exit. Scores closer than rounding error count as one.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import cuts_between
    >>> cuts_between(np.array([0.2, 0.5, 0.9])).tolist()
    [-inf, 0.35, 0.7]
    """
    distinct = np.asarray(distinct, dtype=np.float64)
    if len(distinct) == 0:
        return np.array([-np.inf])
    gap = distinct[1:] - distinct[:-1]
    apart = gap > TIE_RTOL * (1.0 + np.abs(distinct[1:]))
    upper = distinct[1:][apart]
    lower = distinct[:-1][apart]
    return np.concatenate([[-np.inf], 0.5 * (lower + upper)])


def first_reaching(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """:func:`~skadaptive.policies._policy.first_exit` of ``scores >= thresholds``.

    Rows of ``scores`` (n_decisions, n_rows) are exits; a row that reaches no
    threshold answers at the last stage, ``n_decisions``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import first_reaching
    >>> scores = np.array([[0.9, 0.2, 0.2], [0.1, 0.8, 0.3]])
    >>> first_reaching(scores, np.array([0.5, 0.5])).tolist()
    [0, 1, 2]
    """
    return first_exit(scores >= np.asarray(thresholds)[:, None])


def weighted_standardisation(
    features: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of each column (1 where constant).

    Weighted, so that weight k on a row standardises as k copies of it would,
    and a row of weight 0 as if it were absent.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import weighted_standardisation
    >>> mean, scale = weighted_standardisation(np.array([[0.], [2.], [2.]]),
    ...                                        np.array([2., 1., 1.]))
    >>> float(mean[0]), float(scale[0])
    (1.0, 1.0)
    """
    weight = np.asarray(weight, dtype=np.float64)
    mean = np.average(features, axis=0, weights=weight)
    scale = np.sqrt(np.average((features - mean) ** 2, axis=0, weights=weight))
    scale[scale == 0] = 1.0
    return mean, scale


def standardised(features, mean, scale, low=None, high=None) -> np.ndarray:
    """``(features - mean) / scale``, clipped to ``[low, high]`` where given.

    The clipping keeps a learned rule from extrapolating beyond the range of
    the rows it was fitted on (a near-constant feature standardises to huge
    values on a row unlike those: a carried answer, a shifted input).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import standardised
    >>> standardised(np.array([[0.0], [9.0]]), np.array([1.0]), np.array([2.0]),
    ...              np.array([-1.0]), np.array([1.0])).ravel().tolist()
    [-0.5, 1.0]
    """
    values = (features - mean) / scale
    if low is not None:
        np.clip(values, low, high, out=values)
    return values


def fit_standardisation(features: np.ndarray, weight: np.ndarray) -> tuple:
    """Standardised ``features``, and what gives the same on new rows.

    Returns ``(values, mean, scale, low, high)``: the weighted
    standardisation (:func:`weighted_standardisation`) and the column-wise
    range of the standardised values over the rows of positive weight, to
    which :func:`standardised` clips new rows.
    """
    mean, scale = weighted_standardisation(features, weight)
    values = (features - mean) / scale
    positive = values[np.asarray(weight) > 0]
    if len(positive) == 0:
        positive = values
    return values, mean, scale, positive.min(axis=0), positive.max(axis=0)


def rule_features(rule, history: list[np.ndarray]) -> np.ndarray:
    """What a learned rule (an exit rule or a jump) scores: its policy features
    of ``history``, standardised and clipped as on the rows it learned from."""
    features = policy_features(history, rule.feature_set, rule.regression)
    return standardised(features, rule.mean, rule.scale, rule.low, rule.high)


def distinct_cuts(sorted_score: np.ndarray) -> np.ndarray:
    """The numbers of top rows that the distinct cuts of ``sorted_score`` exit.

    ``sorted_score`` is in decreasing order; a cut between two scores closer
    than rounding error (:data:`TIE_RTOL`) is no cut. Always 0 (no row) and
    every row.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import distinct_cuts
    >>> distinct_cuts(np.array([0.9, 0.7, 0.7, 0.2])).tolist()
    [0, 1, 3, 4]
    """
    valid = np.ones(len(sorted_score) + 1, dtype=bool)
    gap = sorted_score[:-1] - sorted_score[1:]
    valid[1:-1] = gap > TIE_RTOL * (1.0 + np.abs(sorted_score[:-1]))
    return np.flatnonzero(valid)


@dataclass
class CutTable:
    """Every distinct cut of one score: what exiting the top rows changes.

    ``n_exiting[j]`` rows with the highest scores exit (0: none, all: every
    row); ``threshold[j]`` is the cut that exits exactly them, and
    ``loss_change[j]``, ``cost_change[j]`` are the weighted changes against
    deferring every row.
    """

    n_exiting: np.ndarray
    threshold: np.ndarray
    loss_change: np.ndarray
    cost_change: np.ndarray


def cut_table(
    score: np.ndarray,
    loss_change: np.ndarray,
    cost_change: np.ndarray,
    weight: np.ndarray,
) -> CutTable:
    """Tabulate every cut between distinct scores of the rows with positive weight.

    Rows of zero weight take no part in where the cuts lie, so that a weight
    of zero is the same as leaving the row out (and weight k the same as k
    copies of the row).

    Parameters
    ----------
    score : ndarray of shape (n_rows,)
        How strongly each row should exit.
    loss_change, cost_change : ndarray of shape (n_rows,)
        Per-row change of loss and cost when the row exits instead of deferring.
    weight : ndarray of shape (n_rows,)

    Returns
    -------
    table : CutTable

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._thresholds import cut_table
    >>> table = cut_table(np.array([0.9, 0.5, 0.7]), np.array([0., 1., 0.]),
    ...                   np.array([-1., -1., -1.]), np.ones(3))
    >>> table.threshold.tolist(), table.loss_change.tolist()
    ([inf, 0.8, 0.6, -inf], [0.0, 0.0, 0.0, 1.0])
    """
    positive = weight > 0
    if not positive.all():
        score, weight = score[positive], weight[positive]
        loss_change, cost_change = loss_change[positive], cost_change[positive]
    order = np.argsort(-score, kind="stable")
    sorted_score = score[order]
    loss_steps = (weight * loss_change)[order]
    cost_steps = (weight * cost_change)[order]
    n_rows = len(sorted_score)
    n_exiting = distinct_cuts(sorted_score)
    threshold = np.empty(len(n_exiting))
    inner = (n_exiting > 0) & (n_exiting < n_rows)
    j = n_exiting[inner]
    threshold[inner] = 0.5 * (sorted_score[j - 1] + sorted_score[j])
    threshold[n_exiting == 0] = np.inf
    threshold[n_exiting == n_rows] = -np.inf
    loss = np.concatenate([[0.0], np.cumsum(loss_steps)])
    cost = np.concatenate([[0.0], np.cumsum(cost_steps)])
    return CutTable(n_exiting, threshold, loss[n_exiting], cost[n_exiting])


def _tie_key(values):
    """Average losses and costs rounded for comparison (to 1e-12).

    Weight k on a row and k copies of it give the same averages up to the
    last bits of their sums; rounded, ties between cuts are broken alike
    (by the cut that exits fewer rows, or the first start) whichever the
    rows are given as.
    """
    if isinstance(values, tuple):
        return tuple(round(float(v), 12) for v in values)
    return np.round(values, 12)


def _lowest_column(loss, cost) -> int:
    """The column holding the lowest ``loss`` (then ``cost``), compared as
    :func:`_tie_key` rounds them; the first column on ties.

    ``loss`` is ``inf`` where a cell is not allowed (at least one is). The
    same choice as rounding both tables whole, but only the cells near each
    column's lowest loss are rounded: rounding is monotone, so a column's
    lowest rounded loss is its lowest loss rounded, and only cells within
    rounding of that can tie with it.
    """
    lowest = loss.min(axis=0)
    best_loss = _tie_key(lowest)
    # Every cell that rounds to its column's lowest loss is within 1e-12 of
    # it (with a margin for the rounding of large values); a column with no
    # allowed cell has none.
    bound = np.where(
        np.isfinite(lowest), lowest + 2e-12 + 1e-14 * np.abs(lowest), -np.inf
    )
    near = loss <= bound[None, :]
    row, column = np.nonzero(near)
    ties = _tie_key(loss[row, column]) == best_loss[column]
    row, column = row[ties], column[ties]
    best_cost = np.full(loss.shape[1], np.inf)
    np.minimum.at(best_cost, column, _tie_key(cost[row, column]))
    candidates = np.flatnonzero(np.isfinite(best_loss))
    if len(candidates) == 0:
        # Every allowed cell's loss is infinite: the cheapest cell's column.
        return int(np.argmin(_tie_key(cost).min(axis=0)))
    return int(
        candidates[np.lexsort((best_cost[candidates], best_loss[candidates]))[0]]
    )


class ThresholdProblem:
    """Loss and cost of per-exit thresholds on fixed scores, and exact moves.

    Parameters
    ----------
    scores : ndarray of shape (n_stages - 1, n_rows)
        Each exit's score of every row; a row exits at the first exit whose
        score reaches its threshold. NaN where a row skips the stage.
    stage_loss : ndarray of shape (n_stages, n_rows)
        Loss of answering each row at each stage.
    cumulative_cost : ndarray of shape (n_stages,) or (n_stages, n_rows)
        Cost of answering at each stage; per row where rows skip stages (a
        row's cost is then that of the stages on its path, and its scores
        are NaN at the exits it skips).
    weight : ndarray of shape (n_rows,)
        Row weights; averages are weighted by ``weight / weight.sum()``.

    Notes
    -----
    The searches ask the same questions many times (every cost weight of a
    bisection starts from the same thresholds; both starts of a descent and
    each level of a refined pair move meet the same thresholds again), so a
    problem remembers its answers, keyed by the exact thresholds, up to about
    ``2**22`` array cells, forgetting the least recently used. A remembered
    answer is the one computed anew, bit for bit.
    """

    def __init__(self, scores, stage_loss, cumulative_cost, weight):
        self.scores = np.asarray(scores, dtype=np.float64)
        # C order: a row's value at its own stage is then one flat gather.
        self.stage_loss = np.ascontiguousarray(stage_loss, dtype=np.float64)
        weight = np.asarray(weight, dtype=np.float64)
        self.weight = weight / weight.sum()
        self.n_decisions, self.n_rows = self.scores.shape
        self.cumulative_cost = np.ascontiguousarray(cumulative_cost, dtype=np.float64)
        self._per_row = self.cumulative_cost.ndim == 2
        #: Average cost when every row answers at the first stage.
        self.first_stage_cost = (
            float(self.weight @ self.cumulative_cost[0])
            if self._per_row
            else float(self.cumulative_cost[0])
        )
        self._rows = np.arange(self.n_rows)
        # Rows of weight 0 change no average: no move looks at them.
        self._positive = self.weight > 0
        # Each exit's rows by decreasing score, once: a move then selects the
        # rows that reach the exit in that order instead of sorting again.
        # A NaN score is a stage the row skips: it never exits there.
        self._order = [
            order[self._positive[order] & ~np.isnan(score[order])]
            for order, score in zip(
                np.argsort(-self.scores, axis=1, kind="stable"), self.scores
            )
        ]
        self._memo = OrderedDict()
        self._memo_cells = 0

    def _remembered(self, key, compute):
        """``compute()``, or what it returned for ``key`` before.

        Only what a search asks again: results are functions of the key, so
        a remembered one is the one computed anew, bit for bit. Arrays are
        kept read-only.
        """
        memo = self._memo
        if key in memo:
            memo.move_to_end(key)
            return memo[key][0]
        value = compute()
        parts = value if isinstance(value, tuple) else (value,)
        arrays = [v for v in parts if isinstance(v, np.ndarray)]
        for array in arrays:
            array.setflags(write=False)
        cells = 1 + sum(a.size for a in arrays)
        memo[key] = (value, cells)
        self._memo_cells += cells
        while self._memo_cells > _MEMO_CELLS and len(memo) > 1:
            _, (_, dropped) = memo.popitem(last=False)
            self._memo_cells -= dropped
        return value

    @functools.cached_property
    def n_positive_rows(self) -> int:
        """Rows of positive weight."""
        return int(np.count_nonzero(self._positive))

    @functools.cached_property
    def n_distinct_rows(self) -> int:
        """Rows of positive weight with distinct scores (copies count once)."""
        scores = np.nan_to_num(self.scores[:, self._positive], nan=np.inf)
        return int(np.unique(scores, axis=1).shape[1])

    def _cost(self, stage, rows) -> np.ndarray:
        """Cost of answering ``rows`` at ``stage`` (an index or one per row)."""
        if self._per_row:
            return self._at(self.cumulative_cost, stage, rows)
        return self.cumulative_cost[stage]

    @staticmethod
    def _at(table, stage, rows) -> np.ndarray:
        """``table[stage, rows]``; a stage per row is gathered in one go."""
        if np.ndim(stage) == 0:
            return table[stage, rows]
        return table.ravel().take(stage * table.shape[1] + rows)

    def distinct_scores(self, stage: int) -> np.ndarray:
        """The distinct scores of exit ``stage`` over the rows of positive weight."""
        return self._remembered(
            ("distinct", stage),
            lambda: np.unique(self.scores[stage, self._order[stage]]),
        )

    def totals(self, thresholds) -> tuple[float, float]:
        """Weighted average loss and cost of ``thresholds``."""
        thresholds = np.asarray(thresholds, dtype=np.float64)
        return self._remembered(
            ("totals", thresholds.tobytes()), lambda: self._totals(thresholds)
        )

    def _totals(self, thresholds):
        exit_stage = first_reaching(self.scores, thresholds)
        return (
            float(self.weight @ self._at(self.stage_loss, exit_stage, self._rows)),
            float(self.weight @ self._cost(exit_stage, self._rows)),
        )

    def _steps(self, stage: int, thresholds):
        """Every cut of exit ``stage``'s threshold, the others held fixed.

        Returns ``(sorted_score, n_exiting, loss_change, cost_change,
        base_loss, base_cost)``: the scores of the rows that reach ``stage``
        in decreasing order, the numbers of top rows that each distinct cut
        exits, the weighted changes at those cuts, and the average loss and
        cost when no row exits at ``stage`` (the changes are relative to
        that). A cut's threshold is :meth:`_threshold_at` its number of rows.
        """
        thresholds = np.asarray(thresholds, dtype=np.float64)
        return self._remembered(
            ("steps", stage, thresholds.tobytes()),
            lambda: self._compute_steps(stage, thresholds),
        )

    def _compute_steps(self, stage, thresholds):
        decisions = self.scores >= thresholds[:, None]
        # Where each row answers when none exits at `stage`: a row that
        # reaches it goes on to a later exit.
        decisions[stage] = False
        deferred = first_exit(decisions)
        reaches = deferred >= stage
        base_loss = float(self.weight @ self._at(self.stage_loss, deferred, self._rows))
        base_cost = float(self.weight @ self._cost(deferred, self._rows))
        order = self._order[stage]
        rows = order[reaches[order]]
        weight, after = self.weight[rows], deferred[rows]
        score = self.scores[stage, rows]
        loss = np.empty(len(rows) + 1)
        cost = np.empty(len(rows) + 1)
        loss[0] = cost[0] = 0.0
        np.cumsum(
            weight
            * (self.stage_loss[stage, rows] - self._at(self.stage_loss, after, rows)),
            out=loss[1:],
        )
        np.cumsum(
            weight * (self._cost(stage, rows) - self._cost(after, rows)), out=cost[1:]
        )
        n_exiting = distinct_cuts(score)
        return score, n_exiting, loss[n_exiting], cost[n_exiting], base_loss, base_cost

    @staticmethod
    def _threshold_at(score: np.ndarray, n_exiting: int) -> float:
        """The cut exiting exactly the top ``n_exiting`` of ``score`` (decreasing).

        Every row exiting comes first: with no rows, the cut is ``-inf``.
        """
        if n_exiting == len(score):
            return -np.inf
        if n_exiting == 0:
            return np.inf
        return float(0.5 * (score[n_exiting - 1] + score[n_exiting]))

    def best_cut_within(self, stage, thresholds, budget):
        """The loss-minimising threshold of ``stage`` within ``budget``, or None.

        Ties in loss go to the cheaper cut. Returns ``(threshold, loss, cost)``.
        """
        score, n_exiting, loss, cost, base_loss, base_cost = self._steps(
            stage, thresholds
        )
        loss = base_loss + loss
        cost = base_cost + cost
        affordable = np.flatnonzero(cost <= budget)
        if len(affordable) == 0:
            return None
        best = affordable[
            np.lexsort((_tie_key(cost[affordable]), _tie_key(loss[affordable])))[0]
        ]
        threshold = self._threshold_at(score, n_exiting[best])
        return threshold, float(loss[best]), float(cost[best])

    def best_pair_within(self, first, second, thresholds, values, budget):
        """The value of exit ``first``'s threshold with the best cut of ``second``.

        All values at once: the rows that reach ``second`` are those that
        reach ``first`` without exiting there or in between, so the loss and
        cost of every (value, cut) pair are partial sums over ``second``'s
        rows in score order, masked by which of them exit at ``first``.
        ``first`` must come before ``second``.

        Returns the index into ``values`` of the best value (loss, then cost;
        the first one on ties), or None when no pair is within the budget.
        """
        values = np.asarray(values, dtype=np.float64)
        thresholds = np.asarray(thresholds, dtype=np.float64)
        (
            first_score,
            gain_loss,
            gain_cost,
            rest_loss,
            rest_cost,
            deferring_score,
            step_loss,
            step_cost,
            n_exiting,
        ) = self._remembered(
            ("pair", first, second, thresholds.tobytes()),
            lambda: self._pair_steps(first, second, thresholds),
        )
        exits_first = first_score[None, :] >= values[:, None]
        base_loss = rest_loss + exits_first @ gain_loss
        base_cost = rest_cost + exits_first @ gain_cost
        # One row of the tables per value, a column per row that can reach
        # `second` (by decreasing score there), so that the partial sums run
        # along contiguous memory, over every value at once.
        deferring = ~(deferring_score[None, :] >= values[:, None])

        def table(step, base, deferring):
            # Partial sums along the rows, at the distinct cuts only, plus the
            # value's base: cut j of value v is table[v, j].
            table = np.empty((len(base), len(step) + 1))
            table[:, 0] = 0.0
            np.multiply(deferring, step[None, :], out=table[:, 1:])
            np.cumsum(table[:, 1:], axis=1, out=table[:, 1:])
            if len(n_exiting) < table.shape[1]:
                table = table[:, n_exiting]
            table += base[:, None]
            return table

        cost = table(step_cost, base_cost, deferring)
        affordable = cost <= budget
        if not affordable.any():
            return None
        # Losses only where some cut is within the budget (each value's row
        # of the table is summed on its own: the same sums as the whole).
        usable = affordable.any(axis=1)
        loss = np.full(cost.shape, np.inf)
        loss[usable] = table(step_loss, base_loss[usable], deferring[usable])
        loss[~affordable] = np.inf
        return _lowest_column(loss.T, cost.T)

    def _pair_steps(self, first, second, thresholds):
        """What :meth:`best_pair_within` tabulates that is the same for every
        value of exit ``first``'s threshold."""
        probe = thresholds.copy()
        probe[first] = probe[second] = np.inf
        # Where each row answers when it exits at neither of the two exits.
        rest = first_reaching(self.scores, probe)
        # The rows of positive weight that reach `first` (the others change
        # nothing: their gains are zero).
        rows = np.flatnonzero((rest >= first) & self._positive)
        rest_loss = self._at(self.stage_loss, rest, self._rows)
        rest_cost = np.broadcast_to(self._cost(rest, self._rows), (self.n_rows,))
        w = self.weight
        gain_loss = w[rows] * (self.stage_loss[first, rows] - rest_loss[rows])
        gain_cost = w[rows] * (self._cost(first, rows) - rest_cost[rows])
        # The rows that can reach `second`, by decreasing score there.
        order = self._order[second]
        order = order[rest[order] > second]
        step_loss = w[order] * (self.stage_loss[second, order] - rest_loss[order])
        step_cost = w[order] * (self._cost(second, order) - rest_cost[order])
        return (
            self.scores[first, rows],
            gain_loss,
            gain_cost,
            float(w @ rest_loss),
            float(w @ rest_cost),
            self.scores[first, order],
            step_loss,
            step_cost,
            distinct_cuts(self.scores[second, order]),
        )

    def best_cut_weighted(self, stage, thresholds, cost_weight):
        """The threshold of ``stage`` minimising ``loss + cost_weight * cost``.

        Ties go to the cut that exits fewest rows (the conservative choice when
        the data cannot tell the options apart).
        """
        score, n_exiting, loss, cost, _, _ = self._steps(stage, thresholds)
        risk = loss + cost_weight * cost
        least = risk.min()
        best = int(np.argmax(risk <= least + 1e-12 * max(1.0, abs(least))))
        return self._threshold_at(score, n_exiting[best])


def lagrangian_thresholds(problem: ThresholdProblem, cost_weight: float) -> np.ndarray:
    """Per-exit thresholds that lower ``loss + cost_weight * cost`` as far as
    moving one at a time can.

    Each threshold is set exactly given the others (last exit first, so the
    first sweep is the bottom-up order), sweeping until none moves; every move
    lowers the objective. That can stop short of the best combination (no
    single move helps where a pair would), so a larger ``cost_weight`` can
    end at a dearer one.

    Parameters
    ----------
    problem : ThresholdProblem
    cost_weight : float

    Returns
    -------
    thresholds : ndarray of shape (n_stages - 1,)
    """
    thresholds = np.full(problem.n_decisions, np.inf)
    best = _objective(problem, thresholds, cost_weight)
    for _ in range(_MAX_SWEEPS):
        moved = False
        for stage in range(problem.n_decisions - 1, -1, -1):
            candidate = problem.best_cut_weighted(stage, thresholds, cost_weight)
            if candidate == thresholds[stage]:
                continue
            trial = thresholds.copy()
            trial[stage] = candidate
            value = _objective(problem, trial, cost_weight)
            if value < best - 1e-12 * max(1.0, abs(best)):
                thresholds, best, moved = trial, value, True
        if not moved:
            break
    return thresholds


def _objective(problem, thresholds, cost_weight) -> float:
    loss, cost = problem.totals(thresholds)
    return loss + cost_weight * cost


def budget_thresholds(
    problem: ThresholdProblem, budget: float
) -> tuple[np.ndarray, float, float] | None:
    """The most accurate per-exit thresholds whose average cost is within budget.

    Local search with exact moves, from two starts: every row exiting at the
    first stage, and the thresholds of the smallest cost weight that meets the
    budget. A move sets one threshold to its best value within the budget
    given the others, or a pair of thresholds (the earlier at every one of
    its distinct scores, or when there are more than 256 of them and the
    tables would be too large, on a grid of 16, the later exactly); moves
    are taken while they lower the loss, so the result is never worse than
    either start. With two decisions (three stages) and at most 256 distinct
    scores at the first exit, or at most 2**19 distinct scores times rows of
    distinct scores (about 700 rows with as many distinct scores; copies of
    a row count once, up to 2**21 scores times rows of positive weight), the
    pair move tries every pair of cuts: the answer is the exhaustive one;
    with more, once the grid stops helping, it is refined around its best
    cut until no cut between the neighbouring grid points is skipped.

    Parameters
    ----------
    problem : ThresholdProblem
    budget : float
        Maximum weighted average cost, in the units of the problem's costs.

    Returns
    -------
    result : tuple or None
        ``(thresholds, loss, cost)``, or None when even the first stage alone
        is over the budget.
    """
    if problem.first_stage_cost > budget * (1 + BUDGET_RTOL):
        return None
    # Given the budget as asked: lagrangian_weight allows for the rounding.
    weight = lagrangian_weight(problem, budget)
    budget = budget * (1 + BUDGET_RTOL)
    cheapest = np.full(problem.n_decisions, -np.inf)
    starts = [cheapest]
    if np.isfinite(weight):
        starts.append(lagrangian_thresholds(problem, weight))
    results = [_descend(problem, start, budget) for start in starts]
    return min(results, key=lambda r: (_tie_key(r[1]), _tie_key(r[2])))


def lagrangian_weight(problem: ThresholdProblem, budget: float) -> float:
    """The smallest cost weight whose :func:`lagrangian_thresholds` meet ``budget``.

    Found by bisection on a log scale (to 5 % relative); ``inf`` when no
    finite weight below 1e12 meets it.

    Parameters
    ----------
    problem : ThresholdProblem
    budget : float

    Returns
    -------
    cost_weight : float
    """
    budget = budget * (1 + BUDGET_RTOL)

    def cost_at(weight):
        return problem.totals(lagrangian_thresholds(problem, weight))[1]

    if cost_at(0.0) <= budget:
        return 0.0
    low, high = 1e-6, 1.0
    while cost_at(high) > budget:
        low, high = high, high * 10.0
        if high > 1e12:
            return np.inf
    for _ in range(_BISECTION_STEPS):
        if high / low < 1.05:
            break
        mid = np.sqrt(low * high)
        if cost_at(mid) <= budget:
            high = mid
        else:
            low = mid
    return float(high)


def _descend(problem, thresholds, budget):
    thresholds = np.array(thresholds, dtype=np.float64)
    loss, cost = problem.totals(thresholds)

    def better(new_loss, new_cost):
        return new_loss < loss - 1e-12 or (
            new_loss <= loss + 1e-12 and new_cost < cost - 1e-12
        )

    refine = False
    for _ in range(_MAX_SWEEPS):
        # Single moves until none helps, then pair moves (the dearer kind),
        # which can trade budget between two exits; again while they help.
        # Pair moves on a coarse grid first; with two decisions (where the
        # pair move is the whole problem) refined around their best cut once
        # the coarse ones stop helping. With more, the refinement of every
        # pair would cost 2-3 times the whole search for little.
        moved = False
        for stage in range(problem.n_decisions):
            found = problem.best_cut_within(stage, thresholds, budget)
            if found is not None and better(found[1], found[2]):
                thresholds[stage], loss, cost = found
                moved = True
        if moved:
            continue
        for first in range(problem.n_decisions):
            for second in range(first + 1, problem.n_decisions):
                found = _best_pair(problem, thresholds, first, second, budget, refine)
                if found is not None and better(found[2], found[3]):
                    thresholds[first], thresholds[second], loss, cost = found
                    moved = True
        if moved:
            refine = False
        elif refine or problem.n_decisions != 2:
            break
        else:
            refine = True
    return thresholds, loss, cost


def _best_pair(problem, thresholds, first, second, budget, refine=True):
    cuts = cuts_between(problem.distinct_scores(first))
    # Counted over distinct rows, so that weight k on a row and k copies of
    # it get the same search; the tables themselves have a column per row of
    # positive weight, so many copies of few rows are capped as well.
    # Each cut has rows of its own, so there are at least as many distinct
    # rows as cuts: the square of the cuts, known at once, rules most large
    # problems out before the distinct rows are counted.
    if len(cuts) <= _EXACT_PAIR_LIMIT or (
        len(cuts) ** 2 <= _EXACT_PAIR_CELLS
        and len(cuts) * problem.n_positive_rows <= _EXACT_PAIR_ALLOCATED
        and len(cuts) * problem.n_distinct_rows <= _EXACT_PAIR_CELLS
    ):
        # Every cut of the first threshold: with two exits, exact.
        return _best_pair_on(problem, thresholds, first, second, budget, cuts)
    if not refine:
        index = np.unique(np.linspace(0, len(cuts) - 1, _PAIR_GRID).astype(int))
        return _best_pair_on(problem, thresholds, first, second, budget, cuts[index])
    # Coarse to fine: a grid of cuts of the first threshold, then a grid over
    # the cuts between the best one's neighbours, until every cut there is
    # tried. Not exhaustive, but the best found is kept at every level.
    low, high = 0, len(cuts) - 1
    best = None
    while True:
        if high - low + 1 <= _PAIR_GRID:
            index = np.arange(low, high + 1)
        else:
            index = np.unique(np.linspace(low, high, _PAIR_GRID).astype(int))
        found = _best_pair_on(problem, thresholds, first, second, budget, cuts[index])
        if found is not None and (
            best is None or _tie_key(found[2:]) < _tie_key(best[2:])
        ):
            best = found
        if len(index) == high - low + 1 or best is None or not np.isfinite(best[0]):
            return best
        # The best cut so far (found at this level or an earlier one) lies in
        # [low, high]: the next window is the cells of this grid around it.
        position = int(np.searchsorted(cuts, best[0]))
        if position >= len(cuts) or cuts[position] != best[0]:
            return best
        k = int(np.searchsorted(index, position))
        if k < len(index) and index[k] == position:
            window = int(index[max(k - 1, 0)]), int(index[min(k + 1, len(index) - 1)])
        else:
            window = int(index[max(k - 1, 0)]), int(index[min(k, len(index) - 1)])
        if window == (low, high):
            return best
        low, high = window


def _best_pair_on(problem, thresholds, first, second, budget, values):
    # Asked again for the same thresholds: from both starts of a descent, and
    # by a refinement that begins on the coarse grid of the move before it.
    values = np.concatenate([values, [np.inf]])
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return problem._remembered(
        ("pair move", first, second, budget, thresholds.tobytes(), values.tobytes()),
        lambda: _compute_best_pair_on(
            problem, thresholds, first, second, budget, values
        ),
    )


def _compute_best_pair_on(problem, thresholds, first, second, budget, values):
    chosen = problem.best_pair_within(first, second, thresholds, values, budget)
    if chosen is not None:
        trial = thresholds.copy()
        trial[first] = values[chosen]
        found = problem.best_cut_within(second, trial, budget)
        if found is not None:
            return (float(values[chosen]), *found)
    # Within rounding of the budget, the one-value-at-a-time search decides.
    return _best_pair_on_each(problem, thresholds, first, second, budget, values)


def _best_pair_on_each(problem, thresholds, first, second, budget, values):
    """:func:`_best_pair_on` one value of the first threshold at a time."""
    best = None
    trial = thresholds.copy()
    for value in values:
        trial[first] = value
        found = problem.best_cut_within(second, trial, budget)
        if found is None:
            continue
        candidate = (value, found[0], found[1], found[2])
        if best is None or _tie_key(candidate[2:]) < _tie_key(best[2:]):
            best = candidate
    return best
