"""Budgets on new rows: stages refitted on all rows, or kept as held out.

Usage::

    python -m benchmarks.run_refit            # full run (about 4 minutes)
    python -m benchmarks.run_refit --quick    # smoke run, writes nothing

The policy is learned on the probabilities of stages that did not see the
policy rows. With ``refit=True`` (the default, as scikit-learn's stacking) the
stages are then refitted on all rows, and new rows are answered by stages the
policy never saw; ``refit=False`` keeps the stages that gave the held-out
probabilities (with one split, ``cv`` a float, the one model; with several,
each stage's fold models, a new row answered by one of them chosen by a hash
of its content). The 3-stage cascades of the
recalibration benchmark (mnist1d: logistic regression, a random forest,
gradient boosting; make_classification: logistic regression, a small and a
larger MLP) with declared costs 1, 10 and 100 (exact, not timings), the
default policy, are fitted four ways: ``cv=3`` (the default cross-fitting,
refitted), ``cv=0.25`` refitted, ``cv=0.25, refit=False`` and ``cv=3,
refit=False`` (the fold models kept), each for a
budget of 25 % of the full cost, the 10 % and 50 % policies coming from
``with_policy`` on the same policy rows. Each is measured on test rows no
stage and no policy saw: the average cost per row (the stages each row ran)
against the budget, and the accuracy, with ``expected_cost_`` (the fit's
out-of-sample estimate on the policy rows) beside them. Data sets: mnist1d
with 3,600 training rows and 2,400 test rows (the recalibration benchmark's
split), mnist1d and make_classification with 10,000 test rows (3,600 and
3,000 training rows). One standard error of a test cost is up to 1.3 % of
the budget at 10,000 rows and 3.2 % at 2,400 (shown with each cost).

Writes ``benchmarks/results/refit.json`` and ``benchmarks/REFIT_RESULTS.md``.
"""

from __future__ import annotations

import time

import numpy as np

from skadaptive import AdaptiveCascadeClassifier

from ._tables import described_report, run_and_write, run_quietly, table
from .datasets import SEED, classification_mlps, mnist1d_small

COSTS = (1.0, 10.0, 100.0)
FIT_BUDGET = 0.25
BUDGETS = (0.10, 0.25, 0.50)
#: (label, cv, refit)
VARIANTS = (
    ("cv=3 (default)", 3, True),
    ("cv=0.25", 0.25, True),
    ("cv=0.25, refit=False", 0.25, False),
    ("cv=3, refit=False (fold models)", 3, False),
)


def _datasets(quick: bool):
    if quick:
        return [("mnist1d", lambda: mnist1d_small(True))]
    return [
        ("mnist1d, 2,400 test rows", lambda: mnist1d_small()),
        ("mnist1d, 10,000 test rows", lambda: mnist1d_small(test_rows=10_000)),
        (
            "make_classification, 10,000 test rows",
            lambda: classification_mlps(test_rows=10_000),
        ),
    ]


def _measure(estimator, X, y) -> dict:
    routed = estimator.route(X)
    predicted = estimator.classes_[routed.proba.argmax(axis=1)]
    cost = routed.cost
    return {
        "cost": float(cost.mean()),
        "cost_standard_error": float(cost.std(ddof=1) / np.sqrt(len(cost))),
        "accuracy": float(np.mean(predicted == y)),
    }


def run_dataset(label, load, cache) -> dict:
    data = load()
    total = float(np.sum(COSTS))
    variants = []
    for name, cv, refit in VARIANTS:
        start = time.perf_counter()
        cascade = AdaptiveCascadeClassifier(
            data.stages,
            costs=list(COSTS),
            budget=FIT_BUDGET * total,
            cv=cv,
            refit=refit,
            memory=cache,
            n_jobs=2,
            random_state=SEED,
        ).fit(data.X_train, data.y_train)
        fit_seconds = time.perf_counter() - start
        points = []
        for fraction in BUDGETS:
            budget = fraction * total
            fitted = (
                cascade
                if fraction == FIT_BUDGET
                else cascade.with_policy(budget=budget)
            )
            points.append(
                {
                    "budget_fraction": fraction,
                    "budget": budget,
                    "budget_status": fitted.budget_status_,
                    "expected_cost": float(fitted.expected_cost_),
                    "expected_accuracy": float(fitted.expected_accuracy_),
                    "test": _measure(fitted, data.X_test, data.y_test),
                }
            )
        variants.append(
            {
                "variant": name,
                "cv": cv,
                "refit": refit,
                "fit_seconds": fit_seconds,
                "points": points,
            }
        )
    return {"dataset": label, "described": data.describe(), "variants": variants}


def summary(results: list[dict]) -> dict:
    """Each variant's test cost against the budget, at worst both ways."""
    gaps = {
        name: [
            p["test"]["cost"] / p["budget"] - 1
            for r in results
            for v in r["variants"]
            if v["variant"] == name
            for p in v["points"]
        ]
        for name, _, _ in VARIANTS
    }
    return {
        name: {"worst_over": max(g), "worst_under": min(g)} for name, g in gaps.items()
    }


def run(quick: bool = False) -> dict:
    return run_quietly(
        "refit",
        lambda cache: [
            run_dataset(label, load, cache) for label, load in _datasets(quick)
        ],
        summary,
        "python -m benchmarks.run_refit",
    )


def markdown(results: dict) -> str:
    blocks = []
    for r in results["results"]:
        d = r["described"]
        rows = []
        for v in r["variants"]:
            for p in v["points"]:
                t = p["test"]
                rows.append(
                    [
                        v["variant"],
                        f"{100 * p['budget_fraction']:.0f} % ({p['budget']:.2f})",
                        f"{p['expected_cost']:.2f} "
                        f"({100 * (p['expected_cost'] / p['budget'] - 1):+.1f} %)",
                        f"{t['cost']:.2f} +- {t['cost_standard_error']:.2f} "
                        f"({100 * (t['cost'] / p['budget'] - 1):+.1f} %)",
                        f"{100 * p['expected_accuracy']:.2f}",
                        f"{100 * t['accuracy']:.2f}",
                        p["budget_status"],
                    ]
                )
        fits = ", ".join(
            f"{v['variant']} {v['fit_seconds']:.0f} s" for v in r["variants"]
        )
        blocks.append(
            f"## {r['dataset']}\n\n{d['n_train']} training rows, {d['n_test']} "
            f"test rows. Fit times: {fits}.\n\n"
            + table(
                rows,
                [
                    "stages",
                    "budget",
                    "expected_cost_ (vs budget)",
                    "test cost +- 1 SE (vs budget)",
                    "expected acc. %",
                    "test acc. %",
                    "budget_status_",
                ],
            )
            + "\n"
        )
    lines = [
        f"- {name}: test cost from {100 * s['worst_under']:+.1f} % to "
        f"{100 * s['worst_over']:+.1f} % of the budget."
        for name, s in results["summary"].items()
    ]
    body = "\n".join(blocks) + (
        "\n## Summary\n\n" + "\n".join(lines) + "\n\n"
        "*expected_cost_* is the fit's out-of-sample estimate on the policy "
        "rows; test figures are on rows no stage and no policy saw.\n"
    )
    return described_report(
        "Budgets on new rows: refitted stages or the held-out ones",
        results,
        __doc__,
        body,
    )


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "refit.json", "REFIT_RESULTS.md", argv)


if __name__ == "__main__":
    main()
