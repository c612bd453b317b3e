"""TreeEnsembleExits: exits after given numbers of trees of one ensemble."""

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from _stub_policies import ExitAt, MaxProbaAtLeast
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from skadaptive.engine import route
from skadaptive.stages import (
    MultiExitSource,
    exit_probas,
    measure_exit_seconds_per_row,
)
from skadaptive.stages._tree_exits import TreeEnsembleExits

EXITS = [2, 5, 12, 20]
# Binary results are bit-identical to scikit-learn's; multiclass softmax and
# a different summation order of forest votes differ by a few ulps at most.
ATOL = 1e-12


def _data(n_classes, n_samples=240, seed=0):
    return make_classification(
        n_samples=n_samples,
        n_features=8,
        n_informative=5,
        n_redundant=1,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )


def _gb(n_classes, **params):
    X, y = _data(n_classes)
    params = {"n_estimators": 20, "max_depth": 2, "random_state": 0, **params}
    return GradientBoostingClassifier(**params).fit(X, y), X


def _forest(cls, n_classes, labels=None, **params):
    X, y = _data(n_classes)
    if labels is not None:
        y = np.asarray(labels)[y]
    model = cls(n_estimators=20, max_depth=4, random_state=0, **params)
    return model.fit(X, y), X


def _manual_forest_proba(forest, X, n_trees):
    X = np.asarray(X, dtype=np.float32)
    return np.mean([t.predict_proba(X) for t in forest.estimators_[:n_trees]], axis=0)


class _CountingTree:
    """Stands in for a fitted tree's ``tree_``; records the rows it predicts."""

    def __init__(self, tree):
        self._tree = tree
        self.rows = []

    def predict(self, X):
        self.rows.append(X.shape[0])
        return self._tree.predict(X)

    def __getattr__(self, name):
        return getattr(self._tree, name)


def _count_rows(model):
    """Deep copy of ``model`` whose trees count rows; returns (copy, counters)."""
    model = copy.deepcopy(model)
    trees = np.ravel(model.estimators_)
    counters = []
    for tree in trees:
        tree.tree_ = _CountingTree(tree.tree_)
        counters.append(tree.tree_)
    return model, counters


def _expected_routing(probas, thresholds):
    n_rows = len(probas[0])
    stage = np.full(n_rows, len(probas) - 1)
    undecided = np.ones(n_rows, dtype=bool)
    for k, threshold in enumerate(thresholds):
        here = undecided & (probas[k].max(axis=1) >= threshold)
        stage[here] = k
        undecided &= ~here
    proba = np.stack([probas[s][i] for i, s in enumerate(stage)])
    return proba, stage


# -- exactness ---------------------------------------------------------------


@pytest.mark.parametrize(
    "n_classes, params",
    [
        (2, {}),
        (2, {"loss": "exponential"}),
        (2, {"init": "zero"}),
        (3, {}),
        (3, {"init": "zero", "subsample": 0.7}),
        (3, {"init": LogisticRegression()}),
    ],
)
def test_gradient_boosting_matches_staged_predict_proba(n_classes, params):
    model, X = _gb(n_classes, **params)
    source = TreeEnsembleExits(model, EXITS)
    staged = list(model.staged_predict_proba(X))
    probas = exit_probas(source, X)
    for n_trees, proba in zip(EXITS, probas):
        assert proba.dtype == np.float64
        np.testing.assert_allclose(proba, staged[n_trees - 1], rtol=0, atol=ATOL)
    np.testing.assert_allclose(probas[-1], model.predict_proba(X), rtol=0, atol=ATOL)


def test_gradient_boosting_after_early_stopping_uses_n_estimators_():
    X, y = _data(2, n_samples=400)
    model = GradientBoostingClassifier(
        n_estimators=500, n_iter_no_change=2, validation_fraction=0.3, random_state=0
    ).fit(X, y)
    total = model.n_estimators_
    assert total < 500
    source = TreeEnsembleExits(model, [1, total])
    np.testing.assert_allclose(
        exit_probas(source, X)[-1], model.predict_proba(X), rtol=0, atol=ATOL
    )
    with pytest.raises(ValueError, match=f"number of trees \\({total}\\)"):
        TreeEnsembleExits(model, [1, 500])


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_forest_matches_mean_of_first_trees(cls, n_classes):
    model, X = _forest(cls, n_classes)
    source = TreeEnsembleExits(model, EXITS)
    probas = exit_probas(source, X)
    for n_trees, proba in zip(EXITS, probas):
        expected = _manual_forest_proba(model, X, n_trees)
        np.testing.assert_allclose(proba, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(probas[-1], model.predict_proba(X), rtol=0, atol=ATOL)


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_with_string_labels(cls):
    labels = ["cat", "dog", "emu"]
    model, X = _forest(cls, 3, labels=labels)
    source = TreeEnsembleExits(model, EXITS)
    assert list(source.classes_) == labels
    probas = exit_probas(source, X)
    np.testing.assert_allclose(probas[-1], model.predict_proba(X), rtol=0, atol=ATOL)
    result = route(source, ExitAt(0), X, n_classes=3)
    predicted = source.classes_[result.proba.argmax(axis=1)]
    first = _manual_forest_proba(model, X, EXITS[0])
    np.testing.assert_array_equal(predicted, np.asarray(labels)[first.argmax(axis=1)])


def test_gradient_boosting_with_string_labels():
    X, y = _data(3)
    y = np.array(["a", "b", "c"])[y]
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    source = TreeEnsembleExits(FrozenEstimator(model), EXITS)
    assert list(source.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(
        exit_probas(source, X)[-1], model.predict_proba(X), rtol=0, atol=ATOL
    )


def test_sparse_and_missing_values():
    model, X = _gb(2)
    source = TreeEnsembleExits(model, EXITS)
    X_sparse = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    np.testing.assert_allclose(
        exit_probas(source, X_sparse)[-1],
        model.predict_proba(X_sparse),
        rtol=0,
        atol=ATOL,
    )
    X, y = _data(2)
    X[::7, 1] = np.nan
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    source = TreeEnsembleExits(forest, EXITS)
    np.testing.assert_allclose(
        exit_probas(source, X)[-1], forest.predict_proba(X), rtol=0, atol=ATOL
    )
    with pytest.raises(ValueError, match="NaN"):
        TreeEnsembleExits(model, EXITS).run_stage(0, X, None)


# -- routing and compaction --------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: _gb(2),
        lambda: _gb(3),
        lambda: _forest(RandomForestClassifier, 3),
        lambda: _forest(ExtraTreesClassifier, 2),
    ],
)
def test_route_reproduces_each_rows_exit(make):
    model, X = make()
    source = TreeEnsembleExits(model, EXITS)
    probas = exit_probas(source, X)
    for stage in range(len(EXITS)):
        result = route(source, ExitAt(stage), X, n_classes=len(source.classes_))
        np.testing.assert_array_equal(result.exit_stage, stage)
        np.testing.assert_allclose(result.proba, probas[stage], rtol=0, atol=ATOL)
    thresholds = [np.quantile(p.max(axis=1), 0.6) for p in probas[:-1]]
    expected_proba, expected_stage = _expected_routing(probas, thresholds)
    for batch_size in (None, 37):
        result = route(
            source,
            MaxProbaAtLeast(thresholds),
            X,
            n_classes=len(source.classes_),
            batch_size=batch_size,
        )
        np.testing.assert_array_equal(result.exit_stage, expected_stage)
        np.testing.assert_allclose(result.proba, expected_proba, rtol=0, atol=ATOL)
    assert len(np.unique(expected_stage)) > 1


@pytest.mark.parametrize(
    "make", [lambda: _gb(3), lambda: _forest(RandomForestClassifier, 2)]
)
def test_later_stages_see_only_running_rows(make):
    model, X = make()
    probas = exit_probas(TreeEnsembleExits(model, EXITS), X)
    thresholds = [np.quantile(p.max(axis=1), 0.5) for p in probas[:-1]]
    _, expected_stage = _expected_routing(probas, thresholds)

    counted, counters = _count_rows(model)
    source = TreeEnsembleExits(counted, EXITS)
    # The counting trees are Python objects: scikit-learn's compiled stage loop
    # cannot call them, so count through the public per-tree path (without the
    # probes of a few rows that would decide it and a forest's direct calls).
    source._compiled = False
    source._direct = False
    route(source, MaxProbaAtLeast(thresholds), X, n_classes=len(source.classes_))
    boosting = isinstance(model, GradientBoostingClassifier)
    trees_per_iteration = model.estimators_.shape[1] if boosting else 1
    starts = [0, *EXITS[:-1]]
    for stage, (start, stop) in enumerate(zip(starts, EXITS)):
        running = int(np.sum(expected_stage >= stage))
        for tree in range(start * trees_per_iteration, stop * trees_per_iteration):
            assert counters[tree].rows == [running]
    assert sum(counters[-1].rows) < len(X)


class _RecordingRows:
    """A source wrapper that records what the engine passes as ``X_rows``."""

    def __init__(self, source, rows_in_state):
        self.source = source
        self.n_stages = source.n_stages
        self.classes_ = source.classes_
        self.rows_in_state = rows_in_state
        self.seen = []

    def run_stage(self, stage, X_rows, state):
        self.seen.append(None if X_rows is None else len(X_rows))
        return self.source.run_stage(stage, X_rows, state)

    def keep_rows(self, state, mask):
        return self.source.keep_rows(state, mask)


@pytest.mark.parametrize("rows_in_state", [True, False])
def test_engine_passes_rows_after_the_first_stage_only_where_the_source_reads_them(
    rows_in_state,
):
    model, X = _gb(3)
    plain = TreeEnsembleExits(model, EXITS)
    assert plain.rows_in_state
    probas = exit_probas(plain, X)
    thresholds = [np.quantile(p.max(axis=1), 0.5) for p in probas[:-1]]
    expected_proba, expected_stage = _expected_routing(probas, thresholds)
    source = _RecordingRows(plain, rows_in_state)
    result = route(source, MaxProbaAtLeast(thresholds), X, n_classes=3)
    np.testing.assert_array_equal(result.exit_stage, expected_stage)
    np.testing.assert_allclose(result.proba, expected_proba)
    running = [int(np.sum(expected_stage >= k)) for k in range(len(EXITS))]
    if rows_in_state:
        # No copy of the deferred rows of X for stages that read the state.
        assert source.seen == [len(X)] + [None] * (len(source.seen) - 1)
    else:
        assert source.seen == running[: len(source.seen)]


# -- state -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda: _gb(3), lambda: _forest(ExtraTreesClassifier, 3)]
)
@pytest.mark.parametrize("sparse", [False, True])
def test_keep_rows_selects_the_state_of_masked_rows(make, sparse):
    model, X = make()
    if sparse:
        X = sp.csr_array(X)
    source = TreeEnsembleExits(model, EXITS)
    probas = exit_probas(source, X)
    mask = np.arange(X.shape[0]) % 3 != 0
    _, state = source.run_stage(0, X, None)
    kept = source.keep_rows(state, mask)
    proba, state_after = source.run_stage(1, X[np.flatnonzero(mask)], kept)
    np.testing.assert_allclose(proba, probas[1][mask], rtol=0, atol=ATOL)
    # run_stage does not modify the state it continues from.
    again, _ = source.run_stage(1, X[np.flatnonzero(mask)], kept)
    np.testing.assert_array_equal(again, proba)
    empty = source.keep_rows(state_after, np.zeros(mask.sum(), dtype=bool))
    assert empty.score.shape[0] == 0 and empty.X.shape[0] == 0
    with pytest.raises(ValueError, match="rows"):
        source.run_stage(1, X, kept)
    with pytest.raises(ValueError, match="state"):
        source.run_stage(1, X, None)


def test_costs_and_protocol():
    model, X = _forest(RandomForestClassifier, 2)
    source = TreeEnsembleExits(model, EXITS)
    assert isinstance(source, MultiExitSource)
    assert source.n_stages == 4
    np.testing.assert_array_equal(source.tree_counts, [2, 3, 7, 8])
    np.testing.assert_array_equal(source.default_costs(), [2.0, 3.0, 7.0, 8.0])
    seconds = measure_exit_seconds_per_row(source, X, repeats=1, max_rows=50)
    assert seconds.shape == (4,) and np.all(seconds > 0)
    restored = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(
        exit_probas(restored, X)[1], exit_probas(source, X)[1]
    )


def test_boosting_redoes_the_compiled_loop_check_after_unpickling():
    model, X = _gb(3)
    source = TreeEnsembleExits(model, EXITS)
    before = exit_probas(source, X)
    assert source._compiled is not None  # decided on first use
    restored = pickle.loads(pickle.dumps(source))
    # it depends on the scikit-learn that loads the model: decided again
    assert restored._compiled is None
    for a, b in zip(exit_probas(restored, X), before):
        np.testing.assert_array_equal(a, b)
    assert restored._compiled == source._compiled


# -- refusals ----------------------------------------------------------------


def test_hist_gradient_boosting_is_refused_with_reason():
    X, y = _data(2)
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    with pytest.raises(TypeError, match="private attributes") as info:
        TreeEnsembleExits(model, [5])
    assert "GradientBoostingClassifier, RandomForestClassifier" in str(info.value)


def test_other_estimators_and_bad_exits_are_refused():
    X, y = _data(2)
    with pytest.raises(TypeError, match="supports"):
        TreeEnsembleExits(LogisticRegression().fit(X, y), [1])
    from sklearn.ensemble import HistGradientBoostingRegressor

    with pytest.raises(TypeError, match="is not supported as a multi-exit"):
        TreeEnsembleExits(HistGradientBoostingRegressor(max_iter=3).fit(X, y), [3])
    # regressors are supported: their exits answer (prediction, uncertainty)
    regressor = GradientBoostingRegressor(n_estimators=3).fit(X, y)
    assert TreeEnsembleExits(regressor, [3]).regression
    with pytest.raises(NotFittedError):
        TreeEnsembleExits(RandomForestClassifier(), [100])
    model, _ = _forest(RandomForestClassifier, 2)
    for exits in ([5, 5, 20], [0, 20], [5, 10], [], [[5, 20]], ["a"], [2.5, 20]):
        with pytest.raises(ValueError, match="exits"):
            TreeEnsembleExits(model, exits)
    with pytest.raises(ValueError, match="booleans"):  # True would be 1 tree
        TreeEnsembleExits(model, [True, 20])
    source = TreeEnsembleExits(model, np.array([5.0, 20.0]))
    assert source.exits == (5, 20)
    with pytest.raises(IndexError):
        source.run_stage(2, X, None)
    multi = RandomForestClassifier(n_estimators=3).fit(X, np.c_[y, y])
    with pytest.raises(ValueError, match="Multi-output"):
        TreeEnsembleExits(multi, [3])
    with pytest.raises(ValueError, match="features"):
        source.run_stage(0, X[:, :3], None)


def test_compiled_stage_loop_gives_the_public_paths_answers():
    """Boosting sums its trees with scikit-learn's compiled loop where it agrees
    with the public per-tree path; the answers are the same either way."""
    model, X = _gb(3)
    _assert_fast_path_agrees(model, X, "_compiled")


def _assert_fast_path_agrees(model, X, flag):
    """The source takes its fast path (``flag`` decided True on first use) and
    answers as one kept on the public path; returns the fast source."""
    fast = TreeEnsembleExits(model, EXITS)
    fast_probas = exit_probas(fast, X)
    assert getattr(fast, flag) is True
    public = TreeEnsembleExits(model, EXITS)
    setattr(public, flag, False)
    for got, expected in zip(fast_probas, exit_probas(public, X)):
        np.testing.assert_array_equal(got, expected)
    return fast


@pytest.mark.parametrize("kind", [RandomForestClassifier, RandomForestRegressor])
def test_forest_trees_called_directly_give_the_public_paths_answers(kind):
    """A forest's trees are called through ``tree_`` where that agrees with
    their public method on a few rows; the answers are the same either way."""
    X, y = _data(3)
    model = kind(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    direct = _assert_fast_path_agrees(model, X, "_direct")
    restored = pickle.loads(pickle.dumps(direct))
    assert restored._direct is None  # decided again by the scikit-learn that loads


def test_forest_trees_keep_the_public_path_where_tree_disagrees(monkeypatch):
    """A scikit-learn whose ``predict_proba`` is not ``tree_.predict`` (as
    before trees stored class fractions) keeps the public per-tree path."""
    X, y = _data(3)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    original = DecisionTreeClassifier.predict_proba

    def smoothed(self, X, check_input=True):
        proba = original(self, X, check_input=check_input)
        return 0.5 * proba + 0.5 / proba.shape[1]

    monkeypatch.setattr(DecisionTreeClassifier, "predict_proba", smoothed)
    source = TreeEnsembleExits(model, EXITS)
    last = exit_probas(source, X)[-1]
    assert source._direct is False
    np.testing.assert_allclose(last, model.predict_proba(X), rtol=0, atol=1e-12)


def test_a_subclass_that_overrides_run_stage_still_gets_the_rows():
    model, X = _gb(3)

    class Reading(TreeEnsembleExits):
        def run_stage(self, stage, X_rows, state):
            assert X_rows is not None  # it may read the rows at every stage
            return super().run_stage(stage, X_rows, state)

    assert TreeEnsembleExits(model, EXITS).rows_in_state
    source = Reading(model, EXITS)
    assert not source.rows_in_state
    probas = exit_probas(TreeEnsembleExits(model, EXITS), X)
    thresholds = [np.quantile(p.max(axis=1), 0.5) for p in probas[:-1]]
    _, expected_stage = _expected_routing(probas, thresholds)
    result = route(source, MaxProbaAtLeast(thresholds), X, n_classes=3)
    np.testing.assert_array_equal(result.exit_stage, expected_stage)


def test_exponential_loss_exits_on_unbalanced_classes():
    # Balanced classes have a prior of one half, whose logit is 0 whether
    # halved or not; unbalanced ones show the exponential loss's init.
    X, y = make_classification(
        n_samples=300, n_features=8, weights=[0.8, 0.2], random_state=0
    )
    model = GradientBoostingClassifier(
        loss="exponential", n_estimators=10, max_depth=2, random_state=0
    ).fit(X, y)
    staged = list(model.staged_predict_proba(X))
    probas = exit_probas(TreeEnsembleExits(model, [1, 10]), X)
    np.testing.assert_allclose(probas[0], staged[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(probas[1], model.predict_proba(X), rtol=0, atol=1e-12)
