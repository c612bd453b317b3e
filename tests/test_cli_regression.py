"""The command line with regressors: ``predict`` with a saved regressor,
``frontier`` over regression models (errors instead of accuracies) and the
options it refuses for them."""

import csv
import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_friedman1
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error

from skadaptive import AdaptiveCascadeRegressor, EarlyExitRegressor
from skadaptive.cli import _parser, main

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"


def _write_csv(path, X, y=None, label="target"):
    header = [f"f{i}" for i in range(X.shape[1])] + ([] if y is None else [label])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for k, row in enumerate(X):
            writer.writerow([*row, *([] if y is None else [y[k]])])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two fitted regressors (joblib), a classifier, regression rows as CSV
    (target column last) and two fitted adaptive regressors: a cascade saved
    with joblib, an early-exit model saved with pickle."""
    folder = tmp_path_factory.mktemp("cli_regression")
    X, y = make_friedman1(n_samples=700, noise=0.5, random_state=0)
    X_train, y_train, X_data, y_data = X[:300], y[:300], X[300:], y[300:]
    ridge = Ridge().fit(X_train, y_train)
    forest = RandomForestRegressor(n_estimators=10, random_state=0)
    joblib.dump(ridge, folder / "ridge.joblib")
    joblib.dump(forest.fit(X_train, y_train), folder / "forest.joblib")
    joblib.dump(
        LogisticRegression().fit(X_train, y_train > 14), folder / "classifier.joblib"
    )
    _write_csv(folder / "data.csv", X_data, y_data)
    cascade = AdaptiveCascadeRegressor(
        [("ridge", Ridge()), ("forest", RandomForestRegressor(n_estimators=10))],
        costs=[1, 10],
        cv=3,
        random_state=0,
    ).fit(X_train, y_train)
    joblib.dump(cascade, folder / "cascade.joblib")
    early_exit = EarlyExitRegressor(
        GradientBoostingRegressor(n_estimators=20, random_state=0),
        exits=[5, 10, 20],
        loss="absolute_error",
        cv=3,
        random_state=0,
    ).fit(X_train, y_train)
    (folder / "early_exit.pkl").write_bytes(pickle.dumps(early_exit))
    return folder, X_data, y_data


def _frontier(folder, tmp_path, *arguments):
    return main(
        [
            "frontier",
            *map(str, arguments),
            "--json",
            str(tmp_path / "f.json"),
            "--plot",
            str(tmp_path / "f.png"),
        ]
    )


def _ridge_forest_frontier(folder, tmp_path, *arguments):
    """``skadaptive frontier`` of the ridge and forest files at costs 1, 10."""
    return _frontier(
        folder,
        tmp_path,
        folder / "ridge.joblib",
        folder / "forest.joblib",
        "--data",
        folder / "data.csv",
        "--costs",
        1,
        10,
        *arguments,
    )


def _onnx_regression_frontier(tmp_path, data):
    """``skadaptive frontier`` of the two diabetes ONNX regressors on ``data``."""
    return _frontier(
        tmp_path,
        tmp_path,
        FIXTURES / "diabetes_linear.onnx",
        FIXTURES / "diabetes_mlp.onnx",
        "--data",
        data,
        "--task",
        "regression",
    )


# ------------------------------------------------------------------- predict
@pytest.mark.parametrize(
    ("model", "error"), [("cascade.joblib", "MSE"), ("early_exit.pkl", "MAE")]
)
def test_predict_with_a_saved_regressor_writes_prediction_exit_and_cost(
    files, tmp_path, capsys, model, error
):
    folder, X, y = files
    code = main(
        [
            "predict",
            str(folder / model),
            "--data",
            str(folder / "data.csv"),
            "--label",
            "target",
            "--output",
            str(tmp_path / "pred.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "exit rate" in out and "average cost per row" in out
    assert "accuracy" not in out
    fitted = joblib.load(folder / model)
    result = fitted.route(X)
    metric = mean_squared_error if error == "MSE" else mean_absolute_error
    (line,) = [line for line in out.splitlines() if line.startswith(f"{error}: ")]
    assert float(line.split()[1]) == pytest.approx(metric(y, result.prediction), 1e-3)
    with open(tmp_path / "pred.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["prediction", "exit_stage", "cost"]
    written = np.array(rows[1:], dtype=float)
    assert_allclose(written[:, 0], result.prediction)
    assert_array_equal(written[:, 1], result.exit_stage)
    assert_allclose(written[:, 2], result.cost)


def test_predict_without_targets_and_with_text_targets(files, tmp_path, capsys):
    folder, X, _ = files
    _write_csv(tmp_path / "rows.csv", X)
    cascade = str(folder / "cascade.joblib")
    code = main(["predict", cascade, "--data", str(tmp_path / "rows.csv")])
    out = capsys.readouterr().out
    assert code == 0 and "MSE" not in out and "average cost per row" in out
    _write_csv(tmp_path / "text.csv", X, np.where(np.arange(len(X)) % 2, "a", "b"))
    code = main(
        ["predict", cascade, "--data", str(tmp_path / "text.csv"), "--label", "target"]
    )
    # Targets only report an error here: said, and the rows are predicted
    # (as a classifier's unknown labels are).
    printed = capsys.readouterr()
    said = printed.out + printed.err
    assert code == 0
    assert "the target holds text (e.g. 'a', 'b') and a regressor predicts" in said
    assert "--label" in said
    assert "The rows are used without their targets" in said
    assert "MSE" not in printed.out and "average cost per row" in printed.out


@pytest.mark.parametrize(
    "cell, example",
    [
        ("", "an empty cell"),
        ("nan", "'nan'"),
        ("inf", "'inf'"),
        # Other tools' words for a missing value: text here, and said so.
        ("NA", None),
    ],
)
@pytest.mark.parametrize("command", ["predict", "frontier"])
def test_a_missing_target_value_is_called_missing(
    files, tmp_path, capsys, command, cell, example
):
    """An empty target cell was called text, with the advice to give
    classifiers; the help says an empty cell is a missing value."""
    folder, X, y = files
    target = y.astype(object)
    target[5] = cell
    _write_csv(tmp_path / "gap.csv", X, target)
    models = (
        [str(folder / "cascade.joblib"), "--label", "target"]
        if command == "predict"
        else [str(folder / "ridge.joblib"), str(folder / "forest.joblib")]
    )
    code = main([command, *models, "--data", str(tmp_path / "gap.csv")])
    printed = capsys.readouterr()
    # predict reads targets only for an error figure: it says so and goes on.
    assert code == (0 if command == "predict" else 1)
    said = printed.out + printed.err
    if example is None:
        assert "the target holds 'NA', read as text: a missing value is an" in said
    else:
        assert (
            f"1 target value is missing or not finite numbers (e.g. {example}); "
            "drop those rows" in said
        )


# ------------------------------------------------------------------ frontier
def test_frontier_of_regressors_prints_an_mse_column_and_saves_a_regressor(
    files, tmp_path, capsys
):
    folder, X, y = files
    code = _ridge_forest_frontier(
        folder,
        tmp_path,
        "--save",
        tmp_path / "cascade.joblib",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.startswith("point"))
    assert header.split()[:4] == ["point", "MSE", "95%", "CI"]
    assert "accuracy" not in out
    assert "stage ridge" in out and "stage forest" in out and "oracle" in out
    assert "MSE: mean squared error of the predictions" in out
    assert "chosen: cost_weight=0.01" in out
    # One table row per distinct frontier policy (error and cost), though
    # neighbouring cost weights often pick the same one.
    rows = [
        line.split() for line in out.splitlines() if line.startswith("cost_weight=")
    ]
    shown = [(row[1], row[-3]) for row in rows]
    assert rows and len(set(shown)) == len(shown)
    report = json.loads((tmp_path / "f.json").read_text())
    assert len(rows) < len(report["frontier"])
    assert report["task"] == "regression" and report["error_name"] == "MSE"
    assert "accuracy" not in json.dumps(report)
    assert [s["name"] for s in report["stages"]] == ["ridge", "forest"]
    points = [*report["stages"], report["oracle"], *report["frontier"]]
    for point in [*points, report["chosen"], *report["exits"]]:
        low, high = point["error_interval"]
        assert 0 <= low <= point["error"] <= high
    errors = [s["error"] for s in report["stages"]]
    assert report["oracle"]["error"] <= min(errors)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    cascade = joblib.load(tmp_path / "cascade.joblib")
    assert isinstance(cascade, AdaptiveCascadeRegressor)
    assert cascade.cost_weight == 0.01
    # The stages' errors are those of the models on the held-out rows.
    n_eval = report["n_evaluation_rows"]
    assert n_eval == 120
    assert max(errors) > min(errors) > 0


def test_frontier_of_regressors_with_both_answer_kinds(files, tmp_path, capsys):
    """--answer both: the stage answers' report, then the combined answers'
    (each exit's combiner and its held-out error), in one JSON and one plot."""
    folder, X, y = files
    code = _ridge_forest_frontier(folder, tmp_path, "--answer", "both")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stage answers (each exit answers with its stage's prediction):" in out
    assert "combined answers (each exit answers with a combination" in out
    assert "combined answer at each exit (every row answered there): ridge" in out
    report = json.loads((tmp_path / "f.json").read_text())
    combined = report["combined"]
    assert [e["combiner"] for e in report["exits"]] == ["stage", "stage"]
    kinds = [e["combiner"] for e in combined["exits"]]
    assert kinds[0] == "stage" and kinds[1] in ("stage", "blend", "linear")
    # What the last exit's combiner learned, as the saved estimator holds it.
    last = combined["exits"][1]
    assert set(last["combiner_cv_error"]) == {"stage", "blend", "linear"}
    assert "combiner_cv_error" not in report["exits"][1]
    # A cost_weight fit answers with its combiners.
    assert [e["answers_with"] for e in combined["exits"]] == kinds
    if kinds[1] != "stage":
        assert len(last["combiner_weights"]) == 2
        assert isinstance(last["combiner_bias"], float)
    # Each stage alone is the same model on the same rows in both reports;
    # exit 0 answers with its own prediction, and so does every exit of the
    # stage answers.
    for alone, again in zip(report["stages"], combined["stages"]):
        assert alone["error"] == pytest.approx(again["error"])
    assert combined["exits"][0]["error"] == pytest.approx(report["stages"][0]["error"])
    for exit_, alone in zip(report["exits"], report["stages"]):
        assert exit_["error"] == pytest.approx(alone["error"])
    if kinds[1] == "stage":
        assert combined["exits"][1]["error"] == pytest.approx(
            report["stages"][1]["error"]
        )
    else:
        assert combined["exits"][1]["error"] != pytest.approx(
            report["stages"][1]["error"]
        )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_frontier_of_regressors_with_absolute_error_and_a_budget(
    files, tmp_path, capsys
):
    folder, _, _ = files
    code = _ridge_forest_frontier(
        folder,
        tmp_path,
        "--loss",
        "absolute_error",
        "--budget",
        5,
        "--policy",
        "disagreement",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    header = next(line for line in out.splitlines() if line.startswith("point"))
    assert header.split()[1] == "MAE"
    assert "chosen: budget=5" in out
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["loss"] == "absolute_error" and report["error_name"] == "MAE"
    assert report["chosen"]["policy_rows_cost"] <= 5 * (1 + 1e-9)
    # The chosen row shows the exit rates it took on the evaluation rows.
    rates = report["chosen"]["exit_rates"]
    assert sum(rates) == pytest.approx(1.0)
    chosen = next(line for line in out.splitlines() if line.startswith("chosen"))
    assert chosen.split()[-1] == "/".join(f"{r:.2f}" for r in rates)
    # The fit's own warning (disagreement has no earlier stage at the first of
    # two) reaches the report and the screen.
    assert any("no earlier stage to disagree with" in w for w in report["warnings"])
    assert "no earlier stage to disagree with" in out


def test_the_report_figures_are_those_of_evaluate_frontier(files):
    """Each report figure is evaluate_frontier's on the same rows: the oracle's
    cost, each point's share of the full cost (every stage's cumulative cost),
    and an exit's combiner figures even where it kept the stage's answers."""
    from sklearn.frozen import FrozenEstimator

    from skadaptive.cli._frontier_regression import (
        _combiner_report,
        _report,
        error_intervals,
    )

    folder, X, y = files
    ridge = FrozenEstimator(joblib.load(folder / "ridge.joblib"))
    forest = FrozenEstimator(joblib.load(folder / "forest.joblib"))
    cascade = AdaptiveCascadeRegressor(
        [("ridge", ridge), ("forest", forest)], costs=[1, 10], random_state=0
    ).fit(X[:250], y[:250])
    test = cascade.evaluate_frontier(X[250:], y[250:])
    intervals = error_intervals(cascade, X[250:], y[250:], 0)
    report = _report(cascade, test, 250, len(y) - 250, intervals)
    assert report["oracle"]["cost"] == test["oracle_cost"] != test["cost_at_fit"]
    assert report["stages"][-1]["cumulative_cost"] == 11.0
    for point in report["frontier"]:
        assert point["fraction_of_full_cost"] == pytest.approx(point["cost"] / 11.0)
    # Two copies of one model: the combiner keeps the stage's answers, and the
    # report still shows what every kind scored.
    same = AdaptiveCascadeRegressor(
        [("a", ridge), ("b", ridge)], costs=[1, 2], answer="combined", random_state=0
    ).fit(X, y)
    assert same.combiners_[1].kind == "stage"
    shown = _combiner_report(same.combiners_[1], "stage")
    assert set(shown["combiner_cv_error"]) == {"stage", "blend", "linear"}
    assert "combiner_weights" not in shown


def test_frontier_of_regressors_with_skips_says_what_the_policy_kept(
    files, tmp_path, capsys
):
    folder, _, _ = files
    stages = ["ridge.joblib", "forest.joblib", "forest.joblib"]
    code = _frontier(
        folder,
        tmp_path,
        *(folder / name for name in stages),
        "--data",
        folder / "data.csv",
        "--costs",
        1,
        10,
        20,
        "--budget",
        15,
        "--skips",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    skips = json.loads((tmp_path / "f.json").read_text())["chosen"]["skips"]
    # Rows that go on from the ridge need not run one forest to reach the
    # other: whichever the policy kept, the output names it and its run rates.
    assert isinstance(skips["jumps"], bool) and skips["kind"]
    assert skips["run_rates"][0] == 1.0 and len(skips["run_rates"]) == 3
    assert f"({skips['kind']})" in next(
        line for line in out.splitlines() if line.startswith("skips: ")
    )


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["ridge.joblib", "classifier.joblib"],
            "the models mix regressors (ridge.joblib (Ridge)) and classifiers "
            "(classifier.joblib (LogisticRegression)); a cascade's models must all "
            "be classifiers or all regressors",
        ),
        (
            ["ridge.joblib", "forest.joblib", "--classes", "a", "b"],
            "regressors have none; drop --classes",
        ),
        (
            ["ridge.joblib", "forest.joblib", "--policy", "entropy"],
            "--policy entropy ranks class probabilities, which regressors do not "
            "give; for regressors use one of linear, constant, eenet, "
            "disagreement, uncertainty",
        ),
        (
            ["ridge.joblib", "forest.joblib", "--task", "classification"],
            "--task classification needs classifiers, but ridge.joblib (Ridge) and "
            "forest.joblib (RandomForestRegressor) are regressors",
        ),
        (
            ["classifier.joblib", "classifier.joblib", "--task", "regression"],
            "--task regression needs regressors, but classifier.joblib",
        ),
        (
            ["classifier.joblib", "classifier.joblib", "--loss", "absolute_error"],
            "--loss absolute_error is the error a regression cascade minimises",
        ),
        (
            ["classifier.joblib", "classifier.joblib", "--policy", "disagreement"],
            "--policy disagreement is for regressors",
        ),
        (
            ["classifier.joblib", "classifier.joblib"],
            "as a regression target's are, and the models are classifiers",
        ),
        (
            ["ridge.joblib", "forest.joblib", "--data", "text.csv"],
            "the target holds text",
        ),
        (
            ["ridge.joblib", str(FIXTURES / "digits_tiny.onnx"), "--task"]
            + ["regression"],
            "OnnxRegressor needs a model with one output column",
        ),
        (
            ["ridge.joblib", "not_a_model.joblib", "--task", "regression"],
            "holds a dict, which has no predict; every stage of a regression",
        ),
    ],
)
def test_frontier_refuses_what_regressors_cannot_do(
    files, tmp_path, monkeypatch, capsys, arguments, message
):
    folder, X, _ = files
    monkeypatch.chdir(folder)
    _write_csv(folder / "text.csv", X, np.where(np.arange(len(X)) % 2, "a", "b"))
    joblib.dump({"a": 1}, folder / "not_a_model.joblib")
    if "--data" not in arguments:
        arguments = [*arguments, "--data", "data.csv"]
    code = _frontier(folder, tmp_path, *arguments)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("skadaptive frontier: error:")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "f.json").exists()


def test_an_explicit_task_refuses_options_before_reading_anything(tmp_path, capsys):
    # The data file does not exist: the error about --classes shows that the
    # options were checked first.
    code = _frontier(
        tmp_path,
        tmp_path,
        "a.joblib",
        "b.joblib",
        "--data",
        "missing.csv",
        "--task",
        "regression",
        "--classes",
        "a",
        "b",
    )
    err = capsys.readouterr().err
    assert code == 1 and "regressors have none; drop --classes" in err


def test_an_unknown_policy_lists_both_tasks_policies(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frontier", "a.joblib", "b.joblib", "--data", "d.csv", "--policy", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "classifiers take linear" in err and "regressors linear" in err
    assert "uncertainty" in err


def test_help_texts_say_how_regressors_are_handled():
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    frontier = commands.choices["frontier"].format_help()
    assert "regressors" in frontier and "MSE" in frontier and "--task" in frontier
    assert "disagreement" in frontier
    predict = commands.choices["predict"].format_help()
    assert "AdaptiveCascadeRegressor" in predict


def test_frontier_takes_onnx_regressors_with_task_regression(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    _write_csv(tmp_path / "diabetes.csv", X.astype(np.float32), y)
    code = _onnx_regression_frontier(tmp_path, tmp_path / "diabetes.csv")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MSE" in out
    # Rows of another width: the error names the ONNX file (it named no file,
    # and came from the fit, before).
    _write_csv(tmp_path / "narrow.csv", X[:, :9].astype(np.float32), y)
    code = _onnx_regression_frontier(tmp_path, tmp_path / "narrow.csv")
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {FIXTURES / 'diabetes_linear.onnx'}: " in err
    assert "got 9 features" in err


def test_an_onnx_model_beside_a_regressor_takes_its_kind(tmp_path, capsys):
    """As --help says: without --task, an ONNX model with scikit-learn
    regressors is a regressor too (the help said ONNX models count as
    classifiers unless --task regression)."""
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    _write_csv(tmp_path / "diabetes.csv", X, y)
    joblib.dump(Ridge().fit(X, y), tmp_path / "ridge.joblib")
    code = _frontier(
        tmp_path,
        tmp_path,
        tmp_path / "ridge.joblib",
        FIXTURES / "diabetes_mlp.onnx",
        "--data",
        tmp_path / "diabetes.csv",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MSE" in out
    with pytest.raises(SystemExit):
        main(["frontier", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "ONNX models say nothing of their kind" in help_text


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_frontier_names_the_joblib_model_that_takes_other_features(
    files, tmp_path, capsys, kind
):
    """The error names the model file; an .npz file's labels are an array, so
    its advice is --x-key, not --label (which .npz refuses)."""
    folder, X, y = files
    if kind == "csv":
        data = tmp_path / "other.csv"
        _write_csv(data, X[:, :-1], y)
    else:
        data = tmp_path / "other.npz"
        np.savez(data, X=X[:, :-1], y=y)
    code = _frontier(
        folder,
        tmp_path,
        folder / "ridge.joblib",
        folder / "forest.joblib",
        "--data",
        data,
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (
        f"{folder / 'ridge.joblib'}: the Ridge in it takes {X.shape[1]} features" in err
    )
    assert f"other.{kind} have {X.shape[1] - 1}" in err
    assert ("--x-key" in err) == (kind == "npz")
    assert ("--label" in err) == (kind == "csv")


def test_predict_says_to_name_the_target_column_when_it_is_read_as_a_feature(
    files, tmp_path, capsys
):
    folder, X, y = files
    _write_csv(tmp_path / "new.csv", X[:20], y[:20], label="price")
    code = main(
        ["predict", str(folder / "cascade.joblib"), "--data", str(tmp_path / "new.csv")]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "one more than the model's" in err
    assert "pass --label price" in err  # the column's own name
    code = main(
        [
            "predict",
            str(folder / "cascade.joblib"),
            "--data",
            str(tmp_path / "new.csv"),
            "--label",
            "price",
        ]
    )
    assert code == 0, capsys.readouterr().err


def test_whole_number_targets_beyond_float_integers_are_read_as_floats(tmp_path):
    """Floats of 2**53 and above are all whole numbers: a target of 1e20 was
    cast to int64 and overflowed to -9.2e18 in every row (CSV and .npy)."""
    from skadaptive.cli._io import load_data

    X = np.arange(6.0).reshape(3, 2)
    y = np.array([1.31e20, 1.27e20, 2.0**53])
    np.save(tmp_path / "rows.npy", np.column_stack([X, y]))
    _write_csv(tmp_path / "rows.csv", X, y, label="target")
    for path, label in (
        (tmp_path / "rows.npy", None),
        (tmp_path / "rows.csv", "target"),
    ):
        _, target, _ = load_data(str(path), label=label)
        assert target.dtype == np.float64
        assert_array_equal(target, y)
    small = np.array([3.0, -2.0, 2.0**53 - 1])  # class-like labels stay integers
    np.save(tmp_path / "small.npy", np.column_stack([X, small]))
    _, target, _ = load_data(str(tmp_path / "small.npy"))
    assert target.dtype == np.int64
    assert_array_equal(target, small.astype(np.int64))


def test_empty_csv_cells_are_missing_values_for_stages_that_take_them(tmp_path):
    """pandas writes NaN as an empty cell; it was refused as 'not a number'
    while .npz files and a literal 'nan' worked."""
    from skadaptive.cli._io import CommandError, load_data

    X = np.array([[1.0, np.nan], [np.nan, 4.0], [5.0, 6.0]])
    y = np.array([0.5, 1.5, 2.5])
    (tmp_path / "rows.csv").write_text("f0,f1,target\n1,,0.5\n,4,1.5\n5,6,2.5\n")
    rows, target, names = load_data(str(tmp_path / "rows.csv"), label="target")
    assert_array_equal(rows, X)  # NaN where the cells are empty
    assert_array_equal(target, y)
    assert names == ["f0", "f1"]
    # Still refused: a cell that is text.
    (tmp_path / "bad.csv").write_text("f0,f1,target\n1,x,0.5\n")
    with pytest.raises(CommandError, match="not a number"):
        load_data(str(tmp_path / "bad.csv"), label="target")


def test_frontier_reports_no_feature_names_warning_for_columns_it_matched(
    tmp_path, capsys
):
    """Models fitted on a DataFrame, a CSV with their columns: the CLI matches
    the columns by name itself, and scikit-learn's warning that the rows have
    no names was reported as the cascade's own warning."""
    import pandas as pd
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=400, noise=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    joblib.dump(Ridge().fit(frame[:200], y[:200]), tmp_path / "ridge.joblib")
    forest = RandomForestRegressor(20, random_state=0).fit(frame[:200], y[:200])
    joblib.dump(forest, tmp_path / "forest.joblib")
    frame[200:].assign(target=y[200:]).to_csv(tmp_path / "rows.csv", index=False)
    code = _frontier(
        tmp_path,
        tmp_path,
        tmp_path / "ridge.joblib",
        tmp_path / "forest.joblib",
        "--data",
        tmp_path / "rows.csv",
        "--label",
        "target",
        "--costs",
        "1",
        "10",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "feature names" not in out
    report = json.loads((tmp_path / "f.json").read_text())
    assert not any("feature names" in w for w in report["warnings"])


def test_a_missing_value_in_the_first_row_is_not_blamed_on_an_onnx_model(
    tmp_path, capsys
):
    """The ONNX models are checked on one row at load: the first, which held
    the NaN of an empty cell, so the error named the model file."""
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    X[0, 0] = np.nan
    _write_csv(tmp_path / "rows.csv", X, y)
    code = _onnx_regression_frontier(tmp_path, tmp_path / "rows.csv")
    err = capsys.readouterr().err
    assert code == 1
    assert "X has NaN in 1 row" in err and "does not accept missing values" in err
    assert "diabetes_linear.onnx:" not in err


def test_npz_rows_of_another_width_get_no_label_column_advice(files, tmp_path, capsys):
    """An .npz file's labels are an array: the hints to name a label column
    with --label (which .npz refuses) were wrong there."""
    folder, X, y = files
    np.savez(tmp_path / "wide.npz", X=np.column_stack([X, y]), y=y)
    assert (
        main(
            [
                "predict",
                str(folder / "cascade.joblib"),
                "--data",
                str(tmp_path / "wide.npz"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "--label" not in err and "features" in err
