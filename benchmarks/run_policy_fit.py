"""Policy fit time: a cost weight against a budget, by the number of policy rows.

Usage::

    python -m benchmarks.run_policy_fit            # full run (about 3 minutes)
    python -m benchmarks.run_policy_fit --quick    # smoke run, writes nothing

A policy is learned from the stages' answers on the policy rows alone, so
``with_policy`` on a fitted cascade times exactly what a grid search over
``cost_weight`` or ``budget`` pays per candidate once ``memory=`` caches the
stages. Stages fitted on 20,000 ``make_classification`` rows (20 features, 5
classes) and frozen: ``LogisticRegression`` -> ``DecisionTreeClassifier
(max_depth=8)`` -> ``HistGradientBoostingClassifier(max_iter=30)`` (three
stages, declared costs 1, 3 and 30), and a four-stage cascade with
``RandomForestClassifier(20 trees, max_depth=10)`` before the boosted stage
(costs 1, 3, 8 and 30). For each number of policy rows, the default policy
(``policy="linear"``) is learned with ``with_policy`` for ``cost_weight=0.01``
and for a budget of 25 % of the full cost, and ``frontier_`` (31 cost weights)
is read on a copy that has not traced it (the copy made untimed). Each time
is the fastest of two runs in this process, after one untimed fit, with BLAS
and OpenMP on one thread (the estimator sets BLAS so for policy fits).

Writes ``benchmarks/results/policy_fit.json`` and
``benchmarks/POLICY_FIT_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from skadaptive import AdaptiveCascadeClassifier

from ._tables import cell, described_report, environment, run_and_write, table

N_FIT = 20_000
POLICY_ROWS = (1_000, 4_000, 16_000, 64_000)
QUICK_POLICY_ROWS = (300, 600)
BUDGET_FRACTION = 0.25
COST_WEIGHT = 0.01
REPEATS = 2
COMMAND = "python -m benchmarks.run_policy_fit"


def _stages(X, y, n_stages: int) -> tuple[list, list[float]]:
    models = [
        ("logistic", LogisticRegression(max_iter=1000), 1.0),
        ("tree", DecisionTreeClassifier(max_depth=8, random_state=0), 3.0),
        (
            "forest",
            RandomForestClassifier(20, max_depth=10, random_state=0, n_jobs=1),
            8.0,
        ),
        ("boosting", HistGradientBoostingClassifier(max_iter=30, random_state=0), 30.0),
    ]
    if n_stages == 3:
        models = [models[0], models[1], models[3]]
    stages = [(name, FrozenEstimator(model.fit(X, y))) for name, model, _ in models]
    return stages, [cost for _, _, cost in models]


def _fastest(call, prepare=None) -> tuple[float, object]:
    """The fastest of REPEATS runs of ``call()`` (of ``call(prepare())``,
    ``prepare`` untimed), and its result."""
    best, result = np.inf, None
    for _ in range(REPEATS):
        ready = () if prepare is None else (prepare(),)
        start = time.perf_counter()
        result = call(*ready)
        best = min(best, time.perf_counter() - start)
    return best, result


def _measure(cascade, budget: float) -> dict:
    cascade.with_policy(cost_weight=COST_WEIGHT)  # warm-up, not timed
    cost_weight_s, _ = _fastest(lambda: cascade.with_policy(cost_weight=COST_WEIGHT))
    budget_s, fitted = _fastest(lambda: cascade.with_policy(budget=budget))
    # Read on a copy whose frontier_ is not traced yet; making the copy (a
    # policy fit, the stages shared) is not timed.
    frontier_s, _ = _fastest(
        lambda fresh: fresh.frontier_,
        prepare=lambda: cascade.with_policy(cost_weight=COST_WEIGHT),
    )
    search = fitted.budget_search_
    return {
        "cost_weight_seconds": cost_weight_s,
        "budget_seconds": budget_s,
        "frontier_seconds": frontier_s,
        "budget_over_cost_weight": budget_s / cost_weight_s,
        "budget_status": fitted.budget_status_,
        "kept_scores": str(search["scores"][search["chosen"]]),
    }


def run(quick: bool = False) -> dict:
    """Measure (nothing is written)."""
    begin = time.perf_counter()
    sizes = QUICK_POLICY_ROWS if quick else POLICY_ROWS
    n_fit = 2_000 if quick else N_FIT
    X, y = make_classification(
        n_samples=n_fit + max(sizes),
        n_features=20,
        n_informative=10,
        n_classes=5,
        n_clusters_per_class=2,
        random_state=0,
    )
    rows = []
    # One thread for BLAS and OpenMP alike: the stages are fitted once, and
    # the policy fits use BLAS on one thread whatever is set here.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", category=UserWarning)
        for n_stages in (3, 4):
            stages, costs = _stages(X[:n_fit], y[:n_fit], n_stages)
            for n_rows in sizes:
                if n_stages == 4 and n_rows > sizes[-2]:
                    continue  # the four-stage cascade up to the second size
                policy = slice(n_fit, n_fit + n_rows)
                X_policy, y_policy = X[policy], y[policy]
                cascade = AdaptiveCascadeClassifier(
                    stages, costs=costs, cost_weight=COST_WEIGHT, random_state=0
                ).fit(X_policy, y_policy)
                budget = BUDGET_FRACTION * sum(costs)
                measured = _measure(cascade, budget)
                rows.append({"n_stages": n_stages, "n_policy_rows": n_rows, **measured})
                print(
                    f"{n_stages} stages, {n_rows} policy rows: cost weight "
                    f"{measured['cost_weight_seconds']:.2f} s, budget "
                    f"{measured['budget_seconds']:.2f} s, frontier "
                    f"{measured['frontier_seconds']:.2f} s",
                    flush=True,
                )
    return {
        "command": COMMAND + (" --quick" if quick else ""),
        "rows": rows,
        "environment": environment(threads="BLAS and OpenMP limited to 1 thread"),
        "total_seconds": time.perf_counter() - begin,
    }


def markdown(results: dict) -> str:
    body = table(
        [
            {
                "stages": row["n_stages"],
                "policy rows": f"{row['n_policy_rows']:,}",
                "cost_weight fit (s)": cell(row["cost_weight_seconds"]),
                "budget fit (s)": cell(row["budget_seconds"]),
                "budget / cost_weight": f"{row['budget_over_cost_weight']:.0f}x",
                "budget_status_": row["budget_status"],
                "frontier_ (s)": cell(row["frontier_seconds"]),
                "kept scores": row["kept_scores"],
            }
            for row in results["rows"]
        ]
    )
    return described_report("Policy fit time", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(
        __doc__, run, markdown, "policy_fit.json", "POLICY_FIT_RESULTS.md", argv
    )


if __name__ == "__main__":
    main()
