"""``skadaptive recalibrate``: move a saved model's thresholds to a budget on
a file's rows, without labels."""

from __future__ import annotations

import sys

import numpy as np

from ._io import CommandError, check_distinct, check_output, recorded_warnings
from ._predict import load_model_and_data, regression_error
from ._progress import Progress


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "recalibrate",
        help="move a saved model's exit thresholds to a budget on new, unlabelled rows",
        description=(
            "Load a fitted model saved with joblib (a cascade or early-exit "
            "classifier or regressor, e.g. from `skadaptive frontier --save`), "
            "and save a copy whose exit thresholds are moved so that its "
            "average cost per row on the rows of DATA meets the budget: when "
            "the traffic drifts (more hard rows), the policy spends more than "
            "it was fitted for. No label is needed and no stage is refitted: "
            "only the thresholds move, every exit's share of exiting rows by "
            "one common shift on the log-odds scale. Prints the exit report "
            "(exit rates and average cost on the rows against those expected) "
            "before and after; with labels in the file, also the accuracy (a "
            "regressor's error) before and after."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="saved model (.joblib)")
    parser.add_argument(
        "data",
        metavar="DATA",
        help="unlabelled rows like those the model answers now: .npz (array "
        "X; labels y are optional and used only to report accuracy), .npy "
        "(every column a feature unless --label) or .csv with a header",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="maximum average cost per row, in the units of the model's costs_ "
        "(default: the model's budget_, or its expected_cost_ when it was "
        "fitted with a cost_weight or left its budget unspent)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="NEW_MODEL",
        help="save the recalibrated model (joblib) here",
    )
    parser.add_argument(
        "--label",
        help="label (or target) column to leave out of the features: a CSV "
        "column name or a .npy column index (default: the CSV column named "
        "'label' if there is one)",
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
        "--batch-size",
        type=int,
        metavar="ROWS",
        help="rows run through the stages together, to bound memory (default: "
        "the model's batch_size); the costs are those of the calls the model "
        "was fitted for (cost_batch_size_)",
    )
    parser.set_defaults(run=run)


def run(args, out=None) -> int:
    import joblib

    from .._recalibrate import met_in_steps_well_below

    out = sys.stdout if out is None else out
    check_output("--output", args.output)
    check_distinct({"--output": args.output}, [args.model, args.data])
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget > 0):
        raise CommandError(f"--budget must be a positive number; got {args.budget}.")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1; got {args.batch_size}.")
    progress = Progress(3)
    with progress.step("loading the model and the data"):
        notes = []  # labels (targets) only report accuracy (error) here
        model, X, y, regression = load_model_and_data(args, notes)
    for note in notes:
        print(f"note: {note}", file=out)
    batch_size = model.batch_size
    if args.batch_size is not None:
        model.set_params(batch_size=args.batch_size)
    with progress.step(f"routing {len(X)} rows with the saved model"):
        before = _checked(model.exit_report, X, args.data)
    with progress.step("running every stage on every row, moving the thresholds"):
        with recorded_warnings(UserWarning) as caught:
            new = _checked(model.recalibrate, X, None, budget=args.budget)
    record = new.recalibration_
    print(f"{args.model} on the {len(X)} rows of {args.data}, before:", file=out)
    print(before, file=out)
    print(
        f"\nrecalibrated for {_target(model, record)}: average cost "
        f"{record['cost_before']:.4g} -> {record['cost']:.4g} per row "
        f"(+/- {2 * record['cost_standard_error']:.3g} on other rows like "
        f"these, two standard errors; {record['status']}; {_shift_text(record)})",
        file=out,
    )
    # The steps, unless the warning printed below as a note says so already.
    if (
        record["status"] == "met"
        and np.isfinite(record["next_cost"])
        and not met_in_steps_well_below(record)
    ):
        step = _apart(record["next_cost"], record["budget"])
        print(
            f"the cost moves in steps on these rows: the next one up costs "
            f"{step}, over the budget",
            file=out,
        )
    for warning in caught:
        print(f"note: {warning.message}", file=out)
    print("\nafter:", file=out)
    print(new.exit_report(X), file=out)
    if y is not None:
        first, second = model.predict(X), new.predict(X)
        if regression:
            # One line, as the classifiers' accuracy.
            name, before, units = regression_error(model._loss(), first, y)
            after = regression_error(model._loss(), second, y)[1]
            print(
                f"{name} on the file's targets: {before:.4g} before, {after:.4g} "
                f"after (in {units})",
                file=out,
            )
        else:
            print(
                f"accuracy on the file's labels: {np.mean(first == y):.4f} before, "
                f"{np.mean(second == y):.4f} after",
                file=out,
            )
    # --batch-size bounds this run's stage calls (the reports above included),
    # and is not saved with the model.
    new.set_params(batch_size=batch_size)
    try:
        joblib.dump(new, args.output)
    except OSError as exc:
        raise CommandError(f"{args.output}: cannot write: {exc}") from exc
    print(f"wrote {args.output}", file=out)
    return 0


def _target(model, record) -> str:
    """What the thresholds were moved for: the --budget given, else the
    model's own budget, or what the fit aimed at where that differs (the cost
    it chose where the budget was left unspent, the budget less its
    confidence margin, or the cost expected at fit without a budget)."""
    budget = getattr(model, "budget_", None)
    if record["requested_budget"] is not None or record["budget"] == budget:
        return f"budget {record['budget']:.4g}"
    if budget is None:
        return f"{record['budget']:.4g} per row, the cost expected at fit"
    return (
        f"{record['budget']:.4g} per row, what the fit aimed at within its "
        f"budget of {budget:.4g} (kept as budget_)"
    )


def _checked(method, X, path, **kwargs):
    """``method(X)``, its errors (a wrong feature count, an unreachable
    budget) as a CommandError, about the file ``path`` where given."""
    try:
        return method(X, **kwargs)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc) if path is None else f"{path}: {exc}") from exc


def _shift_text(record) -> str:
    """The log-odds shift of the exits' shares, or what an infinite one is."""
    shift = record["shift"]
    if np.isfinite(shift):
        return f"log-odds shift of the exits' shares {shift:+.3g}"
    if shift > 0:
        return "every exit before the deepest stage takes every row that reaches it"
    return "every exit as strict as spending more allows"


def _apart(value: float, reference: float) -> str:
    """``value`` with the digits it takes to read apart from ``reference``,
    both as printed at as many digits and as the report prints it (4)."""
    shown = float(f"{reference:.4g}")
    for digits in range(4, 17):
        text = f"{value:.{digits}g}"
        if float(text) not in (shown, float(f"{reference:.{digits}g}")):
            return text
    return repr(value)
