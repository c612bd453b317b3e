"""Costs with a part per call: measured, spread over a batch, and kept to.

A stage called on ``n`` rows takes ``per_call + n * per_row``; the per-call
part is paid once per batch by every stage a row of the batch reaches. These
tests check the measurement, the expected cost of a batch, and that the policy
and its reported costs are for batches of ``cost_batch_size`` rows.
"""

import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import Bunch

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.cli._frontier import batch_size_advice
from skadaptive.policies._call_costs import batch_cost
from skadaptive.stages import measure_exit_seconds
from skadaptive.stages._costs import (
    _line_sizes,
    call_line_for,
    fit_call_line,
    timing_batches,
    timing_scale,
)

# Incremental costs: the last stage pays 1,000 per call, nothing else does.
PER_CALL = [0.0, 0.0, 1000.0]
PER_ROW = [1.0, 2.0, 10.0]


class _SleepPerCall:
    """Two stages: each call sleeps ``pause`` seconds, whatever its rows."""

    n_stages = 2

    def __init__(self, pause):
        self.pause = pause

    def run_stage(self, stage, X_rows, state):
        time.sleep(self.pause)
        return np.full((X_rows.shape[0], 2), 0.5), None

    def keep_rows(self, state, mask):
        return None


def test_measure_exit_seconds_finds_the_part_paid_per_call():
    X = np.zeros((500, 3))
    seconds = measure_exit_seconds(_SleepPerCall(0.003), X, repeats=2)

    assert seconds.per_call.shape == seconds.per_row.shape == (2,)
    # A sleep takes at least its time; the machine can only add to it.
    assert (seconds.per_call >= 0.0028).all()
    assert (seconds.per_call < 0.05).all()
    # What is left per row is tiny next to 3 ms per call: 1,024 rows would
    # add less than a third of the call.
    assert (seconds.per_row * 1024 < 0.001).all()
    # Batches up to 1,024 rows, the 500 rows repeated (4,096 from 2,048 rows).
    assert seconds.batch_sizes.tolist() == [1, 16, 128, 1024]
    assert len(seconds.rows) == 500


# A time that grows more slowly than the rows (as a tree's does: a call on
# many rows reuses the nodes the first rows brought into the cache).
LINE_SIZES = np.array([1, 16, 128, 1024, 4096])


def _concave_seconds(n_rows):
    return 1e-5 + 2e-6 * np.asarray(n_rows, dtype=np.float64) ** 0.8


def _known_seconds(timings, rows=None) -> Bunch:
    """A measurement with these timings at LINE_SIZES, as the timers return it."""
    per_call, per_row = fit_call_line(LINE_SIZES, timings)
    seconds = Bunch(
        per_call=per_call, per_row=per_row, batch_sizes=LINE_SIZES, timings=timings
    )
    if rows is not None:
        seconds.rows = rows
    return seconds


def _time_as(monkeypatch, alone, in_cascade) -> None:
    """Fits time the stages alone as ``alone`` and inside the cascade as
    ``in_cascade`` (timings at LINE_SIZES) instead of measuring them."""
    import skadaptive._base
    import skadaptive._held_out as held_out

    monkeypatch.setattr(
        held_out,
        "measure_exit_seconds",
        lambda source, X, **_: _known_seconds(alone, np.arange(min(len(X), 4096))),
    )
    monkeypatch.setattr(
        skadaptive._base,
        "measure_routing_seconds",
        lambda *args, **kwargs: _known_seconds(in_cascade),
    )


def test_a_line_for_a_batch_size_holds_at_the_calls_of_such_batches():
    timings = _concave_seconds(LINE_SIZES)[None, :]
    whole = fit_call_line(LINE_SIZES, timings)
    for batch_size, near in ((65_536, [1024, 4096]), (1, [1, 16]), (16, [1, 16])):
        per_call, per_row = fit_call_line(LINE_SIZES, timings, batch_size=batch_size)
        # Two timings: the line goes through both.
        assert_allclose(per_call + per_row * np.array(near), _concave_seconds(near))
    per_call, per_row = fit_call_line(LINE_SIZES, timings, batch_size=1024)
    line = per_call + per_row * LINE_SIZES
    window = LINE_SIZES >= 16  # 1024 / 64 to 1024, and above it
    error = np.abs(line / _concave_seconds(LINE_SIZES) - 1)
    whole_error = np.abs(
        (whole[0] + whole[1] * LINE_SIZES) / _concave_seconds(LINE_SIZES) - 1
    )
    # Within its window the line is closer than the one fitted to every size.
    assert error[window][:-1].max() < whole_error[window][:-1].max()
    # Without a batch size: every timing (as before).
    assert_allclose(fit_call_line(LINE_SIZES, timings, batch_size=None), whole)
    # Up to the first timed size at or above the batch size: a line for
    # 1,000 rows goes through the 1,024-row timing, not stretched from 128.
    assert LINE_SIZES[_line_sizes(LINE_SIZES, 1000)].tolist() == [16, 128, 1024]
    assert LINE_SIZES[_line_sizes(LINE_SIZES, 1024)].tolist() == [16, 128, 1024]
    assert LINE_SIZES[_line_sizes(LINE_SIZES, 1025)].tolist() == [128, 1024, 4096]
    assert LINE_SIZES[_line_sizes(LINE_SIZES, 10**9)].tolist() == [1024, 4096]


def test_a_large_batch_size_is_timed_not_extended_to():
    # Small data: 1 to 1,024 rows, unless the costs are for larger calls.
    assert timing_batches(900)[1].tolist() == [1, 16, 128, 1024]
    assert timing_batches(900, 1024)[1].tolist() == [1, 16, 128, 1024]
    assert timing_batches(900, 2000)[1].tolist() == [1, 16, 128, 1024, 4096]
    assert timing_batches(3000)[1].tolist() == [1, 16, 128, 1024, 4096]
    # Above 4,096 rows: 8,192 rows too.
    assert timing_batches(900, 4096)[1][-1] == 4096
    assert timing_batches(900, 5000)[1][-1] == 8192
    tiled, sizes = timing_batches(900, 65_536)
    assert sizes[-1] == 8192 and len(tiled) == 8192 and tiled.max() == 899
    # What decides them, for a cache shared by batch sizes timed alike.
    assert [timing_scale(b) for b in (None, 1, 1024, 1025, 4096, 4097, 10**7)] == [
        None,
        None,
        None,
        4096,
        4096,
        8192,
        8192,
    ]


#: Which stage ran last, for stages that are slower after another one.
_LAST_RUN = [None]


class _Marks(ClassifierMixin, BaseEstimator):
    """A logistic regression that leaves its mark on each call."""

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=1000).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        _LAST_RUN[0] = id(self)
        return self.model_.predict_proba(X)


class _Clock:
    """A clock that moves only when a stage says it took time: timings that
    do not depend on the machine or on the tests running beside them."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


#: The clock of the stages below (a parameter would be copied by clone).
_CLOCK = _Clock()


class _TakesModelledTime(_Marks):
    """A logistic regression whose call of ``n`` rows takes ``seconds(n)`` on
    ``_CLOCK``."""

    def __init__(self, seconds=None):
        self.seconds = seconds

    def predict_proba(self, X):
        _CLOCK.now += self.seconds(len(X))
        return super().predict_proba(X)


def _slower_per_row_up_to_1024(n: int) -> float:
    """1 ms a call, 2 us a row up to 1,024 rows and 0.2 us a row beyond (as a
    tree's time per row falls)."""
    return 1e-3 + 2e-6 * min(n, 1024) + 2e-7 * max(n - 1024, 0)


def test_costs_for_large_calls_are_timed_at_such_calls(frozen_stages, monkeypatch):
    """Fitted for calls of 10,000 rows on 300 policy rows, a stage is timed on
    up to 8,192 rows (the rows repeated): its cost is the line through its
    times at 4,096 and 8,192 rows, not the line of 128 to 1,024 rows extended
    to 10,000 (21 ms where it takes 4.8)."""
    import skadaptive.stages._costs as costs_module

    _, X_policy, y_policy, _, _ = frozen_stages
    monkeypatch.setattr(costs_module, "time", _CLOCK)
    cascade = AdaptiveCascadeClassifier(
        [
            ("first", _TakesModelledTime(lambda n: 1e-4 + 1e-7 * n)),
            ("second", _TakesModelledTime(_slower_per_row_up_to_1024)),
        ],
        costs="auto",
        cost_batch_size=10_000,
        random_state=0,
    ).fit(X_policy[:300], y_policy[:300])
    assert cascade._measured_seconds.batch_sizes.tolist()[-2:] == [4096, 8192]
    alone = cascade._alone_seconds(10_000) * 10_000
    assert alone == pytest.approx(
        [1e-4 + 1e-7 * 10_000, _slower_per_row_up_to_1024(10_000)], rel=1e-6
    )


@pytest.mark.filterwarnings("ignore:Stage .* costs less per row:UserWarning")
def test_measured_costs_are_the_line_for_the_estimators_batch_size(
    frozen_stages, monkeypatch
):
    """``costs="auto"`` fits each stage's line to the calls of batches of
    ``cost_batch_size`` rows (here on known timings instead of measured ones)."""

    stages, X_policy, y_policy, _, _ = frozen_stages
    timings = np.vstack([k * _concave_seconds(LINE_SIZES) for k in (1.0, 3.0, 10.0)])

    # Inside the cascade a stage takes longer than alone (routing work, and
    # its company: here a tenth more, and 0.1 ms more per call).
    in_cascade = 1.1 * timings + 1e-4
    _time_as(monkeypatch, timings, in_cascade)
    fitted = {}
    for batch_size in (1, 64, 65_536):
        cascade = AdaptiveCascadeClassifier(
            stages, costs="auto", cost_batch_size=batch_size, random_state=0
        ).fit(X_policy, y_policy)
        per_call, per_row = fit_call_line(LINE_SIZES, timings, batch_size=batch_size)
        call_cascade, row_cascade = fit_call_line(
            LINE_SIZES, in_cascade, batch_size=batch_size
        )
        # costs_ is the line of the stages' times inside the cascade; the
        # routing's part is what that adds to their lines alone.
        assert_allclose(cascade.costs_per_row_, row_cascade)
        assert_allclose(cascade.costs_per_call_, call_cascade)
        routing = cascade._cost_lines(batch_size)[2]
        assert_allclose(routing.per_row, row_cascade - per_row)
        assert_allclose(routing.per_call, call_cascade - per_call)
        # A stage alone on one row costs its one-row timing, whatever batch
        # size the estimator was fitted for (the line is fitted again there).
        assert_allclose(cascade._alone_seconds(1), timings[:, 0])
        # The speed-up it expects is over the last stage's time alone.
        last_alone = per_row[-1] + per_call[-1] / batch_size
        assert cascade.expected_speed_up_ == pytest.approx(
            last_alone / cascade.expected_cost_
        )
        fitted[batch_size] = cascade
    # The CLI's advice for one row per call is the same from an estimator
    # fitted for 65,536 rows as from one fitted for one row, given the exits.
    rates = np.array([0.6, 0.3, 0.1])
    advice = {
        b: {p["batch_size"]: p for p in batch_size_advice(fitted[b], rates)["points"]}
        for b in (1, 65_536)
    }
    for size in (1, 65_536):
        assert advice[1][size]["cost_per_row"] == pytest.approx(
            advice[65_536][size]["cost_per_row"]
        )
        assert advice[1][size]["speed_up"] == pytest.approx(
            advice[65_536][size]["speed_up"]
        )


def test_measured_costs_get_batch_size_advice_without_a_part_per_call(
    frozen_stages, monkeypatch
):
    """Timings near a large batch size can fit a line with no part per call
    (as on a loaded machine): the advice by batch size is still given, from
    the lines fitted again near each size, where one-row calls pay one."""
    stages, X_policy, y_policy, _, _ = frozen_stages
    # From 1,024 rows on the time grows a little faster than the rows (the
    # line there has no part per call); a call of one row takes 50 us.
    seconds = np.where(LINE_SIZES >= 1024, 1e-6 * LINE_SIZES**1.05, 5e-5)
    timings = np.vstack([k * seconds for k in (1, 3, 10)])
    _time_as(monkeypatch, timings, timings)
    cascade = AdaptiveCascadeClassifier(
        stages, costs="auto", cost_batch_size=65_536, random_state=0
    ).fit(X_policy, y_policy)
    assert not cascade.costs_per_call_.any()
    advice = batch_size_advice(cascade, np.array([0.6, 0.3, 0.1]))
    assert advice["fitted_for_batch_size"] == 65_536
    points = {p["batch_size"]: p for p in advice["points"]}
    # One row per call: a row pays the call of each stage it reaches (50, 150
    # and 500 us), where the line fitted for 65,536 rows would charge 0.
    assert points[1]["cost_per_row"] == pytest.approx(
        (50 + 0.4 * 150 + 0.1 * 500) * 1e-6
    )
    # Costs given as numbers have no advice.
    given = AdaptiveCascadeClassifier(stages, costs=[1, 3, 10], random_state=0)
    assert batch_size_advice(given.fit(X_policy, y_policy), np.ones(3) / 3) is None


def test_stages_are_ordered_by_their_times_alone(frozen_stages, monkeypatch):
    """At one row per call the checks of a call and the routing, charged to
    the stages inside the cascade, can make the first stage the dearest:
    that is no reason to warn that the stages are out of order."""

    stages, X_policy, y_policy, _, _ = frozen_stages
    alone = np.vstack([k * _concave_seconds(LINE_SIZES) for k in (1.0, 1.5, 3.0)])
    in_cascade = alone + np.array([[1e-4], [1e-5], [1e-5]])
    _time_as(monkeypatch, alone, in_cascade)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cascade = AdaptiveCascadeClassifier(
            stages, costs="auto", cost_batch_size=1, random_state=0
        ).fit(X_policy, y_policy)
    # Inside the cascade the first stage is the dearest at one row per call.
    assert cascade.costs_[0] > cascade.costs_[1]
    # Stages truly out of order still warn.
    _time_as(monkeypatch, alone[::-1], in_cascade)
    with pytest.warns(UserWarning, match="costs less per row than the stage") as w:
        AdaptiveCascadeClassifier(
            stages, costs="auto", cost_batch_size=1, random_state=0
        ).fit(X_policy, y_policy)
    # It says which figures it compares: not those of costs_ (the tables').
    message = next(str(x.message) for x in w if "costs less" in str(x.message))
    assert "own time per row in calls of 1 row, without the routing" in message
    with pytest.warns(UserWarning, match="costs less per row than the stage") as w:
        AdaptiveCascadeClassifier(
            stages, costs="auto", cost_batch_size=2, random_state=0
        ).fit(X_policy, y_policy)
    assert any("in calls of 2 rows, without" in str(x.message) for x in w)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_measured_router_cost_is_the_line_for_the_batch_size(
    frozen_stages, monkeypatch
):
    import skadaptive._router as router_module

    stages, X_policy, y_policy, _, _ = frozen_stages
    timings = _concave_seconds(LINE_SIZES)[None, :]

    monkeypatch.setattr(
        router_module, "measure_exit_seconds", lambda *a, **k: _known_seconds(timings)
    )
    for batch_size in (1, 65_536):
        cascade = AdaptiveCascadeClassifier(
            stages,
            costs="auto",
            router="auto",
            cost_batch_size=batch_size,
            random_state=0,
        ).fit(X_policy, y_policy)
        per_call, per_row = fit_call_line(LINE_SIZES, timings, batch_size=batch_size)
        search = cascade.router_search_
        assert_allclose(search["router_cost_per_call"], per_call[0])
        assert_allclose(search["router_cost_per_row"], per_row[0])


def test_batch_cost_is_the_average_over_random_batches():
    rng = np.random.default_rng(0)
    exit_stage = rng.choice(3, size=2000, p=[0.80, 0.17, 0.03])
    variable = np.cumsum(PER_ROW)
    batch_size = 16
    share = np.array(PER_CALL) / batch_size
    rates = np.bincount(exit_stage, minlength=3) / len(exit_stage)

    simulated = []
    for _ in range(20_000):
        batch = rng.choice(exit_stage, size=batch_size)
        deepest = batch.max()
        per_call = np.sum(PER_CALL[: deepest + 1])
        simulated.append((variable[batch].sum() + per_call) / batch_size)

    # 1 - (1 - 0.03) ** 16 = 39 % of batches call the last stage.
    expected = batch_cost(rates, variable, share, 16)
    assert_allclose(np.mean(simulated), expected, rtol=0.02)


@pytest.fixture(scope="module")
def frozen_stages():
    X, y = make_classification(
        n_samples=4000, n_features=20, n_informative=8, n_classes=3, random_state=0
    )
    X_fit, X_rest, y_fit, y_rest = train_test_split(
        X, y, train_size=0.4, random_state=0
    )
    tree = DecisionTreeClassifier(max_depth=4)
    stages = [
        ("nb", FrozenEstimator(GaussianNB().fit(X_fit, y_fit))),
        ("tree", FrozenEstimator(tree.fit(X_fit, y_fit))),
        ("lr", FrozenEstimator(LogisticRegression(max_iter=1000).fit(X_fit, y_fit))),
    ]
    X_policy, X_test, y_policy, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=0
    )
    return stages, X_policy, y_policy, X_test, y_test


def _batched_cost(cascade, X, batch_size):
    """Cost per row of routing ``X`` in consecutive batches, calls counted."""
    exit_stage = cascade.predict_exit(X)
    total = 0.0
    for start in range(0, len(X), batch_size):
        batch = exit_stage[start : start + batch_size]
        total += np.cumsum(PER_ROW)[batch].sum() + np.sum(PER_CALL[: batch.max() + 1])
    return total / len(X)


def test_a_budget_with_a_dear_call_stops_before_that_stage(frozen_stages):
    stages, X_policy, y_policy, X_test, y_test = frozen_stages
    costs = {"per_call": PER_CALL, "per_row": PER_ROW}
    # In batches of 100 rows the last stage's call costs 10 per row of the
    # batch as soon as one row reaches it: with the first two stages (3 per
    # row), 13 per row, over the budget of 8.
    small = AdaptiveCascadeClassifier(
        stages, costs=costs, budget=8.0, cost_batch_size=100, random_state=0
    ).fit(X_policy, y_policy)

    assert small.cost_batch_size_ == 100
    assert_allclose(small.costs_, np.array(PER_ROW) + np.array(PER_CALL) / 100)
    # The dear call leaves room for at most a few rows at the last stage (an
    # estimator blind to it would send a quarter of them, for 15.5 per row).
    assert small.exit_rates_[2] <= 0.01
    assert small.policy_rows_cost_ <= 8.0
    assert _batched_cost(small, X_test, 100) <= 8.0 * 1.05

    # In batches of a million rows the call is nearly free: the budget buys
    # the last stage for some rows, and more accuracy.
    large = AdaptiveCascadeClassifier(
        stages, costs=costs, budget=8.0, cost_batch_size=10**6, random_state=0
    ).fit(X_policy, y_policy)
    assert large.deepest_stage_ == 2
    assert large.exit_rates_[2] > 0.1
    assert large.score(X_test, y_test) > small.score(X_test, y_test)


@pytest.mark.parametrize("budget", [6.0, 12.0, 20.0])
def test_one_row_calls_do_as_well_as_the_same_costs_per_row(frozen_stages, budget):
    # In calls of one row a cost per call is a cost per row: the policy must
    # do at least as well as with those costs given per row.
    stages, X_policy, y_policy, _, _ = frozen_stages
    per_call, per_row = [0.0, 8.0, 8.0], [1.0, 2.0, 10.0]
    parts = AdaptiveCascadeClassifier(
        stages,
        costs={"per_call": per_call, "per_row": per_row},
        budget=budget,
        cost_batch_size=1,
        random_state=0,
    ).fit(X_policy, y_policy)
    plain = AdaptiveCascadeClassifier(
        stages, costs=np.add(per_call, per_row), budget=budget, random_state=0
    ).fit(X_policy, y_policy)

    assert_allclose(parts.costs_, plain.costs_)
    assert parts.policy_rows_cost_ <= budget
    assert parts.expected_accuracy_ >= plain.expected_accuracy_


def test_reported_costs_are_what_batches_of_that_size_cost(frozen_stages):
    stages, X_policy, y_policy, X_test, y_test = frozen_stages
    costs = {"per_call": PER_CALL, "per_row": PER_ROW}
    cascade = AdaptiveCascadeClassifier(
        stages, costs=costs, cost_weight=0.001, cost_batch_size=500, random_state=0
    ).fit(X_policy, y_policy)
    assert cascade.deepest_stage_ == 2

    X_test, y_test = X_test[:1000], y_test[:1000]  # two full batches
    test = cascade.evaluate_frontier(X_test, y_test)
    # The expected cost of a batch of 500 test rows against the calls
    # counted when routing them 500 at a time.
    assert_allclose(test["cost_at_fit"], _batched_cost(cascade, X_test, 500), rtol=0.02)
    # The last stage's call, 2 per row of the batch, is in it although
    # only some rows reach that stage.
    rates = test["exit_rates_at_fit"]
    rows_only = rates @ np.cumsum(PER_ROW)
    assert test["cost_at_fit"] == pytest.approx(rows_only + 1000 / 500, rel=0.01)
    # The plot shows the same costs as the figures.
    pytest.importorskip("matplotlib")
    from skadaptive.plot import CostAccuracyDisplay

    display = CostAccuracyDisplay.from_estimator(cascade, X_test, y_test)
    assert display.chosen_cost == pytest.approx(test["cost_at_fit"], rel=1e-12)
    assert_allclose(display.cost, test["expected_cost"], rtol=1e-12)
    assert display.oracle_cost == pytest.approx(test["oracle_cost"], rel=1e-12)
    # Every frontier point's cost includes the call of each stage it reaches.
    for cost, *point_rates in zip(
        cascade.frontier_["expected_cost"],
        cascade.frontier_["exit_rate_0"],
        cascade.frontier_["exit_rate_1"],
        cascade.frontier_["exit_rate_2"],
    ):
        point_rates = np.array(point_rates)
        called_last = 1 - (1 - point_rates[2]) ** 500
        assert cost == pytest.approx(
            point_rates @ np.cumsum(PER_ROW) + called_last * 2.0, rel=1e-9
        )


def test_expected_speed_up_is_over_the_last_stage_alone(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(stages, costs=[1.0, 2.0, 10.0])
    assert not hasattr(cascade, "expected_speed_up_")  # not fitted
    cascade.fit(X_policy, y_policy)
    assert cascade.expected_speed_up_ == pytest.approx(10.0 / cascade.expected_cost_)
    # Early exits: over the whole model (its trees, for costs counted in trees).
    X, y = make_classification(n_samples=600, n_classes=3, n_informative=6)
    from sklearn.ensemble import GradientBoostingClassifier

    boosting = GradientBoostingClassifier(n_estimators=20, random_state=0)
    early = EarlyExitClassifier(boosting, exits=[5, 20], random_state=0).fit(X, y)
    assert early.expected_speed_up_ == pytest.approx(
        early.cumulative_costs_[-1] / early.expected_cost_
    )
    assert early.expected_speed_up_ >= 1.0


def test_costs_given_per_row_have_no_part_per_call(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 2, 10], cost_batch_size=1)
    cascade.fit(X_policy, y_policy)

    assert_allclose(cascade.costs_, [1, 2, 10])
    assert_allclose(cascade.costs_per_call_, 0)
    assert_allclose(cascade.costs_per_row_, [1, 2, 10])


def test_cost_batch_size_defaults_to_batch_size_then_the_routing_batch(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    costs = {"per_call": PER_CALL, "per_row": PER_ROW}
    cascade = AdaptiveCascadeClassifier(stages, costs=costs, batch_size=64)
    assert cascade.fit(X_policy, y_policy).cost_batch_size_ == 64
    cascade.set_params(batch_size=None)
    assert cascade.fit(X_policy, y_policy).cost_batch_size_ == 65_536


@pytest.mark.parametrize(
    "costs, match",
    [
        ({"per_call": [0, 0, 1]}, "exactly the keys 'per_call' and 'per_row'"),
        ({"per_call": [0, 0, -1], "per_row": [1, 2, 3]}, "finite and non-negative"),
        (
            {"per_call": [0, 0], "per_row": [1, 2, 3]},
            r"costs\['per_call'\]: costs must give one cost per call per stage",
        ),
        (
            {"per_call": [0, 0, 0], "per_row": [1, 2]},
            r"costs\['per_row'\]: costs must give one per-row cost per stage",
        ),
        ({"per_call": [0, 0, 0], "per_row": [0, 0, 0]}, "all zero"),
    ],
)
def test_bad_cost_parts_are_refused(frozen_stages, costs, match):
    stages, X_policy, y_policy, _, _ = frozen_stages
    with pytest.raises(ValueError, match=match):
        AdaptiveCascadeClassifier(stages, costs=costs).fit(X_policy, y_policy)


def test_early_exits_measured_in_seconds_keep_both_parts():
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=600, n_informative=6, random_state=0)
    forest = RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)
    ee = EarlyExitClassifier(
        FrozenEstimator(forest), exits=[10, 40], costs="auto", cost_batch_size=8
    ).fit(X, y)

    # Every call of a forest's trees pays a set-up per tree: the part per
    # call is there, and costs_ spreads it over 8 rows.
    assert (ee.costs_per_call_ > 0).all()
    assert_allclose(ee.costs_, ee.costs_per_row_ + ee.costs_per_call_ / 8)


class _SlowDecisionAfter:
    """A policy whose decision after ``stage`` takes ``pause`` seconds."""

    def __init__(self, stage, pause):
        self.stage = stage
        self.pause = pause

    def exits(self, stage, history):
        if stage == self.stage:
            time.sleep(self.pause)
        return np.zeros(len(history[-1]), dtype=bool)


def test_routing_work_is_charged_to_the_stage_it_follows():
    from skadaptive.engine._overhead import measure_routing_seconds

    rng = np.random.default_rng(0)
    probas = [rng.dirichlet(np.ones(3), size=300) for _ in range(3)]
    seconds = measure_routing_seconds(
        _SlowDecisionAfter(1, 0.002),
        probas,
        np.zeros((300, 4)),
        n_classes=3,
        repeats=2,
    )
    # The 2 ms decision after stage 1 is stage 1's cost per call; the other
    # stages' routing costs far less.
    assert seconds.per_call[1] >= 0.0018
    assert seconds.per_call[0] < 0.001 and seconds.per_call[2] < 0.001


class _SlowAfterAnother(_Marks):
    """Pays ``pause`` seconds per call where another stage ran since its last
    call (as a network whose weights the other evicted from the cache)."""

    def __init__(self, pause=0.003):
        self.pause = pause

    def predict_proba(self, X):
        if _LAST_RUN[0] != id(self):
            time.sleep(self.pause)
        return super().predict_proba(X)


def test_measured_costs_are_the_stages_times_inside_the_cascade(frozen_stages):
    """A stage that is slower between other stages than alone costs what it
    takes inside the cascade; its time alone (the speed-up's reference) is
    what it takes on its own."""
    _, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(
        [("first", _Marks()), ("second", _SlowAfterAnother(0.003))],
        costs="auto",
        cost_batch_size=1024,
        random_state=0,
    ).fit(X_policy, y_policy)
    # A sleep takes at least its time: a 1,024-row call inside the cascade
    # costs 3 ms more than alone (at least 2, whatever the machine adds).
    inside = cascade.costs_per_call_[1] + 1024 * cascade.costs_per_row_[1]
    assert inside >= 0.0028
    alone = cascade._alone_seconds(1024)[1] * 1024  # one 1,024-row call
    assert inside - alone >= 0.002


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed", range(6))
def test_no_stage_is_timed_as_free_inside_the_cascade(seed):
    """Each stage's share of one timed pass holds its own run: a stage can
    never come out free (with the difference of two noisy timings, the last
    of three 2-tree exits came out at 1.5e-17 s on 7 seeds of 10)."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    from skadaptive import EarlyExitRegressor

    X, y = make_regression(n_samples=10, n_features=5, random_state=0)
    forest = RandomForestRegressor(8, random_state=0)
    model = EarlyExitRegressor(
        forest, exits=[2, 4, 8], costs="auto", cv=2, random_state=seed
    ).fit(X, y)
    # Two trees on a row take far more than a nanosecond.
    assert model.costs_.min() > 1e-9
    assert model.costs_per_row_.min() + model.costs_per_call_.min() > 0


def test_shares_of_a_timed_pass_add_up_to_the_pass():
    from skadaptive.engine._overhead import _timed_pass

    rng = np.random.default_rng(0)
    probas = [rng.dirichlet(np.ones(3), size=200) for _ in range(3)]
    source = _overhead_lookup(probas)
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        shares = _timed_pass(source, _SlowDecisionAfter(1, 0.01), np.zeros((200, 4)), 3)
        took = time.perf_counter() - start
        assert (shares > 0).all() and shares.sum() <= took
        passes.append(shares)
    # The 10 ms decision after stage 1 is stage 1's (the fastest of three
    # passes, as the timing keeps: a pass the machine interrupts is slower).
    fastest = np.min(passes, axis=0)
    assert fastest[1] >= 0.0095 and fastest[0] < 0.005 and fastest[2] < 0.005


def _overhead_lookup(probas):
    from skadaptive.engine._overhead import _Lookup

    return _Lookup(probas, len(probas), rows_in_state=False)


class _FailsOn15Rows(_Marks):
    def predict_proba(self, X):
        if len(X) == 15:
            raise RuntimeError("boom on 15 rows")
        return super().predict_proba(X)


def test_an_error_while_timing_says_where_it_was_raised(frozen_stages):
    _, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(
        [("first", _Marks()), ("odd", _FailsOn15Rows())],
        costs="auto",
        random_state=0,
    )
    with pytest.raises(RuntimeError, match="boom on 15 rows") as raised:
        cascade.fit(X_policy, y_policy)
    notes = " ".join(getattr(raised.value, "__notes__", []))
    assert "costs='auto' timed the stages inside the cascade" in notes
    assert "stage 'odd'" in notes and "16 rows" in notes


class _CountsBlasThreads(_Marks):
    """Records how many threads BLAS may use when it is called."""

    seen = []

    def predict_proba(self, X):
        from threadpoolctl import threadpool_info

        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        type(self).seen.append(max(blas, default=0))
        return super().predict_proba(X)


def test_stages_are_timed_with_the_threads_prediction_uses(frozen_stages):
    """A stage on BLAS is timed inside the cascade with the threads it has
    at prediction, not on one (the policy's own learning may use one)."""
    import scipy.linalg  # noqa: F401  (loads the BLAS libraries counted)
    from threadpoolctl import threadpool_limits

    _, X_policy, y_policy, _, _ = frozen_stages
    _CountsBlasThreads.seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        AdaptiveCascadeClassifier(
            [("first", _Marks()), ("counts", _CountsBlasThreads())],
            costs="auto",
            random_state=0,
        ).fit(X_policy, y_policy)
    assert _CountsBlasThreads.seen and min(_CountsBlasThreads.seen) == 2


def test_costs_of_an_estimator_pickled_before_in_cascade_timing(frozen_stages):
    """An estimator pickled when the routing was timed apart (``_routing``)
    refits its lines for other batch sizes from the stages' timings plus
    the routing's."""
    stages, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(stages, costs="auto", random_state=0)
    cascade.fit(X_policy, y_policy)
    expected = cascade._cost_lines(16)
    measured, in_cascade = cascade._measured_seconds, cascade._in_cascade
    del cascade._in_cascade
    cascade._routing = Bunch(
        batch_sizes=measured.batch_sizes, timings=in_cascade.timings - measured.timings
    )
    got = cascade._cost_lines(16)
    assert_allclose(got[0], expected[0])
    assert_allclose(got[1], expected[1])
    assert_allclose(
        cascade._alone_seconds(16),
        cascade._alone_costs(
            call_line_for(measured, 16).per_row
            + call_line_for(measured, 16).per_call / 16
        ),
    )


class _CountingTags(ClassifierMixin, BaseEstimator):
    """A logistic regression that counts how often its tags are read (its
    ``predict_proba`` reads none, unlike scikit-learn's own validation)."""

    reads = 0

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=1000).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return softmax(X @ self.model_.coef_.T + self.model_.intercept_, axis=1)

    def __sklearn_tags__(self):
        type(self).reads += 1
        return super().__sklearn_tags__()


def _counting_cascade(frozen_stages):
    """A cascade whose last stage counts the reads of its tags, and the data."""
    stages, X_policy, y_policy, X_test, _ = frozen_stages
    counted = _CountingTags().fit(X_policy, y_policy)
    cascade = AdaptiveCascadeClassifier(
        [*stages[:2], ("counted", FrozenEstimator(counted))], costs=[1, 2, 10]
    ).fit(X_policy, y_policy)
    return cascade, X_policy, y_policy, X_test


def test_predicting_does_not_read_every_stage_tags_again(frozen_stages):
    cascade, X_policy, y_policy, X_test = _counting_cascade(frozen_stages)
    before = _CountingTags.reads
    for row in range(20):
        cascade.predict_proba(X_test[row : row + 1])
    # Worked out at fit: a 1-row call does not pay for them (a
    # FrozenEstimator deep-copies its model's tags on every read).
    assert _CountingTags.reads == before
    # A refit with other stages works them out again.
    from sklearn.ensemble import HistGradientBoostingClassifier

    nan_ok = [
        (name, FrozenEstimator(HistGradientBoostingClassifier(max_iter=n)))
        for name, n in (("small", 5), ("large", 20))
    ]
    for _, stage in nan_ok:
        stage.estimator.fit(X_policy, y_policy)
    assert not cascade.__sklearn_tags__().input_tags.allow_nan
    cascade.set_params(estimators=nan_ok, costs=[1, 4]).fit(X_policy, y_policy)
    assert cascade.__sklearn_tags__().input_tags.allow_nan


def test_a_loaded_estimator_does_not_read_every_stage_tags_again(frozen_stages):
    cascade, _, _, X_test = _counting_cascade(frozen_stages)
    import pickle

    loaded = pickle.loads(pickle.dumps(cascade))
    # The stages are new objects after a load: their tags are worked out
    # again on the first prediction, and kept.
    loaded.predict_proba(X_test[:1])
    before = _CountingTags.reads
    for row in range(20):
        loaded.predict_proba(X_test[row : row + 1])
    assert _CountingTags.reads == before
    assert_allclose(loaded.predict_proba(X_test), cascade.predict_proba(X_test))


def test_costs_for_larger_calls_than_predict_makes_are_refused(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(
        stages, costs="auto", cost_batch_size=1024, batch_size=16
    )
    with pytest.raises(ValueError, match="cost_batch_size=1024 is larger than"):
        cascade.fit(X_policy, y_policy)
    cascade.set_params(cost_batch_size=16).fit(X_policy, y_policy)
    assert cascade.cost_batch_size_ == 16


def test_a_copy_says_the_batch_size_it_was_learned_for(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    costs = {"per_call": PER_CALL, "per_row": PER_ROW}
    cascade = AdaptiveCascadeClassifier(stages, costs=costs, cost_batch_size=64)
    cascade.fit(X_policy, y_policy).set_params(cost_batch_size=1)
    copy = cascade.with_policy(cost_weight=0.05)
    assert copy.cost_batch_size == copy.cost_batch_size_ == 64
    # Refitted, the new batch size holds.
    assert cascade.fit(X_policy, y_policy).cost_batch_size_ == 1


class _SlowForest:
    """Mixed into a forest: its own prediction takes ``pause`` seconds more
    per call than its trees (as a forest's thread set-up does)."""

    pause = 0.004

    def predict_proba(self, X):
        time.sleep(self.pause)
        return super().predict_proba(X)

    def predict(self, X):
        time.sleep(self.pause)
        return super().predict(X)


@pytest.mark.parametrize("regression", [False, True])
def test_an_early_exits_speed_up_is_over_its_backbones_own_prediction(regression):
    from sklearn.ensemble import (
        RandomForestClassifier,
        RandomForestRegressor,
    )

    from skadaptive import EarlyExitRegressor

    base = RandomForestRegressor if regression else RandomForestClassifier
    slow = type("SlowForest", (_SlowForest, base), {})
    X, y = make_classification(n_samples=600, n_informative=6, random_state=0)
    forest = slow(n_estimators=20, random_state=0).fit(X, y)
    estimator = (EarlyExitRegressor if regression else EarlyExitClassifier)(
        FrozenEstimator(forest), exits=[5, 20], costs="auto", cost_batch_size=1
    ).fit(X, y)

    # The reference is what a user calls instead: the backbone's own
    # prediction, timed beside the exits (which run its trees directly).
    whole = estimator._measured_seconds.whole_timings
    assert whole.shape == estimator._measured_seconds.batch_sizes.shape
    assert whole.min() >= _SlowForest.pause
    reference = estimator._reference_seconds(1)
    assert reference >= _SlowForest.pause
    assert reference > 2 * estimator._alone_seconds(1)[-1]
    assert estimator.expected_speed_up_ == pytest.approx(
        reference / estimator.expected_cost_
    )
    advice = batch_size_advice(estimator, estimator.exit_rates_)
    one_row = advice["points"][0]
    assert one_row["batch_size"] == 1
    assert one_row["speed_up"] * one_row["cost_per_row"] >= _SlowForest.pause


def test_a_chain_is_its_exits_so_its_speed_up_is_over_them():
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from skadaptive.stages import ChainExits

    X, y = make_classification(n_samples=400, n_informative=6, random_state=0)
    chain = ChainExits(
        [StandardScaler(), PCA(n_components=3, random_state=0)],
        [LogisticRegression(), LogisticRegression()],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = EarlyExitClassifier(chain, costs="auto", cost_batch_size=8)
        estimator.fit(X, y)
    assert estimator._measured_seconds.whole_timings is None
    assert estimator._reference_seconds(8) == estimator._alone_seconds(8)[-1]


def test_a_copy_refuses_a_batch_size_below_the_one_it_was_learned_for(frozen_stages):
    stages, X_policy, y_policy, _, _ = frozen_stages
    costs = {"per_call": PER_CALL, "per_row": PER_ROW}
    cascade = AdaptiveCascadeClassifier(
        stages, costs=costs, cost_batch_size=64, batch_size=64
    ).fit(X_policy, y_policy)
    cascade.set_params(batch_size=32)
    with pytest.raises(ValueError, match="batch_size=32 was set after a fit"):
        cascade.with_policy(cost_weight=0.05)
    # Fitted for the batch size (cost_batch_size left None), then unset: the
    # copy's parameters keep the batch size its costs are for.
    cascade = AdaptiveCascadeClassifier(stages, costs=costs, batch_size=64)
    cascade.fit(X_policy, y_policy).set_params(batch_size=None)
    copy = cascade.with_policy(cost_weight=0.05)
    assert copy.cost_batch_size == 64
    assert clone(copy).fit(X_policy, y_policy).cost_batch_size_ == 64


def test_a_copy_takes_any_batch_size_where_costs_have_no_part_per_call(
    frozen_stages,
):
    """Costs given per row only are the same for calls of any size: a smaller
    batch_size set after the fit changes nothing with_policy learns (it was
    refused as for measured costs, which predict took)."""
    stages, X_policy, y_policy, X_test, _ = frozen_stages
    cascade = AdaptiveCascadeClassifier(stages, costs=[1.0, 4.0, 20.0]).fit(
        X_policy, y_policy
    )
    cascade.set_params(batch_size=32)
    copy = cascade.with_policy(cost_weight=cascade.cost_weight)
    assert copy.cost_batch_size is None and copy.batch_size == 32
    assert_array_equal(copy.predict_exit(X_test), cascade.predict_exit(X_test))
    assert_array_equal(copy.costs_, cascade.costs_)


def test_budget_status_follows_the_batch_cost_with_per_call_costs():
    """budget_status_ is "spent" when policy_rows_cost_ is within 3 % below
    the budget searched; with per-call costs it was judged on the search's
    own cost (per-call parts set aside): "spent" at 12 % unspent, and
    "saturated" at 98 % spent."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(
        n_samples=2400, n_features=10, n_informative=6, n_classes=3, random_state=1
    )
    fit, rows = slice(0, 1200), slice(1200, 2000)
    stages = [
        ("lr", LogisticRegression(max_iter=500)),
        ("dt", DecisionTreeClassifier(max_depth=6, random_state=0)),
        ("rf", RandomForestClassifier(n_estimators=30, random_state=0)),
    ]
    stages = [(n, FrozenEstimator(s.fit(X[fit], y[fit]))) for n, s in stages]
    costs = {"per_call": [50, 200, 100], "per_row": [1, 4, 10]}
    statuses = set()
    for budget in (2.8, 4.0, 4.4, 7.2):
        cascade = AdaptiveCascadeClassifier(
            stages, costs=costs, cost_batch_size=100, budget=budget, random_state=0
        ).fit(X[rows], y[rows])
        searched = cascade.budget_search_["searched_budget"]
        spent = cascade.policy_rows_cost_ >= 0.97 * searched
        assert cascade.budget_status_ == ("spent" if spent else "saturated"), budget
        statuses.add(cascade.budget_status_)
    assert statuses == {"spent", "saturated"}
