"""The policy learner: features, thresholds and the bottom-up labels and weights."""

import numpy as np
import pytest
from _budget_checks import best_thresholds_within
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier

from skadaptive.policies import (
    POLICIES,
    CascadePolicy,
    ExitRule,
    confidence_features,
    evaluate_policy,
    first_stage_policy,
    fit_bottom_up_policy,
    heuristic_score,
    make_policy_search,
    per_row_loss,
    policy_features,
    regression_features,
    risk_minimising_threshold,
    schedule_thresholds,
)
from skadaptive.policies._heuristics import shared_threshold_table
from skadaptive.policies._thresholds import first_reaching


def _three_stage_problem(n_rows=600, seed=0):
    """Stage k is right with probability 0.5, 0.75, 0.95 and more sure when right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n_rows)
    probas = []
    for accuracy in (0.5, 0.75, 0.95):
        right = rng.random(n_rows) < accuracy
        label = np.where(right, y, (y + rng.integers(1, 3, n_rows)) % 3)
        confidence = np.where(
            right, rng.uniform(0.5, 1.0, n_rows), rng.uniform(0.34, 0.7, n_rows)
        )
        proba = np.tile(((1 - confidence) / 2)[:, None], (1, 3))
        proba[np.arange(n_rows), label] = confidence
        probas.append(proba)
    return probas, y, np.array([0.05, 0.3, 1.0])


def test_confidence_features_of_a_certain_and_a_uniform_row():
    features = confidence_features(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    np.testing.assert_allclose(
        features, [[1.0, 1.0, 0.0], [1 / 3, 0.0, 1.0]], atol=1e-9
    )


def test_feature_sets_grow_with_history_and_probabilities():
    p = [np.full((4, 3), 1 / 3)] * 3
    widths = {
        k: policy_features(p, k).shape[1]
        for k in ("confidence", "history", "probabilities", "classes")
    }
    # history: 3 + (max, agree) per earlier stage + probability of previous class
    assert widths == {
        "confidence": 3,
        "history": 3 + 2 * 2 + 1,
        "probabilities": 3 + 5 + 3,
        "classes": 3 + 5 + 3 + 3 + 3,
    }
    assert policy_features(p[:1], "history").shape[1] == 3


def test_classes_features_are_the_predicted_class_and_its_confidence():
    earlier = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    current = np.array([[0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    classes = policy_features([earlier, current], "classes")
    probabilities = policy_features([earlier, current], "probabilities")
    np.testing.assert_array_equal(classes[:, : probabilities.shape[1]], probabilities)
    # Whether the current stage predicts each class, then its max probability
    # in the predicted class's column.
    np.testing.assert_allclose(
        classes[:, probabilities.shape[1] :],
        [[0, 1, 0, 0, 0.7, 0], [0, 0, 1, 0, 0, 0.4]],
    )
    with pytest.raises(ValueError, match="for classifiers"):
        policy_features([current[:, :2]], "classes", regression=True)
    with pytest.raises(ValueError, match="for classifiers"):
        regression_features([current[:, :2]], "classes")
    with pytest.raises(ValueError, match="Unknown policy features 'class'"):
        policy_features([earlier, current], "class")
    with pytest.raises(ValueError, match="Unknown policy features 'class'"):
        make_policy_search(
            "linear",
            [earlier, current],
            np.array([0, 2]),
            np.array([0.1, 1.0]),
            feature_set="class",
        )


def _class_dependent_confidence(n_rows=3000, seed=0):
    """A first stage whose answers of each class are right when surer than a
    cut of that class (0.8, 0.5, 0.95, none) and otherwise 20 % of the time,
    the rest of each row's probability spread at random over the other
    classes, and a last stage that is always right."""
    rng = np.random.default_rng(seed)
    cuts = np.array([0.8, 0.5, 0.95, 0.0])
    n_classes = len(cuts)
    predicted = rng.integers(n_classes, size=n_rows)
    top = rng.uniform(0.3, 1.0, n_rows)
    rest = rng.dirichlet(np.ones(n_classes - 1), n_rows) * (1 - top)[:, None]
    first = np.array(
        [np.insert(rest[row], predicted[row], top[row]) for row in range(n_rows)]
    )
    right = (top > cuts[predicted]) | (rng.random(n_rows) < 0.2)
    y = np.where(right, predicted, (predicted + 1) % n_classes)
    return [first, np.eye(n_classes)[y]], y, np.array([0.1, 1.0])


def test_budget_search_learns_a_confidence_per_predicted_class():
    # Which answers of the first stage are wrong depends on its predicted
    # class: per-stage max-probability thresholds defer the least sure rows
    # of every class, and rules on the probability vector follow the classes
    # only in part. Rules on "classes" (an intercept and a slope of confidence
    # per predicted class), which the budget search tries whatever
    # policy_features is, are more accurate at the same budget on new rows.
    probas, y, cost = _class_dependent_confidence()
    search = make_policy_search("linear", probas, y, cost, feature_set="probabilities")
    candidates = search.budget_candidates(0.45)
    kinds = [c.kind for c in candidates]
    new_probas, new_y, _ = _class_dependent_confidence(seed=1)

    def accuracy_on_new_rows(kind):
        policy = candidates[kinds.index(kind)].policy
        exits = policy.exit_stage(new_probas)
        assert cost[exits].mean() <= 0.45 * 1.03
        right = np.stack([p.argmax(axis=1) == new_y for p in new_probas])
        return right[exits, np.arange(len(new_y))].mean()

    by_classes = accuracy_on_new_rows("rules on classes x1")
    assert by_classes > accuracy_on_new_rows("rules on probabilities x1") + 0.015
    assert by_classes > accuracy_on_new_rows("max_proba per exit") + 0.05


def test_zero_one_and_log_loss_per_row():
    proba = np.array([[0.9, 0.1], [0.4, 0.6]])
    np.testing.assert_array_equal(
        per_row_loss(proba, np.array([0, 0]), "zero_one"), [0, 1]
    )
    np.testing.assert_allclose(
        per_row_loss(proba, np.array([0, 0]), "log_loss"), -np.log([0.9, 0.4])
    )
    with pytest.raises(ValueError, match="Unknown loss"):
        per_row_loss(proba, np.array([0, 0]), "hinge")


def test_threshold_minimises_weighted_risk_exhaustively():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 10, 50).astype(float)  # ties on purpose
    exit_risk, defer_risk, weight = rng.random(50), rng.random(50), rng.random(50)
    threshold = risk_minimising_threshold(score, exit_risk, defer_risk, weight)

    def risk(t):
        return np.sum(weight * np.where(score >= t, exit_risk, defer_risk))

    best = min(risk(t) for t in [-np.inf, np.inf, *np.unique(score)])
    assert risk(threshold) == pytest.approx(best)


def test_threshold_is_infinite_when_everyone_or_no_one_should_exit():
    score = np.array([0.1, 0.5, 0.9])
    ones, zeros = np.ones(3), np.zeros(3)
    assert risk_minimising_threshold(score, zeros, ones, ones) == -np.inf
    assert risk_minimising_threshold(score, ones, zeros, ones) == np.inf


def test_scores_equal_up_to_rounding_share_a_fate():
    """A cut between scores one ulp apart would split rows that only rounding
    tells apart, and the midpoint of two adjacent floats is one of them."""
    base = -10.202836136605576
    score = np.array([base, np.nextafter(base, 0.0), base, 3.0])
    # Row 1 alone gains by exiting; as a group, rows 0-2 lose by exiting.
    exit_risk = np.array([1.0, 0.0, 1.0, 0.0])
    defer_risk = np.array([0.0, 1.0, 0.0, 1.0])
    threshold = risk_minimising_threshold(score, exit_risk, defer_risk, np.ones(4))
    np.testing.assert_array_equal(score >= threshold, [False, False, False, True])


class _RecordingLearner(ClassifierMixin, BaseEstimator):
    """Records the labels and weights each stage's rule is fitted with."""

    calls: list = []

    def fit(self, X, y, sample_weight=None):
        type(self).calls.append((np.asarray(y), np.asarray(sample_weight)))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return np.tile([0.0, 1.0], (len(X), 1))  # always exit


def test_labels_and_weights_follow_the_bottom_up_recursion():
    probas, y, cost = _three_stage_problem(200)
    _RecordingLearner.calls = []
    lam = 0.3
    fit_bottom_up_policy(
        probas, y, cost, lam, policy=_RecordingLearner(), tune_threshold=False
    )
    loss = [per_row_loss(p, y, "zero_one") for p in probas]
    # Stage 2 (fitted first): defer risk is the last stage's risk.
    e2, r3 = loss[1] + lam * cost[1], loss[2] + lam * cost[2]
    labels, weights = _RecordingLearner.calls[0]
    informative = np.abs(e2 - r3) > 0
    np.testing.assert_array_equal(labels, (e2 <= r3)[informative])
    np.testing.assert_allclose(
        weights, np.abs(e2 - r3)[informative] / np.abs(e2 - r3)[informative].mean()
    )
    # The learned rule exits everyone, so stage 1's defer risk is e2 (not min(e2, r3)).
    e1 = loss[0] + lam * cost[0]
    labels, _ = _RecordingLearner.calls[1]
    informative = np.abs(e1 - e2) > 0
    np.testing.assert_array_equal(labels, (e1 <= e2)[informative])


def test_constant_policy_makes_one_decision_per_stage():
    probas, y, cost = _three_stage_problem()
    policy = fit_bottom_up_policy(probas, y, cost, 0.05, policy="constant")
    assert all(
        rule.learner is None and np.isinf(rule.threshold) for rule in policy.rules
    )
    assert len(np.unique(policy.exit_stage(probas))) == 1


def test_huge_cost_weight_exits_everything_at_the_first_stage():
    probas, y, cost = _three_stage_problem()
    policy = fit_bottom_up_policy(probas, y, cost, 1e3)
    assert (policy.exit_stage(probas) == 0).all()


def test_learned_policy_beats_every_constant_policy_on_its_objective():
    probas, y, cost = _three_stage_problem()
    lam = 0.2

    def objective(policy):
        result = evaluate_policy(policy, probas, y, cost)
        return (1 - result.accuracy) + lam * result.normalized_cost

    learned = objective(fit_bottom_up_policy(probas, y, cost, lam))
    constants = [
        objective(CascadePolicy([ExitRule("confidence", a), ExitRule("confidence", b)]))
        for a in (-np.inf, np.inf)
        for b in (-np.inf, np.inf)
    ]
    assert learned < min(constants)


def test_custom_classifier_policy_is_cloned_and_used():
    probas, y, cost = _three_stage_problem()
    tree = DecisionTreeClassifier(max_depth=2, random_state=0)
    policy = fit_bottom_up_policy(probas, y, cost, 0.1, policy=tree)
    assert all(rule.learner is not tree for rule in policy.rules)
    assert not hasattr(tree, "tree_")


@pytest.mark.budget
@pytest.mark.parametrize("policy", POLICIES)
def test_budget_search_is_never_less_accurate_than_per_stage_max_proba(policy):
    probas, y, cost = _three_stage_problem()
    search = make_policy_search(policy, probas, y, cost)
    correct = np.stack([np.argmax(p, axis=1) == y for p in probas])
    max_proba = np.stack([p.max(axis=1) for p in probas[:-1]])
    for budget in (0.05, 0.2, 0.5, 0.9):
        chosen = search.within_budget(budget)
        exit_stage = chosen.policy.exit_stage(probas)
        assert cost[exit_stage].mean() <= budget * (1 + 1e-9)
        baseline, _, _ = best_thresholds_within(
            max_proba, correct, np.asarray(cost), np.ones(len(y)), budget
        )
        assert chosen.accuracy >= baseline - 1e-12
        # What the search reports is what its policy does on these rows.
        again = evaluate_policy(chosen.policy, probas, y, cost)
        assert again.accuracy == chosen.accuracy
        assert again.normalized_cost == pytest.approx(chosen.normalized_cost)


@pytest.mark.parametrize("policy", POLICIES)
def test_every_family_at_zero_and_huge_cost_weight(policy):
    """lam = 0 is at least as accurate as the best single stage on these rows;
    a huge lam answers every row at the first stage."""
    probas, y, cost = _three_stage_problem()
    search = make_policy_search(policy, probas, y, cost)
    free = search.at_cost_weight(0.0)
    best_stage = max(np.mean(np.argmax(p, axis=1) == y) for p in probas)
    if policy not in ("constant", "patience", "max_proba", "entropy"):
        assert free.accuracy >= best_stage
    assert search.at_cost_weight(1e3).normalized_cost == pytest.approx(cost[0])


def test_heuristic_scores():
    p1 = np.array([[0.6, 0.4], [0.5, 0.5]])
    p2 = np.array([[0.9, 0.1], [0.2, 0.8]])
    np.testing.assert_allclose(heuristic_score("max_proba", [p1, p2]), [0.9, 0.8])
    np.testing.assert_allclose(heuristic_score("entropy", [p1])[1], 0.0, atol=1e-12)
    np.testing.assert_array_equal(heuristic_score("patience", [p1, p2]), [2, 1])
    with pytest.raises(ValueError, match="Unknown heuristic"):
        heuristic_score("margin", [p1])


def test_shared_threshold_table_matches_rule_by_rule_exits():
    rng = np.random.default_rng(3)
    scores = rng.random((3, 200))
    thresholds, exit_table = shared_threshold_table(scores)
    assert thresholds[-1] == np.inf
    for t, exits in zip(thresholds[::17], exit_table[::17]):
        np.testing.assert_array_equal(exits, first_reaching(scores, np.full(3, t)))


def test_heuristic_threshold_is_the_exact_optimum_over_shared_thresholds():
    probas, y, cost = _three_stage_problem()
    search = make_policy_search("max_proba", probas, y, cost)
    lam = 0.3
    chosen = search.at_cost_weight(lam)
    scores = np.stack([np.max(p, axis=1) for p in probas[:2]])
    objective = [
        np.mean(np.argmax(np.stack(probas)[e, np.arange(len(y))], axis=1) != y)
        + lam * np.mean(cost[e])
        for e in (first_reaching(scores, np.full(2, t)) for t in np.unique(scores))
    ]
    assert (1 - chosen.accuracy) + lam * chosen.normalized_cost <= min(
        objective
    ) + 1e-12


def test_scheduled_thresholds_beat_every_single_threshold_change():
    """Coordinate-wise optimum: moving any one threshold cannot lower the risk."""
    rng = np.random.default_rng(0)
    scores = rng.random((3, 300))
    risk = rng.random((4, 300)) + np.array([0.0, 0.1, 0.2, 0.3])[:, None]
    weight = rng.random(300) + 0.5
    thresholds = schedule_thresholds(scores, risk, weight)

    def total(t):
        return weight @ risk[first_reaching(scores, t), np.arange(300)]

    best = total(thresholds)
    for stage in range(3):
        for value in [-np.inf, np.inf, *np.unique(scores[stage])]:
            trial = thresholds.copy()
            trial[stage] = value
            assert total(trial) >= best - 1e-9
    assert best <= total(np.full(3, np.inf))  # never worse than running all


def test_eenet_policy_routes_like_its_offline_exit_stage():
    """The rule after stage k recomputes the earlier scorers from the history
    it is given, so routing compacted rows gives the offline answer."""
    probas, y, cost = _three_stage_problem()
    policy = make_policy_search("eenet", probas, y, cost).fit(0.1)
    offline = policy.exit_stage(probas)
    assert len(np.unique(offline)) == 3
    keep = offline > 0
    later = policy.rules[1].exits([p[keep] for p in probas[:2]])
    np.testing.assert_array_equal(later, offline[keep] == 1)


def test_first_stage_policy_costs_the_first_stage():
    probas, y, cost = _three_stage_problem()
    result = evaluate_policy(first_stage_policy(3), probas, y, cost)
    assert result.normalized_cost == pytest.approx(cost[0])
    np.testing.assert_allclose(result.exit_rates, [1, 0, 0])


# -- a family of one's own -----------------------------------------------------
from dataclasses import dataclass as _dataclass  # noqa: E402

from skadaptive.policies import (  # noqa: E402
    PolicySearch,
    ScoredExits,
    ThresholdRule,
    check_policy,
)


@_dataclass
class _Margin(ThresholdRule):
    """Exit where the top-two probability margin reaches the threshold."""

    threshold: float

    def score(self, history):
        top2 = np.sort(history[-1], axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]


class _MarginSearch(PolicySearch):
    """A custom family: one shared margin threshold for a cost weight, and
    per-exit thresholds on the margin for a budget."""

    def _exits(self):
        scores = np.stack(
            [
                _Margin(0.0).score(self.stage_probas[: k + 1])
                for k in range(self.n_stages - 1)
            ]
        )
        return ScoredExits(
            scores,
            lambda t: CascadePolicy([_Margin(float(x)) for x in t]),
            kind="margin",
        )

    def fit(self, cost_weight):
        best = None
        for t in np.linspace(0, 1, 21):
            policy = CascadePolicy([_Margin(t) for _ in range(self.n_stages - 1)])
            risk = (
                self.stage_risk(cost_weight)[
                    policy.exit_stage(self.stage_probas), np.arange(len(self.y_encoded))
                ]
                @ self.weight
            )
            if best is None or risk < best[0]:
                best = (risk, policy)
        return best[1]

    def scored_exits(self, normalized_budget):
        return [self._exits()]


def test_a_custom_family_is_a_policy_search_subclass_passed_as_policy():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from skadaptive import AdaptiveCascadeClassifier

    X, y = load_digits(return_X_y=True)
    stages = [
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("lr", LogisticRegression(max_iter=500)),
    ]
    cascade = AdaptiveCascadeClassifier(
        stages, costs=[1, 5], cv=3, policy=_MarginSearch, random_state=0
    ).fit(X[:900], y[:900])
    assert all(isinstance(rule, _Margin) for rule in cascade.policy_.rules)
    budgeted = cascade.with_policy(budget=3.0)
    assert budgeted.policy_rows_cost_ <= 3.0 * (1 + 1e-9)
    kinds = budgeted.budget_search_["scores"].tolist()
    assert kinds == ["margin", "max_proba per exit"]
    assert budgeted.predict(X[900:]).shape == (len(X) - 900,)
    assert len(cascade.frontier_["accuracy"]) == 31
    # Not a classifier and not a family: a clear error, not scikit-learn's.
    with pytest.raises(TypeError, match="name of a policy family or a classifier"):
        check_policy(type("NotALearner", (), {"fit": lambda self: None})())


def test_a_custom_family_skips_stages_with_linear_jumps():
    """With skips=True, a family of the user's gets jumps learned by the
    linear learner (a search class is not a classifier to clone)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from skadaptive import AdaptiveCascadeClassifier

    X, y = load_digits(return_X_y=True)
    stages = [
        ("stump", DecisionTreeClassifier(max_depth=1, random_state=0)),
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("lr", LogisticRegression(max_iter=500)),
    ]
    for knob in ({"budget": 3.0}, {"cost_weight": 0.01}):
        cascade = AdaptiveCascadeClassifier(
            stages,
            costs=[0.5, 1, 5],
            cv=3,
            policy=_MarginSearch,
            skips=True,
            random_state=0,
            **knob,
        ).fit(X[:900], y[:900])
        if "budget" in knob:
            # A skipping candidate of the family's scores (named for whether
            # its learned jumps go past the next stage).
            assert any(
                str(name).startswith("margin with skips")
                for name in cascade.budget_search_["scores"]
            )
        else:
            assert all(isinstance(r, _Margin) for r in cascade.policy_.rules)
        path = cascade.predict_path(X[900:])
        assert path.shape == (len(X) - 900, 3) and path[:, 0].all()


def test_a_custom_rule_need_not_be_a_dataclass():
    """A rule of the user's has a score and a threshold attribute; moving its
    threshold (skips, routers) copies it rather than assuming a dataclass."""
    from _column_stages import ColumnStage, _middle_is_idle

    from skadaptive import AdaptiveCascadeClassifier

    class Margin(ThresholdRule):
        def __init__(self, threshold):
            self.threshold = threshold

        def score(self, history):
            top2 = np.sort(history[-1], axis=1)[:, -2:]
            return top2[:, 1] - top2[:, 0]

    class MarginSearch(PolicySearch):
        def fit(self, cost_weight):
            return CascadePolicy([Margin(0.5) for _ in range(self.n_stages - 1)])

    X, y = _middle_is_idle(600, 0)
    stages = [(n, ColumnStage(k)) for k, n in enumerate("abc")]
    for knob in ({"cost_weight": 0.003}, {"budget": 8.0}):
        cascade = AdaptiveCascadeClassifier(
            stages,
            costs=[1, 5, 20],
            policy=MarginSearch,
            skips=True,
            cv=3,
            random_state=0,
            **knob,
        ).fit(X, y)
        assert len(cascade.frontier_["accuracy"]) == 31
        assert cascade.predict(X[:50]).shape == (50,)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error"])
def test_evaluate_policy_scores_regression_answers_by_their_loss(loss):
    """On regression answers, evaluate_policy gives what the search gives:
    minus the mean loss, not an argmax over the answer's columns."""
    rng = np.random.default_rng(0)
    target = rng.normal(size=50)
    answers = [
        np.column_stack([target + rng.normal(scale=s, size=50), np.full(50, s)])
        for s in (1.0, 0.1)
    ]
    search = make_policy_search("disagreement", answers, target, [0.2, 1.0], loss=loss)
    policy = search.at_cost_weight(0.0).policy
    result = evaluate_policy(policy, answers, target, [0.2, 1.0], loss=loss)
    expected = search.evaluate(policy)
    assert result.accuracy == pytest.approx(expected.accuracy)
    assert result.accuracy < 0
