"""``skadaptive frontier``: the trade-off of your own models on your own data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ._io import CommandError, load_data, load_stage
from ._progress import Progress
from ._table import table


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "frontier",
        help="accuracy against cost of a cascade of your own trained models",
        description=(
            "Learn exit policies over already-trained models (ONNX files or "
            "joblib/pickle files of fitted scikit-learn classifiers), ordered "
            "from the cheapest to the most expensive, on labelled data; print "
            "the accuracy/cost frontier on rows held out from the policy, and "
            "write it as a plot and JSON."
        ),
    )
    parser.add_argument(
        "stages", nargs="+", metavar="MODEL", help=".onnx, .joblib or .pkl files"
    )
    parser.add_argument(
        "--data", required=True, metavar="FILE", help=".npz (X, y), .npy or .csv"
    )
    parser.add_argument("--label", help="label column (CSV name, .npy index)")
    parser.add_argument("--x-key", default="X", help=".npz array of rows (X)")
    parser.add_argument("--y-key", default="y", help=".npz array of labels (y)")
    parser.add_argument(
        "--classes",
        nargs="+",
        help="the models' classes in output-column order (default: the labels)",
    )
    parser.add_argument(
        "--costs",
        nargs="+",
        default=["auto"],
        metavar="COST",
        help="cost per row of each stage, or 'auto' to measure (default)",
    )
    parser.add_argument(
        "--policy", default="linear", help="policy family (default: linear)"
    )
    knob = parser.add_mutually_exclusive_group()
    knob.add_argument("--budget", type=float, help="average cost per row to meet")
    knob.add_argument("--cost-weight", type=float, help="trade-off lam (0.01)")
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.3,
        help="fraction of rows held out from the policy to evaluate it (0.3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--plot", default="frontier.png", metavar="PNG", help="(frontier.png)"
    )
    parser.add_argument(
        "--json", default="frontier.json", metavar="FILE", help="(frontier.json)"
    )
    parser.add_argument(
        "--save", metavar="FILE", help="save the fitted cascade (joblib) here"
    )
    parser.set_defaults(run=run)


def _costs(values):
    if values == ["auto"]:
        return "auto"
    try:
        return [float(v) for v in values]
    except ValueError as exc:
        raise CommandError(
            f"--costs must be 'auto' or one number per stage; got {values}."
        ) from exc


def _classes(args, y) -> np.ndarray:
    """The classes in the models' column order, of the labels' type."""
    if args.classes is None:
        return np.unique(y)
    classes = np.array(args.classes)
    if y.dtype.kind in "iuf":
        try:
            classes = classes.astype(np.float64)
        except ValueError as exc:
            raise CommandError(
                f"--classes {args.classes} are not numbers like the labels."
            ) from exc
        if y.dtype.kind in "iu":
            if not np.array_equal(classes, np.round(classes)):
                raise CommandError(
                    f"--classes {args.classes} are not whole numbers like the labels."
                )
            classes = classes.astype(y.dtype)
    if len(np.unique(classes)) != len(classes):
        raise CommandError(f"--classes {args.classes} repeats a class.")
    return classes


def _check_labels(y, stages) -> None:
    """Every label must be a class of every model, before the data is split."""
    present = np.unique(y)
    for name, stage in stages:
        unknown = np.setdiff1d(present, np.asarray(stage.classes_))
        if len(unknown):
            raise CommandError(
                f"the data has labels {unknown.tolist()} that model {name!r} does "
                f"not predict (its classes are {np.asarray(stage.classes_).tolist()})"
                "; drop those rows, or pass the models' classes with --classes."
            )


def _stage_names(paths) -> list[str]:
    """Stage names from the file names, made valid as scikit-learn names."""
    from .. import AdaptiveCascadeClassifier

    names = [Path(path).stem.replace("__", "_") or "stage" for path in paths]
    reserved = set(AdaptiveCascadeClassifier._get_param_names())
    if len(set(names)) != len(names) or reserved.intersection(names):
        names = [f"{k}_{name}" for k, name in enumerate(names)]
    return names


def run(args, out=None) -> int:
    from sklearn.model_selection import train_test_split

    out = sys.stdout if out is None else out
    from .. import AdaptiveCascadeClassifier

    if len(args.stages) < 2:
        raise CommandError("give at least two models, from cheapest to dearest.")
    if not 0 < args.test_size < 1:
        raise CommandError(f"--test-size must be in (0, 1); got {args.test_size}.")
    progress = Progress(4)
    with progress.step("reading data and models"):
        X, y = load_data(
            args.data, label=args.label, x_key=args.x_key, y_key=args.y_key
        )
        classes = _classes(args, y)
        stages = [
            (name, load_stage(path, classes, X[:1], y[:1]))
            for name, path in zip(_stage_names(args.stages), args.stages)
        ]
        _check_labels(y, stages)
    try:  # stratified where every class has rows enough for both parts
        X_policy, X_eval, y_policy, y_eval = train_test_split(
            X, y, test_size=args.test_size, random_state=args.seed, stratify=y
        )
    except ValueError:
        X_policy, X_eval, y_policy, y_eval = train_test_split(
            X, y, test_size=args.test_size, random_state=args.seed
        )
    params = {"costs": _costs(args.costs), "policy": args.policy}
    if args.budget is not None:
        params["budget"] = args.budget
    elif args.cost_weight is not None:
        params["cost_weight"] = args.cost_weight
    cascade = AdaptiveCascadeClassifier(stages, random_state=args.seed, **params)
    with progress.step("measuring costs and learning the policy"):
        try:
            cascade.fit(X_policy, y_policy)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
    with progress.step("evaluating the frontier on held-out rows"):
        try:
            test = cascade.evaluate_frontier(X_eval, y_eval)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
    report = _report(cascade, test, len(y_policy), len(y_eval))
    print(
        f"{len(y_policy)} rows to learn the policy, {len(y_eval)} held-out rows "
        f"to evaluate it; stages: {' -> '.join(n for n, _ in cascade.estimators)}",
        file=out,
    )
    print(_format(report), file=out)
    with progress.step("writing results"):
        _write_json(args.json, report)
        print(f"wrote {args.json}", file=out)
        if write_plot(cascade, X_eval, y_eval, args.plot, out):
            print(f"wrote {args.plot}", file=out)
        if args.save:
            import joblib

            joblib.dump(cascade, args.save)
            print(
                f"saved the cascade ({_knob(cascade)}) to {args.save}; run "
                f"`skadaptive predict {args.save} --data FILE`",
                file=out,
            )
    return 0


def _knob(cascade) -> str:
    if cascade.budget is not None:
        return f"budget={cascade.budget:g}"
    return f"cost_weight={cascade.cost_weight:g}"


def _report(cascade, test, n_policy, n_eval) -> dict:
    total = float(cascade.cumulative_costs_[-1])
    return {
        "n_policy_rows": n_policy,
        "n_evaluation_rows": n_eval,
        "stages": [
            {
                "name": name,
                "cost": float(cost),
                "cumulative_cost": float(cumulative),
                "accuracy": float(accuracy),
            }
            for (name, _), cost, cumulative, accuracy in zip(
                cascade.estimators,
                cascade.costs_,
                cascade.cumulative_costs_,
                test["stage_accuracies"],
            )
        ],
        "oracle": {"accuracy": test["oracle_accuracy"], "cost": test["oracle_cost"]},
        "frontier": [
            {
                "cost_weight": float(lam),
                "accuracy": float(accuracy),
                "cost": float(cost),
                "fraction_of_full_cost": float(cost / total),
                "exit_rates": rates.tolist(),
            }
            for lam, accuracy, cost, rates in zip(
                test["cost_weight"],
                test["accuracy"],
                test["expected_cost"],
                test["exit_rates"],
            )
        ],
        "chosen": {
            "setting": _knob(cascade),
            "accuracy": test["accuracy_at_fit"],
            "cost": test["cost_at_fit"],
            "policy_rows_cost": float(cascade.policy_rows_cost_),
            "expected_cost": float(cascade.expected_cost_),
        },
        "costs_unit": "seconds per row (measured)"
        if isinstance(cascade.costs, str)
        else "as given",
    }


def _format(report) -> str:
    total = report["stages"][-1]["cumulative_cost"]
    rows = [
        (
            f"stage {s['name']}",
            f"{s['accuracy']:.4f}",
            f"{s['cumulative_cost']:.4g}",
            f"{s['cumulative_cost'] / total:.3f}",
            "-",
        )
        for s in report["stages"]
    ]
    oracle = report["oracle"]
    rows.append(
        (
            "oracle",
            f"{oracle['accuracy']:.4f}",
            f"{oracle['cost']:.4g}",
            f"{oracle['cost'] / total:.3f}",
            "-",
        )
    )
    seen = set()
    for point in report["frontier"]:
        key = (round(point["accuracy"], 12), round(point["cost"], 15))
        if key in seen:  # neighbouring cost weights often pick the same policy
            continue
        seen.add(key)
        rows.append(
            (
                f"cost_weight={point['cost_weight']:.3g}",
                f"{point['accuracy']:.4f}",
                f"{point['cost']:.4g}",
                f"{point['fraction_of_full_cost']:.3f}",
                "/".join(f"{r:.2f}" for r in point["exit_rates"]),
            )
        )
    chosen = report["chosen"]
    rows.append(
        (
            f"chosen: {chosen['setting']}",
            f"{chosen['accuracy']:.4f}",
            f"{chosen['cost']:.4g}",
            f"{chosen['cost'] / total:.3f}",
            "-",
        )
    )
    header = ("point", "accuracy", "cost per row", "cost / full", "exit rates")
    return table(rows, header)


def _write_json(path, report) -> None:
    try:
        Path(path).write_text(json.dumps(report, indent=2))
    except OSError as exc:
        raise CommandError(f"{path}: cannot write: {exc}") from exc


def write_plot(estimator, X, y, path, out) -> bool:
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
    from ..plot import CostAccuracyDisplay

    display = CostAccuracyDisplay.from_estimator(estimator, X, y)
    display.ax_.set_title("accuracy against cost on held-out rows")
    try:
        display.figure_.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise CommandError(f"{path}: cannot write: {exc}") from exc
    finally:
        plt.close(display.figure_)
    return True
