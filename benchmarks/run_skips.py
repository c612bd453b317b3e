"""Skipping stages: a 4-stage cascade with and without skips, at the same budgets.

Usage::

    python -m benchmarks.run_skips            # full run (about 15 minutes)
    python -m benchmarks.run_skips --quick    # smoke run, writes nothing

On each benchmark dataset (scikit-learn's digits, split in half; mnist1d
generated locally, 3,600 rows for training and 10,000 for test;
make_classification, 5 classes of 3 clusters, 3,000 rows for training and
10,000 for test), an
``AdaptiveCascadeClassifier`` of four stages: the dataset's cheap and two
dear stages of the cascade benchmark (smaller networks for
make_classification) with a middle stage of moderate accuracy inserted after
the first, ``DecisionTreeClassifier(max_depth=8)``. The costs are declared,
not measured, so that plain and skipping policies are compared on exactly the
same costs: 1 for the first stage, then the middle stage's, 40 and 100; the
middle stage costs 3 (cheap) or 30 (expensive, about as much as the stage
after it). The stages are fitted once per dataset (``cv=3``); for each middle
cost and each budget (10, 25 and 50 % of the full cost) the **default**
policy is learned for it with ``with_policy`` on the same held-out policy
rows, with ``skips=False`` and ``skips=True``. Every accuracy and cost is on
the test rows, which neither the stages nor the policies saw; the cost is the
mean of ``predict_cost`` (what the rows ran). "skipping rows" is the share of
test rows that jumped over at least one stage. Two more variants learn a
router (``router="auto"``, declared cost 1, as the first stage: a logistic
regression on the raw features) on the same policy rows, without and with
skips; "late starts" is the share of test rows the router started after the
first stage, "kept" whether the router beat the policy without it on its
cross-fitted figures. The target: the skipping
cascade at or above the plain one everywhere (a test accuracy no lower, by
more than 0.2 points, at a test cost at most 5 % over the budget, or no
more than the plain cascade's where that one overspends on the test rows
too: more accurate and cheaper than it is above its frontier), and
strictly above where the middle stage is expensive (more than 0.2 points more
accurate, or level and at least 5 % cheaper).

Writes ``benchmarks/results/skips.json`` and ``benchmarks/SKIP_RESULTS.md``.
"""

from __future__ import annotations

import copy
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    ExtraTreesClassifier,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier

from skadaptive import AdaptiveCascadeClassifier

from ._tables import described_report, run_and_write, run_quietly, table
from .datasets import SEED, _linear, _split, classification_mlps, mnist1d_small

BUDGETS = (0.10, 0.25, 0.50)
#: Test rows generated for mnist1d and make_classification.
TEST_ROWS = 10_000
MIDDLE_COSTS = {"cheap middle": 3.0, "expensive middle": 30.0}
#: Accuracy differences within this many points count as ties.
TIE_POINTS = 0.2
#: Declared cost of the router (a logistic regression on the raw features,
#: like the first stage).
ROUTER_COST = 1.0
#: (name, skips, router) of each policy compared.
VARIANTS = (
    ("plain", False, None),
    ("skips", True, None),
    ("router", False, "auto"),
    ("skips_router", True, "auto"),
)


def _middle():
    return DecisionTreeClassifier(max_depth=8, random_state=SEED)


def _digits(quick):
    X, y = load_digits(return_X_y=True)
    trees = (10, 30) if quick else (50, 200)
    stages = [
        ("logistic", _linear()),
        ("tree", _middle()),
        ("forest", RandomForestClassifier(trees[0], random_state=SEED)),
        ("extra_trees", ExtraTreesClassifier(trees[1], random_state=SEED)),
    ]
    return _split("digits", X, y, 0.5, stages)


def _mnist1d(quick):
    return mnist1d_small(quick, middle=_middle(), test_rows=_test_rows(quick))


def _synthetic(quick):
    return classification_mlps(quick, middle=_middle(), test_rows=_test_rows(quick))


def _test_rows(quick):
    # Enough test rows that a test cost is within a few percent of its
    # expectation: at 10 % of the full cost, a row's cost here varies by
    # about 3 budgets (1 to 171), so 2,400 rows leave the mean within about
    # 6 % (one standard error), more than the 5 % the verdict allows.
    return None if quick else TEST_ROWS


DATASETS = (_digits, _mnist1d, _synthetic)


def _point(estimator, X_test, y_test) -> dict:
    routed = estimator.route(X_test)
    ran = routed.ran
    skipped = (~ran & (np.arange(ran.shape[1]) < routed.exit_stage[:, None])).any(1)
    accuracy = float(np.mean(estimator.classes_[routed.proba.argmax(1)] == y_test))
    return {
        "accuracy": accuracy,
        "cost": float(routed.cost.mean()),
        "expected_accuracy": float(estimator.expected_accuracy_),
        "expected_cost": float(estimator.expected_cost_),
        "skips": bool(estimator.policy_.skips),
        "skipping_rows": float(skipped.mean()),
        "run_rates": ran.mean(0).tolist(),
        "scores": str(
            estimator.budget_search_["scores"][estimator.budget_search_["chosen"]]
        ),
        "router_kept": estimator.router_ is not None,
        "late_start_rows": float((~ran[:, 0]).mean()),
    }


def run_dataset(load, quick: bool, cache: str) -> dict:
    data = load(quick)
    settings = {}
    fit_seconds = {}
    for setting, middle_cost in MIDDLE_COSTS.items():
        costs = [1.0, middle_cost, 40.0, 100.0]
        total = float(np.sum(costs))
        start = time.perf_counter()
        # memory=: the second setting gets the same fitted stages and policy
        # rows from the cache; only the costs differ. Fitted with a router so
        # that the policy rows' features are kept for the routed variants.
        cascade = AdaptiveCascadeClassifier(
            data.stages,
            costs=[ROUTER_COST, *costs],
            router="auto",
            budget=BUDGETS[0] * total,
            cv=3,
            memory=cache,
            n_jobs=2,
            random_state=SEED,
        ).fit(data.X_train, data.y_train)
        fit_seconds[setting] = time.perf_counter() - start
        points = []
        for fraction in BUDGETS:
            row = {"budget_fraction": fraction, "budget": fraction * total}
            for name, skips, router in VARIANTS:
                estimator = copy.deepcopy(cascade).set_params(
                    skips=skips, router=router
                )
                start = time.perf_counter()
                fitted = estimator.with_policy(budget=fraction * total)
                point = _point(fitted, data.X_test, data.y_test)
                point["policy_seconds"] = time.perf_counter() - start
                row[name] = point
            points.append(row)
        settings[setting] = {"costs": costs, "points": points}
    stage_accuracy = {
        name: float(np.mean(stage.predict(data.X_test) == data.y_test))
        for name, stage in zip(cascade._stage_names(), cascade.estimators_)
    }
    return {
        "dataset": data.describe(),
        "fit_seconds": fit_seconds,
        "stage_accuracy": stage_accuracy,
        "settings": settings,
    }


def _verdict(row, variant="skips") -> tuple[bool, bool]:
    """(at or above, strictly above) of a variant against the plain cascade."""
    plain, skip = row["plain"], row[variant]
    # Within the budget's 5 % slack, or (where the plain cascade overspends
    # on the test rows too) no dearer than the plain cascade: a point more
    # accurate and cheaper than the plain one is above the plain frontier.
    within = skip["cost"] <= max(row["budget"] * 1.05, plain["cost"])
    gain = 100 * (skip["accuracy"] - plain["accuracy"])
    at_or_above = within and gain >= -TIE_POINTS
    strictly = within and (
        gain > TIE_POINTS
        or (gain >= -TIE_POINTS and skip["cost"] < 0.95 * plain["cost"])
    )
    return at_or_above, strictly


def summary(results: list[dict]) -> dict:
    """The verdicts over every point (from the per-point figures alone)."""
    verdicts = {
        setting: [
            _verdict(row) for r in results for row in r["settings"][setting]["points"]
        ]
        for setting in MIDDLE_COSTS
    }
    routed = [
        _verdict(row, variant)
        for r in results
        for setting in MIDDLE_COSTS
        for row in r["settings"][setting]["points"]
        for variant in ("router", "skips_router")
    ]
    return {
        "router_at_or_above": sum(v[0] for v in routed),
        "router_strictly_above": sum(v[1] for v in routed),
        "n_router_points": len(routed),
        "at_or_above_everywhere": all(v[0] for vs in verdicts.values() for v in vs),
        "strictly_above_where_middle_expensive": all(
            v[1] for v in verdicts["expensive middle"]
        ),
        "n_strictly_above_expensive": sum(v[1] for v in verdicts["expensive middle"]),
        "n_points_expensive": len(verdicts["expensive middle"]),
    }


def run(quick: bool = False) -> dict:
    return run_quietly(
        "skips",
        lambda cache: [run_dataset(load, quick, cache) for load in DATASETS],
        summary,
        "python -m benchmarks.run_skips",
    )


def markdown(results: dict) -> str:
    blocks = []
    for r in results["results"]:
        d = r["dataset"]
        stages = ", ".join(
            f"{k} {100 * v:.2f} %" for k, v in r["stage_accuracy"].items()
        )
        blocks.append(
            f"## {d['name']}\n\n{d['n_train']} training rows, {d['n_test']} test rows. "
            f"Stage test accuracy: {stages}. Fitted in "
            f"{r['fit_seconds']['cheap middle']:.0f} s (stages and policy).\n"
        )
        for setting, block in r["settings"].items():
            rows = []
            for row in block["points"]:
                p, s = row["plain"], row["skips"]
                at, strictly = _verdict(row)
                rows.append(
                    [
                        f"{100 * row['budget_fraction']:.0f} % ({row['budget']:.1f})",
                        f"{100 * p['accuracy']:.2f}",
                        f"{p['cost']:.2f}",
                        f"{100 * s['accuracy']:.2f}",
                        f"{s['cost']:.2f}",
                        f"{100 * (s['accuracy'] - p['accuracy']):+.2f}",
                        f"{100 * s['skipping_rows']:.1f} %",
                        s["scores"],
                        "above" if strictly else ("level" if at else "BELOW"),
                    ]
                )
            blocks.append(
                f"### {setting} (costs {block['costs']})\n\n"
                + table(
                    rows,
                    [
                        "budget",
                        "plain acc %",
                        "plain cost",
                        "skips acc %",
                        "skips cost",
                        "gain (pts)",
                        "skipping rows",
                        "skips: kept scores",
                        "verdict",
                    ],
                )
                + "\n"
            )
            rows = []
            for row in block["points"]:
                cells = [f"{100 * row['budget_fraction']:.0f} % ({row['budget']:.1f})"]
                for variant in ("router", "skips_router"):
                    point = row[variant]
                    at, strictly = _verdict(row, variant)
                    cells += [
                        f"{100 * point['accuracy']:.2f}",
                        f"{point['cost']:.2f}",
                        f"{100 * (point['accuracy'] - row['plain']['accuracy']):+.2f}",
                        "yes" if point["router_kept"] else "no",
                        f"{100 * point['late_start_rows']:.1f} %",
                        "above" if strictly else ("level" if at else "BELOW"),
                    ]
                rows.append(cells)
            blocks.append(
                f"Routed before any stage (router cost {ROUTER_COST:g}; gains "
                "against the plain cascade above):\n\n"
                + table(
                    rows,
                    [
                        "budget",
                        "router acc %",
                        "router cost",
                        "gain (pts)",
                        "kept",
                        "late starts",
                        "verdict",
                        "skips+router acc %",
                        "skips+router cost",
                        "gain (pts)",
                        "kept",
                        "late starts",
                        "verdict",
                    ],
                )
                + "\n"
            )
    s = results["summary"]
    body = "\n".join(blocks) + (
        "\n## Summary\n\n"
        f"Skipping cascade at or above the plain one at every point: "
        f"**{'met' if s['at_or_above_everywhere'] else 'NOT met'}**. Strictly above "
        f"where the middle stage is expensive: "
        f"**{'met' if s['strictly_above_where_middle_expensive'] else 'NOT met'}** "
        f"({s['n_strictly_above_expensive']} of {s['n_points_expensive']} points; "
        f"'above' is a test accuracy more than {TIE_POINTS} points higher, or level "
        "and at least 5 % cheaper). With a router (alone or with skips), at or "
        f"above the plain cascade at {s['router_at_or_above']} of "
        f"{s['n_router_points']} points, strictly above at "
        f"{s['router_strictly_above']}.\n"
    )
    return described_report("Skipping stages: results", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "skips.json", "SKIP_RESULTS.md", argv)


if __name__ == "__main__":
    main()
