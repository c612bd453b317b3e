"""Behaviour of AdaptiveCascadeClassifier: routing, fitting, costs, budgets, search."""

import copy
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _budget_checks import assert_budget_spent_well
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import DataConversionWarning
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import _num_samples

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.metrics import (
    cheapest_within,
    make_average_cost_scorer,
    make_cost_aware_scorer,
)
from skadaptive.policies import DEFAULT_COST_WEIGHTS

# --------------------------------------------------------------------- helpers


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Wraps a classifier and records what reaches its ``fit`` and ``predict_proba``.

    With ``log_path`` every ``fit`` also appends a line to that file, which counts
    fits across processes and across clones.
    """

    def __init__(self, estimator=None, log_path=None):
        self.estimator = estimator
        self.log_path = log_path

    def fit(self, X, y, sample_weight=None):
        params = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.estimator_ = clone(self.estimator).fit(X, y, **params)
        self.classes_ = self.estimator_.classes_
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1
        self.fit_n_rows_ = _num_samples(X)
        self.fit_input_type_ = type(X)
        self.fit_sample_weight_ = sample_weight
        self.predict_inputs_ = []
        if self.log_path is not None:
            with open(self.log_path, "a") as log:
                log.write(f"{self.fit_n_rows_}\n")
        return self

    def predict_proba(self, X):
        self.predict_inputs_.append(X)
        return self.estimator_.predict_proba(X)


class LabelInFirstColumn(ClassifierMixin, BaseEstimator):
    """Always right: predicts the class stored in ``X[:, 0]``, with ``confidence``."""

    def __init__(self, confidence=0.9):
        self.confidence = confidence

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        n_classes = len(self.classes_)
        proba = np.full((len(X), n_classes), (1 - self.confidence) / (n_classes - 1))
        proba[np.arange(len(X)), X[:, 0].astype(int)] = self.confidence
        return proba


def _fit_log_lines(path):
    return Path(path).read_text().splitlines() if Path(path).exists() else []


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=400,
        n_features=10,
        n_informative=6,
        n_classes=3,
        random_state=0,
    )
    return X[:300], X[300:], y[:300], y[300:]


def _three_stages():
    return [
        ("nb", GaussianNB()),
        ("lr", LogisticRegression(max_iter=1000)),
        ("rf", RandomForestClassifier(n_estimators=30, random_state=0)),
    ]


def _two_stages():
    return [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
    ]


@pytest.fixture(scope="module")
def fitted(data):
    """A 3-stage cascade whose policy answers test rows at every stage."""
    X_train, X_test, y_train, _ = data
    cascade = AdaptiveCascadeClassifier(
        _three_stages(), costs=[1, 2, 10], cost_weight=0.01, cv=3
    ).fit(X_train, y_train)
    exit_counts = np.bincount(cascade.predict_exit(X_test), minlength=3)
    assert (exit_counts > 0).all(), exit_counts  # the tests below need every stage
    return cascade


# --------------------------------------------------------------------- routing


def test_each_stage_only_sees_the_rows_the_previous_stage_deferred(data):
    X_train, X_test, y_train, _ = data
    stages = [(name, RecordingClassifier(est)) for name, est in _three_stages()]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 2, 10], cost_weight=0.01, cv=3
    ).fit(X_train, y_train)
    for stage in cascade.estimators_:
        stage.predict_inputs_.clear()

    exit_stage = cascade.predict_exit(X_test)

    assert np.bincount(exit_stage, minlength=3).min() > 0
    for k, stage in enumerate(cascade.estimators_):
        (seen,) = stage.predict_inputs_  # one compacted call per stage
        assert_array_equal(seen, X_test[exit_stage >= k])


def test_a_stage_that_no_row_reaches_is_not_run(data):
    X_train, X_test, y_train, _ = data
    stages = [(name, RecordingClassifier(est)) for name, est in _two_stages()]
    # Deferring can never pay for itself: every row exits at the first stage.
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 100], cost_weight=10.0, cv=3
    ).fit(X_train, y_train)
    for stage in cascade.estimators_:
        stage.predict_inputs_.clear()

    assert_array_equal(cascade.predict_exit(X_test), 0)
    assert len(cascade.estimators_[0].predict_inputs_) == 1
    assert cascade.estimators_[1].predict_inputs_ == []


def test_route_predict_proba_predict_exit_and_predict_cost_agree(fitted, data):
    _, X_test, _, _ = data
    result = fitted.route(X_test)
    proba = fitted.predict_proba(X_test)
    exit_stage = fitted.predict_exit(X_test)

    assert_allclose(result.proba, proba)
    assert_array_equal(result.exit_stage, exit_stage)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(fitted.predict(X_test), fitted.classes_[proba.argmax(axis=1)])
    with np.errstate(divide="ignore"):
        assert_allclose(fitted.predict_log_proba(X_test), np.log(proba))
    assert_allclose(fitted.predict_cost(X_test), fitted.cumulative_costs_[exit_stage])
    assert_allclose(result.cost, fitted.cumulative_costs_[exit_stage])
    # Each row's probabilities are those of the stage that answered it.
    for k, stage in enumerate(fitted.estimators_):
        rows = exit_stage == k
        assert_allclose(proba[rows], stage.predict_proba(X_test[rows]))


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_batch_size_and_n_jobs_do_not_change_any_answer(
    fitted, data, batch_size, n_jobs
):
    _, X_test, _, _ = data
    expected = fitted.route(X_test)
    # Prediction-time parameters: change them on the fitted cascade.
    batched = copy.deepcopy(fitted).set_params(batch_size=batch_size, n_jobs=n_jobs)

    result = batched.route(X_test)

    assert_array_equal(result.exit_stage, expected.exit_stage)
    assert_allclose(result.proba, expected.proba, rtol=1e-12, atol=1e-15)
    assert_array_equal(batched.predict(X_test), fitted.predict(X_test))


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_no_stage_is_given_more_rows_at_once_than_batch_size(data, n_jobs):
    """batch_size bounds the rows a stage gets in one call (the memory bound
    it promises); a routing that ignored it answered the same and passed
    every test."""
    X_train, X_test, y_train, _ = data
    spy = RecordingClassifier(LogisticRegression(max_iter=1000))
    cascade = AdaptiveCascadeClassifier(
        [("spy", FrozenEstimator(spy.fit(X_train, y_train))), *_two_stages()[1:]],
        costs=[1, 4],
        cost_weight=0.0,
        cv=3,
    ).fit(X_train, y_train)
    spy.predict_inputs_ = []
    cascade.set_params(batch_size=30, n_jobs=n_jobs).predict(X_test)
    sizes = [len(rows) for rows in spy.predict_inputs_]
    assert sum(sizes) == len(X_test)  # the first stage sees every row once
    assert max(sizes) <= 30


@pytest.mark.parametrize("convert", [sp.csr_matrix, pd.DataFrame, list])
def test_batches_of_any_input_type_answer_as_one_batch(data, convert):
    X_train, X_test, y_train, _ = data
    if convert is list:
        convert = lambda X: [list(row) for row in X]  # noqa: E731
    cascade = AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3).fit(
        convert(X_train), y_train
    )
    expected = cascade.route(convert(X_test))
    assert len(np.unique(expected.exit_stage)) == 2
    for n_jobs in (None, 2):
        batched = copy.deepcopy(cascade).set_params(batch_size=7, n_jobs=n_jobs)
        result = batched.route(convert(X_test))
        assert_array_equal(result.exit_stage, expected.exit_stage)
        assert_allclose(result.proba, expected.proba, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ fitting


def test_frozen_stages_are_used_as_given_and_never_refitted(data):
    X_train, X_test, y_train, _ = data
    prefit = RecordingClassifier(LogisticRegression(max_iter=1000)).fit(
        X_train[:150], y_train[:150]
    )
    coef = prefit.estimator_.coef_.copy()
    frozen = FrozenEstimator(prefit)
    cascade = AdaptiveCascadeClassifier(
        [("lr", frozen), ("tree", DecisionTreeClassifier(random_state=0))],
        costs=[1, 5],
        cv=3,
    ).fit(X_train, y_train)

    assert cascade.estimators_[0] is frozen
    assert cascade.named_estimators_["lr"] is frozen
    assert prefit.n_fits_ == 1
    assert_array_equal(prefit.estimator_.coef_, coef)
    # The trainable stage was fitted here; the frozen one predicts as before.
    assert cascade.estimators_[1] is not cascade.estimators[1][1]
    assert_allclose(
        cascade.estimators_[0].predict_proba(X_test),
        prefit.estimator_.predict_proba(X_test),
    )


def test_frozen_stages_learn_the_policy_on_the_rows_given_to_fit(data):
    X_train, X_test, y_train, y_test = data
    stages = [
        (name, FrozenEstimator(clone(est).fit(X_train, y_train)))
        for name, est in _two_stages()
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 5], cost_weight=0.01)
    cascade.fit(X_test, y_test)

    # Every row given to fit is a policy row: held-out accuracy is the accuracy
    # on those rows of the stage that the policy picks for each of them.
    exit_stage = cascade.predict_exit(X_test)
    assert_allclose(cascade.exit_rates_, np.bincount(exit_stage, minlength=2) / 100)
    assert cascade.policy_rows_accuracy_ == pytest.approx(cascade.score(X_test, y_test))


@pytest.mark.parametrize(
    "cv, fold_rows",
    [
        (3, [200, 200, 200]),
        (0.25, [225]),
        (KFold(4, shuffle=True, random_state=0), [225] * 4),
        (StratifiedKFold(5), [240] * 5),
    ],
    ids=["int", "float", "KFold", "StratifiedKFold"],
)
def test_cv_sets_which_rows_the_stages_are_fitted_on(data, tmp_path, cv, fold_rows):
    X_train, _, y_train, _ = data
    log = tmp_path / "fits.log"
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", RecordingClassifier(LogisticRegression(), log_path=str(log))),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ],
        costs=[1, 5],
        cv=cv,
        random_state=0,
    ).fit(X_train, y_train)

    # One fit per fold to hold out probabilities, then one refit on every row.
    assert _fit_log_lines(log) == [str(n) for n in fold_rows + [300]]
    assert cascade.estimators_[0].fit_n_rows_ == 300
    # The policy rows are the test folds: all rows, or the held-out fraction.
    n_policy_rows = 75 if cv == 0.25 else 300
    counts = cascade.exit_rates_ * n_policy_rows
    assert_allclose(counts, np.round(counts), atol=1e-9)


@pytest.mark.parametrize(
    "cv", [0.25, ShuffleSplit(n_splits=1, test_size=0.3, random_state=0)]
)
def test_refit_false_keeps_the_stages_the_policy_rows_were_held_out_from(
    data, tmp_path, cv
):
    """With one split and ``refit=False`` the stages that gave the held-out
    probabilities answer new rows: on the policy rows the fitted cascade
    takes exactly the exits, cost and accuracy the fit reports there."""
    X_train, _, y_train, _ = data
    log = tmp_path / "fits.log"
    stages = [
        ("lr", RecordingClassifier(LogisticRegression(), log_path=str(log))),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], budget=3.0, cv=cv, refit=False, random_state=0
    ).fit(X_train, y_train)
    # The policy rows: the split's test rows.
    if cv == 0.25:
        train, test = train_test_split(
            np.arange(300), test_size=0.25, stratify=y_train, random_state=0
        )
    else:
        train, test = next(cv.split(X_train, y_train))
    # One fit per stage, on the split's training rows; no refit.
    assert _fit_log_lines(log) == [str(len(train))]
    assert cascade.estimators_[0].fit_n_rows_ == len(train)
    routed = cascade.route(X_train[test])
    rates = np.bincount(routed.exit_stage, minlength=2) / len(test)
    assert_allclose(rates, cascade.exit_rates_)
    assert routed.cost.mean() == pytest.approx(cascade.policy_rows_cost_)
    assert cascade.score(X_train[test], y_train[test]) == pytest.approx(
        cascade.policy_rows_accuracy_
    )
    assert cascade.policy_rows_cost_ <= 3.0


class _SurerWithMoreRows(ClassifierMixin, BaseEstimator):
    """Class 1 where column 0 is positive, the surer the more rows it was
    fitted on (as many models grow surer with data): a stage refitted on all
    rows is surer on new rows than its folds were on the policy rows."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.scale_ = len(y) / 50.0
        return self

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-self.scale_ * np.asarray(X)[:, 0]))
        return np.column_stack([1 - p, p])


class _Sure(_SurerWithMoreRows):
    def predict_proba(self, X):
        p = np.where(np.asarray(X)[:, 1] > 0, 0.99, 0.01)
        return np.column_stack([1 - p, p])


def _surer_with_more_rows(n_rows, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    X[:, 1] = X[:, 0] + 0.3 * rng.normal(size=n_rows)
    return X, (X[:, 1] > 0).astype(int)


def test_refit_false_with_several_splits_keeps_the_fold_models(tmp_path):
    """With ``cv=3`` and ``refit=False`` each stage keeps its three fold
    models (fitted once each, no refit, each row held out in the fold of a
    hash of its content); a new row is answered by the fold model of that
    hash, whatever its batch, order or container."""
    from skadaptive.stages._cross_fitted import CrossFitted, content_folds

    X, y = _surer_with_more_rows(600, 0)
    X_new, _ = _surer_with_more_rows(500, 1)
    log = tmp_path / "fits.log"
    stages = [
        ("lr", RecordingClassifier(LogisticRegression(), log_path=str(log))),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], budget=3.0, cv=3, refit=False, random_state=0
    ).fit(X, y)
    # Each row held out in the fold its content hashes to; no refit.
    held_out = np.bincount(content_folds(X, 3)[0], minlength=3)
    assert sorted(_fit_log_lines(log)) == sorted(str(600 - n) for n in held_out)
    for stage in cascade.estimators_:
        assert isinstance(stage, CrossFitted) and len(stage.models) == 3
    lr = cascade.estimators_[0]
    folds = lr.fold_of(X_new)
    assert len(np.unique(folds)) == 3
    expected = np.vstack(
        [lr.models[f].predict_proba(row[None]) for f, row in zip(folds, X_new)]
    )
    assert_allclose(lr.predict_proba(X_new), expected)
    proba = cascade.predict_proba(X_new)
    order = np.random.default_rng(0).permutation(len(X_new))
    assert_allclose(cascade.predict_proba(X_new[order]), proba[order])
    assert_allclose(cascade.predict_proba(pd.DataFrame(X_new)), proba)
    assert_allclose(cascade.predict_proba(sp.csr_matrix(X_new)), proba)
    single = clone(cascade).set_params(batch_size=7).fit(X, y)
    assert_allclose(single.predict_proba(X_new), proba)
    assert_allclose(pickle.loads(pickle.dumps(cascade)).predict_proba(X_new), proba)


def test_fold_models_spend_on_new_rows_what_the_fit_expects():
    """A first stage surer the more rows it was fitted on: refitted on all
    rows it is surer on new rows than its folds were on the policy rows, so
    fewer rows go on and the cost is a quarter below the expected one;
    its fold models kept answer new rows as the policy rows were answered,
    and the cost on them is what ``expected_cost_`` says."""
    X, y = _surer_with_more_rows(600, 0)
    X_new, _ = _surer_with_more_rows(20_000, 1)
    stages = [("surer", _SurerWithMoreRows()), ("sure", _Sure())]
    fits = {
        refit: AdaptiveCascadeClassifier(
            stages, costs=[1, 10], budget=4.0, cv=3, refit=refit, random_state=0
        ).fit(X, y)
        for refit in (True, False)
    }
    assert max(fit.expected_cost_ for fit in fits.values()) <= 4.0
    refitted = fits[True].predict_cost(X_new).mean()
    kept = fits[False].predict_cost(X_new).mean()
    assert refitted < 0.85 * fits[True].expected_cost_
    # (3.83 against 4.0: the fit spends the budget on policy rows whose
    # answers tie in accuracy, a few of which go on less often on new rows.)
    assert kept == pytest.approx(fits[False].expected_cost_, rel=0.05)


def test_fold_models_answer_rows_seen_many_times_as_the_policy_rows():
    """A hundred distinct rows, each seen many times: all copies of a row
    are held out in the fold its content hashes to, and its new copies are
    answered by that fold's model, so each row exits on new rows where its
    copies did on the policy rows (the cost differs only by how often each
    row comes). With stratified folds, copies held out in three folds got
    three models' answers, and new copies only one of them."""

    def rows(n_rows, seed):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 10, size=(n_rows, 2)).astype(float)
        curve = np.sin(X[:, 0] / 2) + np.cos(X[:, 1] / 3)
        share = np.where(curve > 0.3, 0.9, 0.15)
        return X, (rng.uniform(size=n_rows) < share).astype(int)

    X, y = rows(3000, 0)
    stages = [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(min_samples_leaf=5, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], budget=3.0, cv=3, refit=False, random_state=0
    ).fit(X, y)
    assert 0.05 < cascade.exit_rates_[1] < 0.95
    # The policy rows' own copies, new: every row exits where it did.
    policy = cascade._policy_rows()[0]
    new_exits = cascade.predict_exit(X)
    assert_array_equal(new_exits, cascade.policy_.exit_stage(policy))
    X_new, _ = rows(20_000, 1)
    assert cascade.predict_cost(X_new).mean() == pytest.approx(
        cascade.policy_rows_cost_, abs=0.01 * 3.0
    )


def test_fold_models_need_an_int_cv_for_several_splits():
    X, y = _surer_with_more_rows(300, 0)
    cascade = AdaptiveCascadeClassifier(
        _two_stages(), costs=[1, 5], cv=KFold(3), refit=False
    )
    with pytest.raises(ValueError, match="only for an int cv"):
        cascade.fit(X, y)


def test_costs_auto_measures_positive_seconds_per_row(data):
    X_train, _, y_train, _ = data
    cascade = AdaptiveCascadeClassifier(_two_stages(), costs="auto", cv=3)
    cascade.fit(X_train, y_train)

    assert cascade.costs_.shape == (2,)
    assert np.isfinite(cascade.costs_).all()
    assert (cascade.costs_ > 0).all()
    assert (cascade.costs_ < 1e-2).all()  # seconds per row of a tiny model
    assert_allclose(cascade.cumulative_costs_, np.cumsum(cascade.costs_))
    full = cascade.cumulative_costs_[-1]
    assert cascade.costs_[0] * (1 - 1e-12) <= cascade.expected_cost_ <= full


def test_measured_costs_passed_back_reproduce_the_fit(data):
    X_train, X_test, y_train, _ = data
    measured = AdaptiveCascadeClassifier(_two_stages(), costs="auto", cv=3)
    measured.fit(X_train, y_train)
    parts = {"per_call": measured.costs_per_call_, "per_row": measured.costs_per_row_}
    replay = clone(measured).set_params(costs=parts)
    replay.fit(X_train, y_train)

    assert_array_equal(replay.costs_, measured.costs_)
    assert_array_equal(replay.costs_per_call_, measured.costs_per_call_)
    assert_array_equal(replay.predict_exit(X_test), measured.predict_exit(X_test))
    assert replay.expected_cost_ == measured.expected_cost_


@pytest.mark.budget
@pytest.mark.parametrize("budget", [1.5, 3.0, 6.0, 9.0])
def test_budget_is_met_on_the_policy_rows_and_about_met_on_new_rows(data, budget):
    X_train, X_test, y_train, _ = data
    cascade = AdaptiveCascadeClassifier(
        _three_stages(), costs=[1, 2, 10], budget=budget, cv=3
    ).fit(X_train, y_train)

    assert_budget_spent_well(cascade)
    assert cascade.policy_rows_cost_ == pytest.approx(
        cascade.exit_rates_ @ cascade.cumulative_costs_
    )
    assert cascade.predict_cost(X_test).mean() <= 1.25 * budget


@pytest.mark.budget
def test_budget_picks_a_policy_at_least_as_accurate_as_the_first_stage(data):
    X_train, _, y_train, _ = data
    for budget in (1.0, 2.0, 4.0, 8.0):
        cascade = AdaptiveCascadeClassifier(
            _three_stages(), costs=[1, 2, 10], budget=budget, cv=3
        ).fit(X_train, y_train)
        assert_budget_spent_well(cascade)
        assert cascade.policy_rows_accuracy_ >= cascade.stage_accuracies_[0]


@pytest.mark.budget
@pytest.mark.parametrize("loss", ["zero_one", "log_loss"])
def test_budget_defers_rows_when_the_first_stage_is_the_dear_one(data, loss):
    # A costly first stage and a cheap second one: the budget affords 40 % of
    # the rows at the second stage, which no cost weight on the frontier's
    # grid would defer.
    X_train, X_test, y_train, y_test = data
    two_features = make_column_transformer(("passthrough", [0, 1]))
    weak = make_pipeline(two_features, LogisticRegression()).fit(X_train, y_train)
    strong = RandomForestClassifier(random_state=0).fit(X_train, y_train)
    cascade = AdaptiveCascadeClassifier(
        [("weak", FrozenEstimator(weak)), ("strong", FrozenEstimator(strong))],
        costs=[99, 1],
        budget=99.4,
        loss=loss,
    ).fit(X_test, y_test)
    assert_budget_spent_well(cascade)
    assert 99.3 < cascade.policy_rows_cost_ <= 99.4
    assert cascade.policy_rows_accuracy_ > cascade.stage_accuracies_[0]


@pytest.mark.budget
def test_budget_ignores_cost_weight(data):
    X_train, X_test, y_train, _ = data
    with pytest.warns(UserWarning, match="cost_weight=0.0 is ignored"):
        first = AdaptiveCascadeClassifier(
            _two_stages(), costs=[1, 4], budget=2.0, cost_weight=0.0, cv=3
        ).fit(X_train, y_train)
    with pytest.warns(UserWarning, match="cost_weight=5.0 is ignored"):
        second = clone(first).set_params(cost_weight=5.0).fit(X_train, y_train)
    assert_array_equal(first.predict_exit(X_test), second.predict_exit(X_test))
    assert_budget_spent_well(first)


def test_frontier_traces_the_cost_accuracy_trade_off(fitted):
    frontier = fitted.frontier_
    n_points, n_stages = len(DEFAULT_COST_WEIGHTS), 3

    assert set(frontier) == {
        "cost_weight",
        "accuracy",
        "expected_cost",
        "normalized_cost",
        *(f"exit_rate_{k}" for k in range(n_stages)),
    }
    assert_array_equal(frontier["cost_weight"], DEFAULT_COST_WEIGHTS)
    for key in ("accuracy", "expected_cost", "normalized_cost"):
        assert frontier[key].shape == (n_points,)
    exit_rates = np.column_stack([frontier[f"exit_rate_{k}"] for k in range(n_stages)])
    assert exit_rates.shape == (n_points, n_stages)
    assert_allclose(exit_rates.sum(axis=1), 1.0)
    assert_allclose(frontier["expected_cost"], exit_rates @ fitted.cumulative_costs_)
    assert_allclose(
        frontier["normalized_cost"],
        frontier["expected_cost"] / fitted.cumulative_costs_[-1],
    )
    assert (frontier["expected_cost"] >= fitted.cumulative_costs_[0] - 1e-12).all()
    assert (frontier["expected_cost"] <= fitted.cumulative_costs_[-1] + 1e-12).all()

    # Each point is learned for its own weight lam, with thresholds tuned on these
    # rows; "every row answers at stage k" is among the options each rule weighs,
    # so no point is worse in its objective than any single stage alone.
    normalized = fitted.cumulative_costs_ / fitted.cumulative_costs_[-1]
    for lam, accuracy, cost in zip(
        frontier["cost_weight"], frontier["accuracy"], frontier["normalized_cost"]
    ):
        single_stage = fitted.stage_accuracies_ - lam * normalized
        assert accuracy - lam * cost >= single_stage.max() - 1e-9
    # In particular: no weight on cost is at least as accurate as any stage.
    assert frontier["cost_weight"][0] == 0
    assert frontier["accuracy"][0] >= fitted.stage_accuracies_.max() - 1e-12
    # At the largest weight every stage costs more than the 0/1 loss it could
    # save, so every row answers at the first stage.
    assert frontier["cost_weight"][-1] * np.diff(normalized).min() > 1
    assert exit_rates[-1, 0] == 1.0
    assert frontier["expected_cost"][-1] == pytest.approx(fitted.cumulative_costs_[0])


def test_frontier_loads_into_a_dataframe_in_one_call(fitted):
    frame = pd.DataFrame(fitted.frontier_)
    n_stages = len(fitted.cumulative_costs_)
    rates = [f"exit_rate_{k}" for k in range(n_stages)]
    assert list(frame.columns) == [
        "cost_weight",
        "accuracy",
        "normalized_cost",
        "expected_cost",
        *rates,
    ]
    assert len(frame) == len(DEFAULT_COST_WEIGHTS)
    assert (frame.dtypes == np.float64).all()
    assert_allclose(frame[rates].sum(axis=1), 1.0)


def test_fitted_attributes_describe_the_held_out_rows(fitted):
    assert fitted.policy_.n_stages == 3
    assert fitted.cost_weight_ == fitted.cost_weight
    assert fitted.stage_accuracies_.shape == (3,)
    assert_allclose(fitted.exit_rates_.sum(), 1.0)
    assert fitted.oracle_accuracy_ >= fitted.stage_accuracies_.max()
    assert fitted.oracle_accuracy_ >= fitted.policy_rows_accuracy_
    assert fitted.oracle_accuracy_ >= fitted.expected_accuracy_
    assert fitted.cumulative_costs_[0] <= fitted.oracle_cost_
    assert fitted.oracle_cost_ <= fitted.cumulative_costs_[-1]


# ------------------------------------------------------------------- policies


def _label_data(n_rows=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    return np.column_stack([y, rng.normal(size=(n_rows, 2))]), y


@pytest.mark.parametrize("loss, answering_stage", [("zero_one", 0), ("log_loss", 1)])
def test_log_loss_pays_for_confidence_that_zero_one_ignores(loss, answering_stage):
    # Both stages are always right; the first is barely sure (0.51), the second
    # sure (0.99). Only the log loss sees a reason to pay for the second.
    X, y = _label_data()
    cascade = AdaptiveCascadeClassifier(
        [
            ("unsure", LabelInFirstColumn(confidence=0.51)),
            ("sure", LabelInFirstColumn(confidence=0.99)),
        ],
        costs=[1, 4],
        cost_weight=0.01,
        loss=loss,
        cv=3,
    ).fit(X, y)
    assert_array_equal(cascade.predict_exit(X), answering_stage)
    assert cascade.score(X, y) == 1.0


def test_constant_policy_sends_every_row_to_the_same_stage(data):
    X_train, X_test, y_train, _ = data
    for cost_weight in (0.0, 0.05, 1.0):
        cascade = AdaptiveCascadeClassifier(
            _three_stages(),
            costs=[1, 2, 10],
            cost_weight=cost_weight,
            policy="constant",
            cv=3,
        ).fit(X_train, y_train)
        exit_stage = cascade.predict_exit(X_test)
        assert len(np.unique(exit_stage)) == 1
        assert cascade.exit_rates_.max() == 1.0
        assert all(rule.learner is None for rule in cascade.policy_.rules)
        # The one stage chosen is the best single stage for this trade-off.
        normalized = cascade.cumulative_costs_ / cascade.cumulative_costs_[-1]
        risk = 1 - cascade.stage_accuracies_ + cost_weight * normalized
        assert exit_stage[0] == np.flatnonzero(risk == risk.min())[-1]


def test_a_classifier_can_serve_as_the_policy(data):
    X_train, X_test, y_train, _ = data
    policy = DecisionTreeClassifier(max_depth=2, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        _three_stages(), costs=[1, 2, 10], cost_weight=0.01, policy=policy, cv=3
    ).fit(X_train, y_train)

    learners = [rule.learner for rule in cascade.policy_.rules]
    assert all(isinstance(learner, DecisionTreeClassifier) for learner in learners)
    assert all(learner is not policy for learner in learners)
    assert not hasattr(policy, "tree_")  # the given policy is cloned, not fitted
    assert learners[0].tree_.max_depth <= 2
    exit_stage = cascade.predict_exit(X_test)
    assert len(np.unique(exit_stage)) > 1


def test_tune_threshold_never_raises_the_held_out_risk(data):
    X_train, _, y_train, _ = data
    cascades = {
        tune: AdaptiveCascadeClassifier(
            _two_stages(), costs=[1, 4], cost_weight=0.05, tune_threshold=tune, cv=3
        ).fit(X_train, y_train)
        for tune in (True, False)
    }

    def risk(cascade):
        normalized_cost = cascade.policy_rows_cost_ / cascade.cumulative_costs_[-1]
        return 1 - cascade.policy_rows_accuracy_ + 0.05 * normalized_cost

    assert risk(cascades[True]) <= risk(cascades[False]) + 1e-12


@pytest.mark.parametrize(
    "features", ["confidence", "history", "probabilities", "classes"]
)
def test_only_history_features_look_at_earlier_stages(data, features):
    X_train, X_test, y_train, y_test = data
    cascade = AdaptiveCascadeClassifier(
        _three_stages(),
        costs=[1, 2, 10],
        policy_features=features,
        cv=3,
    ).fit(X_train, y_train)
    assert cascade.score(X_test, y_test) > 0.55

    # The rule after the second stage, given other first-stage probabilities.
    p0, p1 = (stage.predict_proba(X_test) for stage in cascade.estimators_[:2])
    rule = cascade.policy_.rules[1]
    assert rule.learner is not None
    other_p0 = np.roll(p0, 1, axis=1)
    changed = rule.score([other_p0, p1]) != rule.score([p0, p1])
    assert changed.any() == (features != "confidence")


# -------------------------------------------------------------- sample_weight


def _weights(n_rows, seed=0):
    return np.random.default_rng(seed).integers(0, 4, n_rows).astype(float)


def test_sample_weight_reaches_the_stages_that_accept_it(data):
    X_train, _, y_train, _ = data
    w = _weights(len(y_train))
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression(max_iter=1000)),
            ("rec", RecordingClassifier(DecisionTreeClassifier(random_state=0))),
        ],
        costs=[1, 4],
        cv=3,
    ).fit(X_train, y_train, sample_weight=w)

    weighted = LogisticRegression(max_iter=1000).fit(X_train, y_train, w)
    assert_allclose(cascade.estimators_[0].coef_, weighted.coef_, rtol=1e-6)
    assert_array_equal(cascade.estimators_[1].fit_sample_weight_, w)


def test_sample_weight_warns_for_a_stage_that_cannot_take_it(data):
    X_train, _, y_train, _ = data
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression(max_iter=1000)), ("knn", KNeighborsClassifier())],
        costs=[1, 4],
        cv=3,
    )
    with pytest.warns(UserWarning, match="'knn'.*does not accept sample_weight"):
        cascade.fit(X_train, y_train, sample_weight=_weights(len(y_train)))


@pytest.mark.parametrize("requested", [True, False])
def test_sample_weight_is_routed_as_requested_with_metadata_routing(data, requested):
    X_train, _, y_train, _ = data
    w = _weights(len(y_train))
    with config_context(enable_metadata_routing=True):
        lr = LogisticRegression(max_iter=1000).set_fit_request(sample_weight=requested)
        rec = RecordingClassifier(DecisionTreeClassifier(random_state=0))
        rec.set_fit_request(sample_weight=requested)
        cascade = AdaptiveCascadeClassifier(
            [("lr", lr), ("rec", rec)], costs=[1, 4], cv=3
        ).fit(X_train, y_train, sample_weight=w)

    expected = LogisticRegression(max_iter=1000).fit(
        X_train, y_train, sample_weight=w if requested else None
    )
    assert_allclose(cascade.estimators_[0].coef_, expected.coef_, rtol=1e-6)
    if requested:
        assert_array_equal(cascade.estimators_[1].fit_sample_weight_, w)
    else:
        assert cascade.estimators_[1].fit_sample_weight_ is None


def test_policy_uses_sample_weight_with_metadata_routing(data, frozen_stages):
    _, X_test, _, y_test = data
    w = _weights(len(y_test))
    with config_context(enable_metadata_routing=True):
        cascade = AdaptiveCascadeClassifier(frozen_stages, costs=[1, 2, 10])
        cascade.fit(X_test, y_test, sample_weight=w)

    correct = np.stack([stage.predict(X_test) == y_test for _, stage in frozen_stages])
    assert_allclose(cascade.stage_accuracies_, correct @ w / w.sum())


@pytest.fixture(scope="module")
def frozen_stages(data):
    X_train, _, y_train, _ = data
    return [
        (name, FrozenEstimator(clone(est).fit(X_train, y_train)))
        for name, est in _three_stages()
    ]


@pytest.mark.parametrize("policy", ["constant", "linear"])
def test_sample_weight_weighs_the_policy_rows(data, frozen_stages, policy):
    _, X_test, _, y_test = data
    w = _weights(len(y_test))
    cascade = AdaptiveCascadeClassifier(
        frozen_stages, costs=[1, 2, 10], policy=policy, cost_weight=0.01
    )
    weighted = clone(cascade).fit(X_test, y_test, sample_weight=w)
    unweighted = clone(cascade).fit(X_test, y_test)

    correct = np.stack(
        [stage.predict(X_test) == y_test for stage in weighted.estimators_]
    )
    assert_allclose(weighted.stage_accuracies_, correct @ w / w.sum())
    assert not np.allclose(weighted.stage_accuracies_, unweighted.stage_accuracies_)
    exit_stage = weighted.predict_exit(X_test)
    assert_allclose(
        weighted.exit_rates_, np.bincount(exit_stage, weights=w, minlength=3) / w.sum()
    )
    answered = weighted.predict(X_test) == y_test
    assert weighted.policy_rows_accuracy_ == pytest.approx(answered @ w / w.sum())


@pytest.mark.parametrize(
    "policy, cost_weight",
    # The learned families at a cost weight too: their rules' standardisation
    # and EENet's scorers could drop the weights and pass (only the budget
    # path was checked for them).
    [("constant", 0.01), ("linear", 0.05), ("eenet", 0.05)],
)
def test_integer_sample_weight_equals_repeating_rows_for_the_policy(
    data, frozen_stages, policy, cost_weight
):
    _, X_test, _, y_test = data
    w = _weights(len(y_test))
    repeat = np.repeat(np.arange(len(y_test)), w.astype(int))
    cascade = AdaptiveCascadeClassifier(
        frozen_stages, costs=[1, 2, 10], policy=policy, cost_weight=cost_weight
    )
    weighted = clone(cascade).fit(X_test, y_test, sample_weight=w)
    repeated = clone(cascade).fit(X_test[repeat], y_test[repeat])

    for attr in (
        "policy_rows_accuracy_",
        "policy_rows_cost_",
        "expected_accuracy_",
        "expected_cost_",
        "oracle_accuracy_",
    ):
        assert getattr(weighted, attr) == pytest.approx(getattr(repeated, attr))
    assert_allclose(weighted.exit_rates_, repeated.exit_rates_)
    assert_allclose(weighted.stage_accuracies_, repeated.stage_accuracies_)
    for key in ("accuracy", "expected_cost"):
        assert_allclose(weighted.frontier_[key], repeated.frontier_[key])


# ------------------------------------------------------------- composition


def test_cascade_works_inside_a_pipeline(data):
    X_train, X_test, y_train, y_test = data
    pipe = make_pipeline(
        StandardScaler(),
        AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3),
    ).fit(X_train, y_train)
    cascade = pipe[-1]
    X_scaled = pipe[0].transform(X_test)

    assert_array_equal(pipe.predict(X_test), cascade.predict(X_scaled))
    assert_allclose(pipe.predict_proba(X_test), cascade.predict_proba(X_scaled))
    assert pipe.score(X_test, y_test) > 0.55
    scorer = make_cost_aware_scorer(0.1)
    expected = cascade.score(X_scaled, y_test) - 0.1 * (
        cascade.predict_cost(X_scaled).mean() / cascade.cumulative_costs_[-1]
    )
    assert scorer(pipe, X_test, y_test) == pytest.approx(expected)


def test_cost_scorers_look_through_a_fitted_search_and_a_frozen_estimator(data):
    """Nested cross-validation scored a GridSearchCV: the scorer said it did
    not report per-row costs, and cross_val_score gave NaN with warnings."""
    X_train, X_test, y_train, y_test = data
    cascade = AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3)
    search = GridSearchCV(cascade, {"cost_weight": [0.0, 0.1]}, cv=2)
    scorer = make_cost_aware_scorer(0.1)
    search.fit(X_train, y_train)
    expected = scorer(search.best_estimator_, X_test, y_test)
    assert scorer(search, X_test, y_test) == expected
    assert scorer(FrozenEstimator(search.best_estimator_), X_test, y_test) == expected
    nested = cross_val_score(search, X_train, y_train, cv=2, scoring=scorer)
    assert np.isfinite(nested).all()
    unrefitted = GridSearchCV(cascade, {"cost_weight": [0.0]}, cv=2, refit=False)
    with pytest.raises(TypeError, match="refit=False: it has no best_estimator_"):
        scorer(unrefitted.fit(X_train, y_train), X_test, y_test)


def test_pipeline_routes_sample_weight_to_a_cascade_that_requests_it(data):
    X_train, _, y_train, _ = data
    w = _weights(len(y_train))
    with config_context(enable_metadata_routing=True):
        rec = RecordingClassifier(LogisticRegression(max_iter=1000))
        tree = DecisionTreeClassifier(random_state=0)
        cascade = AdaptiveCascadeClassifier(
            [
                ("rec", rec.set_fit_request(sample_weight=True)),
                ("tree", tree.set_fit_request(sample_weight=False)),
            ],
            costs=[1, 4],
            cv=3,
        )
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            cascade.set_fit_request(sample_weight=True),
        )
        pipe.fit(X_train, y_train, sample_weight=w)
    assert_array_equal(pipe[-1].estimators_[0].fit_sample_weight_, w)


def test_grid_search_over_cost_weight_with_a_cost_aware_scorer(data):
    X_train, X_test, y_train, y_test = data
    grid = [0.0, 0.02, 0.5]
    scorer = make_cost_aware_scorer(0.05)
    search = GridSearchCV(
        AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3),
        {"cost_weight": grid},
        scoring=scorer,
        cv=3,
        n_jobs=2,
    ).fit(X_train, y_train)

    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert search.best_params_["cost_weight"] == grid[int(np.argmax(scores))]
    best = search.best_estimator_
    assert best.cost_weight == search.best_params_["cost_weight"]
    cost = best.predict_cost(X_test).mean() / best.cumulative_costs_[-1]
    expected = best.score(X_test, y_test) - 0.05 * cost
    assert search.score(X_test, y_test) == pytest.approx(expected)


@pytest.mark.parametrize("cost_weight", [0.05, None])
def test_cost_scorers_weigh_a_row_as_its_copies(data, cost_weight):
    """Integer sample weights score as repeated rows, accuracy and cost both
    (make_average_cost_scorer when cost_weight is None)."""
    from skadaptive.metrics import make_average_cost_scorer

    X_train, X_test, y_train, y_test = data
    cascade = AdaptiveCascadeClassifier(
        _two_stages(), costs=[1, 4], cv=3, random_state=0
    ).fit(X_train, y_train)
    scorer = (
        make_average_cost_scorer()
        if cost_weight is None
        else make_cost_aware_scorer(cost_weight)
    )
    X, y = X_test[:200], y_test[:200]
    weight = np.random.default_rng(0).integers(0, 4, len(y))
    # Weight on the rows the cascade gets wrong and on those it gets right.
    assert len(set(cascade.predict(X)[weight > 0] == y[weight > 0])) == 2
    weighted = scorer(cascade, X, y, sample_weight=weight)
    repeated = scorer(cascade, np.repeat(X, weight, axis=0), np.repeat(y, weight))
    assert weighted == pytest.approx(repeated)
    assert weighted != pytest.approx(scorer(cascade, X, y))
    if cost_weight is None:  # the cost alone reads no labels (they raised)
        assert scorer(cascade, X, None, sample_weight=weight) == weighted
    else:
        with pytest.raises(ValueError, match="make_average_cost_scorer scores the"):
            scorer(cascade, X, None)


def test_grid_search_refits_the_cheapest_candidate_within_tolerance(data):
    X_train, _, y_train, _ = data
    grid = [0.0, 0.01, 0.05, 0.2, 10.0]
    search = GridSearchCV(
        AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3),
        {"cost_weight": grid},
        scoring={
            "accuracy": "accuracy",
            "neg_average_cost": make_average_cost_scorer(),
        },
        refit=cheapest_within(0.02),
        cv=3,
        n_jobs=2,
    ).fit(X_train, y_train)

    accuracy = search.cv_results_["mean_test_accuracy"]
    cheapness = search.cv_results_["mean_test_neg_average_cost"]
    acceptable = np.flatnonzero(accuracy >= accuracy.max() - 0.02)
    expected = acceptable[np.argmax(cheapness[acceptable])]
    assert search.best_index_ == expected
    assert search.best_estimator_.cost_weight == grid[expected]
    # At cost_weight=10 every row answers at the first stage (1 / 5 of the cost).
    assert cheapness[-1] == pytest.approx(-0.2)
    assert cheapness.max() == cheapness[-1]


def test_memory_caches_stage_fits_across_policy_parameters(data, tmp_path):
    X_train, X_test, y_train, _ = data
    log = tmp_path / "fits.log"
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", RecordingClassifier(LogisticRegression(), log_path=str(log))),
            ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ],
        costs=[1, 4],
        cv=3,
        memory=str(tmp_path / "cache"),
    )
    grid = {
        "cost_weight": [0.0, 0.01, 0.1, 1.0],
        "policy": ["linear", "constant"],
        # A prediction parameter: with given costs nothing is timed, so it is
        # no reason to fit the stages again (it was part of the cache key).
        "batch_size": [None, 7],
    }
    search = GridSearchCV(cascade, grid, cv=2, n_jobs=1).fit(X_train, y_train)

    # 2 outer folds and the final refit, each 3 inner folds and a refit, once:
    # not once per candidate (16 x 2 x 4 + 4 = 132 fits without memory).
    assert len(_fit_log_lines(log)) == 3 * 4
    assert any((tmp_path / "cache").rglob("output.pkl"))
    # Changing a stage invalidates the cache.
    changed = clone(search.best_estimator_).set_params(
        estimators=[
            ("lr", RecordingClassifier(LogisticRegression(C=0.1), log_path=str(log))),
            cascade.estimators[1],
        ]
    )
    changed.fit(X_train, y_train)
    assert len(_fit_log_lines(log)) == 3 * 4 + 4
    assert changed.predict(X_test).shape == (100,)


def test_memory_gives_the_same_cascade_as_no_memory(data, tmp_path):
    X_train, X_test, y_train, _ = data
    plain = AdaptiveCascadeClassifier(_two_stages(), costs=[1, 4], cv=3)
    plain.fit(X_train, y_train)
    cached = clone(plain).set_params(memory=str(tmp_path))
    for _ in range(2):  # computed, then loaded from the cache
        cached.fit(X_train, y_train)
        assert_array_equal(cached.predict_exit(X_test), plain.predict_exit(X_test))
        assert_allclose(cached.predict_proba(X_test), plain.predict_proba(X_test))


def test_clone_refits_to_the_same_cascade(fitted, data):
    X_train, X_test, y_train, _ = data
    refitted = clone(fitted).fit(X_train, y_train)
    assert not hasattr(clone(fitted), "policy_")
    assert_array_equal(refitted.predict_exit(X_test), fitted.predict_exit(X_test))
    assert_allclose(refitted.predict_proba(X_test), fitted.predict_proba(X_test))


def test_pickle_and_joblib_round_trips_predict_the_same(fitted, data, tmp_path):
    _, X_test, _, _ = data
    unpickled = pickle.loads(pickle.dumps(fitted))
    joblib.dump(fitted, tmp_path / "cascade.joblib")
    loaded = joblib.load(tmp_path / "cascade.joblib")
    for restored in (unpickled, loaded):
        assert_array_equal(restored.predict(X_test), fitted.predict(X_test))
        assert_array_equal(restored.predict_exit(X_test), fitted.predict_exit(X_test))
        assert_allclose(restored.predict_proba(X_test), fitted.predict_proba(X_test))


# --------------------------------------------------------- X as it is given


def test_dataframe_reaches_the_stages_with_its_column_names(data):
    X_train, X_test, y_train, y_test = data
    columns = [f"f{i}" for i in range(X_train.shape[1])]
    df_train = pd.DataFrame(X_train, columns=columns)
    df_test = pd.DataFrame(X_test, columns=columns)
    by_name = make_pipeline(
        make_column_transformer((StandardScaler(), columns[:6])),
        LogisticRegression(max_iter=1000),
    )
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr_by_name", by_name),
            ("rec", RecordingClassifier(DecisionTreeClassifier(random_state=0))),
        ],
        costs=[1, 4],
        cv=3,
    ).fit(df_train, y_train)

    assert_array_equal(cascade.feature_names_in_, columns)
    assert cascade.n_features_in_ == 10
    assert cascade.estimators_[1].fit_input_type_ is pd.DataFrame
    cascade.estimators_[1].predict_inputs_.clear()
    # The first stage selects columns by name: it needs the DataFrame too.
    assert cascade.score(df_test, y_test) > 0.5
    (deferred,) = cascade.estimators_[1].predict_inputs_
    assert isinstance(deferred, pd.DataFrame)
    assert list(deferred.columns) == columns


@pytest.mark.parametrize("sparse_format", ["csr", "csc", "coo"])
def test_sparse_input_reaches_the_stages_sparse(data, sparse_format):
    X_train, X_test, y_train, _ = data
    cascade = AdaptiveCascadeClassifier(
        [
            ("rec", RecordingClassifier(LogisticRegression(max_iter=1000))),
            ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
        ],
        costs=[1, 4],
        cv=3,
    ).fit(sp.coo_array(X_train).asformat(sparse_format), y_train)
    dense = clone(cascade).fit(X_train, y_train)

    assert issubclass(cascade.estimators_[0].fit_input_type_, sp.sparray)
    X_sparse = sp.coo_array(X_test).asformat(sparse_format)
    assert_array_equal(cascade.predict(X_sparse), dense.predict(X_test))
    assert_allclose(cascade.predict_proba(X_sparse), dense.predict_proba(X_test))


def _texts(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    topics = [
        ["goal", "match", "team", "score", "league", "coach"],
        ["stock", "market", "price", "bank", "trade", "profit"],
        ["rain", "storm", "cloud", "wind", "sunny", "forecast"],
    ]
    common = ["the", "a", "today", "new", "report", "said", "big", "small"]
    y = rng.integers(0, 3, n_rows)
    texts = []
    for label in y:
        n_topic = rng.integers(0, 4)  # some texts carry little topic signal
        words = list(rng.choice(topics[label], n_topic)) + list(rng.choice(common, 6))
        texts.append(" ".join(rng.permutation(words)))
    return texts, y


def test_a_list_of_texts_reaches_text_pipeline_stages_unconverted():
    texts, y = _texts(300)
    hashed_sgd = make_pipeline(
        HashingVectorizer(n_features=2**10, alternate_sign=False),
        SGDClassifier(loss="log_loss", random_state=0),
    )
    hashed_lr = make_pipeline(
        HashingVectorizer(n_features=2**12, ngram_range=(1, 2), alternate_sign=False),
        LogisticRegression(C=10, max_iter=1000),
    )
    cascade = AdaptiveCascadeClassifier(
        [("sgd", hashed_sgd), ("lr", hashed_lr)], costs=[1, 3], cv=3
    ).fit(texts[:200], y[:200])

    assert not hasattr(cascade, "n_features_in_")
    y_pred = cascade.predict(texts[200:])
    assert y_pred.shape == (100,)
    assert np.mean(y_pred == y[200:]) > 0.6
    exit_stage = cascade.predict_exit(texts[200:])
    assert_array_equal(cascade.predict([texts[200]]), y_pred[:1])
    assert_array_equal(
        cascade.predict_cost(texts[200:]), cascade.cumulative_costs_[exit_stage]
    )


def test_stage_hyperparameters_are_searchable_by_name():

    X, y = load_iris(return_X_y=True)
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression(max_iter=1000)),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ],
        costs=[1, 3],
        cv=3,
    )
    assert cascade.get_params()["tree__max_depth"] is None
    search = GridSearchCV(cascade, {"tree__max_depth": [1, 4]}, cv=3).fit(X, y)
    assert search.best_estimator_.named_estimators_["tree"].max_depth in (1, 4)
    assert cascade.set_params(tree__max_depth=2) is cascade
    assert cascade.estimators[1][1].max_depth == 2


def test_stage_named_like_a_parameter_is_rejected():

    X, y = load_iris(return_X_y=True)
    stages = [("cv", LogisticRegression()), ("lr", LogisticRegression())]
    with pytest.raises(ValueError, match="conflict with constructor arguments"):
        AdaptiveCascadeClassifier(stages, costs=[1, 2]).fit(X, y)


def test_cost_scorer_receives_sample_weight_through_routing(monkeypatch):
    import skadaptive.metrics._scorers as scorers

    X, y = make_classification(240, random_state=0)
    weights = np.random.default_rng(0).random(240)
    received = []
    original = scorers._CostScorer.score

    def spy(self, estimator, X, y, sample_weight=None):
        received.append(sample_weight is not None)
        return original(self, estimator, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(scorers._CostScorer, "score", spy)
    with config_context(enable_metadata_routing=True):
        cascade = AdaptiveCascadeClassifier(
            [
                ("lr", LogisticRegression().set_fit_request(sample_weight=True)),
                ("tree", DecisionTreeClassifier().set_fit_request(sample_weight=True)),
            ],
            costs=[1, 3],
            cv=3,
        ).set_fit_request(sample_weight=True)
        scorer = make_cost_aware_scorer(0.01).set_score_request(sample_weight=True)
        GridSearchCV(cascade, {"cost_weight": [0, 0.1]}, cv=3, scoring=scorer).fit(
            X, y, sample_weight=weights
        )
    assert received and all(received)


def test_cost_scorer_flattens_a_column_vector_target():
    X, y = make_classification(240, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())],
        costs=[1, 3],
        cv=3,
    ).fit(X, y)
    scorer = make_cost_aware_scorer(0.01)
    with pytest.warns(DataConversionWarning):
        flattened = scorer(cascade, X, y.reshape(-1, 1))
    assert flattened == scorer(cascade, X, y)
    with pytest.raises(ValueError, match="must match"):
        scorer(cascade, X, y[:10])


def test_with_policy_equals_a_refit_at_that_operating_point():
    X, y = make_classification(400, n_classes=3, n_informative=5, random_state=0)
    stages = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=6, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 4], cv=3).fit(X, y)
    before = cascade.predict_exit(X)
    for change in ({"cost_weight": 0.2}, {"budget": 2.5}):
        moved = cascade.with_policy(**change)
        refit = clone(cascade).set_params(**{"budget": None, **change}).fit(X, y)
        assert_array_equal(moved.predict_exit(X), refit.predict_exit(X))
        assert moved.expected_cost_ == pytest.approx(refit.expected_cost_)
        assert moved.estimators_ is cascade.estimators_
    assert_array_equal(cascade.predict_exit(X), before)
    assert cascade.budget is None

    # The copy's parameters are its own: changing them leaves the original alone.
    moved.set_params(lr__C=0.5, tree__max_depth=2, costs=[2, 8])
    assert cascade.get_params()["lr__C"] == 1.0
    assert cascade.get_params()["tree__max_depth"] == 6
    assert cascade.costs == [1, 4]


def test_a_with_policy_copy_says_the_answer_and_costs_it_was_fitted_with():
    """set_params(answer=..., costs=...) after fit changes nothing until a
    refit: a with_policy copy (and so its clone's refit) says what its
    combiners and costs_ were made with."""
    X, y = make_classification(600, n_features=8, random_state=0)
    stages = [
        ("lr", LogisticRegression(max_iter=500)),
        ("forest", RandomForestClassifier(20, random_state=0)),
    ]
    fitted = AdaptiveCascadeClassifier(
        stages, costs=[1, 10], answer="combined", cv=3, random_state=0
    ).fit(X, y)
    changed = copy.copy(fitted).set_params(answer="stage", costs=[1, 2])
    copied = changed.with_policy(budget=5)
    assert copied.answer == "combined"
    assert list(copied.costs) == [1, 10]
    assert_allclose(copied.costs_, fitted.costs_)
    refitted = clone(copied).fit(X, y)
    assert_array_equal(refitted.predict_exit(X), copied.predict_exit(X))


def test_evaluate_frontier_names_empty_rows_and_discarded_policy_rows():
    X, y = make_classification(300, n_features=6, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("forest", RandomForestClassifier(10))],
        costs=[1, 10],
        cv=3,
        random_state=0,
    ).fit(X, y)
    with pytest.raises(ValueError, match="evaluate_frontier needs at least one row"):
        cascade.evaluate_frontier(X[:0], y[:0])
    labels = np.array(["no", "yes"], dtype=object)[y]
    named = clone(cascade).fit(X, labels)
    missing = labels.copy()
    missing[0] = None
    with pytest.raises(ValueError, match="cannot be compared"):
        named.evaluate_frontier(X, missing)
    cascade.discard_policy_rows()
    with pytest.raises(Exception, match="or evaluate_frontier"):
        cascade.evaluate_frontier(X, y)


def test_with_policy_needs_exactly_one_knob_and_a_reachable_budget():
    X, y = make_classification(200, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())],
        costs=[1, 4],
        cv=3,
    ).fit(X, y)
    with pytest.raises(ValueError, match="exactly one"):
        cascade.with_policy()
    with pytest.raises(
        ValueError, match="cannot be met: answering every row at the first stage"
    ):
        cascade.with_policy(budget=0.5)


@pytest.mark.budget
@pytest.mark.parametrize("policy", ["max_proba", "entropy", "patience"])
def test_heuristic_budget_sets_one_threshold_per_stage(fitted, policy):
    for budget in np.linspace(1.2, 12.5, 6):
        chosen = fitted.with_policy(budget=budget, policy=policy)
        assert_budget_spent_well(chosen)
        assert len(chosen.policy_.rules) == 2


def test_patience_over_two_stages_warns_that_it_cannot_adapt(data):
    X_train, _, y_train, _ = data
    with pytest.warns(UserWarning, match="patience' with two stages sends every"):
        cascade = AdaptiveCascadeClassifier(
            _two_stages(), costs=[1, 4], policy="patience", cv=3
        ).fit(X_train, y_train)
    assert np.count_nonzero(cascade.exit_rates_) == 1


@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_prediction_in_several_batches_warns_nothing(n_jobs):
    """Routing several batches, in a plain loop for one job or in threads,
    gives the one-batch answers and no warning (scikit-learn's ``delayed``
    warns when called outside its ``Parallel``)."""
    X, y = make_classification(n_samples=600, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier())],
        costs=[1, 3],
        random_state=0,
    ).fit(X, y)
    whole = cascade.route(X)
    cascade.set_params(batch_size=64, n_jobs=n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batched = cascade.route(X)
    assert_array_equal(batched.exit_stage, whole.exit_stage)
    assert_allclose(batched.proba, whole.proba, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "change",
    [
        {"policy": "max_proba"},
        {"policy_features": "confidence"},
        {"skips": True},
        {"tune_threshold": False},
    ],
)
def test_frontier_does_not_depend_on_when_it_was_first_read(change):
    """frontier_ is traced when first read, with the policy parameters of the
    moment (as with_policy learns): read before a set_params it kept the old
    trace, read after it traced the new one, so one fitted model reported two
    frontiers. It is traced again whenever those parameters changed."""
    X, y = make_classification(
        900, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    stages = [
        ("nb", GaussianNB()),
        ("lr", LogisticRegression(max_iter=500)),
        ("rf", RandomForestClassifier(30, random_state=0)),
    ]
    fitted = AdaptiveCascadeClassifier(
        stages, costs=[1, 5, 20], budget=8, cv=3, random_state=0
    ).fit(X[:600], y[:600])
    read_first = pickle.loads(pickle.dumps(fitted))
    before = read_first.frontier_
    read_first.set_params(**change)
    read_after = pickle.loads(pickle.dumps(fitted)).set_params(**change)
    for key, values in read_after.frontier_.items():
        assert_array_equal(read_first.frontier_[key], values)
    assert not np.array_equal(read_after.frontier_["accuracy"], before["accuracy"])
    # Set back, the first trace again.
    read_first.set_params(**fitted.get_params(deep=False))
    assert_array_equal(read_first.frontier_["accuracy"], before["accuracy"])


def test_a_frontier_read_before_the_policy_rows_are_discarded_still_answers():
    """A trace that cannot be made again (the rows discarded) is kept until a
    new one is made: set_params to another policy fails to trace, and set
    back, the kept trace answers (the cache was dropped before the trace was
    tried). A trace kept by a version without a key is the one of now."""
    from skadaptive._base import PolicyRowsDiscardedError

    X, y = make_classification(400, n_features=6, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=3))],
        costs=[1, 5],
        cv=3,
        random_state=0,
    ).fit(X, y)
    before = cascade.frontier_
    cascade.discard_policy_rows().set_params(policy="max_proba")
    with pytest.raises(PolicyRowsDiscardedError):
        cascade.frontier_  # noqa: B018
    cascade.set_params(policy="linear")
    assert_array_equal(cascade.frontier_["accuracy"], before["accuracy"])
    del cascade._frontier_key  # as pickled by a version that kept none
    assert_array_equal(cascade.frontier_["accuracy"], before["accuracy"])


# ------------------------------------- scikit-learn interplay a review found
def test_a_generator_cv_fits_with_metadata_routing_enabled():
    """get_metadata_routing read the splitter with check_cv, which consumed a
    generator of splits before the fit could use them ("need at least one
    array to concatenate"); routing off, it fitted."""
    X, y = make_classification(300, random_state=0)
    answers = []
    for routing in (False, True):
        with config_context(enable_metadata_routing=routing):
            cascade = AdaptiveCascadeClassifier(
                _two_stages(),
                costs=[1, 3],
                cv=StratifiedKFold(3).split(X, y),
                random_state=0,
            )
            answers.append(cascade.fit(X, y).predict_proba(X))
    assert_allclose(answers[1], answers[0])


def test_a_stage_named_like_the_routed_splitter_is_refused_under_routing():
    """Under routing, a stage named "splitter" and the cv splitter took each
    other's metadata (the fit failed with "AttributeError: fit"). Without
    routing the name is free, and a model fitted with it predicts (also
    once routing is enabled: the name is checked by a fit)."""
    X, y = make_classification(100, random_state=0)
    stages = [("splitter", LogisticRegression()), ("tree", DecisionTreeClassifier())]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 3]).fit(X, y)
    with config_context(enable_metadata_routing=True):
        assert len(cascade.predict(X)) == len(X)
        with pytest.raises(ValueError, match="A stage is named 'splitter'.*Rename"):
            AdaptiveCascadeClassifier(stages, costs=[1, 3]).fit(X, y)


def test_tags_say_positive_only_and_non_deterministic_as_the_stages_and_costs_do():
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.utils import get_tags

    naive = [("nb", MultinomialNB()), ("nb2", MultinomialNB(alpha=0.1))]
    assert get_tags(AdaptiveCascadeClassifier(naive)).input_tags.positive_only
    assert not get_tags(
        AdaptiveCascadeClassifier(_two_stages())
    ).input_tags.positive_only
    mixed = [("nb", MultinomialNB()), ("tree", DecisionTreeClassifier())]
    assert get_tags(AdaptiveCascadeClassifier(mixed)).input_tags.positive_only
    # MultinomialNB scores poorly on scikit-learn's checks' data, and a
    # cascade can answer many rows with it.
    assert get_tags(AdaptiveCascadeClassifier(mixed)).classifier_tags.poor_score
    plain = AdaptiveCascadeClassifier(_two_stages())
    assert not get_tags(plain).classifier_tags.poor_score
    # Measured costs are timings: fits differ (the default, costs="auto").
    assert get_tags(AdaptiveCascadeClassifier(_two_stages())).non_deterministic
    given = AdaptiveCascadeClassifier(_two_stages(), costs=[1, 3])
    assert not get_tags(given).non_deterministic


def test_a_routers_tags_join_the_stages():
    """A router of the user's sees the rows: one that refuses NaN makes the
    cascade's tags refuse it (they said NaN was taken, and the fit failed in
    the router); router="auto" takes what the stages take."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.utils import get_tags

    stages = [
        ("a", HistGradientBoostingClassifier(max_iter=5)),
        ("b", HistGradientBoostingClassifier(max_iter=10)),
    ]

    def tags(router):
        return get_tags(AdaptiveCascadeClassifier(stages, router=router)).input_tags

    assert tags(None).allow_nan and tags("auto").allow_nan
    assert tags(HistGradientBoostingClassifier()).allow_nan
    assert not tags(LogisticRegression()).allow_nan
    assert tags(MultinomialNB()).positive_only and not tags(None).positive_only


def test_prediction_checks_nan_against_the_stages_as_fitted():
    """set_params on a fitted cascade changes nothing until a refit: its
    prediction refused NaN for a new stage that was neither fitted nor
    used."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(200, random_state=0)
    X[::7, 0] = np.nan
    cascade = AdaptiveCascadeClassifier(
        [
            ("a", HistGradientBoostingClassifier(max_iter=5)),
            ("b", HistGradientBoostingClassifier(max_iter=10)),
        ],
        costs=[1, 3],
        cv=3,
        random_state=0,
    ).fit(X, y)
    expected = cascade.predict_proba(X)
    cascade.set_params(a=LogisticRegression())
    assert_allclose(cascade.predict_proba(X), expected)
    assert_allclose(
        cascade.evaluate_frontier(X, y)["accuracy"][:1],
        [cascade.with_policy(cost_weight=DEFAULT_COST_WEIGHTS[0]).score(X, y)],
    )
    # And the other way: stages fitted that refuse NaN refuse it after
    # set_params to ones that take it.
    Xc = np.nan_to_num(X)
    plain = AdaptiveCascadeClassifier(_two_stages(), costs=[1, 3], cv=3).fit(Xc, y)
    plain.set_params(
        lr=HistGradientBoostingClassifier(), tree=HistGradientBoostingClassifier()
    )
    with pytest.raises(
        ValueError, match="stage 'lr' \\(LogisticRegression\\) does not"
    ):
        plain.predict(X)


def test_named_estimators_before_a_fit_as_in_voting_classifier():
    stages = _two_stages()
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 3])
    assert list(cascade.named_estimators) == ["lr", "tree"]
    assert cascade.named_estimators.lr is stages[0][1]
    X, y = make_classification(100, random_state=0)
    cascade.fit(X, y)
    assert cascade.named_estimators.lr is stages[0][1]  # the unfitted template
    assert cascade.named_estimators_.lr is not stages[0][1]
    with pytest.raises(ValueError, match="estimators must be a list"):
        AdaptiveCascadeClassifier("oops").named_estimators  # noqa: B018
