"""ONNX stages: OnnxClassifier and the split multi-exit network OnnxMultiExit.

The networks in tests/fixtures/onnx were trained on the digits split below by
scripts/train_onnx_fixtures.py; fixtures.json holds their measured accuracies.
Only the CPU execution provider is available here: the CUDA code path (IO
binding, rows selected on the device) is exercised on the CPU device.
"""

import json
import pickle
import shutil
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
from _stub_policies import MaxProbaAtLeast
from scipy.special import softmax
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from skadaptive import AdaptiveCascadeClassifier, EarlyExitClassifier
from skadaptive.engine import route
from skadaptive.stages import (
    MultiExitSource,
    OnnxClassifier,
    OnnxMultiExit,
    OnnxRegressor,
    exit_probas,
    measure_exit_seconds_per_row,
)
from skadaptive.stages.onnx import _classifier, _io, _runtime

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
INFO = json.loads((FIXTURES / "fixtures.json").read_text())
EXITS = INFO["models"]["multi_exit"]["exit_outputs"]
CPU = ["CPUExecutionProvider"]
CUDA = "CUDAExecutionProvider"


def _path(name):
    return FIXTURES / INFO["models"][name]["file"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    return X_test, y_test


def _clf(name="tiny", **params):
    params.setdefault("intra_op_num_threads", 1)
    return OnnxClassifier(_path(name), classes=list(range(10)), **params)


def _multi(**params):
    params.setdefault("intra_op_num_threads", 1)
    return OnnxMultiExit(
        _path("multi_exit"), exit_outputs=EXITS, classes=list(range(10)), **params
    )


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


def _linear(W, b, *, softmax_output=False, input_dims=("N", 4), out_dims=None):
    """x @ W.T + b as an ONNX model, optionally followed by a softmax."""
    n_out = W.shape[0]
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1)]
    nodes.append(
        helper.make_node("Softmax", ["z"], ["out"], axis=1)
        if softmax_output
        else helper.make_node("Identity", ["z"], ["out"])
    )
    out_dims = out_dims or [input_dims[0], n_out]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_dims))],
        [("W", W), ("b", b)],
    )


@pytest.fixture(scope="module")
def linear():
    rng = np.random.RandomState(0)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    logits = X.astype(np.float64) @ W.astype(np.float32).T + b.astype(np.float32)
    return W, b, X, logits


# -------------------------------------------------------------- OnnxClassifier
@pytest.mark.parametrize("name", ["tiny", "medium", "large"])
def test_classifier_matches_fixture_accuracy(digits, name):
    X, y = digits
    clf = _clf(name).fit(X, y)
    expected = INFO["models"][name]["test_accuracy"]
    # Another CPU may round differently: allow one row to flip.
    assert abs(clf.score(X, y) - expected) <= 1 / len(y) + 1e-12
    assert clf.n_features_in_ == 64
    assert clf.providers_ == CPU


def test_fixture_costs_differ():
    macs = [INFO["models"][n]["macs_per_row"] for n in ["tiny", "medium", "large"]]
    assert macs[0] * 10 < macs[1] and macs[1] * 10 < macs[2]
    for name in ["tiny", "medium", "large", "multi_exit"]:
        assert _path(name).stat().st_size < 1_000_000


def test_flat_and_image_rows_agree(digits):
    X, y = digits
    clf = _clf("medium")
    flat = clf.predict_proba(X)
    images = clf.predict_proba(X.reshape(-1, 1, 8, 8))
    as_float64 = clf.predict_proba(X.astype(np.float64))
    np.testing.assert_array_equal(flat, images)
    np.testing.assert_allclose(flat, as_float64, rtol=0, atol=1e-7)
    assert flat.dtype == np.float64
    np.testing.assert_allclose(flat.sum(axis=1), 1, atol=1e-12)


def test_logits_and_probabilities(linear):
    W, b, X, logits = linear
    expected = softmax(logits, axis=1)
    logit_model = _linear(W, b)
    proba_model = _linear(W, b, softmax_output=True)
    for model in (logit_model, proba_model):
        got = OnnxClassifier(model, classes=[0, 1, 2]).predict_proba(X)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    explicit = [
        OnnxClassifier(logit_model, classes=[0, 1, 2], output_kind="logits"),
        OnnxClassifier(proba_model, classes=[0, 1, 2], output_kind="proba"),
    ]
    for clf in explicit:
        np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-6)
    # Scores named probabilities are refused (they were returned as they
    # came, and predict took an argmax of them); probabilities named logits
    # are taken at their word.
    raw = OnnxClassifier(logit_model, classes=[0, 1, 2], output_kind="proba")
    with pytest.raises(ValueError, match="not probabilities.*output_kind='logits'"):
        raw.predict_proba(X)
    twice = OnnxClassifier(proba_model, classes=[0, 1, 2], output_kind="logits")
    np.testing.assert_allclose(
        twice.predict_proba(X), softmax(expected, axis=1), atol=1e-6
    )


def test_a_model_that_answers_nan_is_refused_and_named_in_a_cascade(linear):
    """NaN scores are refused by the stage alone (predict took class 0 for
    them) and, in a cascade, the error names the stage."""
    from skadaptive import AdaptiveCascadeClassifier

    W, b, X, _ = linear
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1),
        helper.make_node("Sqrt", ["z"], ["out"]),  # NaN where z < 0
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
        [("W", W), ("b", b)],
    )
    alone = OnnxClassifier(model, classes=[0, 1, 2])
    for method in (alone.predict_proba, alone.predict):
        with pytest.raises(ValueError, match="model output 'out' gave values that"):
            method(X)
    y = np.arange(len(X)) % 3
    cascade = AdaptiveCascadeClassifier(
        [
            ("sqrt", OnnxClassifier(model, classes=[0, 1, 2])),
            ("linear", OnnxClassifier(_linear(W, b), classes=[0, 1, 2])),
        ],
        costs=[1.0, 2.0],
    )
    with pytest.raises(ValueError, match="stage 'sqrt'.*not finite"):
        cascade.fit(X, y)


def test_a_model_of_undeclared_width_is_held_to_the_width_it_was_fitted_on(linear):
    """A model whose input is [N, "F"] says nothing of its width; after fit,
    rows of another width are refused by the estimator (onnxruntime failed
    deep inside its matrix product)."""
    W, b, X, _ = linear
    model = _linear(W, b, input_dims=("N", "F"))
    clf = OnnxClassifier(model, classes=[0, 1, 2]).fit(X, np.arange(len(X)) % 3)
    assert clf.n_features_in_ == 4
    for method in (clf.predict_proba, clf.predict):
        with pytest.raises(ValueError, match="X has 3 features per row, but .* 4"):
            method(X[:, :3])


def test_an_integer_input_takes_whole_numbers_only(linear):
    """A model whose input is int64 gets whole numbers as they are; values
    that a cast would change are refused (5.1 was truncated to 5)."""
    W, b, _, _ = linear
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Gemm", ["xf", "W", "b"], ["out"], transB=1),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
        [("W", W), ("b", b)],
    )
    clf = OnnxClassifier(model, classes=[0, 1, 2])
    whole = np.random.default_rng(0).integers(-3, 4, (20, 4))
    expected = clf.predict_proba(whole)
    np.testing.assert_allclose(clf.predict_proba(whole.astype(np.float32)), expected)
    for bad, why in ((whole + 0.1, "not whole numbers"), (whole * 1e30, "range")):
        with pytest.raises(ValueError, match=f"type int64, and X has values .*{why}"):
            clf.predict_proba(bad)


def test_integer_input_near_int64s_limits_reaches_the_model_exactly_or_not_at_all():
    """uint64 rows went through float64 (2**53 + 1 reached the model as
    2**53) and a float of 2.0**63 passed the range check (int64's largest
    value rounds up to it in float64) and wrapped to -2**63."""
    offset = 2**53
    nodes = [
        helper.make_node(
            "Constant",
            [],
            ["c"],
            value=helper.make_tensor("c", TensorProto.INT64, [1], [offset]),
        ),
        helper.make_node("Sub", ["x", "c"], ["d"]),
        helper.make_node("Cast", ["d"], ["y"], to=TensorProto.DOUBLE),
    ]
    reg = OnnxRegressor(
        _model(
            nodes,
            [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 1])],
        )
    )
    for dtype in (np.int64, np.uint64, object):  # object: Python ints
        assert reg.predict(np.array([[offset + 1]], dtype=dtype)) == [1.0]
    import pandas as pd

    nullable = pd.DataFrame({"x": pd.array([offset + 1], dtype="Int64")})
    assert reg.predict(nullable) == [1.0]  # it went through float64
    with pytest.raises(ValueError, match="NaN"):
        reg.predict(pd.DataFrame({"x": pd.array([None], dtype="Int64")}))
    largest = np.iinfo(np.int64).max
    fits = np.array([[largest]], dtype=object)  # was "beyond int64's range"
    assert reg.predict(fits) == [float(largest - offset)]
    for bad in (
        np.array([[largest + 1]], dtype=np.uint64),
        np.array([[largest + 1]], dtype=object),
        np.array([[2.0**63]]),
    ):
        with pytest.raises(ValueError, match="beyond int64's range"):
            reg.predict(bad)
    assert reg.predict(np.array([[-(2.0**62)]])) == [-(2.0**62) - offset]


def test_labels_that_do_not_match_the_models_columns_are_refused_in_a_cascade(digits):
    """Eleven labels for a ten-column network: the cascade said the frozen
    stages predict classes 0..10 while y has 0..9 and advised fitting on
    every class; the stage's own check names the columns."""
    from sklearn.linear_model import LogisticRegression

    X_train, y_train = digits
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression(max_iter=200)),
            ("net", OnnxClassifier(_path("tiny"), classes=range(11))),
        ],
        costs=[1, 50],
        cv=3,
    )
    with pytest.raises(
        ValueError, match="Stage 'net': model output .* 10 columns but classes has 11"
    ):
        cascade.fit(X_train, y_train)
    # Asking for classes_ reads no model: hasattr answers (it raised for a
    # first version of this check, and the command line printed a traceback).
    for model in (_path("tiny"), "missing.onnx"):
        stage = OnnxClassifier(model, classes=range(11))
        assert hasattr(stage, "classes_") and hasattr(
            FrozenEstimator(stage), "classes_"
        )


def test_an_unknown_provider_name_is_refused_before_a_session(linear):
    W, b, X, _ = linear
    clf = OnnxClassifier(
        _linear(W, b), classes=[0, 1, 2], providers=["FooExecutionProvider"]
    )
    with pytest.raises(ValueError, match=r"\['FooExecutionProvider'\].*misspelling"):
        clf.predict_proba(X)


@pytest.mark.parametrize("declared", [True, False])
def test_a_binary_model_with_one_column_says_what_the_column_is(linear, declared):
    """One output column for two classes: the second class's probability
    (a sigmoid output) or its logit, as output_kind says; "auto" cannot tell
    them apart and asks."""
    W, b, X, _ = linear
    logit = X.astype(np.float64) @ W[:1].astype(np.float32).T + np.float32(b[0])
    expected = np.column_stack([1 - 1 / (1 + np.exp(logit)), 1 / (1 + np.exp(logit))])
    expected = expected[:, ::-1]  # [P(first), P(second)] = [1 - s, s]
    width = ["N", 1] if declared else ["N", "C"]
    for kind, last in (("logits", "Identity"), ("proba", "Sigmoid")):
        nodes = [
            helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1),
            helper.make_node(last, ["z"], ["out"]),
        ]
        model = _model(
            nodes,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, width)],
            [("W", W[:1]), ("b", b[:1])],
        )
        clf = OnnxClassifier(model, classes=["neg", "pos"], output_kind=kind)
        np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-5)
        # classes in the model's order: the column is the second one's.
        flipped = OnnxClassifier(model, classes=["pos", "neg"], output_kind=kind)
        np.testing.assert_allclose(
            flipped.predict_proba(X), expected[:, ::-1], atol=1e-5
        )
        with pytest.raises(ValueError, match="one column for two classes"):
            OnnxClassifier(model, classes=["neg", "pos"]).predict_proba(X)


def test_auto_decides_row_by_row():
    # Rows that are probabilities stay as they are; other rows get a softmax,
    # whatever the rest of the batch holds.
    scores = np.array([[0.2, 0.3, 0.5], [2.0, -1.0, 0.5], [0.0, 1.0, 0.0]])
    proba = _io._to_proba(scores, "auto", None, 3, 3, "out")
    np.testing.assert_allclose(proba[0], scores[0])
    np.testing.assert_allclose(proba[1], softmax(scores[1]))
    np.testing.assert_allclose(proba[2], scores[2])
    alone = _io._to_proba(scores[1:2], "auto", None, 3, 1, "out")
    np.testing.assert_allclose(alone[0], proba[1])


def test_classes_in_model_column_order(linear):
    W, b, X, logits = linear
    clf = OnnxClassifier(_linear(W, b), classes=["c", "a", "b"]).fit(X, ["a"] * 50)
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    expected = softmax(logits, axis=1)[:, [1, 2, 0]]
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-6)
    np.testing.assert_array_equal(
        clf.predict(X), np.array(["c", "a", "b"])[np.argmax(logits, axis=1)]
    )


def test_batching_does_not_change_results(digits):
    X, _ = digits
    whole = _clf("medium").predict_proba(X)
    for batch_size in (1, 7, 539, 1000):
        np.testing.assert_array_equal(
            _clf("medium", batch_size=batch_size).predict_proba(X), whole
        )


def test_fixed_batch_model_is_padded(linear):
    W, b, X, logits = linear
    for batch in (1, 8):
        model = _linear(W, b, input_dims=(batch, 4))
        got = OnnxClassifier(model, classes=[0, 1, 2]).predict_proba(X)
        np.testing.assert_allclose(got, softmax(logits, axis=1), atol=1e-6)


def test_dynamic_row_shape_needs_input_shape(digits):
    X, y = digits
    model = onnx.load(_path("tiny"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].ClearField("dim_value")
    dims[2].dim_param = "H"
    dims[3].ClearField("dim_value")
    dims[3].dim_param = "W"
    data = model.SerializeToString()
    clf = OnnxClassifier(data, classes=range(10))
    with pytest.raises(ValueError, match=r"shape \[\?, 1, \?, \?\].*input_shape"):
        clf.predict(X)
    # Rows in the model's own rank need no input_shape.
    images = X.reshape(-1, 1, 8, 8)
    expected = _clf().predict(X)
    np.testing.assert_array_equal(clf.predict(images), expected)
    shaped = OnnxClassifier(data, classes=range(10), input_shape=(1, 8, 8))
    np.testing.assert_array_equal(shaped.fit(X, y).predict(X), expected)


def test_pickle_round_trip(tmp_path, digits):
    X, y = digits
    path = tmp_path / "model.onnx"
    path.write_bytes(_path("tiny").read_bytes())
    clf = OnnxClassifier(path, classes=range(10), batch_size=100).fit(X, y)
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "clf.joblib")
    path.unlink()  # the pickle carries the model's bytes
    loaded = joblib.load(tmp_path / "clf.joblib")
    assert loaded._runtime is None
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.get_params() == clf.get_params()
    assert loaded.n_features_in_ == 64
    # Never used before pickling: the bytes are read when pickling.
    unused = pickle.loads(pickle.dumps(_clf()))
    np.testing.assert_array_equal(unused.predict(X), _clf().predict(X))


def test_threads_share_one_session(monkeypatch, digits):
    X, _ = digits
    expected = _clf("medium").predict_proba(X)
    created = []
    make_session = _classifier._create_session

    def slow_create(*args, **kwargs):
        created.append(threading.get_ident())
        time.sleep(0.05)  # widen the window in which threads would race
        return make_session(*args, **kwargs)

    monkeypatch.setattr(_classifier, "_create_session", slow_create)
    clf = _clf("medium")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(X), range(16)))
    assert len(created) == 1
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_frozen_estimator(digits):
    X, y = digits
    frozen = FrozenEstimator(_clf("medium"))
    check_is_fitted(frozen)
    assert frozen.fit(X, y) is frozen
    np.testing.assert_array_equal(frozen.classes_, np.arange(10))
    assert frozen.score(X, y) == pytest.approx(
        INFO["models"]["medium"]["test_accuracy"], abs=1 / len(y) + 1e-12
    )


def test_clone_and_set_params(digits):
    X, y = digits
    clf = _clf("tiny")
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    tiny = clf.predict(X)
    clf.set_params(model=_path("large"))
    large = clf.predict(X)
    assert (tiny != large).any()
    np.testing.assert_array_equal(large, _clf("large").predict(X))


def test_dataframe_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    clf = _clf().fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(clf.predict(frame), _clf().predict(X))


# ----------------------------------------------------------------- errors
def test_error_file_not_found(tmp_path, digits):
    X, y = digits
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="ONNX model file not found: .*nope"):
        OnnxClassifier(missing, classes=range(10)).fit(X, y)
    with pytest.raises(FileNotFoundError, match="ONNX model file not found"):
        OnnxMultiExit(missing, exit_outputs=EXITS, classes=range(10))
    # A folder was "not found" too.
    with pytest.raises(IsADirectoryError, match="is a folder; give the path of the"):
        OnnxClassifier(tmp_path, classes=range(10)).fit(X, y)


def test_a_binary_models_one_score_per_row_of_rank_one_says_the_shape_to_export():
    model = _model(
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1),
            helper.make_node("ReduceMean", ["z"], ["out"], axes=[1], keepdims=0),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N"])],
        [("W", np.ones((1, 4))), ("b", [0.0])],
    )
    X = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"taken as \(3, 1\): export the output"):
        OnnxClassifier(model, classes=[0, 1], output_kind="logits").predict_proba(X)


def test_error_not_an_onnx_model(tmp_path, digits):
    X, y = digits
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match=r"ONNX model file '.*bad\.onnx' is not an"):
        OnnxClassifier(bad, classes=range(10)).fit(X, y)
    with pytest.raises(ValueError, match="given ONNX model bytes is not an ONNX"):
        OnnxClassifier(b"\x00\x01garbage", classes=range(10)).predict(X)
    with pytest.raises(ValueError, match=r"bad\.onnx' is not an ONNX model"):
        OnnxMultiExit(bad, exit_outputs=EXITS, classes=range(10))
    with pytest.raises(TypeError, match="model must be the path"):
        OnnxClassifier(3.5, classes=range(10)).fit(X, y)


def test_error_input_width(digits):
    X, y = digits
    clf = _clf().fit(X, y)
    message = (
        r"model input 'input' expects rows of shape \(1, 8, 8\) = 64 values; "
        r"got 30 features"
    )
    with pytest.raises(ValueError, match=message):
        clf.predict(X[:, :30])
    with pytest.raises(ValueError, match=message):
        _clf().fit(X[:, :30], y)
    with pytest.raises(ValueError, match=r"got rows of shape \(1, 7, 7\)"):
        clf.predict(np.zeros((3, 1, 7, 7)))
    with pytest.raises(ValueError, match=r"got 30 features"):
        _multi().run_stage(0, X[:, :30], None)


def test_error_output_columns(digits, linear):
    X, y = digits
    with pytest.raises(ValueError, match="'logits' has 10 columns but classes has 9"):
        OnnxClassifier(_path("tiny"), classes=range(9)).fit(X, y)
    with pytest.raises(ValueError, match="'exit1' has 10 columns but classes has 9"):
        OnnxMultiExit(_path("multi_exit"), exit_outputs=EXITS, classes=range(9))
    # Output width not declared: found by fit on one row.
    W, b, X_lin, _ = linear
    undeclared = _linear(W, b, out_dims=["N", "C"])
    with pytest.raises(ValueError, match="'out' has 3 columns but classes has 4"):
        OnnxClassifier(undeclared, classes=range(4)).fit(X_lin, np.zeros(50))


def test_error_several_inputs_and_outputs(linear):
    W, b, X, _ = linear
    two_inputs = _model(
        [helper.make_node("Add", ["a", "b"], ["out"])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
    )
    with pytest.raises(ValueError, match=r"single input tensor.* 2 inputs: 'a'.*'b'"):
        OnnxClassifier(two_inputs, classes=range(3)).predict(X[:, :3])
    two_outputs = _model(
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["s1"], transB=1),
            helper.make_node("Gemm", ["x", "W", "b"], ["s2"], transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("s1", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("s2", TensorProto.FLOAT, ["N", 3]),
        ],
        [("W", W), ("b", b)],
    )
    with pytest.raises(ValueError, match=r"outputs 's1'.*'s2'.*pass output=<name>"):
        OnnxClassifier(two_outputs, classes=range(3)).predict(X)
    with pytest.raises(ValueError, match=r"output='s3' is not an output"):
        OnnxClassifier(two_outputs, classes=range(3), output="s3").predict(X)
    chosen = OnnxClassifier(two_outputs, classes=range(3), output="s2")
    assert chosen.predict_proba(X).shape == (50, 3)


def test_error_labels_and_parameters(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"y contains labels \[10\]"):
        _clf().fit(X, np.where(y == 9, 10, y))
    with pytest.raises(ValueError, match="classes must be unique"):
        OnnxClassifier(_path("tiny"), classes=[0, 1, 1]).fit(X, y)
    with pytest.raises(ValueError, match="classes is required"):
        OnnxClassifier(_path("tiny"), classes=None).fit(X, y)
    with pytest.raises(ValueError, match="output_kind must be one of"):
        _clf(output_kind="softmax").fit(X, y)
    with pytest.raises(ValueError, match="batch_size must be None or an int >= 1"):
        _clf(batch_size=0).predict(X)
    with pytest.raises(ValueError, match=r"input_shape=\(64,\) does not fit"):
        _clf(input_shape=(64,)).predict(X)
    with pytest.raises(ValueError, match="providers must be 'auto' or a list"):
        _clf(providers=[3]).predict(X)


def test_error_onnxruntime_missing(monkeypatch, digits):
    X, y = digits
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "skadaptive\[onnx\]"'):
        _clf().fit(X, y)
    with pytest.raises(ImportError, match=r'"skadaptive\[gpu\]"'):
        _multi()


def test_importing_skadaptive_imports_no_onnx():
    code = (
        "import sys, skadaptive, skadaptive.stages.onnx._classifier, "
        "skadaptive.stages.onnx._multi_exit; "
        "assert 'onnxruntime' not in sys.modules and 'onnx' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_error_multi_exit_structure(linear):
    W, b, X, _ = linear
    with pytest.raises(ValueError, match=r"exit output 'nope' is not computed"):
        OnnxMultiExit(_path("multi_exit"), exit_outputs=["nope"], classes=range(10))
    hidden = "/block1/block1.2/MaxPool_output_0"
    with pytest.raises(ValueError, match="needs nothing beyond what the exits before"):
        OnnxMultiExit(
            _path("multi_exit"), exit_outputs=["exit2", hidden], classes=range(10)
        )
    fixed = _linear(W, b, input_dims=(4, 4))
    with pytest.raises(ValueError, match="fixed batch size .* dynamic batch axis"):
        OnnxMultiExit(fixed, exit_outputs=["out"], classes=range(3))
    with pytest.raises(ValueError, match="exit_outputs must name"):
        OnnxMultiExit(_path("multi_exit"), exit_outputs=[], classes=range(10))
    with pytest.raises(ValueError, match="io_binding must be"):
        _multi(io_binding="yes")


# -------------------------------------------------------------- providers
# onnxruntime's own warning when asked for a provider it does not have.
_ORT_OWN_WARNING = pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")


def _simulate_cuda_listed(monkeypatch):
    """onnxruntime lists CUDA, but no session can get it (no GPU here)."""
    listed = [CUDA, *ort.get_available_providers()]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)


def _ours(records):
    return [r for r in records if "asked for execution providers" in str(r.message)]


def test_auto_providers_fall_back_to_cpu(monkeypatch, digits):
    X, y = digits
    _simulate_cuda_listed(monkeypatch)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        clf = _clf().fit(X, y)
        assert clf.providers_ == CPU
        assert _multi().providers_ == CPU
    assert not _ours(records)


@_ORT_OWN_WARNING
def test_explicit_cuda_with_cpu_fallback_warns(monkeypatch, digits):
    X, y = digits
    _simulate_cuda_listed(monkeypatch)
    asked = [CUDA, "CPUExecutionProvider"]
    message = (
        r"asked for execution providers \['CUDAExecutionProvider', "
        r"'CPUExecutionProvider'\] but the onnxruntime session got "
        r"\['CPUExecutionProvider'\]"
    )
    with pytest.warns(UserWarning, match=message):
        clf = _clf(providers=asked).fit(X, y)
    assert clf.providers_ == CPU
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        source = _multi(providers=asked)
        source.run_stage(0, X[:5], None)
    assert len(_ours(records)) == 1  # once, not once per segment
    assert source.providers_ == CPU


@_ORT_OWN_WARNING
def test_cuda_sessions_search_conv_algorithms_by_heuristic(monkeypatch, digits):
    """Every session asking for CUDA gets the heuristic cuDNN algorithm
    search unless the user's options for CUDA name another."""
    X, y = digits
    asked = []
    real = ort.InferenceSession

    def session(data, sess_options=None, providers=None):
        asked.append(providers)
        return real(data, sess_options=sess_options, providers=CPU)

    monkeypatch.setattr(ort, "InferenceSession", session)
    _clf(providers=[CUDA, *CPU]).fit(X, y).predict_proba(X[:3])
    _multi(providers=[CUDA, *CPU], io_binding=True).run_stage(0, X[:3], None)
    own = {"cudnn_conv_algo_search": "EXHAUSTIVE", "device_id": 0}
    _clf(providers=[(CUDA, own), *CPU]).fit(X, y).predict_proba(X[:3])
    heuristic = (CUDA, {"cudnn_conv_algo_search": "HEURISTIC"})
    # The classifier, then each segment and row-selection session, then the
    # user's own options.
    assert asked[0] == [heuristic, *CPU]
    assert all(providers == [heuristic, *CPU] for providers in asked[1:-1])
    assert len(asked) > 3
    assert asked[-1] == [(CUDA, own), *CPU]
    # Without CUDA nothing changes.
    assert _runtime._with_cuda_defaults(CPU) == CPU


def test_explicit_cuda_only_fails(monkeypatch, digits):
    X, y = digits
    _simulate_cuda_listed(monkeypatch)
    message = (
        r"asked for execution providers \['CUDAExecutionProvider'\] but the "
        r"onnxruntime session got \['CPUExecutionProvider'\].*skadaptive\[gpu\]"
    )
    with pytest.raises(RuntimeError, match=message):
        _clf(providers=[CUDA]).fit(X, y)
    with pytest.raises(RuntimeError, match=message):
        _clf(providers=[(CUDA, {"device_id": 0})]).predict(X)
    with pytest.raises(RuntimeError, match=message):
        _multi(providers=[CUDA]).run_stage(0, X, None)


# ------------------------------------------------------------ OnnxMultiExit
def test_multi_exit_protocol_and_segments():
    source = _multi()
    assert isinstance(source, MultiExitSource)
    assert source.n_stages == 3
    np.testing.assert_array_equal(source.classes_, np.arange(10))
    # Each later segment reads only the previous block's output, not the input.
    assert source.segment_inputs[0] == ("input",)
    assert source.segment_inputs[1] == ("/block1/block1.2/MaxPool_output_0",)
    assert source.segment_inputs[2] == ("/block2/block2.1/Relu_output_0",)
    assert [outs[0] for outs in source.segment_outputs] == EXITS
    assert source.segment_outputs[2] == ("logits",)


def test_default_costs_are_segment_macs():
    costs = _multi().default_costs()
    expected = INFO["models"]["multi_exit"]["incremental_macs_per_row"]
    np.testing.assert_array_equal(costs, expected)
    assert costs[0] < costs[1] < costs[2]
    assert costs[2] > 10 * costs[1]


@pytest.mark.parametrize("io_binding", [False, True])
def test_split_equals_unsplit_for_every_row(digits, io_binding):
    X, y = digits
    source = _multi(io_binding=io_binding)
    unsplit = source.run_unsplit(X)
    raw = source.run_unsplit(X, raw=True)
    for stage, accuracy in enumerate(INFO["models"]["multi_exit"]["test_accuracy"]):
        assert abs(np.mean(np.argmax(raw[stage], 1) == y) - accuracy) <= 1 / len(y)
        np.testing.assert_allclose(unsplit[stage], softmax(raw[stage], 1), atol=1e-6)
    # All rows through every exit.
    for got, want in zip(exit_probas(source, X), unsplit):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Random subsets going on, as in routing.
    rng = np.random.RandomState(0)
    for _ in range(3):
        rows = np.arange(len(X))
        proba, state = source.run_stage(0, X, None)
        np.testing.assert_allclose(proba, unsplit[0], atol=1e-6)
        for stage in (1, 2):
            mask = rng.rand(len(rows)) < 0.6
            state = source.keep_rows(state, mask)
            rows = rows[mask]
            if io_binding:
                handed = [t for t in state.tensors.values()]
                assert all(isinstance(t, ort.OrtValue) for t in handed)
            proba, state = source.run_stage(stage, X[rows], state)
            np.testing.assert_allclose(proba, unsplit[stage][rows], atol=1e-6)


def test_io_binding_matches_host_path(digits):
    X, _ = digits
    host, bound = _multi(io_binding=False), _multi(io_binding=True)
    assert bound._get_runtime().io_binding and not host._get_runtime().io_binding
    assert not _multi()._get_runtime().io_binding  # "auto": only with CUDA
    for a, b in zip(exit_probas(host, X), exit_probas(bound, X)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


def test_keep_rows_edge_cases(digits):
    X, _ = digits
    source = _multi(io_binding=True)
    _, state = source.run_stage(0, X[:10], None)
    assert source.keep_rows(state, np.ones(10, bool)) is state
    empty = source.keep_rows(state, np.zeros(10, bool))
    proba, after = source.run_stage(1, X[:0], empty)
    assert proba.shape == (0, 10) and after.n_rows == 0
    with pytest.raises(ValueError, match=r"mask has shape \(3,\)"):
        source.keep_rows(state, np.ones(3, bool))
    with pytest.raises(ValueError, match="X_rows has 4 rows but the state has 10"):
        source.run_stage(1, X[:4], state)
    with pytest.raises(ValueError, match="got None"):
        source.run_stage(1, X[:4], None)
    with pytest.raises(IndexError):
        source.run_stage(3, X, state)


def _skip_graph():
    """Two exits; the second reads the input again and the first exit's output.

    A Constant node is used by both segments.
    """
    rng = np.random.RandomState(1)
    shapes = {"W1": (4, 8), "H1": (8, 3), "W2": (8, 8), "S": (4, 8), "H2": (8, 3)}
    weights = [(n, rng.normal(size=s)) for n, s in shapes.items()]
    two = helper.make_tensor("two_value", TensorProto.FLOAT, [], [2.0])
    nodes = [
        helper.make_node("Constant", [], ["two"], value=two),
        helper.make_node("MatMul", ["x", "W1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["h1"]),
        helper.make_node("Mul", ["h1", "two"], ["s1"]),
        helper.make_node("MatMul", ["s1", "H1"], ["exit1"]),
        helper.make_node("MatMul", ["h1", "W2"], ["a2"]),
        helper.make_node("MatMul", ["x", "S"], ["skip"]),
        helper.make_node("Add", ["a2", "skip"], ["b2"]),
        helper.make_node("Relu", ["b2"], ["h2"]),
        helper.make_node("Mul", ["h2", "two"], ["m2"]),
        helper.make_node("MatMul", ["m2", "H2"], ["e2"]),
        helper.make_node("Add", ["e2", "exit1"], ["exit2"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3])
            for n in ["exit1", "exit2"]
        ],
        weights,
    )


@pytest.mark.parametrize("io_binding", [False, True])
def test_split_carries_input_and_exit_outputs(io_binding):
    source = OnnxMultiExit(
        _skip_graph(),
        exit_outputs=["exit1", "exit2"],
        classes=["a", "b", "c"],
        io_binding=io_binding,
    )
    assert set(source.segment_inputs[1]) == {"h1", "x", "exit1"}
    assert source.segment_outputs[0] == ("exit1", "h1")
    # The constant is recomputed in each segment, not handed on.
    for model in source.segment_models:
        ops = [n.op_type for n in onnx.load_from_string(model).graph.node]
        assert ops.count("Constant") == 1
    np.testing.assert_array_equal(
        source.default_costs(), [4 * 8 + 8 * 3, 8 * 8 + 4 * 8 + 8 * 3]
    )
    X = np.random.RandomState(2).normal(size=(40, 4))
    unsplit = source.run_unsplit(X)
    proba, state = source.run_stage(0, X, None)
    np.testing.assert_allclose(proba, unsplit[0], atol=1e-6)
    mask = np.arange(40) % 3 == 0
    state = source.keep_rows(state, mask)
    assert set(state.tensors) == {"h1", "x", "exit1"}
    proba, _ = source.run_stage(1, X[mask], state)
    np.testing.assert_allclose(proba, unsplit[1][mask], atol=1e-6)


def test_multi_exit_pickle(tmp_path, digits):
    X, _ = digits
    source = _multi(io_binding=True)
    expected = exit_probas(source, X)
    joblib.dump(source, tmp_path / "source.joblib")
    loaded = joblib.load(tmp_path / "source.joblib")
    assert loaded._runtime is None
    for got, want in zip(exit_probas(loaded, X), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.default_costs(), source.default_costs())


def test_routing_in_threads_matches_unsplit(digits):
    X, _ = digits
    source = _multi(io_binding=True)
    unsplit = source.run_unsplit(X)
    result = route(
        source,
        MaxProbaAtLeast([0.99, 0.99]),
        X,
        n_classes=10,
        batch_size=64,
        n_jobs=4,
    )
    assert set(np.unique(result.exit_stage)) == {0, 1, 2}
    want = np.stack(unsplit)[result.exit_stage, np.arange(len(X))]
    np.testing.assert_allclose(result.proba, want, atol=1e-6)
    seconds = measure_exit_seconds_per_row(source, X, repeats=1)
    assert seconds.shape == (3,) and (seconds > 0).all()


# -------------------------------------------------------------- integration
def test_cascade_of_frozen_onnx_stages(tmp_path, digits):
    X, y = digits
    cascade = AdaptiveCascadeClassifier(
        [
            ("small", FrozenEstimator(_clf("tiny"))),
            ("large", FrozenEstimator(_clf("large"))),
        ],
        costs="auto",
        budget=1.0,  # seconds per row: generous, so every row may reach "large"
        random_state=0,
    ).fit(X, y)
    assert cascade.costs_[0] < cascade.costs_[1]
    accuracies = [INFO["models"][n]["test_accuracy"] for n in ["tiny", "large"]]
    assert cascade.score(X, y) >= accuracies[0]
    tighter = cascade.with_policy(budget=cascade.costs_[0] + 0.5 * cascade.costs_[1])
    assert tighter.policy_rows_cost_ <= tighter.budget * (1 + 1e-9)
    for model in (cascade, tighter):
        path = tmp_path / "cascade.joblib"
        joblib.dump(model, path)
        loaded = joblib.load(path)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
        np.testing.assert_array_equal(loaded.predict_exit(X), model.predict_exit(X))


def test_bare_onnx_stages_are_used_as_given(digits):
    """An ONNX model is trained already: without FrozenEstimator it is still
    used as given, and the data passed to fit is the policy data."""
    X, y = digits
    small, large = _clf("tiny"), _clf("large")
    cascade = AdaptiveCascadeClassifier(
        [("small", small), ("large", large)],
        costs=[1.0, 600.0],
        cv=3,
        random_state=0,
    ).fit(X, y)
    assert cascade.score(X, y) > 0.9
    assert cascade.estimators_[0] is small and cascade.estimators_[1] is large
    assert len(cascade._policy_data[1]) == len(y)  # every row, no cross-fitting
    bad = np.where(y == 9, 11, y)
    with pytest.raises(ValueError, match=r"y contains labels \[11\]"):
        AdaptiveCascadeClassifier(
            [("small", _clf("tiny")), ("large", _clf("large"))],
            costs=[1.0, 600.0],
            cv=3,
        ).fit(X, bad)


def test_early_exit_over_split_network(tmp_path, digits):
    X, y = digits
    costs = np.cumsum(INFO["models"]["multi_exit"]["incremental_macs_per_row"])
    budget = float(costs[1] + 0.2 * (costs[2] - costs[1]))
    model = EarlyExitClassifier(_multi(), budget=budget, random_state=0).fit(X, y)
    assert model.policy_rows_cost_ <= budget * (1 + 1e-9)
    path = tmp_path / "early_exit.joblib"
    joblib.dump(model, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_float16_probabilities_are_taken_as_probabilities_by_auto():
    """A float16 softmax row misses a 1e-4 tolerance on its sum on about half
    the rows: under output_kind="auto" those were taken as logits and put
    through a second softmax (0.89 became 0.21), with the argmax kept, so
    predict did not show it."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(20, 10)).astype(np.float32)
    model = _model(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["p32"], axis=1),
            helper.make_node("Cast", ["p32"], ["proba"], to=TensorProto.FLOAT16),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20])],
        [helper.make_tensor_value_info("proba", TensorProto.FLOAT16, ["N", 10])],
        [("W", W)],
    )
    X = rng.normal(size=(1000, 20)).astype(np.float32)
    logits = (X @ W).astype(np.float64)
    true = np.exp(logits - logits.max(axis=1, keepdims=True))
    true /= true.sum(axis=1, keepdims=True)
    auto = OnnxClassifier(model, classes=list(range(10))).predict_proba(X)
    assert np.abs(auto - true).max() < 2e-3  # float16's rounding, no more


def test_a_loaded_stage_keeps_its_saved_bytes_through_clone_and_set_params(
    tmp_path, digits
):
    """Model bytes travel with a saved cascade; clone (GridSearchCV's) and
    set_params of a thread count read the path again: FileNotFoundError where
    the file is gone, and another network silently where the path holds one."""
    X, y = digits
    small, large = tmp_path / "small.onnx", tmp_path / "large.onnx"
    shutil.copy(_path("tiny"), small)
    shutil.copy(_path("large"), large)
    stages = [
        (name, OnnxClassifier(str(path), classes=list(range(10))))
        for name, path in (("small", small), ("large", large))
    ]
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 10], cost_weight=0.01)
    cascade.fit(X[:300], y[:300])
    reference = cascade.predict_proba(X[300:])
    joblib.dump(cascade, tmp_path / "cascade.joblib")
    small.unlink()
    large.unlink()
    loaded = joblib.load(tmp_path / "cascade.joblib")
    refitted = clone(loaded).fit(X[:300], y[:300])  # the files are gone
    np.testing.assert_array_equal(refitted.predict_proba(X[300:]), reference)
    shutil.copy(_path("medium"), small)  # another network at the path
    loaded = joblib.load(tmp_path / "cascade.joblib")
    loaded.set_params(small__intra_op_num_threads=1)
    np.testing.assert_array_equal(loaded.predict_proba(X[300:]), reference)
    stage = clone(loaded.estimators_[0])
    np.testing.assert_array_equal(
        stage.predict_proba(X[:50]), cascade.estimators_[0].predict_proba(X[:50])
    )
    # fit reads the path again where the file is there: a changed file is used.
    assert not np.array_equal(
        stage.fit(X[:5], y[:5]).predict_proba(X[:50]),
        cascade.estimators_[0].predict_proba(X[:50]),
    )


def test_an_infinite_input_to_a_multi_exit_network_names_it(digits):
    X, y = digits
    early = EarlyExitClassifier(_multi()).fit(X[:200], y[:200])
    bad = X[200:205].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="OnnxMultiExit needs finite values"):
        early.predict(bad)


def _two_exit_network(nodes, initializers):
    """A model of ``nodes`` from ``x`` (N x 4) to two exits ``exit1``,
    ``exit2`` (N x 3 each), with ``initializers``."""
    graph = helper.make_graph(
        nodes,
        "two_exits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info(e, TensorProto.FLOAT, ["N", 3])
            for e in ("exit1", "exit2")
        ],
        initializers,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )


def test_a_network_handing_on_its_batch_size_is_refused_at_construction():
    """PyTorch's x.shape[0] read once before the first exit: the split handed
    the shape-derived tensor on as if it had a row per input row, and the
    network failed at prediction with a bare IndexError (a 1-D shape tensor
    passed the row check for exactly two rows)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["flat1"], axis=0),
        helper.make_node("MatMul", ["x", "W1"], ["h"]),
        helper.make_node("Reshape", ["h", "flat1"], ["h_flat"]),
        helper.make_node("MatMul", ["h_flat", "H1"], ["exit1"]),
        helper.make_node("Relu", ["h"], ["h2"]),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch2"]),
        helper.make_node("Concat", ["batch2", "minus1"], ["flat2"], axis=0),
        helper.make_node("Reshape", ["h2", "flat2"], ["h2_flat"]),
        helper.make_node("MatMul", ["h2_flat", "H2"], ["exit2"]),
    ]
    model = _two_exit_network(
        nodes,
        [
            numpy_helper.from_array(np.int64(0), "zero"),
            numpy_helper.from_array(np.array([0], np.int64), "axes0"),
            numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
            numpy_helper.from_array(rng.normal(size=(4, 8)).astype(np.float32), "W1"),
            numpy_helper.from_array(rng.normal(size=(8, 3)).astype(np.float32), "H1"),
            numpy_helper.from_array(rng.normal(size=(8, 3)).astype(np.float32), "H2"),
        ],
    )
    with pytest.raises(
        ValueError,
        match="tensor 'batch', which segment 0 .* is a scalar, with no row per input",
    ):
        OnnxMultiExit(
            model.SerializeToString(),
            exit_outputs=["exit1", "exit2"],
            classes=[0, 1, 2],
        )


def test_a_per_row_tensor_built_from_the_input_s_shape_is_handed_on():
    """torch.zeros(x.shape[0], 3) (an initial state) used by two exits: built
    from the input's shape, but with one row per input row, so it is handed
    on like any other (a rule refusing everything computed from Shape refused
    it)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "three"], ["shp"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["shp"],
            ["h0"],
            value=numpy_helper.from_array(np.array([0.5], np.float32)),
        ),
        helper.make_node("MatMul", ["x", "W1"], ["z1"]),
        helper.make_node("Add", ["z1", "h0"], ["exit1"]),
        helper.make_node("MatMul", ["x", "W2"], ["z2"]),
        helper.make_node("Add", ["z2", "h0"], ["exit2"]),
    ]
    model = _two_exit_network(
        nodes,
        [
            numpy_helper.from_array(np.int64(0), "zero"),
            numpy_helper.from_array(np.array([0], np.int64), "axes0"),
            numpy_helper.from_array(np.array([3], np.int64), "three"),
            numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W1"),
            numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "W2"),
        ],
    )
    source = OnnxMultiExit(
        model.SerializeToString(), exit_outputs=["exit1", "exit2"], classes=[0, 1, 2]
    )
    X = rng.normal(size=(5, 4)).astype(np.float32)
    keep = np.array([True, False, True, False, True])
    _, state = source.run_stage(0, X, None)
    second, _ = source.run_stage(1, X[keep], source.keep_rows(state, keep))
    np.testing.assert_allclose(second, np.asarray(source.run_unsplit(X)[1])[keep])


def _identity_model(n_columns=3):
    """An ONNX model whose output is its input: the rows are its scores."""
    return _model(
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_columns])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_columns])],
    )


@pytest.mark.parametrize("output_kind", ["proba", "auto"])
def test_probabilities_within_the_tolerance_are_answered_as_probabilities(output_kind):
    # A float32 probability a little below 0, a row summing a little off 1:
    # accepted within the tolerance, answered clipped and summing to 1.
    row = np.array([[-1e-5, 0.5, 0.50001]], np.float32)
    proba = OnnxClassifier(
        _identity_model(), classes=[0, 1, 2], output_kind=output_kind
    ).predict_proba(row)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        proba[0, 1:] / proba[0, 1:].sum(),
        [0.5, 0.50001] / np.float64(1.00001),
        rtol=1e-6,
    )


def test_nan_labels_and_a_string_input_shape_are_refused():
    model = _identity_model()
    row = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match="classes must be labels, not NaN"):
        OnnxClassifier(model, classes=[np.nan, np.nan, 2.0]).predict_proba(row)
    with pytest.raises(ValueError, match="classes must be labels, not NaN"):
        OnnxClassifier(model, classes=[0.0, np.nan, 2.0]).predict_proba(row)
    with pytest.raises(
        ValueError, match="input_shape must be a tuple of ints; got the string"
    ):
        OnnxClassifier(model, classes=[0, 1, 2], input_shape="3").predict_proba(row)


def test_a_cascade_fitted_on_images_takes_the_same_rows_flat(digits):
    # Rows of several dimensions have no feature count: their channels (1)
    # were taken for one, and the same rows flat were refused by it.
    X, y = digits
    stages = [
        (name, OnnxClassifier(_path(name), classes=range(10), input_shape=(1, 8, 8)))
        for name in ("tiny", "large")
    ]
    images = X.reshape(-1, 1, 8, 8)
    cascade = AdaptiveCascadeClassifier(stages, costs=[1, 10], random_state=0)
    cascade.fit(images[:500], y[:500])
    assert not hasattr(cascade, "n_features_in_")
    np.testing.assert_array_equal(
        cascade.predict(X[500:700]), cascade.predict(images[500:700])
    )
    # Rows of another size are refused by the stages, which name the shape.
    with pytest.raises(ValueError, match=r"expects rows of shape \(1, 8, 8\) = 64"):
        cascade.predict(X[500:510, :60])
