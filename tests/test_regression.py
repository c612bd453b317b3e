"""AdaptiveCascadeRegressor and EarlyExitRegressor: answers, policies, figures."""

import functools
import pickle
import re
import warnings

import numpy as np
import pytest
from _budget_checks import assert_budget_spent_well
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.datasets import make_friedman1
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    BayesianRidge,
    LinearRegression,
    LogisticRegression,
    Ridge,
)
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from skadaptive import (
    AdaptiveCascadeClassifier,
    AdaptiveCascadeRegressor,
    EarlyExitClassifier,
    EarlyExitRegressor,
)
from skadaptive.policies import REGRESSION_POLICIES
from skadaptive.stages import (
    ChainExits,
    ChainExitsRegressor,
    TreeEnsembleExits,
    exit_probas,
    regression_answers,
    regression_scale,
)


@functools.cache
def _data():
    """Rows of two kinds: where the linear part ``3 x1 + 2 x2`` is below 3 the
    target is linear (a linear stage answers it), above it a step in x3 is
    added that only a tree model learns. The first stage's own prediction
    tells the kinds apart, as a policy at a cascade's first stage needs (it
    sees nothing else from a stage that gives no uncertainty)."""
    rng = np.random.default_rng(0)
    X = rng.random((3000, 5))
    linear = 3 * X[:, 1] + 2 * X[:, 2]
    step = 3 * np.sign(np.cos(2 * np.pi * X[:, 3]))  # mean 0, no linear trend
    y = linear + np.where(linear > 3, step, 0) + 0.1 * rng.standard_normal(3000)
    return X[:2000], X[2000:], y[:2000], y[2000:]


def _hard(X):
    return 3 * X[:, 1] + 2 * X[:, 2] > 3


def _cascade(**params):
    return AdaptiveCascadeRegressor(
        [
            ("linear", LinearRegression()),
            ("forest", RandomForestRegressor(n_estimators=30, random_state=0)),
        ],
        **{"costs": [1.0, 30.0], "cv": 3, "random_state": 0, **params},
    )


@functools.cache
def _fitted_cascade():
    X, _, y, _ = _data()
    return _cascade(cost_weight=0.05).fit(X, y)


@functools.cache
def _frozen_forest_ee():
    X, _, y, _ = _data()
    forest = RandomForestRegressor(n_estimators=24, random_state=0)
    forest.fit(X[:1000], y[:1000])
    return EarlyExitRegressor(FrozenEstimator(forest), exits=[3, 6, 12, 24])


# --------------------------------------------------------------- answers
@pytest.mark.parametrize(
    "model",
    [
        GradientBoostingRegressor(n_estimators=20, random_state=0),
        GradientBoostingRegressor(n_estimators=20, loss="huber", random_state=0),
        GradientBoostingRegressor(n_estimators=20, init="zero", random_state=0),
        RandomForestRegressor(n_estimators=12, random_state=0),
        ExtraTreesRegressor(n_estimators=12, bootstrap=True, random_state=0),
    ],
)
def test_tree_exits_equal_the_ensembles_own_truncated_predictions(model):
    X, X_test, y, _ = _data()
    model.fit(X[:500], y[:500])
    exits = [2, 5, 12] if len(getattr(model, "estimators_", [])) == 12 else [2, 5, 20]
    answers = exit_probas(TreeEnsembleExits(model, exits), X_test)
    if isinstance(model, GradientBoostingRegressor):
        staged = list(model.staged_predict(X_test))
        for exit_, answer in zip(exits, answers):
            assert_allclose(answer[:, 0], staged[exit_ - 1], rtol=0, atol=1e-10)
            assert_array_equal(answer[:, 1], 0.0)
    else:
        rows = X_test.astype(np.float32)
        trees = np.stack([t.predict(rows) for t in model.estimators_])
        for exit_, answer in zip(exits, answers):
            assert_allclose(answer[:, 0], trees[:exit_].mean(axis=0), atol=1e-10)
            assert_allclose(answer[:, 1], trees[:exit_].std(axis=0), atol=1e-7)
    assert_allclose(answers[-1][:, 0], model.predict(X_test), rtol=0, atol=1e-10)


def test_stage_uncertainty_is_return_std_or_the_spread_of_a_forest():
    X, X_test, y, _ = _data()
    bayes = BayesianRidge().fit(X, y)
    _, std = bayes.predict(X_test, return_std=True)
    assert_allclose(regression_answers(bayes, X_test)[:, 1], std)
    assert_allclose(regression_answers(FrozenEstimator(bayes), X_test)[:, 1], std)
    forest = RandomForestRegressor(n_estimators=8, random_state=0).fit(X, y)
    answers = regression_answers(forest, X_test)
    assert_allclose(answers[:, 0], forest.predict(X_test), atol=1e-12)
    assert (answers[:, 1] >= 0).all() and (answers[:, 1] > 0).mean() > 0.9
    assert_array_equal(
        regression_answers(LinearRegression().fit(X, y), X_test)[:, 1], 0
    )


def test_a_pipeline_answers_with_its_last_steps_uncertainty():
    X, X_test, y, _ = _data()
    scaler = StandardScaler().fit(X)
    for last in (
        BayesianRidge(),
        RandomForestRegressor(n_estimators=8, random_state=0),
    ):
        pipeline = make_pipeline(StandardScaler(), clone(last)).fit(X, y)
        alone = clone(last).fit(scaler.transform(X), y)
        expected = regression_answers(alone, scaler.transform(X_test))
        assert (expected[:, 1] > 0).mean() > 0.9
        for stage in (
            pipeline,
            FrozenEstimator(pipeline),
            make_pipeline(FrozenEstimator(pipeline)),
        ):
            answers = regression_answers(stage, X_test)
            assert_allclose(answers, expected, atol=1e-10)
            assert_allclose(answers[:, 0], pipeline.predict(X_test), atol=1e-10)
    plain = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    assert_array_equal(regression_answers(plain, X_test)[:, 1], 0)


class _OddAnswers(RegressorMixin, BaseEstimator):
    """A regressor whose predictions are not real numbers."""

    def __init__(self, kind="complex"):
        self.kind = kind

    def fit(self, X, y):
        self.ridge_ = Ridge().fit(X, y)
        return self

    def predict(self, X):
        prediction = self.ridge_.predict(X)
        if self.kind == "complex":
            return prediction + 1j
        if self.kind == "text":
            return prediction.astype(str)
        if self.kind == "bytes":
            return prediction.astype("S")
        return np.array([object() for _ in prediction])


@pytest.mark.parametrize(
    "kind, words",
    [
        ("complex", r"complex values \(dtype complex128\)"),
        ("text", r"text values \(dtype <U\d+\)"),
        ("bytes", r"text values \(dtype \|S\d+\)"),
        ("objects", "values that are not numbers"),
    ],
)
def test_answers_that_are_not_real_numbers_are_refused_by_stage(kind, words):
    X, _, y, _ = _data()
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("odd", _OddAnswers(kind))], costs=[1, 2], cv=3
    )
    with pytest.raises(ValueError, match=f"stage 'odd': .*{words}.*real numbers"):
        cascade.fit(X, y)


def test_a_transformed_target_carries_its_regressor_s_uncertainty_back():
    from sklearn.compose import TransformedTargetRegressor

    X, X_test, y, _ = _data()
    # A StandardScaler on y: the uncertainty is the regressor's times the
    # scale of y, the same as the model's on y itself.
    scaled = TransformedTargetRegressor(BayesianRidge(), transformer=StandardScaler())
    scaled.fit(X, y)
    answers = regression_answers(scaled, X_test)
    assert_allclose(answers[:, 0], scaled.predict(X_test), atol=1e-10)
    mean, std = scaled.regressor_.predict(X_test, return_std=True)
    assert_allclose(answers[:, 1], std * scaled.transformer_.scale_[0], rtol=1e-10)
    assert (answers[:, 1] > 0).all()
    # A logarithm: half the width of exp of one standard deviation either side.
    logged = TransformedTargetRegressor(
        BayesianRidge(), func=np.log1p, inverse_func=np.expm1
    ).fit(X, np.abs(y))
    mean, std = logged.regressor_.predict(X_test, return_std=True)
    answers = regression_answers(FrozenEstimator(logged), X_test)
    assert_allclose(
        answers[:, 1], (np.expm1(mean + std) - np.expm1(mean - std)) / 2, rtol=1e-10
    )
    # A regressor without an uncertainty: none.
    plain = TransformedTargetRegressor(LinearRegression(), transformer=StandardScaler())
    assert_array_equal(regression_answers(plain.fit(X, y), X_test)[:, 1], 0)


def test_disagreement_with_two_stages_warns_that_it_cannot_split_the_rows():
    with pytest.warns(UserWarning, match="no earlier stage to disagree with"):
        two = _fitted_cascade().with_policy(policy="disagreement", cost_weight=0.05)
    # The warning is true: every row answers at the same stage.
    assert np.isin(two.exit_rates_, (0.0, 1.0)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _frozen_forest_ee().fit(*_data()[::2]).with_policy(
            policy="disagreement", cost_weight=0.05
        )
        _frozen_forest_ee().fit(*_data()[::2]).with_policy(
            policy="uncertainty", cost_weight=0.05
        )


def test_uncertainty_warns_at_a_stage_that_gives_none():
    with pytest.warns(UserWarning, match="cannot tell rows apart at 'linear'"):
        linear_first = _fitted_cascade().with_policy(policy="uncertainty", budget=10.0)
    # The warning is true: the linear stage answers every row or none.
    assert linear_first.exit_rates_[0] in (0.0, 1.0)


def test_scale_makes_a_constant_prediction_cost_one():
    rng = np.random.default_rng(1)
    y = rng.gamma(2.0, 50.0, 400)
    weight = rng.integers(0, 3, 400).astype(float)
    for loss, metric in (
        ("squared_error", mean_squared_error),
        ("absolute_error", mean_absolute_error),
    ):
        center, scale = regression_scale(y, weight, loss)
        error = metric(y, np.full_like(y, center), sample_weight=weight)
        unit = scale**2 if loss == "squared_error" else scale
        assert error / unit == pytest.approx(1.0)
        # weight k is k copies of the row
        repeated = np.repeat(y, weight.astype(int))
        assert regression_scale(repeated, None, loss) == pytest.approx((center, scale))


def test_the_weighted_median_of_weights_is_that_of_copies_at_a_tie():
    # Shares of a twentieth summed to just under one half: weight 5 on each of
    # 0, 1, 2, 3 gave the median 2 where five copies of each gave 1, moving
    # every scaled prediction the policy learns from.
    y = np.arange(4.0)
    median = regression_scale(np.repeat(y, 5), None, "absolute_error")[0]
    for factor in (1.0, 5.0, 7.3, 0.01):
        weight = np.full(4, factor)
        assert regression_scale(y, weight, "absolute_error")[0] == median
    rng = np.random.default_rng(0)
    for _ in range(300):
        y = rng.normal(size=rng.integers(1, 12)).round(1)
        weight = rng.integers(1, 6, len(y))
        expected = regression_scale(np.repeat(y, weight), None, "absolute_error")
        for factor in (1.0, 7.3, 0.01):
            found = regression_scale(y, weight * factor, "absolute_error")
            assert found[0] == expected[0]
            assert found[1] == pytest.approx(expected[1], rel=1e-12)


@pytest.mark.parametrize("policy", ["linear", "eenet"])
@pytest.mark.parametrize("loss", ["squared_error", "absolute_error"])
def test_a_constant_target_answers_every_row_at_the_first_stage(policy, loss):
    """Every stage exact on a constant target: the first answers every row,
    within any budget. Its scale is 1, not the 1e-16 that the rounding of
    its weighted mean leaves (which made rounding noise read as losses of
    order one: every row paid for both stages, over the budget). The
    cost-aware scorer gives what score (scikit-learn's R^2) gives."""
    from skadaptive.metrics import make_cost_aware_scorer

    X = np.random.default_rng(0).random((600, 5))
    y = np.full(600, 0.7)
    assert regression_scale(y, None, loss)[1] == 1.0
    stages = [
        ("forest", RandomForestRegressor(10, random_state=0)),
        ("knn", KNeighborsRegressor()),
    ]
    for params in ({"budget": 15.0}, {"cost_weight": 0.01}):
        cascade = AdaptiveCascadeRegressor(
            stages, costs=[1, 20], cv=3, random_state=0, policy=policy, loss=loss
        ).set_params(**params)
        cascade.fit(X[:400], y[:400])
        assert_allclose(cascade.predict_cost(X[400:]), 1.0)
        assert cascade.expected_cost_ == pytest.approx(1.0)
    for target in (y[400:], np.full(200, 3.0)):
        assert make_cost_aware_scorer(0.0)(cascade, X[400:], target) == (
            cascade.score(X[400:], target)
        )


def test_a_target_that_varies_little_is_not_constant():
    """1e8 plus a signal of 1e-5 (a linear model explains all of it): far
    more than rounding, so its scale is its own and the policy sends rows
    to the linear stage; the cost-aware scorer agrees with score. A constant
    of 1e200 gets its magnitude as a scale, too large for squared errors: a
    clear error, not an overflow deep in a fit."""
    from skadaptive.metrics import make_cost_aware_scorer

    X = np.random.default_rng(0).random((800, 3))
    for sign in (1.0, -1.0):
        y = sign * 1e8 + 1e-5 * (X @ [1.0, 2.0, 3.0])
        cascade = AdaptiveCascadeRegressor(
            [("knn", KNeighborsRegressor(30)), ("lr", LinearRegression())],
            costs=[1, 10],
            cv=3,
            random_state=0,
        ).fit(X[:600], y[:600])
        assert 1e-6 < cascade.target_scale_ < 1e-4
        assert cascade.exit_rates_[1] > 0.5
        assert make_cost_aware_scorer(0.0)(cascade, X[600:], y[600:]) == (
            pytest.approx(cascade.score(X[600:], y[600:]))
        )
    with pytest.raises(ValueError, match="too large for its squared errors"):
        clone(cascade).fit(X, np.full(800, 1e200))


@pytest.mark.parametrize(("factor", "problem"), [(1e160, "large"), (1e-170, "small")])
def test_a_target_whose_squared_errors_float64_cannot_hold(factor, problem):
    """A clear error before any stage is fitted (it used to be a bare
    OverflowError after the policy was learned, or every error read as 0);
    the absolute error, in the target's own units, fits."""
    X = np.random.default_rng(0).random((300, 3))
    y = (X @ [1.0, 2.0, 3.0]) * factor
    stages = [("ridge", Ridge()), ("knn", KNeighborsRegressor())]
    cascade = AdaptiveCascadeRegressor(stages, costs=[1, 20], cv=3)
    with pytest.raises(ValueError, match=rf"too {problem} for its squared errors"):
        cascade.fit(X, y)
    fitted = clone(cascade).set_params(loss="absolute_error").fit(X, y)
    assert np.isfinite(fitted.expected_error_) and fitted.expected_error_ > 0
    # A refit refused before any stage is fitted leaves the fit as it was.
    scale, answers = fitted.target_scale_, fitted.predict(X)
    with pytest.raises(ValueError, match="squared errors"):
        fitted.set_params(loss="squared_error").fit(X, y)
    assert fitted.target_scale_ == scale and fitted._loss() == "absolute_error"
    assert_array_equal(fitted.predict(X), answers)


def test_loss_set_after_a_fit_changes_nothing_until_a_refit():
    """The policy rows' targets are scaled for the fit's loss (the standard
    deviation for the squared error, the mean absolute deviation for the
    absolute error): with_policy, frontier_, evaluate_frontier and score's
    figures stay those of the fit's loss, and a copy says which it was
    learned with."""
    X, X_test, y, y_test = _data()
    fitted = _fitted_cascade()
    # A fit of its own: its frontier_ is first read after the change.
    changed = _cascade(cost_weight=0.05).fit(X, y).set_params(loss="absolute_error")
    for budget in (None, 20.0):
        knob = {"cost_weight": 0.02} if budget is None else {"budget": budget}
        expected = fitted.with_policy(**knob)
        got = changed.with_policy(**knob)
        assert got.loss == "squared_error"
        assert_array_equal(got.predict_exit(X_test), expected.predict_exit(X_test))
        assert got.expected_error_ == expected.expected_error_
    assert_allclose(changed.frontier_["error"], fitted.frontier_["error"])
    figures = changed.evaluate_frontier(X_test, y_test)
    reference = fitted.evaluate_frontier(X_test, y_test)
    assert_allclose(figures["stage_errors"], reference["stage_errors"])
    assert_allclose(figures["error"], reference["error"])
    assert_allclose(
        figures["stage_errors"][-1],
        mean_squared_error(y_test, fitted.estimators_[-1].predict(X_test)),
    )
    # The cost-aware scorer scores with the fit's loss (R^2 here), a
    # recalibrated copy says the fit's loss, and a display's error is the MSE.
    from skadaptive.metrics import make_cost_aware_scorer
    from skadaptive.plot import CostAccuracyDisplay

    scorer = make_cost_aware_scorer(0.0)
    assert scorer(changed, X_test, y_test) == pytest.approx(
        changed.score(X_test, y_test)
    )
    assert changed.recalibrate(X_test).loss == "squared_error"
    pytest.importorskip("matplotlib")
    display = CostAccuracyDisplay.from_estimator(changed, X_test, y_test, metric="mse")
    assert "MSE" in display.ax_.get_ylabel()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_classifier_loss_set_after_a_fit_changes_nothing_until_a_refit():
    """The classifier's side: a with_policy copy is learned for the fit's
    loss (zero_one), as a copy of the unchanged estimator is."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(600, random_state=0)
    stages = [
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ("lr", LogisticRegression()),
    ]
    fitted = AdaptiveCascadeClassifier(stages, costs=[1, 5], cv=3, random_state=0)
    fitted.fit(X[:400], y[:400])
    expected = fitted.with_policy(cost_weight=0.05)
    got = clone(fitted).fit(X[:400], y[:400]).set_params(loss="log_loss")
    got = got.with_policy(cost_weight=0.05)
    assert got.loss == "zero_one"
    assert_array_equal(got.predict_exit(X[400:]), expected.predict_exit(X[400:]))
    assert got.expected_accuracy_ == expected.expected_accuracy_


# ------------------------------------------------------------- predicting
def test_predictions_equal_the_answering_stage_and_figures_add_up():
    cascade = _fitted_cascade()
    _, X_test, _, y_test = _data()
    result = cascade.route(X_test)
    linear, forest = cascade.estimators_
    first = result.exit_stage == 0
    assert 0 < first.mean() < 1
    assert_allclose(result.prediction[first], linear.predict(X_test[first]))
    assert_allclose(result.prediction[~first], forest.predict(X_test[~first]))
    assert_array_equal(cascade.predict(X_test), result.prediction)
    assert_array_equal(cascade.predict_exit(X_test), result.exit_stage)
    assert_array_equal(cascade.predict_cost(X_test), [1.0, 31.0][0] + 30.0 * ~first)
    # evaluate_frontier's own policy is what predict does on the same rows.
    test = cascade.evaluate_frontier(X_test, y_test)
    assert test["error_at_fit"] == pytest.approx(
        mean_squared_error(y_test, cascade.predict(X_test)), rel=1e-9
    )
    assert test["cost_at_fit"] == pytest.approx(cascade.predict_cost(X_test).mean())
    assert_allclose(
        test["stage_errors"],
        [mean_squared_error(y_test, m.predict(X_test)) for m in cascade.estimators_],
    )
    assert cascade.score(X_test, y_test) > 0.8


def test_the_policy_sends_the_rows_the_linear_stage_gets_wrong_on():
    cascade = _fitted_cascade()
    _, X_test, _, _ = _data()
    deferred = cascade.predict_exit(X_test) == 1
    hard = _hard(X_test)
    # most hard rows go on, most easy rows stop
    assert deferred[hard].mean() > 0.8
    assert deferred[~hard].mean() < 0.2


def test_learned_policy_beats_random_deferral_and_the_heuristics_at_a_budget():
    X, X_test, y, y_test = _data()
    cascade = _cascade(budget=13.0).fit(X, y)
    assert_budget_spent_well(cascade)
    exit_stage = cascade.predict_exit(X_test)
    rate = exit_stage.mean()
    answers = [m.predict(X_test) for m in cascade.estimators_]
    learned = mean_squared_error(y_test, cascade.predict(X_test))
    rng = np.random.default_rng(0)
    random_errors = []
    for _ in range(20):
        deferred = rng.random(len(y_test)) < rate
        random_errors.append(
            mean_squared_error(y_test, np.where(deferred, answers[1], answers[0]))
        )
    assert learned < 0.6 * min(random_errors)
    for heuristic in ("disagreement", "uncertainty"):
        other = cascade.with_policy(budget=13.0, policy=heuristic)
        assert learned <= mean_squared_error(y_test, other.predict(X_test))


def test_only_the_budget_search_reason_gets_the_unit_note():
    """The router's reason compares errors in the target's units: the note on
    the budget search's scaled losses is not added to it."""
    X, _, y, _ = _data()
    stages = [
        (name, FrozenEstimator(model.fit(X[:1000], y[:1000])))
        for name, model in [
            ("tree", DecisionTreeRegressor(max_depth=2, random_state=0)),
            ("knn", KNeighborsRegressor()),
            ("forest", RandomForestRegressor(n_estimators=20, random_state=0)),
        ]
    ]
    cascade = AdaptiveCascadeRegressor(
        stages, costs=[0.2, 1.0, 2.0, 6.0], router="auto", random_state=0
    )
    fitted = cascade.set_params(budget=3.0).fit(X[1000:1600], y[1000:1600])
    assert fitted.router_search_["reason"]
    assert "losses on the scale" not in fitted.router_search_["reason"]
    assert "losses on the scale" in fitted.budget_search_["reason"]


@pytest.mark.parametrize("estimator", [AdaptiveCascadeRegressor, EarlyExitRegressor])
def test_regressor_docs_carry_no_classifier_words(estimator):
    """The shared docs reworded for regressors: no kind of score, figure,
    requirement or comparison that only a classifier has."""
    doc = " ".join(estimator.__doc__.split())
    for words in (
        "max_proba per exit",
        "held-out probabilities",
        "must hold every class",
        "``policy_rows_error`` no lower",
        "surer or less sure",
        "more accurate by more than one standard error",
    ):
        assert words not in doc, words
    assert "``policy_rows_error`` no higher" in doc
    assert "divided by ``target_scale_``" in doc


def test_shared_docs_rewording_refuses_words_it_cannot_find():
    """A change of the shared text must not leave a regressor's docs with the
    classifier's words silently: a rewording that finds nothing is an error."""
    from skadaptive._docs import _reworded

    assert _reworded("a  b\n   c d", ("b c", "x")) == "a  x d"
    with pytest.raises(AssertionError, match="not in the shared docs"):
        _reworded("a b c", ("b d", "x"))


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error"])
def test_budget_reason_says_in_which_unit_its_losses_are(loss):
    """``budget_search_["reason"]`` compares losses on the search's scale
    (the error over ``target_scale_``, squared for the squared error), and
    says so once: its figures are the reported errors in that unit."""
    X, _, y, _ = _data()
    fitted = _cascade(budget=13.0, loss=loss).fit(X, y)
    for cascade in (fitted, fitted.with_policy(budget=12.0)):
        search = cascade.budget_search_
        reason = search["reason"]
        unit = cascade.target_scale_ ** (2 if loss == "squared_error" else 1)
        kind = "MSE" if loss == "squared_error" else "MAE"
        note = f"the {kind} divided by target_scale_"
        assert reason.count(note) == 1, reason
        assert reason.endswith(f"= {unit:.4g})")
        found = re.search(r"a loss of (\S+) on the policy rows against (\S+)", reason)
        assert found is not None, reason
        errors = search["policy_rows_error"]
        assert float(found[1]) == pytest.approx(
            errors[search["chosen"]] / unit, rel=1e-3
        )
        assert float(found[2]) == pytest.approx(errors[-1] / unit, rel=1e-3)


@functools.cache
def _banded_data():
    """As :func:`_data`, but the step only a tree model learns is added where
    the linear part lies in two bands, (1, 2) and above 4: the first stage is
    wrong in the middle of its range and at one end, right elsewhere, which
    no rule linear in its prediction and that prediction's square can tell."""
    rng = np.random.default_rng(1)
    X = rng.random((3000, 5))
    linear = 3 * X[:, 1] + 2 * X[:, 2]
    step = 3 * np.sign(np.cos(2 * np.pi * X[:, 3]))
    hard = ((linear > 1) & (linear < 2)) | (linear > 4)
    y = linear + np.where(hard, step, 0) + 0.1 * rng.standard_normal(3000)
    return X[:2000], X[2000:], y[:2000], y[2000:], hard[2000:]


def test_the_policy_follows_a_first_stage_wrong_in_bands_of_its_prediction():
    """The default policy's piecewise-linear features of the prediction let it
    defer exactly the rows of both bands at a budget that buys no more."""
    X, X_test, y, y_test, hard = _banded_data()
    budget = 1.0 + 30.0 * (hard.mean() + 0.03)
    cascade = _cascade(budget=budget).fit(X, y)
    deferred = cascade.predict_exit(X_test) == 1
    assert deferred[hard].mean() > 0.85
    assert deferred[~hard].mean() < 0.1


def test_a_budget_keeps_one_exit_for_every_row_where_no_score_tells_rows_apart():
    """A target unrelated to the features: no policy score can tell which rows
    a later stage answers better, so a learned one only fits the noise of the
    policy rows. The budget search keeps its reference, one exit for every row
    (the lowest-error affordable one), rather than the kind whose noise happens
    to score best out of sample."""
    rng = np.random.default_rng(3)
    X, y = rng.random((300, 4)), rng.standard_normal(300)
    cascade = AdaptiveCascadeRegressor(
        [
            ("ridge", Ridge()),
            ("knn", KNeighborsRegressor(5)),
            ("forest", RandomForestRegressor(n_estimators=10, random_state=0)),
        ],
        costs=[1.0, 5.0, 30.0],
        budget=20.0,
        cv=3,
        random_state=0,
    ).fit(X, y)
    search = cascade.budget_search_
    assert search["scores"][-1] == "one exit for every row"
    assert search["chosen"] == len(search["scores"]) - 1
    # Another kind had a lower out-of-sample error, by less than its noise.
    assert search["expected_error"].argmin() != search["chosen"]
    # Kept as the reference, its figures are its own cross-fitted ones: every
    # row pays the same cost.
    assert cascade.expected_cost_ == cascade.policy_rows_cost_
    assert cascade.expected_cost_ == search["expected_cost"][-1]
    assert cascade.expected_error_ == search["expected_error"][-1]
    exits = cascade.predict_exit(rng.random((200, 4)))
    assert len(np.unique(exits)) == 1
    answers, y_rows, _ = cascade._policy_rows()
    errors = [np.mean((a[:, 0] - y_rows) ** 2) for a in answers]
    affordable = np.flatnonzero(cascade.cumulative_costs_ <= 20.0)
    assert exits[0] == affordable[np.argmin(np.take(errors, affordable))]


def test_a_stage_that_answers_every_row_alike_is_named_in_a_warning():
    """A constant first stage answers each cross-fitting fold's rows with one
    value: a learned rule can only follow the folds, which new rows do not
    have. A one-split tree, which does tell rows apart, is not named."""
    from sklearn.dummy import DummyRegressor

    X, _, y, _ = _data()
    constant = AdaptiveCascadeRegressor(
        [("mean", DummyRegressor()), ("ridge", Ridge())],
        costs=[1.0, 10.0],
        budget=6.0,
        cv=3,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="'mean' answered every row of each"):
        constant.fit(X[:300], y[:300])
    stump = clone(constant).set_params(
        estimators=[("stump", DecisionTreeRegressor(max_depth=1)), ("ridge", Ridge())]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        stump.fit(X[:300], y[:300])


@settings(max_examples=10)
@given(
    batch_size=st.integers(1, 50),
    n_jobs=st.sampled_from([None, 2]),
    seed=st.integers(0, 100),
)
def test_a_rows_answer_does_not_depend_on_its_batch(batch_size, n_jobs, seed):
    cascade = _fitted_cascade()
    _, X_test, _, _ = _data()
    # any order, with repeated rows: each row answered once per occurrence
    rows = np.random.default_rng(seed).integers(0, len(X_test), 120)
    expected = cascade.route(X_test)
    other = pickle.loads(pickle.dumps(cascade)).set_params(
        batch_size=batch_size, n_jobs=n_jobs
    )
    got = other.route(X_test[rows])
    assert_array_equal(got.exit_stage, expected.exit_stage[rows])
    assert_allclose(got.prediction, expected.prediction[rows], rtol=0, atol=1e-12)


def test_routing_equals_the_policy_applied_to_every_stage_answer():
    ee = _frozen_forest_ee().set_params(cost_weight=0.02)
    X, X_test, y, _ = _data()
    ee.fit(X[1000:], y[1000:])
    answers = ee._policy_answers(exit_probas(ee.source_, X_test))
    offline = ee.policy_.exit_stage(answers)
    routed = ee.route(X_test)
    assert_array_equal(routed.exit_stage, offline)
    assert len(np.unique(offline)) > 1
    rows = np.arange(len(X_test))
    scaled = np.stack(answers)[offline, rows]
    assert_allclose(
        routed.prediction, scaled[:, 0] * ee.target_scale_ + ee.target_center_
    )
    assert_allclose(routed.uncertainty, scaled[:, 1] * ee.target_scale_, atol=1e-9)


def test_cost_weight_is_unit_free():
    """Rescaling and shifting y changes no decision; errors scale with it."""
    X, X_test, y, _ = _data()
    # Stages whose answers move exactly with y (a forest's split ties may not).
    cascade = AdaptiveCascadeRegressor(
        [("linear", LinearRegression()), ("knn", KNeighborsRegressor())],
        costs=[1.0, 30.0],
        cost_weight=0.05,
        policy="eenet",
        cv=3,
    )
    first = clone(cascade).fit(X, y)
    second = clone(cascade).fit(X, 1000.0 * y - 7.0)
    exits = first.predict_exit(X_test)
    # Both stages answer some rows: a cost_weight that means the same on any
    # scale is not one that sends every row to one stage on some scales.
    assert 0 < exits.mean() < 1
    assert_array_equal(exits, second.predict_exit(X_test))
    shrunk = clone(cascade).fit(X, 0.001 * y + 3.0)
    assert_array_equal(exits, shrunk.predict_exit(X_test))
    assert second.policy_rows_error_ == pytest.approx(1e6 * first.policy_rows_error_)
    # Out of sample, the policy is refitted on folds, where scores equal in one
    # fit may differ in the last bit in the other: close, not equal.
    assert second.expected_error_ == pytest.approx(
        1e6 * first.expected_error_, rel=0.05
    )
    assert_allclose(second.stage_errors_, 1e6 * first.stage_errors_)
    assert_allclose(
        second.predict(X_test), 1000.0 * first.predict(X_test) - 7.0, atol=1e-6
    )


@pytest.mark.parametrize("policy", ["constant", "disagreement", "uncertainty"])
def test_cost_falls_as_cost_weight_grows_for_one_parameter_families(policy):
    cascade = _fitted_cascade().with_policy(cost_weight=0.01, policy=policy)
    frontier = cascade.frontier_
    assert (np.diff(frontier["expected_cost"]) <= 1e-12).all()
    assert set(frontier) >= {"cost_weight", "error", "expected_cost", "exit_rate_0"}
    assert "accuracy" not in frontier


@functools.cache
def _boosting_ee():
    X, _, y, _ = _data()
    return EarlyExitRegressor(
        GradientBoostingRegressor(n_estimators=60, random_state=0),
        exits=[10, 30, 60],
        cv=3,
        random_state=0,
    ).fit(X, y)


@pytest.mark.budget
@pytest.mark.parametrize("policy", REGRESSION_POLICIES)
@pytest.mark.parametrize("budget", [34.0])
def test_every_policy_meets_a_budget_on_boosting_exits_and_routes_like_offline(
    policy, budget
):
    _, X_test, _, _ = _data()
    ee = _boosting_ee().with_policy(budget=budget, policy=policy)
    assert_budget_spent_well(ee)
    assert ee.policy_rows_cost_ <= budget * (1 + 1e-9)
    answers = ee._policy_answers(exit_probas(ee.source_, X_test))
    assert_array_equal(ee.predict_exit(X_test), ee.policy_.exit_stage(answers))
    assert np.isfinite(ee.expected_error_) and ee.expected_error_ > 0


@pytest.mark.budget
@pytest.mark.parametrize("policy", ["linear", "constant", "eenet"])
@pytest.mark.parametrize("budget", [6.0])
def test_learned_policies_spend_a_cascade_budget(policy, budget):
    """The heuristics cannot (the linear first stage gives them nothing to
    rank its rows by: every row or none exits there); the learned rules see
    its prediction."""
    cascade = _fitted_cascade().with_policy(budget=budget, policy=policy)
    assert_budget_spent_well(cascade)
    assert cascade.budget_status_ == "spent"


@pytest.mark.budget
def test_boosting_exits_spend_a_budget_in_trees_and_absolute_error():
    X, X_test, y, y_test = _data()
    ee = EarlyExitRegressor(
        GradientBoostingRegressor(n_estimators=60, random_state=0),
        exits=[10, 30, 60],
        budget=25.0,
        loss="absolute_error",
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert_array_equal(ee.exits_, [10, 30, 60])
    assert_budget_spent_well(ee)
    assert ee.budget_status_ == "spent"
    assert ee.predict_cost(X_test).mean() == pytest.approx(25.0, rel=0.1)
    test = ee.evaluate_frontier(X_test, y_test)
    assert test["error_at_fit"] == pytest.approx(
        mean_absolute_error(y_test, ee.predict(X_test))
    )
    assert test["error_at_fit"] < test["stage_errors"][0]  # better than 10 trees


def test_sample_weight_is_the_same_as_repeated_rows():
    X, X_test, y, _ = _data()
    weight = np.random.default_rng(0).integers(0, 3, 1000)
    forest = _frozen_forest_ee().estimator
    weighted = EarlyExitRegressor(forest, exits=[3, 6, 12, 24], cost_weight=0.02)
    repeated = clone(weighted)
    weighted.fit(X[1000:], y[1000:], sample_weight=weight)
    rows = np.repeat(np.arange(1000, 2000), weight)
    repeated.fit(X[rows], y[rows])
    assert_array_equal(weighted.predict_exit(X_test), repeated.predict_exit(X_test))
    assert weighted.policy_rows_cost_ == pytest.approx(repeated.policy_rows_cost_)


@pytest.mark.parametrize("seed", [103, 104])
def test_a_budget_search_chooses_alike_for_weights_and_repeated_rows(seed):
    """The policy rows' folds group equal rows; the target is scaled by a
    weighted centre that weights and copies compute a unit in the last place
    apart, which must not split or move a group (it did: another kind kept).
    Seeds where it did, on frozen stages and a weak signal."""
    rng = np.random.default_rng(7)
    X_fit, y_fit = rng.random((200, 4)), rng.standard_normal(200)
    stages = [
        ("ridge", FrozenEstimator(Ridge().fit(X_fit, y_fit))),
        ("knn", FrozenEstimator(KNeighborsRegressor(5).fit(X_fit, y_fit))),
        (
            "forest",
            FrozenEstimator(
                RandomForestRegressor(n_estimators=10, random_state=0).fit(X_fit, y_fit)
            ),
        ),
    ]
    rng = np.random.default_rng(seed)
    X = rng.random((150, 4))
    y = 0.5 * np.sin(8 * X[:, 0]) + rng.standard_normal(150)
    weight = rng.integers(1, 4, 150)
    rows = np.repeat(np.arange(150), weight)
    cascade = AdaptiveCascadeRegressor(
        stages, costs=[1.0, 5.0, 30.0], budget=15.0, random_state=0
    )
    weighted = clone(cascade).fit(X, y, sample_weight=weight.astype(float))
    repeated = clone(cascade).fit(X[rows], y[rows])
    assert weighted.budget_search_["chosen"] == repeated.budget_search_["chosen"]
    assert weighted.expected_cost_ == pytest.approx(repeated.expected_cost_)
    assert weighted.expected_error_ == pytest.approx(repeated.expected_error_)


def test_pickle_and_with_policy_keep_the_answers():
    cascade = _fitted_cascade()
    _, X_test, _, _ = _data()
    again = pickle.loads(pickle.dumps(cascade))
    assert_array_equal(again.predict(X_test), cascade.predict(X_test))
    same = cascade.with_policy(cost_weight=cascade.cost_weight)
    assert_array_equal(same.predict_exit(X_test), cascade.predict_exit(X_test))
    cheaper = cascade.with_policy(cost_weight=1.0)
    assert cheaper.predict_cost(X_test).mean() < cascade.predict_cost(X_test).mean()


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make", [_cascade, lambda **p: clone(_frozen_forest_ee()).set_params(**p)]
)
def test_class_features_are_refused_for_a_regressor(make):
    # A regressor's answers have no predicted class; "classes" is the
    # classifiers' feature set.
    X, _, y, _ = _data()
    with pytest.raises(
        InvalidParameterError, match="'policy_features'.*is for classifiers"
    ):
        make(policy_features="classes").fit(X, y)


def test_bad_stages_and_models_get_clear_errors():
    X, _, y, _ = _data()
    with pytest.raises(TypeError, match="is a classifier; an AdaptiveCascadeRegressor"):
        AdaptiveCascadeRegressor(
            [("lr", LogisticRegression()), ("tree", DecisionTreeRegressor())]
        ).fit(X, y)
    with pytest.raises(TypeError, match="use EarlyExitRegressor"):
        EarlyExitClassifier(GradientBoostingRegressor()).fit(X, y > 3)
    with pytest.raises(TypeError, match="use EarlyExitClassifier"):
        EarlyExitRegressor(GradientBoostingClassifier()).fit(X, y)
    with pytest.raises(TypeError, match="HistGradientBoostingRegressor cannot carry"):
        EarlyExitRegressor(HistGradientBoostingRegressor()).fit(X, y)
    with pytest.raises(TypeError, match="use EarlyExitClassifier for it"):
        EarlyExitRegressor(
            ChainExits(["passthrough", "passthrough"], [LogisticRegression()] * 2)
        ).fit(X, y)
    chain = ChainExitsRegressor(
        ["passthrough", "passthrough"], [LinearRegression()] * 2
    )
    with pytest.raises(TypeError, match="use EarlyExitRegressor for it"):
        EarlyExitClassifier(chain).fit(X, y > 3)
    with pytest.raises(TypeError, match="has no predict: each exit"):
        EarlyExitRegressor(
            ChainExitsRegressor([None, None], [StandardScaler(), StandardScaler()])
        ).fit(X, y)
    with pytest.raises(ValueError, match="policy"):
        _cascade(policy="max_proba").fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        _cascade(loss="zero_one").fit(X, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        _cascade().fit(X, np.where(np.arange(len(y)) == 3, np.nan, y))
    with pytest.raises(ValueError, match="already costs|below the first stage"):
        _cascade(budget=0.5).fit(X, y)


class _NaNRegressor(LinearRegression):
    def predict(self, X):
        prediction = super().predict(X)
        prediction[::7] = np.nan
        return prediction


class _TwoOutputs(LinearRegression):
    def predict(self, X):
        prediction = super().predict(X)
        return np.column_stack([prediction, prediction])


class _OneRowShort(LinearRegression):
    def predict(self, X):
        return super().predict(X)[:-1]


class _StdNotReturned(LinearRegression):
    def predict(self, X, return_std=False):
        return super().predict(X)


class _ShortStd(LinearRegression):
    def predict(self, X, return_std=False):
        prediction = super().predict(X)
        return (prediction, np.ones(len(prediction) - 1)) if return_std else prediction


@pytest.mark.parametrize(
    "stage, message",
    [
        (_NaNRegressor(), "stage 'bad' returned invalid predictions: values that"),
        # The stage's name, not only its class: two stages may share one.
        (
            _TwoOutputs(),
            r"stage 'bad': _TwoOutputs.predict returned predictions of shape "
            r"\(\d+, 2\)",
        ),
        # The count it returned, not the package's (prediction, uncertainty)
        # array built from it.
        (_OneRowShort(), r"stage 'bad' returned (\d+) predictions for \d+ rows"),
        (_StdNotReturned(), r"_StdNotReturned.predict takes return_std, but"),
        (_ShortStd(), r"returned \d+ predictions but \d+ standard deviations"),
    ],
)
def test_a_stage_that_answers_badly_is_named(stage, message):
    X, _, y, _ = _data()
    cascade = AdaptiveCascadeRegressor(
        [("bad", stage), ("tree", DecisionTreeRegressor(max_depth=3))],
        costs=[1, 4],
        cv=3,
    )
    with pytest.raises(ValueError, match=message):
        cascade.fit(X, y)


# ------------------------------------------------- display, scorers, search
def test_display_shows_the_error_or_r2_that_predict_gives():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.metrics import r2_score

    from skadaptive.plot import CostAccuracyDisplay

    cascade = _fitted_cascade()
    _, X_test, _, y_test = _data()
    y_pred = cascade.predict(X_test)
    display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
    assert display.ax_.get_ylabel() == "MSE"
    assert display.chosen_accuracy == pytest.approx(mean_squared_error(y_test, y_pred))
    display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test, metric="r2")
    assert display.ax_.get_ylabel() == "R²"
    assert display.chosen_accuracy == pytest.approx(r2_score(y_test, y_pred))
    held_out = CostAccuracyDisplay.from_estimator(cascade)
    assert held_out.chosen_accuracy == pytest.approx(cascade.policy_rows_error_)
    assert_allclose(held_out.accuracy, cascade.frontier_["error"])
    from_predictions = CostAccuracyDisplay.from_predictions(
        y_test, [y_pred], [cascade.predict_cost(X_test)], metric="mae"
    )
    assert from_predictions.accuracy[0] == pytest.approx(
        mean_absolute_error(y_test, y_pred)
    )
    # A continuous target plots its MSE by default; its "accuracy" is refused.
    default = CostAccuracyDisplay.from_predictions(y_test, [y_pred], [1.0])
    assert default.ax_.get_ylabel() == "MSE"
    assert default.accuracy[0] == pytest.approx(mean_squared_error(y_test, y_pred))
    # metric="error", as from_estimator takes it, is that default (it was
    # refused: "metric must be one of ['accuracy', 'mae', 'mse', 'r2']").
    error = CostAccuracyDisplay.from_predictions(
        y_test, [y_pred], [1.0], metric="error"
    )
    assert error.ax_.get_ylabel() == "MSE"
    assert error.accuracy[0] == default.accuracy[0]
    with pytest.raises(ValueError, match="y_true is continuous"):
        CostAccuracyDisplay.from_predictions(y_test, [y_pred], [1.0], metric="accuracy")
    # A target of whole numbers (as load_diabetes's) reads as class labels to
    # type_of_target; its continuous predictions say it is a regression.
    whole = np.round(y_test)
    default = CostAccuracyDisplay.from_predictions(whole, [y_pred], [1.0])
    assert default.ax_.get_ylabel() == "MSE"
    assert default.accuracy[0] == pytest.approx(mean_squared_error(whole, y_pred))
    with pytest.raises(ValueError, match=r"y_preds\[0\] is continuous"):
        CostAccuracyDisplay.from_predictions(whole, [y_pred], [1.0], metric="accuracy")
    # R² of a constant target is scikit-learn's: 1 if exact, else 0.
    constant = np.full(len(y_test), 14.0)
    for answers, expected in ((y_pred, 0.0), (constant, 1.0)):
        shown = CostAccuracyDisplay.from_predictions(
            constant, [answers], [1.0], metric="r2"
        )
        assert shown.accuracy[0] == r2_score(constant, answers) == expected
    on_test = CostAccuracyDisplay.from_estimator(cascade, X_test, constant, metric="r2")
    assert on_test.chosen_accuracy == 0.0
    assert np.isfinite(on_test.accuracy).all()
    X, _, y, _ = _data()
    absolute = _cascade(loss="absolute_error").fit(X[:600], y[:600])
    with pytest.raises(ValueError, match="metric='r2' is 1 - MSE"):
        CostAccuracyDisplay.from_estimator(absolute, metric="r2")
    with pytest.raises(ValueError, match="the estimator's figures are its own error"):
        CostAccuracyDisplay.from_estimator(absolute, metric="mse")
    assert (
        CostAccuracyDisplay.from_estimator(absolute, metric="mae").ax_.get_ylabel()
        == "MAE"
    )


def test_cost_aware_scorer_is_r2_minus_the_weighted_cost():
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV

    from skadaptive.metrics import (
        cheapest_within,
        make_average_cost_scorer,
        make_cost_aware_scorer,
    )

    cascade = _fitted_cascade()
    _, X_test, _, y_test = _data()
    cost = cascade.predict_cost(X_test).mean() / cascade.cumulative_costs_[-1]
    expected = r2_score(y_test, cascade.predict(X_test)) - 0.1 * cost
    assert make_cost_aware_scorer(0.1)(cascade, X_test, y_test) == pytest.approx(
        expected
    )
    # A NaN target is refused as score() refuses it (a NaN score, before).
    y_nan = y_test.copy()
    y_nan[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cascade.score(X_test, y_nan)
    with pytest.raises(ValueError, match="NaN"):
        make_cost_aware_scorer(0.1)(cascade, X_test, y_nan)
    X, _, y, _ = _data()
    search = GridSearchCV(
        _cascade(),
        {"cost_weight": [0.0, 0.05, 5.0]},
        cv=2,
        scoring={"r2": "r2", "neg_average_cost": make_average_cost_scorer()},
        refit=cheapest_within(0.05, score="r2"),
    ).fit(X[:800], y[:800])
    assert search.best_params_["cost_weight"] in (0.0, 0.05)


def test_chain_exits_regressor_answers_each_head_on_its_blocks_output():
    X, X_test, y, y_test = _data()
    chain = ChainExitsRegressor(
        ["passthrough", SplineTransformer(n_knots=6)],
        [BayesianRidge(), RandomForestRegressor(n_estimators=20, random_state=0)],
    )
    ee = EarlyExitRegressor(chain, costs=[1.0, 10.0], cost_weight=0.05, cv=3)
    ee.fit(X, y)
    fitted = ee.estimator_
    first, _ = fitted.run_stage(0, X_test, None)
    assert_allclose(first[:, 0], fitted.heads_[0].predict(X_test))
    assert (first[:, 1] > 0).all()  # BayesianRidge's return_std
    splines = fitted.blocks_[1].transform(X_test)
    assert_allclose(fitted.predict(X_test), fitted.heads_[1].predict(splines))
    routed = ee.route(X_test)
    assert len(np.unique(routed.exit_stage)) == 2
    last = routed.exit_stage == 1
    assert_allclose(routed.prediction[last], fitted.heads_[1].predict(splines[last]))
    assert_allclose(routed.prediction[~last], fitted.heads_[0].predict(X_test[~last]))
    assert ee.score(X_test, y_test) > 0.8


@pytest.mark.parametrize("make", [_fitted_cascade, _boosting_ee])
def test_at_the_full_budget_the_policy_is_no_worse_than_the_last_stage(make):
    fitted = make()
    full = fitted.with_policy(budget=fitted.cumulative_costs_[-1])
    assert full.policy_rows_error_ <= fitted.stage_errors_[-1] * (1 + 1e-12)
    assert full.policy_rows_cost_ <= fitted.cumulative_costs_[-1] * (1 + 1e-9)


def test_class_labels_are_refused_with_the_classifier_named():
    X, _, _, _ = _data()
    labels = np.array(["cat", "dog"])[np.arange(len(X)) % 2]
    with pytest.raises(ValueError, match="use AdaptiveCascadeClassifier"):
        _cascade().fit(X, labels)
    with pytest.raises(ValueError, match="use EarlyExitClassifier"):
        EarlyExitRegressor(GradientBoostingRegressor()).fit(X, labels)
    # The value named is one that is not a number.
    mostly_numbers = np.arange(len(X)).astype(object)
    mostly_numbers[-1] = "oops"
    with pytest.raises(ValueError, match=r"not numbers \(e.g. 'oops'\)"):
        _cascade().fit(X, mostly_numbers)
    with pytest.raises(ValueError, match="has one exit.*fit it with more"):
        EarlyExitRegressor(GradientBoostingRegressor(n_estimators=1)).fit(X, X[:, 0])


# ---------------------------------------------- pieces the policies rely on
def test_regression_features_and_heuristics_have_the_documented_signs():
    from skadaptive.policies import heuristic_score, regression_features

    first = np.array([[2.0, 0.5], [0.0, 0.1]])
    second = np.array([[1.5, 0.2], [1.0, 0.4]])
    # |second - first|: 0.5 and 1.0 (not signed)
    features = regression_features([first, second], "confidence")
    assert_allclose(features, [[0.2, 0.5], [0.4, 1.0]])
    history = regression_features([first, second], "history")
    assert_allclose(history[:, 2:5], [[1.5, 2.25, 2.0], [1.0, 1.0, 0.0]])
    # higher means exit sooner: small disagreement, small uncertainty
    assert_allclose(heuristic_score("disagreement", [first, second]), [-0.5, -1.0])
    assert_allclose(heuristic_score("disagreement", [first]), [0.0, 0.0])
    assert_allclose(heuristic_score("uncertainty", [first, second]), [-0.2, -0.4])


def test_eenet_scores_rank_rows_by_the_error_they_predict():
    cascade = _fitted_cascade().with_policy(cost_weight=0.05, policy="eenet")
    answers, y_scaled, _ = cascade._policy_rows()
    score = cascade.policy_.rules[0].score(answers[:1])
    loss = (answers[0][:, 0] - y_scaled) ** 2
    # minus the predicted loss: high scores for the rows the first stage gets
    # right (the linear rows), low for the others
    assert np.corrcoef(score, -loss)[0, 1] > 0.5
    _, X_test, _, y_test = _data()
    budget = cascade.with_policy(budget=13.0, policy="eenet")
    answers_test = [m.predict(X_test) for m in budget.estimators_]
    random_mse = float(
        budget.exit_rates_
        @ [mean_squared_error(y_test, answer) for answer in answers_test]
    )
    assert mean_squared_error(y_test, budget.predict(X_test)) < 0.6 * random_mse


def test_eenet_scores_predict_the_estimators_loss():
    from skadaptive.policies._eenet import fit_eenet_scorers

    # The first exit errs by 2 on every row: an absolute error of 2 (a
    # squared one of 4), which its score is minus of.
    y = np.random.default_rng(0).normal(size=200)
    answers = [np.column_stack([y + 2.0, np.zeros(200)]), np.column_stack([y, y * 0])]
    for loss, error in (("absolute_error", 2.0), ("squared_error", 4.0)):
        scorers = fit_eenet_scorers(answers, y, loss=loss)
        assert_allclose(scorers.scores(answers[:1])[0], -error)


def test_verbose_fit_names_the_error_of_the_loss(capsys):
    X, _, y, _ = _data()
    for loss, name in (("absolute_error", "MAE"), ("squared_error", "MSE")):
        _cascade(loss=loss, verbose=1, cv=2).fit(X[:300], y[:300])
        out = capsys.readouterr()
        assert f"expected {name} " in out.out + out.err


def test_oracle_and_budget_search_figures_are_errors_of_the_policy_rows():
    cascade = _fitted_cascade().with_policy(budget=8.0)
    answers, y_scaled, _ = cascade._policy_rows()
    losses = np.stack([(a[:, 0] - y_scaled) ** 2 for a in answers])
    unit = cascade.target_scale_**2
    assert cascade.oracle_error_ == pytest.approx(losses.min(axis=0).mean() * unit)
    assert_allclose(cascade.stage_errors_, losses.mean(axis=1) * unit)
    search = cascade.budget_search_
    assert search["policy_rows_error"][search["chosen"]] == pytest.approx(
        cascade.policy_rows_error_
    )
    assert (search["policy_rows_error"] > 0).all()


@pytest.mark.parametrize("magnitude", [1e-170, 1e170])
def test_the_target_scale_neither_underflows_nor_overflows(magnitude):
    y = np.array([1.0, 2.0, 3.0, 10.0])
    center, scale = regression_scale(y * magnitude)
    assert center == pytest.approx(4.0 * magnitude)
    assert scale == pytest.approx(np.sqrt(12.5) * magnitude)


def test_evaluate_frontier_refuses_negative_weights():
    cascade = _fitted_cascade()
    _, X_test, _, y_test = _data()
    weight = np.ones(len(y_test))
    weight[::2] = -1.0
    with pytest.raises(ValueError, match="[Nn]egative"):
        cascade.evaluate_frontier(X_test, y_test, sample_weight=weight)


def test_the_target_scale_is_weighted_as_repeated_rows():
    X, _, y, _ = _data()
    weight = np.random.default_rng(1).integers(0, 4, len(y)).astype(float)
    weighted = _cascade(cost_weight=0.05).fit(X, y, sample_weight=weight)
    rows = np.repeat(np.arange(len(y)), weight.astype(int))
    expected = regression_scale(y[rows])
    assert (weighted.target_center_, weighted.target_scale_) == pytest.approx(expected)


def test_stages_that_are_not_regressors_are_refused():
    from sklearn.cluster import KMeans
    from sklearn.gaussian_process import GaussianProcessRegressor

    X, _, y, _ = _data()
    with pytest.raises(TypeError, match=r"Stage 'km' \(KMeans\) is a clusterer"):
        AdaptiveCascadeRegressor([("km", KMeans(3)), ("r", LinearRegression())]).fit(
            X, y
        )
    with pytest.raises(
        TypeError, match=r"Head 0 \(LogisticRegression\) is a classifier"
    ):
        ChainExitsRegressor([None, None], [LogisticRegression()] * 2).fit(X, y > 3)
    two = FrozenEstimator(
        GaussianProcessRegressor().fit(X[:50], np.c_[y[:50], -y[:50]])
    )
    with pytest.raises(ValueError, match="returned predictions of shape"):
        AdaptiveCascadeRegressor(
            [("gp", two), ("r", LinearRegression())], costs=[1, 2], cv=3
        ).fit(X[:200], y[:200])


def test_the_spread_of_a_forest_is_exact_for_a_target_far_from_zero():
    X, X_test, y, _ = _data()
    forest = RandomForestRegressor(n_estimators=12, random_state=0).fit(X, y + 1e9)
    trees = np.stack([t.predict(X_test.astype(np.float32)) for t in forest.estimators_])
    answers = exit_probas(TreeEnsembleExits(forest, [4, 12]), X_test)
    assert_allclose(answers[0][:, 1], trees[:4].std(axis=0), rtol=1e-6, atol=1e-6)
    assert_allclose(answers[1][:, 1], trees.std(axis=0), rtol=1e-6, atol=1e-6)
    assert_allclose(answers[1][:, 0], forest.predict(X_test), rtol=1e-12)


def test_a_regressor_keeps_its_fold_models_and_their_uncertainty():
    """``refit=False`` with ``cv=3``: each stage's three fold models answer
    new rows, each row from the fold model of its content's hash, with that
    model's own uncertainty (a forest's spread)."""
    from skadaptive.stages._cross_fitted import CrossFitted

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = X[:, 0] + np.sin(3 * X[:, 1]) + 0.1 * rng.normal(size=400)
    X_new = rng.normal(size=(200, 4))
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("forest", RandomForestRegressor(10, random_state=0))],
        costs=[1, 10],
        cost_weight=0.01,
        cv=3,
        refit=False,
        random_state=0,
    ).fit(X, y)
    forest = cascade.estimators_[1]
    assert isinstance(forest, CrossFitted) and len(forest.models) == 3
    folds = forest.fold_of(X_new)
    expected = np.vstack(
        [
            regression_answers(forest.models[fold], row[None])
            for fold, row in zip(folds, X_new)
        ]
    )
    assert_allclose(regression_answers(forest, X_new), expected)
    assert (expected[:, 1] > 0).all()  # the trees' spread, not a placeholder
    routed = cascade.route(X_new)
    last = routed.exit_stage == 1
    assert_allclose(cascade.predict(X_new)[last], expected[last, 0])


@pytest.mark.parametrize("outlier", [1e13, 1e17])
def test_each_row_gets_its_stage_s_own_prediction_next_to_a_large_centre(outlier):
    """Answers were scaled for the policy and scaled back, which rounded every
    prediction to the spacing of the target's centre: with 10 % of the
    targets at 1e17, a tree's 8.836 came back as 8.0. The policy now sees the
    scaled answers while each row keeps its stage's own, bit for bit."""
    rng = np.random.RandomState(0)
    X = rng.rand(2000, 3)
    y = np.round(10 * X[:, 0], 1)
    y[X[:, 1] > 0.9] = outlier
    fit, policy, new = slice(0, 1000), slice(1000, 1500), slice(1500, None)
    small = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X[fit], y[fit])
    large = DecisionTreeRegressor(max_depth=8, random_state=0).fit(X[fit], y[fit])
    stages = [("small", FrozenEstimator(small)), ("large", FrozenEstimator(large))]
    for knob in ({"cost_weight": 0.0}, {"budget": 5.0}):
        cascade = AdaptiveCascadeRegressor(stages, costs=[1, 10], **knob)
        cascade.fit(X[policy], y[policy])
        exits = cascade.predict_exit(X[new])
        own = np.where(exits == 0, small.predict(X[new]), large.predict(X[new]))
        assert_array_equal(cascade.predict(X[new]), own)
    forest = RandomForestRegressor(20, random_state=0).fit(X[fit], y[fit])
    early = EarlyExitRegressor(FrozenEstimator(forest), exits=[10, 20], cost_weight=0)
    early.fit(X[policy], y[policy])
    # On the policy's scale the exits' losses differ by ~1e-35 on most rows:
    # which exit a row gets is noise, so every row is checked against its
    # own exit's answer (the last exit's is the forest's, bit for bit).
    own = [answer[:, 0] for answer in exit_probas(early._stage_source(), X[new])]
    assert_array_equal(own[-1], forest.predict(X[new]))
    exits = early.predict_exit(X[new])
    assert_array_equal(early.predict(X[new]), np.choose(exits, own))
    assert np.abs(own[0][y[new] < 100] - np.round(own[0][y[new] < 100])).max() > 0.1


def test_rows_sorted_by_the_target_give_the_policy_representative_folds():
    # An int cv cut the rows in their order: with rows sorted by y each fold's
    # models never saw the targets they answered, the policy learned from
    # those answers, and on new rows it cost a third of the expected_cost_
    # it reported (8.7 against 24.9 for a budget of 25), at twice the error.
    X, y = make_friedman1(n_samples=2500, noise=1.0, random_state=0)
    X_new, y_new = X[1500:], y[1500:]
    order = np.argsort(y[:1500])
    early_exit = EarlyExitRegressor(
        GradientBoostingRegressor(n_estimators=60, random_state=0),
        exits=[5, 15, 30, 60],
        budget=25,
        cv=3,
        random_state=0,
    ).fit(X[:1500][order], y[:1500][order])
    cost_new = early_exit.predict_cost(X_new).mean()
    error_new = mean_squared_error(y_new, early_exit.predict(X_new))
    assert abs(cost_new - early_exit.expected_cost_) < 0.15 * 25
    assert abs(error_new - early_exit.expected_error_) < 0.25 * error_new


class _Spiky(RegressorMixin, BaseEstimator):
    """A linear model that diverges (predicts ``big``) on about 1 % of rows."""

    def __init__(self, big=1e170):
        self.big = big

    def fit(self, X, y):
        self.model_ = LinearRegression().fit(X, y)
        return self

    def predict(self, X):
        prediction = self.model_.predict(X)
        prediction[X[:, 0] > 0.99] = self.big
        return prediction


def test_a_stage_that_diverges_on_some_rows():
    # 1e170 overflowed the policy's squared errors: Ridge then said the
    # user's X contained NaN. 1e30 silently took over the policy's features
    # (every other row alike: R^2 0.86 -> 0.29 on new rows).
    rng = np.random.default_rng(0)
    X = rng.random((900, 5))
    y = 3 * X[:, 1] + np.sin(8 * X[:, 2]) + 0.1 * rng.standard_normal(900)

    def cascade(big):
        stages = [("spiky", _Spiky(big)), ("tree", DecisionTreeRegressor(max_depth=4))]
        return AdaptiveCascadeRegressor(stages, costs=[1, 20], cv=3, budget=8)

    with pytest.raises(
        ValueError,
        match=r"'spiky' answered with .* more than 1e\+150 times .* on 11 rows of 900",
    ):
        cascade(1e170).fit(X, y)
    with pytest.warns(
        UserWarning,
        match=r"'spiky' answered with .* more than 1e\+06 times .* on 11 rows of 900",
    ) as record:
        cascade(1e30).fit(X, y)
    # Nor is a price of cost found for it infinite (inf - inf in the rules).
    assert not [w for w in record if issubclass(w.category, RuntimeWarning)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = cascade(1e3).fit(X, y)
    # At prediction too (it returned 1e170 with numpy's overflow warnings).
    fitted.named_estimators_["spiky"].big = 1e170
    new = X[:20].copy()
    new[3, 0] = 0.995
    with pytest.raises(ValueError, match=r"'spiky' answered with .* on 1 row of"):
        fitted.predict(new)
    new[3, 0] = 0.5
    fitted.predict(new)


def test_a_chain_head_that_answers_two_columns_is_named_by_its_exit():
    """Heads of one class are told apart: the error says which exit's head."""
    X, _, y, _ = _data()
    chain = ChainExitsRegressor(
        ["passthrough", "passthrough"], [LinearRegression(), _TwoOutputs()]
    )
    with pytest.raises(
        ValueError, match=r"the head of exit 1: _TwoOutputs.predict returned"
    ):
        EarlyExitRegressor(chain, costs=[1, 2], cv=3).fit(X, y)


# ------------------------------------------------- figures a mutation review
def test_evaluate_frontier_refuses_targets_that_are_not_finite():
    X, X_test, _, y_test = _data()
    cascade = _fitted_cascade()
    for bad in (np.nan, np.inf):
        y_bad = y_test.copy()
        y_bad[0] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            cascade.evaluate_frontier(X_test, y_bad)


def test_numbers_held_as_objects_reach_a_return_std_stage_as_floats():
    # BayesianRidge's return_std path does arithmetic on X as given.
    X, X_test, y, _ = _data()
    model = BayesianRidge().fit(X, y)
    assert_allclose(
        regression_answers(model, X_test.astype(object)),
        regression_answers(model, X_test),
    )
    cascade = AdaptiveCascadeRegressor(
        [
            ("bayes", FrozenEstimator(model)),
            ("forest", FrozenEstimator(_fitted_cascade().estimators_[1])),
        ],
        costs=[1.0, 30.0],
        cost_weight=0.05,
    ).fit(X[:300], y[:300])
    assert_allclose(cascade.predict(X_test.astype(object)), cascade.predict(X_test))


def test_a_stage_that_predicts_one_column_of_shape_n_by_1_is_one_target():
    X, X_test, y, _ = _data()
    column = LinearRegression().fit(X[:1000], y[:1000].reshape(-1, 1))
    assert column.predict(X_test).shape == (len(X_test), 1)
    assert_allclose(
        regression_answers(column, X_test)[:, 0], column.predict(X_test)[:, 0]
    )
    cascade = AdaptiveCascadeRegressor(
        [
            ("column", FrozenEstimator(column)),
            ("forest", FrozenEstimator(_fitted_cascade().estimators_[1])),
        ],
        costs=[1.0, 30.0],
        cost_weight=0.05,
    ).fit(X[1000:], y[1000:])
    answered_first = cascade.predict_exit(X_test) == 0
    assert answered_first.any()
    assert_allclose(
        cascade.predict(X_test)[answered_first],
        column.predict(X_test)[answered_first, 0],
    )


def test_a_target_constant_on_its_weighed_rows_is_constant():
    # Rows of zero weight count for nothing, also for the constant case: the
    # scale is not the rounding noise of 0.7.
    rng = np.random.default_rng(0)
    y = np.r_[np.full(50, 0.7), 5.0, -3.0]
    weight = np.r_[rng.uniform(0.1, 1, 50), 0.0, 0.0]
    assert regression_scale(y, weight)[1] == 1.0
    assert regression_scale(y, weight, "absolute_error")[1] == 1.0


def test_the_absolute_error_scale_is_the_lower_median_and_its_deviation():
    # The centre is the lower median, 2 (of 2 and 3); the scale is the mean
    # absolute deviation from it, (1 + 0 + 1 + 8) / 4 = 2.5, by which a
    # constant answer of 2 errs.
    assert regression_scale(
        np.array([1.0, 2.0, 3.0, 10.0]), None, "absolute_error"
    ) == (
        2.0,
        2.5,
    )


def test_the_oracle_answers_a_tie_at_the_cheaper_exit():
    X, _, y, _ = _data()
    model = FrozenEstimator(Ridge().fit(X[:1000], y[:1000]))
    cascade = AdaptiveCascadeRegressor(
        [("a", model), ("b", model)], costs=[1.0, 2.0]
    ).fit(X[1000:], y[1000:])
    assert cascade.oracle_cost_ == 1.0
    assert_array_equal(
        cascade.evaluate_frontier(X[1000:], y[1000:])["oracle_exit_rates"], [1.0, 0.0]
    )


def test_a_regressors_budget_reference_is_the_disagreement_per_exit():
    from skadaptive.policies import heuristic_score
    from skadaptive.policies._policy_search import reference_exits

    rng = np.random.default_rng(0)
    # Predictions and uncertainties that differ row by row.
    answers = [
        np.column_stack([rng.normal(size=50), rng.uniform(0.1, 1.0, 50)])
        for _ in range(3)
    ]
    reference = reference_exits(answers, "squared_error")
    assert reference.kind == "disagreement per exit"
    for k in range(2):
        assert_allclose(
            reference.scores[k], heuristic_score("disagreement", answers[: k + 1])
        )
