"""``skadaptive frontier``: the trade-off of your own models on your own data."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from itertools import repeat
from pathlib import Path

import numpy as np

from .._validation import rows_text, tagged_type
from ..policies._call_costs import batch_cost
from ..policies._skips import jumps_over_stages
from ..stages._combined import combines
from ._classes import (
    check_labels_known,
    labels_as_model_classes,
    labels_like,
    onnx_classes,
)
from ._intervals import (
    CONFIDENCE,
    MIN_EVALUATION_ROWS,
    N_RESAMPLES,
    bootstrap_intervals,
    format_interval,
    too_few_policy_rows_warning,
    too_few_rows_warning,
)
from ._io import (
    JOBLIB_SUFFIXES,
    CommandError,
    align_columns,
    check_distinct,
    check_feature_counts,
    check_output,
    check_plot,
    file_order_note,
    fitted_feature_names,
    last_column_label_note,
    load_data,
    load_joblib,
    load_regression_stage,
    load_stage,
    recorded_warnings,
    refuse_missing_labels,
    regression_target,
    seed,
    split_rows,
)
from ._progress import Progress
from ._table import table

# A stage's row shows the cost of every row exiting there: that stage's and
# every earlier one's (cumulative), not its own as in `skadaptive demo`.
COLUMNS = (
    "point",
    "accuracy",
    f"{CONFIDENCE:.0%} CI",
    "cumulative cost",
    "cumulative / full",
    "exit rates",
)


#: What ``--task`` may say; "auto" decides from the models.
TASKS = ("auto", "classification", "regression")
#: Errors a regression cascade minimises (``--loss``), and their columns.
ERROR_NAMES = {"squared_error": "MSE", "absolute_error": "MAE"}


class _PolicyChoices(tuple):
    """The classifiers' policy families (what ``--policy`` lists), which also
    holds the regressors' heuristics: ``run`` checks a policy against the
    task, which is known only once the models are read."""

    def __contains__(self, value) -> bool:
        from ..policies import REGRESSION_POLICIES

        return tuple.__contains__(self, value) or value in REGRESSION_POLICIES


def _policy_name(value: str) -> str:
    from ..policies import POLICIES, REGRESSION_POLICIES

    if value not in POLICIES + REGRESSION_POLICIES:
        raise argparse.ArgumentTypeError(
            f"unknown policy {value!r}; classifiers take {', '.join(POLICIES)}, "
            f"regressors {', '.join(REGRESSION_POLICIES)}."
        )
    return value


def add_parser(commands) -> None:
    from ..policies import POLICIES, REGRESSION_POLICIES

    parser = commands.add_parser(
        "frontier",
        help="accuracy (or error) against cost of a cascade of your own trained models",
        description=(
            "Learn exit policies over already-trained models (ONNX files or "
            "joblib/pickle files of fitted scikit-learn classifiers), ordered "
            "from the cheapest to the most expensive, on labelled data; print "
            "the accuracy/cost frontier on rows held out from the policy, and "
            "write it as a plot and JSON. Fitted scikit-learn regressors "
            "(joblib/pickle files), or ONNX regressors (one output column) "
            "with --task regression, make a regression cascade: the table "
            "shows each point's error (MSE, or MAE with --loss absolute_error) "
            "in the target's units instead of its accuracy."
        ),
        epilog=(
            f"Each accuracy (a regressor's error) comes with its {CONFIDENCE:.0%} "
            f"percentile bootstrap interval ({N_RESAMPLES} resamples of the "
            "held-out rows, --seed). A warning says when the held-out rows are "
            "too few to separate the points: fewer than "
            f"{MIN_EVALUATION_ROWS}, or the intervals of the cheapest stage and "
            "of the full cost overlap."
        ),
    )
    parser.add_argument(
        "stages", nargs="+", metavar="MODEL", help=".onnx, .joblib or .pkl files"
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="labelled rows: .npz (arrays X and y), .npy (label in the last "
        "column) or .csv with a header (an empty cell is a missing value); "
        "for regressors the label is the numeric target",
    )
    parser.add_argument(
        "--label",
        help="label (or target) column: a CSV column name or a .npy column index "
        "(default: the CSV column named 'label', else the last column; a .npy "
        "file's last column)",
    )
    parser.add_argument(
        "--x-key", default="X", help=".npz array of rows (default: %(default)s)"
    )
    parser.add_argument(
        "--y-key", default="y", help=".npz array of labels (default: %(default)s)"
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        help="the ONNX models' class labels in their output-column order "
        "(default: from each model's metadata or label output; column k is "
        "label k for whole-number labels; never the sorted labels); classifiers "
        "only",
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="classification or regression: auto decides from the scikit-learn "
        "models (a regression cascade when they are regressors; models of both "
        "kinds are an error). ONNX models say nothing of their kind: with "
        "scikit-learn models they take those models' kind, and alone they are "
        "classifiers unless --task regression (default: %(default)s)",
    )
    parser.add_argument(
        "--loss",
        choices=tuple(ERROR_NAMES),
        help="regressors only: the error the policy minimises and the table "
        "shows, squared_error (MSE) or absolute_error (MAE) (default: "
        "squared_error)",
    )
    parser.add_argument(
        "--costs",
        nargs="+",
        type=_cost_value,
        default=["auto"],
        metavar="COST",
        help="cost per row of each stage, or 'auto' to measure (default); "
        "give the models before --costs",
    )
    parser.add_argument(
        "--policy",
        default="linear",
        type=_policy_name,
        choices=_PolicyChoices(POLICIES),
        metavar="POLICY",
        help=f"policy family: {', '.join(POLICIES)}; for regressors "
        f"{', '.join(REGRESSION_POLICIES)} (default: %(default)s)",
    )
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument(
        "--budget",
        type=float,
        help="average cost per row to meet, in the unit of --costs (seconds "
        "when measured)",
    )
    knob.add_argument(
        "--cost-weight",
        type=float,
        help="trade-off lam in error + lam * cost / full cost: 0.01 gives up one "
        "accuracy point only to save the full cost (a regressor's error is "
        "scaled so that predicting the target's mean costs 1) (default: 0.01)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="ROWS",
        help="rows per call of predict in deployment (1 for a service that "
        "answers one request at a time): measured costs, the policy and the "
        "expected cost are for batches of this size (default: 65536)",
    )
    parser.add_argument(
        "--answer",
        choices=("stage", "combined", "both"),
        default="stage",
        help="what a row gets at its exit: that stage's probabilities (stage), "
        "a combination of every stage it ran (combined), or both, each with "
        "its own policy, printed one after the other and plotted together; "
        "the JSON is then the stage answers' report with the combined "
        "answers' under the key 'combined'; for regressors, the same with "
        "their predictions. With --budget, the combined answers are kept only "
        "where clearly more accurate out of sample than the stage answers "
        "(the output says when they were not: answer_kept in the JSON) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--skips",
        action="store_true",
        help="let a row that a stage finds hard jump over later stages to a "
        "dearer one (it pays only for the stages it runs); the policy keeps a "
        "jump only where it does better than the plain cascade; with "
        "--answer stage",
    )
    parser.add_argument(
        "--router",
        action="store_true",
        help="learn a router: a small logistic regression on the features that "
        "sends each row to its first stage before any stage runs (router='auto'); "
        "kept only where it does better than the cascade without it; with "
        "--costs, give the router's cost first; with --answer stage",
    )
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.3,
        help="fraction of rows held out from the policy to evaluate it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="random seed of the split and the bootstrap (default: %(default)s)",
    )
    parser.add_argument(
        "--plot",
        default="frontier.png",
        metavar="PNG",
        help="where to write the plot of accuracy (a regressor's error) against "
        "cost on the held-out rows (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        default="frontier.json",
        metavar="FILE",
        help="where to write the table's figures as JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--save",
        metavar="FILE",
        help="save the fitted cascade (joblib) here, for `skadaptive predict` "
        "(with one --answer kind)",
    )
    parser.set_defaults(run=run)


def _cost_value(value: str) -> str:
    """One value of ``--costs``, as typed: a number or 'auto' (a model file
    after ``--costs`` is taken for a cost by the parser: say so)."""
    if value == "auto":
        return value
    try:
        float(value)
    except ValueError:
        hint = (
            " (model files go before --costs: MODEL MODEL ... --costs 1 10)"
            if "." in value or "/" in value
            else ""
        )
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number or 'auto'{hint}"
        ) from None
    return value


def _costs(values):
    """``--costs`` as the estimator takes it (each value checked by the
    parser: :func:`_cost_value`)."""
    if values == ["auto"]:
        return "auto"
    if "auto" in values:
        raise CommandError(
            f"--costs must be 'auto' or one number per stage; got {values}."
        )
    return [float(v) for v in values]


def _load_stages(args, X, y, out, models=None) -> tuple[list, np.ndarray]:
    """The models as frozen stages, each with its classes in column order,
    and the labels as they know them (:func:`labels_as_model_classes`).

    ``models`` holds the objects already loaded from joblib files, by path.
    """
    models = {} if models is None else models
    # Before an ONNX model's classes are read from the labels.
    refuse_missing_labels(y, args.data)
    given = None if args.classes is None else labels_like(args.classes, y, "--classes")
    stages, hints = [], {}
    for name, path in zip(_stage_names(args.stages), args.stages):
        classes = given
        if Path(path).suffix.lower() == ".onnx" and Path(path).is_file():
            classes, note = onnx_classes(path, y, given)
            if note is not None:
                print(note, file=out)
            hints[name] = (
                ", or pass the labels of the model's output columns with "
                "--classes, in its column order"
            )
        stages.append((name, load_stage(path, classes, X, models.get(path))))
    # Refused as a regression target while still numbers; then a CSV's
    # labels "1", "2", read as numbers, are the text classes of models
    # fitted on them as text.
    _refuse_regression_target(y, stages)
    y = labels_as_model_classes(y, [stage.classes_ for _, stage in stages])
    check_labels_known(y, stages, hints)
    return stages, y


#: More labels than this, not whole numbers, that a classifier does not
#: predict: a regression target given to classifiers.
_MANY_UNKNOWN_LABELS = 10


def _refuse_regression_target(y, stages) -> None:
    """Labels that look like a regression target, given to classifiers."""
    if y.dtype.kind != "f" or np.array_equal(y, np.round(y)):
        return
    present = np.unique(y)
    for _, stage in stages:
        unknown = np.setdiff1d(present, np.asarray(stage.classes_))
        if len(unknown) > _MANY_UNKNOWN_LABELS:
            raise CommandError(
                f"the labels are {len(present)} distinct numbers, not whole (e.g. "
                f"{', '.join(f'{v:g}' for v in present[:3])}), as a regression "
                f"target's are, and the models are classifiers, which do not "
                f"predict {len(unknown)} of them; for a regression cascade give "
                "fitted scikit-learn regressors (joblib or pickle files), or "
                "check that --label (--y-key for .npz) names the label column."
            )


def _load_regression_stages(args, X, models) -> list:
    """The models as frozen regression stages (ONNX ones checked on ``X``)."""
    from .. import AdaptiveCascadeRegressor

    names = _stage_names(args.stages, AdaptiveCascadeRegressor)
    return [
        (name, load_regression_stage(path, models.get(path), X))
        for name, path in zip(names, args.stages)
    ]


def _loaded_models(paths) -> dict:
    """The objects of the joblib/pickle files, by path, each loaded once."""
    return {
        path: load_joblib(path)
        for path in paths
        if Path(path).suffix.lower() in JOBLIB_SUFFIXES
    }


def _task(args, models) -> str:
    """``"classification"`` or ``"regression"``: ``--task``, else the models'.

    A joblib model is what its scikit-learn tags say; an ONNX file, or a
    model whose tags say nothing, is unknown (then the other models decide,
    and classification when none says: ONNX regressors need ``--task
    regression``). Models of both kinds are an error.
    """
    kinds = {}
    for path in args.stages:
        if path in models and Path(path).suffix.lower() != ".onnx":
            model = models[path]
            kinds[path] = (tagged_type(model), f"{path} ({type(model).__name__})")
    regressors = [text for kind, text in kinds.values() if kind == "regressor"]
    classifiers = [text for kind, text in kinds.values() if kind == "classifier"]
    if args.task == "regression" and classifiers:
        raise CommandError(
            f"--task regression needs regressors, but {_listing(classifiers)} "
            f"{'is a classifier' if len(classifiers) == 1 else 'are classifiers'}; "
            "give fitted scikit-learn regressors, or drop --task for a "
            "classification cascade."
        )
    if args.task == "classification" and regressors:
        raise CommandError(
            f"--task classification needs classifiers, but {_listing(regressors)} "
            f"{'is a regressor' if len(regressors) == 1 else 'are regressors'}; "
            "give fitted classifiers, or drop --task for a regression cascade."
        )
    if args.task != "auto":
        return args.task
    if regressors and classifiers:
        raise CommandError(
            f"the models mix regressors ({_listing(regressors)}) and classifiers "
            f"({_listing(classifiers)}); a cascade's models must all be "
            "classifiers or all regressors: give models of one kind."
        )
    return "regression" if regressors else "classification"


def _listing(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def _check_options(args, task) -> None:
    """Refuse the options that the other task's cascades alone take."""
    from ..policies import POLICIES, REGRESSION_POLICIES

    if task == "regression":
        if args.classes is not None:
            raise CommandError(
                "--classes names the class labels of ONNX classifiers, and "
                "regressors have none; drop --classes."
            )
        if args.policy not in REGRESSION_POLICIES:
            raise CommandError(
                f"--policy {args.policy} ranks class probabilities, which "
                "regressors do not give; for regressors use one of "
                f"{', '.join(REGRESSION_POLICIES)}."
            )
    else:
        if args.loss is not None:
            raise CommandError(
                f"--loss {args.loss} is the error a regression cascade minimises, "
                "and the models are classifiers (their policy minimises wrong "
                "answers); drop --loss, or give regressors."
            )
        if args.policy not in POLICIES:
            raise CommandError(
                f"--policy {args.policy} is for regressors (it ranks their "
                "predictions); for classifiers use one of "
                f"{', '.join(POLICIES)}."
            )


def _stage_names(paths, estimator_class=None) -> list[str]:
    """Stage names from the file names, made valid as scikit-learn names
    (of ``estimator_class``: the classifier cascade by default)."""
    from .. import AdaptiveCascadeClassifier

    estimator_class = estimator_class or AdaptiveCascadeClassifier
    names = [Path(path).stem.replace("__", "_") or "stage" for path in paths]
    reserved = set(estimator_class._get_param_names())
    if len(set(names)) != len(names) or reserved.intersection(names):
        names = [f"{k}_{name}" for k, name in enumerate(names)]
    return names


def run(args, out=None) -> int:

    out = sys.stdout if out is None else out
    from .. import AdaptiveCascadeClassifier

    if len(args.stages) < 2:
        raise CommandError("give at least two models, from cheapest to dearest.")
    if not 0 < args.test_size < 1:
        raise CommandError(f"--test-size must be in (0, 1); got {args.test_size}.")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1; got {args.batch_size}.")
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget > 0):
        raise CommandError(f"--budget must be a positive number; got {args.budget}.")
    if args.cost_weight is not None and not (
        np.isfinite(args.cost_weight) and args.cost_weight >= 0
    ):
        raise CommandError(
            f"--cost-weight must be a number >= 0; got {args.cost_weight}."
        )
    # Options that cannot go together first: fixing the count of --costs for
    # --router is no use when --router must go.
    if args.router and args.answer != "stage":
        raise CommandError(
            "--router needs --answer stage: a combined answer mixes every stage "
            "a row ran, and a row that the router starts late has not run them."
        )
    if args.skips and args.answer != "stage":
        raise CommandError(
            "--skips needs --answer stage: a combined answer mixes every stage "
            "a row ran, and a row that skips has not run them all."
        )
    costs = _costs(args.costs)
    if costs != "auto":
        expected = len(args.stages) + bool(args.router)
        if len(costs) != expected:
            raise CommandError(
                "--costs needs one number per model"
                + (", and the router's first" if args.router else "")
                + f": {expected} numbers for {len(args.stages)} models"
                + (" and --router" if args.router else "")
                + f", {len(costs)} given."
            )
        if not all(np.isfinite(c) and c >= 0 for c in costs):
            raise CommandError(
                f"--costs must be finite numbers >= 0; got {args.costs}."
            )
    if args.task != "auto":  # refused before any work where it can be
        _check_options(args, args.task)
    if args.save and args.answer == "both":
        raise CommandError(
            "--save saves one cascade: pass --answer stage or --answer combined "
            "(compare them first with --answer both, without --save)."
        )
    for option in ("--json", "--save"):
        check_output(option, getattr(args, option[2:]))
    check_plot("--plot", args.plot)
    check_distinct(
        {"--json": args.json, "--plot": args.plot, "--save": args.save},
        [*args.stages, args.data],
    )
    # Reading, then fitting and evaluating each answer kind, then writing.
    progress = Progress(2 + 2 * (2 if args.answer == "both" else 1))
    with progress.step("reading data and models"):
        X, y, names = load_data(
            args.data, label=args.label, x_key=args.x_key, y_key=args.y_key
        )
        taken = last_column_label_note(args.data, args.label)
        if taken is not None:
            print(f"note: {taken}", file=out)
        models = _loaded_models(args.stages)
        fitted = fitted_feature_names(models.values())
        X = align_columns(X, names, fitted, args.data)
        order = file_order_note(names, fitted, args.data)
        if order is not None:
            print(f"note: {order}", file=out)
        # The columns of a CSV, in the order the cascade is fitted on: kept
        # with a --save'd cascade, so that predict and recalibrate match a
        # CSV's columns by name (ONNX stages and stages fitted on arrays
        # know none).
        args.columns = fitted if fitted is not None else names
        # Stages fitted on named columns: so is the saved cascade, which then
        # takes a DataFrame of those columns without a warning.
        args.feature_names = fitted
        task = _task(args, models)
        _check_options(args, task)
        check_feature_counts(models, X, args.data)
        if task == "regression":
            y = regression_target(y, args.data)
            stages = _load_regression_stages(args, X, models)
        else:
            stages, y = _load_stages(args, X, y, out, models)
    if task == "regression":
        from ._frontier_regression import run_regression

        return run_regression(args, stages, X, y, progress, out)
    try:  # stratified where every class has rows enough for both parts
        X_policy, X_eval, y_policy, y_eval = split_rows(
            X, y, args.test_size, args.seed, args.data, stratify=y
        )
    except ValueError:
        X_policy, X_eval, y_policy, y_eval = split_rows(
            X, y, args.test_size, args.seed, args.data
        )
    fits = fit_answer_kinds(
        args,
        lambda **params: AdaptiveCascadeClassifier(stages, **params),
        _fit_and_evaluate,
        (X_policy, y_policy, X_eval, y_eval),
        progress,
    )
    return report_answer_kinds(
        args,
        fits,
        (X_eval, y_eval),
        progress,
        out,
        formats=(_format, _format_exits, _format_batch_sizes),
        titles=ANSWER_TITLES,
        note=(
            f"{COLUMNS[2]}: bootstrap interval of the accuracy ({N_RESAMPLES} "
            f"resamples of the held-out rows); cumulative cost: per row, of every "
            "stage the row ran (a stage's row: all rows exit there, "
            "with its own answer). The plot draws each stage alone, at its own cost."
        ),
    )


def fit_answer_kinds(args, make, fit_and_evaluate, rows, progress) -> list:
    """``(fitted, report)`` for each answer kind ``--answer`` asks for: the
    cascade ``make(**params)`` fitted on the policy rows of ``rows`` and
    reported on its evaluation rows."""
    params = {
        **_params(args),
        "random_state": args.seed,
        "verbose": progress.verbose,
    }
    kinds = ["stage", "combined"] if args.answer == "both" else [args.answer]
    fits = []
    # With both kinds the second fit reuses the stages' held-out answers
    # (memory=) and the first fit's measured costs: timed twice, the same
    # stages' costs differ by their timing noise, and so would the two
    # kinds' tables (the combiners' own work is then not counted).
    share_costs = params["costs"] == "auto" and len(kinds) > 1
    with tempfile.TemporaryDirectory() as cache:
        for k, kind in enumerate(kinds):
            fitted, report = fit_and_evaluate(
                make(answer=kind, memory=cache if len(kinds) > 1 else None, **params),
                rows,
                args.seed,
                progress,
            )
            report["costs_shared"] = share_costs and k > 0
            fits.append((fitted, report))
            if share_costs:
                params["costs"] = {
                    "per_row": fitted.costs_per_row_,
                    "per_call": fitted.costs_per_call_,
                }
    return fits


def report_answer_kinds(args, fits, rows, progress, out, *, formats, titles, note):
    """Print each answer kind's table, policy, exits and batch sizes, the
    note under them and the warnings; write the JSON, plot and ``--save``."""
    fmt, fmt_exits, fmt_batch_sizes = formats
    X_eval, y_eval = rows
    cascade, first = fits[0]
    print(
        f"{first['n_policy_rows']} rows to learn the policy, "
        f"{first['n_evaluation_rows']} held-out rows to evaluate it; stages: "
        f"{' -> '.join(n for n, _ in cascade.estimators)}",
        file=out,
    )
    for fitted, report in fits:
        if len(fits) > 1:
            print(f"\n{titles[fitted.answer]}:", file=out)
        print(fmt(report), file=out)
        print_policy_lines(report["chosen"], out)
        if fitted.answer == "combined":
            print(
                fmt_exits(report["exits"])
                if fitted.answer_ == "combined"
                else stage_answers_kept(fitted),
                file=out,
            )
    print(note, file=out)
    if any(report.get("costs_shared") for _, report in fits[1:]):
        print(
            "Both answer kinds are costed with the costs measured for the stage "
            "answers (timed once, so that the tables differ by the answers "
            "alone); the combiners' own work is not counted: fit with --answer "
            "combined to measure it.",
            file=out,
        )
    for fitted, report in fits:
        if report["batch_sizes"] is not None:
            if len(fits) > 1:
                print(f"{titles[fitted.answer]}:", file=out)
            print(fmt_batch_sizes(report["batch_sizes"]), file=out)
    warnings_seen = list(
        dict.fromkeys(
            w if len(fits) == 1 or k == 0 else f"{fitted.answer} answers: {w}"
            for k, (fitted, report) in enumerate(fits)
            for w in report["warnings"]
        )
    )
    for warning in warnings_seen:
        print(f"warning: {warning}", file=out)
    document = dict(first)
    for fitted, report in fits[1:]:
        document[fitted.answer] = report
    write_results(args, document, [f for f, _ in fits], X_eval, y_eval, progress, out)
    return 0


def combiner_cv_error(combiner) -> dict:
    """Each kind's out-of-fold error on the policy rows, as the exit's
    combiner scored them (nothing where only its stage was possible)."""
    if not combiner.cv_error:
        return {}
    return {"combiner_cv_error": {k: float(v) for k, v in combiner.cv_error.items()}}


def answer_reason(cascade) -> str | None:
    """Why a budget's policy answers with the combined answers or the
    stages' own (``budget_search_["answer_reason"]``); None where no such
    choice was made."""
    return (getattr(cascade, "budget_search_", None) or {}).get("answer_reason")


def stage_answers_kept(cascade) -> str:
    """Why a cascade fitted with ``answer="combined"`` answers with each
    stage's own output (``answer_ == "stage"``)."""
    from sklearn.base import is_regressor

    if not combines(cascade.combiners_):
        why = "no exit's combiner was clearly better than its stage alone"
    elif reason := answer_reason(cascade):
        # The budget's choice between the two answers' policies, with its
        # figures.
        why = reason
    else:
        better = "lower in error" if is_regressor(cascade) else "more accurate"
        why = (
            "the policy learned on the combined answers was not clearly "
            f"{better} out of sample at this budget than the stage answers' "
            "one, or answered no row at an exit that combines"
        )
    return f"every exit answers with its stage's own output ({why}; answer_='stage')"


def _params(args) -> dict:
    """The cascade's parameters that the options set, for either task."""
    params = {
        "costs": _costs(args.costs),
        "policy": args.policy,
        "cost_batch_size": args.batch_size,
        "skips": args.skips,
        "router": "auto" if args.router else None,
    }
    if args.budget is not None:
        params["budget"] = args.budget
    elif args.cost_weight is not None:
        params["cost_weight"] = args.cost_weight
    return params


def write_results(args, document, estimators, X, y, progress, out) -> None:
    """Write the JSON ``document``, the plot of ``estimators`` on ``X, y`` and,
    with ``--save``, the first estimator."""
    with progress.step("writing results"):
        _write_json(args.json, document)
        print(f"wrote {args.json}", file=out)
        if write_plot(estimators, X, y, args.plot, out):
            print(f"wrote {args.plot}", file=out)
        if args.save:
            import joblib

            cascade = estimators[0]
            if getattr(args, "columns", None) is not None:
                cascade.column_names_ = np.asarray(args.columns, dtype=object)
            if getattr(args, "feature_names", None) is not None:
                cascade.feature_names_in_ = np.asarray(args.feature_names, dtype=object)
            try:
                joblib.dump(cascade, args.save)
            except OSError as exc:
                raise CommandError(f"--save {args.save}: cannot write: {exc}") from exc
            print(
                f"saved the cascade ({_knob(cascade)}) to {args.save}; run "
                f"`skadaptive predict {args.save} --data FILE`",
                file=out,
            )


ANSWER_TITLES = {
    "stage": "stage answers (each exit answers with its stage's probabilities)",
    "combined": "combined answers (each exit answers with a combination of "
    "every stage the row ran)",
}


def _fit_and_evaluate(cascade, rows, seed, progress) -> tuple:
    """Fit ``cascade`` on the policy rows; its report on the evaluation rows."""
    X_policy, y_policy, X_eval, y_eval = rows
    kind = "" if cascade.answer == "stage" else f" ({cascade.answer} answers)"
    learning = (
        "measuring costs and learning the policy"
        if cascade.costs == "auto"
        else "learning the policy"
    )
    with progress.step(f"{learning}{kind}"):
        try:
            with recorded_warnings() as caught:
                cascade.fit(X_policy, y_policy)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        fit_warnings = list(dict.fromkeys(str(w.message) for w in caught))
        cascade.set_params(verbose=0, memory=None)  # for this command only
    with progress.step(f"evaluating the frontier on held-out rows{kind}"):
        try:
            # Reading frontier_ learns its policies: their warnings are
            # reported once, as the fit's are, not printed by Python.
            with recorded_warnings() as caught:
                test = cascade.evaluate_frontier(X_eval, y_eval)
                intervals = _accuracy_intervals(cascade, X_eval, y_eval, seed)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        fit_warnings += [str(w.message) for w in caught]
    report = _report(cascade, test, len(y_policy), len(y_eval), intervals)
    report["warnings"] = list(dict.fromkeys(fit_warnings + report["warnings"]))
    return cascade, report


def _knob(cascade) -> str:
    if cascade.budget is not None:
        return f"budget={cascade.budget:g}"
    return f"cost_weight={cascade.cost_weight:g}"


def _accuracy_intervals(cascade, X, y, seed) -> dict:
    """Bootstrap intervals of the accuracy of every point of the table.

    Needs whether each point answers each row right, which
    ``evaluate_frontier`` sums away: the stages are run on the rows again,
    and the policies applied to their probabilities as it does.
    """
    from ..policies._policy import oracle_exits, stage_correct
    from ..stages import exit_probas

    alone, probas = cascade._exit_answers(exit_probas(cascade._stage_source(), X))
    y_encoded = np.searchsorted(cascade.classes_, y)
    correct = stage_correct(probas, y_encoded)
    correct_alone = stage_correct(alone, y_encoded)
    correct_fitted = cascade._fitted_answers(correct_alone, correct)
    return point_intervals(
        cascade,
        probas,
        correct,
        correct_alone,
        oracle_exits(correct_fitted),
        seed,
        X,
        fitted=(cascade._fitted_answers(alone, probas), correct_fitted),
    )


def point_intervals(
    cascade, answers, per_row, per_row_alone, oracle, seed, X=None, *, fitted=None
) -> dict:
    """Bootstrap intervals of every point of the table from per-row figures.

    ``per_row`` (n_stages, n_rows) is each exit's figure on each row as the
    exits answer there (right or wrong, or an error), ``answers`` what
    ``frontier_``'s policies decide on; ``fitted`` the same two for the
    estimator's own policy (``answer_``; None: the same); ``per_row_alone``
    each stage's own figures; ``oracle`` the oracle's exit of each row (of
    the fitted answers); ``X`` the rows' features (for a policy with a
    router). Each stage alone answers every row with its own answer; each
    exit as the estimator's policy answers there.
    """
    from ..policies import routed_walk

    fitted_answers, fitted_per_row = (answers, per_row) if fitted is None else fitted
    rows = np.arange(per_row.shape[1])
    policies = [p.policy for p in cascade._frontier_evaluations()]
    chosen = routed_walk(cascade.policy_, fitted_answers, X)[0]
    points = np.concatenate(
        [
            per_row_alone,
            np.stack(
                [
                    fitted_per_row[oracle, rows],
                    *(per_row[routed_walk(p, answers, X)[0], rows] for p in policies),
                    fitted_per_row[chosen, rows],
                ]
            ),
            fitted_per_row,
        ]
    )
    intervals = bootstrap_intervals(points, seed=seed).tolist()
    n_stages, n_frontier = len(per_row), len(policies)
    return {
        "stages": intervals[:n_stages],
        "oracle": intervals[n_stages],
        "frontier": intervals[n_stages + 1 : n_stages + 1 + n_frontier],
        "chosen": intervals[n_stages + 1 + n_frontier],
        "exits": intervals[-n_stages:],
    }


def _router_report(cascade) -> dict | None:
    """Whether the router was kept, and the figures it was judged on."""
    search = getattr(cascade, "router_search_", None)
    if search is None:
        return None

    def number(value):
        # None where the budget cannot pay for the router (no figure): JSON
        # has no NaN.
        return float(value) if np.isfinite(value) else None

    figure = "expected_error" if "expected_error" in search else "expected_accuracy"
    return {
        "kept": search["kept"],
        "reason": search["reason"],
        "cost": number(search["router_cost"]),
        f"{figure}_without": number(search[figure][0]),
        f"{figure}_with": number(search[figure][1]),
        "expected_cost_without": number(search["expected_cost"][0]),
        "expected_cost_with": number(search["expected_cost"][1]),
    }


def _skips_report(cascade, test) -> dict | None:
    """With ``skips=True``: whether the policy kept jumps over a stage, its
    kind, and the share of the held-out rows each stage ran on."""
    if not cascade.skips:
        return None
    search = cascade.budget_search_
    return {
        "jumps": bool(jumps_over_stages(cascade.policy_)),
        "kind": None if search is None else str(search["scores"][search["chosen"]]),
        "run_rates": [float(r) for r in test["run_rates_at_fit"]],
    }


def skips_line(report: dict | None) -> str | None:
    """One line of the text output on skipping, from its report."""
    if report is None:
        return None
    kind = "" if report["kind"] is None else f" ({report['kind']})"
    runs = " / ".join(f"{100 * r:.1f}" for r in report["run_rates"])
    verdict = (
        "the policy kept jumps over stages"
        if report["jumps"]
        else "no policy that jumps over a stage was kept: rows run the stages in turn"
    )
    return f"skips: {verdict}{kind}; held-out rows each stage ran on: {runs} %"


def print_policy_lines(chosen: dict, out) -> None:
    """The text output's lines on the kept policy's budget, skips and router."""
    for line in (
        budget_line(chosen),
        skips_line(chosen["skips"]),
        router_line(chosen["router"]),
    ):
        if line is not None:
            print(line, file=out)


def budget_line(chosen: dict) -> str | None:
    """Why a budget's policy spends less than the budget, or None.

    ``budget_status_`` "saturated": for the kind of exit score kept, the
    most accurate thresholds the search found within the budget on the policy
    rows cost less, so it spends less (a dearer policy, beyond the budget,
    may still be more accurate, and another kind of score might have spent
    more: ``budget_search_``).
    """
    if chosen.get("budget_status") != "saturated":
        return None
    return (
        f"budget: saturated ({chosen['setting']}): for the kind of exit score "
        "kept, the best thresholds found within the budget on the policy rows "
        f"spend {chosen['policy_rows_cost']:.4g} a row there, below the budget "
        "(budget_status_; "
        "other kinds tried: budget_search_)"
    )


def router_line(report: dict | None) -> str | None:
    """One line of the text output on the router, from its report."""
    if report is None:
        return None
    figure = next(k for k in report if k.endswith("_without") and "cost" not in k)
    name = figure.removesuffix("_without").removeprefix("expected_")

    def pair_value(value):
        return "n/a" if value is None else f"{value:.4g}"

    def pair(key):
        values = [report[f"{key}_without"], report[f"{key}_with"]]
        return " -> ".join(pair_value(v) for v in values)

    return (
        f"router: {'kept' if report['kept'] else 'not kept'} ({report['reason']}; "
        f"its cost {pair_value(report['cost'])} a row; cross-fitted {name} without -> "
        f"with it {pair(f'expected_{name}')}, cost {pair('expected_cost')})"
    )


def _report(cascade, test, n_policy, n_eval, intervals) -> dict:
    total = float(cascade.cumulative_costs_[-1])
    stage_intervals = intervals["stages"]
    # The full cost's answer is the last exit's as this cascade answers there
    # (with combined answers, its combiner's), not the last stage's alone.
    exit_intervals = intervals["exits"]
    warning = too_few_rows_warning(n_eval, exit_intervals[0], exit_intervals[-1])
    return {
        "answer": cascade.answer,
        "answer_kept": cascade.answer_,
        "answer_reason": answer_reason(cascade),
        "n_policy_rows": n_policy,
        "n_evaluation_rows": n_eval,
        "accuracy_interval": {
            "method": "percentile bootstrap over the held-out rows",
            "confidence": CONFIDENCE,
            "resamples": N_RESAMPLES,
            "seed": cascade.random_state,
        },
        "stages": [
            {
                "name": name,
                "cost": float(cost),
                "cumulative_cost": float(cumulative),
                "accuracy": float(accuracy),
                "accuracy_interval": interval,
            }
            for (name, _), cost, cumulative, accuracy, interval in zip(
                cascade.estimators,
                cascade.costs_,
                cascade.cumulative_costs_,
                test["stage_accuracies"],
                stage_intervals,
            )
        ],
        "oracle": {
            "accuracy": test["oracle_accuracy"],
            "accuracy_interval": intervals["oracle"],
            "cost": test["oracle_cost"],
        },
        "frontier": [
            {
                "cost_weight": float(lam),
                "accuracy": float(accuracy),
                "accuracy_interval": interval,
                "cost": float(cost),
                "fraction_of_full_cost": float(cost / total),
                "exit_rates": rates.tolist(),
                "run_rates": runs.tolist(),
                **({} if router is None else {"router": bool(router)}),
            }
            for lam, accuracy, interval, cost, rates, runs, router in zip(
                test["cost_weight"],
                test["accuracy"],
                intervals["frontier"],
                test["expected_cost"],
                test["exit_rates"],
                test["run_rates"],
                test.get("router", repeat(None)),
            )
        ],
        "chosen": {
            "setting": _knob(cascade),
            "accuracy": test["accuracy_at_fit"],
            "accuracy_interval": intervals["chosen"],
            "cost": test["cost_at_fit"],
            "exit_rates": [float(r) for r in test["exit_rates_at_fit"]],
            "policy_rows_cost": float(cascade.policy_rows_cost_),
            "expected_cost": float(cascade.expected_cost_),
            "budget_status": cascade.budget_status_,
            "router": _router_report(cascade),
            "skips": _skips_report(cascade, test),
        },
        "exits": [
            {
                "name": name,
                "combiner": combiner.kind,
                "answers_with": kind,
                "accuracy": float(accuracy),
                "accuracy_interval": interval,
                **combiner_cv_error(combiner),
            }
            for (name, _), combiner, kind, accuracy, interval in zip(
                cascade.estimators,
                cascade.combiners_,
                cascade._exit_answer_kinds(),
                test["exit_accuracies"],
                intervals["exits"],
            )
        ],
        "batch_sizes": batch_size_advice(
            cascade, test["exit_rates_at_fit"], test["run_rates_at_fit"]
        ),
        "costs_unit": costs_unit_text(cascade),
        "warnings": [
            w
            for w in (
                too_few_policy_rows_warning(n_policy),
                warning,
                below_chance_warning(cascade, test["stage_accuracies"]),
            )
            if w
        ],
    }


def below_chance_warning(cascade, accuracies) -> str | None:
    """A hint where a stage is right on under half the rows a uniform guess
    would be: its output columns are likely not in the order of the labels
    (ONNX models' --classes), or the labels are not its classes."""
    chance = 1.0 / len(cascade.classes_)
    low = [
        f"{name!r} {accuracy:.4f}"
        for (name, _), accuracy in zip(cascade.estimators, accuracies)
        if accuracy < 0.5 * chance
    ]
    if not low:
        return None
    return (
        f"stage accuracy far below chance ({chance:.3g} for "
        f"{len(cascade.classes_)} classes): {', '.join(low)}. Are the model's "
        "output columns in the order --classes gives (ONNX models), and is "
        "--label the label column?"
    )


def costs_unit_text(cascade) -> str:
    """What the report's costs are: measured seconds for calls of how many
    rows, or as given."""
    if not isinstance(cascade.costs, str):
        return "as given"
    return (
        "seconds per row (measured), for calls of "
        f"{rows_text(int(cascade.cost_batch_size_))}"
    )


#: Batch sizes the chosen policy's expected speed-up is given for.
ADVICE_BATCH_SIZES = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)


def batch_size_advice(estimator, exit_rates, run_rates=None) -> dict | None:
    """The chosen policy's expected cost at each batch size, against its last
    stage called alone (without routing), and the smallest batch size from
    which it is cheaper.

    None unless the costs were measured (``costs="auto"``) or some stage has
    a cost per call: a line fitted for one batch size may have no part per
    call (timings near a large size), while the timings near a small one
    have, so measured costs always get the advice. The exits
    are the policy's (``exit_rates``; ``run_rates``, the share of rows each
    stage runs on, where the policy skips stages or routes rows); a policy
    learned for another batch size (``cost_batch_size``) may exit
    differently. A router kept is paid by every row, its call once a batch
    (its line as fitted for ``cost_batch_size``).
    """
    measured = getattr(estimator, "_measured_seconds", None) is not None
    if not measured and not estimator.costs_per_call_.any():
        return None
    if not getattr(estimator.policy_, "skips", False):
        run_rates = None
    router = (
        getattr(estimator, "router_search_", None)
        if getattr(estimator, "router_", None) is not None
        else None
    )

    def cost_at(size):
        # Measured lines are fitted again to the timings near each size.
        per_row, per_call, _ = estimator._cost_lines(size)
        cost = batch_cost(
            exit_rates, np.cumsum(per_row), per_call / size, size, run_rates
        )
        if router is not None:
            cost += (
                router["router_cost_per_row"] + router["router_cost_per_call"] / size
            )
        return cost

    points = []
    for size in ADVICE_BATCH_SIZES:
        cost = cost_at(size)
        alone = estimator._reference_seconds(size)
        points.append(
            {
                "batch_size": size,
                "cost_per_row": cost,
                "last_stage_alone_per_row": alone,
                "speed_up": alone / cost,
            }
        )
    fitted = int(estimator.cost_batch_size_)
    fitted_cost = cost_at(fitted)
    exit_rates = np.asarray(exit_rates, dtype=np.float64)
    return {
        # Nothing saved: every row runs every stage, and a ratio above 1 can
        # only be the noise of two timings.
        "every_stage_on_every_row": bool(
            run_rates is None and router is None and exit_rates[-1] >= 1 - 1e-12
        ),
        "unit": estimator._cost_unit(),
        "fitted_for_batch_size": fitted,
        "fitted_speed_up": estimator._reference_seconds(fitted) / fitted_cost,
        "points": points,
        "pays_off_from": pays_off_from(points),
    }


def pays_off_from(points) -> int | None:
    """The smallest batch size from which the cascade is faster at every
    larger size of ``points`` (dicts with ``batch_size`` and ``speed_up``, by
    size), or None: the expected speed-up can dip below 1 and come back (a
    dear stage's call reached at some sizes only), and a paying size before a
    dip is no advice. A speed-up is faster where it is above 1 as printed,
    to two decimals (1.004 reads "1.00x as fast", and was called faster).

    Examples
    --------
    >>> from skadaptive.cli._frontier import pays_off_from
    >>> speed_ups = {1: 2.3, 16: 0.9, 256: 0.9, 1024: 1.05, 65536: 1.2}
    >>> pays_off_from([{"batch_size": b, "speed_up": v} for b, v in speed_ups.items()])
    1024
    >>> print(pays_off_from([{"batch_size": 1, "speed_up": 1.004}]))
    None
    """
    first = None
    for point in reversed(points):
        if round(point["speed_up"], 2) <= 1:
            break
        first = point["batch_size"]
    return first


def _format_batch_sizes(advice) -> str:
    points = advice["points"]
    speed_ups = ", ".join(f"{p['batch_size']}: {p['speed_up']:.2f}x" for p in points)
    fitted = advice["fitted_for_batch_size"]
    rows = rows_text(fitted)
    lines = [
        "expected speed-up over the last stage alone, by rows per call (every "
        f"stage a batch reaches pays its cost per call once): {speed_ups}.",
        f"At {rows} per call (the batch size the policy was learned for) the "
        f"cascade is expected to be {advice['fitted_speed_up']:.2f}x as fast as "
        "its last stage alone.",
    ]
    if advice.get("every_stage_on_every_row"):
        lines.append(
            "Every row runs every stage at this point: the cascade cannot be "
            "faster than its last stage alone, and a ratio above 1 here is the "
            "noise of timings taken apart."
        )
        return "\n".join(lines)
    if advice.get("unit") == "seconds":
        lines.append(
            "(Expected from times measured at fit, each stage's alone and "
            "inside the cascade timed apart: they move from run to run, so where "
            "a ratio is near 1, time both on your own rows before relying on it.)"
        )
    first = advice["pays_off_from"]
    one_row = points[0]
    if advice.get("unit") == "seconds" and one_row["batch_size"] == 1:
        lines.append(
            f"A single-row call costs {1e3 * one_row['cost_per_row']:.3g} ms "
            f"(the last stage alone: {1e3 * one_row['last_stage_alone_per_row']:.3g}"
            " ms)."
        )
    lines.append(
        "The cascade is faster than its last stage alone at every batch size "
        f"from {rows_text(first)} per call on."
        if first is not None
        else "At none of these batch sizes (up to "
        f"{points[-1]['batch_size']:,} rows per call) is the cascade faster than "
        "its last stage alone there and at every larger size."
    )
    fitted_speed_up = round(advice["fitted_speed_up"], 2)
    if fitted_speed_up <= 1:
        # As printed: 1.004 and 0.996 both read 1.00x.
        verdict = (
            "the cascade is no faster than its last stage alone"
            if fitted_speed_up == 1
            else "the last stage alone is faster"
        )
        lines.append(
            f"At {rows} per call {verdict}: "
            + (
                f"predict in batches of {first} rows or more (from there the "
                "cascade is faster at every size above), "
                if first is not None and first > fitted
                else ""
            )
            + "drop the stages that are dear per call, or use the last stage "
            "alone."
        )
    return "\n".join(lines)


def _format_exits(exits) -> str:
    """One line: each exit's combined answer on the held-out rows."""
    return "combined answer at each exit (every row answered there): " + "; ".join(
        f"{e['name']} {e['accuracy']:.4f} {format_interval(e['accuracy_interval'])}"
        f" ({e['answers_with']})"
        for e in exits
    )


def _format(report) -> str:
    return format_points(
        report,
        lambda point: f"{point['accuracy']:.4f}",
        lambda point: format_interval(point["accuracy_interval"]),
        lambda point: round(point["accuracy"], 12),
        COLUMNS,
    )


def format_points(report, figure, interval, rounded, columns) -> str:
    """The table of a report: each stage, the oracle, the distinct frontier
    points and the chosen one, with ``figure`` and ``interval`` of each (its
    accuracy, or a regressor's error) and its cost; ``rounded`` says which
    frontier points are the same policy."""
    total = report["stages"][-1]["cumulative_cost"]

    def row(name, point, cost, exit_rates="-"):
        return (
            name,
            figure(point),
            interval(point),
            f"{cost:.4g}",
            f"{cost / total:.3f}",
            exit_rates,
        )

    rows = [
        row(f"stage {s['name']}", s, s["cumulative_cost"]) for s in report["stages"]
    ]
    rows.append(row("oracle", report["oracle"], report["oracle"]["cost"]))
    seen = set()
    repeated = 0
    for point in report["frontier"]:
        key = (rounded(point), round(point["cost"], 15))
        if key in seen:  # neighbouring cost weights often pick the same policy
            repeated += 1
            continue
        seen.add(key)
        rates = "/".join(f"{r:.2f}" for r in point["exit_rates"])
        routed = " +router" if point.get("router") else ""
        name = f"cost_weight={point['cost_weight']:.3g}{routed}"
        rows.append(row(name, point, point["cost"], rates))
    chosen = report["chosen"]
    chosen_rates = "/".join(f"{r:.2f}" for r in chosen["exit_rates"])
    rows.append(
        row(f"chosen: {chosen['setting']}", chosen, chosen["cost"], chosen_rates)
    )
    text = table(rows, columns)
    if any(point.get("router") for point in report["frontier"]):
        text += (
            "\n(+router: the point kept a router, judged on the policy rows it "
            "was learned on; the chosen point keeps one only where its "
            "cross-fitted figures say so: the router line below.)"
        )
    if repeated:
        n_points = len(report["frontier"])
        text += (
            f"\n({repeated} of the {n_points} cost weights are not shown: each "
            "gave the same policy as a cost weight above, with its figures; "
            f"the JSON lists all {n_points}.)"
        )
    return text


def _write_json(path, report) -> None:
    try:
        Path(path).write_text(json.dumps(report, indent=2))
    except OSError as exc:
        raise CommandError(f"{path}: cannot write: {exc}") from exc


def _label_oracle(display, k, label) -> None:
    """Name the first display's oracle by its kind of answer, and draw each
    later one's (first correct exit of its answers) in a colour of its own."""
    if k == 0:
        if display.oracle_point_ is not None:
            display.oracle_point_.set_label(label)
    elif display.oracle_cost is not None:
        from ..plot._cost_accuracy import draw_oracle

        display.oracle_point_ = draw_oracle(
            display.ax_, display, label, color="tab:purple"
        )
    display.ax_.legend(loc="best", fontsize="small")


def write_plot(estimators, X, y, path, out, rows: str = "evaluation rows") -> bool:
    """Plot the frontier of each estimator (a list) on ``X, y`` into ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            f"not writing {path}: plotting needs matplotlib "
            '(pip install "skadaptive[plot]")',
            file=out,
        )
        return False
    from sklearn.base import is_regressor

    from ..plot import CostAccuracyDisplay
    from ..plot._cost_accuracy import kept_answers_note

    display = None
    for k, estimator in enumerate(estimators):
        suffix = "" if len(estimators) == 1 else f", {estimator.answer} answers"
        display = CostAccuracyDisplay.from_estimator(
            estimator,
            X,
            y,
            name=(
                f"frontier_: a policy for each of "
                f"{len(estimator.frontier_['cost_weight'])} cost_weights{suffix}"
            ),
            ax=None if display is None else display.ax_,
            # Each stage alone once; the oracle of each kind of answer.
            show_stages=k == 0,
            show_oracle=k == 0,
            chosen_label=f"chosen operating point ({_knob(estimator)}){suffix}"
            + kept_answers_note(estimator),
        )
        if len(estimators) > 1:
            _label_oracle(display, k, f"oracle{suffix}")
    figure = (
        ERROR_NAMES[estimators[0].loss] if is_regressor(estimators[0]) else "accuracy"
    )
    display.ax_.set_title(f"{figure} against cost on {len(y)} {rows}")
    if len(estimators) > 1:
        # Two kinds' entries: beside the axes, where they hide no point.
        display.ax_.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small"
        )
    try:
        display.figure_.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise CommandError(f"{path}: cannot write: {exc}") from exc
    finally:
        plt.close(display.figure_)
    return True
