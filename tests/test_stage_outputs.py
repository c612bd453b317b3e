"""Nothing a stage returns is trusted, and bad inputs get errors that say what to do.

Every stage output is checked where it enters the package (held-out fitting,
``evaluate_frontier``, routing): one column per class of the stage's own
``classes_``, finite, non-negative, rows summing to 1. A violation is a
ValueError naming the stage, the check and how many rows; never an answer.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive._validation import PROBA_SUM_TOL, check_stage_proba

X, Y = make_classification(
    n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
)


class _Corrupting(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are corrupted on some rows.

    ``mode``: "nan", "negative", "scaled" (rows sum to 3), "drop_column";
    ``rows``: the corrupted rows are those whose first feature exceeds this
    quantile of the training rows (so the same rows at fit and at predict).
    """

    def __init__(self, model=None, mode="nan", above=0.5):
        self.model = model
        self.mode = mode
        self.above = above

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        self.cut_ = np.quantile(X[:, 0], self.above)
        return self

    def predict_proba(self, X):
        proba = self.model_.predict_proba(X)
        rows = X[:, 0] > self.cut_
        if self.mode == "nan":
            proba[rows, 0] = np.nan
        elif self.mode == "negative":
            proba[rows, 0] -= 1.0
        elif self.mode == "scaled":
            proba[rows] *= 3.0
        elif self.mode == "drop_column":
            proba = proba[:, :-1]
        return proba


def _cascade(bad, **params):
    good = DecisionTreeClassifier(max_depth=3, random_state=0)
    return AdaptiveCascadeClassifier(
        [("tree", good), ("bad", bad)], costs=[1, 5], cv=3, random_state=0, **params
    )


@pytest.mark.parametrize(
    "mode, words",
    [
        ("nan", r"not finite \(NaN or inf\) in \d+ of \d+ rows"),
        ("negative", r"negative values in \d+ of \d+ rows"),
        ("scaled", r"rows that do not sum to 1 \(\d+ of \d+ rows\)"),
        ("drop_column", r"shape \(\d+, 2\) .* expected \(\d+, 3\)"),
    ],
)
@pytest.mark.parametrize("policy", ["linear", "max_proba"])
def test_a_bad_stage_is_named_at_fit(mode, words, policy):
    with pytest.raises(ValueError, match=r"stage 'bad' .*" + words):
        _cascade(_Corrupting(mode=mode), policy=policy).fit(X, Y)


@pytest.mark.parametrize("mode", ["nan", "negative", "scaled"])
def test_a_stage_that_goes_bad_after_fit_is_named_at_predict(mode):
    """Frozen and good on the policy rows, bad on new rows: predict refuses."""
    bad = _Corrupting(mode=mode, above=1.0).fit(X, Y)  # no row corrupted yet
    cascade = _cascade(FrozenEstimator(bad), cost_weight=0.0).fit(X, Y)
    assert (cascade.predict_exit(X) == 1).any()
    bad.cut_ = np.quantile(X[:, 0], 0.5)  # now half of the rows are corrupted
    n_deferred = int((cascade.predict_exit(X[X[:, 0] <= bad.cut_]) == 1).sum())
    assert n_deferred > 0
    with pytest.raises(ValueError, match=r"stage 'bad' returned invalid"):
        cascade.predict(X)
    with pytest.raises(ValueError, match=r"stage 'bad' returned invalid"):
        cascade.evaluate_frontier(X, Y)
    # Rows that never reach the bad stage with bad values are still answered.
    good_rows = X[X[:, 0] <= bad.cut_]
    assert cascade.predict(good_rows).shape == (len(good_rows),)


def test_the_last_stage_never_answers_with_nan():
    bad = _Corrupting(mode="nan", above=1.0).fit(X, Y)
    cascade = _cascade(FrozenEstimator(bad), cost_weight=0.0).fit(X, Y)
    bad.cut_ = -np.inf  # every row: NaN in the last stage
    with pytest.raises(ValueError, match=r"stage 'bad' .*not finite"):
        cascade.predict_proba(X)


def test_one_class_y_is_refused_at_fit_with_stages_that_would_be_fitted():
    hgb = HistGradientBoostingClassifier(max_iter=5)
    cascade = AdaptiveCascadeClassifier([("a", hgb), ("b", hgb)], costs=[1, 2])
    with pytest.raises(
        ValueError, match=r"y has 1 class \[1.0\]; .* at least 2 classes"
    ):
        cascade.fit(X, np.ones(len(X)))


def test_a_frozen_one_class_stage_with_two_columns_is_named():
    """HistGradientBoosting fitted on one class returns two columns."""
    one = HistGradientBoostingClassifier(max_iter=5).fit(X, np.zeros(len(X)))
    assert one.predict_proba(X[:2]).shape == (2, 2) and len(one.classes_) == 1
    cascade = AdaptiveCascadeClassifier(
        [("a", FrozenEstimator(one)), ("b", FrozenEstimator(one))], costs=[1, 2]
    )
    with pytest.raises(ValueError, match=r"stage 'a' .*shape \(300, 2\).*1 classes"):
        cascade.fit(X, np.zeros(len(X)))


def test_an_early_exit_source_is_checked_too():
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, Y)
    ee = EarlyExitClassifier(FrozenEstimator(forest), exits=[2, 8]).fit(X, Y)
    ee.source_.run_stage = lambda stage, X_rows, state: (
        np.full((len(X_rows) if X_rows is not None else 0, 3), 0.5),
        state,
    )
    with pytest.raises(ValueError, match=r"exit 0 .*do not sum to 1"):
        ee.predict(X)


def test_labels_of_mixed_types_are_refused_with_the_reason():
    y = np.array(["a"] * len(Y), dtype=object)
    y[Y == 0] = 0
    with pytest.raises(ValueError, match=r"mixes labels of different types"):
        _cascade(LogisticRegression()).fit(X, y)


def test_costs_whose_sum_overflows_are_refused():
    with pytest.raises(ValueError, match="sum to inf.*finite"):
        AdaptiveCascadeClassifier(
            [("a", LogisticRegression()), ("b", LogisticRegression())],
            costs=[1e308, 1e308],
        ).fit(X, Y)


def test_negative_sample_weight_is_refused():
    weight = np.ones(len(X))
    weight[3] = -1
    with pytest.raises(
        ValueError, match="Negative values in data passed to `sample_weight`"
    ):
        _cascade(LogisticRegression()).fit(X, Y, sample_weight=weight)


def test_metadata_routing_reaches_parallel_workers():
    """With n_jobs=2 the fits run in other processes; routing still applies."""
    with config_context(enable_metadata_routing=True):
        scaled_lr = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            LogisticRegression().set_fit_request(sample_weight=True),
        )
        tree = DecisionTreeClassifier(max_depth=3, random_state=0)
        cascade = AdaptiveCascadeClassifier(
            [("tree", tree.set_fit_request(sample_weight=True)), ("lr", scaled_lr)],
            costs=[1, 3],
            cv=3,
            n_jobs=2,
            random_state=0,
        ).fit(X, Y, sample_weight=np.ones(len(X)))
        parallel = cascade.predict(X)
        serial = cascade.set_params(n_jobs=None).fit(
            X, Y, sample_weight=np.ones(len(X))
        )
    np.testing.assert_array_equal(parallel, serial.predict(X))


# -- missing values ------------------------------------------------------------


def _nan_rows(seed, n_rows=60):
    rows = np.random.default_rng(seed).normal(size=(n_rows, X.shape[1]))
    rows[::3, 1] = np.nan
    return rows


def test_nan_is_refused_up_front_when_a_stage_cannot_take_it():
    """The first stage takes NaN, the second not: no row with NaN is answered,
    alone or in a batch, whatever the policy would have done with it."""
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, Y)
    lr = LogisticRegression(max_iter=500).fit(X, Y)
    cascade = AdaptiveCascadeClassifier(
        [("hgb", FrozenEstimator(hgb)), ("lr", FrozenEstimator(lr))], costs=[1, 3]
    ).fit(X, Y)
    rows = _nan_rows(0)
    message = r"X has NaN in 20 rows, and stage 'lr' \(LogisticRegression\)"
    with pytest.raises(ValueError, match=message):
        cascade.predict(rows)
    for row in rows[::3]:
        with pytest.raises(ValueError, match="X has NaN in 1 row,"):
            cascade.predict(row[None])
    # Rows without NaN are answered as before.
    assert cascade.predict(rows[1::3]).shape == (20,)


def _imputing_stages():
    """Pipelines that clear NaN before a model that refuses it."""
    return {
        "column_transformer": make_pipeline(
            make_column_transformer((SimpleImputer(), list(range(X.shape[1])))),
            LogisticRegression(max_iter=500),
        ),
        "nested_pipeline": make_pipeline(
            make_pipeline(SimpleImputer(), StandardScaler()),
            LogisticRegression(max_iter=500),
        ),
    }


@pytest.mark.parametrize("kind", ["column_transformer", "nested_pipeline"])
def test_a_pipeline_that_imputes_takes_nan_in_fit_and_predict(kind):
    """A ColumnTransformer says it refuses NaN, and so does a Pipeline whose
    first step is one, even around imputers: the steps are read instead."""
    rows = _nan_rows(1, n_rows=300)
    labels = (np.nan_to_num(rows[:, 0]) > 0).astype(int)
    cascade = AdaptiveCascadeClassifier(
        [
            ("imputed", _imputing_stages()[kind]),
            ("hgb", HistGradientBoostingClassifier(max_iter=10, random_state=0)),
        ],
        costs=[1, 3],
        cv=3,
        random_state=0,
    ).fit(rows, labels)
    assert cascade.predict(rows).shape == (300,)


def test_a_scaler_before_a_model_that_refuses_nan_does_not_take_it():
    """A StandardScaler takes NaN and passes it on: the Pipeline's own tag
    (its first step's) says it takes NaN, but its model does not, so rows
    with NaN are refused up front, not answered or not by the policy."""
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, Y)
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    cascade = AdaptiveCascadeClassifier(
        [("hgb", FrozenEstimator(hgb)), ("lr", FrozenEstimator(scaled.fit(X, Y)))],
        costs=[1, 3],
    ).fit(X, Y)
    with pytest.raises(ValueError, match=r"X has NaN in 20 rows, and stage 'lr'"):
        cascade.predict(_nan_rows(0))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), batch_size=st.sampled_from([None, 1, 7]))
def test_nan_rows_get_answers_independent_of_their_batch_when_all_stages_take_nan(
    seed, batch_size
):
    hgb = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, Y)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, Y)
    cascade = AdaptiveCascadeClassifier(
        [("tree", FrozenEstimator(tree)), ("hgb", FrozenEstimator(hgb))],
        costs=[1, 3],
        cost_weight=0.02,
        batch_size=batch_size,
    ).fit(X, Y)
    assert cascade.__sklearn_tags__().input_tags.allow_nan
    rows = _nan_rows(seed, n_rows=25)
    together = cascade.predict_proba(rows)
    alone = np.concatenate([cascade.predict_proba(r[None]) for r in rows])
    np.testing.assert_array_equal(together, alone)


# -- the check itself, over generated arrays -----------------------------------


@settings(max_examples=200, deadline=None)
@given(
    proba=arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(2, 4)),
        elements=st.one_of(
            st.floats(0, 1),
            st.sampled_from([np.nan, np.inf, -np.inf, -0.5, 2.0]),
        ),
    ),
    normalise=st.booleans(),
)
def test_check_stage_proba_refuses_exactly_the_invalid_rows(proba, normalise):
    if normalise:
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = proba / proba.sum(axis=1, keepdims=True)
    n_rows, n_classes = proba.shape
    finite = np.isfinite(proba).all(axis=1)
    zeroed = np.where(finite[:, None], proba, 0)
    negative = finite & (zeroed < 0).any(axis=1)
    off = finite & (np.abs(zeroed.sum(axis=1) - 1) > PROBA_SUM_TOL)
    valid = finite & ~negative & ~off
    if valid.all():
        out = check_stage_proba(proba, n_rows, n_classes, "stage 's'")
        np.testing.assert_array_equal(out, proba)
        with pytest.raises(ValueError, match=r"shape .* expected"):
            check_stage_proba(proba, n_rows, n_classes + 1, "stage 's'")
    else:
        with pytest.raises(ValueError, match=r"stage 's' returned invalid") as info:
            check_stage_proba(proba, n_rows, n_classes, "stage 's'")
        counts = [int(c) for c in re.findall(r"(\d+) of", str(info.value))]
        expected = [int((~finite).sum()), int(negative.sum()), int(off.sum())]
        assert counts == [c for c in expected if c]


def test_onnx_input_overflowing_float32_is_named_as_such():
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    from skadaptive.stages import OnnxClassifier

    fixture = Path(__file__).parent / "fixtures" / "onnx" / "digits_tiny.onnx"
    stage = OnnxClassifier(str(fixture), classes=range(10))
    rows = np.zeros((2, 64))
    rows[0, 3] = 1e300
    with pytest.raises(ValueError, match="beyond the range of the model's input type"):
        stage.fit(rows, [0, 1]).predict_proba(rows)


def _nan_cascade():
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, Y)
    lr = LogisticRegression(max_iter=500).fit(X, Y)
    return AdaptiveCascadeClassifier(
        [("hgb", FrozenEstimator(hgb)), ("lr", FrozenEstimator(lr))], costs=[1, 3]
    ).fit(X, Y)


@pytest.mark.parametrize(
    "container",
    [
        lambda rows: rows.tolist(),
        lambda rows: rows.astype(object),
        lambda rows: __import__("pandas").DataFrame(rows).astype({1: object}),
    ],
    ids=["list", "object array", "object column"],
)
def test_nan_is_refused_in_every_container(container):
    rows = _nan_rows(0)
    with pytest.raises(ValueError, match="X has NaN in 20 rows"):
        _nan_cascade().predict(container(rows))


def test_a_pipeline_that_imputes_first_takes_nan():
    from sklearn.impute import SimpleImputer

    rows = X.copy()
    rows[::7, 1] = np.nan
    cascade = AdaptiveCascadeClassifier(
        [
            ("imputed_lr", make_pipeline(SimpleImputer(), LogisticRegression())),
            ("hgb", HistGradientBoostingClassifier(max_iter=10, random_state=0)),
        ],
        costs=[1, 3],
        cv=3,
    ).fit(rows, Y)
    assert cascade.predict(rows).shape == (len(rows),)


def test_a_custom_rule_that_returns_no_booleans_is_named():
    from skadaptive.engine import route
    from skadaptive.policies import CascadePolicy
    from skadaptive.stages import IndependentStages

    X, y = make_classification(n_samples=60, random_state=0)
    lr = LogisticRegression().fit(X, y)

    class Scores:  # returns scores, not a mask: must not be read as booleans
        def exits(self, history):
            return history[-1][:, 1]

    source = IndependentStages([lr, lr])
    with pytest.raises(ValueError, match="boolean array of shape \\(60,\\)"):
        route(source, CascadePolicy([Scores()]), X, n_classes=2)
