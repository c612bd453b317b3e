"""Exits that answer with every probability computed so far (answer="combined")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.stages import exit_probas
from skadaptive.stages._combined import KINDS, fit_combiners, log_probas


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
    assert combined.stage_accuracies_[1] == 1.0


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
    X, y = make_classification(
        900, n_classes=3, n_informative=6, flip_y=0.05, random_state=0
    )
    if kind == "cascade":
        estimator = AdaptiveCascadeClassifier(
            [
                ("lr", LogisticRegression(max_iter=500)),
                ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
                ("deep", DecisionTreeClassifier(max_depth=9, random_state=0)),
            ],
            costs=[1, 2, 4],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    else:
        estimator = EarlyExitClassifier(
            GradientBoostingClassifier(n_estimators=30, random_state=0),
            exits=[5, 10, 20, 30],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    estimator.fit(X[:600], y[:600])
    X_new = X[600:]
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
    test = estimator.evaluate_frontier(X_new, y[600:])
    assert test["accuracy_at_fit"] == pytest.approx(estimator.score(X_new, y[600:]))


def test_kind_chosen_by_the_estimators_loss():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    probas = []
    for noise in (1.5, 0.8, 0.6):
        scores = rng.normal(size=(300, 3)) * noise
        scores[np.arange(300), y] += 1.0
        probas.append(np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True))
    for loss in ("zero_one", "log_loss"):
        combiners, combined = fit_combiners(probas, y, loss=loss, random_state=0)
        assert combiners[0].kind == "stage" and combiners[0].cv_error == {}
        np.testing.assert_array_equal(combined[0], probas[0])
        for combiner in combiners[1:]:
            assert set(combiner.cv_error) == set(KINDS)
            if loss == "log_loss":
                scores = combiner.cv_log_loss
            else:
                scores = {
                    kind: (combiner.cv_error[kind], combiner.cv_log_loss[kind])
                    for kind in KINDS
                }
            assert combiner.kind == min(KINDS, key=scores.__getitem__)
        # Out of fold: the combined answers are not the final combiners'.
        last = combiners[-1]
        refit = last.combine([log_probas(p) for p in probas])
        if last.kind != "stage":
            assert not np.allclose(refit, combined[-1])


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
