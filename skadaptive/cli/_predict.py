"""``skadaptive predict``: answer a file's rows with a saved adaptive model."""

from __future__ import annotations

import csv
import sys

import numpy as np

from .._validation import rows_text
from ._classes import labels_as_model_classes
from ._io import (
    CommandError,
    _short,
    align_columns,
    check_distinct,
    check_output,
    file_order_note,
    fitted_feature_names,
    load_data,
    load_joblib,
    refuse_missing_labels,
    regression_target,
)
from ._progress import Progress
from ._table import table


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "predict",
        help="predict a file with a saved cascade or early-exit model",
        description=(
            "Load a fitted AdaptiveCascadeClassifier or EarlyExitClassifier saved "
            "with joblib (e.g. by `skadaptive frontier --save`), predict the rows "
            "of a data file, and report how many rows each stage answered and "
            "the average cost (and the accuracy when the file has labels). An "
            "AdaptiveCascadeRegressor or EarlyExitRegressor predicts values the "
            "same way, and reports its error (MSE or MAE, as its loss) when the "
            "file has targets."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="saved model (.joblib)")
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="rows to predict: .npz (array X, labels y optional), .npy (every "
        "column a feature unless --label) or .csv with a header; labels give "
        "the accuracy (a regressor's targets: its error)",
    )
    parser.add_argument(
        "--label",
        help="label (or target) column: a CSV column name or a .npy column index "
        "(default: the CSV column named 'label' if there is one, else no labels)",
    )
    parser.add_argument(
        "--x-key", default="X", help=".npz array of rows (default: %(default)s)"
    )
    parser.add_argument(
        "--y-key",
        default=None,
        help=".npz array of labels (default: y, if present; a key given must be there)",
    )
    parser.add_argument(
        "--output",
        metavar="CSV",
        help="write one line per row here: prediction, exit stage, cost",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="ROWS",
        help="rows routed together, to bound memory (default: the model's "
        "batch_size); the answers and the reported cost do not change: the "
        "costs are those of the calls the model was fitted for "
        "(cost_batch_size_; `frontier --batch-size` sets them)",
    )
    parser.set_defaults(run=run)


def _load_model(path):
    from .._base import BaseAdaptiveClassifier
    from .._regressor import BaseAdaptiveRegressor

    model = load_joblib(path)
    if not isinstance(model, BaseAdaptiveClassifier | BaseAdaptiveRegressor):
        raise CommandError(
            f"{path}: holds a {type(model).__name__}, not a fitted "
            "AdaptiveCascadeClassifier or EarlyExitClassifier (or their "
            "regressors, AdaptiveCascadeRegressor or EarlyExitRegressor); save "
            "one with `skadaptive frontier --save` or joblib.dump."
        )
    if not hasattr(model, "policy_"):
        raise CommandError(f"{path}: the model in it is not fitted.")
    return model


def _known_labels(y, model, path):
    """The labels, of the type of the model's classes; every one a class of it.

    A label the model does not know is an error, not a warning: such a row
    can never be answered right, so an accuracy counting it as wrong measures
    the file (a wrong label column, another encoding of the classes), not the
    model.
    """
    refuse_missing_labels(y, path)
    y = labels_as_model_classes(y, [model.classes_])
    kind = model.classes_.dtype.kind
    if y.dtype.kind in "iu" and kind in "US":
        y = y.astype(str)  # of its own width: 12 is not the class "1"
    elif y.dtype.kind in "iu" and kind not in "iub":
        # Not to bool: 0 and 1 equal False and True as they are, and a cast
        # would make 2 True.
        y = y.astype(model.classes_.dtype)
    unknown = np.setdiff1d(np.unique(y), model.classes_)
    if len(unknown):
        n_rows = int(np.isin(y, unknown).sum())
        raise CommandError(
            f"{path}: labels {_short(unknown.tolist())} ({n_rows} "
            f"row{'s' if n_rows != 1 else ''}) are not classes of the model (its "
            f"classes are {_short(model.classes_.tolist())}), so its accuracy "
            "cannot be "
            "measured on them; drop those rows, or check that --label (--y-key "
            "for .npz) names the label column."
        )
    return y


def load_model_and_data(args, notes: list | None = None) -> tuple:
    """The saved model of ``args.model`` and the rows (and labels, where the
    file has them) of ``args.data``, the labels checked against the model.

    Returns ``(model, X, y, regression)``; ``y`` is None without labels.
    Labels the model does not know (a regressor's targets that are not
    numbers) are an error, or, with a ``notes`` list (labels that only report
    accuracy or error), dropped with a note appended there.
    """
    from sklearn.base import is_regressor

    model = _load_model(args.model)
    X, y, names = load_data(
        args.data,
        label=args.label,
        x_key=args.x_key,
        y_key="y" if args.y_key is None else args.y_key,
        # A key named on the command line must be there.
        require_labels=args.y_key is not None and args.data.endswith(".npz"),
    )
    fitted = fitted_feature_names([model])
    X = align_columns(X, names, fitted, args.data)
    order = file_order_note(names, fitted, args.data)
    if order is not None and notes is not None:
        notes.append(order)
    expected = getattr(model, "n_features_in_", None)
    npz = args.data.lower().endswith(".npz")
    if y is None and expected is not None and X.shape[1] == expected + 1 and not npz:
        # frontier reads the last column as the label by default; predict and
        # recalibrate only a column named "label" or given with --label. (An
        # .npz file's labels are an array of their own: no column to name.)
        last = names[-1] if names else X.shape[1] - 1
        raise CommandError(
            f"{args.data}: {X.shape[1]} columns, one more than the model's "
            f"{expected} features, and none is named as the label. If the last "
            "one is the label (or target), as `skadaptive frontier` reads it "
            f"by default, pass --label {last}."
        )
    if expected is not None and np.ndim(X) > 2:
        # Rows of several dimensions (images) for a model fitted on flat rows.
        values = int(np.prod(np.shape(X)[1:]))
        flatten = (
            " (X.reshape(len(X), -1))"
            if values == expected
            else f": {values} values, not {expected}"
        )
        raise CommandError(
            f"{args.data}: its rows have shape {np.shape(X)[1:]}, but the model "
            f"in {args.model} takes rows of {expected} features: save each row "
            f"flat{flatten}."
        )
    if expected is not None and np.ndim(X) == 2 and X.shape[1] != expected:
        # Before the labels are read against the model: a file for another
        # model fails here, not after a note about its labels.
        taken = (
            " (after the label column is taken out)"
            if y is not None and not npz
            else ""
        )
        label = (
            ""
            if npz or args.label is not None
            else (", or name the label column with --label")
        )
        raise CommandError(
            f"{args.data}: its rows have {X.shape[1]} features{taken}, but the "
            f"model in {args.model} takes {expected}: give rows with the "
            f"columns it was fitted on{label}."
        )
    regression = is_regressor(model)
    if y is not None:
        try:
            if regression:
                y = regression_target(y, args.data)
            else:
                y = _known_labels(y, model, args.data)
        except CommandError as exc:
            if notes is None:
                raise
            what = "targets" if regression else "labels"
            notes.append(f"{exc} The rows are used without their {what}.")
            y = None
    return model, X, y, regression


def run(args, out=None) -> int:
    out = sys.stdout if out is None else out
    check_output("--output", args.output)
    if args.output and not args.output.lower().endswith((".csv", ".txt")):
        raise CommandError(
            f"--output {args.output}: predictions are written as CSV; name the "
            "file .csv (or .txt)."
        )
    check_distinct({"--output": args.output}, [args.model, args.data])
    progress = Progress(2)
    with progress.step("loading the model and the data"):
        notes = []  # labels (targets) only report accuracy (error) here
        model, X, y, regression = load_model_and_data(args, notes)
    for note in notes:
        print(f"note: {note}", file=out)
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise CommandError(f"--batch-size must be >= 1; got {args.batch_size}.")
        model.set_params(batch_size=args.batch_size)
    with progress.step(f"predicting {len(X)} rows"):
        try:
            result = model.route(X)
        except ValueError as exc:
            raise CommandError(f"{args.data}: {exc}") from exc
    if regression:
        predictions = result.prediction
    else:
        predictions = model.classes_[np.argmax(result.proba, axis=1)]
    n_stages = len(model.cumulative_costs_)
    rates = np.bincount(result.exit_stage, minlength=n_stages) / len(X)
    run_rates = result.ran.mean(axis=0)
    names = model._stage_names()
    rows = [
        (name, f"{rate:.3f}", f"{run:.3f}", f"{cost:.4g}")
        for name, rate, run, cost in zip(names, rates, run_rates, model.costs_)
    ]
    header = ("stage", "exit rate", "run rate", "its own cost per row run")
    answers = _answers(model, names)
    if answers is not None:
        rows = [(*row, answer) for row, answer in zip(rows, answers)]
        header = (*header, "a row exiting here is answered by")
    print(f"{len(X)} rows predicted by {args.model}", file=out)
    print(table(rows, header), file=out)
    # A row pays for the stages it ran (which a policy that skips or routes
    # says) and the router's cost, if one is kept.
    router = getattr(model, "router_", None)
    router_cost = 0.0 if router is None else float(model.router_cost_)
    average = model._routed_average_cost(result)
    per_call = bool(model.costs_per_call_.any())
    print(
        f"average cost per row: {average:.4g} "
        f"({average / model.cumulative_costs_[-1]:.1%} of running every stage"
        + (f"; the router's {router_cost:.4g} included" if router_cost else "")
        + ")"
        + (
            f", for calls of {rows_text(int(model.cost_batch_size_))}: each stage "
            "a call reaches pays its cost per call once (the per-row costs written "
            "spread it over a full call)"
            if per_call
            else ""
        ),
        file=out,
    )
    if y is not None and regression:
        print(_error_line(model._loss(), predictions, y), file=out)
    elif y is not None:
        print(f"accuracy: {np.mean(predictions == y):.4f}", file=out)
    if args.output:
        try:
            with open(args.output, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["prediction", "exit_stage", "cost"])
                writer.writerows(
                    zip(
                        predictions.tolist(),
                        result.exit_stage.tolist(),
                        result.cost.tolist(),
                    )
                )
        except OSError as exc:
            raise CommandError(f"{args.output}: cannot write: {exc}") from exc
        print(f"wrote {args.output}", file=out)
    else:
        print(
            "(the predictions are not written: pass --output FILE.csv for each "
            "row's prediction, exit stage and cost)",
            file=out,
        )
    return 0


def _answers(model, names) -> list | None:
    """What each exit answers with under the model's policy
    (``answer_``, ``combiners_``): the stage's own output, or its combiner over
    the stages run so far. None where every exit answers with its own output."""
    if getattr(model, "combiners_", None) is None:
        return None
    kinds = model._exit_answer_kinds()
    if all(kind == "stage" for kind in kinds):
        return None
    return [
        "its own output"
        if kind == "stage"
        else f"{kind} of {', '.join(names[: k + 1])}"
        for k, kind in enumerate(kinds)
    ]


def regression_error(loss, predictions, y) -> tuple[str, float, str]:
    """A regressor's error on the file's targets, named after its loss:
    ``(name, value, units)``."""
    if loss == "absolute_error":
        return "MAE", float(np.mean(np.abs(predictions - y))), "the target's units"
    return "MSE", float(np.mean((predictions - y) ** 2)), "the target's units squared"


def _error_line(loss, predictions, y) -> str:
    name, value, units = regression_error(loss, predictions, y)
    return f"{name}: {value:.4g} (in {units})"
