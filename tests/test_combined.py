"""Exits that answer with every probability computed so far (answer="combined")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.stages import exit_probas
from skadaptive.stages._combined import (
    KINDS,
    ExitCombiner,
    _choose_kind,
    fit_combiners,
    log_probas,
)


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
    return AdaptiveCascadeClassifier(
        stages, costs=[1, 1], answer=answer, random_state=0, **params
    )


def test_disjoint_errors_combined_beats_every_stage_at_full_cost():
    """Each stage is wrong on 20 % of the rows, never the same ones: the
    combined last exit answers every held-out row right."""
    X, y = _disjoint_errors(600, seed=0)
    X_test, y_test = _disjoint_errors(2000, seed=1)
    stage_accuracies = [
        np.mean(s.predict(X_test) == y_test)
        for s in (_WrongOnGroup(1).fit(X, y), _WrongOnGroup(2).fit(X, y))
    ]
    assert max(stage_accuracies) < 0.85
    combined = _disjoint_cascade("combined", cost_weight=0.0).fit(X, y)
    plain = _disjoint_cascade("stage", cost_weight=0.0).fit(X, y)
    assert combined.combiners_[0].kind == "stage"
    assert combined.combiners_[1].kind != "stage"
    assert combined.score(X_test, y_test) == 1.0
    assert max(plain.stage_accuracies_) < 0.85
    assert combined.score(X_test, y_test) >= plain.score(X_test, y_test)
    # The policy knows it: every row goes on to the combined last exit.
    np.testing.assert_array_equal(combined.predict_exit(X_test), 1)
    assert combined.exit_accuracies_[1] == 1.0
    assert combined.stage_accuracies_[1] == pytest.approx(0.8, abs=0.05)


def test_combiners_see_only_held_out_probabilities():
    """An unpruned tree is right on every row it was fitted on. If the
    combiner saw the stage's training rows its out-of-fold error for the
    stage's own answer would be 0; it is the tree's held-out error, exactly
    what answer="stage" reports as the stage's held-out accuracy."""
    X, y = make_classification(
        400, n_features=8, n_informative=4, flip_y=0.2, random_state=0
    )
    stages = [
        ("lr", LogisticRegression(max_iter=500)),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    params = dict(costs=[1, 2], cv=4, random_state=0)
    plain = AdaptiveCascadeClassifier(stages, **params).fit(X, y)
    combined = AdaptiveCascadeClassifier(stages, answer="combined", **params)
    combined.fit(X, y)
    assert combined.estimators_[1].score(X, y) == 1.0  # refitted on all rows
    held_out_error = combined.combiners_[1].cv_error["stage"]
    assert held_out_error > 0.15
    assert held_out_error == pytest.approx(1 - plain.stage_accuracies_[1])


def test_first_exit_answers_with_its_own_probabilities():
    X, y = make_classification(600, n_classes=3, n_informative=5, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression(max_iter=500)), ("tree", DecisionTreeClassifier())],
        costs=[1, 3],
        cost_weight=0.05,
        answer="combined",
        cv=3,
        random_state=0,
    ).fit(X[:400], y[:400])
    routed = cascade.route(X[400:])
    first = routed.exit_stage == 0
    assert 0 < first.sum() < len(first)
    np.testing.assert_array_equal(
        routed.proba[first], cascade.estimators_[0].predict_proba(X[400:][first])
    )


@pytest.mark.parametrize("kind", ["cascade", "early_exit"])
def test_routing_answers_with_the_combiner_of_the_exit(kind):
    """What routing returns for a row equals the combiner of its exit applied
    to every stage's probabilities of it (routing runs fewer stages)."""
    n_rows = 900 if kind == "cascade" else 2000
    X, y = make_classification(
        n_rows, n_classes=3, n_informative=6, flip_y=0.05, random_state=0
    )
    if kind == "cascade":
        estimator = AdaptiveCascadeClassifier(
            [
                ("lr", LogisticRegression(max_iter=500)),
                ("knn", KNeighborsClassifier(15)),
                ("forest", RandomForestClassifier(50, random_state=0)),
            ],
            costs=[1, 2, 4],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    else:
        estimator = EarlyExitClassifier(
            GradientBoostingClassifier(
                n_estimators=30, learning_rate=0.1, random_state=0
            ),
            exits=[5, 10, 20, 30],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    n_fit = n_rows * 2 // 3
    estimator.fit(X[:n_fit], y[:n_fit])
    X_new, y_new = X[n_fit:], y[n_fit:]
    assert any(c.kind != "stage" for c in estimator.combiners_)
    routed = estimator.route(X_new)
    assert len(np.unique(routed.exit_stage)) > 1
    probas = exit_probas(estimator._stage_source(), X_new)
    logs = [log_probas(p) for p in probas]
    offline = np.stack(
        [
            probas[c.exit] if c.kind == "stage" else c.combine(logs[: c.exit + 1])
            for c in estimator.combiners_
        ]
    )
    expected = offline[routed.exit_stage, np.arange(len(X_new))]
    np.testing.assert_allclose(routed.proba, expected, rtol=1e-12, atol=1e-15)
    # The policy decides on the combined answers, as it was learned on them.
    answers = exit_probas(estimator._answer_source(), X_new)
    np.testing.assert_array_equal(
        estimator.policy_.exit_stage(answers), routed.exit_stage
    )
    # A row's answer does not depend on its batch or on the threads.
    batched = estimator.set_params(batch_size=7, n_jobs=2).route(X_new)
    np.testing.assert_array_equal(batched.exit_stage, routed.exit_stage)
    np.testing.assert_allclose(batched.proba, routed.proba, rtol=1e-12, atol=1e-15)
    test = estimator.evaluate_frontier(X_new, y_new)
    assert test["accuracy_at_fit"] == pytest.approx(estimator.score(X_new, y_new))


def _noisy_stages(y, noises, seed=0):
    """Probabilities of stages that see the label through independent noise."""
    rng = np.random.default_rng(seed)
    probas = []
    for noise in noises:
        scores = rng.normal(size=(len(y), 3)) * noise
        scores[np.arange(len(y)), y] += 1.0
        probas.append(np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True))
    return probas


@pytest.mark.parametrize("loss", ["zero_one", "log_loss"])
def test_a_combiner_where_it_is_clearly_better(loss):
    """Stages with independent noise: pooling them is clearly better than the
    last alone, so every exit after the first combines; the combined answers
    the policy learns from are out of fold, not the final combiners'."""
    y = np.random.default_rng(1).integers(0, 3, size=600)
    probas = _noisy_stages(y, (0.9, 0.9, 0.9))
    combiners, combined = fit_combiners(probas, y, loss=loss, random_state=0)
    assert combiners[0].kind == "stage" and combiners[0].cv_error == {}
    np.testing.assert_array_equal(combined[0], probas[0])
    for combiner in combiners[1:]:
        assert set(combiner.cv_error) == set(KINDS)
        assert combiner.kind != "stage"
        scores = combiner.cv_error if loss == "zero_one" else combiner.cv_log_loss
        assert scores[combiner.kind] < scores["stage"]
    refit = combiners[-1].combine([log_probas(p) for p in probas])
    assert not np.allclose(refit, combined[-1])


def _answers_right_on(right: np.ndarray) -> np.ndarray:
    """Two-class probabilities of label 0: 0.8 on the rows ``right``, else 0.2."""
    positive = np.where(right, 0.8, 0.2)
    return np.column_stack([positive, 1 - positive])


@pytest.mark.parametrize(("fixed", "broken"), [(20, 15), (30, 5)])
def test_a_combiner_must_beat_the_stage_by_one_standard_error(fixed, broken):
    """400 rows; the stage is wrong on the first 100. A combiner that fixes
    20 of them and breaks 15 others is 1.25 points better, less than one
    standard error of the paired difference (1.48 points): the stage's own
    answer is kept. Fixing 30 and breaking 5 is 6.25 points better, more than
    its standard error (1.45): the combiner is kept. (Standard errors of the
    policy's own one-standard-error rules: Kish's effective sample size.)"""
    y = np.zeros(400, dtype=int)
    rows = np.arange(400)
    stage_right = rows >= 100
    combiner_right = (stage_right | (rows < fixed)) & ~(rows >= 400 - broken)
    out_of_fold = {
        "stage": _answers_right_on(stage_right),
        "log_pool": _answers_right_on(combiner_right),
        "logistic": _answers_right_on(stage_right),
    }
    kind, errors, _ = _choose_kind(out_of_fold, y, None, "zero_one")
    assert errors["log_pool"] == pytest.approx((100 - fixed + broken) / 400)
    assert kind == ("log_pool" if fixed == 30 else "stage")
    # Weights: only their ratios count.
    weight = np.where(rows % 2 == 0, 2.0, 1.0)
    assert _choose_kind(out_of_fold, y, weight, "zero_one")[0] == kind
    assert _choose_kind(out_of_fold, y, 10 * weight, "zero_one")[0] == kind


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_combiner_is_the_fitted_logistic_regression(n_classes):
    """Folded into one matrix per exit for speed, it answers as the scaler and
    logistic regression it was fitted as (binary: one coefficient row)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.random.default_rng(0).integers(0, n_classes, size=300)
    rng = np.random.default_rng(1)
    probas = []
    for _ in range(3):
        scores = rng.normal(size=(300, n_classes))
        scores[np.arange(300), y] += 1.0
        probas.append(np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True))
    logs = [log_probas(p) for p in probas]
    weight = rng.uniform(0.5, 2, size=300)
    combiner = ExitCombiner(2, "logistic").fit(logs, y, weight, n_classes)
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=300, tol=1e-4)
    ).fit(
        np.hstack(logs),
        y,
        standardscaler__sample_weight=weight,
        logisticregression__sample_weight=weight,
    )
    np.testing.assert_allclose(
        combiner.combine(logs), reference.predict_proba(np.hstack(logs)), rtol=1e-9
    )


def test_too_few_rows_answer_with_the_stages():
    X, y = make_classification(60, random_state=0)
    stages = [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 2], cv=0.4, answer="combined", random_state=0
    ).fit(X, y)
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]
    plain = AdaptiveCascadeClassifier(stages, costs=[1, 2], cv=0.4, random_state=0)
    np.testing.assert_array_equal(
        cascade.predict_proba(X), plain.fit(X, y).predict_proba(X)
    )


def test_stage_output_checked_before_it_is_combined():
    X, y = _disjoint_errors(300, seed=0)

    class _BadOnFiveRows(_WrongOnGroup):
        def predict_proba(self, X):
            proba = super().predict_proba(X)
            if len(X) == 5:
                proba[2] *= 2  # combined, it would sum to 1 again
            return proba

    cascade = AdaptiveCascadeClassifier(
        [("first", _WrongOnGroup(1)), ("bad", _BadOnFiveRows(2))],
        costs=[1, 2],
        cost_weight=0.0,
        answer="combined",
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert cascade.combiners_[1].kind != "stage"
    with pytest.raises(ValueError, match="stage 'bad'.*do not sum to 1 \\(1 of 5"):
        cascade.predict(X[:5])


def test_answer_is_validated():
    X, y = make_classification(100, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())],
        answer="both",
    )
    with pytest.raises(ValueError, match="'answer' parameter"):
        cascade.fit(X, y)
