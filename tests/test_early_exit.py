"""EarlyExitClassifier: exits over one shared computation, any policy family."""

import functools
import pickle

import numpy as np
import pytest
from _budget_checks import assert_budget_spent_well
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skadaptive import EarlyExitClassifier
from skadaptive.metrics import make_cost_aware_scorer
from skadaptive.policies import POLICIES
from skadaptive.stages import ChainExits, TreeEnsembleExits, exit_probas

N_TRAIN = 600


@functools.cache
def _data():
    X, y = make_classification(
        n_samples=N_TRAIN + 300,
        n_features=10,
        n_informative=6,
        n_classes=3,
        random_state=0,
    )
    return X[:N_TRAIN], X[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]


def _boosting(n_estimators=40):
    return GradientBoostingClassifier(
        n_estimators=n_estimators, max_depth=2, random_state=0
    )


@functools.cache
def _frozen_boosting():
    X_train, _, y_train, _ = _data()
    return FrozenEstimator(_boosting().fit(X_train, y_train))


def _frozen_ee(**params):
    """An early-exit model over a frozen backbone, policy learned on the test half."""
    _, X_test, _, y_test = _data()
    params.setdefault("exits", [5, 10, 20, 40])
    return EarlyExitClassifier(_frozen_boosting(), **params).fit(
        X_test[:150], y_test[:150]
    )


# ---------------------------------------------------------------- behaviour


@pytest.mark.budget
def test_costs_default_to_trees_and_budget_is_in_trees():
    ee = _frozen_ee(budget=8)
    assert_array_equal(ee.costs_, [5, 5, 10, 20])
    assert_array_equal(ee.cumulative_costs_, [5, 10, 20, 40])
    assert ee.budget_ == 8
    assert_budget_spent_well(ee)
    assert ee.n_exits_ == 4


def test_default_exits_halve_the_trees_down_to_a_sixteenth():
    X, _, y, _ = _data()
    ee = EarlyExitClassifier(_boosting(n_estimators=32), cv=3).fit(X, y)
    assert ee.source_.exits == (2, 4, 8, 16, 32)
    # Said where a user looks: the fitted attribute (ee.exits stays None).
    assert ee.exits is None
    assert_array_equal(ee.exits_, [2, 4, 8, 16, 32])


def test_exits_are_the_trees_given_or_none_for_a_chains_own_heads():
    X, _, y, _ = _data()
    forest = RandomForestClassifier(12, random_state=0)
    ee = EarlyExitClassifier(forest, exits=[3, 6, 12], cv=3).fit(X, y)
    assert_array_equal(ee.exits_, [3, 6, 12])
    chain = ChainExits(
        [StandardScaler(), PCA(n_components=3)],
        [LogisticRegression(), LogisticRegression()],
    )
    assert EarlyExitClassifier(chain, cv=3).fit(X, y).exits_ is None


@pytest.mark.budget
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_meets_a_budget_and_routes_like_offline(policy):
    _, X_test, _, _ = _data()
    # A budget that binds: with a score that is the same for every row at the
    # first exit (constant rules, patience), 8 trees leave no choice at all;
    # the per-exit max-probability thresholds every family considers would
    # spend 11.2 trees per row without a budget.
    budget = {"constant": 10, "patience": 10}.get(policy, 8)
    ee = _frozen_ee(policy=policy, budget=budget)
    assert_budget_spent_well(ee)
    # Routing the rows (compacted between exits) gives the exits the policy
    # picks on every exit's probabilities.
    result = ee.route(X_test)
    offline = ee.policy_.exit_stage(exit_probas(ee.source_, X_test))
    assert_array_equal(result.exit_stage, offline)
    assert_array_equal(result.cost, ee.cumulative_costs_[offline])


def test_answers_are_the_staged_probabilities_of_the_exit():
    _, X_test, _, _ = _data()
    ee = _frozen_ee(cost_weight=0.01)
    model = _frozen_boosting().estimator
    staged = list(model.staged_predict_proba(X_test))
    result = ee.route(X_test)
    for row, stage in enumerate(result.exit_stage):
        trees = ee.source_.exits[stage]
        assert_allclose(result.proba[row], staged[trees - 1][row], atol=1e-12)
    assert len(np.unique(result.exit_stage)) > 1


def test_frozen_backbone_is_used_as_given():
    frozen = _frozen_boosting()
    ee = _frozen_ee()
    assert ee.estimator_ is frozen
    assert ee.source_.estimator is frozen.estimator  # the trees it sums


@pytest.mark.parametrize(
    "backbone",
    [
        RandomForestClassifier(n_estimators=16, max_depth=5, random_state=0),
        ExtraTreesClassifier(n_estimators=16, max_depth=5, random_state=0),
    ],
    ids=["forest", "extra_trees"],
)
def test_forests_are_cross_fitted_then_refitted(backbone):
    X, X_test, y, y_test = _data()
    ee = EarlyExitClassifier(backbone, exits=[4, 8, 16], cv=3, budget=10).fit(X, y)
    assert ee.estimator_ is not backbone and not hasattr(backbone, "estimators_")
    refitted = clone(backbone).fit(X, y)
    # The refitted forest is the backbone fitted on all rows.
    assert_allclose(exit_probas(ee.source_, X_test)[-1], refitted.predict_proba(X_test))
    assert ee.policy_rows_cost_ <= 10
    assert ee.score(X_test, y_test) > 0.6


def test_chain_backbone_measures_seconds_when_no_cost_is_given():
    X, X_test, y, y_test = _data()
    chain = ChainExits(
        [StandardScaler(), PCA(n_components=4, random_state=0)],
        [LogisticRegression(), LogisticRegression()],
    )
    ee = EarlyExitClassifier(chain, cv=3).fit(X, y)
    assert isinstance(ee.estimator_, ChainExits) and ee.estimator_ is not chain
    assert ee.costs_.shape == (2,) and (ee.costs_ > 0).all()
    assert ee.costs_.max() < 1.0  # seconds per row, not units
    assert ee.score(X_test, y_test) > 0.6
    frozen = FrozenEstimator(clone(chain).fit(X, y))
    ee = EarlyExitClassifier(frozen, costs=[1, 3]).fit(X_test, y_test)
    assert ee.estimator_ is frozen


def test_a_ready_multi_exit_source_is_used_as_given():
    """Any object following the MultiExitSource protocol (an ONNX network,
    say) plugs in without being an estimator."""
    X, X_test, y, y_test = _data()
    source = TreeEnsembleExits(_boosting().fit(X, y), [10, 40])
    ee = EarlyExitClassifier(source, budget=30).fit(X_test, y_test)
    assert ee.source_ is source
    assert_array_equal(ee.costs_, [10, 30])
    assert ee.policy_rows_cost_ <= 30


@pytest.mark.budget
def test_with_policy_moves_between_families_without_refitting():
    ee = _frozen_ee(budget=15)
    for policy in POLICIES:
        other = ee.with_policy(budget=10, policy=policy)
        assert other.policy == policy
        assert_budget_spent_well(other)
        assert other.estimator_ is ee.estimator_
    assert ee.budget == 15 and ee.policy == "linear"


def test_pickle_round_trip_predicts_the_same():
    _, X_test, _, _ = _data()
    for policy in ("linear", "eenet", "patience"):
        ee = _frozen_ee(policy=policy, budget=15)
        loaded = pickle.loads(pickle.dumps(ee))
        assert_array_equal(loaded.predict_proba(X_test), ee.predict_proba(X_test))
        assert_array_equal(loaded.predict_exit(X_test), ee.predict_exit(X_test))


def test_sample_weight_reaches_the_backbone_and_the_policy():
    X, _, y, _ = _data()
    weights = np.where(y == 0, 3.0, 1.0)
    ee = EarlyExitClassifier(_boosting(20), exits=[5, 20], cv=KFold(3)).fit(
        X, y, sample_weight=weights
    )
    expected = _boosting(20).fit(X, y, sample_weight=weights)
    assert_allclose(
        ee.estimator_.predict_proba(X), expected.predict_proba(X), atol=1e-12
    )
    unweighted = EarlyExitClassifier(_boosting(20), exits=[5, 20], cv=KFold(3))
    assert not np.allclose(
        unweighted.fit(X, y).estimator_.predict_proba(X),
        expected.predict_proba(X),
    )


class _CountingBoosting(GradientBoostingClassifier):
    fits = 0

    def fit(self, X, y, sample_weight=None, monitor=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight=sample_weight, monitor=monitor)


def test_grid_search_over_policy_fits_the_backbone_once_per_split(tmp_path):
    X, _, y, _ = _data()
    _CountingBoosting.fits = 0
    ee = EarlyExitClassifier(
        _CountingBoosting(n_estimators=20, max_depth=2, random_state=0),
        exits=[5, 10, 20],
        cv=2,
        memory=str(tmp_path),
    )
    search = GridSearchCV(
        make_pipeline(StandardScaler(), ee),
        {
            "earlyexitclassifier__budget": [8.0, 12.0],
            "earlyexitclassifier__policy": ["linear", "eenet", "max_proba"],
        },
        cv=2,
        scoring=make_cost_aware_scorer(cost_weight=0.01),
    ).fit(X, y)
    # Per outer split: 2 folds + 1 refit; plus the final refit (3 fits): 9,
    # not 6 candidates x 2 splits x 3 = 36.
    assert _CountingBoosting.fits == 9
    assert search.best_estimator_[-1].policy_rows_cost_ <= 12 * (1 + 1e-9)


# ------------------------------------------------------------------- errors


def test_unsupported_backbones_say_what_is_supported():
    X, _, y, _ = _data()
    with pytest.raises(TypeError, match="HistGradientBoostingClassifier cannot"):
        EarlyExitClassifier(HistGradientBoostingClassifier()).fit(X, y)
    with pytest.raises(TypeError, match="estimator must be a GradientBoosting"):
        EarlyExitClassifier(LogisticRegression()).fit(X, y)


def test_bad_exits_are_refused_with_the_tree_count():
    X, _, y, _ = _data()
    with pytest.raises(ValueError, match=r"last equal to the ensemble's number of"):
        EarlyExitClassifier(_boosting(20), exits=[5, 10], cv=2).fit(X, y)
    with pytest.raises(ValueError, match="strictly increasing"):
        EarlyExitClassifier(_boosting(20), exits=[10, 5, 20], cv=2).fit(X, y)
    # Infinite or huge counts are named as given (they were shown cast to
    # int64: -9223372036854775808).
    for bad in ([5, np.inf], [5, 2.0**63]):
        with pytest.raises(ValueError, match=r"list of tree counts; got \[5, "):
            EarlyExitClassifier(_boosting(20), exits=bad, cv=2).fit(X, y)
    chain = ChainExits([None, None], [LogisticRegression(), LogisticRegression()])
    with pytest.raises(ValueError, match="exits=.* applies to tree ensembles only"):
        EarlyExitClassifier(chain, exits=[1, 2]).fit(X, y)


def test_single_exit_is_refused():
    X, _, y, _ = _data()
    with pytest.raises(ValueError, match="needs at least two"):
        EarlyExitClassifier(_boosting(20), exits=[20], cv=2).fit(X, y)


def test_a_chain_with_one_head_is_refused_before_any_fit(monkeypatch):
    X, _, y, _ = _data()
    chain = ChainExits([StandardScaler()], [LogisticRegression()])

    def no_fit(*args, **kwargs):
        raise AssertionError("a block or head was fitted")

    monkeypatch.setattr(StandardScaler, "fit", no_fit)
    with pytest.raises(ValueError, match="has 1 head, so 1 exit; early exiting"):
        EarlyExitClassifier(chain, cv=3).fit(X, y)


def test_a_gradient_boosting_monitor_is_refused():
    """A monitor can stop each fold's model at another tree than the refit's:
    the policy would learn on other exits than predict runs."""
    import sklearn

    X, _, y, _ = _data()

    def monitor(i, model, local):
        return i + 1 >= local["X"].shape[0] // 20

    with sklearn.config_context(enable_metadata_routing=True):
        model = _boosting(40).set_fit_request(monitor=True)
        with pytest.raises(ValueError, match="A monitor was passed to Gradient"):
            EarlyExitClassifier(model, cv=3).fit(X, y, monitor=monitor)
    # Stopped by a monitor all the same (fitted here), the model is refused
    # when its exits are made; fitted by the user, it has the trees it grew.
    from skadaptive.stages._backbones import as_multi_exit

    stopped = _boosting(40).fit(X, y, monitor=lambda i, m, local: i + 1 >= 12)
    assert stopped.n_estimators_ == 12
    with pytest.raises(ValueError, match="grew 12 of its n_estimators=40 trees"):
        as_multi_exit(stopped, None, fitted_here=True)
    assert as_multi_exit(stopped, None).exits[-1] == 12


def test_unreachable_budget_says_by_how_much():
    _, X_test, _, y_test = _data()
    ee = EarlyExitClassifier(_frozen_boosting(), exits=[5, 10, 20, 40], budget=4)
    with pytest.raises(ValueError, match=r"already costs 5, 1 over the budget \(25"):
        ee.fit(X_test, y_test)


def test_wrong_feature_count_is_named():
    _, X_test, _, _ = _data()
    ee = _frozen_ee()
    with pytest.raises(ValueError, match="10 features"):
        ee.predict(X_test[:, :4])


def test_frozen_backbone_with_labels_it_does_not_predict():
    _, X_test, _, y_test = _data()
    with pytest.raises(ValueError, match=r"labels \[7\] that the frozen stages"):
        EarlyExitClassifier(_frozen_boosting(), exits=[20, 40]).fit(
            X_test[:50], np.r_[y_test[:49], 7]
        )


# --------------------------------------------------------------- properties


@settings(max_examples=8)
@given(
    batch_size=st.integers(1, 200),
    order=st.permutations(range(60)),
    policy=st.sampled_from(POLICIES),
)
def test_a_rows_answer_depends_on_neither_its_batch_nor_its_position(
    batch_size, order, policy
):
    _, X_test, _, _ = _data()
    ee = _frozen_ee(policy=policy, budget=15)
    X = X_test[150:210]
    expected = ee.route(X)
    ee.set_params(batch_size=batch_size, n_jobs=2)
    got = ee.route(X[list(order)])
    assert_array_equal(got.exit_stage, expected.exit_stage[list(order)])
    assert_allclose(got.proba, expected.proba[list(order)], rtol=0, atol=1e-12)
    alone = ee.route(X[order[:1]])
    assert_array_equal(alone.exit_stage, expected.exit_stage[order[:1]])


@pytest.mark.budget
@settings(max_examples=4)
@given(
    fraction=st.floats(0.125, 1.0),
    policy=st.sampled_from(POLICIES),
)
def test_budget_is_met_on_the_held_out_rows(fraction, policy):
    budget = 5 + fraction * 35  # from the first exit's cost to all 40 trees
    assert_budget_spent_well(_frozen_ee(budget=budget, policy=policy))


@settings(max_examples=10)
@given(policy=st.sampled_from(("constant", "max_proba", "entropy", "patience")))
def test_cost_falls_as_cost_weight_grows_for_one_parameter_families(policy):
    """A constant rule or one shared threshold: the choice minimising
    loss + lam * cost over a fixed candidate set can only get cheaper as lam
    grows."""
    frontier = _frozen_ee(policy=policy).frontier_
    assert (np.diff(frontier["expected_cost"]) <= 1e-12).all()


def test_determinism_under_random_state():
    X, X_test, y, _ = _data()

    def fit():
        return EarlyExitClassifier(
            RandomForestClassifier(n_estimators=12, random_state=0),
            exits=[3, 6, 12],
            cv=0.3,
            random_state=4,
            policy="eenet",
            budget=8,
        ).fit(X, y)

    first, second = fit(), fit()
    assert_array_equal(first.predict_proba(X_test), second.predict_proba(X_test))
    for key in first.frontier_:
        assert_array_equal(first.frontier_[key], second.frontier_[key])


def test_bad_exits_and_budgets_of_unfitted_ensembles_fail_before_any_fit():
    X, _, y, _ = _data()
    _CountingBoosting.fits = 0
    backbone = _CountingBoosting(n_estimators=400)
    with pytest.raises(ValueError, match="already costs 25"):
        EarlyExitClassifier(backbone, budget=10).fit(X, y)  # default exits: 25..400
    with pytest.raises(ValueError, match="last equal to the ensemble's number"):
        EarlyExitClassifier(backbone, exits=[50, 200]).fit(X, y)
    with pytest.raises(ValueError, match="has one exit"):
        EarlyExitClassifier(backbone, exits=[400]).fit(X, y)
    assert _CountingBoosting.fits == 0


def test_early_stopping_boosting_is_refused_before_any_fit():
    X, _, y, _ = _data()
    _CountingBoosting.fits = 0
    backbone = _CountingBoosting(n_estimators=100, n_iter_no_change=3)
    with pytest.raises(ValueError, match="n_iter_no_change=3.*FrozenEstimator"):
        EarlyExitClassifier(backbone).fit(X, y)
    # Kept as fitted on one split, the folds are no reason: its trees are.
    with pytest.raises(ValueError, match="number of trees unknown until it is fit"):
        EarlyExitClassifier(backbone, cv=0.25, refit=False).fit(X, y)
    assert _CountingBoosting.fits == 0


def test_refit_false_keeps_the_model_fitted_without_the_policy_rows():
    X, _, y, _ = _data()
    model = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    ee = EarlyExitClassifier(
        model, exits=[5, 10, 20], budget=10.0, cv=0.3, refit=False, random_state=0
    ).fit(X, y)
    train, test = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=y, random_state=0
    )
    # The backbone kept is the one fitted on the split's training rows ...
    alone = clone(model).fit(X[train], y[train])
    assert_allclose(ee.estimator_.predict_proba(X), alone.predict_proba(X))
    # ... so the policy rows exit as the policy was learned on them.
    exits = ee.predict_exit(X[test])
    assert_allclose(np.bincount(exits, minlength=3) / len(test), ee.exit_rates_)
    assert ee.predict_cost(X[test]).mean() == pytest.approx(ee.policy_rows_cost_)


def test_early_stopped_boosting_works_frozen():
    X_train, X_test, y_train, y_test = _data()
    model = GradientBoostingClassifier(
        n_estimators=300, n_iter_no_change=2, max_depth=2, random_state=0
    ).fit(X_train, y_train)
    assert model.n_estimators_ < 300
    ee = EarlyExitClassifier(FrozenEstimator(model)).fit(X_test, y_test)
    assert ee.source_.exits[-1] == model.n_estimators_
    assert ee.predict(X_test).shape == y_test.shape


class _RowCounting(LogisticRegression):
    def fit(self, X, y):
        self.n_rows_ = len(X)
        return super().fit(X, y)


class _ExitsByRows:
    """A source with one more exit when its member was fitted on odd rows."""

    def __init__(self, members, names=None):
        (self.member,) = members
        self.classes_ = self.member.classes_
        self.n_stages = 2 + self.member.n_rows_ % 2

    def run_stage(self, stage, X_rows, state):
        n_classes = len(self.classes_)
        return np.full((len(X_rows), n_classes), 1 / n_classes), None


def test_members_whose_exit_count_depends_on_the_fold_are_refused():
    from skadaptive._held_out import fit_stages_on_held_out

    X, _, y, _ = _data()
    with pytest.raises(ValueError, match=r"different number of exits.*\[2, 3\]"):
        fit_stages_on_held_out(
            [_RowCounting()],
            X[:101],
            y[:101],
            np.unique(y),
            [{}],
            {},
            cv=2,
            measure_costs=False,
            random_state=0,
            make_source=_ExitsByRows,
        )


# ----------------------------------------- gaps a mutation review found
def test_stage_costs_are_the_cost_up_to_each_exit():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    ee = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0),
        exits=[5, 12, 20],
        cv=2,
        random_state=0,
    ).fit(X, y)
    assert_array_equal(ee.costs_, [5, 7, 8])
    assert_array_equal(ee.cumulative_costs_, [5, 12, 20])
    assert_array_equal(ee.evaluate_frontier(X, y)["stage_costs"], [5, 12, 20])


def test_an_unreachable_budget_lists_the_exits_incremental_costs():
    X, y = make_classification(n_samples=60, n_features=6, random_state=0)
    ee = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=20), exits=[5, 12, 20], budget=1
    )
    with pytest.raises(
        ValueError, match=r"already costs 5\b.*the stages' costs: \[5, 7, 8\]"
    ):
        ee.fit(X, y)


class _ShrinkingChain(ChainExits):
    """Fits one head fewer on small training sets: its exits depend on the rows."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        if len(X) < 250:
            self.blocks_, self.heads_ = self.blocks_[:-1], self.heads_[:-1]
        return self

    @property
    def n_stages(self):
        return len(getattr(self, "heads_", self.heads))


def test_exits_that_depend_on_the_rows_are_refused_at_the_refit():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    chain = _ShrinkingChain([None, None, None], [LogisticRegression()] * 3)
    with pytest.raises(ValueError, match="must not depend on the rows"):
        EarlyExitClassifier(chain, cv=2, costs=[1.0, 1.0, 1.0]).fit(X, y)


class _CountingPredictions(GradientBoostingClassifier):
    """Counts the calls of its own predict_proba (the exits never make one)."""

    calls: list = []

    def predict_proba(self, X):
        _CountingPredictions.calls.append(len(X))
        return super().predict_proba(X)


def test_measured_costs_time_the_backbones_own_predict_proba():
    # The speed-up is against what a user would call instead: the model's
    # own predict_proba, not its exits run one after another.
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    _CountingPredictions.calls.clear()
    ee = EarlyExitClassifier(
        _CountingPredictions(n_estimators=20, max_depth=2, random_state=0),
        exits=[5, 20],
        costs="auto",
        cv=2,
        random_state=0,
    ).fit(X, y)
    assert _CountingPredictions.calls
    assert np.isfinite(ee.expected_speed_up_)
