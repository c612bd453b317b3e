"""Exits after given numbers of boosting rounds of a LightGBM or XGBoost model.

Stage ``k`` evaluates only the rounds ``exits[k-1]:exits[k]`` on the rows still
running and adds their raw score (margin) to the carried one; the answer is the
objective's link applied to the running score. With all rounds the result equals
the model's own ``predict_proba`` (or ``predict``); at each exit it equals the
library's own prediction truncated at that round (LightGBM ``num_iteration=``,
XGBoost ``iteration_range=(0, b)``).

Only public API is used:

- LightGBM: ``Booster.predict(X, raw_score=True, start_iteration=a,
  num_iteration=b - a)`` gives the raw score of rounds ``a:b`` alone (the
  model's starting score is folded into the first round's leaves);
  ``dump_model(num_iteration=1)`` names the objective.
- XGBoost: ``Booster.inplace_predict(X, iteration_range=(a, b),
  predict_type="margin", base_margin=s)``. The first exit is called without a
  base margin, so it starts from the model's intercept (from ``base_score``);
  later exits pass the running score ``s`` (float32) as the base margin, which
  replaces the intercept, and get back ``s`` plus rounds ``a:b``. XGBoost adds
  its trees one by one in float32, so continuing from the running score adds
  them in the same order and precision as its own prediction: every exit
  equals ``iteration_range=(0, b)`` exactly (a sum of separate float32
  margins in float64 would differ by float32 rounding: 2e-5 relative after
  300 rounds on targets of about 1000).
  ``save_config()`` names the objective and the booster.

The library is recognised by the module of the model's class, so importing
skadaptive never imports LightGBM or XGBoost.
"""

from __future__ import annotations

import json
import numbers
import threading
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted

from .._rowwise import softmax_rows
from .._sklearn_private import _num_samples, _safe_indexing
from .._typing import Rows
from ._multi_exit import MultiExitSource
from ._tree_exits import check_tree_exits

__all__ = ["BoosterExits"]

# LightGBM sets the range of iterations to predict with on the Booster itself
# (``InitPredict``) for each call, so two threads predicting different ranges
# of one Booster at once can each use the other's rounds (batches routed with
# ``n_jobs``). Its calls are made one at a time; each uses LightGBM's own
# threads. XGBoost's in-place prediction is thread-safe.
_LIGHTGBM_PREDICT = threading.Lock()

_LIBRARIES = {"lightgbm": "LightGBM", "xgboost": "XGBoost"}
_KINDS = {
    ("lightgbm", "LGBMClassifier"): "classifier",
    ("lightgbm", "LGBMRegressor"): "regressor",
    ("lightgbm", "Booster"): "booster",
    ("xgboost", "XGBClassifier"): "classifier",
    ("xgboost", "XGBRegressor"): "regressor",
    ("xgboost", "Booster"): "booster",
}
_ROUNDS_TOTAL = "the model's number of boosting rounds"
_SUPPORTED_NAMES = (
    "LGBMClassifier, LGBMRegressor, XGBClassifier, XGBRegressor, or a "
    "lightgbm.Booster or xgboost.Booster"
)

# LightGBM parameter aliases (as LightGBM's documentation lists them).
_LGB_BOOSTING = ("boosting", "boosting_type", "boost")
_LGB_ROUNDS = (
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "max_iter",
)
_LGB_EARLY_STOPPING = (
    "early_stopping_round",
    "early_stopping_rounds",
    "early_stopping",
    "n_iter_no_change",
)
_LGB_OBJECTIVE = ("objective", "app", "loss", "application", "objective_type")
# LightGBM's names of its objectives (case-insensitive) -> the name it dumps.
_LGB_OBJECTIVE_ALIASES = {
    **dict.fromkeys(
        (
            "regression_l2",
            "l2",
            "mean_squared_error",
            "mse",
            "l2_root",
            "root_mean_squared_error",
            "rmse",
        ),
        "regression",
    ),
    **dict.fromkeys(("l1", "mean_absolute_error", "mae"), "regression_l1"),
    "mean_absolute_percentage_error": "mape",
    "softmax": "multiclass",
    **dict.fromkeys(("multiclass_ova", "ova", "ovr"), "multiclassova"),
    "xentropy": "cross_entropy",
    "xentlambda": "cross_entropy_lambda",
    **dict.fromkeys(
        ("xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart"), "rank_xendcg"
    ),
}

# Objective -> link from the raw score to the answer. LightGBM names its
# objectives as ``dump_model()["objective"]`` does (aliases resolved).
_LGB_LINKS = {
    "regression": "identity",
    "regression_l1": "identity",
    "huber": "identity",
    "fair": "identity",
    "quantile": "identity",
    "mape": "identity",
    "poisson": "exp",
    "gamma": "exp",
    "tweedie": "exp",
    "binary": "sigmoid",
    "cross_entropy": "sigmoid",
    "cross_entropy_lambda": "softplus",
    "multiclass": "softmax",
}
_XGB_LINKS = {
    "reg:squarederror": "identity",
    "reg:squaredlogerror": "identity",
    "reg:pseudohubererror": "identity",
    "reg:absoluteerror": "identity",
    "reg:quantileerror": "identity",
    "reg:logistic": "sigmoid",
    "binary:logistic": "sigmoid",
    "count:poisson": "exp",
    "reg:gamma": "exp",
    "reg:tweedie": "exp",
    "multi:softprob": "softmax",
    "multi:softmax": "softmax",
}
# The objectives a Booster (which has no scikit-learn type) is a classifier of.
_CLASSIFICATION = {"binary", "multiclass", "binary:logistic"} | {
    "multi:softprob",
    "multi:softmax",
}
_REFUSED_OBJECTIVES = {
    "multiclassova": "its one-vs-rest class probabilities are independent "
    "sigmoids that need not sum to 1; train with objective='multiclass'",
    "lambdarank": "it ranks rows, and an exit needs a class probability or a "
    "prediction",
    "rank_xendcg": "it ranks rows, and an exit needs a class probability or a "
    "prediction",
    "binary:logitraw": "it answers raw margins, not probabilities; train with "
    "objective='binary:logistic'",
    "binary:hinge": "it answers hard 0/1 labels, not probabilities; train "
    "with objective='binary:logistic'",
}


# -- recognising the models, without importing their libraries ---------------


def _library(obj) -> str | None:
    """``"lightgbm"`` or ``"xgboost"`` where ``obj``'s class comes from there."""
    for cls in type(obj).__mro__:
        root = (getattr(cls, "__module__", None) or "").partition(".")[0]
        if root in _LIBRARIES:
            return root
    return None


def is_booster_model(obj) -> bool:
    """Whether ``obj`` is a LightGBM or XGBoost object (model or Booster)."""
    return _library(obj) is not None


def is_raw_booster(obj) -> bool:
    """Whether ``obj`` is a ``lightgbm.Booster`` or ``xgboost.Booster``."""
    return _library(obj) is not None and _kind(obj, strict=False) == "booster"


def booster_kind(model) -> str:
    """``"classifier"``, ``"regressor"`` or ``"booster"`` (a Booster, whose
    objective decides); TypeError, with the reason, for other LightGBM and
    XGBoost models (rankers, XGBoost's random forests)."""
    return _kind(model)


def _kind(model, strict: bool = True) -> str | None:
    """``"classifier"``, ``"regressor"`` or ``"booster"``; TypeError otherwise."""
    library = _library(model)
    names = [
        cls.__name__
        for cls in type(model).__mro__
        if (getattr(cls, "__module__", None) or "").partition(".")[0] == library
    ]
    if any(name.startswith("XGBRF") for name in names):
        if not strict:
            return None
        raise TypeError(
            f"{type(model).__name__} grows all its trees in one boosting round "
            "(a random forest), so there are no rounds to stop between. Use "
            "XGBClassifier or XGBRegressor, or a RandomForestClassifier or "
            "RandomForestRegressor, whose exits are numbers of trees."
        )
    for name in names:
        kind = _KINDS.get((library, name))
        if kind is not None:
            return kind
    if not strict:
        return None
    raise TypeError(
        f"BoosterExits supports {_SUPPORTED_NAMES}; got {type(model).__name__}."
    )


def model_name(model) -> str:
    if _kind(model, strict=False) == "booster":
        return f"{_LIBRARIES[_library(model)]} Booster"
    return type(model).__name__


def _booster_of(model):
    """The library's Booster of a fitted model (the Booster itself)."""
    if _kind(model) == "booster":
        return model
    check_is_fitted(model)
    if _library(model) == "lightgbm":
        return model.booster_
    return model.get_booster()


def _positive(value) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, numbers.Real):
        return value > 0
    return True


def _early_stopping_error(model, setting: str) -> ValueError:
    return ValueError(
        f"{model_name(model)} with {setting} stops boosting at a different round "
        "in every cross-fitting fold, so the folds and the refitted model would "
        "not share the same exits. Fix the number of rounds with n_estimators "
        "(and no early stopping), or fit the model yourself and pass "
        "FrozenEstimator(model) with policy data it was not fitted on."
    )


def _mode_error(name: str, mode: str, library: str) -> ValueError:
    reasons = {
        "dart": "DART rescales earlier trees each time it adds one (dropout), so "
        "the sum of the first rounds is not the model's prediction at any round",
        "rf": "a random forest averages its trees instead of summing them, so "
        "the running score is not a sum over rounds",
        "gblinear": "a linear booster updates one linear model each round, not "
        "an additive tree whose score can be added up to an exit",
    }
    plain = "boosting_type='gbdt'" if library == "lightgbm" else "booster='gbtree'"
    fix = {
        "dart": f"Train it with {plain}",
        "rf": "Use RandomForestClassifier or RandomForestRegressor (exits after "
        f"numbers of trees), or train it with {plain}",
        "gblinear": f"Train it with {plain}",
    }
    return ValueError(
        f"{name} with {mode!r} boosting has no early exits: {reasons[mode]}. "
        f"{fix[mode]}."
    )


def _custom_objective_error(name: str) -> ValueError:
    return ValueError(
        f"{name} has a custom objective: its raw score has no known link to "
        "probabilities or predictions, so the exits cannot answer. Use a "
        "built-in objective."
    )


def _callbacks_stop_early(callbacks) -> bool:
    """Whether a callback stops early: the libraries' ``EarlyStopping``
    classes, or classes derived from them (recognised by name, so that
    neither library is imported)."""
    return any(
        "EarlyStopping" in cls.__name__
        for callback in callbacks or ()
        for cls in type(callback).__mro__
    )


def _flag(value) -> bool:
    """A LightGBM boolean parameter as LightGBM reads it."""
    if value is None or value is False:
        return False
    return str(value).strip().lower() not in ("false", "-", "0")


def _check_predict_params(model) -> None:
    """Refuse a LightGBM scikit-learn model whose own predictions stop early.

    Its ``predict`` and ``predict_proba`` pass the model's parameters to
    LightGBM's prediction, so with ``pred_early_stop`` they stop adding
    rounds for a row whose margin is large enough, and differ from the exits
    (and from the model's truncated predictions).
    """
    if _library(model) != "lightgbm" or _kind(model) == "booster":
        return
    value = model.get_params(deep=False).get("pred_early_stop")
    if _flag(value):
        raise ValueError(
            f"{type(model).__name__} with pred_early_stop={value!r} stops adding "
            "rounds for a row once its margin is large enough (LightGBM's "
            "prediction early stopping), so its own predictions are not the sum "
            "of its rounds and the exits could not equal them. Set "
            "pred_early_stop=False (set_params(pred_early_stop=False) on a "
            "fitted model: it only changes prediction); the early exits decide "
            "where each row stops."
        )


def _lgb_objective_name(value) -> str:
    """A LightGBM objective's name as ``dump_model()`` gives it."""
    name = str(value).strip().lower()
    return _LGB_OBJECTIVE_ALIASES.get(name, name)


def _unfitted_objective(model, params: dict):
    """The objective an unfitted scikit-learn model is set to (a name, a
    callable, or None for the model's default)."""
    if _library(model) == "lightgbm":
        # LightGBM's wrapper uses an alias given among the parameters instead
        # of ``objective``.
        for alias in _LGB_OBJECTIVE[1:]:
            if params.get(alias) is not None:
                return params[alias]
    return params.get("objective")


def _link_of(model, objective: str) -> str:
    """The link of a named objective; ValueError for refused objectives."""
    links = _LGB_LINKS if _library(model) == "lightgbm" else _XGB_LINKS
    if objective not in links:
        raise _refused_objective(model, objective)
    return links[objective]


def _check_answers(name: str, objective: str, link: str, regression: bool) -> None:
    """Refuse an objective whose answers do not fit the model's kind."""
    if regression and link == "softmax":
        raise ValueError(
            f"{name} has objective {objective!r}, which answers one raw score "
            "per class; a regressor's exits need one prediction per row."
        )
    if not regression and link not in ("sigmoid", "softmax"):
        raise ValueError(
            f"{name} has objective {objective!r}, whose answers are not "
            "class probabilities; a classifier needs a binary or multiclass "
            "objective."
        )


def check_unfitted_booster(model) -> int:
    """The rounds an unfitted LightGBM/XGBoost model will grow, checked.

    Refuses, before anything is fitted, the configurations that have no early
    exits (DART, random forest, linear boosters, custom and unsupported
    objectives, LightGBM's prediction early stopping) and early stopping (the
    rounds would differ per cross-fitting fold).
    """
    kind = _kind(model)
    name = type(model).__name__
    if kind == "booster":
        raise TypeError(f"A {model_name(model)} is fitted already.")
    params = model.get_params(deep=False)
    objective = _unfitted_objective(model, params)
    if callable(objective):
        raise _custom_objective_error(name)
    if objective is not None:
        if _library(model) == "lightgbm":
            objective = _lgb_objective_name(objective)
            if objective in ("custom", "none", "null", "na"):
                raise _custom_objective_error(name)
        _check_answers(name, objective, _link_of(model, objective), kind == "regressor")
    _check_predict_params(model)
    if _library(model) == "lightgbm":
        for alias in _LGB_BOOSTING:
            mode = {"random_forest": "rf"}.get(params.get(alias), params.get(alias))
            if mode in ("dart", "rf"):
                raise _mode_error(name, mode, _library(model))
        for alias in _LGB_EARLY_STOPPING:
            if _positive(params.get(alias)):
                raise _early_stopping_error(model, f"{alias}={params[alias]!r}")
        return configured_rounds(model)
    mode = params.get("booster")
    if mode in ("dart", "gblinear"):
        raise _mode_error(name, mode, _library(model))
    if params.get("early_stopping_rounds") is not None:
        value = params["early_stopping_rounds"]
        raise _early_stopping_error(model, f"early_stopping_rounds={value!r}")
    if _callbacks_stop_early(params.get("callbacks")):
        raise _early_stopping_error(model, "an EarlyStopping callback")
    return configured_rounds(model)


def check_round_exits(
    exits, n_rounds: int, *, counts: str = "round", total: str = _ROUNDS_TOTAL
) -> tuple[int, ...]:
    """``exits`` as a tuple of round counts (see ``check_tree_exits``)."""
    return check_tree_exits(exits, n_rounds, counts=counts, total=total)


def fits_on_class_indices(model) -> bool:
    """Whether an unfitted model must be fitted on the class indices
    ``0 .. n_classes - 1`` rather than on the labels: XGBoost's classifiers
    (random forests included) refuse other labels, where LightGBM's and
    scikit-learn's encode them. A pipeline passes the labels to its last step."""
    if isinstance(model, Pipeline):
        return fits_on_class_indices(model.steps[-1][1])
    return _library(model) == "xgboost" and is_classifier(model)


def check_fit_callbacks(model, fit_params: dict) -> None:
    """Refuse early-stopping callbacks routed to an unfitted model's fit."""
    if _callbacks_stop_early(fit_params.get("callbacks")):
        raise _early_stopping_error(model, "an early-stopping callback passed to fit")


#: Fit parameters of LightGBM and XGBoost that add a per-row offset to the
#: model's raw score: exits and the policy rows answer without it.
ROW_OFFSETS = ("base_margin", "init_score")


def check_fit_offsets(model, fit_params: dict) -> None:
    """Refuse a per-row offset routed to the backbone's fit: the model would
    learn around it, and neither its exits nor its answers at prediction can
    add it (they answered without it, far off, and without a word)."""
    given = [name for name in ROW_OFFSETS if fit_params.get(name) is not None]
    if given:
        constant = (
            "for a constant offset, set base_score on the model"
            if _library(model) == "xgboost"
            else "LightGBM's models take no constant offset of their own; by "
            "default they start from the average target (boost_from_average)"
        )
        raise ValueError(
            f"{given[0]} was passed to {type(model).__name__}.fit: a per-row "
            "offset of the raw score, which the early exits cannot add to their "
            f"answers (nor can predict be given one). Fit without it ({constant}), "
            "or fit the model yourself and pass it in a FrozenEstimator only if "
            "it answers without the offset."
        )


def stopped_early(model) -> bool:
    """Whether a fitted LightGBM/XGBoost model was fitted with early stopping."""
    booster = _booster_of(model)
    if _library(model) == "lightgbm":
        return booster.best_iteration > 0
    return hasattr(booster, "best_iteration")


def configured_rounds(model) -> int:
    """The boosting rounds an unfitted-or-fitted scikit-learn wrapper of
    LightGBM or XGBoost is set to grow (its parameters, aliases included;
    XGBoost's own default where ``n_estimators`` is None)."""
    if _library(model) == "xgboost":
        return int(model.get_num_boosting_rounds())
    params = model.get_params(deep=False)
    for alias in _LGB_ROUNDS:
        if params.get(alias) is not None:
            return int(params[alias])
    return int(params["n_estimators"])


def refuse_stopped(model) -> None:
    """Refuse a model we fitted that did not grow the rounds it was set to:
    early stopping (a callback routed to fit set ``best_iteration``), or a
    model that stopped by itself (LightGBM when no split is left that meets
    its min_split_gain or min_child_samples, a callback that ended training
    without setting ``best_iteration``). Either would stop at another round
    in every cross-fitting fold."""
    if stopped_early(model):
        raise _early_stopping_error(model, "early stopping (it set best_iteration)")
    if _kind(model) == "booster":
        return
    grown, configured = fitted_rounds(model), configured_rounds(model)
    if grown < configured:
        cause = (
            "LightGBM stops when no split is left that meets its settings: "
            "min_split_gain, min_child_samples, min_sum_hessian_in_leaf"
            if _library(model) == "lightgbm"
            else "a callback ended the training"
        )
        raise ValueError(
            f"{model_name(model)} grew {grown} of the {configured} boosting rounds "
            f"it was set to when fitted here ({cause}), so it would stop at "
            "another round in every cross-fitting fold, and the folds and the "
            "refitted model would not share the same exits. Set n_estimators to "
            "rounds it grows, relax what stops it, or fit it yourself and pass "
            "FrozenEstimator(model) with policy data it was not fitted on."
        )


def fitted_rounds(model) -> int:
    """The rounds a fitted model predicts with by default.

    LightGBM predicts with ``best_iteration`` where early stopping set it (its
    ``Booster.predict`` and the scikit-learn wrappers alike); XGBoost's
    scikit-learn wrappers predict with ``best_iteration + 1`` rounds, its
    ``Booster.predict`` with all of them.
    """
    booster = _booster_of(model)
    if _library(model) == "lightgbm":
        best = booster.best_iteration
        return int(best) if best > 0 else int(booster.current_iteration())
    if _kind(model) != "booster":
        try:
            return int(booster.best_iteration) + 1
        except AttributeError:  # no early stopping
            pass
    return int(booster.num_boosted_rounds())


def booster_classes(model) -> np.ndarray:
    """The classes of a fitted classification model (a Booster's: 0 .. k - 1)."""
    return BoosterExits(model, [fitted_rounds(model)]).classes_


# -- the objective --------------------------------------------------------------


@dataclass(frozen=True)
class _Objective:
    """What the exits need of a fitted model's objective."""

    name: str
    link: str  # identity, square, exp, sigmoid, softplus or softmax
    n_columns: int  # raw-score columns (classes for softmax, else 1)
    sigmoid: float = 1.0  # LightGBM binary's sigmoid coefficient
    missing: float = np.nan  # XGBoost's missing-value marker


def _refused_objective(model, name: str) -> ValueError:
    reason = _REFUSED_OBJECTIVES.get(name)
    if reason is None:
        if name.startswith(("rank:", "survival:")):
            reason = (
                "it ranks rows or models survival times, and an exit needs a "
                "class probability or a prediction"
            )
        else:
            reason = "its link from the raw score to the answer is not known here"
    links = _LGB_LINKS if _library(model) == "lightgbm" else _XGB_LINKS
    return ValueError(
        f"{model_name(model)} has objective {name!r}, which has no early exits: "
        f"{reason}. Supported objectives: {', '.join(links)}."
    )


def _objective(model) -> _Objective:
    booster = _booster_of(model)
    name = model_name(model)
    if callable(getattr(model, "objective", None)):
        raise _custom_objective_error(name)
    if _library(model) == "lightgbm":
        for alias in _LGB_BOOSTING:
            mode = {"random_forest": "rf"}.get(
                booster.params.get(alias), booster.params.get(alias)
            )
            if mode in ("dart", "rf"):
                raise _mode_error(name, mode, _library(model))
        dumped = booster.dump_model(num_iteration=1)
        if dumped.get("average_output"):
            raise _mode_error(name, "rf", "lightgbm")
        text = dumped.get("objective")
        if not text or text.split()[0] in ("custom", "none", "None"):
            raise _custom_objective_error(name)
        objective, *options = text.split()
        settings = dict(o.split(":", 1) for o in options if ":" in o)
        link = _link_of(model, objective)
        if link == "identity" and "sqrt" in options:
            link = "square"  # reg_sqrt: fitted on sqrt(y), answers sign(s) s**2
        return _Objective(
            objective,
            link,
            int(dumped.get("num_tree_per_iteration", 1)),
            sigmoid=float(settings.get("sigmoid", 1.0)),
        )
    learner = json.loads(booster.save_config())["learner"]
    mode = learner["gradient_booster"]["name"]
    if mode in ("dart", "gblinear"):
        raise _mode_error(name, mode, _library(model))
    if mode != "gbtree":
        raise ValueError(f"{name} uses booster {mode!r}; only 'gbtree' has exits.")
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) > 1:
        raise ValueError(
            f"{name} has {params['num_target']} targets: multi-output models are "
            "not supported (exits need one probability vector, or one "
            "prediction, per row)."
        )
    objective = learner["objective"]["name"]
    link = _link_of(model, objective)
    missing = getattr(model, "missing", np.nan)
    return _Objective(
        objective,
        link,
        max(1, int(params.get("num_class", 0))) if link == "softmax" else 1,
        missing=np.nan if missing is None else missing,
    )


@dataclass
class _BoosterState:
    """The running rows, validated once, and their running raw score."""

    X: object
    score: np.ndarray


class BoosterExits(MultiExitSource):
    """Exits after given numbers of boosting rounds of a LightGBM or XGBoost model.

    Exit ``k`` runs only the rounds ``exits[k-1]:exits[k]`` on the rows still
    running and adds them to the carried raw score (see the module for how
    XGBoost's intercept is counted once); its answer is the objective's link of
    that score, which equals the library's own prediction truncated at
    ``exits[k]`` rounds.

    Parameters
    ----------
    estimator : LGBMClassifier, LGBMRegressor, XGBClassifier, XGBRegressor, \
            lightgbm.Booster or xgboost.Booster
        A fitted model, possibly wrapped in a ``FrozenEstimator``; used as
        given, never refitted. A Booster is a classifier when its objective is
        binary or multiclass (its classes are then ``0 .. n_classes - 1``;
        a multiclass objective may have two classes) and a regressor
        otherwise. Links from the raw score: the sigmoid for
        binary objectives (LightGBM's with its ``sigmoid`` coefficient) and
        for XGBoost's ``reg:logistic`` and LightGBM's ``cross_entropy``; the
        softmax for multiclass ones; the identity for regression objectives
        (``sign(s) * s**2`` with LightGBM's ``reg_sqrt``); ``exp`` for the
        log-link objectives (Poisson, gamma, Tweedie), whose predictions are
        ``exp`` of the running score exactly as the models' own; and
        ``log(1 + exp(s))`` for LightGBM's ``cross_entropy_lambda``.
        Refused, with the reason: DART and random-forest boosting and
        XGBoost's ``gblinear`` (the score is not a plain sum over rounds),
        ``XGBRFClassifier``/``XGBRFRegressor`` (one round), multi-output
        models, custom objectives, ranking and survival objectives,
        LightGBM's ``multiclassova`` and XGBoost's ``binary:logitraw`` and
        ``binary:hinge``, and LightGBM's scikit-learn models with
        ``pred_early_stop=True`` (their own predictions stop adding rounds
        early, so they are not the sum of their rounds).
    exits : list of int
        Strictly increasing round counts ending at the model's number of
        rounds, e.g. ``[25, 50, 100, 200, 400]``: exit ``k`` answers with the
        first ``exits[k]`` rounds (a multiclass round has one tree per class).
        After early stopping the number of rounds is the one the model
        predicts with by default: LightGBM's ``best_iteration``, and for
        XGBoost's scikit-learn models ``best_iteration + 1`` (an
        ``xgboost.Booster`` predicts with all its rounds).

    Attributes
    ----------
    n_stages : int
    classes_ : ndarray of shape (n_classes,)
        Classifiers only.
    regression : bool
        Whether the model answers regression predictions; each exit then
        answers an array of shape (n_rows, 2): the prediction and an
        uncertainty of 0.
    round_counts : ndarray of shape (n_stages,)
        Rounds evaluated by each exit: the increments of ``exits``.
    n_rounds : int
        The model's number of rounds (the last exit).
    objective : str
        The model's objective, as the library names it.
    n_features_in_ : int
        The number of features the model was trained on.

    See Also
    --------
    TreeEnsembleExits : The same for scikit-learn's tree ensembles.

    Notes
    -----
    The rows are validated once, at the first exit: a DataFrame is kept as it
    is (the libraries read its categorical columns), a sparse matrix becomes
    CSR and anything else a numeric array; the number of features must be the
    model's. Both libraries take missing values (NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from lightgbm import LGBMClassifier
    >>> from sklearn.datasets import load_iris
    >>> from skadaptive.stages import BoosterExits, exit_probas
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    >>> source = BoosterExits(model, [5, 20])
    >>> source.round_counts
    array([ 5, 15])
    >>> first, last = exit_probas(source, X)
    >>> bool(np.allclose(last, model.predict_proba(X)))
    True
    """

    #: Whether the model answers regression predictions (set per instance).
    regression = False

    #: The unit of :meth:`default_costs`.
    cost_unit = "rounds"

    @property
    def rows_in_state(self) -> bool:
        """Whether later stages read the state only (the engine then passes
        them no rows): true unless a subclass overrides ``run_stage``."""
        return type(self).run_stage is BoosterExits.run_stage

    def __init__(self, estimator, exits):
        model = (
            estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
        )
        if not is_booster_model(model):
            raise TypeError(
                f"BoosterExits supports {_SUPPORTED_NAMES}; got {type(model).__name__}."
            )
        kind = _kind(model)
        objective = _objective(model)
        name = model_name(model)
        if kind == "booster":
            self.regression = objective.name not in _CLASSIFICATION
        else:
            self.regression = kind == "regressor"
        _check_answers(name, objective.name, objective.link, self.regression)
        _check_predict_params(model)
        self.estimator = estimator
        self._model = model
        self._library = _library(model)
        self._objective = objective
        self.objective = objective.name
        self.n_rounds = fitted_rounds(model)
        total = _ROUNDS_TOTAL
        if self.n_rounds < int(self._total_rounds()):
            total += " up to its best iteration from early stopping"
        self.exits = check_round_exits(exits, self.n_rounds, total=total)
        booster = _booster_of(model)
        self.n_features_in_ = int(
            booster.num_feature()
            if self._library == "lightgbm"
            else booster.num_features()
        )
        if not self.regression:
            if kind == "booster":
                n_classes = max(2, objective.n_columns)
                self.classes_ = np.arange(n_classes)
            else:
                self.classes_ = np.asarray(model.classes_)
            # Two classes have one raw score (a sigmoid) or, with a softmax
            # objective of two classes, one per class.
            n_columns = 1 if objective.link == "sigmoid" else len(self.classes_)
            if objective.n_columns != n_columns:
                raise ValueError(
                    f"{name} has {len(self.classes_)} classes but "
                    f"{objective.n_columns} raw scores per row."
                )

    def _total_rounds(self) -> int:
        booster = _booster_of(self._model)
        if self._library == "lightgbm":
            return booster.current_iteration()
        return booster.num_boosted_rounds()

    @property
    def n_stages(self) -> int:
        """Number of exits."""
        return len(self.exits)

    @property
    def round_counts(self) -> np.ndarray:
        """Rounds evaluated by each exit: the increments of ``exits``."""
        return np.diff(self.exits, prepend=0)

    def default_costs(self) -> np.ndarray:
        """Incremental cost of each exit in boosting rounds (``round_counts``).

        Returns
        -------
        costs : ndarray of shape (n_stages,)
        """
        return self.round_counts.astype(np.float64)

    # -- rows ------------------------------------------------------------------

    def _validate(self, X):
        """The rows as the library reads them, with the model's feature count."""
        if hasattr(X, "iloc") and hasattr(X, "columns"):
            n_features = X.shape[1]  # a DataFrame: categorical columns kept
        elif sp.issparse(X):
            # CSR matrices: XGBoost's in-place prediction reads no sparse arrays.
            X = sp.csr_matrix(X)
            n_features = X.shape[1]
        else:
            # Numbers kept as given (the libraries convert them as their own
            # predict does); NaN and infinity are theirs to handle.
            X = check_array(X, dtype="numeric", ensure_all_finite=False, order="C")
            n_features = X.shape[1]
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {model_name(self._model)} "
                f"was trained on {self.n_features_in_} features."
            )
        return X

    def _score(self, X, start: int, stop: int, score) -> np.ndarray:
        """The running raw score after ``stop`` rounds, shape (n_rows, n_columns):
        ``score`` (that after ``start`` rounds; None at 0) plus rounds
        ``start:stop``."""
        n_rows, n_columns = _num_samples(X), self._objective.n_columns
        if n_rows == 0:
            return np.zeros((0, n_columns))
        booster = _booster_of(self._model)
        if self._library == "lightgbm":
            with _LIGHTGBM_PREDICT:
                raw = booster.predict(
                    X, raw_score=True, start_iteration=start, num_iteration=stop - start
                )
            # LightGBM adds its rounds in float64, as here.
            margin = np.asarray(raw, dtype=np.float64).reshape(n_rows, n_columns)
            return margin if score is None else score + margin
        base_margin = None
        if score is not None:
            # The running score (float32 values) replaces the intercept, which
            # the first exit's call added: XGBoost adds this exit's trees to
            # it in float32, in the same order as its own prediction.
            shape = (n_rows, n_columns) if n_columns > 1 else (n_rows,)
            base_margin = score.astype(np.float32).reshape(shape)
        raw = booster.inplace_predict(
            X,
            iteration_range=(start, stop),
            predict_type="margin",
            missing=self._objective.missing,
            base_margin=base_margin,
        )
        return np.asarray(raw, dtype=np.float64).reshape(n_rows, n_columns)

    def _answer(self, score: np.ndarray) -> np.ndarray:
        link = self._objective.link
        if link == "softmax":
            return softmax_rows(score.copy())
        raw = score[:, 0]
        if link == "sigmoid":
            value = expit(self._objective.sigmoid * raw)
        elif link == "exp":
            value = np.exp(raw)
        elif link == "softplus":
            value = np.logaddexp(0.0, raw)
        elif link == "square":
            value = np.sign(raw) * raw * raw
        else:
            value = raw
        answer = np.zeros((score.shape[0], 2))
        if self.regression:
            answer[:, 0] = value  # and an uncertainty of 0
        else:
            answer[:, 1] = value
            answer[:, 0] = 1 - value
        return answer

    # -- StageSource -----------------------------------------------------------

    def run_stage(
        self, stage: int, X_rows: Rows | None, state: _BoosterState | None
    ) -> tuple[np.ndarray, _BoosterState]:
        """Add the rounds of exit ``stage`` for the running rows.

        At ``stage == 0`` ``X_rows`` is validated and kept in the state; later
        stages use the rows from the state, so ``X_rows`` may be None there (as
        the engine passes it) or must have the same number of rows.

        Parameters
        ----------
        stage : int
        X_rows : array-like, sparse matrix or DataFrame of shape \
                (n_rows, n_features)
        state : object or None
            None at stage 0, else the previous stage's state for these rows.

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes) or (n_rows, 2)
            Class probabilities; for a regressor, the prediction and an
            uncertainty of 0.
        state : object
            The validated rows and their running raw score.
        """
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of range [0, {self.n_stages}).")
        if stage == 0:
            X = self._validate(X_rows)
            start, score = 0, None
        else:
            if state is None:
                raise ValueError(
                    f"Stage {stage} continues from stage {stage - 1}'s state; got None."
                )
            n_rows = state.score.shape[0]
            if X_rows is not None and _num_samples(X_rows) != n_rows:
                raise ValueError(
                    f"X_rows has {_num_samples(X_rows)} rows but the state has "
                    f"{n_rows}: pass the state of the same rows (see keep_rows)."
                )
            X, start, score = state.X, self.exits[stage - 1], state.score
        score = self._score(X, start, self.exits[stage], score)
        return self._answer(score), _BoosterState(X, score)

    def keep_rows(
        self, state: _BoosterState | None, mask: np.ndarray
    ) -> _BoosterState | None:
        """The state of the rows where the boolean ``mask`` is true, in order.

        Parameters
        ----------
        state : object or None
            What :meth:`run_stage` returned.
        mask : ndarray of bool of shape (n_rows,)

        Returns
        -------
        state : object or None
        """
        if state is None:
            return None
        rows = np.flatnonzero(mask)
        return _BoosterState(
            _safe_indexing(state.X, rows), state.score.take(rows, axis=0)
        )
