"""Policies, rules and what a policy achieves: the types every family shares.

A policy (:class:`CascadePolicy`) is one rule per stage but the last; a rule
scores each row from the probabilities seen so far and exits the rows whose
score reaches its threshold (:class:`ThresholdRule`). Every family's rules are
of that form, so one loop decides where a row answers (:func:`first_exit`) and
one function says what a policy achieves on labelled rows (:func:`exit_figures`,
used by the searches, ``fit``, ``evaluate_frontier`` and the CLI).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ._features import heuristic_score
from ._losses import is_regression_loss, per_row_loss


def first_exit(decisions: np.ndarray) -> np.ndarray:
    """Exit stage of each row: the first decision that exits it, else the last stage.

    Parameters
    ----------
    decisions : ndarray of bool of shape (n_decisions, n_rows)
        ``decisions[k]``: the rows that exit after stage ``k`` if they get there.

    Returns
    -------
    exit_stage : ndarray of shape (n_rows,)
        Rows that no decision exits answer at the last stage, ``n_decisions``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy import first_exit
    >>> first_exit(np.array([[True, False, False], [True, True, False]])).tolist()
    [0, 1, 2]
    """
    n_decisions, n_rows = decisions.shape
    exit_stage = np.full(n_rows, n_decisions, dtype=np.intp)
    for stage in range(n_decisions - 1, -1, -1):
        exit_stage[decisions[stage]] = stage
    return exit_stage


class ThresholdRule:
    """A rule that exits the rows whose ``score(history)`` reaches ``threshold``.

    The base of every family's rules and of custom ones: a subclass defines
    ``score`` and has a ``threshold`` attribute; ``exits`` is the same for
    all, so that a policy decides where a row answers in one way (the
    budget and cost-weight searches move thresholds on these scores).

    Attributes
    ----------
    threshold : float
        Rows scoring at least this exit; ``-inf`` exits every row, ``inf`` none.

    Examples
    --------
    >>> import numpy as np
    >>> from dataclasses import dataclass
    >>> from skadaptive.policies import CascadePolicy, ThresholdRule
    >>> @dataclass
    ... class Margin(ThresholdRule):
    ...     threshold: float
    ...     def score(self, history):
    ...         top2 = np.sort(history[-1], axis=1)[:, -2:]
    ...         return top2[:, 1] - top2[:, 0]
    >>> policy = CascadePolicy([Margin(threshold=0.5)])
    >>> policy.exit_stage([np.array([[0.9, 0.1], [0.6, 0.4]]), np.eye(2)])
    array([0, 1])
    """

    threshold: float

    def score(self, history: list[np.ndarray]) -> np.ndarray:
        """How strongly each row should exit; higher means exit.

        Parameters
        ----------
        history : list of ndarray of shape (n_rows, n_classes)
            Probabilities of the stages run so far, for the same rows.

        Returns
        -------
        score : ndarray of shape (n_rows,)
        """
        raise NotImplementedError

    def exits(self, history: list[np.ndarray]) -> np.ndarray:
        """Boolean mask of the rows that exit after this stage.

        Parameters
        ----------
        history : list of ndarray of shape (n_rows, n_classes)
            Probabilities of the stages run so far, for the same rows.

        Returns
        -------
        exits : ndarray of bool of shape (n_rows,)
        """
        return self.score(history) >= self.threshold


def with_threshold(rule, threshold: float):
    """A copy of ``rule`` with another ``threshold``.

    ``dataclasses.replace`` for a dataclass rule (as the package's are), a
    shallow copy with the attribute set for any other rule of the user's.

    Examples
    --------
    >>> from skadaptive.policies import HeuristicRule
    >>> from skadaptive.policies._policy import with_threshold
    >>> with_threshold(HeuristicRule("max_proba", 0.5), 0.9).threshold
    0.9
    """
    if dataclasses.is_dataclass(rule):
        return dataclasses.replace(rule, threshold=float(threshold))
    moved = copy.copy(rule)
    moved.threshold = float(threshold)
    return moved


def with_thresholds(policy, thresholds):
    """A copy of ``policy`` whose rules have these thresholds (see
    :func:`with_threshold`); a :class:`SkipPolicy` keeps its jumps and router.

    Examples
    --------
    >>> from skadaptive.policies import CascadePolicy, HeuristicRule
    >>> from skadaptive.policies._policy import with_thresholds
    >>> policy = CascadePolicy([HeuristicRule("max_proba", 0.5)])
    >>> [rule.threshold for rule in with_thresholds(policy, [0.9]).rules]
    [0.9]
    """
    new = copy.copy(policy)
    new.rules = [with_threshold(rule, t) for rule, t in zip(policy.rules, thresholds)]
    if policy.skips:
        new.jumps = list(policy.jumps)
    return new


@dataclass
class CascadePolicy:
    """An exit policy: one rule per stage but the last, which always answers.

    The fitted ``policy_`` of both estimators, whatever the policy family.

    Parameters
    ----------
    rules : list of rules
        Rule ``k`` decides after stage ``k``; a rule has ``exits(history)``
        returning a boolean mask of the rows that stop there.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import CascadePolicy
    >>> from skadaptive.policies import HeuristicRule
    >>> policy = CascadePolicy([HeuristicRule("max_proba", threshold=0.8)])
    >>> cheap = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> costly = np.array([[0.2, 0.8], [0.1, 0.9]])
    >>> policy.exit_stage([cheap, costly])
    array([0, 1])
    """

    rules: list = field(default_factory=list)

    #: Whether a row may skip stages (see :class:`~skadaptive.policies.SkipPolicy`).
    skips = False

    @property
    def n_stages(self) -> int:
        """Number of stages: one more than the rules."""
        return len(self.rules) + 1

    def exits(self, stage: int, history: list[np.ndarray]) -> np.ndarray:
        """Rows that stop after ``stage`` (0-based) given the stages run so far.

        Parameters
        ----------
        stage : int
        history : list of ndarray of shape (n_rows, n_classes)
            Probabilities of stages ``0..stage`` for the rows still running.

        Returns
        -------
        exits : ndarray of bool of shape (n_rows,)
        """
        if stage == self.n_stages - 1:
            return np.ones(history[-1].shape[0], dtype=bool)
        return self.rules[stage].exits(history)

    def exit_stage(self, stage_probas: list[np.ndarray]) -> np.ndarray:
        """Stage that answers each row when every stage's probabilities are known.

        Used offline on held-out probabilities; prediction runs the same rules on
        compacted rows (see :mod:`skadaptive.engine`) and gets the same answer.

        Parameters
        ----------
        stage_probas : list of ndarray of shape (n_rows, n_classes)
            Every stage's probabilities for the same rows.

        Returns
        -------
        exit_stage : ndarray of shape (n_rows,)
        """
        n_rows = stage_probas[0].shape[0]
        decisions = np.zeros((len(self.rules), n_rows), dtype=bool)
        for stage, rule in enumerate(self.rules):
            decisions[stage] = rule.exits(stage_probas[: stage + 1])
        return first_exit(decisions)

    def walk(self, stage_probas: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stage that answers each row, and the stages each row runs.

        Parameters
        ----------
        stage_probas : list of ndarray of shape (n_rows, n_classes)
            Every stage's probabilities for the same rows.

        Returns
        -------
        exit_stage : ndarray of shape (n_rows,)
        ran : ndarray of bool of shape (n_stages, n_rows)
            Whether each stage runs on each row: here every stage up to the
            row's exit (a policy that skips stages says otherwise).
        """
        exit_stage = self.exit_stage(stage_probas)
        return exit_stage, stages_run(exit_stage, self.n_stages)


def stages_run(exit_stage: np.ndarray, n_stages: int) -> np.ndarray:
    """``ran[k, i]``: whether stage ``k`` runs on row ``i`` of a plain cascade,
    where a row runs every stage up to the one that answers it.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy import stages_run
    >>> stages_run(np.array([0, 2]), 3).astype(int).tolist()
    [[1, 1], [0, 1], [0, 1]]
    """
    return np.arange(n_stages)[:, None] <= np.asarray(exit_stage)[None, :]


def row_costs(ran: np.ndarray, cumulative_cost: np.ndarray) -> np.ndarray:
    """Cost of each row: the sum of the costs of the stages it runs.

    Parameters
    ----------
    ran : ndarray of bool of shape (n_stages, n_rows)
    cumulative_cost : ndarray of shape (n_stages,)
        Cost of running stages ``0..k``; each stage's own cost is the step.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy import row_costs
    >>> ran = np.array([[True, True], [False, True], [True, True]])
    >>> row_costs(ran, np.array([1.0, 3.0, 6.0])).tolist()
    [4.0, 6.0]
    """
    steps = np.diff(np.asarray(cumulative_cost, dtype=np.float64), prepend=0.0)
    return steps @ ran


def answer_costs(
    exit_stage: np.ndarray, ran: np.ndarray | None, cumulative_cost: np.ndarray
) -> np.ndarray:
    """Cost of each row answering at ``exit_stage`` having run ``ran``.

    ``cumulative_cost[exit_stage]`` for the rows that ran every stage up to
    their exit (all of them when ``ran`` is None), :func:`row_costs` for the
    rows that skipped some.
    """
    cost = np.asarray(cumulative_cost)[exit_stage]
    if ran is None:
        return cost
    skipped = (ran != stages_run(exit_stage, len(cumulative_cost))).any(axis=0)
    if skipped.any():
        cost = cost.astype(np.float64, copy=True)
        cost[skipped] = row_costs(ran[:, skipped], cumulative_cost)
    return cost


@dataclass
class PolicyEvaluation:
    """A policy and what it achieves on the rows it was evaluated on.

    Parameters
    ----------
    cost_weight : float
        The trade-off the policy was learned for (nan for a budget's).
    policy : CascadePolicy
    accuracy : float
        Weighted accuracy of the answers.
    normalized_cost : float
        Weighted average cost per row, in the unit of the costs given (a
        fraction of running every stage in the searches).
    exit_rates : ndarray of shape (n_stages,)
        Weighted share of the rows answering at each stage.
    kind : str, default=""
        The kind of exit score a budget candidate uses.
    run_rates : ndarray of shape (n_stages,), default=None
        Weighted share of the rows that each stage runs on. None: every
        stage up to a row's exit (the reverse cumulative sum of
        ``exit_rates``); a policy that skips stages sets it.
    challenger : bool, default=False
        Whether the candidate replaces the one kept among the others only
        when clearly better out of sample: with ``skips=True``, a policy
        whose jumps or thresholds were fitted to jump stages (a plain
        candidate with only its idle stages jumped, which answers as it does
        for less, is not one).

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import CascadePolicy, HeuristicRule, evaluate_policy
    >>> policy = CascadePolicy([HeuristicRule("max_proba", threshold=0.8)])
    >>> result = evaluate_policy(policy, [np.array([[0.9, 0.1]]), np.eye(2)[:1]],
    ...                          np.array([0]), np.array([0.5, 1.0]))
    >>> result.accuracy, result.normalized_cost, result.exit_rates.tolist()
    (1.0, 0.5, [1.0, 0.0])
    """

    cost_weight: float
    policy: CascadePolicy
    accuracy: float
    normalized_cost: float
    exit_rates: np.ndarray
    kind: str = ""
    run_rates: np.ndarray | None = None
    challenger: bool = False

    def __post_init__(self):
        if self.run_rates is None:
            rates = np.asarray(self.exit_rates, dtype=np.float64)
            self.run_rates = np.clip(rates[::-1].cumsum()[::-1], 0.0, 1.0)


@dataclass
class ScoredExits:
    """Exit scores of one kind of rule on the search rows, for threshold search.

    What a family's :meth:`PolicySearch.scored_exits` returns: for a budget,
    one threshold per exit is then chosen on these scores.

    Parameters
    ----------
    scores : ndarray of shape (n_stages - 1, n_rows)
        Each exit's score for every row of the search (higher means exit).
    make_policy : callable
        ``make_policy(thresholds)`` returns the :class:`CascadePolicy` that
        exits a row at the first exit whose score reaches that exit's
        threshold, scoring new rows as ``scores`` scored these.
    cost_weight : float, default=nan
        The trade-off the scores were learned with (nan where none).
    kind : str, default=""
        A name for this kind of score, reported in ``budget_search_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import CascadePolicy, HeuristicRule, ScoredExits
    >>> probas = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.eye(2)]
    >>> exits = ScoredExits(
    ...     probas[0].max(axis=1)[None],
    ...     lambda t: CascadePolicy([HeuristicRule("max_proba", float(t[0]))]),
    ...     kind="max probability")
    >>> exits.make_policy([0.75]).exit_stage(probas).tolist()
    [0, 1]
    """

    scores: np.ndarray
    make_policy: object
    cost_weight: float = np.nan
    kind: str = ""


def stage_correct(
    stage_probas: list[np.ndarray], y_encoded: np.ndarray, loss: str = "zero_one"
) -> np.ndarray:
    """How right each stage is on each row, shape (n_stages, n_rows).

    For classification (any classification ``loss``), whether the stage's
    most probable class is right; for a regression ``loss``, minus the
    stage's per-row loss (so that, for both, higher is better and the mean
    is what the estimators report: accuracy, or minus the scaled error).
    """
    if is_regression_loss(loss):
        return np.stack([-per_row_loss(p, y_encoded, loss) for p in stage_probas])
    return np.stack([np.argmax(p, axis=1) == y_encoded for p in stage_probas])


def oracle_exits(correct: np.ndarray) -> np.ndarray:
    """The oracle's exit of each row.

    For right/wrong answers, the first stage that is right, else the last;
    for regression (minus losses), the first stage with the smallest loss.
    """
    if correct.dtype != bool:
        return np.argmax(correct, axis=0)
    return np.where(correct.any(axis=0), np.argmax(correct, axis=0), len(correct) - 1)


def exit_figures(
    exit_stage: np.ndarray,
    correct: np.ndarray,
    cumulative_cost: np.ndarray,
    weight: np.ndarray | None = None,
    ran: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray]:
    """Weighted accuracy, average cost and exit rates of answers at ``exit_stage``.

    The one place where what a policy achieves on labelled rows is computed.

    Parameters
    ----------
    exit_stage : ndarray of shape (n_rows,)
    correct : ndarray of bool of shape (n_stages, n_rows)
        :func:`stage_correct` of the rows.
    cumulative_cost : ndarray of shape (n_stages,)
        Cost of answering at each stage (any unit; the average is in it).
    weight : ndarray of shape (n_rows,), default=None
    ran : ndarray of bool of shape (n_stages, n_rows), default=None
        The stages each row runs, where a policy skips stages: a row's cost
        is then the sum of their costs (:func:`row_costs`). None: every
        stage up to the row's exit.

    Returns
    -------
    accuracy : float
    cost : float
    exit_rates : ndarray of shape (n_stages,)
        The weighted share of rows answering at each stage.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies._policy import exit_figures
    >>> correct = np.array([[True, False], [True, True]])
    >>> accuracy, cost, rates = exit_figures(np.array([0, 0]), correct,
    ...                                      np.array([1.0, 3.0]))
    >>> accuracy, cost, rates.tolist()
    (0.5, 1.0, [1.0, 0.0])
    """
    n_stages, n_rows = correct.shape
    weight = np.ones(n_rows) if weight is None else weight
    total = weight.sum()
    right = correct[exit_stage, np.arange(n_rows)]
    exit_rates = np.bincount(exit_stage, weights=weight, minlength=n_stages)
    cost = answer_costs(exit_stage, ran, cumulative_cost)
    return (
        float(np.dot(weight, right) / total),
        float(np.dot(weight, cost) / total),
        exit_rates / total,
    )


def evaluate_policy(
    policy: CascadePolicy,
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    cumulative_cost: np.ndarray,
    sample_weight: np.ndarray | None = None,
    cost_weight: float = np.nan,
    loss: str = "zero_one",
) -> PolicyEvaluation:
    """Weighted accuracy, average normalised cost and exit rates of ``policy``.

    Parameters
    ----------
    policy : CascadePolicy
    stage_probas : list of ndarray of shape (n_rows, n_classes)
        Each stage's probabilities; for a regression ``loss``, each stage's
        answers (prediction and uncertainty columns).
    y_encoded : ndarray of shape (n_rows,)
        Labels as column indices; for a regression ``loss``, the targets.
    cumulative_cost : ndarray of shape (n_stages,)
    sample_weight : ndarray of shape (n_rows,), default=None
    cost_weight : float, default=nan
        Recorded with the result.
    loss : {"zero_one", "log_loss", "squared_error", "absolute_error"}, \
            default="zero_one"
        What "accuracy" means: for a classification loss, the share of rows
        answered right; for a regression loss, minus the mean loss (higher
        is better), as the estimators' policy searches count it.

    Returns
    -------
    evaluation : PolicyEvaluation
        ``accuracy``, ``normalized_cost`` (in the unit of ``cumulative_cost``)
        and ``exit_rates``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import CascadePolicy, evaluate_policy
    >>> from skadaptive.policies import HeuristicRule
    >>> cheap = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> policy = CascadePolicy([HeuristicRule("max_proba", threshold=0.8)])
    >>> result = evaluate_policy(policy, [cheap, np.eye(2)], np.array([0, 1]),
    ...                          np.array([0.2, 1.0]))
    >>> result.accuracy, result.normalized_cost
    (1.0, 0.6)
    """
    exit_stage, ran = policy.walk(stage_probas)
    return evaluate_exits(
        policy,
        exit_stage,
        stage_correct(stage_probas, y_encoded, loss),
        cumulative_cost,
        sample_weight,
        cost_weight,
        ran if policy.skips else None,
    )


def evaluate_exits(
    policy, exit_stage, correct, cumulative_cost, sample_weight, cost_weight, ran=None
) -> PolicyEvaluation:
    """:class:`PolicyEvaluation` of ``policy``, whose exits are ``exit_stage``
    (and, where it skips stages, whose stages run are ``ran``)."""
    accuracy, cost, exit_rates = exit_figures(
        exit_stage, correct, cumulative_cost, sample_weight, ran
    )
    run_rates = None
    if ran is not None:
        weight = np.ones(len(exit_stage)) if sample_weight is None else sample_weight
        run_rates = ran @ weight / weight.sum()
    return PolicyEvaluation(
        cost_weight=float(cost_weight),
        policy=policy,
        accuracy=accuracy,
        normalized_cost=cost,
        exit_rates=exit_rates,
        run_rates=run_rates,
    )


@dataclass
class HeuristicRule(ThresholdRule):
    """Exit where ``heuristic_score(kind, history) >= threshold``."""

    kind: str
    threshold: float

    def score(self, history: list[np.ndarray]) -> np.ndarray:
        """The heuristic's confidence of each row; higher means exit."""
        return heuristic_score(self.kind, history)


def stage_accuracies(correct: np.ndarray, weight: np.ndarray | None = None):
    """Each stage's (weighted) accuracy: the share of rows it answers right.

    Parameters
    ----------
    correct : ndarray of bool of shape (n_stages, n_rows)
        :func:`stage_correct` of the rows.
    weight : ndarray of shape (n_rows,), default=None

    Returns
    -------
    accuracies : ndarray of shape (n_stages,)
    """
    weight = np.ones(correct.shape[1]) if weight is None else weight
    return correct @ weight / weight.sum()


def stage_figures(
    correct: np.ndarray, cumulative_cost: np.ndarray, weight: np.ndarray | None = None
) -> dict:
    """Each stage's accuracy, and the oracle's, on labelled rows.

    The oracle answers each row at the first stage that is right (else the
    last): the best any policy over these stages could do.

    Parameters
    ----------
    correct : ndarray of bool of shape (n_stages, n_rows)
        :func:`stage_correct` of the rows.
    cumulative_cost : ndarray of shape (n_stages,)
    weight : ndarray of shape (n_rows,), default=None

    Returns
    -------
    figures : dict
        ``stage_accuracies``, ``oracle_accuracy``, ``oracle_cost`` and
        ``oracle_exit_rates``.
    """
    weight = np.ones(correct.shape[1]) if weight is None else weight
    accuracy, cost, rates = exit_figures(
        oracle_exits(correct), correct, cumulative_cost, weight
    )
    return {
        "stage_accuracies": stage_accuracies(correct, weight),
        "oracle_accuracy": accuracy,
        "oracle_cost": cost,
        "oracle_exit_rates": rates,
    }
