"""Tie-breaks, weights and reported figures of the policy searches, where a
mutation review found no test that failed when they broke.

Each test here was run against the mutant it names in its docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from test_router import COSTS, _flagged, _router_cascade

from skadaptive._router import _router_at_budget, _router_at_cost_weight
from skadaptive.policies import make_policy_search
from skadaptive.policies._call_costs import choose_with_call_costs
from skadaptive.policies._selection import select_out_of_sample
from skadaptive.policies._skips import fit_jump_rule
from skadaptive.policies._thresholds import ThresholdProblem, lagrangian_thresholds


def _two_stages(n_rows, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    cheap = rng.dirichlet([1, 1], n_rows)
    costly = np.eye(2)[y] * 0.9 + 0.05
    return y, cheap, costly


# ------------------------------------------------------------- selection
def test_a_gain_of_exactly_one_standard_error_is_noise():
    """Mutant: the standard error with ddof=0. Gains per row 1, 1, 1, -1: mean
    0.5, exactly one (unbiased) standard error, so the reference is kept."""
    y = np.array([0, 1, 0, 1])
    cheap = np.array([[0.4, 0.6], [0.7, 0.3], [0.45, 0.55], [0.2, 0.8]])
    costly = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.7, 0.3]])
    search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    exit_stage = np.array([[1, 1, 1, 1], [0, 0, 0, 0]])
    best, _, _ = select_out_of_sample(
        search, exit_stage, np.zeros(4, dtype=int), reference=1
    )
    assert best == 1


def test_tied_candidates_go_to_the_earlier():
    """Mutant: ties to the later candidate (budget_search_'s "chosen")."""
    y, cheap, costly = _two_stages(40)
    search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    same = (np.arange(40) % 3 == 0).astype(int)
    exit_stage = np.stack([same, same, np.zeros(40, int)])
    best, _, _ = select_out_of_sample(search, exit_stage, np.arange(40) % 5)
    assert best == 0


def test_a_kept_reference_is_estimated_as_itself():
    """Mutant: the estimate is the folds' mixture of choices even where the
    reference is kept. The other candidate wins in four folds' choices and
    loses overall, so the mixture would describe a policy not kept."""
    rows = np.arange(100)
    y = rows % 2
    sure = 0.55 + 0.004 * rows  # every row distinct
    right = np.column_stack([sure, 1 - sure])
    cheap = np.where((y == 0)[:, None], right, right[:, ::-1])
    costly = cheap.copy()
    plus, minus = np.array([1, 2, 3, 4]), np.array([0, 5, 10])
    cheap[plus] = cheap[plus][:, ::-1]
    costly[minus] = costly[minus][:, ::-1]
    search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    reference = np.zeros(100, int)
    other = reference.copy()
    other[np.r_[plus, minus]] = 1
    best, per_candidate, estimate = select_out_of_sample(
        search, np.stack([other, reference]), rows % 5, reference=1
    )
    assert best == 1
    assert estimate.accuracy == per_candidate[1].accuracy
    assert estimate.normalized_cost == per_candidate[1].normalized_cost


# ------------------------------------------------------------ heuristics
def test_a_heuristic_tie_in_loss_goes_to_the_cheaper_threshold():
    """Mutant: cost_weight ties to the dearer shared threshold. Both answer
    every row right; the cheaper lets the three sure rows exit."""
    y = np.array([0, 1, 0, 1, 0, 1])
    cheap = np.array(
        [[0.95, 0.05], [0.1, 0.9], [0.85, 0.15], [0.6, 0.4], [0.45, 0.55], [0.65, 0.35]]
    )
    costly = np.eye(2)[y] * 0.9 + 0.05
    search = make_policy_search("max_proba", [cheap, costly], y, [0.1, 1.0])
    chosen = search.at_cost_weight(0.0)
    assert chosen.accuracy == 1.0
    assert chosen.normalized_cost == pytest.approx(0.55)


def test_a_heuristics_cost_weighs_a_row_as_its_copies():
    """Mutant: the shared threshold's mean cost without the weights."""
    rng = np.random.default_rng(0)
    y, cheap, costly = _two_stages(60)
    middle = rng.dirichlet([2, 2], 60)
    weight = rng.integers(0, 4, 60).astype(float)
    copies = np.repeat(np.arange(60), weight.astype(int))
    stages = [cheap, middle, costly]
    costs = [0.1, 0.3, 1.0]
    weighted = make_policy_search("entropy", stages, y, costs, weight)
    repeated = make_policy_search(
        "entropy", [p[copies] for p in stages], y[copies], costs
    )
    for cost_weight in np.geomspace(1e-3, 10, 40):
        a = weighted.at_cost_weight(cost_weight)
        b = repeated.at_cost_weight(cost_weight)
        assert a.normalized_cost == pytest.approx(b.normalized_cost)
        assert a.accuracy == pytest.approx(b.accuracy)


# ------------------------------------------------------------ thresholds
def test_the_lagrangian_tie_exits_fewer_rows():
    """Mutant: ties to the cut exiting the most rows. At cost_weight 1,
    exiting the second row adds a third of loss and saves a third of cost:
    a tie, which the documented conservative rule does not take."""
    problem = ThresholdProblem(
        np.array([[0.9, 0.5, 0.1]]),
        np.array([[0.0, 1.0, 1.5], [0.0, 0.0, 0.0]]),
        np.array([0.0, 1.0]),
        np.ones(3),
    )
    assert lagrangian_thresholds(problem, 1.0).tolist() == [0.7]


# ------------------------------------------------------------ call costs
def test_the_first_stage_alone_reports_its_weighted_accuracy():
    """Mutant: the first-stage-only option's accuracy without the weights.
    The second stage's part per call is dearer than the budget, so only the
    first stage fits."""
    y, cheap, costly = _two_stages(200)
    right = np.argmax(cheap, axis=1) == y
    weight = np.where(right, 3.0, 1.0)

    def make(costs):
        return make_policy_search("max_proba", [cheap, costly], y, costs, weight)

    chosen = choose_with_call_costs(
        make,
        [cheap, costly],
        y,
        weight,
        variable_cumulative=np.array([0.05, 0.5]),
        share=np.array([0.0, 0.5]),
        batch_size=10,
        cost_weight=0.0,
        normalized_budget=0.04,
        confidence=None,
        random_state=0,
        cost_unit=1.0,
    )
    expected = (right * weight).sum() / weight.sum()
    assert chosen["deepest_stage"] == 0
    assert chosen["policy_rows_accuracy"] == pytest.approx(expected)
    assert chosen["expected_accuracy"] == pytest.approx(expected)


# ------------------------------------------------------------ skips, router
def test_a_learned_jump_that_only_matches_the_best_constant_is_not_kept():
    """Mutant: the learned jump kept on a tie with the constant."""
    history = [np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]])]
    risks = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    rule = fit_jump_rule(
        history,
        risks,
        np.array([1, 2]),
        np.ones(3),
        DummyClassifier(strategy="most_frequent"),
        "history",
        False,
    )
    assert rule.learner is None and rule.constant == 2


def test_a_router_that_only_ties_is_not_kept():
    """Mutant: the router kept at an exact (accuracy, cost) tie."""
    tied = {"with": (0.8, 9.0), "without": (0.8, 9.0)}
    within = {"with": 9.0, "without": 9.0}
    errors = {"with": 0.1, "without": 0.1}
    clear = {"accuracy": False, "cost": False}
    better, reason = _router_at_budget(
        tied, within, errors, clear, 10.0, quality=lambda figure: f"{figure:.4g}"
    )
    assert not better
    assert "neither more accurate" in reason


def test_a_router_that_only_ties_at_a_cost_weight_is_not_kept():
    """Mutant: the router kept where error + cost_weight * cost only ties."""
    tied = {"with": (0.8, 9.0), "without": (0.8, 9.0)}
    better, reason = _router_at_cost_weight(tied, 0.01, 10.0, clear=True)
    assert not better and reason.endswith("was not lower")
    # One that lowers it by more than one standard error is kept; by less,
    # it is not.
    cheaper = {"with": (0.8, 8.0), "without": (0.8, 9.0)}
    assert _router_at_cost_weight(cheaper, 0.01, 10.0, clear=True)[0]
    better, reason = _router_at_cost_weight(cheaper, 0.01, 10.0, clear=False)
    assert not better and "by less than one standard error" in reason


def test_the_routers_cost_counts_its_part_per_call():
    """Mutant: the router's per-call part dropped from its cost."""
    X, y, _ = _flagged(600, 0)
    cascade = _router_cascade(
        costs={"per_call": [6.4, 0.0, 0.0, 0.0], "per_row": [0.25, *COSTS]},
        cost_batch_size=64,
        router="auto",
    ).fit(X, y)
    assert cascade.router_search_["router_cost"] == pytest.approx(0.25 + 6.4 / 64)
    if cascade.router_ is not None:
        assert cascade.router_cost_ == pytest.approx(0.25 + 6.4 / 64)
