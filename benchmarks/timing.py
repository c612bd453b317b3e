"""Measured times: prediction wall clock, grid search, and policy learning."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from threadpoolctl import threadpool_limits

from skadaptive.policies import fit_bottom_up_policy

from .frontier import StageOutputs
from .ours import make_cascade


def best_time(func, repeats: int = 5) -> float:
    """Fastest of ``repeats`` timed calls of ``func()`` after one warm-up call.

    Noise from the rest of the machine only ever adds time, so the minimum is
    the most repeatable estimate (as ``costs="auto"`` does).
    """
    func()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        timings.append(time.perf_counter() - start)
    return min(timings)


def tile_rows(X, n_rows: int):
    """``X`` repeated until it has at least ``n_rows`` rows (then cut to that)."""
    if len(X) >= n_rows:
        return X
    repeats = int(np.ceil(n_rows / len(X)))
    return np.concatenate([X] * repeats)[:n_rows]


def call_costs(stage, X_rows, repeats: int = 3) -> dict:
    """Fixed cost of one ``predict_proba`` call and the per-row cost of a large one.

    ``costs="auto"`` divides the time of one call on up to 1,000 rows by the rows,
    which folds a fixed per-call overhead into the per-row cost. A cascade calls
    a late stage on few rows, where that overhead dominates.
    """
    one_row = best_time(lambda: stage.predict_proba(X_rows[:1]), repeats)
    many = best_time(lambda: stage.predict_proba(X_rows), repeats)
    return {
        "one_row_call_ms": one_row * 1e3,
        "large_batch_us_per_row": many / len(X_rows) * 1e6,
        "large_batch_rows": int(len(X_rows)),
    }


def expected_speed_up(estimator, exit_stage, reference_stage: int = -1) -> float:
    """The speed-up the estimator expects over one stage alone (an early
    exit's last: the backbone's own prediction, where timed) for rows exiting
    at ``exit_stage``: that stage's own cost, without the routing work
    measured costs add, over the
    estimator's average cost of a batch of ``cost_batch_size_`` such rows
    (each stage a row reaches paying its call once)."""
    size = estimator.cost_batch_size_
    alone = (
        estimator._reference_seconds(size)
        if reference_stage in (-1, len(estimator.costs_) - 1)
        else estimator._alone_seconds(size)[reference_stage]
    )
    return float(alone / estimator._average_cost(exit_stage))


def with_measured_costs(estimator, X_fit, y_fit, n_rows: int, fraction: float):
    """``estimator`` fitted again on ``X_fit, y_fit`` with ``costs="auto"``
    for calls of ``n_rows`` rows (each stage's time per call and per row, and
    the routing's), at a budget of ``fraction`` of its measured full cost:
    the estimator whose ``expected_speed_up_`` is a claim about wall-clock
    time (a cost in trees or another declared unit is not)."""
    with threadpool_limits(limits=1):
        measured = clone(estimator).set_params(
            costs="auto", cost_batch_size=int(n_rows), budget=None
        )
        measured.fit(X_fit, y_fit)
    return measured.with_policy(budget=fraction * measured.cumulative_costs_[-1])


def wall_clock(cascade, reference_stage: int, X_rows, repeats: int = 5) -> dict:
    """Wall time of the cascade versus its most accurate stage alone on ``X_rows``.

    Both are timed on ``predict_proba`` (what ``costs="auto"`` measures). The
    expected speed-up is the same ratio computed from ``costs_`` and the exits
    the cascade takes on these rows, as the estimator computes a batch's
    cost (a stage's per-call part paid once per ``cost_batch_size_`` rows).
    """
    stage = cascade.estimators_[reference_stage]
    stage_seconds = best_time(lambda: stage.predict_proba(X_rows), repeats)
    cascade_seconds = best_time(lambda: cascade.predict_proba(X_rows), repeats)
    exits = cascade.predict_exit(X_rows)
    expected = expected_speed_up(cascade, exits, reference_stage)
    measured = stage_seconds / cascade_seconds
    return {
        "n_rows": int(len(X_rows)),
        "stage_seconds": stage_seconds,
        "cascade_seconds": cascade_seconds,
        "measured_speed_up": measured,
        "expected_speed_up": float(expected),
        "ratio": float(measured / expected),
        "exit_rates": (np.bincount(exits, minlength=len(cascade.costs_)) / len(exits))
        .round(4)
        .tolist(),
        "repeats": repeats,
    }


def affine_prediction_seconds(exit_rates, n_rows: int, call_costs: list[dict]) -> float:
    """Cascade time predicted by a per-call + per-row cost model of each stage.

    Stage k runs once on the rows that reach it, paying its one-row call time
    plus its large-batch per-row time for each of them. When this matches the
    measured time but ``costs_`` does not, the gap is the stages' fixed per-call
    overhead, not the routing.
    """
    reaching = n_rows * (1 - np.concatenate([[0.0], np.cumsum(exit_rates)[:-1]]))
    seconds = 0.0
    for rows, cost in zip(reaching, call_costs):
        if rows >= 1:
            seconds += cost["one_row_call_ms"] / 1e3
            seconds += rows * cost["large_batch_us_per_row"] / 1e6
    return seconds


def grid_search_cost(
    stages,
    X,
    y,
    n_values: tuple[int, ...],
    cache_root: Path,
    cascade_params: dict,
    cv: int = 3,
) -> dict:
    """Time ``GridSearchCV`` over ``cost_weight`` grids of different sizes.

    Every search starts from an empty ``memory=`` cache of its own, so each one
    pays for fitting the stages once per split, as a user's first search would.
    """
    results = {}
    splitter = StratifiedKFold(cv, shuffle=True, random_state=0)
    for n in n_values:
        cache = Path(cache_root) / f"grid_{n}"
        shutil.rmtree(cache, ignore_errors=True)
        grid = {"cost_weight": list(np.geomspace(1e-3, 1.0, n)) if n > 1 else [0.01]}
        cascade = make_cascade(stages, str(cache), **cascade_params)
        search = GridSearchCV(cascade, grid, cv=splitter)
        start = time.perf_counter()
        search.fit(X, y)
        results[n] = {
            "seconds": time.perf_counter() - start,
            "best_params": {k: float(v) for k, v in search.best_params_.items()},
            "best_score": float(search.best_score_),
        }
        shutil.rmtree(cache, ignore_errors=True)
    return results


def policy_time(
    cascade, held_out: StageOutputs, cold_fit: dict, repeats: int = 3
) -> dict:
    """Policy-learning time versus stage-fitting time of a cascade's cold fit.

    ``cold_fit`` holds the ``_stage_fit_seconds`` and ``_policy_fit_seconds``
    read right after the first (uncached) fit. The policy time is the fastest
    of ``repeats`` runs of the same step on the fitted cascade
    (``with_policy`` at its own ``cost_weight``: the chosen policy and the
    31-point held-out frontier), like every other timing here; the time inside
    the cold fit, which may include one-off warm-up, is kept as
    ``cold_policy_fit_seconds``. The single call is one
    ``fit_bottom_up_policy`` with the cascade's settings on the same held-out
    probabilities.
    """
    normalized = cascade.cumulative_costs_ / cascade.cumulative_costs_[-1]
    single = best_time(
        lambda: fit_bottom_up_policy(
            held_out.probas,
            held_out.y,
            normalized,
            cascade.cost_weight,
            policy=cascade.policy,
            feature_set=cascade.policy_features,
            tune_threshold=cascade.tune_threshold,
        ),
        repeats,
    )
    stage = cold_fit["stage_fit_seconds"]
    policy = best_time(
        lambda: cascade.with_policy(cost_weight=cascade.cost_weight), repeats
    )
    return {
        "n_policy_rows": int(len(held_out.y)),
        "stage_fit_seconds": stage,
        "policy_fit_seconds": policy,
        "cold_policy_fit_seconds": cold_fit["policy_fit_seconds"],
        "policy_over_stage": policy / stage,
        "single_policy_seconds": single,
        "single_over_stage": single / stage,
    }
