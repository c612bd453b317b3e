"""Tables for the terminal and ``RESULTS.md``, and target checks."""

from __future__ import annotations

import math

import numpy as np

from ._tables import (
    cell,
    machine_line,
    met,
    ms,
    pct,
    preamble,
    print_report,
    rates,
    section,
    speed,
    table,
)

# Speed-ups within 1 % of each other count as a tie for "at or above".
TIE = 0.01
METHOD_NAMES = {
    "threshold": "tuned max-prob thresholds",
    "ours": "ours (learned policy)",
}


# ---------------------------------------------------------------- formatting
def _chosen(summary: dict, reference: float, tag: str) -> str:
    point = summary[f"held_out_selected_point_{tag}"]
    if point is None:
        return "none within loss"
    loss = 100 * (reference - point["accuracy"])
    return f"{speed(summary[f'held_out_selected_speed_up_{tag}'])} ({loss:+.2f} pt)"


def _reference_accuracy(result: dict) -> float:
    return next(
        s["test_accuracy"]
        for s in result["stages"]
        if s["stage"] == result["reference_stage"]
    )


def _interval(boot: dict) -> str:
    return (
        f"{cell(boot['ratio_q05'])} - {cell(boot['ratio_median'])} - "
        f"{cell(boot['ratio_q95'])} ({100 * boot['p_ours_at_least_as_fast']:.0f} %)"
    )


def _at(point) -> str:
    if point is None:
        return "none within loss"
    return f"{pct(point['accuracy'])} % at {pct(point['cost'])} % cost"


def _each(results: dict, key: str) -> list:
    """``(dataset, its result[key])`` for every dataset."""
    return [(name, r[key]) for name, r in results["datasets"].items()]


# ------------------------------------------------------------- per dataset
def stage_table(result: dict) -> str:
    """Each stage alone and the oracle, on the test rows."""
    large_batch = f"us/row, {result['stages'][0]['large_batch_rows']} rows"
    rows = [
        {
            "stage": s["stage"],
            "test acc %": pct(s["test_accuracy"]),
            "held-out acc %": pct(s["held_out_accuracy"]),
            "cost us/row (costs_)": f"{s['cost_us_per_row']:.2f}",
            "us/row, whole test set": f"{s['test_us_per_row']:.2f}",
            large_batch: f"{s['large_batch_us_per_row']:.2f}",
            "ms per 1-row call": f"{s['one_row_call_ms']:.2f}",
            "% of full cost": pct(s["normalized_cost"]),
        }
        for s in result["stages"]
    ]
    total_us = sum(s["cost_us_per_row"] for s in result["stages"])
    test, held = result["oracle"]["test"], result["oracle"]["held_out"]
    oracle = [pct(test["accuracy"]), pct(held["accuracy"])]
    oracle += [f"{test['cost'] * total_us:.2f} (avg)", "", "", "", pct(test["cost"])]
    return table([*rows, ["oracle", *oracle]])


def method_table(result: dict) -> str:
    """Summary metrics of the baseline and ours on the test rows."""
    reference = _reference_accuracy(result)
    rows = []
    for key, name in METHOD_NAMES.items():
        m, half = result["methods"][key], result["budget_half"][key] or {}
        rows.append(
            {
                "method": name,
                "speed-up <=0.5pt": speed(m["speed_up_0.5"]),
                "that point (test acc, cost)": _at(m["point_0.5"]),
                "speed-up <=1pt": speed(m["speed_up_1"]),
                "held-out-chosen <=0.5pt (test loss)": _chosen(m, reference, "0.5"),
                "acc @50% budget": pct(half.get("accuracy")),
                "test cost %": pct(half.get("cost")),
                "held-out cost %": pct(half.get("held_out_cost")),
                "nAUC %": pct(m["normalized_auc"]),
                "points": len(m["points"]),
            }
        )
    return table(rows)


def variant_table(results: dict) -> str:
    """Policy variants, on every dataset."""
    return table(
        {
            "dataset": name,
            "policy": v["policy"],
            "features": v["feature_set"],
            "tune": v["tune_threshold"],
            "<=0.5pt": speed(v["speed_up_0.5"]),
            "<=1pt": speed(v["speed_up_1"]),
            "held-out-chosen <=0.5pt (test loss)": _chosen(
                v, _reference_accuracy(result), "0.5"
            ),
            "nAUC %": pct(v["normalized_auc"]),
            "fit s": f"{v['seconds']:.1f}",
        }
        for name, result in results["datasets"].items()
        for v in result["variants"]
    )


def comparison_table(results: dict) -> str:
    """Target 1: speed-up at <= 0.5 / 1 point loss, ours versus the baseline."""
    rows = []
    for name, methods in _each(results, "methods"):
        t, o, boot = methods["threshold"], methods["ours"], methods["bootstrap"]
        rows.append(
            {
                "dataset": name,
                "threshold <=0.5pt": speed(t["speed_up_0.5"]),
                "ours <=0.5pt": speed(o["speed_up_0.5"]),
                "ours/threshold, bootstrap 5-50-95 % (P ours >=)": _interval(
                    boot["0.5"]
                ),
                "threshold <=1pt": speed(t["speed_up_1"]),
                "ours <=1pt": speed(o["speed_up_1"]),
                "ours/threshold <=1pt, bootstrap": _interval(boot["1"]),
                "threshold nAUC %": pct(t["normalized_auc"]),
                "ours nAUC %": pct(o["normalized_auc"]),
            }
        )
    return table(rows)


def wall_table(results: dict) -> str:
    """Target 2: measured wall-clock speed-up versus the expected-cost one."""
    return table(
        {
            "dataset": name,
            "rows": w["n_rows"] if not w["tiled"] else f"{w['n_rows']} (tiled)",
            "cascade setting": w["setting"],
            "best stage ms": ms(w["stage_seconds"]),
            "cascade ms": ms(w["cascade_seconds"]),
            "per-call+per-row model ms": ms(w["affine_model_seconds"]),
            "measured": speed(w["measured_speed_up"]),
            "expected": speed(w["expected_speed_up"]),
            "ratio": f"{w['ratio']:.2f}",
            "exit % per stage": rates(w["exit_rates"]),
        }
        for name, w in _each(results, "wall_clock")
    )


def policy_table(results: dict) -> str:
    """Target 3: policy-learning time versus stage-fitting time."""
    rows = [
        [
            name,
            p["n_policy_rows"],
            f"{p['stage_fit_seconds']:.2f}",
            f"{p['policy_fit_seconds']:.3f}",
            pct(p["policy_over_stage"]),
            f"{p['single_policy_seconds']:.4f}",
            pct(p["single_over_stage"]),
        ]
        for name, p in _each(results, "policy_time")
    ]
    headers = [
        "dataset",
        "policy rows",
        "stage fit s",
        "policy fit s (31-pt frontier + 1)",
        "% of stage fit",
        "one fit_bottom_up_policy s",
        "% of stage fit",
    ]
    return table(rows, headers)


def grid_table(results: dict) -> str:
    """GridSearchCV time by grid size, both with ``memory=``."""
    g = results["grid_search"]
    rows = [
        [n, f"{s['seconds']:.2f}", s["best_params"], f"{s['best_score']:.4f}"]
        for n, s in g["searches"].items()
    ]
    rows.append(["ratio", f"{g['ratio']:.2f}", "", ""])
    return table(rows, ["cost_weight values", "seconds", "best_params", "best CV acc"])


# ----------------------------------------------------------------- targets
def targets(results: dict) -> dict:
    """Which of the issue's targets the run met, with the numbers behind it."""
    data = results["datasets"]
    t = np.array([d["methods"]["threshold"]["speed_up_0.5"] for d in data.values()])
    o = np.array([d["methods"]["ours"]["speed_up_0.5"] for d in data.values()])
    t_filled, o_filled = np.nan_to_num(t, nan=0.0), np.nan_to_num(o, nan=0.0)
    every = bool(np.all(o_filled >= (1 - TIE) * t_filled))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = o_filled / t_filled
    mean_ratio = float(np.exp(np.mean(np.log(ratios)))) if np.all(ratios > 0) else None
    walls = {k: d["wall_clock"]["ratio"] for k, d in data.items()}
    policy = {k: d["policy_time"]["policy_over_stage"] for k, d in data.items()}
    single = {k: d["policy_time"]["single_over_stage"] for k, d in data.items()}
    out = {
        "1_frontier_vs_threshold": {
            "met": every and mean_ratio is not None and mean_ratio >= 1.1,
            "at_or_above_on_every_dataset": every,
            "mean_speed_up_ratio": mean_ratio,
            "ratios": dict(zip(data, ratios.tolist())),
            "definition": "ours >= threshold speed-up at <= 0.5 pt loss on every "
            f"dataset (within {100 * TIE:.0f} %, a tie), and the geometric mean "
            "over datasets of ours / threshold >= 1.1",
        },
        "2_wall_clock": {
            "met": all(r >= 0.9 for r in walls.values()),
            "ratios": walls,
        },
        "3_policy_time": {
            "met": all(r < 0.05 for r in policy.values()),
            "policy_over_stage": policy,
            "single_fit_over_stage": single,
        },
    }
    if "grid_search" in results:
        ratio = results["grid_search"]["ratio"]
        out["grid_search"] = {"met": ratio <= 2.0, "ratio": ratio}
    return out


def _p_at_least(result: dict) -> float:
    return result["methods"]["bootstrap"]["0.5"]["p_ours_at_least_as_fast"]


def _verdicts(results: dict) -> list[str]:
    tg = results["targets"]
    first = tg["1_frontier_vs_threshold"]
    lines = [
        f"1. Frontier vs tuned thresholds (speed-up at <= 0.5 pt loss): "
        f"{met(first['met'])} - at or above on every dataset: "
        f"{first['at_or_above_on_every_dataset']} ("
        + ", ".join(f"{k} {v:.2f}" for k, v in first["ratios"].items())
        + f"; ratios within {100 * TIE:.0f} % count as ties); geometric mean of "
        f"ours/threshold = {cell(first['mean_speed_up_ratio'])} (required >= 1.1 "
        "for 'clearly above'). Share of bootstrap resamples of the test rows in "
        "which ours is at least as fast: "
        + ", ".join(
            f"{k} {100 * _p_at_least(d):.0f} %" for k, d in results["datasets"].items()
        )
        + " (below ~90 % the difference is within test-set noise).",
        f"2. Wall-clock >= 0.9 x expected speed-up: "
        f"{met(tg['2_wall_clock']['met'])} - ratios "
        + ", ".join(f"{k} {v:.2f}" for k, v in tg["2_wall_clock"]["ratios"].items())
        + ".",
        f"3. Policy learning < 5 % of stage fitting: "
        f"{met(tg['3_policy_time']['met'])} - "
        + ", ".join(
            f"{k} {100 * v:.1f} %"
            for k, v in tg["3_policy_time"]["policy_over_stage"].items()
        )
        + " (a single policy fit: "
        + ", ".join(
            f"{k} {100 * v:.2f} %"
            for k, v in tg["3_policy_time"]["single_fit_over_stage"].items()
        )
        + ").",
    ]
    if "grid_search" in tg:
        g = tg["grid_search"]
        lines.append(
            f"4. GridSearchCV 10-value / 1-value grid time <= 2: "
            f"{met(g['met'])} - ratio {g['ratio']:.2f}."
        )
    return lines


def _value(x) -> float:
    """A number for comparisons: missing (None, NaN) counts as 0."""
    return 0.0 if x is None or math.isnan(x) else float(x)


def _best_variant(variants: list[dict]) -> dict:
    return max(variants, key=lambda v: (_value(v["speed_up_0.5"]), v["normalized_auc"]))


def _where_we_lose(result: dict) -> list[str]:
    t, o = result["methods"]["threshold"], result["methods"]["ours"]
    losses = [
        f"{label} ({cell(o[key])} vs {cell(t[key])})"
        for key, label in (
            ("speed_up_0.5", "speed-up <= 0.5 pt"),
            ("speed_up_1", "speed-up <= 1 pt"),
            ("normalized_auc", "nAUC"),
        )
        if _value(o[key]) < (1 - TIE) * _value(t[key])
    ]
    half_t, half_o = (result["budget_half"][k] for k in ("threshold", "ours"))
    if half_t is not None and half_o["accuracy"] < half_t["accuracy"]:
        losses.append(
            f"accuracy at 50 % budget ({pct(half_o['accuracy'])} % at "
            f"{pct(half_o['cost'])} % cost vs {pct(half_t['accuracy'])} % at "
            f"{pct(half_t['cost'])} %)"
        )
    return losses


def _wall_note(name: str, result: dict) -> str | None:
    w = result["wall_clock"]
    if w["ratio"] >= 0.9:
        return None
    model, measured = w["affine_model_seconds"], w["cascade_seconds"]
    overhead = ", ".join(
        f"{s['stage']} {s['one_row_call_ms']:.1f} ms" for s in result["stages"]
    )
    text = (
        f"- {name}: measured/expected wall clock is {w['ratio']:.2f}. A per-call + "
        f"per-row model of the stages predicts {1e3 * model:.1f} ms against "
        f"{1e3 * measured:.1f} ms measured"
    )
    if model >= 0.85 * measured:
        return text + (
            ", so the routing itself costs little: the gap is the stages' fixed "
            f'cost per call (1-row call: {overhead}), which `costs="auto"` '
            "spreads over the ~1,000 timing rows, while in the cascade a late "
            "stage runs once on few rows."
        )
    return text + (
        f"; the {1e3 * (measured - model):.1f} ms it does not explain are routing "
        "overhead (policy features, exit rules, row selection)."
    )


def _observations(results: dict) -> list[str]:
    lines = []
    for name, result in results["datasets"].items():
        best = _best_variant(result["variants"])
        boot = result["methods"]["bootstrap"]["0.5"]
        lines.append(
            f"- {name}: ours/threshold speed-up at <= 0.5 pt has bootstrap median "
            f"{cell(boot['ratio_median'])} (5-95 %: {cell(boot['ratio_q05'])} to "
            f"{cell(boot['ratio_q95'])}); ours is at least as fast in "
            f"{100 * boot['p_ours_at_least_as_fast']:.0f} % of resamples. Best "
            f"policy variant at <= 0.5 pt: {best['policy']} / {best['feature_set']} "
            f"/ tune_threshold={best['tune_threshold']} "
            f"({speed(best['speed_up_0.5'])}; chosen on held-out rows, with "
            f"its test loss: {_chosen(best, _reference_accuracy(result), '0.5')})."
        )
        losses = _where_we_lose(result)
        if losses:
            lines.append(
                f"  Ours is below the threshold baseline on: {'; '.join(losses)}."
            )
        note = _wall_note(name, result)
        if note:
            lines.append(note)
    return lines


# ------------------------------------------------------------------ output
def print_dataset(result: dict) -> None:
    """Print one dataset's stage and method tables."""
    print(stage_table(result))
    print()
    print(method_table(result))
    print(f"({result['seconds']:.0f} s)\n", flush=True)


def print_summary(results: dict) -> None:
    """Print the cross-dataset tables and the target verdicts."""
    tables = [comparison_table(results), wall_table(results), policy_table(results)]
    if "grid_search" in results:
        tables.append(grid_table(results))
    print_report(results, [*tables, variant_table(results)], _verdicts(results))


#: Where the other benchmarks record their results.
OTHER_BENCHMARKS = [
    "The other benchmarks write their own files: early exits over tree "
    "ensembles, every policy family at 25/50/75 % budgets, in "
    "[EARLY_EXIT_RESULTS.md](EARLY_EXIT_RESULTS.md) "
    "(`python -m benchmarks.run_early_exit`); ONNX CNN cascades and the split "
    "multi-exit network on CPU at batch sizes 1/64/1024 in "
    "[ONNX_RESULTS.md](ONNX_RESULTS.md) (`python -m benchmarks.run_onnx`), and "
    "on a CUDA GPU, where one is available, in `ONNX_GPU_RESULTS.md` "
    "(`python -m benchmarks.run_onnx_gpu`); measured against expected speed-up "
    "at 1 to 10,000 rows per call in [BATCH_SIZE_RESULTS.md](BATCH_SIZE_RESULTS.md) "
    "(`python -m benchmarks.run_batch_sizes`); what routing itself costs in "
    "[ROUTING_RESULTS.md](ROUTING_RESULTS.md) (`python -m benchmarks.run_routing`); "
    "4-stage cascades with and without skipping stages (`skips=True`) and with "
    'a router (`router="auto"`) at the same budgets in '
    "[SKIP_RESULTS.md](SKIP_RESULTS.md) "
    "(`python -m benchmarks.run_skips`); budget recalibration without labels on "
    "test rows with more hard rows (cost and accuracy before and after, "
    "recalibrated on one half and measured on the other) in "
    "[RECALIBRATE_RESULTS.md](RECALIBRATE_RESULTS.md) "
    "(`python -m benchmarks.run_recalibrate`); budgets on new rows with stages "
    "refitted on all rows or kept as held out (`refit=False`) in "
    "[REFIT_RESULTS.md](REFIT_RESULTS.md) (`python -m benchmarks.run_refit`); "
    "predict over 20 million lazily "
    "generated rows on a 2-worker Dask `LocalCluster` (throughput against "
    "in-memory predict, peak memory per worker) in "
    "[DASK_RESULTS.md](DASK_RESULTS.md) (`python -m benchmarks.run_dask`).",
]


def markdown(results: dict) -> str:
    """The whole ``RESULTS.md``."""
    machine = machine_line(results["environment"])
    parts = [
        *preamble("Cascade benchmark results", results, OTHER_BENCHMARKS, machine),
        *section("Targets", _verdicts(results)),
        *section("Observations", _observations(results)),
        *section("How to read this", method_notes(results["config"])),
    ]
    for name, result in results["datasets"].items():
        d = result["dataset"]
        parts += section(
            name,
            f"{d['n_train']} training rows, {d['n_test']} test rows, "
            f"{d['n_features']} features, {d['n_classes']} classes. "
            + " ".join(d["notes"])
            + f" Seeds: {d['seeds']}.",
            "Stages: "
            + "; ".join(
                f"`{k}` = `{' '.join(v.split())}`" for k, v in d["stages"].items()
            ),
            stage_table(result),
            method_table(result),
        )
    parts += [
        *section("Ours versus the threshold baseline", comparison_table(results)),
        *section("Wall clock (predict_proba)", wall_table(results)),
        *section("Policy learning versus stage fitting", policy_table(results)),
    ]
    if "grid_search" in results:
        g = results["grid_search"]
        parts += section(
            "Grid-search cost",
            f"`GridSearchCV` on {g['dataset']} ({g['n_rows']} rows, "
            f"{g['outer_cv']}-fold outer CV, n_jobs=1), each search with its own "
            "empty `memory=` cache.",
            grid_table(results),
        )
    parts += section("Policy variants", VARIANT_NOTES, variant_table(results))
    return "\n".join(parts)


def method_notes(config: dict) -> list[str]:
    """How the numbers were made, for ``RESULTS.md``."""
    cascade = config["cascade"]
    return [
        '- Costs are `costs="auto"`: each stage\'s measured `predict_proba` seconds '
        "per row (on up to 1,000 policy rows), measured once when the stages are "
        'fitted and shared by every method. "% cost" is a fraction of running '
        "all three stages. The stage table also shows each stage's time per row "
        "on a large batch and the time of a 1-row call (its fixed overhead).",
        "- Speed-up = cost of the most accurate single stage alone / the method's "
        "average cost per row on test, at the cheapest point of the method's test "
        "frontier whose test accuracy is within 0.5 (or 1) point of that stage. "
        '"held-out-chosen" picks the point on held-out accuracy/cost instead, as '
        "a user could, and shows its test speed-up and test accuracy loss.",
        f"- Tuned thresholds: per-stage max-probability thresholds on a grid of "
        f"{config['baseline_quantiles']} held-out quantiles (plus 'defer all') per "
        "stage, every combination evaluated on the same held-out probabilities "
        "our policy learns from; for each target cost the most accurate "
        "combination within it (on held-out rows) is kept. The targets are the "
        "same as ours: the budgets below and the held-out cost of each of our "
        "`cost_weight` points.",
        f"- Ours: `AdaptiveCascadeClassifier` (defaults: linear policy, history "
        f"features, tuned threshold; cv={cascade['cv']}, n_jobs={cascade['n_jobs']},"
        f" random_state={cascade['random_state']}) fitted once, then refitted with "
        f"`set_params` over {len(config['cost_weights'])} `cost_weight` values "
        f"({', '.join(f'{w:g}' for w in config['cost_weights'])}) and "
        f"{len(config['budget_fractions'])} budgets (fractions of the full cost: "
        f"{', '.join(f'{b:g}' for b in config['budget_fractions'])}); `memory=` "
        "returns the cached stages. Test points are the learned policy applied to "
        "each stage's test probabilities; routing the test rows gives the same "
        "exits (checked per dataset).",
        "- Bootstrap: 500 paired resamples of the test rows (seed 0); each "
        "recomputes both methods' speed-up within the loss and their ratio.",
        "- Accuracy @50% budget: budget = 0.5 x the full cascade cost, chosen on "
        "held-out rows, evaluated on test (test and held-out costs shown).",
        "- nAUC: area under the upper envelope of test accuracy versus normalised "
        "cost, from the first stage's cost to the full cost, divided by the width.",
        "- Wall clock: `predict_proba` of the cascade at the setting of our "
        "speed-up at <= 0.5 pt (else 1 pt) versus the most accurate stage alone, "
        "fastest of 5 runs, each one call on every row timed; the cascade is "
        "refitted at that setting with `cost_batch_size` = the rows timed (the "
        "batch size it runs at), so that each stage's measured part per call "
        "is spread over that many rows; expected = that stage's own measured "
        "cost (its `costs_` without the routing work) / the "
        "estimator's average cost per row of the rows' exits (each stage that "
        "a row reaches paying its call once).",
        "- Policy learning: the stage fit is timed once, in the first (uncached) "
        "fit; the policy fit (the chosen policy and the 31-point frontier, given "
        "the held-out probabilities) is the fastest of 3 runs of `with_policy` "
        "at the same `cost_weight` on the fitted cascade (the time inside the "
        "first fit is in the JSON as `cold_policy_fit_seconds`).",
    ]


VARIANT_NOTES = [
    "Each variant is learned with `skadaptive.policies.fit_bottom_up_policy` on the "
    "same held-out probabilities over the `cost_weight` grid only (no budgets), "
    "and evaluated on the test probabilities. `hgb` is "
    "`HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15)`. The row "
    "linear/history/True is the estimator's default.",
]
