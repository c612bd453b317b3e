"""What routing itself costs, per row and per exit, with stages that cost nothing.

Usage::

    python -m benchmarks.run_routing            # about a minute
    python -m benchmarks.run_routing --quick    # smoke run, writes nothing

The stages here return precomputed probabilities (a lookup of the running
rows), so every second measured is the engine's and the policy's own work at
each exit: checking the stage's probabilities, the policy's features and
scores on the running rows, writing the answers of the rows that exit, and
compacting the rows (and their history) that go on. Five stages; the policy is
learned (``within_budget`` at 30 % of the full cost) on other rows of the same
kind; ``route`` is timed on 10,000 rows (fastest of 7 runs after a warm-up).

* **per row and exit**: the time over the rows that reach each decision,
  summed over the decisions (a row that runs three stages counts three).
* **per call**: a 1-row ``route`` (fixed work per exit, whatever the rows).

Writes ``benchmarks/results/routing.json`` and ``benchmarks/ROUTING_RESULTS.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from skadaptive.engine import route
from skadaptive.policies import make_policy_search

from ._tables import cell, described_report, environment, run_and_write, table
from .timing import best_time

HERE = Path(__file__).resolve().parent
N_STAGES = 5
FAMILIES = ("linear", "eenet", "max_proba")
CLASSES = (2, 5, 10)


class _Lookup:
    """Stages that cost nothing: each returns its precomputed probabilities."""

    rows_in_state = True

    def __init__(self, probas):
        self.probas = probas
        self.n_stages = len(probas)

    def run_stage(self, stage, X_rows, state):
        rows = np.arange(len(X_rows)) if stage == 0 else state
        return self.probas[stage].take(rows, axis=0), rows

    def keep_rows(self, state, mask):
        return state[mask]


def _stage_probas(n_rows: int, n_classes: int, rng):
    """Stages that are right more often as they go on, with matching confidence."""
    y = rng.integers(0, n_classes, n_rows)
    probas = []
    for stage in range(N_STAGES):
        sharpness = 0.5 + 1.5 * stage
        logits = rng.normal(size=(n_rows, n_classes))
        logits[np.arange(n_rows), y] += sharpness
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        probas.append(proba / proba.sum(axis=1, keepdims=True))
    return probas, y


def measure(family: str, n_classes: int, n_rows: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    fit_probas, y = _stage_probas(5000, n_classes, rng)
    cumulative = np.cumsum(np.full(N_STAGES, 1.0 / N_STAGES))
    search = make_policy_search(family, fit_probas, y, cumulative)
    policy = search.within_budget(0.3).policy
    probas, _ = _stage_probas(n_rows, n_classes, rng)
    source = _Lookup(probas)
    X = np.zeros((n_rows, 1))
    seconds = best_time(lambda: route(source, policy, X, n_classes=n_classes), repeats)
    exit_stage = policy.exit_stage(probas)
    # Rows that reach stage k (each runs the check, the decision and the
    # compaction there).
    row_exits = int(sum((exit_stage >= k).sum() for k in range(N_STAGES)))
    one_row = _Lookup([p[:1] for p in probas])
    call_seconds = best_time(
        lambda: route(one_row, policy, X[:1], n_classes=n_classes), repeats
    )
    return {
        "family": family,
        "n_classes": n_classes,
        "n_rows": n_rows,
        "seconds": seconds,
        "row_exits": row_exits,
        "us_per_row_exit": 1e6 * seconds / row_exits,
        "one_row_call_us": 1e6 * call_seconds,
        "exit_rates": (np.bincount(exit_stage, minlength=N_STAGES) / n_rows).tolist(),
    }


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    n_rows, repeats = (2000, 3) if quick else (10_000, 7)
    rows = [
        measure(family, n_classes, n_rows, repeats)
        for family in FAMILIES
        for n_classes in CLASSES
    ]
    return {
        "command": "python -m benchmarks.run_routing",
        "environment": environment(threads="numpy single-threaded work only"),
        "rows": rows,
        "total_seconds": time.perf_counter() - start,
    }


def markdown(results: dict) -> str:
    body = table(
        [
            {
                "policy": r["family"],
                "classes": r["n_classes"],
                "rows": r["n_rows"],
                "route ms": cell(1e3 * r["seconds"]),
                "rows x exits": r["row_exits"],
                "us per row and exit": f"{r['us_per_row_exit']:.3f}",
                "1-row call us": f"{r['one_row_call_us']:.0f}",
            }
            for r in results["rows"]
        ]
    )
    return described_report("Routing cost", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "routing.json", "ROUTING_RESULTS.md", argv)


if __name__ == "__main__":
    main()
