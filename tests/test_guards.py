"""Tests for behaviours that nothing else checked: each was seen to fail against a
broken version of the code it guards."""

import functools
import re

import joblib
import numpy as np
import pytest
from _column_stages import ColumnStage
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import Bunch

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.cli import main
from skadaptive.stages._costs import fit_call_line

BUDGET = 3.5  # costs 1, 3, 10: the full cascade costs 14 per row


@functools.cache
def _data():
    X, y = make_classification(
        n_samples=2000,
        n_features=10,
        n_informative=6,
        n_classes=3,
        n_clusters_per_class=2,
        flip_y=0.03,
        random_state=0,
    )
    # stages | policy rows | new rows
    return (X[:800], y[:800]), (X[800:1400], y[800:1400]), (X[1400:], y[1400:])


@functools.cache
def _cascade():
    """Three frozen stages (costs 1, 3, 10), a max_proba policy fitted for BUDGET."""
    (X_fit, y_fit), (X, y), _ = _data()
    stages = [
        ("lr", LogisticRegression(max_iter=500)),
        ("tree", DecisionTreeClassifier(max_depth=6, random_state=0)),
        ("forest", RandomForestClassifier(20, random_state=0)),
    ]
    stages = [(name, FrozenEstimator(s.fit(X_fit, y_fit))) for name, s in stages]
    return AdaptiveCascadeClassifier(
        stages, costs=[1, 3, 10], budget=BUDGET, policy="max_proba", random_state=0
    ).fit(X, y)


def _weights_and_repeated_rows():
    """New rows, integer weights 0 to 3 for them, and the rows repeated as
    many times as their weight."""
    _, _, (X, y) = _data()
    weight = np.random.default_rng(0).integers(0, 4, len(y))
    return X, y, weight, np.repeat(X, weight, axis=0), np.repeat(y, weight)


# --------------------------------------------------------- evaluate_frontier
def test_evaluate_frontier_weighs_rows_as_that_many_copies():
    cascade = _cascade()
    X, y, weight, X_repeated, y_repeated = _weights_and_repeated_rows()
    weighted = cascade.evaluate_frontier(X, y, sample_weight=weight)
    repeated = cascade.evaluate_frontier(X_repeated, y_repeated)
    assert weighted.keys() == repeated.keys()
    for key in ("expected_cost", "cost_at_fit", "accuracy", "run_rates"):
        assert key in weighted
    for key, value in weighted.items():
        assert_allclose(value, repeated[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # The weights matter here: the unweighted figures are others.
    unweighted = cascade.evaluate_frontier(X, y)
    assert not np.allclose(unweighted["expected_cost"], weighted["expected_cost"])
    assert unweighted["cost_at_fit"] != pytest.approx(weighted["cost_at_fit"])


# ------------------------------------------------------------------ oracle
def test_the_oracle_answers_rows_no_stage_gets_right_at_the_last_stage():
    # Stage k's probability of class 1 is column k (see ColumnStage). A
    # quarter of the rows each: the first stage right; only the second; only
    # the last; no stage right.
    rng = np.random.default_rng(0)
    n_rows = 400
    y = rng.integers(0, 2, n_rows)
    group = np.arange(n_rows) % 4
    sure = 0.7 + 0.25 * rng.uniform(size=(n_rows, 3))  # each row its own
    right = np.column_stack([group == 0, group == 1, group == 2])
    p1 = np.where(right == (y[:, None] == 1), sure, 1 - sure)
    stages = [
        (f"column{k}", FrozenEstimator(ColumnStage(k).fit(p1, y))) for k in range(3)
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2, 4], cost_weight=0.01)
    cascade.fit(p1, y)
    assert_array_equal(cascade.cumulative_costs_, [1, 3, 7])
    test = cascade.evaluate_frontier(p1, y)
    # The oracle cannot answer the last quarter right: it pays for every stage.
    assert_allclose(test["oracle_exit_rates"], [0.25, 0.25, 0.5])
    assert test["oracle_accuracy"] == pytest.approx(0.75)
    assert test["oracle_cost"] == pytest.approx(0.25 * 1 + 0.25 * 3 + 0.5 * 7)
    assert cascade.oracle_accuracy_ == pytest.approx(0.75)
    assert cascade.oracle_cost_ == pytest.approx(
        test["oracle_exit_rates"] @ cascade.cumulative_costs_
    )


# ------------------------------------------------------------ recalibrate
def test_recalibration_records_the_exit_rates_before_it_moved_the_thresholds():
    cascade = _cascade()
    _, _, (X, _) = _data()
    # Shifted rows: the third the first stage is least sure of, three times.
    sureness = cascade.estimators_[0].predict_proba(X).max(axis=1)
    hard = np.flatnonzero(sureness <= np.quantile(sureness, 1 / 3))
    X = X[np.concatenate([np.arange(len(X)), hard, hard])]
    before = np.bincount(cascade.predict_exit(X), minlength=3) / len(X)

    recalibrated = cascade.recalibrate(X)

    record = recalibrated.recalibration_
    assert_allclose(record["exit_rates_before"], before)
    after = np.bincount(recalibrated.predict_exit(X), minlength=3) / len(X)
    assert_allclose(record["exit_rates"], after)
    assert np.abs(record["exit_rates"] - record["exit_rates_before"]).max() > 0.01


# ------------------------------------------------------------------ plot
def test_cost_accuracy_display_weighs_new_rows_as_that_many_copies():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skadaptive.plot import CostAccuracyDisplay

    cascade = _cascade()
    X, y, weight, X_repeated, y_repeated = _weights_and_repeated_rows()
    try:
        weighted = CostAccuracyDisplay.from_estimator(
            cascade, X, y, sample_weight=weight
        )
        repeated = CostAccuracyDisplay.from_estimator(cascade, X_repeated, y_repeated)
        unweighted = CostAccuracyDisplay.from_estimator(cascade, X, y)
    finally:
        plt.close("all")
    for name in (
        "cost",
        "accuracy",
        "stage_accuracies",
        "oracle_cost",
        "oracle_accuracy",
        "chosen_cost",
        "chosen_accuracy",
    ):
        assert_allclose(
            getattr(weighted, name), getattr(repeated, name), rtol=1e-9, err_msg=name
        )
    # The weights matter here: the unweighted costs are others.
    assert not np.allclose(weighted.cost, unweighted.cost)
    assert weighted.chosen_cost != pytest.approx(unweighted.chosen_cost)


# ------------------------------------------------------------------- CLI
def test_cli_predict_prints_each_stage_s_run_rate(tmp_path, capsys):
    cascade = _cascade()
    _, _, (X, y) = _data()
    joblib.dump(cascade, tmp_path / "cascade.joblib")
    np.savez(tmp_path / "rows.npz", X=X, y=y)
    code = main(
        [
            "predict",
            str(tmp_path / "cascade.joblib"),
            "--data",
            str(tmp_path / "rows.npz"),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if "run rate" in line)
    rows = [lines[header + 1 + k].split() for k in range(3)]
    assert [row[0] for row in rows] == ["lr", "tree", "forest"]
    printed = np.array([[float(row[1]), float(row[2])] for row in rows])
    routed = cascade.route(X)
    ran = routed.ran.mean(axis=0)
    assert_allclose(printed[:, 1], ran, atol=5e-4)
    assert_allclose(
        printed[:, 0], np.bincount(routed.exit_stage, minlength=3) / len(X), atol=5e-4
    )
    # A plain cascade runs the first stage on every row, and fewer after.
    assert printed[0, 1] == 1.0
    assert 0 < printed[2, 1] < printed[1, 1] < 1


# -------------------------------------------------------- measured costs
LINE_SIZES = np.array([1, 16, 128, 1024, 4096])


def _timed(per_call, per_row, *, whole=None, rows=None) -> Bunch:
    """A measurement whose timings at LINE_SIZES lie on the lines
    ``per_call + n * per_row`` (one per stage), as the timers return it;
    ``whole``: the (per_call, per_row) of the backbone's own prediction."""
    per_call, per_row = np.asarray(per_call), np.asarray(per_row)
    timings = per_call[:, None] + per_row[:, None] * LINE_SIZES
    fitted_call, fitted_row = fit_call_line(LINE_SIZES, timings)
    seconds = Bunch(
        per_call=fitted_call,
        per_row=fitted_row,
        batch_sizes=LINE_SIZES,
        timings=timings,
        whole_timings=None if whole is None else whole[0] + whole[1] * LINE_SIZES,
    )
    if rows is not None:
        seconds.rows = rows
    return seconds


def test_an_early_exit_s_reference_spreads_its_per_call_time_over_the_call(
    monkeypatch,
):
    import skadaptive._base
    import skadaptive._held_out as held_out

    # The backbone's own prediction: 1 ms per call and 10 µs per row; its
    # exits (alone and in the cascade) far cheaper.
    whole = (1e-3, 1e-5)
    alone = ([2e-5, 2e-5], [1e-6, 3e-6])
    monkeypatch.setattr(
        held_out,
        "measure_exit_seconds",
        lambda source, X, **_: _timed(
            *alone, whole=whole, rows=np.arange(min(len(X), 4096))
        ),
    )
    monkeypatch.setattr(
        skadaptive._base,
        "measure_routing_seconds",
        lambda *args, **kwargs: _timed([3e-5, 3e-5], [2e-6, 4e-6]),
    )
    X, y = make_classification(n_samples=300, n_informative=6, random_state=0)
    forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)
    estimator = EarlyExitClassifier(
        FrozenEstimator(forest), exits=[2, 8], costs="auto", cost_batch_size=16
    ).fit(X, y)

    per_call, per_row = whole
    for batch_size in (1, 16, 128):
        assert estimator._reference_seconds(batch_size) == pytest.approx(
            per_row + per_call / batch_size, rel=1e-6
        )
    assert estimator.expected_speed_up_ == pytest.approx(
        (per_row + per_call / 16) / estimator.expected_cost_, rel=1e-6
    )


# ------------------------------------------------------------ validation
def test_frozen_stages_with_as_many_but_other_classes_are_refused():
    X, y = make_classification(
        n_samples=200, n_informative=4, n_classes=3, random_state=0
    )
    stages = [
        ("labels", FrozenEstimator(LogisticRegression().fit(X, y))),
        ("shifted", FrozenEstimator(LogisticRegression().fit(X, y + 1))),
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2])
    message = (
        "Frozen stages disagree on their classes: 'labels' predicts [0, 1, 2] "
        "but 'shifted' predicts [1, 2, 3]"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        cascade.fit(X, y)


def test_no_test_module_defines_a_name_twice():
    """A second module-level function of the same name silently replaces the
    first for every test that calls it: twice a new helper took the name of
    an old one, and the old one's tests ran on other data (one of them, a
    weight-equivalence test, then failed for the wrong reason; the other
    stopped testing what it said). ruff's F811 does not see a redefinition
    of a name used in between."""
    import ast
    from pathlib import Path

    twice = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        seen = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in seen:
                    twice.append(f"{path.name}:{node.lineno} {node.name}")
                seen.add(node.name)
    assert not twice, twice
