"""Exits that answer with every probability computed so far (answer="combined")."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from _column_stages import _disjoint_cascade, _disjoint_errors, _WrongOnGroup
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.stages import exit_probas
from skadaptive.stages._combined import (
    KINDS,
    LOGISTIC_L2,
    ExitCombiner,
    _choose_kind,
    fit_combiners,
    log_probas,
)
from skadaptive.stages._combined_regression import fit_regression_combiners


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
            # The pooling is clearly better in log loss here (in errors, one
            # boosted exit's answer is hard to beat by more than noise).
            loss="log_loss",
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
    np.testing.assert_allclose(
        test["stage_accuracies"], [np.mean(p.argmax(1) == y_new) for p in probas]
    )
    np.testing.assert_allclose(
        test["exit_accuracies"], [np.mean(p.argmax(1) == y_new) for p in answers]
    )
    assert not np.allclose(test["stage_accuracies"], test["exit_accuracies"])


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


@pytest.mark.parametrize(("fixed", "broken"), [(1, 0), (20, 15), (30, 5)])
def test_a_combiner_must_beat_the_stage_by_one_standard_error(fixed, broken):
    """400 rows; the stage is wrong on the first 100. A combiner that fixes
    20 of them and breaks 15 others is 1.25 points better, less than one
    standard error of the paired difference (1.48 points): the stage's own
    answer is kept. Fixing 30 and breaking 5 is 6.25 points better, more than
    its standard error (1.45): the combiner is kept. Fixing a single row is
    exactly one standard error (with one degree of freedom taken off): not
    enough. (Standard errors of the policy's own one-standard-error rules:
    Kish's effective sample size.)"""
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
    assert (
        _choose_kind(out_of_fold, y, weight, "zero_one")[:2]
        == _choose_kind(out_of_fold, y, 10 * weight, "zero_one")[:2]
    )


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
    # The weighted mean log loss plus LOGISTIC_L2 |coef|^2.
    share = weight / weight.sum()
    reference = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1 / (2 * LOGISTIC_L2), max_iter=300, tol=1e-4),
    ).fit(
        np.hstack(logs),
        y,
        standardscaler__sample_weight=share,
        logisticregression__sample_weight=share,
    )
    np.testing.assert_allclose(
        combiner.combine(logs), reference.predict_proba(np.hstack(logs)), rtol=1e-9
    )


@pytest.mark.parametrize("kind", ["log_pool", "logistic"])
def test_a_combiner_depends_on_the_weights_ratios_only(kind):
    """Weights that sum to one, or scaled by 100, fit the same combiner
    (weights as shares of the policy rows, as the policy reads them; a fixed
    penalty on the weighted sum would all but switch the logistic regression
    off for weights that sum to one); weight 2 on a row is two copies of it."""
    probas, y = _three_noisy_exits()
    logs = [log_probas(p) for p in probas]
    weight = np.random.default_rng(2).integers(1, 3, size=len(y)).astype(float)
    fitted = ExitCombiner(2, kind).fit(logs, y, weight, 3).combine(logs)
    for scale in (1 / weight.sum(), 100.0):
        again = ExitCombiner(2, kind).fit(logs, y, weight * scale, 3).combine(logs)
        np.testing.assert_allclose(again, fitted, rtol=1e-6, atol=1e-9)
    copies = np.repeat(np.arange(len(y)), weight.astype(int))
    repeated = ExitCombiner(2, kind).fit([g[copies] for g in logs], y[copies], None, 3)
    np.testing.assert_allclose(repeated.combine(logs), fitted, rtol=1e-5, atol=1e-7)


def test_too_few_rows_answer_with_the_stages():
    X, y = make_classification(60, random_state=0)
    stages = [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 2], cv=0.4, answer="combined", random_state=0
    )
    with pytest.warns(UserWarning, match="needs at least 30 distinct policy rows"):
        cascade.fit(X, y)
    # Rows of zero weight teach nothing, and the message counts those that do.
    X_more, y_more = make_classification(400, random_state=0)
    weight = np.zeros(400)
    weight[:20] = 1.0
    with pytest.warns(UserWarning, match="needs at least 30") as record:
        weighted = clone(cascade).fit(X_more, y_more, sample_weight=weight)
    _, y_policy, w_policy = weighted._policy_rows()
    positive = np.count_nonzero(w_policy > 0)
    assert 0 < positive < 20 < len(y_policy)
    expected = f"there are {positive} rows of positive weight (of {len(y_policy)} rows)"
    assert any(expected in str(w.message) for w in record)
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]
    plain = AdaptiveCascadeClassifier(stages, costs=[1, 2], cv=0.4, random_state=0)
    np.testing.assert_array_equal(
        cascade.predict_proba(X), plain.fit(X, y).predict_proba(X)
    )


def test_a_class_too_rare_for_the_folds_is_named_not_the_row_count():
    # 201 policy rows (enough), one of class 1: the combiners' fold holding it
    # learns from class 0 alone, so the stages answer; the warning says why.
    X, y = make_classification(1500, 10, n_informative=6, random_state=4)
    stages = [
        ("nb", FrozenEstimator(GaussianNB().fit(X[:500], y[:500]))),
        (
            "tree",
            FrozenEstimator(
                DecisionTreeClassifier(random_state=0).fit(X[:500], y[:500])
            ),
        ),
    ]
    X_policy, y_policy = X[500:], y[500:]
    rows = np.r_[np.flatnonzero(y_policy == 0)[:200], np.flatnonzero(y_policy == 1)[:1]]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], answer="combined", random_state=0
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cascade.fit(X_policy[rows], y_policy[rows])
    messages = [str(w.message) for w in record if "answer='combined'" in str(w.message)]
    assert len(messages) == 1
    assert "in one of them they hold a single class" in messages[0]
    assert "per class: 0: 200, 1: 1" in messages[0]
    assert "needs at least 30" not in messages[0]
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]


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


def _three_noisy_exits(n_rows=600, seed=1):
    y = np.random.default_rng(seed).integers(0, 3, size=n_rows)
    return _noisy_stages(y, (0.9, 0.9, 0.9)), y


def test_combiner_arithmetic_is_the_documented_one():
    """log_pool: softmax(sum_j w_j log p_j + b), at a minimum of its weighted
    log loss (+ the biases' L2 penalty); logistic: softmax(bias + sum_j
    logs[j] @ weights[j]), reading every exit up to its own."""
    from scipy.optimize import approx_fprime
    from scipy.special import logsumexp, softmax

    probas, y = _three_noisy_exits()
    logs = [log_probas(p) for p in probas]
    weight = np.random.default_rng(2).uniform(0.5, 2, size=len(y))
    pool = ExitCombiner(2, "log_pool").fit(logs, y, weight, 3)
    expected = softmax(pool.bias + sum(w * g for w, g in zip(pool.weights, logs)), 1)
    np.testing.assert_allclose(pool.combine(logs), expected, rtol=1e-12)

    def objective(theta):
        scores = np.tensordot(theta[:3], np.stack(logs), axes=1) + theta[3:]
        losses = logsumexp(scores, axis=1) - scores[np.arange(len(y)), y]
        return weight @ losses / weight.sum() + 1e-3 * theta[3:] @ theta[3:]

    theta = np.r_[pool.weights, pool.bias]
    assert np.abs(approx_fprime(theta, objective, 1e-7)).max() < 1e-4
    assert objective(theta) < objective(np.r_[0, 0, 1, 0, 0, 0]) - 0.05
    logistic = ExitCombiner(2, "logistic").fit(logs, y, weight, 3)
    assert logistic.weights.shape == (3, 3, 3)
    scores = logistic.bias + sum(g @ w for g, w in zip(logs, logistic.weights))
    np.testing.assert_allclose(logistic.combine(logs), softmax(scores, 1), rtol=1e-12)


def test_combiners_are_fitted_with_the_weights_and_ignore_zero_weight_rows():
    probas, y = _three_noisy_exits()
    logs = [log_probas(p) for p in probas]
    weight = np.random.default_rng(3).uniform(0.5, 2, size=len(y))
    combiners, _ = fit_combiners(probas, y, weight, random_state=0)
    for combiner in combiners[1:]:
        refit = ExitCombiner(combiner.exit, combiner.kind).fit(
            logs[: combiner.exit + 1], y, weight, 3
        )
        np.testing.assert_allclose(combiner.weights, refit.weights)
    # Rows of zero weight change no fold, no fit and no choice.
    extra = _noisy_stages(y[:100], (0.9, 0.9, 0.9), seed=5)
    padded = [np.vstack([p, e]) for p, e in zip(probas, extra)]
    padded_weight = np.r_[weight, np.zeros(100)]
    with_zeros, answers = fit_combiners(
        padded, np.r_[y, y[:100]], padded_weight, random_state=0
    )
    assert [c.kind for c in with_zeros] == [c.kind for c in combiners]
    for a, b in zip(with_zeros[1:], combiners[1:]):
        np.testing.assert_allclose(a.weights, b.weights, rtol=1e-9)
        assert a.cv_error == pytest.approx(b.cv_error)
    assert all(np.isfinite(a).all() and len(a) == 700 for a in answers)


def test_fold_shuffling_follows_random_state():
    probas, y = _three_noisy_exits()
    first = fit_combiners(probas, y, random_state=0)[1]
    again = fit_combiners(probas, y, random_state=0)[1]
    other = fit_combiners(probas, y, random_state=1)[1]
    np.testing.assert_array_equal(first[2], again[2])
    assert not np.allclose(first[2], other[2])
    # The estimator's random_state reaches them.
    X, y = _disjoint_errors(300, seed=0)
    fits = [
        _disjoint_cascade("combined", cost_weight=0.0, random_state=seed).fit(X, y)
        for seed in (3, 3, 4)
    ]
    errors = [fit.combiners_[1].cv_log_loss for fit in fits]
    assert errors[0] == errors[1] != errors[2]


def test_out_of_fold_answers_are_fitted_with_the_weights():
    """The combined answers the policy learns from: each fold's combiner,
    fitted on the other folds' rows with their weights."""
    from skadaptive.stages._combined import N_FOLDS, _folds

    probas, y = _three_noisy_exits()
    logs = [log_probas(p) for p in probas]
    weight = np.random.default_rng(4).uniform(0.2, 3, size=len(y))
    combiners, _ = fit_combiners(probas, y, weight, random_state=0)
    fold_of, _, _ = _folds(weight, None, 0)
    for kind in ("log_pool", "logistic"):
        proba = np.empty_like(probas[2])
        for fold in range(N_FOLDS):
            train, test = fold_of != fold, fold_of == fold
            combiner = ExitCombiner(2, kind).fit(
                [g[train] for g in logs], y[train], weight[train], 3
            )
            proba[test] = combiner.combine([g[test] for g in logs])
        error = np.average(proba.argmax(axis=1) != y, weights=weight)
        assert combiners[2].cv_error[kind] == pytest.approx(error, rel=1e-9)


def test_what_the_rows_can_teach():
    """At least 30 rows of positive weight; the pooling needs two classes in
    every fold's training rows, the logistic regression every class."""
    probas, y = _three_noisy_exits()
    assert (
        fit_combiners([p[:29] for p in probas], y[:29], random_state=0)[0][2].cv_error
        == {}
    )
    few = fit_combiners([p[:30] for p in probas], y[:30], random_state=0)[0]
    assert set(few[2].cv_error) == set(KINDS)
    weight = np.ones(len(y))
    weight[30:] = 0  # 30 rows weigh: enough; 29 do not
    assert set(fit_combiners(probas, y, weight, random_state=0)[0][2].cv_error) == set(
        KINDS
    )
    weight[29] = 0
    assert fit_combiners(probas, y, weight, random_state=0)[0][2].cv_error == {}
    # A fold whose training rows hold one class teaches no combiner.
    single = np.zeros_like(y)
    single[0] = 1
    assert fit_combiners(probas, single, random_state=0)[0][2].cv_error == {}
    # A class with a single row is missing from one fold's training rows.
    rare = y.copy()
    rare[rare == 2] = 1
    rare[0] = 2
    combiners = fit_combiners(probas, rare, random_state=0)[0]
    assert set(combiners[2].cv_error) == {"stage", "log_pool"}


def test_estimator_passes_its_loss_and_times_its_combiners(monkeypatch):
    import skadaptive._base as base

    seen = {}
    real_fit, real_measure = base.fit_combiners, base.measure_routing_seconds

    def fit(*args, **kwargs):
        seen["loss"] = kwargs["loss"]
        return real_fit(*args, **kwargs)

    def measure(*args, **kwargs):
        seen["timed"] = [c.kind for c in kwargs["combiners"]]
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(base, "fit_combiners", fit)
    monkeypatch.setattr(base, "measure_routing_seconds", measure)
    X, y = _disjoint_errors(300, seed=0)
    cascade = AdaptiveCascadeClassifier(
        [("first", _WrongOnGroup(1)), ("second", _WrongOnGroup(2))],
        costs="auto",
        loss="log_loss",
        answer="combined",
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert seen["loss"] == "log_loss"
    assert seen["timed"] == [c.kind for c in cascade.combiners_] != ["stage"] * 2


def test_models_saved_before_combined_answers_load_as_stage_answers():
    import pickle

    X, y = make_classification(300, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())],
        costs=[1, 2],
        cv=3,
        random_state=0,
    ).fit(X, y)
    state = cascade.__getstate__()
    for name in ("answer", "combiners_", "exit_accuracies_"):
        del state[name]
    old = AdaptiveCascadeClassifier.__new__(AdaptiveCascadeClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.answer == "stage"
    np.testing.assert_array_equal(old.predict_proba(X), cascade.predict_proba(X))
    assert repr(old) == repr(cascade)


@pytest.mark.parametrize("option", [{"skips": True}, {"router": "auto"}])
def test_with_policy_refuses_what_fit_refuses_over_combined_answers(option):
    """A fit with combined answers, then skips or a router set without a
    refit: with_policy would learn a policy that runs only some of the stages
    a combiner reads (its weights then fall on the wrong exits' answers);
    it refuses as fit does. Over stage answers, answer= set afterwards does
    not stop it: the answers are the fit's."""
    X, y = _disjoint_errors(600, seed=0)
    combined = _disjoint_cascade("combined", cost_weight=0.0).fit(X, y)
    assert combined.combiners_[1].kind != "stage"
    combined.set_params(**option)
    name = next(iter(option))
    with pytest.raises(ValueError, match=rf"{name}=.* needs answer='stage'.*refit"):
        combined.with_policy(cost_weight=0.01)
    with pytest.raises(ValueError, match=rf"{name}=.* needs answer='stage'.*refit"):
        combined.with_policy(budget=1.5)
    # So does every policy learned after the fit: the frontier's.
    combined.__dict__.pop("_frontier_points", None)
    with pytest.raises(ValueError, match=rf"{name}=.* needs answer='stage'.*refit"):
        combined.evaluate_frontier(X, y)
    plain = _disjoint_cascade("stage", cost_weight=0.0).fit(X, y)
    plain.set_params(answer="combined", skips=True)
    assert plain.with_policy(cost_weight=0.01).combiners_ == plain.combiners_


def _one_cluster_per_class(n_rows, n_classes, n_informative, seed, flip_y=0.0):
    """20 features, one cluster per class, labels flipped at ``flip_y``."""
    return make_classification(
        n_rows,
        n_features=20,
        n_informative=n_informative,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=flip_y,
        random_state=seed,
    )


def _frozen_three_stages(seed=5):
    """The reviewers' case: three frozen stages, 8 noisy classes, and rows."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.naive_bayes import GaussianNB

    X, y = _one_cluster_per_class(3000, 8, 10, seed, flip_y=0.2)
    models = [
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
    ]
    stages = [(n, FrozenEstimator(m.fit(X[:1000], y[:1000]))) for n, m in models]
    return stages, X[1000:], y[1000:]


def test_copies_of_a_row_are_one_row_of_their_weight_to_the_combiners():
    # The combiners' folds shuffled single rows: copies of a policy row were
    # both learned from and scored, a logistic combiner overfit to them was
    # kept, and expected_accuracy_ read 77.5 % for 43.8 % on new rows.
    stages, X, y = _frozen_three_stages()
    X_policy, y_policy = X[:150], y[:150]
    X_new, y_new = X[500:], y[500:]
    options = dict(costs=[1, 2, 5], answer="combined", random_state=0, cost_weight=0)
    copies = AdaptiveCascadeClassifier(stages, **options).fit(
        np.repeat(X_policy, 4, axis=0), np.repeat(y_policy, 4)
    )
    weighted = AdaptiveCascadeClassifier(stages, **options).fit(
        X_policy, y_policy, sample_weight=np.full(len(y_policy), 4.0)
    )
    for a, b in zip(copies.combiners_, weighted.combiners_):
        assert a.kind == b.kind
        assert a.cv_error == pytest.approx(b.cv_error, rel=1e-6)
    assert copies.expected_accuracy_ == pytest.approx(weighted.expected_accuracy_)
    assert copies.expected_cost_ == pytest.approx(weighted.expected_cost_)
    np.testing.assert_array_equal(copies.predict(X_new), weighted.predict(X_new))
    # And the estimate is about as honest as on distinct rows (150 of them:
    # a standard error of 4 points), not 34 points over new rows.
    accuracy = np.mean(copies.predict(X_new) == y_new)
    assert abs(copies.expected_accuracy_ - accuracy) < 0.08


def test_combiners_are_the_same_without_a_random_state():
    # The folds were shuffled from numpy's global generator: identical fits
    # kept different combiners (expected_cost_ 3.0, 3.4, 2.1, 4.1).
    X, y = _one_cluster_per_class(1200, 3, 8, 1, flip_y=0.1)
    stages = [
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("lr", LogisticRegression(max_iter=500)),
        ("forest", RandomForestClassifier(30, random_state=0)),
    ]
    fits = []
    for seed in (1, 2):
        np.random.seed(seed)  # noqa: NPY002 (the global generator, as it was used)
        fits.append(
            AdaptiveCascadeClassifier(
                stages, costs=[1, 2, 5], answer="combined", cv=3, cost_weight=0.01
            ).fit(X[:800], y[:800])
        )
    for a, b in zip(fits[0].combiners_, fits[1].combiners_):
        assert a.kind == b.kind and a.cv_log_loss == b.cv_log_loss
    assert fits[0].expected_cost_ == fits[1].expected_cost_
    np.testing.assert_array_equal(fits[0].predict(X[800:]), fits[1].predict(X[800:]))


def test_the_logistic_combiner_must_beat_the_pooling_by_one_standard_error():
    # Between the two learned kinds the lower loss won by any margin, and the
    # choice flipped with the folds' seed. 400 rows; the stage is wrong on
    # the first 100, the pooling fixes 40 of them, the logistic regression
    # 3 more (and breaks one): within noise of the pooling, which is kept.
    y = np.zeros(400, dtype=int)
    rows = np.arange(400)
    stage_right = rows >= 100
    pool_right = stage_right | (rows < 40)
    logistic_right = (stage_right | (rows < 43)) & (rows != 399)
    out_of_fold = {
        "stage": _answers_right_on(stage_right),
        "log_pool": _answers_right_on(pool_right),
        "logistic": _answers_right_on(logistic_right),
    }
    kind, errors, _ = _choose_kind(out_of_fold, y, None, "zero_one")
    assert errors["logistic"] < errors["log_pool"] < errors["stage"]
    assert kind == "log_pool"
    # Clearly better (it fixes 30 more): kept.
    out_of_fold["logistic"] = _answers_right_on(stage_right | (rows < 70))
    assert _choose_kind(out_of_fold, y, None, "zero_one")[0] == "logistic"


def test_a_class_a_fold_never_saw_fits_without_warnings():
    # Weights normalised to sum to one gave a constant column a variance of
    # -1e-40 in the scaler of the logistic combiner: "invalid value in sqrt".
    import warnings

    from sklearn.naive_bayes import GaussianNB

    X, y = _one_cluster_per_class(1000, 3, 8, 0)
    y = np.array(["a", "b", "c", "rare"], dtype=object)[y]
    y[[5, 9]] = "rare"
    stages = [
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
        ("lr", LogisticRegression(max_iter=500)),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        AdaptiveCascadeClassifier(
            stages, costs=[1, 2, 5], answer="combined", cv=3, random_state=0
        ).fit(X, y)


class _Image:
    """A row held as an object whose repr is its address."""

    def __init__(self, pixels):
        self.pixels = pixels


def _pixels(images):
    return np.array([image.pixels for image in images])


def test_rows_held_as_objects_without_content_give_the_same_combiners():
    # Hashed by their address, equal rows fell in other folds at every fit:
    # the combiners kept (logistic or log_pool) and expected_cost_ (7.21 to
    # 7.80) changed from one fit of the same data to the next.
    from sklearn.datasets import load_digits
    from sklearn.frozen import FrozenEstimator
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = load_digits(return_X_y=True)

    def frozen(model):
        pipeline = make_pipeline(FunctionTransformer(_pixels), model)
        return FrozenEstimator(pipeline.fit([_Image(r) for r in X[:600]], y[:600]))

    stages = [
        ("nb", frozen(GaussianNB())),
        ("tree", frozen(DecisionTreeClassifier(max_depth=6, random_state=0))),
        ("lr", frozen(LogisticRegression(max_iter=300))),
    ]
    fits = [
        AdaptiveCascadeClassifier(
            stages, costs=[1, 2, 5], answer="combined", random_state=0
        ).fit([_Image(r) for r in X[600:1100]], y[600:1100])
        for _ in range(3)
    ]
    for fit in fits[1:]:
        assert [c.kind for c in fit.combiners_] == [c.kind for c in fits[0].combiners_]
        assert [c.cv_log_loss for c in fit.combiners_] == [
            c.cv_log_loss for c in fits[0].combiners_
        ]
        assert fit.expected_cost_ == fits[0].expected_cost_


def test_the_warning_counts_distinct_rows_where_copies_share_a_fold():
    X = np.repeat(np.array([[0.0, 1.0], [1.0, 0.0]]), 300, axis=0)
    y = np.repeat([0, 1], 300)
    cascade = AdaptiveCascadeClassifier(
        [("tree", DecisionTreeClassifier()), ("lr", LogisticRegression())],
        costs=[1, 2],
        answer="combined",
        cv=3,
    )
    with pytest.warns(UserWarning, match=r"600 rows of positive weight, 2 of them"):
        cascade.fit(X, y)


def test_a_random_state_instance_gives_the_same_fit_from_the_cache(tmp_path):
    """With memory=, a fit whose stages and combiners come from the cache
    answers as one that computed them, from the same RandomState instance:
    each cached call draws its seed from it, hit or miss."""
    X, y = make_classification(
        600, n_classes=3, n_informative=6, flip_y=0.05, random_state=0
    )

    def fit(memory):
        return AdaptiveCascadeClassifier(
            [
                ("lr", LogisticRegression(max_iter=500)),
                ("knn", KNeighborsClassifier(15)),
            ],
            costs=[1, 4],
            budget=2.5,
            answer="combined",
            loss="log_loss",
            cv=0.5,
            memory=memory,
            random_state=np.random.RandomState(3),
        ).fit(X[:400], y[:400])

    alone = fit(None)
    computed, cached = fit(str(tmp_path)), fit(str(tmp_path))
    assert alone.combiners_[1].kind != "stage"
    for other in (computed, cached):
        np.testing.assert_array_equal(
            other.predict_proba(X[400:]), alone.predict_proba(X[400:])
        )


@pytest.mark.parametrize("regression", [False, True])
def test_too_few_distinct_rows_with_weights_as_with_copies(regression):
    """20 distinct rows are too few to learn a combiner, whether each has
    weight 2 or two copies (40 rows): the count is of distinct rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20)
    if regression:
        fit = fit_regression_combiners
        target = rng.normal(size=20)
        answers = [
            np.column_stack([target + rng.normal(size=20), np.zeros(20)])
            for _ in range(2)
        ]
        y = target
    else:
        fit = fit_combiners
        answers = [
            np.clip(np.eye(2)[y] * 0.8 + rng.uniform(0, 0.2, (20, 2)), 0, 1)
            for _ in range(2)
        ]
        answers = [a / a.sum(axis=1, keepdims=True) for a in answers]
    copies = np.repeat(np.arange(20), 2)
    weighted = fit(answers, y, np.full(20, 2.0), random_state=0, groups=np.arange(20))
    copied = fit([a[copies] for a in answers], y[copies], random_state=0, groups=copies)
    assert weighted[0][1].cv_error == copied[0][1].cv_error == {}
    assert [c.kind for c in copied[0]] == ["stage", "stage"]


def test_a_class_the_policy_rows_lack_is_still_answered():
    """Frozen stages that know three classes, policy rows of two: combiners
    would never answer the third (the pooling capped it at 0.34), so every
    exit answers with its stage's own probabilities, with a warning."""
    X, y = make_classification(
        900, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    stages = [
        ("lr", FrozenEstimator(LogisticRegression().fit(X[:300], y[:300]))),
        (
            "forest",
            FrozenEstimator(
                RandomForestClassifier(50, random_state=0).fit(X[:300], y[:300])
            ),
        ),
    ]
    keep = y[300:600] != 2
    X_policy, y_policy = X[300:600][keep], y[300:600][keep]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], answer="combined", random_state=0
    )
    with pytest.warns(UserWarning, match="no row of class 2"):
        cascade.fit(X_policy, y_policy)
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]
    X_test, y_test = X[600:], y[600:]
    assert (cascade.predict(X_test[y_test == 2]) == 2).mean() > 0.5


# ------------------------------------------- a budget's choice of answer kind
def _noisy_columns(n_rows, seed):
    """Two stages (columns) that see a binary label through independent
    noise: pooling them is more accurate than either alone."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    scores = (2 * y - 1)[:, None] + rng.normal(size=(n_rows, 2)) * 1.2
    return 1 / (1 + np.exp(-scores)), y


def _column_cascade(answer, **params):
    from _column_stages import ColumnStage

    stages = [
        (f"column{k}", FrozenEstimator(ColumnStage(k).fit(np.zeros((2, 2)), [0, 1])))
        for k in range(2)
    ]
    return AdaptiveCascadeClassifier(
        stages, costs=[1, 1], answer=answer, random_state=0, **params
    )


def test_a_budget_keeps_combined_answers_where_clearly_more_accurate():
    """With 2,000 policy rows the pooled answers are clearly more accurate at
    the budget: kept, and they are what predict answers with."""
    X, y = _noisy_columns(2000, seed=0)
    X_test, y_test = _noisy_columns(20000, seed=1)
    combined = _column_cascade("combined", budget=1.5).fit(X, y)
    plain = _column_cascade("stage", budget=1.5).fit(X, y)
    assert combined.combiners_[1].kind != "stage"
    assert combined.answer_ == "combined" and plain.answer_ == "stage"
    assert combined.expected_accuracy_ > plain.expected_accuracy_ + 0.005
    assert combined.score(X_test, y_test) > plain.score(X_test, y_test) + 0.005
    # The reason gives the test and its figures: the gain in cross-fitted
    # 0-1 loss is the gain in the two policies' cross-fitted accuracy.
    reason = combined.budget_search_["answer_reason"]
    assert reason.endswith("the combined answers' policy is kept"), reason
    assert "is clearly better out of sample (" in reason
    gain = float(re.search(r"\(([-\d.e]+) lower error rate", reason).group(1))
    accuracy = combined.budget_search_["answer_expected_accuracy"]
    assert gain == pytest.approx(accuracy[1] - accuracy[0], rel=1e-2)
    # The exits answer with the combiners, as routing runs them.
    answers = combined._exit_answers(exit_probas(combined._stage_source(), X_test))[1]
    exits = combined.predict_exit(X_test)
    expected = np.where(exits[:, None] == 0, answers[0], answers[1])
    np.testing.assert_allclose(combined.predict_proba(X_test), expected)
    test = combined.evaluate_frontier(X_test, y_test)
    assert test["accuracy_at_fit"] == pytest.approx(combined.score(X_test, y_test))


def test_a_budget_keeps_the_stage_answers_unless_clearly_beaten():
    """Fewer rows of the same kind (the gain within noise), or stages whose
    own answers already do as well at the budget (disjoint errors: the rows
    worth sending on are those the second stage alone answers right): the
    policy answer="stage" learns is kept, and everything about it."""
    X, y = _noisy_columns(1000, seed=0)
    few = _column_cascade("combined", budget=1.5).fit(X, y)
    assert few.combiners_[1].kind != "stage"
    assert few.answer_ == "stage"
    reason = few.budget_search_["answer_reason"]
    assert reason.endswith("the stage answers' policy is kept"), reason
    X, y = _disjoint_errors(600, seed=0)
    X_test, y_test = _disjoint_errors(2000, seed=1)
    combined = _disjoint_cascade("combined", budget=1.25).fit(X, y)
    plain = _disjoint_cascade("stage", budget=1.25).fit(X, y)
    assert combined.combiners_[1].kind != "stage"
    assert combined.answer_ == "stage"
    assert combined._exit_answer_kinds() == ["stage", "stage"]
    np.testing.assert_array_equal(
        combined.predict_proba(X_test), plain.predict_proba(X_test)
    )
    for name in ("expected_accuracy_", "expected_cost_", "policy_rows_accuracy_"):
        assert getattr(combined, name) == getattr(plain, name)
    np.testing.assert_array_equal(combined.exit_accuracies_, plain.exit_accuracies_)
    test = combined.evaluate_frontier(X_test, y_test)
    assert test["accuracy_at_fit"] == plain.score(X_test, y_test)
    np.testing.assert_array_equal(test["exit_accuracies"], test["stage_accuracies"])
    # frontier_ stays the combined answers' (cost_weight policies).
    assert combined.with_policy(cost_weight=0.0).answer_ == "combined"
    # Recalibrated on the stage answers it routes with: the cost it reports
    # is the cost of routing those rows.
    recalibrated = combined.recalibrate(X_test, budget=1.2)
    report = recalibrated.exit_report(X_test)
    assert report.cost == pytest.approx(recalibrated.recalibrated_cost_)
    assert recalibrated.answer_ == "stage"


def test_models_saved_before_the_choice_of_answers_answer_as_fitted():
    import pickle

    X, y = _disjoint_errors(600, seed=0)
    cascade = _disjoint_cascade("combined", cost_weight=0.0).fit(X, y)
    assert cascade.answer_ == "combined"
    state = cascade.__getstate__()
    del state["answer_"]
    state.pop("_stage_answer_rows", None)
    old = AdaptiveCascadeClassifier.__new__(AdaptiveCascadeClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.answer_ == "combined"
    np.testing.assert_array_equal(old.predict_proba(X), cascade.predict_proba(X))
    # A budget learned again from it keeps the combined answers (no stage
    # answers were kept to compare them with).
    assert old.with_policy(budget=1.25).answer_ == "combined"


def test_a_budget_that_kept_the_stage_answers_is_scored_and_recalibrated_on_them():
    """Three noisy stages, 500 rows: the combined answers are not clearly
    better at this budget, and they would route some rows elsewhere at the
    second exit. Every figure of the kept policy is of the stage answers it
    routes with: on new rows, on the policy rows, and after recalibrating."""
    from _column_stages import ColumnStage

    def columns(n_rows, seed):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n_rows)
        scores = (2 * y - 1)[:, None] + rng.normal(size=(n_rows, 3)) * 1.2
        return 1 / (1 + np.exp(-scores)), y

    X, y = columns(500, seed=0)
    X_test, _ = columns(5000, seed=1)
    y_test = (X_test.mean(axis=1) > 0.5).astype(int)  # any labels will do
    stages = [
        (f"column{k}", FrozenEstimator(ColumnStage(k).fit(np.zeros((2, 3)), [0, 1])))
        for k in range(3)
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 1, 1], answer="combined", budget=1.5, random_state=0
    ).fit(X, y)
    assert cascade.answer_ == "stage" and cascade.combiners_[1].kind != "stage"
    alone, combined = cascade._exit_answers(
        exit_probas(cascade._stage_source(), X_test)
    )
    walk = cascade.policy_.exit_stage
    assert np.mean(walk(alone) != walk(combined)) > 0.02
    test = cascade.evaluate_frontier(X_test, y_test)
    assert test["accuracy_at_fit"] == cascade.score(X_test, y_test)
    assert test["cost_at_fit"] == pytest.approx(cascade.predict_cost(X_test).mean())
    recalibrated = cascade.recalibrate(X_test, budget=1.3)
    assert recalibrated.exit_report(X_test).cost == pytest.approx(
        recalibrated.recalibrated_cost_
    )
    # On the policy rows (every row: the stages are frozen).
    exits = recalibrated.predict_exit(X)
    np.testing.assert_allclose(recalibrated.exit_rates_, np.bincount(exits) / len(y))
    assert recalibrated.policy_rows_accuracy_ == pytest.approx(recalibrated.score(X, y))


def test_a_plot_and_a_report_say_when_a_budget_kept_the_stage_answers():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skadaptive.cli._frontier_regression import _combiner_report
    from skadaptive.plot import CostAccuracyDisplay
    from skadaptive.stages._combined_regression import RegressionCombiner

    X, y = _disjoint_errors(600, seed=0)
    X_test, y_test = _disjoint_errors(1000, seed=1)
    labels = {}
    for knob in ({"budget": 1.25}, {"cost_weight": 0.0}):
        cascade = _disjoint_cascade("combined", **knob).fit(X, y)
        display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
        labels[cascade.answer_] = display.chosen_point_.get_label()
    assert labels == {
        "stage": "chosen operating point (stage answers)",
        "combined": "chosen operating point",
    }
    # An exit answering with its stage reports no combiner weights.
    combiner = RegressionCombiner(1, "blend", {"stage": 2.0, "blend": 1.0})
    combiner.weights, combiner.bias = np.array([0.5, 0.5]), 0.0
    assert "combiner_weights" in _combiner_report(combiner, "blend")
    report = _combiner_report(combiner, "stage")
    assert "combiner_weights" not in report and "combiner_bias" not in report
    assert report["combiner_cv_error"] == {"stage": 2.0, "blend": 1.0}


def test_a_policy_that_answers_no_row_where_exits_combine_keeps_the_stage_answers(
    monkeypatch,
):
    """Even judged clearly better, a combined answers' policy that answers no
    policy row at an exit that combines gives the stages' own answers: the
    stage answers' policy is kept, and both kinds' figures are recorded."""
    import skadaptive._base as base

    monkeypatch.setattr(
        base,
        "clearly_better_held_out",
        lambda reference, challenger, *args: (True, np.ones(len(reference), bool)),
    )
    X, y = _disjoint_errors(600, seed=0)
    first_only = _disjoint_cascade("combined", budget=1.0).fit(X, y)
    assert first_only.combiners_[1].kind != "stage"
    assert first_only.exit_rates_[1] == 0
    assert first_only.answer_ == "stage"
    reaching = _disjoint_cascade("combined", budget=1.5).fit(X, y)
    assert reaching.answer_ == "combined"
    for cascade in (first_only, reaching):
        search = cascade.budget_search_
        assert list(search["answer_kinds"]) == ["stage", "combined"]
        assert search["answer_expected_accuracy"].shape == (2,)
        assert search["answer_reason"].endswith(
            f"the {cascade.answer_} answers' policy is kept"
            if cascade is reaching
            else "answers no policy row at an exit that combines, so its answers "
            "are the stages' own; the stage answers' policy is kept"
        )
        # Every fold chose the kept kind here: its own figures are the fit's.
        kept = list(search["answer_kinds"]).index(cascade.answer_)
        assert search["answer_expected_cost"][kept] == pytest.approx(
            cascade.expected_cost_
        )
        assert search["answer_expected_accuracy"][kept] == pytest.approx(
            cascade.expected_accuracy_
        )


# ------------------------------------------------ the user's groups (routed)
def _two_stage_problem(regression):
    """400 rows, two stages (linear, then a tree) and the cascade's class."""
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    from skadaptive import AdaptiveCascadeRegressor

    if regression:
        X, y = make_regression(400, 5, noise=10, random_state=0)
        stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=4))]
        return X, y, stages, AdaptiveCascadeRegressor
    X, y = make_classification(400, random_state=0)
    stages = [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())]
    return X, y, stages, AdaptiveCascadeClassifier


@pytest.mark.parametrize("regression", [False, True])
def test_routed_groups_are_the_combiners_folds_and_units(monkeypatch, regression):
    """Groups routed to the splitter (a patient's rows) are dealt whole to the
    combiners' folds and are the units of the choice of kind, as they are the
    policy's: the combiners split a group between learning and scoring, and
    counted its rows as independent evidence."""
    import sklearn
    from sklearn.model_selection import GroupKFold

    from skadaptive.stages import _combined, _combined_regression

    seen = {}
    deal = _combined.deal_groups

    def spy_deal(group_of_row, keys, weight, n_splits, random_state):
        folds = deal(group_of_row, keys, weight, n_splits, random_state)
        seen["folds"] = folds
        return folds

    choose = _combined.one_standard_error_choice

    def spy_choose(row_losses, weight, group_of_row=None):
        seen["units"] = group_of_row
        return choose(row_losses, weight, group_of_row)

    monkeypatch.setattr(_combined, "deal_groups", spy_deal)
    module = _combined_regression if regression else _combined
    monkeypatch.setattr(module, "one_standard_error_choice", spy_choose)
    groups = np.repeat(np.arange(40), 10)
    X, y, stages, estimator = _two_stage_problem(regression)
    with sklearn.config_context(enable_metadata_routing=True):
        cascade = estimator(
            stages, costs=[1, 5], answer="combined", cv=GroupKFold(4), random_state=0
        ).fit(X, y, groups=groups)
    kept = cascade._policy_groups
    assert len(np.unique(kept)) == 40
    for g in np.unique(kept):
        assert len(np.unique(seen["folds"][kept == g])) == 1, g
    assert len(np.unique(seen["folds"])) == 3  # the folds are not one
    # The units of evidence: one per group, the same for a group's rows.
    assert len(np.unique(seen["units"])) == 40
    pairs = np.unique(np.column_stack([kept, seen["units"]]), axis=0)
    assert len(pairs) == 40


@pytest.mark.parametrize("regression", [False, True])
def test_policy_rows_of_one_group_learn_no_combiner_and_say_why(regression):
    """All the policy rows in one routed group: a combiner cannot be scored
    on groups it was not learned from, so the exits answer with the stages'
    own answers, and the warning names the groups (not the row count)."""
    import sklearn
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.repeat(np.arange(10), 40)
    X, y, stages, estimator = _two_stage_problem(regression)
    with sklearn.config_context(enable_metadata_routing=True):
        cascade = estimator(
            stages,
            costs=[1, 5],
            answer="combined",
            cv=GroupShuffleSplit(1, test_size=1, random_state=0),
            random_state=0,
        )
        with pytest.warns(UserWarning, match="all in one of the groups routed"):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The policy's out-of-sample")
                cascade.fit(X, y, groups=groups)
    assert len(np.unique(cascade._policy_groups)) == 1
    assert len(cascade._policy_groups) == 40  # enough rows: the groups decide
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]


def _grouped_three_stages():
    """Three frozen stages and 500 policy rows in 50 groups of 10."""
    from _column_stages import frozen_on

    X, y = make_classification(1000, n_informative=5, random_state=0)
    models = [
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("forest", RandomForestClassifier(20, random_state=0)),
    ]
    stages = frozen_on(models, X[:500], y[:500])
    return stages, X[500:], y[500:], np.repeat(np.arange(50), 10)


def _fit_grouped_log_loss(stages, X, y, groups, weight=None):
    """A combined cascade of ``stages`` fitted with ``groups`` routed to a
    GroupKFold, by log loss."""
    import sklearn
    from sklearn.model_selection import GroupKFold

    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return AdaptiveCascadeClassifier(
                stages,
                costs=[1, 5, 20],
                answer="combined",
                loss="log_loss",
                cv=GroupKFold(4),
                random_state=0,
            ).fit(X, y, groups=groups, sample_weight=weight)


def test_a_fit_with_routed_groups_depends_on_how_rows_are_grouped_only():
    """Relabelling the groups (their dtype, their values, strings, pandas
    categories) or reordering the rows changes neither the combiners nor the
    policy: the folds were salted by each label's bytes (strings crashed:
    'str' object has no attribute 'tobytes') and a group was keyed by its
    first row."""
    import pandas as pd

    stages, X, y, groups = _grouped_three_stages()

    def fit(X, y, groups):
        return _fit_grouped_log_loss(stages, X, y, groups)

    reference = fit(X, y, groups)
    names = pd.Series([f"patient-{g}" for g in groups])
    order = np.random.default_rng(1).permutation(len(y))
    fits = [
        fit(X, y, groups.astype(np.int32)),
        fit(X, y, 1000 - groups),
        fit(X, y, names),
        fit(X, y, names.astype("category")),
        fit(X[order], y[order], groups[order]),
    ]
    assert reference.combiners_[-1].kind != "stage"
    for other in fits:
        for ours, theirs in zip(reference.combiners_, other.combiners_):
            assert ours.kind == theirs.kind
            for kind, loss in ours.cv_log_loss.items():
                assert theirs.cv_log_loss[kind] == pytest.approx(loss, rel=1e-12)
        assert other.expected_cost_ == pytest.approx(reference.expected_cost_)
        assert other.expected_accuracy_ == pytest.approx(reference.expected_accuracy_)
        np.testing.assert_allclose(
            other.predict_proba(X), reference.predict_proba(X), atol=1e-9
        )


def test_groups_of_one_class_each_are_named_when_a_fold_holds_one_class():
    """One diagnosis per patient and two patients among the policy rows: a
    fold's training rows hold one class because each group goes whole to a
    fold. The warning blamed a rarer class where the classes were 30 and
    30 rows; it counts the groups per class and asks for more of them."""
    import sklearn
    from sklearn.model_selection import GroupShuffleSplit

    rng = np.random.RandomState(0)
    groups = np.repeat(np.arange(20), 30)
    y = groups % 2
    X = rng.randn(600, 4) + y[:, None] * 0.8
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=3))],
        costs=[1, 5],
        answer="combined",
        cv=GroupShuffleSplit(1, test_size=2, random_state=1),
        random_state=0,
    )
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.warns(UserWarning, match="answer='combined'") as record:
            cascade.fit(X, y, groups=groups)
    (message,) = [
        str(w.message) for w in record if "answer='combined'" in str(w.message)
    ]
    assert "policy groups (routed to cv's splitter" in message
    assert "per class: 0: 1, 1: 1" in message
    assert "more groups of each class" in message
    assert "rarer classes" not in message


def _pairs_of_patients(stages, X, y, groups, weight=None, **params):
    """The fit for ``groups``, and for the same groups with the labels of each
    pair (2k, 2k + 1) swapped."""
    import sklearn
    from sklearn.model_selection import GroupKFold

    fits = []
    for labels in (groups, groups ^ 1):
        with sklearn.config_context(enable_metadata_routing=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                fits.append(
                    AdaptiveCascadeClassifier(
                        stages,
                        costs=[1, 5, 20],
                        answer="combined",
                        cv=GroupKFold(4),
                        random_state=0,
                        **params,
                    ).fit(X, y, groups=labels, sample_weight=weight)
                )
    return fits


def _assert_same_fit(first, second, X):
    assert first.answer_ == second.answer_
    for ours, theirs in zip(first.combiners_, second.combiners_):
        assert ours.kind == theirs.kind
        assert ours.cv_log_loss == pytest.approx(theirs.cv_log_loss, rel=1e-12)
    assert first.expected_cost_ == pytest.approx(second.expected_cost_)
    np.testing.assert_allclose(first.predict_proba(X), second.predict_proba(X))


def test_groups_alike_but_for_their_weights_or_labels_are_told_apart():
    """Two patients with the same rows were keyed alike, and their tie went
    to the order of their labels: swapping the labels of such pairs changed
    answer_ (stage against combined) and expected_cost_ (3.05 against 5.67)
    where the rows weighed differently in each, and the combiners where
    their outcomes differed."""
    stages, X, y, _ = _grouped_three_stages()
    rows = np.arange(160).reshape(40, 4)
    # Pairs of patients with the same four rows, weighed (3,1,1,1), (1,3,1,1).
    X_pairs = np.vstack([X[r] for r in rows for _ in (0, 1)])
    y_pairs = np.concatenate([y[r] for r in rows for _ in (0, 1)])
    weight = np.tile([3.0, 1, 1, 1, 1, 3, 1, 1], 40)
    groups = np.repeat(np.arange(80), 4)
    _assert_same_fit(
        *_pairs_of_patients(stages, X_pairs, y_pairs, groups, weight, budget=6), X
    )
    # Pairs with the same rows and one outcome apart.
    first = np.vstack([X[5 * p : 5 * p + 5] for p in range(40)])
    X_pairs = np.repeat(first.reshape(40, 5, -1), 2, axis=0).reshape(400, -1)
    y_pairs = []
    for p in range(40):
        outcome = y[5 * p : 5 * p + 5]
        other = outcome.copy()
        other[p % 5] ^= 1
        y_pairs += [outcome, other]
    groups = np.repeat(np.arange(80), 5)
    _assert_same_fit(
        *_pairs_of_patients(
            stages, X_pairs, np.concatenate(y_pairs), groups, loss="log_loss"
        ),
        X,
    )


def test_a_zero_weight_copy_of_a_group_changes_no_fit():
    """A group of zero weight that tied with a patient re-keyed the patient,
    which moved the combiners' folds (expected_cost_ 7.46 -> 2.78)."""

    stages, X, y, groups = _grouped_three_stages()
    copy = np.arange(10, 20)  # group 1's rows, as a new group of weight 0

    def fit(X, y, groups, weight):
        return _fit_grouped_log_loss(stages, X, y, groups, weight)

    reference = fit(X, y, groups, np.ones(500))
    with_copy = fit(
        np.r_[X, X[copy]],
        np.r_[y, y[copy]],
        np.r_[groups, np.full(10, 99)],
        np.r_[np.ones(500), np.zeros(10)],
    )
    _assert_same_fit(reference, with_copy, X)


def test_unit_keys_take_no_sign_of_zero_and_no_rows():
    """-0.0 equals 0.0, but its bytes differ: the order of a group's rows
    chose which one keyed it (a target rounded to -0.0 near the centre of
    an absolute-error regressor moved expected_cost_ 1.3 -> 1.025)."""
    from skadaptive.policies._selection import unit_keys

    first = unit_keys(np.array([[0.0, 1.0], [-0.0, 1.0]]), np.array([0, 0]))
    second = unit_keys(np.array([[-0.0, 1.0], [0.0, 1.0]]), np.array([0, 0]))
    assert first == second
    assert unit_keys(np.zeros((0, 3)), np.zeros(0, dtype=int)) == []
