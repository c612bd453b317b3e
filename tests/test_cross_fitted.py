"""The hash that picks a kept fold model for each row (``refit=False``)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from skadaptive.stages._cross_fitted import CrossFitted, content_folds, row_hashes

values = st.sampled_from([0.0, -0.0, 1.0, -2.5, 1e-300, 3.0e12, np.nan, np.inf])


@settings(max_examples=60, deadline=None)
@given(
    rows=arrays(
        np.float64, st.tuples(st.integers(1, 30), st.integers(1, 5)), elements=values
    ),
    seed=st.integers(0, 2**16),
)
def test_a_rows_hash_depends_on_its_content_alone(rows, seed):
    hashes = row_hashes(rows)
    assert hashes.shape == (len(rows),) and hashes.dtype == np.uint64
    # Any order, any batch, any container: the same hash for the same row.
    order = np.random.default_rng(seed).permutation(len(rows))
    assert_array_equal(row_hashes(rows[order]), hashes[order])
    cut = len(rows) // 2
    assert_array_equal(
        np.concatenate([row_hashes(rows[:cut]), row_hashes(rows[cut:])]), hashes
    )
    assert_array_equal(row_hashes(pd.DataFrame(rows)), hashes)
    assert_array_equal(row_hashes(rows.tolist()), hashes)
    finite = np.isfinite(rows).all(axis=1)
    if finite.any():
        assert_array_equal(row_hashes(sp.csr_matrix(rows[finite])), hashes[finite])
    # Equal rows (-0.0 equals 0.0, NaN equals NaN) share a hash, others not.
    canonical = np.nan_to_num(rows + 0.0, nan=7.7e307)
    _, group = np.unique(canonical, axis=0, return_inverse=True)
    assert len(np.unique(hashes)) == len(np.unique(group))
    for g in np.unique(group):
        assert len(np.unique(hashes[group.ravel() == g])) == 1


def test_equal_content_in_any_container_or_type_has_one_hash():
    texts = ["hello world", "foo bar", "baz", "hello world"]
    assert_array_equal(row_hashes(np.array(texts)), row_hashes(texts))
    frame = pd.DataFrame(
        {"s": list("abcde"), "i": [1, 2, 3, 4, 5], "x": [2.5, 0, 1, 1, 0]}
    )
    hashes = row_hashes(frame)
    assert_array_equal(row_hashes(frame.to_numpy()), hashes)
    assert_array_equal(row_hashes(frame.astype({"i": float})), hashes)
    assert_array_equal(row_hashes(frame.values.tolist()), hashes)
    assert_array_equal(row_hashes([{"a": 1, "b": 2}]), row_hashes([{"b": 2, "a": 1}]))
    images = np.random.default_rng(0).normal(size=(4, 2, 2))
    assert_array_equal(row_hashes(images), row_hashes(images.reshape(4, -1)))
    nullable = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64")})
    assert_array_equal(
        row_hashes(nullable), row_hashes(np.array([[1.0], [np.nan], [3.0]]))
    )
    # Nullable columns with NA beside numbers; the same texts in other columns;
    # lists of numbers as fast as arrays (one value at a time was 1,000 times
    # slower); NumPy's booleans as numbers.
    with_na = pd.DataFrame(
        {"i": pd.array([1, None, 3], dtype="Int64"), "f": [0.5, 1.5, 2.5]}
    )
    assert_array_equal(
        row_hashes(with_na), row_hashes(np.array([[1, 0.5], [np.nan, 1.5], [3, 2.5]]))
    )
    swapped = row_hashes(pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"]}))
    assert swapped[0] != swapped[1]
    numbers = np.random.default_rng(0).normal(size=(50, 4))
    assert_array_equal(row_hashes(numbers.tolist()), row_hashes(numbers))
    cells = np.empty((2, 2), dtype=object)
    cells[:, 0], cells[:, 1] = ["a", "b"], [np.True_, 2.5]
    assert_array_equal(row_hashes(cells), row_hashes([["a", True], ["b", 2.5]]))
    moments = pd.DataFrame(
        {
            "t": pd.to_datetime(["2024-01-01", "2024-06-01", None]),
            "s": ["a", "b", "c"],
        }
    )
    hashes = row_hashes(moments)
    assert len(set(hashes)) == 3
    assert_array_equal(row_hashes(moments.to_numpy()), hashes)
    assert_array_equal(row_hashes(moments.values.tolist()), hashes)
    duplicated = sp.csr_matrix(
        (np.array([0.5, 0.5, 2.0]), np.array([0, 0, 2]), np.array([0, 3, 3])),
        shape=(2, 3),
    )
    assert_array_equal(row_hashes(duplicated), row_hashes(duplicated.toarray()))


def test_folds_are_of_equal_size_with_copies_together_and_new_rows_follow():
    X = np.random.default_rng(0).normal(size=(3_000, 4))
    X = np.vstack([X, X[:600]])  # 600 rows twice
    folds, boundaries = content_folds(X, 5)
    counts = np.bincount(folds, minlength=5)
    assert counts.sum() == 3_600 and counts.max() - counts.min() <= 2 * 2
    assert_array_equal(folds[3_000:], folds[:600])
    stage = CrossFitted([None] * 5, boundaries)
    assert_array_equal(stage.fold_of(X[::-1]), folds[::-1])


def test_the_wrapper_answers_every_way_from_each_rows_fold_model():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.utils.validation import check_is_fitted

    from skadaptive import AdaptiveCascadeClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    folds, boundaries = content_folds(X, 3)
    stage = CrossFitted(
        [
            LogisticRegression(C=c).fit(X[folds != k], y[folds != k])
            for k, c in enumerate([1, 0.01, 100])
        ],
        boundaries,
    )
    for method in (
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
    ):
        expected = np.concatenate(
            [getattr(stage.models[f], method)(row[None]) for f, row in zip(folds, X)]
        )
        np.testing.assert_allclose(getattr(stage, method)(X), expected)
    assert stage.score(X, y) == np.mean(stage.predict(X) == y)
    check_is_fitted(stage)
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(stage))  # a clone's fold models are not fitted
    # Attributes that differ by fold are not passed off as the stage's.
    assert not hasattr(stage, "coef_")
    with pytest.raises(TypeError, match="not fitted again"):
        stage.fit(X, y)
    regressor = CrossFitted([Ridge().fit(X, X[:, 0]) for _ in range(2)], boundaries[:1])
    assert not hasattr(regressor, "predict_proba")
    assert regressor.score(X, X[:, 0]) > 0.99
    # A kept stage can be given, frozen, to another cascade.
    again = AdaptiveCascadeClassifier(
        [("kept", FrozenEstimator(stage)), ("lr", LogisticRegression())],
        costs=[1, 5],
        cv=3,
    ).fit(X, y)
    np.testing.assert_allclose(
        again.estimators_[0].predict_proba(X), stage.predict_proba(X)
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_rows=st.integers(3, 40),
    n_folds=st.integers(2, 5),
)
def test_folds_cut_weight_k_where_k_copies_and_weight_0_where_no_row(
    seed, n_rows, n_folds
):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, (n_rows, 2)).astype(float)  # some equal rows
    weight = rng.integers(0, 4, n_rows)
    weight[0] = 1
    _, boundaries = content_folds(X, n_folds, weight.astype(float))
    _, copies = content_folds(np.repeat(X, weight, axis=0), n_folds)
    assert_array_equal(boundaries, copies)
    kept = weight > 0
    _, without = content_folds(X, n_folds, kept.astype(float))
    assert_array_equal(without, content_folds(X[kept], n_folds)[1])
    # Weights of one are no weights.
    assert_array_equal(
        content_folds(X, n_folds, np.ones(n_rows))[1], content_folds(X, n_folds)[1]
    )


def test_kept_fold_models_weigh_a_row_as_its_copies():
    """refit=False: weight k on a row fits the fold models and the policy as
    k copies of it would, and weight 0 as the rows without it."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    from skadaptive import AdaptiveCascadeClassifier

    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        random_state=0,
    )
    w = np.random.default_rng(0).integers(0, 4, len(X))

    def fit(X, y, **kwargs):
        return AdaptiveCascadeClassifier(
            [
                ("nb", GaussianNB()),
                ("lr", LogisticRegression(max_iter=5000, tol=1e-12)),
            ],
            costs=[1, 10],
            cv=3,
            refit=False,
            random_state=0,
        ).fit(X, y, **kwargs)

    for weighted, repeated in [
        (fit(X, y, sample_weight=w), fit(np.repeat(X, w, 0), np.repeat(y, w))),
        (fit(X, y, sample_weight=(w > 0) * 1.0), fit(X[w > 0], y[w > 0])),
    ]:
        for a, b in zip(weighted.estimators_, repeated.estimators_):
            assert_array_equal(a.boundaries, b.boundaries)
        assert_array_equal(weighted.predict_exit(X), repeated.predict_exit(X))
        assert weighted.policy_rows_cost_ == pytest.approx(repeated.policy_rows_cost_)
        assert weighted.expected_cost_ == pytest.approx(repeated.expected_cost_)


@pytest.mark.parametrize("heavy", [0, 4, 8, 12])
def test_a_heavy_row_does_not_empty_a_fold(heavy):
    """Four distinct rows, four copies each, one of weight 10: the cut of the
    first fold falls among the heavy row's copies; the next fold starts with
    the next distinct rows instead of leaving one empty (which refused the
    fit), as it does for the ten copies the weight stands for."""
    X = np.repeat([[1.0, 3.0], [2.0, 1.0], [3.0, 3.0], [4.0, 1.0]], 4, axis=0)
    weight = np.ones(len(X))
    weight[heavy] = 10.0
    folds, boundaries = content_folds(X, 3, weight)
    assert np.bincount(folds, minlength=3).min() > 0
    copies = np.repeat(X, weight.astype(int), axis=0)
    assert_array_equal(content_folds(copies, 3)[1], boundaries)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_rows=st.integers(1, 30),
    n_folds=st.integers(2, 5),
    constant=st.sampled_from([0.1, 0.3, 1 / 3, 0.7, 1e-5, 1e200, 1e307]),
)
def test_folds_are_sorted_cut_alike_by_equal_weights_and_empty_only_if_needed(
    seed, n_rows, n_folds, constant
):
    """Equal weights cut where no weights do (0.1 each cut 12 rows in 4 folds
    as 2, 4, 3, 3: rounding decided), weights summing past the largest float
    do not overflow, the boundaries are sorted, and no fold is empty where
    there are as many distinct rows as folds."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, int(rng.integers(1, 6)), (n_rows, 2)).astype(float)
    folds, boundaries = content_folds(X, n_folds)
    with np.errstate(all="raise"):
        _, equal = content_folds(X, n_folds, np.full(n_rows, constant))
    assert_array_equal(equal, boundaries)
    assert (boundaries[1:] >= boundaries[:-1]).all()
    if len(np.unique(row_hashes(X))) >= n_folds:
        assert np.bincount(folds, minlength=n_folds).min() > 0
