"""CostAccuracyDisplay: figure objects only, no screen needed."""

import functools

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skadaptive.plot import CostAccuracyDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@functools.cache
def _fitted():
    X, y = load_iris(return_X_y=True)
    cascade = AdaptiveCascadeClassifier(
        [
            ("stump", DecisionTreeClassifier(max_depth=1, random_state=0)),
            ("lr", LogisticRegression(max_iter=1000)),
        ],
        costs=[1, 5],
        cv=3,
        budget=3.0,
    ).fit(X[::2], y[::2])
    return cascade, X[1::2], y[1::2]


def test_from_estimator_on_new_rows_draws_every_element():
    cascade, X, y = _fitted()
    display = CostAccuracyDisplay.from_estimator(
        cascade, X, y, baselines={"thresholds": ([1, 3, 6], [0.6, 0.8, 0.9])}
    )
    test = cascade.evaluate_frontier(X, y)
    assert_allclose(display.cost, test["expected_cost"])
    assert_allclose(display.accuracy, test["accuracy"])
    x, y_drawn = display.line_.get_data()
    assert (np.diff(x) >= 0).all()  # drawn in order of cost
    # Cost on the x axis, accuracy on the y axis, point by point.
    order = np.argsort(test["expected_cost"], kind="stable")
    assert_allclose(x, test["expected_cost"][order])
    assert_allclose(y_drawn, test["accuracy"][order])
    # The oracle on these rows (not the policy rows' oracle of the fit).
    assert_allclose(
        display.oracle_point_.get_offsets()[0],
        [test["oracle_cost"], test["oracle_accuracy"]],
    )
    assert len(x) == len(cascade.frontier_["cost_weight"])
    assert display.stage_points_.get_offsets().shape == (2, 2)
    # A cascade stage on its own costs its own cost (costs=[1, 5]).
    assert_allclose(display.stage_points_.get_offsets()[:, 0], [1, 5])
    assert display.ax_.get_xlabel() == "average cost per row"
    assert display.oracle_point_ is not None
    assert display.chosen_point_ is not None
    assert display.chosen_cost == pytest.approx(cascade.predict_cost(X).mean())
    assert display.chosen_accuracy == pytest.approx(cascade.score(X, y))
    assert set(display.baseline_lines_) == {"thresholds"}
    labels = display.ax_.get_legend_handles_labels()[1]
    assert {"AdaptiveCascadeClassifier", "thresholds", "oracle"} <= set(labels)
    assert display.figure_ is display.ax_.figure


def test_from_estimator_without_rows_shows_the_held_out_frontier():
    cascade, _, _ = _fitted()
    display = CostAccuracyDisplay.from_estimator(cascade, name="mine")
    assert_allclose(display.cost, cascade.frontier_["expected_cost"])
    assert_allclose(display.accuracy, cascade.frontier_["accuracy"])
    assert display.chosen_cost == pytest.approx(cascade.policy_rows_cost_)
    assert display.oracle_cost == pytest.approx(cascade.oracle_cost_)
    assert "held-out" in display.ax_.get_title()
    assert display.line_.get_label() == "mine"


def test_seconds_axis_uses_measured_stage_times():
    cascade, X, y = _fitted()
    display = CostAccuracyDisplay.from_estimator(cascade, X, y, cost="seconds")
    assert display.ax_.get_xlabel() == "average time per row (measured now)"
    # Seconds per row at the fit's cost_batch_size_, measured on these rows.
    assert ((0 < display.stage_costs) & (display.stage_costs < 1.0)).all()
    # Ticks in engineering units ("20 µs"), not raw seconds such as 2e-05.
    display.figure_.canvas.draw()
    ticks = [t.get_text() for t in display.ax_.get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("s") and "e-" not in t for t in ticks), ticks
    assert any(unit in " ".join(ticks) for unit in ("µs", "ns", "ms")), ticks
    with pytest.raises(ValueError, match="pass X and y"):
        CostAccuracyDisplay.from_estimator(cascade, cost="seconds")
    with pytest.raises(ValueError, match="'units' or 'seconds'"):
        CostAccuracyDisplay.from_estimator(cascade, X, y, cost="flops")


def test_early_exit_estimator_and_a_given_axes():
    X, y = load_iris(return_X_y=True)
    ee = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=16, max_depth=1, random_state=0),
        exits=[2, 4, 8, 16],
        cv=3,
    ).fit(X, y)
    _, ax = plt.subplots()
    display = CostAccuracyDisplay.from_estimator(ee, X, y, ax=ax, show_oracle=False)
    assert display.ax_ is ax
    assert display.oracle_point_ is None
    # An exit on its own costs every tree up to it.
    assert_allclose(display.stage_costs, [2, 4, 8, 16])
    assert display.ax_.get_xlabel() == "average trees per row"


def test_from_predictions_accepts_per_row_or_average_costs():
    display = CostAccuracyDisplay.from_predictions(
        [0, 1, 1, 0],
        [[0, 0, 1, 0], [0, 1, 1, 0]],
        [1.0, [1, 5, 1, 5]],
        sample_weight=[1, 1, 1, 1],
        cost_label="trees per row",
    )
    assert_allclose(display.cost, [1.0, 3.0])
    assert_allclose(display.accuracy, [0.75, 1.0])
    assert display.ax_.get_xlabel() == "trees per row"
    with pytest.raises(ValueError, match="same number"):
        CostAccuracyDisplay.from_predictions([0, 1], [[0, 1]], [1.0, 2.0])
    with pytest.raises(ValueError, match="one cost per row"):
        CostAccuracyDisplay.from_predictions([0, 1], [[0, 1]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="has 3 rows"):
        CostAccuracyDisplay.from_predictions([0, 1], [[0, 1, 1]], [1.0])


def test_bad_inputs_are_named():
    cascade, X, y = _fitted()
    with pytest.raises(ValueError, match="both X and y"):
        CostAccuracyDisplay.from_estimator(cascade, X)
    with pytest.raises(TypeError, match="baselines must be a dict"):
        CostAccuracyDisplay.from_estimator(cascade, baselines=[(1, 2)])
    with pytest.raises(ValueError, match="same length"):
        CostAccuracyDisplay.from_estimator(cascade, baselines={"b": ([1, 2], [1])})
    with pytest.raises(ValueError, match="labels \\[7\\]"):
        CostAccuracyDisplay.from_estimator(cascade, X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="same length"):
        CostAccuracyDisplay(cost=[1, 2], accuracy=[0.5]).plot()
    # Weights without rows would be ignored: the held-out figures are the fit's.
    with pytest.raises(ValueError, match="sample_weight weighs the rows X, y"):
        CostAccuracyDisplay.from_estimator(cascade, sample_weight=np.ones(75))
    # Not a skadaptive estimator: said so, not "not fitted".
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    with pytest.raises(TypeError, match="LogisticRegression has no cost-accuracy"):
        CostAccuracyDisplay.from_estimator(lr, X, y)
    # from_predictions: a single cost, a cost that is not finite.
    with pytest.raises(ValueError, match="costs must be a list .* Wrap it: \\[1.0\\]"):
        CostAccuracyDisplay.from_predictions(y, [y], 1.0)
    with pytest.raises(
        ValueError, match="costs\\[0\\] holds values that are not finite"
    ):
        CostAccuracyDisplay.from_predictions(y, [y], [np.nan])
    # Points drawn without their accuracy; names for other stages.
    for point in ("chosen", "oracle"):
        with pytest.raises(ValueError, match=f"{point}_cost and {point}_accuracy go"):
            CostAccuracyDisplay(
                cost=[1, 2], accuracy=[0.5, 0.6], **{f"{point}_cost": 1.5}
            ).plot()
    with pytest.raises(ValueError, match="stage_names names 1 stages but stage_costs"):
        CostAccuracyDisplay(
            cost=[1, 2],
            accuracy=[0.5, 0.6],
            stage_costs=[1, 2],
            stage_accuracies=[0.5, 0.6],
            stage_names=["a"],
        ).plot()


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"skadaptive\[plot\]"):
        CostAccuracyDisplay(cost=[1], accuracy=[1]).plot()


def test_skipping_and_routed_policies_are_drawn_at_what_their_rows_ran():
    """A row that jumps a stage or is started late by a router does not pay
    for the stages it did not run: the display's costs are the estimator's."""
    from _column_stages import ColumnStage, _middle_is_idle

    X, y = _middle_is_idle(600, 0)
    X_test, y_test = _middle_is_idle(2000, 1)
    stages = [(name, ColumnStage(k)) for k, name in enumerate("abc")]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1.0, 5.0, 20.0], budget=12.0, skips=True, cv=3
    ).fit(X, y)
    assert cascade.predict_path(X_test)[:, 1].sum() < len(X_test) / 2
    held_out = CostAccuracyDisplay.from_estimator(cascade)
    assert_allclose(held_out.cost, cascade.frontier_["expected_cost"])
    assert_allclose(held_out.chosen_cost, cascade.policy_rows_cost_)
    test = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
    assert_allclose(
        test.cost, cascade.evaluate_frontier(X_test, y_test)["expected_cost"]
    )
    assert_allclose(test.chosen_cost, cascade.predict_cost(X_test).mean())


def test_overlaid_displays_mark_each_chosen_point_in_its_frontiers_colour():
    from matplotlib.colors import to_rgba

    cascade, X, y = _fitted()
    first = CostAccuracyDisplay.from_estimator(cascade, X, y, name="one")
    second = CostAccuracyDisplay.from_estimator(
        cascade, X, y, name="two", ax=first.ax_, show_stages=False
    )
    colours = []
    for display in (first, second):
        edge = display.chosen_point_.get_edgecolors()[0]
        assert_allclose(edge, to_rgba(display.line_.get_color()))
        colours.append(tuple(edge))
    assert colours[0] != colours[1]


def test_the_default_name_says_how_the_fitted_exits_answer():
    """The label says "(combined answers)" where the fitted exits combine
    (combiners_), not where answer= says so: set after a fit, it changes no
    answer until a refit, and neither does it change the label."""
    from sklearn.base import clone

    cascade, X, y = _fitted()
    from _column_stages import _disjoint_cascade, _disjoint_errors

    X_joint, y_joint = _disjoint_errors(600, seed=0)
    combined = _disjoint_cascade("combined", cost_weight=0.0).fit(X_joint, y_joint)
    assert combined.combiners_[1].kind != "stage"

    def label(estimator, X, y):
        return CostAccuracyDisplay.from_estimator(estimator, X, y).name

    assert label(combined, X_joint, y_joint) == (
        "AdaptiveCascadeClassifier (combined answers)"
    )
    combined.set_params(answer="stage")
    assert label(combined, X_joint, y_joint).endswith("(combined answers)")
    plain = clone(cascade).fit(X, y).set_params(answer="combined")
    assert label(plain, X, y) == "AdaptiveCascadeClassifier"
    # Not fitted yet: as answer= says.
    from skadaptive.plot._cost_accuracy import _default_name

    assert _default_name(clone(plain)).endswith("(combined answers)")


def test_a_regressor_with_combined_answers_is_drawn_on_an_error_axis():
    """Both answer kinds of a regressor on one axes: each named by how its
    exits answer, the combined one at its own (lower) test error."""
    from sklearn.datasets import make_friedman1
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    from skadaptive import AdaptiveCascadeRegressor

    X, y = make_friedman1(900, noise=1.0, random_state=0)
    stages = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=5))]
    params = dict(costs=[1, 4], cost_weight=0.0, cv=3, random_state=0)
    stage = AdaptiveCascadeRegressor(stages, **params).fit(X[:600], y[:600])
    combined = AdaptiveCascadeRegressor(stages, answer="combined", **params)
    combined.fit(X[:600], y[:600])
    assert combined.combiners_[1].kind != "stage"
    first = CostAccuracyDisplay.from_estimator(stage, X[600:], y[600:])
    second = CostAccuracyDisplay.from_estimator(
        combined, X[600:], y[600:], ax=first.ax_, show_stages=False, show_oracle=False
    )
    assert second.name == "AdaptiveCascadeRegressor (combined answers)"
    assert first.ax_.get_ylabel().startswith("MSE")
    chosen = combined.evaluate_frontier(X[600:], y[600:])["error_at_fit"]
    assert second.chosen_accuracy == pytest.approx(chosen)
    assert chosen < stage.evaluate_frontier(X[600:], y[600:])["error_at_fit"]


def test_two_held_out_displays_on_one_axes_share_a_title():
    """The second estimator drawn on the first's axes: the title no longer
    names one of them (the legend names each), it says which rows."""
    from _column_stages import _disjoint_cascade, _disjoint_errors

    X, y = _disjoint_errors(600, seed=0)
    stage = _disjoint_cascade("stage", cost_weight=0.0).fit(X, y)
    combined = _disjoint_cascade("combined", cost_weight=0.0).fit(X, y)
    first = CostAccuracyDisplay.from_estimator(stage)
    assert first.ax_.get_title() == "AdaptiveCascadeClassifier (held-out rows)"
    again = CostAccuracyDisplay.from_estimator(stage, ax=first.ax_)
    assert again.ax_.get_title() == "AdaptiveCascadeClassifier (held-out rows)"
    CostAccuracyDisplay.from_estimator(
        combined, ax=first.ax_, show_stages=False, show_oracle=False
    )
    assert first.ax_.get_title() == "held-out rows"
    labels = [line.get_label() for line in first.ax_.get_lines()]
    assert "AdaptiveCascadeClassifier (combined answers)" in labels


def test_from_estimator_looks_through_a_pipeline_a_search_and_a_frozen_estimator():
    """A Pipeline ending in a cascade (as the grid-search guide builds it), a
    fitted search of one and a FrozenEstimator were refused ("has no
    cost-accuracy frontier"), though the cost scorers take them."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cascade, X_test, y_test = _fitted()
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), clone(cascade)).fit(X[::2], y[::2])
    inner = pipe[-1]
    for given, rows in (
        (pipe, pipe[0].transform(X_test)),
        (FrozenEstimator(cascade), X_test),
    ):
        own = inner if given is pipe else cascade
        held_out = CostAccuracyDisplay.from_estimator(given)
        assert_allclose(
            held_out.accuracy, CostAccuracyDisplay.from_estimator(own).accuracy
        )
        test = CostAccuracyDisplay.from_estimator(given, X_test, y_test)
        expected = CostAccuracyDisplay.from_estimator(own, rows, y_test)
        assert_allclose(test.accuracy, expected.accuracy)
        assert_allclose(test.cost, expected.cost)
    search = GridSearchCV(clone(cascade), {"cost_weight": [0.0, 0.1]}, cv=2)
    search.fit(X[::2], y[::2])
    drawn = CostAccuracyDisplay.from_estimator(search, X_test, y_test)
    assert_allclose(
        drawn.accuracy,
        CostAccuracyDisplay.from_estimator(
            search.best_estimator_, X_test, y_test
        ).accuracy,
    )


def test_test_rows_drawn_with_held_out_rows_leave_no_held_out_title():
    """In either order, and rows from predictions alike (the title said
    "held-out rows" over a curve of test rows)."""
    cascade, X_test, y_test = _fitted()
    display = CostAccuracyDisplay.from_estimator(cascade)
    assert display.ax_.get_title().endswith("(held-out rows)")
    CostAccuracyDisplay.from_estimator(cascade, X_test, y_test, ax=display.ax_)
    assert display.ax_.get_title() == ""
    _, ax = plt.subplots()
    CostAccuracyDisplay.from_estimator(cascade, X_test, y_test, ax=ax)
    CostAccuracyDisplay.from_estimator(cascade, ax=ax)
    assert ax.get_title() == ""
    held_out = CostAccuracyDisplay.from_estimator(cascade)
    CostAccuracyDisplay.from_predictions(
        y_test, [cascade.predict(X_test)], [1.0], ax=held_out.ax_
    )
    assert held_out.ax_.get_title() == ""
    # A cleared axes forgets the curves it held (their title stayed blank).
    held_out.ax_.clear()
    CostAccuracyDisplay.from_estimator(cascade, ax=held_out.ax_)
    assert held_out.ax_.get_title().endswith("(held-out rows)")


def test_from_predictions_refuses_labels_of_another_type():
    """String predictions against integer labels scored 0 (every row wrong)."""
    y = np.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match="Mix of label input types"):
        CostAccuracyDisplay.from_predictions(y, [np.array(["a", "b", "b", "a"])], [1.0])


def test_from_predictions_refuses_one_flat_list_of_labels():
    with pytest.raises(ValueError, match=r"y_preds must be a list .*\[y_pred\]"):
        CostAccuracyDisplay.from_predictions([0, 1], [0, 1], [1.0, 2.0])


@pytest.mark.parametrize(
    "stages",
    [
        {"stage_costs": [1.0, 2.0]},
        {"stage_accuracies": [0.5, 0.6]},
        {"stage_costs": [1.0, 2.0], "stage_accuracies": [0.5]},
    ],
)
def test_stage_points_need_a_cost_and_an_accuracy_each(stages):
    display = CostAccuracyDisplay(cost=[1.0, 2.0], accuracy=[0.5, 0.6], **stages)
    with pytest.raises(ValueError, match="stage_costs and stage_accuracies go"):
        display.plot()


@pytest.mark.parametrize(
    "metric, message",
    [
        ("r2", "metric='r2' is for regressors"),
        ("mse", "metric='mse' is for regressors"),
        ("mae", "metric='mae' is for regressors"),
        ("auc", "metric must be 'error' or 'accuracy' .* for a classifier; got 'auc'"),
        (None, "metric must be 'error' or 'accuracy' .* for a classifier; got None"),
    ],
)
def test_from_estimator_refuses_other_metrics_for_a_classifier(metric, message):
    """A classifier's frontier is in accuracy: another metric is an error,
    not a plot of accuracy labelled as asked for."""
    cascade, X, y = _fitted()
    for rows in ((), (X, y)):
        with pytest.raises(ValueError, match=message):
            CostAccuracyDisplay.from_estimator(cascade, *rows, metric=metric)


def test_from_estimator_says_the_policy_rows_were_discarded():
    """Not "not fitted": a model whose policy rows were discarded before its
    frontier was read is fitted, and the error says what is missing."""
    from skadaptive._base import PolicyRowsDiscardedError

    cascade, X, y = _fitted()
    light = cascade.with_policy(budget=2.0).discard_policy_rows()
    for rows in ((), (X, y)):
        with pytest.raises(PolicyRowsDiscardedError):
            CostAccuracyDisplay.from_estimator(light, *rows)


@pytest.mark.parametrize("metric", ["error", "accuracy"])
def test_from_estimator_draws_a_classifier_in_accuracy(metric):
    cascade, X, y = _fitted()
    display = CostAccuracyDisplay.from_estimator(cascade, X, y, metric=metric)
    assert display.ax_.get_ylabel().startswith("accuracy")
    assert_allclose(display.accuracy, cascade.evaluate_frontier(X, y)["accuracy"])
