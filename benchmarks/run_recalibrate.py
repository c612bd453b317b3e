"""Budget recalibration without labels: more hard rows, before and after.

Usage::

    python -m benchmarks.run_recalibrate            # full run (about 4 minutes)
    python -m benchmarks.run_recalibrate --quick    # smoke run, writes nothing

On two benchmark datasets (mnist1d generated locally with 6,000 rows, 2,400
for test; make_classification with 6,000 rows, 5 classes of 3 clusters, half
for test), a 3-stage ``AdaptiveCascadeClassifier`` (logistic regression, then
a random forest and gradient boosting for mnist1d, a small and a larger MLP
for make_classification) with declared costs 1, 10 and 100, so that every
cost is exact rather than a timing, fitted (``cv=3``, the default policy)
for a budget of 25 % and of 50 % of the full cost; the second budget's policy
comes from ``with_policy`` on the same held-out policy rows. The test rows
are split at random into two halves, A and B, and each half is shifted on its
own: its rows plus twice more the third of them that the middle stage (the
last before the dear one) is least sure of (lowest maximum probability), so
a shifted half has more hard rows than the rows the policy was fitted on,
and the two shifted halves share no row. The target is what ``recalibrate``
aims at by default: the budget, or where the fit left it unspent
(``budget_status_`` "saturated": more budget bought nothing on the policy
rows) the fit's ``expected_cost_``. The cascade is recalibrated
(``recalibrate(X)``, no label) on shifted A and measured on shifted B, then
the other way round; the tables show the mean of the two directions, so every
recalibrated figure is on rows the recalibration never saw (the in-sample
cost, on the rows recalibrated on, is shown too: it is the one the method
guarantees within the target). Accuracies use the labels of the measurement
half. The same is done with the unshifted halves ("agreement": the share of
rows whose prediction the recalibrated copy leaves unchanged); there the
recalibrated copy moves only as far as the fitted policy's cost on test rows
differs from the target (stages refitted on all rows after cross-fitting are
often surer of new rows than of the held-out ones, so new rows cost less).
The cost is the average over the rows of the cost of the stages each ran (no
per-call parts here).

Writes ``benchmarks/results/recalibrate.json`` and
``benchmarks/RECALIBRATE_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from skadaptive import AdaptiveCascadeClassifier

from ._tables import described_report, run_and_write, run_quietly, table
from .datasets import SEED, classification_mlps, mnist1d_small

BUDGETS = (0.25, 0.50)
COSTS = (1.0, 10.0, 100.0)
#: Each half gets its hardest third twice more.
HARD_SHARE = 1 / 3
HARD_COPIES = 2


def _mnist1d(quick):
    return mnist1d_small(quick)


def _synthetic(quick):
    return classification_mlps(quick, quick_rows=2000)


DATASETS = (_mnist1d, _synthetic)


def _shifted(X, y, sureness):
    """The rows, plus ``HARD_COPIES`` more of the least sure ``HARD_SHARE``."""
    hard = np.flatnonzero(sureness <= np.quantile(sureness, HARD_SHARE))
    rows = np.concatenate([np.arange(len(y)), *([hard] * HARD_COPIES)])
    return X[rows], y[rows]


def _halves(data, middle_stage):
    """Test halves A and B, unshifted and shifted (each on its own)."""
    a, b = train_test_split(
        np.arange(len(data.y_test)),
        test_size=0.5,
        stratify=data.y_test,
        random_state=SEED,
    )
    halves = {}
    for name, rows in (("A", a), ("B", b)):
        X, y = data.X_test[rows], data.y_test[rows]
        sureness = middle_stage.predict_proba(X).max(axis=1)
        halves[name] = {"unshifted": (X, y), "shifted": _shifted(X, y, sureness)}
    return halves


def _measure(estimator, X, y) -> dict:
    routed = estimator.route(X)
    predicted = estimator.classes_[routed.proba.argmax(axis=1)]
    return {
        "cost": float(routed.cost.mean()),
        "accuracy": float(np.mean(predicted == y)),
        "exit_rates": (np.bincount(routed.exit_stage, minlength=3) / len(y)).tolist(),
        "predictions": predicted,
    }


def _point(cascade, halves, kind) -> dict:
    """The original and the recalibrated cascade on ``kind`` rows, both ways,
    recalibrated for the default target (``recalibrate(X)``)."""
    directions = []
    for fit_half, test_half in (("A", "B"), ("B", "A")):
        X_fit, _ = halves[fit_half][kind]
        X_test, y_test = halves[test_half][kind]
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            recalibrated = cascade.recalibrate(X_fit)
        seconds = time.perf_counter() - start
        original = _measure(cascade, X_test, y_test)
        after = _measure(recalibrated, X_test, y_test)
        record = recalibrated.recalibration_
        directions.append(
            {
                "recalibrated_on": fit_half,
                "measured_on": test_half,
                "target": record["budget"],
                "n_rows_recalibrated_on": len(X_fit),
                "n_rows_measured_on": len(y_test),
                "original": {k: v for k, v in original.items() if k != "predictions"},
                "recalibrated": {k: v for k, v in after.items() if k != "predictions"},
                "agreement": float(
                    np.mean(original["predictions"] == after["predictions"])
                ),
                "in_sample_cost": record["cost"],
                "in_sample_cost_before": record["cost_before"],
                "status": record["status"],
                "shift": record["shift"],
                "thresholds_before": record["thresholds_before"],
                "thresholds": record["thresholds"],
                "warnings": [str(w.message) for w in caught],
                "seconds": seconds,
            }
        )

    def mean(*keys):
        values = []
        for d in directions:
            value = d
            for key in keys:
                value = value[key]
            values.append(value)
        return float(np.mean(values))

    target = directions[0]["target"]
    return {
        "directions": directions,
        "target": target,
        "original_cost": mean("original", "cost"),
        "original_accuracy": mean("original", "accuracy"),
        "recalibrated_cost": mean("recalibrated", "cost"),
        "recalibrated_accuracy": mean("recalibrated", "accuracy"),
        "in_sample_cost": mean("in_sample_cost"),
        "worst_in_sample_gap": float(
            max(abs(d["in_sample_cost"] / target - 1) for d in directions)
        ),
        "agreement": mean("agreement"),
        "shift": mean("shift"),
    }


def run_dataset(load, quick: bool, cache: str) -> dict:
    data = load(quick)
    total = float(np.sum(COSTS))
    start = time.perf_counter()
    cascade = AdaptiveCascadeClassifier(
        data.stages,
        costs=list(COSTS),
        budget=BUDGETS[0] * total,
        cv=3,
        memory=cache,
        n_jobs=2,
        random_state=SEED,
    ).fit(data.X_train, data.y_train)
    fit_seconds = time.perf_counter() - start
    halves = _halves(data, cascade.estimators_[1])
    points = []
    for fraction in BUDGETS:
        budget = fraction * total
        fitted = (
            cascade if fraction == BUDGETS[0] else cascade.with_policy(budget=budget)
        )
        points.append(
            {
                "budget_fraction": fraction,
                "budget": budget,
                "budget_status": fitted.budget_status_,
                "expected_cost": float(fitted.expected_cost_),
                "policy_rows_cost": float(fitted.policy_rows_cost_),
                "shifted": _point(fitted, halves, "shifted"),
                "unshifted": _point(fitted, halves, "unshifted"),
            }
        )
    stage_accuracy = {
        name: float(np.mean(stage.predict(data.X_test) == data.y_test))
        for name, stage in zip(cascade._stage_names(), cascade.estimators_)
    }
    n_half = {name: len(h["shifted"][1]) for name, h in halves.items()}
    return {
        "dataset": data.describe(),
        "fit_seconds": fit_seconds,
        "stage_accuracy": stage_accuracy,
        "shifted_half_rows": n_half,
        "points": points,
    }


def summary(results: list[dict]) -> dict:
    """The worst gaps to the budget, before and after recalibration."""
    points = [p for r in results for p in r["points"]]
    return {
        "worst_in_sample_gap": max(p["shifted"]["worst_in_sample_gap"] for p in points),
        "worst_held_out_shifted_gap": max(
            abs(d["recalibrated"]["cost"] / d["target"] - 1)
            for p in points
            for d in p["shifted"]["directions"]
        ),
        "original_shifted_overspend": [
            p["shifted"]["original_cost"] / p["shifted"]["target"] - 1 for p in points
        ],
        "lowest_unshifted_agreement": min(p["unshifted"]["agreement"] for p in points),
    }


def run(quick: bool = False) -> dict:
    return run_quietly(
        "recalibrate",
        lambda cache: [run_dataset(load, quick, cache) for load in DATASETS],
        summary,
        "python -m benchmarks.run_recalibrate",
    )


def _rows(point, kind):
    p = point[kind]
    target = p["target"]
    return [
        f"{100 * point['budget_fraction']:.0f} % ({point['budget']:.2f})",
        f"{target:.2f}",
        kind,
        f"{p['original_cost']:.2f} ({100 * (p['original_cost'] / target - 1):+.1f} %)",
        f"{100 * p['original_accuracy']:.2f}",
        f"{p['in_sample_cost']:.2f}",
        f"{p['recalibrated_cost']:.2f} "
        f"({100 * (p['recalibrated_cost'] / target - 1):+.1f} %)",
        f"{100 * p['recalibrated_accuracy']:.2f}",
        f"{100 * p['agreement']:.1f} %",
        f"{p['shift']:+.2f}",
    ]


def markdown(results: dict) -> str:
    blocks = []
    for r in results["results"]:
        d = r["dataset"]
        stages = ", ".join(
            f"{k} {100 * v:.2f} %" for k, v in r["stage_accuracy"].items()
        )
        rows = [
            _rows(p, kind) for p in r["points"] for kind in ("shifted", "unshifted")
        ]
        fitted = "; ".join(
            f"{100 * p['budget_fraction']:.0f} %: {p['budget_status']}, "
            f"expected_cost_ {p['expected_cost']:.2f}"
            for p in r["points"]
        )
        blocks.append(
            f"## {d['name']}\n\n{d['n_train']} training rows, {d['n_test']} test "
            f"rows (shifted halves: {r['shifted_half_rows']['A']} and "
            f"{r['shifted_half_rows']['B']} rows). Stage test accuracy: {stages}. "
            f"Fitted in {r['fit_seconds']:.0f} s; at fit: {fitted}.\n\n"
            + table(
                rows,
                [
                    "budget",
                    "target",
                    "rows",
                    "original cost",
                    "original acc %",
                    "recal. cost, rows recal. on",
                    "recal. cost, other half",
                    "recal. acc %",
                    "agreement",
                    "shift",
                ],
            )
            + "\n"
        )
    s = results["summary"]
    overspend = ", ".join(f"{100 * v:+.1f} %" for v in s["original_shifted_overspend"])
    body = "\n".join(blocks) + (
        "\n## Summary\n\n"
        f"- The original cascades on the shifted rows: {overspend} against "
        "their targets (25 % and 50 % of each dataset in turn).\n"
        "- Recalibrated, on the rows recalibrated on (what is guaranteed): at "
        f"most {100 * s['worst_in_sample_gap']:.2f} % from the target, never over "
        "it.\n"
        "- On the other shifted half, rows the recalibration never saw: at most "
        f"{100 * s['worst_held_out_shifted_gap']:.1f} % from the target (the "
        "sampling noise of a half).\n"
        "- On unshifted rows, the recalibrated copy leaves at least "
        f"{100 * s['lowest_unshifted_agreement']:.1f} % of the predictions "
        "unchanged.\n\n"
        "Columns: *original* is the fitted cascade; *recal. cost, rows recal. on* "
        "is the recalibrated copy's cost on the half it was recalibrated on; "
        "*other half* and *recal. acc* are on the half it never saw; *shift* is "
        "the common log-odds shift of the exits' shares (positive: cheaper). "
        "Costs are per row; percentages against the target.\n"
    )
    return described_report(
        "Budget recalibration without labels: results", results, __doc__, body
    )


def main(argv=None) -> None:
    run_and_write(
        __doc__, run, markdown, "recalibrate.json", "RECALIBRATE_RESULTS.md", argv
    )


if __name__ == "__main__":
    main()
