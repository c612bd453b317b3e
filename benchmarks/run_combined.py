"""Combined answers against stage answers: the cascade benchmarks' frontiers.

Usage::

    python -m benchmarks.run_combined            # full run (about 17 minutes)
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
Every dataset is run on three splits (seeds 0, 1 and 2 of the split and the
stages; ``make_classification`` draws a new problem with its seed): one split's
difference between the answer kinds is one draw, within about 0.1-0.3 point
of noise, so the targets are judged on the means over the splits, and every
split's figure is shown. Everything below is measured on the test rows, which
neither the stages, the combiners nor the policies saw:

* **every row at the last exit**: the last exit's accuracy with each answer
  kind (the combined one is the combiner over all the stages), against the
  best single stage (the most accurate stage alone on the test rows);
* **budgets**: both estimators fitted with the same ``budget=`` (fractions of
  the stage-answer estimator's full cost, ``cumulative_costs_[-1]``, from
  the first that both can meet: the first stage's cost), test
  accuracy and measured average cost per row of each (``evaluate_frontier``'s
  ``accuracy_at_fit``/``cost_at_fit``), and what the combined estimator's
  policy answers with there (``answer_``: a budget keeps the combined
  answers only where they are clearly more accurate out of sample on the
  policy rows, else it answers as ``answer="stage"`` does, so a difference
  of exactly 0 is that choice);
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
#: Seeds of the data split and the stages; every dataset runs once per seed.
SEEDS = (0, 1, 2)


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


def _dataset(name: str, quick: bool, seed: int = 0) -> dict:
    with datasets.seeded(seed):
        bench = datasets.load(name, quick=quick)
    config = {"cv": 2, "n_jobs": 1} if quick else {"cv": 3, "n_jobs": 2}
    folder = ("quick" if quick else name) + (f"-seed{seed}" if seed else "")
    memory = RecordingMemory(str(CACHE / folder), verbose=0)
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
        "seed": seed,
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
            budgets.append(
                {
                    "fraction": fraction,
                    **_at_fit(fit, bench)[1],
                    # What the budget's policy answers with (answer_): with
                    # answer="combined", the combined answers only where they
                    # were clearly more accurate out of sample.
                    "answer_kept": fit.answer_,
                }
            )
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


def _judged(result: dict) -> dict:
    """One split's verdicts: the combined last exit against the best stage,
    the budgets and the frontier against the stage answers."""
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
    return result


def over_seeds(runs: list[dict]) -> dict:
    """A dataset's figures averaged over its splits, and the targets on them."""
    best = [r["single_stage_accuracy"][r["best_stage"]] for r in runs]
    last = {a: [r["answers"][a]["last_exit_accuracy"] for r in runs] for a in ANSWERS}
    above_best = np.subtract(last["combined"], best)
    budget = {
        a: np.array([[b["accuracy"] for b in r["answers"][a]["budgets"]] for r in runs])
        for a in ANSWERS
    }
    cost = {
        a: np.array([[b["cost"] for b in r["answers"][a]["budgets"]] for r in runs])
        for a in ANSWERS
    }
    full = np.array([r["answers"]["stage"]["full_cost"] for r in runs])[:, None]
    difference = budget["combined"] - budget["stage"]
    # Accuracies are counts of rows: a mean of differences that cancel can
    # come out a last bit off zero, which is a tie, not a loss.
    tie = 1e-12
    return {
        "seeds": [r["seed"] for r in runs],
        "fractions": runs[0]["fractions"],
        "best_stage_accuracy": best,
        "last_exit_accuracy": last,
        "combined_minus_best_stage": above_best.tolist(),
        "mean_combined_minus_best_stage": float(above_best.mean()),
        "combined_last_above_best_stage": bool(above_best.mean() > tie),
        "budget_accuracy": {a: v.mean(axis=0).tolist() for a, v in budget.items()},
        "budget_cost_over_full": {
            a: (v / full).mean(axis=0).tolist() for a, v in cost.items()
        },
        "budget_difference": difference.tolist(),
        "combined_kept": [
            [
                b.get("answer_kept") == "combined"
                for b in r["answers"]["combined"]["budgets"]
            ]
            for r in runs
        ],
        "mean_budget_difference": difference.mean(axis=0).tolist(),
        "budgets_at_or_above": int((difference.mean(axis=0) >= -tie).sum()),
    }


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    names = ["digits"] if quick else list(datasets.DATASETS)
    seeds = SEEDS[:1] if quick else SEEDS
    with threadpool_limits(limits=1, user_api="blas"):
        results = {
            name: [_judged(_dataset(name, quick, seed)) for seed in seeds]
            for name in names
        }
    return {
        "command": "python -m benchmarks.run_combined" + (" --quick" if quick else ""),
        "total_seconds": time.perf_counter() - start,
        "environment": machine(threads="BLAS limited to 1 thread"),
        "quick": quick,
        "fractions": list(FRACTIONS),
        "seeds": list(seeds),
        "datasets": results,
        "over_seeds": {name: over_seeds(runs) for name, runs in results.items()},
    }


def _each(values, fmt) -> str:
    """One figure per split, ``/``-separated."""
    return " / ".join(fmt(v) for v in values)


def markdown(results: dict) -> str:
    seeds = results["seeds"]
    summary, blocks = [], []
    for name, runs in results["datasets"].items():
        m = results["over_seeds"][name]
        first = runs[0]
        summary.append(
            (
                name,
                _each(m["best_stage_accuracy"], pct),
                _each(m["last_exit_accuracy"]["stage"], pct),
                _each(m["last_exit_accuracy"]["combined"], pct),
                _each(m["combined_minus_best_stage"], pt)
                + f" (mean **{pt(m['mean_combined_minus_best_stage'])}**)",
                _each([r["answers"]["combined"]["kinds"][-1] for r in runs], str),
                _each(
                    [r["answers"]["combined"]["no_loss"] for r in runs],
                    lambda n: (
                        "-"
                        if n is None
                        else f"{n['fraction']:.0%} ({n['speed_up']:.2f}x)"
                    ),
                ),
                f"{m['budgets_at_or_above']} of {len(m['fractions'])}",
            )
        )
        rows = [
            (
                f"{fraction:.0%}",
                pct(m["budget_accuracy"]["stage"][i]),
                pct(m["budget_accuracy"]["combined"][i]),
                _each([d[i] for d in m["budget_difference"]], pt),
                pt(m["mean_budget_difference"][i]),
                _each(
                    [kept[i] for kept in m["combined_kept"]],
                    lambda c: "combined" if c else "stage",
                ),
                f"{m['budget_cost_over_full']['stage'][i]:.3f}",
                f"{m['budget_cost_over_full']['combined'][i]:.3f}",
            )
            for i, fraction in enumerate(m["fractions"])
        ]
        stage0, combined0 = (first["answers"][a] for a in ANSWERS)
        added = np.subtract(combined0["routing_per_row"], stage0["routing_per_row"])
        best_stages = [r["stages"][r["best_stage"]] for r in runs]
        blocks += [
            f"### {name}",
            "",
            "Best single stage per split: "
            + _each(
                zip(best_stages, m["best_stage_accuracy"]),
                lambda v: f"{v[0]} {pct(v[1])}",
            )
            + ". Combiner per exit: "
            + "; ".join(
                f"seed {r['seed']} {' / '.join(r['answers']['combined']['kinds'])}"
                for r in runs
            )
            + ". Ceiling (each kind at the last exit, fitted on the policy rows, "
            "picked on test): "
            + "; ".join(
                f"seed {r['seed']} "
                + ", ".join(f"{k} {pct(a)}" for k, a in r["ceiling"].items())
                for r in runs
            )
            + ".",
            "",
            table(
                rows,
                (
                    "budget (of full)",
                    "stage answers % (mean)",
                    "combined % (mean)",
                    "difference per seed (" + " / ".join(map(str, seeds)) + ")",
                    "mean difference",
                    "combined estimator answers with (per seed)",
                    "stage cost / full (mean)",
                    "combined cost / full (mean)",
                ),
            ),
            "",
            "Frontier (`cost_weight` grid), stage-answer points with no combined "
            "point at least as accurate at no higher test cost: "
            + "; ".join(
                f"seed {r['seed']} {len(r['frontier_points_below'])} of "
                f"{len(r['answers']['stage']['frontier']['cost'])}"
                for r in runs
            )
            + ".",
            "",
            f"Routing work measured with each stage (seed {first['seed']}), "
            "microseconds per row, stage answers / combined answers: "
            + "; ".join(
                f"{n} {1e6 * s:.3f} / {1e6 * c:.3f}"
                for n, s, c in zip(
                    first["stages"],
                    stage0["routing_per_row"],
                    combined0["routing_per_row"],
                )
            )
            + f" (difference {', '.join(f'{1e6 * a:+.3f}' for a in added)}; "
            "each fit times its routing anew, so part of it is timing noise).",
            "",
        ]
    over = list(results["over_seeds"].values())
    n_above = sum(m["combined_last_above_best_stage"] for m in over)
    n_every = sum(m["budgets_at_or_above"] == len(m["fractions"]) for m in over)
    each = "per seed " + " / ".join(map(str, seeds))
    head = table(
        summary,
        (
            "dataset",
            f"best single stage % ({each})",
            "last exit, stage answers %",
            "last exit, combined %",
            "combined - best stage",
            "last exit's combiner",
            "no-loss budget (speed-up)",
            "budgets where the mean combined >= the mean stage answer",
        ),
    )
    verdict = (
        "Targets, on the means over the splits: combined answers at full cost "
        f"above the best single stage on {n_above} of {len(over)} datasets "
        "(target: at least 2); combined answers at or above the stage answers "
        f"at every budget on {n_every} of {len(over)} (target: all)."
    )
    body = "\n".join(
        ["## Summary", "", head, "", verdict, "", "## By budget", "", *blocks]
    )
    return described_report("Combined answers", results, __doc__, body)


def main(argv=None) -> None:
    run_and_write(__doc__, run, markdown, "combined.json", "COMBINED_RESULTS.md", argv)


if __name__ == "__main__":
    main()
