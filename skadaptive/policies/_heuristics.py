"""Heuristic exit rules: one confidence score and one shared threshold.

The baselines that early-exit and cascade papers compare against: exit at the
first stage whose max probability (or one minus its normalised entropy) reaches
a threshold, or, for patience, whose predicted class has stayed the same for
``t`` consecutive exits (Zhou et al., 2020). The threshold is shared by every
stage and chosen on held-out rows for a ``cost_weight`` or a budget.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._policy import CascadePolicy, HeuristicRule, PolicyEvaluation
from ._policy_search import PolicySearch, heuristic_exits
from ._thresholds import BUDGET_RTOL, cuts_between

_MAX_CANDIDATES = 512


def shared_threshold_table(
    scores: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate shared thresholds and the exit stage of every row under each.

    A shared threshold ``t`` exits a row at the first stage whose score reaches
    ``t``; with ``M[k]`` the running maximum of the row's scores up to stage
    ``k``, that stage is the number of ``M[k]`` below ``t``. Candidates lie
    halfway between consecutive distinct scores (:func:`cuts_between`; thinned
    to at most 512), never on a score, plus ``+inf`` (every row runs to the
    last stage). Only rows of positive ``weight`` give candidates, so that a
    weight of 0 is the same as no row.

    Returns
    -------
    thresholds : ndarray of shape (n_candidates,)
    exit_stage : ndarray of shape (n_candidates, n_rows)
    """
    running_max = np.maximum.accumulate(scores, axis=0)
    distinct = np.unique(scores if weight is None else scores[:, weight > 0])
    cuts = cuts_between(distinct)
    if len(cuts) > _MAX_CANDIDATES:
        cuts = cuts[
            np.unique(np.linspace(0, len(cuts) - 1, _MAX_CANDIDATES).astype(int))
        ]
    thresholds = np.append(cuts, np.inf)
    exit_stage = np.stack([(running_max < t).sum(axis=0) for t in thresholds]).astype(
        np.intp
    )
    return thresholds, exit_stage


class HeuristicSearch(PolicySearch):
    """One heuristic confidence score: a threshold shared by every stage for a
    cost weight (the papers' form), one per exit for a budget."""

    def __init__(self, *args, kind, shared_threshold=False):
        super().__init__(*args)
        self.kind = kind
        self.shared_threshold = shared_threshold
        self.keywords = dict(kind=kind, shared_threshold=shared_threshold)
        self.exits = heuristic_exits(kind, self.stage_probas)
        self.thresholds, self.exit_table = shared_threshold_table(
            self.exits.scores, self.weight
        )
        rows = np.arange(len(self.y_encoded))
        weight = self.weight / self.weight.sum()
        stage_loss = self.stage_risk(0.0)
        self.mean_loss = stage_loss[self.exit_table, rows] @ weight
        self.mean_cost = self.cumulative_cost[self.exit_table] @ weight

    def _policy(self, index: int) -> CascadePolicy:
        threshold = self.thresholds[index]
        return CascadePolicy(
            [HeuristicRule(self.kind, threshold) for _ in range(self.n_stages - 1)]
        )

    def _evaluate_index(self, index: int, cost_weight) -> PolicyEvaluation:
        return self.evaluate_exits(
            self._policy(index), self.exit_table[index], cost_weight
        )

    def _best_index(self, cost_weight: float) -> int:
        objective = self.mean_loss + cost_weight * self.mean_cost
        # lexsort: minimal objective first, ties to the cheaper threshold, so the
        # chosen cost can only fall as cost_weight grows.
        return int(np.lexsort((self.mean_cost, objective))[0])

    def fit(self, cost_weight):
        return self._policy(self._best_index(cost_weight))

    def at_cost_weight(self, cost_weight):
        return self._evaluate_index(self._best_index(cost_weight), cost_weight)

    def budget_candidates(self, normalized_budget):
        if not self.shared_threshold:
            return super().budget_candidates(normalized_budget)
        # The papers' form: every shared threshold is known, take the most
        # accurate affordable one.
        affordable = np.flatnonzero(
            self.mean_cost <= normalized_budget * (1 + BUDGET_RTOL)
        )
        # The most accurate; ties to the answers surest of the true class
        # (the budget search's loss), then to the cheaper.
        keys = [
            self.budget_key(self.exit_table[i], self.mean_cost[i]) for i in affordable
        ]
        index = int(affordable[min(range(len(keys)), key=keys.__getitem__)])
        best = self._evaluate_index(index, np.nan)
        return [
            replace(
                best,
                cost_weight=self._weight_choosing(index),
                kind=f"{self.kind} shared",
            )
        ]

    def scored_exits(self, normalized_budget):
        # Per-exit thresholds on this heuristic's score (the reference
        # heuristic's, max_proba or disagreement, every search has already).
        if self.kind in ("max_proba", "disagreement"):
            return []
        return [self.exits]

    def _weight_choosing(self, index: int) -> float:
        """The smallest cost weight whose best threshold is ``index``, else nan.

        ``index`` is chosen by some weight only if its (cost, loss) point is on
        the lower convex hull of the table's points.
        """
        cost, loss = self.mean_cost, self.mean_loss
        dearer = cost > cost[index]
        # The smallest w >= 0 with loss_i + w cost_i <= loss_j + w cost_j for
        # every dearer threshold j; whether no cheaper one then beats index is
        # what _best_index says.
        weight = np.max(
            (loss[index] - loss[dearer]) / (cost[dearer] - cost[index]), initial=0.0
        )
        return float(weight) if self._best_index(weight) == index else np.nan
