"""The ``skadaptive`` command line: every command and its bad-input paths."""

import io
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from skadaptive.cli import main, run_demo
from skadaptive.cli._progress import Progress

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"


def test_demo_prints_every_stage_the_cascade_and_the_oracle(tmp_path):
    out = io.StringIO()
    plot = tmp_path / "demo.png"
    figures = run_demo(cost_weights=(0.0, 0.05), out=out, plot=str(plot))
    text = out.getvalue()
    for name in (
        "stage logreg",
        "stage trees",
        "stage svc",
        "cost_weight=0.05",
        "oracle",
        f"to {plot}",
    ):
        assert name in text
    assert figures["oracle"]["accuracy"] >= max(
        figures[s]["accuracy"] for s in ("logreg", "trees", "svc")
    )
    cheap, costly = figures["cascade"][1], figures["cascade"][0]
    assert cheap["normalized_cost"] <= costly["normalized_cost"]
    assert cheap["accuracy"] > figures["logreg"]["accuracy"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Stages whose cost and accuracy both rise (measured costs).
    stages = [figures[s] for s in ("logreg", "trees", "svc")]
    for earlier, later in zip(stages, stages[1:]):
        assert earlier["normalized_cost"] < later["normalized_cost"]
        assert earlier["accuracy"] < later["accuracy"]


def test_demo_chooses_its_point_by_the_stated_rule_on_held_out_figures():
    from skadaptive.cli._demo import CHOSEN_WITHIN, _chosen

    points = [
        {"cost_weight": 0.0, "expected_accuracy": 0.98, "expected_cost": 10.0},
        {"cost_weight": 0.01, "expected_accuracy": 0.977, "expected_cost": 3.0},
        {"cost_weight": 0.1, "expected_accuracy": 0.97, "expected_cost": 1.0},
    ]
    # The cheapest within CHOSEN_WITHIN (0.5 points) of the best stage.
    assert CHOSEN_WITHIN == 0.005
    assert _chosen(points, best_stage=0.98)["cost_weight"] == 0.01
    assert _chosen(points, best_stage=0.974)["cost_weight"] == 0.1
    # None close enough: the most accurate.
    assert _chosen(points, best_stage=0.99)["cost_weight"] == 0.0
    out = io.StringIO()
    figures = run_demo(cost_weights=(0.0, 0.05), out=out, plot=None)
    assert figures["chosen"] in figures["cascade"]
    chosen_line = [line for line in out.getvalue().splitlines() if " *" in line]
    assert chosen_line == [
        line
        for line in out.getvalue().splitlines()
        if f"cost_weight={figures['chosen']['cost_weight']:g} *" in line
    ]
    assert "* chosen: the cascade row with the lowest held-out run cost" in (
        out.getvalue()
    )
    # What one test row weighs, so that a newcomer reads the test column's
    # small differences as the noise they are.
    assert "test accuracy: on 719 rows, one row is 0.14 points" in out.getvalue()
    # The rule holds on the held-out figures the estimator reported.
    floor = figures["best_stage_held_out_accuracy"] - CHOSEN_WITHIN
    close = [p for p in figures["cascade"] if p["expected_accuracy"] >= floor]
    if close:
        assert figures["chosen"]["expected_accuracy"] >= floor
        assert figures["chosen"]["expected_cost"] == min(
            p["expected_cost"] for p in close
        )


def test_negative_cost_weight_is_an_error(capsys):
    assert main(["demo", "--cost-weights", "-1"]) == 1
    assert "--cost-weights must be finite numbers >= 0; got -1" in (
        capsys.readouterr().err
    )


def test_a_cost_that_is_not_a_number_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["frontier", "a.joblib", "b.joblib", "--data", "d.npz", "--costs", "1", "x"]
        )
    assert exit_info.value.code == 2
    assert "argument --costs: 'x' is not a number or 'auto'" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------ frontier


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """Two fitted scikit-learn stages (joblib) and labelled data in 3 formats."""
    folder = tmp_path_factory.mktemp("cli")
    X, y = load_digits(return_X_y=True)
    X_train, X_data, y_train, y_data = train_test_split(X, y, random_state=0)
    joblib.dump(
        DecisionTreeClassifier(max_depth=6, random_state=0).fit(X_train, y_train),
        folder / "tree.joblib",
    )
    joblib.dump(
        LogisticRegression(max_iter=3000).fit(X_train, y_train), folder / "lr.joblib"
    )
    np.savez(folder / "data.npz", X=X_data, y=y_data)
    np.save(folder / "data.npy", np.column_stack([X_data, y_data]))
    header = ",".join([f"f{i}" for i in range(64)] + ["label"])
    rows = [",".join(map(str, [*row, label])) for row, label in zip(X_data, y_data)]
    (folder / "data.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


def _digits_frontier(folder, tmp_path, *options) -> int:
    """``skadaptive frontier`` on the digits tree and logistic regression,
    costs 1 and 10, writing f.png and f.json into ``tmp_path``."""
    return main(
        [
            "frontier",
            str(folder / "tree.joblib"),
            str(folder / "lr.joblib"),
            "--data",
            str(folder / "data.npz"),
            "--costs",
            "1",
            "10",
            "--plot",
            str(tmp_path / "f.png"),
            "--json",
            str(tmp_path / "f.json"),
            *options,
        ]
    )


def _halves_models(digits_files, tmp_path):
    """A folder with two naive Bayes models on the two halves of the digits'
    pixels (as tree.joblib and lr.joblib) and the digits data: their errors
    are independent enough for a combiner to be clearly better on the 315
    policy rows (with the tree and the logistic regression it is a draw of
    the folds)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, random_state=0)
    halves = tmp_path / "halves"
    halves.mkdir()
    for name, columns in (("tree", slice(0, 32)), ("lr", slice(32, 64))):
        model = make_pipeline(
            ColumnTransformer([("half", "passthrough", columns)]), GaussianNB()
        )
        joblib.dump(model.fit(X_train, y_train), halves / f"{name}.joblib")
    (halves / "data.npz").write_bytes((digits_files / "data.npz").read_bytes())
    return halves


@pytest.mark.parametrize("data", ["data.npz", "data.npy", "data.csv"])
def test_frontier_of_joblib_models_writes_table_json_plot_and_model(
    digits_files, tmp_path, data, capsys
):
    folder = digits_files
    code = main(
        [
            "frontier",
            str(folder / "tree.joblib"),
            str(folder / "lr.joblib"),
            "--data",
            str(folder / data),
            "--costs",
            "1",
            "10",
            "--budget",
            "4",
            "--plot",
            str(tmp_path / "f.png"),
            "--json",
            str(tmp_path / "f.json"),
            "--save",
            str(tmp_path / "cascade.joblib"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stage tree" in out and "stage lr" in out and "oracle" in out
    assert "chosen: budget=4" in out
    report = json.loads((tmp_path / "f.json").read_text())
    assert [s["name"] for s in report["stages"]] == ["tree", "lr"]
    assert report["chosen"]["policy_rows_cost"] <= 4 * (1 + 1e-9)
    assert report["chosen"]["expected_cost"] > 0
    assert len(report["frontier"]) > 1
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    cascade = joblib.load(tmp_path / "cascade.joblib")
    assert cascade.budget == 4

    # predict with the saved cascade, on the same data format
    assert (
        main(
            [
                "predict",
                str(tmp_path / "cascade.joblib"),
                "--data",
                str(folder / data),
                "--output",
                str(tmp_path / "pred.csv"),
                # a .npy file has no column names: say which column is the label
                *(["--label", "-1"] if data.endswith(".npy") else []),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "exit rate" in out and "accuracy:" in out and "average cost" in out
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "prediction,exit_stage,cost"
    assert len(lines) == 1 + 450


def test_frontier_answer_both_prints_and_writes_both_kinds(
    digits_files, tmp_path, capsys, monkeypatch
):
    """Stage and combined answers side by side: each with its own table, its
    JSON report and its curve, the stages alone the same in both. Whether the
    rows are too few is judged on each kind's own ends (combined answers: the
    last exit's combiner, not the last stage alone)."""
    from skadaptive.cli import _frontier

    judged = []
    warn = _frontier.too_few_rows_warning

    def spy(n_rows, cheapest, full_cost, *args):
        judged.append((list(cheapest), list(full_cost)))
        return warn(n_rows, cheapest, full_cost, *args)

    monkeypatch.setattr(_frontier, "too_few_rows_warning", spy)
    # The plot's legend, read from the figure as it is saved.
    import matplotlib.figure

    legends = []
    save = matplotlib.figure.Figure.savefig

    points = {}

    def keep_legend(figure, *args, **kwargs):
        legend = figure.axes[0].get_legend()
        legends.append([text.get_text() for text in legend.get_texts()])
        # Two kinds' many entries sit beside the axes, over no point.
        figure.canvas.draw()
        beside = legend.get_window_extent().x0 >= figure.axes[0].bbox.x1
        legends[-1].append(f"beside: {beside}")
        for artist in figure.axes[0].collections:
            points[artist.get_label()] = artist.get_offsets()[0].tolist()
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep_legend)
    halves = _halves_models(digits_files, tmp_path)
    code = _digits_frontier(halves, tmp_path, "--answer", "both")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stage answers (each exit answers" in out
    assert "combined answers (each exit answers" in out
    assert out.count("chosen: cost_weight=0.01") == 2
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["answer"] == "stage"
    combined = report["combined"]
    assert combined["answer"] == "combined"
    assert [s["accuracy"] for s in combined["stages"]] == [
        s["accuracy"] for s in report["stages"]
    ]
    assert combined["chosen"]["accuracy"] != report["chosen"]["accuracy"]
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    # Each kind of answer has its oracle on the plot, as in the tables.
    assert len(legends) == 1
    assert "beside: True" in legends[0]
    assert "oracle, stage answers" in legends[0]
    assert "oracle, combined answers" in legends[0]
    for kind, kind_report in (("stage", report), ("combined", combined)):
        oracle = kind_report["oracle"]
        assert points[f"oracle, {kind} answers"] == pytest.approx(
            [oracle["cost"], oracle["accuracy"]]
        )
    ends = [
        ([r["exits"][0]["accuracy_interval"], r["exits"][-1]["accuracy_interval"]])
        for r in (report, combined)
    ]
    assert judged == [tuple(e) for e in ends]
    assert combined["exits"][-1]["combiner"] != "stage"
    assert ends[1][1] != combined["stages"][-1]["accuracy_interval"]


def test_predict_says_what_each_exit_of_a_combined_model_answers_with(
    digits_files, tmp_path, capsys
):
    """A model fitted with answer="combined": each exit's combiner (or its own
    output) is in the table; a model with stage answers has no such column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline

    from skadaptive import AdaptiveCascadeClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_policy, y_train, y_policy = train_test_split(X, y, random_state=0)
    # Naive Bayes on the two halves of the pixels: errors independent enough
    # that the last exit's combiner is clearly better than its stage alone.
    stages = [
        (
            name,
            FrozenEstimator(
                make_pipeline(
                    ColumnTransformer([("half", "passthrough", columns)]),
                    GaussianNB(),
                ).fit(X_train, y_train)
            ),
        )
        for name, columns in (("left", slice(0, 32)), ("right", slice(32, 64)))
    ]
    data = str(digits_files / "data.npz")
    lines = {}
    for answer in ("stage", "combined"):
        model = AdaptiveCascadeClassifier(
            stages, costs=[1, 2], answer=answer, random_state=0
        ).fit(X_policy, y_policy)
        joblib.dump(model, tmp_path / f"{answer}.joblib")
        assert (
            main(["predict", str(tmp_path / f"{answer}.joblib"), "--data", data]) == 0
        )
        lines[answer] = capsys.readouterr().out.splitlines()
    kind = model.combiners_[1].kind
    assert kind != "stage"
    header = "a row exiting here is answered by"
    assert header in lines["combined"][1]
    assert lines["combined"][2].endswith("its own output")
    assert lines["combined"][3].endswith(f"{kind} of left, right")
    assert not any(header in line for line in lines["stage"])


def test_frontier_of_onnx_models_measures_costs(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    X, y = load_digits(return_X_y=True)
    _, X_test, _, y_test = train_test_split(
        X / 16, y, test_size=0.3, stratify=y, random_state=0
    )
    np.savez(tmp_path / "digits.npz", X=X_test.astype(np.float32), y=y_test)

    def frontier(name, *options):
        return main(
            [
                "frontier",
                str(FIXTURES / "digits_tiny.onnx"),
                str(FIXTURES / "digits_large.onnx"),
                "--data",
                str(tmp_path / "digits.npz"),
                "--plot",
                str(tmp_path / f"{name}.png"),
                "--json",
                str(tmp_path / f"{name}.json"),
                *options,
            ]
        )

    code = frontier("f")
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["costs_unit"] == "seconds per row (measured), for calls of 65536 rows"
    assert report["stages"][-1]["accuracy"] > 0.95
    # Measured costs have a part per call: the command says from which batch
    # size the chosen cascade costs less than its last stage alone.
    advice = report["batch_sizes"]
    assert advice["fitted_for_batch_size"] == 65536
    sizes = [p["batch_size"] for p in advice["points"]]
    assert sizes[0] == 1 and sizes[-1] == 65536
    # Pays off from the smallest size from which every larger one pays (as
    # printed, to two decimals: 1.004 is not called faster).
    speed_ups = [round(p["speed_up"], 2) for p in advice["points"]]
    first = advice["pays_off_from"]
    if first is None:
        assert speed_ups[-1] <= 1
    else:
        k = sizes.index(first)
        assert min(speed_ups[k:]) > 1 and (k == 0 or speed_ups[k - 1] <= 1)
    assert "expected speed-up over the last stage alone, by rows per call" in out
    # What a single-row call costs, and from which batch size it pays, said
    # in words whatever the batch size the policy was learned for.
    one = advice["points"][0]
    assert f"A single-row call costs {1e3 * one['cost_per_row']:.3g} ms" in out
    assert one["last_stage_alone_per_row"] == pytest.approx(
        one["speed_up"] * one["cost_per_row"]
    )
    assert (
        "The cascade is faster than its last stage alone at every batch size "
        f"from {first} row"
        if first is not None
        else "At none of these batch sizes"
    ) in out
    # A one-row deployment: costs, policy and figures for calls of one row.
    code = frontier(
        "g", "--batch-size", "1", "--save", str(tmp_path / "one_row.joblib")
    )
    assert code == 0
    assert "At 1 row per call (the batch size the policy was learned for)" in (
        capsys.readouterr().out
    )
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["costs_unit"] == "seconds per row (measured), for calls of 1 row"
    one_row = joblib.load(tmp_path / "one_row.joblib")
    assert one_row.cost_batch_size_ == 1
    assert_allclose(one_row.costs_, one_row.costs_per_row_ + one_row.costs_per_call_)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.joblib", "lr.joblib", "--data", "data.npz"], "no such file"),
        (["tree.joblib", "--data", "data.npz"], "at least two models"),
        (["tree.joblib", "lr.joblib", "--data", "nope.npz"], "no such file"),
        (["tree.joblib", "lr.joblib", "--data", "data.txtx"], "unknown data format"),
        (["tree.joblib", "data.npz", "--data", "data.npz"], "unknown model format"),
        (["tree.joblib", "lr.joblib", "--data", "data.npz", "--x-key", "Z"], "'Z'"),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.csv", "--label", "klass"],
            "no column 'klass'",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--costs", "1"],
            "--costs needs one number per model",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--costs", "1", "auto"],
            "--costs must be 'auto' or one number per stage",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--costs", "2", "5"]
            + ["--budget", "1"],
            "cannot be met",
        ),
        (["tree.joblib", "lr.joblib", "--data", "bad.npz"], "cannot read"),
        (["tree.joblib", "not_a_model.joblib", "--data", "data.npz"], "no predict_"),
        (["tree.joblib", "lr.joblib", "--data", "narrow.npz"], "features"),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--test-size", "2"],
            "--test-size",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--batch-size", "0"],
            "--batch-size must be >= 1",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "extra_label.npz"],
            "labels [10] that model 'tree' does not predict",
        ),
        (
            # Labels written otherwise: dropping the unknown rows drops all.
            ["tree.joblib", "lr.joblib", "--data", "shifted.npz"],
            "none of the data's labels ([100, 101, 102, 103, 104, 105, 106, 107, "
            "108, 109]) is a class of model 'tree'",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--classes", "a"],
            "are not numbers like the labels",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--classes", "0.5"],
            "not whole numbers",
        ),
        (
            ["tree.joblib", "lr.joblib", "--data", "data.npz", "--answer", "both"]
            + ["--save", "x.joblib"],
            "--save saves one cascade: pass --answer stage or --answer combined",
        ),
    ],
)
def test_frontier_bad_inputs_exit_1_with_a_message(
    digits_files, tmp_path, monkeypatch, capsys, arguments, message
):
    monkeypatch.chdir(digits_files)
    (digits_files / "data.txtx").write_text("x")
    (digits_files / "bad.npz").write_bytes(b"not a zip file")
    joblib.dump({"a": 1}, digits_files / "not_a_model.joblib")
    np.savez(digits_files / "narrow.npz", X=np.zeros((60, 3)), y=np.arange(60) % 10)
    with np.load(digits_files / "data.npz") as data:
        # one row of a label no model knows: it lands in either split
        np.savez(
            digits_files / "extra_label.npz", X=data["X"], y=np.r_[data["y"][:-1], 10]
        )
        np.savez(digits_files / "shifted.npz", X=data["X"], y=data["y"] + 100)
    code = main(
        ["frontier", *arguments, "--json", str(tmp_path / "j"), "--plot", "p.png"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("skadaptive frontier: error:")
    assert message in err
    assert "Traceback" not in err


def test_predict_bad_inputs(digits_files, tmp_path, capsys):
    assert main(["predict", "missing.joblib", "--data", "x.npz"]) == 1
    assert "no such file" in capsys.readouterr().err
    joblib.dump(LogisticRegression(), tmp_path / "lr.joblib")
    code = main(
        [
            "predict",
            str(tmp_path / "lr.joblib"),
            "--data",
            str(digits_files / "data.npz"),
        ]
    )
    assert code == 1
    assert "not a fitted AdaptiveCascadeClassifier" in capsys.readouterr().err


def test_progress_shows_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    quiet, loud = io.StringIO(), Terminal()
    for stream in (quiet, loud):
        with Progress(2, stream=stream).step("measuring costs"):
            pass
    assert quiet.getvalue() == ""
    assert "[1/2] measuring costs ..." in loud.getvalue()
    assert "done in" in loud.getvalue()


def test_a_fit_in_a_progress_step_shows_each_fold_as_it_ends(capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from sklearn.datasets import load_iris

    from skadaptive import AdaptiveCascadeClassifier

    X, y = load_iris(return_X_y=True)
    terminal = Terminal()
    progress = Progress(1, stream=terminal)
    with progress.step("fitting"):
        AdaptiveCascadeClassifier(
            [
                ("tree", DecisionTreeClassifier(max_depth=1)),
                ("lr", LogisticRegression()),
            ],
            costs=[1, 5],
            cv=3,
            verbose=progress.verbose,
        ).fit(X, y)
    lines = terminal.getvalue().splitlines()
    # Each of the 2 stages x 3 folds, then the policy, between start and end.
    assert lines[0] == "[1/1] fitting ..."
    assert sum("[skadaptive]" in line and "fold" in line for line in lines) == 6
    assert any("policy" in line for line in lines)
    assert lines[-1].startswith("[1/1] fitting: done in")
    assert capsys.readouterr().out == ""  # the command's own output stays clean


def test_frontier_reads_float_looking_labels_and_numeric_classes(
    digits_files, tmp_path, capsys
):
    csv_file = tmp_path / "floats.csv"
    lines = (digits_files / "data.csv").read_text().splitlines()
    csv_file.write_text(
        "\n".join([lines[0], *(f"{line}.0" for line in lines[1:])]) + "\n"
    )
    classes = [f"{c}.0" for c in range(10)]
    arguments = ["--costs", "1", "10", "--json", str(tmp_path / "f.json")]
    arguments += ["--plot", str(tmp_path / "f.png"), "--classes", *classes]
    stages = [str(digits_files / "tree.joblib"), str(digits_files / "lr.joblib")]
    for data in (csv_file, digits_files / "data.npy"):
        code = main(["frontier", *stages, "--data", str(data), *arguments])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        report = json.loads((tmp_path / "f.json").read_text())
        assert report["stages"][-1]["accuracy"] > 0.9


def test_frontier_renames_models_named_like_a_parameter(digits_files, tmp_path):
    (tmp_path / "loss.joblib").write_bytes((digits_files / "tree.joblib").read_bytes())
    (tmp_path / "a__b.joblib").write_bytes((digits_files / "lr.joblib").read_bytes())
    code = main(
        [
            "frontier",
            str(tmp_path / "loss.joblib"),
            str(tmp_path / "a__b.joblib"),
            "--data",
            str(digits_files / "data.npz"),
            "--costs",
            "1",
            "10",
            "--json",
            str(tmp_path / "f.json"),
            "--plot",
            str(tmp_path / "f.png"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "f.json").read_text())
    assert [s["name"] for s in report["stages"]] == ["0_loss", "1_a_b"]


# ------------------------------------------------- files a new user may have


def _frontier(folder, data, *options):
    return main(
        [
            "frontier",
            str(folder / "tree.joblib"),
            str(folder / "lr.joblib"),
            "--data",
            str(data),
            "--costs",
            "1",
            "5",
            "--json",
            str(folder / "out.json"),
            "--plot",
            str(folder / "out.png"),
            *options,
        ]
    )


def test_labels_saved_as_a_column_are_one_column(digits_files, tmp_path, capsys):
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    np.savez(tmp_path / "column.npz", X=X, y=y[:, None])
    np.savez(tmp_path / "two.npz", X=X, y=np.column_stack([y, y]))
    model = tmp_path / "cascade.joblib"
    assert _frontier(digits_files, tmp_path / "column.npz", "--save", str(model)) == 0
    accuracy = {}
    for name in ("column.npz", "data.npz"):
        folder = tmp_path if name == "column.npz" else digits_files
        capsys.readouterr()
        assert main(["predict", str(model), "--data", str(folder / name)]) == 0
        (line,) = [
            line
            for line in capsys.readouterr().out.splitlines()
            if line.startswith("accuracy")
        ]
        accuracy[name] = line
    # An (n, 1) array was compared with every label at once: 0.33 for 0.79.
    assert accuracy["column.npz"] == accuracy["data.npz"]
    code = _frontier(digits_files, tmp_path / "two.npz")
    assert code == 1
    assert "the labels must be one column" in capsys.readouterr().err


def test_a_missing_label_is_called_missing(digits_files, tmp_path, capsys):
    """An empty label cell was taken for a class '' of its own: frontier said
    that none of the labels was a class of the models."""
    lines = (digits_files / "data.csv").read_text().splitlines()
    lines[7] = lines[7][: lines[7].rindex(",") + 1]  # the 7th row's label
    (tmp_path / "gap.csv").write_text("\n".join(lines) + "\n")
    message = "1 label is missing (empty cells, or NaN; the first in data row 7)"
    model = tmp_path / "cascade.joblib"
    assert _frontier(digits_files, digits_files / "data.npz", "--save", str(model)) == 0
    capsys.readouterr()
    assert _frontier(digits_files, tmp_path / "gap.csv") == 1
    assert message in capsys.readouterr().err
    # Beside an ONNX model, whose classes are read from the labels (it named
    # the ONNX model, and the labels ['', '0', ...]).
    onnx = [str(FIXTURES / "digits_tiny.onnx"), str(digits_files / "tree.joblib")]
    code = main(["frontier", *onnx, "--data", str(tmp_path / "gap.csv")])
    assert code == 1
    assert message in capsys.readouterr().err
    # NaN labels of float32 in an .npz (they were labels [nan] of no class).
    with np.load(digits_files / "data.npz") as data:
        labels = data["y"].astype(np.float32)
        labels[6] = np.nan
        np.savez(tmp_path / "gap.npz", X=data["X"], y=labels)
    assert _frontier(digits_files, tmp_path / "gap.npz") == 1
    assert message in capsys.readouterr().err
    # predict reads labels only for an accuracy: it says so and goes on.
    predict = ["predict", str(model), "--data", str(tmp_path / "gap.csv")]
    assert main([*predict, "--label", "label"]) == 0
    printed = capsys.readouterr()
    assert message in printed.out + printed.err
    assert "The rows are used without their labels" in printed.out + printed.err


def test_csv_columns_are_matched_to_the_models_by_name(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    X, y = load_digits(return_X_y=True)
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    joblib.dump(
        DecisionTreeClassifier(max_depth=6, random_state=0).fit(frame[:900], y[:900]),
        tmp_path / "tree.joblib",
    )
    joblib.dump(
        LogisticRegression(max_iter=3000).fit(frame[:900], y[:900]),
        tmp_path / "lr.joblib",
    )
    data = frame[900:].assign(label=y[900:])
    data.to_csv(tmp_path / "data.csv", index=False)
    data[data.columns[::-1]].to_csv(tmp_path / "reversed.csv", index=False)
    data.drop(columns="f3").to_csv(tmp_path / "short.csv", index=False)
    reports = {}
    for name in ("data.csv", "reversed.csv"):
        assert _frontier(tmp_path, tmp_path / name) == 0
        reports[name] = json.loads((tmp_path / "out.json").read_text())
    # Reversed columns gave stage accuracies of 0.23 and 0.32 for 0.70 and 0.78.
    assert reports["reversed.csv"]["stages"] == reports["data.csv"]["stages"]
    assert reports["reversed.csv"]["chosen"] == reports["data.csv"]["chosen"]
    capsys.readouterr()
    assert _frontier(tmp_path, tmp_path / "short.csv") == 1
    assert "the file lacks ['f3']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--plot", "plot.txt"], "matplotlib cannot write .txt files"),
        (["--plot", "plot"], "no file extension"),
        (["--test-size", "0.999"], "cannot be split with --test-size 0.999"),
    ],
)
def test_frontier_refuses_before_fitting(digits_files, capsys, options, message):
    pytest.importorskip("matplotlib")
    # The options come after _frontier's own: the last --plot is taken.
    code = _frontier(digits_files, digits_files / "data.npz", *options)
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("seed", ["-1", "4294967296", "x"])
def test_a_seed_numpy_cannot_take_is_a_usage_error(capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--seed", seed])
    assert exit_.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_a_save_that_cannot_be_written_is_an_error(
    digits_files, tmp_path, monkeypatch, capsys
):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(joblib, "dump", refuse)
    code = _frontier(digits_files, digits_files / "data.npz", "--save", "m.joblib")
    err = capsys.readouterr().err
    assert code == 1
    assert "--save m.joblib: cannot write: read-only file system" in err


def test_predict_refuses_a_label_key_that_is_not_there(digits_files, tmp_path, capsys):
    model = tmp_path / "cascade.joblib"
    assert _frontier(digits_files, digits_files / "data.npz", "--save", str(model)) == 0
    capsys.readouterr()
    data = str(digits_files / "data.npz")
    assert main(["predict", str(model), "--data", data, "--y-key", "zzz"]) == 1
    assert "no array named 'zzz'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["--json", "lr.joblib"], "--json lr.joblib: is an input of the command"),
        (["--save", "data.npz"], "--save data.npz: is an input of the command"),
        (["--json", "same", "--plot", "same.png", "--save", "same"], "is also"),
    ],
)
def test_frontier_never_writes_over_its_inputs(
    digits_files, monkeypatch, capsys, outputs, message
):
    monkeypatch.chdir(digits_files)
    before = (digits_files / "lr.joblib").read_bytes()
    arguments = ["frontier", "tree.joblib", "lr.joblib", "--data", "data.npz"]
    assert main([*arguments, "--costs", "1", "5", *outputs]) == 1
    assert message in capsys.readouterr().err
    assert (digits_files / "lr.joblib").read_bytes() == before


def test_onnx_regressors_without_task_regression_are_named_as_such(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    np.savez(tmp_path / "diabetes.npz", X=X.astype(np.float32), y=y)
    code = main(
        [
            "frontier",
            str(FIXTURES / "diabetes_linear.onnx"),
            str(FIXTURES / "diabetes_mlp.onnx"),
            "--data",
            str(tmp_path / "diabetes.npz"),
            "--json",
            str(tmp_path / "out.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "one output column, as a regressor has" in err
    assert "--task regression" in err


def test_files_read_otherwise_than_meant_are_refused(digits_files, tmp_path, capsys):
    with np.load(digits_files / "data.npz") as data:
        X, y = data["X"], data["y"]
    rows = [",".join(map(str, [*row, label])) for row, label in zip(X, y)]
    (tmp_path / "no_header.csv").write_text("\n".join(rows) + "\n")
    # Column indices as names (a DataFrame of an array) are a header.
    header = ",".join(str(i) for i in range(X.shape[1] + 1))
    (tmp_path / "index_header.csv").write_text("\n".join([header, *rows]) + "\n")
    npz = digits_files / "data.npz"
    cases = [
        (tmp_path / "no_header.csv", [], "its first row is all numbers"),
        (
            npz,
            ["--label", "3"],
            "the labels of an .npz file are an array: pass --y-key",
        ),
        (npz, ["--budget", "nan"], "--budget must be a positive number; got nan"),
        (
            digits_files / "data.csv",
            ["--x-key", "rows"],
            "--x-key and --y-key name arrays of an .npz file",
        ),
    ]
    for data, options, message in cases:
        assert _frontier(digits_files, data, *options) == 1, (data, options)
        assert message in capsys.readouterr().err
    assert _frontier(digits_files, tmp_path / "index_header.csv") == 0


def test_column_names_are_read_from_models_stages_and_saved_cascades(tmp_path):
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.frozen import FrozenEstimator

    from skadaptive import AdaptiveCascadeClassifier
    from skadaptive.cli._io import fitted_feature_names

    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:, :8], columns=[f"f{i}" for i in range(8)])
    # A model whose estimators_ is a 2-D array of trees, fitted on an array.
    boosting = GradientBoostingClassifier(n_estimators=2).fit(X[:300, :8], y[:300])
    assert fitted_feature_names([boosting]) is None
    named = LogisticRegression(max_iter=2000).fit(frame[:300], y[:300])
    assert fitted_feature_names([boosting, named]) == list(frame.columns)
    assert fitted_feature_names([FrozenEstimator(named)]) == list(frame.columns)
    cascade = AdaptiveCascadeClassifier(
        [("gb", FrozenEstimator(boosting)), ("lr", FrozenEstimator(named))],
        costs=[1, 2],
    ).fit(X[300:600, :8], y[300:600])
    assert fitted_feature_names([cascade]) == list(frame.columns)


def test_frontier_says_why_a_budget_is_not_spent(digits_files, tmp_path, capsys):
    """A policy that spends less than its budget (budget_status_ "saturated":
    the kept kind's best thresholds within it cost less) is explained in the
    text output and reported in the JSON; a spent budget and a cost_weight
    need no such line."""

    def frontier(*options):
        code = _digits_frontier(digits_files, tmp_path, *options)
        out = capsys.readouterr().out
        assert code == 0, out
        return out, json.loads((tmp_path / "f.json").read_text())["chosen"]

    out, chosen = frontier("--budget", "8")
    assert chosen["budget_status"] == "saturated"
    assert chosen["policy_rows_cost"] < 0.97 * 8
    assert "budget: saturated (budget=8)" in out
    # What "saturated" says: of the kind kept, not of every policy searched.
    assert "for the kind of exit score kept" in out
    assert "found no policy" not in out
    assert f"spend {chosen['policy_rows_cost']:.4g} a row there, below" in out
    out, chosen = frontier("--budget", "4")
    assert chosen["budget_status"] == "spent" and "budget:" not in out
    out, chosen = frontier("--cost-weight", "0.01")
    assert chosen["budget_status"] is None and "budget:" not in out


def test_frontier_warns_when_the_policy_is_learned_on_few_rows(
    digits_files, tmp_path, capsys
):
    """450 data rows with --test-size 0.85: 67 policy rows, under 100."""
    code = _digits_frontier(digits_files, tmp_path, "--test-size", "0.85")
    out = capsys.readouterr().out
    assert code == 0
    assert "67 rows to learn the policy" in out
    assert "with its own answer). The plot draws each stage alone" in out
    assert "warning: the policy is learned on only 67 rows (fewer than 100)" in out
    report = json.loads((tmp_path / "f.json").read_text())
    assert any("only 67 rows" in w for w in report["warnings"])
    # With the default --test-size (0.3): 315 policy rows, no such warning.
    assert _digits_frontier(digits_files, tmp_path) == 0
    assert "the policy is learned on only" not in capsys.readouterr().out


def test_a_cascade_saved_from_a_csv_matches_a_csvs_columns_by_name(
    digits_files, tmp_path, capsys
):
    """Stages fitted on arrays know no column names; the CSV header the
    cascade was fitted on is kept with --save, so that predict and
    recalibrate reorder a CSV's columns by name and refuse a renamed one
    (columns in another order gave wrong answers without a word)."""
    import csv

    saved = tmp_path / "m.joblib"
    command = ["frontier", str(digits_files / "tree.joblib")]
    command += [str(digits_files / "lr.joblib"), "--data"]
    command += [str(digits_files / "data.csv"), "--costs", "1", "10"]
    command += ["--json", str(tmp_path / "f.json"), "--save", str(saved)]
    assert main(command) == 0
    assert list(joblib.load(saved).column_names_) == [f"f{i}" for i in range(64)]
    header, *rows = (digits_files / "data.csv").read_text().splitlines()
    names = header.split(",")
    order = [64, *range(63, -1, -1)]  # the label first, then f63 .. f0
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(
        "\n".join(
            ",".join(line.split(",")[k] for k in order) for line in [header, *rows]
        )
        + "\n"
    )
    answers = {}
    for name, data in (("original", digits_files / "data.csv"), ("shuffled", shuffled)):
        output = tmp_path / f"{name}-answers.csv"
        assert (
            main(["predict", str(saved), "--data", str(data), "--output", str(output)])
            == 0
        )
        with open(output) as handle:
            answers[name] = [row["prediction"] for row in csv.DictReader(handle)]
    assert answers["shuffled"] == answers["original"]
    capsys.readouterr()
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("\n".join([",".join(["g0", *names[1:]]), *rows]) + "\n")
    for args in (
        ["predict", str(saved), "--data", str(renamed)],
        [
            "recalibrate",
            str(saved),
            str(renamed),
            "--output",
            str(tmp_path / "r.joblib"),
        ],
    ):
        assert main(args) == 1
        assert "the file lacks ['f0']" in capsys.readouterr().err


def test_whole_float_labels_in_an_npz_are_whole_numbers(tmp_path, capsys):
    """Labels 0.0 .. 9.0 in an .npz are read as 0 .. 9, as a .npy or CSV
    file's are: an ONNX model's columns are then taken as those labels
    (they were refused as 'not whole numbers')."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    np.savez(tmp_path / "floats.npz", X=X[:400], y=y[:400].astype(np.float64))
    command = ["frontier", str(FIXTURES / "digits_tiny.onnx")]
    command += [str(FIXTURES / "digits_large.onnx"), "--data"]
    command += [str(tmp_path / "floats.npz"), "--costs", "1", "10"]
    command += ["--json", str(tmp_path / "f.json"), "--plot", str(tmp_path / "f.png")]
    assert main(command) == 0
    assert "taken as the labels 0..9" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, message",
    [
        (["--cost-weight", "-1"], "--cost-weight must be a number >= 0"),
        (["--cost-weight", "nan"], "--cost-weight must be a number >= 0"),
        (["--costs", "1"], "one number per model: 2 numbers for 2 models, 1 given"),
        (["--costs", "1", "-2"], "--costs must be finite numbers >= 0"),
        (
            ["--router", "--costs", "1", "2"],
            "and the router's first: 3 numbers for 2 models and --router, 2 given",
        ),
        # Options that cannot go together are named before the count of
        # --costs, which would send the user to fix a count for --router.
        (
            ["--router", "--answer", "both", "--costs", "1", "2"],
            "--router needs --answer stage",
        ),
        (
            ["--skips", "--answer", "combined", "--costs", "1"],
            "--skips needs --answer stage",
        ),
    ],
)
def test_frontier_refuses_bad_knobs_before_any_work(options, message, capsys):
    """Checked before the models are read (the model files here do not
    exist), by the option's own name."""
    command = ["frontier", "missing_a.joblib", "missing_b.joblib", "--data", "x.npz"]
    assert main([*command, *options]) == 1
    assert message in capsys.readouterr().err


def test_a_model_with_several_outputs_is_explained_for_the_command_line(
    tmp_path, capsys
):
    """The multi-exit fixture has three 2-D outputs; the command line says how
    to pick one (the Python parameter output= is not one of its options)."""
    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=(X[:200] / 16.0).astype(np.float32), y=y[:200])
    command = ["frontier", str(FIXTURES / "digits_multi_exit.onnx")]
    command += [str(FIXTURES / "digits_large.onnx"), "--data", str(tmp_path / "d.npz")]
    assert main([*command, "--costs", "1", "10"]) == 1
    err = capsys.readouterr().err
    assert "output=<name>" in err
    assert "save OnnxClassifier(model, output=<name>, ...) with joblib" in err


def test_no_speed_up_is_claimed_where_every_row_runs_every_stage():
    from sklearn.ensemble import RandomForestClassifier

    from skadaptive import AdaptiveCascadeClassifier
    from skadaptive.cli._frontier import _format_batch_sizes, batch_size_advice

    X, y = load_digits(return_X_y=True)
    cascade = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression(max_iter=300)),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ],
        cv=3,
        random_state=0,
    ).fit(X[:600], y[:600])
    # Every row at the last stage: whatever the two timings say, the
    # cascade runs both stages and saves nothing.
    advice = batch_size_advice(cascade, np.array([0.0, 1.0]))
    assert advice["every_stage_on_every_row"]
    text = _format_batch_sizes(advice)
    assert "Every row runs every stage at this point" in text
    assert "is faster than its last stage alone" not in text
    assert "At none of these batch sizes" not in text
    assert not batch_size_advice(cascade, np.array([0.05, 0.95]))[
        "every_stage_on_every_row"
    ]
    # A policy that skips stages: rows at the last stage need not have run
    # the others.
    skipping = AdaptiveCascadeClassifier(
        [
            ("lr", LogisticRegression(max_iter=300)),
            ("tree", DecisionTreeClassifier(random_state=0)),
            ("forest", RandomForestClassifier(20, random_state=0)),
        ],
        skips=True,
        cost_weight=0.01,
        cv=3,
        random_state=0,
    ).fit(X[:900], y[:900])
    assert skipping.policy_.skips
    advice = batch_size_advice(
        skipping, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.5, 1.0])
    )
    assert not advice["every_stage_on_every_row"]
    # Rows that exit early: the advice is given.
    advice = batch_size_advice(cascade, np.array([0.5, 0.5]))
    assert not advice["every_stage_on_every_row"]
    text = _format_batch_sizes(advice)
    assert "Every row runs every stage" not in text
    assert "is faster than its last stage alone" in text or "At none of" in text


def test_both_answer_kinds_are_costed_with_one_measurement(
    digits_files, tmp_path, capsys
):
    # Timed twice, the same stages' costs differ by their timing noise, and
    # so would the two tables: the combined kind takes the stage kind's.
    code = _digits_frontier(
        digits_files, tmp_path, "--costs", "auto", "--answer", "both"
    )
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "f.json").read_text())
    combined = report["combined"]
    assert [s["cumulative_cost"] for s in combined["stages"]] == [
        s["cumulative_cost"] for s in report["stages"]
    ]
    assert not report["costs_shared"] and combined["costs_shared"]
    assert "costed with the costs measured for the stage answers" in out
    # Declared costs are the same for both kinds anyway: no such note.
    code = _digits_frontier(digits_files, tmp_path, "--answer", "both")
    out = capsys.readouterr().out
    assert code == 0, out
    assert not json.loads((tmp_path / "f.json").read_text())["combined"]["costs_shared"]
    assert "costed with the costs measured" not in out


@pytest.mark.parametrize("answer", ["stage", "both"])
def test_frontier_s_progress_counts_its_steps(
    digits_files, tmp_path, monkeypatch, answer
):
    import skadaptive.cli._frontier as frontier

    made = []

    labels = []

    class Counted(Progress):
        def __init__(self, n_steps, **kwargs):
            super().__init__(n_steps, **kwargs)
            made.append(self)

        def step(self, message):
            labels.append(message)
            return super().step(message)

    monkeypatch.setattr(frontier, "Progress", Counted)
    assert _digits_frontier(digits_files, tmp_path, "--answer", answer) == 0
    (progress,) = made
    # No "[5/4]": as many steps as announced.
    assert progress._step == progress.n_steps == (6 if answer == "both" else 4)
    # The costs are given (--costs 1 10): nothing is measured.
    assert not any("measuring costs" in label for label in labels)
    assert any(label.startswith("learning the policy") for label in labels)


@pytest.mark.parametrize("kept", ["stage", "combined"])
def test_frontier_says_which_answers_a_budget_kept(
    digits_files, tmp_path, capsys, monkeypatch, kept
):
    """With --answer combined and a budget, the output, the JSON and the plot
    say what the budget's policy answers with (the choice forced here)."""
    import matplotlib
    import matplotlib.figure

    import skadaptive._base as base

    matplotlib.use("Agg")
    monkeypatch.setattr(
        base,
        "clearly_better_held_out",
        lambda reference, challenger, *args: (
            kept == "combined",
            np.full(len(reference), kept == "combined"),
        ),
    )
    labels = []
    save = matplotlib.figure.Figure.savefig

    def keep_labels(figure, *args, **kwargs):
        labels.extend(a.get_label() for a in figure.axes[0].collections)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep_labels)
    halves = _halves_models(digits_files, tmp_path)
    code = _digits_frontier(
        halves, tmp_path, "--answer", "combined", "--budget", "6", "--seed", "0"
    )
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "f.json").read_text())
    assert report["answer"] == "combined" and report["answer_kept"] == kept
    # Why, with the test's figures, in the JSON and (where the stage answers
    # were kept) in the output.
    reason = report["answer_reason"]
    assert reason.endswith(f"the {kept} answers' policy is kept")
    assert ("standard error" in reason) and ((reason in out) == (kept == "stage"))
    last = report["exits"][-1]
    assert last["combiner"] != "stage"  # learned, whichever answers
    assert last["answers_with"] == ("stage" if kept == "stage" else last["combiner"])
    assert set(last["combiner_cv_error"]) == {"stage", "log_pool", "logistic"}
    stage_note = "every exit answers with its stage's own output"
    assert (stage_note in out) == (kept == "stage")
    assert ("combined answer at each exit" in out) == (kept == "combined")
    chosen = [label for label in labels if label.startswith("chosen")]
    assert len(chosen) == 1
    assert chosen[0].endswith("(stage answers)") == (kept == "stage")


def test_frontier_says_how_many_cost_weights_it_does_not_show(
    digits_files, tmp_path, capsys
):
    """Cost weights that give the same policy as one above are one row of the
    table; the table says how many it left out (it dropped them silently)."""
    assert _digits_frontier(digits_files, tmp_path) == 0
    out = capsys.readouterr().out
    shown = [line for line in out.splitlines() if line.startswith("cost_weight=")]
    points = json.loads((tmp_path / "f.json").read_text())["frontier"]
    assert len(shown) < len(points)
    assert (
        f"({len(points) - len(shown)} of the {len(points)} cost weights are not "
        "shown: each gave the same policy as a cost weight above"
    ) in out


def test_labels_that_are_the_positions_of_the_classes_are_named_so():
    """Models fitted on names, data labelled 0 .. k-1: the error said to
    drop the rows with those labels, which is every row."""
    from skadaptive.cli._classes import check_labels_known
    from skadaptive.cli._io import CommandError

    model = LogisticRegression().fit(
        np.arange(6.0)[:, None], ["bird", "cat", "dog", "bird", "cat", "dog"]
    )
    with pytest.raises(CommandError) as raised:
        check_labels_known(np.array([0, 1, 2, 1]), [("lr", model)], {})
    message = str(raised.value)
    assert "none of the data's labels ([0, 1, 2]) is a class of model 'lr'" in message
    assert "Labels 0 .. 2 may be the positions of its classes" in message
    assert "['bird', 'cat', 'dog']" in message
    assert "drop the rows" not in message
    # Some labels known (classes 1, 2, 3; labels 0, 1, 2): dropping the rows
    # of label 0 drops a class, where the labels are likely positions.
    model = LogisticRegression().fit(np.arange(6.0)[:, None], [1, 2, 3, 1, 2, 3])
    with pytest.raises(CommandError) as raised:
        check_labels_known(np.array([0, 1, 2, 1]), [("lr", model)], {})
    assert "labels [0] that model 'lr' does not predict" in str(raised.value)
    assert "Labels 0 .. 2 may be the positions of its classes" in str(raised.value)


@pytest.mark.parametrize(
    ("speed_up", "verdict"),
    [
        (0.996, "the cascade is no faster than its last stage alone"),
        (1.004, "the cascade is no faster than its last stage alone"),
        (0.9, "the last stage alone is faster"),
        (1.05, None),
    ],
)
def test_the_speed_up_verdict_is_that_of_the_printed_figure(speed_up, verdict):
    """0.996 and 1.004 both print 1.00x: one was told the last stage alone is
    faster, the other that the cascade is faster from some batch size on."""
    from skadaptive.cli._frontier import _format_batch_sizes, pays_off_from

    points = [
        {
            "batch_size": size,
            "speed_up": speed_up,
            "cost_per_row": 1e-4,
            "last_stage_alone_per_row": 1e-4 * speed_up,
        }
        for size in (1, 16, 256)
    ]
    text = _format_batch_sizes(
        {
            "every_stage_on_every_row": False,
            "unit": "trees",
            "fitted_for_batch_size": 16,
            "fitted_speed_up": speed_up,
            "points": points,
            "pays_off_from": pays_off_from(points),
        }
    )
    faster = "The cascade is faster than its last stage alone at every batch size"
    if verdict is None:
        assert faster in text and "At 16 rows per call the" not in text
    else:
        assert f"At 16 rows per call {verdict}:" in text
        assert faster not in text


def test_classes_given_for_whole_number_labels_keep_every_digit():
    """--classes of whole numbers are the labels' own type, exactly: a cast
    through float32 joined 16777216 and 16777217 (2**24 and one more), and
    no test saw it."""
    from skadaptive.cli._classes import labels_like

    y = np.array([16777216, 16777217, 3_000_000_001], dtype=np.int64)
    classes = labels_like([str(v) for v in y], y, "--classes")
    assert classes.dtype == y.dtype
    assert classes.tolist() == y.tolist()


def test_a_label_written_na_among_numbers_is_called_missing(
    digits_files, tmp_path, capsys
):
    """One 'NA' among numeric labels made every label text, and the error
    said that none of them (0 .. 9 included) was a class of the models."""
    lines = (digits_files / "data.csv").read_text().splitlines()
    lines[4] = lines[4][: lines[4].rindex(",") + 1] + "NA"
    (tmp_path / "na.csv").write_text("\n".join(lines) + "\n")
    assert _frontier(digits_files, tmp_path / "na.csv") == 1
    assert (
        "1 label reads 'NA' (the first in data row 4) among numbers: a missing "
        "label is an empty cell here" in capsys.readouterr().err
    )


def test_frontier_says_which_column_it_took_for_the_labels(
    digits_files, tmp_path, capsys
):
    """Without a column named 'label' and without --label, the last column is
    the label: said in a note (a forgotten --label was silent)."""
    text = (digits_files / "data.csv").read_text()
    (tmp_path / "target.csv").write_text(text.replace(",label\n", ",target\n", 1))
    assert _frontier(digits_files, tmp_path / "target.csv") == 0
    assert "note: the labels are " in capsys.readouterr().out
    assert _frontier(digits_files, digits_files / "data.csv") == 0
    assert "note: the labels are" not in capsys.readouterr().out


def test_only_numbers_with_missing_words_are_refused_as_missing_labels():
    """Text labels made of such words alone, or with 'inf', were refused as
    'NA among numbers' (float() reads 'inf' and 'nan')."""
    from skadaptive.cli._io import CommandError, refuse_missing_labels

    for labels in (["NA", "NA"], ["na", "n/a"], ["none", "inf"], ["NA", "EU", "AS"]):
        refuse_missing_labels(np.array(labels, dtype=object), "f.csv")
    for labels in (["NA", "1", "0"], ["?", "-2", "1e3"]):
        with pytest.raises(CommandError, match="among numbers"):
            refuse_missing_labels(np.array(labels, dtype=object), "f.csv")


def test_the_label_note_names_the_column_as_written(tmp_path):
    """A column ' label' is not 'label' to the loader: the note said the last
    column, 'label', while saying no column is named 'label'."""
    from skadaptive.cli._io import last_column_label_note

    (tmp_path / "f.csv").write_text("a, label\n1,0\n")
    note = last_column_label_note(str(tmp_path / "f.csv"), None)
    assert "last column, ' label' (no column is named exactly 'label')" in note
    assert last_column_label_note(str(tmp_path / "f.csv"), " label") is None
