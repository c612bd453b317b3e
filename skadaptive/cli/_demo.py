"""``skadaptive demo``: the README's main job, on the bundled digits data."""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np

from ._progress import Progress
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
    "held-out acc. (est.)",
    "held-out run cost / full",
)


#: The chosen point is the cheapest whose accuracy estimate (held-out rows)
#: is within this of the best stage's held-out accuracy.
CHOSEN_WITHIN = 0.005


def _demo_stages(random_state: int):
    """Three digits models whose accuracy and cost both increase.

    Measured on the demo's test rows (2 cores): logistic regression 96.8 % at
    1.7 us per row, 50 extra trees 97.6 % at 17 us, a calibrated RBF SVC
    98.8 % at 52 us.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return [
        ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("trees", ExtraTreesClassifier(n_estimators=50, random_state=random_state)),
        ("svc", CalibratedClassifierCV(SVC(), ensemble=False)),
    ]


def _chosen(points: list[dict], best_stage: float) -> dict:
    """The cheapest point whose held-out accuracy estimate is within
    ``CHOSEN_WITHIN`` of the best stage's, else the most accurate one."""
    close = [p for p in points if p["expected_accuracy"] >= best_stage - CHOSEN_WITHIN]
    if close:
        return min(close, key=lambda p: (p["expected_cost"], -p["expected_accuracy"]))
    return max(points, key=lambda p: (p["expected_accuracy"], -p["expected_cost"]))


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
    progress = Progress(3)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        with progress.step("fitting the stages (5 folds, then all rows) and a policy"):
            cascade = AdaptiveCascadeClassifier(
                stages,
                costs="auto",
                cv=5,
                memory=cache,
                random_state=random_state,
                verbose=progress.verbose,
            ).fit(X_train, y_train)
        cascade.set_params(verbose=0)
        print(
            f"fitted stages and policy in {time.perf_counter() - start:.1f} s; "
            "costs measured per call and per row",
            file=out,
        )
        full = cascade.cumulative_costs_[-1]
        y_encoded = np.searchsorted(cascade.classes_, y_test)
        answers = exit_probas(cascade._answer_source(), X_test)
        correct = stage_correct(answers, y_encoded)
        test = stage_figures(correct, cascade.cumulative_costs_)
        for (name, _), accuracy, cost, held_out in zip(
            stages, test["stage_accuracies"], cascade.costs_, cascade.stage_accuracies_
        ):
            rows.append(
                (
                    f"stage {name} alone",
                    f"{accuracy:.4f}",
                    f"{cost / full:.3f}",
                    f"{cost * 1e6:.1f}",
                    "-",
                    f"{held_out:.4f}",
                    f"{cost / full:.3f}",
                )
            )
            figures[name] = {"accuracy": accuracy, "normalized_cost": cost / full}
        with progress.step(f"learning the policy for {len(cost_weights)} cost weights"):
            for cost_weight in cost_weights:
                # Stages and measured costs come from the cache: only the policy
                # is learned again.
                cascade.set_params(cost_weight=cost_weight).fit(X_train, y_train)
                exit_stage = cascade.predict_exit(X_test)
                accuracy, _, rates = exit_figures(
                    exit_stage, correct, cascade.cumulative_costs_
                )
                cost = cascade._average_cost(exit_stage)
                rows.append(
                    [
                        f"cascade cost_weight={cost_weight:g}",
                        f"{accuracy:.4f}",
                        f"{cost / full:.3f}",
                        f"{cost * 1e6:.1f}",
                        "/".join(f"{r:.2f}" for r in rates),
                        f"{cascade.expected_accuracy_:.4f}",
                        f"{cascade.expected_cost_ / full:.3f}",
                    ]
                )
                figures["cascade"].append(
                    {
                        "cost_weight": cost_weight,
                        "accuracy": accuracy,
                        "normalized_cost": cost / full,
                        # Chosen on these, not on the test rows.
                        "expected_accuracy": float(cascade.expected_accuracy_),
                        "expected_cost": float(cascade.expected_cost_),
                    }
                )
            figures["best_stage_held_out_accuracy"] = float(
                cascade.stage_accuracies_.max()
            )
            chosen = _chosen(
                figures["cascade"], figures["best_stage_held_out_accuracy"]
            )
            figures["chosen"] = chosen
            rows[len(stages) + figures["cascade"].index(chosen)][0] += " *"
            cascade.set_params(cost_weight=chosen["cost_weight"]).fit(X_train, y_train)
        oracle = test["oracle_accuracy"], test["oracle_cost"]
        rows.append(
            (
                "oracle (first correct stage)",
                f"{oracle[0]:.4f}",
                f"{oracle[1] / full:.3f}",
                f"{oracle[1] * 1e6:.1f}",
                "-",
                f"{cascade.oracle_accuracy_:.4f}",
                f"{cascade.oracle_cost_ / full:.3f}",
            )
        )
        figures["oracle"] = {"accuracy": oracle[0], "normalized_cost": oracle[1] / full}
    print(table(rows, COLUMNS), file=out)
    print(
        "run cost: average cost per row of the stages run (a stage alone: its "
        "own cost); / full: as a fraction of running every stage.\n"
        "held-out: the cross-fitted rows the policy learns from (a stage's own "
        "accuracy there; a cascade's expected_accuracy_ and expected_cost_, "
        "estimated out of sample).\n"
        f"* chosen: the cascade row with the lowest held-out run cost whose "
        f"held-out accuracy is within {100 * CHOSEN_WITHIN:g} points of the best "
        "stage's held-out accuracy (never chosen on the test rows).\n"
        f"test accuracy: on {len(y_test)} rows, one row is "
        f"{100 / len(y_test):.2f} points; differences of a few rows between "
        "cascade rows are noise, and the cost column moves with cost_weight "
        "only roughly (each row's rules are learned again for its cost_weight).",
        file=out,
    )
    figures["plot"] = None
    if plot is not None:
        from ._frontier import write_plot

        with progress.step("writing the plot"):
            written = write_plot([cascade], X_test, y_test, plot, out, rows="test rows")
        if written:
            print(
                f"wrote the frontier on the test rows (each stage, the oracle, "
                f"and the chosen point cost_weight={chosen['cost_weight']:g}) "
                f"to {plot}",
                file=out,
            )
            figures["plot"] = plot
    return figures


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="fit a cascade on the bundled digits data and print its trade-off",
        description=(
            "Fit a 3-stage cascade (logistic regression -> 50 extra trees -> "
            "RBF SVC) on scikit-learn's bundled digits data, with costs measured "
            "in seconds (per call and per row, for calls of 65,536 rows), and "
            "print each stage alone, the cascade at "
            "several cost_weight values and the oracle on the test rows, next "
            "to their held-out figures; write the frontier plot."
        ),
    )
    from ._io import seed

    demo.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
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
    from ._io import CommandError, check_plot

    if any(not (0 <= w < np.inf) for w in args.cost_weights):
        raise CommandError(
            "--cost-weights must be finite numbers >= 0; got "
            f"{' '.join(f'{w:g}' for w in args.cost_weights)}."
        )
    check_plot("--plot", args.plot)
    run_demo(args.cost_weights, args.seed, out=out, plot=args.plot)
    return 0
