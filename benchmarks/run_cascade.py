"""Benchmark AdaptiveCascadeClassifier against a tuned threshold cascade.

Usage::

    python -m benchmarks.run_cascade            # full run, writes results
    python -m benchmarks.run_cascade --quick    # smoke run on small data

For each dataset the stages are fitted once (``memory=``); the learned policy is
swept over ``cost_weight`` and ``budget`` and compared on the test rows with each
stage alone, the oracle, and max-probability thresholds tuned on the same
held-out probabilities. See ``benchmarks/RESULTS.md`` for the latest numbers.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from . import datasets, report
from ._tables import command_line, environment, write_json, write_markdown
from .baseline import tuned_threshold_points
from .frontier import Point, bootstrap_ratio, cheapest_within_loss, summarise
from .ours import (
    POLICY_VARIANTS,
    RecordingMemory,
    budget_points,
    cost_weight_points,
    default_cost_weight,
    fitted_point,
    held_out_outputs,
    make_cascade,
    outputs_on,
    variant_points,
)
from .timing import (
    affine_prediction_seconds,
    call_costs,
    grid_search_cost,
    policy_time,
    tile_rows,
    wall_clock,
)

HERE = Path(__file__).resolve().parent
CACHE = HERE / "_cache"
COMMAND = "python -m benchmarks.run_cascade"

COST_WEIGHTS = [0.0, *np.geomspace(1e-3, 1.0, 10).round(6)]
# Budgets as fractions of the full cascade cost: dense at low cost for cascades
# whose cheap stages answer most rows, every 5 % above.
BUDGET_FRACTIONS = [0.01, 0.02, 0.03, 0.05, 0.075, *np.linspace(0.1, 0.95, 18).round(3)]
WALL_ROWS = 10_000


def _configuration(quick: bool) -> dict:
    config = {
        "datasets": list(datasets.DATASETS),
        "cost_weights": COST_WEIGHTS,
        "budget_fractions": BUDGET_FRACTIONS,
        "baseline_quantiles": 41,
        "variant_cost_weights": COST_WEIGHTS,
        "wall_rows": WALL_ROWS,
        "grid_search_dataset": "digits",
        "grid_sizes": (1, 10),
        "grid_outer_cv": 3,
        "cascade": {"cv": 3, "n_jobs": 2, "random_state": 0},
        "variants": POLICY_VARIANTS,
    }
    if quick:
        config.update(
            cost_weights=[0.0, 0.01, 0.1, 1.0],
            budget_fractions=[0.3, 0.5],
            baseline_quantiles=11,
            variant_cost_weights=[0.01, 0.1],
            wall_rows=1000,
            grid_sizes=(1, 3),
            grid_outer_cv=2,
            cascade={"cv": 2, "n_jobs": 1, "random_state": 0},
            variants=POLICY_VARIANTS[:2] + POLICY_VARIANTS[-1:],
        )
    return config


def _stage_rows(cascade, held, test, test_seconds, X_wall) -> list[dict]:
    rows = []
    for k, (name, _) in enumerate(cascade.estimators):
        calls = call_costs(cascade.estimators_[k], X_wall)
        rows.append(
            {
                **calls,
                "stage": name,
                "test_accuracy": float(test.correct[k].mean()),
                "held_out_accuracy": float(held.correct[k].mean()),
                "cost_us_per_row": float(cascade.costs_[k] * 1e6),
                "test_us_per_row": float(test_seconds[k] * 1e6),
                "normalized_cost": float(
                    cascade.costs_[k] / cascade.cumulative_costs_[-1]
                ),
            }
        )
    return rows


def _reference(stage_rows) -> int:
    """Most accurate single stage on test (ties: the cheaper one)."""
    return int(np.argmax([row["test_accuracy"] for row in stage_rows]))


def _wall_clock_setting(points: list[Point], reference_accuracy: float) -> Point:
    for loss in (0.005, 0.01):
        point = cheapest_within_loss(points, reference_accuracy, loss)
        if point is not None:
            return point
    return max(points, key=lambda p: p.accuracy)


def _fit_cold(bench, cache_dir: Path, reuse_cache: bool, cascade_params: dict):
    if not reuse_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    memory = RecordingMemory(str(cache_dir), verbose=0)
    cascade = make_cascade(bench.stages, memory, **cascade_params)
    start = time.perf_counter()
    cascade.fit(bench.X_train, bench.y_train)
    cold = {
        "seconds": time.perf_counter() - start,
        "stage_fit_seconds": cascade._stage_fit_seconds,
        "policy_fit_seconds": cascade._policy_fit_seconds,
        "from_cache": reuse_cache,
    }
    return cascade, memory, cold


def _budget_at_half(cascade, bench, held, test, cumulative, n_quantiles) -> dict:
    total = cascade.cumulative_costs_[-1]
    params = {"budget": float(0.5 * total)}
    with default_cost_weight(cascade):
        cascade.set_params(**params).fit(bench.X_train, bench.y_train)
        ours = fitted_point("budget=0.5 x full", cascade, test, params)
        cascade.set_params(budget=None)
    baseline = tuned_threshold_points(held, test, cumulative, [0.5], n_quantiles)
    return {
        "ours": ours.to_dict(),
        "threshold": baseline[0].to_dict() if baseline else None,
    }


def _variants(held, test, cumulative, summary_args, config) -> list[dict]:
    rows, cost_weights = [], config["variant_cost_weights"]
    for variant in config["variants"]:
        start = time.perf_counter()
        points = variant_points(held, test, cumulative, variant, cost_weights)
        seconds = time.perf_counter() - start
        summary = summarise(points, *summary_args)
        rows.append({**variant, **summary, "seconds": seconds})
    return rows


def _check_routing(cascade, X_test, test) -> bool:
    """Routing the test rows takes the exits the offline evaluation assumes."""
    routed = cascade.predict_exit(X_test)
    return bool(np.array_equal(routed, cascade.policy_.exit_stage(test.probas)))


def _compare_methods(cascade, bench, held, test, cumulative, summary_args, config, ref):
    """Our test points, both methods' summaries and the paired bootstrap.

    Also checks that routing the test rows takes the exits that the offline
    evaluation of our points assumes.
    """
    X, y = bench.X_train, bench.y_train
    ours = cost_weight_points(cascade, X, y, test, config["cost_weights"])
    # The baseline gets the same held-out cost targets as ours: the budgets, and
    # the held-out cost of each cost_weight point.
    targets = [p.held_out_cost for p in ours] + list(config["budget_fractions"])
    ours += budget_points(cascade, X, y, test, config["budget_fractions"])
    threshold = tuned_threshold_points(
        held, test, cumulative, sorted(targets), config["baseline_quantiles"]
    )
    methods = {
        name: {
            "points": [p.to_dict() for p in points],
            **summarise(points, *summary_args),
        }
        for name, points in (("threshold", threshold), ("ours", ours))
    }
    methods["bootstrap"] = {
        tag: bootstrap_ratio(ours, threshold, test, cumulative, ref, loss)
        for tag, loss in (("0.5", 0.005), ("1", 0.01))
    }
    return ours, methods, _check_routing(cascade, bench.X_test, test)


def _measure_wall_clock(cascade, bench, ours, stage_rows, ref, X_wall) -> dict:
    """Refit at our setting for the speed-up at <= 0.5 pt and time prediction.

    The cascade is configured for the call it is timed on: one
    ``predict_proba`` of every row of ``X_wall`` (``cost_batch_size``), so
    that each stage's measured part per call is spread over that many rows.
    """
    point = _wall_clock_setting(ours, stage_rows[ref]["test_accuracy"])
    cascade.set_params(
        **{"budget": None, **point.params, "cost_batch_size": len(X_wall)}
    )
    cascade.fit(bench.X_train, bench.y_train)
    wall = {
        "setting": point.setting,
        "tiled": len(bench.X_test) < len(X_wall),
        **wall_clock(cascade, ref, X_wall),
    }
    wall["affine_model_seconds"] = affine_prediction_seconds(
        wall["exit_rates"], wall["n_rows"], stage_rows
    )
    return wall


def run_dataset(
    name: str, config: dict, quick: bool, reuse_cache: bool, cache: Path
) -> dict:
    """Every measurement for one dataset, as a JSON-friendly dict (the
    stages cached under ``cache``)."""
    start = time.perf_counter()
    bench = datasets.load(name, quick=quick)
    cascade, memory, cold = _fit_cold(
        bench, cache / name, reuse_cache, config["cascade"]
    )
    held = held_out_outputs(cascade, memory, bench.y_train)
    test, test_seconds = outputs_on(cascade, bench.X_test, bench.y_test)
    total = cascade.cumulative_costs_[-1]
    cumulative = cascade.cumulative_costs_ / total
    X_wall = tile_rows(bench.X_test, config["wall_rows"])
    stage_rows = _stage_rows(cascade, held, test, test_seconds, X_wall)
    ref = _reference(stage_rows)
    summary_args = (
        stage_rows[ref]["test_accuracy"],
        stage_rows[ref]["normalized_cost"],
        stage_rows[ref]["held_out_accuracy"],
        cumulative[0],
    )

    ours, methods, routing_ok = _compare_methods(
        cascade, bench, held, test, cumulative, summary_args, config, ref
    )
    at_half = _budget_at_half(
        cascade, bench, held, test, cumulative, config["baseline_quantiles"]
    )
    wall = _measure_wall_clock(cascade, bench, ours, stage_rows, ref, X_wall)
    policy = policy_time(cascade, held, cold)
    variants = _variants(held, test, cumulative, summary_args, config)
    return {
        "dataset": bench.describe(),
        "cold_fit": cold,
        "costs_seconds_per_row": cascade.costs_.tolist(),
        "stages": stage_rows,
        "reference_stage": stage_rows[ref]["stage"],
        "oracle": {
            "test": test.oracle(cumulative),
            "held_out": held.oracle(cumulative),
        },
        "methods": methods,
        "budget_half": at_half,
        "routing_matches_offline_exits": routing_ok,
        "wall_clock": wall,
        "policy_time": policy,
        "variants": variants,
        "seconds": time.perf_counter() - start,
    }


def run_grid_search(config: dict, quick: bool, cache: Path) -> dict:
    """GridSearchCV time with a many-value versus a one-value ``cost_weight`` grid."""
    bench = datasets.load(config["grid_search_dataset"], quick=quick)
    X = np.concatenate([bench.X_train, bench.X_test])
    y = np.concatenate([bench.y_train, bench.y_test])
    sizes = config["grid_sizes"]
    timed = grid_search_cost(
        bench.stages,
        X,
        y,
        sizes,
        cache / "grid_search",
        config["cascade"],
        cv=config["grid_outer_cv"],
    )
    small, large = (timed[n]["seconds"] for n in sizes)
    return {
        "dataset": bench.name,
        "n_rows": int(len(y)),
        "outer_cv": config["grid_outer_cv"],
        "searches": {str(n): timed[n] for n in sizes},
        "ratio": large / small,
    }


def run(quick: bool = False, reuse_cache: bool = False, only=None) -> dict:
    """Run the whole benchmark and return the results (nothing is written)."""
    config = _configuration(quick)
    names = only or config["datasets"]
    start = time.perf_counter()
    results = {"command": COMMAND + (" --quick" if quick else ""), "quick": quick}
    results["config"] = config
    results["environment"] = environment(
        threads="BLAS/OpenMP limited to 1 thread in the main process; stage "
        "fitting uses n_jobs=2 worker processes (1 thread each)"
    )
    # The smoke run's stages are cached in a folder of its own that goes with
    # it: it never clears (or fills) the full run's cache.
    folder = (
        tempfile.TemporaryDirectory(prefix="skadaptive-quick-")
        if quick
        else contextlib.nullcontext(str(CACHE / "cascade"))
    )
    with folder as cache, threadpool_limits(1), warnings.catch_warnings():
        if quick:  # the tiny models of the smoke run stop before converging
            warnings.simplefilter("ignore", ConvergenceWarning)
        results["datasets"] = {}
        for name in names:
            print(f"== {name}", flush=True)
            results["datasets"][name] = run_dataset(
                name, config, quick, reuse_cache, Path(cache)
            )
            report.print_dataset(results["datasets"][name])
        if config["grid_search_dataset"] in names:
            print("== grid search", flush=True)
            results["grid_search"] = run_grid_search(config, quick, Path(cache))
    results["total_seconds"] = time.perf_counter() - start
    results["targets"] = report.targets(results)
    return results


def main(argv=None) -> None:
    """Command-line entry point."""
    parser = command_line(__doc__)
    parser.add_argument(
        "--reuse-cache",
        action="store_true",
        help="reuse fitted stages from benchmarks/_cache/cascade (timings of stage "
        "fitting are then those of the run that filled the cache)",
    )
    parser.add_argument(
        "--datasets", nargs="+", choices=list(datasets.DATASETS), default=None
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    results = run(args.quick, args.reuse_cache, args.datasets)
    report.print_summary(results)
    default = CACHE / "quick.json" if args.quick else HERE / "results" / "cascade.json"
    write_json(args.out or default, results)
    if not args.quick and args.out is None and args.datasets is None:
        write_markdown(HERE / "RESULTS.md", report.markdown(results))


if __name__ == "__main__":
    main()
