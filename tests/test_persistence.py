"""Saving and loading fitted estimators: skops, versions, and a smaller model."""

import json
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.persistence import InconsistentVersionWarning, trusted_types
from skadaptive.policies import POLICIES
from skadaptive.stages import ChainExits

sio = pytest.importorskip("skops.io")

X, Y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_FIT, Y_FIT, X_NEW = X[:600], Y[:600], X[600:900]
FIXTURES = Path(__file__).parent / "fixtures" / "onnx"


def _cascade(policy="linear", **params):
    return AdaptiveCascadeClassifier(
        [
            ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
            ("lr", LogisticRegression(max_iter=300)),
        ],
        costs=[1, 5],
        cv=3,
        policy=policy,
        random_state=0,
        **params,
    )


def _onnx_estimators():
    pytest.importorskip("onnxruntime")
    from skadaptive.stages import OnnxClassifier, OnnxMultiExit

    info = json.loads((FIXTURES / "fixtures.json").read_text())["models"]
    tiny = OnnxClassifier(str(FIXTURES / info["tiny"]["file"]), classes=range(10))
    medium = OnnxClassifier(str(FIXTURES / info["medium"]["file"]), classes=range(10))
    multi = OnnxMultiExit(
        str(FIXTURES / info["multi_exit"]["file"]),
        exit_outputs=info["multi_exit"]["exit_outputs"],
        classes=range(10),
    )
    return [
        AdaptiveCascadeClassifier([("tiny", tiny), ("medium", medium)], budget=2.0),
        EarlyExitClassifier(multi, cost_weight=0.05),
    ]


def _estimators():
    fitted = [
        _cascade(policy).fit(X_FIT, Y_FIT)
        for policy in [*POLICIES, DecisionTreeClassifier(max_depth=2)]
    ]
    fitted.append(_cascade(budget=2.5).fit(X_FIT, Y_FIT))
    fitted.append(_cascade(answer="combined").fit(X_FIT, Y_FIT))
    # Each stage as its fold models (refit=False with several splits).
    fitted.append(_cascade(budget=2.5, refit=False).fit(X_FIT, Y_FIT))
    for model in [
        GradientBoostingClassifier(n_estimators=12, random_state=0),
        RandomForestClassifier(n_estimators=12, random_state=0),
        ExtraTreesClassifier(n_estimators=12, random_state=0),
    ]:
        ee = EarlyExitClassifier(model, exits=[3, 12], cv=3, policy="eenet")
        fitted.append(ee.fit(X_FIT, Y_FIT))
    boosting = GradientBoostingClassifier(n_estimators=12, random_state=0)
    ee = EarlyExitClassifier(boosting, exits=[3, 6, 12], cv=3, answer="combined")
    fitted.append(ee.fit(X_FIT, Y_FIT))
    chain = ChainExits(
        blocks=[StandardScaler(), "passthrough"],
        heads=[LogisticRegression(max_iter=300), DecisionTreeClassifier(max_depth=6)],
    )
    fitted.append(EarlyExitClassifier(chain, costs=[1, 2], cv=3).fit(X_FIT, Y_FIT))
    fitted.append(_skipping_and_routing())
    return fitted


def _skipping_and_routing():
    """A cascade fitted with skips and a router, whose policy is made to use
    both (whether or not they paid on these rows) so that saving them is
    tested."""
    from skadaptive.policies import JumpRule, Router, SkipPolicy

    cascade = AdaptiveCascadeClassifier(
        [
            ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
            ("lr", LogisticRegression(max_iter=300)),
            ("deep", DecisionTreeClassifier(max_depth=8, random_state=0)),
        ],
        costs=[0.5, 1, 5, 20],
        skips=True,
        router="auto",
        cv=3,
        random_state=0,
    ).fit(X_FIT, Y_FIT)
    learner = LogisticRegression(max_iter=300).fit(X_FIT, Y_FIT % 3)
    cascade.policy_ = SkipPolicy(
        list(cascade.policy_.rules),
        [JumpRule(np.array([1, 2]), constant=2), None],
        router=Router(np.arange(3), learner),
    )
    cascade.router_ = cascade.policy_.router
    cascade.router_cost_ = 0.5
    return cascade


@pytest.fixture(scope="module")
def estimators():
    fitted = _estimators()
    try:
        fitted += [e.fit(X_FIT, Y_FIT) for e in _onnx_estimators()]
    except pytest.skip.Exception:
        pass
    for estimator in fitted:
        assert len(estimator.frontier_["accuracy"])  # traced: saved with it too
    return fitted


def test_skops_round_trip_for_every_stage_kind_and_policy(estimators, tmp_path):
    for k, estimator in enumerate(estimators):
        path = tmp_path / f"model{k}.skops"
        sio.dump(estimator, path)
        untrusted = sio.get_untrusted_types(file=path)
        ours = [t for t in untrusted if t.startswith("skadaptive")]
        # Every skadaptive type in a saved estimator is listed as trusted.
        assert set(ours) <= set(trusted_types()), set(ours) - set(trusted_types())
        # What is left to review is the stages' own types (frozenset and
        # range, which the ONNX stages hold, were left there).
        others = [t for t in untrusted if t not in trusted_types()]
        assert not [t for t in others if t.startswith("builtins.")], others
        loaded = sio.load(path, trusted=trusted_types() + others)
        np.testing.assert_array_equal(
            loaded.predict_proba(X_NEW), estimator.predict_proba(X_NEW)
        )
        np.testing.assert_array_equal(
            loaded.predict_exit(X_NEW), estimator.predict_exit(X_NEW)
        )
        # The policy rows came along: another policy without refitting.
        assert loaded.with_policy(cost_weight=0.1).predict(X_NEW).shape == (300,)


def test_skops_refuses_what_is_not_trusted(estimators, tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(estimators[0], path)
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.load(path, trusted=[])


def test_an_onnx_stage_is_saved_with_its_model_bytes(tmp_path):
    (cascade, _) = [e.fit(X_FIT, Y_FIT) for e in _onnx_estimators()]
    source = tmp_path / "tiny.onnx"
    source.write_bytes((FIXTURES / "digits_tiny.onnx").read_bytes())
    cascade.estimators_[0].set_params(model=str(source))
    expected = cascade.predict_proba(X_NEW)
    path = tmp_path / "cascade.skops"
    sio.dump(cascade, path)
    # skops writes an object once for each place it is held: the stage's
    # bytes once for its parameter, estimators_ and named_estimators_ (and
    # not again for the cascade's record of which stages refuse NaN, which
    # held the stages themselves: five copies in all).
    with zipfile.ZipFile(path) as saved:
        copies = [saved.read(name) for name in saved.namelist()]
    assert copies.count(source.read_bytes()) == 3
    source.unlink()  # the saved model does not need the file any more
    untrusted = sio.get_untrusted_types(file=path)
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(X_NEW), expected)


@pytest.mark.parametrize("package", ["skadaptive", "scikit-learn"])
def test_loading_under_other_versions_warns(package):
    import sklearn

    import skadaptive

    cascade = _cascade().fit(X_FIT, Y_FIT)
    state = cascade.__getstate__()
    assert state["_saved_with_versions"] == {
        "skadaptive": skadaptive.__version__,
        "scikit-learn": sklearn.__version__,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(pickle.dumps(cascade))  # same versions: no warning
    state["_saved_with_versions"] = {**state["_saved_with_versions"], package: "0.0"}
    copy = _cascade()
    with pytest.warns(InconsistentVersionWarning, match=f"saved with {package} 0.0"):
        copy.__setstate__(state)


def test_discarding_the_policy_rows_keeps_predictions_and_shrinks_the_model():
    cascade = _cascade().fit(X_FIT, Y_FIT)
    before = cascade.predict_proba(X_NEW)
    frontier = cascade.frontier_  # read before discarding: still answers
    size = len(pickle.dumps(cascade))
    cascade.discard_policy_rows()
    assert len(pickle.dumps(cascade)) < 0.7 * size
    np.testing.assert_array_equal(cascade.predict_proba(X_NEW), before)
    np.testing.assert_array_equal(cascade.frontier_["accuracy"], frontier["accuracy"])
    with pytest.raises(ValueError, match="policy rows were discarded"):
        cascade.with_policy(cost_weight=0.1)
    fresh = _cascade().fit(X_FIT, Y_FIT).discard_policy_rows()
    with pytest.raises(ValueError, match="policy rows were discarded"):
        fresh.frontier_  # noqa: B018
    assert not hasattr(fresh, "frontier_")  # an AttributeError too


@pytest.mark.parametrize("policy", ["linear", "eenet", "uncertainty"])
def test_skops_round_trip_of_regressors(policy, tmp_path):
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import BayesianRidge

    from skadaptive import AdaptiveCascadeRegressor, EarlyExitRegressor

    target = X_FIT @ np.linspace(-1, 1, X.shape[1])
    fitted = [
        AdaptiveCascadeRegressor(
            [
                ("bayes", BayesianRidge()),
                ("forest", RandomForestRegressor(n_estimators=10, random_state=0)),
            ],
            costs=[1, 10],
            policy=policy,
            cv=3,
        ).fit(X_FIT, target),
        EarlyExitRegressor(
            GradientBoostingRegressor(n_estimators=12, random_state=0),
            exits=[3, 6, 12],
            policy=policy,
            budget=6,
            answer="combined",
            cv=3,
        ).fit(X_FIT, target),
    ]
    # The boosted exits' partial sums are shrunk: a stacking rescales them.
    assert [c.kind for c in fitted[1].combiners_][1:] == ["linear", "linear"]
    for k, estimator in enumerate(fitted):
        path = tmp_path / f"regressor{k}.skops"
        sio.dump(estimator, path)
        untrusted = sio.get_untrusted_types(file=path)
        ours = [t for t in untrusted if t.startswith("skadaptive")]
        assert set(ours) <= set(trusted_types()), set(ours) - set(trusted_types())
        others = [t for t in untrusted if not t.startswith("skadaptive")]
        loaded = sio.load(path, trusted=trusted_types() + others)
        np.testing.assert_array_equal(loaded.predict(X_NEW), estimator.predict(X_NEW))
        np.testing.assert_array_equal(
            loaded.predict_exit(X_NEW), estimator.predict_exit(X_NEW)
        )
        assert loaded.with_policy(cost_weight=0.1).predict(X_NEW).shape == (300,)
        for mine, theirs in zip(loaded.combiners_, estimator.combiners_):
            assert repr(mine) == repr(theirs)
            np.testing.assert_array_equal(mine.weights, theirs.weights)


def test_a_model_saved_before_refit_was_a_parameter_loads_as_refitted():
    X, y = make_classification(200, random_state=0)
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression()),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ],
        costs=[1, 5],
        cv=3,
        random_state=0,
    ).fit(X, y)
    state = cascade.__getstate__()
    del state["refit"]
    old = AdaptiveCascadeClassifier.__new__(AdaptiveCascadeClassifier)
    old.__setstate__(state)
    assert old.get_params()["refit"] is True
    assert_array_equal(clone(old).fit(X, y).predict(X), cascade.predict(X))


def test_a_model_saved_before_versions_were_recorded_warns_and_still_works():
    """A model saved by a skadaptive from before models recorded their
    versions (and before costs had a part per call) loaded silently, then
    with_policy, frontier_, exit_report, recalibrate and evaluate_frontier
    failed with bare AttributeErrors."""
    X, y = make_classification(800, n_features=8, random_state=0)
    model = EarlyExitClassifier(
        GradientBoostingClassifier(n_estimators=20, random_state=0),
        exits=[5, 20],
        cv=3,
        random_state=0,
    ).fit(X[:500], y[:500])
    state = dict(model.__getstate__())
    for name in (
        "_saved_with_versions",
        "cost_batch_size",
        "cost_batch_size_",
        "costs_per_row_",
        "costs_per_call_",
        "expected_exit_rates_",
    ):
        state.pop(name)  # what such a model did not have
    old = EarlyExitClassifier.__new__(EarlyExitClassifier)
    with pytest.warns(InconsistentVersionWarning, match="without a record of its"):
        old.__setstate__(state)
    assert_array_equal(old.predict(X[500:]), model.predict(X[500:]))
    assert old.with_policy(cost_weight=0.1).frontier_["accuracy"].shape == (31,)
    # Without out-of-sample exit rates, the report says what it compares with.
    report = old.exit_report(X[500:])
    assert_array_equal(report.expected_exit_rates, model.exit_rates_)
    assert "exit_rates_ (in sample)" in report.reference
    assert old.evaluate_frontier(X[500:], y[500:])["cost_at_fit"] == pytest.approx(
        model.evaluate_frontier(X[500:], y[500:])["cost_at_fit"]
    )


def test_a_model_that_kept_its_nan_refusing_stages_themselves_still_names_them():
    """Models saved before the cascade kept the stages that refuse NaN by
    name kept the stages themselves: their refusal names the stage alike."""
    cascade = _cascade().fit(X_FIT, Y_FIT)
    state = dict(cascade.__getstate__())
    kept = state["_fitted_input"]
    assert kept.refusing_nan == [("lr", "LogisticRegression")]
    state["_fitted_input"] = type(kept)(
        **{**kept, "refusing_nan": [("lr", cascade.estimators_[1])]}
    )
    old = AdaptiveCascadeClassifier.__new__(AdaptiveCascadeClassifier)
    old.__setstate__(state)
    X = X_NEW.copy()
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="stage 'lr' \\(LogisticRegression\\)"):
        old.predict(X)


def test_a_cascade_saved_before_later_parameters_existed_takes_their_defaults():
    """A cascade saved before router, skips, answer, refit and cost_batch_size
    were parameters: with_policy, recalibrate, repr and clone failed with a
    bare AttributeError (only predict and a few figures worked)."""
    cascade = _cascade().fit(X_FIT, Y_FIT)
    state = dict(cascade.__getstate__())
    for name in ("router", "skips", "answer", "refit", "cost_batch_size"):
        state.pop(name)
    old = type(cascade).__new__(type(cascade))
    old.__setstate__(state)  # the same versions: no warning expected
    defaults = (old.router, old.skips, old.answer, old.refit)
    assert defaults == (None, False, "stage", True)
    assert_array_equal(old.predict(X_NEW), cascade.predict(X_NEW))
    assert_array_equal(
        old.with_policy(cost_weight=0.1).predict_exit(X_NEW),
        cascade.with_policy(cost_weight=0.1).predict_exit(X_NEW),
    )
    old.recalibrate(X_NEW)
    repr(old)
    clone(old)


def test_a_router_fitted_on_a_dataframe_saves_with_skops(tmp_path):
    """A fit with a router keeps the policy rows as given, here a DataFrame
    of numbers, texts and categories for a router that encodes them by
    column name; skops, which saves no pandas object, refused the model
    ("no default __reduce__") deep inside. Its routers learned after a load
    are those learned before it."""
    pd = pytest.importorskip("pandas")
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = make_classification(n_samples=400, n_features=4, random_state=0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["colour"] = pd.Categorical(rng.choice(["red", "blue"], len(X)))
    frame["name"] = rng.choice(["x", "y", "z"], len(X))
    numbers = make_column_transformer(("passthrough", list("abcd")))
    codes = make_column_transformer(
        (OneHotEncoder(), ["colour", "name"]), remainder="passthrough"
    )
    cascade = AdaptiveCascadeClassifier(
        [
            ("tree", make_pipeline(numbers, DecisionTreeClassifier(max_depth=2))),
            ("lr", make_pipeline(numbers, LogisticRegression(max_iter=500))),
        ],
        costs=[0.5, 1, 5],
        router=make_pipeline(codes, LogisticRegression(max_iter=500)),
        cv=3,
        random_state=0,
    ).fit(frame, y)
    path = tmp_path / "routed.skops"
    sio.dump(cascade, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    kept, _ = loaded._router_data
    pd.testing.assert_frame_equal(kept, cascade._router_data[0].reset_index(drop=True))
    assert_array_equal(loaded.predict_exit(frame), cascade.predict_exit(frame))
    for cost_weight in (0.001, 0.01):
        before = cascade.with_policy(cost_weight=cost_weight)
        after = loaded.with_policy(cost_weight=cost_weight)
        assert_array_equal(after.predict_exit(frame), before.predict_exit(frame))


def test_pandas_rows_are_kept_as_plain_values_that_skops_saves():
    pd = pytest.importorskip("pandas")
    from skadaptive._frames import rows_from_state, rows_to_state

    frame = pd.DataFrame(
        {
            "f": [1.5, np.nan, 3.0],
            "i": [1, 2, 3],
            "b": [True, False, True],
            "text": pd.Series(["a", None, "c"], dtype=object),
            "ordered": pd.Categorical(["r", "g", "r"], ["r", "g", "b"], ordered=True),
            "codes": pd.Categorical([1, 2, 1]),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "string": pd.array(["p", None, "q"], dtype="string"),
            "Float64": pd.array([0.5, None, 1.0], dtype="Float64"),
        },
        index=[10, 20, 30],
    )
    state = rows_to_state(frame)
    saved = sio.dumps(state)
    assert sio.get_untrusted_types(data=saved) == []  # plain values only
    back = rows_from_state(sio.loads(saved, trusted=[]))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    series = pd.Series(["some", "texts"], name="text")
    pd.testing.assert_series_equal(rows_from_state(rows_to_state(series)), series)
    numbered = pd.DataFrame(X_NEW[:3])  # RangeIndex column names
    assert isinstance(rows_to_state(numbered), dict)
    pd.testing.assert_frame_equal(rows_from_state(rows_to_state(numbered)), numbered)
    unnamed = pd.Series([1.0, 2.0])
    pd.testing.assert_series_equal(rows_from_state(rows_to_state(unnamed)), unnamed)
    python_strings = pd.Series(["a", None], dtype=pd.StringDtype("python"))
    back = rows_from_state(rows_to_state(python_strings))
    assert back.dtype == python_strings.dtype
    # Rows it cannot keep so are left as they are (pickle saves them):
    # columns of other dtypes, column names that are not a flat index.
    times = pd.DataFrame({"t": pd.date_range("2020", periods=2, tz="UTC")})
    assert rows_to_state(times) is times
    levels = pd.DataFrame(
        [[1.0, 2.0]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)])
    )
    assert rows_to_state(levels) is levels
    named = pd.DataFrame({"x": [1.0]}).rename_axis(columns="features")
    assert rows_to_state(named) is named
    assert rows_to_state(X_NEW) is X_NEW


def test_copies_share_a_routers_rows_as_they_are():
    """with_policy's copies share the fitted state; pickling's state (which
    rebuilds a DataFrame as plain values) is for saving, not for copies."""
    import copy

    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_FIT, columns=[f"f{k}" for k in range(X_FIT.shape[1])])
    cascade = AdaptiveCascadeClassifier(
        [
            ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
            ("lr", LogisticRegression(max_iter=500)),
        ],
        costs=[0.5, 1, 5],
        router="auto",
        cv=3,
        random_state=0,
    ).fit(frame, Y_FIT)
    rows = cascade._router_data[0]
    assert copy.copy(cascade)._router_data[0] is rows
    assert cascade.with_policy(cost_weight=0.01)._router_data[0] is rows
