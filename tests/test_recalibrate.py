"""Budget recalibration without labels (``recalibrate``) and ``exit_report``.

The stages are fitted once and frozen; each estimator learns its policy on
rows drawn like the test rows. "Shifted" rows have more hard rows: every row
of a fresh sample, plus twice more of the third that the first stage is least
sure of (for regression, where the stages disagree most).
"""

from __future__ import annotations

import copy
import functools
import io
import os
import re
import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

from skadaptive import (
    AdaptiveCascadeClassifier,
    AdaptiveCascadeRegressor,
    EarlyExitClassifier,
)
from skadaptive.cli import main
from skadaptive.policies import JumpRule, Router, SkipPolicy
from skadaptive.stages import exit_probas

BUDGET = 3.5  # costs 1, 3, 10: the full cascade costs 14 per row


# ------------------------------------------------------------------ data
@functools.cache
def _data():
    X, y = make_classification(
        n_samples=6000,
        n_features=12,
        n_informative=7,
        n_classes=3,
        n_clusters_per_class=2,
        flip_y=0.03,
        random_state=0,
    )
    # stages | policy rows | shifted pool | unshifted rows | more unshifted
    cuts = np.cumsum([1500, 1200, 1200, 1200])
    return [(X[a:b], y[a:b]) for a, b in zip([0, *cuts], [*cuts, len(y)])]


@functools.cache
def _stages():
    (X, y), *_ = _data()
    return [
        ("lr", FrozenEstimator(LogisticRegression(max_iter=500).fit(X, y))),
        (
            "tree",
            FrozenEstimator(
                DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y)
            ),
        ),
        (
            "forest",
            FrozenEstimator(RandomForestClassifier(40, random_state=0).fit(X, y)),
        ),
    ]


def _fit(**params):
    _, (X, y), *_ = _data()
    params = {
        "estimators": _stages(),
        "costs": [1, 3, 10],
        "budget": BUDGET,
        "random_state": 0,
        **params,
    }
    return AdaptiveCascadeClassifier(**params).fit(X, y)


@functools.cache
def _cascade():
    """The default (linear) policy, fitted for BUDGET."""
    return _fit()


def _more_hard_rows(X, y, sureness):
    """``X`` plus the third of its rows with the lowest ``sureness`` twice."""
    hard = np.flatnonzero(sureness <= np.quantile(sureness, 1 / 3))
    rows = np.concatenate([np.arange(len(X)), hard, hard])
    return X[rows], y[rows]


@functools.cache
def _shifted():
    _, _, (X, y), *_ = _data()
    first = _stages()[0][1]
    return _more_hard_rows(X, y, first.predict_proba(X).max(axis=1))


@functools.cache
def _regression():
    X, y = make_regression(
        n_samples=3200, n_features=8, n_informative=6, noise=10.0, random_state=0
    )
    y = y + 0.02 * y**2  # something the ridge cannot fit
    stages = [
        ("ridge", FrozenEstimator(Ridge().fit(X[:1200], y[:1200]))),
        (
            "forest",
            FrozenEstimator(
                RandomForestRegressor(30, random_state=0).fit(X[:1200], y[:1200])
            ),
        ),
    ]
    regressor = AdaptiveCascadeRegressor(
        stages, costs=[1, 10], budget=3.0, random_state=0
    ).fit(X[1200:2200], y[1200:2200])
    X_new, y_new = X[2200:], y[2200:]
    disagreement = np.abs(stages[0][1].predict(X_new) - stages[1][1].predict(X_new))
    return regressor, _more_hard_rows(X_new, y_new, -disagreement)


@functools.cache
def _early_exit(budget=18):
    (X_fit, y_fit), (X, y), (X_new, y_new), *_ = _data()
    boosting = GradientBoostingClassifier(
        n_estimators=40, max_depth=3, random_state=0
    ).fit(X_fit, y_fit)
    # Exits after 10, 20 and 40 trees (costs counted in trees).
    early = EarlyExitClassifier(
        FrozenEstimator(boosting), exits=[10, 20, 40], budget=budget, policy="max_proba"
    ).fit(X, y)
    first = exit_probas(early._stage_source(), X_new)[0]
    return early, _more_hard_rows(X_new, y_new, first.max(axis=1))


def _skipping():
    """The linear cascade with a policy whose rows, when they go on after the
    first stage, jump straight to the last (the rules kept)."""
    estimator = copy.copy(_cascade())
    rules = estimator.policy_.rules
    estimator.policy_ = SkipPolicy(
        list(rules), [JumpRule(np.array([1, 2]), constant=2)]
    )
    return estimator


def _routed():
    """The linear cascade with a router that starts the rows the first stage
    would be unsure of at the last stage (the rules kept; the router costs
    0.25 per row)."""
    estimator = copy.copy(_cascade())
    _, (X, _), *_ = _data()
    unsure = _stages()[0][1].predict_proba(X).max(axis=1) < 0.6
    learner = LogisticRegression().fit(X, np.where(unsure, 2, 0))
    router = Router(np.array([0, 2]), learner=learner)
    rules = estimator.policy_.rules
    estimator.policy_ = SkipPolicy(list(rules), [None, None], router=router)
    estimator.router_, estimator.router_cost_ = router, 0.25
    estimator.router_search_ = {"router_cost": 0.25}
    return estimator


def _variant(name):
    """An estimator fitted for a budget, and shifted rows for it."""
    if name == "regressor":
        regressor, (X, _) = _regression()
        return regressor, X
    if name == "early_exit":
        early, (X, _) = _early_exit()
        return early, X
    X, _ = _shifted()
    if name == "linear":
        return _cascade(), X
    if name == "skips":
        return _skipping(), X
    if name == "router":
        return _routed(), X
    if name == "combined":
        # A weak middle stage, whose answer a combiner (logistic regression on
        # the log-probabilities of the first two) improves.
        (X_fit, y_fit), *_ = _data()
        middle = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_fit, y_fit)
        stages = [_stages()[0], ("tree", FrozenEstimator(middle)), _stages()[2]]
        combined = _fit(policy="max_proba", answer="combined", estimators=stages)
        assert combined.combiners_[1].kind != "stage"
        return combined, X
    if name == "per_call":
        costs = {"per_row": [1.0, 2.0, 8.0], "per_call": [0.0, 8.0, 32.0]}
        return _fit(policy="max_proba", costs=costs, cost_batch_size=32), X
    raise ValueError(name)


def _batch_cost(estimator, routed) -> float:
    """Average cost per row of ``routed``'s rows, written out independently:
    per-row parts for the stages each row ran, and each stage's per-call part
    once per batch of ``cost_batch_size_`` rows that one of them reaches."""
    reach = routed.ran.mean(axis=0)
    batch = estimator.cost_batch_size_
    called = 1.0 - (1.0 - reach) ** batch
    router = 0.0 if getattr(estimator, "router_", None) is None else 0.25
    return float(
        router
        + reach @ estimator.costs_per_row_
        + called @ (estimator.costs_per_call_ / batch)
    )


def _budget_of(estimator) -> float:
    return float(estimator.budget_)


# ------------------------------------------------------- the budget holds
@pytest.mark.parametrize(
    "name",
    ["linear", "skips", "router", "combined", "per_call", "regressor", "early_exit"],
)
def test_recalibrated_copy_meets_the_budget_on_shifted_rows(name):
    estimator, X = _variant(name)
    budget = _budget_of(estimator)
    fitted = [rule.threshold for rule in estimator.policy_.rules]
    before = _batch_cost(estimator, estimator.route(X))
    # Built to overspend: more hard rows reach the dear stages.
    assert before > 1.1 * budget, (name, before, budget)
    report = estimator.exit_report(X)
    assert report.over_budget and report.cost == pytest.approx(before, rel=1e-9)

    recalibrated = estimator.recalibrate(X, budget=budget)

    after = _batch_cost(recalibrated, recalibrated.route(X))
    assert 0.99 * budget <= after <= budget * (1 + 1e-9), (name, after, budget)
    assert recalibrated.recalibrated_cost_ == pytest.approx(after, rel=1e-9)
    assert recalibrated.expected_cost_ == recalibrated.recalibrated_cost_
    record = recalibrated.recalibration_
    assert record["status"] == "met"
    assert record["cost_before"] == pytest.approx(before, rel=1e-9)
    assert record["next_cost"] > budget
    # Cheaper means every threshold lowered or kept, and the shift positive.
    new = np.array([rule.threshold for rule in recalibrated.policy_.rules])
    assert record["shift"] > 0
    assert np.all(new <= np.array(fitted)) and np.any(new < np.array(fitted))
    # Only the thresholds moved: the same rules (learned scores), the same jumps.
    for old_rule, new_rule in zip(estimator.policy_.rules, recalibrated.policy_.rules):
        assert type(new_rule) is type(old_rule)
        old_parts = {k: v for k, v in vars(old_rule).items() if k != "threshold"}
        new_parts = {k: v for k, v in vars(new_rule).items() if k != "threshold"}
        assert old_parts.keys() == new_parts.keys()
        assert all(new_parts[k] is v for k, v in old_parts.items())
    assert recalibrated.policy_.skips == estimator.policy_.skips
    if estimator.policy_.skips:
        assert recalibrated.policy_.jumps == estimator.policy_.jumps
        ran = recalibrated.route(X).ran
        assert (ran[:, 2] & ~ran[:, 1]).any()  # rows still skip the middle
    # The original is unchanged.
    assert [rule.threshold for rule in estimator.policy_.rules] == fitted
    assert not hasattr(estimator, "recalibration_")


def test_unshifted_rows_change_nothing_beyond_noise():
    cascade = _cascade()
    *_, (X, _), (X_other, _) = _data()
    recalibrated = cascade.recalibrate(X)
    record = recalibrated.recalibration_
    assert record["budget"] == BUDGET == cascade.budget_
    assert 0.99 * BUDGET <= record["cost"] <= BUDGET
    # The fitted policy was near the budget on such rows already: the
    # thresholds moved by a few rows' worth, and the answers on other rows
    # like them are nearly all the same.
    assert abs(record["cost_before"] / BUDGET - 1) < 0.05
    assert np.abs(record["exit_rates"] - record["exit_rates_before"]).max() < 0.03
    assert np.mean(recalibrated.predict(X_other) == cascade.predict(X_other)) > 0.98
    assert (
        np.mean(recalibrated.predict_exit(X_other) == cascade.predict_exit(X_other))
        > 0.95
    )


def test_recalibrating_on_the_policy_rows_at_their_cost_keeps_every_exit():
    cascade = _cascade()
    _, (X, _), *_ = _data()
    recalibrated = cascade.recalibrate(X, budget=cascade.policy_rows_cost_)
    assert recalibrated.recalibration_["cost_before"] == pytest.approx(
        cascade.policy_rows_cost_
    )
    np.testing.assert_array_equal(recalibrated.predict_exit(X), cascade.predict_exit(X))
    assert recalibrated.recalibrated_cost_ == pytest.approx(cascade.policy_rows_cost_)
    # No threshold moves where the cost on the rows does not need it.
    np.testing.assert_array_equal(
        recalibrated.recalibration_["thresholds"],
        [rule.threshold for rule in cascade.policy_.rules],
    )


def test_the_copy_reports_what_was_done_honestly():
    cascade = _cascade()
    X, _ = _shifted()
    recalibrated = cascade.recalibrate(X)
    # The accuracy estimate is the fitted one: no label was read.
    assert recalibrated.expected_accuracy_ == cascade.expected_accuracy_
    assert recalibrated.budget_ == BUDGET
    # The policy rows' figures are the new policy's on those (labelled) rows.
    _, (X_policy, y_policy), *_ = _data()
    routed = recalibrated.route(X_policy)
    assert recalibrated.policy_rows_cost_ == pytest.approx(
        _batch_cost(recalibrated, routed)
    )
    assert recalibrated.policy_rows_accuracy_ == pytest.approx(
        np.mean(recalibrated.predict(X_policy) == y_policy)
    )
    np.testing.assert_allclose(
        recalibrated.exit_rates_,
        np.bincount(routed.exit_stage, minlength=3) / len(y_policy),
    )
    # Once the policy rows are discarded they are not invented.
    discarded = copy.deepcopy(cascade).discard_policy_rows().recalibrate(X)
    assert np.isnan(discarded.policy_rows_cost_)
    assert np.isnan(discarded.exit_rates_).all()
    np.testing.assert_array_equal(discarded.predict(X), recalibrated.predict(X))


# -------------------------------------------------------- default budgets
def test_the_default_budget_is_the_fitted_one_or_the_expected_cost():
    cascade = _cascade()
    X, _ = _shifted()
    assert cascade.budget_status_ == "spent"
    assert cascade.recalibrate(X).recalibration_["budget"] == BUDGET

    weighted = cascade.with_policy(cost_weight=0.1, policy="max_proba")
    assert weighted.budget_ is None
    record = weighted.recalibrate(X).recalibration_
    assert record["budget"] == weighted.expected_cost_
    assert record["cost"] <= weighted.expected_cost_ < record["cost_before"]

    # A budget the fit left unspent is not spent on the new rows either.
    early, (X_early, _) = _early_exit(budget=30)
    assert early.budget_status_ == "saturated"
    assert early.expected_cost_ < early.budget_ == 30
    record = early.recalibrate(X_early).recalibration_
    assert record["budget"] == early.expected_cost_


def test_a_second_recalibration_starts_from_the_first():
    cascade = _cascade()
    X, _ = _shifted()
    once = cascade.recalibrate(X)
    twice = once.recalibrate(X)
    # Its default budget is the one aimed at; it starts from the first one's
    # thresholds and cost, and moves little (it may trade a step between two
    # exits to come closer to the budget).
    record = twice.recalibration_
    assert record["budget"] == BUDGET
    assert record["cost_before"] == once.recalibrated_cost_
    assert once.recalibrated_cost_ <= record["cost"] <= BUDGET
    assert np.mean(twice.predict_exit(X) == once.predict_exit(X)) > 0.95


def test_default_recalibrations_in_a_row_aim_at_the_fits_cost():
    """A copy's expected_cost_ is what it measured, a little under the
    target: aiming the next default recalibration at it drifted down with
    every one (2.355 -> 2.233 in eight). The fit's cost is carried on."""
    cascade = _cascade().with_policy(cost_weight=0.1, policy="max_proba")
    X, _ = _shifted()
    rows = np.random.default_rng(0).permutation(len(X))
    current, targets = cascade, []
    for part in np.array_split(rows, 4):
        current = current.recalibrate(X[part])
        targets.append(current.recalibration_["budget"])
        assert current.recalibration_["expected_cost_at_fit"] == cascade.expected_cost_
    assert targets == [cascade.expected_cost_] * 4
    # A budget given to a recalibration is the copy's target from then on.
    given = cascade.recalibrate(X, budget=4.0).recalibrate(X[rows[:500]])
    assert given.recalibration_["budget"] == 4.0


def test_the_default_target_keeps_the_fits_confidence_margin():
    cascade = _fit(budget=4.5, budget_confidence=0.95)
    assert cascade.budget_status_ == "spent"
    searched = cascade.budget_search_["searched_budget"]
    assert searched < 4.5
    X, _ = _shifted()
    record = cascade.recalibrate(X).recalibration_
    assert record["budget"] == pytest.approx(searched)
    assert cascade.recalibrate(X, budget=4.5).recalibration_["budget"] == 4.5


def test_relearning_the_policy_drops_the_recalibration():
    estimator, X = _variant("combined")
    recalibrated = estimator.recalibrate(X)
    relearned = recalibrated.with_policy(budget=BUDGET)
    assert not hasattr(relearned, "recalibration_")
    assert not hasattr(relearned, "recalibrated_cost_")
    assert "at fit" in relearned.exit_report(X).reference


# --------------------------------------------------------------- reports
def test_exit_report_compares_new_rows_with_what_was_expected():
    cascade = _cascade()
    X, _ = _shifted()
    report = cascade.exit_report(X)
    routed = cascade.route(X)
    assert report.n_rows == len(X)
    assert report.cost == pytest.approx(_batch_cost(cascade, routed))
    np.testing.assert_allclose(
        report.exit_rates, np.bincount(routed.exit_stage, minlength=3) / len(X)
    )
    # Out of sample, as the expected cost: the rows' exits and their cost
    # are compared with one estimate.
    np.testing.assert_array_equal(
        report.expected_exit_rates, cascade.expected_exit_rates_
    )
    assert report.expected_exit_rates @ cascade.cumulative_costs_ == pytest.approx(
        cascade.expected_cost_, rel=1e-12
    )
    assert "expected_exit_rates_" in report.reference
    assert report.expected_cost == cascade.expected_cost_
    assert report.budget == BUDGET
    assert report.over_budget
    assert report.cost_change == pytest.approx(report.cost - cascade.expected_cost_)
    assert report.exit_rate_changes.sum() == pytest.approx(0.0, abs=1e-12)
    assert report.exit_rate_changes[0] < 0  # fewer rows answered cheaply
    text = str(report)
    assert all(name in text for name in ("lr", "tree", "forest"))
    assert "over by" in text and repr(report) == text

    # After recalibration the reference is the rows recalibrated on.
    recalibrated = cascade.recalibrate(X)
    np.testing.assert_allclose(
        recalibrated.expected_exit_rates_,
        np.bincount(recalibrated.predict_exit(X), minlength=3) / len(X),
    )
    after = recalibrated.exit_report(X)
    assert "recalibrated on" in after.reference
    np.testing.assert_allclose(after.exit_rate_changes, 0.0, atol=1e-12)
    assert after.cost == pytest.approx(recalibrated.recalibrated_cost_)
    assert not after.over_budget
    assert "over by" not in str(after)


# ---------------------------------------------- steps, saturation, errors
def test_a_report_prints_when_the_expected_cost_is_zero():
    # A free first stage answering every row: no relative change to divide.
    X = np.r_[np.zeros((300, 2)), np.ones((300, 2))]
    y = np.r_[np.zeros(300, int), np.ones(300, int)]
    free = AdaptiveCascadeClassifier(
        [
            ("free", DecisionTreeClassifier(max_depth=1)),
            ("forest", RandomForestClassifier(10, random_state=0)),
        ],
        costs=[0, 10],
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert free.expected_cost_ == 0
    report = free.exit_report(X)
    assert np.isnan(report.relative_cost_change)
    assert "average cost: 0 per row, expected 0" in str(report)


def test_a_policy_that_answers_every_row_at_the_first_stage_recalibrates():
    """A fit may keep "first stage only" (here a second stage dear per call):
    no rules, no thresholds to move. recalibrate returned nothing but a crash
    inside numpy; it now says the budget cannot be spent."""
    (X_stages, y_stages), (X, y), (X_new, _), *_ = _data()
    stages = [
        ("lr", _stages()[0][1]),
        ("tree", _stages()[1][1]),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages,
        costs={"per_row": [1, 5], "per_call": [10, 3000]},
        cost_batch_size=32,
        budget=2.0,
        random_state=0,
    ).fit(X, y)
    assert cascade.deepest_stage_ == 0 and not cascade.policy_.rules
    # Aimed at the cost the fit chose, it is met; a larger budget cannot be
    # spent without refitting, and the warning says so.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copies = [cascade.recalibrate(X_new)]
    with pytest.warns(UserWarning, match="deepest stage \\(0\\)") as record:
        copies.append(cascade.recalibrate(X_new, budget=3.0))
    # Below the full cost: no question about the unit, and a refit can spend it.
    assert not any("full cost" in str(w.message) for w in record)
    assert any("Refit with the budget to spend it." in str(w.message) for w in record)
    # Aimed at the fit's cost, that cost is the budget spent exactly: met (as
    # a fit at that spend says "spent"); the larger one is left unspent.
    for recalibrated, status in zip(copies, ["met", "saturated"]):
        record = recalibrated.recalibration_
        assert record["status"] == status
        np.testing.assert_array_equal(
            recalibrated.predict(X_new), cascade.predict(X_new)
        )
        np.testing.assert_array_equal(recalibrated.predict_exit(X_new), 0)
        assert recalibrated.recalibrated_cost_ == pytest.approx(1 + 10 / 32)
        np.testing.assert_array_equal(recalibrated.expected_exit_rates_, [1.0, 0.0])


def test_steps_and_saturation_are_reported_not_clamped():
    cascade = _cascade()
    X, _ = _shifted()
    # Seven rows: a cost moves in steps of whole rows.
    with pytest.warns(UserWarning, match="cannot be met closely"):
        few = cascade.recalibrate(X[:7], budget=3.0)
    record = few.recalibration_
    assert record["status"] == "met"
    assert record["cost"] < 0.99 * 3.0 < 3.0 < record["next_cost"]
    assert few.recalibrated_cost_ == record["cost"]
    # A budget above what the policy can spend: every row goes as deep as
    # the fitted policy sends rows (here the last stage), and the cost says so.
    # Above the full cost: the warning asks whether the budget is in the
    # model's unit (a budget in the wrong unit buys every stage for every row).
    with pytest.warns(UserWarning, match="not spent") as record:
        rich = cascade.recalibrate(X, budget=50.0)
    assert any("above the full cost, 14 per row" in str(w.message) for w in record)
    # No refit can spend a budget above the full cost: no advice to refit.
    assert not any("Refit" in str(w.message) for w in record)
    assert rich.recalibration_["status"] == "saturated"
    assert rich.budget_status_ == "saturated"
    assert rich.recalibrated_cost_ == pytest.approx(14.0)
    assert (rich.predict_exit(X) == 2).all()
    assert np.isnan(rich.recalibration_["next_cost"])


@pytest.mark.parametrize("name", ["linear", "skips", "router", "per_call"])
def test_the_cost_s_sampling_noise_is_reported(name):
    estimator, X = _variant(name)
    recalibrated = estimator.recalibrate(X)
    # The standard error of the average of the rows' own costs (a router's
    # cost is the same on every row).
    cost = recalibrated.predict_cost(X)
    assert recalibrated.recalibration_["cost_standard_error"] == pytest.approx(
        np.std(cost, ddof=1) / np.sqrt(len(cost))
    )
    assert recalibrated.recalibration_["cost_standard_error"] > 0


def test_few_rows_warn_that_the_budget_may_not_hold_on_the_next_rows():
    cascade = _cascade()
    X, _ = _shifted()
    with pytest.warns(UserWarning, match="is one sample") as record:
        few = cascade.recalibrate(X[:100])
    noise = 2 * few.recalibration_["cost_standard_error"]
    assert noise > 0.1 * BUDGET
    message = next(str(w.message) for w in record if "one sample" in str(w.message))
    assert f"+/- {noise:.3g} per row" in message  # as the CLI prints it
    # The rows that bring two standard errors to 5 % of the budget.
    needed = int(np.ceil(100 * (noise / (0.05 * BUDGET)) ** 2))
    assert f"about {needed:,} for +/- 5%" in message
    # On 400 rows two standard errors are still over 10 % of the budget.
    with pytest.warns(UserWarning, match="is one sample"):
        cascade.recalibrate(X[:400])
    # Enough rows: no such warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        many = cascade.recalibrate(X)
    assert 2 * many.recalibration_["cost_standard_error"] <= 0.1 * BUDGET
    assert not any("one sample" in str(w.message) for w in caught)


def test_an_unspent_budget_names_what_recalibration_keeps():
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_classification(
        1500, n_features=10, n_informative=6, n_classes=3, random_state=0
    )
    cascade = AdaptiveCascadeClassifier(
        [
            ("nb", GaussianNB()),
            ("lr", LogisticRegression(max_iter=1000)),
            ("knn", KNeighborsClassifier(15)),
            ("deep", DecisionTreeClassifier(max_depth=10, random_state=0)),
        ],
        costs=[0.5, 1, 30, 40, 100],
        router="auto",
        skips=True,
        cost_weight=0.3,
        cv=3,
        random_state=0,
    ).fit(X[:1000], y[:1000])
    assert cascade.router_ is not None and cascade.policy_.skips
    assert cascade.deepest_stage_ == 3  # the last stage: not the limit
    with pytest.warns(UserWarning, match="not spent") as record:
        cascade.recalibrate(X[1000:1250], budget=160)
    message = next(str(w.message) for w in record if "not spent" in str(w.message))
    assert "keeps the router's choice of each row's first stage" in message
    assert "keeps the policy's jumps over stages" in message
    assert "deepest stage" not in message


def test_errors():
    cascade = _cascade()
    X, _ = _shifted()
    unfitted = AdaptiveCascadeClassifier(_stages(), costs=[1, 3, 10])
    with pytest.raises(NotFittedError):
        unfitted.recalibrate(X)
    with pytest.raises(NotFittedError):
        unfitted.exit_report(X)
    with pytest.raises(ValueError, match="features"):
        cascade.recalibrate(X[:, :5])
    with pytest.raises(ValueError, match="features"):
        cascade.exit_report(X[:, :5])
    with pytest.raises(ValueError, match=r"budget=0.5 per row cannot be met.*'lr'"):
        cascade.recalibrate(X, budget=0.5)
    for budget in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive finite"):
            cascade.recalibrate(X, budget=budget)
    with pytest.raises(TypeError, match="must be a number"):
        cascade.recalibrate(X, budget="cheap")
    with pytest.raises(ValueError, match="at least one row"):
        cascade.recalibrate(X[:0])

    custom = copy.copy(cascade)
    custom.policy_ = copy.copy(cascade.policy_)
    custom.policy_.rules = [object(), *cascade.policy_.rules[1:]]
    with pytest.raises(TypeError, match="rule 0 of policy_, of type object, has not"):
        custom.recalibrate(X)


def test_a_block_of_equal_rows_is_worked_around_by_the_other_rows():
    # 400 copies of one row that goes to the last stage: at every exit they
    # tie, so they move together and a step of the path is coarse; the other
    # exits' thresholds take up the difference.
    cascade = _cascade()
    X, _ = _shifted()
    deep = np.flatnonzero(cascade.predict_exit(X) == 2)[0]
    X = np.vstack([X, np.repeat(X[deep : deep + 1], 400, axis=0)])
    for budget in (3.0, 3.4, 4.0):
        cost = cascade.recalibrate(X, budget=budget).recalibrated_cost_
        assert 0.99 * budget <= cost <= budget, (budget, cost)


def test_exit_report_counts_the_per_call_costs():
    estimator, X = _variant("per_call")
    report = estimator.exit_report(X)
    assert estimator.costs_per_call_.any()
    # Not the mean of the rows' costs (which spread every call over a full
    # batch), but what batches of cost_batch_size_ rows like these pay.
    routed = estimator.route(X)
    assert report.cost == pytest.approx(_batch_cost(estimator, routed))
    assert abs(report.cost - routed.cost.mean()) > 0.01


def test_no_row_goes_beyond_the_deepest_stage_of_the_fitted_policy():
    # Dear calls of the last stage in batches of 16: the fitted policy
    # never calls it, and recalibration does not start calling it.
    costs = {"per_row": [1.0, 2.0, 6.0], "per_call": [0.0, 16.0, 64.0]}
    estimator = _fit(policy="max_proba", costs=costs, cost_batch_size=16)
    assert estimator.deepest_stage_ == 1
    X, _ = _shifted()
    with pytest.warns(UserWarning, match="deepest stage"):
        rich = estimator.recalibrate(X, budget=10.0)
    assert rich.recalibration_["status"] == "saturated"
    assert rich.predict_exit(X).max() == 1
    assert (rich.predict_exit(X) == 1).all()  # every row as deep as it may go


class _Counting(FrozenEstimator):
    """A frozen stage that records the rows of each call (by its model's type:
    the estimator may hold copies of it)."""

    calls: dict = {}

    def predict_proba(self, X):
        self.calls.setdefault(type(self.estimator).__name__, []).append(len(X))
        return self.estimator.predict_proba(X)


def _counted_cascade():
    """The cascade over stages that record their calls' rows, batch_size=100."""
    stages = [(name, _Counting(stage.estimator)) for name, stage in _stages()]
    _, (X_policy, y_policy), *_ = _data()
    return AdaptiveCascadeClassifier(
        stages, costs=[1, 3, 10], budget=BUDGET, policy="max_proba", batch_size=100
    ).fit(X_policy, y_policy)


def test_every_stage_runs_in_batches_of_batch_size():
    cascade = _counted_cascade()
    X, _ = _shifted()
    _Counting.calls.clear()
    recalibrated = cascade.recalibrate(X)
    assert len(_Counting.calls) == 3
    for calls in _Counting.calls.values():
        assert max(calls) == 100 and sum(calls) == len(X)
    whole = copy.copy(cascade).set_params(batch_size=None).recalibrate(X)
    np.testing.assert_array_equal(recalibrated.predict_exit(X), whole.predict_exit(X))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_exit"])
def test_prediction_runs_every_stage_in_batches_of_batch_size(method):
    """batch_size bounds every stage call of prediction (its memory bound):
    the first stage sees the rows in order, 100 at a time, then the rest."""
    cascade = _counted_cascade()
    X, _ = _shifted()
    X = X[:450]
    _Counting.calls.clear()
    getattr(cascade, method)(X)
    first = _Counting.calls["LogisticRegression"]
    assert first == [100, 100, 100, 100, 50]
    later = [n for name, calls in _Counting.calls.items() for n in calls]
    assert max(later) <= 100
    assert len(_Counting.calls) == 3  # the budget sends rows to every stage


# ------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "budget, words",
    [
        # The step's size depends on the rules kept, not its wording.
        ("10", r"the next one up costs 10\.0\d*, over the budget"),
        ("100", "every exit as strict as spending more allows"),
    ],
)
def test_cli_recalibrate_prints_the_step_and_the_shift_it_took(tmp_path, budget, words):
    X, y = _shifted()
    joblib.dump(_cascade(), tmp_path / "m.joblib")
    np.savez(tmp_path / "rows.npz", X=X, y=y)
    from skadaptive.cli import _parser

    parsed = _parser().parse_args(
        ["recalibrate", str(tmp_path / "m.joblib"), str(tmp_path / "rows.npz")]
        + ["--budget", budget, "--output", str(tmp_path / "n.joblib")]
    )
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert parsed.run(parsed, out=out) == 0
    assert re.search(words, out.getvalue())


def test_cli_recalibrate_says_the_cost_moves_in_steps_once(tmp_path):
    """On 8 rows the closest cost within the budget is well under it: the
    warning's note says the cost moves in steps, and the command's own line
    saying the same is not printed again."""
    X, y = _shifted()
    joblib.dump(_cascade(), tmp_path / "m.joblib")
    np.savez(tmp_path / "rows.npz", X=X[:8], y=y[:8])
    from skadaptive.cli import _parser

    parsed = _parser().parse_args(
        ["recalibrate", str(tmp_path / "m.joblib"), str(tmp_path / "rows.npz")]
        + ["--budget", "10", "--output", str(tmp_path / "n.joblib")]
    )
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert parsed.run(parsed, out=out) == 0
    assert "note: budget=10 cannot be met closely" in out.getvalue()
    assert out.getvalue().count("moves in steps") == 1


def test_cli_recalibrate_round_trip(tmp_path):
    cascade = _cascade()
    X, y = _shifted()
    model, data, new = (
        tmp_path / "m.joblib",
        tmp_path / "rows.npz",
        tmp_path / "n.joblib",
    )
    joblib.dump(cascade, model)
    np.savez(data, X=X, y=y)
    out = io.StringIO()
    args = [
        "recalibrate",
        str(model),
        str(data),
        "--budget",
        "3.2",
        "--output",
        str(new),
    ]
    from skadaptive.cli import _parser

    parsed = _parser().parse_args(args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parsed.run(parsed, out=out) == 0
    text = out.getvalue()
    assert "before:" in text and "after:" in text and "over by" in text
    assert "recalibrated for budget 3.2" in text
    assert "accuracy on the file's labels" in text
    loaded = joblib.load(new)
    expected = cascade.recalibrate(X, budget=3.2)
    assert loaded.recalibrated_cost_ == expected.recalibrated_cost_
    noise = 2 * expected.recalibration_["cost_standard_error"]
    assert f"per row (+/- {noise:.3g} on other rows like these" in text
    assert 0.99 * 3.2 <= loaded.recalibrated_cost_ <= 3.2
    np.testing.assert_array_equal(loaded.predict_exit(X), expected.predict_exit(X))
    assert loaded.batch_size == cascade.batch_size
    # Without --budget, a fit with a margin (or one that left its budget
    # unspent) is recalibrated for what it aimed at, and says so: the report
    # after still shows the model's budget.
    joblib.dump(_fit(budget=6.0, budget_confidence=0.9), model)
    out = io.StringIO()
    parsed = _parser().parse_args(
        ["recalibrate", str(model), str(data), "--output", str(new)]
    )
    assert parsed.run(parsed, out=out) == 0
    target = joblib.load(new).recalibration_["budget"]
    assert target < 6.0
    assert (
        f"recalibrated for {target:.4g} per row, what the fit aimed at within its "
        "budget of 6 (kept as budget_)"
    ) in out.getvalue()


def test_cli_recalibrate_reports_a_regressors_error_before_and_after(tmp_path):
    """One line, as a classifier's accuracy: the loss's error on the file's
    targets, before and after."""
    regressor, (X, y) = _regression()
    model, data, new = tmp_path / "m.joblib", tmp_path / "r.npz", tmp_path / "n.joblib"
    joblib.dump(regressor, model)
    np.savez(data, X=X, y=y)
    out = io.StringIO()
    from skadaptive.cli import _parser

    parsed = _parser().parse_args(
        ["recalibrate", str(model), str(data), "--output", str(new)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert parsed.run(parsed, out=out) == 0
    before = np.mean((regressor.predict(X) - y) ** 2)
    after = np.mean((joblib.load(new).predict(X) - y) ** 2)
    assert (
        f"MSE on the file's targets: {before:.4g} before, {after:.4g} after "
        "(in the target's units squared)"
    ) in out.getvalue()


def test_cli_recalibrate_errors(tmp_path, capsys):
    cascade = _cascade()
    X, _ = _shifted()
    model, data, new = (
        tmp_path / "m.joblib",
        tmp_path / "rows.npy",
        tmp_path / "n.joblib",
    )
    joblib.dump(cascade, model)
    np.save(data, X)
    assert (
        main(
            [
                "recalibrate",
                str(model),
                str(data),
                "--budget",
                "0.5",
                "--output",
                str(new),
            ]
        )
        == 1
    )
    assert "cannot be met" in capsys.readouterr().err
    assert not new.exists()
    np.save(data, X[:, :5])
    assert main(["recalibrate", str(model), str(data), "--output", str(new)]) == 1
    assert "features" in capsys.readouterr().err
    assert (
        main(
            [
                "recalibrate",
                str(model),
                str(data),
                "--output",
                str(tmp_path / "missing" / "n.joblib"),
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    # An output that is an input would replace the data or the model itself.
    np.save(data, X)
    for target in (data, model):
        before = target.read_bytes()
        assert (
            main(["recalibrate", str(model), str(data), "--output", str(target)]) == 1
        )
        assert "is an input of the command" in capsys.readouterr().err
        assert target.read_bytes() == before
    # A hard link is the model under another name: writing there replaces it.
    linked = tmp_path / "linked.joblib"
    os.link(model, linked)
    before = model.read_bytes()
    assert main(["recalibrate", str(linked), str(data), "--output", str(model)]) == 1
    assert "is an input of the command" in capsys.readouterr().err
    assert model.read_bytes() == before
    with pytest.raises(SystemExit):
        main(["recalibrate", str(model), str(data)])  # --output is required


def test_cli_help_describes_recalibrate():
    from skadaptive.cli import _parser

    parser = _parser()
    assert "recalibrate" in parser.format_help()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    command = commands.choices["recalibrate"]
    for action in command._actions:
        text = (action.help or "").replace("(default: %(default)s)", "").strip()
        assert len(text) > 12 and not text.startswith("("), action.option_strings
    text = " ".join(command.format_help().split())
    assert "No label is needed" in text and "exit report" in text


def test_a_default_target_leaves_the_user_s_budget_and_status_alone():
    """Where the fit left its budget unspent, recalibrating aims at the cost it
    chose, but ``budget_`` stays the user's: a monitor reading ``over_budget``
    must not raise a false alarm for a cost within the user's budget."""
    cascade = _cascade()
    saturated = copy.copy(cascade)
    saturated.budget_status_ = "saturated"
    saturated.expected_cost_ = 0.8 * cascade.budget_
    _, _, (X, _), *_ = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = saturated.recalibrate(X)
    assert new.recalibration_["budget"] == pytest.approx(0.8 * cascade.budget_)
    assert new.budget_ == cascade.budget_
    assert new.budget_status_ == "saturated"
    assert not new.exit_report(X).over_budget
    # A budget given here is the copy's own.
    given = cascade.recalibrate(X, budget=0.9 * cascade.budget_)
    assert given.budget_ == pytest.approx(0.9 * cascade.budget_)


def test_a_default_target_a_rounding_error_below_the_first_stage_is_met():
    cascade = copy.copy(_cascade())
    cascade.budget_ = None
    cascade.expected_cost_ = cascade.costs_[0] * (1 - 1e-16) - 1e-16
    _, _, (X, _), *_ = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = cascade.recalibrate(X)
    assert new.recalibrated_cost_ == pytest.approx(cascade.costs_[0])


def test_dask_rows_and_non_numbers_are_refused_with_the_fix():
    da = pytest.importorskip("dask.array")
    cascade = _cascade()
    _, _, (X, _), *_ = _data()
    lazy = da.from_array(X, chunks=(300, X.shape[1]))
    for method in (cascade.recalibrate, cascade.exit_report):
        with pytest.raises(TypeError, match=r"X.compute\(\)"):
            method(lazy)
    with pytest.raises(TypeError, match="budget must be a number"):
        cascade.recalibrate(X, budget="3")
    with pytest.raises(ValueError, match="at least one row"):
        cascade.exit_report(X[:0])


def _six_stage_rows(n_rows, seed):
    """Half the rows easy at stage 0 (a block of tied scores), three in ten
    right at the middle stages 1, 3 and 4, the rest only at the last; stage
    2 knows nothing."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    sign = np.where(y == 1, 1.0, -1.0)
    group = rng.choice(3, n_rows, p=[0.5, 0.3, 0.2])
    columns = [
        np.where(group == 0, 0.5 + 0.45 * sign, 0.5 + 0.05 * rng.uniform(-1, 1, n_rows))
    ]
    for stage in range(1, 5):
        if stage == 2:
            columns.append(0.5 + 0.01 * rng.uniform(-1, 1, n_rows))
        else:
            noise = 0.5 + 0.02 * rng.uniform(-1, 1, n_rows)
            columns.append(np.where(group == 1, 0.5 + 0.45 * sign, noise))
    columns.append(0.5 + 0.4 * sign)
    return np.column_stack(columns), y


def test_a_slightly_larger_budget_does_not_shut_an_exit_for_nothing():
    """Raising the budget from 5 to 5.5: the point reached from within the
    budget spends all but a few millionths of it; the one reached from over
    it flips the first exit's block of tied rows (half the rows) to spend
    those millionths, which without labels nobody can tell is harmless. The
    first is kept: the first exit stays as it was, the accuracy with it."""
    from _column_stages import ColumnStage

    from skadaptive import AdaptiveCascadeClassifier

    X, y = _six_stage_rows(800, 0)
    X_new, y_new = _six_stage_rows(20_000, 1)
    stages = [(f"s{k}", ColumnStage(k)) for k in range(6)]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 3, 4, 6, 7, 20], budget=5.0, policy="max_proba", cv=3
    ).fit(X, y)
    first_exit = (cascade.predict_exit(X_new) == 0).mean()
    recalibrated = cascade.recalibrate(X_new, budget=5.5)
    assert 0.999 * 5.5 <= recalibrated.recalibrated_cost_ <= 5.5
    assert (recalibrated.predict_exit(X_new) == 0).mean() > 0.9 * first_exit
    assert recalibrated.score(X_new, y_new) >= cascade.score(X_new, y_new) - 0.01


def test_a_budget_the_kept_router_cannot_meet_names_the_router():
    """The router's choices are kept: rows it starts at the last stage pay
    for it whatever the thresholds, and the error says so."""
    estimator, X = _variant("router")
    starts_late = estimator.predict_path(X)[:, 0] == 0
    assert starts_late.any()
    # Every other row exiting at the first stage, plus the router's 0.25.
    budget = float(estimator.cumulative_costs_[0]) + 0.25 + 0.01
    with pytest.raises(ValueError, match="the router kept.*with_policy"):
        estimator.recalibrate(X, budget=budget)


def test_cli_recalibrate_drops_labels_the_model_does_not_know(tmp_path):
    """Labels only report accuracy when recalibrating (no label is read to
    move the thresholds): unknown ones are dropped with a note, not an error."""
    cascade = _cascade()
    X, y = _shifted()
    model, data, new = tmp_path / "m.joblib", tmp_path / "r.npz", tmp_path / "n.joblib"
    joblib.dump(cascade, model)
    np.savez(data, X=X, y=np.r_[y[:-1], 99])
    out = io.StringIO()
    from skadaptive.cli import _parser

    parsed = _parser().parse_args(
        ["recalibrate", str(model), str(data), "--budget", "3.2", "--output", str(new)]
    )
    assert parsed.run(parsed, out=out) == 0
    text = out.getvalue()
    assert "note:" in text and "labels [99] (1 row) are not classes" in text
    assert "accuracy on the file's labels" not in text
    assert joblib.load(new).recalibrated_cost_ <= 3.2


def test_a_budget_of_the_full_cost_spent_exactly_is_met_not_saturated():
    """Every stage on every row costs the full cost: a budget of exactly that
    is spent (as a fit at that spend says), though no step up is left; it read
    "saturated"."""
    cascade = _cascade()
    X, _ = _shifted()
    full = float(cascade.cumulative_costs_[-1])
    new = cascade.recalibrate(X, budget=full)
    record = new.recalibration_
    assert np.isnan(record["next_cost"])
    assert record["cost"] == pytest.approx(full)
    assert record["status"] == "met" and new.budget_status_ == "spent"
