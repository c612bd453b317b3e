"""The row-wise reductions that routing uses equal numpy's own."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax

from skadaptive._rowwise import row_max, row_sum, row_top2, softmax_rows

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
narrow = st.tuples(st.integers(0, 40), st.integers(1, 40))


@given(arrays(np.float64, narrow, elements=finite))
def test_reductions_equal_numpy(a):
    assert_array_equal(row_max(a), a.max(axis=1))
    assert_allclose(row_sum(a), a.sum(axis=1), rtol=1e-12, atol=1e-6)
    if a.shape[1] >= 2:
        top2 = np.sort(a, axis=1)[:, -2:]
        first, second = row_top2(a)
        assert_array_equal(first, top2[:, 1])
        assert_array_equal(second, top2[:, 0])


@given(arrays(np.float64, narrow, elements=st.floats(-50, 50)))
def test_softmax_rows_equals_scipy(score):
    assert_allclose(softmax_rows(score), softmax(score, axis=1), rtol=1e-12, atol=1e-15)


def test_sums_in_column_order_are_numpys_below_eight_columns():
    rng = np.random.default_rng(0)
    a = rng.random((1000, 7))
    assert_array_equal(row_sum(a), a.sum(axis=1))
