"""Benchmark EarlyExitClassifier: every exit policy at given budgets, and wall clock.

Usage::

    python -m benchmarks.run_early_exit            # full run, writes results
    python -m benchmarks.run_early_exit --quick    # smoke run on small data

For each dataset and backbone (gradient boosting, random forest) the backbone is
fitted once on the train rows and frozen; ``EarlyExitClassifier`` learns its exit
policy on the validation rows, and ``with_policy`` moves it to every policy
family and budget without recomputing the exits' probabilities. Everything is
evaluated on the test rows. See ``benchmarks/EARLY_EXIT_RESULTS.md`` for the
latest numbers.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from skadaptive import EarlyExitClassifier
from skadaptive.stages import exit_probas

from . import early_exit_data as data
from . import early_exit_report as report
from ._tables import command_line, environment, write_json, write_markdown
from .frontier import StageOutputs
from .timing import best_time, expected_speed_up, tile_rows, with_measured_costs

HERE = Path(__file__).resolve().parent
COMMAND = "python -m benchmarks.run_early_exit"
RESULTS_JSON = HERE / "results" / "early_exit.json"
RESULTS_MD = HERE / "EARLY_EXIT_RESULTS.md"

POLICIES = ("linear", "eenet", "max_proba", "entropy", "patience")
LEARNED = ("linear", "eenet")
HEURISTICS = ("max_proba", "entropy", "patience")
DEFAULT_POLICY = "linear"
BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
# Budgets for the wall-clock point of the default policy: 10 % to 100 % by 5 %.
GRID_FRACTIONS = tuple(np.round(np.arange(0.10, 1.0 + 1e-9, 0.05), 2).tolist())
WALL_ROWS = 10_000
MAX_LOSS = 0.005  # accuracy loss allowed for the wall-clock point (0.5 point)
# Relative slack for "within budget": average costs are sums of floats.
BUDGET_RTOL = 1e-9


def _configuration(quick: bool) -> dict:
    config = {
        "datasets": list(data.DATASETS),
        "backbones": list(data.BACKBONES),
        "policies": list(POLICIES),
        "learned": list(LEARNED),
        "heuristics": list(HEURISTICS),
        "default_policy": DEFAULT_POLICY,
        "budget_fractions": list(BUDGET_FRACTIONS),
        "grid_fractions": list(GRID_FRACTIONS),
        "wall_rows": WALL_ROWS,
        "timing_repeats": 5,
        "max_loss": MAX_LOSS,
    }
    if quick:
        config.update(
            budget_fractions=[0.25, 0.5], grid_fractions=[1.0], wall_rows=1000
        )
    return config


# ------------------------------------------------------------------ fitting
def _fit_backbone(kind: str, split: data.Split, quick: bool):
    model, exits = data.backbone(kind, quick)
    start = time.perf_counter()
    model.fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - start
    if "n_jobs" in model.get_params():
        # Predict on one thread, like the exits (which run tree by tree).
        model.set_params(n_jobs=1)
    return model, exits, seconds


def _fit_early_exit(model, exits, split: data.Split):
    """Freeze the backbone; the validation rows are the policy's held-out rows."""
    start = time.perf_counter()
    ee = EarlyExitClassifier(
        FrozenEstimator(model), exits=exits, policy=DEFAULT_POLICY, random_state=0
    ).fit(split.X_val, split.y_val)
    return ee, time.perf_counter() - start


def _outputs(ee, X, y) -> StageOutputs:
    return StageOutputs(exit_probas(ee.source_, X), np.searchsorted(ee.classes_, y))


# ------------------------------------------------------------------- points
def _point(e, held: StageOutputs, test: StageOutputs, fraction, seconds) -> dict:
    """Held-out and test accuracy/cost of the fitted copy ``e`` at one budget."""
    cumulative = e.cumulative_costs_
    total = float(cumulative[-1])
    budget = float(e.budget_)
    on_test = test.evaluate(e.policy_.exit_stage(test.probas), cumulative)
    # Recomputed from the held-out probabilities, not read from the estimator,
    # to check the budget independently of policy_rows_cost_.
    on_held = held.evaluate(e.policy_.exit_stage(held.probas), cumulative)
    held_cost = float(e.policy_rows_cost_)
    return {
        "policy": e.policy,
        "budget_fraction": float(fraction),
        "budget": budget,
        "cost_weight": float(e.cost_weight_),
        "held_out_accuracy": float(e.policy_rows_accuracy_),
        "held_out_cost": held_cost,
        "held_out_cost_fraction": held_cost / total,
        "held_out_cost_recomputed": on_held["cost"],
        "held_out_accuracy_recomputed": on_held["accuracy"],
        "held_out_within_budget": on_held["cost"] <= budget * (1 + BUDGET_RTOL)
        and held_cost <= budget * (1 + BUDGET_RTOL),
        "held_out_vs_budget_pct": 100 * (on_held["cost"] / budget - 1),
        "held_out_exit_rates": np.round(e.exit_rates_, 4).tolist(),
        "test_accuracy": on_test["accuracy"],
        "test_cost": on_test["cost"],
        "test_cost_fraction": on_test["cost"] / total,
        "test_vs_budget_pct": 100 * (on_test["cost"] / budget - 1),
        "test_exit_rates": on_test["exit_rates"],
        "policy_seconds": seconds,
    }


def _at_budget(ee, policy, fraction, held, test):
    start = time.perf_counter()
    e = ee.with_policy(budget=fraction * ee.cumulative_costs_[-1], policy=policy)
    seconds = time.perf_counter() - start
    return e, _point(e, held, test, fraction, seconds)


def _test_frontier(e, split: data.Split) -> dict:
    """The policy's held-out frontier (31 cost weights) evaluated on test rows."""
    on_test = e.evaluate_frontier(split.X_test, split.y_test)
    return {
        "test_accuracy": on_test["accuracy"].tolist(),
        "test_cost": on_test["expected_cost"].tolist(),
        "held_out_accuracy": e.frontier_["accuracy"].tolist(),
        "held_out_cost": e.frontier_["expected_cost"].tolist(),
    }


def _budget_sweep(ee, held, test, split, config) -> tuple[list, dict, dict]:
    """Every policy at every budget, each policy's frontier on test, and the
    standard error of each learned-minus-heuristic test accuracy difference."""
    points, frontiers, correct = [], {}, {}
    rows = np.arange(len(test.y))
    for policy in config["policies"]:
        for fraction in config["budget_fractions"]:
            e, point = _at_budget(ee, policy, fraction, held, test)
            points.append(point)
            exits = e.policy_.exit_stage(test.probas)
            correct[policy, fraction] = test.correct[exits, rows].astype(np.float64)
        # The frontier does not depend on the budget: one per policy.
        frontiers[policy] = _test_frontier(e, split)
    return points, frontiers, _paired_standard_errors(correct, config)


def _paired_standard_errors(correct: dict, config: dict) -> dict:
    """Standard error of the test accuracy difference of two policies.

    Both answer the same test rows, so the difference is paired: its standard
    error is the standard deviation of the per-row difference over sqrt(rows).
    """
    out = {}
    for fraction in config["budget_fractions"]:
        out[str(fraction)] = {
            f"{a}-{b}": float(
                np.std(correct[a, fraction] - correct[b, fraction], ddof=1)
                / np.sqrt(len(correct[a, fraction]))
            )
            for a in config["learned"]
            for b in config["heuristics"]
        }
    return out


def _grid(ee, held, test, config) -> tuple[list, dict]:
    """The default policy over the fine budget grid (for the wall-clock point)."""
    points, fitted = [], {}
    for fraction in config["grid_fractions"]:
        e, point = _at_budget(ee, DEFAULT_POLICY, fraction, held, test)
        points.append(point)
        fitted[fraction] = e
    return points, fitted


def cheapest_within(points, reference, loss, accuracy_key, cost_key):
    """The cheapest point whose accuracy is within ``loss`` of ``reference``."""
    within = [p for p in points if p[accuracy_key] >= reference - loss - 1e-12]
    if not within:
        return None
    return min(within, key=lambda p: (p[cost_key], p["budget"]))


def _select(points, reference, max_loss, accuracy_key, cost_key):
    """Cheapest within ``max_loss``, else within twice that, else most accurate."""
    for loss in (max_loss, 2 * max_loss):
        point = cheapest_within(points, reference, loss, accuracy_key, cost_key)
        if point is not None:
            return point, loss
    return max(points, key=lambda p: p[accuracy_key]), None


# --------------------------------------------------------------- wall clock
def _wall_clock(chosen, model, split: data.Split, config) -> dict:
    """``predict_proba`` of the early-exit model versus the full backbone."""
    n_rows, repeats = config["wall_rows"], config["timing_repeats"]
    X_wall = tile_rows(split.X_test, n_rows)[:n_rows]
    y_wall = tile_rows(split.y_test, n_rows)[:n_rows]
    full_seconds = best_time(lambda: model.predict_proba(X_wall), repeats)
    ee_seconds = best_time(lambda: chosen.predict_proba(X_wall), repeats)
    # The estimator whose expected speed-up is a claim about time: the same
    # early exit with measured costs for calls of the rows timed (trees are a
    # count of work: see benchmarks/EARLY_EXIT_WALL_RESULTS.md), at its own
    # cheapest budget within the loss allowed (a fraction of its time buys
    # fewer trees than the same fraction of trees).
    timed, timed_fraction, timed_loss = _measured_point(chosen, split, config)
    timed_seconds = best_time(lambda: timed.predict_proba(X_wall), repeats)
    timed_exits = timed.predict_exit(X_wall)
    timed_expected = expected_speed_up(timed, timed_exits)
    # Every exit on every row (no early exit): the exit code path's own speed.
    all_exits_seconds = best_time(lambda: exit_probas(chosen.source_, X_wall), 3)

    routed = chosen.route(X_wall)
    probas = exit_probas(chosen.source_, X_wall)
    full_proba = model.predict_proba(X_wall)
    total = float(chosen.cumulative_costs_[-1])
    expected = total / chosen._average_cost(routed.exit_stage)
    measured = full_seconds / ee_seconds
    y_encoded = np.searchsorted(chosen.classes_, y_wall)
    n_exits = len(chosen.cumulative_costs_)
    return {
        "budget": float(chosen.budget_),
        "policy": chosen.policy,
        "n_rows": int(n_rows),
        "tiled": bool(len(split.X_test) < n_rows),
        "repeats": repeats,
        "full_seconds": full_seconds,
        "early_exit_seconds": ee_seconds,
        "all_exits_seconds": all_exits_seconds,
        "measured_speed_up": measured,
        "expected_speed_up": expected,
        "ratio": measured / expected,
        "exit_path_efficiency": full_seconds / all_exits_seconds,
        # The exit code's time for these exits if it scaled with trees x rows:
        # measured / expected = exit_path_efficiency x routing_efficiency.
        "ideal_seconds": all_exits_seconds / expected,
        "routing_efficiency": all_exits_seconds / expected / ee_seconds,
        "average_cost": chosen._average_cost(routed.exit_stage),
        "exit_rates": (np.bincount(routed.exit_stage, minlength=n_exits) / n_rows)
        .round(4)
        .tolist(),
        "early_exit_accuracy": float(np.mean(routed.proba.argmax(1) == y_encoded)),
        "full_accuracy": float(np.mean(full_proba.argmax(1) == y_encoded)),
        "routing_matches_offline_exits": bool(
            np.array_equal(routed.exit_stage, chosen.policy_.exit_stage(probas))
        ),
        "last_exit_matches_full_model": bool(np.allclose(probas[-1], full_proba)),
        "measured_costs": {
            "early_exit_seconds": timed_seconds,
            "expected_speed_up": timed_expected,
            "measured_speed_up": full_seconds / timed_seconds,
            "ratio": full_seconds / timed_seconds / timed_expected,
            "exit_rates": (np.bincount(timed_exits, minlength=n_exits) / n_rows)
            .round(4)
            .tolist(),
            "accuracy": float(np.mean(timed.predict(X_wall) == np.asarray(y_wall))),
            "budget_fraction": timed_fraction,
            "test_accuracy_loss": timed_loss,
        },
    }


def _measured_point(chosen, split: data.Split, config) -> tuple:
    """The early exit with measured costs for calls of the rows timed, at the
    cheapest budget of the grid (fractions of its full cost) whose test
    accuracy is within the loss allowed of the full model's (else twice it,
    else the most accurate), chosen on test like the point in trees."""
    timed = with_measured_costs(
        chosen, split.X_val, split.y_val, config["wall_rows"], 1.0
    )
    full = float(np.mean(timed.predict(split.X_test) == split.y_test))
    total = timed.cumulative_costs_[-1]
    points = []
    for fraction in config["grid_fractions"]:
        if fraction * total < timed.cumulative_costs_[0]:
            continue
        at = timed.with_policy(budget=fraction * total)
        accuracy = float(np.mean(at.predict(split.X_test) == split.y_test))
        points.append({"budget": fraction, "test_accuracy": accuracy, "fitted": at})
    point, _ = _select(points, full, config["max_loss"], "test_accuracy", "budget")
    return point["fitted"], point["budget"], full - point["test_accuracy"]


# ------------------------------------------------------------------ one run
def _exits_table(ee, held: StageOutputs, test: StageOutputs) -> list[dict]:
    total = ee.cumulative_costs_[-1]
    return [
        {
            "exit": k,
            "trees": float(ee.cumulative_costs_[k]),
            "cost_fraction": float(ee.cumulative_costs_[k] / total),
            "held_out_accuracy": float(held.correct[k].mean()),
            "test_accuracy": float(test.correct[k].mean()),
        }
        for k in range(len(ee.cumulative_costs_))
    ]


def _reference(model, ee, test: StageOutputs, split: data.Split) -> dict:
    total = float(ee.cumulative_costs_[-1])
    oracle = test.oracle(ee.cumulative_costs_)
    return {
        "full": {
            "test_accuracy": float(model.score(split.X_test, split.y_test)),
            "held_out_accuracy": float(ee.stage_accuracies_[-1]),
            "cost": total,
        },
        "oracle": {
            "held_out_accuracy": float(ee.oracle_accuracy_),
            "held_out_cost": float(ee.oracle_cost_),
            "test_accuracy": oracle["accuracy"],
            "test_cost": oracle["cost"],
            "test_exit_rates": oracle["exit_rates"],
        },
    }


def run_backbone(kind: str, split: data.Split, config: dict, quick: bool) -> dict:
    """Every measurement for one dataset and backbone, as a JSON-friendly dict."""
    start = time.perf_counter()
    model, exits, fit_seconds = _fit_backbone(kind, split, quick)
    ee, ee_seconds = _fit_early_exit(model, exits, split)
    held = StageOutputs(*ee._policy_rows()[:2])
    test = _outputs(ee, split.X_test, split.y_test)
    reference = _reference(model, ee, test, split)
    points, frontiers, paired = _budget_sweep(ee, held, test, split, config)
    grid, fitted = _grid(ee, held, test, config)

    full_test = reference["full"]["test_accuracy"]
    chosen, loss = _select(
        grid, full_test, config["max_loss"], "test_accuracy", "test_cost"
    )
    held_chosen, held_loss = _select(
        grid,
        reference["full"]["held_out_accuracy"],
        config["max_loss"],
        "held_out_accuracy",
        "held_out_cost",
    )
    wall = _wall_clock(fitted[chosen["budget_fraction"]], model, split, config)
    wall.update(
        budget_fraction=chosen["budget_fraction"],
        loss_allowed=loss,
        test_accuracy_loss=full_test - chosen["test_accuracy"],
        test_cost_fraction=chosen["test_cost_fraction"],
    )
    total = float(ee.cumulative_costs_[-1])
    return {
        "backbone": repr(model),
        "exits": [int(e) for e in exits],
        "cost_unit": ee.source_.cost_unit,
        "costs": ee.costs_.tolist(),
        "total_cost": total,
        "fit_seconds": fit_seconds,
        "policy_data_seconds": ee_seconds,
        "exits_table": _exits_table(ee, held, test),
        **reference,
        "budget_points": points,
        "test_frontiers": frontiers,
        "paired_standard_errors": paired,
        "grid_points": grid,
        "held_out_selected": {
            **held_chosen,
            "loss_allowed": held_loss,
            "test_accuracy_loss": full_test - held_chosen["test_accuracy"],
            "test_speed_up": total / held_chosen["test_cost"],
        },
        "wall_clock": wall,
        "seconds": time.perf_counter() - start,
    }


def run(quick: bool = False, only=None) -> dict:
    """Run the whole benchmark and return the results (nothing is written)."""
    config = _configuration(quick)
    names = list(only or config["datasets"])
    start = time.perf_counter()
    results = {"command": COMMAND + (" --quick" if quick else ""), "quick": quick}
    results["config"] = config
    results["environment"] = environment(
        threads="BLAS/OpenMP limited to 1 thread; the random forest is fitted "
        "with n_jobs=2 and predicts with n_jobs=1"
    )
    results["datasets"] = {}
    with threadpool_limits(1), warnings.catch_warnings():
        if quick:  # the tiny models of the smoke run may stop before converging
            warnings.simplefilter("ignore", ConvergenceWarning)
        for name in names:
            print(f"== {name}", flush=True)
            split = data.load(name, quick=quick)
            entry = {"dataset": split.describe(), "backbones": {}}
            for kind in config["backbones"]:
                print(f"-- {kind}", flush=True)
                entry["backbones"][kind] = run_backbone(kind, split, config, quick)
                report.print_backbone(name, kind, entry["backbones"][kind])
            results["datasets"][name] = entry
    results["total_seconds"] = time.perf_counter() - start
    results["targets"] = report.targets(results)
    return results


def main(argv=None) -> None:
    """Command-line entry point."""
    parser = command_line(__doc__)
    parser.add_argument("--datasets", nargs="+", choices=data.DATASETS, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    results = run(args.quick, args.datasets)
    report.print_summary(results)
    complete = not args.quick and args.datasets is None
    # Only a full run of every dataset replaces the committed results.
    default = RESULTS_JSON if complete else _scratch_json(args.quick)
    write_json(args.out or default, results)
    if complete and args.out is None:
        write_markdown(RESULTS_MD, report.markdown(results))


def _scratch_json(quick: bool) -> Path:
    name = "early_exit_quick.json" if quick else "early_exit_partial.json"
    return Path(tempfile.gettempdir()) / "skadaptive_benchmarks" / name


if __name__ == "__main__":
    main()
