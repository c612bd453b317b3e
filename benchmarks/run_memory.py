"""Peak memory and time of a cascade's predict on many rows, against its stages'.

Usage::

    python -m benchmarks.run_memory            # 10 million rows (a few minutes)
    python -m benchmarks.run_memory --quick    # 200,000 rows, writes nothing

A cascade of ``LogisticRegression`` then ``HistGradientBoostingClassifier``
(30 iterations; both fitted on 60,000 ``make_classification`` rows of 50
features, frozen; the policy learned on 20,000 more, for a budget of 5 of the
full cost 11) predicts on N rows (20,000 test rows tiled, with a little noise:
10 million x 50 float64 = 4 GB). For each call the peak of memory traced by
``tracemalloc`` (numpy's buffers included) above what was allocated before the
call is measured, and, in another call without tracing, the wall time.
Compared: each stage's own ``predict_proba`` on all rows, the cascade with the
default ``batch_size`` (batches of 65,536 rows) and the cascade with one batch
of all rows (the behaviour before batches were the default).

Writes ``benchmarks/results/memory.json`` and ``benchmarks/MEMORY_RESULTS.md``.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.engine._routing import DEFAULT_BATCH_SIZE

from ._tables import (
    cell,
    command_line,
    environment,
    machine_line,
    preamble,
    section,
    table,
    write_json,
    write_markdown,
)

HERE = Path(__file__).resolve().parent
N_FEATURES = 50


def _peak_and_seconds(call) -> tuple[int, float]:
    """Peak traced bytes above the start of ``call()``, and its untraced time."""
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - before, seconds


def _data(n_rows: int, seed: int = 0):
    X, y = make_classification(
        n_samples=100_000,
        n_features=N_FEATURES,
        n_informative=20,
        n_classes=3,
        class_sep=0.8,
        random_state=seed,
    )
    X_train, y_train = X[:60_000], y[:60_000]
    X_policy, y_policy = X[60_000:80_000], y[60_000:80_000]
    test = X[80_000:]
    rng = np.random.default_rng(seed)
    tiles = -(-n_rows // len(test))
    X_big = np.tile(test, (tiles, 1))[:n_rows]
    X_big += rng.normal(scale=0.01, size=X_big.shape)
    return X_train, y_train, X_policy, y_policy, X_big


def run(quick: bool = False) -> dict:
    """Measure (nothing is written)."""
    begin = time.perf_counter()
    n_rows = 200_000 if quick else 10_000_000
    X_train, y_train, X_policy, y_policy, X_big = _data(n_rows)
    lr = LogisticRegression(max_iter=500).fit(X_train, y_train)
    hgb = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    hgb.fit(X_train, y_train)
    cascade = AdaptiveCascadeClassifier(
        [("lr", FrozenEstimator(lr)), ("hgb", FrozenEstimator(hgb))],
        costs=[1.0, 10.0],
        budget=5.0,
        random_state=0,
    ).fit(X_policy, y_policy)
    one_batch = AdaptiveCascadeClassifier(**cascade.get_params(deep=False)).set_params(
        batch_size=n_rows
    )
    one_batch.fit(X_policy, y_policy)
    calls = {
        "LogisticRegression.predict_proba": lambda: lr.predict_proba(X_big),
        "HistGradientBoostingClassifier.predict_proba": lambda: hgb.predict_proba(
            X_big
        ),
        f"cascade, default batches ({DEFAULT_BATCH_SIZE} rows)": (
            lambda: cascade.predict_proba(X_big)
        ),
        "cascade, one batch of all rows": lambda: one_batch.predict_proba(X_big),
    }
    measured = {}
    for name, call in calls.items():
        peak, seconds = _peak_and_seconds(call)
        measured[name] = {"peak_bytes": peak, "seconds": seconds}
        print(f"{name}: peak {peak / 2**20:.1f} MiB, {seconds:.2f} s", flush=True)
    head = X_big[:200_000]
    exits = cascade.predict_exit(head)
    same = np.array_equal(exits, one_batch.predict_exit(head)) and np.array_equal(
        cascade.predict(head), one_batch.predict(head)
    )
    return {
        "command": "python -m benchmarks.run_memory" + (" --quick" if quick else ""),
        "n_rows": n_rows,
        "n_features": N_FEATURES,
        "x_bytes": X_big.nbytes,
        "default_batch_size": DEFAULT_BATCH_SIZE,
        "exit_rates_first_200k": np.bincount(exits, minlength=2) / len(exits),
        "batches_give_same_answers": bool(same),
        "calls": measured,
        "environment": environment(),
        "total_seconds": time.perf_counter() - begin,
    }


def markdown(results: dict) -> str:
    calls = results["calls"]
    stage_peak = max(
        calls[name]["peak_bytes"] for name in calls if not name.startswith("cascade")
    )
    hgb_seconds = calls["HistGradientBoostingClassifier.predict_proba"]["seconds"]
    rows = [
        {
            "call": name,
            "peak extra memory (MiB)": cell(value["peak_bytes"] / 2**20),
            "/ largest stage's peak": f"{value['peak_bytes'] / stage_peak:.2f}x",
            "wall time (s)": cell(value["seconds"]),
            "/ HGB alone": f"{value['seconds'] / hgb_seconds:.2f}x",
        }
        for name, value in calls.items()
    ]
    rates = "/".join(f"{r:.1%}" for r in results["exit_rates_first_200k"])
    return "\n".join(
        preamble(
            "Memory of predict on many rows",
            results,
            machine_line(
                results["environment"],
                threads="Default threads",
                timing="each time is of one call",
            ),
        )
        + section(
            f"{results['n_rows']:,} rows x {results['n_features']} features "
            f"(X is {results['x_bytes'] / 2**30:.2f} GiB)",
            table(rows),
            f"Exit rates (lr/hgb) on the first 200,000 rows: {rates} (a budget of "
            "5 of the full cost 11 per row). Default batches and one batch give "
            "the same exits and predictions: "
            f"{results['batches_give_same_answers']}.",
            "Peak extra memory: the most memory traced by tracemalloc during the "
            "call above what was allocated before it (X itself is not counted; "
            "the returned probabilities are). Wall time: one call without tracing, "
            "on a machine other processes may share.",
        )
    )


def main(argv=None) -> None:
    args = command_line(__doc__).parse_args(argv)
    results = run(quick=args.quick)
    print(markdown(results))
    if not args.quick:
        write_json(HERE / "results" / "memory.json", results)
        write_markdown(HERE / "MEMORY_RESULTS.md", markdown(results) + "\n")


if __name__ == "__main__":
    main()
