"""Early exits over LightGBM and XGBoost: accuracy and wall clock at budgets.

Usage::

    python -m benchmarks.run_boosters            # full run (about 6 minutes)
    python -m benchmarks.run_boosters --quick    # smoke run, writes nothing

The data of the early-exit benchmark (``benchmarks/early_exit_data.py``:
mnist1d and make_classification, train / validation / test rows). On each,
a ``lightgbm.LGBMClassifier`` and an ``xgboost.XGBClassifier`` of 400 rounds
(learning rate 0.1) are fitted on the train rows (2 threads) and frozen;
``EarlyExitClassifier`` with exits after 50, 100, 200 and 400 rounds (costs in
rounds) learns its policy on the validation rows. At budgets of 25 % and 50 %
of the rounds, the **default** policy (``policy="linear"``) and the best of
the heuristics ``max_proba``, ``entropy`` and ``patience`` (the most accurate
on the validation rows, not on test) are compared by test accuracy.
Wall clock: ``predict_proba`` of the default early exit and of the model's own
``predict_proba`` (all rounds) on the first 10,000 test rows, one thread,
alternated 7 times after a warm-up, the fastest of each kept; the expected
speed-up is all rounds over the average rounds per row of the exits taken
on those rows (measured / expected: the target is 0.9 or more).

Writes ``benchmarks/results/boosters.json`` and
``benchmarks/BOOSTER_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from . import early_exit_data as data
from ._tables import described_report, environment, run_and_write, table
from .run_early_exit_wall import _alternated

BUDGETS = (0.25, 0.50)
HEURISTICS = ("max_proba", "entropy", "patience")
LIBRARIES = ("lightgbm", "xgboost")


def _model(library: str, rounds: int, threads: int):
    if library == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=rounds,
            learning_rate=0.1,
            num_leaves=31,
            n_jobs=threads,
            random_state=data.SEED,
            verbose=-1,
        )
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=rounds,
        learning_rate=0.1,
        max_depth=6,
        tree_method="hist",
        n_jobs=threads,
        random_state=data.SEED,
    )


def _one_thread(model) -> None:
    model.set_params(n_jobs=1)


def _measure(library: str, split, quick: bool) -> dict:
    from skadaptive import EarlyExitClassifier
    from skadaptive.stages import exit_probas

    rounds = 40 if quick else 400
    exits = [rounds // 8, rounds // 4, rounds // 2, rounds]
    start = time.perf_counter()
    model = _model(library, rounds, threads=2).fit(split.X_train, split.y_train)
    fit_seconds = time.perf_counter() - start
    _one_thread(model)
    with threadpool_limits(limits=1):
        ee = EarlyExitClassifier(FrozenEstimator(model), exits=exits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ee.fit(split.X_val, split.y_val)
        full_accuracy = float(np.mean(model.predict(split.X_test) == split.y_test))
        points = []
        X = split.X_test[:10_000]
        for fraction in BUDGETS:
            budget = fraction * ee.cumulative_costs_[-1]
            default = ee.with_policy(budget=budget)
            heuristics = {
                h: ee.with_policy(budget=budget, policy=h) for h in HEURISTICS
            }
            best = max(HEURISTICS, key=lambda h: heuristics[h].policy_rows_accuracy_)
            full_s, early_s = _alternated(
                [
                    lambda: model.predict_proba(X),
                    lambda default=default: default.predict_proba(X),
                ],
                3 if quick else 7,
            )
            routed = default.route(X)
            expected = float(
                default.cumulative_costs_[-1] / default._average_cost(routed.exit_stage)
            )
            points.append(
                {
                    "budget_fraction": fraction,
                    "learned_accuracy": float(
                        default.score(split.X_test, split.y_test)
                    ),
                    "learned_test_cost": float(
                        default.predict_cost(split.X_test).mean()
                        / default.cumulative_costs_[-1]
                    ),
                    "learned_scores": str(
                        default.budget_search_["scores"][
                            default.budget_search_["chosen"]
                        ]
                    ),
                    "heuristic": best,
                    "heuristic_accuracy": float(
                        heuristics[best].score(split.X_test, split.y_test)
                    ),
                    "full_seconds": full_s,
                    "early_exit_seconds": early_s,
                    "measured_speed_up": full_s / early_s,
                    "expected_speed_up": expected,
                    "ratio": full_s / early_s / expected,
                }
            )
    test = ee.evaluate_frontier(split.X_test, split.y_test)
    last = exit_probas(ee.source_, split.X_test[:1000])[-1]
    return {
        "last_exit_max_difference": float(
            np.abs(last - model.predict_proba(split.X_test[:1000])).max()
        ),
        "exit_accuracies": [float(a) for a in test["exit_accuracies"]],
        "rounds": rounds,
        "exits": exits,
        "fit_seconds": fit_seconds,
        "full_accuracy": full_accuracy,
        "points": points,
    }


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    names = ("make_classification",) if quick else data.DATASETS
    results = {}
    for name in names:
        split = data.load(name, quick=quick)
        results[name] = {
            library: _measure(library, split, quick) for library in LIBRARIES
        }
    points = [
        p for dataset in results.values() for r in dataset.values() for p in r["points"]
    ]
    return {
        "command": "python -m benchmarks.run_boosters" + (" --quick" if quick else ""),
        "total_seconds": time.perf_counter() - start,
        "environment": environment(threads="one thread for prediction"),
        "datasets": results,
        "summary": {
            "mean_gain_over_best_heuristic_points": float(
                np.mean(
                    [
                        100 * (p["learned_accuracy"] - p["heuristic_accuracy"])
                        for p in points
                    ]
                )
            ),
            "min_ratio": float(min(p["ratio"] for p in points)),
            "mean_ratio": float(np.mean([p["ratio"] for p in points])),
        },
    }


def markdown(results: dict) -> str:
    rows = []
    for name, dataset in results["datasets"].items():
        for library, r in dataset.items():
            for p in r["points"]:
                rows.append(
                    {
                        "dataset": name,
                        "library": library,
                        "budget": f"{p['budget_fraction']:.0%} of rounds",
                        "full model acc.": f"{100 * r['full_accuracy']:.2f} %",
                        "learned acc.": f"{100 * p['learned_accuracy']:.2f} %",
                        "best heuristic acc.": (
                            f"{p['heuristic']} {100 * p['heuristic_accuracy']:.2f} %"
                        ),
                        "test cost": f"{100 * p['learned_test_cost']:.1f} %",
                        "expected": f"{p['expected_speed_up']:.2f}x",
                        "measured": f"{p['measured_speed_up']:.2f}x",
                        "measured / expected": f"{p['ratio']:.2f}",
                    }
                )
    s = results["summary"]
    body = (
        table(rows)
        + "\n\nExit accuracies on the test rows (each exit answering every row): "
        + "; ".join(
            f"{name} {library} "
            + " / ".join(f"{100 * a:.2f}" for a in r["exit_accuracies"])
            for name, dataset in results["datasets"].items()
            for library, r in dataset.items()
        )
        + ". Largest difference between the last exit's probabilities and the "
        "model's own predict_proba on 1,000 test rows: "
        + ", ".join(
            f"{r['last_exit_max_difference']:.1e}"
            for dataset in results["datasets"].values()
            for r in dataset.values()
        )
        + ".\n\n"
        "Learned against the best heuristic: "
        f"{s['mean_gain_over_best_heuristic_points']:+.2f} points on average. "
        f"Measured / expected speed-up: {s['mean_ratio']:.2f} on average, "
        f"{s['min_ratio']:.2f} at worst (target 0.9).\n"
    )
    return described_report(
        "Early exits over LightGBM and XGBoost", results, __doc__, body
    )


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "boosters.json", "BOOSTER_RESULTS.md", argv)


if __name__ == "__main__":
    main()
