"""Regression cascades and early exits: the learned policy against heuristics.

Usage::

    python -m benchmarks.run_regression            # full run (one to two hours)
    python -m benchmarks.run_regression --quick    # smoke run, writes nothing

Three datasets: scikit-learn's bundled ``load_diabetes`` (442 rows of real
data, measured by 3-fold cross-validation repeated 10 times: every diabetes
figure is the mean over the 30 splits), and ``make_friedman1`` and ``make_friedman2``
(8,000 rows each, half for training, each drawn three times with
``random_state`` 0, 1 and 2: every Friedman figure is the mean over the three
draws; friedman2's target spans 0 to about 1,700, so a scale-free
``cost_weight`` matters). On each split, three estimators, fitted once (and
again for the combined answers, below):

* ``AdaptiveCascadeRegressor`` over ``Ridge`` -> ``HistGradientBoostingRegressor
  (max_iter=50)`` -> ``RandomForestRegressor(200 trees)``, with declared
  per-row costs: the medians of four measured ``costs="auto"`` fits per
  dataset (``CASCADE_COSTS``; measured anew in each fit, the boosted stage's
  share of the full cost moved from 12 % to 8 % between runs of this
  benchmark, and with it what a budget affords), so that every split and
  every run answers the same problem;
* ``EarlyExitRegressor`` over ``GradientBoostingRegressor(200 trees,
  max_depth=3)`` and over ``RandomForestRegressor(200 trees,
  min_samples_leaf=2)`` (the cascade's last stage), each with exits after 25,
  50, 100 and 200 trees, costs in trees: a boosted model's exits differ in
  what they have learned, a forest's only in how many trees they average.

For each budget (10, 25 and 50 % of the full cost), the **default** policy
(``policy="linear"``) and the two heuristics (``"disagreement"``,
``"uncertainty"``) are learned for it with ``with_policy`` on the same
held-out policy rows (the same stages and costs); the **best heuristic** is
the one with the lower error on those policy rows (not on test). **Random
deferral** answers each row at a stage drawn at random with the default
policy's exit rates on the policy rows (the same spend): its test MSE is
``sum_k rate_k * MSE_k``, computed exactly. Every MSE is on the test rows,
which neither the stages nor the policies saw. Finally, the **no-loss
speed-up**: the cheapest budget on a grid (10 % to 100 % of the full cost) at
which the default estimator's test MSE is within 2 % of the best single
stage's, and the best stage's own cost over the cascade's average test cost
there. Where a dataset has several splits (every one but with ``--quick``),
"vs random" also gives two standard errors of the mean paired difference
over the splits.

**Combined answers** (``answer="combined"``): each estimator is fitted
again with every exit answering with its combiner (a blend or a linear
stacking of the predictions of the exits run so far, where it is clearly
better on the policy rows), on the same split and with the same costs, so
that both are compared at the same budgets: its test MSE with every row at
the last exit against the best single stage and against the stage answers'
last exit, its default policy's
test MSE at each budget (and on the no-loss grid) against the stage answers'
at the same budget, and the cheapest budget of the grid at which the
combined estimator's test MSE is at or below the best single stage's.

Writes ``benchmarks/results/regression.json`` and
``benchmarks/REGRESSION_RESULTS.md``.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_friedman1, make_friedman2
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import RepeatedKFold
from threadpoolctl import threadpool_limits

from ._tables import described_report, run_and_write, table
from ._tables import environment as machine

BUDGETS = (0.10, 0.25, 0.50)
GRID = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
HEURISTICS = ("disagreement", "uncertainty")
#: The draws of each Friedman dataset (``random_state`` of the generator):
#: one draw's learned-against-random difference at a budget is within its
#: noise (it changed sign between runs), so each figure is the mean over
#: three, with the standard error of the paired difference.
FRIEDMAN_SEEDS = (0, 1, 2)
#: Declared per-row costs of the cascade's stages (the full cascade costs
#: 1): the medians, rounded, of their measured ``costs="auto"`` over four
#: fits of each dataset's first split on this machine, the machine otherwise
#: idle. Measured anew in every fit, they moved between runs of this
#: benchmark (friedman1's boosted stage and the ridge before it came to 8.1 %
#: of the full cost in one run, 12.6 % in these medians), and with them
#: which rows a budget affords. Declared, every run and every split answers
#: the same problem, and the combined answers are compared with the stage
#: answers at the same costs.
CASCADE_COSTS = {
    "diabetes": (0.022, 0.338, 0.64),
    "friedman1": (0.004, 0.122, 0.874),
    "friedman2": (0.004, 0.118, 0.878),
}


def _splits(name: str, quick: bool) -> list:
    """The (X, X_test, y, y_test) splits of a dataset.

    diabetes is small (442 rows): one split's 142 test rows move an MSE by
    several percent, so it is measured by repeated cross-validation (3 folds,
    repeated 10 times: 30 splits of about 295 training and 147 test rows; with
    3 repeats the learned policy's mean gain over random deferral moved by
    two points between runs that differed only in how the policy rows were
    dealt to folds) and
    every figure is the mean over the splits.
    """
    rows = 1000 if quick else 8000
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        folds = RepeatedKFold(n_splits=3, n_repeats=1 if quick else 10, random_state=0)
        return [(X[a], X[b], y[a], y[b]) for a, b in folds.split(X)]
    splits = []
    for seed in FRIEDMAN_SEEDS[:1] if quick else FRIEDMAN_SEEDS:
        if name == "friedman1":
            X, y = make_friedman1(n_samples=rows, noise=1.0, random_state=seed)
        else:
            X, y = make_friedman2(n_samples=rows, noise=10.0, random_state=seed)
        n_train = rows // 2
        splits.append((X[:n_train], X[n_train:], y[:n_train], y[n_train:]))
    return splits


def _estimators(name: str, quick: bool):
    from skadaptive import AdaptiveCascadeRegressor, EarlyExitRegressor

    trees = 20 if quick else 200
    cascade = AdaptiveCascadeRegressor(
        [
            ("ridge", Ridge()),
            ("hgb", HistGradientBoostingRegressor(max_iter=50, random_state=0)),
            (
                "forest",
                RandomForestRegressor(
                    n_estimators=trees, min_samples_leaf=2, random_state=0
                ),
            ),
        ],
        costs=list(CASCADE_COSTS[name]),
        cv=3,
        random_state=0,
    )
    exits = [trees // 8, trees // 4, trees // 2, trees]
    backbones = {
        "boosting": GradientBoostingRegressor(
            n_estimators=trees, max_depth=3, random_state=0
        ),
        "forest": RandomForestRegressor(
            n_estimators=trees, min_samples_leaf=2, random_state=0
        ),
    }
    return {
        "cascade": cascade,
        **{
            f"early exits ({name})": EarlyExitRegressor(
                backbone, exits=exits, cv=3, random_state=0
            )
            for name, backbone in backbones.items()
        },
    }


def _point(fitted, budget, X_test, y_test, stage_mse) -> dict:
    default = fitted.with_policy(budget=budget, policy="linear")
    heuristics = {h: fitted.with_policy(budget=budget, policy=h) for h in HEURISTICS}
    best = min(HEURISTICS, key=lambda h: heuristics[h].policy_rows_error_)
    test = default.evaluate_frontier(X_test, y_test)
    heuristic_test = heuristics[best].evaluate_frontier(X_test, y_test)
    random_mse = float(default.exit_rates_ @ stage_mse)
    return {
        "budget": budget,
        "learned_mse": float(test["error_at_fit"]),
        "learned_cost": float(test["cost_at_fit"]),
        "learned_policy_rows_cost": float(default.policy_rows_cost_),
        "learned_scores": str(
            default.budget_search_["scores"][default.budget_search_["chosen"]]
        ),
        "heuristic": best,
        "heuristic_mse": float(heuristic_test["error_at_fit"]),
        "heuristic_cost": float(heuristic_test["cost_at_fit"]),
        "other_heuristic_mse": {
            h: float(heuristics[h].evaluate_frontier(X_test, y_test)["error_at_fit"])
            for h in HEURISTICS
        },
        "random_mse": random_mse,
        "exit_rates": default.exit_rates_.tolist(),
        # Every policy row at one stage: random deferral with these rates is
        # the same policy.
        "one_stage": bool(default.exit_rates_.max() == 1.0),
    }


def _no_loss_curve(fitted, X_test, y_test) -> list:
    """Test MSE and cost of the default estimator at each budget of GRID."""
    total = fitted.cumulative_costs_[-1]
    curve = []
    for fraction in GRID:
        if fraction * total < fitted.cumulative_costs_[0]:
            curve.append(None)
            continue
        test = fitted.with_policy(budget=fraction * total).evaluate_frontier(
            X_test, y_test
        )
        curve.append((float(test["error_at_fit"]), float(test["cost_at_fit"])))
    return curve


def _mean_curve(curves: list) -> list:
    """Each budget of GRID's ``(MSE, cost)`` averaged over the splits' curves
    (:func:`_no_loss_curve`); None where some split cannot meet it."""
    return [
        None
        if any(curve[i] is None for curve in curves)
        else np.mean([curve[i] for curve in curves], axis=0)
        for i in range(len(GRID))
    ]


def _no_loss_speed_up(curves, stage_mse, stage_costs) -> dict:
    """The cheapest budget of GRID whose mean test MSE over the splits is within
    2 % of the best single stage's."""
    best_stage = int(np.argmin(stage_mse))
    for fraction, mean in zip(GRID, _mean_curve(curves)):
        if mean is None:
            continue
        mse, cost = mean
        if mse <= 1.02 * stage_mse[best_stage]:
            return {
                "fraction": fraction,
                "mse": float(mse),
                "cost": float(cost),
                "best_stage": best_stage,
                "best_stage_mse": float(stage_mse[best_stage]),
                "speed_up": float(stage_costs[best_stage] / cost),
            }
    return {"fraction": None, "best_stage": best_stage}


def _mean_points(per_split: list) -> list:
    """Each budget's point, its figures averaged over the splits."""
    points = []
    for same in zip(*per_split):
        point = dict(same[0])
        for key, value in point.items():
            if isinstance(value, float):
                point[key] = float(np.mean([p[key] for p in same]))
        point["exit_rates"] = np.mean([p["exit_rates"] for p in same], axis=0).tolist()
        for key in ("heuristic", "learned_scores"):
            counts = Counter(p[key] for p in same)
            point[key] = ", ".join(
                f"{k} x{n}" if len(same) > 1 else k for k, n in counts.most_common()
            )
        point["heuristic_mse"] = float(np.mean([p["heuristic_mse"] for p in same]))
        point["other_heuristic_mse"] = {
            h: float(np.mean([p["other_heuristic_mse"][h] for p in same]))
            for h in HEURISTICS
        }
        point["one_stage"] = all(p["one_stage"] for p in same)
        point["n_splits"] = len(same)
        # The paired difference to random deferral split by split, and the
        # standard error of its mean (diabetes' splits of repeated k-fold
        # share rows, so there it understates the spread somewhat; the
        # Friedman draws are independent).
        difference = [p["learned_mse"] - p["random_mse"] for p in same]
        point["vs_random_standard_error"] = (
            float(np.std(difference, ddof=1) / np.sqrt(len(same)))
            if len(same) > 1
            else None
        )
        point["n_splits_not_one_stage"] = sum(not p["one_stage"] for p in same)
        points.append(point)
    return points


def _combined(fitted, estimator, data, fractions) -> dict:
    """The estimator fitted again with ``answer="combined"`` on the same split
    and costs: its last exit, its budget points and its no-loss curve."""
    X, X_test, y, y_test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cost order of stages
        combined = clone(estimator).set_params(answer="combined").fit(X, y)
    # The same costs (declared, or trees): the same budgets.
    np.testing.assert_allclose(combined.costs_, fitted.costs_, rtol=1e-12)
    total = combined.cumulative_costs_[-1]
    test = combined.evaluate_frontier(X_test, y_test)
    return {
        "kinds": [c.kind for c in combined.combiners_],
        "last_exit_mse": float(test["exit_errors"][-1]),
        "exit_mse": [float(e) for e in test["exit_errors"]],
        "points": [
            float(
                combined.with_policy(budget=f * total).evaluate_frontier(
                    X_test, y_test
                )["error_at_fit"]
            )
            for f in fractions
        ],
        "curve": _no_loss_curve(combined, X_test, y_test),
    }


def _combined_summary(per_split: list, points: list, stage_mse, curves) -> dict:
    """The combined answers' figures averaged over the splits."""
    best_stage = float(np.min(stage_mse))
    stage_curve = _mean_curve(curves)
    combined_curve = _mean_curve([split["curve"] for split in per_split])
    at_or_below = next(
        (
            {"fraction": fraction, "mse": float(mean[0]), "cost": float(mean[1])}
            for fraction, mean in zip(GRID, combined_curve)
            if mean is not None and mean[0] <= best_stage
        ),
        None,
    )
    kinds = Counter(" / ".join(split["kinds"]) for split in per_split)
    return {
        "kinds": ", ".join(
            f"{k} x{n}" if len(per_split) > 1 else k for k, n in kinds.most_common()
        ),
        "last_exit_mse": float(np.mean([s["last_exit_mse"] for s in per_split])),
        "exit_mse": np.mean([s["exit_mse"] for s in per_split], axis=0).tolist(),
        "best_stage_mse": best_stage,
        "by_budget": _by_budget(
            [
                (
                    point["fraction"],
                    point["learned_mse"],
                    np.mean([s["points"][i] for s in per_split]),
                )
                for i, point in enumerate(points)
            ]
            + [
                (f, a[0], b[0])
                for f, a, b in zip(GRID, stage_curve, combined_curve)
                if a is not None and b is not None
            ]
        ),
        "at_or_below_best_stage": at_or_below,
    }


def _by_budget(triples: list) -> list:
    """``(fraction, stage answers' MSE, combined MSE)`` once per budget (the
    budgets and the grid share some), in budget order."""
    merged = {}
    for fraction, stage, combined in triples:
        # A budget's fraction is the mean of its splits' (equal) fractions:
        # 0.1 may come back as 0.10000000000000002.
        fraction = round(float(fraction), 9)
        merged.setdefault(
            fraction,
            {
                "fraction": fraction,
                "stage_answers_mse": float(stage),
                "combined_mse": float(combined),
            },
        )
    return [merged[f] for f in sorted(merged)]


def _estimator_results(estimator, splits) -> dict:
    fits, per_split, curves, stage_mse, stage_costs, checks = 0.0, [], [], [], [], []
    combined = []
    for X, X_test, y, y_test in splits:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # cost order of stages
            fitted = clone(estimator).fit(X, y)
        fits += time.perf_counter() - start
        mse = np.array(
            fitted.evaluate_frontier(X_test, y_test)["stage_errors"], dtype=float
        )
        total = fitted.cumulative_costs_[-1]
        fractions = [f for f in BUDGETS if f * total >= fitted.cumulative_costs_[0]]
        points = [_point(fitted, f * total, X_test, y_test, mse) for f in fractions]
        for point, fraction in zip(points, fractions):
            point["fraction"] = fraction
            point["full_cost"] = float(total)
        per_split.append(points)
        curves.append(_no_loss_curve(fitted, X_test, y_test))
        stage_mse.append(mse)
        stage_costs.append(fitted._alone_costs(fitted.costs_))
        checks.append(
            mean_squared_error(
                y_test, fitted.with_policy(budget=0.25 * total).predict(X_test)
            )
        )
        combined.append(_combined(fitted, estimator, (X, X_test, y, y_test), fractions))
    if len({len(points) for points in per_split}) != 1:
        raise RuntimeError("the splits reach different budgets; widen BUDGETS")
    stage_mse, stage_costs = np.mean(stage_mse, axis=0), np.mean(stage_costs, axis=0)
    points = _mean_points(per_split)
    return {
        "fit_seconds": fits / len(splits),
        "cost_unit": fitted._cost_unit() or "cost",
        "stage_names": fitted._stage_names(),
        "stage_mse": stage_mse.tolist(),
        "stage_costs": stage_costs.tolist(),
        "full_cost": float(np.mean([p["full_cost"] for p in points])),
        "points": points,
        "no_loss": _no_loss_speed_up(curves, stage_mse, stage_costs),
        "check": float(np.mean(checks)),
        "combined": _combined_summary(combined, points, stage_mse, curves),
    }


def _dataset(name: str, quick: bool) -> dict:
    splits = _splits(name, quick)
    return {
        "n_train": len(splits[0][2]),
        "n_test": len(splits[0][3]),
        "n_splits": len(splits),
        "estimators": {
            kind: _estimator_results(estimator, splits)
            for kind, estimator in _estimators(name, quick).items()
        },
    }


def run(quick: bool = False) -> dict:
    start = time.perf_counter()
    names = (
        ("diabetes", "friedman1") if quick else ("diabetes", "friedman1", "friedman2")
    )
    with threadpool_limits(limits=1, user_api="blas"):
        results = {name: _dataset(name, quick) for name in names}
    points = [
        p
        for dataset in results.values()
        for estimator in dataset.values()
        if isinstance(estimator, dict)
        for e in estimator.values()
        for p in e["points"]
    ]
    combined = {
        (name, kind): e["combined"]
        for name, dataset in results.items()
        for kind, e in dataset["estimators"].items()
    }
    return {
        "command": "python -m benchmarks.run_regression"
        + (" --quick" if quick else ""),
        "total_seconds": time.perf_counter() - start,
        "environment": machine(threads="BLAS limited to 1 thread"),
        "datasets": results,
        "summary": {**summary(points), **combined_summary(combined)},
    }


def combined_summary(combined: dict) -> dict:
    """Issue figures of the combined answers, over every dataset and estimator."""
    return {
        "n_combined_setups": len(combined),
        "n_combined_below_best_stage": sum(
            c["last_exit_mse"] < c["best_stage_mse"] for c in combined.values()
        ),
        "combined_below_best_stage_datasets": sorted(
            {
                name
                for (name, _), c in combined.items()
                if c["last_exit_mse"] < c["best_stage_mse"]
            }
        ),
        "n_combined_points": sum(len(c["by_budget"]) for c in combined.values()),
        "n_combined_points_at_or_below_stage_answers": sum(
            p["combined_mse"] <= p["stage_answers_mse"]
            for c in combined.values()
            for p in c["by_budget"]
        ),
    }


def summary(points: list) -> dict:
    """The targets' figures over every point (averaged over splits)."""
    # Where the policy answers every row at one stage (in every split; the
    # stage may differ between splits), random deferral with its exit rates
    # is the same policy: such a point is level, neither side ahead.
    split = [p for p in points if not p["one_stage"]]
    return {
        "beats_random_everywhere": all(
            p["learned_mse"] < p["random_mse"] for p in split
        ),
        "n_better_than_random": sum(p["learned_mse"] < p["random_mse"] for p in split),
        "n_worse_than_random": sum(p["learned_mse"] >= p["random_mse"] for p in split),
        # Behind by more than two standard errors of the mean paired
        # difference over the splits (where there are several).
        "n_worse_than_random_beyond_noise": sum(
            p["learned_mse"] - p["random_mse"]
            > 2 * (p.get("vs_random_standard_error") or 0.0)
            for p in split
        ),
        "n_one_stage": len(points) - len(split),
        "mean_gain_over_best_heuristic": float(
            np.mean([1 - p["learned_mse"] / p["heuristic_mse"] for p in points])
        ),
        "mean_gain_over_random": float(
            np.mean([1 - p["learned_mse"] / p["random_mse"] for p in points])
        ),
        "n_points": len(points),
    }


def _vs_random(point) -> str:
    """MSE reduction against random deferral, with two standard errors of the
    mean paired difference over the splits where there are several."""
    text = f"{1 - point['learned_mse'] / point['random_mse']:+.1%}"
    error = point.get("vs_random_standard_error")
    if error is not None:
        text += f" ± {2 * error / point['random_mse']:.1%}"
    return text


def _mse(value) -> str:
    return f"{value:.4g}"


def pct(value) -> str:
    return f"{100 * value:.1f} %"


def markdown(results: dict) -> str:
    blocks = []
    for name, dataset in results["datasets"].items():
        for kind, e in dataset["estimators"].items():
            stages = ", ".join(
                f"{n} {_mse(m)}" for n, m in zip(e["stage_names"], e["stage_mse"])
            )
            rows = []
            for p in e["points"]:
                rows.append(
                    [
                        pct(p["fraction"]),
                        _mse(p["learned_mse"]),
                        f"{p['heuristic']} {_mse(p['heuristic_mse'])}",
                        _mse(p["random_mse"]),
                        f"{1 - p['learned_mse'] / p['heuristic_mse']:+.1%}",
                        _vs_random(p),
                        pct(p["learned_policy_rows_cost"] / e["full_cost"]),
                        pct(p["learned_cost"] / e["full_cost"]),
                        pct(p["heuristic_cost"] / e["full_cost"]),
                        p["learned_scores"],
                    ]
                )
            no_loss = e["no_loss"]
            if no_loss["fraction"] is None:
                speed = (
                    "no budget on the grid reaches within 2 % of the best stage's "
                    "test MSE"
                )
            else:
                best = e["stage_names"][no_loss["best_stage"]]
                speed = (
                    f"within 2 % of the best stage ({best}, "
                    f"MSE {_mse(no_loss['best_stage_mse'])}) from a budget of "
                    f"{pct(no_loss['fraction'])} of the full cost: MSE "
                    f"{_mse(no_loss['mse'])} at a cost {no_loss['speed_up']:.2f}x "
                    "smaller than that stage's alone"
                    + (
                        " (below 1: the cascade costs more than that stage)"
                        if round(no_loss["speed_up"], 2) < 1
                        else ""
                    )
                )
            rows_text = (
                f"{dataset['n_train']} training rows, {dataset['n_test']} test rows"
            )
            if dataset.get("n_splits", 1) > 1:
                how, unit = (
                    ("splits of repeated 3-fold cross-validation, about", "splits")
                    if name == "diabetes"
                    else ("draws of the data,", "draws")
                )
                rows_text = (
                    f"means over {dataset['n_splits']} {how} {rows_text} each; "
                    f"the scores column counts the {unit} that chose each kind"
                )
            missing = _missing_budgets(e["points"])
            if missing:
                rows_text += (
                    f"; no {', '.join(pct(f) for f in missing)} row: the first "
                    "exit alone costs more"
                )
            blocks.append(
                f"### {name}, {kind} ({rows_text})\n\n"
                f"Stage test MSE: {stages}; {_costs_text(e)}; fitted in "
                f"{e['fit_seconds']:.1f} s.\n\n"
                + table(
                    rows,
                    [
                        "budget",
                        "learned MSE",
                        "best heuristic MSE",
                        "random MSE",
                        "vs heuristic",
                        "vs random",
                        "learned spent (policy rows)",
                        "learned spent (test)",
                        "heuristic spent (test)",
                        "learned scores",
                    ],
                )
                + f"\n\nNo-loss speed-up: {speed}.\n"
                + _combined_markdown(e)
            )
    s = results["summary"]
    combined_text = ""
    if "n_combined_setups" in s:
        combined_text = (
            "\nCombined answers: with every row at the last exit, below the best "
            f"single stage's test MSE in {s['n_combined_below_best_stage']} of "
            f"{s['n_combined_setups']} setups (datasets: "
            f"{', '.join(s['combined_below_best_stage_datasets']) or 'none'}); at "
            "or below the stage answers' test MSE at "
            f"{s['n_combined_points_at_or_below_stage_answers']} of "
            f"{s['n_combined_points']} budget points (the budgets above and the "
            "no-loss grid, each once).\n"
        )
    body = "\n".join(blocks) + (
        "\n### Summary\n\n"
        f"Over {s['n_points']} points: at {s['n_one_stage']} the learned policy "
        "answers every row at one stage (in every split), so random deferral "
        "with its exit rates is the same policy; of the other "
        f"{s['n_better_than_random'] + s['n_worse_than_random']}, the learned "
        f"policy beats random deferral at {s['n_better_than_random']} ("
        f"{'every one' if s['beats_random_everywhere'] else 'NOT every one'}; "
        f"mean MSE reduction over all points {s['mean_gain_over_random']:+.1%}); "
        f"behind it by more than two standard errors at "
        f"{s['n_worse_than_random_beyond_noise']} (the ± column, two standard "
        "errors of the mean paired difference over the splits; diabetes' "
        "splits of repeated k-fold share rows, so there it understates the "
        "spread somewhat); "
        "against the best "
        f"heuristic (chosen on the policy rows) the mean MSE reduction is "
        f"{s['mean_gain_over_best_heuristic']:+.1%} (target: above 0).\n"
        + combined_text
    )
    return described_report("Regression results", results, __doc__, body)


def _missing_budgets(points: list) -> list:
    """The budgets of BUDGETS with no point (the first exit costs more)."""
    # A point's fraction is the mean of its splits' (equal) fractions: 0.1
    # may come back as 0.10000000000000002.
    present = {round(p["fraction"], 9) for p in points}
    return [f for f in BUDGETS if round(f, 9) not in present]


def _costs_text(e: dict) -> str:
    if e["cost_unit"] == "cost":
        # Declared costs without a unit: fractions of the full cascade.
        return "costs declared, the full cost 1"
    return f"costs in {e['cost_unit']}, full cost {e['full_cost']:.4g}"


def _combined_markdown(e: dict) -> str:
    """The combined answers' section of one dataset and estimator."""
    c = e.get("combined")
    if c is None:
        return ""
    rows = [
        [
            pct(p["fraction"]),
            _mse(p["stage_answers_mse"]),
            _mse(p["combined_mse"]),
            f"{1 - p['combined_mse'] / p['stage_answers_mse']:+.1%}",
        ]
        for p in c["by_budget"]
    ]
    exits = ", ".join(f"{n} {_mse(m)}" for n, m in zip(e["stage_names"], c["exit_mse"]))
    reach = c["at_or_below_best_stage"]
    reach_text = (
        "no budget of the grid"
        if reach is None
        else f"from a budget of {pct(reach['fraction'])} of the full cost (MSE "
        f"{_mse(reach['mse'])}, average test cost {pct(reach['cost'] / e['full_cost'])}"
        " of the full cost)"
    )
    return (
        "\nCombined answers (combiner per exit: "
        f"{c['kinds']}). Every row at each exit, combined: {exits}; the last "
        f"exit {_mse(c['last_exit_mse'])} against the best single stage "
        f"{_mse(c['best_stage_mse'])} "
        f"({1 - c['last_exit_mse'] / c['best_stage_mse']:+.1%}). The combined "
        f"estimator's test MSE is at or below the best single stage's {reach_text}."
        " Default policy at each budget (those above and the no-loss grid), "
        "stage answers against combined answers (test MSE):\n\n"
        + table(rows, ["budget", "stage answers MSE", "combined MSE", "reduction"])
        + "\n"
    )


def main(argv=None) -> None:
    run_and_write(
        __doc__, run, markdown, "regression.json", "REGRESSION_RESULTS.md", argv
    )


if __name__ == "__main__":
    main()
