"""Stages whose answers a test states exactly, the rows of the skipping and
routing tests (a middle stage right only where the first is), random
policies for comparing the routing engine with the offline walk, and two
stages that make disjoint errors (the combined-answer tests)."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.policies import HeuristicRule, JumpRule


class ColumnStage(ClassifierMixin, BaseEstimator):
    """A binary "model" whose probability of class 1 is column ``column`` of X.

    Lets a test say exactly what each stage answers on each row.
    """

    def __init__(self, column=0):
        self.column = column

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        p1 = np.asarray(X, dtype=np.float64)[:, self.column]
        return np.column_stack([1 - p1, p1])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _middle_is_useless(n_rows, seed):
    """Rows where the middle stage is right only where the first already is.

    Half the rows are easy: every stage is confidently right. On the other
    half the first stage is unsure (right on half of them), the middle stage
    knows nothing (0.5 give or take noise) and the last stage is right.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    hard = np.arange(n_rows) % 2 == 1
    sign = np.where(y == 1, 1.0, -1.0)
    first = np.where(
        hard, 0.5 + 0.05 * rng.choice([-1.0, 1.0], n_rows), 0.5 + 0.45 * sign
    )
    noise = rng.uniform(-1, 1, n_rows)
    # The easy rows' middle answers differ a little (0.91-0.95 sure), so that
    # every row is its own: the policy's folds deal equal rows whole.
    middle = np.where(hard, 0.5 + 0.01 * noise, 0.5 + sign * (0.43 + 0.02 * noise))
    last = 0.5 + 0.4 * sign
    return np.column_stack([first, middle, last]), y, hard


def _middle_is_idle(n_rows, seed):
    """Rows where deferring buys little and the middle stage answers no row.

    Half the rows are easy (the first and last stages confidently right);
    three in ten are of medium confidence at the first stage, where it and
    the last stage are each right 85 % of the time, independently, so that
    deferring them buys nothing but noise; two in ten are hard: the first
    stage is unsure and right half the time, the last right 95 % of the
    time. The middle stage knows nothing (0.5 give or take noise).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    sign = np.where(y == 1, 1.0, -1.0)
    group = rng.choice(3, n_rows, p=[0.5, 0.3, 0.2])

    def answer(confidence, p_right):
        right = rng.random(n_rows) < p_right
        return 0.5 + sign * np.where(right, 1.0, -1.0) * confidence

    easy, medium = group == 0, group == 1
    first = np.select(
        [easy, medium],
        [answer(0.45, 1.0), answer(rng.uniform(0.2, 0.35, n_rows), 0.85)],
        answer(rng.uniform(0.0, 0.1, n_rows), 0.5),
    )
    middle = 0.5 + 0.01 * rng.uniform(-1, 1, n_rows)
    last = np.select(
        [easy, medium], [answer(0.4, 1.0), answer(0.4, 0.85)], answer(0.4, 0.95)
    )
    return np.column_stack([first, middle, last]), y


class GivenAnswers:
    """Stages whose answers are given: stage k answers row i with probas[k][i]
    (X holds the row numbers)."""

    def __init__(self, probas):
        self.probas = probas
        self.n_stages = len(probas)

    def run_stage(self, stage, X_rows, state):
        return self.probas[stage][np.asarray(X_rows, dtype=np.intp)[:, 0]], None

    def keep_rows(self, state, mask):
        return None


class ByConfidence(JumpRule):
    """A jump that sends unsure rows one stage further than the next."""

    def next_stage(self, history):
        # As a fitted learner would, refuse to be asked about no rows.
        assert len(history[-1]), "a jump was asked about no rows"
        confident = history[-1].max(axis=1) > self.cut
        return np.where(confident, self.targets[0], self.targets[:2][-1])


def random_rules_and_jumps(rng, probas, jump_share=1.0):
    """Exit rules (max-probability or patience, which reads the earlier
    stages: answers carried over skipped stages must agree between the engine
    and the walk) and jumps by confidence, a share of them None."""
    n_stages = len(probas)
    rules = [
        HeuristicRule("max_proba", rng.uniform(0.3, 1.0))
        if rng.random() < 0.5
        else HeuristicRule("patience", rng.choice([1.5, 2.5]))
        for _ in probas[:-1]
    ]
    jumps = []
    for stage in range(n_stages - 1):
        jump = ByConfidence(np.arange(stage + 1, n_stages))
        jump.cut = rng.uniform(0.3, 0.9)
        jumps.append(jump if rng.random() < jump_share else None)
    return rules, jumps


class _WrongOnGroup(ClassifierMixin, BaseEstimator):
    """Right with probability 0.9 on every row except those of its group.

    Rows are ``[signal, group]``; the label is ``signal > 0``. On its own group
    the stage answers the wrong class with probability 0.65: two such stages
    with different groups make disjoint errors.
    """

    def __init__(self, group=1):
        self.group = group

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        right = np.where(X[:, 1] == self.group, 0.35, 0.9)
        positive = np.where(X[:, 0] > 0, right, 1 - right)
        return np.column_stack([1 - positive, positive])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _disjoint_errors(n_rows, seed):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_rows)
    group = rng.choice(3, size=n_rows, p=[0.6, 0.2, 0.2])
    return np.column_stack([signal, group]), (signal > 0).astype(int)


def _disjoint_cascade(answer, **params):
    stages = [
        (name, FrozenEstimator(_WrongOnGroup(group).fit(None, None)))
        for name, group in (("first", 1), ("second", 2))
    ]
    params = {"random_state": 0, **params}
    return AdaptiveCascadeClassifier(stages, costs=[1, 1], answer=answer, **params)


def frozen_on(models, X, y) -> list:
    """``(name, model)`` pairs as frozen stages, each fitted on ``X, y``."""
    return [(name, FrozenEstimator(model.fit(X, y))) for name, model in models]
