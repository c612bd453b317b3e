"""ChainExits: a chain of blocks with a classifier head after each."""

import numpy as np
import pytest
import scipy.sparse as sp
from _stub_policies import ExitAt, MaxProbaAtLeast
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skadaptive.engine import route
from skadaptive.stages import ChainExits, MultiExitSource, exit_probas


class _Counting(TransformerMixin, BaseEstimator):
    """Adds a fitted offset; records the rows of every ``transform`` call."""

    def __init__(self, shift=1.0):
        self.shift = shift

    def fit(self, X, y=None, sample_weight=None):
        self.offset_ = self.shift * np.average(X, axis=0, weights=sample_weight)
        self.n_features_in_ = X.shape[1]
        self.rows_ = []
        self.saw_weights_ = sample_weight is not None
        return self

    def transform(self, X):
        self.rows_.append(X.shape[0])
        return np.tanh(X - self.offset_)


def _data(n_classes, seed=0):
    X, y = make_classification(
        n_samples=200,
        n_features=6,
        n_informative=4,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def _chain(n_classes, labels=None):
    X, y = _data(n_classes)
    if labels is not None:
        y = np.asarray(labels)[y]
    blocks = [StandardScaler(), _Counting(), PCA(n_components=3, random_state=0)]
    heads = [LogisticRegression(), LogisticRegression(), LogisticRegression()]
    return ChainExits(blocks, heads).fit(X, y), X, y


def _manual_probas(source, X):
    probas, Z = [], X
    for block, head in zip(source.blocks_, source.heads_):
        if block not in (None, "passthrough"):
            Z = block.transform(Z)
        probas.append(head.predict_proba(Z))
    return probas


@pytest.mark.parametrize("n_classes", [2, 3])
def test_each_exit_is_its_head_on_the_chained_blocks(n_classes):
    source, X, y = _chain(n_classes)
    assert isinstance(source, MultiExitSource)
    assert source.n_stages == 3
    assert source.default_costs() is None  # no natural unit: measured
    for got, expected in zip(exit_probas(source, X), _manual_probas(source, X)):
        assert got.dtype == np.float64 and got.shape == (len(X), n_classes)
        np.testing.assert_array_equal(got, expected)


def test_chain_fit_fits_block_k_on_block_k_minus_1_output():
    X, y = _data(3)
    source = ChainExits(
        [StandardScaler(), PCA(n_components=2)],
        [LogisticRegression(), DecisionTreeClassifier(random_state=0)],
    ).fit(X, y)
    scaled = StandardScaler().fit_transform(X)
    pca = PCA(n_components=2).fit(scaled)
    np.testing.assert_allclose(source.blocks_[1].components_, pca.components_)
    head = DecisionTreeClassifier(random_state=0).fit(pca.transform(scaled), y)
    np.testing.assert_array_equal(
        source.heads_[1].predict_proba(pca.transform(scaled)),
        head.predict_proba(pca.transform(scaled)),
    )


def test_chain_fit_clones_and_keeps_frozen_members_as_given():
    X, y = _data(2)
    scaler = StandardScaler().fit(X)
    frozen_block = FrozenEstimator(scaler)
    frozen_head = FrozenEstimator(LogisticRegression().fit(scaler.transform(X), y))
    block, head = PCA(n_components=2), LogisticRegression()
    source = ChainExits([frozen_block, block], [frozen_head, head]).fit(X, y)
    assert source.blocks_[0] is frozen_block and source.heads_[0] is frozen_head
    assert source.blocks_[1] is not block and not hasattr(block, "components_")
    assert source.heads_[1] is not head and not hasattr(head, "coef_")
    expected = clone(block).fit(scaler.transform(X))
    np.testing.assert_allclose(source.blocks_[1].components_, expected.components_)


def test_chain_fit_passes_sample_weight():
    X, y = _data(2)
    weights = np.linspace(0.1, 2.0, len(y))
    source = ChainExits(
        [_Counting(), "passthrough"],
        [LogisticRegression(), LogisticRegression(C=0.1)],
    ).fit(X, y, sample_weight=weights)
    assert source.blocks_[0].saw_weights_
    Z = source.blocks_[0].transform(X)
    expected = LogisticRegression(C=0.1).fit(Z, y, sample_weight=weights)
    np.testing.assert_allclose(source.heads_[1].coef_, expected.coef_)
    # like a cascade stage: a member that cannot take the weights is fitted
    # without them, and says so
    head = KNeighborsClassifier()
    with pytest.warns(UserWarning, match=r"Head 0 \(KNeighborsClassifier\) does"):
        weighted = ChainExits([None], [head]).fit(X, y, sample_weight=weights)
    unweighted = ChainExits([None], [head]).fit(X, y)
    np.testing.assert_array_equal(
        weighted.heads_[0].predict_proba(X), unweighted.heads_[0].predict_proba(X)
    )
    with pytest.warns(UserWarning, match=r"Block 0 \(PCA\) does not accept"):
        ChainExits([PCA(2)], [LogisticRegression()]).fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_route_reproduces_each_rows_exit_and_compacts(n_classes):
    source, X, _ = _chain(n_classes, labels=["x", "y", "z"][:n_classes])
    probas = exit_probas(source, X)
    for stage in range(source.n_stages):
        result = route(source, ExitAt(stage), X, n_classes=n_classes)
        np.testing.assert_array_equal(result.exit_stage, stage)
        np.testing.assert_array_equal(result.proba, probas[stage])

    thresholds = [np.quantile(p.max(axis=1), 0.5) for p in probas[:-1]]
    stage = np.full(len(X), 2)
    undecided = np.ones(len(X), dtype=bool)
    for k, threshold in enumerate(thresholds):
        here = undecided & (probas[k].max(axis=1) >= threshold)
        stage[here] = k
        undecided &= ~here
    counting = source.blocks_[1]
    counting.rows_.clear()
    result = route(source, MaxProbaAtLeast(thresholds), X, n_classes=n_classes)
    np.testing.assert_array_equal(result.exit_stage, stage)
    expected = np.stack([probas[s][i] for i, s in enumerate(stage)])
    np.testing.assert_allclose(result.proba, expected, rtol=0, atol=1e-12)
    # Block 1 runs once, on the rows that head 0 deferred only.
    assert counting.rows_ == [int(np.sum(stage >= 1))]
    assert 0 < counting.rows_[0] < len(X)


def _sparse_output(X):
    return sp.coo_matrix(np.where(X > 0, X, 0.0))


@pytest.mark.parametrize(
    "block",
    [
        FunctionTransformer(lambda X: X),
        FunctionTransformer(sp.csr_matrix, accept_sparse=True),
        FunctionTransformer(_sparse_output),
    ],
    ids=["dense", "csr", "coo"],
)
def test_keep_rows_with_masks(block):
    X, y = _data(3)
    source = ChainExits(
        [block, StandardScaler(with_mean=False)],
        [LogisticRegression(), LogisticRegression()],
    ).fit(X, y)
    probas = exit_probas(source, X)
    mask = np.arange(len(X)) % 4 != 1
    _, state = source.run_stage(0, X, None)
    kept = source.keep_rows(state, mask)
    assert kept.shape[0] == mask.sum()
    proba, _ = source.run_stage(1, X[mask], kept)
    np.testing.assert_allclose(proba, probas[1][mask], rtol=0, atol=1e-12)
    assert source.keep_rows(None, mask) is None
    with pytest.raises(ValueError, match="rows"):
        source.run_stage(1, X, kept)


def test_invalid_chains_are_refused():
    X, y = _data(3)
    head = LogisticRegression()
    with pytest.raises(ValueError, match="same length"):
        ChainExits([None, None], [head]).fit(X, y)
    with pytest.raises(ValueError, match="same length"):
        ChainExits([], []).fit(X, y)
    with pytest.raises(TypeError, match="transform"):
        ChainExits([LogisticRegression()], [head]).fit(X, y)
    with pytest.raises(TypeError, match="predict_proba"):
        ChainExits([None], [StandardScaler()]).fit(X, y)
    relabelled = FrozenEstimator(
        LogisticRegression().fit(X, np.array(["a", "b", "c"])[y])
    )
    ChainExits([None, None], [head, head]).fit(X, y)  # same classes: fine
    with pytest.raises(ValueError, match="same classes"):
        ChainExits([None, None], [head, relabelled]).fit(X, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ChainExits([StandardScaler()], [head]).run_stage(0, X, None)
    source = ChainExits(["passthrough"], [head]).fit(X, y)
    with pytest.raises(ValueError, match="state"):
        ChainExits([None, None], [head, head]).fit(X, y).run_stage(1, X, None)
    with pytest.raises(IndexError):
        source.run_stage(1, X, None)


def test_a_chains_tags_follow_the_members_that_see_the_rows():
    """A chain reported scikit-learn's default tags (no NaN, no sparse rows),
    so an early exit refused NaN that its imputing block clears, and sparse
    rows that its heads take."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.utils import get_tags

    from skadaptive import EarlyExitRegressor
    from skadaptive.stages import ChainExitsRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    X[::7, 1] = np.nan
    imputing = ChainExitsRegressor(
        [SimpleImputer(), "passthrough"],
        [Ridge(), DecisionTreeRegressor(max_depth=3, random_state=0)],
    )
    assert get_tags(imputing).input_tags.allow_nan
    fitted = EarlyExitRegressor(imputing, costs=[1.0, 2.0], cv=3).fit(X, y)
    assert np.all(np.isfinite(fitted.predict(X)))
    # A head that refuses NaN behind a block that passes it on: refused.
    scaled = ChainExitsRegressor([StandardScaler()], [Ridge()])
    assert not get_tags(scaled).input_tags.allow_nan
    # Rows passed through: the head's own tag (Ridge's says sparse rows from
    # scikit-learn 1.6.1 on).
    passing = ChainExitsRegressor(["passthrough"], [Ridge()])
    sparse = get_tags(Ridge()).input_tags.sparse
    assert get_tags(passing).input_tags.sparse == sparse
    imputed = ChainExitsRegressor([SimpleImputer()], [Ridge()])
    assert (
        get_tags(imputed).input_tags.sparse
        == get_tags(SimpleImputer()).input_tags.sparse
    )
    assert not get_tags(scaled).input_tags.positive_only
    counts = ChainExits(["passthrough"], [MultinomialNB()])
    assert get_tags(counts).input_tags.positive_only


def test_a_chain_alone_follows_scikit_learns_fitted_conventions():
    """predict before fit raised AttributeError ('classes_'), and a fitted
    chain had no n_features_in_ (check_estimator said both)."""
    from sklearn.exceptions import NotFittedError

    X, y = make_classification(200, n_features=6, random_state=0)
    chain = ChainExits([PCA(4), PCA(2)], [LogisticRegression()] * 2)
    with pytest.raises(NotFittedError):
        chain.predict(X)
    assert not hasattr(chain, "n_features_in_")
    assert chain.fit(X, y).n_features_in_ == 6
    # Block 0 passing the rows through: head 0 takes them.
    through = ChainExits(["passthrough", PCA(2)], [LogisticRegression()] * 2)
    assert through.fit(X, y).n_features_in_ == 6
