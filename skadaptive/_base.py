"""What both estimators share: fit orchestration, prediction and ``with_policy``.

An estimator here is a sequence of exits (independent stages of a cascade, or
the exits of one shared computation) plus an exit policy. The subclass says
what its members are and what runs their exits (a stage source); this class
fits them on held-out rows (:mod:`._held_out`), resolves the costs
(:mod:`._costs`), has the policy chosen (:mod:`.policies`) and routes rows
(:mod:`.engine`). Checks of inputs live in :mod:`._validation`, the shared
docstrings in :mod:`._docs`.
"""

from __future__ import annotations

import copy
import time
import warnings
from hashlib import blake2b
from inspect import signature
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import joblib
import numpy as np
from sklearn import get_config
from sklearn.base import ClassifierMixin, MetaEstimatorMixin, clone, is_regressor
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    check_memory,
    column_or_1d,
    validate_data,
)
from threadpoolctl import threadpool_limits

from ._costs import check_budget, measures_costs, resolve_costs
from ._dask import is_lazy, lazy_predict
from ._frames import rows_from_state, rows_to_state
from ._held_out import fit_stages_on_held_out
from ._router import (
    check_auto_router_features,
    learn_estimator_router,
    routed_frontier,
    router_cost_of,
    split_router_cost,
)
from ._sklearn_private import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    _BaseComposition,
    _fit_context,
    _num_samples,
    _raise_for_params,
    _safe_indexing,
    validate_parameter_constraints,
)
from ._typing import ArrayLike, Estimator, Predictions, RandomState, Rows
from ._validation import (
    check_frozen_rows,
    check_missing_values,
    check_rows_given,
    check_weights,
    frozen_classes,
    indexable,
    is_frozen,
    members_refusing_nan,
    nan_fate,
    rows_text,
    short_list,
    unique_labels,
    warn_sample_weight_unused,
)
from ._warnings import warn
from .engine import route
from .engine._overhead import measure_routing_seconds
from .engine._routing import DEFAULT_BATCH_SIZE
from .persistence import check_versions, record_versions
from .policies import (
    DEFAULT_COST_WEIGHTS,
    FEATURE_SETS,
    LOSSES,
    POLICIES,
    check_policy,
    make_policy_search,
)
from .policies._call_costs import (
    batch_cost,
    choose_with_call_costs,
    frontier_with_call_costs,
)
from .policies._losses import per_row_loss
from .policies._policy import (
    answer_costs,
    evaluate_exits,
    exit_figures,
    stage_accuracies,
    stage_correct,
    stage_figures,
)
from .policies._router import routed_walk
from .policies._selection import _POLICY_FOLDS as POLICY_FOLDS
from .policies._selection import (
    _row_groups,
    clearly_better_held_out,
    held_out_choice_words,
    row_folds,
)
from .policies._skips import SkipSearch
from .policies._thresholds import BUDGET_RTOL
from .stages import exit_probas, measure_exit_seconds
from .stages._booster_exits import fits_on_class_indices
from .stages._combined import MIN_ROWS as MIN_COMBINER_ROWS
from .stages._combined import N_FOLDS as N_COMBINER_FOLDS
from .stages._combined import (
    ExitCombiner,
    absent_classes,
    answering_source,
    combined_answers,
    combines,
    distinct_rows,
    enough_rows,
    enough_units,
    fit_combiners,
)
from .stages._costs import call_line_for, timing_scale
from .stages._cross_fitted import CrossFitted, row_hashes

if TYPE_CHECKING:
    from ._recalibrate import ExitReport
    from .policies import PolicySearch

_T = TypeVar("_T", bound="BaseAdaptive")

#: The name under which metadata routing gives the cv splitter its metadata
#: (a stage cannot take it).
ROUTED_SPLITTER = "splitter"


def _poor_score(tags) -> bool:
    """Whether a member's tags say it scores poorly (scikit-learn's checks
    then do not hold it to a reasonable score)."""
    kind = tags.classifier_tags or tags.regressor_tags
    return bool(kind is not None and kind.poor_score)


def _warn_answers_alike_within_folds(held_out, names) -> None:
    """Warn about a cross-fitted exit (not the last) that answers every row of
    each fold alike, with different answers in different folds: a rule
    learned on those answers could only follow which fold a row was in,
    which new rows (answered by the stage refitted on all rows) do not have.
    """
    folds = held_out.policy_folds
    if folds is None or any(isinstance(e, CrossFitted) for e in held_out.estimators):
        # One split; or the fold models kept, which answer each new row as
        # the fold its content was held out in.
        return
    exits = list(zip(names, held_out.stage_probas, held_out.cross_fitted))[:-1]
    fold_rows = [folds == f for f in np.unique(folds)]
    alike = []
    for name, answers, cross_fitted in exits:
        answers = np.asarray(answers)
        if not cross_fitted or np.ptp(answers, axis=0).max() == 0:
            continue
        if all(np.ptp(answers[rows], axis=0).max() == 0 for rows in fold_rows):
            alike.append(name)
    if alike:
        warn(
            f"{', '.join(repr(n) for n in alike)} answered every row of each "
            "cross-fitting fold alike (one answer per fold), so no policy can "
            "tell rows apart by its answers: a rule learned on them can only "
            "follow which fold a row was in, which new rows (answered by the "
            "stage refitted on all rows) do not have, and exit_rates_ and "
            "expected_cost_ would not hold on new rows. Use a stage whose "
            "answers depend on the features, or drop it.",
            UserWarning,
        )


def _hashable(obj) -> bool:
    """Whether joblib can hash ``obj`` (what ``memory=`` caches under)."""
    import joblib

    try:
        joblib.hash(obj)
    except Exception:
        return False
    return True


def _weighed(y_encoded, sample_weight) -> np.ndarray:
    """Which policy rows have a positive weight (all of them without weights)."""
    if sample_weight is None:
        return np.ones(len(y_encoded), dtype=bool)
    return np.asarray(sample_weight) > 0


def warn_no_combiners(answer, y_encoded, sample_weight, groups, units=None) -> None:
    """Say that ``answer="combined"`` answers with the stages' own ``answer``
    (probabilities, predictions): no combiner could be learned, for too few
    distinct rows or (``units``: the routed groups) a single group."""
    weighed = _weighed(y_encoded, sample_weight)
    if enough_rows(groups, weighed) and not enough_units(units, weighed):
        warn(
            f"answer='combined' answers with each stage's own {answer}: the "
            "policy rows of positive weight are all in one of the groups "
            "routed to cv's splitter, and a combiner must be scored on groups "
            "it was not learned from. Hold out rows of two groups or more for "
            "the policy, or use answer='stage'.",
            UserWarning,
        )
        return
    distinct = ""
    n_distinct = distinct_rows(groups, weighed)
    if n_distinct < int(weighed.sum()):
        distinct = f", {n_distinct} of them distinct (copies of a row count once)"
    n_weighed = int(weighed.sum())
    of_all = "" if n_weighed == len(y_encoded) else f" (of {rows_text(len(y_encoded))})"
    warn(
        f"answer='combined' answers with each stage's own {answer}: learning "
        f"combiners needs at least {MIN_COMBINER_ROWS} distinct policy rows of "
        f"positive weight; there are {rows_text(n_weighed)} of "
        f"positive weight{of_all}{distinct}.",
        UserWarning,
    )


def _groups_without_splitter(cv, error) -> str:
    """scikit-learn's refusal of routed ``groups`` that nothing requested,
    with the group splitter that does what ``cv`` (a fraction or a number of
    folds, neither of which takes groups) asks for."""
    if isinstance(cv, Real) and not isinstance(cv, Integral):
        fix = (
            f"for a hold-out of {cv * 100:g} % of the rows that keeps each group "
            "whole, "
            f"pass cv=GroupShuffleSplit(n_splits=1, test_size={cv!r})"
        )
    else:
        n_folds = cv if isinstance(cv, Integral) else 5
        fix = f"for folds that keep each group whole, pass cv=GroupKFold({n_folds})"
    return (
        f"{error} The groups go to the splitter of cv, and cv={cv!r} makes its "
        f"own splits, which take no groups: {fix} (from "
        "sklearn.model_selection)."
    )


#: The parameters that decide the policies of ``frontier_`` (the costs and the
#: loss are the fit's): set_params on one traces it again.
_FRONTIER_PARAMS = ("policy", "policy_features", "tune_threshold", "skips", "router")


def _param_key(value):
    """What tells a parameter's value from another: its content's hash, or
    for what cannot be pickled (a class defined in a function) the object
    and its repr."""
    try:
        return joblib.hash(value)
    except Exception:
        return (id(value), repr(value))


def cached_call_seed(random_state):
    """``random_state`` for a function cached with ``memory=``: a
    ``RandomState`` instance is replaced by a seed drawn from it, so that a
    call answered from the cache leaves it where a computed call would (the
    cached function's own draws are not replayed on a hit); ints and None
    are passed as they are."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return random_state


def _content_groups(X):
    """Each row's content hash, or None where some value has no content to
    hash (an object whose repr is its address: its hash would change with
    every run, and so would the folds); every row is then on its own."""
    try:
        return row_hashes(X, strict=True)
    except ValueError:
        return None


def _content_ids(X) -> np.ndarray | None:
    """Each row's content as an id (equal rows, equal ids: -0.0 as 0.0, NaN,
    None and pandas' NA alike, 1, 1.0 and True alike), or None where some
    value has no content to tell (see :func:`_content_groups`; in a DataFrame
    or an object array, such an object is told by its identity instead: one
    object in two rows is a copy, two objects are two rows).

    A numeric array's rows are hashed as bytes, a block of rows at a time (no
    copy of the whole array); a DataFrame's or an object array's columns are
    coded first (``pandas.factorize``, one column at a time), then their rows
    hashed alike. Other rows (text, sparse) as :func:`_content_groups` hashes
    them.
    """
    if not (isinstance(X, np.ndarray) and X.dtype.kind in "biuf" and X.ndim >= 1):
        codes = _column_codes(X)
        if codes is None:
            hashes = _content_groups(X)
            return None if hashes is None else _ids(hashes)
        X = codes
    flat = X.reshape(len(X), -1)
    hashes = np.empty(len(flat), dtype=np.uint64)
    for start in range(0, len(flat), 4096):
        block = np.array(flat[start : start + 4096])
        if block.dtype.kind == "f":
            block += 0.0  # -0.0 as 0.0
            block[np.isnan(block)] = np.nan  # one NaN
        hashes[start : start + len(block)] = [
            int.from_bytes(blake2b(row.tobytes(), digest_size=8).digest(), "little")
            for row in block
        ]
    return _ids(hashes)


def _ids(hashes: np.ndarray) -> np.ndarray:
    return np.unique(hashes, return_inverse=True)[1].ravel()


def _column_codes(X) -> np.ndarray | None:
    """A DataFrame's or a 2-D object array's columns as integer codes (equal
    values, equal codes; missing values -1), or None for other rows, or
    where a value cannot be hashed."""
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:
        columns = [X.iloc[:, j] for j in range(X.shape[1])]
    elif isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "OUS":
        columns = list(X.T)
    else:
        return None
    try:
        import pandas as pd

        codes = [pd.factorize(column, use_na_sentinel=True)[0] for column in columns]
    except (ImportError, TypeError):
        return None
    return np.column_stack(codes).astype(np.int64) if codes else None


#: The parameters prediction reads that fit does not: set after fit, they are
#: checked where they are used.
_PREDICTION_PARAMS = ("batch_size", "n_jobs")

#: The loss of the choice between answer kinds, in its reason (a regressor's
#: scaled loss is named by the note its reason gets).
_LOSS_WORDS = {"zero_one": "error rate", "log_loss": "log loss"}


class BaseAdaptive(MetaEstimatorMixin, _BaseComposition):
    """Exits, a learned exit policy over them, and rows routed by that policy.

    What classifiers and regressors share; :class:`BaseAdaptiveClassifier`
    and :class:`~skadaptive._regressor.BaseAdaptiveRegressor` add what a
    target is (classes, or a scale), the answers and the figures' names.

    Subclasses implement ``_members()`` (names and estimators, for class and
    freezing checks), ``_stage_names()`` (after fit: one name per exit),
    ``_check_structure()`` (before fit; returns the exit names when known),
    ``_source_maker()`` (a picklable function of the fitted members returning
    their :class:`~skadaptive.engine.StageSource`), ``_keep_fitted(held_out)``
    (stores the fitted members) and ``_stage_source()`` (what runs the exits
    at prediction); for costs, ``_natural_costs()``, and ``_alone_costs()``
    where an exit alone costs more than its increment.
    """

    _parameter_constraints: dict = {
        "costs": [StrOptions({"auto"}), "array-like", dict],
        "cost_weight": [Interval(Real, 0, None, closed="left")],
        "budget": [Interval(Real, 0, None, closed="neither"), None],
        "budget_confidence": [Interval(Real, 0.5, 1, closed="neither"), None],
        "policy": [StrOptions(set(POLICIES)), HasMethods(["fit"])],
        "policy_features": [StrOptions(set(FEATURE_SETS))],
        "tune_threshold": ["boolean"],
        "loss": [StrOptions(set(LOSSES))],
        "answer": [StrOptions({"stage", "combined"})],
        "cv": ["cv_object", Interval(RealNotInt, 0, 1, closed="neither")],
        "refit": ["boolean"],
        "memory": [None, str, HasMethods(["cache"])],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "cost_batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # the stages are validated when they are fitted
        prefer_skip_nested_validation=False
    )
    def fit(
        self: _T,
        X: Rows,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        **fit_params: Any,
    ) -> _T:
        """Fit the exits, hold out their probabilities and learn the exit policy.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
            Passed to the stages as it is (rows selected with safe indexing).
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights the policy's risks and, where the stages accept it, the
            stages' fits (with metadata routing enabled: where requested).
            Weight k on a row is k copies of it for the policy, and for
            the stages' folds where they are drawn from the rows' content
            (``refit=False`` with an int ``cv``); other ``cv`` split rows,
            not weights, as scikit-learn's splitters do, so that the
            held-out answers of stages the estimator fits (not frozen
            ones) can differ between weights and copies. As in scikit-learn's
            regularised models, a common factor on every weight is not
            neutral: the policies that learn rules or scores (``"linear"``,
            ``"eenet"``, a classifier) see weights of 3 as three copies of
            every row, so less regularised than weights of 1.
        **fit_params : dict
            Further parameters for the stages' ``fit`` and the splitter, only
            with metadata routing enabled.

        Returns
        -------
        self : object
        """
        _raise_for_params(fit_params, self, "fit")
        # What the stages accept is worked out from them again (see _input_tags).
        self.__dict__.pop("_stage_input", None)
        names = self._check_structure()
        self._warn_cost_weight_ignored()
        check_policy(self.policy)
        self._check_cost_batch_size()
        self._check_answers_run_every_stage(getattr(self, "answer", "stage") != "stage")
        router = getattr(self, "router", None)
        if isinstance(router, str):
            check_auto_router_features(X)
        elif router is not None and is_regressor(router):
            raise ValueError(
                f"router= takes a classifier: it chooses each row's first stage "
                f"among a few, and {type(router).__name__} is a regressor. Pass a "
                "classifier, or router='auto' (a logistic regression)."
            )
        stage_costs, router_cost = self._split_router_cost(names)
        measure = measures_costs(stage_costs, self._has_natural_costs())
        if not measure and stage_costs is not None and names is not None:
            # Fail before fitting anything when the costs are known already.
            per_row, per_call, _ = resolve_costs(stage_costs, names, measured=None)
            batch_size = self._resolved_cost_batch_size()
            check_budget(
                self.budget,
                per_row + per_call / batch_size,
                names,
                self._budget_fix(per_row[0] + per_call[0] / batch_size),
                per_call[0],
            )
        # A fit holds its rows in memory (the stages' fits need them there):
        # Dask collections are computed once, here, not by every stage's
        # fit on every fold.
        X, y, sample_weight = (
            value.compute() if is_lazy(value) else value
            for value in (X, y, sample_weight)
        )
        if hasattr(self, "n_features_in_"):
            # Left by an earlier fit; X here may have no feature count (texts).
            del self.n_features_in_
        X, y = validate_data(
            self, indexable(X), y, skip_check_array=True, multi_output=False
        )
        if np.ndim(X) > 2:
            # Rows of several dimensions (images): no feature count. (Their
            # second axis, channels, is not one, and a stage that takes the
            # same rows flat would be refused by it.) The stages check shapes.
            del self.n_features_in_
        if getattr(self, "n_features_in_", None) == 0:
            # In scikit-learn's words; some stages (XGBoost's) fail deep
            # inside on rows without features.
            raise ValueError(
                f"Found array with 0 feature(s) (shape={np.shape(X)}) while a "
                f"minimum of 1 is required by {type(self).__name__}."
            )
        self._check_missing_values(X)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        sample_weight = check_weights(sample_weight, X)
        y = self._check_targets(y, sample_weight)
        self._check_members_take_rows(X)
        # What the policy rows' targets, figures and policies are learned for:
        # set_params(loss=...) afterwards changes nothing until a refit.
        self._loss_at_fit = self.loss
        # What the fitted state was learned with, for the copies of
        # with_policy and recalibrate (set_params afterwards changes nothing
        # of it until a refit).
        params = self.get_params(deep=False)
        self._params_at_fit = {
            name: clone(params[name], safe=False)
            for name in ("answer", "costs")
            if name in params
        }
        routed = self._route_fit_params(sample_weight, fit_params)
        held_out = self._fit_held_out(X, y, sample_weight, fit_params, routed, measure)
        # The groups routed to the splitter, for the policy's own folds too.
        groups = routed[1].get("groups")
        self._policy_groups = (
            None
            if groups is None
            else np.asarray(column_or_1d(groups))[held_out.policy_rows]
        )
        # Which policy rows are copies of one another (budget_confidence's
        # units of evidence).
        self._policy_content = _content_ids(_safe_indexing(X, held_out.policy_rows))
        self._keep_fitted(held_out)
        self._stage_input = self._input_tags()
        # What the fitted stages accept, for the checks of predictions:
        # set_params afterwards changes nothing of it until a refit.
        self._fitted_input = self._stage_input
        natural, unit = self._natural_costs()
        self.cost_batch_size_ = self._resolved_cost_batch_size()
        measured = held_out.seconds
        if measured is not None:
            measured = call_line_for(measured, self.cost_batch_size_)
        self.costs_per_row_, self.costs_per_call_, self._costs_unit = resolve_costs(
            stage_costs,
            self._stage_names(),
            measured=measured,
            natural=natural,
            unit=unit,
        )
        y_policy = self._encode_targets(y[held_out.policy_rows])
        _warn_answers_alike_within_folds(held_out, self._stage_names())
        stage_probas = self._policy_answers(held_out.stage_probas)
        w_policy = (
            None if sample_weight is None else sample_weight[held_out.policy_rows]
        )
        if w_policy is not None and not np.any(w_policy > 0):
            cv = (
                f"cv={self.cv!r}"
                if isinstance(self.cv, Real)
                else f"the splits of cv, a {type(self.cv).__name__}"
            )
            raise ValueError(
                f"sample_weight is 0 on every one of the "
                f"{rows_text(len(w_policy))} held out for the policy ({cv}): "
                "the policy has no row to learn from. Give some "
                "of those rows a positive weight, or use a cv whose held-out "
                "rows carry weight (an int cv holds out every row once)."
            )
        # The exits' answers on the policy rows: the stages' own, or the
        # combiners' out-of-fold ones; the policy is learned on them.
        self.combiners_, answers = self._fit_combiners(
            stage_probas, y_policy, w_policy, _safe_indexing(X, held_out.policy_rows)
        )
        self.stage_accuracies_ = stage_accuracies(
            stage_correct(stage_probas, y_policy, self.loss), w_policy
        )
        self._in_cascade = None
        self._measured_seconds = None
        if held_out.seconds is not None and self._costs_unit == "seconds":
            # Measured costs are what a row pays at a stage inside the
            # cascade: the stage's time among the others and the routing work
            # that goes with it (the stages' times alone are kept for the
            # speed-up over a stage alone, and for other batch sizes).
            self._in_cascade = self._in_cascade_seconds(
                X, held_out, stage_probas, answers, y_policy
            )
            self._measured_seconds = held_out.seconds
            self.costs_per_call_ = self._in_cascade.per_call
            self.costs_per_row_ = self._in_cascade.per_row
        self.costs_ = self.costs_per_row_ + self.costs_per_call_ / self.cost_batch_size_
        self.cumulative_costs_ = np.cumsum(self.costs_)
        self._warn_unordered_costs()
        self._stage_fit_seconds = held_out.stage_fit_seconds

        # Kept so that with_policy can move along the frontier without
        # refitting; the policy is learned from exactly what is kept. (Kept in
        # float64: the budget search's thresholds move with any rounding of the
        # scores, and with_policy must reproduce what fit learned.)
        self._policy_data = (answers, self._stored_targets(y_policy), w_policy)
        # With combined answers, the stages' own too: a budget's policy is
        # learned on both and keeps the combined one only where it is clearly
        # more accurate out of sample (see _choose_answers).
        self._stage_answer_rows = stage_probas if combines(self.combiners_) else None
        # A router is learned on the policy rows' features (kept with them).
        self._router_data = None
        self._router_timings = {}  # a refit times its routers anew
        if getattr(self, "router", None) is not None:
            self._router_data = (_safe_indexing(X, held_out.policy_rows), router_cost)
        self._learn_policy(*self._policy_rows())
        return self

    def _loss(self) -> str:
        """The loss the fitted estimator was learned for (``loss`` at fit)."""
        return getattr(self, "_loss_at_fit", self.loss)

    def _fitted_copy(self):
        """A shallow copy for another policy (``with_policy``,
        ``recalibrate``): its parameters are its own (set_params on it leaves
        this one alone), its fitted attributes shared until replaced, and its
        ``loss``, ``answer`` and ``costs`` say the fit's (what its targets,
        combiners and ``costs_`` were made with)."""
        new = copy.copy(self)
        for name, value in self.get_params(deep=False).items():
            setattr(new, name, clone(value, safe=False))
        new.loss = self._loss()
        for name, value in getattr(self, "_params_at_fit", {}).items():
            setattr(new, name, clone(value, safe=False))
        return new

    def _check_answers_run_every_stage(
        self, combined: bool, fitted: bool = False
    ) -> None:
        """Refuse skips and a router where exits answer with combined answers
        (``combined``; ``fitted``: since a fit), which need every stage up to
        the exit to have run."""
        if not combined:
            return
        fix = (
            "Set the option back, or refit with answer='stage': this "
            "estimator's exits answer with combined answers since its fit."
            if fitted
            else "Use one or the other."
        )
        for option, on, why in (
            ("skips=True", getattr(self, "skips", False), "a row that skips stages"),
            (
                "router=",
                getattr(self, "router", None) is not None,
                "a row that the router starts late",
            ),
        ):
            if on:
                what = "predictions" if is_regressor(self) else "probabilities"
                raise ValueError(
                    f"{option} needs answer='stage': a combined answer mixes the "
                    f"{what} of every stage run so far, and {why} has not "
                    f"run them all. {fix}"
                )

    def _split_router_cost(self, names):
        return split_router_cost(self, names)

    def _router_cost_of(self, policy) -> float:
        return router_cost_of(self, policy)

    def _learn_router(self, stage_probas, y_encoded, sample_weight) -> None:
        learn_estimator_router(self, stage_probas, y_encoded, sample_weight)

    # Hooks of classifiers and regressors (see BaseAdaptiveClassifier).
    def _check_targets(self, y, sample_weight):
        """Check ``y``, set what the target defines (``classes_``...), and
        return ``y`` as the stages are fitted on it."""
        raise NotImplementedError

    def _stage_classes(self):
        """The classes the stages' answers are columns of (None: regression)."""
        raise NotImplementedError

    def _encode_targets(self, y) -> np.ndarray:
        """``y`` as the policy sees it (class indices, or a scaled target)."""
        raise NotImplementedError

    def _policy_answers(self, stage_probas: list) -> list:
        """The stages' answers as the policy sees them."""
        return stage_probas

    def _exit_answers(self, stage_probas: list) -> tuple[list, list]:
        """Each stage's own answers and each exit's answers (by its
        combiner), both as the policy sees them, from the stages' answers.

        The combiners answer in the stages' units (a regressor's in the
        target's), as routing runs them: they combine first, then the
        answers are shown to the policy.
        """
        alone = self._policy_answers(stage_probas)
        if not combines(self.combiners_):
            return alone, alone
        combined = combined_answers(self.combiners_, stage_probas)
        return alone, self._policy_answers(combined)

    def _stored_targets(self, y_encoded) -> np.ndarray:
        """Encoded targets as the fitted estimator keeps them."""
        return y_encoded

    def _n_outputs(self) -> int:
        """Columns of an answer."""
        raise NotImplementedError

    def _input_tags(self) -> Bunch:
        """What every stage accepts, and the stages that refuse NaN.

        Worked out from the stages' tags; a fitted estimator keeps it, so that
        a prediction does not compute every stage's tags again (a
        FrozenEstimator deep-copies its model's on each call: about 1 ms of a
        1-row prediction through three frozen stages). Keyed by the stages'
        identities: after ``set_params``, a copy or a load they are worked
        out again, once.
        """
        names, members = self._members()
        key = tuple(map(id, members))
        cached = getattr(self, "_stage_input", None)
        if cached is not None and cached.key == key:
            return cached
        try:
            full_tags = [get_tags(stage) for stage in members]
            stage_tags = [tags.input_tags for tags in full_tags]
        except (TypeError, ValueError, AttributeError):
            # malformed estimators, or a source that is not an estimator
            stage_tags = None
        summary = None
        if stage_tags is not None:
            summary = Bunch(
                sparse=all(t.sparse for t in stage_tags),
                allow_nan=all(t.allow_nan for t in stage_tags),
                string=all(t.string for t in stage_tags),
                positive_only=any(t.positive_only for t in stage_tags),
                poor_score=any(_poor_score(tags) for tags in full_tags),
            )
        worked_out = Bunch(
            tags=summary, refusing_nan=members_refusing_nan(names, members), key=key
        )
        if cached is not None:
            # The stages changed since it was kept, or were copied or loaded
            # (new identities): kept again for the next call, which would
            # otherwise work them out again.
            self._stage_input = worked_out
        return worked_out

    def _check_missing_values(self, X, fitted: bool = False) -> None:
        """:func:`check_missing_values` with the stages' tags worked out once;
        ``fitted``: of the stages as fitted (a prediction's check), not as
        the parameters now say."""
        # (Models saved before it was kept: the stages of the parameters.)
        kept = self.__dict__.get("_fitted_input") if fitted else None
        refusing = (kept or self._input_tags()).refusing_nan
        check_missing_values(X, refusing)

    def _fit_combiners(self, stage_probas, y_encoded, sample_weight, X_policy):
        """``combiners_`` and the exits' answers on the policy rows (cached)."""
        if self.answer == "stage":
            return [ExitCombiner(k) for k in range(len(stage_probas))], stage_probas
        fit = check_memory(self.memory).cache(fit_combiners)
        # Copies of a row in one fold: never both learned from and scored.
        groups = _content_groups(X_policy)
        combiners, answers = fit(
            stage_probas,
            y_encoded,
            sample_weight,
            loss=self.loss,
            random_state=cached_call_seed(self.random_state),
            groups=groups,
            # The routed groups: whole to a fold, one unit of evidence each.
            units=self._policy_groups,
        )
        weighed = _weighed(y_encoded, sample_weight)
        absent = absent_classes(y_encoded, weighed, len(self.classes_))
        if len(combiners) > 1 and len(absent):
            warn(
                "answer='combined' answers with each stage's own probabilities: "
                f"the policy rows of positive weight have no row of class "
                f"{short_list(self.classes_[absent])}, and a combiner learned "
                "on them would never answer it (each stage still can). Give the "
                "policy rows every class, or use answer='stage'.",
                UserWarning,
            )
        elif len(combiners) > 1 and not combiners[1].cv_error:
            if not (
                enough_rows(groups, weighed)
                and enough_units(self._policy_groups, weighed)
            ):
                warn_no_combiners(
                    "probabilities",
                    y_encoded,
                    sample_weight,
                    groups,
                    self._policy_groups,
                )
            else:
                # Enough rows, but one fold's training rows (the other
                # folds' rows) hold a single class: a rare class, or few
                # routed groups, each dealt whole to a fold.
                warn(
                    "answer='combined' answers with each stage's own "
                    "probabilities: learning combiners needs two classes or "
                    f"more in the training rows of each of {N_COMBINER_FOLDS} "
                    "folds of the policy rows, and in one of them they hold a "
                    f"single class ({self._class_counts_words(y_encoded, weighed)}"
                    ", or use answer='stage'.",
                    UserWarning,
                )
        return combiners, answers

    def _class_counts_words(self, y_encoded, weighed) -> str:
        """The policy rows (or routed groups) of positive weight per class,
        and what to give the policy rows, for the combiners' warning."""
        groups = self._policy_groups
        if groups is None:
            counts = np.bincount(y_encoded[weighed], minlength=len(self.classes_))
            what, fix = "rows", "more rows of the rarer classes"
        else:
            # A group with rows of several classes counts for each.
            pairs = np.unique(
                np.column_stack(
                    [
                        np.unique(groups[weighed], return_inverse=True)[1].ravel(),
                        y_encoded[weighed],
                    ]
                ),
                axis=0,
            )
            counts = np.bincount(pairs[:, 1], minlength=len(self.classes_))
            what = "groups (routed to cv's splitter, each dealt whole to a fold)"
            fix = "more groups of each class"
        per_class = ", ".join(
            f"{label!r}: {count}"
            for label, count in zip(self.classes_.tolist(), counts)
        )
        return (
            f"policy {what} of positive weight per class: {per_class}). Give "
            f"the policy rows {fix}"
        )

    def _default_cost_weight(self) -> float:
        """The ``cost_weight`` of the constructor's signature."""
        return signature(type(self).__init__).parameters["cost_weight"].default

    def _warn_cost_weight_ignored(self) -> None:
        """Say so when a ``cost_weight`` other than its default is set with a
        ``budget``, which takes precedence."""
        if self.budget is None:
            return
        default = self._default_cost_weight()
        if self.cost_weight != default:
            warn(
                f"cost_weight={self.cost_weight!r} is ignored: budget="
                f"{self.budget!r} is set, and the policy is chosen for that "
                "budget (budget_search_ says how). Set budget=None to trade "
                f"{'error' if is_regressor(self) else 'accuracy'} for cost with "
                f"cost_weight, or leave cost_weight at its default ({default!r}).",
                UserWarning,
            )

    def _answer_source(self):
        """The exits as they answer: the stage source, with its combiners
        where the kept policy answers with them (``answer_``)."""
        if not self._answers_combined():
            return self._stage_source()
        return answering_source(self._stage_source(), self.combiners_)

    def _routing_policy(self):
        """The fitted policy as routing asks it (regressors: on its scale)."""
        return self.policy_

    def _in_cascade_seconds(
        self, X, held_out, stage_probas, answers, y_policy
    ) -> Bunch:
        """Each stage's seconds per call and per row inside the cascade: its
        own time among the other stages and the routing work after it (cached).

        Timed on the rows the stages were timed on, through the fitted stages,
        with a policy of this family learned for the stages' measured costs
        (the decisions of any policy of a family cost about the same) on the
        exits' ``answers``; with combiners, their work is routing's too. See
        :func:`~skadaptive.engine._overhead.measure_routing_seconds`.
        """
        seconds = held_out.seconds
        rows = seconds.rows
        stage_costs = np.cumsum(seconds.per_row + seconds.per_call / 1000)
        measure = check_memory(self.memory).cache(
            _measure_routing, ignore=["estimator"]
        )
        seconds = measure(
            self,
            (self.policy, self.policy_features, self.tune_threshold, self.loss),
            _safe_indexing(X, held_out.policy_rows[rows]),
            [p[rows] for p in stage_probas],
            [p[rows] for p in answers],
            y_policy[rows],
            stage_costs / stage_costs[-1],
            getattr(self._stage_source(), "rows_in_state", False),
            self._n_outputs(),
            self.combiners_,
            self._stage_classes() is None,
            timing_scale(self.cost_batch_size_),
        )
        return call_line_for(seconds, self.cost_batch_size_)

    def _cost_lines(self, batch_size: int) -> tuple:
        """``costs_per_row_``, ``costs_per_call_`` and the routing's part of
        them (a Bunch: a stage's time inside the cascade beyond its time
        alone, two lines from two timings, so it may be negative where the
        routing is cheap; None for costs given or counted) as they would be
        for calls of
        ``batch_size`` rows: measured lines fitted again to the timings near
        that size (see :func:`~skadaptive.stages._costs.call_line_for`)."""
        measured = getattr(self, "_measured_seconds", None)
        in_cascade = getattr(self, "_in_cascade", None)
        old_routing = getattr(self, "_routing", None)
        if in_cascade is None and measured is not None and old_routing is not None:
            # Pickled by an earlier version: the stages' timings plus the
            # routing's, timed apart on the same batch sizes.
            in_cascade = Bunch(
                batch_sizes=measured.batch_sizes,
                timings=measured.timings + old_routing.timings,
            )
        if measured is None or in_cascade is None:
            return self.costs_per_row_, self.costs_per_call_, None
        if batch_size == self.cost_batch_size_:
            per_row, per_call = self.costs_per_row_, self.costs_per_call_
        else:
            in_cascade = call_line_for(in_cascade, batch_size)
            per_row, per_call = in_cascade.per_row, in_cascade.per_call
        alone = call_line_for(measured, batch_size)
        routing = Bunch(
            per_row=per_row - alone.per_row, per_call=per_call - alone.per_call
        )
        return per_row, per_call, routing

    @property
    def expected_speed_up_(self) -> float:
        """How many times cheaper than the last stage alone (an early exit's
        whole model) the estimator expects to answer, on calls of
        ``cost_batch_size_`` rows: that stage's cost alone over
        ``expected_cost_``. With measured costs the stage's time alone,
        without the routing work ``costs_`` includes (an early exit over a
        tree ensemble or a booster: the backbone's own ``predict_proba``, or
        ``predict`` for a regressor, timed beside its exits), so that it is
        the ratio of wall-clock times a user measures (``skadaptive
        frontier`` prints it at other batch sizes). With declared costs
        (numbers, or an early exit's trees) a ratio in their unit, not a
        time. Below 1, the estimator expects to be slower than the last stage
        alone; infinite where a row costs nothing."""
        check_is_fitted(self)
        reference = self._reference_seconds(self.cost_batch_size_)
        if self.expected_cost_ == 0:
            return float(np.inf) if reference > 0 else float("nan")
        return float(reference / self.expected_cost_)

    def _alone_seconds(self, batch_size: int) -> np.ndarray:
        """Cost per row of each stage called on its own in batches of
        ``batch_size`` rows: its measured time without the routing work and
        the company of other stages that ``costs_`` includes (units of
        ``costs_``)."""
        per_row, per_call, routing = self._cost_lines(batch_size)
        if routing is not None:
            per_call, per_row = per_call - routing.per_call, per_row - routing.per_row
        return self._alone_costs(per_row + per_call / batch_size)

    def _check_members_take_rows(self, X) -> None:
        """Refuse, naming the member, rows a frozen member cannot answer (a
        cascade's frozen stages, an early exit's frozen backbone): each is
        called on X as given before the others are cross-fitted."""
        method = "predict" if is_regressor(self) else "predict_proba"
        check_frozen_rows(*self._members(), X, method)

    def _checked_rows(self, X, count_rows: bool = True):
        """``X`` as checked by every prediction method (fitted, features, NaN);
        ``count_rows=False`` for a probe of no rows (a Dask collection's)."""
        check_is_fitted(self)
        # Before the stages see it: a stage of texts would fail deep inside
        # on a string, a mapping or None. (Rows of features are counted by
        # validate_data, in scikit-learn's words.)
        check_rows_given(
            X,
            type(self).__name__,
            count=count_rows and not hasattr(self, "n_features_in_"),
        )
        X = indexable(X)
        if hasattr(self, "n_features_in_") and np.ndim(X) == 1:
            # Fitted on rows of features, not on e.g. a list of texts.
            raise ValueError(
                "Expected 2D array, got 1D array instead. Reshape your data either "
                "using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample."
            )
        X = validate_data(self, X, reset=False, skip_check_array=True)
        self._check_missing_values(X, fitted=True)
        return X

    def _resolved_cost_batch_size(self) -> int:
        """``cost_batch_size``, else ``batch_size``, else the routing default."""
        for size in (self.cost_batch_size, self.batch_size):
            if size is not None:
                return int(size)
        return DEFAULT_BATCH_SIZE

    def _check_cost_batch_size(self) -> None:
        """Refuse costs for larger calls than predict makes."""
        if (
            self.cost_batch_size is not None
            and self.batch_size is not None
            and self.cost_batch_size > self.batch_size
        ):
            raise ValueError(
                f"cost_batch_size={self.cost_batch_size} is larger than "
                f"batch_size={self.batch_size}: predict runs the stages on at "
                f"most {self.batch_size} rows per call, so each stage pays its "
                "cost per call that often, and costs for larger calls would "
                "promise a speed-up that prediction cannot give. Set "
                "cost_batch_size to at most batch_size (None uses batch_size), "
                "or raise batch_size."
            )

    def _cost_parts(self) -> tuple:
        """Normalised per-row cost up to each stage, and per-call shares.

        Both are fractions of ``cumulative_costs_[-1]``, the cost of running
        every stage on a full batch: ``variable[k]`` is a row's own cost of
        answering at ``k``, ``share[k]`` stage ``k``'s per-call part spread
        over the batch (see :mod:`skadaptive.policies._call_costs`).
        """
        total = self.cumulative_costs_[-1]
        share = self.costs_per_call_ / self.cost_batch_size_
        return np.cumsum(self.costs_per_row_) / total, share / total

    def _average_cost(self, exit_stage, sample_weight=None, ran=None) -> float:
        """Average cost per row of a batch whose rows exit at ``exit_stage``.

        With per-call parts, every stage that a row of the batch reaches pays
        its per-call part once per batch of ``cost_batch_size_`` rows drawn
        like these rows. ``ran`` (n_stages, n_rows): the stages each row
        runs, where the policy skips stages.
        """
        n_stages = len(self.cumulative_costs_)
        weight = np.ones(len(exit_stage)) if sample_weight is None else sample_weight
        rates = np.bincount(exit_stage, weights=weight, minlength=n_stages)
        run_rates = None if ran is None else ran @ weight / weight.sum()
        return self._cost_of_rates(rates / weight.sum(), run_rates)

    def _routed_average_cost(self, result, sample_weight=None) -> float:
        """Average cost per row of a batch routed as ``result`` (from
        :meth:`route`): the stages each row ran, and a kept router's cost."""
        ran = result.ran.T if self.policy_.skips else None
        cost = self._average_cost(result.exit_stage, sample_weight, ran)
        if getattr(self, "router_", None) is not None:
            cost += self.router_cost_
        return cost

    def _cost_of_rates(self, exit_rates, run_rates=None) -> float:
        """Average cost per row of a batch whose rows exit at these rates (and,
        where they skip stages, run each stage at ``run_rates``)."""
        variable, share = self._cost_parts()
        return self.cumulative_costs_[-1] * batch_cost(
            exit_rates, variable, share, self.cost_batch_size_, run_rates
        )

    def _policy_rows(self) -> tuple:
        """The kept policy rows: stage probabilities (float64), labels, weights."""
        check_is_fitted(self)
        if self._policy_data is None:
            raise PolicyRowsDiscardedError(
                "The policy rows were discarded (discard_policy_rows), so no "
                "policy can be learned again: refit the estimator (with memory= "
                "the stages come from the cache) to use with_policy, frontier_ "
                "or evaluate_frontier."
            )
        probas, y_encoded, weight = self._policy_data
        return (
            [np.asarray(p, dtype=np.float64) for p in probas],
            self._encoded_for_policy(y_encoded),
            weight,
        )

    def _kept_policy_rows(self) -> tuple:
        """:meth:`_policy_rows` with the answers the kept policy decides on
        (``answer_``: the stages' own where a budget's policy kept them)."""
        probas, y_encoded, weight = self._policy_rows()
        alone = self._stage_answer_policy_rows()
        if alone is not None:
            probas = self._fitted_answers(alone, probas)
        return probas, y_encoded, weight

    def _stage_answer_policy_rows(self) -> list | None:
        """The stages' own answers on the policy rows (float64), kept where
        the exits combine; else None."""
        alone = getattr(self, "_stage_answer_rows", None)
        if alone is None:
            return None
        return [np.asarray(p, dtype=np.float64) for p in alone]

    def _encoded_for_policy(self, stored) -> np.ndarray:
        """Kept targets as the policy searches take them."""
        return stored

    def discard_policy_rows(self: _T) -> _T:
        """Drop the kept policy rows' probabilities, to make the model smaller.

        ``fit`` keeps every policy row's stage probabilities so that
        :meth:`with_policy` and ``frontier_`` can learn other policies without
        refitting the stages; for a model that only predicts, they are most of
        its pickled size (80 % of it for a digits cascade of a logistic
        regression and a tree with joblib, half with skops). Afterwards those
        two raise, and so does :meth:`evaluate_frontier`, which scores
        ``frontier_``'s policies (``frontier_`` still answers if it was read
        before); prediction is unchanged.

        Returns
        -------
        self : object

        Examples
        --------
        >>> import pickle
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("tree", DecisionTreeClassifier(max_depth=1)),
        ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3,
        ... ).fit(X, y)
        >>> size = len(pickle.dumps(cascade))
        >>> smaller = len(pickle.dumps(cascade.discard_policy_rows()))
        >>> bool(smaller < size)
        True
        """
        check_is_fitted(self)
        self._policy_data = None
        self._stage_answer_rows = None
        self._router_data = None
        self._policy_groups = None
        self._policy_content = None
        return self

    def _fit_held_out(self, X, y, sample_weight, fit_params, routed, measure):
        """Fit the members and hold out their exits' probabilities (cached);
        ``routed``: :meth:`_route_fit_params` of ``fit_params``."""
        stage_fit_params, splitter_params = routed
        fit_members = check_memory(self.memory).cache(
            fit_stages_on_held_out, ignore=["n_jobs", "verbose"]
        )
        on_class_indices = self._members_on_class_indices()
        try:
            return fit_members(
                self._members()[1],
                X,
                y,
                self._stage_classes(),
                stage_fit_params,
                splitter_params,
                self.cv,
                measure_costs=measure,
                random_state=cached_call_seed(self.random_state),
                n_jobs=self.n_jobs,
                verbose=self.verbose,
                make_source=self._source_maker(),
                names=self._members()[0],
                # Only what decides the sizes timed (nothing is timed with
                # given costs): a cache hit for the others.
                cost_batch_size=(
                    timing_scale(self._resolved_cost_batch_size()) if measure else None
                ),
                refit=self.refit,
                whole_method=self._whole_method() if measure else None,
                sample_weight=sample_weight,
                on_class_indices=on_class_indices,
            )
        except Exception as exc:
            if self.memory is None or _hashable(self._members()[1]):
                raise
            raise TypeError(
                "memory= caches the fits under a hash of the stages and the "
                "data, and a stage cannot be hashed (pickled): it holds a "
                f"lambda or a local function? ({type(exc).__name__}: "
                f"{str(exc)[:200]}). Use a function defined at module level, or "
                "memory=None."
            ) from None

    def _members_on_class_indices(self) -> tuple[int, ...]:
        """The members fitted here on the class indices ``0 .. n_classes - 1``
        rather than on the labels: XGBoost's classifiers take no other labels,
        so they are fitted on the indices (as ``StackingClassifier`` fits its
        estimators), and their probability columns are the classes in order."""
        if self._stage_classes() is None:
            return ()
        return tuple(
            k
            for k, member in enumerate(self._members()[1])
            if not is_frozen(member) and fits_on_class_indices(member)
        )

    def _whole_method(self) -> str | None:
        """The method of the one member that users call instead of the
        estimator, timed with measured costs for the speed-up over it (an
        early exit's backbone); None: the last stage alone is the reference."""
        return None

    def _reference_seconds(self, batch_size: int) -> float:
        """Cost per row of what the estimator is compared with, in calls of
        ``batch_size`` rows: its last stage alone (units of ``costs_``)."""
        return float(self._alone_seconds(batch_size)[-1])

    def _measures_costs(self) -> bool:
        """Whether a fit times the stages for its costs (its tags say so)."""
        try:
            return measures_costs(self.costs, self._has_natural_costs())
        except (TypeError, ValueError, AttributeError):
            # malformed estimators: the fit says what is wrong
            return False

    def _has_natural_costs(self) -> bool:
        """Whether, before fitting, the exits are known to have costs of their own."""
        return False

    def _natural_costs(self) -> tuple:
        """The fitted exits' own incremental costs and unit, or (None, None)."""
        return None, None

    def _warn_unordered_costs(self) -> None:
        """Warn when a stage costs less on its own than an earlier one.

        Measured stages are compared by their times alone: inside the cascade
        the checks of a call are charged to the first stage, and its routing
        to each, which at small batches can outweigh the stages' own work."""
        alone = self._alone_seconds(self.cost_batch_size_)
        names = self._stage_names()
        # Measured seconds are noisy: only a clearly cheaper later stage warns.
        slack = 0.8 if self._cost_unit() == "seconds" else 1.0
        cheaper = [k for k in range(1, len(alone)) if alone[k] < slack * alone[k - 1]]
        if not cheaper:
            return
        unit = self._cost_unit() or "cost units"
        figures = ", ".join(f"{n}={c:.3g}" for n, c in zip(names, alone))
        if self._cost_lines(self.cost_batch_size_)[2] is not None:
            # Measured inside the cascade too: say which figure this is.
            figures = (
                "each stage's own time per row in calls of "
                f"{self.cost_batch_size_} row"
                f"{'s' if self.cost_batch_size_ != 1 else ''}, without the "
                "routing work that "
                f"costs_ adds: {figures}"
            )
        order = " -> ".join(names[k] for k in np.argsort(alone, kind="stable"))
        k = cheaper[0]
        warn(
            f"Stage {names[k]!r} costs less per row than the stage before it, "
            f"{names[k - 1]!r} ({figures}; {unit}): a cascade should run its "
            "cheaper stages first, or rows that the cheap stage could answer "
            "pay for the costlier one. Ordered by cost the stages would be "
            f"{order}; reorder them unless the later stage is also the more "
            "accurate and you mean to pay for it.",
            UserWarning,
        )

    def _alone_costs(self, incremental) -> np.ndarray:
        """Cost per row of answering every row with each stage on its own."""
        return np.asarray(incremental, dtype=np.float64)

    def _cost_unit(self) -> str | None:
        """The unit of ``costs_``, where known (for plots and reports)."""
        return getattr(self, "_costs_unit", None)

    def with_policy(
        self: _T,
        *,
        cost_weight: float | None = None,
        budget: float | None = None,
        policy: str | type[PolicySearch] | Estimator | None = None,
        budget_confidence: float | Literal["unchanged"] | None = "unchanged",
    ) -> _T:
        """A copy answering at another operating point, without refitting stages.

        The exit policy is learned again from the exits' held-out answers
        kept by :meth:`fit` (the stages' probabilities or predictions, or the
        combiners' out-of-fold answers with ``answer="combined"``; the
        combiners are kept), exactly as ``fit`` with the same ``costs_`` would;
        the fitted stages are shared with this estimator, which is unchanged.
        Use it to move along ``frontier_`` after looking at it (with a
        router, a point keeps its router on in-sample figures and the copy
        on cross-fitted ones, so the copy at a point's ``cost_weight`` may
        answer without the point's router, at another cost).

        Parameters
        ----------
        cost_weight : float, default=None
            New trade-off; the copy's ``budget`` is None.
        budget : float, default=None
            New maximum average cost per row, units of ``costs_``; the copy's
            ``cost_weight`` is then the default (a budget ignores it).
        policy : str or classifier, default=None
            Another policy family for the copy; None keeps this one's.
        budget_confidence : float in (0.5, 1), None or "unchanged", \
                default="unchanged"
            The copy's ``budget_confidence`` (None: no margin); "unchanged"
            keeps this one's.

        Returns
        -------
        estimator : object
            Fitted copy whose ``cost_weight``/``budget``/``policy``/
            ``budget_confidence`` parameters say what it was learned with
            (and its ``loss`` and ``cost_batch_size``, the fit's: changed
            since, they need a refit).

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("tree", DecisionTreeClassifier(max_depth=1)),
        ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3,
        ... ).fit(X, y)
        >>> cheaper = cascade.with_policy(budget=2.0)
        >>> bool(cheaper.policy_rows_cost_ <= 2.0)
        True
        >>> heuristic = cascade.with_policy(budget=2.0, policy="max_proba")
        """
        check_is_fitted(self)
        if (cost_weight is None) == (budget is None):
            raise ValueError("Pass exactly one of cost_weight or budget.")
        new = self._fitted_copy()
        # Plain floats, so that the copy's repr shows numbers (a budget computed
        # from costs_ is a numpy scalar).
        new.budget = _plain(budget)
        # A budget makes cost_weight irrelevant: the copy has the default, so
        # that a clone of it (a search, cross_val_score) is not told it set both.
        new.cost_weight = (
            self._default_cost_weight() if cost_weight is None else _plain(cost_weight)
        )
        if policy is not None:
            new.policy = policy
        if not (
            isinstance(budget_confidence, str) and budget_confidence == "unchanged"
        ):
            new.budget_confidence = _plain(budget_confidence)
        fitted_size = int(self.cost_batch_size_)
        # Costs given as numbers (or counted in trees) have no part per call:
        # they are the same for calls of any size.
        per_call = np.asarray(self._cost_lines(fitted_size)[1])
        if new._resolved_cost_batch_size() != fitted_size and np.any(per_call > 0):
            # Changed since the fit: the copy is learned for the batches its
            # costs were measured for, and says so.
            new.cost_batch_size = fitted_size
        if (
            new.batch_size is not None
            and new.batch_size < fitted_size
            and np.any(per_call > 0)
        ):
            raise ValueError(
                f"batch_size={new.batch_size} was set after a fit for calls of "
                f"{fitted_size} rows (cost_batch_size_): this policy's costs, "
                "and its speed-up, are for such calls, and predict would run "
                f"stages on {new.batch_size} rows at a time. Refit for the new "
                f"batch size, or set batch_size to at least {fitted_size}."
            )
        new._validate_params()
        if new.budget is not None:
            new._check_budget_keeping_stages(new.budget)
        new._learn_policy(*self._policy_rows())
        return new

    def _check_budget_keeping_stages(self, budget: float) -> None:
        """:func:`check_budget` for a copy that keeps the fitted stages
        (:meth:`with_policy`, :meth:`recalibrate`): another first stage or
        exit, the estimator's advice, means fitting again."""
        fix = self._budget_fix(self.costs_[0])
        check_budget(
            budget,
            self.costs_,
            self._stage_names(),
            None if fix is None else f"{fix} and fit again",
            self.costs_per_call_[0],
        )

    def recalibrate(self: _T, X: Rows, *, budget: float | None = None) -> _T:
        """A copy whose exit thresholds meet ``budget`` on the unlabelled rows ``X``.

        A row's cost depends only on where it exits, not on its label: when
        the rows drift (more hard rows reach the dear stages), this moves the
        thresholds of ``policy_`` so that the average cost on ``X`` is within
        ``budget`` and as close to it as moving one exit's threshold at a time
        allows (moving two together can sometimes come closer; the next step
        is recorded). The rules' learned scores, their order and
        any jumps and router are kept; no stage is refitted and no label is
        read. Every
        exit's score is computed once on every row, then every exit's share
        of exiting rows moves by one common shift on the log-odds scale (the
        fitted thresholds at shift 0); the smallest shift within the budget
        is kept, and what ties between scores leave of the budget is filled
        one exit at a time. Exits at or after ``deepest_stage_`` stay as
        fitted. See the user guide, "Budget recalibration without labels".

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
            Unlabelled rows like those to be answered (e.g. recent traffic).
            Every stage runs on every row, in batches of ``batch_size``.
        budget : float, default=None
            Maximum average cost per row on ``X``, units of ``costs_`` (per-call
            parts counted as for ``expected_cost_``). None: ``budget_`` (with
            ``budget_confidence``, the budget the fit searched, lowered by its
            margin: ``budget_search_["searched_budget"]``), or for a
            ``cost_weight`` fit (or a budget the fit left unspent,
            ``budget_status_ == "saturated"``) the ``expected_cost_`` the fit
            chose, capped at ``budget_``; a copy recalibrated to this default
            aims at the same target again (its own ``expected_cost_`` is
            what it measured). Below the first stage's cost it is an error.

        Returns
        -------
        estimator : object
            Fitted copy (the stages shared) with the moved thresholds in
            ``policy_``. ``recalibration_`` (dict) records the ``budget``, the
            ``cost`` on ``X`` (within the budget up to rounding: a sum of
            costs can exceed it in its last bits), ``next_cost`` (the next
            step up, over the budget: a cost on ``n`` rows moves in steps, so
            it may stay below the budget by up to one step),
            ``cost_standard_error`` (of that average over the rows: rows drawn
            like ``X`` cost about ``cost`` plus or minus two of it, and a
            warning says so when that is over 10 % of the budget), ``status``
            (``"met"``, or
            ``"saturated"`` when no exit can spend more: the rows got
            easier), the ``shift``, the ``thresholds`` and ``exit_rates`` on
            ``X`` (and the same ``_before``). ``recalibrated_cost_`` and
            ``expected_cost_`` are the cost measured on ``X``,
            ``expected_exit_rates_`` the exit rates there; ``budget_`` is
            the ``budget`` given here, or the fit's unchanged when none is
            (``recalibration_["budget"]`` is the one aimed at);
            ``exit_rates_``, ``policy_rows_cost_`` and the policy rows'
            accuracy (error) are the new policy's on the kept
            policy rows (nan once they are discarded). ``expected_accuracy_``
            (``expected_error_``) is the fitted estimate, not re-estimated:
            that needs labels.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.ensemble import RandomForestClassifier
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> X, y = make_classification(n_samples=1000, n_features=8, flip_y=0.05,
        ...                            random_state=0)
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("lr", LogisticRegression()),
        ...      ("forest", RandomForestClassifier(20, random_state=0))],
        ...     costs=[1, 5], budget=1.2, cv=3, random_state=0,
        ... ).fit(X[:600], y[:600])
        >>> # New traffic with more hard rows (those the first stage is unsure of)
        >>> sure = cascade.estimators_[0].predict_proba(X[600:]).max(axis=1)
        >>> shifted = np.vstack([X[600:]] + 3 * [X[600:][sure < 0.8]])
        >>> bool(cascade.exit_report(shifted).over_budget)
        True
        >>> recalibrated = cascade.recalibrate(shifted)  # no labels
        >>> bool(recalibrated.recalibrated_cost_ <= 1.2)
        True
        >>> recalibrated.recalibration_["status"]
        'met'
        """
        from ._recalibrate import recalibrate

        self._check_prediction_params()  # it runs the stages as predict does
        return recalibrate(self, X, budget)

    def exit_report(self, X: Rows) -> ExitReport:
        """Exit rates and average cost on the rows ``X`` against those expected.

        For monitoring drift without labels: the rows are routed as
        ``predict`` routes them, and their exit rates and average cost (as
        ``expected_cost_`` counts it, per-call parts included) are set
        against ``expected_exit_rates_`` and ``expected_cost_`` at fit (both
        out of sample) or, for a copy from :meth:`recalibrate`, against the
        rows it was recalibrated on.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)

        Returns
        -------
        report : ExitReport
            ``exit_rates``, ``cost``, ``expected_exit_rates``,
            ``expected_cost``, ``budget`` and their differences
            (``exit_rate_changes``, ``cost_change``,
            ``relative_cost_change``, ``over_budget``); ``print`` shows a
            table.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("tree", DecisionTreeClassifier(max_depth=1)),
        ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5],
        ...     budget=3.0, cv=3,
        ... ).fit(X, y)
        >>> report = cascade.exit_report(X[100:])
        >>> report.n_rows, len(report.exit_rates)
        (50, 2)
        """
        from ._recalibrate import exit_report

        return exit_report(self, X)

    def _learn_policy(self, stage_probas, y_encoded, sample_weight):
        # The policy fits are many tiny problems; BLAS threads only add overhead
        # to them (measured 20-50x slower with two OpenBLAS threads on 2 cores).
        with threadpool_limits(limits=1, user_api="blas"):
            self._learn_policy_single_threaded(stage_probas, y_encoded, sample_weight)

    def _learn_policy_single_threaded(self, stage_probas, y_encoded, sample_weight):
        start = time.perf_counter()
        total_cost = self.cumulative_costs_[-1]
        self.budget_ = self.budget
        if self.budget is not None:
            check_budget(
                self.budget,
                self.costs_,
                self._stage_names(),
                self._budget_fix(self.costs_[0]),
                self.costs_per_call_[0],
            )
        if (
            self.policy == "disagreement"
            and len(stage_probas) == 2
            and getattr(self, "router", None) is None
        ):
            warn(
                "policy='disagreement' cannot tell rows apart at the first "
                "stage, which has no earlier stage to disagree with: with two "
                "stages it answers every row at the first stage or every row "
                "at the second. Use policy='uncertainty' (where the first "
                "stage gives its own uncertainty) or the default learned "
                "policy to defer only some rows.",
                UserWarning,
            )
        if self.policy == "uncertainty":
            flat = [
                name
                for name, answers in zip(self._stage_names(), stage_probas[:-1])
                if np.ptp(np.asarray(answers)[:, 1]) == 0
            ]
            if flat:
                warn(
                    f"policy='uncertainty' cannot tell rows apart at "
                    f"{', '.join(repr(n) for n in flat)}: the stage gives no "
                    "uncertainty of its own (the same for every row), so every "
                    "row or none exits there. Use the default learned policy, "
                    "or a stage that gives its own uncertainty "
                    "(predict(..., return_std=True), a forest).",
                    UserWarning,
                )
        variable, share = self._cost_parts()

        def choose(answers):
            return choose_with_call_costs(
                self._policy_search_maker(answers, y_encoded, sample_weight),
                answers,
                y_encoded,
                sample_weight,
                variable_cumulative=variable,
                share=share,
                batch_size=self.cost_batch_size_,
                cost_weight=self.cost_weight,
                normalized_budget=None
                if self.budget is None
                else self.budget / total_cost,
                confidence=self.budget_confidence,
                random_state=self.random_state,
                cost_unit=total_cost,
                loss=self._loss(),
            )

        chosen = choose(stage_probas)
        self.answer_ = "combined" if combines(self.combiners_) else "stage"
        if self.budget is not None and self.answer_ == "combined":
            chosen, self.answer_, stage_probas = self._choose_answers(
                chosen, stage_probas, choose, y_encoded, sample_weight
            )
        for name in ("run_rates", "expected_run_rates", "held_out_exits"):
            chosen.pop(name)
        for name, value in chosen.items():
            setattr(self, f"{name}_", value)
        self._policy_fit_seconds = time.perf_counter() - start
        if self.verbose:
            knob = (
                f"budget={self.budget:g}"
                if self.budget is not None
                else f"cost_weight={self.cost_weight:g}"
            )
            rates = "/".join(f"{r:.0%}" for r in self.exit_rates_)
            kept = ""
            if self.budget_search_ is not None:
                # The kind kept, which may not be the family's own.
                search = self.budget_search_
                kept = (
                    f" (exit scores kept by the budget search: "
                    f"{search['scores'][search['chosen']]}; see budget_search_)"
                )
            print(
                f"[skadaptive] policy {self.policy!r}{kept} learned for {knob} on "
                f"{len(y_encoded)} policy rows ({self._policy_fit_seconds:.1f} s): "
                f"costs_={np.array2string(self.costs_, precision=3)}, exit rates "
                f"{rates}, {self._expected_figure_text()}"
            )
        figures = stage_figures(
            stage_correct(stage_probas, y_encoded, self._loss()),
            self.cumulative_costs_,
            sample_weight,
        )
        self.exit_accuracies_ = figures["stage_accuracies"]
        self.oracle_accuracy_ = figures["oracle_accuracy"]
        self.oracle_cost_ = self._cost_of_rates(figures["oracle_exit_rates"])
        # frontier_ is traced when first read: a fit pays for one policy only.
        self._frontier_points = None
        # A policy learned again is not a recalibrated one (see recalibrate).
        for name in ("recalibration_", "recalibrated_cost_"):
            self.__dict__.pop(name, None)
        self._learn_router(stage_probas, y_encoded, sample_weight)
        self._warn_budget_above_full_cost()

    def _choose_answers(self, chosen, combined, choose, y_encoded, sample_weight):
        """For a budget, the exits' answers the policy is kept for: the
        combined ones (``chosen``, learned on ``combined``) only where they are
        clearly more accurate out of sample than the stages' own.

        The policy ``answer="stage"`` would keep is learned on the stages'
        own answers as that fit learns it; the combined answers' policy
        replaces it only when its cross-fitted loss is lower by more than one
        standard error of the paired per-row difference, and so is the same
        choice made for each fold without the fold's rows
        (:func:`~skadaptive.policies._selection.clearly_better_held_out`),
        and only when it answers some policy rows at an exit that combines
        (else its answers are the stages' own). ``budget_search_`` records
        both procedures' out-of-sample figures (``answer_kinds``,
        ``answer_expected_accuracy``, ``answer_expected_cost``) and the
        choice's figures in words (``answer_reason``).
        The combiners cannot make a budget's answers worse than the stages'
        by more than that noise; where they are kept, the expected figures
        are the held-out choice's (each fold's rows from the answers chosen
        without them).

        Returns
        -------
        chosen : dict
        answer : {"stage", "combined"}
        answers : list of ndarray
            The kept answers on the policy rows.
        """
        alone = self._stage_answer_policy_rows()
        if alone is None:
            # Kept by a version before the choice: combined, as it was fitted.
            return chosen, "combined", combined
        plain = choose(alone)
        loss = self._loss()
        rows = np.arange(len(y_encoded))

        def held_out_loss(choice, answers):
            per_exit = np.stack([per_row_loss(p, y_encoded, loss) for p in answers])
            return per_exit[choice["held_out_exits"], rows]

        weight = np.ones(len(rows)) if sample_weight is None else sample_weight
        # Equal rows (in both answers, and label) count once; the folds deal
        # equal stage answers whole, as the policy's cross-fitting does.
        groups = self.__dict__.get("_policy_groups")
        _, group_of_row = _row_groups(alone + combined, y_encoded, groups)
        folds = row_folds(
            alone, y_encoded, POLICY_FOLDS, self.random_state, weight, groups
        )
        losses = (held_out_loss(plain, alone), held_out_loss(chosen, combined))
        keep, in_fold = clearly_better_held_out(*losses, group_of_row, weight, folds)
        # A policy that answers no policy row at an exit that combines gives
        # the stages' own answers: the combined answers bring it nothing.
        combining = [c.kind != "stage" for c in self.combiners_]
        answers_combined = np.any(np.asarray(chosen["exit_rates"])[combining] > 0)
        if keep and not answers_combined:
            reason = (
                "the combined answers' policy answers no policy row at an exit "
                "that combines, so its answers are the stages' own; the stage "
                "answers' policy is kept"
            )
        else:
            words = held_out_choice_words(
                *losses,
                group_of_row,
                weight,
                keep,
                in_fold,
                _LOSS_WORDS.get(loss, "loss"),
            )
            kept = "combined" if keep else "stage"
            reason = (
                "against the stage answers' policy, the combined answers' "
                f"policy is {words}; the {kept} answers' policy is kept"
            )
        both = {
            "answer_reason": reason,
            "answer_kinds": np.array(["stage", "combined"]),
            "answer_expected_accuracy": np.array(
                [plain["expected_accuracy"], chosen["expected_accuracy"]]
            ),
            "answer_expected_cost": np.array(
                [plain["expected_cost"], chosen["expected_cost"]]
            ),
        }
        if not (keep and answers_combined):
            plain["budget_search"] = {**plain["budget_search"], **both}
            return plain, "stage", alone
        exits = np.where(in_fold, chosen["held_out_exits"], plain["held_out_exits"])
        correct = np.where(
            in_fold,
            stage_correct(combined, y_encoded, loss),
            stage_correct(alone, y_encoded, loss),
        )
        estimate = evaluate_exits(
            None, exits, correct, self.cumulative_costs_, sample_weight, np.nan
        )
        chosen = {
            **chosen,
            "expected_accuracy": estimate.accuracy,
            "expected_exit_rates": estimate.exit_rates,
            "expected_cost": self._cost_of_rates(estimate.exit_rates),
            "budget_search": {**chosen["budget_search"], **both},
        }
        return chosen, "combined", combined

    def _exit_answer_kinds(self) -> list[str]:
        """How each exit answers under the kept policy: its combiner's kind
        where ``answer_`` is ``"combined"``, else ``"stage"``."""
        if not self._answers_combined():
            return ["stage"] * len(self.combiners_)
        return [c.kind for c in self.combiners_]

    def _fitted_answers(self, alone: list, combined: list) -> list:
        """The answers the kept policy decides on and answers with
        (``answer_``): the exits' combined ones, or the stages' own."""
        return combined if self._answers_combined() else alone

    def _answers_combined(self) -> bool:
        """Whether the kept policy's exits answer with the combiners
        (``answer_ == "combined"``)."""
        return getattr(self, "answer_", None) == "combined"

    def _warn_budget_above_full_cost(self) -> None:
        """Say so where the budget is above what every stage on every row costs:
        nothing can spend it, and it is often in another unit than ``costs_``
        (measured costs are seconds per row)."""
        above = self._above_full_cost(self.budget)
        if above is None:
            return
        warn(
            f"budget={self.budget:.10g} is {above} No policy can spend it, and "
            "every row may run every stage. A fraction of the full cost is "
            "budget=fraction * cumulative_costs_[-1].",
            UserWarning,
        )

    def _full_cost(self) -> float:
        """Average cost per row of running every stage on every row, a kept
        router's cost included."""
        full = float(self.cumulative_costs_[-1])
        if getattr(self, "router_", None) is not None:
            full += float(self.router_cost_)
        return full

    def _above_full_cost(self, budget) -> str | None:
        """Where ``budget`` is above :meth:`_full_cost` (beyond rounding), the
        words that say so and ask for its unit; else None."""
        if budget is None:
            return None
        full = self._full_cost()
        if budget <= full * (1 + BUDGET_RTOL):
            return None
        unit = self._cost_unit()
        return (
            f"above the full cost, {full:.10g} per row (every stage on every row"
            + (", the router included" if getattr(self, "router_", None) else "")
            + f"{f'; {unit} per row' if unit else ''}): is it in the unit of "
            "the model's costs_"
            + (" (measured: seconds per row)" if unit == "seconds" else "")
            + "?"
        )

    def _policy_search_maker(self, stage_probas, y_encoded, sample_weight):
        """``make(cumulative)``: the policy family's search over the first
        ``len(cumulative)`` stages, with these normalised per-row costs.

        Every policy learned after a fit (with_policy, frontier_,
        evaluate_frontier) comes through here: skips or a router set after a
        fit whose exits combine are refused, as fit refuses them (the answers
        are the fit's, ``combiners_``, whatever ``answer`` says now)."""
        self._check_answers_run_every_stage(combines(self.combiners_), fitted=True)

        def make(cumulative):
            n_stages = len(cumulative)
            with warnings.catch_warnings():
                if n_stages < len(stage_probas):
                    # A search over the first stages only (per-call costs):
                    # what it says about its stage count is not the user's.
                    warnings.filterwarnings(
                        "ignore", message="policy='patience' with two stages"
                    )
                search = make_policy_search(
                    self.policy,
                    stage_probas[:n_stages],
                    y_encoded,
                    cumulative,
                    sample_weight,
                    loss=self._loss(),
                    feature_set=self.policy_features,
                    tune_threshold=self.tune_threshold,
                )
            # (Models saved before groups were kept: none.)
            search.groups = self.__dict__.get("_policy_groups")
            search.content = self.__dict__.get("_policy_content")
            if not getattr(self, "skips", False):
                return search
            # Jumps learned by the Bolukbasi reduction, with the learner of
            # the rules where the family has one (a classifier, or
            # "constant"); a named family or a search class of the user's
            # gets the linear one.
            learner = (
                self.policy
                if self.policy == "constant" or not isinstance(self.policy, str | type)
                else "linear"
            )
            return SkipSearch(search, learner=learner, feature_set=self.policy_features)

        return make

    def _frontier_evaluations(self) -> list:
        """The policies of ``frontier_`` on the policy rows, traced once."""
        check_is_fitted(self)
        # Traced with the policy parameters of now, as with_policy learns:
        # traced again where set_params changed them since, so that what it
        # says does not depend on when it was first read.
        params = self.get_params(deep=False)
        key = [_param_key(params.get(name)) for name in _FRONTIER_PARAMS]
        points = getattr(self, "_frontier_points", None)
        if points is not None and getattr(self, "_frontier_key", None) is None:
            # Traced by a version that kept no key: for the parameters of now.
            self._frontier_key = key
        if points is None or self._frontier_key != key:
            # The trace kept is replaced only once a new one is made (after
            # discard_policy_rows none can be: the error says so).
            with threadpool_limits(limits=1, user_api="blas"):
                rows = self._policy_rows()
                variable, share = self._cost_parts()
                points = frontier_with_call_costs(
                    self._policy_search_maker(*rows),
                    *rows,
                    DEFAULT_COST_WEIGHTS,
                    variable_cumulative=variable,
                    share=share,
                    batch_size=self.cost_batch_size_,
                    loss=self._loss(),
                )
                if getattr(self, "router", None) is not None:
                    points = routed_frontier(self, points, rows)
            self._frontier_points, self._frontier_key = points, key
        return self._frontier_points

    @property
    def frontier_(self) -> dict:
        """Accuracy against cost over a grid of ``cost_weight`` (see Attributes)."""
        frontier = self._frontier_evaluations()
        normalized = np.array([p.normalized_cost for p in frontier])
        exit_rates = np.stack([p.exit_rates for p in frontier])
        # Every value 1-D, one entry per point, so that pandas.DataFrame loads
        # it as it loads cv_results_: one exit-rate column per stage.
        points = {
            "cost_weight": np.array([p.cost_weight for p in frontier]),
            "accuracy": np.array([p.accuracy for p in frontier]),
            "normalized_cost": normalized,
            "expected_cost": normalized * self.cumulative_costs_[-1],
            **{f"exit_rate_{k}": exit_rates[:, k] for k in range(exit_rates.shape[1])},
        }
        if getattr(self, "router", None) is not None:
            # Which points kept a router (in sample: fit's is judged apart).
            points["router"] = np.array(
                [getattr(p.policy, "router", None) is not None for p in frontier]
            )
        return points

    def _route_fit_params(self, sample_weight, fit_params):
        names, stages = self._members()
        if get_config()["enable_metadata_routing"]:
            try:
                routed = process_routing(
                    self, "fit", sample_weight=sample_weight, **fit_params
                )
            except TypeError as error:
                if "groups" in fit_params and not hasattr(self.cv, "split"):
                    raise TypeError(_groups_without_splitter(self.cv, error)) from None
                raise
            return (
                [routed[name].fit for name in names],
                routed.get(ROUTED_SPLITTER, Bunch(split={})).split,
            )
        stage_fit_params = []
        for name, stage in zip(names, stages):
            params = {}
            if sample_weight is not None and not is_frozen(stage):
                if "sample_weight" in signature(stage.fit).parameters:
                    params["sample_weight"] = sample_weight
                else:
                    warn_sample_weight_unused(name, stage)
            stage_fit_params.append(params)
        return stage_fit_params, {}

    # ------------------------------------------------------------- evaluate
    def evaluate_frontier(
        self, X: Rows, y: ArrayLike, *, sample_weight: ArrayLike | None = None
    ) -> dict:
        """Accuracy and cost of every ``frontier_`` policy, and of each stage,
        on the rows ``X`` (e.g. a test set).

        Every stage is run once on every row (no early exit) and each frontier
        policy is applied to those probabilities, which is what routing the
        rows through that policy would give. Each point's policy is the one
        ``frontier_`` learned, with its router where the point kept one
        (which :meth:`with_policy` at its ``cost_weight`` may not keep).

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        frontier : dict
            The figures of ``frontier_``'s points on these rows:
            ``cost_weight``, ``accuracy``, ``expected_cost``,
            ``normalized_cost`` and ``exit_rates`` (one row per point, where
            ``frontier_`` has a column ``exit_rate_k`` per stage), plus
            ``run_rates`` (the share of the rows each stage runs on
            at each point: below the rows reaching it where rows skip it),
            ``stage_accuracies`` and ``stage_costs`` (each stage on
            its own: its own probabilities, its own cost in a cascade, the cost
            up to it for exits), ``exit_accuracies`` (every row answered at
            each exit as this estimator's policy answers there: by its
            combiner where ``answer_`` is ``"combined"``; ``frontier_``'s
            policies answer with the combiners whenever ``combiners_``
            combine), ``oracle_accuracy``,
            ``oracle_cost`` and ``oracle_exit_rates`` (of those answers), and
            ``accuracy_at_fit``, ``cost_at_fit``, ``exit_rates_at_fit`` and
            ``run_rates_at_fit`` (the share of the rows each stage runs on)
            for this estimator's own policy. With a router, ``router`` says
            which points kept one, as in ``frontier_``.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> from skadaptive import AdaptiveCascadeClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> cascade = AdaptiveCascadeClassifier(
        ...     [("stump", DecisionTreeClassifier(max_depth=1)),
        ...      ("lr", LogisticRegression(max_iter=1000))], costs=[1, 5], cv=3,
        ... ).fit(X[::2], y[::2])
        >>> test = cascade.evaluate_frontier(X[1::2], y[1::2])
        >>> len(test["accuracy"]) == len(cascade.frontier_["accuracy"])
        True
        """
        check_is_fitted(self)
        X = validate_data(self, indexable(X), reset=False, skip_check_array=True)
        if _num_samples(X) == 0:
            raise ValueError("evaluate_frontier needs at least one row; X has 0 rows.")
        self._check_missing_values(X, fitted=True)
        y = column_or_1d(y)
        check_consistent_length(X, y)
        y_encoded = self._encode_new_targets(y)
        sample_weight = check_weights(sample_weight, X)
        alone, probas = self._exit_answers(exit_probas(self._stage_source(), X))
        correct_alone = stage_correct(alone, y_encoded, self._loss())
        correct = stage_correct(probas, y_encoded, self._loss())
        # The kept policy's answers (answer_); frontier_'s are the exits'.
        fitted = self._fitted_answers(alone, probas)
        correct_fitted = self._fitted_answers(correct_alone, correct)

        weight = np.ones(len(y)) if sample_weight is None else sample_weight

        def at(policy, answers=probas, correct=correct):
            exit_stage, runs = routed_walk(policy, answers, X)
            ran = runs if policy.skips else None
            accuracy, _, rates = exit_figures(
                exit_stage, correct, self.cumulative_costs_, sample_weight, ran
            )
            cost = self._average_cost(exit_stage, sample_weight, ran)
            run_rates = runs @ weight / weight.sum()
            return accuracy, cost + self._router_cost_of(policy), rates, run_rates

        figures = stage_figures(correct_fitted, self.cumulative_costs_, sample_weight)
        figures["exit_accuracies"] = figures.pop("stage_accuracies")
        figures["stage_accuracies"] = stage_accuracies(correct_alone, sample_weight)
        points = [at(p.policy) for p in self._frontier_evaluations()]
        accuracy_at_fit, cost_at_fit, rates_at_fit, runs_at_fit = at(
            self.policy_, fitted, correct_fitted
        )
        total = self.cumulative_costs_[-1]
        frontier = self.frontier_
        result = {
            "cost_weight": frontier["cost_weight"].copy(),
            "accuracy": np.array([p[0] for p in points]),
            "expected_cost": np.array([p[1] for p in points]),
            "normalized_cost": np.array([p[1] for p in points]) / total,
            "exit_rates": np.stack([p[2] for p in points]),
            "run_rates": np.stack([p[3] for p in points]),
            **figures,
            "oracle_cost": self._cost_of_rates(figures["oracle_exit_rates"]),
            "stage_costs": self._alone_costs(self.costs_),
            "accuracy_at_fit": accuracy_at_fit,
            "cost_at_fit": cost_at_fit,
            "exit_rates_at_fit": rates_at_fit,
            "run_rates_at_fit": runs_at_fit,
        }
        if "router" in frontier:  # which points kept one, as frontier_ says
            result["router"] = frontier["router"].copy()
        return result

    def measure_stage_seconds(
        self, X: Rows, *, random_state: RandomState = None
    ) -> np.ndarray:
        """Measured wall-clock seconds per row of each stage's increment on ``X``.

        Each stage's own time (without the routing work), per row of a call
        of ``cost_batch_size_`` rows: its part per row plus its part per call
        spread over the call, timed as ``costs="auto"`` times it. For
        plotting or reporting in seconds when the fit used other units.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n_samples, ...)
            Rows to time on (at most 4,096, drawn at random).
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        seconds_per_row : ndarray of shape (n_stages,)
        """
        check_is_fitted(self)
        X = validate_data(self, indexable(X), reset=False, skip_check_array=True)
        self._check_missing_values(X, fitted=True)
        seconds = call_line_for(
            measure_exit_seconds(
                self._stage_source(),
                X,
                random_state=random_state,
                batch_size=self.cost_batch_size_,
            ),
            self.cost_batch_size_,
        )
        return seconds.per_row + seconds.per_call / self.cost_batch_size_

    # -------------------------------------------------------------- predict
    def _check_prediction_params(self) -> None:
        """``batch_size`` and ``n_jobs`` as set now: set after fit
        (``set_params``), they were never checked, and are checked where they
        are read, in the estimator's words (not a helper's deep inside)."""
        validate_parameter_constraints(
            {key: self._parameter_constraints[key] for key in _PREDICTION_PARAMS},
            {key: getattr(self, key) for key in _PREDICTION_PARAMS},
            caller_name=type(self).__name__,
        )

    def route(self, X: Rows) -> Bunch:
        """Answer each row at the exit the policy picks, and report where.

        Exit k+1 runs only on the rows that exit k deferred.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        result : Bunch
            ``proba`` (n_samples, n_classes): the answering exit's
            probabilities; ``exit_stage`` (n_samples,): 0-based index of that
            exit; ``ran`` (n_samples, n_stages): whether each stage ran on
            the row (every stage up to its exit, unless the policy skips
            stages); ``cost`` (n_samples,): cost of the row (the sum of the
            costs of the stages it ran), units of ``costs_``. For a dask
            input, each field is the lazy collection that the method for it
            alone gives (``exit_stage`` as :meth:`predict_exit`, ``ran`` as
            :meth:`predict_path`), all from one routing pass per block:
            compute them together (``dask.compute(*result.values())``; dask
            does not look inside the Bunch itself).
        """
        if is_lazy(X):
            return lazy_predict(self, X, "route")
        X = self._checked_rows(X)
        if _num_samples(X) == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={np.shape(X)}) while a "
                f"minimum of 1 is required by {type(self).__name__}: pass at "
                "least one row."
            )
        self._check_prediction_params()
        result = route(
            self._answer_source(),
            self._routing_policy(),
            X,
            n_classes=self._n_outputs(),
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
        )
        ran = result.ran.T if self.policy_.skips else None
        result.cost = answer_costs(result.exit_stage, ran, self.cumulative_costs_)
        if getattr(self, "router_", None) is not None:
            result.cost += self.router_cost_
        return result

    def predict_path(self, X: Rows) -> Predictions:
        """Which stages run on each row.

        Every stage up to the row's exit in a plain cascade; with
        ``skips=True``, a row that a stage finds hard may jump over later
        stages, and this says which ones it ran.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        ran : ndarray of bool of shape (n_samples, n_stages)
            For a dask array, a dask array; for a dask DataFrame, a dask
            DataFrame with a column per stage, on its index.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict_path")
        return self.route(X).ran

    def predict_exit(self, X: Rows) -> Predictions:
        """0-based index of the exit that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        exit_stage : ndarray of shape (n_samples,)
            For a dask array, a dask array; for a dask DataFrame, a dask
            Series named ``exit_stage``, on its index.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict_exit")
        return self.route(X).exit_stage

    def predict_cost(self, X: Rows) -> Predictions:
        """Cost of answering each row: the sum of the costs of the exits it ran.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        cost : ndarray of shape (n_samples,)
            In the units of ``costs_``: ``cumulative_costs_`` at the row's
            exit (less the stages it skipped), each stage's per-call part
            spread over a full batch of ``cost_batch_size_`` rows, plus a
            kept router's ``router_cost_`` (every row pays it). A batch
            pays a stage's call once whatever the number of its rows that
            reach it, so the mean of
            these is not the average cost of a batch where few rows reach a
            stage; ``expected_cost_`` and :meth:`evaluate_frontier` give that.
            For a dask array, a dask array; for a dask DataFrame, a dask
            Series named ``cost``, on its index.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict_cost")
        return self.route(X).cost

    # ------------------------------------------------------ sklearn plumbing
    def __copy__(self):
        # A shallow copy (with_policy's, recalibrate's) shares the fitted
        # state as it is; pickling's state, made to be saved, would rebuild a
        # router's rows of a DataFrame for every copy.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __getstate__(self):
        # scikit-learn's state records its own version; skadaptive's is added.
        state = record_versions(super().__getstate__())
        data = state.get("_router_data")
        if data is not None:
            # skops saves no pandas object: a router's rows of a DataFrame are
            # kept as their columns' values (see _frames).
            state["_router_data"] = (rows_to_state(data[0]), data[1])
        return state

    def __setstate__(self, state):
        check_versions(state, type(self).__name__)
        data = state.get("_router_data")
        if data is not None:
            state = {**state, "_router_data": (rows_from_state(data[0]), data[1])}
        super().__setstate__(state)
        # Saved before some parameters existed (refit, cost_batch_size,
        # skips, router, answer...): each takes its default, which is what
        # such a model did (refit: the stages were refitted; no skips, no
        # router, the stages' own answers; every cost per row).
        for name, parameter in signature(type(self).__init__).parameters.items():
            if name != "self" and name not in self.__dict__:
                if parameter.default is not parameter.empty:
                    setattr(self, name, parameter.default)
        if "costs_" in self.__dict__ and "costs_per_call_" not in self.__dict__:
            self.costs_per_row_ = np.asarray(self.costs_, dtype=np.float64)
            self.costs_per_call_ = np.zeros_like(self.costs_per_row_)
            self.__dict__.setdefault("cost_batch_size_", 1)
        # Saved before routers' timings were kept: one dict the copies that
        # with_policy makes share (each would time its router anew).
        if hasattr(self, "router_search_"):
            self.__dict__.setdefault("_router_timings", {})
        # Saved before a budget's policy chose between the answer kinds: its
        # exits answer as its combiners say (none: the stages' own).
        if "policy_" in self.__dict__ and "answer_" not in self.__dict__:
            combiners = self.__dict__.get("combiners_")
            combined = combiners is not None and combines(combiners)
            self.answer_ = "combined" if combined else "stage"

    def get_metadata_routing(self) -> MetadataRouter:
        """Get metadata routing of this object.

        Returns
        -------
        routing : MetadataRouter
            Routes ``fit`` parameters to each stage's ``fit`` and to the
            splitter's ``split``; ``sample_weight`` is also used by the policy.
        """
        router = MetadataRouter(owner=self).add_self_request(self)
        for name, stage in zip(*self._members()):
            router.add(
                **{name: stage},
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        if (
            self.cv is None
            or isinstance(self.cv, Integral)
            or hasattr(self.cv, "split")
        ):
            # (A float holds out a fraction, with no splitter; an iterable
            # of splits takes no metadata, and check_cv would consume it.)
            router.add(
                **{ROUTED_SPLITTER: check_cv(self.cv)},
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        return router

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            stages = self._input_tags().tags
        except (TypeError, ValueError, AttributeError):
            # malformed estimators, or a source that is not an estimator
            return tags
        if stages is not None:
            tags.input_tags.sparse = stages.sparse
            tags.input_tags.allow_nan = stages.allow_nan
            tags.input_tags.string = stages.string
            tags.input_tags.positive_only = stages.positive_only
        router = getattr(self, "router", None)
        if router is not None and not isinstance(router, str):
            # A router of the user's sees the rows too ("auto" takes what the
            # stages take).
            try:
                seen = get_tags(router).input_tags
            except (TypeError, ValueError, AttributeError):
                seen = None
            if seen is not None:
                tags.input_tags.sparse &= seen.sparse
                tags.input_tags.allow_nan &= nan_fate(router) != "refuses"
                tags.input_tags.positive_only |= seen.positive_only
        # Measured costs (costs="auto") are timings, which move from fit to
        # fit, and the policy learned with them can too.
        tags.non_deterministic = self._measures_costs()
        return tags

    def _stages_score_poorly(self) -> bool:
        """Whether a stage's tags say it scores poorly: the estimator's then
        say so too (it can answer many rows with that stage)."""
        try:
            stages = self._input_tags().tags
        except (TypeError, ValueError, AttributeError):
            return False
        return stages is not None and stages.poor_score


class BaseAdaptiveClassifier(ClassifierMixin, BaseAdaptive):
    """:class:`BaseAdaptive` for classification: the stages answer with class
    probabilities, the policy's figures are accuracies."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = self._stages_score_poorly()
        return tags

    def _check_targets(self, y, sample_weight):
        unique_labels(y)  # a clear error for labels of mixed types, first
        check_classification_targets(y)
        self.classes_ = self._check_classes(y)
        if sample_weight is not None and not all(map(is_frozen, self._members()[1])):
            weighed = np.unique(np.asarray(y)[sample_weight > 0])
            if len(weighed) < 2:
                # Some models (LightGBM's) fail later, blaming their settings.
                raise ValueError(
                    f"y has {len(weighed)} class with positive sample_weight "
                    f"({weighed.tolist()}): the stages would be fitted on it, "
                    "and a classifier needs samples of at least 2 classes. "
                    "Give rows of another class a positive weight."
                )
        return y

    def _stage_classes(self):
        return self.classes_

    def _encode_targets(self, y) -> np.ndarray:
        return np.searchsorted(self.classes_, y)

    def _encode_new_targets(self, y) -> np.ndarray:
        try:
            labels = np.unique(y)
        except TypeError as error:
            raise ValueError(
                "y mixes labels that cannot be compared with each other (a "
                "missing value such as None among strings?); every label must "
                f"be one of classes_ {self.classes_.tolist()}."
            ) from error
        unknown = np.setdiff1d(labels, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that this estimator does "
                f"not predict (its classes_ are {self.classes_.tolist()})."
            )
        return np.searchsorted(self.classes_, y)

    def _stored_targets(self, y_encoded) -> np.ndarray:
        return y_encoded.astype(np.min_scalar_type(max(len(self.classes_) - 1, 0)))

    def _encoded_for_policy(self, stored) -> np.ndarray:
        return stored.astype(np.intp)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _expected_figure_text(self) -> str:
        return f"expected accuracy {self.expected_accuracy_:.3f}"

    def _figure_words(self, figure) -> str:
        """A figure in words (a regressor's reads as its error)."""
        return f"accuracy {figure:.4g}"

    def __setstate__(self, state):
        super().__setstate__(state)
        # Saved before answers could be combined: they answer with the stages.
        if "answer" not in self.__dict__:
            self.answer = "stage"
        if "stage_accuracies_" in self.__dict__ and "combiners_" not in self.__dict__:
            n_exits = len(self.stage_accuracies_)
            self.combiners_ = [ExitCombiner(k) for k in range(n_exits)]
            self.exit_accuracies_ = self.stage_accuracies_

    def _check_classes(self, y) -> np.ndarray:
        names, members = self._members()
        frozen = frozen_classes(names, members)
        labels = unique_labels(y)
        if frozen is None:
            if len(labels) < 2:
                raise ValueError(
                    f"y has {len(labels)} class{'es' if len(labels) != 1 else ''} "
                    f"{labels.tolist()}; the stages would be fitted on it, and a "
                    "classifier needs samples of at least 2 classes. "
                    "Fit on data with several classes, or pass fitted stages in "
                    "FrozenEstimator."
                )
            return labels
        unknown = np.setdiff1d(labels, frozen)
        if len(unknown):
            hint = ""
            if len(labels) <= len(frozen) and np.array_equal(
                frozen, np.arange(len(frozen))
            ):
                hint = (
                    " A model fitted on class indices (a raw LightGBM or "
                    "XGBoost Booster, or an XGBoost classifier, which take no "
                    "other labels) predicts 0 .. n_classes - 1: fit on y "
                    "encoded so (sklearn.preprocessing.LabelEncoder), and map "
                    "the answers back with its classes_."
                )
            raise ValueError(
                f"y contains labels {unknown.tolist()} that the frozen stages do not "
                f"predict (they predict {frozen.tolist()}).{hint}"
            )
        if len(frozen) != len(labels) and len(names) > sum(map(is_frozen, members)):
            raise ValueError(
                f"The frozen stages predict classes {frozen.tolist()} but y has only "
                f"{labels.tolist()}, so the stages fitted here would predict a "
                "different class set. Fit on data with every class, or freeze "
                "every stage."
            )
        return frozen

    def predict_proba(self, X: Rows) -> Predictions:
        """Class probabilities of the exit that answers each row.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            For a dask array, a dask array (one chunk of columns); for a
            dask DataFrame, a dask DataFrame with a column per class of
            ``classes_``, on its index.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict_proba")
        return self.route(X).proba

    def predict_log_proba(self, X: Rows) -> Predictions:
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Lazy for a dask input, as :meth:`predict_proba`.
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict_log_proba")
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Rows) -> Predictions:
        """Class of each row, from the exit that answers it.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, list or dask collection
            Rows, of shape (n_samples, ...). A dask array (chunked along the
            rows) or dask DataFrame is answered lazily, block by block.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            For a dask array, a dask array; for a dask DataFrame, a dask
            Series named ``prediction``, on its index (of ``classes_``'s
            dtype: ``object`` for string labels).
        """
        if is_lazy(X):
            return lazy_predict(self, X, "predict")
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


def _measure_routing(
    estimator,
    policy_spec,
    X,
    stage_probas,
    answers,
    y_encoded,
    cumulative,
    rows_in_state,
    n_classes,
    combiners,
    regression=False,
    batch_size=None,
) -> Bunch:
    """:func:`measure_routing_seconds` for a policy of ``policy_spec``'s family.

    A module-level function so that ``memory=`` caches it (keyed by all but
    ``estimator``, whose fitted stages are routed through and whose checks of
    a call are timed with stage 0; the stages' answers in the key tell the
    stages apart). The policy
    is learned on the exits' ``answers``; the combiners (if any but "stage")
    are timed with it.
    """
    family, features, tune_threshold, loss = policy_spec
    with threadpool_limits(limits=1, user_api="blas"):
        policy = (
            make_policy_search(
                family,
                answers,
                y_encoded,
                cumulative,
                None,
                loss=loss,
                feature_set=features,
                tune_threshold=tune_threshold,
            )
            .at_cost_weight(0.01)
            .policy
        )
    # Timed with the threads prediction uses: the stages run (a stage on BLAS
    # timed on one thread would look as dear as it is on one thread).
    return measure_routing_seconds(
        policy,
        stage_probas,
        X,
        n_classes=n_classes,
        rows_in_state=rows_in_state,
        entry=estimator._checked_rows,
        combiners=combiners,
        regression=regression,
        source=estimator._stage_source(),
        batch_size=batch_size,
    )


def _plain(value):
    """A numpy scalar as the Python number it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


class PolicyRowsDiscardedError(ValueError, AttributeError):
    """The kept policy rows were discarded, so no policy can be learned again.

    A ValueError for ``with_policy``, and an AttributeError so that
    ``hasattr(estimator, "frontier_")`` is False afterwards.
    """
