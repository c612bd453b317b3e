"""Learn and evaluate exit policies on held-out rows, for a cost weight or a budget.

Every policy family answers the same two questions on the held-out stage
probabilities: which policy minimises ``loss + cost_weight * cost`` (used for
``cost_weight`` and for the frontier), and which is the most accurate whose
average cost is within a budget. :func:`make_policy_search` returns the object
that answers them for one family; both estimators use it and nothing else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from ._bottom_up import (
    POLICY_FAMILIES,
    CascadePolicy,
    ExitRule,
    check_policy_learner,
    fit_bottom_up_policy,
)
from ._eenet import EENetRule, fit_eenet_scorers, schedule_thresholds
from ._heuristics import (
    HEURISTICS,
    HeuristicRule,
    heuristic_score,
    shared_threshold_table,
)
from ._losses import per_row_loss

# cost_weight grid of the fitted frontier. Normalised costs lie in [0, 1] and a
# 0/1 loss in {0, 1}, so beyond ~10 every policy exits at the first stage.
#: The ``cost_weight`` grid of every fitted ``frontier_``: 0, then 30 values
#: from 1e-4 to 10 on a log scale.
DEFAULT_COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 30)])
_BUDGET_RTOL = 1e-9
#: How many decades past the largest tried weight a budget search looks.
_MAX_DECADES = 8

#: Every value of the estimators' ``policy`` parameter that is a string.
POLICIES = (*POLICY_FAMILIES, "eenet", *HEURISTICS)


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
    return _evaluate_exits(
        policy,
        policy.exit_stage(stage_probas),
        stage_probas,
        y_encoded,
        cumulative_cost,
        sample_weight,
        cost_weight,
    )


def _evaluate_exits(
    policy, exit_stage, stage_probas, y_encoded, cumulative_cost, sample_weight, lam
) -> PolicyEvaluation:
    stacked = np.stack(stage_probas)  # (n_stages, n_rows, n_classes)
    answered = stacked[exit_stage, np.arange(len(y_encoded))]
    correct = np.argmax(answered, axis=1) == y_encoded
    weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
    total = weight.sum()
    exit_rates = np.bincount(exit_stage, weights=weight, minlength=len(stage_probas))
    return PolicyEvaluation(
        cost_weight=float(lam),
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


class PolicySearch:
    """Fit and evaluate one policy family on held-out stage probabilities.

    Use :func:`make_policy_search` to build one; its parameters are described
    there.

    Parameters
    ----------
    stage_probas : list of ndarray of shape (n_samples, n_classes)
    y_encoded : ndarray of shape (n_samples,)
    cumulative_cost : ndarray of shape (n_stages,)
    sample_weight : ndarray of shape (n_samples,) or None
    loss : {"zero_one", "log_loss"}

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import make_policy_search
    >>> y = np.array([0, 1, 0, 1])
    >>> cheap = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45], [0.2, 0.8]])
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> search = make_policy_search("max_proba", [cheap, costly], y, [0.2, 1.0])
    >>> chosen = search.at_cost_weight(0.1)
    >>> chosen.accuracy, round(chosen.normalized_cost, 2)
    (1.0, 0.6)
    """

    def __init__(self, stage_probas, y_encoded, cumulative_cost, sample_weight, loss):
        self.stage_probas = stage_probas
        self.y_encoded = y_encoded
        self.cumulative_cost = np.asarray(cumulative_cost, dtype=np.float64)
        self.sample_weight = sample_weight
        self.weight = (
            np.ones(len(y_encoded)) if sample_weight is None else sample_weight
        )
        self.loss = loss
        self.n_stages = len(stage_probas)

    def stage_risk(self, cost_weight: float) -> np.ndarray:
        """Risk of answering each row at each stage, shape (n_stages, n_rows).

        Parameters
        ----------
        cost_weight : float

        Returns
        -------
        risk : ndarray of shape (n_stages, n_rows)
            ``loss + cost_weight * cumulative_cost``.
        """
        if not hasattr(self, "_stage_loss"):
            self._stage_loss = np.stack(
                [per_row_loss(p, self.y_encoded, self.loss) for p in self.stage_probas]
            )
        return self._stage_loss + cost_weight * self.cumulative_cost[:, None]

    def fit(self, cost_weight: float) -> CascadePolicy:
        """The policy minimising ``loss + cost_weight * cost`` on these rows.

        Parameters
        ----------
        cost_weight : float

        Returns
        -------
        policy : CascadePolicy
        """
        raise NotImplementedError

    def evaluate(self, policy: CascadePolicy, cost_weight=np.nan) -> PolicyEvaluation:
        """Accuracy, cost and exit rates of ``policy`` on these rows.

        Parameters
        ----------
        policy : CascadePolicy
        cost_weight : float, default=nan
            Recorded with the result.

        Returns
        -------
        evaluation : PolicyEvaluation
        """
        return evaluate_policy(
            policy,
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            self.sample_weight,
            cost_weight,
        )

    def at_cost_weight(self, cost_weight: float) -> PolicyEvaluation:
        """:meth:`fit` then :meth:`evaluate`.

        Parameters
        ----------
        cost_weight : float

        Returns
        -------
        evaluation : PolicyEvaluation
        """
        return self.evaluate(self.fit(cost_weight), cost_weight)

    def frontier(self, cost_weights=DEFAULT_COST_WEIGHTS) -> list[PolicyEvaluation]:
        """One fitted and evaluated policy per value of ``cost_weights``.

        Parameters
        ----------
        cost_weights : array-like of float, default=DEFAULT_COST_WEIGHTS

        Returns
        -------
        frontier : list of PolicyEvaluation
        """
        return [self.at_cost_weight(lam) for lam in cost_weights]

    def _direct_budget_candidates(self, normalized_budget) -> list[PolicyEvaluation]:
        """Affordable policies a family can find without searching cost_weight."""
        return []

    def within_budget(
        self,
        normalized_budget: float,
        frontier: list[PolicyEvaluation] | None = None,
        n_refinements: int = 8,
    ) -> PolicyEvaluation:
        """The most accurate policy whose average normalised cost is within budget.

        Starts from the frontier's candidates, then bisects ``cost_weight`` (on a
        log scale) between the most accurate affordable candidate and the nearest
        cheaper-weighted candidate that is over budget, since the best affordable
        policy usually lies between two grid points. Every row exiting at the
        first stage is always a candidate, so any budget of at least the first
        stage's normalised cost is met.

        Parameters
        ----------
        normalized_budget : float
            Maximum average cost, as a fraction of running every stage.
        frontier : list of PolicyEvaluation, default=None
            Candidates already evaluated (:meth:`frontier`); computed if None.
        n_refinements : int, default=8
            Bisection steps on ``cost_weight``.

        Returns
        -------
        evaluation : PolicyEvaluation
        """
        if frontier is None:
            frontier = self.frontier()
        # Average costs are sums of floats: a policy exactly at the budget may
        # look over it by the last bit, so the comparison allows for rounding.
        normalized_budget = normalized_budget * (1 + _BUDGET_RTOL)
        cheapest = self.evaluate(first_stage_policy(self.n_stages), np.inf)
        candidates = [*frontier, cheapest]
        candidates += self._direct_budget_candidates(normalized_budget)

        def best_affordable():
            affordable = [
                c for c in candidates if c.normalized_cost <= normalized_budget
            ]
            # Ties in accuracy go to the cheaper policy.
            return max(affordable, key=lambda c: (c.accuracy, -c.normalized_cost))

        best = best_affordable()
        over_budget = [
            c.cost_weight
            for c in candidates
            if c.normalized_cost > normalized_budget
            and c.cost_weight < best.cost_weight
        ]
        high = None
        if over_budget and np.isfinite(best.cost_weight):
            low, high = max(over_budget), best.cost_weight
        elif over_budget:
            # Only "everything exits first" fits, but a weight past the grid's
            # largest may defer a few rows and still fit: search up by decades.
            low = max(over_budget)
            for _ in range(_MAX_DECADES):
                trial = low * 10.0 if low > 0 else 1.0
                candidate = self.at_cost_weight(trial)
                candidates.append(candidate)
                if candidate.normalized_cost <= normalized_budget:
                    high = trial
                    break
                low = trial
        if high is not None:
            for _ in range(n_refinements):
                mid = np.sqrt(low * high) if low > 0 else high / 10.0
                candidate = self.at_cost_weight(mid)
                candidates.append(candidate)
                if candidate.normalized_cost <= normalized_budget:
                    high = mid
                else:
                    low = mid
            best = best_affordable()
        return best


class BolukbasiSearch(PolicySearch):
    """Rules learned bottom-up as weighted binary problems (the default)."""

    def __init__(self, *args, learner="linear", feature_set, tune_threshold):
        super().__init__(*args)
        self.options = dict(
            loss=self.loss,
            policy=learner,
            feature_set=feature_set,
            tune_threshold=tune_threshold,
        )

    def fit(self, cost_weight):
        return fit_bottom_up_policy(
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            cost_weight,
            sample_weight=self.sample_weight,
            **self.options,
        )


class HeuristicSearch(PolicySearch):
    """One heuristic confidence score with a threshold shared by every stage."""

    def __init__(self, *args, kind):
        super().__init__(*args)
        self.kind = kind
        if kind == "patience" and self.n_stages == 2:
            warnings.warn(
                "policy='patience' with two stages sends every row the same way: "
                "the first stage has no earlier stage to agree with, so all rows "
                "exit there or all go on. Use 'max_proba', 'entropy' or a learned "
                "policy for two stages.",
                UserWarning,
                stacklevel=2,
            )
        scores = np.stack(
            [
                heuristic_score(kind, self.stage_probas[: stage + 1])
                for stage in range(self.n_stages - 1)
            ]
        )
        self.thresholds, self.exit_table = shared_threshold_table(scores)
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
        return _evaluate_exits(
            self._policy(index),
            self.exit_table[index],
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            self.sample_weight,
            cost_weight,
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

    def _direct_budget_candidates(self, normalized_budget):
        # Every shared threshold is known: take the most accurate affordable one.
        affordable = np.flatnonzero(self.mean_cost <= normalized_budget)
        if len(affordable) == 0:
            return []
        evaluations = [self._evaluate_index(i, np.nan) for i in affordable]
        best = max(evaluations, key=lambda c: (c.accuracy, -c.normalized_cost))
        index = int(affordable[evaluations.index(best)])
        return [replace(best, cost_weight=self._weight_choosing(index))]

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


class EENetSearch(PolicySearch):
    """Learned correctness scores per exit, then per-exit thresholds."""

    def __init__(self, *args):
        super().__init__(*args)
        self.scorers = fit_eenet_scorers(
            self.stage_probas, self.y_encoded, self.sample_weight
        )
        self.scores = np.stack(self.scorers.scores(self.stage_probas[:-1]))

    def fit(self, cost_weight):
        thresholds = schedule_thresholds(
            self.scores, self.stage_risk(cost_weight), self.weight
        )
        return CascadePolicy(
            [
                EENetRule(self.scorers, stage, threshold)
                for stage, threshold in enumerate(thresholds)
            ]
        )


def check_policy(policy) -> None:
    """Raise a clear error unless ``policy`` names a family or is a usable learner.

    Parameters
    ----------
    policy : str or classifier
        One of :data:`POLICIES`, or a classifier whose ``fit`` accepts
        ``sample_weight`` (the learner of Bolukbasi rules).

    Examples
    --------
    >>> from skadaptive.policies import check_policy
    >>> check_policy("eenet")
    >>> check_policy("greedy")
    Traceback (most recent call last):
    ...
    ValueError: policy must be one of ('linear', 'constant', 'eenet', ...
    """
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(
                f"policy must be one of {POLICIES} or a classifier; got {policy!r}."
            )
        return
    check_policy_learner(policy)


def make_policy_search(
    policy,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    cumulative_cost: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    loss: str = "zero_one",
    feature_set: str = "history",
    tune_threshold: bool = True,
) -> PolicySearch:
    """The search object of one policy family over held-out stage probabilities.

    Parameters
    ----------
    policy : {"linear", "constant", "eenet", "max_proba", "entropy", \
            "patience"} or classifier
        ``"linear"``, ``"constant"`` or a classifier: Bolukbasi et al.'s rules
        of that family, learned bottom-up. ``"eenet"``: learned correctness
        scores with per-exit thresholds. ``"max_proba"``, ``"entropy"``,
        ``"patience"``: a heuristic score with one shared threshold.
    stage_probas : list of ndarray of shape (n_samples, n_classes)
        Held-out probabilities of every stage for the same rows.
    y_encoded : ndarray of shape (n_samples,)
    cumulative_cost : ndarray of shape (n_stages,)
        Cost of answering at each stage, normalised so that the last is 1.
    sample_weight : ndarray of shape (n_samples,), default=None
    loss : {"zero_one", "log_loss"}, default="zero_one"
        Loss in the objective ``loss + cost_weight * cost``.
    feature_set : str, default="history"
        Features of the Bolukbasi rules (ignored by the other families).
    tune_threshold : bool, default=True
        Whether the Bolukbasi rules' cuts are tuned (ignored by the others).

    Returns
    -------
    search : PolicySearch
        ``fit(cost_weight)``, ``at_cost_weight(cost_weight)``,
        ``frontier(cost_weights)`` and ``within_budget(normalized_budget)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import make_policy_search
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> cheap = np.where(rng.random((300, 1)) < 0.5, 0.5, np.eye(2)[y] * 0.8 + 0.1)
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> search = make_policy_search("max_proba", [cheap, costly], y,
    ...                             np.array([0.1, 1.0]))
    >>> chosen = search.within_budget(0.6)
    >>> bool(chosen.normalized_cost <= 0.6), chosen.accuracy
    (True, 1.0)
    """
    check_policy(policy)
    args = (stage_probas, y_encoded, cumulative_cost, sample_weight, loss)
    if isinstance(policy, str) and policy in HEURISTICS:
        return HeuristicSearch(*args, kind=policy)
    if isinstance(policy, str) and policy == "eenet":
        return EENetSearch(*args)
    return BolukbasiSearch(
        *args, learner=policy, feature_set=feature_set, tune_threshold=tune_threshold
    )
