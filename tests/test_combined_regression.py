"""Regression exits that answer with every prediction computed so far."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_friedman1
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.tree import DecisionTreeRegressor

from skadaptive import AdaptiveCascadeRegressor, EarlyExitRegressor
from skadaptive.stages import RegressionCombiner, exit_probas
from skadaptive.stages._combined import CombinedExits, one_standard_error_choice
from skadaptive.stages._combined_regression import fit_regression_combiners


class _NoisyCopy(RegressorMixin, BaseEstimator):
    """Predicts column 0 (the target) plus the noise in column ``column``."""

    def __init__(self, column=1):
        self.column = column

    def fit(self, X, y):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        X = np.asarray(X)
        return X[:, 0] + X[:, self.column]


def _independent_noise(n_rows, seed):
    """Rows ``[target, noise 1, noise 2]``: two stages with independent errors."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=n_rows) * 3
    return np.column_stack([target, rng.normal(size=(n_rows, 2))]), target


def _noisy_cascade(answer, **params):
    stages = [
        (name, FrozenEstimator(_NoisyCopy(column).fit(np.zeros((1, 3)), None)))
        for name, column in (("first", 1), ("second", 2))
    ]
    params = {"costs": [1, 1], "cost_weight": 0.0, "random_state": 0, **params}
    return AdaptiveCascadeRegressor(stages, answer=answer, **params)


def test_independent_errors_combined_beats_every_stage_at_full_cost():
    """Two stages whose errors are independent with variance 1: their average
    has variance 1/2, so the combined last exit is better than either on new
    rows, and the policy sends every row on to it."""
    X, y = _independent_noise(600, seed=0)
    X_test, y_test = _independent_noise(4000, seed=1)
    combined = _noisy_cascade("combined").fit(X, y)
    plain = _noisy_cascade("stage").fit(X, y)
    last = combined.combiners_[1]
    assert combined.combiners_[0].kind == "stage"
    assert last.kind in ("blend", "linear")
    np.testing.assert_allclose(last.weights, [0.5, 0.5], atol=0.1)
    stage_mse = [np.mean((s.predict(X_test) - y_test) ** 2) for s in plain.estimators_]
    combined_mse = np.mean((combined.predict(X_test) - y_test) ** 2)
    assert min(stage_mse) > 0.9
    assert combined_mse < 0.6 < min(stage_mse)
    # The policy sends (nearly) every row on to the combined last exit.
    assert np.mean(combined.predict_exit(X_test) == 1) > 0.99
    assert combined.exit_errors_[1] < 0.6 < combined.stage_errors_[1]
    np.testing.assert_allclose(plain.exit_errors_, plain.stage_errors_)


@pytest.mark.parametrize("noise", [1e-2, 1e-4, 1e-6])
def test_stages_far_more_accurate_than_the_target_varies_are_combined_alike(noise):
    """The same two stages with errors `noise` times smaller (the target
    still varies by 3): the blend and the stacking fit their residuals, so
    their average still halves the error, however small."""
    X, y = _independent_noise(600, seed=0)
    X_test, y_test = _independent_noise(4000, seed=1)
    X[:, 1:] *= noise
    X_test[:, 1:] *= noise
    combined = _noisy_cascade("combined").fit(X, y)
    assert combined.combiners_[1].kind in ("blend", "linear")
    np.testing.assert_allclose(combined.combiners_[1].weights, [0.5, 0.5], atol=0.1)
    stage_mse = np.mean(X_test[:, 2] ** 2)
    combined_mse = np.mean((combined.predict(X_test) - y_test) ** 2)
    assert combined_mse < 0.6 * stage_mse


def test_combiners_see_only_held_out_predictions():
    """An unpruned tree fits its training rows exactly: if the combiners saw
    them its out-of-fold error would be 0; it is the tree's held-out error,
    what answer="stage" reports for the stage."""
    X, y = make_friedman1(400, noise=1.0, random_state=0)
    stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]
    params = dict(costs=[1, 2], cv=4, random_state=0)
    plain = AdaptiveCascadeRegressor(stages, **params).fit(X, y)
    combined = AdaptiveCascadeRegressor(stages, answer="combined", **params).fit(X, y)
    assert combined.estimators_[1].score(X, y) == 1.0  # refitted on all rows
    held_out_error = combined.combiners_[1].cv_error["stage"]
    assert held_out_error > 1.0
    assert held_out_error == pytest.approx(plain.stage_errors_[1])


def test_combiners_are_scored_by_the_estimators_loss():
    """With loss="absolute_error" the combiners' figures (and the choice of
    kind they make) are mean absolute errors in the target's units, as the
    estimator's own figures are: the stage's is its held-out MAE."""
    X, y = make_friedman1(400, noise=1.0, random_state=0)
    stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]
    params = dict(costs=[1, 2], cv=4, random_state=0, loss="absolute_error")
    plain = AdaptiveCascadeRegressor(stages, **params).fit(X, y)
    combined = AdaptiveCascadeRegressor(stages, answer="combined", **params).fit(X, y)
    held_out_error = combined.combiners_[1].cv_error["stage"]
    assert held_out_error == pytest.approx(plain.stage_errors_[1])
    # An MAE, not an MSE: friedman1's tree errs by about 2 here, so its
    # squared error would be several times larger.
    assert 1.0 < held_out_error < 3.0


@pytest.mark.parametrize("kind", ["cascade", "early_exit"])
def test_routing_answers_with_the_combiner_of_the_exit(kind):
    """A routed row's prediction is its exit's combiner applied to every
    exit's prediction of it, in the target's units; the first exit answers
    with its own prediction and uncertainty; the policy decides on the
    combined answers; a row's answer does not depend on its batch."""
    X, y = make_friedman1(1500, noise=1.0, random_state=0)
    y = 1000 * y + 5e4  # far from the policy's scale
    if kind == "cascade":
        estimator = AdaptiveCascadeRegressor(
            [
                ("ridge", Ridge()),
                ("forest", RandomForestRegressor(30, random_state=0)),
                ("boosting", GradientBoostingRegressor(random_state=0)),
            ],
            costs=[1, 2, 4],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    else:
        estimator = EarlyExitRegressor(
            GradientBoostingRegressor(n_estimators=60, random_state=0),
            exits=[10, 20, 60],
            cost_weight=0.02,
            answer="combined",
            cv=3,
            random_state=0,
        )
    estimator.fit(X[:1000], y[:1000])
    X_new, y_new = X[1000:], y[1000:]
    assert all(c.kind != "stage" for c in estimator.combiners_[1:])
    routed = estimator.route(X_new)
    assert len(np.unique(routed.exit_stage)) > 1
    answers = exit_probas(estimator._stage_source(), X_new)
    offline = np.stack([c.combine(answers) for c in estimator.combiners_])
    rows = np.arange(len(X_new))
    expected = offline[routed.exit_stage, rows]
    np.testing.assert_allclose(routed.prediction, expected[:, 0], rtol=1e-12)
    np.testing.assert_allclose(routed.uncertainty, expected[:, 1], rtol=1e-12)
    first = routed.exit_stage == 0
    assert first.any()
    np.testing.assert_array_equal(routed.prediction[first], answers[0][first, 0])
    combined = exit_probas(estimator._answer_source(), X_new)
    np.testing.assert_array_equal(
        estimator.policy_.exit_stage(estimator._policy_answers(combined)),
        routed.exit_stage,
    )
    batched = estimator.set_params(batch_size=7, n_jobs=2).route(X_new)
    np.testing.assert_array_equal(batched.exit_stage, routed.exit_stage)
    np.testing.assert_allclose(batched.prediction, routed.prediction, rtol=1e-12)
    test = estimator.evaluate_frontier(X_new, y_new)
    assert test["error_at_fit"] == pytest.approx(
        np.mean((routed.prediction - y_new) ** 2)
    )
    np.testing.assert_allclose(
        test["stage_errors"], [np.mean((a[:, 0] - y_new) ** 2) for a in answers]
    )
    np.testing.assert_allclose(
        test["exit_errors"], [np.mean((a[:, 0] - y_new) ** 2) for a in offline]
    )
    assert np.all(test["exit_errors"][1:] < test["stage_errors"][1:])


class _InOtherUnits(RegressorMixin, BaseEstimator):
    """A fitted regressor's predictions times ``factor`` plus ``shift``."""

    def __init__(self, model=None, factor=1.0, shift=0.0):
        self.model = model
        self.factor = factor
        self.shift = shift

    def fit(self, X, y):
        self.n_features_in_ = self.model.n_features_in_
        return self

    def predict(self, X):
        return self.factor * self.model.predict(X) + self.shift


def test_the_combiners_do_not_depend_on_the_target_units():
    """The fits work on the policy's scale: the same stages answering in
    other units (times 1000, shifted), with the target in those units, give
    the same kinds, exits and predictions in those units."""
    X, y = make_friedman1(1500, noise=1.0, random_state=0)
    models = [
        Ridge().fit(X[:500], y[:500]),
        DecisionTreeRegressor(max_depth=5, random_state=0).fit(X[:500], y[:500]),
        RandomForestRegressor(20, max_depth=8, random_state=0).fit(X[:500], y[:500]),
    ]

    def cascade(factor, shift):
        stages = [
            (f"s{k}", FrozenEstimator(_InOtherUnits(m, factor, shift).fit(X, y)))
            for k, m in enumerate(models)
        ]
        return AdaptiveCascadeRegressor(
            stages, costs=[1, 2, 4], budget=3.0, answer="combined", random_state=0
        ).fit(X[500:1100], factor * y[500:1100] + shift)

    small, large = cascade(1.0, 0.0), cascade(1000.0, -3e5)
    # The choice of answers is made on the search's scale, and says so.
    reasons = [m.budget_search_["answer_reason"] for m in (small, large)]
    assert all("(losses on the scale the search compares: " in r for r in reasons)
    assert reasons[0].split(" (losses on")[0] == reasons[1].split(" (losses on")[0]
    kinds = [c.kind for c in small.combiners_]
    assert kinds == [c.kind for c in large.combiners_]
    assert "stage" not in kinds[1:]
    np.testing.assert_array_equal(
        small.predict_exit(X[1100:]), large.predict_exit(X[1100:])
    )
    np.testing.assert_allclose(
        1000 * small.predict(X[1100:]) - 3e5, large.predict(X[1100:]), rtol=1e-9
    )


def test_blend_is_the_best_convex_combination_and_linear_is_least_squares():
    rng = np.random.default_rng(0)
    target = rng.normal(size=500)
    predictions = [
        target + rng.normal(size=500),
        0.5 * target + 0.3 * rng.normal(size=500) + 2.0,
        target + 0.5 * rng.normal(size=500),
    ]
    weight = rng.integers(1, 4, size=500).astype(float)
    blend = RegressionCombiner(2, "blend").fit(predictions, target, weight)
    assert blend.bias == 0.0
    assert np.all(blend.weights >= 0) and blend.weights.sum() == pytest.approx(1.0)

    def mse(a):
        return weight @ (np.column_stack(predictions) @ a - target) ** 2

    # No point of the simplex on a fine grid is better.
    grid = [
        np.array([a, b, 1 - a - b])
        for a in np.linspace(0, 1, 41)
        for b in np.linspace(0, 1, 41)
        if a + b <= 1 + 1e-12
    ]
    assert mse(blend.weights) <= min(mse(a) for a in grid) + 1e-9
    linear = RegressionCombiner(2, "linear").fit(predictions, target, weight)
    reference = LinearRegression().fit(
        np.column_stack(predictions), target, sample_weight=weight
    )
    np.testing.assert_allclose(linear.weights, reference.coef_, rtol=1e-3)
    assert linear.bias == pytest.approx(reference.intercept_, abs=1e-3)
    # Only the weights' ratios count.
    again = RegressionCombiner(2, "linear").fit(predictions, target, 10 * weight)
    np.testing.assert_allclose(again.weights, linear.weights, rtol=1e-10)


def test_in_units_gives_the_same_combination_in_the_target_units():
    rng = np.random.default_rng(1)
    scaled = [rng.normal(size=(50, 2)) for _ in range(3)]
    target = scaled[2][:, 0] + 0.1 * rng.normal(size=50)
    center, scale = 40.0, 7.0
    for kind in ("blend", "linear"):
        combiner = RegressionCombiner(2, kind).fit(
            [a[:, 0] for a in scaled], target, None
        )
        on_scale = combiner.combine(scaled)
        raw = [
            np.column_stack([center + scale * a[:, 0], scale * a[:, 1]]) for a in scaled
        ]
        in_units = combiner.in_units(center, scale).combine(raw)
        np.testing.assert_allclose(in_units[:, 0], center + scale * on_scale[:, 0])
        np.testing.assert_allclose(in_units[:, 1], raw[2][:, 1])


def test_a_combiner_must_beat_the_stage_by_one_standard_error():
    """Losses equal but on one row: one row's gain is one standard error of
    the paired difference, not more: the stage's own answer is kept."""
    stage = np.ones(100)
    better = stage.copy()
    better[0] = 0.0
    weight = np.full(100, 0.01)
    assert one_standard_error_choice({"stage": stage, "blend": better}, weight) == (
        "stage"
    )
    much_better = stage * 0.5
    much_better[:3] = 1.0
    assert (
        one_standard_error_choice({"stage": stage, "blend": much_better}, weight)
        == "blend"
    )


def test_equal_predictions_keep_the_stage_answers():
    """Where the exits predict the same, no combination is better: every exit
    answers with its own prediction and the policy is the stage answers'."""
    X, y = make_friedman1(600, noise=1.0, random_state=0)
    model = FrozenEstimator(Ridge().fit(X, y))
    params = dict(costs=[1, 2], budget=1.5, cv=3, random_state=0)
    combined = AdaptiveCascadeRegressor(
        [("a", model), ("b", model)], answer="combined", **params
    ).fit(X, y)
    assert [c.kind for c in combined.combiners_] == ["stage", "stage"]


def test_too_few_rows_answer_with_the_stages():
    X, y = make_friedman1(60, random_state=0)
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))],
        costs=[1, 2],
        cv=0.4,
        answer="combined",
        random_state=0,
    )
    with pytest.warns(
        UserWarning, match="needs at least 30 distinct policy rows"
    ) as record:
        cascade.fit(X, y)
    # Every row has weight: no "(of 24 rows)" that says it twice.
    assert str(record[0].message).endswith("there are 24 rows of positive weight.")
    assert [c.kind for c in cascade.combiners_] == ["stage", "stage"]


def test_copies_of_a_row_are_one_row_of_their_weight():
    """fit_regression_combiners with weight k on a row equals k copies of it."""
    rng = np.random.default_rng(0)
    target = rng.normal(size=80)
    answers = [
        np.column_stack([target + rng.normal(size=80), np.zeros(80)]),
        np.column_stack([target + rng.normal(size=80), np.zeros(80)]),
    ]
    weight = rng.integers(0, 4, size=80)
    groups = np.arange(80)
    repeated = np.repeat(np.arange(80), weight)
    weighted = fit_regression_combiners(
        answers, target, weight.astype(float), groups=groups, random_state=0
    )
    copies = fit_regression_combiners(
        [a[repeated] for a in answers],
        target[repeated],
        groups=groups[repeated],
        random_state=0,
    )
    assert weighted[0][1].kind == copies[0][1].kind != "stage"
    np.testing.assert_allclose(weighted[0][1].weights, copies[0][1].weights)
    # The reported out-of-fold errors are weighted means, as the copies' are.
    assert weighted[0][1].cv_error == pytest.approx(copies[0][1].cv_error)
    positive = weight > 0
    np.testing.assert_allclose(
        weighted[1][1][positive][
            np.repeat(np.arange(positive.sum()), weight[positive])
        ],
        copies[1][1],
    )


def test_a_stage_output_is_checked_before_it_is_combined():
    X, y = _independent_noise(300, seed=0)

    class _NaNOnFiveRows(_NoisyCopy):
        def predict(self, X):
            prediction = super().predict(X)
            if len(X) == 5:
                prediction[2] = np.nan
            return prediction

    stages = [
        ("first", FrozenEstimator(_NoisyCopy(1).fit(X, y))),
        ("bad", FrozenEstimator(_NaNOnFiveRows(2).fit(X, y))),
    ]
    cascade = AdaptiveCascadeRegressor(
        stages, costs=[1, 1], cost_weight=0.0, answer="combined", random_state=0
    ).fit(X, y)
    assert cascade.combiners_[1].kind != "stage"
    with pytest.raises(ValueError, match="stage 'bad'.*not finite"):
        cascade.predict(X[:5])


class _ShortSource:
    """A regression source whose second exit answers one row too few."""

    regression = True
    n_stages = 2
    stage_names = ["first", "short"]

    def run_stage(self, stage, X_rows, state):
        answers = np.column_stack([np.asarray(X_rows)[:, 0], np.zeros(len(X_rows))])
        return (answers if stage == 0 else answers[1:]), state

    def keep_rows(self, state, mask):
        return state


def test_a_malformed_stage_output_is_refused_by_name_before_it_is_combined():
    """Combined, an answer one row short would fail inside numpy's
    broadcasting; it is refused with the stage's name first."""
    combiners = [RegressionCombiner(0), RegressionCombiner(1, "blend")]
    combiners[1].weights, combiners[1].bias = np.array([0.5, 0.5]), 0.0
    source = CombinedExits(_ShortSource(), combiners)
    X = np.arange(12.0).reshape(4, 3)
    answers, state = source.run_stage(0, X, None)
    np.testing.assert_array_equal(answers[:, 0], X[:, 0])
    with pytest.raises(ValueError, match="stage 'short'.*4 rows"):
        source.run_stage(1, X, state)


def test_a_random_state_instance_gives_the_same_fit_from_the_cache(tmp_path):
    """With memory=, a fit whose combiners come from the cache answers as one
    that computed them, from the same RandomState instance."""
    X, y = make_friedman1(600, noise=1.0, random_state=0)
    stages = [
        ("ridge", Ridge()),
        ("forest", RandomForestRegressor(10, max_depth=6, random_state=0)),
    ]

    def fit(memory):
        return AdaptiveCascadeRegressor(
            stages,
            costs=[1, 4],
            budget=2.5,
            answer="combined",
            cv=3,
            memory=memory,
            random_state=np.random.RandomState(3),
        ).fit(X[:400], y[:400])

    alone = fit(None)
    computed, cached = fit(str(tmp_path)), fit(str(tmp_path))
    assert cached.combiners_[1].kind != "stage"
    for other in (computed, cached):
        np.testing.assert_array_equal(other.predict(X[400:]), alone.predict(X[400:]))
        np.testing.assert_array_equal(
            other.combiners_[1].weights, alone.combiners_[1].weights
        )


def test_saved_and_loaded_combined_regressor_answers_alike():
    X, y = make_friedman1(600, noise=1.0, random_state=0)
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=6))],
        costs=[1, 3],
        budget=2.0,
        answer="combined",
        cv=3,
        random_state=0,
    ).fit(X[:400], y[:400])
    loaded = pickle.loads(pickle.dumps(cascade))
    np.testing.assert_array_equal(loaded.predict(X[400:]), cascade.predict(X[400:]))
    assert repr(loaded.combiners_[1]) == repr(cascade.combiners_[1])


@pytest.mark.parametrize("option", [{"skips": True}, {"router": "auto"}])
def test_skips_and_router_need_stage_answers(option):
    X, y = make_friedman1(200, random_state=0)
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=3))],
        costs=[1, 3],
        answer="combined",
        **option,
    )
    with pytest.raises(ValueError, match="needs answer='stage'.*mixes the predictions"):
        cascade.fit(X, y)


def test_a_regressor_saved_before_combined_answers_loads_with_stage_answers():
    """Saved before regressors took answer=: no `answer` in its state and its
    exits' combiners ExitCombiner objects of kind "stage". It loads with
    answer="stage" and answers as it did."""
    from skadaptive.stages import ExitCombiner

    X, y = make_friedman1(400, noise=1.0, random_state=0)
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=5))],
        costs=[1, 3],
        budget=2.0,
        cv=3,
        random_state=0,
    ).fit(X[:300], y[:300])
    state = cascade.__getstate__()
    del state["answer"]
    state["combiners_"] = [ExitCombiner(0), ExitCombiner(1)]
    old = AdaptiveCascadeRegressor.__new__(AdaptiveCascadeRegressor)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.get_params()["answer"] == "stage"
    np.testing.assert_array_equal(old.predict(X[300:]), cascade.predict(X[300:]))
    test = old.evaluate_frontier(X[300:], y[300:])
    np.testing.assert_allclose(test["exit_errors"], test["stage_errors"])
    assert old.with_policy(budget=2.5).predict(X[300:]).shape == (100,)
