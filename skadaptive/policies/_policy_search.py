"""What every policy family's search does, on held-out stage probabilities.

:class:`PolicySearch` answers two questions for one family: which policy
minimises ``loss + cost_weight * cost`` (for ``cost_weight`` and the
frontier), and, for a budget, one candidate policy per kind of exit score,
each with per-exit thresholds moved for the budget; per-stage max-probability
thresholds are one candidate of every family. The families subclass it in
their own modules (``_bottom_up``, ``_eenet``, ``_heuristics``);
:func:`~skadaptive.policies.make_policy_search` picks one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from ._features import heuristic_score
from ._losses import is_regression_loss, per_row_loss
from ._policy import (
    CascadePolicy,
    HeuristicRule,
    PolicyEvaluation,
    ScoredExits,
    evaluate_exits,
    stage_correct,
)
from ._thresholds import (
    BUDGET_RTOL,
    ThresholdProblem,
    _tie_key,
    budget_thresholds,
    first_reaching,
    lagrangian_weight,
)

# cost_weight grid of the fitted frontier. Normalised costs lie in [0, 1] and a
# 0/1 loss in {0, 1}, so beyond ~10 a policy pays for a stage only where it
# costs under about a tenth of an error more than the first (costs [1, 1, 100]
# keep the second stage in use at any weight).
#: The ``cost_weight`` grid of every fitted ``frontier_``: 0, then 30 values
#: from 1e-4 to 10 on a log scale.
DEFAULT_COST_WEIGHTS = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 30)])

#: Weight of the tie-break in the 0/1 loss a budget search minimises: the
#: probability each stage's answer leaves to the other classes than the true
#: one. It changes the average loss by at most a millionth, so it never
#: outweighs a row's 0/1 loss unless that row's weight is under a millionth of
#: the total weight (then the search may answer it wrong for surer answers
#: elsewhere: the accuracy is exact to 1e-6); and differences of surety it
#: sees above the rounding of average losses to 1e-12 (a millionth of a
#: probability per row on a million rows).
TIE_BREAK_WEIGHT = 1e-6


def per_stage_max_proba(stage_probas: list[np.ndarray]) -> ScoredExits:
    """Per-stage max-probability thresholds: the baseline every budget search has.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy_search import per_stage_max_proba
    >>> exits = per_stage_max_proba([np.array([[0.9, 0.1], [0.6, 0.4]]),
    ...                              np.eye(2)])
    >>> exits.make_policy(np.array([0.8])).exit_stage(
    ...     [np.array([[0.9, 0.1], [0.6, 0.4]]), np.eye(2)]).tolist()
    [0, 1]
    """
    return heuristic_exits("max_proba", stage_probas)


def reference_exits(stage_probas: list[np.ndarray], loss: str) -> ScoredExits:
    """The heuristic with one threshold per exit that every budget search has.

    Per-stage max-probability thresholds for classification; for regression,
    per-stage thresholds on the disagreement between consecutive stages.
    """
    if is_regression_loss(loss):
        return heuristic_exits("disagreement", stage_probas)
    return per_stage_max_proba(stage_probas)


def one_exit_for_every_row(stage_probas: list[np.ndarray]) -> ScoredExits:
    """The same score for every row: a budget search can then only answer
    every row at one exit (the lowest-loss affordable one).

    The reference of a regressor's budget search: another kind of score
    replaces it only when it is better out of sample by more than one
    standard error, choice of kind included (see
    :func:`~skadaptive.policies._selection.select_out_of_sample`), so that
    where the policy rows cannot tell rows apart a policy learned from their
    noise is seldom kept.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy_search import one_exit_for_every_row
    >>> answers = [np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([[1.5, 0.0]] * 2)]
    >>> exits = one_exit_for_every_row(answers)
    >>> exits.make_policy(np.array([np.inf])).exit_stage(answers).tolist()
    [1, 1]
    """
    # Imported here: the Bolukbasi family's module builds on this one.
    from ._bottom_up import ExitRule

    n_rows = np.asarray(stage_probas[0]).shape[0]
    scores = np.zeros((len(stage_probas) - 1, n_rows))

    def make_policy(thresholds):
        return CascadePolicy(
            [ExitRule("history", float(t), regression=True) for t in thresholds]
        )

    return ScoredExits(scores, make_policy, kind="one exit for every row")


def heuristic_exits(kind: str, stage_probas: list[np.ndarray]) -> ScoredExits:
    """A heuristic's score at every exit, with one threshold per exit."""
    scores = np.stack(
        [
            heuristic_score(kind, stage_probas[: stage + 1])
            for stage in range(len(stage_probas) - 1)
        ]
    )

    def make_policy(thresholds):
        return CascadePolicy([HeuristicRule(kind, float(t)) for t in thresholds])

    return ScoredExits(scores, make_policy, kind=f"{kind} per exit")


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
    loss : {"zero_one", "log_loss", "squared_error", "absolute_error"}

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
        # A subclass's own constructor keywords: subset() builds the same search.
        self.keywords = {}
        # The rows' groups (routed to the estimator's splitter), or None: the
        # policy's cross-fitting keeps a group's rows in one fold.
        self.groups = None
        #: Each row's content id (copies alike), where the estimator knows it.
        self.content = None

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

    def budget_loss(self) -> np.ndarray:
        """Loss of each row at each stage that the budget searches minimise.

        The stage loss; for ``loss="zero_one"`` plus :data:`TIE_BREAK_WEIGHT`
        times the probability each stage's answer gives to the other classes
        than the true one. On a few hundred policy rows of accurate stages
        many thresholds answer the same rows right; among them the search
        then prefers the thresholds whose answers are surest of the true
        class, which sends to a later stage the rows where it is surer and
        spends the budget there, rather than the cheapest of the ties (which
        left most of a budget unspent where the last stage was the most
        accurate). Linear in the rows, so weight k is k copies. The tie-break
        changes the average loss by at most a millionth
        (:data:`TIE_BREAK_WEIGHT`): where a row's weight is under a
        millionth of the total, it can outweigh that row's 0/1 loss.

        Returns
        -------
        loss : ndarray of shape (n_stages, n_rows)

        Examples
        --------
        >>> import numpy as np
        >>> from skadaptive.policies import make_policy_search
        >>> y = np.array([0, 1])
        >>> probas = [np.array([[0.6, 0.4], [0.3, 0.7]]), np.eye(2)]
        >>> search = make_policy_search("max_proba", probas, y, [0.1, 1.0])
        >>> search.budget_loss()[0] - search.stage_risk(0.0)[0]
        array([4.e-07, 3.e-07])
        """
        if not hasattr(self, "_budget_loss"):
            loss = self.stage_risk(0.0)
            if self.loss == "zero_one":
                rows = np.arange(len(self.y_encoded))
                untrue = np.stack(
                    [1.0 - p[rows, self.y_encoded] for p in self.stage_probas]
                )
                loss = loss + TIE_BREAK_WEIGHT * untrue
            self._budget_loss = loss
        return self._budget_loss

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

    def evaluate(
        self, policy: CascadePolicy, cost_weight: float = np.nan
    ) -> PolicyEvaluation:
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
        exit_stage, ran = policy.walk(self.stage_probas)
        return self.evaluate_exits(
            policy, exit_stage, cost_weight, ran if policy.skips else None
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

    def frontier(
        self, cost_weights: Iterable[float] = DEFAULT_COST_WEIGHTS
    ) -> list[PolicyEvaluation]:
        """One fitted and evaluated policy per value of ``cost_weights``.

        Parameters
        ----------
        cost_weights : array-like of float, default=DEFAULT_COST_WEIGHTS

        Returns
        -------
        frontier : list of PolicyEvaluation
        """
        return [self.at_cost_weight(lam) for lam in cost_weights]

    def scored_exits(self, normalized_budget: float) -> list[ScoredExits]:
        """This family's own exit scores for a budget (besides the baseline).

        A family overrides this to take part in budgets with its own scores;
        the reference exits (:func:`reference_exits`: per-stage max-probability
        thresholds, or for regression per-exit disagreement thresholds and
        then one exit for every row) are added for every family.

        Parameters
        ----------
        normalized_budget : float
            Maximum average cost, as a fraction of running every stage.

        Returns
        -------
        exits : list of ScoredExits
        """
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
        search = type(self)(
            [p[rows] for p in self.stage_probas],
            self.y_encoded[rows],
            self.cumulative_cost,
            None if self.sample_weight is None else self.sample_weight[rows],
            self.loss,
            **self.keywords,
        )
        search.groups = None if self.groups is None else self.groups[rows]
        content = getattr(self, "content", None)
        search.content = None if content is None else content[rows]
        return search

    def budget_candidates(self, normalized_budget: float) -> list[PolicyEvaluation]:
        """One policy per kind of exit score, each with thresholds for the budget.

        The kinds are this family's own (Bolukbasi rules learned at cost
        weights around the budget's price of cost, EENet's correctness scores,
        a heuristic's confidence) and, last, the reference every family
        considers: per-stage max-probability thresholds (for regression,
        per-exit disagreement thresholds, then one exit for every row, which
        comes last). Each gets one threshold per
        exit chosen directly for the budget by
        :func:`~skadaptive.policies._thresholds.budget_thresholds`: the most
        accurate (lowest average loss) thresholds whose average cost on these
        rows is within it, ties broken by :meth:`budget_loss`.

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
        if self.cumulative_cost[0] > normalized_budget * (1 + BUDGET_RTOL):
            raise ValueError(
                f"A normalised budget of {normalized_budget:g} is below the "
                f"first stage's normalised cost {self.cumulative_cost[0]:g}."
            )
        stage_loss = self.budget_loss()
        candidates = []
        for kind in self.budget_kinds(normalized_budget):
            problem = ThresholdProblem(
                kind.scores, stage_loss, self.cumulative_cost, self.weight
            )
            thresholds, _, _ = budget_thresholds(problem, normalized_budget)
            evaluation = self.evaluate_exits(
                kind.make_policy(thresholds),
                first_reaching(kind.scores, thresholds),
                kind.cost_weight,
            )
            candidates.append(replace(evaluation, kind=kind.kind))
        cache[normalized_budget] = candidates
        return candidates

    def budget_kinds(self, normalized_budget: float) -> list[ScoredExits]:
        """This family's :meth:`scored_exits` for a budget, then the reference
        thresholds' scores (:func:`reference_exits`), then for regression
        :func:`one_exit_for_every_row`; computed once per budget.

        Parameters
        ----------
        normalized_budget : float

        Returns
        -------
        kinds : list of ScoredExits
        """
        cache = self.__dict__.setdefault("_budget_kinds", {})
        if normalized_budget not in cache:
            kinds = [
                *self.scored_exits(normalized_budget),
                reference_exits(self.stage_probas, self.loss),
            ]
            if is_regression_loss(self.loss):
                kinds.append(one_exit_for_every_row(self.stage_probas))
            cache[normalized_budget] = kinds
        return cache[normalized_budget]

    def within_budget(self, normalized_budget: float) -> PolicyEvaluation:
        """The most accurate of :meth:`budget_candidates` on these rows.

        Ties go to the answers surest of the true class (:meth:`budget_loss`),
        then to the cheaper. On these rows the result is never less accurate
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
        keys = [
            self.budget_key(c.policy.exit_stage(self.stage_probas), c.normalized_cost)
            for c in candidates
        ]
        return candidates[min(range(len(candidates)), key=keys.__getitem__)]

    def budget_key(self, exit_stage: np.ndarray, cost: float) -> tuple:
        """How a budget search ranks exits: the weighted average of
        :meth:`budget_loss`, then the cost, rounded as ties are.

        Parameters
        ----------
        exit_stage : ndarray of shape (n_rows,)
        cost : float
            The exits' average cost.

        Returns
        -------
        key : tuple of float
            Lower is better.
        """
        rows = np.arange(len(exit_stage))
        share = self.weight / self.weight.sum()
        loss = float(self.budget_loss()[exit_stage, rows] @ share)
        return _tie_key((loss, float(cost)))

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
            reference_exits(self.stage_probas, self.loss).scores,
            self.stage_risk(0.0),
            self.cumulative_cost,
            self.weight,
        )
        return lagrangian_weight(problem, normalized_budget)

    def evaluate_exits(
        self,
        policy: CascadePolicy | None,
        exit_stage: np.ndarray,
        cost_weight: float,
        ran: np.ndarray | None = None,
    ) -> PolicyEvaluation:
        """:meth:`evaluate` of a policy whose exits on these rows are known.

        Parameters
        ----------
        policy : CascadePolicy or None
        exit_stage : ndarray of shape (n_rows,)
        cost_weight : float
        ran : ndarray of bool of shape (n_stages, n_rows), default=None
            The stages each row runs, for a policy that skips stages.

        Returns
        -------
        evaluation : PolicyEvaluation
        """
        if not hasattr(self, "_correct"):
            self._correct = stage_correct(self.stage_probas, self.y_encoded, self.loss)
        return evaluate_exits(
            policy,
            exit_stage,
            self._correct,
            self.cumulative_cost,
            self.sample_weight,
            cost_weight,
            ran,
        )
