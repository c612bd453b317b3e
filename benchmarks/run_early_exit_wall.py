"""Wall-clock speed-up of early exits against the expected one, alone.

Usage::

    python -m benchmarks.run_early_exit_wall            # a few minutes
    python -m benchmarks.run_early_exit_wall --quick    # smoke run, writes nothing

Wall-clock speed-up of the default early exit against the speed-up it
expects, at the operating points of the wall-clock section of
``python -m benchmarks.run_early_exit`` (the default policy with ``budget=``
a fraction of the full cost). Backbones and data are those of
``benchmarks/early_exit_data.py`` (200 trees, exits after 10/25/50/100/200);
the policy is learned on the validation rows. ``predict_proba`` of the early
exit and of the backbone alone on the first 10,000 test rows, one thread,
alternated 7 times after a warm-up (the fastest of each kept, so that load on
the machine hits both alike).

**The target** (measured / expected >= 0.9) is judged on the estimator whose
expected speed-up is a claim about time: ``costs="auto"`` with
``cost_batch_size`` the number of rows timed (each exit's time per call and
per row, and the routing's, measured on the validation rows), at the budget
(a fraction of its full cost) of ``run_early_exit``'s wall-clock point with
measured costs. Its expected speed-up is the estimator's own
``expected_speed_up_`` against the backbone alone (as ``skadaptive frontier``
prints it): the backbone's own ``predict_proba``, timed at fit beside the
exits, over the average cost of the exits taken (routing included).

The default unit, trees (``costs=None``), is a declared unit that counts
work, not time, and its speed-up in trees is no wall-clock claim: a tree
called on few rows pays for bringing its nodes into the cache (about 0.1 ms
per call for a 4,000-node tree, as much as 500 rows of its work), and
routing adds its own work at each exit. The second table shows how far
the two differ: *speed-up in trees* = total trees / average trees per row of the
exits taken on the timed rows, and measured / that split in two from the
trees alone (each tree's ``tree_.predict``, no routing): *tree work* is all
the trees on all the rows over the speed-up in trees (what the trees would
take if their time scaled with trees x rows) against the same trees run on
exactly the rows that reach each exit; *routing* is those trees' time
against the early exit's. Their product is close to measured / in trees.
*Reaching / random rows* is the trees' time on the rows that reach each exit
against the same calls on as many rows drawn at random: above 1, the rows a
policy sends on are dearer per tree than the average row (longer paths
through fully grown trees), which ``costs="auto"``, timing every exit on all
the policy rows, does not see.

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
from .timing import expected_speed_up, with_measured_costs

HERE = Path(__file__).resolve().parent
#: The target of measured / expected speed-up, with measured costs.
WALL_RATIO = 0.9
#: (dataset, backbone, budget as a fraction of all trees, and of the full
#: measured cost): the points of the last full run of ``run_early_exit``'s
#: wall-clock table (each the cheapest within 0.5 point of the full model).
SETTINGS = (
    ("mnist1d", "gradient_boosting", 0.55, 0.60),
    ("mnist1d", "random_forest", 0.30, 0.40),
    ("make_classification", "gradient_boosting", 0.40, 0.55),
    ("make_classification", "random_forest", 0.30, 0.35),
)


def _alternated(calls, repeats: int) -> list[float]:
    """Fastest time of each call, run in turn after one warm-up call each."""
    for call in calls:
        call()
    times = [[] for _ in calls]
    for _ in range(repeats):
        for k, call in enumerate(calls):
            start = time.perf_counter()
            call()
            times[k].append(time.perf_counter() - start)
    return [min(t) for t in times]


def _segments(model, exits) -> list:
    """Each exit's trees (boosting: one per class and iteration)."""
    bounds = [0, *exits]
    trees = model.estimators_
    return [
        [tree for group in trees[a:b] for tree in np.atleast_1d(group)]
        for a, b in zip(bounds[:-1], bounds[1:])
    ]


def _tree_work(model, exits, X, exit_stage) -> tuple:
    """Seconds of the trees alone: on every row, on the rows reaching each
    exit (those exiting there or later), and on as many rows drawn at random
    for each exit (the same calls, other rows: what the rows themselves add),
    fastest of 5 runs each."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    segments = _segments(model, exits)
    reaching = [np.ascontiguousarray(X[exit_stage >= k]) for k in range(len(exits))]
    rng = np.random.default_rng(0)
    drawn = [
        np.ascontiguousarray(X[np.sort(rng.choice(len(X), len(rows), replace=False))])
        for rows in reaching
    ]

    def everywhere():
        for segment in segments:
            for tree in segment:
                tree.tree_.predict(X)

    def on(row_sets):
        def run():
            for segment, rows in zip(segments, row_sets):
                for tree in segment:
                    tree.tree_.predict(rows)

        return run

    return tuple(_alternated([everywhere, on(reaching), on(drawn)], 5))


def _operating_point(estimator, X, fraction: float) -> tuple:
    """The estimator's policy at ``budget=fraction`` of its full cost, its
    routing of ``X``, its expected speed-up there and its exit rates."""
    estimator = estimator.with_policy(budget=fraction * estimator.cumulative_costs_[-1])
    routed = estimator.route(X)
    expected = expected_speed_up(estimator, routed.exit_stage)
    n_exits = len(estimator.cumulative_costs_)
    rates = np.bincount(routed.exit_stage, minlength=n_exits) / len(X)
    return estimator, expected, rates.round(4).tolist()


def measure(
    dataset: str, backbone: str, fraction: float, timed_fraction: float, quick: bool
) -> dict:
    split, model, ee = data.frozen_early_exit(dataset, backbone, quick=quick)
    X = split.X_test[:10_000]
    ee, expected, rates = _operating_point(ee, X, fraction)
    # The same early exit with measured costs, for calls of as many rows as
    # are timed here: each exit's time per call and per row (a tree called
    # on few rows pays for bringing it into the cache) and the routing's; at
    # its own operating point (a fraction of its time buys fewer trees).
    auto = with_measured_costs(ee, split.X_val, split.y_val, len(X), timed_fraction)
    auto, auto_expected, auto_rates = _operating_point(auto, X, timed_fraction)
    y = split.y_test[: len(X)]
    full_accuracy = float(np.mean(model.predict(X) == y))
    exits = data.backbone(backbone, quick=quick)[1]
    with threadpool_limits(limits=1):
        all_trees, reaching_trees, drawn_trees = _tree_work(
            model, exits, X, ee.predict_exit(X)
        )
        full, early, auto_early = _alternated(
            [
                lambda: model.predict_proba(X),
                lambda: ee.predict_proba(X),
                lambda: auto.predict_proba(X),
            ],
            3 if quick else 7,
        )
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
        "exit_rates": rates,
        "trees_all_rows_seconds": all_trees,
        "trees_reaching_rows_seconds": reaching_trees,
        "trees_random_rows_seconds": drawn_trees,
        # The rows a policy sends on against as many random rows, in the
        # same calls: above 1, the rows reaching the late exits cost more
        # per tree than the average row (on which costs="auto" times them).
        "reaching_over_random_rows": reaching_trees / drawn_trees,
        "tree_work": all_trees / expected / reaching_trees,
        "routing": reaching_trees / early,
        "auto": {
            "cost_batch_size": int(auto.cost_batch_size_),
            "costs_per_row": auto.costs_per_row_.tolist(),
            "costs_per_call": auto.costs_per_call_.tolist(),
            "early_exit_seconds": auto_early,
            "expected_speed_up": auto_expected,
            "measured_speed_up": full / auto_early,
            "ratio": full / auto_early / auto_expected,
            "exit_rates": auto_rates,
            "budget_fraction": timed_fraction,
            "accuracy_loss": full_accuracy - float(np.mean(auto.predict(X) == y)),
        },
        "accuracy_loss": full_accuracy - float(np.mean(ee.predict(X) == y)),
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


def _rates(rates) -> str:
    return " / ".join(f"{100 * v:.0f}" for v in rates)


def markdown(results: dict) -> str:
    rows = results["rows"]
    trees = table(
        [
            {
                "dataset": r["dataset"],
                "backbone": r["backbone"],
                "budget": f"{r['budget_fraction']:.0%} of trees",
                "acc. vs full (pt)": f"{-100 * r['accuracy_loss']:+.2f}",
                "rows": r["n_rows"],
                "full ms": f"{1e3 * r['full_seconds']:.1f}",
                "early exit ms": f"{1e3 * r['early_exit_seconds']:.1f}",
                "speed-up in trees": f"{r['expected_speed_up']:.2f}x",
                "measured": f"{r['measured_speed_up']:.2f}x",
                "measured / in trees": f"{r['ratio']:.2f}",
                "tree work": f"{r['tree_work']:.2f}",
                "routing": f"{r['routing']:.2f}",
                "trees alone ms (all rows / reaching rows / as many random)": (
                    f"{1e3 * r['trees_all_rows_seconds']:.1f} / "
                    f"{1e3 * r['trees_reaching_rows_seconds']:.1f} / "
                    f"{1e3 * r['trees_random_rows_seconds']:.1f}"
                ),
                "reaching / random rows": f"{r['reaching_over_random_rows']:.2f}",
                "exit % per stage": _rates(r["exit_rates"]),
            }
            for r in rows
        ]
    )
    measured = table(
        [
            {
                "dataset": r["dataset"],
                "backbone": r["backbone"],
                "budget": f"{r['auto']['budget_fraction']:.0%} of the full cost",
                "acc. vs full (pt)": f"{-100 * r['auto']['accuracy_loss']:+.2f}",
                "cost_batch_size": r["auto"]["cost_batch_size"],
                "per call ms (exits)": " / ".join(
                    f"{1e3 * v:.2f}" for v in r["auto"]["costs_per_call"]
                ),
                "full ms": f"{1e3 * r['full_seconds']:.1f}",
                "early exit ms": f"{1e3 * r['auto']['early_exit_seconds']:.1f}",
                "expected": f"{r['auto']['expected_speed_up']:.2f}x",
                "measured": f"{r['auto']['measured_speed_up']:.2f}x",
                "measured / expected": f"{r['auto']['ratio']:.2f}",
                "exit % per stage": _rates(r["auto"]["exit_rates"]),
            }
            for r in rows
        ]
    )
    ratios = [r["auto"]["ratio"] for r in rows]
    verdict = "met" if min(ratios) >= WALL_RATIO else "NOT met"
    body = (
        f"**Target: measured / expected >= {WALL_RATIO} with measured costs: "
        f"{verdict}** (lowest {min(ratios):.2f}; "
        + ", ".join(
            f"{r['dataset']}/{r['backbone']} {r['auto']['ratio']:.2f}" for r in rows
        )
        + ").\n\n"
        + '### Measured costs (`costs="auto"`) for calls of the rows timed\n\n'
        + measured
        + "\n\n### For comparison: the speed-up in trees (the default unit, "
        "`costs=None`; a count of work, not a time)\n\n" + trees
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
