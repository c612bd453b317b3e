"""``AdaptiveCascadeClassifier`` fitted once and swept over its trade-off knobs.

The stages are fitted (and cross-fitted) once per dataset: every later fit only
changes ``cost_weight``, ``budget`` or the policy with ``set_params``, and
``memory=`` returns the cached stages, held-out probabilities and measured costs.
"""

from __future__ import annotations

import contextlib
import inspect
import time

import numpy as np
from joblib import Memory
from sklearn.ensemble import HistGradientBoostingClassifier

from skadaptive import AdaptiveCascadeClassifier
from skadaptive.policies import evaluate_policy, fit_bottom_up_policy

from .frontier import Point, StageOutputs, make_point


class RecordingMemory(Memory):
    """A ``joblib.Memory`` that keeps the result of the last cached call.

    The cascade caches its stage fitting through ``memory.cache``; keeping the
    result gives the benchmark the very held-out probabilities the policy was
    learned from (there is no public attribute for them), so that the threshold
    baseline is tuned on the same data.
    """

    last_result = None

    def cache(self, func=None, **kwargs):
        """Like ``Memory.cache``, recording what the stage fitting returns."""
        cached = super().cache(func, **kwargs)
        if getattr(func, "__name__", "") != "fit_stages_on_held_out":
            return cached  # e.g. the timing of routing

        def call(*args, **call_kwargs):
            self.last_result = cached(*args, **call_kwargs)
            return self.last_result

        return call


def make_cascade(
    stages, memory, cv=3, n_jobs=2, random_state=0, costs="auto", **params
):
    """The cascade configuration used throughout the benchmark."""
    return AdaptiveCascadeClassifier(
        stages,
        costs=costs,
        cv=cv,
        memory=memory,
        n_jobs=n_jobs,
        random_state=random_state,
        **params,
    )


def held_out_outputs(cascade, memory: RecordingMemory, y_train) -> StageOutputs:
    """Held-out stage probabilities of the cascade's last fit, checked against it."""
    result = memory.last_result
    y_policy = np.searchsorted(
        cascade.classes_, np.asarray(y_train)[result.policy_rows]
    )
    outputs = StageOutputs([np.asarray(p) for p in result.stage_probas], y_policy)
    if not np.allclose(outputs.correct.mean(axis=1), cascade.stage_accuracies_):
        raise RuntimeError(
            "The recorded held-out probabilities do not reproduce the cascade's "
            "stage_accuracies_; the memory hook no longer sees the policy data."
        )
    return outputs


def outputs_on(cascade, X_test, y_test) -> tuple[StageOutputs, np.ndarray]:
    """Each fitted stage's probabilities on the test rows, and its seconds per row."""
    probas, seconds = [], []
    for stage in cascade.estimators_:
        start = time.perf_counter()
        probas.append(stage.predict_proba(X_test))
        seconds.append((time.perf_counter() - start) / len(y_test))
    y = np.searchsorted(cascade.classes_, y_test)
    return StageOutputs(probas, y), np.array(seconds)


def fitted_point(setting, cascade, test: StageOutputs, params: dict) -> Point:
    """Test point of a fitted cascade, from its policy on the test probabilities.

    ``policy_.exit_stage`` on every stage's test probabilities gives the same
    exits as routing the rows (checked once per dataset by the runner), without
    running the stages again for every setting.
    """
    total = cascade.cumulative_costs_[-1]
    exits = cascade.policy_.exit_stage(test.probas)
    return make_point(
        setting,
        test,
        exits,
        cascade.cumulative_costs_ / total,
        cascade.policy_rows_accuracy_,
        cascade.policy_rows_cost_ / total,
        params,
    )


def cost_weight_points(cascade, X, y, test, cost_weights) -> list[Point]:
    """Refit the policy (not the stages) for each ``cost_weight``; test points."""
    points = []
    for cost_weight in cost_weights:
        params = {"cost_weight": float(cost_weight), "budget": None}
        cascade.set_params(**params).fit(X, y)
        points.append(
            fitted_point(f"cost_weight={cost_weight:g}", cascade, test, params)
        )
    return points


def budget_points(cascade, X, y, test, fractions) -> list[Point]:
    """Refit the policy for budgets given as fractions of the full cascade cost."""
    total = cascade.cumulative_costs_[-1]
    first = cascade.cumulative_costs_[0]
    points = []
    with default_cost_weight(cascade):
        for fraction in fractions:
            budget = fraction * total
            if budget < first:
                continue
            params = {"budget": float(budget)}
            cascade.set_params(**params).fit(X, y)
            points.append(
                fitted_point(f"budget={fraction:g} x full", cascade, test, params)
            )
        cascade.set_params(budget=None)
    return points


@contextlib.contextmanager
def default_cost_weight(cascade):
    """``cascade`` at its default ``cost_weight`` inside, as it was after.

    A budget ignores ``cost_weight``, and warns where it is not the default:
    the fits for budgets after those for cost weights would otherwise warn
    each time.
    """
    saved = cascade.cost_weight
    default = inspect.signature(type(cascade)).parameters["cost_weight"].default
    cascade.set_params(cost_weight=default)
    try:
        yield cascade
    finally:
        cascade.set_params(cost_weight=saved)


def hgb_policy():
    """The non-linear policy of the variant table: small gradient boosting."""
    return HistGradientBoostingClassifier(
        max_iter=50, max_leaf_nodes=15, early_stopping=False, random_state=0
    )


POLICY_VARIANTS = [
    {"policy": policy, "feature_set": features, "tune_threshold": tune}
    for policy in ("linear", "hgb")
    for features in ("confidence", "history", "probabilities")
    for tune in (True, False)
] + [{"policy": "constant", "feature_set": "confidence", "tune_threshold": True}]


def variant_points(
    held_out: StageOutputs,
    test: StageOutputs,
    normalized_cumulative: np.ndarray,
    variant: dict,
    cost_weights,
) -> list[Point]:
    """Frontier of one policy variant, learned with the public policy function."""
    policy = hgb_policy() if variant["policy"] == "hgb" else variant["policy"]
    points = []
    for cost_weight in cost_weights:
        learned = fit_bottom_up_policy(
            held_out.probas,
            held_out.y,
            normalized_cumulative,
            cost_weight,
            policy=policy,
            feature_set=variant["feature_set"],
            tune_threshold=variant["tune_threshold"],
        )
        held = evaluate_policy(
            learned, held_out.probas, held_out.y, normalized_cumulative
        )
        points.append(
            make_point(
                f"cost_weight={cost_weight:g}",
                test,
                learned.exit_stage(test.probas),
                normalized_cumulative,
                held.accuracy,
                held.normalized_cost,
                {"cost_weight": float(cost_weight)},
            )
        )
    return points
