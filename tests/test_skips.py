"""Skipping stages (``skips=True``): network selection as in Bolukbasi et al.

A row that a stage finds hard may jump over later stages to a dearer one; the
jumps are learned bottom-up with the exit rules, the engine runs each stage
once on exactly the rows that reach it, and a row pays only for what it ran.
"""

import functools

import numpy as np
import pytest
from _column_stages import (
    ColumnStage,
    GivenAnswers,
    _middle_is_idle,
    _middle_is_useless,
    random_rules_and_jumps,
)
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, AdaptiveCascadeRegressor
from skadaptive.engine import route
from skadaptive.policies import CascadePolicy, HeuristicRule, JumpRule, SkipPolicy
from skadaptive.stages import exit_probas

COSTS = [1.0, 5.0, 20.0]


def _column_cascade(**params):
    stages = [(name, ColumnStage(k)) for k, name in enumerate(["a", "b", "c"])]
    return AdaptiveCascadeClassifier(stages, costs=COSTS, cv=3, **params)


@pytest.mark.parametrize("policy", ["linear", "eenet", "max_proba"])
def test_a_useless_middle_stage_is_skipped_at_no_loss_of_accuracy(policy):
    """Plain: hard rows run a, b and c (26); with skips they run a and c
    (21): the same accuracy at exactly 2.5 less per row on average."""
    X, y, _ = _middle_is_useless(600, 0)
    X_test, y_test, hard = _middle_is_useless(400, 1)
    plain = _column_cascade(policy=policy, cost_weight=0.01).fit(X, y)
    skipping = _column_cascade(policy=policy, cost_weight=0.01, skips=True).fit(X, y)
    assert plain.score(X_test, y_test) == skipping.score(X_test, y_test) == 1.0
    assert_allclose(plain.predict_cost(X_test).mean(), 13.5)
    assert_allclose(skipping.predict_cost(X_test).mean(), 11.0)
    path = skipping.predict_path(X_test)
    assert_array_equal(path[hard], [[True, False, True]] * hard.sum())
    assert_array_equal(path[~hard], [[True, False, False]] * (~hard).sum())
    # What the estimator expects is what routing gives.
    assert_allclose(skipping.expected_cost_, 11.0)


@pytest.mark.budget
@pytest.mark.parametrize("policy", ["linear", "max_proba"])
def test_skips_buy_accuracy_a_plain_cascade_cannot_afford(policy):
    """At a budget of 12 a plain cascade cannot send every hard row to the
    last stage (13.5); skipping the middle one can (11). (A heuristic's jumps
    are learned at the budget's price of cost.)"""
    X, y, _ = _middle_is_useless(600, 0)
    X_test, y_test, _ = _middle_is_useless(400, 1)
    plain = _column_cascade(budget=12.0, policy=policy).fit(X, y)
    skipping = _column_cascade(budget=12.0, skips=True, policy=policy).fit(X, y)
    assert skipping.score(X_test, y_test) == 1.0
    assert plain.score(X_test, y_test) < 0.95
    for cascade in (plain, skipping):
        assert cascade.predict_cost(X_test).mean() <= 12.0
    # Spent well: the answer is as cheap as full accuracy allows.
    assert_allclose(skipping.predict_cost(X_test).mean(), 11.0)


# --------------------------------------------- the engine equals the walk


@given(
    seed=st.integers(0, 10_000),
    n_stages=st.integers(3, 5),
    n_rows=st.integers(1, 60),
    batch_size=st.sampled_from([1, 3, 7, 1000]),
)
def test_routing_with_jumps_equals_the_offline_walk(seed, n_stages, n_rows, batch_size):
    """Any rules and any jumps (here: by the row's max probability): the
    engine's exits, paths and answers are the walk's, in any batching."""
    rng = np.random.default_rng(seed)
    probas = [rng.dirichlet([1.0, 1.0, 1.0], n_rows) for _ in range(n_stages)]
    rules, jumps = random_rules_and_jumps(rng, probas)
    policy = SkipPolicy(rules, jumps)
    exit_stage, ran = policy.walk(probas)
    routed = route(
        GivenAnswers(probas),
        policy,
        np.arange(n_rows)[:, None],
        n_classes=3,
        batch_size=batch_size,
        n_jobs=2 if batch_size < n_rows else None,
    )
    assert_array_equal(routed.exit_stage, exit_stage)
    assert_array_equal(routed.ran, ran.T)
    rows = np.arange(n_rows)
    assert_array_equal(routed.proba, np.stack(probas)[exit_stage, rows])
    # A row answers where it ran, and runs nothing after it answers.
    assert ran[exit_stage, rows].all()
    assert not (ran & (np.arange(n_stages)[:, None] > exit_stage)).any()


@functools.cache
def _fitted_skipping():
    X, y = make_classification(
        n_samples=900, n_features=10, n_informative=6, n_classes=3, random_state=3
    )
    stages = [
        ("nb", GaussianNB()),
        ("tree3", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=8, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 2, 4, 30], cost_weight=0.002, skips=True, cv=3
    ).fit(X[:600], y[:600])
    return cascade, X[600:], y[600:]


def test_a_fitted_skip_cascade_routes_as_its_policy_walks():
    cascade, X_test, _ = _fitted_skipping()
    assert cascade.policy_.skips
    probas = exit_probas(cascade._stage_source(), X_test)
    exit_stage, ran = cascade.policy_.walk(probas)
    routed = cascade.route(X_test)
    # The test is only telling if some rows skip a stage.
    skipped = (routed.ran == False) & (  # noqa: E712
        np.arange(4)[None, :] < routed.exit_stage[:, None]
    )
    assert skipped.any()
    assert_array_equal(routed.exit_stage, exit_stage)
    assert_array_equal(routed.ran, ran.T)
    assert_allclose(routed.proba, np.stack(probas)[exit_stage, np.arange(len(X_test))])
    steps = np.asarray(cascade.costs_)
    assert_allclose(routed.cost, routed.ran @ steps)


def test_answers_do_not_depend_on_batching_order_or_threads():
    cascade, X_test, _ = _fitted_skipping()
    reference = cascade.route(X_test)
    order = np.random.default_rng(0).permutation(len(X_test))
    batched = clone_with(cascade, batch_size=7, n_jobs=2).route(X_test[order])
    assert_array_equal(batched.exit_stage, reference.exit_stage[order])
    assert_array_equal(batched.ran, reference.ran[order])
    assert_allclose(batched.proba, reference.proba[order])


def clone_with(cascade, **params):
    import copy

    other = copy.deepcopy(cascade)
    return other.set_params(**params)


def test_skips_need_stage_answers():
    X, y, _ = _middle_is_useless(90, 0)
    with pytest.raises(ValueError, match="skips=True needs answer='stage'"):
        _column_cascade(skips=True, answer="combined").fit(X, y)


def test_two_stages_have_nothing_to_skip():
    X, y, _ = _middle_is_useless(120, 0)
    stages = [("a", ColumnStage(0)), ("c", ColumnStage(2))]
    plain = AdaptiveCascadeClassifier(stages, costs=[1, 20], cv=3).fit(X, y)
    skipping = AdaptiveCascadeClassifier(stages, costs=[1, 20], cv=3, skips=True)
    skipping.fit(X, y)
    assert not skipping.policy_.skips
    assert_array_equal(plain.predict_exit(X), skipping.predict_exit(X))


def test_a_regressor_skips_a_useless_middle_stage():
    """The same construction for regression: on hard rows the first stage is
    noisy and says so (its standard deviation), the middle one is 10 off."""
    rng = np.random.default_rng(0)

    def data(n_rows):
        hard = np.arange(n_rows) % 2 == 1
        y = rng.normal(size=n_rows) * 3
        first = np.where(hard, y + rng.normal(size=n_rows) * 3, y)
        middle = np.where(hard, first + 10.0, y)
        return np.column_stack([first, middle, y, 3.0 * hard]), y, hard

    class Column(RegressorMixin, BaseEstimator):
        """Predicts column ``column`` of X; its standard deviation is column 3."""

        def __init__(self, column=0):
            self.column = column

        def fit(self, X, y):
            self.n_features_in_ = np.asarray(X).shape[1]
            return self

        def predict(self, X, return_std=False):
            X = np.asarray(X, dtype=np.float64)
            prediction = X[:, self.column]
            if return_std:
                return prediction, X[:, 3] if self.column == 0 else 0 * prediction
            return prediction

    X, y, _ = data(600)
    X_test, y_test, hard = data(400)
    stages = [(name, Column(k)) for k, name in enumerate(["a", "b", "c"])]
    plain = AdaptiveCascadeRegressor(stages, costs=COSTS, cost_weight=0.001, cv=3)
    skipping = AdaptiveCascadeRegressor(
        stages, costs=COSTS, cost_weight=0.001, skips=True, cv=3
    )
    for cascade in (plain, skipping):
        cascade.fit(X, y)
        assert_allclose(cascade.predict(X_test), y_test)
    assert_allclose(plain.predict_cost(X_test).mean(), 13.5)
    assert_allclose(skipping.predict_cost(X_test).mean(), 11.0)
    assert_array_equal(skipping.predict_path(X_test)[:, 1], False)


def test_the_frontier_command_learns_skips(tmp_path, monkeypatch, capsys):
    """``skadaptive frontier --skips``: the chosen policy's held-out cost is
    the skipping one (10.8 on these rows against 13.25 without), and the
    output says that jumps were kept and which stages the rows ran."""
    import json

    import joblib

    from skadaptive.cli import main

    monkeypatch.chdir(tmp_path)
    X, y, _ = _middle_is_useless(1000, 0)
    np.savez("rows.npz", X=X, y=y)
    for k, name in enumerate("abc"):
        joblib.dump(ColumnStage(k).fit(X, y), f"{name}.joblib")
    command = ["frontier", "a.joblib", "b.joblib", "c.joblib", "--data", "rows.npz"]
    command += ["--costs", "1", "5", "20", "--cost-weight", "0.01"]
    chosen = {}
    printed = {}
    for extra in ([], ["--skips"]):
        assert main([*command, *extra]) == 0
        printed[bool(extra)] = capsys.readouterr().out
        report = json.loads((tmp_path / "frontier.json").read_text())
        chosen[bool(extra)] = report["chosen"]
        for point in report["frontier"]:
            # Each point says which stages its rows ran, besides their exits.
            assert len(point["run_rates"]) == 3
            assert point["run_rates"][0] == 1.0
    assert chosen[False]["accuracy"] == chosen[True]["accuracy"] == 1.0
    # Every hard row of the held-out part skips the middle stage: 5 less.
    assert chosen[True]["cost"] < chosen[False]["cost"] - 2.0
    assert chosen[False]["skips"] is None
    assert "skips:" not in printed[False]
    skips = chosen[True]["skips"]
    assert skips["jumps"] is True
    # Easy rows exit at the first stage; hard ones jump over the middle one.
    assert skips["run_rates"][0] == 1.0
    assert skips["run_rates"][1] == 0.0
    assert 0.0 < skips["run_rates"][2] < 1.0
    assert "skips: the policy kept jumps over stages" in printed[True]
    assert main([*command, "--skips", "--answer", "combined"]) == 1


# ------------------------------------------------ the pieces, one by one


def test_continuation_risks_count_what_was_paid_and_carry_skipped_answers():
    """One row, y = 0, costs 1, 1, 1, 10 (cumulative 1, 2, 3, 13), cost
    weight 0.1. After stage 0: going to stage 1 runs 1, 2 (patience 1: no
    exit) and 3 (wrong): 1 + 0.1 * 13; jumping to stage 2 sees stage 0's
    answer carried over stage 1, so patience is 3 and the row exits there,
    right: 0 + 0.1 * 2; jumping to 3: wrong, 1 + 0.1 * 11."""
    from skadaptive.policies._losses import per_row_loss
    from skadaptive.policies._skips import continuation_risks

    probas = [np.array([p]) for p in ([0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7])]
    y = np.array([0])
    policy = SkipPolicy(
        [
            HeuristicRule("max_proba", 0.99),
            HeuristicRule("max_proba", 0.99),
            HeuristicRule("patience", 1.5),
        ],
        [None, None, None],
    )
    stage_loss = np.stack([per_row_loss(p, y, "zero_one") for p in probas])
    risks = continuation_risks(
        policy, 0, probas, stage_loss, np.array([1.0, 2.0, 3.0, 13.0]), 0.1
    )
    assert_allclose(risks[:, 0], [2.3, 0.2, 2.1])


def test_a_jump_is_kept_only_where_it_beats_the_best_single_continuation():
    from skadaptive.policies._skips import fit_jump_rule

    # Identical rows: a learner can only pick one target for all. Weighted by
    # the spread of their risks it picks stage 1 (row 0's weight, 100, beats
    # the other rows' 20), whose total risk is 20; stage 2 for all costs 10.
    risks = np.array([[0.0, 10.0, 10.0], [10.0, 0.0, 0.0], [100.0, 10.0, 10.0]])
    history = [np.full((3, 2), 0.5)]
    targets = np.array([1, 2, 3])
    rule = fit_jump_rule(
        history, risks, targets, np.ones(3), "linear", "history", False
    )
    assert rule.learner is None and rule.constant == 2
    # The constant family picks the continuation of least total risk, which
    # need not be the next stage.
    rule = fit_jump_rule(
        history, risks[::-1], targets, np.ones(3), "constant", "history", False
    )
    assert rule.constant == 2
    rule = fit_jump_rule(
        history,
        np.array([[5.0, 5.0, 5.0], [9.0, 9.0, 9.0], [0.0, 1.0, 0.0]]),
        targets,
        np.ones(3),
        "constant",
        "history",
        False,
    )
    assert rule.constant == 3


def test_ties_go_to_the_plain_policy():
    """Three identical stages: skipping cannot help, so the plain policy is kept."""
    from skadaptive.policies import make_policy_search
    from skadaptive.policies._skips import SkipSearch

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    proba = np.where(rng.random((300, 1)) < 0.7, np.eye(2)[y], np.eye(2)[1 - y])
    proba = 0.8 * proba + 0.1
    search = make_policy_search("linear", [proba] * 3, y, np.array([0.2, 0.6, 1.0]))
    assert not SkipSearch(search).fit(0.01).skips


def test_a_cheaper_challenger_must_not_be_less_accurate():
    """A skipping candidate that is cheaper but wrong on one row more (within
    one standard error) does not replace the kept plain candidate."""
    from skadaptive.policies import make_policy_search
    from skadaptive.policies._selection import select_out_of_sample

    n_rows = 200
    y = np.arange(n_rows) % 2
    costly = np.eye(2)[y] * 0.9 + 0.05  # always right
    cheap = costly.copy()
    cheap[0] = cheap[0, ::-1]  # wrong on row 0 only
    search = make_policy_search("max_proba", [cheap, costly], y, np.array([0.1, 1.0]))
    # Candidate 0 (plain) answers every row at stage 1; candidate 1 (the
    # challenger) at stage 0.
    exit_stage = np.stack(
        [np.ones(n_rows, dtype=np.intp), np.zeros(n_rows, dtype=np.intp)]
    )
    ran = np.ones((2, 2, n_rows), dtype=bool)
    ran[1, 1] = False
    folds = np.arange(n_rows) % 5
    best, _, _ = select_out_of_sample(search, exit_stage, folds, None, ran, [1])
    assert best == 0
    # As accurate (the cheap stage right everywhere too) and cheaper: it does.
    search = make_policy_search("max_proba", [costly, costly], y, np.array([0.1, 1.0]))
    best, _, _ = select_out_of_sample(search, exit_stage, folds, None, ran, [1])
    assert best == 1


def test_nan_scores_never_place_a_cut():
    """A NaN score is a stage the row skips: thresholds come from the rows
    that run the stage, and a NaN row never exits there."""
    from skadaptive.policies._thresholds import ThresholdProblem, budget_thresholds

    scores = np.array([[0.9, 0.2, 0.3, 0.1], [np.nan, 0.8, np.nan, 0.4]])
    stage_loss = np.array([[0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 0.0]])
    ran = np.array([[1, 1, 1, 1], [0, 1, 0, 1], [1, 1, 1, 1]], dtype=bool)
    from skadaptive.policies._skips import path_costs

    problem = ThresholdProblem(
        scores, stage_loss, path_costs(ran, [1.0, 2.0, 4.0]), np.ones(4)
    )
    assert not np.isnan(problem.distinct_scores(1)).any()
    thresholds, loss, cost = budget_thresholds(problem, 3.0)
    assert not np.isnan(thresholds).any()
    # Row 0 at stage 0 (1), row 1 at stage 1 (2), rows 2, 3 at stage 2 (3, 4).
    assert_allclose((loss, cost), (0.0, 2.5))


def test_stopping_early_keeps_the_jumps():
    from skadaptive.policies._call_costs import stop_at

    jump = JumpRule(np.array([1, 2]), constant=2)
    policy = SkipPolicy([HeuristicRule("max_proba", 0.9)] * 2, [jump, None])
    stopped = stop_at(policy, 2, 4)
    assert stopped.skips and stopped.jumps[0] is jump
    assert stopped.n_stages == 4


def test_the_exit_is_learned_against_the_chosen_continuation():
    """At cost_weight 0.6 (costs normalised by 26), a hard row costs 1 at
    stage a with loss 0.5 on average: 0.5 + 0.6 / 26 = 0.52; going on via b
    to c costs 0.6 and is no better, but jumping to c costs 0.6 * 21 / 26 =
    0.48 and is: only an exit rule learned against the jump defers them."""
    X, y, _ = _middle_is_useless(600, 0)
    X_test, y_test, hard = _middle_is_useless(400, 1)
    plain = _column_cascade(cost_weight=0.6).fit(X, y)
    skipping = _column_cascade(cost_weight=0.6, skips=True).fit(X, y)
    assert_array_equal(plain.predict_exit(X_test), 0)
    assert skipping.score(X_test, y_test) == 1.0
    assert_allclose(skipping.predict_cost(X_test).mean(), 11.0)


def test_learned_rules_do_not_extrapolate_beyond_their_rows():
    """A near-constant earlier stage (a carried answer shows it values it never
    had) leaves a learned rule's scores within what it gave on its own rows."""
    from skadaptive.policies import fit_bottom_up_policy

    rng = np.random.default_rng(0)
    n_rows = 400
    y = rng.integers(0, 2, n_rows)
    flat = np.full((n_rows, 2), 0.5) + rng.normal(0, 1e-5, (n_rows, 1)) * [1, -1]
    cheap = np.clip(np.eye(2)[y] * 0.6 + rng.uniform(0, 0.4, (n_rows, 2)), 0, 1)
    cheap /= cheap.sum(axis=1, keepdims=True)
    costly = np.eye(2)[y] * 0.9 + 0.05
    probas = [cheap, flat, cheap[::-1], costly]
    policy = fit_bottom_up_policy(probas, y, np.array([0.1, 0.2, 0.5, 1.0]), 0.01)
    rule = policy.rules[2]
    assert rule.learner is not None
    own = rule.score(probas[:3])
    carried = rule.score([cheap, cheap, cheap[::-1]])  # stage 1 carries stage 0
    assert own.min() - 1e-9 <= carried.min() and carried.max() <= own.max() + 1e-9


# ------------------------------------------- stages that answer no row


def test_a_stage_that_answers_no_row_is_jumped_with_the_same_answers():
    """The plain policy's idle middle stage (its hard rows all go on) is
    jumped: every row answers at the same stage, and hard rows no longer pay
    the middle stage's 5."""
    from skadaptive.policies._skips import skipping_idle_stages

    X, y, hard = _middle_is_useless(400, 0)
    probas = [np.column_stack([1 - X[:, k], X[:, k]]) for k in range(3)]
    plain = CascadePolicy(
        [HeuristicRule("max_proba", 0.9), HeuristicRule("max_proba", 0.9)]
    )
    exit_stage, ran = plain.walk(probas)
    assert ran[1].any() and not (exit_stage == 1).any()
    skipping = skipping_idle_stages(plain, probas, np.ones(len(y)))
    assert skipping is not None and skipping.skips
    skip_exit, skip_ran = skipping.walk(probas)
    assert_array_equal(skip_exit, exit_stage)
    assert not skip_ran[1].any()
    assert_array_equal(skip_ran[[0, 2]], ran[[0, 2]])
    # A stage that answers some row is kept.
    busy = CascadePolicy(
        [HeuristicRule("max_proba", 0.9), HeuristicRule("max_proba", 0.5)]
    )
    assert skipping_idle_stages(busy, probas, np.ones(len(y))) is None


def test_plain_candidates_jump_their_idle_stages_and_challengers_respend():
    """With skips, a plain candidate that runs a stage it answers no row at
    jumps it (the same answers for less) in the plain candidate's place, the
    reference thresholds included; the same with thresholds searched again
    for the budget on the jumped paths is a challenger, which must be clearly
    better to be kept."""
    from skadaptive.policies import make_policy_search
    from skadaptive.policies._skips import SkipSearch, jumps_over_stages

    X, y = _middle_is_idle(600, 0)
    probas = [np.column_stack([1 - X[:, k], X[:, k]]) for k in range(3)]
    plain = make_policy_search("max_proba", probas, y, np.cumsum(COSTS) / 26)
    unjumped = plain.budget_candidates(12 / 26)[-1]
    candidates = SkipSearch(plain).budget_candidates(12 / 26)
    reference = candidates[-1]
    assert reference.kind == "max_proba per exit, idle stages skipped"
    assert reference.policy.skips and not reference.challenger
    assert unjumped.run_rates[1] > 0.15 and reference.run_rates[1] == 0.0
    assert reference.accuracy == unjumped.accuracy
    assert_allclose(
        reference.normalized_cost,
        unjumped.normalized_cost - 5 / 26 * unjumped.run_rates[1],
    )
    respent = [c for c in candidates if c.kind.endswith("budget spent")]
    assert respent[-1].kind == "max_proba per exit, idle stages skipped, budget spent"
    assert respent[-1].challenger and respent[-1].normalized_cost <= 12 / 26
    learned = [c for c in candidates if " with skips" in c.kind]
    assert all(c.challenger for c in respent)
    # Learned jumps are challengers where they can skip a stage, and named
    # for what they do.
    assert [c.challenger for c in learned] == [
        jumps_over_stages(c.policy) for c in learned
    ]
    assert [c.kind.endswith("with skips") for c in learned] == [
        c.challenger for c in learned
    ]
    assert not any(c.challenger for c in candidates if c not in learned + respent)


def test_a_rule_that_reads_a_jumped_stage_is_not_changed():
    """Where a later rule decides from the jumped stage's answer, jumping it
    changes where rows answer: the policy is left as it is."""
    from dataclasses import dataclass

    from skadaptive.policies import ThresholdRule
    from skadaptive.policies._skips import skipping_idle_stages

    @dataclass
    class PreviousSure(ThresholdRule):
        threshold: float

        def score(self, history):
            return history[-2].max(axis=1)

    n_rows = 100
    y = np.arange(n_rows) % 2
    unsure = np.full((n_rows, 2), 0.5)
    middle = np.eye(2)[y] * 0.8 + 0.1
    probas = [unsure, middle, unsure, np.eye(2)[y]]
    policy = CascadePolicy(
        [
            HeuristicRule("max_proba", 0.9),
            HeuristicRule("max_proba", 0.95),
            PreviousSure(0.85),
        ]
    )
    assert (policy.exit_stage(probas) == 2).all()
    assert skipping_idle_stages(policy, probas, np.ones(n_rows)) is None


@pytest.mark.parametrize("policy", ["linear", "max_proba", "eenet"])
def test_a_budget_too_large_to_spend_skips_the_idle_middle_stage(policy):
    """At a budget of 12 of 26 the plain cascade answers hard rows at the last
    stage through the middle one, which answers no row. With skips the same
    answers come without the middle stage: 5 less for every row that ran it.
    (The learned jumps spend what they save on rows where deferring buys
    only noise, and are not kept.)"""
    X, y = _middle_is_idle(600, 0)
    X_test, y_test = _middle_is_idle(4000, 1)
    plain = _column_cascade(budget=12.0, policy=policy).fit(X, y)
    skipping = _column_cascade(budget=12.0, skips=True, policy=policy).fit(X, y)
    assert_array_equal(skipping.predict(X_test), plain.predict(X_test))
    assert_array_equal(skipping.predict_exit(X_test), plain.predict_exit(X_test))
    ran_middle = plain.predict_path(X_test)[:, 1]
    assert ran_middle.mean() > 0.15 and not skipping.predict_path(X_test)[:, 1].any()
    assert_allclose(
        skipping.predict_cost(X_test), plain.predict_cost(X_test) - 5.0 * ran_middle
    )
    assert skipping.budget_status_ == "saturated"


def test_jumps_to_the_next_stage_only_are_a_plain_policy_not_a_challenger():
    """A learned candidate whose jumps all go to the next stage skips nothing:
    it competes as a plain candidate (kept only where clearly better than the
    reference), and here the plain fit's answers are kept: its policy, with
    the middle stage it answers no row at jumped over."""
    X, y = _middle_is_idle(400, 1)
    X_test, _ = _middle_is_idle(5000, 7)
    params = dict(budget=9.0, policy="linear", random_state=0)
    plain = _column_cascade(**params).fit(X, y)
    skipping = _column_cascade(skips=True, **params).fit(X, y)
    assert_array_equal(skipping.predict_exit(X_test), plain.predict_exit(X_test))
    search = skipping.budget_search_
    assert not search["challenger"][search["chosen"]]
    assert search["scores"][search["chosen"]].endswith("idle stages skipped")
    assert plain.exit_rates_[1] == 0
    assert skipping.policy_rows_cost_ == pytest.approx(
        plain.policy_rows_cost_ - 5.0 * plain.exit_rates_[2]
    )


def test_the_budget_search_names_what_each_candidate_does_and_marks_challengers():
    """``budget_search_``: a candidate whose learned jumps all go to the next
    stage is named so (not "with skips"), a plain candidate repeated because
    no stage is idle is named as a repeat, and ``challenger`` marks exactly
    the candidates that jump over a stage with thresholds searched for it."""
    X, y = make_classification(
        1500, n_features=10, n_informative=6, n_classes=3, random_state=0
    )
    stages = [
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
        ("deep", DecisionTreeClassifier(max_depth=10, random_state=0)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 2, 4, 30], budget=6, skips=True, cv=3, random_state=0
    ).fit(X, y)
    search = cascade.budget_search_
    names = [str(n) for n in search["scores"]]
    jumping = [n.endswith(("with skips", ", budget spent")) for n in names]
    assert_array_equal(search["challenger"], jumping)
    assert any(jumping)
    assert any(n.endswith("(every jump to the next stage)") for n in names)
    repeats = [n for n in names if n.endswith(" (no idle stage: as above)")]
    assert repeats
    for name in repeats:
        assert name.removesuffix(" (no idle stage: as above)") in names
    # Without skips no candidate is a challenger.
    plain = AdaptiveCascadeClassifier(
        stages, costs=[1, 2, 4, 30], budget=6, cv=3, random_state=0
    ).fit(X, y)
    assert not plain.budget_search_["challenger"].any()


def test_jumps_that_leave_a_budget_only_the_first_stage_are_learned_again():
    """Jumps learned at the budget's price of cost can send every row that
    goes on to dear stages, so that thresholds meet the budget only by
    answering every row at the first stage (a regressor with "disagreement"
    scores: error 6.8 at a cost of 1 against 4.3 at 30 without jumps). Learned
    again at a raised price, each skipping candidate is no less accurate than
    the same kind without jumps here, and spends the budget."""
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import (
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = make_friedman1(n_samples=1200, noise=1.0, random_state=0)
    stages = [
        ("ridge", Ridge()),
        ("tree", DecisionTreeRegressor(max_depth=6, random_state=0)),
        ("rf", RandomForestRegressor(20, random_state=0)),
        ("hgb", HistGradientBoostingRegressor(max_iter=40, random_state=0)),
    ]
    cascade = AdaptiveCascadeRegressor(
        stages,
        costs=[1, 2, 20, 40],
        cv=3,
        random_state=0,
        skips=True,
        budget=30.0,
        policy="disagreement",
    ).fit(X, y)
    search = cascade.budget_search_
    names = [str(n) for n in search["scores"]]
    error = dict(zip(names, search["policy_rows_error"]))
    cost = dict(zip(names, search["policy_rows_cost"]))
    # Learned again, its jumps may all go to the next stage (named so).
    jumped = next(n for n in names if n.startswith("disagreement per exit with"))
    assert error[jumped] <= error["disagreement per exit"]
    assert cost[jumped] >= 0.97 * 30.0


def test_a_search_with_one_candidate_for_two_kinds_keeps_every_skipping_candidate():
    """A shared-threshold heuristic gives one plain candidate for its two
    kinds of scores; each kind still gets its skipping candidate."""
    from skadaptive.policies import make_policy_search
    from skadaptive.policies._skips import SkipSearch

    X, y, _ = _middle_is_useless(600, 0)
    probas = [np.column_stack([1 - X[:, k], X[:, k]]) for k in range(3)]
    plain = make_policy_search(
        "entropy", probas, y, np.array([1, 6, 26]) / 26, shared_threshold=True
    )
    kinds = [c.kind for c in SkipSearch(plain).budget_candidates(0.4)]
    assert any(k.startswith("entropy per exit with skips") for k in kinds)
    assert any(k.startswith("max_proba per exit with skips") for k in kinds)


def test_the_cli_runs_a_skipping_model_as_the_api_does(tmp_path, monkeypatch):
    """``skadaptive predict --output``'s cost column is what each row paid
    (a row that jumps over the middle stage does not pay it), and
    ``--batch-size`` bounds every stage call of ``predict`` and
    ``recalibrate`` for that run only (the saved copy keeps the model's)."""
    import csv

    import joblib

    from skadaptive.cli import main

    monkeypatch.chdir(tmp_path)
    X, y, _ = _middle_is_useless(600, 0)
    stages = [(name, ColumnStage(k).fit(X, y)) for k, name in enumerate("abc")]
    model = AdaptiveCascadeClassifier(
        stages, costs=[1, 5, 20], skips=True, cost_weight=0.01, random_state=0
    ).fit(X, y)
    assert model.policy_.skips
    joblib.dump(model, "model.joblib")
    np.savez("rows.npz", X=X, y=y)
    calls = []
    original = ColumnStage.predict_proba

    def counted(self, X_rows):
        calls.append(len(X_rows))
        return original(self, X_rows)

    monkeypatch.setattr(ColumnStage, "predict_proba", counted)
    command = ["predict", "model.joblib", "--data", "rows.npz", "--output", "o.csv"]
    assert main([*command, "--batch-size", "7"]) == 0
    assert calls and max(calls) <= 7
    with open("o.csv") as handle:
        written = np.array([float(r["cost"]) for r in csv.DictReader(handle)])
    routed = model.route(X)
    assert_allclose(written, routed.cost)
    # Rows that jumped paid less than the stages up to their exit.
    assert (routed.cost < model.cumulative_costs_[routed.exit_stage]).any()
    calls.clear()
    command = ["recalibrate", "model.joblib", "rows.npz", "--budget", "6"]
    assert main([*command, "--output", "new.joblib", "--batch-size", "7"]) == 0
    assert calls and max(calls) <= 7
    assert joblib.load("new.joblib").batch_size == model.batch_size


def test_a_stage_that_answers_only_rows_of_no_weight_is_idle():
    """Rows of zero weight count for nothing: a middle stage that only they
    exit at is idle, and is skipped as if they were not there."""
    from skadaptive.policies._skips import skipping_idle_stages

    probas = [
        np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]),
        np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05]]),
        np.eye(2)[[0, 1, 0]],
    ]
    plain = CascadePolicy(
        [HeuristicRule("max_proba", 0.8), HeuristicRule("max_proba", 0.8)]
    )
    assert plain.exit_stage(probas).tolist() == [0, 2, 1]
    weight = np.array([1.0, 1.0, 0.0])
    skipping = skipping_idle_stages(plain, probas, weight)
    assert skipping is not None
    assert skipping.walk(probas)[1][1].tolist() == [False, False, False]
    without = [p[:2] for p in probas]
    assert skipping_idle_stages(plain, without, np.ones(2)) is not None
    # With weight on the row the middle stage answers, it is not idle.
    assert skipping_idle_stages(plain, probas, np.ones(3)) is None


@pytest.mark.filterwarnings("ignore:Stage .* does not accept sample_weight")
@pytest.mark.parametrize("knob", [{"cost_weight": 0.01}, {"budget": 8.0}])
def test_integer_weight_equals_repeated_rows_where_rows_skip(knob):
    X, y, _ = _middle_is_useless(300, 1)
    weight = np.random.default_rng(1).integers(0, 4, len(y))
    params = dict(costs=[1, 5, 20], skips=True, random_state=0, **knob)

    def fitted(*data, **fit_params):
        stages = [(n, ColumnStage(k).fit(X, y)) for k, n in enumerate("abc")]
        return AdaptiveCascadeClassifier(stages, **params).fit(*data, **fit_params)

    weighted = fitted(X, y, sample_weight=weight.astype(float))
    repeated = fitted(np.repeat(X, weight, axis=0), np.repeat(y, weight))
    assert weighted.policy_.skips and repeated.policy_.skips
    X_new, _, _ = _middle_is_useless(300, 2)
    assert_array_equal(weighted.predict_path(X_new), repeated.predict_path(X_new))
    for name in ("policy_rows_cost_", "expected_cost_", "expected_accuracy_"):
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name))


def test_a_row_of_no_weight_does_not_change_a_jump_rule():
    """fit_jump_rule with a row of weight 0 is fit_jump_rule without it, even
    where that row alone would make the continuations worth learning."""
    from skadaptive.policies._skips import fit_jump_rule

    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1], 40)
    # Going on to stage 2 is best for every row of weight, stage 1 for the
    # last row only, which has no weight.
    risks = np.vstack([np.full(40, 1.0), np.full(40, 0.2)])
    risks[:, -1] = [0.1, 0.9]
    weight = np.ones(40)
    weight[-1] = 0.0
    args = ([1, 2], "linear", "history", False)
    rule = fit_jump_rule([proba], risks, args[0], weight, *args[1:])
    without = fit_jump_rule(
        [proba[:-1]], risks[:, :-1], args[0], weight[:-1], *args[1:]
    )
    assert rule.constant == without.constant == 2
    assert_array_equal(rule.next_stage([proba]), without.next_stage([proba]))
