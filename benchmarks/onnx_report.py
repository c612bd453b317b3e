"""Tables, target verdicts and the markdown of the ONNX stages benchmark."""

from __future__ import annotations

from ._tables import (
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

TITLES = {
    "cascade": "cascade tiny -> medium -> large",
    "multi_exit_macs": "multi-exit network, costs = MACs",
    "multi_exit_auto": 'multi-exit network, costs="auto"',
}
FULL_MODELS = {
    "cascade": "large alone",
    "multi_exit_macs": "unsplit network",
    "multi_exit_auto": "unsplit network",
}


def _cost(value, unit) -> str:
    if unit == "seconds":
        return f"{value * 1e6:.2f} us"
    return f"{value:,.0f}"


def _unit(unit) -> str:
    return {"seconds": "seconds per row, measured", None: "given"}.get(unit, unit)


# ------------------------------------------------------------------ tables
def setup_table(results: dict) -> str:
    """The operating point of each adaptive model, on the evaluation rows."""
    rows = []
    for setup, s in results["setups"].items():
        chosen, held, held_at = s["chosen"], s["held_out_chosen"], "none"
        if held is not None:
            held_at = f"{speed(held['expected_speed_up'])} at {pct(held['accuracy'])}"
        rows.append(
            {
                "adaptive model": TITLES[setup],
                "costs": _unit(s["cost_unit"]),
                "incremental cost per exit": " / ".join(
                    _cost(c, s["cost_unit"]) for c in s["costs"]
                ),
                "full model: eval acc %": f"{FULL_MODELS[setup]}: "
                f"{pct(s['reference_accuracy'])}",
                "chosen cost_weight": chosen["params"]["cost_weight"],
                "eval acc %": pct(chosen["accuracy"]),
                "loss (pt)": f"{chosen['accuracy_loss_points']:+.2f}",
                "exit % per stage": rates(chosen["exit_rates"]),
                "expected speed-up": speed(chosen["expected_speed_up"]),
                "held-out-chosen: expected speed-up at eval acc %": held_at,
                "routing = offline": s["routing_matches_offline"],
            }
        )
    return table(rows)


def batch_table(batch: dict) -> str:
    """Wall clock of each adaptive model versus its full model at one batch size."""
    rows = []
    for setup, t in batch["setups"].items():
        split = t.get("split_no_exit_seconds")
        rows.append(
            {
                "adaptive model": TITLES[setup],
                "full model": FULL_MODELS[setup],
                "full ms": ms(t["full_seconds"]),
                "adaptive ms": ms(t["adaptive_seconds"]),
                "split, no exit ms": "-" if split is None else ms(split),
                "measured": speed(t["measured_speed_up"]),
                "expected": speed(t["expected_speed_up"]),
                "measured / expected": f"{t['ratio']:.2f}",
                "predicted from stage times": speed(t["stage_time_speed_up"]),
                "routing overhead us/row": f"{t['routing_overhead_us_per_row']:.2f}",
                "exit % per stage": rates(t["exit_rates"]),
            }
        )
    return table(rows)


def stage_time_table(results: dict) -> str:
    """Each stage's (segment's) own time per row, at each batch size."""
    batches = results["batches"]
    rows = []
    names = {
        "cascade": results["setups"]["cascade"]["stage_names"],
        "multi_exit_macs": [
            f"segment {k} (to {name})"
            for k, name in enumerate(results["config"]["exit_outputs"])
        ],
    }
    for setup, stage_names in names.items():
        for k, name in enumerate(stage_names):
            rows.append(
                [name]
                + [f"{b['setups'][setup]['stage_us_per_row'][k]:.2f}" for b in batches]
            )
        rows.append(
            [f"{FULL_MODELS[setup]} (full model)"]
            + [f"{b['setups'][setup]['full_us_per_row']:.2f}" for b in batches]
        )
    headers = ["model or segment"] + [
        f"us/row at batch {b['batch_size']} ({b['n_rows']} rows)" for b in batches
    ]
    return table(rows, headers)


def default_threads_table(results: dict) -> str | None:
    d = results["default_threads"]
    if d is None:
        return None
    return table(
        {
            "adaptive model": TITLES[setup],
            "full ms": ms(t["full_seconds"]),
            "adaptive ms": ms(t["adaptive_seconds"]),
            "measured": speed(t["measured_speed_up"]),
            "expected": speed(t["expected_speed_up"]),
            "measured / expected": f"{t['ratio']:.2f}",
            "same exits as 1-thread run": t["same_exits_as_single_thread"],
        }
        for setup, t in d["setups"].items()
    )


def split_table(results: dict) -> str:
    checks = results["split_check"]["checks"]
    rows = [
        [name, c["n_rows"], f"{c['max_abs_difference']:.2e}"]
        for name, c in checks.items()
    ]
    return table(rows, ["check", "rows", "max abs difference"])


def accuracy_table(results: dict) -> str:
    """Each network alone: accuracy on the halves and as the fixtures record."""
    fixtures = results["fixtures"]
    cascade = results["setups"]["cascade"]
    multi = results["setups"]["multi_exit_macs"]
    every_row = f"all {results['data']['n_test']} test rows acc % (fixtures.json)"
    rows = [
        {
            "network": name,
            "policy rows acc %": pct(cascade["stage_held_out_accuracies"][k]),
            "eval rows acc %": pct(cascade["stage_eval_accuracies"][k]),
            every_row: pct(fixtures[name]["fixture_test_accuracy"]),
            "MACs per row": f"{fixtures[name]['macs_per_row']:,}",
        }
        for k, name in enumerate(cascade["stage_names"])
    ]
    rows += [
        [
            f"multi-exit, exit {name!r}",
            pct(multi["stage_held_out_accuracies"][k]),
            pct(multi["stage_eval_accuracies"][k]),
            pct(fixtures["multi_exit"]["fixture_test_accuracy"][k]),
            f"{multi['cumulative_costs'][k]:,.0f}",
        ]
        for k, name in enumerate(results["config"]["exit_outputs"])
    ]
    return table(rows)


# ------------------------------------------------------------------ verdicts
def verdicts(results: dict) -> list[str]:
    t = results["targets"]
    wall, split = t["wall_clock"], t["split_equals_unsplit"]
    device = "CPU" if results["device"] == "cpu" else "GPU (CUDA)"
    within = (
        f"loss {wall['accuracy_loss_points']:+.2f} pt"
        if wall["point_within_loss"]
        else f"NO point within 0.5 pt (loss {wall['accuracy_loss_points']:+.2f} pt)"
    )
    others = ", ".join(
        f"{TITLES[k]} {v:.2f}" for k, v in wall["multi_exit_ratios"].items()
    )
    return [
        f"1. Measured {device} speed-up of the ONNX cascade at <= 0.5 point loss "
        f">= {wall['required_ratio']} x expected-cost speed-up at batch size "
        f"{wall['batch_size']}: {met(wall['met'])} - "
        f"measured {speed(wall['measured_speed_up'])}, expected "
        f"{speed(wall['expected_speed_up'])}, ratio {wall['ratio']:.2f} ({within}). "
        f"For the multi-exit network (not part of the target) the ratio is: "
        f"{others}.",
        f"2. The split multi-exit network's per-row result equals the unsplit "
        f"network's exit outputs: {met(split['met'])} - max "
        f"abs difference {split['max_abs_difference']:.2e} over "
        f"{split['n_rows_checked']:,} row checks (tolerance {split['tolerance']:g}).",
    ]


def observations(results: dict) -> list[str]:
    """What the numbers say, computed from them."""
    batches = results["batches"]
    largest, smallest = batches[-1], batches[0]
    lines = []
    for setup, t in largest["setups"].items():
        share = t["routing_overhead_us_per_row"] / t["adaptive_us_per_row"]
        lines.append(
            f"- {TITLES[setup]}, batch {largest['batch_size']}: measured "
            f"{speed(t['measured_speed_up'])} against {speed(t['expected_speed_up'])}"
            f" expected (ratio {t['ratio']:.2f}). The stages' own times at this "
            f"batch size predict {speed(t['stage_time_speed_up'])}; the rest, "
            f"{t['routing_overhead_us_per_row']:.2f} us per row, is routing "
            f"overhead: {100 * share:.0f} % of the adaptive model's "
            f"{t['adaptive_us_per_row']:.2f} us per row."
        )
    macs = results["setups"]["multi_exit_macs"]["costs"]
    segment_us = largest["setups"]["multi_exit_macs"]["stage_us_per_row"]
    mac_share = [c / sum(macs) for c in macs]
    time_share = [u / sum(segment_us) for u in segment_us]
    early_mac, early_time = 1 - mac_share[-1], 1 - time_share[-1]
    if early_time > 1.5 * early_mac:
        verdict = (
            "the early segments take a far larger share of the time than of the "
            "MACs, so the MAC-based expected speed-up overstates the time saved; "
            '`costs="auto"` measures it.'
        )
    else:
        verdict = "time is roughly in proportion to the MACs."
    lines.append(
        "- MACs versus time, multi-exit segments at batch "
        f"{largest['batch_size']}: {rates(mac_share)} % of the MACs, "
        f"{rates(time_share)} % of the time: {verdict}"
    )
    t = smallest["setups"]["cascade"]
    small, large = (
        t["stage_us_per_row"],
        largest["setups"]["cascade"]["stage_us_per_row"],
    )
    lines.append(
        f"- Batch {smallest['batch_size']}: the cascade takes "
        f"{t['adaptive_us_per_row']:.0f} us per row against "
        f"{t['full_us_per_row']:.0f} us for `large` alone (measured "
        f"{speed(t['measured_speed_up'])}); the stages alone take "
        + " / ".join(f"{u:.1f}" for u in small)
        + " us per row at this batch size against "
        + " / ".join(f"{u:.2f}" for u in large)
        + f" at batch {largest['batch_size']}, and routing adds "
        f"{t['routing_overhead_us_per_row']:.0f} us per row."
    )
    threads = results["default_threads"]
    if threads is not None:
        one = next(b for b in batches if b["batch_size"] == threads["batch_size"])
        parts = [
            f"{TITLES[setup]} {t['adaptive_seconds'] * 1e3:.1f} ms (full model "
            f"{t['full_seconds'] * 1e3:.1f} ms) against "
            f"{one['setups'][setup]['adaptive_seconds'] * 1e3:.1f} ms "
            f"({one['setups'][setup]['full_seconds'] * 1e3:.1f} ms)"
            for setup, t in threads["setups"].items()
        ]
        lines.append(
            f"- onnxruntime's default thread pools, batch {threads['batch_size']}, "
            "against one thread per session: "
            + "; ".join(parts)
            + ". Every session has its own pool, on "
            f"{results['environment']['cpu_count']} cores that other work may share."
        )
    return lines


def print_results(results: dict) -> None:
    blocks = [accuracy_table(results), setup_table(results)]
    blocks += [
        f"batch size {batch['batch_size']}, {batch['n_rows']} rows\n"
        + batch_table(batch)
        for batch in results["batches"]
    ]
    blocks.append(stage_time_table(results))
    threads = default_threads_table(results)
    if threads:
        blocks.append(f"default onnxruntime threads\n{threads}")
    blocks += [split_table(results), "\n".join(observations(results))]
    print_report(results, blocks, verdicts(results))


# ------------------------------------------------------------------ markdown
def _machine(env: dict) -> str:
    gpu = f"; GPU: {env['gpu']}" if env.get("gpu") else ""
    onnx = (
        f", onnx {env['onnx']}, onnxruntime {env['onnxruntime']} (device "
        f"{env['onnxruntime_device']}; available providers "
        f"{env['available_providers']}; requested {env['requested_providers']}){gpu}"
    )
    return machine_line(env, onnx, f"Threads: {env['threads']}")


def _providers_got(results: dict) -> str:
    got = {
        TITLES[setup]: sorted({str(p) for p in s["session_providers"]})
        for setup, s in results["setups"].items()
    }
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in got.items())


def gpu_lines(results: dict) -> list[str]:
    env = results["environment"]
    got = f"Providers the sessions got (`get_providers()`): {_providers_got(results)}."
    if results["device"] == "cuda":
        return [
            "This is the GPU run (`python -m benchmarks.run_onnx_gpu`): every "
            "session asked for `['CUDAExecutionProvider', 'CPUExecutionProvider']` "
            "and got CUDA first (checked; see the providers above), and the "
            "multi-exit network ran with IO binding (hand-on tensors stay on the "
            "GPU, rows selected there).",
            "",
            got,
        ]
    if env["cuda_usable"]:
        return [
            "A CUDA provider was usable on this machine, but this is the CPU run; "
            "the GPU figures come from `python -m benchmarks.run_onnx_gpu`, which "
            "writes `benchmarks/ONNX_GPU_RESULTS.md`.",
            "",
            got,
        ]
    return [
        f"No CUDA GPU was available to this run ({env['cuda_problem']}), so no "
        "GPU figures are recorded. `python -m benchmarks.run_onnx_gpu` runs the "
        "same code with `providers=['CUDAExecutionProvider', "
        "'CPUExecutionProvider']` and IO binding for the multi-exit network on a "
        "machine with `onnxruntime-gpu` and a CUDA GPU (it refuses to run "
        "otherwise) and writes `benchmarks/ONNX_GPU_RESULTS.md`.",
        "",
        got,
    ]


def how_to_read(results: dict) -> list[str]:
    config, data = results["config"], results["data"]
    rows = ", ".join(f"{n} rows at batch {b}" for b, n in config["timing_rows"].items())
    threads = config["intra_op_num_threads"]
    return [
        f"- Data: the digits test split ({data['n_test']} rows the networks never "
        f"saw), halved (stratified): the policy is learned on {data['n_policy']} "
        f"policy rows, the operating point is chosen and accuracy reported on "
        f"the other {data['n_eval']} evaluation rows. One evaluation row is "
        f"{data['points_per_eval_row']:.2f} accuracy points, so 'within 0.5 point' "
        "allows at most one more error than the full model, and accuracy "
        "differences of a point or two are noise.",
        f"- Operating point: the cheapest point of the fitted `frontier_` (the "
        f"policy refitted over its `cost_weight` grid) whose accuracy on the "
        f"evaluation rows is within {100 * config['loss']:g} point of the full "
        f"model's (else {100 * config['fallback_loss']:g} point), taken with "
        "`with_policy(cost_weight=...)`. Choosing on the evaluation rows flatters "
        "the accuracy a little; 'held-out-chosen' picks the point on the policy "
        "rows instead, as a user could, and shows its expected speed-up and "
        "evaluation accuracy. 'routing = offline': routing the evaluation rows "
        "gives every row the exit the policy gives it from all stages' "
        "probabilities, and the accuracy and cost `evaluate_frontier` computed "
        "for the point.",
        "- Full models: the cascade is compared with `large` alone; the "
        "multi-exit network with its unsplit graph in one session "
        "(`OnnxClassifier(..., output='logits')`, every layer and the two small "
        "exit heads). Each full model runs with the same `batch_size` "
        "(`OnnxClassifier(batch_size=...)`) as the adaptive model "
        "(`batch_size=...`, rows routed in batches).",
        "- Expected speed-up = cost of the full model alone (with measured "
        "costs: its own time, without the routing work `costs_` adds) / average "
        "cost per row of "
        "the timed rows' exits, in the units of `costs_`: seconds per row "
        '(`costs="auto"`, measured at fit on the policy rows: each stage\'s time '
        "per call and per row, with `cost_batch_size` the largest batch size "
        f"timed, {config['cost_batch_size']} rows, so that a stage's per-call "
        "part is spread over that many rows) or "
        "multiply-accumulates (the multi-exit default; the full network's MACs "
        "are the sum over segments). For the multi-exit network with measured "
        "costs the full cost is the sum of the segments' times, i.e. the split "
        "network run to the end ('split, no exit ms' shows that against the "
        "unsplit graph).",
        f"- Measured speed-up = wall time of the full model / wall time of the "
        f"adaptive model's `predict_proba` on the same rows, each the fastest of "
        f"{config['repeats']} runs after a warm-up, the runs taking turns. "
        f"Rows: the evaluation rows tiled ({rows}); the exits, hence the "
        "expected speed-up, are those of the timed rows. Every onnxruntime "
        f"session has `intra_op_num_threads={threads}` (one table uses "
        "onnxruntime's defaults). The machine may have been shared with other "
        "work.",
        "- 'predicted from stage times': the full model's time over the sum, "
        "over stages, of the share of rows reaching the stage x that stage's "
        "time per row when run alone at this batch size (the stage times "
        "table). It includes each call's fixed overhead at this batch size "
        "(`costs_` spreads it over `cost_batch_size` rows, right at that batch "
        "size only) but no routing overhead (which `costs_` includes). 'routing "
        "overhead' = (adaptive time - that prediction) per row: the exit "
        "policy (features, logistic-regression scores), selecting the rows "
        "that go on, input validation of each call and the batching loop.",
        "- Split check: probabilities (softmax of each exit's output) from the "
        "split network versus the unsplit graph for the same row, on every exit "
        "of every test row (with and without IO binding) and on every routed "
        "row of the timed runs at the exit that answered it.",
    ]


def markdown(results: dict) -> str:
    """The whole results markdown (``ONNX_RESULTS.md`` or the GPU one)."""
    device = "CPU" if results["device"] == "cpu" else "GPU (CUDA)"
    title = f"ONNX stages benchmark results ({device})"
    parts = [
        *preamble(title, results, _machine(results["environment"])),
        *section("Targets", verdicts(results)),
        *section("Observations", observations(results)),
        *section("GPU", gpu_lines(results)),
        *section("How to read this", how_to_read(results)),
        *section("Networks alone", accuracy_table(results)),
        *section("Operating points (evaluation rows)", setup_table(results)),
    ]
    for batch in results["batches"]:
        tiled = " (evaluation rows tiled)" if batch["tiled"] else ""
        parts += section(
            f"Batch size {batch['batch_size']}",
            f"{batch['n_rows']} rows{tiled}. Times are for all rows.",
            batch_table(batch),
        )
    parts += section("Stage times", stage_time_table(results))
    threads = default_threads_table(results)
    if threads:
        d = results["default_threads"]
        parts += section(
            "Default onnxruntime threads",
            f"One comparison at batch size {d['batch_size']} ({d['n_rows']} rows) "
            "with every session left at onnxruntime's default thread pools; the "
            "same policies (refitted with the single-thread `costs_` given), so "
            "the expected speed-ups are those of the single-thread costs.",
            threads,
        )
    split = results["split_check"]
    parts += section(
        "Split versus unsplit network",
        f"Compared: {split['compared']}. IO binding in the timed runs: "
        f"{split['io_binding_in_timed_runs']}.",
        split_table(results),
    )
    return "\n".join(parts)
