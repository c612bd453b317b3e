"""Bolukbasi et al. (2017) exit policies, learned bottom-up as weighted binary problems.

Stage k's policy decides "answer now" (1) or "defer" (0). Walking from the last
stage down, the risk of exiting at k is ``loss_k + cost_weight * C_k`` and the risk
of deferring is the risk the *learned* downstream policies achieve, so each stage
is a weighted binary classification whose weights are the risk differences.

:class:`BolukbasiSearch` is the family's search: rules for a ``cost_weight``,
and for a budget rules learned around the budget's price of cost, each with
per-exit thresholds moved for the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import product

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import has_fit_parameter

from .._sklearn_private import LinearClassifierMixin
from ._eenet import eenet_exits, fit_eenet_scorers
from ._features import policy_features
from ._losses import is_regression_loss, per_row_loss
from ._policy import CascadePolicy, ScoredExits, ThresholdRule, with_thresholds
from ._policy_search import PolicySearch
from ._skips import _MAX_PRICE, SkipPolicy, continuation_risks, fit_jump_rule
from ._thresholds import (
    cut_table,
    fit_standardisation,
    rule_features,
)

#: The rule families of Bolukbasi policies that are named by a string.
POLICY_FAMILIES = ("linear", "constant")


@dataclass
class ExitRule(ThresholdRule):
    """Decision after one stage: exit where ``score(features) >= threshold``.

    ``learner`` is ``None`` for a constant rule, whose score is 0 everywhere, so a
    threshold of ``-inf`` exits every row and ``+inf`` defers every row.
    ``regression`` says that the features are those of regression answers.
    """

    feature_set: str
    threshold: float
    learner: object | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    regression: bool = False
    #: The range of the standardised features on the rows the rule was
    #: learned on; new rows are clipped to it (None: no clipping).
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def score(self, history: list[np.ndarray]) -> np.ndarray:
        """How strongly each row should exit; higher means exit."""
        n_rows = history[-1].shape[0]
        if self.learner is None:
            return np.zeros(n_rows)
        return _exit_score(self.learner, rule_features(self, history))


def _exit_score(learner, features: np.ndarray) -> np.ndarray:
    if isinstance(learner, LinearClassifierMixin) and learner.coef_.shape[0] == 1:
        # decision_function's arithmetic without its input validation, which
        # costs more than the product itself on every routed batch.
        score = features @ learner.coef_[0] + learner.intercept_[0]
        return score if learner.classes_[1] == 1 else -score
    if hasattr(learner, "decision_function"):
        score = np.asarray(learner.decision_function(features), dtype=np.float64)
        # decision_function is positive for classes_[1]; make "higher = exit".
        return score if learner.classes_[1] == 1 else -score
    proba = learner.predict_proba(features)
    return proba[:, list(learner.classes_).index(1)]


def _default_cut(learner) -> float:
    return 0.0 if hasattr(learner, "decision_function") else 0.5


def risk_minimising_threshold(
    score: np.ndarray, exit_risk: np.ndarray, defer_risk: np.ndarray, weight: np.ndarray
) -> float:
    """Threshold on ``score`` that minimises the weighted empirical risk.

    Rows with ``score >= threshold`` pay ``exit_risk``, the others ``defer_risk``.
    Only cuts between distinct scores of rows with positive weight are
    considered (see :func:`~skadaptive.policies._thresholds.cut_table`), so
    tied rows share a fate. Among equally good cuts the one that exits fewest
    rows is kept, which is the conservative choice when the data cannot tell
    the options apart.

    Parameters
    ----------
    score : ndarray of shape (n_rows,)
        How strongly each row should exit.
    exit_risk, defer_risk : ndarray of shape (n_rows,)
        Risk of each row if it exits, or if it is deferred.
    weight : ndarray of shape (n_rows,)

    Returns
    -------
    threshold : float
        ``-inf`` exits every row, ``inf`` none.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import risk_minimising_threshold
    >>> score = np.array([0.9, 0.8, 0.2])
    >>> exit_risk, defer_risk = np.array([0.0, 0.0, 1.0]), np.array([0.1, 0.1, 0.1])
    >>> float(risk_minimising_threshold(score, exit_risk, defer_risk, np.ones(3)))
    0.5
    """
    table = cut_table(
        np.asarray(score, dtype=np.float64),
        exit_risk - defer_risk,
        np.zeros(len(score)),
        np.asarray(weight, dtype=np.float64),
    )
    # argmin takes the first of equal risks: the cut that exits fewest rows.
    return float(table.threshold[np.argmin(table.loss_change)])


def check_policy_learner(policy) -> None:
    """Raise a clear error unless ``policy`` can learn weighted exit rules.

    Parameters
    ----------
    policy : {"linear", "constant"} or classifier
        A classifier must accept ``sample_weight`` in ``fit``: each exit rule is
        a weighted binary classification.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skadaptive.policies import check_policy_learner
    >>> check_policy_learner("linear")
    >>> check_policy_learner(KNeighborsClassifier())
    Traceback (most recent call last):
    ...
    TypeError: policy KNeighborsClassifier() does not accept sample_weight in fit...
    """
    if isinstance(policy, str):
        if policy not in POLICY_FAMILIES:
            raise ValueError(
                f"policy must be one of {POLICY_FAMILIES} or a classifier; "
                f"got {policy!r}."
            )
        return
    try:
        classifier = is_classifier(policy)
    except AttributeError:  # not a scikit-learn estimator at all
        classifier = False
    if not classifier:
        raise TypeError(
            f"policy must be the name of a policy family or a classifier; got "
            f"{policy!r}."
        )
    if not has_fit_parameter(policy, "sample_weight"):
        raise TypeError(
            f"policy {policy!r} does not accept sample_weight in fit: each exit "
            "rule is learned as a weighted binary classification. Use 'linear', "
            "'constant' or a classifier whose fit takes sample_weight (or another "
            "policy family such as 'eenet')."
        )


def _make_learner(policy):
    check_policy_learner(policy)
    if isinstance(policy, str):
        if policy == "constant":
            return None
        # C=1 on standardised features: mild regularisation that keeps the few
        # confidence features from being overfit on small policy sets.
        return LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
    return clone(policy)


def fit_bottom_up_policy(
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    cumulative_cost: np.ndarray,
    cost_weight: float,
    *,
    loss: str = "zero_one",
    policy="linear",
    feature_set: str = "history",
    tune_threshold: bool = True,
    sample_weight: np.ndarray | None = None,
    skips: bool = False,
) -> CascadePolicy:
    """Learn one exit rule per stage, from the last stage down.

    Parameters
    ----------
    stage_probas : list of ndarray of shape (n_samples, n_classes)
        Held-out probabilities of every stage for the same rows.
    y_encoded : ndarray of shape (n_samples,)
        True classes as column indices.
    cumulative_cost : ndarray of shape (n_stages,)
        Cost of answering at each stage, normalised so that the last is 1.
    cost_weight : float
        The trade-off ``lam`` in ``loss + lam * cost``.
    loss : {"zero_one", "log_loss", "squared_error", "absolute_error"}
    policy : {"linear", "constant"} or classifier
        Family of each stage's rule. A classifier must accept ``sample_weight``.
    feature_set : {"confidence", "history", "probabilities", "classes"}
        See :func:`skadaptive.policies.policy_features`.
    tune_threshold : bool
        If True, each rule's cut on its learned score is moved to the value that
        minimises the weighted risk on these rows (the surrogate's own cut at
        probability 0.5 is not, in general, the risk minimiser). If False, the
        learner's own prediction is used, as in the paper.
    sample_weight : ndarray of shape (n_samples,), default=None
    skips : bool, default=False
        Whether a row going on may skip stages: after each stage, a jump rule
        (:class:`~skadaptive.policies.JumpRule`) chooses the stage it runs
        next, learned before that stage's exit rule, which is then learned
        against the risk of the chosen continuation (see
        :mod:`skadaptive.policies._skips`). Returns a
        :class:`~skadaptive.policies.SkipPolicy`.

    Returns
    -------
    policy : CascadePolicy

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import fit_bottom_up_policy
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> cheap = np.where(rng.random((200, 1)) < 0.5, 0.5, np.eye(2)[y] * 0.8 + 0.1)
    >>> costly = np.eye(2)[y] * 0.9 + 0.05
    >>> policy = fit_bottom_up_policy([cheap, costly], y, np.array([0.1, 1.0]), 0.2)
    >>> exit_stage = policy.exit_stage([cheap, costly])
    >>> bool((exit_stage[cheap[:, 0] != 0.5] == 0).all())
    True
    """
    n_stages = len(stage_probas)
    n_rows = len(y_encoded)
    weight = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight)
    defer_risk = (
        per_row_loss(stage_probas[-1], y_encoded, loss)
        + cost_weight * cumulative_cost[-1]
    )
    if skips and n_stages > 2:
        skip = SkipPolicy([None] * (n_stages - 1), [None] * (n_stages - 1))
        stage_loss = np.stack([per_row_loss(p, y_encoded, loss) for p in stage_probas])
    rules: list[ExitRule] = []
    for stage in range(n_stages - 2, -1, -1):
        exit_risk = (
            per_row_loss(stage_probas[stage], y_encoded, loss)
            + cost_weight * cumulative_cost[stage]
        )
        if skips and n_stages > 2 and stage < n_stages - 2:
            # The jump first, then the exit against the chosen continuation.
            risks = continuation_risks(
                skip, stage, stage_probas, stage_loss, cumulative_cost, cost_weight
            )
            history = stage_probas[: stage + 1]
            jump = fit_jump_rule(
                history,
                risks,
                np.arange(stage + 1, n_stages),
                weight,
                policy,
                feature_set,
                is_regression_loss(loss),
            )
            skip.jumps[stage] = jump
            chosen = jump.next_stage(history) - (stage + 1)
            defer_risk = risks[chosen, np.arange(n_rows)]
        rule = _fit_exit_rule(
            stage_probas[: stage + 1],
            exit_risk,
            defer_risk,
            weight,
            _make_learner(policy),
            feature_set,
            tune_threshold,
            is_regression_loss(loss),
        )
        exits = rule.exits(stage_probas[: stage + 1])
        # The *learned* rule's choice, not the oracle's, sets the risk seen by
        # the stage above: that is why the policy is learned bottom-up.
        defer_risk = np.where(exits, exit_risk, defer_risk)
        rules.append(rule)
        if skips and n_stages > 2:
            skip.rules[stage] = rule
    if skips and n_stages > 2:
        return skip
    return CascadePolicy(rules[::-1])


def _fit_exit_rule(
    history,
    exit_risk,
    defer_risk,
    weight,
    learner,
    feature_set,
    tune_threshold,
    regression,
) -> ExitRule:
    exit_is_no_worse = (exit_risk <= defer_risk).astype(int)
    label_weight = weight * np.abs(exit_risk - defer_risk)
    informative = label_weight > 0
    classes_seen = np.unique(exit_is_no_worse[informative])
    if learner is None or len(classes_seen) < 2:
        constant = ExitRule(feature_set, threshold=0.0, regression=regression)
        zeros = np.zeros(len(exit_risk))
        constant.threshold = risk_minimising_threshold(
            zeros, exit_risk, defer_risk, weight
        )
        return constant
    features = policy_features(history, feature_set, regression)
    values, mean, scale, low, high = fit_standardisation(features, weight)
    # Scale the label weights so that they sum to what the row weights sum to:
    # only their ratios define the problem, and tiny weights (small
    # cost_weight) would otherwise let the learner's regularisation flatten the
    # rule to a constant. Both sums grow alike when a row is repeated, so
    # weight k stays the same as k copies of the row.
    label_weight = label_weight[informative] * (weight.sum() / label_weight.sum())
    learner.fit(
        values[informative],
        exit_is_no_worse[informative],
        sample_weight=label_weight,
    )
    rule = ExitRule(
        feature_set,
        _default_cut(learner),
        learner,
        mean,
        scale,
        regression,
        low,
        high,
    )
    if tune_threshold:
        rule.threshold = risk_minimising_threshold(
            _exit_score(learner, values), exit_risk, defer_risk, weight
        )
    return rule


#: Cost weights, relative to the one at which per-stage max-probability
#: thresholds just meet a budget, at which Bolukbasi rules are learned for it.
_RULE_WEIGHT_FACTORS = (0.3, 1.0, 3.0)


def first_stage_policy(n_stages: int) -> CascadePolicy:
    """The cheapest policy: every row exits at the first stage."""
    rules = [ExitRule("confidence", threshold=-np.inf)]
    rules += [ExitRule("confidence", threshold=np.inf) for _ in range(n_stages - 2)]
    return CascadePolicy(rules)


class BolukbasiSearch(PolicySearch):
    """Rules learned bottom-up as weighted binary problems (the default)."""

    def __init__(self, *args, learner="linear", feature_set, tune_threshold):
        super().__init__(*args)
        self.learner = learner
        self.options = dict(feature_set=feature_set, tune_threshold=tune_threshold)
        self.keywords = dict(learner=learner, **self.options)

    def fit(self, cost_weight, feature_set=None, skips=False):
        options = dict(self.options)
        if feature_set is not None:
            options["feature_set"] = feature_set
        return fit_bottom_up_policy(
            self.stage_probas,
            self.y_encoded,
            self.cumulative_cost,
            cost_weight,
            loss=self.loss,
            policy=self.learner,
            sample_weight=self.sample_weight,
            skips=skips,
            **options,
        )

    def fit_with_skips(self, cost_weight):
        """Exit rules and jumps learned together (see :class:`SkipSearch`)."""
        return self.fit(cost_weight, skips=True)

    def scored_exits(self, normalized_budget):
        # A rule learned at cost weight lam ranks rows by how much deferring
        # them is worth at that price of cost; the price at which a budget
        # binds is about the one where max-probability thresholds meet it.
        # Rules that also see the whole probability vector and a confidence
        # per predicted class ("classes"; for regression, "probabilities":
        # a basis of the prediction) are tried too: on the benchmarks they
        # ranked rows better at many budgets, and which kind is kept is
        # decided out of sample. So are EENet's correctness scores, which
        # depend on no cost weight.
        # Where no price up to 1e6 meets the budget (losses so large that
        # any cost is cheap), the rules are learned at that price, the jumps'
        # largest: at an infinite one every risk is inf and their
        # differences NaN.
        weight = min(self.budget_weight(normalized_budget), _MAX_PRICE)
        feature_sets = [self.options["feature_set"]]
        richest = "probabilities" if is_regression_loss(self.loss) else "classes"
        if feature_sets[0] != richest:
            feature_sets.append(richest)
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
                    partial(with_thresholds, policy),
                    lam,
                    kind=f"rules on {feature_set} x{factor:g}",
                )
            )
        eenet = fit_eenet_scorers(
            self.stage_probas, self.y_encoded, self.sample_weight, self.loss
        )
        candidates.append(eenet_exits(eenet, self.stage_probas))
        return candidates
