"""The command line in a newcomer's first hour: version, early checks of output
paths, ONNX column labels, unknown labels, help texts and trustworthy tables."""

import json
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

import skadaptive
from skadaptive import AdaptiveCascadeClassifier
from skadaptive.cli import _demo, _parser, main
from skadaptive.cli._frontier import COLUMNS as FRONTIER_COLUMNS
from skadaptive.cli._intervals import bootstrap_intervals
from skadaptive.policies import POLICIES

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"
# The column order of the ONNX models built here; sorted it would be
# ["one", "two", "zero"], which maps every column to a wrong label.
NAMES = ["zero", "one", "two"]


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """Two fitted stages (joblib), labelled rows and a saved cascade over them."""
    folder = tmp_path_factory.mktemp("newcomer")
    X, y = load_digits(return_X_y=True)
    X_train, X_data, y_train, y_data = train_test_split(X, y, random_state=0)
    tree = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X_train, y_train)
    lr = LogisticRegression(max_iter=3000).fit(X_train, y_train)
    joblib.dump(tree, folder / "tree.joblib")
    joblib.dump(lr, folder / "lr.joblib")
    np.savez(folder / "data.npz", X=X_data, y=y_data)
    cascade = AdaptiveCascadeClassifier(
        [("tree", FrozenEstimator(tree)), ("lr", FrozenEstimator(lr))], costs=[1, 10]
    ).fit(X_data, y_data)
    joblib.dump(cascade, folder / "cascade.joblib")
    return folder


def _frontier(*arguments, folder):
    return main(
        [
            "frontier",
            *map(str, arguments),
            "--json",
            str(folder / "f.json"),
            "--plot",
            str(folder / "f.png"),
        ]
    )


def _predict(model, data, *options):
    """``skadaptive predict MODEL --data DATA [options]``: its exit code."""
    return main(["predict", str(model), "--data", str(data), *map(str, options)])


def _tree_then_lr_frontier(digits_files, data, folder):
    """``skadaptive frontier`` of the digits tree then logistic regression,
    costs 1 and 10, on ``data``."""
    return _frontier(
        digits_files / "tree.joblib",
        digits_files / "lr.joblib",
        "--data",
        data,
        "--costs",
        1,
        10,
        folder=folder,
    )


# ------------------------------------------------------------------ version
def test_version_prints_the_package_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"skadaptive {skadaptive.__version__}\n"


# ------------------------------------------------------- output paths first
def _frontier_arguments(option, path):
    # The data file does not exist: an error about the output path shows that
    # the path was checked before anything was read, fitted or evaluated.
    return ["frontier", "a.joblib", "b.joblib", "--data", "missing.npz", option, path]


@pytest.mark.parametrize(
    ("arguments", "option", "message"),
    [
        (_frontier_arguments("--save", "no/such/folder/c.joblib"), "--save", "exist"),
        (_frontier_arguments("--json", "no/such/folder/f.json"), "--json", "exist"),
        (_frontier_arguments("--plot", "no/such/folder/f.png"), "--plot", "exist"),
        (_frontier_arguments("--json", "."), "--json", "is a folder"),
        (_frontier_arguments("--save", "a_file/c.joblib"), "--save", "not a folder"),
        (
            ["predict", "missing.joblib", "--data", "x.npz", "--output", "no/p.csv"],
            "--output",
            "exist",
        ),
        (["demo", "--plot", "no/such/folder/demo.png"], "--plot", "exist"),
        (
            ["predict", "missing.joblib", "--data", "x.npz", "--output", "p.parquet"],
            "--output",
            "written as CSV",
        ),
    ],
)
def test_an_unwritable_output_path_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys, arguments, option, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")

    def no_work(*args, **kwargs):
        raise AssertionError("the demo ran before its --plot path was checked")

    monkeypatch.setattr(_demo, "run_demo", no_work)
    code = main(arguments)
    err = capsys.readouterr().err
    assert code == 1
    path = arguments[arguments.index(option) + 1]
    assert f"{option} {path}" in err and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.json"))


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch, capsys):
    # (chmod does not stop root, so the operating system's answer is simulated)
    import tempfile

    from skadaptive.cli import _io

    real = tempfile.TemporaryFile

    def refusing(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(_io.tempfile, "TemporaryFile", refusing)
    code = main(_frontier_arguments("--save", str(tmp_path / "c.joblib")))
    err = capsys.readouterr().err
    assert code == 1
    assert f"--save {tmp_path / 'c.joblib'}: cannot write there" in err
    assert "Permission denied" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_new_files_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys
):
    """/proc passes a permission check (and root passes every one) but takes
    no new file: found only after the fit, before."""
    monkeypatch.chdir(tmp_path)  # the default plot is written here
    code = main(_frontier_arguments("--json", "/proc/skadaptive-frontier.json"))
    err = capsys.readouterr().err
    assert code == 1
    assert "--json /proc/skadaptive-frontier.json: cannot write there" in err
    assert "Traceback" not in err and "rows to learn the policy" not in err


# ---------------------------------------------- ONNX models' column labels
def _onnx_model(path, *, labels=NAMES, noise=0.0, metadata=None, label_output=None):
    """Three features in, three class columns out: column k wins when feature
    k is the largest (``noise`` mixes the features, making mistakes).

    ``label_output``: None, ``"gather"`` (a label output picking from a
    constant list of ``labels``) or ``"linear_classifier"`` (an ONNX-ML
    ``LinearClassifier`` node naming ``labels``, as skl2onnx writes them).
    """
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = (np.eye(3) + noise * np.roll(np.eye(3), 1, axis=1)).astype(np.float32)
    rows = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    scores = helper.make_tensor_value_info("proba", TensorProto.FLOAT, ["N", 3])
    label_type = TensorProto.STRING if isinstance(labels[0], str) else TensorProto.INT64
    label = helper.make_tensor_value_info("label", label_type, ["N"])
    opsets = [helper.make_opsetid("", 17)]
    if label_output == "linear_classifier":
        key = (
            "classlabels_strings"
            if label_type == TensorProto.STRING
            else ("classlabels_ints")
        )
        nodes = [
            helper.make_node(
                "LinearClassifier",
                ["x"],
                ["label", "proba"],
                domain="ai.onnx.ml",
                coefficients=(4 * weights.T).ravel().tolist(),
                intercepts=[0.0, 0.0, 0.0],
                post_transform="SOFTMAX",
                **{key: labels},
            )
        ]
        graph = helper.make_graph(nodes, "m", [rows], [label, scores])
        opsets.append(helper.make_opsetid("ai.onnx.ml", 1))
    else:
        nodes = [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["proba"], axis=1),
        ]
        outputs = [scores]
        constants = [numpy_helper.from_array(4 * weights, "W")]
        if label_output == "gather":
            nodes += [
                helper.make_node("ArgMax", ["proba"], ["column"], axis=1, keepdims=0),
                helper.make_node("Gather", ["labels", "column"], ["label"], axis=0),
            ]
            constants.append(
                helper.make_tensor(
                    "labels",
                    label_type,
                    [len(labels)],
                    [s.encode() for s in labels]
                    if label_type == TensorProto.STRING
                    else labels,
                )
            )
            outputs.insert(0, label)
        graph = helper.make_graph(nodes, "m", [rows], outputs, constants)
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    if metadata is not None:
        helper.set_model_props(model, metadata)
    path.write_bytes(model.SerializeToString())
    return path


def _labelled_rows(path, labels=NAMES, n_rows=600, keep=None):
    """Rows whose true label is ``labels[argmax(row)]`` (the model's columns)."""
    X = np.random.default_rng(0).normal(size=(n_rows, 3)).astype(np.float32)
    y = np.asarray(labels)[np.argmax(X, axis=1)]
    if keep is not None:
        X, y = X[np.isin(y, keep)], y[np.isin(y, keep)]
    np.savez(path, X=X, y=y)
    return path


def _stage_accuracies(folder):
    report = json.loads((folder / "f.json").read_text())
    return [s["accuracy"] for s in report["stages"]]


@pytest.mark.parametrize(
    ("model_options", "classes"),
    [
        ({"metadata": {"classes": json.dumps(NAMES)}}, []),
        ({"metadata": {"labels": "zero, one, two"}}, []),
        ({"metadata": {"id2label": '{"1": "one", "0": "zero", "2": "two"}'}}, []),
        ({"label_output": "gather"}, []),
        ({"label_output": "linear_classifier"}, []),
        ({}, ["--classes", *NAMES]),
        # --classes wins over what the model says
        ({"metadata": {"classes": '["two", "one", "zero"]'}}, ["--classes", *NAMES]),
    ],
)
def test_onnx_string_labels_take_the_models_column_order(
    tmp_path, capsys, model_options, classes
):
    cheap = _onnx_model(tmp_path / "cheap.onnx", noise=0.6, **model_options)
    dear = _onnx_model(tmp_path / "dear.onnx", **model_options)
    data = _labelled_rows(tmp_path / "rows.npz")
    code = _frontier(
        cheap, dear, "--data", data, "--costs", 1, 10, *classes, folder=tmp_path
    )
    assert code == 0, capsys.readouterr().err
    cheap_accuracy, dear_accuracy = _stage_accuracies(tmp_path)
    # The dear model is right on every row; sorted labels would make it wrong
    # on every row.
    assert dear_accuracy == 1.0
    assert 0.5 < cheap_accuracy < 1.0


def test_onnx_string_labels_of_unknown_order_ask_for_classes(tmp_path, capsys):
    cheap = _onnx_model(tmp_path / "cheap.onnx", noise=0.6)
    dear = _onnx_model(tmp_path / "dear.onnx")
    data = _labelled_rows(tmp_path / "rows.npz")
    code = _frontier(cheap, dear, "--data", data, "--costs", 1, 10, folder=tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert "pass --classes with one label per column, in the model's column order" in (
        err
    )
    assert "Traceback" not in err and not (tmp_path / "f.json").exists()


def test_onnx_metadata_order_beats_the_column_index_for_whole_numbers(tmp_path, capsys):
    labels = [2, 0, 1]
    metadata = {"classes": json.dumps(labels)}
    cheap = _onnx_model(tmp_path / "cheap.onnx", noise=0.6, metadata=metadata)
    dear = _onnx_model(tmp_path / "dear.onnx", metadata=metadata)
    data = _labelled_rows(tmp_path / "rows.npz", labels=labels)
    code = _frontier(cheap, dear, "--data", data, "--costs", 1, 10, folder=tmp_path)
    assert code == 0, capsys.readouterr().err
    assert _stage_accuracies(tmp_path)[1] == 1.0


@pytest.mark.parametrize(
    ("model_options", "classes", "message"),
    [
        (
            {"metadata": {"classes": '["zero", "one"]'}},
            [],
            "metadata 'classes' gives 2 labels for the model's 3 output columns",
        ),
        (
            {},
            ["--classes", "zero", "one"],
            "--classes gives 2 labels for the model's 3",
        ),
    ],
)
def test_onnx_labels_must_be_one_per_column(
    tmp_path, capsys, model_options, classes, message
):
    cheap = _onnx_model(tmp_path / "cheap.onnx", **model_options)
    dear = _onnx_model(tmp_path / "dear.onnx", **model_options)
    data = _labelled_rows(tmp_path / "rows.npz")
    code = _frontier(
        cheap, dear, "--data", data, "--costs", 1, 10, *classes, folder=tmp_path
    )
    err = capsys.readouterr().err
    assert code == 1
    assert message in err


# ----------------------------------------------------------- unknown labels
@pytest.fixture(scope="module")
def onnx_digits(tmp_path_factory):
    """Digits rows for the ONNX fixtures: all, one with label 10, classes 0-4."""
    pytest.importorskip("onnxruntime")
    folder = tmp_path_factory.mktemp("onnx_digits")
    X, y = load_digits(return_X_y=True)
    _, X_test, _, y_test = train_test_split(
        X / 16, y, test_size=0.3, stratify=y, random_state=0
    )
    X_test = X_test.astype(np.float32)
    np.savez(folder / "label_10.npz", X=X_test, y=np.r_[y_test[:-1], 10])
    few = y_test < 5
    np.savez(folder / "classes_0_to_4.npz", X=X_test[few], y=y_test[few])
    return folder


def test_a_label_the_onnx_model_lacks_is_named_with_the_fix(
    onnx_digits, tmp_path, capsys
):
    code = _frontier(
        FIXTURES / "digits_tiny.onnx",
        FIXTURES / "digits_large.onnx",
        "--data",
        onnx_digits / "label_10.npz",
        folder=tmp_path,
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "the data has labels [10] that model 'digits_tiny' does not predict" in err
    assert "--classes" in err


def test_onnx_models_work_on_data_with_only_some_of_their_classes(
    onnx_digits, tmp_path, capsys
):
    code = _frontier(
        FIXTURES / "digits_tiny.onnx",
        FIXTURES / "digits_large.onnx",
        "--data",
        onnx_digits / "classes_0_to_4.npz",
        "--costs",
        1,
        10,
        folder=tmp_path,
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "taken as the labels 0..9" in captured.out  # the assumption is said
    assert _stage_accuracies(tmp_path)[-1] > 0.95


def test_predict_answers_rows_whose_labels_the_model_does_not_know(
    digits_files, tmp_path, capsys
):
    # Labels only report accuracy: the rows are predicted and written, and
    # no accuracy is given, with a note that says why.
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    np.savez(digits_files / "label_10.npz", X=X, y=np.r_[y[:-3], 10, 10, 10])
    output = tmp_path / "predictions.csv"
    code = _predict(
        str(digits_files / "cascade.joblib"),
        str(digits_files / "label_10.npz"),
        "--output",
        str(output),
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: " in captured.out
    assert "labels [10] (3 rows) are not classes of the model" in captured.out
    assert "used without their labels" in captured.out
    assert "accuracy:" not in captured.out
    cascade = joblib.load(digits_files / "cascade.joblib")
    written = np.loadtxt(output, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written[:, 0], cascade.predict(X))


def test_predict_measures_data_with_only_some_classes(digits_files, capsys):
    with np.load(digits_files / "data.npz") as data:
        few = data["y"] < 5
        np.savez(digits_files / "few.npz", X=data["X"][few], y=data["y"][few])
    code = _predict(str(digits_files / "cascade.joblib"), str(digits_files / "few.npz"))
    out = capsys.readouterr().out
    assert code == 0
    assert float(out.split("accuracy: ")[1].split()[0]) > 0.8
    # Without --output nothing is written, and the report says so.
    assert "the predictions are not written: pass --output FILE.csv" in out


def test_predict_says_where_it_wrote_the_predictions(digits_files, tmp_path, capsys):
    written = tmp_path / "p.csv"
    code = _predict(
        digits_files / "cascade.joblib", digits_files / "data.npz", "--output", written
    )
    out = capsys.readouterr().out
    assert code == 0 and f"wrote {written}" in out and "not written" not in out
    assert written.read_text().startswith("prediction,exit_stage,cost\n")


# --------------------------------------------------------------- help texts
def _subcommands():
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    return commands.choices


@pytest.mark.parametrize("command", ["demo", "frontier", "predict"])
def test_every_option_says_what_it_is(command):
    for action in _subcommands()[command]._actions:
        text = (action.help or "").replace("(default: %(default)s)", "").strip()
        # more than a default in brackets, e.g. "(frontier.png)"
        assert len(text) > 12 and not text.startswith("("), action.option_strings


def test_policy_help_lists_the_policy_families():
    frontier = _subcommands()["frontier"]
    (policy,) = [a for a in frontier._actions if a.dest == "policy"]
    assert tuple(policy.choices) == POLICIES
    text = frontier.format_help()
    assert all(name in text for name in POLICIES)


def test_an_unknown_policy_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frontier", "a.joblib", "b.joblib", "--data", "d.npz", "--policy", "x"])
    assert exit_info.value.code == 2
    assert "linear" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["frontier", "predict"])
def test_label_help_says_its_default(command):
    (label,) = [a for a in _subcommands()[command]._actions if a.dest == "label"]
    assert "default" in label.help


def test_frontier_and_demo_never_share_a_cost_column_name():
    def cost_columns(columns):
        return {c for c in columns if "cost" in c}

    assert cost_columns(FRONTIER_COLUMNS)
    assert cost_columns(_demo.COLUMNS)
    assert not cost_columns(FRONTIER_COLUMNS) & cost_columns(_demo.COLUMNS)


def _table(out):
    """The printed table as {point: {column: cell}}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("point"))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.startswith(("stage ", "oracle", "cost_weight=", "chosen")):
            break
        cells = line.split("  ")
        cells = [c.strip() for c in cells if c.strip()]
        rows[cells[0]] = dict(zip(FRONTIER_COLUMNS, cells))
    return rows


def test_frontier_stage_rows_show_the_cumulative_cost(digits_files, tmp_path, capsys):
    code = _tree_then_lr_frontier(digits_files, digits_files / "data.npz", tmp_path)
    assert code == 0
    rows = _table(capsys.readouterr().out)
    assert rows["stage tree"]["cumulative cost"] == "1"
    assert rows["stage lr"]["cumulative cost"] == "11"
    assert rows["stage lr"]["cumulative / full"] == "1.000"


# ----------------------------------------------------- confidence intervals
def test_bootstrap_interval_matches_the_normal_approximation():
    n_rows, accuracy = 2000, 0.8
    correct = np.arange(n_rows) < accuracy * n_rows
    half_width = 1.96 * np.sqrt(accuracy * (1 - accuracy) / n_rows)
    (low, high), (all_low, all_high) = bootstrap_intervals(
        np.stack([correct, np.ones(n_rows, dtype=bool)])
    )
    assert low == pytest.approx(accuracy - half_width, abs=0.004)
    assert high == pytest.approx(accuracy + half_width, abs=0.004)
    assert (all_low, all_high) == (1.0, 1.0)
    # a fixed seed: the same interval every time
    assert bootstrap_intervals(correct[None], seed=3).tolist() == (
        bootstrap_intervals(correct[None], seed=3).tolist()
    )


def test_frontier_shows_each_points_accuracy_interval(digits_files, tmp_path, capsys):
    code = _tree_then_lr_frontier(digits_files, digits_files / "data.npz", tmp_path)
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads((tmp_path / "f.json").read_text())
    n_rows = report["n_evaluation_rows"]
    points = [*report["stages"], report["oracle"], *report["frontier"]]
    for point in [*points, report["chosen"]]:
        low, high = point["accuracy_interval"]
        assert low <= point["accuracy"] <= high
        accuracy = point["accuracy"]
        if 0.1 < accuracy < 0.9:  # where the normal approximation holds
            half_width = 1.96 * np.sqrt(accuracy * (1 - accuracy) / n_rows)
            assert low == pytest.approx(accuracy - half_width, abs=0.025)
            assert high == pytest.approx(accuracy + half_width, abs=0.025)
    tree = report["stages"][0]
    assert _table(out)["stage tree"]["95% CI"] == "{:.3f}-{:.3f}".format(
        *tree["accuracy_interval"]
    )
    # 135 rows separate a 0.71 tree from a 0.94 logistic regression
    assert "warning" not in out and report["warnings"] == []


def test_frontier_warns_when_the_held_out_rows_are_too_few(
    digits_files, tmp_path, capsys
):
    with np.load(digits_files / "data.npz") as data:
        np.savez(tmp_path / "small.npz", X=data["X"][:150], y=data["y"][:150])
    code = _tree_then_lr_frontier(digits_files, tmp_path / "small.npz", tmp_path)
    out = capsys.readouterr().out
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("warning:")]
    assert "only 45 held-out rows (fewer than 100" in line
    assert "too few to separate the points" in line
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["warnings"] == [line.removeprefix("warning: ")]


def test_overlapping_ends_of_the_frontier_are_warned_about():
    from skadaptive.cli._intervals import too_few_rows_warning

    assert too_few_rows_warning(500, [0.70, 0.78], [0.90, 0.95]) is None
    warning = too_few_rows_warning(500, [0.85, 0.92], [0.90, 0.95])
    assert "intervals of the cheapest stage (0.850-0.920)" in warning
    # Rows enough by count: the stages may simply be about as accurate.
    assert warning.startswith("on 500 held-out rows the 95% intervals")
    assert "The stages may be about as accurate" in warning
    assert "too few to separate" not in warning


@pytest.mark.parametrize("command", ["predict", "recalibrate"])
def test_an_onnx_model_given_for_a_saved_cascade_says_how_to_make_one(
    command, tmp_path, capsys
):
    model = Path(__file__).parent / "fixtures" / "onnx" / "digits_medium.onnx"
    np.save(tmp_path / "rows.npy", np.zeros((3, 64)))
    data = str(tmp_path / "rows.npy")
    if command == "recalibrate":  # its rows are an argument, and it saves a copy
        arguments = [command, str(model), data, "--output", str(tmp_path / "o.joblib")]
    else:
        arguments = [command, str(model), "--data", data]
    code = main(arguments)
    err = capsys.readouterr().err
    assert code == 1
    assert "an ONNX model, not a model saved with joblib" in err
    assert "--save cascade.joblib" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and pipes")
def test_checking_an_output_leaves_links_and_pipes_alone(tmp_path):
    """The check opened the output to test it: a link to a file not made yet
    was replaced by a plain file (its target left empty), and a pipe's reader
    got end-of-file before the real write, which then blocked."""
    from skadaptive.cli._io import check_output

    link, target = tmp_path / "link.csv", tmp_path / "target.csv"
    link.symlink_to(target)
    check_output("--output", str(link))
    assert link.is_symlink() and not target.exists()
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    check_output("--output", str(pipe))  # returns at once: nothing opened it
    new = tmp_path / "new.csv"
    check_output("--output", str(new))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "dangling").symlink_to(d / "missing" / "c.joblib"), "exist"),
        (lambda d: None, "is a folder"),  # "new/": a folder's name
    ],
    ids=["link-into-a-missing-folder", "trailing-slash"],
)
def test_outputs_that_cannot_be_written_are_refused_before_any_work(
    tmp_path, monkeypatch, capsys, make, message
):
    """A link into a missing folder and a name ending in '/' passed the
    check, and the command failed only after the fit."""
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    target = "dangling" if (tmp_path / "dangling").is_symlink() else "new/"
    code = main(_frontier_arguments("--save", target))
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "frontier.png").exists()


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_an_existing_file_that_takes_no_writes_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys
):
    """/proc/version exists and passes a permission check as root, but takes
    no write: it is tried by opening it to append (its content untouched)."""
    monkeypatch.chdir(tmp_path)
    code = main(_frontier_arguments("--json", "/proc/version"))
    assert code == 1
    assert "--json /proc/version: cannot write there" in capsys.readouterr().err


def test_a_csv_read_in_file_order_says_so(digits_files, tmp_path, capsys):
    # Models fitted on arrays know no column names: a CSV's columns are taken
    # in its order, which nothing can check, and the commands say so.
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    rows = [",".join(map(str, [*row, label])) for row, label in zip(X, y)]
    (tmp_path / "data.csv").write_text("\n".join([header, *rows]) + "\n")
    note = "note: the models know no column names (they were fitted on arrays)"
    code = _frontier(
        digits_files / "tree.joblib",
        digits_files / "lr.joblib",
        "--data",
        tmp_path / "data.csv",
        "--costs",
        1,
        10,
        folder=tmp_path,
    )
    out = capsys.readouterr().out
    assert code == 0
    assert note in out and "'p0', 'p1', 'p2', 'p3' and 60 more" in out
    code = _predict(str(digits_files / "cascade.joblib"), str(tmp_path / "data.csv"))
    out = capsys.readouterr().out
    assert code == 0 and note in out
    # An .npz file has no names to match: nothing to say.
    code = _predict(
        str(digits_files / "cascade.joblib"), str(digits_files / "data.npz")
    )
    assert code == 0 and "note:" not in capsys.readouterr().out


def test_a_cascade_of_named_stages_saved_from_a_csv_keeps_their_names(tmp_path, capsys):
    """Stages fitted on named columns: the cascade --save'd from a CSV has
    their feature_names_in_, so that a DataFrame of those columns needs no
    warning in Python; an .npz file for it (columns without names) is taken
    in its order, and predict says so (it took reversed columns silently)."""
    import warnings

    pd = pytest.importorskip("pandas")
    X, y = load_digits(return_X_y=True)
    names = [f"f{i}" for i in range(16)]
    frame = pd.DataFrame(X[:, :16], columns=names)
    for name, model in (
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("lr", LogisticRegression(max_iter=2000)),
    ):
        joblib.dump(model.fit(frame[:900], y[:900]), tmp_path / f"{name}.joblib")
    rows = [",".join(map(str, [*r, label])) for r, label in zip(X[900:, :16], y[900:])]
    (tmp_path / "data.csv").write_text("\n".join([",".join([*names, "label"]), *rows]))
    saved = tmp_path / "m.joblib"
    code = _frontier(
        tmp_path / "tree.joblib",
        tmp_path / "lr.joblib",
        "--data",
        tmp_path / "data.csv",
        "--costs",
        1,
        10,
        "--save",
        saved,
        folder=tmp_path,
    )
    assert code == 0, capsys.readouterr()
    cascade = joblib.load(saved)
    assert list(cascade.feature_names_in_) == names
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert cascade.score(frame[900:], y[900:]) > 0.5
    np.savez(tmp_path / "data.npz", X=X[900:, :16], y=y[900:])
    capsys.readouterr()
    assert _predict(saved, tmp_path / "data.npz") == 0
    out = capsys.readouterr().out
    assert (
        "data.npz has no column names, so its columns are taken in their order" in out
    )
    assert "'f0', 'f1', 'f2', 'f3' and 12 more" in out


def test_labels_saved_as_python_objects_say_how_to_save_them(
    digits_files, tmp_path, capsys
):
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    np.savez(tmp_path / "objects.npz", X=X, y=np.array([f"c{v}" for v in y], object))
    assert _predict(digits_files / "cascade.joblib", tmp_path / "objects.npz") == 1
    err = capsys.readouterr().err
    assert "allow_pickle=False. Arrays of Python objects are not read" in err
    assert "labels as strings (y.astype(str))" in err


def test_model_files_after_costs_are_said_to_go_before(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["frontier", "--data", "d.npz", "--costs", "1", "20", "a.joblib"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'a.joblib' is not a number or 'auto'" in err
    assert "model files go before --costs" in err
    assert "required: MODEL" not in err


def test_demo_refuses_an_infinite_cost_weight_before_any_work(monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the demo ran")

    monkeypatch.setattr(_demo, "run_demo", no_work)
    assert main(["demo", "--cost-weights", "0", "inf"]) == 1
    assert "--cost-weights must be finite numbers >= 0; got 0 inf" in (
        capsys.readouterr().err
    )
    assert main(["demo", "--cost-weights", "nan"]) == 1
    assert "--cost-weights must be finite numbers >= 0; got nan" in (
        capsys.readouterr().err
    )


def test_a_csv_cell_that_is_not_a_number_is_named(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,x7,1\n")
    (tmp_path / "m.joblib").write_bytes(b"")
    assert (
        main(["frontier", "m.joblib", "m.joblib", "--data", str(tmp_path / "d.csv")])
        == 1
    )
    err = capsys.readouterr().err
    assert "column 'b' holds 'x7' on line 3 (the header is line 1)" in err


def test_predict_names_the_label_option_for_one_extra_column(
    digits_files, tmp_path, capsys
):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    columns = [f"f{i}" for i in range(64)]
    import pandas as pd

    frame = pd.DataFrame(X, columns=columns)
    lr = LogisticRegression(max_iter=200).fit(frame, y)
    model = AdaptiveCascadeClassifier(
        [("lr", FrozenEstimator(lr)), ("lr2", FrozenEstimator(lr))], costs=[1, 2]
    ).fit(frame, y)
    joblib.dump(model, tmp_path / "named.joblib")
    frame.assign(target=y).to_csv(tmp_path / "t.csv", index=False)
    code = main(
        ["predict", str(tmp_path / "named.joblib"), "--data", str(tmp_path / "t.csv")]
    )
    assert code == 1
    assert (
        "the file also has 'target': if it is the label (or target) column, "
        "pass --label target" in (capsys.readouterr().err)
    )
    code = _predict(
        str(tmp_path / "named.joblib"), str(tmp_path / "t.csv"), "--label", "target"
    )
    assert code == 0
    # The model knows its columns' names: no file-order note.
    assert "taken in the file's order" not in capsys.readouterr().out


def test_recalibrate_prints_the_next_step_with_the_digits_that_tell_it_apart():
    from skadaptive.cli._recalibrate import _apart, _shift_text

    assert _apart(10.0035, 10.0) == "10.004"
    assert _apart(3.5, 3.2) == "3.5"
    assert (
        _shift_text({"shift": -np.inf})
        == "every exit as strict as spending more allows"
    )
    assert "takes every row" in _shift_text({"shift": np.inf})
    assert _shift_text({"shift": 0.25}) == "log-odds shift of the exits' shares +0.25"


def test_labels_in_the_wrong_column_order_are_hinted_at(tmp_path, capsys):
    cheap = _onnx_model(tmp_path / "cheap.onnx", noise=0.6)
    dear = _onnx_model(tmp_path / "dear.onnx")
    data = _labelled_rows(tmp_path / "rows.npz")
    wrong = ["--classes", NAMES[1], NAMES[2], NAMES[0]]
    code = _frontier(
        cheap, dear, "--data", data, "--costs", 1, 10, *wrong, folder=tmp_path
    )
    out = capsys.readouterr().out
    assert code == 0
    assert _stage_accuracies(tmp_path)[1] == 0.0
    assert "warning: stage accuracy far below chance (0.333 for 3 classes)" in out
    assert "'dear' 0.0000" in out and "in the order --classes gives" in out
    right = ["--classes", *NAMES]
    code = _frontier(
        cheap, dear, "--data", data, "--costs", 1, 10, *right, folder=tmp_path
    )
    assert code == 0 and "far below chance" not in capsys.readouterr().out


def test_no_command_names_the_commands(capsys):
    """It said "the following arguments are required: command"."""
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert (
        "the following arguments are required: {demo,frontier,predict,recalibrate}"
        in capsys.readouterr().err
    )


def _digits_csv(digits_files, path, *, encoding="utf-8", sep=",", labels=None):
    """The digits rows of the fixture as a CSV, the label column first."""
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    y = y if labels is None else labels[y]
    header = sep.join(["label", *[f"p{i}" for i in range(X.shape[1])]])
    rows = [sep.join(map(str, [label, *row])) for row, label in zip(X, y)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding=encoding)
    return path


def test_a_csv_with_a_byte_order_mark_reads_as_without(digits_files, tmp_path, capsys):
    """Excel's "CSV UTF-8" starts with a byte-order mark: it was read into the
    first column's name, so "label" (the first column) was not found, the
    last feature became the label and the label a feature, and the command
    reported a model it never should have fitted."""
    plain = _digits_csv(digits_files, tmp_path / "plain.csv")
    marked = _digits_csv(digits_files, tmp_path / "marked.csv", encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    tables = []
    for data in (plain, marked):
        assert _tree_then_lr_frontier(digits_files, data, tmp_path) == 0
        tables.append(json.loads((tmp_path / "f.json").read_text()))
        assert "\\ufeff" not in capsys.readouterr().out
    assert tables[0]["frontier"] == tables[1]["frontier"]
    assert _predict(digits_files / "cascade.joblib", marked) == 0
    assert "accuracy:" in capsys.readouterr().out


@pytest.mark.parametrize("sep, words", [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_otherwise_than_by_commas_says_so(
    digits_files, tmp_path, capsys, sep, words
):
    """A semicolon-separated file was one column, taken as the label, and the
    error said the rows had 0 features."""
    data = _digits_csv(digits_files, tmp_path / "semi.csv", sep=sep)
    assert _tree_then_lr_frontier(digits_files, data, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"separated by {words}: a CSV file here is separated by commas" in err
    assert "0 (after the label column" not in err
    # With decimal commas (Excel in much of Europe) the rows split on them.
    text = data.read_text()
    (tmp_path / "decimal.csv").write_text(text.replace(".", ","))
    decimal = tmp_path / "decimal.csv"
    assert _tree_then_lr_frontier(digits_files, decimal, tmp_path) == 1
    assert f"separated by {words}" in capsys.readouterr().err


def test_csv_labels_that_look_like_numbers_match_models_fitted_on_text(
    tmp_path, capsys
):
    """Models fitted on the labels "0" .. "9" as text: a CSV cannot write a
    label as text rather than a number, so its labels were read as numbers,
    and the error asked for labels "as the model knows them", which no CSV
    could give."""
    X, y = load_digits(return_X_y=True)
    text = np.array([str(k) for k in range(10)])
    X_fit, X_data, y_fit, y_data = train_test_split(X, y, random_state=0)
    for name, model in [
        ("tree", DecisionTreeClassifier(max_depth=6, random_state=0)),
        ("lr", LogisticRegression(max_iter=3000)),
    ]:
        joblib.dump(model.fit(X_fit, text[y_fit]), tmp_path / f"{name}.joblib")
    np.savez(tmp_path / "data.npz", X=X_data, y=y_data)
    _digits_csv(tmp_path, tmp_path / "data.csv", labels=text)
    # A float label written "3.0" is the class "3" too.
    (tmp_path / "floats.csv").write_text(
        (tmp_path / "data.csv").read_text().replace("\n3,", "\n3.0,")
    )
    for data in ("data.csv", "floats.csv"):
        code = _tree_then_lr_frontier(tmp_path, tmp_path / data, tmp_path)
        assert code == 0, capsys.readouterr().err
        frontier = json.loads((tmp_path / "f.json").read_text())["frontier"]
        assert max(point["accuracy"] for point in frontier) > 0.9
    tree = joblib.load(tmp_path / "tree.joblib")
    saved = AdaptiveCascadeClassifier(
        [("tree", FrozenEstimator(tree)), ("lr", FrozenEstimator(tree))],
        costs=[1, 2],
    ).fit(X_data, text[y_data])
    joblib.dump(saved, tmp_path / "cascade.joblib")
    assert _predict(tmp_path / "cascade.joblib", tmp_path / "floats.csv") == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "not classes of the model" not in out


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_predict_refuses_rows_of_another_width_before_reading_their_labels(
    digits_files, tmp_path, capsys, suffix
):
    """A file for another model (10 features, a regression target) first got
    a note listing its "labels" as unknown to the model, and only then the
    estimator's own "X has 10 features" from inside prediction."""
    rng = np.random.default_rng(0)
    X, target = rng.normal(size=(40, 10)), rng.normal(size=40)
    if suffix == ".npz":
        np.savez(tmp_path / "other.npz", X=X, y=target)
    else:
        header = ",".join([f"x{i}" for i in range(10)] + ["label"])
        rows = [",".join(map(str, [*row, t])) for row, t in zip(X, target)]
        (tmp_path / "other.csv").write_text("\n".join([header, *rows]) + "\n")
    code = _predict(digits_files / "cascade.joblib", tmp_path / f"other{suffix}")
    captured = capsys.readouterr()
    assert code == 1
    assert "note:" not in captured.out
    assert f"other{suffix}: its rows have 10 features" in captured.err
    assert "but the model in" in captured.err and "takes 64" in captured.err
    # An .npz file's labels are an array of their own: no column was taken
    # out, and no --label can help.
    npz = suffix == ".npz"
    assert ("label column is taken out" in captured.err) is not npz
    assert ("--label" in captured.err) is not npz


def test_predict_says_how_to_flatten_rows_of_several_dimensions(
    digits_files, tmp_path, capsys
):
    """Images of 8 x 8 for a model fitted on 64 flat columns were said to
    have "1 features"."""
    with np.load(digits_files / "data.npz") as data:
        np.savez(tmp_path / "images.npz", X=data["X"].reshape(-1, 1, 8, 8), y=data["y"])
    code = _predict(digits_files / "cascade.joblib", tmp_path / "images.npz")
    err = capsys.readouterr().err
    assert code == 1
    assert "its rows have shape (1, 8, 8), but the model" in err
    assert (
        "takes rows of 64 features: save each row flat (X.reshape(len(X), -1))" in err
    )


def test_csv_blank_lines_are_no_rows_and_a_column_name_may_hold_a_semicolon(
    tmp_path, capsys
):
    """A one-column file whose name holds ';' (a model fitted on a column
    "x;ratio") is not a semicolon-separated file: only rows split the same
    way say so. Blank lines, which pandas skips, were rows of 0 columns."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    labels = (x[:, 0] > 0).astype(int)
    for name, model in [
        ("a", LogisticRegression()),
        ("b", DecisionTreeClassifier(max_depth=2, random_state=0)),
    ]:
        joblib.dump(model.fit(x, labels), tmp_path / f"{name}.joblib")
    cascade = _saved_cascade(tmp_path, x, labels, costs=(1, 2))
    lines = ["x;ratio", *(f"{v}" for v in x[:, 0]), "", ""]
    (tmp_path / "one.csv").write_text("\n".join(lines[:50] + [""] + lines[50:]))
    assert _predict(cascade, tmp_path / "one.csv") == 0
    assert "200 rows predicted" in capsys.readouterr().out


def test_a_csv_not_in_utf8_says_to_save_it_so(digits_files, tmp_path, capsys):
    (tmp_path / "latin.csv").write_bytes("größe,label\n1,0\n2,1\n".encode("latin-1"))
    assert _tree_then_lr_frontier(digits_files, tmp_path / "latin.csv", tmp_path) == 1
    assert "a CSV file is read as UTF-8; save it so" in capsys.readouterr().err


def _two_text_class_models(folder, classes=("0", "1")):
    """Two models fitted on text labels of one character: their classes_ are
    numpy text of width 1, which a label must not be cut to."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    labels = np.where(X[:, 0] > 0, classes[1], classes[0])
    for name, model in [
        ("a", LogisticRegression()),
        ("b", DecisionTreeClassifier(max_depth=4, random_state=0)),
    ]:
        joblib.dump(model.fit(X[:200], labels[:200]), folder / f"{name}.joblib")
    return X[200:], labels[200:]


def _ab_frontier(folder, data):
    """``skadaptive frontier`` of ``folder``'s models a.joblib then b.joblib,
    costs 1 and 5, on ``data``: its exit code."""
    a, b = folder / "a.joblib", folder / "b.joblib"
    return _frontier(a, b, "--data", data, "--costs", 1, 5, folder=folder)


def _saved_cascade(folder, X, labels, costs=(1, 5)):
    """The cascade of ``folder``'s models a.joblib and b.joblib, frozen and
    fitted on ``X`` and ``labels``, saved as cascade.joblib (its path)."""
    cascade = AdaptiveCascadeClassifier(
        [
            (name, FrozenEstimator(joblib.load(folder / f"{name}.joblib")))
            for name in "ab"
        ],
        costs=list(costs),
    ).fit(X, labels)
    joblib.dump(cascade, folder / "cascade.joblib")
    return folder / "cascade.joblib"


def _csv(path, X, labels):
    header = ",".join([*(f"f{i}" for i in range(X.shape[1])), "label"])
    rows = [",".join(map(str, [*row, label])) for row, label in zip(X, labels)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_numbers_are_never_cut_to_the_width_of_text_classes(tmp_path, capsys):
    """Mapped to the classes "0" and "1" (numpy text of width 1), a
    regression target's 1.3146 became "1" and 12 became "1": the frontier
    ran on made-up classes with exit code 0."""
    X, _ = _two_text_class_models(tmp_path)
    target = 1 + np.tanh(X[:, 0] + np.random.default_rng(1).normal(0, 0.1, len(X)))
    data = _csv(tmp_path / "target.csv", X, np.round(target, 4))
    assert _ab_frontier(tmp_path, data) == 1
    assert "as a regression target's are" in capsys.readouterr().err
    # A whole number that is no class ("12") is named, not cut to "1".
    labels = np.where(X[:, 0] > 0, 1, 0)
    labels[:3] = 12
    data = _csv(tmp_path / "twelve.csv", X, labels)
    assert _ab_frontier(tmp_path, data) == 1
    assert "the data has labels ['12'] that model" in capsys.readouterr().err
    cascade = _saved_cascade(tmp_path, X, np.where(X[:, 0] > 0, "1", "0"))
    assert _predict(cascade, data) == 0
    out = capsys.readouterr().out
    assert "labels ['12'] (3 rows) are not classes of the model" in out
    assert "accuracy:" not in out


def test_true_and_false_in_a_csv_are_the_classes_of_models_fitted_on_bools(
    tmp_path, capsys
):
    X, labels = _two_text_class_models(tmp_path, classes=(False, True))
    data = _csv(tmp_path / "bools.csv", X, labels)
    assert "True" in data.read_text()
    assert _ab_frontier(tmp_path, data) == 0, capsys.readouterr().err
    frontier = json.loads((tmp_path / "f.json").read_text())["frontier"]
    assert max(point["accuracy"] for point in frontier) > 0.9
    # R and Spark write TRUE or true.
    upper = _csv(tmp_path / "upper.csv", X, np.where(labels, "TRUE", "false"))
    assert _ab_frontier(tmp_path, upper) == 0, capsys.readouterr().err


def test_a_bad_cell_after_blank_lines_is_named_on_its_line_in_the_file(
    digits_files, tmp_path, capsys
):
    data = _digits_csv(digits_files, tmp_path / "d.csv")
    lines = data.read_text().splitlines()
    cells = lines[10].split(",")
    cells[3] = "abc"
    lines[10] = ",".join(cells)
    data.write_text("\n".join(lines[:5] + ["", ""] + lines[5:]) + "\n")
    assert _tree_then_lr_frontier(digits_files, data, tmp_path) == 1
    # Line 11 of the file before the two blank lines were put in: now 13.
    assert "holds 'abc' on line 13 (the header is line 1)" in capsys.readouterr().err


def test_predict_does_not_take_whole_numbers_but_0_and_1_as_bools(tmp_path, capsys):
    """A cast to bool made every label but 0 True: a file labelled 0 and 2
    for a model of False and True was scored as if 2 were True."""
    X, labels = _two_text_class_models(tmp_path, classes=(False, True))
    cascade = _saved_cascade(tmp_path, X, labels)
    data = _csv(tmp_path / "twos.csv", X, np.where(labels, 2, 0))
    assert _predict(cascade, data) == 0
    out = capsys.readouterr().out
    assert "labels [2]" in out and "are not classes of the model" in out
    assert "accuracy:" not in out
    data = _csv(tmp_path / "ones.csv", X, labels.astype(int))
    assert _predict(cascade, data) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy: ")[1].split()[0])
    assert accuracy == pytest.approx(joblib.load(cascade).score(X, labels), abs=1e-4)
