"""EENet-style budgeted exit scheduling (Ilhan et al., 2023).

Two steps, both on the held-out policy rows:

1. A *scorer* per exit but the last predicts whether that exit's answer is
   correct, from ``[probability vector, max probability, normalised entropy,
   scores of the earlier exits]`` (a weighted logistic regression). For
   regression answers, a weighted ridge regression predicts the exit's
   scaled loss from :func:`~skadaptive.policies.regression_features` and the
   earlier exits' scores, and the score is minus that prediction.
2. Per-exit thresholds on those scores are set so that the average of
   ``loss + cost_weight * cost`` is minimal (exit at the first exit whose score
   reaches its threshold). For a budget, the thresholds are moved directly
   for it (:meth:`~skadaptive.policies.PolicySearch.budget_candidates`): the
   most accurate per-exit thresholds whose average cost is within it.

EENet optimises the thresholds by gradient descent on a relaxed objective;
here each threshold is set *exactly* given the others (the weighted risk is
piecewise constant in one threshold, so the risk-minimising cut is found by a
sort), sweeping the exits until no threshold moves. Every sweep can only lower
the held-out objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from ._features import confidence_features, regression_features
from ._losses import is_regression_loss, per_row_loss
from ._policy import CascadePolicy, ScoredExits, ThresholdRule
from ._policy_search import PolicySearch
from ._thresholds import (
    ThresholdProblem,
    lagrangian_thresholds,
    weighted_standardisation,
)


def _scorer_features(
    history: list[np.ndarray], earlier_scores: list[np.ndarray], regression: bool
):
    if regression:
        return np.column_stack(
            [regression_features(history, "history"), *earlier_scores]
        )
    proba = history[-1]
    confidence = confidence_features(proba)
    return np.column_stack([proba, confidence[:, 0], confidence[:, 2], *earlier_scores])


@dataclass
class _ExitScorer:
    """Predicted probability that one exit's answer is correct (classification),
    or minus its predicted scaled loss (regression)."""

    learner: LogisticRegression | Ridge | None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    constant: float = 0.0
    regression: bool = False

    def score(self, history, earlier_scores) -> np.ndarray:
        if self.learner is None:
            return np.full(history[-1].shape[0], self.constant)
        features = _scorer_features(history, earlier_scores, self.regression)
        features = (features - self.mean) / self.scale
        if self.regression:
            return -self.learner.predict(features)
        return self.learner.predict_proba(features)[:, 1]


@dataclass
class EENetScorers:
    """The per-exit correctness scorers, each seeing the earlier exits' scores."""

    scorers: list[_ExitScorer] = field(default_factory=list)

    def scores(self, history: list[np.ndarray]) -> list[np.ndarray]:
        """Each stage's score for the rows of ``history`` (one per scorer at most).

        Parameters
        ----------
        history : list of ndarray of shape (n_rows, n_classes)
            Probabilities of the first stages for the same rows.

        Returns
        -------
        scores : list of ndarray of shape (n_rows,)
        """
        scores: list[np.ndarray] = []
        for stage, scorer in enumerate(self.scorers[: len(history)]):
            scores.append(scorer.score(history[: stage + 1], scores))
        return scores


def fit_eenet_scorers(
    stage_probas: list[np.ndarray],
    y_encoded: np.ndarray,
    sample_weight: np.ndarray | None = None,
    loss: str = "zero_one",
) -> EENetScorers:
    """Fit one correctness scorer per exit but the last, earliest first.

    Parameters
    ----------
    stage_probas : list of ndarray of shape (n_samples, n_classes)
        Held-out probabilities of every exit for the same rows (regression
        answers for a regression ``loss``).
    y_encoded : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,), default=None
    loss : str, default="zero_one"
        For a regression loss, each scorer predicts the exit's loss.

    Returns
    -------
    scorers : EENetScorers

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import fit_eenet_scorers
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> sure = rng.random(200) < 0.5   # rows the first exit gets right, confidently
    >>> first = np.where(sure[:, None], np.eye(2)[y] * 0.8 + 0.1, 0.5)
    >>> last = np.eye(2)[y] * 0.9 + 0.05
    >>> scorers = fit_eenet_scorers([first, last], y)
    >>> score = scorers.scores([first])[0]   # predicted P(first exit is right)
    >>> bool(score[sure].min() > score[~sure].max())
    True
    """
    regression = is_regression_loss(loss)
    weight = np.ones(len(y_encoded)) if sample_weight is None else sample_weight
    fitted = EENetScorers()
    scores: list[np.ndarray] = []
    for stage, proba in enumerate(stage_probas[:-1]):
        history = stage_probas[: stage + 1]
        if regression:
            target = per_row_loss(proba, y_encoded, loss)
            learner = Ridge(alpha=1.0)
        else:
            target = (np.argmax(proba, axis=1) == y_encoded).astype(int)
            learner = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
        if target.min() == target.max():
            constant = -float(target[0]) if regression else float(target[0])
            scorer = _ExitScorer(None, constant=constant, regression=regression)
        else:
            features = _scorer_features(history, scores, regression)
            mean, scale = weighted_standardisation(features, weight)
            # The weights as given: weight k is then k copies of the row.
            learner.fit((features - mean) / scale, target, sample_weight=sample_weight)
            scorer = _ExitScorer(learner, mean, scale, regression=regression)
        fitted.scorers.append(scorer)
        scores.append(scorer.score(history, scores))
    return fitted


@dataclass
class EENetRule(ThresholdRule):
    """Exit after stage ``stage`` where its scorer's output reaches ``threshold``."""

    scorers: EENetScorers
    stage: int
    threshold: float

    def score(self, history: list[np.ndarray]) -> np.ndarray:
        """Predicted probability that this stage's answer is correct (for
        regression answers, minus the predicted scaled loss)."""
        return self.scorers.scores(history[: self.stage + 1])[self.stage]


def schedule_thresholds(
    scores: np.ndarray, stage_risk: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Per-exit thresholds minimising the weighted risk, one exit at a time.

    Parameters
    ----------
    scores : ndarray of shape (n_stages - 1, n_rows)
        Each exit's score for every row.
    stage_risk : ndarray of shape (n_stages, n_rows)
        Risk of answering each row at each stage (``loss + lam * cost``).
    weight : ndarray of shape (n_rows,)

    Returns
    -------
    thresholds : ndarray of shape (n_stages - 1,)
        A row exits at the first ``k`` with ``scores[k] >= thresholds[k]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skadaptive.policies import schedule_thresholds
    >>> scores = np.array([[0.9, 0.2, 0.8]])          # one early exit, 3 rows
    >>> risk = np.array([[0.1, 1.1, 0.1],             # exiting early: cheap, 1 miss
    ...                  [1.0, 1.0, 1.0]])            # the last exit: all right
    >>> schedule_thresholds(scores, risk, np.ones(3))
    array([0.5])
    """
    n_stages = len(stage_risk)
    problem = ThresholdProblem(scores, stage_risk, np.zeros(n_stages), weight)
    return lagrangian_thresholds(problem, 0.0)


class EENetSearch(PolicySearch):
    """Learned correctness scores per exit, then per-exit thresholds."""

    def __init__(self, *args):
        super().__init__(*args)
        scorers = fit_eenet_scorers(
            self.stage_probas, self.y_encoded, self.sample_weight, self.loss
        )
        self.exits = eenet_exits(scorers, self.stage_probas)

    def fit(self, cost_weight):
        thresholds = schedule_thresholds(
            self.exits.scores, self.stage_risk(cost_weight), self.weight
        )
        return self.exits.make_policy(thresholds)

    def scored_exits(self, normalized_budget):
        return [self.exits]


def eenet_exits(scorers, stage_probas) -> ScoredExits:
    """Fitted EENet scorers' scores at every exit, with one threshold per exit."""

    def make_policy(thresholds):
        return CascadePolicy(
            [EENetRule(scorers, k, float(t)) for k, t in enumerate(thresholds)]
        )

    scores = np.stack(scorers.scores(stage_probas[:-1]))
    return ScoredExits(scores, make_policy, kind="eenet scores")
