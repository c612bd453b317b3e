"""``skadaptive predict``: answer a file's rows with a saved adaptive model."""

from __future__ import annotations

import csv
import sys

import numpy as np

from ._io import CommandError, load_data, load_joblib
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
            "the average cost (and the accuracy when the file has labels)."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="saved model (.joblib)")
    parser.add_argument("--data", required=True, metavar="FILE")
    parser.add_argument("--label", help="label column, if the file has one")
    parser.add_argument("--x-key", default="X")
    parser.add_argument("--y-key", default="y")
    parser.add_argument(
        "--output", metavar="CSV", help="write prediction, exit stage, cost per row"
    )
    parser.add_argument("--batch-size", type=int, help="rows routed together")
    parser.set_defaults(run=run)


def _load_model(path):
    from .._base import BaseAdaptiveClassifier

    model = load_joblib(path)
    if not isinstance(model, BaseAdaptiveClassifier):
        raise CommandError(
            f"{path}: holds a {type(model).__name__}, not a fitted "
            "AdaptiveCascadeClassifier or EarlyExitClassifier."
        )
    if not hasattr(model, "policy_"):
        raise CommandError(f"{path}: the model in it is not fitted.")
    return model


def run(args, out=None) -> int:
    out = sys.stdout if out is None else out
    progress = Progress(2)
    with progress.step("loading the model and the data"):
        model = _load_model(args.model)
        X, y = load_data(
            args.data,
            label=args.label,
            x_key=args.x_key,
            y_key=args.y_key,
            require_labels=False,
        )
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise CommandError(f"--batch-size must be >= 1; got {args.batch_size}.")
        model.set_params(batch_size=args.batch_size)
    with progress.step(f"predicting {len(X)} rows"):
        try:
            result = model.route(X)
        except ValueError as exc:
            raise CommandError(f"{args.data}: {exc}") from exc
    predictions = model.classes_[np.argmax(result.proba, axis=1)]
    n_stages = len(model.cumulative_costs_)
    rates = np.bincount(result.exit_stage, minlength=n_stages) / len(X)
    names = model._stage_names()
    rows = [
        (name, f"{rate:.3f}", f"{cost:.4g}")
        for name, rate, cost in zip(names, rates, model.cumulative_costs_)
    ]
    print(f"{len(X)} rows predicted by {args.model}", file=out)
    print(table(rows, ("stage", "exit rate", "cost per row")), file=out)
    average = result.cost.mean()
    print(
        f"average cost per row: {average:.4g} "
        f"({average / model.cumulative_costs_[-1]:.1%} of running every stage)",
        file=out,
    )
    if y is not None:
        if y.dtype.kind in "iu" and model.classes_.dtype.kind not in "iu":
            y = y.astype(model.classes_.dtype)
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
    return 0
