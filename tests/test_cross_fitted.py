"""The hash that picks a kept fold model for each row (``refit=False``)."""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from skadaptive.stages._cross_fitted import fold_of_rows

values = st.sampled_from([0.0, -0.0, 1.0, -2.5, 1e-300, 3.0e12, np.nan, np.inf])


@settings(max_examples=60, deadline=None)
@given(
    rows=arrays(
        np.float64, st.tuples(st.integers(1, 30), st.integers(1, 5)), elements=values
    ),
    n_folds=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_a_rows_fold_depends_on_its_content_alone(rows, n_folds, seed):
    folds = fold_of_rows(rows, n_folds)
    assert folds.shape == (len(rows),) and ((0 <= folds) & (folds < n_folds)).all()
    # Any order, any batch, any container: the same fold for the same row.
    order = np.random.default_rng(seed).permutation(len(rows))
    assert_array_equal(fold_of_rows(rows[order], n_folds), folds[order])
    cut = len(rows) // 2
    assert_array_equal(
        np.concatenate(
            [fold_of_rows(rows[:cut], n_folds), fold_of_rows(rows[cut:], n_folds)]
        ),
        folds,
    )
    assert_array_equal(fold_of_rows(pd.DataFrame(rows), n_folds), folds)
    finite = np.isfinite(rows).all(axis=1)
    if finite.any():
        assert_array_equal(
            fold_of_rows(sp.csr_matrix(rows[finite]), n_folds), folds[finite]
        )
    # Equal rows (-0.0 equals 0.0, NaN equals NaN) share a fold.
    canonical = np.where(np.isnan(rows), np.inf * 0, rows + 0.0)
    _, group = np.unique(
        np.nan_to_num(canonical, nan=7.7e307), axis=0, return_inverse=True
    )
    for g in np.unique(group):
        assert len(np.unique(folds[group.ravel() == g])) == 1


def test_folds_are_spread_evenly_and_texts_are_hashed_too():
    X = np.random.default_rng(0).normal(size=(30_000, 4))
    counts = np.bincount(fold_of_rows(X, 5), minlength=5)
    assert (abs(counts - 6_000) < 300).all()  # about 4 standard deviations
    texts = np.array(["a", "b", "a", "c"], dtype=object)
    folds = fold_of_rows(texts, 3)
    assert folds[0] == folds[2]
    assert_array_equal(fold_of_rows(list(texts), 3), folds)
