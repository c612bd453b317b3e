"""OnnxRegressor: an already-trained ONNX regression model as a stage.

The two diabetes models in tests/fixtures/onnx (a linear model and a bigger
MLP with a least-squares head) were written by
tests/fixtures/onnx/make_regression_fixture.py; fixtures.json ("regression")
holds their measured test scores. Only the CPU execution provider is used.
"""

import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone, is_regressor
from sklearn.datasets import load_diabetes
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from skadaptive import AdaptiveCascadeRegressor
from skadaptive.persistence import trusted_types
from skadaptive.stages import OnnxRegressor, regression_answers

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
INFO = json.loads((FIXTURES / "fixtures.json").read_text())["regression"]
CPU = ["CPUExecutionProvider"]


def _path(name):
    return FIXTURES / INFO["models"][name]["file"]


def _reg(name="linear", **params):
    params.setdefault("intra_op_num_threads", 1)
    params.setdefault("providers", CPU)
    return OnnxRegressor(_path(name), **params)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32), y, test_size=0.3, random_state=0
    )
    return X_train, X_test, y_train, y_test


def _weights(name):
    model = onnx.load(_path(name))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _numpy_predict(name, X):
    """The fixture model computed by numpy (float64 on the float32 weights)."""
    w = {k: v.astype(np.float64) for k, v in _weights(name).items()}
    X = np.asarray(X, dtype=np.float32).astype(np.float64)
    if name == "linear":
        return (X @ w["W"] + w["b"])[:, 0]
    h1 = np.maximum(X @ w["W1"] + w["b1"], 0)
    h2 = np.maximum(h1 @ w["W2"] + w["b2"], 0)
    return (np.c_[X, h2] @ w["W_head"] + w["b_head"])[:, 0]


def _model(nodes, inputs, outputs, weights=(), opset=17):
    graph = helper.make_graph(
        nodes,
        "test",
        inputs,
        outputs,
        [
            numpy_helper.from_array(np.asarray(w, dtype=np.float32), n)
            for n, w in weights
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8
    )
    return model.SerializeToString()


def _linear(W, b, *, input_dims=("N", 4), out_dims=None, squeeze=False):
    """x @ W + b (W of shape (n_features, n_outputs)) as an ONNX model; with
    ``squeeze``, the output's column axis dropped (shape [N])."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xW"]),
        helper.make_node("Add", ["xW", "b"], ["z" if squeeze else "out"]),
    ]
    weights = [("W", W), ("b", b)]
    if squeeze:
        nodes.append(helper.make_node("Squeeze", ["z", "axes"], ["out"]))
    out_dims = out_dims or ([input_dims[0]] if squeeze else [input_dims[0], W.shape[1]])
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_dims))],
        weights,
    )
    if not squeeze:
        return model
    proto = onnx.load_from_string(model)
    proto.graph.initializer.append(
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    )
    return proto.SerializeToString()


@pytest.fixture(scope="module")
def linear():
    rng = np.random.RandomState(0)
    W, b = rng.normal(size=(4, 1)), rng.normal(size=1)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = X.astype(np.float64) @ W.astype(np.float32)[:, 0] + b.astype(np.float32)
    return W, b, X, y


# ------------------------------------------------------------- predictions
@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_predictions_equal_numpy(diabetes, name):
    X_train, X_test, _, y_test = diabetes
    X = np.r_[X_train, X_test]
    got = _reg(name).predict(X)
    assert got.dtype == np.float64 and got.shape == (len(X),)
    np.testing.assert_allclose(got, _numpy_predict(name, X), rtol=1e-5, atol=1e-5)
    r2 = 1 - np.sum((y_test - got[len(X_train) :]) ** 2) / np.sum(
        (y_test - y_test.mean()) ** 2
    )
    assert r2 == pytest.approx(INFO["models"][name]["test_r2"], abs=1e-6)


def test_fixtures_make_a_cascade():
    linear, mlp = INFO["models"]["linear"], INFO["models"]["mlp"]
    assert mlp["macs_per_row"] > 100 * linear["macs_per_row"]
    assert mlp["test_r2"] > linear["test_r2"]
    for name in ("linear", "mlp"):
        assert _path(name).stat().st_size == INFO["models"][name]["file_bytes"]
        assert INFO["models"][name]["file_bytes"] < 1_000_000


def test_fit_checks_only(diabetes):
    X_train, X_test, y_train, _ = diabetes
    reg = _reg("mlp")
    check_is_fitted(reg)  # trained already: predict works without fit
    expected = reg.predict(X_test)
    assert reg.fit(X_train, y_train) is reg
    assert reg.n_features_in_ == 10
    np.testing.assert_array_equal(reg.predict(X_test), expected)
    assert reg.providers_ == CPU
    tags = get_tags(reg)
    assert tags.requires_fit is False and tags.estimator_type == "regressor"
    assert is_regressor(reg)
    assert reg.score(X_train, y_train) > 0.4  # R^2, from RegressorMixin


def test_one_dimensional_output_and_batches(linear):
    W, b, X, y = linear
    column = OnnxRegressor(_linear(W, b)).predict(X)
    flat = OnnxRegressor(_linear(W, b, squeeze=True)).predict(X)
    np.testing.assert_allclose(column, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(flat, column)
    for batch_size in (1, 7, 49, 100):
        np.testing.assert_array_equal(
            OnnxRegressor(_linear(W, b), batch_size=batch_size).predict(X), column
        )
    for batch in (1, 8):  # a fixed batch axis: the last batch is padded
        fixed = OnnxRegressor(_linear(W, b, input_dims=(batch, 4)))
        np.testing.assert_allclose(fixed.predict(X), column, rtol=1e-6)


def test_regression_answers_have_no_uncertainty(diabetes):
    _, X_test, _, _ = diabetes
    reg = _reg("mlp")
    answers = regression_answers(reg, X_test)
    assert answers.shape == (len(X_test), 2)
    np.testing.assert_array_equal(answers[:, 0], reg.predict(X_test))
    np.testing.assert_array_equal(answers[:, 1], 0.0)
    frozen = regression_answers(FrozenEstimator(reg), X_test)
    np.testing.assert_array_equal(frozen, answers)


# ----------------------------------------------------------------- cascade
def test_cascade_of_two_onnx_regressors(monkeypatch, diabetes):
    X_train, X_test, y_train, y_test = diabetes
    small, large = _reg("linear"), _reg("mlp")
    fitted = []
    fit = OnnxRegressor.fit

    def counting_fit(self, X, y):
        fitted.append(self)
        return fit(self, X, y)

    monkeypatch.setattr(OnnxRegressor, "fit", counting_fit)
    costs = [INFO["models"][n]["macs_per_row"] for n in ("linear", "mlp")]
    cascade = AdaptiveCascadeRegressor(
        [("linear", small), ("mlp", large)],
        costs=costs,
        budget=0.5 * sum(costs),
        cv=3,
        random_state=0,
    ).fit(X_train, y_train)
    assert fitted == []  # used as given: never refitted, never cloned
    assert cascade.estimators_[0] is small and cascade.estimators_[1] is large
    assert len(cascade._policy_data[1]) == len(y_train)  # every row, no folds
    assert cascade.policy_rows_cost_ <= cascade.budget * (1 + 1e-9)

    prediction = cascade.predict(X_test)
    exits = cascade.predict_exit(X_test)
    assert prediction.shape == (len(X_test),) and prediction.dtype == np.float64
    assert set(np.unique(exits)) == {0, 1}  # each stage answers some rows
    # Row by row, the prediction of the stage that answered (up to rounding:
    # the policy works on a scaled target).
    stages = np.c_[small.predict(X_test), large.predict(X_test)]
    answering = stages[np.arange(len(X_test)), exits]
    np.testing.assert_allclose(prediction, answering, rtol=1e-12, atol=0)
    assert cascade.score(X_test, y_test) > 0.3


def _sqrt_of_linear(W, b):
    """sqrt(x @ W + b) as an ONNX model: NaN where the linear part is < 0."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xW"]),
        helper.make_node("Add", ["xW", "b"], ["z"]),
        helper.make_node("Sqrt", ["z"], ["out"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1])],
        [("W", W), ("b", b)],
    )


def test_cascade_rejects_non_finite_predictions(linear):
    """NaN predictions are caught by the package's own check of stage answers."""
    W, b, X, y = linear
    model = _sqrt_of_linear(W, b)
    # Alone, the stage refuses them (they were returned as they came).
    with pytest.raises(ValueError, match="model output 'out' gave values that are not"):
        OnnxRegressor(model).predict(X)
    cascade = AdaptiveCascadeRegressor(
        [("sqrt", OnnxRegressor(model)), ("linear", OnnxRegressor(_linear(W, b)))],
        costs=[1.0, 2.0],
    )
    with pytest.raises(ValueError, match="'sqrt'.*not finite"):
        cascade.fit(X, y)


def test_a_chain_head_that_refuses_its_answers_is_named_by_its_exit(linear):
    """An ONNX head's own refusal (NaN predictions) says which exit's head,
    as a head with two columns does."""
    from skadaptive import EarlyExitRegressor
    from skadaptive.stages import ChainExitsRegressor

    W, b, X, y = linear
    chain = ChainExitsRegressor(
        ["passthrough", "passthrough"],
        [OnnxRegressor(_linear(W, b)), OnnxRegressor(_sqrt_of_linear(W, b))],
    )
    with pytest.raises(ValueError, match="the head of exit 1: model output 'out'"):
        EarlyExitRegressor(chain, costs=[1, 2], cv=3).fit(X, y)


# ------------------------------------------------------------- persistence
def test_pickle_round_trip(tmp_path, diabetes):
    X_train, X_test, y_train, _ = diabetes
    path = tmp_path / "model.onnx"
    path.write_bytes(_path("mlp").read_bytes())
    reg = OnnxRegressor(path, batch_size=50, providers=CPU).fit(X_train, y_train)
    expected = reg.predict(X_test)
    joblib.dump(reg, tmp_path / "reg.joblib")
    path.unlink()  # the pickle carries the model's bytes
    loaded = joblib.load(tmp_path / "reg.joblib")
    assert loaded._runtime is None
    np.testing.assert_array_equal(loaded.predict(X_test), expected)
    assert loaded.get_params() == reg.get_params()
    assert loaded.n_features_in_ == 10
    # Never used before pickling: the bytes are read when pickling.
    unused = pickle.loads(pickle.dumps(_reg()))
    np.testing.assert_array_equal(unused.predict(X_test), _reg().predict(X_test))


def test_skops_round_trip(tmp_path, diabetes):
    sio = pytest.importorskip("skops.io")
    X_train, X_test, y_train, _ = diabetes
    cascade = AdaptiveCascadeRegressor(
        [("linear", _reg("linear")), ("mlp", _reg("mlp"))],
        costs=[1.0, 100.0],
        cost_weight=0.01,
    ).fit(X_train, y_train)
    for estimator in (_reg("mlp").fit(X_train, y_train), cascade):
        path = tmp_path / "model.skops"
        sio.dump(estimator, path)
        untrusted = sio.get_untrusted_types(file=path)
        ours = [t for t in untrusted if t.startswith("skadaptive")]
        assert set(ours) <= set(trusted_types()), set(ours) - set(trusted_types())
        others = [t for t in untrusted if not t.startswith("skadaptive")]
        loaded = sio.load(path, trusted=trusted_types() + others)
        np.testing.assert_array_equal(loaded.predict(X_test), estimator.predict(X_test))
    assert "skadaptive.stages.onnx._regressor.OnnxRegressor" in trusted_types()


def test_clone_set_params_and_frozen(diabetes):
    X_train, X_test, y_train, _ = diabetes
    reg = _reg("linear")
    assert clone(reg).get_params() == reg.get_params()
    linear = reg.predict(X_test)
    reg.set_params(model=_path("mlp"))
    np.testing.assert_array_equal(reg.predict(X_test), _reg("mlp").predict(X_test))
    assert (reg.predict(X_test) != linear).any()
    frozen = FrozenEstimator(_reg("linear"))
    assert frozen.fit(X_train, y_train) is frozen
    np.testing.assert_array_equal(frozen.predict(X_test), linear)


def test_dataframe_feature_names(diabetes):
    pd = pytest.importorskip("pandas")
    X_train, _, y_train, _ = diabetes
    frame = pd.DataFrame(X_train, columns=load_diabetes().feature_names)
    reg = _reg().fit(frame, y_train)
    assert list(reg.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(reg.predict(frame), _reg().predict(X_train))


# ------------------------------------------------------------------ errors
def test_error_several_output_columns(linear):
    W, b, X, y = linear
    W3, b3 = np.c_[W, W, W], np.r_[b, b, b]
    message = (
        r"OnnxRegressor needs a model with one output column .*model output "
        r"'out' has shape \[N, 3\]"
    )
    with pytest.raises(ValueError, match=message):
        OnnxRegressor(_linear(W3, b3)).fit(X, y)
    with pytest.raises(ValueError, match=message):
        OnnxRegressor(_linear(W3, b3)).predict(X)
    # Output width not declared (that of the input's rows): found by fit on
    # one row, and by predict.
    undeclared = _model(
        [helper.make_node("Identity", ["x"], ["out"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "F"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "F"])],
    )
    assert OnnxRegressor(undeclared).fit(X[:, :1], y).predict(X[:, :1]).shape == (50,)
    with pytest.raises(ValueError, match=r"one output column .*shape \[1, 3\]"):
        OnnxRegressor(undeclared).fit(X[:, :3], y)
    with pytest.raises(ValueError, match=r"one output column .*shape \[50, 3\]"):
        OnnxRegressor(undeclared).predict(X[:, :3])
    # Another rank than [N, 1] or [N].
    cube = _model(
        [helper.make_node("Identity", ["x"], ["out"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1, 1])],
    )
    with pytest.raises(ValueError, match=r"one output column .*\[N, 1, 1\]"):
        OnnxRegressor(cube).predict(X[:, :1])


def test_error_feature_count(diabetes):
    X_train, X_test, y_train, _ = diabetes
    reg = _reg().fit(X_train, y_train)
    message = (
        r"model input 'input' expects rows of shape \(10,\) = 10 values; "
        r"got 7 features"
    )
    with pytest.raises(ValueError, match=message):
        reg.predict(X_test[:, :7])
    with pytest.raises(ValueError, match=message):
        _reg().fit(X_train[:, :7], y_train)


def test_error_targets(diabetes):
    X_train, _, y_train, _ = diabetes
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _reg().fit(X_train, y_train[:-1])
    with pytest.raises(ValueError, match="y contains NaN"):
        _reg().fit(X_train, np.where(y_train > 300, np.nan, y_train))
    with pytest.raises(ValueError, match="y holds strings .*y.astype\\(float\\)"):
        _reg().fit(X_train, y_train.astype(str))


def test_error_malformed_model(tmp_path, diabetes):
    X_train, X_test, y_train, _ = diabetes
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match=r"ONNX model file '.*bad\.onnx' is not an"):
        OnnxRegressor(bad).fit(X_train, y_train)
    with pytest.raises(ValueError, match="given ONNX model bytes is not an ONNX"):
        OnnxRegressor(b"\x00\x01garbage").predict(X_test)
    with pytest.raises(FileNotFoundError, match="ONNX model file not found"):
        OnnxRegressor(tmp_path / "nope.onnx").predict(X_test)
    with pytest.raises(TypeError, match="model must be the path"):
        OnnxRegressor(3.5).predict(X_test)


def test_error_outputs_and_parameters(linear):
    W, b, X, _ = linear
    two_outputs = _model(
        [
            helper.make_node("MatMul", ["x", "W"], ["p1"]),
            helper.make_node("MatMul", ["x", "W"], ["p2"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("p1", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("p2", TensorProto.FLOAT, ["N", 1]),
        ],
        [("W", W)],
    )
    with pytest.raises(ValueError, match=r"'p1'.*'p2'.*which holds the predictions"):
        OnnxRegressor(two_outputs).predict(X)
    with pytest.raises(ValueError, match=r"output='p3' is not an output"):
        OnnxRegressor(two_outputs, output="p3").predict(X)
    assert OnnxRegressor(two_outputs, output="p2").predict(X).shape == (50,)
    with pytest.raises(ValueError, match="batch_size must be None or an int >= 1"):
        OnnxRegressor(_linear(W, b), batch_size=0).predict(X)
    with pytest.raises(ValueError, match=r"input_shape=\(2, 2\) does not fit"):
        OnnxRegressor(_linear(W, b), input_shape=(2, 2)).predict(X)
    with pytest.raises(ValueError, match="providers must be 'auto' or a list"):
        OnnxRegressor(_linear(W, b), providers=[3]).predict(X)


def _open_width_model():
    """A linear model of diabetes' 10 features whose input leaves the row
    width open (["N", "D"]): only running it tells that 9 columns are wrong."""
    X, y = load_diabetes(return_X_y=True)
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xW"]),
            helper.make_node("Add", ["xW", "b"], ["y"]),
        ],
        "open_width",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "D"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [
            numpy_helper.from_array(coef[:-1, None].astype(np.float32), "W"),
            numpy_helper.from_array(np.float32([coef[-1]]), "b"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )
    return model.SerializeToString(), X, y


def test_a_model_with_an_open_row_width_is_checked_at_fit():
    """fit ran nothing, took 9 columns for a 10-feature model, and the first
    prediction failed inside onnxruntime without saying what was wrong."""
    model, X, y = _open_width_model()
    assert OnnxRegressor(model, providers=CPU).fit(X, y).score(X, y) > 0.4
    refused = r"the ONNX model refused a batch of shape \[{}, 9\] at its input 'x'"
    with pytest.raises(ValueError, match=refused.format(1)):
        OnnxRegressor(model, providers=CPU).fit(X[:, :9], y)
    with pytest.raises(ValueError, match=refused.format(len(X))):
        OnnxRegressor(model, providers=CPU).predict(X[:, :9])
    with pytest.raises(ValueError, match="Stage 'a' .* refused the first row of X"):
        AdaptiveCascadeRegressor(
            [("a", OnnxRegressor(model, providers=CPU)), ("b", _reg())],
            costs=[1, 2],
            cv=3,
        ).fit(X[:, :9], y)


def test_class_labels_as_targets_point_at_the_classifier():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(
        ValueError,
        match="y holds strings \\(e.g. 'a'\\): OnnxRegressor predicts a numeric "
        "target; .* or use OnnxClassifier for class labels",
    ):
        _reg().fit(X, np.where(y > 100, "a", "b"))
    with pytest.raises(
        ValueError,
        match="y holds values that are not numbers \\(e.g. 'a'\\): OnnxRegressor "
        "predicts a numeric target; use OnnxClassifier for class labels",
    ):
        _reg().fit(X, np.array(["a" if v > 100 else v for v in y], dtype=object))


def test_a_stage_whose_output_has_other_rows_is_named():
    """A model that reduces over the batch returns one row for 442: the error
    said so without naming the stage."""
    X, y = load_diabetes(return_X_y=True)
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xW"]),
            helper.make_node("Add", ["xW", "b"], ["y"]),
            helper.make_node("ReduceMean", ["y"], ["z"], axes=[0], keepdims=1),
        ],
        "batch_mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1])],
        [
            numpy_helper.from_array(coef[:-1, None].astype(np.float32), "W"),
            numpy_helper.from_array(np.float32([coef[-1]]), "b"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8
    ).SerializeToString()
    with pytest.raises(
        ValueError, match=r"stage 'mean': model output 'z' has shape \(1, 1\) for"
    ):
        AdaptiveCascadeRegressor(
            [("mean", OnnxRegressor(model, providers=CPU)), ("b", _reg())],
            costs=[1, 2],
            cv=3,
        ).fit(X, y)
