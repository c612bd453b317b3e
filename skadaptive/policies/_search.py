"""Learn and evaluate exit policies on held-out rows, for a cost weight or a budget.

Every policy family answers the same two questions on the held-out stage
probabilities: which policy minimises ``loss + cost_weight * cost`` (used for
``cost_weight`` and for the frontier), and which is the most accurate whose
average cost is within a budget. :func:`make_policy_search` returns the object
that answers them for one family; both estimators use it and nothing else.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, replace
from functools import partial
from itertools import product

import numpy as np
from sklearn.utils import check_random_state

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
from ._thresholds import (
    ThresholdProblem,
    budget_thresholds,
    first_reaching,
    lagrangian_weight,
)

# cost_weight grid of the fitted frontier. Normalised costs lie in [0, 1] and a
# 0/1 loss in {0, 1}, so beyond ~10 every policy exits at the first stage.
#: The ``cost_weight`` grid of every fitted ``frontier_``: 0, then 30 values
#: from 1e-4 to 10 on a log scale.
DEFAULT_COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 30)])
_BUDGET_RTOL = 1e-9
#: Cost weights, relative to the one at which per-stage max-probability
#: thresholds just meet a budget, at which Bolukbasi rules are learned for it.
_RULE_WEIGHT_FACTORS = (0.3, 1.0, 3.0)

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
    kind: str = ""


@dataclass
class ScoredExits:
    """Exit scores of one kind of rule on the search rows, for threshold search.

    ``make_policy(thresholds)`` builds the policy that exits a row at the
    first exit whose score reaches that exit's threshold; ``cost_weight`` is
    the trade-off the scores were learned with (nan where they depend on none).
    """

    scores: np.ndarray
    make_policy: object
    cost_weight: float = np.nan
    kind: str = ""


def per_stage_max_proba(stage_probas: list[np.ndarray]) -> ScoredExits:
    """Per-stage max-probability thresholds: the baseline every budget search has.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._search import per_stage_max_proba
    >>> exits = per_stage_max_proba([np.array([[0.9, 0.1], [0.6, 0.4]]),
    ...                              np.eye(2)])
    >>> exits.make_policy(np.array([0.8])).exit_stage(
    ...     [np.array([[0.9, 0.1], [0.6, 0.4]]), np.eye(2)]).tolist()
    [0, 1]
    """
    return _heuristic_exits("max_proba", stage_probas)


def _heuristic_exits(kind, stage_probas) -> ScoredExits:
    scores = np.stack(
        [
            heuristic_score(kind, stage_probas[: stage + 1])
            for stage in range(len(stage_probas) - 1)
        ]
    )

    def make_policy(thresholds):
        return CascadePolicy([HeuristicRule(kind, float(t)) for t in thresholds])

    return ScoredExits(scores, make_policy, kind=f"{kind} per exit")


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
        self.stage_probas = [np.asarray(p) for p in stage_probas]
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

    def _scored_exits(self, normalized_budget: float) -> list[ScoredExits]:
        """This family's own exit scores for a budget (besides the baseline)."""
        return []

    def subset(self, rows: np.ndarray) -> PolicySearch:
        """The same search on some of the rows (to cross-fit the policy).

        Parameters
        ----------
        rows : ndarray of int

        Returns
        -------
        search : PolicySearch
        """
        return make_policy_search(
            self.spec,
            [p[rows] for p in self.stage_probas],
            self.y_encoded[rows],
            self.cumulative_cost,
            None if self.sample_weight is None else self.sample_weight[rows],
            loss=self.loss,
            **self.options,
        )

    def budget_candidates(self, normalized_budget: float) -> list[PolicyEvaluation]:
        """One policy per kind of exit score, each with thresholds for the budget.

        The kinds are this family's own (Bolukbasi rules learned at cost
        weights around the budget's price of cost, EENet's correctness scores,
        a heuristic's confidence) and, last, per-stage max-probability
        thresholds, which every family considers. Each gets one threshold per
        exit chosen directly for the budget by
        :func:`~skadaptive.policies._thresholds.budget_thresholds`: the most
        accurate (lowest average loss) thresholds whose average cost on these
        rows is within it.

        Parameters
        ----------
        normalized_budget : float
            Maximum average cost, as a fraction of running every stage; at
            least the first stage's normalised cost.

        Returns
        -------
        candidates : list of PolicyEvaluation
            In a fixed order of kinds, so that the same position is the same
            recipe on any rows (see :func:`cross_fitted_exits`).
        """
        # Cached: a margin search and the estimator ask for the same budget.
        cache = self.__dict__.setdefault("_budget_candidates", {})
        if normalized_budget in cache:
            return cache[normalized_budget]
        if self.cumulative_cost[0] > normalized_budget * (1 + _BUDGET_RTOL):
            raise ValueError(
                f"A normalised budget of {normalized_budget:g} is below the "
                f"first stage's normalised cost {self.cumulative_cost[0]:g}."
            )
        stage_loss = self.stage_risk(0.0)
        kinds = [*self._scored_exits(normalized_budget)]
        kinds.append(per_stage_max_proba(self.stage_probas))
        candidates = []
        for kind in kinds:
            problem = ThresholdProblem(
                kind.scores, stage_loss, self.cumulative_cost, self.weight
            )
            thresholds, _, _ = budget_thresholds(problem, normalized_budget)
            evaluation = self._evaluate_exits(
                kind.make_policy(thresholds),
                first_reaching(kind.scores, thresholds),
                kind.cost_weight,
            )
            candidates.append(replace(evaluation, kind=kind.kind))
        cache[normalized_budget] = candidates
        return candidates

    def within_budget(self, normalized_budget: float) -> PolicyEvaluation:
        """The most accurate of :meth:`budget_candidates` on these rows.

        Ties go to the cheaper. On these rows the result is never less accurate
        than the per-stage max-probability thresholds that the search finds.
        (The estimators choose among the candidates out of sample instead, by
        cross-fitting over the policy rows.)

        Parameters
        ----------
        normalized_budget : float
            Maximum average cost, as a fraction of running every stage.

        Returns
        -------
        evaluation : PolicyEvaluation
        """
        candidates = self.budget_candidates(normalized_budget)
        losses = [
            self.average_loss(c.policy.exit_stage(self.stage_probas))
            for c in candidates
        ]
        best = min(
            range(len(candidates)),
            key=lambda i: (losses[i], candidates[i].normalized_cost),
        )
        return candidates[best]

    def average_loss(self, exit_stage: np.ndarray) -> float:
        """Weighted average loss of answering each row at ``exit_stage``.

        Parameters
        ----------
        exit_stage : ndarray of shape (n_rows,)

        Returns
        -------
        loss : float
        """
        rows = np.arange(len(exit_stage))
        return float(self.stage_risk(0.0)[exit_stage, rows] @ self.weight) / float(
            self.weight.sum()
        )

    def budget_weight(self, normalized_budget: float) -> float:
        """The price of cost at a budget, in loss per unit of normalised cost.

        The smallest cost weight at which per-stage max-probability thresholds
        minimising ``loss + cost_weight * cost`` meet the budget.

        Parameters
        ----------
        normalized_budget : float

        Returns
        -------
        cost_weight : float
        """
        problem = ThresholdProblem(
            per_stage_max_proba(self.stage_probas).scores,
            self.stage_risk(0.0),
            self.cumulative_cost,
            self.weight,
        )
        return lagrangian_weight(problem, normalized_budget)

    def _evaluate_exits(self, policy, exit_stage, cost_weight) -> PolicyEvaluation:
        return _evaluate_exits(
            policy,
            exit_stage,
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            self.sample_weight,
            cost_weight,
        )


class BolukbasiSearch(PolicySearch):
    """Rules learned bottom-up as weighted binary problems (the default)."""

    def __init__(self, *args, learner="linear", feature_set, tune_threshold):
        super().__init__(*args)
        self.spec = learner
        self.options = dict(feature_set=feature_set, tune_threshold=tune_threshold)

    def fit(self, cost_weight, feature_set=None):
        options = dict(self.options)
        if feature_set is not None:
            options["feature_set"] = feature_set
        return fit_bottom_up_policy(
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            cost_weight,
            loss=self.loss,
            policy=self.spec,
            sample_weight=self.sample_weight,
            **options,
        )

    def _scored_exits(self, normalized_budget):
        # A rule learned at cost weight lam ranks rows by how much deferring
        # them is worth at that price of cost; the price at which a budget
        # binds is about the one where max-probability thresholds meet it.
        # Rules that also see the whole probability vector are tried too: on
        # the benchmarks they ranked rows better at some budgets, and which
        # kind is kept is decided out of sample. So are EENet's correctness
        # scores, which depend on no cost weight.
        weight = self.budget_weight(normalized_budget)
        feature_sets = [self.options["feature_set"]]
        if feature_sets[0] != "probabilities":
            feature_sets.append("probabilities")
        candidates = []
        for feature_set, factor in product(feature_sets, _RULE_WEIGHT_FACTORS):
            lam = factor * weight
            policy = self.fit(lam, feature_set)
            scores = np.stack(
                [
                    rule.score(self.stage_probas[: stage + 1])
                    for stage, rule in enumerate(policy.rules)
                ]
            )
            candidates.append(
                ScoredExits(
                    scores,
                    partial(_with_thresholds, policy.rules),
                    lam,
                    kind=f"rules on {feature_set} x{factor:g}",
                )
            )
        eenet = fit_eenet_scorers(self.stage_probas, self.y_encoded, self.sample_weight)
        candidates.append(_eenet_exits(eenet, self.stage_probas))
        return candidates


class HeuristicSearch(PolicySearch):
    """One heuristic confidence score: a threshold shared by every stage for a
    cost weight (the papers' form), one per exit for a budget."""

    def __init__(self, *args, kind, shared_threshold=False):
        super().__init__(*args)
        self.kind = kind
        self.spec = kind
        self.shared_threshold = shared_threshold
        self.options = dict(shared_threshold=shared_threshold)
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
        self.thresholds, self.exit_table = shared_threshold_table(scores, self.weight)
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
        return self._evaluate_exits(
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
            self.mean_cost <= normalized_budget * (1 + _BUDGET_RTOL)
        )
        evaluations = [self._evaluate_index(i, np.nan) for i in affordable]
        best = max(evaluations, key=lambda c: (c.accuracy, -c.normalized_cost))
        index = int(affordable[evaluations.index(best)])
        return [
            replace(
                best,
                cost_weight=self._weight_choosing(index),
                kind=f"{self.kind} shared",
            )
        ]

    def _scored_exits(self, normalized_budget):
        # Per-exit thresholds on this heuristic's score (max_proba's is the
        # baseline every search has already).
        if self.kind == "max_proba":
            return []
        return [_heuristic_exits(self.kind, self.stage_probas)]

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
        self.spec = "eenet"
        self.options = {}
        self.scorers = fit_eenet_scorers(
            self.stage_probas, self.y_encoded, self.sample_weight
        )
        self.scores = np.stack(self.scorers.scores(self.stage_probas[:-1]))

    def fit(self, cost_weight):
        thresholds = schedule_thresholds(
            self.scores, self.stage_risk(cost_weight), self.weight
        )
        return _eenet_exits(self.scorers, self.stage_probas).make_policy(thresholds)

    def _scored_exits(self, normalized_budget):
        return [_eenet_exits(self.scorers, self.stage_probas)]


def _eenet_exits(scorers, stage_probas) -> ScoredExits:
    def make_policy(thresholds):
        return CascadePolicy(
            [EENetRule(scorers, k, float(t)) for k, t in enumerate(thresholds)]
        )

    scores = np.stack(scorers.scores(stage_probas[:-1]))
    return ScoredExits(scores, make_policy, kind="eenet scores")


def _with_thresholds(rules, thresholds) -> CascadePolicy:
    return CascadePolicy(
        [replace(rule, threshold=float(t)) for rule, t in zip(rules, thresholds)]
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
    shared_threshold: bool = False,
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
    shared_threshold : bool, default=False
        Heuristics only: for a budget, one threshold shared by every stage
        (the form of the papers that introduced them) instead of one per
        stage. Their ``cost_weight`` fits always share one threshold.

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
        return HeuristicSearch(*args, kind=policy, shared_threshold=shared_threshold)
    if isinstance(policy, str) and policy == "eenet":
        return EENetSearch(*args)
    return BolukbasiSearch(
        *args, learner=policy, feature_set=feature_set, tune_threshold=tune_threshold
    )


def cross_fitted_exits(
    search: PolicySearch,
    choose,
    n_splits: int = 5,
    random_state=None,
    *,
    return_folds: bool = False,
):
    """Each row's exit stage under policies chosen without that row.

    The rows are split in ``n_splits`` folds by :func:`row_folds`; for each
    fold, ``choose`` picks its policies on the other folds' rows exactly as it
    does on all of them, and they decide the fold's rows. Figures computed
    from these exits are out of sample for the policy: its rules, thresholds
    and budget search never saw the row.

    Parameters
    ----------
    search : PolicySearch
    choose : callable
        ``choose(search) -> list of PolicyEvaluation``: the candidates, in the
        same order on any rows (e.g. ``lambda s: s.budget_candidates(0.3)``,
        or ``lambda s: [s.at_cost_weight(0.01)]``).
    n_splits : int, default=5
        Folds without rows of positive weight are skipped; with fewer than two
        left, the answer is in sample.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the folds.

    return_folds : bool, default=False
        Also return each row's fold (see :func:`row_folds`).

    Returns
    -------
    exit_stage : ndarray of shape (n_candidates, n_rows)
    folds : ndarray of shape (n_rows,)
        Only with ``return_folds``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import make_policy_search
    >>> from skadaptive.policies._search import cross_fitted_exits
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> cheap = rng.dirichlet([1, 1], 300)
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    >>> exits = cross_fitted_exits(search, lambda s: [s.within_budget(0.5)],
    ...                            random_state=0)
    >>> exits.shape
    (1, 300)
    >>> in_sample = search.within_budget(0.5).policy.exit_stage([cheap, costly])
    >>> bool(0.9 < (exits[0] == in_sample).mean() < 1.0)
    True
    """

    def exits_of(chosen, rows):
        probas = [p[rows] for p in search.stage_probas]
        return np.stack([c.policy.exit_stage(probas) for c in chosen])

    n_rows = len(search.y_encoded)
    fold = row_folds(
        search.stage_probas, search.y_encoded, n_splits, random_state, search.weight
    )
    positive = search.weight > 0
    folds = [f for f in range(n_splits) if (positive & (fold == f)).any()]
    if len(folds) < 2:
        exit_stage = exits_of(choose(search), np.arange(n_rows))
        return (exit_stage, fold) if return_folds else exit_stage
    exit_stage = None
    for f in folds:
        rows = np.flatnonzero(fold == f)
        exits = exits_of(choose(search.subset(np.flatnonzero(fold != f))), rows)
        if exit_stage is None:
            exit_stage = np.zeros((len(exits), n_rows), dtype=np.intp)
        exit_stage[:, rows] = exits
    # Rows of folds without weight count for nothing; answer them in sample.
    rest = np.flatnonzero(~np.isin(fold, folds))
    if len(rest):
        exit_stage[:, rest] = exits_of(choose(search), rest)
    return (exit_stage, fold) if return_folds else exit_stage


def select_out_of_sample(search, exit_stage, folds):
    """The candidate kept, and its out-of-sample figures with the choice held out.

    The kept candidate has the lowest cross-fitted loss over all rows (ties:
    the lower cross-fitted cost, then the earlier). Reporting that winner's own
    cross-fitted figure would be optimistic by the choice among candidates, so
    the estimate repeats the choice for each fold on the other folds' rows
    and takes the fold's rows from the candidate chosen there.

    Parameters
    ----------
    search : PolicySearch
    exit_stage : ndarray of shape (n_candidates, n_rows)
        Cross-fitted exits (:func:`cross_fitted_exits`).
    folds : ndarray of shape (n_rows,)

    Returns
    -------
    best : int
    per_candidate : list of PolicyEvaluation
        Each candidate's cross-fitted figures.
    estimate : PolicyEvaluation
        The figures with the choice made without the rows they are scored on.
    """
    rows = np.arange(exit_stage.shape[1])
    stage_loss = search.stage_risk(0.0)
    loss = np.stack([stage_loss[e, rows] for e in exit_stage])
    cost = np.stack([search.cumulative_cost[e] for e in exit_stage])

    def pick(mask):
        weight = search.weight * mask
        if weight.sum() == 0:
            weight = search.weight
        key = [(loss[k] @ weight, cost[k] @ weight, k) for k in range(len(loss))]
        return min(key)[2]

    best = pick(np.ones(len(rows)))
    held_out_choice = np.empty(len(rows), dtype=np.intp)
    for fold in np.unique(folds):
        inside = folds == fold
        held_out_choice[inside] = exit_stage[pick(~inside), inside]
    per_candidate = [search._evaluate_exits(None, e, np.nan) for e in exit_stage]
    estimate = search._evaluate_exits(None, held_out_choice, np.nan)
    return best, per_candidate, estimate


def row_folds(
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    n_splits: int,
    random_state,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Fold of each row: equal rows together, folds balanced by weight.

    Rows with the same probabilities and label form one group, and a group
    goes whole to one fold, so that weight k on a row is the same as k copies
    of it (copies are never split between choosing a policy and evaluating
    it). Groups are dealt, heaviest first, to the fold with the least weight so
    far, in an order salted by ``random_state``; groups of zero weight follow
    and never change where the others go.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._search import row_folds
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1], [0.6, 0.4]])
    >>> folds = row_folds([proba], np.array([0, 1, 0, 1]), 2, 0)
    >>> bool(folds[0] == folds[2]), sorted(np.bincount(folds).tolist())
    (True, [2, 2])
    """
    weight = np.ones(len(y_encoded)) if weight is None else np.asarray(weight)
    # Rounded: the same row scored by two fits may differ in the last bits.
    rows = np.column_stack(
        [np.round(np.asarray(p, dtype=np.float64), 6) for p in stage_probas]
        + [np.asarray(y_encoded, dtype=np.float64)]
    )
    groups, group_of_row = np.unique(rows, axis=0, return_inverse=True)
    group_of_row = group_of_row.ravel()
    group_weight = np.bincount(group_of_row, weights=weight, minlength=len(groups))
    # Deterministic without a random_state: refitting gives the same policy.
    salt = (
        0
        if random_state is None
        else check_random_state(random_state).randint(2**31 - 1)
    )
    key = int(salt).to_bytes(4, "little")
    tie_break = np.array(
        [
            int.from_bytes(
                hashlib.blake2b(g.tobytes(), digest_size=8, key=key).digest(),
                "little",
            )
            for g in np.ascontiguousarray(groups)
        ],
        dtype=np.uint64,
    )
    fold_of_group = np.empty(len(groups), dtype=np.intp)
    load = np.zeros(n_splits)
    positive = group_weight > 0
    for group in np.lexsort((tie_break, -group_weight)):
        if positive[group]:
            fold = int(np.argmin(load))
            load[fold] += group_weight[group]
        else:
            fold = int(tie_break[group] % np.uint64(n_splits))
        fold_of_group[group] = fold
    return fold_of_group[group_of_row]
