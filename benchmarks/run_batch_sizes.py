"""Speed-up by batch size: measured against expected, with the cost per call.

Usage::

    python -m benchmarks.run_batch_sizes            # about 4 minutes
    python -m benchmarks.run_batch_sizes --quick    # smoke run, writes nothing

Two cascades of frozen stages, each fitted once per batch size ``B`` with
``costs="auto"`` (each stage timed inside the cascade, with the routing work
at it, at 1 to 4,096 rows and at 8,192 for ``B`` above 4,096, the line
``per_call + n * per_row`` fitted) and ``cost_batch_size=B``,
default policy and ``cost_weight``:

* **digits trees**: the digits benchmark's stages (logistic regression, a
  100-tree random forest, 500 extra trees), fitted on two thirds of the train
  rows; the policy is learned on the other third; timed on the 899 test rows,
  tiled.
* **ONNX CNNs**: the tiny, medium and large digits networks of
  ``tests/fixtures/onnx`` on CPU (one thread); the policy is learned on half
  of the digits test split, timed on the other half, tiled.

For each ``B``, the rows are cut in full batches of ``B`` rows and each batch
goes through ``predict_proba`` alone; **measured** is the last stage alone's
time over the cascade's (fastest of 5 runs after a warm-up, the two taking
turns), **expected** is
the last stage alone's cost at ``B`` (its measured time, without the routing
work a cascade adds) over the cascade's expected cost of a batch of ``B`` of
these rows (their exits, with the call of each stage that a
row of the batch reaches paid once per batch). **Per-row model** is what the
previous cost model expected for the same exits: one cost per row, a stage's
time on 1,000 rows divided by 1,000.

Writes ``benchmarks/results/batch_sizes.json`` and
``benchmarks/BATCH_SIZE_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skadaptive import AdaptiveCascadeClassifier

from . import datasets
from . import onnx_bench as onnx
from ._tables import cell, described_report, environment, run_and_write, table
from .timing import expected_speed_up, tile_rows

BATCH_SIZES = (1, 16, 256, 1024, 4096, None)  # None: every timed row in one call
#: Rows timed per batch size: a whole number of batches, a few seconds each.
ROWS = {1: 300, 16: 1600, 256: 5120, 1024: 10240, 4096: 12288, None: 10000}
QUICK_ROWS = {1: 20, 16: 64, 256: 512, 1024: 1024, 4096: 4096, None: 1000}
REPEATS = 5


def _digits_trees(quick: bool):
    bench = datasets.load("digits", quick=quick)
    X_fit, X_val, y_fit, y_val = train_test_split(
        bench.X_train,
        bench.y_train,
        test_size=1 / 3,
        stratify=bench.y_train,
        random_state=datasets.SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stages = [
            (name, FrozenEstimator(clone(stage).fit(X_fit, y_fit)))
            for name, stage in bench.stages
        ]
    return stages, X_val, y_val, bench.X_test, bench.y_test


def _onnx_cnns(quick: bool):
    config = onnx.configuration(quick)
    split = onnx.load_split()
    stages = [
        (name, FrozenEstimator(onnx.onnx_classifier(name, config["providers"], 1)))
        for name in onnx.CASCADE_MODELS
    ]
    return stages, split.X_policy, split.y_policy, split.X_eval, split.y_eval


SETUPS = {"digits trees": _digits_trees, "ONNX CNNs": _onnx_cnns}


def _in_batches(predict, X, batch_size):
    def run():
        for start in range(0, len(X), batch_size):
            predict(X[start : start + batch_size])

    return run


def _per_row_model_cost(cascade, exit_stage) -> tuple[float, float]:
    """The previous model: time on 1,000 rows / 1,000, no part per call."""
    per_row = cascade._alone_seconds(1000)  # a cascade's stages: increments
    rates = np.bincount(exit_stage, minlength=len(per_row)) / len(exit_stage)
    return float(per_row[-1]), float(rates @ np.cumsum(per_row))


def measure(name: str, quick: bool) -> list[dict]:
    stages, X_policy, y_policy, X_eval, y_eval = SETUPS[name](quick)
    rows_for = QUICK_ROWS if quick else ROWS
    last = stages[-1][1]
    points = []
    for batch_size in BATCH_SIZES:
        n_rows = rows_for[batch_size]
        size = n_rows if batch_size is None else batch_size
        X_rows = tile_rows(X_eval, n_rows)[:n_rows]
        y_rows = tile_rows(y_eval, n_rows)[:n_rows]
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", UserWarning)  # unordered-cost warning
            cascade = AdaptiveCascadeClassifier(
                stages, costs="auto", cost_batch_size=size, random_state=0
            ).fit(X_policy, y_policy)
        exit_stage = cascade.predict_exit(X_rows)
        expected = expected_speed_up(cascade, exit_stage)
        old_last, old_cost = _per_row_model_cost(cascade, exit_stage)
        with threadpool_limits(limits=1):
            best = onnx.fastest(
                {
                    "full": _in_batches(last.predict_proba, X_rows, size),
                    "ours": _in_batches(cascade.predict_proba, X_rows, size),
                },
                REPEATS,
            )
        full_s, ours_s = best["full"], best["ours"]
        measured = full_s / ours_s
        points.append(
            {
                "batch_size": "all" if batch_size is None else batch_size,
                "rows_timed": n_rows,
                "calls": n_rows // size,
                "costs_per_call_ms": (cascade.costs_per_call_ * 1e3).tolist(),
                "costs_per_row_us": (cascade.costs_per_row_ * 1e6).tolist(),
                "deepest_stage": int(cascade.deepest_stage_),
                "exit_rates": (
                    np.bincount(exit_stage, minlength=len(stages)) / n_rows
                ).tolist(),
                "last_stage_ms_per_call": full_s / (n_rows // size) * 1e3,
                "cascade_ms_per_call": ours_s / (n_rows // size) * 1e3,
                "measured_speed_up": measured,
                "expected_speed_up": expected,
                "ratio": measured / expected,
                "per_row_model_expected": old_last / old_cost,
                "per_row_model_ratio": measured / (old_last / old_cost),
                "cascade_accuracy": float(np.mean(cascade.predict(X_rows) == y_rows)),
                "last_stage_accuracy": float(
                    np.mean(
                        cascade.classes_[last.predict_proba(X_rows).argmax(1)] == y_rows
                    )
                ),
            }
        )
        print(
            f"{name:12s} B={points[-1]['batch_size']!s:>5} measured {measured:5.2f}x "
            f"expected {expected:5.2f}x ratio {measured / expected:4.2f} (per-row "
            f"model {points[-1]['per_row_model_ratio']:4.2f}) deepest "
            f"{cascade.deepest_stage_}",
            flush=True,
        )
    return points


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    setups = {name: measure(name, quick) for name in SETUPS}
    return {
        "command": "python -m benchmarks.run_batch_sizes",
        "total_seconds": time.perf_counter() - start,
        "environment": environment(
            threads="BLAS/OpenMP limited to 1 thread (fit and timing), ONNX "
            "sessions 1 thread"
        ),
        "quick": quick,
        "setups": setups,
    }


def markdown(results: dict) -> str:
    blocks = []
    for name, points in results["setups"].items():
        rows = [
            (
                p["batch_size"],
                p["calls"],
                " / ".join(f"{c:.3f}" for c in p["costs_per_call_ms"]),
                " / ".join(f"{c:.2f}" for c in p["costs_per_row_us"]),
                p["deepest_stage"],
                " / ".join(f"{100 * r:.1f}" for r in p["exit_rates"]),
                cell(p["last_stage_ms_per_call"]),
                cell(p["cascade_ms_per_call"]),
                f"{p['measured_speed_up']:.2f}x",
                f"{p['expected_speed_up']:.2f}x",
                f"{p['ratio']:.2f}",
                f"{p['per_row_model_expected']:.2f}x",
                f"{p['per_row_model_ratio']:.2f}",
                f"{100 * p['cascade_accuracy']:.1f} / "
                f"{100 * p['last_stage_accuracy']:.1f}",
            )
            for p in points
        ]
        blocks.append(f"### {name}\n")
        blocks.append(
            table(
                rows,
                (
                    "batch size",
                    "calls",
                    "per call ms (stages)",
                    "per row us (stages)",
                    "deepest stage",
                    "exit % per stage",
                    "last stage ms/call",
                    "cascade ms/call",
                    "measured",
                    "expected",
                    "ratio",
                    "per-row model expected",
                    "its ratio",
                    "accuracy % cascade / last",
                ),
            )
        )
        blocks.append("")
    body = "\n".join(blocks)
    return described_report("Speed-up by batch size", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(
        __doc__, run, markdown, "batch_sizes.json", "BATCH_SIZE_RESULTS.md", argv
    )


if __name__ == "__main__":
    main()
