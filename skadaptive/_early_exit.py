"""EarlyExitClassifier and EarlyExitRegressor: a learned exit policy over one
shared computation."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from ._base import BaseAdaptive, BaseAdaptiveClassifier
from ._costs import check_budget
from ._docs import fill_regression_docs, fill_shared_docs
from ._regressor import BaseAdaptiveRegressor
from ._sklearn_private import HasMethods
from ._validation import check_frozen_is_fitted, is_frozen
from .stages import (
    BoosterExits,
    ChainExits,
    ChainExitsRegressor,
    MultiExitSource,
    TreeEnsembleExits,
)
from .stages._backbones import (
    TREE_ENSEMBLES,
    as_multi_exit,
    backbone_source,
    default_exits,
    n_trees_of,
    unwrap,
)
from .stages._booster_exits import (
    booster_kind,
    check_fit_callbacks,
    check_fit_offsets,
    check_round_exits,
    check_unfitted_booster,
    is_booster_model,
    model_name,
)
from .stages._costs import fit_call_line
from .stages._tree_exits import check_tree_exits

#: What a booster's exits count, for messages.
_ROUNDS = {"counts": "round", "total": "the model's number of boosting rounds"}


#: The ``exits_`` attribute of both early-exit estimators' docstrings.
_EXITS_ATTRIBUTE = """exits_ : ndarray of shape (n_exits,) or None
        The number of trees (or boosting rounds) each exit answers with, for
        a tree ensemble or a boosted backbone: ``exits`` as given, or the
        default positions where it is None. None where the exits are the
        model's own (a ``{chain}``, a multi-exit network)."""


def _exits_doc(chain: str):
    """Put :data:`_EXITS_ATTRIBUTE` into a docstring, naming ``chain``."""

    def fill(cls):
        text = _EXITS_ATTRIBUTE.format(chain=chain)
        cls.__doc__ = cls.__doc__.replace("{exits_attribute}", text)
        return cls

    return fill


class _SharedComputation:
    """The member of early exits: one backbone whose exits share its work."""

    _regression = False

    def _check_structure(self):
        model = unwrap(self.estimator)
        kind = "Regressor" if self._regression else "Classifier"
        check_frozen_is_fitted(self.estimator, "estimator")
        if isinstance(
            model, HistGradientBoostingClassifier | HistGradientBoostingRegressor
        ):
            raise TypeError(
                f"{type(model).__name__} cannot carry its running score "
                "between exits without private attributes (see "
                f"skadaptive.stages.TreeEnsembleExits). Use GradientBoosting{kind}, "
                f"or models of growing max_iter in an AdaptiveCascade{kind}."
            )
        if is_booster_model(model):
            self._check_booster_early(model)
            return None
        ensembles = tuple(cls for cls in TREE_ENSEMBLES if cls.__name__.endswith(kind))
        if isinstance(model, TREE_ENSEMBLES) and not isinstance(model, ensembles):
            other = "Classifier" if self._regression else "Regressor"
            raise TypeError(
                f"{type(model).__name__} is a {other.lower()}; use "
                f"EarlyExit{other} for it, or a {kind.lower()} here."
            )
        chain = ChainExitsRegressor if self._regression else ChainExits
        if isinstance(model, ensembles):
            self._check_tree_exits_early(model)
        elif not isinstance(model, ChainExits | ChainExitsRegressor | MultiExitSource):
            kinds = ", ".join(cls.__name__ for cls in ensembles)
            attributes = "regression = True" if self._regression else "classes_"
            raise TypeError(
                f"estimator must be a {kinds}, an LGBM{kind} or XGB{kind} (or a "
                f"fitted lightgbm/xgboost Booster), a {chain.__name__}, one of "
                "these in a FrozenEstimator, or a fitted multi-exit source (n_stages, "
                f"{attributes}, run_stage, keep_rows and default_costs; see "
                f"skadaptive.stages.MultiExitSource); got {type(model).__name__}."
            )
        elif bool(getattr(model, "regression", False)) != self._regression:
            answers = "predictions" if self._regression else "class probabilities"
            other = "EarlyExitClassifier" if self._regression else "EarlyExitRegressor"
            raise TypeError(
                f"{type(model).__name__} does not answer with {answers} (its "
                f"regression is {bool(getattr(model, 'regression', False))}); use "
                f"{other} for it, or a {chain.__name__} here."
            )
        elif self.exits is not None:
            as_multi_exit(model, self.exits)  # raises: the exits are the model's
        if isinstance(model, ChainExits | ChainExitsRegressor) and (
            len(model.heads) < 2
        ):
            raise ValueError(
                f"The {type(model).__name__} has {len(model.heads)} head, so "
                f"{len(model.heads)} exit; early exiting needs at least two: "
                "give it a head after an earlier block too."
            )
        # The number of exits of a chain or a fitted source is only final once
        # the backbone is fitted.
        return None

    def _check_booster_early(self, model) -> None:
        """A LightGBM/XGBoost backbone: its kind, configuration and exits,
        before fitting anything."""
        kind = "regressor" if self._regression else "classifier"
        found = booster_kind(model)  # TypeError for what has no exits
        if found not in (kind, "booster"):
            other = "Classifier" if self._regression else "Regressor"
            raise TypeError(
                f"{type(model).__name__} is a {found}; use EarlyExit{other} for "
                f"it, or a {kind} here."
            )
        if is_frozen(self.estimator):  # a bare Booster included
            # Fitted already: its objective and rounds are known (and checked).
            source = BoosterExits(model, [n_trees_of(model)])
            if source.regression != self._regression:
                found = "regressor" if source.regression else "classifier"
                other = "Regressor" if source.regression else "Classifier"
                raise TypeError(
                    f"This {model_name(model)} has objective "
                    f"{source.objective!r}, so it is a {found}; use "
                    f"EarlyExit{other} for it, or a {kind} here."
                )
            if self.exits is not None:
                BoosterExits(model, self.exits)  # the message names best rounds
        self._check_tree_exits_early(model)

    def _check_tree_exits_early(self, model) -> None:
        """Refuse bad exits or an unreachable budget before fitting any tree."""
        names = {}
        if is_booster_model(model):
            names = _ROUNDS
            if is_frozen(self.estimator):
                n_trees = n_trees_of(model)
            else:
                # Refuses early stopping, DART and random-forest modes first.
                n_trees = check_unfitted_booster(model)
        elif is_frozen(self.estimator):
            n_trees = n_trees_of(model)
        elif isinstance(
            model, GradientBoostingClassifier | GradientBoostingRegressor
        ) and (model.n_iter_no_change is not None):
            why = (
                "stops growing trees at a different point in every "
                "cross-fitting fold, so the folds and the refitted model would "
                "not share the same exits"
                if self.refit
                else "has a number of trees unknown until it is fitted, so its "
                "exits and the budget cannot be checked before fitting"
            )
            raise ValueError(
                f"{type(model).__name__}(n_iter_no_change="
                f"{model.n_iter_no_change}) {why}. Set n_iter_no_change=None "
                "(choose n_estimators instead), or fit the model yourself and pass "
                "FrozenEstimator(model) with policy data it was not fitted on."
            )
        else:
            n_trees = model.n_estimators
        exits = default_exits(n_trees) if self.exits is None else self.exits
        check = check_round_exits if is_booster_model(model) else check_tree_exits
        exits = check(exits, n_trees, **names)
        if len(exits) < 2:
            fix = (
                f"e.g. exits=[{n_trees // 4}, {n_trees}]"
                if n_trees >= 4
                else f"the model has {n_trees} tree(s) or round(s): fit it with "
                "more (e.g. 100) to exit early"
            )
            raise ValueError(
                f"exits={list(exits)} has one exit; early exiting needs at least "
                f"two ({fix})."
            )
        if self.costs is None:
            costs = np.diff(exits, prepend=0).astype(np.float64)
            check_budget(
                self.budget,
                costs,
                [f"exit {k}" for k in range(len(costs))],
                self._budget_fix(costs[0]),
            )

    def _members(self):
        return ["estimator"], [self.estimator]

    def _stage_names(self):
        return [f"exit {k}" for k in range(self.n_exits_)]

    def _budget_fix(self, first_cost) -> str | None:
        """What to change, besides the budget, when the first exit costs
        ``first_cost``, over it; None where nothing else can be."""
        if isinstance(
            unwrap(self.estimator), ChainExits | ChainExitsRegressor | MultiExitSource
        ):
            # The exits are the model's own.
            return (
                "give the model an earlier, cheaper exit (a head after an "
                "earlier block)"
            )
        if self.costs is None:
            # Costs in trees (or rounds): the first exit's is its position.
            if first_cost <= 1:
                return None
            return (
                "add an earlier exit (a smaller first value in exits=: an exit "
                "costs its number of trees or rounds)"
            )
        if isinstance(self.costs, str):
            # Measured: an earlier exit, where the first is not at one tree.
            return "add an earlier exit (exits=), unless the first is at one tree"
        return "give the first exit a lower cost, or add an earlier one (exits=)"

    def _source_maker(self):
        exits = None if self.exits is None else tuple(np.asarray(self.exits).tolist())
        if is_booster_model(unwrap(self.estimator)) and not is_frozen(self.estimator):
            # Fitted here: a model that stopped early (a callback) is refused.
            return partial(backbone_source, exits=exits, fitted_here=True)
        return partial(backbone_source, exits=exits)

    def _fit_held_out(self, X, y, sample_weight, fit_params, routed, measure):
        model = unwrap(self.estimator)
        if is_booster_model(model) and not is_frozen(self.estimator):
            # Early-stopping callbacks routed to the backbone's fit: refused
            # before any fit, as the model's own early-stopping parameters.
            check_fit_callbacks(model, fit_params)
            check_fit_offsets(model, fit_params)
        if (
            isinstance(model, GradientBoostingClassifier | GradientBoostingRegressor)
            and not is_frozen(self.estimator)
            and fit_params.get("monitor") is not None
        ):
            raise ValueError(
                f"A monitor was passed to {type(model).__name__}.fit: it can stop "
                "the boosting at a different tree in every cross-fitting fold, so "
                "the folds and the refitted model would not share the same "
                "exits. Fit without it (choose n_estimators), or fit the model "
                "yourself and pass FrozenEstimator(model) with policy data it was "
                "not fitted on."
            )
        return super()._fit_held_out(X, y, sample_weight, fit_params, routed, measure)

    def _keep_fitted(self, held_out) -> None:
        (self.estimator_,) = held_out.estimators
        self.source_ = self._source_maker()(held_out.estimators, ["estimator"])
        self.n_exits_ = self.source_.n_stages
        # Where the exits are positions in trees or rounds (exits=None
        # resolved to the defaults); a chain's or a network's are its heads.
        counted = isinstance(self.source_, TreeEnsembleExits | BoosterExits)
        self.exits_ = np.asarray(self.source_.exits) if counted else None
        if self.n_exits_ < 2:
            raise ValueError(
                f"The backbone has {self.n_exits_} exit; early exiting needs at "
                "least two."
            )
        if self.n_exits_ != len(held_out.stage_probas):
            raise ValueError(
                f"The refitted backbone has {self.n_exits_} exits but was "
                f"cross-fitted with {len(held_out.stage_probas)}; its number of "
                "exits must not depend on the rows it is fitted on. Fix the "
                "number of exits, or pass the fitted model in a FrozenEstimator."
            )

    def _has_natural_costs(self) -> bool:
        model = unwrap(self.estimator)
        if isinstance(model, TREE_ENSEMBLES) or is_booster_model(model):
            return True
        if isinstance(model, ChainExits | ChainExitsRegressor):
            return False
        return model.default_costs() is not None

    def _natural_costs(self) -> tuple:
        if not self._has_natural_costs():
            return None, None
        return self.source_.default_costs(), getattr(self.source_, "cost_unit", None)

    def _alone_costs(self, incremental) -> np.ndarray:
        # An exit shares the computation before it: alone, it costs all of it.
        return np.cumsum(incremental)

    def _whole_method(self) -> str | None:
        # A model with a prediction of its own, which users would call
        # instead (a chain or a split network is its exits: no other).
        model = unwrap(self.estimator)
        if not (isinstance(model, TREE_ENSEMBLES) or is_booster_model(model)):
            return None
        method = "predict" if self._regression else "predict_proba"
        # A raw LightGBM or XGBoost Booster has no scikit-learn prediction
        # (XGBoost's takes a DMatrix): its exits are the reference.
        if not (hasattr(model, "get_params") and hasattr(model, method)):
            return None
        return method

    def _reference_seconds(self, batch_size: int) -> float:
        # With measured costs, the backbone's own prediction where it was
        # timed (not its exits run one after another: a forest's own
        # predict_proba pays for its threads, a boosted model's is one pass).
        measured = getattr(self, "_measured_seconds", None)
        whole = None if measured is None else measured.get("whole_timings")
        if whole is None:
            return super()._reference_seconds(batch_size)
        per_call, per_row = fit_call_line(
            measured.batch_sizes, np.asarray(whole)[None], batch_size=batch_size
        )
        return float(per_row[0] + per_call[0] / batch_size)

    def _stage_source(self):
        return self.source_


@_exits_doc("ChainExits")
@fill_shared_docs
class EarlyExitClassifier(_SharedComputation, BaseAdaptiveClassifier):
    """Stop each row at the earliest exit of one model that is good enough for it.

    The exits share one computation: a tree ensemble summed tree by tree, a
    chain of blocks with a classifier head after each, or an exported network
    split into segments. Exit k+1 continues from exit k's state for the rows
    still running, so a row pays only for the exits it passes. After each exit
    but the last, the learned policy answers the row or lets it continue; the
    policy minimises ``loss + cost_weight * cost`` on held-out rows, or
    maximises accuracy within an average cost ``budget``.

    Parameters
    ----------
    estimator : estimator or MultiExitSource
        The shared computation:

        - a :class:`~sklearn.ensemble.GradientBoostingClassifier`,
          :class:`~sklearn.ensemble.RandomForestClassifier` or
          :class:`~sklearn.ensemble.ExtraTreesClassifier`, with exits after
          ``exits`` trees (boosting: iterations);
        - a LightGBM ``LGBMClassifier`` or XGBoost ``XGBClassifier``, with
          exits after ``exits`` boosting rounds
          (:class:`~skadaptive.stages.BoosterExits`; without early stopping
          unless frozen), or a fitted classification ``lightgbm.Booster`` or
          ``xgboost.Booster`` (used as given);
        - a :class:`~skadaptive.stages.ChainExits` of blocks and heads;
        - any of these wrapped in :class:`~sklearn.frozen.FrozenEstimator`
          (already fitted: used as given, never refitted);
        - any fitted object following the
          :class:`~skadaptive.stages.MultiExitSource` protocol (e.g. a split
          multi-exit ONNX network), used as given.

        Unfitted estimators are cloned and fitted. ``HistGradientBoostingClassifier``
        is not supported (see :class:`~skadaptive.stages.TreeEnsembleExits`).

    exits : list of int, default=None
        Tree ensembles only: strictly increasing numbers of trees (LightGBM
        and XGBoost: boosting rounds) after which a row may stop, the last
        being all trees. ``None`` puts five exits at 1/16, 1/8, 1/4, 1/2 and
        all of the trees.

    costs : "auto", array-like of shape (n_exits,), dict or None, default=None
        Incremental cost per row of each exit, in any unit. ``None`` uses the
        source's own unit where it has one -- trees evaluated for a tree
        ensemble (boosting: iterations; LightGBM and XGBoost: rounds), so
        ``budget=120`` means at most 120 trees per row on average -- and
        measures seconds otherwise (a chain). Trees count work, not time: a
        tree called on fewer rows costs more per row (its nodes are brought
        into the cache for fewer rows), so a forest whose late exits run on
        few rows answers more slowly than its expected speed-up in trees says
        (see ``benchmarks/EARLY_EXIT_WALL_RESULTS.md``); ``"auto"`` with
        ``cost_batch_size`` counts time instead.
        ``"auto"`` times each exit's increment on the policy rows, in seconds,
        at several batch sizes, and splits it into a part per call and a part
        per row (see ``cost_batch_size``); a dict ``{"per_call": ...,
        "per_row": ...}`` gives both parts.

    {shared_parameters}

    Attributes
    ----------
    estimator_ : estimator or MultiExitSource
        The fitted backbone (the ``estimator`` itself when frozen). An
        ``XGBClassifier``, which takes the labels ``0 .. n_classes - 1``
        only, is fitted on the indices of the labels in ``classes_``: it
        answers in those (``classes_[estimator_.predict(X)]`` are labels).
    source_ : MultiExitSource
        What runs the exits at prediction.
    n_exits_ : int
        The number of exits.
    {exits_attribute}
    classes_ : ndarray of shape (n_classes,)
    costs_ : ndarray of shape (n_exits,)
        Incremental cost per row of each exit; measured costs include the
        per-call part spread over a batch of ``cost_batch_size_`` rows.
    cumulative_costs_ : ndarray of shape (n_exits,)
        Cost per row of answering at each exit (when every row of the batch
        answers there).
    {shared_attributes}

    See Also
    --------
    AdaptiveCascadeClassifier : The same policies over independent models.
    skadaptive.stages.TreeEnsembleExits, skadaptive.stages.ChainExits :
        The multi-exit sources.
    skadaptive.stages.BoosterExits : The exits of a LightGBM or XGBoost model.

    Notes
    -----
    "Stage" in the parameters above means "exit". Only the rows still running
    reach the next exit, so wall-clock savings follow the exit rates; each
    exit also pays a fixed cost per call (input validation, each tree's call)
    that a cost in trees does not show: ``costs="auto"`` measures it.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> from skadaptive import EarlyExitClassifier
    >>> X, y = make_classification(n_samples=1000, n_informative=6, random_state=0)
    >>> ee = EarlyExitClassifier(
    ...     GradientBoostingClassifier(n_estimators=80, random_state=0),
    ...     exits=[10, 20, 40, 80], budget=30, cv=3,
    ... ).fit(X, y)
    >>> bool(ee.policy_rows_cost_ <= 30)   # at most 30 trees per row on average
    True
    >>> exit_of_each_row = ee.predict_exit(X[:5])
    >>> bool(ee.predict_cost(X).mean() < 80)
    True
    """

    _parameter_constraints: dict = {
        **BaseAdaptiveClassifier._parameter_constraints,
        # A lightgbm/xgboost Booster has neither fit nor run_stage.
        "estimator": [
            HasMethods(["fit"]),
            HasMethods(["run_stage"]),
            HasMethods(["predict", "save_model"]),
        ],
        "exits": ["array-like", None],
        "costs": [*BaseAdaptiveClassifier._parameter_constraints["costs"], None],
    }

    def __init__(
        self,
        estimator,
        *,
        exits=None,
        costs=None,
        cost_weight=0.01,
        budget=None,
        budget_confidence=None,
        policy="linear",
        policy_features="history",
        tune_threshold=True,
        loss="zero_one",
        answer="stage",
        cv=5,
        refit=True,
        memory=None,
        batch_size=None,
        cost_batch_size=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.exits = exits
        self.costs = costs
        self.cost_weight = cost_weight
        self.budget = budget
        self.budget_confidence = budget_confidence
        self.policy = policy
        self.policy_features = policy_features
        self.tune_threshold = tune_threshold
        self.loss = loss
        self.answer = answer
        self.cv = cv
        self.refit = refit
        self.memory = memory
        self.batch_size = batch_size
        self.cost_batch_size = cost_batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose


@_exits_doc("ChainExitsRegressor")
@fill_regression_docs
class EarlyExitRegressor(_SharedComputation, BaseAdaptiveRegressor):
    """Stop each row at the earliest exit of one regressor that is good enough
    for it.

    The exits share one computation: a tree ensemble summed tree by tree (or
    any multi-exit source whose exits answer regression predictions). Exit
    k+1 continues from exit k's running prediction for the rows still running,
    so a row pays only for the trees it passes. After each exit but the last,
    the learned policy answers the row or lets it continue, from what the
    exits so far predicted: the running prediction, its change since the last
    exit, and for forests the spread of the trees so far. The policy minimises
    ``loss + cost_weight * cost`` on held-out rows (the loss on a learned
    scale of ``y``), or the error within an average cost ``budget``.

    Parameters
    ----------
    estimator : estimator or MultiExitSource
        The shared computation:

        - a :class:`~sklearn.ensemble.GradientBoostingRegressor`,
          :class:`~sklearn.ensemble.RandomForestRegressor` or
          :class:`~sklearn.ensemble.ExtraTreesRegressor`, with exits after
          ``exits`` trees (boosting: iterations);
        - a LightGBM ``LGBMRegressor`` or XGBoost ``XGBRegressor``, with exits
          after ``exits`` boosting rounds
          (:class:`~skadaptive.stages.BoosterExits`; without early stopping
          unless frozen), or a fitted regression ``lightgbm.Booster`` or
          ``xgboost.Booster`` (used as given);
        - a :class:`~skadaptive.stages.ChainExitsRegressor` of blocks and
          regressor heads;
        - any of these wrapped in :class:`~sklearn.frozen.FrozenEstimator`
          (already fitted: used as given, never refitted);
        - any fitted object following the
          :class:`~skadaptive.stages.MultiExitSource` protocol with
          ``regression = True`` (each exit answers an array of shape
          (n_rows, 2): prediction and uncertainty), used as given.

        Unfitted estimators are cloned and fitted.
        ``HistGradientBoostingRegressor`` is not supported (see
        :class:`~skadaptive.stages.TreeEnsembleExits`).

    exits : list of int, default=None
        Tree ensembles only: strictly increasing numbers of trees (LightGBM
        and XGBoost: boosting rounds) after which a row may stop, the last
        being all trees. ``None`` puts five exits at 1/16, 1/8, 1/4, 1/2 and
        all of the trees.

    costs : "auto", array-like of shape (n_exits,), dict or None, default=None
        Incremental cost per row of each exit, in any unit. ``None`` counts
        trees for a tree ensemble (boosting: iterations; LightGBM and XGBoost:
        rounds), so ``budget=120`` means at most 120 trees per row on average.
        ``"auto"`` times each exit's increment on the policy rows, in seconds.

    {shared_parameters}

    Attributes
    ----------
    estimator_ : estimator or MultiExitSource
        The fitted backbone (the ``estimator`` itself when frozen).
    source_ : MultiExitSource
        What runs the exits at prediction.
    n_exits_ : int
        The number of exits.
    {exits_attribute}
    costs_ : ndarray of shape (n_exits,)
        Incremental cost per row of each exit.
    cumulative_costs_ : ndarray of shape (n_exits,)
        Cost per row of answering at each exit.
    {shared_attributes}

    See Also
    --------
    EarlyExitClassifier : The same for classifiers.
    AdaptiveCascadeRegressor : The same policies over independent regressors.
    skadaptive.stages.TreeEnsembleExits : The exits of a tree ensemble.
    skadaptive.stages.BoosterExits : The exits of a LightGBM or XGBoost model.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skadaptive import EarlyExitRegressor
    >>> X, y = make_friedman1(n_samples=1500, noise=0.5, random_state=0)
    >>> ee = EarlyExitRegressor(
    ...     GradientBoostingRegressor(n_estimators=80, random_state=0),
    ...     exits=[10, 20, 40, 80], budget=40, cv=3,
    ... ).fit(X[:1000], y[:1000])
    >>> bool(ee.policy_rows_cost_ <= 40)   # at most 40 trees per row on average
    True
    >>> bool(ee.score(X[1000:], y[1000:]) > 0.8)
    True
    """

    _regression = True

    _parameter_constraints: dict = {
        **BaseAdaptiveRegressor._parameter_constraints,
        # A lightgbm/xgboost Booster has neither fit nor run_stage.
        "estimator": [
            HasMethods(["fit"]),
            HasMethods(["run_stage"]),
            HasMethods(["predict", "save_model"]),
        ],
        "exits": ["array-like", None],
        "costs": [*BaseAdaptive._parameter_constraints["costs"], None],
    }

    def __init__(
        self,
        estimator,
        *,
        exits=None,
        costs=None,
        cost_weight=0.01,
        budget=None,
        budget_confidence=None,
        policy="linear",
        policy_features="history",
        tune_threshold=True,
        loss="squared_error",
        answer="stage",
        cv=5,
        refit=True,
        memory=None,
        batch_size=None,
        cost_batch_size=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.exits = exits
        self.costs = costs
        self.cost_weight = cost_weight
        self.budget = budget
        self.budget_confidence = budget_confidence
        self.policy = policy
        self.policy_features = policy_features
        self.tune_threshold = tune_threshold
        self.loss = loss
        self.answer = answer
        self.cv = cv
        self.refit = refit
        self.memory = memory
        self.batch_size = batch_size
        self.cost_batch_size = cost_batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
