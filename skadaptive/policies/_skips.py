"""Skipping stages: network selection as in Bolukbasi et al. (2017).

After each stage but the last, a row that does not answer there may run any
later stage next, not only the next one: a row that the cheap model finds
hard can go straight to the most expensive model without paying for the ones
in between. A :class:`SkipPolicy` is a plain policy's exit rules plus one
:class:`JumpRule` per stage (but the last two, whose only continuation is the
next stage) that chooses, for the rows that go on, which stage runs next.

What a rule sees. A rule after stage ``k`` scores the history of stages
``0..k``. A row that skipped stage ``i`` has no answer of its own there; it is
given the answer of the latest stage it ran before ``i`` (its answer *carried*
over the skipped stages), so that every rule sees a history of the same
shape, a row that skips nothing sees exactly what a plain cascade shows it,
and the engine and the offline walk (:meth:`SkipPolicy.walk`) compute the
same thing.

Learning, bottom-up as in the paper. The jump after stage ``k`` is learned
once the rules of every later stage are: the risk of continuing at stage
``j`` is ``loss + cost_weight * cost`` of what those *learned* downstream
rules do with the row from ``j`` (its history up to ``k`` real, carried over
``k+1..j-1``), the row having paid for stages ``0..k``. The jump rule is a
cost-sensitive choice among the continuations, reduced to a weighted
multiclass problem (label: the continuation of least risk; weight: the
spread of the risks, what a wrong choice can cost); it is kept only where it
beats the best single continuation on these rows. For the Bolukbasi family
the exit rule after ``k`` is then learned against the risk of the *chosen*
continuation ("exit against the best continuation, then which
continuation"); for the other families the exit scores are the family's own
and the jumps are learned for them. Budget searches then move the exit
thresholds on each row's path (:class:`SkipSearch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from .._typing import ArrayLike
from ._features import policy_features
from ._losses import is_regression_loss
from ._policy import (
    CascadePolicy,
    PolicyEvaluation,
    answer_costs,
    row_costs,
    with_thresholds,
)
from ._policy_search import PolicySearch
from ._thresholds import (
    ThresholdProblem,
    budget_thresholds,
    fit_standardisation,
    lagrangian_thresholds,
    rule_features,
)


@dataclass
class JumpRule:
    """After one stage, the stage that each row going on runs next.

    Parameters
    ----------
    targets : ndarray of int
        The stages a row may run next, ascending (a learned rule keeps those
        it chooses among).
    feature_set : str
        The :func:`~skadaptive.policies.policy_features` the learner sees.
    learner : classifier or None
        Predicts the target stage from the standardised features; None: every
        row goes to ``constant``.
    constant : int
        The target of every row when there is no learner.
    mean, scale : ndarray of shape (n_features,) or None
        The standardisation of the features the learner was fitted on.
    regression : bool
        Whether the answers are regression answers (prediction and
        uncertainty) rather than class probabilities.
    low, high : ndarray of shape (n_features,) or None
        The range of those standardised features on the rows the learner was
        fitted on; new rows (a row whose history carries answers over skipped
        stages) are clipped to it, so that the rule does not extrapolate.
    by_position : bool, default=False
        Whether the learner predicts positions in ``targets`` (0 for
        ``targets[0]``), as learned rules do (a learner such as XGBoost's
        wants labels ``0..k-1``), rather than the stages themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import JumpRule
    >>> jump = JumpRule(np.array([1, 2, 3]), constant=3)  # straight to stage 3
    >>> jump.next_stage([np.array([[0.6, 0.4], [0.9, 0.1]])]).tolist()
    [3, 3]
    """

    targets: np.ndarray
    feature_set: str = "history"
    learner: object | None = None
    constant: int = -1
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    regression: bool = False
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    by_position: bool = False

    def next_stage(self, history: list[np.ndarray]) -> np.ndarray:
        """The stage each row runs next.

        Parameters
        ----------
        history : list of ndarray of shape (n_rows, n_classes)
            The answers of stages ``0..k`` (carried over skipped stages).

        Returns
        -------
        stage : ndarray of int of shape (n_rows,)
        """
        n_rows = history[-1].shape[0]
        if self.learner is None:
            return np.full(n_rows, self.constant, dtype=np.intp)
        predicted = self.learner.predict(rule_features(self, history))
        if self.by_position:
            return from_positions(predicted, self.targets, "jump")
        return np.asarray(predicted, dtype=np.intp)


@dataclass
class SkipPolicy(CascadePolicy):
    """An exit policy whose rows may skip stages.

    Parameters
    ----------
    rules : list of rules
        Rule ``k`` decides which rows answer after stage ``k``.
    jumps : list of JumpRule or None
        ``jumps[k]`` chooses the stage that a row going on after stage ``k``
        runs next; None (and every stage without an entry) sends it to the
        next stage.
    router : Router or None, default=None
        Chooses each row's first stage from its raw features before any
        stage runs (see :class:`~skadaptive.policies.Router`); None: every
        row starts at the first stage.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import HeuristicRule
    >>> from skadaptive.policies import JumpRule, SkipPolicy
    >>> # Answer at stage 0 when sure; otherwise jump straight to stage 2.
    >>> policy = SkipPolicy(
    ...     [HeuristicRule("max_proba", 0.8), HeuristicRule("max_proba", 0.0)],
    ...     [JumpRule(np.array([1, 2]), constant=2)])
    >>> probas = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.eye(2), np.eye(2)]
    >>> exit_stage, ran = policy.walk(probas)
    >>> exit_stage.tolist(), ran.astype(int).tolist()
    ([0, 2], [[1, 1], [0, 0], [0, 1]])
    """

    jumps: list = field(default_factory=list)
    router: object | None = None

    skips = True

    def next_stages(self, stage: int, history: list[np.ndarray]) -> np.ndarray:
        """The stage that each row going on after ``stage`` runs next.

        Parameters
        ----------
        stage : int
        history : list of ndarray of shape (n_rows, n_classes)
            Answers of stages ``0..stage`` of the rows going on.

        Returns
        -------
        next_stage : ndarray of int of shape (n_rows,)
        """
        jump = self.jumps[stage] if stage < len(self.jumps) else None
        n_rows = history[-1].shape[0]
        if jump is None:
            return np.full(n_rows, stage + 1, dtype=np.intp)
        return check_next_stages(jump.next_stage(history), n_rows, stage, self.n_stages)

    def exit_stage(self, stage_probas: list[np.ndarray]) -> np.ndarray:
        """Stage that answers each row (see :meth:`walk`).

        Parameters
        ----------
        stage_probas : list of ndarray of shape (n_rows, n_classes)
            Every stage's probabilities for the same rows.

        Returns
        -------
        exit_stage : ndarray of shape (n_rows,)
        """
        return self.walk(stage_probas)[0]

    def walk(
        self,
        stage_probas: list[np.ndarray],
        start: ArrayLike | None = None,
        *,
        decide: bool = True,
    ) -> tuple[np.ndarray, ...]:
        """Where each row answers and which stages it runs, offline.

        Every stage's answers are known for every row; the walk shows each
        rule only the rows that reach its stage, with their history as the
        engine builds it (answers carried over skipped stages), so that
        routing new rows gives the same exits.

        Parameters
        ----------
        stage_probas : list of ndarray of shape (n_rows, n_classes)
        start : ndarray of int of shape (n_rows,), default=None
            The first stage each row runs (0 for all by default); the answers
            of the stages before it are taken as given (the history the row
            arrives with).
        decide : bool, default=True
            If False, no row answers before the last stage: the path each row
            would follow, and each exit's score on it, are what is returned.

        Returns
        -------
        exit_stage : ndarray of shape (n_rows,)
        ran : ndarray of bool of shape (n_stages, n_rows)
        scores : ndarray of shape (n_stages - 1, n_rows)
            Only with ``decide=False``: each exit's score of the rows that
            run its stage, NaN for the others (a row never exits at a stage
            it skips: NaN reaches no threshold).
        """
        if self.router is not None and start is None:
            raise ValueError(
                "This policy routes rows with a router, which needs their "
                "features: use skadaptive.policies.routed_walk(policy, "
                "stage_probas, X)."
            )
        n_stages = len(stage_probas)
        n_rows = stage_probas[0].shape[0]
        next_stage = (
            np.zeros(n_rows, dtype=np.intp)
            if start is None
            else np.array(start, dtype=np.intp)
        )
        alive = np.ones(n_rows, dtype=bool)
        started = np.zeros(n_rows, dtype=bool)
        exit_stage = np.full(n_rows, n_stages - 1, dtype=np.intp)
        ran = np.zeros((n_stages, n_rows), dtype=bool)
        scores = np.full((n_stages - 1, n_rows), np.nan)
        seen: list[np.ndarray] = []
        for stage in range(n_stages):
            running = alive & (next_stage == stage)
            answers = np.asarray(stage_probas[stage])
            carried = started & ~running
            if stage and carried.any():
                answers = np.where(carried[:, None], seen[-1], answers)
            seen.append(answers)
            ran[stage] = running
            started |= running
            rows = np.flatnonzero(running)
            if stage == n_stages - 1 or len(rows) == 0:
                continue
            history = [s[rows] for s in seen]
            rule = self.rules[stage]
            if decide:
                exits = np.asarray(rule.exits(history), dtype=bool)
            else:
                scores[stage, rows] = rule.score(history)
                exits = np.zeros(len(rows), dtype=bool)
            exit_stage[rows[exits]] = stage
            alive[rows[exits]] = False
            going_on = ~exits
            if going_on.any():
                next_stage[rows[going_on]] = self.next_stages(
                    stage, [h[going_on] for h in history]
                )
        if decide:
            return exit_stage, ran
        return exit_stage, ran, scores


def from_positions(predicted, targets, what: str) -> np.ndarray:
    """The stages a learner fitted on positions in ``targets`` predicts."""
    predicted = np.asarray(predicted)
    if not np.issubdtype(predicted.dtype, np.number) or (
        predicted.size
        and (
            np.any(predicted != np.round(predicted))
            or predicted.min() < 0
            or predicted.max() >= len(targets)
        )
    ):
        raise ValueError(
            f"The {what}'s learner must predict positions 0..{len(targets) - 1} "
            f"in the stages {np.asarray(targets).tolist()} it was fitted on; got "
            f"{np.unique(predicted)[:8]}."
        )
    return np.asarray(targets, dtype=np.intp)[predicted.astype(np.intp)]


def fit_weighted_choice(learner, features, positions, weight, what: str) -> None:
    """Fit a policy learner to a weighted choice, with a clear error."""
    try:
        learner.fit(features, positions, sample_weight=weight)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The {what} could not be learned by {type(learner).__name__} "
            f"({exc}). It is fitted with sample_weight to labels 0..k-1 (the "
            "position of the best choice among the k); pass a classifier that "
            "accepts both."
        ) from exc


def check_next_stages(next_stage, n_rows: int, stage: int, n_stages: int) -> np.ndarray:
    """A jump's choice: one later stage per row going on, or a clear error."""
    next_stage = np.asarray(next_stage)
    if (
        next_stage.shape != (n_rows,)
        or not np.issubdtype(next_stage.dtype, np.integer)
        or (n_rows and (next_stage.min() <= stage or next_stage.max() >= n_stages))
    ):
        raise ValueError(
            f"The jump after stage {stage} must give, for each of the {n_rows} "
            f"rows going on, a later stage in {stage + 1}..{n_stages - 1}; got "
            f"dtype {next_stage.dtype}, shape {next_stage.shape}"
            + (f", values {np.unique(next_stage)[:8]}" if next_stage.size else "")
            + "."
        )
    return next_stage.astype(np.intp, copy=False)


def path_costs(ran: np.ndarray, cumulative_cost: np.ndarray) -> np.ndarray:
    """Cost of answering each row at each stage of its path, (n_stages, n_rows).

    The sum of the costs of the stages the row runs up to there.
    """
    steps = np.diff(np.asarray(cumulative_cost, dtype=np.float64), prepend=0.0)
    return np.cumsum(steps[:, None] * ran, axis=0)


def _jump_learner(learner):
    if learner == "constant":
        return None
    if isinstance(learner, str):
        return LogisticRegression(C=1.0, max_iter=500)
    return clone(learner)


def continuation_risks(
    policy: SkipPolicy,
    stage: int,
    stage_probas: list[np.ndarray],
    stage_loss: np.ndarray,
    cumulative_cost: np.ndarray,
    cost_weight: float,
) -> np.ndarray:
    """Risk of each row going on to each later stage after ``stage``.

    Shape (n_stages - 1 - stage, n_rows): row ``j - stage - 1`` is the risk
    when the row runs stage ``j`` next, having paid for stages ``0..stage``,
    and what ``policy``'s rules and jumps from ``j`` on do with it.
    """
    n_stages = len(stage_probas)
    n_rows = stage_probas[0].shape[0]
    rows = np.arange(n_rows)
    risks = []
    for target in range(stage + 1, n_stages):
        arrived = (
            list(stage_probas[: stage + 1])
            + [stage_probas[stage]] * (target - stage - 1)
            + list(stage_probas[target:])
        )
        exit_stage, ran = policy.walk(arrived, np.full(n_rows, target))
        cost = cumulative_cost[stage] + row_costs(ran, cumulative_cost)
        risks.append(stage_loss[exit_stage, rows] + cost_weight * cost)
    return np.stack(risks)


def fit_jump_rule(
    history, risks, targets, weight, learner, feature_set, regression
) -> JumpRule:
    """The continuation after one stage, learned from each row's risks.

    A weighted multiclass problem: each row's label is its continuation of
    least risk (ties to the nearest stage), its weight the spread of its
    risks. The learned rule is kept only if its weighted risk on these rows
    is below that of the best single continuation.
    """
    targets = np.asarray(targets, dtype=np.intp)
    mean_risk = risks @ weight
    constant = JumpRule(
        targets,
        feature_set,
        constant=int(targets[np.argmin(mean_risk)]),
        regression=regression,
    )
    learner = _jump_learner(learner)
    best = np.argmin(risks, axis=0)
    spread = weight * (risks.max(axis=0) - risks.min(axis=0))
    informative = spread > 0
    if learner is None or len(np.unique(best[informative])) < 2:
        return constant
    features = policy_features(history, feature_set, regression)
    values, mean, scale, low, high = fit_standardisation(features, weight)
    label_weight = spread[informative] * (weight.sum() / spread.sum())
    # Labels 0..m-1: the positions among the continuations that are best for
    # some row (a learner such as XGBoost's wants no gaps).
    chosen_targets, labels = np.unique(best[informative], return_inverse=True)
    fit_weighted_choice(
        learner, values[informative], labels.ravel(), label_weight, "jump"
    )
    rule = JumpRule(
        targets[chosen_targets],
        feature_set,
        learner,
        -1,
        mean,
        scale,
        regression,
        low,
        high,
        True,
    )
    chosen = rule.next_stage(history) - targets[0]
    learned_risk = risks[chosen, np.arange(risks.shape[1])] @ weight
    return rule if learned_risk < mean_risk.min() else constant


def learn_jumps(
    policy: CascadePolicy,
    stage_probas: list[np.ndarray],
    stage_loss: np.ndarray,
    cumulative_cost: np.ndarray,
    cost_weight: float,
    weight: np.ndarray,
    *,
    learner="linear",
    feature_set: str = "history",
    regression: bool = False,
) -> SkipPolicy:
    """``policy``'s exit rules with jumps learned for them, bottom-up.

    Parameters
    ----------
    policy : CascadePolicy
        The exit rules (with their thresholds), kept as they are.
    stage_probas : list of ndarray of shape (n_rows, n_classes)
    stage_loss : ndarray of shape (n_stages, n_rows)
        Loss of answering each row at each stage.
    cumulative_cost : ndarray of shape (n_stages,)
    cost_weight : float
    weight : ndarray of shape (n_rows,)
    learner : {"linear", "constant"} or classifier, default="linear"
    feature_set : str, default="history"
    regression : bool, default=False

    Returns
    -------
    policy : SkipPolicy
    """
    n_stages = len(stage_probas)
    skip = SkipPolicy(list(policy.rules), [None] * (n_stages - 1))
    for stage in range(n_stages - 3, -1, -1):
        risks = continuation_risks(
            skip, stage, stage_probas, stage_loss, cumulative_cost, cost_weight
        )
        skip.jumps[stage] = fit_jump_rule(
            stage_probas[: stage + 1],
            risks,
            np.arange(stage + 1, n_stages),
            weight,
            learner,
            feature_set,
            regression,
        )
    return skip


#: The price of cost used for jumps when no finite one meets a budget.
_MAX_PRICE = 1e6
#: Times the jumps' price is raised (fourfold) for a budget candidate whose
#: jumps leave it less accurate than the same kind without jumps.
_JUMP_PRICE_RAISES = 3


def raised_prices(price: float, raises: int):
    """``price``, then ``raises`` times raised fourfold (from 1e-3 where it is
    0): the prices a budget's jumps or router are learned at, in turn, until
    one serves the budget.

    Examples
    --------
    >>> from skadaptive.policies._skips import raised_prices
    >>> list(raised_prices(0.5, 2)), list(raised_prices(0.0, 1))
    ([0.5, 2.0, 8.0], [0.0, 0.001])
    """
    for _ in range(raises + 1):
        yield price
        price = max(4.0 * price, 1e-3)


def jumps_over_stages(policy) -> bool:
    """Whether some row going on after a stage may run a stage other than the
    next one under ``policy`` (a fixed jump past the next stage, or a learned
    one that chooses among stages beyond it).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import HeuristicRule, JumpRule, SkipPolicy
    >>> from skadaptive.policies._skips import jumps_over_stages
    >>> rules = [HeuristicRule("max_proba", 0.9)] * 2
    >>> to_next = JumpRule(np.array([1, 2]), constant=1)
    >>> jumps_over_stages(SkipPolicy(rules, [to_next]))
    False
    >>> jumps_over_stages(SkipPolicy(rules, [JumpRule(np.array([1, 2]), constant=2)]))
    True
    """
    for stage, jump in enumerate(getattr(policy, "jumps", None) or []):
        if jump is None:
            continue
        if jump.learner is None:
            if jump.constant > stage + 1:
                return True
        elif np.any(np.asarray(jump.targets) > stage + 1):
            return True
    return False


def skipping_idle_stages(
    policy: CascadePolicy, stage_probas: list[np.ndarray], weight: np.ndarray
) -> SkipPolicy | None:
    """``policy`` with the middle stages at which it answers no row jumped over.

    A stage between the first and the last that some rows run but none
    answers at (rows of positive weight) only adds its cost. The policy
    returned keeps the same rules and sends the rows going on straight to the
    next stage that answers rows. It is returned only where it answers every
    one of these rows at the same stage as ``policy`` (so with the same
    answer, at a lower cost); a rule that reads a jumped stage's answer (the
    history features) may decide otherwise, and then None is returned, as it
    is where no stage is idle.

    Parameters
    ----------
    policy : CascadePolicy
        A policy that does not skip stages.
    stage_probas : list of ndarray of shape (n_rows, n_classes)
    weight : ndarray of shape (n_rows,)

    Returns
    -------
    policy : SkipPolicy or None

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import CascadePolicy, HeuristicRule
    >>> from skadaptive.policies._skips import skipping_idle_stages
    >>> probas = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.full((2, 2), 0.5),
    ...           np.eye(2)]
    >>> plain = CascadePolicy([HeuristicRule("max_proba", 0.8),
    ...                        HeuristicRule("max_proba", 0.8)])
    >>> plain.walk(probas)[1].astype(int).tolist()
    [[1, 1], [0, 1], [0, 1]]
    >>> skipping = skipping_idle_stages(plain, probas, np.ones(2))
    >>> skipping.walk(probas)[1].astype(int).tolist()
    [[1, 1], [0, 0], [0, 1]]
    """
    if policy.skips:
        return None
    n_stages = len(stage_probas)
    exit_stage, ran = policy.walk(stage_probas)
    counted = np.asarray(weight) > 0
    idle = [
        stage
        for stage in range(1, n_stages - 1)
        if (ran[stage] & counted).any() and not ((exit_stage == stage) & counted).any()
    ]
    if not idle:
        return None
    live = [stage for stage in range(n_stages) if stage not in idle]
    jumps = []
    for stage in range(n_stages - 2):
        after = next(s for s in live if s > stage)
        jumps.append(
            None
            if after == stage + 1
            else JumpRule(np.arange(stage + 1, n_stages), constant=after)
        )
    skipping = SkipPolicy(list(policy.rules), jumps)
    if not np.array_equal(skipping.walk(stage_probas)[0][counted], exit_stage[counted]):
        return None
    return skipping


class SkipSearch(PolicySearch):
    """A policy family's search whose policies may skip stages.

    For a ``cost_weight``, the family's policy with jumps learned for it
    (for the Bolukbasi family, exits and jumps learned together), unless the
    plain policy has the lower ``loss + cost_weight * cost`` on these rows.
    For a budget, the family's plain candidates and, for each kind of exit
    score, the same scores with jumps learned at the budget's price of cost
    and exit thresholds chosen for the budget on each row's path; the
    per-stage reference thresholds stay the last candidate.

    Parameters
    ----------
    plain : PolicySearch
        The family's own search.
    learner : {"linear", "constant"} or classifier, default="linear"
        Learner of the jumps (a multiclass classifier; for a custom one, its
        ``fit`` must take ``sample_weight``).
    feature_set : str, default="history"
        Features of the jumps.
    """

    def __init__(self, plain: PolicySearch, *, learner="linear", feature_set="history"):
        super().__init__(
            plain.stage_probas,
            plain.y_encoded,
            plain.cumulative_cost,
            plain.sample_weight,
            plain.loss,
        )
        self.plain = plain
        self.groups = getattr(plain, "groups", None)
        self.content = getattr(plain, "content", None)
        self.learner = learner
        self.feature_set = feature_set
        self.regression = is_regression_loss(plain.loss)

    def subset(self, rows: np.ndarray) -> SkipSearch:
        return SkipSearch(
            self.plain.subset(rows), learner=self.learner, feature_set=self.feature_set
        )

    def _jumps_for(self, policy: CascadePolicy, cost_weight: float) -> SkipPolicy:
        return learn_jumps(
            policy,
            self.stage_probas,
            self.stage_risk(0.0),
            self.cumulative_cost,
            cost_weight,
            self.weight,
            learner=self.learner,
            feature_set=self.feature_set,
            regression=self.regression,
        )

    def _risk(self, policy, cost_weight) -> float:
        exit_stage, ran = policy.walk(self.stage_probas)
        rows = np.arange(len(exit_stage))
        loss = self.stage_risk(0.0)[exit_stage, rows]
        cost = answer_costs(
            exit_stage, ran if policy.skips else None, self.cumulative_cost
        )
        return float((loss + cost_weight * cost) @ self.weight)

    def fit(self, cost_weight: float) -> CascadePolicy:
        plain = self.plain.fit(cost_weight)
        if self.n_stages < 3:
            return plain
        fit_jointly = getattr(self.plain, "fit_with_skips", None)
        if fit_jointly is not None:
            skip = fit_jointly(cost_weight)
        else:
            skip = self._retuned(self._jumps_for(plain, cost_weight), cost_weight)
        # The plain policy with its idle stages jumped answers every row alike
        # for less, so it replaces the plain one. Ties go to that: a learned
        # jump must earn its place.
        best = skipping_idle_stages(plain, self.stage_probas, self.weight) or plain
        if self._risk(skip, cost_weight) < self._risk(best, cost_weight):
            return skip
        return best

    def _retuned(self, skip: SkipPolicy, cost_weight: float) -> SkipPolicy:
        """``skip`` with its exit thresholds set for ``cost_weight`` on the paths."""
        problem = self._path_problem(skip)
        thresholds = lagrangian_thresholds(problem, cost_weight)
        return with_thresholds(skip, thresholds)

    def _path_problem(self, skip: SkipPolicy, budget=False) -> ThresholdProblem:
        """Thresholds of ``skip``'s exits on its paths; for a budget, with the
        budget search's loss (:meth:`PolicySearch.budget_loss`)."""
        _, ran, scores = skip.walk(self.stage_probas, decide=False)
        return ThresholdProblem(
            scores,
            self.budget_loss() if budget else self.stage_risk(0.0),
            path_costs(ran, self.cumulative_cost),
            self.weight,
        )

    def budget_candidates(self, normalized_budget: float) -> list[PolicyEvaluation]:
        cache = self.__dict__.setdefault("_budget_candidates", {})
        if normalized_budget in cache:
            return cache[normalized_budget]
        plain = self.plain.budget_candidates(normalized_budget)
        if self.n_stages < 3:
            cache[normalized_budget] = plain
            return plain
        price = None
        skipping = []
        # The plain search's kinds, computed once for both (the Bolukbasi
        # kinds each fit a policy).
        # Each kind's plain candidate, to compare its skipping one with (a
        # search may give one candidate for several kinds: those compare
        # with none).
        plain_of_kind = {candidate.kind: candidate for candidate in plain}
        for kind in self.plain.budget_kinds(normalized_budget):
            unjumped = plain_of_kind.get(kind.kind)
            # One candidate per kind whatever the rows: cross-fitting matches
            # candidates by position.
            weight = kind.cost_weight
            if not np.isfinite(weight):
                if price is None:
                    price = min(self.budget_weight(normalized_budget), _MAX_PRICE)
                weight = price
            problem = ThresholdProblem(
                kind.scores, self.stage_risk(0.0), self.cumulative_cost, self.weight
            )
            evaluation = None
            # Jumps learned at the budget's price of cost may send so many
            # rows to dear stages that the thresholds meet the budget only by
            # answering nearly every row early: while the result is less
            # accurate than the same kind without jumps, they are learned
            # again at a price raised fourfold (a few times), and the most
            # accurate result is kept.
            for price_of_jumps in raised_prices(weight, _JUMP_PRICE_RAISES):
                rules = kind.make_policy(lagrangian_thresholds(problem, price_of_jumps))
                skip = self._jumps_for(rules, price_of_jumps)
                # Never None: the first stage alone is within the budget
                # (checked by the plain candidates above), every row runs it.
                found = budget_thresholds(
                    self._path_problem(skip, budget=True), normalized_budget
                )
                tried = self.evaluate(with_thresholds(skip, found[0]), price_of_jumps)
                if evaluation is None or tried.accuracy > evaluation.accuracy:
                    evaluation = tried
                if unjumped is None or evaluation.accuracy >= unjumped.accuracy:
                    break
            # A challenger where its jumps can skip a stage; one whose every
            # jump goes to the next stage is a plain policy (and named so).
            jumps = jumps_over_stages(evaluation.policy)
            skipping.append(
                replace(
                    evaluation,
                    kind=f"{kind.kind} with skips"
                    + ("" if jumps else " (every jump to the next stage)"),
                    challenger=jumps,
                )
            )
        # Each plain candidate with the stages it answers no row at jumped
        # over answers these rows alike for less: it takes the plain one's
        # place. Its thresholds searched again for the budget on the jumped
        # paths spend what the jump saved: a challenger. (Where no stage is
        # idle both equal the plain candidate, so that every set of rows has
        # the same candidates in the same order.)
        jumped = [self._idle_stages_skipped(c) for c in plain]
        respent = [self._respent(c, normalized_budget) for c in jumped]
        candidates = jumped[:-1] + skipping + respent + jumped[-1:]
        cache[normalized_budget] = candidates
        return candidates

    def _idle_stages_skipped(self, plain: PolicyEvaluation) -> PolicyEvaluation:
        """A plain candidate with the stages it answers no row at jumped over
        (:func:`skipping_idle_stages`: the same answers on these rows at a
        lower cost); with no stage to jump, the candidate itself."""
        skipping = skipping_idle_stages(plain.policy, self.stage_probas, self.weight)
        if skipping is None:
            return plain
        evaluation = self.evaluate(skipping, plain.cost_weight)
        return replace(evaluation, kind=f"{plain.kind}, idle stages skipped")

    def _respent(self, jumped: PolicyEvaluation, normalized_budget: float):
        """``jumped`` with its exit thresholds searched again for the budget
        on its paths (a challenger); a candidate that jumps no stage is
        returned as it is (a plain one), named as a repeat."""
        if not jumps_over_stages(jumped.policy):
            return replace(jumped, kind=f"{jumped.kind} (no idle stage: as above)")
        thresholds, _, _ = budget_thresholds(
            self._path_problem(jumped.policy, budget=True), normalized_budget
        )
        evaluation = self.evaluate(
            with_thresholds(jumped.policy, thresholds), jumped.cost_weight
        )
        return replace(evaluation, kind=f"{jumped.kind}, budget spent", challenger=True)
