"""``skadaptive demo``: the README's main job, on the bundled digits data."""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from ._table import table

DEMO_COST_WEIGHTS = (0.0, 0.001, 0.01, 0.05, 0.2)
# A stage's row shows the stage run alone (its own cost), a cascade's row the
# stages it runs per row on average: both are the cost of what is run, which
# `skadaptive frontier` does not show (it shows cumulative costs).
COLUMNS = (
    "method",
    "test accuracy",
    "run cost / full",
    "run cost (us/row)",
    "exit rates",
)


def _demo_stages(random_state: int):
    """Three digits models whose accuracy and cost both increase (measured)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return [
        ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("trees", ExtraTreesClassifier(n_estimators=300, random_state=random_state)),
        ("svc", CalibratedClassifierCV(SVC(), ensemble=False)),
    ]


def run_demo(
    cost_weights=DEMO_COST_WEIGHTS,
    random_state: int = 0,
    out=None,
    plot: str | None = None,
) -> dict:
    """Fit a 3-stage cascade on digits and print accuracy against average cost.

    Parameters
    ----------
    cost_weights : sequence of float
        Operating points to show.
    random_state : int, default=0
    out : file, default=None
        Where to print; ``sys.stdout`` when None.
    plot : str, default=None
        Where to write the frontier plot (PNG); None writes none.

    Returns
    -------
    figures : dict
        The printed figures (for tests and scripts), with ``"plot"``: the path
        written, or None.
    """
    out = sys.stdout if out is None else out
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from .. import AdaptiveCascadeClassifier
    from ..policies._policy import exit_figures, stage_correct, stage_figures
    from ..stages import exit_probas

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, stratify=y, random_state=random_state
    )
    stages = _demo_stages(random_state)
    print(
        f"digits: {len(X_train)} training rows, {len(X_test)} test rows; stages "
        + " -> ".join(name for name, _ in stages),
        file=out,
    )
    rows, figures = [], {"cascade": []}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        cascade = AdaptiveCascadeClassifier(
            stages, costs="auto", cv=5, memory=cache, random_state=random_state
        ).fit(X_train, y_train)
        print(
            f"fitted stages and policy in {time.perf_counter() - start:.1f} s; "
            "costs measured per row",
            file=out,
        )
        full = cascade.cumulative_costs_[-1]
        y_encoded = np.searchsorted(cascade.classes_, y_test)
        correct = stage_correct(exit_probas(cascade._stage_source(), X_test), y_encoded)
        test = stage_figures(correct, cascade.cumulative_costs_)
        for (name, _), accuracy, cost in zip(
            stages, test["stage_accuracies"], cascade.costs_
        ):
            rows.append(
                (
                    f"stage {name} alone",
                    f"{accuracy:.4f}",
                    f"{cost / full:.3f}",
                    f"{cost * 1e6:.1f}",
                    "-",
                )
            )
            figures[name] = {"accuracy": accuracy, "normalized_cost": cost / full}
        for cost_weight in cost_weights:
            # Stages and measured costs come from the cache: only the policy
            # is learned again.
            cascade.set_params(cost_weight=cost_weight).fit(X_train, y_train)
            accuracy, cost, rates = exit_figures(
                cascade.predict_exit(X_test), correct, cascade.cumulative_costs_
            )
            rows.append(
                (
                    f"cascade cost_weight={cost_weight:g}",
                    f"{accuracy:.4f}",
                    f"{cost / full:.3f}",
                    f"{cost * 1e6:.1f}",
                    "/".join(f"{r:.2f}" for r in rates),
                )
            )
            figures["cascade"].append(
                {
                    "cost_weight": cost_weight,
                    "accuracy": accuracy,
                    "normalized_cost": cost / full,
                }
            )
        oracle = test["oracle_accuracy"], test["oracle_cost"]
        rows.append(
            (
                "oracle (first correct stage)",
                f"{oracle[0]:.4f}",
                f"{oracle[1] / full:.3f}",
                f"{oracle[1] * 1e6:.1f}",
                "-",
            )
        )
        figures["oracle"] = {"accuracy": oracle[0], "normalized_cost": oracle[1] / full}
    print(table(rows, COLUMNS), file=out)
    print(
        "run cost: average cost per row of the stages run (a stage alone: its "
        "own cost); / full: as a fraction of running every stage.",
        file=out,
    )
    figures["plot"] = None
    if plot is not None:
        from ._frontier import write_plot

        if write_plot(cascade, X_test, y_test, plot, out):
            print(
                f"wrote the test-set frontier (each stage, the oracle, and the "
                f"chosen point cost_weight={cost_weights[-1]:g}) to {plot}",
                file=out,
            )
            figures["plot"] = plot
    return figures


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="fit a cascade on the bundled digits data and print its trade-off",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument(
        "--cost-weights",
        type=float,
        nargs="+",
        default=list(DEMO_COST_WEIGHTS),
        metavar="LAM",
        help="cost_weight values to show (default: %(default)s)",
    )
    demo.add_argument(
        "--plot",
        default="skadaptive-demo.png",
        metavar="PNG",
        help="where to write the frontier plot (default: %(default)s)",
    )
    demo.set_defaults(run=run)


def run(args, out=None) -> int:
    from ._io import CommandError, check_output

    if any(not (w >= 0) for w in args.cost_weights):
        raise CommandError("--cost-weights must be non-negative numbers.")
    check_output("--plot", args.plot)
    run_demo(args.cost_weights, args.seed, out=out, plot=args.plot)
    return 0
