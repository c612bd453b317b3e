"""Wall-clock speed-up of early exits against the expected one, alone.

Usage::

    python -m benchmarks.run_early_exit_wall            # a few minutes
    python -m benchmarks.run_early_exit_wall --quick    # smoke run, writes nothing

The wall-clock part of ``python -m benchmarks.run_early_exit`` without its
budget sweeps (which take most of an hour since budgets got their threshold
search), at the operating points of its last wall-clock table: the default
policy with ``budget=`` a fraction of all trees. Backbones and data are those of
``benchmarks/early_exit_data.py`` (200 trees, exits after 10/25/50/100/200);
the policy is learned on the validation rows. ``predict_proba`` of the early
exit and of the backbone alone on the first 10,000 test rows, one thread,
alternated 7 times after a warm-up (the fastest of each kept, so that load on
the machine hits both alike). Expected speed-up = total trees / average trees
per row of the exits taken on those rows.

Writes ``benchmarks/results/early_exit_wall.json`` and
``benchmarks/EARLY_EXIT_WALL_RESULTS.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import early_exit_data as data
from ._tables import described_report, environment, run_and_write, table

HERE = Path(__file__).resolve().parent
#: (dataset, backbone, budget as a fraction of all trees): the points of the
#: last full run's wall-clock table.
SETTINGS = (
    ("mnist1d", "gradient_boosting", 0.60),
    ("mnist1d", "random_forest", 0.25),
    ("make_classification", "gradient_boosting", 0.40),
    ("make_classification", "random_forest", 0.30),
)


def _alternated(first, second, repeats: int) -> tuple[float, float]:
    """Fastest time of each, run alternately after one warm-up call each."""
    first(), second()
    times = [[], []]
    for _ in range(repeats):
        for k, call in enumerate((first, second)):
            start = time.perf_counter()
            call()
            times[k].append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def measure(dataset: str, backbone: str, fraction: float, quick: bool) -> dict:
    split, model, ee = data.frozen_early_exit(dataset, backbone, quick=quick)
    ee = ee.with_policy(budget=fraction * ee.cumulative_costs_[-1])
    X = split.X_test[:10_000]
    with threadpool_limits(limits=1):
        full, early = _alternated(
            lambda: model.predict_proba(X),
            lambda: ee.predict_proba(X),
            3 if quick else 7,
        )
    routed = ee.route(X)
    expected = float(ee.cumulative_costs_[-1] / ee._average_cost(routed.exit_stage))
    n_exits = len(ee.cumulative_costs_)
    return {
        "dataset": dataset,
        "backbone": backbone,
        "budget_fraction": fraction,
        "n_rows": len(X),
        "full_seconds": full,
        "early_exit_seconds": early,
        "expected_speed_up": expected,
        "measured_speed_up": full / early,
        "ratio": full / early / expected,
        "exit_rates": (np.bincount(routed.exit_stage, minlength=n_exits) / len(X))
        .round(4)
        .tolist(),
    }


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    settings = SETTINGS[:1] if quick else SETTINGS
    rows = [measure(*setting, quick=quick) for setting in settings]
    return {
        "command": "python -m benchmarks.run_early_exit_wall",
        "environment": environment(threads="BLAS/OpenMP limited to 1 thread"),
        "rows": rows,
        "total_seconds": time.perf_counter() - start,
    }


def markdown(results: dict) -> str:
    body = table(
        [
            {
                "dataset": r["dataset"],
                "backbone": r["backbone"],
                "budget": f"{r['budget_fraction']:.0%} of trees",
                "rows": r["n_rows"],
                "full ms": f"{1e3 * r['full_seconds']:.1f}",
                "early exit ms": f"{1e3 * r['early_exit_seconds']:.1f}",
                "expected": f"{r['expected_speed_up']:.2f}x",
                "measured": f"{r['measured_speed_up']:.2f}x",
                "measured / expected": f"{r['ratio']:.2f}",
                "exit % per stage": " / ".join(
                    f"{100 * v:.0f}" for v in r["exit_rates"]
                ),
            }
            for r in results["rows"]
        ]
    )
    return described_report(
        "Early exits: wall clock against the expected speed-up", results, __doc__, body
    )


def main(argv=None) -> None:
    run_and_write(
        __doc__,
        run,
        markdown,
        "early_exit_wall.json",
        "EARLY_EXIT_WALL_RESULTS.md",
        argv,
    )


if __name__ == "__main__":
    main()
