"""``skadaptive frontier`` for regressors: errors in the target's units.

The same table, JSON and plot as for classifiers, with each point's error
(MSE or MAE, as ``--loss``) where they show an accuracy: lower is better.
"""

from __future__ import annotations

from ._frontier import (
    ERROR_NAMES,
    _knob,
    answer_reason,
    batch_size_advice,
    combiner_cv_error,
    costs_unit_text,
    fit_answer_kinds,
    format_points,
    point_intervals,
    report_answer_kinds,
)
from ._frontier import (
    _format_batch_sizes as format_batch_sizes,
)
from ._frontier import (
    _router_report as router_report,
)
from ._frontier import (
    _skips_report as skips_report,
)
from ._intervals import (
    CONFIDENCE,
    N_RESAMPLES,
    format_error_interval,
    too_few_policy_rows_warning,
    too_few_rows_warning,
)
from ._io import CommandError, recorded_warnings, split_rows

#: What each error is, for the note under the table.
ERROR_TEXTS = {
    "squared_error": "mean squared error of the predictions, in the target's "
    "units squared",
    "absolute_error": "mean absolute error of the predictions, in the target's units",
}


def columns(loss: str) -> tuple:
    """The table's columns: the classifiers' with the error for the accuracy."""
    return (
        "point",
        ERROR_NAMES[loss],
        f"{CONFIDENCE:.0%} CI",
        "cumulative cost",
        "cumulative / full",
        "exit rates",
    )


def run_regression(args, stages, X, y, progress, out) -> int:
    """``skadaptive frontier`` over the regression ``stages`` on ``X, y``."""
    from .. import AdaptiveCascadeRegressor

    X_policy, X_eval, y_policy, y_eval = split_rows(
        X, y, args.test_size, args.seed, args.data
    )
    loss = args.loss or "squared_error"
    fits = fit_answer_kinds(
        args,
        lambda **params: AdaptiveCascadeRegressor(stages, loss=loss, **params),
        _fit_and_evaluate,
        (X_policy, y_policy, X_eval, y_eval),
        progress,
    )
    name = fits[0][1]["error_name"]
    return report_answer_kinds(
        args,
        fits,
        (X_eval, y_eval),
        progress,
        out,
        formats=(_format, _format_exits, format_batch_sizes),
        titles=ANSWER_TITLES,
        note=(
            f"{name}: {ERROR_TEXTS[loss]} (lower is better); "
            f"{CONFIDENCE:.0%} CI: bootstrap interval of the {name} ({N_RESAMPLES} "
            "resamples of the held-out rows); cumulative cost: per row, of every "
            "stage the row ran (a stage's row: all rows exit there, "
            "with its own prediction). The plot draws each stage alone, at its "
            "own cost."
        ),
    )


#: The heading of each answer kind's report with ``--answer both``.
ANSWER_TITLES = {
    "stage": "stage answers (each exit answers with its stage's prediction)",
    "combined": "combined answers (each exit answers with a combination of the "
    "predictions of every stage the row ran)",
}


def _format_exits(exits) -> str:
    """One line: each exit's combined answer on the held-out rows."""
    return "combined answer at each exit (every row answered there): " + "; ".join(
        f"{e['name']} {e['error']:.4g} {format_error_interval(e['error_interval'])}"
        f" ({e['answers_with']})"
        for e in exits
    )


def _fit_and_evaluate(cascade, rows, seed, progress) -> tuple:
    """Fit ``cascade`` on the policy rows; its report on the evaluation rows."""
    X_policy, y_policy, X_eval, y_eval = rows
    kind = "" if cascade.answer == "stage" else f" ({cascade.answer} answers)"
    with progress.step(f"measuring costs and learning the policy{kind}"):
        try:
            with recorded_warnings() as caught:
                cascade.fit(X_policy, y_policy)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        fit_warnings = list(dict.fromkeys(str(w.message) for w in caught))
        cascade.set_params(verbose=0, memory=None)  # for this command only
    with progress.step(f"evaluating the frontier on held-out rows{kind}"):
        try:
            test = cascade.evaluate_frontier(X_eval, y_eval)
            intervals = error_intervals(cascade, X_eval, y_eval, seed)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
    report = _report(cascade, test, len(y_policy), len(y_eval), intervals)
    report["warnings"] = fit_warnings + report["warnings"]
    return cascade, report


def error_intervals(cascade, X, y, seed) -> dict:
    """Bootstrap intervals of the error of every point of the table.

    Needs each point's error on each row, which ``evaluate_frontier``
    averages away: the stages are run on the rows again, and the policies
    applied to their answers as it does. Each row's error is its loss in the
    target's units (squared or absolute), whose mean is the point's error.
    """
    from ..policies._policy import oracle_exits, stage_correct
    from ..stages import exit_probas

    # The answers as the policy sees them (centred and scaled): minus each
    # row's loss on that scale, times the scale's unit, is its error.
    alone, answers = cascade._exit_answers(exit_probas(cascade._stage_source(), X))
    y_scaled = cascade._encode_new_targets(y)
    minus_loss = stage_correct(answers, y_scaled, cascade.loss)
    minus_loss_alone = stage_correct(alone, y_scaled, cascade.loss)
    errors = -minus_loss * cascade._error_unit()
    errors_alone = -minus_loss_alone * cascade._error_unit()
    return point_intervals(
        cascade,
        answers,
        errors,
        errors_alone,
        oracle_exits(cascade._fitted_answers(minus_loss_alone, minus_loss)),
        seed,
        X,
        fitted=(
            cascade._fitted_answers(alone, answers),
            cascade._fitted_answers(errors_alone, errors),
        ),
    )


def _report(cascade, test, n_policy, n_eval, intervals) -> dict:
    """The classifiers' report with the error for the accuracy (same layout)."""
    total = float(cascade.cumulative_costs_[-1])
    stage_intervals = intervals["stages"]
    warning = too_few_rows_warning(
        n_eval, stage_intervals[0], stage_intervals[-1], fmt=format_error_interval
    )
    return {
        "task": "regression",
        "loss": cascade.loss,
        "error_name": ERROR_NAMES[cascade.loss],
        "answer": cascade.answer,
        "answer_kept": cascade.answer_,
        "answer_reason": answer_reason(cascade),
        "n_policy_rows": n_policy,
        "n_evaluation_rows": n_eval,
        "error_interval": {
            "method": "percentile bootstrap over the held-out rows",
            "confidence": CONFIDENCE,
            "resamples": N_RESAMPLES,
            "seed": cascade.random_state,
        },
        "stages": [
            {
                "name": name,
                "cost": float(cost),
                "cumulative_cost": float(cumulative),
                "error": float(error),
                "error_interval": interval,
            }
            for (name, _), cost, cumulative, error, interval in zip(
                cascade.estimators,
                cascade.costs_,
                cascade.cumulative_costs_,
                test["stage_errors"],
                stage_intervals,
            )
        ],
        "oracle": {
            "error": float(test["oracle_error"]),
            "error_interval": intervals["oracle"],
            "cost": float(test["oracle_cost"]),
        },
        "frontier": [
            {
                "cost_weight": float(lam),
                "error": float(error),
                "error_interval": interval,
                "cost": float(cost),
                "fraction_of_full_cost": float(cost / total),
                "exit_rates": rates.tolist(),
                "run_rates": runs.tolist(),
            }
            for lam, error, interval, cost, rates, runs in zip(
                test["cost_weight"],
                test["error"],
                intervals["frontier"],
                test["expected_cost"],
                test["exit_rates"],
                test["run_rates"],
            )
        ],
        "chosen": {
            "setting": _knob(cascade),
            "error": float(test["error_at_fit"]),
            "error_interval": intervals["chosen"],
            "cost": float(test["cost_at_fit"]),
            "exit_rates": [float(r) for r in test["exit_rates_at_fit"]],
            "policy_rows_cost": float(cascade.policy_rows_cost_),
            "expected_cost": float(cascade.expected_cost_),
            "budget_status": cascade.budget_status_,
            "router": router_report(cascade),
            "skips": skips_report(cascade, test),
        },
        "exits": [
            {
                "name": name,
                "combiner": combiner.kind,
                "answers_with": kind,
                "error": float(error),
                "error_interval": interval,
                **_combiner_report(combiner, kind),
            }
            for (name, _), combiner, kind, error, interval in zip(
                cascade.estimators,
                cascade.combiners_,
                cascade._exit_answer_kinds(),
                test["exit_errors"],
                intervals["exits"],
            )
        ],
        "batch_sizes": batch_size_advice(
            cascade, test["exit_rates_at_fit"], test["run_rates_at_fit"]
        ),
        "costs_unit": costs_unit_text(cascade),
        "warnings": [w for w in (too_few_policy_rows_warning(n_policy), warning) if w],
    }


def _combiner_report(combiner, kind) -> dict:
    """What an exit's combiner learned: each kind's out-of-fold error on the
    policy rows, and the weights and intercept of the one the exit answers
    with (``kind``; target's units)."""
    report = combiner_cv_error(combiner)
    if kind != "stage":
        report["combiner_weights"] = [float(w) for w in combiner.weights]
        report["combiner_bias"] = float(combiner.bias)
    return report


def _format(report) -> str:
    return format_points(
        report,
        lambda point: f"{point['error']:.4g}",
        lambda point: format_error_interval(point["error_interval"]),
        lambda point: float(f"{point['error']:.12g}"),
        columns(report["loss"]),
    )
