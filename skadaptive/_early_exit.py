"""EarlyExitClassifier: a learned exit policy over one shared computation."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_memory

from ._base import (
    BaseAdaptiveClassifier,
    check_budget,
    check_costs,
    fill_shared_docs,
)
from ._held_out import fit_stages_on_held_out, is_frozen
from .stages import (
    ChainExits,
    MultiExitSource,
    TreeEnsembleExits,
    exit_probas,
    measure_exit_seconds_per_row,
)
from .stages._tree_exits import check_tree_exits

_TREE_ENSEMBLES = (
    GradientBoostingClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
)


def _unwrap(estimator):
    return estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator


def _n_trees(model) -> int:
    if isinstance(model, GradientBoostingClassifier):
        return model.estimators_.shape[0]
    return len(model.estimators_)


def default_exits(n_trees: int) -> tuple[int, ...]:
    """Five exits at 1/16, 1/8, 1/4, 1/2 and all of ``n_trees`` (distinct, >= 1).

    Examples
    --------
    >>> from skadaptive._early_exit import default_exits
    >>> default_exits(400)
    (25, 50, 100, 200, 400)
    >>> default_exits(3)
    (1, 2, 3)
    """
    counts = np.maximum(1, np.round(n_trees / 2.0 ** np.arange(4, -1, -1)))
    return tuple(int(c) for c in np.unique(counts.astype(int)))


def as_multi_exit(fitted, exits) -> MultiExitSource:
    """The multi-exit source of a fitted backbone.

    A tree ensemble (possibly frozen) gets exits after ``exits`` trees (or
    :func:`default_exits`); a :class:`~skadaptive.stages.ChainExits` (possibly
    frozen) and any other :class:`~skadaptive.stages.MultiExitSource` are
    their own source, whose exits are fixed.
    """
    model = _unwrap(fitted)
    if isinstance(model, _TREE_ENSEMBLES):
        if exits is None:
            exits = default_exits(_n_trees(model))
        return TreeEnsembleExits(model, exits)
    if exits is not None:
        raise ValueError(
            f"exits={exits!r} applies to tree ensembles only; the exits of a "
            f"{type(model).__name__} are fixed by the model itself. Leave exits "
            "as None."
        )
    return model


def backbone_exit_probas(fitted, X, classes, *, exits) -> list[np.ndarray]:
    """Every exit's probabilities of one fitted backbone, columns in ``classes``."""
    source = as_multi_exit(fitted, exits)
    source_classes = np.asarray(source.classes_)
    probas = exit_probas(source, X)
    if len(source_classes) == len(classes) and np.array_equal(source_classes, classes):
        return probas
    # A cross-validation fold without some class: those columns are 0, as in
    # cross_val_predict.
    columns = np.searchsorted(classes, source_classes)
    full = []
    for proba in probas:
        expanded = np.zeros((proba.shape[0], len(classes)))
        expanded[:, columns] = proba
        full.append(expanded)
    return full


def measure_backbone_seconds(fitted, X, random_state, *, exits) -> np.ndarray:
    """Measured seconds per row of each exit's increment of the one backbone."""
    (backbone,) = fitted
    return measure_exit_seconds_per_row(
        as_multi_exit(backbone, exits), X, random_state=random_state
    )


@fill_shared_docs
class EarlyExitClassifier(BaseAdaptiveClassifier):
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
        - a :class:`~skadaptive.stages.ChainExits` of blocks and heads;
        - either of these wrapped in :class:`~sklearn.frozen.FrozenEstimator`
          (already fitted: used as given, never refitted);
        - any fitted object following the
          :class:`~skadaptive.stages.MultiExitSource` protocol (e.g. a split
          multi-exit ONNX network), used as given.

        Unfitted estimators are cloned and fitted. ``HistGradientBoostingClassifier``
        is not supported (see :class:`~skadaptive.stages.TreeEnsembleExits`).

    exits : list of int, default=None
        Tree ensembles only: strictly increasing numbers of trees after which a
        row may stop, the last being all trees. ``None`` puts five exits at
        1/16, 1/8, 1/4, 1/2 and all of the trees.

    costs : "auto", array-like of shape (n_exits,) or None, default=None
        Incremental cost per row of each exit, in any unit. ``None`` uses the
        source's own unit where it has one -- trees evaluated for a tree
        ensemble (boosting: iterations), so ``budget=120`` means at most 120
        trees per row on average -- and measures seconds otherwise (a chain).
        ``"auto"`` measures each exit's increment in seconds per row on the
        policy rows.

    {shared_parameters}

    Attributes
    ----------
    estimator_ : estimator or MultiExitSource
        The fitted backbone (the ``estimator`` itself when frozen).
    source_ : MultiExitSource
        What runs the exits at prediction.
    n_exits_ : int
    classes_ : ndarray of shape (n_classes,)
    costs_ : ndarray of shape (n_exits,)
        Incremental cost per row of each exit.
    cumulative_costs_ : ndarray of shape (n_exits,)
        Cost per row of answering at each exit.
    {shared_attributes}

    See Also
    --------
    AdaptiveCascadeClassifier : The same policies over independent models.
    skadaptive.stages.TreeEnsembleExits, skadaptive.stages.ChainExits :
        The multi-exit sources.

    Notes
    -----
    "Stage" in the parameters above means "exit". Only the rows still running
    reach the next exit, so wall-clock savings follow the exit rates; a tree
    ensemble's first exit pays a fixed cost per call (input validation) that a
    per-row cost in trees does not show.

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
        "estimator": [HasMethods(["fit"]), HasMethods(["run_stage"])],
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
        cv=5,
        memory=None,
        batch_size=None,
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
        self.cv = cv
        self.memory = memory
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_structure(self):
        model = _unwrap(self.estimator)
        if isinstance(model, HistGradientBoostingClassifier):
            raise TypeError(
                "HistGradientBoostingClassifier cannot carry its running score "
                "between exits without private attributes (see "
                "skadaptive.stages.TreeEnsembleExits). Use "
                "GradientBoostingClassifier, or models of growing max_iter in an "
                "AdaptiveCascadeClassifier."
            )
        if isinstance(model, _TREE_ENSEMBLES):
            self._check_tree_exits_early(model)
        elif not isinstance(model, ChainExits | MultiExitSource):
            kinds = ", ".join(cls.__name__ for cls in _TREE_ENSEMBLES)
            raise TypeError(
                f"estimator must be a {kinds}, a ChainExits, one of these in a "
                "FrozenEstimator, or a fitted multi-exit source (run_stage, "
                f"keep_rows, n_stages, classes_); got {type(model).__name__}."
            )
        elif self.exits is not None:
            as_multi_exit(model, self.exits)  # raises: the exits are the model's
        # The number of exits of a chain or a fitted source is only final once
        # the backbone is fitted.
        return None

    def _check_tree_exits_early(self, model) -> None:
        """Refuse bad exits or an unreachable budget before fitting any tree."""
        if is_frozen(self.estimator):
            n_trees = _n_trees(model)
        elif isinstance(model, GradientBoostingClassifier) and (
            model.n_iter_no_change is not None
        ):
            raise ValueError(
                "GradientBoostingClassifier(n_iter_no_change="
                f"{model.n_iter_no_change}) stops growing trees at a different "
                "point in every cross-fitting fold, so the folds and the refitted "
                "model would not share the same exits. Set n_iter_no_change=None "
                "(choose n_estimators instead), or fit the model yourself and pass "
                "FrozenEstimator(model) with policy data it was not fitted on."
            )
        else:
            n_trees = model.n_estimators
        exits = default_exits(n_trees) if self.exits is None else self.exits
        exits = check_tree_exits(exits, n_trees)
        if len(exits) < 2:
            raise ValueError(
                f"exits={list(exits)} has one exit; early exiting needs at least "
                f"two (e.g. exits=[{max(1, n_trees // 4)}, {n_trees}])."
            )
        if self.costs is None:
            costs = np.diff(exits, prepend=0).astype(np.float64)
            check_budget(self.budget, costs, [f"exit {k}" for k in range(len(costs))])

    def _members(self):
        return ["estimator"], [self.estimator]

    def _stage_names(self):
        return [f"exit {k}" for k in range(self.n_exits_)]

    def _fit_held_out(self, X, y, classes, sample_weight, fit_params, measure_costs):
        exits = None if self.exits is None else tuple(np.asarray(self.exits).tolist())
        stage_fit_params, splitter_params = self._route_fit_params(
            sample_weight, fit_params
        )
        fit_backbone = check_memory(self.memory).cache(
            fit_stages_on_held_out, ignore=["n_jobs", "verbose"]
        )
        held_out = fit_backbone(
            [self.estimator],
            X,
            y,
            classes,
            stage_fit_params,
            splitter_params,
            self.cv,
            measure_costs=measure_costs,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            exit_probas=partial(backbone_exit_probas, exits=exits),
            measure=partial(measure_backbone_seconds, exits=exits),
        )
        (self.estimator_,) = held_out.estimators
        self.source_ = as_multi_exit(self.estimator_, exits)
        self.n_exits_ = self.source_.n_stages
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
        return held_out

    def _natural_units(self) -> bool:
        model = _unwrap(self.estimator)
        if isinstance(model, _TREE_ENSEMBLES):
            return True
        if isinstance(model, ChainExits):
            return False
        return model.default_costs() is not None

    def _measure_costs(self) -> bool:
        if self.costs is None:
            return not self._natural_units()
        return super()._measure_costs()

    def _fitted_costs(self, held_out, measure_costs):
        if self.costs is None and not measure_costs:
            return check_costs(self.source_.default_costs(), self._stage_names())
        return super()._fitted_costs(held_out, measure_costs)

    def _alone_costs(self, incremental) -> np.ndarray:
        # An exit shares the computation before it: alone, it costs all of it.
        return np.cumsum(incremental)

    def _cost_unit(self) -> str | None:
        if self.costs is None:
            if self._measure_costs():
                return "seconds"
            return getattr(self.source_, "cost_unit", None)
        return super()._cost_unit()

    def _stage_source(self):
        return self.source_
