"""Combined answers against stage answers: the cascade benchmarks' frontiers.

Usage::

    python -m benchmarks.run_combined            # full run (about 11 minutes)
    python -m benchmarks.run_combined --quick    # smoke run, writes nothing

For each cascade benchmark dataset (the stages and split of
``python -m benchmarks.run_cascade``, fitted once and cached with
``memory=``), the **default** estimator is fitted twice, with
``answer="stage"`` and ``answer="combined"``, nothing else changed (the
default policy). Costs are declared, the same for both and for every fit:
the per-row costs of ``python -m benchmarks.run_budgets`` (the medians of
four measured ``costs="auto"`` runs), so that the two answer kinds are
compared at the same budgets on the same costs; a fit with measured costs
times them anew, and at a budget near the first stage's cost that noise
alone moved the 5 % point of make_classification by 17 points between runs.
Everything below is measured on the test rows, which neither the stages, the
combiners nor the policies saw:

* **every row at the last exit**: the last exit's accuracy with each answer
  kind (the combined one is the combiner over all the stages), against the
  best single stage (the most accurate stage alone on the test rows);
* **budgets**: both estimators fitted with the same ``budget=`` (fractions of
  the stage-answer estimator's full cost, ``cumulative_costs_[-1]``, from
  the first that both can meet: the first stage's cost), test
  accuracy and measured average cost per row of each (``evaluate_frontier``'s
  ``accuracy_at_fit``/``cost_at_fit``);
* **no-loss speed-up**: the cheapest of those budgets at which the combined
  estimator's test accuracy is at least the best single stage's, and the best
  single stage's cost over its average cost there;
* **frontier**: ``evaluate_frontier`` of both (the ``cost_weight`` grid of
  ``frontier_``), as points of (test cost, test accuracy);
* **ceiling**: what any of the package's combiners could give at the last
  exit, picked on the test rows (so an upper bound, not a figure a user
  gets): each kind fitted on all the cross-fitted policy rows of the
  stage-answer estimator and scored on the test rows, against the best
  single stage; where no kind is above it, no choice of combiner could meet
  "combined above the best single stage" on that dataset;
* **what combining costs**: what each stage costs inside the cascade beyond
  its time alone with ``costs="auto"`` (the routing work, the combiners'
  included, and running between other stages; a difference of two timings,
  so it can be negative), from one more fit of each estimator with measured
  costs; it is not charged in the declared costs.

Writes ``benchmarks/results/combined.json`` and
``benchmarks/COMBINED_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skadaptive.stages._combined import KINDS, ExitCombiner, log_probas

from . import datasets
from ._tables import described_report, pct, pt, run_and_write, table
from ._tables import environment as machine
from .ours import RecordingMemory, make_cascade
from .run_budgets import CASCADE_COSTS

HERE = Path(__file__).resolve().parent
CACHE = HERE / "_cache"
FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
ANSWERS = ("stage", "combined")


def _fit(bench, answer, memory, config, **params):
    cascade = make_cascade(bench.stages, memory, **config, answer=answer, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cascade.fit(bench.X_train, bench.y_train)


def _at_fit(estimator, bench) -> dict:
    test = estimator.evaluate_frontier(bench.X_test, bench.y_test)
    return test, {
        "accuracy": float(test["accuracy_at_fit"]),
        "cost": float(test["cost_at_fit"]),
        "exit_rates": test["exit_rates_at_fit"].tolist(),
    }


def _dataset(name: str, quick: bool) -> dict:
    bench = datasets.load(name, quick=quick)
    config = {"cv": 2, "n_jobs": 1} if quick else {"cv": 3, "n_jobs": 2}
    memory = RecordingMemory(str(CACHE / ("quick" if quick else name)), verbose=0)
    y_test = np.searchsorted(np.unique(bench.y_train), bench.y_test)
    costs = list(CASCADE_COSTS[name])
    fitted = {
        a: _fit(bench, a, memory, config, random_state=0, costs=costs) for a in ANSWERS
    }
    measured = {a: _fit(bench, a, memory, config, random_state=0) for a in ANSWERS}
    routing = {
        a: fit._cost_lines(fit.cost_batch_size_)[2] for a, fit in measured.items()
    }
    stage_est = fitted["stage"]
    ceiling = _ceiling(stage_est, bench, y_test)
    single = [
        float(np.mean(np.argmax(s.predict_proba(bench.X_test), axis=1) == y_test))
        for s in stage_est.estimators_
    ]
    best = int(np.argmax(single))
    # Each stage alone costs its own cost (cascade stages are independent).
    best_cost = float(stage_est._alone_costs(stage_est.costs_)[best])
    result = {
        "stages": [n for n, _ in bench.stages],
        "single_stage_accuracy": single,
        "best_stage": best,
        "best_stage_cost": best_cost,
        "ceiling": ceiling,
        "answers": {},
    }
    full = stage_est.cumulative_costs_[-1]
    # Budgets below the first stage's cost cannot be met (an error): left out.
    first = max(e.cumulative_costs_[0] for e in fitted.values())
    fractions = [f for f in FRACTIONS if f * full >= first]
    result["fractions"] = fractions
    for answer, estimator in fitted.items():
        frontier, default = _at_fit(estimator, bench)
        budgets = []
        for fraction in fractions:
            fit = _fit(
                bench,
                answer,
                memory,
                config,
                random_state=0,
                costs=costs,
                budget=full * fraction,
            )
            budgets.append({"fraction": fraction, **_at_fit(fit, bench)[1]})
        matching = [b for b in budgets if b["accuracy"] >= single[best]]
        cheapest = min(matching, key=lambda b: b["fraction"]) if matching else None
        result["answers"][answer] = {
            "kinds": [c.kind for c in estimator.combiners_],
            "last_exit_accuracy": float(frontier["exit_accuracies"][-1]),
            "exit_accuracies": frontier["exit_accuracies"].tolist(),
            "full_cost": float(estimator.cumulative_costs_[-1]),
            # What each stage costs inside the cascade beyond its time alone
            # (seconds per row and per call): the routing work, with combined
            # answers the combiners' work too.
            "routing_per_row": routing[answer].per_row.tolist(),
            "routing_per_call": routing[answer].per_call.tolist(),
            "default": default,
            "budgets": budgets,
            "no_loss": None
            if cheapest is None
            else {**cheapest, "speed_up": best_cost / cheapest["cost"]},
            "frontier": {
                "cost_weight": frontier["cost_weight"].tolist(),
                "accuracy": frontier["accuracy"].tolist(),
                "cost": frontier["expected_cost"].tolist(),
            },
        }
    return result


def _ceiling(estimator, bench, y_test) -> dict:
    """Each combiner kind at the last exit, fitted on every policy row (the
    stages' cross-fitted probabilities), scored on the test rows."""
    probas, y_policy, weight = estimator._policy_rows()
    last = len(probas) - 1
    test = [stage.predict_proba(bench.X_test) for stage in estimator.estimators_]
    logs = [log_probas(p) for p in probas]
    test_logs = [log_probas(p) for p in test]
    n_classes = probas[0].shape[1]
    accuracy = {}
    for kind in KINDS:
        combiner = ExitCombiner(last, kind).fit(logs, y_policy, weight, n_classes)
        answer = combiner.combine([log.copy() for log in test_logs])
        accuracy[kind] = float(np.mean(np.argmax(answer, axis=1) == y_test))
    return accuracy


def _frontier_at_or_above(stage: dict, combined: dict) -> list:
    """For each stage-answer frontier point, the best combined accuracy at a
    cost no higher; the points where it is lower."""
    below = []
    for cost, accuracy in zip(stage["cost"], stage["accuracy"]):
        reachable = [
            a for c, a in zip(combined["cost"], combined["accuracy"]) if c <= cost
        ]
        if not reachable or max(reachable) < accuracy:
            below.append((cost, accuracy, max(reachable, default=None)))
    return below


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    names = ["digits"] if quick else list(datasets.DATASETS)
    with threadpool_limits(limits=1, user_api="blas"):
        results = {name: _dataset(name, quick) for name in names}
    for result in results.values():
        stage, combined = (result["answers"][a] for a in ANSWERS)
        result["combined_last_above_best_stage"] = (
            combined["last_exit_accuracy"]
            > result["single_stage_accuracy"][result["best_stage"]]
        )
        result["budgets_combined_at_or_above"] = all(
            c["accuracy"] >= s["accuracy"]
            for s, c in zip(stage["budgets"], combined["budgets"])
        )
        result["frontier_points_below"] = _frontier_at_or_above(
            stage["frontier"], combined["frontier"]
        )
    return {
        "command": "python -m benchmarks.run_combined" + (" --quick" if quick else ""),
        "total_seconds": time.perf_counter() - start,
        "environment": machine(threads="BLAS limited to 1 thread"),
        "quick": quick,
        "fractions": list(FRACTIONS),
        "datasets": results,
    }


def _at_or_above(stage: dict, combined: dict) -> int:
    """Budgets at which the combined answers are at least as accurate."""
    pairs = zip(stage["budgets"], combined["budgets"])
    return sum(c["accuracy"] >= s["accuracy"] for s, c in pairs)


def markdown(results: dict) -> str:
    blocks = []
    summary = []
    for name, r in results["datasets"].items():
        best = r["single_stage_accuracy"][r["best_stage"]]
        stage, combined = (r["answers"][a] for a in ANSWERS)
        no_loss = combined["no_loss"]
        summary.append(
            (
                name,
                f"{r['stages'][r['best_stage']]} {pct(best)}",
                pct(stage["last_exit_accuracy"]),
                pct(combined["last_exit_accuracy"]),
                pt(combined["last_exit_accuracy"] - best),
                " / ".join(combined["kinds"]),
                ", ".join(f"{k} {pct(a)}" for k, a in r["ceiling"].items()),
                "-"
                if no_loss is None
                else f"{no_loss['fraction']:.0%} ({no_loss['speed_up']:.2f}x)",
                f"{_at_or_above(stage, combined)} of {len(stage['budgets'])}",
            )
        )
        rows = [
            (
                f"{s['fraction']:.0%}",
                pct(s["accuracy"]),
                pct(c["accuracy"]),
                pt(c["accuracy"] - s["accuracy"]),
                f"{s['cost'] / r['answers']['stage']['full_cost']:.3f}",
                f"{c['cost'] / r['answers']['stage']['full_cost']:.3f}",
            )
            for s, c in zip(stage["budgets"], combined["budgets"])
        ]
        added = np.subtract(combined["routing_per_row"], stage["routing_per_row"])
        blocks += [
            f"### {name}",
            "",
            "Routing work measured with each stage, microseconds per row, stage "
            "answers / combined answers: "
            + "; ".join(
                f"{n} {1e6 * s:.3f} / {1e6 * c:.3f}"
                for n, s, c in zip(
                    r["stages"], stage["routing_per_row"], combined["routing_per_row"]
                )
            )
            + f" (difference {', '.join(f'{1e6 * a:+.3f}' for a in added)}; "
            "each fit times its routing anew, so part of it is timing noise).",
            "",
            table(
                rows,
                (
                    "budget (of full)",
                    "stage answers %",
                    "combined %",
                    "difference",
                    "stage cost / full",
                    "combined cost / full",
                ),
            ),
            "",
            f"Frontier (`cost_weight` grid): {len(r['frontier_points_below'])} of "
            f"{len(stage['frontier']['cost'])} stage-answer points have no "
            "combined point at least as accurate at no higher test cost.",
            "",
        ]
    head = table(
        summary,
        (
            "dataset",
            "best single stage %",
            "last exit, stage answers %",
            "last exit, combined %",
            "combined - best stage",
            "combiner per exit",
            "ceiling: last exit's kinds on test %",
            "no-loss budget (speed-up)",
            "budgets where combined >= stage (ties count)",
        ),
    )
    body = "\n".join(["## Summary", "", head, "", "## By budget", "", *blocks])
    return described_report("Combined answers", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "combined.json", "COMBINED_RESULTS.md", argv)


if __name__ == "__main__":
    main()
